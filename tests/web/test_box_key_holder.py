"""An owner given every line of the box is told why a new recovery key and a key store backup
are not theirs to make, and who can.

An installer handing a two-line box over added the owner as an installer and supervisor of
lines 1 and 2, every line the box has. Asked for a new recovery key, the page said "A new
recovery key needs a recording key that opens every line.", which their key did, to their
eyes; the backup's note said "your session holds no such key". Both need the box's own key
(granted for every line there is or will be), held by the setup wizard's account: the page
now says so, names who holds it, and which lines theirs opens."""

from support.web import LINES

OWNER = ("owner", "owner of the shop 7")


def _owner(box, people):
    alice = people["alice"]
    resp = alice.post(
        "/users",
        data={
            "name": OWNER[0],
            "password": OWNER[1],
            "roles": ["installer", "supervisor"],
            "lines": [str(n) for n in range(1, LINES + 1)],
            "csrf_token": box.token_of(alice, "/users"),
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    box.chose_own_password(OWNER[0])
    client = box.client()
    assert box.try_login(client, *OWNER).status_code == 302
    return client


def test_an_owner_granted_every_line_is_told_who_holds_the_box_s_key(box, people):
    owner = _owner(box, people)
    before = box.services.keystore.copy_bytes()[0]
    resp = box.post(owner, "/settings/recovery-key", token_from="/settings")
    page = resp.get_data(as_text=True)
    assert (
        "A new recovery key needs the box&#39;s own key, which opens every line there is or will be: "
        "yours opens lines 1, 2, 3 and 4, granted to you. alice holds it: log in as alice to make one."
    ) in page, page[page.find('id="error-recovery"') - 200 :][:800]
    assert "needs a recording key that opens every line" not in page
    assert box.services.keystore.copy_bytes()[0] == before

    page = owner.get("/settings").get_data(as_text=True)
    assert "your session holds no such key" not in page
    assert (
        "Your key opens lines 1, 2, 3 and 4, granted to you, not the box&#39;s own key: alice holds it."
    ) in page

    # An account holding it that is disabled is named so; none at all is said, not "log in".
    resp = box.post(people["ivan"], "/users/alice/disable", token_from="/users")
    assert resp.status_code == 302
    page = box.post(owner, "/settings/recovery-key", token_from="/settings").get_data(as_text=True)
    assert "alice holds it, disabled: an installer enables it (Users), then log in as alice" in page
    box.services.keystore.remove_slot("alice")
    page = box.post(owner, "/settings/recovery-key", token_from="/settings").get_data(as_text=True)
    assert "No account holds it any more, so the recovery key in use cannot be replaced." in page
    page = owner.get("/settings").get_data(as_text=True)
    assert "not the box&#39;s own key; no account holds it any more." in page


def test_a_new_recovery_key_is_not_said_to_stop_the_old_one_opening_a_copy(box, people):
    """An owner selling the box made a new recovery key on Settings, which said the old one
    "stops working". It stops opening this key store only: a copy made before (a key store
    backup, a copy of the card) still opens with it, and gives the same admin key, so every
    recording, the buyer's to come included. The page says so and sends a handover to the
    Rekey page, whose new keys no old copy opens."""
    import re

    from firmware.storage.keystore import open_copy

    old_key, old_copy = box.recovery_key, box.services.keystore.copy_bytes()[0]
    alice = people["alice"]
    assert box.post(alice, "/settings/recovery-key", token_from="/settings").headers["Location"] == (
        "/setup/recovery"
    )
    new_key = re.search(r'id="recovery-key">([^<]+)<', alice.get("/setup/recovery").get_data(as_text=True))
    assert new_key.group(1) != old_key
    box.post(alice, "/setup/recovery", {"typed_key": new_key.group(1)}, token_from="/setup/recovery")
    assert box.web.site.recovery_confirmed
    key, public = open_copy(old_copy, recovery_key=old_key)
    key.forget()
    assert public == box.services.keystore.copy_bytes()[1]  # the key every line's key is wrapped to

    page = alice.get("/settings").get_data(as_text=True)
    said = re.search(r'<p id="recovery-words">(.*?)</p>', page, re.S)
    assert said, page[page.find("<h2>Recovery key") :][:600]
    said = " ".join(said.group(1).split())
    assert "stops working" not in said
    assert "A copy of the key store made before (a backup, or a copy of the memory card) still opens" in said
    assert "rekey instead (Rekey page)" in said
