"""The central viewer's user file is changed by two processes, the viewer (logins, its look
for accounts unused for 90 days) and ``linekeeper archive`` (add-user, edit-user,
enable-user, disable-user), each a read-modify-write of the whole file. Without a lock
between them the second writer dropped the first one's change: an account added at the
moment the viewer disabled an unused one vanished, or the disabled one came back enabled.
Every change now holds the file's lock (web/archive/users.py, ``_locked``)."""

import fcntl
import json
import os
import threading

import pytest

from firmware.storage.audit import AuditLog
from web.archive import users as users_module
from web.archive.users import ArchiveUsers
from web.inactive import DAY_US
from web.passwords import CHEAP_COST, check_password

PASSWORD = "a long enough pass 42"
NEW = "another long pass 77"
NOW = 1_780_000_000 * 10**6
WAIT_S = 60  # only so that a broken test does not hang: nothing here waits for time to pass


def _raw(users, name):
    with open(users.path, encoding="utf-8") as f:
        return json.load(f)["users"][name]


# Each change of the file: what it does (to an account of its own), and how to see it kept.
CHANGES = {
    "set": (
        lambda u, log: u.set("dan", PASSWORD, ["auditor"]),
        lambda u: u.get("dan") is not None,
    ),
    "set_sites": (
        lambda u, log: u.set_sites("eve", frozenset({"york"})),
        lambda u: u.get("eve").sites == frozenset({"york"}),
    ),
    "enable": (
        lambda u, log: u.enable("old"),
        lambda u: u.get("old").disabled_us is None,
    ),
    "disable": (
        lambda u, log: u.disable("bob"),
        lambda u: u.get("bob").disabled_us is not None,
    ),
    "settle": (
        lambda u, log: u.settle("pen", NEW),
        lambda u: "pending" not in _raw(u, "pen") and u.check("pen", PASSWORD) is None,
    ),
    "require_change": (
        lambda u, log: u.require_change("kim", "rules"),
        lambda u: u.get("kim").must_change == "rules",
    ),
    "begin_change": (
        lambda u, log: u.begin_change("fay", NEW),
        lambda u: "pending" in _raw(u, "fay"),
    ),
    "finish_change": (
        lambda u, log: u.finish_change("pat"),
        lambda u: "pending" not in _raw(u, "pat") and u.check("pat", PASSWORD) is None,
    ),
    "disable_unused": (
        lambda u, log: u.disable_unused(log, NOW),
        lambda u: u.get("stale").disabled_us is not None,
    ),
}


def _partner(change):
    return "set" if change == "set_sites" else "set_sites"


PAIRS = sorted({(c, _partner(c)) for c in CHANGES} | {(_partner(c), c) for c in CHANGES})


@pytest.fixture
def viewer_dir(tmp_path):
    """A viewer directory with an account for each change; ``stale`` unused for 100 days."""
    now = [NOW - 100 * DAY_US]
    users = ArchiveUsers(str(tmp_path), CHEAP_COST, wall_us=lambda: now[0])
    users.set("stale", PASSWORD, ["auditor"])
    now[0] = NOW
    users.set("ann", PASSWORD, ["installer"])
    for name in ("bob", "old", "kim", "fay", "pen", "pat"):
        users.set(name, PASSWORD, ["auditor"])
    users.set("eve", PASSWORD, ["auditor"], frozenset({"leeds"}))
    users.disable("old")
    users.begin_change("pen", NEW)
    users.begin_change("pat", NEW)
    return str(tmp_path)


