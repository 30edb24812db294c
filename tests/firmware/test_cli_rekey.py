"""`linekeeper rekey` and `verify` with a wrong password, a rekey's progress from its start,
and what a rekey stopped before its recovery key was shown says."""

import os

import pytest

from support.cli import run_linekeeper, secret_file

PASSWORD = "correct horse battery 7"  # support.simbox.keyed_sim_box's admin


@pytest.fixture
def box(tmp_path, synth):
    """A keyed box's data directory with four recordings on two lines."""
    from support.simbox import keyed_sim_box

    calls = [
        {"line": 1 + n % 2, "at": 1.0 + 6 * n, "direction": "in", "rings": 1, "talk": 2.0} for n in range(4)
    ]
    sim, data_dir = keyed_sim_box(tmp_path, synth, calls, lines=2)
    sim.start()
    assert sim.board.run()
    sim.stop()
    return data_dir


def _keys(data_dir):
    with open(os.path.join(data_dir, "keys", "keystore.json"), "rb") as f:
        return f.read()


def test_a_wrong_current_password_is_said_to_be_wrong_not_judged_by_the_new_ones_rule(box, tmp_path):
    """`rekey --password-file bad` (a wrong 5-character password) reported a password-rule
    failure: the rule is for the new password. It also said "rekey: opening the key store as
    admin" on stdout before the refusal, as if it had begun."""
    bad = secret_file(tmp_path, "bad", "wrong")
    before = _keys(box)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", bad)
    assert (status, out) == (2, ""), (out, err)
    assert err == (
        "linekeeper: --user admin: no such account or wrong password (the password in %s): "
        "nothing was done\n" % bad
    )
    assert _keys(box) == before


def test_verify_with_a_wrong_password_is_refused_in_one_line_not_counted_as_a_problem(box, tmp_path):
    """It exited 1 with "1 problem(s) found", a wrong password counted as a data problem."""
    bad = secret_file(tmp_path, "bad", "wrong")
    status, out, err = run_linekeeper("verify", "--data-dir", box, "--password-file", bad)
    assert (status, out) == (2, ""), (out, err)
    assert err.splitlines() == [
        "linekeeper: --user admin: no such account or wrong password (the password in %s) "
        "(admin is the user when --user is not given: give --user and your own account's "
        "name): nothing was done" % bad
    ]
    good = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("verify", "--data-dir", box, "--password-file", good)
    assert status == 0 and "problem" not in out + err, (out, err)


def test_verify_with_a_supervisors_password_says_which_recordings_it_authenticated(box, tmp_path):
    """A supervisor's key opens their lines' recordings only; verify checked the others by
    size and SHA-256 and still said "4 recordings (authenticated)"."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    store = KeyStore(box, kdf_params=Argon2Params(memory_kib=8, iterations=1))
    with store.unlock("admin", PASSWORD) as admin:
        store.add_slot("sue", "sue's own password 8", admin, lines=[2])
    sue = secret_file(tmp_path, "sue", "sue's own password 8")
    status, out, err = run_linekeeper("verify", "--data-dir", box, "--user", "sue", "--password-file", sue)
    assert (status, out) == (
        0,
        "4 recordings (2 authenticated, those of line 2 granted to sue; the other 2 checked by "
        "size and SHA-256 only), the audit trail and the deletion log are intact\n",
    ), err
    admin = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("verify", "--data-dir", box, "--password-file", admin)
    assert out.startswith("4 recordings (authenticated), "), (out, err)


def test_rekey_says_each_step_from_the_start(box, tmp_path):
    """It printed nothing for its first ~12 s of a ~14 s run (opening the key store, making
    the new slots), then only the recordings re-wrapped."""
    pw = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 0, (out, err)
    lines = out.splitlines()
    assert lines[:6] == [
        "rekey: the key store opened as admin",
        "rekey: making the new keys and key slots (4 recordings to re-wrap)",
        *("rekey: %d/4 recordings re-wrapped" % n for n in range(1, 5)),
    ]
    assert (
        lines.index("rekey: putting the new keys in force")
        == lines.index("New recovery key (shown once; the old one stops working now):") + 4
    )


def test_a_rekey_stopped_before_its_recovery_key_was_shown_does_not_speak_of_one(box, tmp_path, monkeypatch):
    """Ctrl-C at 2/4, before any recovery key was printed, said "a new recovery key shown
    above is NOT (throw it away)"."""
    from firmware.recording.store import RecordingStore

    real, seen = RecordingStore.set_next_key, []

    def stopped_at_the_second(self, *args):
        seen.append(args)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(RecordingStore, "set_next_key", stopped_at_the_second)
    pw = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 128 + 2, (out, err)
    assert "New recovery key" not in out
    assert "before the new keys were put in force" in err and "no new recovery key was shown" in err, err
    assert "shown above" not in err


