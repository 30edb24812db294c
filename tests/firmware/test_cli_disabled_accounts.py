"""A web UI account disabled (unused for 90 days, or by an installer: web/inactive.py) is
refused by the command line too: its key slot's password opens nothing there, and the
refusal is audited where the command's refusals are (export, sar, audit-export,
breach-scope). The command line read web.db's accounts for their roles and lines alone, so
a leaver's account refused at the web login still exported recordings and released
subject access bundles with `linekeeper`. An account unused for 90 days is disabled there
first, by the web UI's rule, clock guard and code: the web UI may not have made its round."""

import json
import os

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import BY_HAND, Accounts
from web.db import WebDb
from web.inactive import UNUSED_REASON
from web.passwords import CHEAP_COST

PASSWORD = "correct horse battery 7"
CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 2, "talk": 4.0}
]
SAID = "account admin is disabled (%s): an installer can enable it on the Users page"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A box with one recorded call on line 1, and admin's key slot."""
    root = tmp_path_factory.mktemp("disabled")
    data = str(root / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    (root / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": CALLS})
    )
    assert cli.main(["sim", str(root / "s.json"), "--data-dir", data]) == 0
    return root, data


@pytest.fixture
def box(made, tmp_path):
    """A copy of the box whose web.db has admin (every role, line 1) and ivan (installer);
    ``disable(name, why)`` disables one."""
    import shutil

    root, data = made
    path = str(tmp_path / "data")
    shutil.copytree(data, path)
    # Days counted on the machine's clock, as on a real box: not the simulated box's.
    os.remove(os.path.join(path, SIM_CLOCK_NAME))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    web_db = WebDb(os.path.join(path, "web.db"))
    accounts = Accounts(web_db, lambda: 1_772_000_000_000_000, cost=CHEAP_COST)
    with web_db.tx() as conn:
        accounts.create(conn, "admin", "unused web password 7", ["installer", "supervisor", "auditor"], [1])
        accounts.create(conn, "ivan", "unused web password 7", ["installer"], [])

    def disable(name, why):
        with web_db.tx() as conn:
            accounts.disable(conn, name, why)

    yield path, str(pw), disable
    web_db.close()


def refusals(path, action):
    with open_audit(path) as audit:
        return [(e.actor, e.details.get("refused")) for e in audit.entries(limit=50, action=action)][::-1]


def test_an_export_by_a_disabled_account_is_refused_and_audited(box, tmp_path, capsys):
    path, pw, disable = box
    out = tmp_path / "call.wav"
    args = ["export", "1", "--out", str(out), "--data-dir", path, "--password-file", pw]
    args += ["--reason", "complaint ref 1234"]
    assert cli.main(args) == 0  # enabled: exported
    os.remove(out)  # (an export never replaces a file, its manifest neither)
    os.remove(str(out) + ".manifest.json")
    disable("admin", UNUSED_REASON)
    assert cli.main(args) != 0
    assert SAID % "unused for 90 days" in capsys.readouterr().err
    assert not out.exists()
    assert refusals(path, "export")[-1] == ("admin", SAID % "unused for 90 days")


def test_a_subject_access_release_by_a_disabled_account_is_refused_and_audited(box, tmp_path, capsys):
    path, pw, disable = box
    disable("admin", BY_HAND)
    out = tmp_path / "smith.zip"
    args = ["sar", "--data-dir", path, "--password-file", pw, "--number", "01632960123", "--out", str(out)]
    args += ["--requester", "Ms Smith", "--recipient", "Ms Smith", "--reason", "subject access request"]
    assert cli.main(args + ["--letter"]) != 0
    assert SAID % "by an installer" in capsys.readouterr().err
    assert not out.exists()
    with open_audit(path) as audit:
        [entry] = audit.entries(limit=5, action="disclosure_refused")
    assert entry.actor == "admin" and SAID % "by an installer" in json.dumps(entry.details)


@pytest.mark.parametrize(
    "command",
    [
        ["audit-export", "{out}"],
        ["breach-scope", "sam", "{out}", "--from", "2026-03-01", "--to", "2026-03-31"],
    ],
)
def test_an_auditors_copy_by_a_disabled_account_is_refused_and_audited(box, tmp_path, capsys, command):
    path, pw, disable = box
    disable("admin", UNUSED_REASON)
    out = tmp_path / "out.csv"
    args = [a.format(out=out) for a in command] + ["--data-dir", path, "--password-file", pw]
    assert cli.main(args) != 0
    assert SAID % "unused for 90 days" in capsys.readouterr().err
    assert not out.exists()
    assert refusals(path, command[0].replace("-", "_"))[-1] == ("admin", SAID % "unused for 90 days")


def test_a_disabled_installer_moves_no_keys_to_a_new_hat(box, capsys):
    path, pw, disable = box
    disable("admin", BY_HAND)
    before = sorted(os.listdir(path))
    assert cli.main(["hat-replaced", "--data-dir", path, "--password-file", pw]) != 0
    assert SAID % "by an installer" + ": nothing was changed" in capsys.readouterr().err
    assert sorted(os.listdir(path)) == before


def test_a_disabled_accounts_key_slot_neither_rekeys_nor_restores_the_key_store(box, tmp_path, capsys):
    path, pw, disable = box
    disable("admin", UNUSED_REASON)
    keys = os.path.join(path, "keys", "keystore.json")
    with open(keys, "rb") as f:
        before = f.read()
    assert cli.main(["rekey", "--data-dir", path, "--password-file", pw]) != 0
    assert SAID % "unused for 90 days" in capsys.readouterr().err
    with open(keys, "rb") as f:
        assert f.read() == before
    backup = tmp_path / "keys.backup"
    assert cli.main(["keystore", "backup", str(backup), "--data-dir", path]) == 0
    os.remove(keys)
    assert cli.main(["keystore", "restore", str(backup), "--data-dir", path, "--password-file", pw]) != 0
    assert SAID % "unused for 90 days" + " — nothing was changed" in capsys.readouterr().err
    assert not os.path.exists(keys)


def test_a_disabled_account_is_still_named_by_its_refusals(box, tmp_path):
    """The entry names the account typed (it is one), as a failed login's does."""
    path, pw, disable = box
    disable("admin", BY_HAND)
    assert cli._typed_user(path, "admin") == {"actor": "admin"}


# admin's and ivan's accounts are made at this time (the box fixture's clock).
MADE_US = 1_772_000_000_000_000


def _guard(path, **state):
    """Set the retention clock guard's state in calls.db, as the recorder's sweep leaves it
    (``last_passed_wall_us``, ``suspended``)."""
    import sqlite3

    db = sqlite3.connect(os.path.join(path, "calls.db"))
    with db:
        for key, value in state.items():
            db.execute("INSERT OR REPLACE INTO retention_state (key, value) VALUES (?, ?)", (key, str(value)))
    db.close()


def _export(path, pw, tmp_path):
    out = tmp_path / "call.wav"
    for made in (out, tmp_path / "call.wav.manifest.json"):  # (an export never replaces a file)
        if made.exists():
            os.remove(made)
    args = ["export", "1", "--out", str(out), "--data-dir", path, "--password-file", pw]
    return cli.main(args + ["--reason", "complaint ref 1234"]), out


def _disabled(path):
    db = WebDb(os.path.join(path, "web.db"))
    try:
        return {u.name: u.disabled_why for u in Accounts(db, lambda: 0).all() if u.disabled_us is not None}
    finally:
        db.close()


def test_an_account_unused_for_90_days_is_disabled_by_the_command_line_audited(
    box, tmp_path, capsys, monkeypatch
):
    """The command line refused only the accounts web.db said were disabled: while the web
    UI was not running (or had not swept yet) an account 91 days unused still opened its
    key slot there. It is disabled now, by the web UI's rule and code, audited as the web
    UI audits it, and refused; the last enabled installer is kept, as there."""
    from firmware import clock
    from web.inactive import DAY_US

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: True)
    path, pw, _ = box
    _guard(path, last_passed_wall_us=MADE_US + 89 * DAY_US)
    assert _export(path, pw, tmp_path)[0] == 0  # 89 days: opened
    _guard(path, last_passed_wall_us=MADE_US + 91 * DAY_US)
    code, out = _export(path, pw, tmp_path)
    assert code != 0 and not out.exists()
    assert SAID % UNUSED_REASON in capsys.readouterr().err
    assert _disabled(path) == {"admin": UNUSED_REASON}  # ivan, the last enabled installer, is kept
    with open_audit(path) as audit:
        [entry] = audit.entries(limit=5, action="account_disabled")
    assert (entry.actor, entry.target) == ("system", "admin")
    assert entry.details == {"reason": UNUSED_REASON, "unused_days": 91}
    assert refusals(path, "export")[-1] == ("admin", SAID % UNUSED_REASON)


