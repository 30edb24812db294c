"""A password on the command line tells nothing of which names are accounts, and is
counted and locked out with the web login's.

A name no account had was refused at once, in words of its own (*"ghost has no account on
this box"*), before any password was checked: the command line told anyone which names
were accounts, by its words and its time. An account's password hash was checked without
counting a wrong one, and an account the web UI had locked out after ten wrong passwords
was still tried. Now a name no account has is refused in a wrong password's words after
the same work, and the tries go through web.db's throttle (web/consoleguess.py)."""

import os
import shutil
import time

import pytest

import web.passwords
from firmware.cli import main
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.audit import AuditLog
from web.db import WebDb
from web.throttle import LOCKOUT_AFTER, Throttle, account_keys

from support.cli import box_with_auditor

SLOT_PASSWORD = "correct horse battery 7"
AUDITOR_PASSWORD = "auditor reads trail 42"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A box set up: one call on line 1, a supervisor's key slot and account, and an
    auditor's account (no key slot)."""
    data = box_with_auditor(tmp_path_factory.mktemp("guesses"), CALLS, SLOT_PASSWORD, AUDITOR_PASSWORD)
    # Dated on the machine's clock, as on a real box (the web login's throttle reads it):
    # not the simulated box's.
    os.remove(os.path.join(data, SIM_CLOCK_NAME))
    return data


@pytest.fixture
def data(recorded, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(recorded, path)
    return path


def pw_file(tmp_path, password):
    path = tmp_path / "pw"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return str(path)


def calls(data, user, password, tmp_path, capsys):
    capsys.readouterr()
    status = main(
        ["calls", "--data-dir", data, "--user", user, "--password-file", pw_file(tmp_path, password)]
    )
    out, err = capsys.readouterr()
    return status, out, err


def listed(data):
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        return len(log.entries(limit=100, action="list_viewed"))


def test_a_name_no_account_has_is_refused_as_a_wrong_password_after_the_same_work(
    data, tmp_path, capsys, monkeypatch
):
    checks = []
    check = web.passwords.check_password
    monkeypatch.setattr(web.passwords, "check_password", lambda *a: checks.append(1) or check(*a))
    said = {}
    for who in ("ghost", "ava", "sup"):
        checks.clear()
        status, out, err = calls(data, who, "not the password at all", tmp_path, capsys)
        assert (status, out) == (2, "")
        said[who] = err.replace(who, "NAME")
        # One hash checked for each (besides the key slot's try): a wrong name costs a guesser
        # as long as a wrong password, and tells them as little.
        assert len(checks) == 1, who
    assert said["ghost"] == said["ava"] == said["sup"]
    assert said["ghost"] == (
        "linekeeper: the calls were not printed: --user NAME: no such account or wrong password "
        "(the password in %s)\n" % pw_file(tmp_path, "x")
    )
    assert listed(data) == 0


@pytest.mark.parametrize("who", ["ghost", "sup"])
def test_export_refuses_a_name_no_account_has_as_a_wrong_password_audited_as_before(
    data, tmp_path, capsys, who
):
    capsys.readouterr()
    out = str(tmp_path / "out.wav")
    args = ["export", "1", "--out", out, "--reason", "complaint ref 1234", "--data-dir", data]
    pw = pw_file(tmp_path, "not the password at all")
    assert main(args + ["--user", who, "--password-file", pw]) == 2
    err = capsys.readouterr().err
    assert err == (
        "linekeeper: call 1 not exported: --user %s: no such account or wrong password (the password "
        "in %s): nothing was done\n" % (who, pw)
    )
    with AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head")) as log:
        [entry] = log.entries(limit=5, action="export")
    if who == "ghost":  # the trail says, as before, that no account had the name (not the name)
        assert entry.actor == "anonymous" and entry.details["no_account"] is True
        assert entry.details["refused"] == "--user has no account on this box"
    else:
        assert entry.actor == "sup" and "no_account" not in entry.details
    assert not os.path.exists(out)


def _web(data):
    db = WebDb(os.path.join(data, "web.db"))
    return db, Throttle(db, lambda: time.time_ns() // 1000)


def test_an_account_the_web_locked_out_is_refused_on_the_command_line(data, tmp_path, capsys):
    db, throttle = _web(data)
    for _ in range(LOCKOUT_AFTER):  # ten wrong passwords at the web login, from one address
        throttle.failed(account_keys("ava", "192.0.2.7"))
    db.close()
    status, out, err = calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)
    assert (status, out) == (2, "")
    assert err == (
        "linekeeper: the calls were not printed: --user ava is locked after 10 failed attempts in a "
        "row. Try again in 30 minutes, or ask an installer to unlock it\n"
    )
    assert listed(data) == 0
    db, throttle = _web(data)
    throttle.unlock("ava")  # an installer, on the Users page
    db.close()
    status, out, err = calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)
    assert status == 0, err
    assert listed(data) == 1


@pytest.mark.parametrize("who", ["ava", "ghost"])
def test_wrong_passwords_on_the_command_line_count_towards_the_web_lockout(data, tmp_path, capsys, who):
    """Counted for any name typed, as the web counts them: a lockout tells nothing either."""
    for _ in range(LOCKOUT_AFTER):
        status, _, err = calls(data, who, "not the password at all", tmp_path, capsys)
        assert status == 2 and "no such account or wrong password" in err, err
    status, out, err = calls(data, who, AUDITOR_PASSWORD, tmp_path, capsys)
    assert (status, out) == (2, "")
    assert "--user %s is locked after 10 failed attempts in a row" % who in err, err
    db, throttle = _web(data)
    assert throttle.locked_s(who) > 29 * 60  # the web login is locked out for them too
    db.close()
    assert listed(data) == 0


