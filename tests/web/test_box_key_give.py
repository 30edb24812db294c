"""The box's own key is given to another supervisor on the Users page, so a box sold with the
business goes on under the buyer's own account.

Only the account holding the box's own key (its key slot granted every line there is or will
be) makes new recovery keys, key store backups and rekeys, and it could not be deleted, nor
renamed: a buyer carried on with the seller's account, whose name the audit trail and the
staff notice keep. An installer whose session holds the box's own key (or who types the
recovery key) now gives it to another enabled supervisor with a key slot: both hold it, and
the old account may then be deleted. Refused, with nothing changed, for anyone else."""

import re

from firmware.storage.keystore import ALL_LINES, format_recovery_key
from firmware.words import audit_fields

from support.web import LINES


def _keys(box):
    return (box.db_users(), box.services.keystore.copy_bytes()[0])


def _grants(box):
    return [e for e in box.services.audit.entries(limit=1000, action="key_grant")]


def _give(box, client, name, **form):
    return box.post(client, "/users/%s/box-key" % name, form, token_from="/users")


def test_the_box_s_key_is_given_and_the_old_account_deleted(box, people):
    alice, ivan = people["alice"], people["ivan"]
    keystore = box.services.keystore
    page = alice.get("/users").get_data(as_text=True)
    form = page[page.index('id="box-key-sam"') :]
    assert "Give the box's own key</button>" in form[: form.index("</form>")]
    assert 'id="box-key-audrey"' not in page and 'id="box-key-alice"' not in page

    resp = _give(box, alice, "sam")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert keystore.granted_lines("sam") == ALL_LINES
    assert keystore.granted_lines("alice") == ALL_LINES
    entry = _grants(box)[0]
    assert (entry.actor, entry.target) == ("alice", "sam")
    assert entry.details["box_key"] is True and entry.details["granted_with"] == "supervisor"
    said = audit_fields(entry.details, "key_grant")
    assert ("The box's own key (every line there is or will be)", "yes") in said, said
    page = alice.get(resp.headers["Location"]).get_data(as_text=True)
    assert "sam holds the box&#39;s own key now: from their next login" in page
    assert box.web.accounts.get("sam").lines == (1, 2)  # what the pages show them is kept

    # Their next login holds it: a new recovery key is theirs to make.
    sam = box.login("sam")
    with keystore.unlock("sam", "supervisor pass one 7") as key:
        assert key.holds_all

    # alice holds it no more alone: deleted, and sam still holds it.
    resp = box.post(ivan, "/users/alice/delete", token_from="/users")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert box.web.accounts.get("alice") is None
    assert keystore.granted_lines("sam") == ALL_LINES
    assert sam.get("/users").status_code in (302, 403)  # a supervisor alone: no Users page


def test_the_recovery_key_gives_it(box, people):
    ivan = people["ivan"]
    page = ivan.get("/users").get_data(as_text=True)
    form = page[page.index('id="box-key-sue"') :]
    assert 'name="recovery_key"' in form[: form.index("</form>")]
    resp = _give(box, ivan, "sue", recovery_key=box.recovery_key)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert box.services.keystore.granted_lines("sue") == ALL_LINES
    entry = _grants(box)[0]
    assert (entry.actor, entry.details["granted_with"], entry.details["box_key"]) == (
        "ivan",
        "recovery key",
        True,
    )