class _Terminal:
    """Standard input as a terminal (what is typed: ``input``, patched)."""

    def isatty(self):
        return True


def _recovery_confirmed(data_dir):
    from firmware.datadir import site_flag

    return site_flag(data_dir, "recovery_confirmed")


def _confirmed_box(data_dir):
    from web.db import WebDb
    from web.site import Site

    db = WebDb(os.path.join(data_dir, "web.db"))
    Site(db).set_recovery_confirmed(True)
    db.close()
    assert _recovery_confirmed(data_dir) is True


def test_a_rekeys_new_recovery_key_counts_as_unconfirmed_until_typed_back(box, tmp_path, monkeypatch):
    """The Rekey page has the new recovery key typed back and counts it as never confirmed
    until then; `linekeeper rekey` printed it and left the box saying its recovery key was
    stored (the dashboard and checklist asked nothing), however the new one was kept. Not at
    a terminal (a script), it is counted as unconfirmed; at one, it is typed back."""
    import re

    _confirmed_box(box)
    pw = secret_file(tmp_path, "pw", PASSWORD)
    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 0, (out, err)
    assert _recovery_confirmed(box) is False
    assert "the new recovery key is counted as not confirmed" in out

    # At a terminal: a wrong key is said so and asked again; the right one confirms it.
    _confirmed_box(box)
    typed = []

    def person(prompt=""):
        import sys

        key = re.search(r"^    (\S+)$", sys.stdout.getvalue(), re.M).group(1)  # as shown
        typed.append(prompt)
        return "AAAA-" + key[5:] if len(typed) == 1 else key.lower().replace("-", " ")

    monkeypatch.setattr("sys.stdin", _Terminal())
    monkeypatch.setattr("builtins.input", person)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 0, (out, err)
    assert len(typed) == 2 and "That is not" in out
    assert "the recovery key is confirmed as written down" in out
    assert _recovery_confirmed(box) is True
    # Left for later (Enter): counted as unconfirmed.
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 0 and _recovery_confirmed(box) is False


def test_a_rekeys_type_back_ended_by_ctrl_d_or_ctrl_c_counts_as_later(box, tmp_path, monkeypatch):
    """The rekey has run when its new recovery key is asked for: Ctrl-D at the prompt ended
    the command in a traceback (EOFError), and Ctrl-C in "rekey stopped before it finished:
    part of what it does may be done", both without the rekey's summary, of a rekey that
    ran to its end. Either is taken as Enter (later): counted as not confirmed, said so."""
    pw = secret_file(tmp_path, "pw", PASSWORD)
    for stop in (EOFError, KeyboardInterrupt):
        _confirmed_box(box)

        def person(prompt="", stop=stop):
            raise stop()

        monkeypatch.setattr("sys.stdin", _Terminal())
        monkeypatch.setattr("builtins.input", person)
        status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
        assert status == 0, (stop, out, err)
        assert "the new recovery key is counted as not confirmed" in out
        assert "rekey done:" in out and "stopped" not in err, (out, err)
        assert _recovery_confirmed(box) is False


def test_a_rekey_whose_web_db_cannot_be_written_says_so_and_reports_what_it_did(box, tmp_path, monkeypatch):
    """web.db written after the rekey has run (its new recovery key not confirmed): one that
    cannot be written (locked, a full card) ended the command in "linekeeper: storage error"
    with exit status 2, no summary, as if the rekey had failed, its new keys in force."""
    import sqlite3

    from web.site import Site

    def locked(self, confirmed):
        raise sqlite3.OperationalError("database is locked")

    _confirmed_box(box)
    monkeypatch.setattr(Site, "set_recovery_confirmed", locked)
    pw = secret_file(tmp_path, "pw", PASSWORD)
    status, out, err = run_linekeeper("rekey", "--data-dir", box, "--password-file", pw)
    assert status == 0, (out, err)
    assert "rekey done:" in out
    assert (
        "rekey: whether the new recovery key is written down could not be kept (web.db: database is "
        "locked): make sure it is; a supervisor can make a new one on Settings" in out
    )
