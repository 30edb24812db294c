"""The central viewer's accounts unused for 90 days are disabled, as the box's are (PCI DSS
v4.0 8.2.6, web/inactive.py's rule and code): a leaver's viewer account kept opening every
site's calls as long as nobody removed it from users.json. Audited in the viewer's own
trail; the last enabled installer is never disabled; ``linekeeper archive enable-user`` and
``disable-user`` (the viewer has no Users page) change it by hand, audited."""

import json
import os
import re
import time

import pytest

from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.inactive import DAY_US
from web.passwords import CHEAP_COST

PASSWORD = "a long enough pass 42"
# 100 days ago: ``linekeeper archive`` runs on the real clock, the viewer on this test's.
T0 = time.time_ns() // 1000 - 100 * 86_400 * 10**6


class Bucket:
    def keys(self, prefix=""):
        return []

    def get(self, key):
        raise KeyError(key)


@pytest.fixture
def viewer(tmp_path):
    """A viewer whose clock is ``v.now[0]`` (synchronised while ``v.synced[0]``), with
    auditors audrey and alan, installers ivan and irene, all made at T0."""
    now = [T0]
    KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1)).initialise("sup", PASSWORD)
    os.makedirs(tmp_path / "viewer")
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST, wall_us=lambda: now[0])
    for name, role in (
        ("audrey", "auditor"),
        ("alan", "auditor"),
        ("ivan", "installer"),
        ("irene", "installer"),
    ):
        users.set(name, PASSWORD, [role], must_change="")
    synced = [True]
    v = Viewer(str(tmp_path / "viewer"), str(tmp_path / "org"), Bucket(), users=users,
               secure_cookies=False, wall_us=lambda: now[0], clock_synced=lambda: synced[0])  # fmt: skip
    v.now, v.synced = now, synced
    yield v
    v.close()


def _client(v):
    client = create_archive_app(v).test_client()
    page = client.get("/login").get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _login(v, name, client=None):
    client, token = _client(v) if client is None else client
    return client, client.post("/login", data={"user": name, "password": PASSWORD, "csrf_token": token})


def _entries(v, action):
    return [(e.actor, e.target, e.details) for e in v.audit_log.entries(limit=50, action=action)][::-1]


def test_an_account_unused_for_90_days_is_disabled_at_the_login_audited(viewer):
    assert _login(viewer, "audrey")[1].status_code == 302
    viewer.now[0] += 91 * DAY_US
    assert _login(viewer, "alan")[1].status_code == 403  # never logged in: from when it was made
    client, resp = _login(viewer, "audrey")
    assert resp.status_code == 403
    said = resp.get_data(as_text=True)
    assert "This account was disabled after 90 days unused. Ask whoever runs the viewer to enable it" in said
    disabled = {t: (a, d["reason"]) for a, t, d in _entries(viewer, "account_disabled")}
    assert disabled["audrey"] == disabled["alan"] == ("system", "unused for 90 days")
    # Of the installers unused alike, one is kept: the viewer is never locked out.
    assert len([n for n in ("ivan", "irene") if n in disabled]) == 1
    kept = "irene" if "ivan" in disabled else "ivan"
    assert viewer.users.get(kept).disabled_us is None
    assert _login(viewer, kept)[1].status_code == 302
    [(actor, target, details)] = _entries(viewer, "login_failed")[-1:]
    assert (actor, target, details["disabled"]) == ("anonymous", "audrey", "unused for 90 days")
    # A wrong password gets the usual words: the message probes no names.
    client, token = _client(viewer)
    wrong = client.post("/login", data={"user": "audrey", "password": "not it at all 7", "csrf_token": token})
    assert wrong.status_code == 400 and "Wrong user name or password." in wrong.get_data(as_text=True)