@pytest.mark.parametrize("same_boot", [True, False])
def test_while_the_recorder_is_stopped_the_days_run_on_by_the_boot_clock(
    box, tmp_path, capsys, monkeypatch, same_boot
):
    """The days were counted to the last sweep that passed the clock guard, and while the
    recorder was stopped none passed: an account stayed enabled past its 90 days for as
    long as it was down. They run on from that sweep by the kernel's boot clock, which no
    step of the wall clock moves (kept with the sweep); after a reboot it says nothing, and
    the days stop at the sweep, as before."""
    from firmware import clock
    from web.inactive import DAY_US

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: True)
    boot_at_sweep_us = 3 * DAY_US
    monkeypatch.setattr(
        clock, "boot_reading", lambda: ("boot-1" if same_boot else "boot-2", boot_at_sweep_us + 6 * DAY_US)
    )
    path, pw, _ = box
    swept_us = MADE_US + 85 * DAY_US
    _guard(path, last_passed_wall_us=swept_us, last_passed_boot="boot-1 %d %d" % (boot_at_sweep_us, swept_us))
    code, out = _export(path, pw, tmp_path)
    if same_boot:  # 85 days at the sweep, 6 days since by the boot clock: 91
        assert code != 0 and not out.exists()
        assert SAID % UNUSED_REASON in capsys.readouterr().err
        assert _disabled(path) == {"admin": UNUSED_REASON}
        with open_audit(path) as audit:
            [entry] = audit.entries(limit=5, action="account_disabled")
        assert entry.details == {"reason": UNUSED_REASON, "unused_days": 91}
    else:
        assert code == 0 and _disabled(path) == {}


