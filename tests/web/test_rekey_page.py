"""Issue 19: rekey from the web, for an installer (or a supervisor) with the box running.

The page hands the admin slot's password to the recorder's rekey (here the
real :class:`firmware.rekey.Rekey` on the box's key store and recordings
store, in a thread, as the recorder would run it) and shows the new recovery
key once, to the person who asked. A wrong password or an unticked
confirmation changes nothing; requests and refusals are audited.
"""

import re
import threading

import pytest

from firmware.errors import WrongPasswordError
from firmware.recording.store import RecordingStore
from firmware.rekey import Rekey
from tests.support.web import ADMIN
from web.rekeyjob import RekeyJob
from web.throttle import FREE_FAILURES
from web.views.rekey import rewrapped


@pytest.fixture
def rekeying(box, people):
    progress = []

    def run(user, password, actor, address=None):
        keystore = box.services.keystore
        store = RecordingStore(box.data_dir)
        shown = []
        try:
            with keystore.unlock(user, password) as admin:

                def audited(action, details):
                    box.services.audit.append(actor, action, None, details, box.services.wall_us())

                summary = Rekey(keystore, store, None, audited, progress.append).run(
                    admin, user, password, shown.append
                )
        finally:
            store.close()
        return {"summary": summary, "recovery_key": shown[0]}

    def audit(actor, action, details):
        box.services.audit.append(actor, action, None, details, box.services.wall_us())

    job = RekeyJob(run, lambda: {"running": False, "progress": list(progress)}, audit)
    box.services.rekey = job
    return job


def _ask(box, client, password, confirm="yes"):
    return box.post(
        client,
        "/rekey",
        {"slot_user": ADMIN[0], "password": password, "confirm": confirm},
        token_from="/rekey",
    )


def test_an_installer_rekeys_and_sees_the_recovery_key_once(box, people, rekeying):
    ivan = people["ivan"]
    page = ivan.get("/rekey").get_data(as_text=True)
    assert 'id="rekey-form"' in page
    old_recovery = box.recovery_key
    resp = _ask(box, ivan, ADMIN[1])
    assert resp.status_code == 302
    rekeying.wait(30)
    # The new keys end every session, the asker's too: logged in again (the recovery
    # key is shown only to someone who proves who they are), it waits on the page.
    resp = ivan.get("/rekey")
    assert resp.status_code == 302 and "rekeyed=1" in resp.location
    login = ivan.get(resp.location).get_data(as_text=True)
    assert 'id="rekeyed"' in login and "new recovery key waits for you" in login
    resp = ivan.post(
        "/login",
        data={
            "name": "ivan",
            "password": box.PASSWORDS["ivan"],
            "next": "/rekey",
            "csrf_token": box.token_of(ivan, "/login"),
        },
    )
    assert resp.status_code == 302 and resp.location.endswith("/rekey")
    page = ivan.get("/rekey").get_data(as_text=True)
    assert 'id="rekey-done"' in page, page
    new_recovery = page.split('id="recovery-key">', 1)[1].split("<", 1)[0]
    assert "0 recordings re-wrapped" in page  # this web-only box has none
    # Once: not again, and never to anyone else.
    assert 'id="recovery-key"' not in ivan.get("/rekey").get_data(as_text=True)
    keystore = box.services.keystore
    with keystore.unlock_recovery(new_recovery) as key:
        assert key.holds_all
    with pytest.raises(WrongPasswordError):
        keystore.unlock_recovery(old_recovery)
    with keystore.unlock(*ADMIN) as key:  # the admin keeps their password
        assert key.holds_all
    rekeys = [e for e in box.services.audit.entries(limit=100, action="rekey", newest_first=False)]
    assert [(e.actor, e.details["phase"]) for e in rekeys] == [
        ("ivan", "requested"),
        ("ivan", "started"),
        ("ivan", "done"),
    ]