def test_enable_user_lets_them_in_again_for_90_more_days_and_disable_user_ends_their_session(viewer, capsys):
    viewer.now[0] += 91 * DAY_US
    viewer.disable_unused(force=True)
    assert viewer.users.get("audrey").disabled_us is not None
    args = ["--viewer-dir", viewer.viewer_dir, "--name", "audrey"]
    from firmware.cli import main

    assert main(["archive", "enable-user"] + args) == 0
    assert main(["archive", "enable-user"] + args) == 2
    assert "audrey is not disabled: nothing to enable" in capsys.readouterr().err
    client, resp = _login(viewer, "audrey")
    assert resp.status_code == 302
    assert client.get("/password").status_code == 200
    assert main(["archive", "disable-user"] + args) == 0
    assert client.get("/password").status_code == 302  # its session is over
    log = AuditLog(os.path.join(viewer.viewer_dir, "audit.db"), os.path.join(viewer.viewer_dir, "audit.head"))
    try:
        by_hand = [(e.actor, e.action, e.details.get("reason")) for e in log.entries(limit=3)][::-1]
    finally:
        log.close()
    assert by_hand[-1] == ("command-line", "account_disabled", "by whoever runs the viewer")
    enabled = [e for e in _entries(viewer, "account_enabled")]
    assert enabled[0][:2] == ("command-line", "audrey") and enabled[0][2]["reason"] == "unused for 90 days"


def test_the_last_enabled_installer_is_not_disabled_by_hand(viewer, capsys):
    from firmware.cli import main

    common = ["--viewer-dir", viewer.viewer_dir, "--name"]
    assert main(["archive", "disable-user"] + common + ["ivan"]) == 0
    before = open(os.path.join(viewer.viewer_dir, "users.json")).read()
    assert main(["archive", "disable-user"] + common + ["irene"]) == 2
    assert "irene is the viewer's last enabled installer" in capsys.readouterr().err
    assert open(os.path.join(viewer.viewer_dir, "users.json")).read() == before


def test_an_account_from_an_earlier_release_counts_from_its_first_check(viewer):
    path = os.path.join(viewer.viewer_dir, "users.json")
    with open(path) as f:
        doc = json.load(f)
    for entry in doc["users"].values():
        del entry["created_us"]  # as an earlier release wrote it
    with open(path, "w") as f:
        json.dump(doc, f)
    viewer.now[0] += 400 * DAY_US
    assert viewer.disable_unused(force=True) == []  # counted from now, not disabled at once
    viewer.now[0] += 91 * DAY_US
    assert "audrey" in viewer.disable_unused(force=True)


def test_a_clock_jump_while_the_clock_is_not_synchronised_disables_nothing(viewer, caplog):
    """A viewer's clock set a year ahead disabled every account but the last installer's."""
    viewer.synced[0] = False
    viewer.now[0] += 365 * DAY_US
    assert viewer.disable_unused(force=True) == []
    assert _login(viewer, "audrey")[1].status_code == 302  # a login's look too
    assert all(u.disabled_us is None for u in viewer.users.all())
    assert _entries(viewer, "account_disabled") == []
    said = "not disabled now: the viewer's clock is not synchronised"
    assert caplog.text.count(said) == 1  # once, not at every look
    viewer.synced[0] = True  # the same time, now known good: disabled as before
    assert sorted(viewer.disable_unused(force=True)) in (["alan", "irene"], ["alan", "ivan"])
    assert [t for _, t, _ in _entries(viewer, "account_disabled")][0] == "alan"


@pytest.fixture
def org(tmp_path, monkeypatch):
    """An organisation key with slots for boss (made at T0, 100 days ago, never logged in)
    and jo, both viewer supervisors, and installer ivan (made now); the host's clock
    synchronised (``linekeeper archive`` asks the kernel). Returns ``(viewer_dir, org_dir,
    password file, command line)``."""
    from firmware import cli, clock

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: True)
    viewer_dir, org_dir = str(tmp_path / "viewer"), str(tmp_path / "org")
    store = KeyStore(org_dir, Argon2Params(memory_kib=8, iterations=1))
    store.initialise("boss", PASSWORD)
    with store.unlock("boss", PASSWORD) as key:
        store.add_slot("jo", PASSWORD, key)
    os.makedirs(viewer_dir)
    ArchiveUsers(viewer_dir, CHEAP_COST, wall_us=lambda: T0).set("boss", PASSWORD, ["supervisor"])
    ArchiveUsers(viewer_dir, CHEAP_COST).set("jo", PASSWORD, ["supervisor"])
    ArchiveUsers(viewer_dir, CHEAP_COST).set("ivan", PASSWORD, ["installer"])
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return viewer_dir, org_dir, str(pw), cli.main