@pytest.mark.parametrize(
    "synced, state",
    [
        (False, {}),  # the kernel says the clock is not synchronised
        (True, {"suspended": "the clock jumped forward by 300 days since the last sweep"}),
        (True, {"last_passed_wall_us": None}),  # no retention sweep has checked the clock
    ],
)
def test_the_command_line_disables_nothing_by_a_clock_the_web_ui_would_not(
    box, tmp_path, monkeypatch, synced, state
):
    """The web UI's clock guard (web.inactive.held_by): nothing is disabled by a clock not
    synchronised, by one whose jump the retention guard holds, or before a sweep passed it."""
    from firmware import clock
    from web.inactive import DAY_US

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: synced)
    path, pw, _ = box
    if "last_passed_wall_us" not in state:
        _guard(path, last_passed_wall_us=MADE_US + 200 * DAY_US)
    _guard(path, **{k: v for k, v in state.items() if v is not None})
    assert _export(path, pw, tmp_path)[0] == 0
    assert _disabled(path) == {}


def test_an_account_unused_for_90_days_rekeys_nothing(box, capsys, monkeypatch):
    """rekey (and the other commands that open the slot alone, keystore restore) are
    refused too, the account disabled first."""
    from firmware import clock
    from web.inactive import DAY_US

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: True)
    path, pw, _ = box
    _guard(path, last_passed_wall_us=MADE_US + 120 * DAY_US)
    keys = os.path.join(path, "keys", "keystore.json")
    with open(keys, "rb") as f:
        before = f.read()
    assert cli.main(["rekey", "--data-dir", path, "--password-file", pw]) != 0
    assert SAID % UNUSED_REASON in capsys.readouterr().err
    with open(keys, "rb") as f:
        assert f.read() == before
    assert _disabled(path) == {"admin": UNUSED_REASON}
