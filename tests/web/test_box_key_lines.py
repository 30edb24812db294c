"""The account holding the box's own key keeps it through the Users page's other changes.

Its key slot is granted every line there is or will be, whatever lines the account lists.
Narrowing its lines was refused by the key store (a narrower grant needs a key) and only
audited: the page went on to list fewer lines for the account while its key opened them all.
Refused now, naming the account and why, nothing changed and its form showing the lines it
has. A password reset gave it a slot for its listed lines only, so no account held the box's
key any more: the reset keeps every line, and so needs the box's recovery key."""

import re

from firmware.storage.keystore import ALL_LINES

from support.web import LINES

WORDS = (
    "alice holds the box&#39;s own key, which opens every line there is or will be, whatever "
    "lines the account lists: its lines cannot be narrowed, nor changed"
)


def test_the_box_s_key_holder_s_lines_are_not_narrowed(box, people):
    ivan = people["ivan"]
    keystore = box.services.keystore
    before = (box.db_users(), keystore.copy_bytes()[0], box.audit_actions())
    form = {"roles": ["installer", "supervisor"], "lines": ["1", "2"], "based_on": _based_on(ivan)}
    resp = box.post(ivan, "/users/alice", form, token_from="/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and WORDS in page, page[-3000:]
    assert (box.db_users(), keystore.copy_bytes()[0], box.audit_actions()) == before
    assert keystore.granted_lines("alice") == ALL_LINES
    # The form shows the lines alice has, not the ones typed.
    row = page[page.index('id="roles-alice"') :]
    row = row[: row.index("</form>")]
    assert re.findall(r'name="lines" value="(\d)" checked', row) == ["1", "2", "3", "4"], row


def test_a_password_reset_keeps_the_box_s_key(box, people):
    ivan = people["ivan"]
    keystore = box.services.keystore
    new = "alice has a new one 7"
    form = {"password": new, "recovery_key": box.recovery_key}
    resp = box.post(ivan, "/users/alice/password", form, token_from="/users")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert keystore.granted_lines("alice") == ALL_LINES
    with keystore.unlock("alice", new) as key:
        assert key.holds_all


def test_a_password_reset_with_a_supervisor_s_key_is_refused(box, people):
    # An owner added as installer and supervisor of every line the box has: their key opens
    # lines 1 to 4, not the box's own key, which the new slot must hold.
    owner = ("owner", "owner of the shop 7")
    box.post(
        people["alice"],
        "/users",
        {
            "name": owner[0],
            "password": owner[1],
            "roles": ["installer", "supervisor"],
            "lines": [str(n) for n in range(1, LINES + 1)],
        },
        token_from="/users",
    )
    box.chose_own_password(owner[0])
    client = box.client()
    assert box.try_login(client, *owner).status_code == 302
    keystore = box.services.keystore
    before = (box.db_users(), keystore.copy_bytes()[0])
    resp = box.post(
        client, "/users/alice/password", {"password": "alice has a new one 7"}, token_from="/users"
    )
    page = resp.get_data(as_text=True)
    words = (
        "alice holds the box&#39;s own key (every line there is or will be), which the new "
        "password must open too: resetting it needs the box&#39;s recovery key."
    )
    assert resp.status_code == 400 and words in page, page[-3000:]
    assert (box.db_users(), keystore.copy_bytes()[0]) == before


def test_another_slot_opening_every_line_is_told_to_reset_the_password_first(box, people):
    # sam's slot granted every line (as one made before line keys is), alice's too: narrowing
    # sam's lines is refused the same way, saying how to give sam a slot for them.
    keystore = box.services.keystore
    with keystore.unlock_recovery(box.recovery_key) as key:
        keystore.reset_password("sam", "sam has every line 7", key, lines=ALL_LINES)
    ivan = people["ivan"]
    before = (box.db_users(), keystore.copy_bytes()[0])
    form = {"roles": ["supervisor"], "lines": ["1"], "based_on": _based_on(ivan, "sam")}
    resp = box.post(ivan, "/users/sam", form, token_from="/users")
    page = resp.get_data(as_text=True)
    words = (
        "sam&#39;s key slot opens every line (the box&#39;s own key), whatever lines the account "
        "lists: reset its password first"
    )
    assert resp.status_code == 400 and words in page, page[-3000:]
    assert (box.db_users(), keystore.copy_bytes()[0]) == before


def _based_on(client, name="alice"):
    page = client.get("/users").get_data(as_text=True)
    form = page[page.index('id="roles-%s"' % name) :]
    return re.search(r'name="based_on" value="([^"]*)"', form).group(1)