def _index(org, tmp_path, user, viewer_dir=""):
    """``archive index`` as ``user`` (``--viewer-dir``: ``viewer_dir``, the fixture's when
    "", none when None) against a store that is not there: an account whose slot may open
    the key gets as far as the bucket."""
    from tests.support.ports import closed_port

    viewer, org_dir, pw, main = org
    args = ["archive", "index", "--endpoint", "http://127.0.0.1:%d" % closed_port(), "--bucket", "b-1"]
    args += ["--index", str(tmp_path / "i.db"), "--org-dir", org_dir, "--password-file", pw, "--user", user]
    viewer_dir = viewer if viewer_dir == "" else viewer_dir
    return main(args + ([] if viewer_dir is None else ["--viewer-dir", viewer_dir]))


def test_index_opens_no_slot_of_a_disabled_or_90_days_unused_viewer_account(
    org, tmp_path, capsys, monkeypatch
):
    """``archive index --org-dir --user NAME`` opened NAME's slot of the organisation key
    whatever their viewer account's state: it needs --viewer-dir now, and refuses a
    disabled account as the viewer's login does, one 90 days unused disabled first
    (audited in the viewer's trail); nothing is indexed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    viewer_dir = org[0]
    assert _index(org, tmp_path, "jo") == 2
    assert "cannot index the bucket b-1" in capsys.readouterr().err  # jo's slot opened
    assert _index(org, tmp_path, "boss", str(tmp_path / "nowhere")) == 2
    assert "--viewer-dir %s is not a directory" % (tmp_path / "nowhere") in capsys.readouterr().err
    assert _index(org, tmp_path, "boss") == 2
    err = capsys.readouterr().err
    assert "boss's viewer account is disabled (unused for 90 days): give another --user" in err, err
    assert not os.path.exists(tmp_path / "i.db")
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    try:
        [entry] = log.entries(limit=5, action="account_disabled")
    finally:
        log.close()
    assert (entry.actor, entry.target, entry.details["reason"]) == ("system", "boss", "unused for 90 days")
    ArchiveUsers(viewer_dir).disable("jo")
    assert _index(org, tmp_path, "jo") == 2
    assert "jo's viewer account is disabled (by whoever runs the viewer)" in capsys.readouterr().err
    # Without the viewer's directory its accounts cannot be asked: refused.
    assert _index(org, tmp_path, "jo", None) == 2
    assert "--org-dir needs --viewer-dir" in capsys.readouterr().err


def _index_into(org, index, user):
    """``archive index --org-dir`` as ``user`` with no ``--viewer-dir``, writing ``index``,
    against a store that is not there (an account whose slot may open the key gets as far
    as the bucket)."""
    from tests.support.ports import closed_port

    _, org_dir, pw, main = org
    args = ["archive", "index", "--endpoint", "http://127.0.0.1:%d" % closed_port(), "--bucket", "b-1"]
    return main(args + ["--index", index, "--org-dir", org_dir, "--password-file", pw, "--user", user])


def test_index_into_the_viewers_own_directory_needs_no_viewer_dir(org, tmp_path, capsys, monkeypatch):
    """``archive index --org-dir`` refused to run without --viewer-dir even when --index was
    the viewer's own index, in the viewer's directory beside its users.json. That folder
    is the viewer's directory: its accounts are asked there (boss, 90 days unused, is
    disabled, audited, and opens nothing; jo's slot opens). An index anywhere else still
    needs --viewer-dir, named with why and where it was looked for; nothing is read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    viewer_dir = org[0]
    index = os.path.join(viewer_dir, "index.db")
    assert _index_into(org, index, "boss") == 2
    err = capsys.readouterr().err
    assert "the viewer's accounts are %s's (the folder of --index)" % viewer_dir in err, err
    assert "boss's viewer account is disabled (unused for 90 days): give another --user" in err, err
    assert ArchiveUsers(viewer_dir).get("boss").disabled_why == "unused for 90 days"
    assert not os.path.exists(index)
    assert _index_into(org, index, "jo") == 2
    assert "cannot index the bucket b-1" in capsys.readouterr().err  # jo's slot opened
    # Elsewhere, with no viewer's users.json beside it: refused, naming the option and why.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _index_into(org, str(elsewhere / "index.db"), "jo") == 2
    err = capsys.readouterr().err
    said = (
        "--org-dir needs --viewer-dir (the central viewer's directory): its accounts say whether "
        "jo's slot may open the key, and the folder of --index, %s, holds no viewer's users.json "
        "to take it from; nothing was read or written" % elsewhere
    )
    assert said in err, err
    assert "cannot index the bucket" not in err and os.listdir(elsewhere) == []