def test_a_web_lockout_does_not_stop_an_account_at_the_console_it_used_lately(
    data, tmp_path, capsys, monkeypatch
):
    """As at the web login's own desks: ten wrong passwords for ava sent to the web login
    from anywhere on the network locked her out of every command on the box's console
    (export, sar, rekey, hat-replaced among them), and one more every 30 minutes kept her
    out for good. Once her password was right on the command line in the last 30 days, the
    console is a place she uses: the lockout from anywhere does not hold there, and wrong
    passwords there meet the console's own lockout."""
    clock = [time.time_ns() // 1000]
    monkeypatch.setattr("firmware.cli._wall_us", lambda: clock[0])
    assert calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)[0] == 0  # ava, at the console
    db, throttle = _web(data)
    for _ in range(LOCKOUT_AFTER):  # someone else, at the web login
        throttle.failed(account_keys("ava", "192.0.2.7"))
    assert throttle.locked_s("ava") > 29 * 60
    db.close()
    status, out, err = calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)
    assert status == 0, err
    assert listed(data) == 2
    # Guessed at the console itself: locked out there after ten in a row, as from a web address.
    for _ in range(LOCKOUT_AFTER):
        assert calls(data, "ava", "not the password at all", tmp_path, capsys)[0] == 2
    status, out, err = calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)
    assert (status, out) == (2, "")
    assert "--user ava is locked after 10 failed attempts in a row" in err, err
    assert listed(data) == 2
    db, throttle = _web(data)
    throttle.unlock("ava")  # an installer, on the Users page: the console's lockout too
    db.close()
    clock[0] += 2_000_000  # past the console's own back-off (many names tried there), which stays
    assert calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)[0] == 0


def test_a_right_password_clears_the_failures_before_it(data, tmp_path, capsys, monkeypatch):
    clock = [time.time_ns() // 1000]
    monkeypatch.setattr("firmware.cli._wall_us", lambda: clock[0])
    for _ in range(2):
        for _ in range(LOCKOUT_AFTER - 1):
            assert calls(data, "ava", "not the password at all", tmp_path, capsys)[0] == 2
            clock[0] += 60_000_000  # past the console's back-off
        status, _, err = calls(data, "ava", AUDITOR_PASSWORD, tmp_path, capsys)
        assert status == 0, err
    assert listed(data) == 2


@pytest.fixture
def reachable(recorded):
    """A copy of the box where another user than root can reach it, as /var/lib/linekeeper on
    a box (pytest's directories are root's alone)."""
    import tempfile

    top = tempfile.mkdtemp(prefix="lk-guesses-", dir="/tmp")
    os.chmod(top, 0o755)
    shutil.copytree(recorded, os.path.join(top, "data"))
    yield os.path.join(top, "data")
    shutil.rmtree(top)


@pytest.mark.skipif(os.geteuid() != 0, reason="root runs `calls` on the box; the test changes owners")
def test_root_counts_a_failure_as_web_db_s_owner(reachable, tmp_path, capsys, monkeypatch):
    """`calls` runs as root: web.db is written as its owner (the web UI's user), so that the
    files SQLite makes beside it stay theirs to write (a WAL file of root's would stop the
    web UI writing web.db)."""
    import web.consoleguess

    data = reachable
    nobody = 65534
    os.chown(data, nobody, nobody)
    os.chown(os.path.join(data, "web.db"), nobody, nobody)
    opened_as = []
    opens = web.consoleguess.WebDb

    def web_db(path):
        opened_as.append((os.geteuid(), os.getegid()))
        return opens(path)

    monkeypatch.setattr(web.consoleguess, "WebDb", web_db)
    status, _, err = calls(data, "ava", "not the password at all", tmp_path, capsys)
    assert status == 2 and "no such account or wrong password" in err
    assert opened_as == [(nobody, nobody)] and (os.geteuid(), os.getegid()) == (0, 0)
    db, throttle = _web(data)
    assert throttle.counted(["any:ava"])
    db.close()
    assert [
        n for n in os.listdir(data) if n.startswith("web.db") and os.stat(os.path.join(data, n)).st_uid == 0
    ] == []


def test_a_name_no_account_has_is_not_kept_in_clear_before_the_recorder_has_left_the_key(
    data, tmp_path, capsys, monkeypatch
):
    """The box seals (storage.key, wrapped by the MCU vault) and the recorder has not left the
    key since boot: a password typed as --user was kept in web.db's counters in clear. A name
    no account has counts as a failure on the console alone; an account's counts as before."""
    from board.mcu.link import McuLink
    from board.mcu.sim import SimMcu
    from firmware import signing
    from firmware.clock import SimClock
    from firmware.storage.fieldseal import load_field_cipher

    load_field_cipher(data, vault=McuLink(SimMcu(SimClock()).bus))  # no run copy left
    monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(tmp_path / "no-run-dir"))
    typed = "my secret password 99"
    args = ["rekey"]  # run with the box stopped: after a boot, before the recorder started
    pw = pw_file(tmp_path, "not the password at all")
    for who in (typed, "sup"):
        capsys.readouterr()
        assert main(args + ["--data-dir", data, "--user", who, "--password-file", pw]) == 2
        err = capsys.readouterr().err
        assert "no such account or wrong password" in err, err
    db, throttle = _web(data)
    keys = [key for (key,) in db.query("SELECT key FROM throttle")]
    assert throttle.counted(["any:sup", "lockat:sup|console"])
    db.close()
    assert not [key for key in keys if typed in key], keys
    assert keys.count("addr:console") == 1