def test_a_wrong_password_changes_nothing_and_is_audited(box, people, rekeying):
    ivan = people["ivan"]
    before = box.services.keystore.path.read_bytes()
    assert _ask(box, ivan, "not the admin's password").status_code == 302
    rekeying.wait(30)
    # Audited when refused, whether or not anyone looks at the page again.
    entries = box.services.audit.entries(limit=100, action="rekey")
    refused = [e for e in entries if e.details["phase"] == "refused"]
    assert [(e.actor, e.details["slot"]) for e in refused] == [("ivan", ADMIN[0])]
    page = ivan.get("/rekey").get_data(as_text=True)
    assert 'id="rekey-error"' in page and "Nothing was changed" in page
    assert 'id="recovery-key"' not in page
    assert box.services.keystore.path.read_bytes() == before
    phases = [e.details["phase"] for e in box.services.audit.entries(limit=100, action="rekey")]
    assert "refused" in phases and "started" not in phases


def test_the_confirmation_must_be_ticked(box, people, rekeying):
    sam = people["sam"]  # supervisors may ask too
    before = box.services.keystore.path.read_bytes()
    resp = _ask(box, sam, ADMIN[1], confirm="")
    assert resp.status_code == 400
    assert not rekeying.running
    assert box.services.keystore.path.read_bytes() == before


def test_a_name_no_account_can_have_is_refused_and_never_reaches_the_trail(box, people, rekeying):
    """A 10 000-character "user" was written into two audit entries."""
    before = len(box.services.audit)
    resp = box.post(
        people["ivan"],
        "/rekey",
        {"slot_user": "x" * 10_000, "password": "p", "confirm": "yes"},
        token_from="/rekey",
    )
    assert resp.status_code == 400 and "A user name is 1 to 32 characters" in resp.get_data(as_text=True)
    assert len(box.services.audit) == before and not rekeying.running


def test_a_slot_user_that_is_no_account_is_not_written_to_the_trail(box, people, rekeying):
    """The page wrote the user name as typed into its entries before the password was
    checked: a password typed into the user field (it looks like a user name) stayed in the
    trail for good. As a failed login's, such an entry names no one and says so."""
    typed = "tr0ub4dor-3"  # a password in the wrong field: a user name no account has
    resp = box.post(
        people["ivan"],
        "/rekey",
        {"slot_user": typed, "password": ADMIN[1], "confirm": "yes"},
        token_from="/rekey",
    )
    assert resp.status_code == 302
    rekeying.wait(30)
    entries = box.services.audit.entries(limit=100, action="rekey", newest_first=False)
    assert [(e.details["phase"], e.details["slot"], e.details.get("no_account")) for e in entries] == [
        ("requested", None, True),
        ("refused", None, True),
    ]
    assert typed not in repr([(e.target, e.details) for e in box.services.audit.entries(limit=100)])
    # Refused at once (one is running): that refusal names no one either.
    gate = threading.Event()
    job = RekeyJob(lambda *a: gate.wait(30) and None, lambda: {"running": True, "progress": []})
    box.services.rekey = job
    job.start(ADMIN[0], ADMIN[1], "ivan")
    try:
        resp = box.post(
            people["ivan"],
            "/rekey",
            {"slot_user": typed, "password": ADMIN[1], "confirm": "yes"},
            token_from="/rekey",
        )
        assert resp.status_code == 409
    finally:
        gate.set()
        job.wait(30)
        box.services.rekey = rekeying
    last = box.services.audit.entries(limit=1, action="rekey")[0]
    assert (last.details["phase"], last.details["slot"]) == ("refused", None) and last.details["no_account"]
    # An account's name is kept, as before.
    assert _ask(box, people["ivan"], "not the admin's password").status_code == 302
    rekeying.wait(30)
    assert [e.details["slot"] for e in box.services.audit.entries(limit=2, action="rekey")] == [ADMIN[0]] * 2