def test_a_viewer_account_90_days_unused_is_no_grantor(org, tmp_path, capsys):
    """add-user --grantor refused a grantor disabled already, but one 90 days unused gave a
    slot until the viewer's next look: disabled first now, audited, and refused."""
    viewer_dir, org_dir, pw, main = org
    (tmp_path / "new").write_text("a new starters pass 12\n")
    (tmp_path / "new").chmod(0o600)
    args = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--roles", "supervisor"]
    args += ["--name", "amy", "--password-file", str(tmp_path / "new")]
    before = KeyStore(org_dir).slots()
    assert main(args + ["--grantor", "boss", "--grantor-password-file", pw]) == 2
    err = capsys.readouterr().err
    assert "grantor boss's viewer account is disabled (unused for 90 days): give another supervisor" in err
    assert KeyStore(org_dir).slots() == before and ArchiveUsers(viewer_dir).get("amy") is None
    assert ArchiveUsers(viewer_dir).get("boss").disabled_why == "unused for 90 days"
    assert main(args + ["--grantor", "jo", "--grantor-password-file", pw]) == 0


def test_the_command_line_disables_no_viewer_account_by_a_clock_not_synchronised(org, tmp_path, monkeypatch):
    """The viewer's guard: its host's clock not synchronised, nothing is disabled."""
    from firmware import clock

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: False)
    viewer_dir, org_dir, pw, main = org
    (tmp_path / "new").write_text("a new starters pass 12\n")
    (tmp_path / "new").chmod(0o600)
    args = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--roles", "supervisor"]
    args += ["--name", "amy", "--password-file", str(tmp_path / "new")]
    assert main(args + ["--grantor", "boss", "--grantor-password-file", pw]) == 0
    assert all(u.disabled_us is None for u in ArchiveUsers(viewer_dir).all())


def _add_amy(org, tmp_path, grantor):
    """``archive add-user`` of supervisor amy with ``grantor``'s slot (their password is the
    fixture's); returns the exit status."""
    viewer_dir, org_dir, pw, main = org
    (tmp_path / "new").write_text("a new starters pass 12\n")
    (tmp_path / "new").chmod(0o600)
    args = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--roles", "supervisor"]
    args += ["--name", "amy", "--password-file", str(tmp_path / "new")]
    return main(args + ["--grantor", grantor, "--grantor-password-file", pw])


def _ghost(org):
    """A slot of the organisation key for ghost, with the fixture's password, and no viewer
    account (a leaver's taken out of users.json, or init-org's before add-user)."""
    store = KeyStore(org[1], Argon2Params(memory_kib=8, iterations=1))
    with store.unlock("jo", PASSWORD) as key:
        store.add_slot("ghost", PASSWORD, key)


def test_a_slot_with_no_viewer_account_opens_nothing_at_the_command_line(org, tmp_path, capsys, monkeypatch):
    """A slot whose owner had no viewer account (never made, or taken out of users.json)
    was "as before": its password gave new supervisors slots (add-user --grantor) and
    opened every site's sealed records (index --org-dir --user), the viewer's checks
    (disabled, 90 days unused, not a supervisor) never asked. Refused now, naming the
    account and the two ways out; nothing made, nothing indexed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    viewer_dir, org_dir = org[0], org[1]
    _ghost(org)
    before = KeyStore(org_dir).slots()
    assert _add_amy(org, tmp_path, "ghost") == 2
    err = capsys.readouterr().err
    said = "grantor ghost has a slot of the organisation key but no account in %s's users.json" % viewer_dir
    assert said in err, err
    assert "give another supervisor" in err and "remove-slot --name ghost" in err, err
    assert KeyStore(org_dir).slots() == before and ArchiveUsers(viewer_dir).get("amy") is None
    assert _index(org, tmp_path, "ghost") == 2
    err = capsys.readouterr().err
    assert "ghost has a slot of the organisation key but no account in" in err, err
    assert "give another --user" in err and "cannot index the bucket" not in err, err
    assert not os.path.exists(tmp_path / "i.db")
    # Its owner's account made with the slot's own password (no grantor): it opens again.
    (tmp_path / "ghostpw").write_text(PASSWORD + "\n")
    (tmp_path / "ghostpw").chmod(0o600)
    add = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--roles", "supervisor"]
    assert org[3](add + ["--name", "ghost", "--password-file", str(tmp_path / "ghostpw")]) == 0
    capsys.readouterr()
    assert _index(org, tmp_path, "ghost") == 2
    assert "cannot index the bucket b-1" in capsys.readouterr().err  # ghost's slot opened


def test_a_slot_of_a_viewer_account_not_a_supervisors_opens_nothing(org, tmp_path, capsys, monkeypatch):
    """A supervisor made an auditor kept their slot, and its password still opened the key
    at the command line, as the viewer's login no longer would. Refused, naming the roles."""
    viewer_dir = org[0]
    _ghost(org)
    ArchiveUsers(viewer_dir, CHEAP_COST).set("ghost", PASSWORD, ["auditor"])
    assert _add_amy(org, tmp_path, "ghost") == 2
    err = capsys.readouterr().err
    assert "grantor ghost's viewer account is not a supervisor's (auditor)" in err, err
    assert ArchiveUsers(viewer_dir).get("amy") is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    assert _index(org, tmp_path, "ghost") == 2
    err = capsys.readouterr().err
    assert "ghost's viewer account is not a supervisor's (auditor)" in err, err
    assert "cannot index the bucket" not in err


