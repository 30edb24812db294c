"""The last account holding the box's own key cannot be deleted, nor lose its key slot, from
the Users page.

The setup wizard's account holds the box's key (every line there is or will be): only it makes
a new recovery key, a key store backup, a rekey. An owner taking a box over deleted the
installer's account, as a handover would, while supervisors of every line remained: the page
allowed it, and then no account, nor `linekeeper rekey`, could ever hold the box's key again,
and the recovery key the installer had seen could never be replaced. Refused now, saying why
and what to do; nothing changes."""

from firmware.storage.keystore import ALL_LINES

WORDS = (
    "alice holds the box&#39;s own key (every line there is or will be; it makes new recovery "
    "keys and key store backups), and no other account does"
)


def test_the_last_holder_of_the_box_s_key_is_not_deleted(box, people):
    ivan = people["ivan"]
    keystore = box.services.keystore
    assert keystore.granted_lines("alice") == ALL_LINES
    before = (box.db_users(), keystore.copy_bytes()[0])
    resp = box.post(ivan, "/users/alice/delete", token_from="/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and WORDS in page, page[-3000:]
    assert "give the key to the new owner&#39;s own supervisor account first" in page
    # Nor its supervisor role taken away, which removes its key slot.
    form = {"roles": ["installer"], "based_on": _based_on(box, ivan)}
    resp = box.post(ivan, "/users/alice", form, token_from="/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and WORDS in page, page[-3000:]
    assert (box.db_users(), keystore.copy_bytes()[0]) == before
    assert keystore.granted_lines("alice") == ALL_LINES


def _based_on(box, client):
    import re

    page = client.get("/users").get_data(as_text=True)
    form = page[page.index('id="roles-alice"') :]
    return re.search(r'name="based_on" value="([^"]*)"', form).group(1)