def test_without_a_recorder_to_ask_the_page_says_to_use_the_command(box, people):
    page = people["ivan"].get("/rekey").get_data(as_text=True)
    assert 'id="unavailable"' in page and "linekeeper rekey" in page


def test_the_page_shows_how_far_a_running_rekey_has_got(box, people):
    gate = threading.Event()
    lines = [
        "rekey: started by ivan",
        "rekey: 120/1204 recordings re-wrapped",
        "rekey: 602/1204 recordings re-wrapped",
    ]
    job = RekeyJob(lambda *a: gate.wait(30) and None, lambda: {"running": True, "progress": list(lines)})
    box.services.rekey = job
    try:
        page = people["ivan"].get("/rekey").get_data(as_text=True)
        assert 'id="rekey-bar"' not in page  # nothing running yet
        job.start(ADMIN[0], ADMIN[1], "ivan")
        page = people["ivan"].get("/rekey").get_data(as_text=True)
        assert '<progress id="rekey-progress-bar" max="1204" value="602"' in page
        assert "602 of 1204 recordings re-wrapped (50%)" in page
        assert 'http-equiv="refresh"' in page  # it follows the recorder by itself
    finally:
        gate.set()
        job.wait(30)
    assert rewrapped(["rekey: started by ivan"]) is None
    assert rewrapped(lines) == (602, 1204)


def test_one_recording_is_said_in_the_singular(box, people):
    """It read "0 of 1 recordings re-wrapped"."""
    gate = threading.Event()
    lines = ["rekey: started by ivan", "rekey: 0/1 recordings re-wrapped"]
    job = RekeyJob(lambda *a: gate.wait(30) and None, lambda: {"running": True, "progress": list(lines)})
    box.services.rekey = job
    try:
        job.start(ADMIN[0], ADMIN[1], "ivan")
        page = people["ivan"].get("/rekey").get_data(as_text=True)
        assert "0 of 1 recording re-wrapped (0%)" in page
    finally:
        gate.set()
        job.wait(30)


def _refusals(box):
    entries = box.services.audit.entries(limit=100, action="rekey", newest_first=False)
    return [e.details for e in entries if e.details["phase"] == "refused"]


def test_a_rekey_that_ran_clears_its_password_s_throttle_as_a_login_does(box, people, rekeying):
    """Each attempt counted against the slot's account from this address, and a rekey that
    ran never cleared the count: wrong passwords months apart added up to a wait."""
    ivan = people["ivan"]
    for _ in range(FREE_FAILURES["acct"] - 1):
        assert _ask(box, ivan, "not the admin's password").status_code == 302
        rekeying.wait(30)
    assert _ask(box, ivan, ADMIN[1]).status_code == 302  # the last free attempt: it ran
    rekeying.wait(30)
    assert [e.details["phase"] for e in box.services.audit.entries(limit=1, action="rekey")] == ["done"]
    box.login("ivan", client=ivan)  # the new keys ended his session
    # Counted from none again: a wrong password is checked (refused), not throttled.
    assert _ask(box, ivan, "not the admin's password").status_code == 302
    rekeying.wait(30)
    assert len(_refusals(box)) == FREE_FAILURES["acct"]


def test_the_wrong_password_that_throttles_the_page_says_so_and_those_refused_after_are_not_audited(
    box, people, rekeying
):
    """A rekey's refusal never said it began a wait, as a failed login's entry does."""
    ivan = people["ivan"]
    for _ in range(FREE_FAILURES["acct"]):
        assert _ask(box, ivan, "not the admin's password").status_code == 302
        rekeying.wait(30)
    refused = _refusals(box)
    assert [(e.get("locked"), e.get("locked_s")) for e in refused] == [(None, None)] * (
        FREE_FAILURES["acct"] - 1
    ) + [(["acct"], 1)]
    before = len(box.services.audit)
    resp = _ask(box, ivan, ADMIN[1])
    assert resp.status_code == 429 and "Wait 1 s" in resp.get_data(as_text=True)
    assert len(box.services.audit) == before and not rekeying.running