def _refused(box, client, name, words, **form):
    before = (_keys(box), len(_grants(box)))
    resp = _give(box, client, name, **form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400, page[-3000:]
    assert words in page, page[page.find("field-error") - 300 :][:1200]
    assert (_keys(box), len(_grants(box))) == before


def test_refused_to_an_account_that_cannot_hold_it(box, people):
    alice, ivan = people["alice"], people["ivan"]
    _refused(
        box,
        alice,
        "audrey",
        "audrey is not a supervisor: only a supervisor&#39;s key slot holds the box&#39;s own key. "
        "Give them the supervisor role first.",
    )
    assert _give(box, alice, "alice").status_code == 403  # nobody gives their own account
    _given(box, "sam")
    _refused(box, alice, "sam", "sam holds the box&#39;s own key already: nothing to give.")
    assert box.post(ivan, "/users/sue/disable", token_from="/users").status_code == 302
    _refused(
        box,
        alice,
        "sue",
        "sue is disabled: enable the account first, then give it the box&#39;s own key.",
    )
    box.services.keystore.remove_slot("sam")
    _refused(
        box,
        alice,
        "sam",
        "sam has no key slot: set them a password (their row, Set password), which makes one, "
        "then give it the box&#39;s own key.",
    )
    assert _give(box, alice, "nobody").status_code == 404


def test_refused_to_a_giver_not_holding_it(box, people):
    ivan = people["ivan"]
    _refused(
        box,
        ivan,
        "sam",
        "Giving the box&#39;s own key needs it unlocked in your session (log in as an account "
        "holding it: alice), or the box&#39;s recovery key typed on the form. Your account holds "
        "no recording key.",
    )
    wrong = format_recovery_key(bytes(16))
    _refused(box, ivan, "sam", "That is not this box&#39;s recovery key.", recovery_key=wrong)
    # An owner added as installer and supervisor of every line the box has: their key opens
    # lines 1 to 4, not the box's own key.
    owner = ("owner", "owner of the shop 7")
    form = {
        "name": owner[0],
        "password": owner[1],
        "roles": ["installer", "supervisor"],
        "lines": [str(n) for n in range(1, LINES + 1)],
    }
    assert box.post(people["alice"], "/users", form, token_from="/users").status_code == 302
    box.chose_own_password(owner[0])
    client = box.client()
    assert box.try_login(client, *owner).status_code == 302
    _refused(
        box,
        client,
        "sam",
        "Giving the box&#39;s own key needs it unlocked in your session (log in as an account "
        "holding it: alice), or the box&#39;s recovery key typed on the form. Your key opens "
        "lines 1, 2, 3 and 4, not the box&#39;s own key.",
    )


def test_the_last_enabled_holder_is_not_deleted(box, people):
    """The other holder disabled: deleting the last enabled one is refused, naming it."""
    ivan = people["ivan"]
    _given(box, "sam")
    assert box.post(ivan, "/users/sam/disable", token_from="/users").status_code == 302
    before = _keys(box)
    resp = box.post(ivan, "/users/alice/delete", token_from="/users")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400, page[-3000:]
    assert "and no other enabled account does (sam holds it, disabled: enable it first)" in page, page[-3000:]
    assert _keys(box) == before
    # Enabled again, alice may go.
    assert box.post(ivan, "/users/sam/enable", token_from="/users").status_code == 302
    assert box.post(ivan, "/users/alice/delete", token_from="/users").status_code == 302


def test_a_holder_given_more_lines_keeps_it(box, people):
    """A line added to an account holding the box's key re-granted its slot that line alone."""
    alice = people["alice"]
    keystore = box.services.keystore
    _given(box, "sam")
    form = {"roles": ["supervisor"], "lines": ["1", "2", "3"], "based_on": _based_on(alice, "sam")}
    resp = box.post(alice, "/users/sam", form, token_from="/users")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert box.web.accounts.get("sam").lines == (1, 2, 3)
    assert keystore.granted_lines("sam") == ALL_LINES


def _given(box, name):
    """``name``'s slot granted the box's key in the key store itself (what the page's giving
    does), so these tests stand on their own."""
    keystore = box.services.keystore
    with keystore.unlock_recovery(box.recovery_key) as key:
        keystore.set_lines(name, ALL_LINES, key)


def _based_on(client, name):
    page = client.get("/users").get_data(as_text=True)
    form = page[page.index('id="roles-%s"' % name) :]
    return re.search(r'name="based_on" value="([^"]*)"', form).group(1)
