"""The account holding the box's own key keeps it through a password reset.

Its key slot is granted every line there is or will be, whatever lines the account lists. A
password reset gave it a slot for its listed lines only, so no account held the box's key any
more: the reset keeps every line, and so needs the box's recovery key. Another holder (not the
last) kept it only as the last one did: its reset keeps every line when the installer's key (or the
recovery key typed) can give them, else the page says it no longer holds the box's key."""

import re

from firmware.storage.keystore import ALL_LINES

from support.web import LINES


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


def _based_on(client, name="alice"):
    page = client.get("/users").get_data(as_text=True)
    form = page[page.index('id="roles-%s"' % name) :]
    return re.search(r'name="based_on" value="([^"]*)"', form).group(1)


def _given(box, name):
    keystore = box.services.keystore
    with keystore.unlock_recovery(box.recovery_key) as key:
        keystore.set_lines(name, ALL_LINES, key)


def test_a_password_reset_keeps_another_holder_s_box_key(box, people):
    # sam holds the box's key beside alice (not the last holder): alice's session holds it,
    # so the reset keeps it; it gave sam's slot lines 1 and 2 only, silently.
    _given(box, "sam")
    keystore = box.services.keystore
    new = "sam has a new one 7"
    resp = box.post(people["alice"], "/users/sam/password", {"password": new}, token_from="/users")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert keystore.granted_lines("sam") == ALL_LINES
    with keystore.unlock("sam", new) as key:
        assert key.holds_all
    page = people["alice"].get(resp.headers["Location"]).get_data(as_text=True)
    assert "sam has a new password, from their next login.</p>" in page


def test_a_password_reset_that_cannot_keep_the_box_s_key_says_so(box, people):
    _given(box, "sue")
    keystore = box.services.keystore
    # The recovery key typed: the reset could keep it; ivan's session holds no key at all.
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
    resp = box.post(client, "/users/sue/password", {"password": "sue has a new one 7"}, token_from="/users")
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    assert keystore.granted_lines("sue") == (3,)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    words = (
        "sue has a new password, from their next login. They no longer hold the box&#39;s own "
        "key: their key slot opens their listed lines only, as your key could not give more."
    )
    assert words in page, page[:3000]