def test_a_refusal_while_a_rekey_runs_says_the_wait_it_began(box, people):
    """Refused at once (one is running), the attempt counted all the same: the refusal that
    began the wait says so, and none is audited while it lasts."""
    gate = threading.Event()
    job = RekeyJob(lambda *a: gate.wait(30) and None, lambda: {"running": True, "progress": []})
    box.services.rekey = job
    ivan = people["ivan"]
    job.start(ADMIN[0], ADMIN[1], "ivan")
    try:
        for _ in range(FREE_FAILURES["acct"]):
            assert _ask(box, ivan, "not the admin's password").status_code == 409
        refused = _refusals(box)
        assert [e["reason"] for e in refused] == ["a rekey is already running"] * FREE_FAILURES["acct"]
        assert refused[-1]["locked"] == ["acct"] and "locked" not in refused[0]
        before = len(box.services.audit)
        assert _ask(box, ivan, "not the admin's password").status_code == 429
        assert len(box.services.audit) == before
    finally:
        gate.set()
        job.wait(30)


def test_a_locked_out_slot_account_is_said_in_the_login_s_words(box, people, rekeying):
    """Someone guessing at the admin's login locked their account out: the Rekey page, whose
    password is the admin slot's, said "Too many attempts. Wait 1800 s". It says, as the
    login does, that the slot's account is locked, for how long, and who can unlock it."""
    box.lock_out(ADMIN[0], "192.0.2.10")  # from the page's own desk (elsewhere, see test_auth)
    ivan = people["ivan"]
    before = len(box.services.audit)
    resp = _ask(box, ivan, ADMIN[1])
    text = resp.get_data(as_text=True)
    assert resp.status_code == 429 and "1800 s" not in text
    said = "The key slot&#39;s account is locked after 10 failed attempts in a row. Try again in 30 minutes"
    assert said in text
    assert "ask an installer to unlock it" in text
    assert len(box.services.audit) == before and not rekeying.running


def test_the_lockout_sentence_does_not_repeat_the_name_typed(box, people, rekeying):
    """The Rekey page's lockout sentence said "NAME's account is locked" with the name as
    typed: a name no account has (a password typed into the user field) was said back in the
    box's own words, as an account's. It says the key slot's account; the field keeps it."""
    typed = "hunter2secret"
    box.lock_out(typed, "192.0.2.10")
    resp = box.post(
        people["ivan"],
        "/rekey",
        {"slot_user": typed, "password": "whatever 7", "confirm": "yes"},
        token_from="/rekey",
    )
    text = resp.get_data(as_text=True)
    assert resp.status_code == 429
    (said,) = re.findall(r'<p class="error" role="alert" id="rekey-error">([^<]*)</p>', text)
    assert said.startswith("The key slot&#39;s account is locked after 10 failed attempts")
    assert typed not in said
    assert 'value="%s"' % typed in text


def test_the_slot_of_a_disabled_account_rekeys_nothing(box, people, rekeying):
    """``linekeeper rekey`` refuses a disabled account's slot; the page ran the rekey with
    it, and showed the new recovery key, which opens every recording, to whoever asked. Its
    right password is told the account is disabled; a wrong one is told only that."""
    ivan = people["ivan"]
    assert box.post(ivan, "/users/%s/disable" % ADMIN[0], token_from="/users").status_code == 302
    before = box.services.keystore.path.read_bytes()
    wrong = _ask(box, ivan, "not the admin's password")
    assert wrong.status_code == 409
    assert "wrong user name or password" in wrong.get_data(as_text=True)
    assert "disabled" not in wrong.get_data(as_text=True)
    right = _ask(box, ivan, ADMIN[1])
    assert right.status_code == 409
    said = right.get_data(as_text=True)
    assert "account %s is disabled (by an installer)" % ADMIN[0] in said and "Nothing was changed" in said
    assert 'id="recovery-key"' not in said
    rekeying.wait(30)
    assert box.services.keystore.path.read_bytes() == before
    refused = [
        e for e in box.services.audit.entries(limit=100, action="rekey") if e.details["phase"] == "refused"
    ]
    assert len(refused) == 2 and "started" not in [
        e.details["phase"] for e in box.services.audit.entries(limit=100, action="rekey")
    ]
    assert "is disabled" in refused[0].details["reason"]