@pytest.mark.parametrize("first,second", PAIRS)
def test_two_changes_at_once_from_two_processes_are_both_kept(viewer_dir, monkeypatch, first, second):
    """``first`` is paused after reading the file, just before it writes, while ``second``
    (another instance, as another process's) is made; both are in the file after."""
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    a = ArchiveUsers(viewer_dir, CHEAP_COST, wall_us=lambda: NOW)
    b = ArchiveUsers(viewer_dir, CHEAP_COST, wall_us=lambda: NOW)
    paused, release, second_on = threading.Event(), threading.Event(), threading.Event()
    threads, errors = {}, []
    real_write = users_module.atomic_write

    def write(*args, **kwargs):  # the first change waits here, its file read
        if threading.current_thread() is threads["first"] and not paused.is_set():
            paused.set()
            assert release.wait(WAIT_S)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(users_module, "atomic_write", write)
    real_lock = getattr(users_module, "file_lock", None)

    def lock(*args, **kwargs):  # the second change is about to wait for the lock
        if threading.current_thread() is threads["second"]:
            second_on.set()
        return real_lock(*args, **kwargs)

    monkeypatch.setattr(users_module, "file_lock", lock, raising=False)

    def run(users, change, done=None):
        try:
            CHANGES[change][0](users, log)
        except BaseException as exc:  # said by the test's own thread
            errors.append((change, exc))
        finally:
            if done is not None:
                done.set()  # made (no lock) or refused

    threads["first"] = threading.Thread(target=run, args=(a, first))
    threads["second"] = threading.Thread(target=run, args=(b, second, second_on))
    try:
        threads["first"].start()
        assert paused.wait(WAIT_S)
        threads["second"].start()
        assert second_on.wait(WAIT_S)  # made meanwhile, or waiting for the first to be
    finally:
        release.set()
        for t in threads.values():
            if t.ident is not None:
                t.join(WAIT_S)
        log.close()
    assert not any(t.is_alive() for t in threads.values())
    assert errors == []
    after = ArchiveUsers(viewer_dir, CHEAP_COST)
    assert CHANGES[first][1](after), "the first change was lost"
    assert CHANGES[second][1](after), "the second change was lost"
    # Every account is still there: none vanished under another's write.
    assert set(after.names()) >= {"stale", "ann", "bob", "old", "kim", "fay", "pen", "pat", "eve"}


def test_add_user_checks_a_new_password_against_the_last_four_and_writes_it_as_one_locked_step(
    tmp_path, monkeypatch
):
    """``linekeeper archive add-user`` of an existing account with a new password (a
    forgotten one) refuses one of its last four. The check was made before the file's lock
    was taken: a change of the person's own password meanwhile (to that same password, then
    on) made it one of the last four, and add-user put it back in force all the same."""
    from firmware import cli
    from firmware.archive import cli as archive_cli

    viewer_dir = str(tmp_path / "viewer")
    os.makedirs(viewer_dir)
    ArchiveUsers(viewer_dir, CHEAP_COST).set("dan", PASSWORD, ["auditor"])
    wanted, later = "the one add-user sets 5", "dan chose this later 6"
    (tmp_path / "pw").write_text(wanted + "\n")
    os.chmod(tmp_path / "pw", 0o600)
    add = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", str(tmp_path / "org")]
    add += ["--roles", "auditor", "--password-file", str(tmp_path / "pw"), "--name", "dan"]
    dan = ArchiveUsers(viewer_dir, CHEAP_COST)
    main = threading.current_thread()
    waits = threading.Event()
    errors = []
    real_lock = users_module.file_lock

    def lock(path, what):  # dan's change says when it must wait for add-user's lock
        if threading.current_thread() is not main:
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                waits.set()
            finally:
                os.close(fd)
        return real_lock(path, what)

    def dans_changes():
        try:
            for password in (wanted, later):  # the Password page's two steps, twice
                dan.begin_change("dan", password)
                dan.finish_change("dan")
        except BaseException as exc:  # said by the test's own thread
            errors.append(exc)
        finally:
            waits.set()  # made, or refused

    real_change = archive_cli._viewer_change

    def change(*args, **kwargs):  # add-user's entry: dan changes their password now
        thread.start()
        assert waits.wait(WAIT_S)
        return real_change(*args, **kwargs)

    thread = threading.Thread(target=dans_changes)
    monkeypatch.setattr(users_module, "file_lock", lock)
    monkeypatch.setattr(archive_cli, "_viewer_change", change)
    try:
        status = cli.main(add)
    finally:
        if thread.ident is not None:
            thread.join(WAIT_S)
    assert not thread.is_alive() and errors == []
    after = ArchiveUsers(viewer_dir, CHEAP_COST)
    entry = _raw(after, "dan")
    in_force = "wanted" if after.check("dan", wanted) else "later" if after.check("dan", later) else "?"
    before = [h for h in entry["history"] if check_password(wanted, h)]
    assert not (in_force == "wanted" and before), "add-user put one of the last four back in force"
    assert (status, in_force) == (0, "later")  # add-user's came first, then dan's two