def test_remove_slot_takes_a_leavers_slot_out_of_the_organisation_key(org, tmp_path, capsys):
    """A slot is removed at the command line, audited first in the viewer's trail; an
    enabled supervisor's slot, a name with no slot and the last slot are refused by name
    with nothing changed."""
    viewer_dir, org_dir, pw, main = org
    _ghost(org)
    remove = ["archive", "remove-slot", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--name"]
    assert main(remove + ["jo"]) == 2
    assert "jo's viewer account is an enabled supervisor's" in capsys.readouterr().err
    assert main(remove + ["nobody"]) == 2
    assert "nobody has no slot of the organisation key in %s" % org_dir in capsys.readouterr().err
    assert KeyStore(org_dir).slots() == ["boss", "ghost", "jo"]
    assert main(remove + ["ghost"]) == 0
    assert KeyStore(org_dir).slots() == ["boss", "jo"]
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    try:
        [entry] = log.entries(limit=5, action="key_slot_remove")
    finally:
        log.close()
    assert (entry.actor, entry.target, entry.details) == ("command-line", "ghost", {"account": "none"})
    from firmware.errors import WrongPasswordError

    with pytest.raises(WrongPasswordError):
        KeyStore(org_dir).unlock("ghost", PASSWORD)
    # A disabled supervisor's slot may go; the last one may not.
    ArchiveUsers(viewer_dir).disable("jo")
    assert main(remove + ["jo"]) == 0
    ArchiveUsers(viewer_dir).disable("boss")
    assert main(remove + ["boss"]) == 2
    assert "boss's is the organisation key's last slot" in capsys.readouterr().err
    assert KeyStore(org_dir).slots() == ["boss"]


def test_a_slot_whose_password_predates_the_viewers_rules_gets_its_account(tmp_path, capsys, monkeypatch):
    """init-org takes a password the viewer's rules refuse (no digit here). Its owner's
    slot opens nothing at the command line without an account now, and add-user refused
    that password, so an organisation key from before had no way back: the slot's own
    password makes the account, marked to be changed at the first login (as the viewer's
    login takes such a password once). Another password breaking the rules is refused."""
    from firmware import cli, clock

    monkeypatch.setattr(clock, "kernel_clock_synchronised", lambda: True)
    viewer_dir, org_dir = str(tmp_path / "viewer"), str(tmp_path / "org")
    old = "organisation archive pass"
    KeyStore(org_dir, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", old)
    for name, text in (("old", old), ("weak", "another pass without digits")):
        (tmp_path / name).write_text(text + "\n")
        (tmp_path / name).chmod(0o600)
    add = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org_dir, "--name", "admin"]
    add += ["--roles", "supervisor", "--password-file"]
    assert cli.main(add + [str(tmp_path / "weak")]) == 2
    assert "The password needs digits as well as letters" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(viewer_dir, "users.json"))
    assert cli.main(add + [str(tmp_path / "old")]) == 0
    users = ArchiveUsers(viewer_dir)
    assert users.check("admin", old).must_change == "rules"
    assert users.get("admin").has("supervisor")