def test_the_slot_user_offered_is_the_account_holding_the_box_s_key(box, people, rekeying):
    """The form came filled in with "admin", an account a box set up in the wizard does not
    have (its holder is the wizard's account, here alice): an owner handing the box over who
    typed only their password was refused "wrong user name or password" once the recorder had
    tried. It offers the account holding the box's own key, as Settings names it, or nothing."""
    field = re.compile(r'<input id="slot_user" name="slot_user" value="([^"]*)"')
    for who in ("alice", "ivan"):
        page = people[who].get("/rekey").get_data(as_text=True)
        assert field.search(page).group(1) == ADMIN[0] == "alice", who
    too_long = {"slot_user": "x" * 40, "password": "p", "confirm": "yes"}
    resp = box.post(people["ivan"], "/rekey", too_long, token_from="/rekey")
    assert resp.status_code == 400 and field.search(resp.get_data(as_text=True)).group(1) == "alice"
    box.services.keystore.remove_slot("alice")  # no account holds it: nothing is offered
    assert field.search(people["ivan"].get("/rekey").get_data(as_text=True)).group(1) == ""


def test_the_new_recovery_key_is_typed_back_as_the_others_are(box, people, rekeying):
    """A new owner rekeyed on taking the box over: the page showed the new recovery key once
    and asked nothing back, while the setup wizard and Settings each have it typed back before
    the box counts it as stored. The checklist and dashboard went on saying it was confirmed,
    of a key nobody may have written down (or never saw, not logging in again). Now the rekey
    leaves it unconfirmed until the asker types it back on the page."""
    alice = people["alice"]
    assert box.web.site.recovery_confirmed
    assert _ask(box, alice, ADMIN[1]).status_code == 302
    rekeying.wait(30)
    assert not box.web.site.recovery_confirmed  # nobody has seen it yet
    alice = box.login("alice")
    page = alice.get("/rekey").get_data(as_text=True)
    new_recovery = page.split('id="recovery-key">', 1)[1].split("<", 1)[0]
    assert 'action="/setup/recovery"' in page and 'name="typed_key"' in page, page
    wrong = {"typed_key": "AAAA-" + new_recovery[5:]}
    resp = box.post(alice, "/setup/recovery", wrong, token_from="/setup/recovery")
    assert resp.status_code == 400 and not box.web.site.recovery_confirmed
    resp = box.post(alice, "/setup/recovery", {"typed_key": new_recovery}, token_from="/setup/recovery")
    assert resp.status_code == 302 and box.web.site.recovery_confirmed
    assert "types it back on the page" in alice.get("/help/rekey").get_data(as_text=True)


def test_a_key_store_that_cannot_be_read_offers_nobody_and_the_page_still_opens(box, people, rekeying):
    """The user offered is read from the key store: one that cannot be read (damaged, or the
    card failing) made the Rekey page a server error (500), where it opened before the form
    was filled in from it. It opens, offering nobody."""
    import os

    field = re.compile(r'<input id="slot_user" name="slot_user" value="([^"]*)"')
    with open(os.path.join(box.data_dir, "keys", "keystore.json"), "w") as f:
        f.write("{ not a key store")
    resp = people["ivan"].get("/rekey")
    assert resp.status_code == 200
    assert field.search(resp.get_data(as_text=True)).group(1) == ""
