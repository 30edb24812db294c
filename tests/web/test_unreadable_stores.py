"""Each page a supervisor, auditor or installer uses, with each database it reads damaged
while the web UI runs (web/unreadable.py): a page naming the store, not a 500."""

import contextlib
import errno
import html
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

# (who, page) and the databases each reads (besides web.db and alarms.db, which all do).
PAGES = {
    ("ivan", "/"): (),
    ("sam", "/calls"): ("calls.db",),
    ("sam", "/calls/1"): ("calls.db", "audit.db"),
    ("audrey", "/audit"): ("audit.db",),
    ("audrey", "/retention/deletions"): ("calls.db",),
    ("audrey", "/alarms"): (),
    ("audrey", "/reports"): ("calls.db", "audit.db"),
    ("audrey", "/disclosures"): ("disclosures.db",),
    ("audrey", "/requests"): ("rights.db",),
    ("audrey", "/documents/checklist"): ("calls.db",),
    ("ivan", "/settings"): ("audit.db",),
}
CASES = [
    pytest.param(who, url, store, id="%s-%s" % (url, store))
    for (who, url), stores in PAGES.items()
    for store in ("web.db", "alarms.db") + stores
]
# The box's alarm for a store, where it has one.
ALARMS = {"audit.db": "audit_unverified", "rights.db": "request_check_failed"}
SUFFIXES = ("", "-wal")


def damage(path):
    """Overwrite the database at ``path`` with garbage (its write-ahead log emptied, and
    the shared index of it cleared, so the web UI's open connections read the file);
    returns what it held, for :func:`restore`."""
    kept = {}
    for suffix in SUFFIXES:
        if os.path.exists(path + suffix):
            with open(path + suffix, "rb") as f:
                kept[suffix] = f.read()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write((b"garbage!" * (size // 8 + 1))[:size])
    if os.path.exists(path + "-wal"):
        os.truncate(path + "-wal", 0)
    _clear_index(path)
    return kept


def restore(path, kept):
    for suffix, data in kept.items():
        with open(path + suffix, "r+b") as f:
            f.write(data)
            f.truncate()
    _clear_index(path)


def _clear_index(path):
    # Zeros in place, never truncated: each connection has it mapped.
    if os.path.exists(path + "-shm"):
        size = os.path.getsize(path + "-shm")
        with open(path + "-shm", "r+b") as f:
            f.write(b"\0" * size)


@pytest.mark.parametrize("who,url,store", CASES)
def test_a_page_whose_database_cannot_be_read_names_it_and_shows_nothing_else(box, people, who, url, store):
    """A damaged database answered a 500 ("something went wrong") on every page that read
    it, and alarms.db or web.db on every page: the audit trail's head and entries, the
    deletion log, the call log, the disclosure log, the register of requests."""
    client = people[who]
    assert client.get(url).status_code == 200  # (and the stores it makes are made)
    box.web.wait_whole_checks()
    path = os.path.join(box.data_dir, store)
    kept = damage(path)
    try:
        resp = client.get(url)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 503, text
        (said,) = re.findall(r'<p class="error" id="data-unreadable">([^<]*)</p>', text)
        assert "(%s) could not be read: it is not a database (damaged or replaced)" % store in said
        assert "linekeeper verify" in text and resp.headers["Retry-After"]
        # Nothing of the page asked for, nor the menu, as if the page were whole.
        assert "<nav" not in text and 'id="alarm-banner-slot"' not in text
        if store in ALARMS:
            (alarm,) = [a for a in box.alarm_log.banner() if a["kind"] == ALARMS[store]]
            assert alarm["cleared_us"] is None and "not a database" in alarm["message"]
            assert "An alarm was raised." in text
        elif store != "alarms.db":
            assert "An alarm was raised." not in text
    finally:
        restore(path, kept)
    # The page comes back as soon as the database reads again.
    assert client.get(url).status_code == 200


def test_the_api_answers_json_naming_the_database(box, people):
    client = people["audrey"]
    assert client.get("/api/alarms").status_code == 200
    path = os.path.join(box.data_dir, "alarms.db")
    kept = damage(path)
    try:
        resp = client.get("/api/alarms")
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["ok"] is False and body["data_unreadable"].startswith(
            "the alarm history (alarms.db) could not be read"
        )
    finally:
        restore(path, kept)


def test_an_error_that_is_not_the_card_s_is_still_the_ordinary_500(box, people, monkeypatch):
    """A mistake in the code (a wrong query) is not said to be a damaged card."""
    import sqlite3

    def wrong(*args, **kwargs):
        raise sqlite3.ProgrammingError("Incorrect number of bindings supplied")

    monkeypatch.setattr(box.services.audit, "head", wrong)
    with pytest.raises(sqlite3.ProgrammingError):  # the test client raises what a 500 would
        people["audrey"].get("/audit")


def _fingerprint(path):
    """What is in the store at ``path`` (its file and its write-ahead log), to show that
    nothing was changed."""
    import hashlib

    return {
        suffix: hashlib.sha256(open(path + suffix, "rb").read()).hexdigest()
        for suffix in SUFFIXES
        if os.path.isfile(path + suffix)
    }


@contextlib.contextmanager
def locked_by_another_process(path):
    """The database at ``path`` held locked by another process (an exclusive lock, as a
    technician's ``sqlite3`` shell or a backup holding it) until the block ends; nothing
    written."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.close()
        assert holder.wait() == 0


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""


def test_the_check_of_a_locked_store_is_quick_and_says_it_is_locked(box, people, monkeypatch):
    """The check of which store failed (web.refused.refusing) waited SQLite's busy timeout
    (5 s) on each locked file before it answered, so a page that met a lock took seconds
    more before saying so. Now it waits a moment only, and says the store is locked, not
    damaged."""
    import sqlite3

    from web.refused import refusing

    assert people["audrey"].get("/requests").status_code == 200  # rights.db is made
    path = os.path.join(box.data_dir, "rights.db")
    waits, connect = [], sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **kw: waits.append(kw.get("timeout")) or connect(*a, **kw)
    )
    with locked_by_another_process(path):
        began = time.monotonic()
        found = refusing(box.data_dir, ("rights.db",))
        took = time.monotonic() - began
    print("the check of a locked rights.db took %.3f s" % took)  # 5.0 s before, 0.1 s now
    assert found == ("rights.db", "rights.db: it is locked by another process")
    # The busy timeout it asked SQLite for (the default was 5 s): bounded, well under a second.
    assert waits and all(w is not None and w < 1 for w in waits), waits
    assert refusing(box.data_dir, ("rights.db",)) is None  # the lock gone, it opens


# A request a supervisor logs (as tests/web/test_requests.py does): the web box's day.
REQUEST = {
    "kind": "access",
    "received": "2026-03-02",
    "requester": "Mrs Wilhelmina Pottage",
    "contact": "w.pottage@example.org",
    "details": "every recording of my calls in February",
}


def _unreadable_said(resp):
    text = resp.get_data(as_text=True)
    assert resp.status_code == 503, text[-1500:]
    (said,) = re.findall(r'<p class="error" id="data-unreadable">([^<]*)</p>', text)
    assert "<nav" not in text and "linekeeper verify" in text
    return html.unescape(said)


def test_a_store_locked_by_another_process_is_said_to_be_locked_and_nothing_changes(box, people):
    """The register of requests held locked by another process (a technician's sqlite3
    shell, a backup): the page to read it and a request logged both say which store is
    locked, not that it is damaged; nothing is written to it or to the trail, and the pages
    come back once the lock goes."""
    sam, audrey = people["sam"], people["audrey"]
    assert audrey.get("/requests").status_code == 200  # rights.db is made
    token = box.token_of(sam, "/calls")
    path = os.path.join(box.data_dir, "rights.db")
    kept, trail = _fingerprint(path), len(box.services.audit)
    with locked_by_another_process(path):
        began = time.monotonic()
        said = _unreadable_said(audrey.get("/requests"))
        print("the page of a locked rights.db took %.3f s" % (time.monotonic() - began))
        assert said == (
            "This page could not be shown: the register of data subjects' requests (rights.db) "
            "could not be read: it is locked by another process."
        )
        assert "damaged" not in said
        said = _unreadable_said(sam.post("/requests", data=dict(REQUEST, csrf_token=token)))
        assert "(rights.db) could not be read: it is locked by another process" in said
    assert _fingerprint(path) == kept
    # Only the alarm that the register cannot be read (web/unreadable.py), audited as every
    # alarm is: no request logged, nothing else.
    added = box.services.audit.entries(limit=len(box.services.audit) - trail)
    assert [(e.action, e.details["kind"]) for e in added] == [("alarm", "request_check_failed")]
    assert audrey.get("/requests").status_code == 200
    assert "Mrs Wilhelmina Pottage" not in audrey.get("/requests").get_data(as_text=True)


def _waits_for(monkeypatch, name):
    """The busy timeouts asked for as each connection to the store ``name`` opens."""
    waits, connect = [], sqlite3.connect
    monkeypatch.setattr(
        sqlite3,
        "connect",
        lambda path, *a, **kw: (
            (waits.append(kw.get("timeout")) if os.path.basename(str(path).split("?")[0]) == name else None)
            or connect(path, *a, **kw)
        ),
    )
    return waits


@pytest.mark.parametrize(
    "url,store",
    [("/requests", "rights.db"), ("/requests/1", "rights.db"), ("/disclosures", "disclosures.db")],
)
def test_a_page_view_of_a_locked_store_waits_a_moment_not_five_seconds(box, people, monkeypatch, url, store):
    """A page that opens a store another process holds locked waited SQLite's busy timeout
    (5 s) on its own connection before it failed, then said the store was locked: the check
    of which store it was had been made quick, the view not. A page view now waits a moment
    (the check's 0.1 s) and says so; a change (a POST) still waits as a writer does."""
    from web.refused import PROBE_TIMEOUT_S

    audrey = people["audrey"]
    token = box.token_of(people["sam"], "/calls")
    assert box.post(people["sam"], "/requests", dict(REQUEST)).status_code == 302  # request 1
    assert audrey.get(url).status_code == 200  # the store is made
    waits = _waits_for(monkeypatch, store)
    with locked_by_another_process(os.path.join(box.data_dir, store)):
        said = _unreadable_said(audrey.get(url))
    assert said.endswith("(%s) could not be read: it is locked by another process." % store)
    # The view's own connection and the check's: each a moment, not SQLite's 5 s.
    assert len(waits) == 2 and all(w == PROBE_TIMEOUT_S for w in waits), waits
    if store == "rights.db":  # a request logged (a writer) waits as long as before
        del waits[:]
        form = dict(REQUEST, details="another", csrf_token=token)  # not request 1 again
        assert people["sam"].post("/requests", data=form).status_code == 302
        assert waits == [5], waits


def test_a_register_opened_for_a_view_still_waits_as_a_writer_to_change(tmp_path):
    """The short wait is a read's: a change made through a register opened with it (an older
    register's columns added, a request logged) waits SQLite's 5 s for another's lock."""
    from firmware.rights import RightsRegister

    register = RightsRegister(str(tmp_path), busy_s=0.1)
    try:
        assert register._db.execute("PRAGMA busy_timeout").fetchone()[0] == 100
        register._writing()
        assert register._db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    finally:
        register.close()


@pytest.mark.parametrize(
    "who,url,store", [("audrey", "/requests", "rights.db"), ("audrey", "/reports", "calls.db")]
)
def test_a_store_that_cannot_be_opened_is_named_and_nothing_changes(box, people, who, url, store):
    """A store the web UI may not open (as root no permission refuses it: a directory
    where the file should be refuses every user): the page names it and why, and nothing
    is made, moved or written in its place; the page comes back once the file is back."""
    client = people[who]
    assert client.get(url).status_code == 200
    box.web.wait_whole_checks()
    path = os.path.join(box.data_dir, store)
    kept, trail = _fingerprint(path), len(box.services.audit)
    os.rename(path, path + ".aside")
    os.mkdir(path)
    try:
        said = _unreadable_said(client.get(url))
        assert "(%s) could not be read: a directory is where the file should be" % store in said
        assert os.path.isdir(path) and os.listdir(path) == []  # nothing made in it
        added = box.services.audit.entries(limit=len(box.services.audit) - trail)
        alarmed = [("alarm", ALARMS[store])] if store in ALARMS else []
        assert [(e.action, e.details["kind"]) for e in added] == alarmed
    finally:
        os.rmdir(path)
        os.rename(path + ".aside", path)
    assert _fingerprint(path) == kept
    assert client.get(url).status_code == 200


def test_a_store_this_process_may_not_read_is_said_to_be_refused_permission(box, people, monkeypatch):
    """A store made unreadable (chmod 000, owned by another user) refuses its open with
    EACCES. The tests run as root, whom no mode refuses, and the project's Python cannot
    run as another user here, so the system's refusal is given to the check's open."""
    import builtins

    import web.refused

    assert people["audrey"].get("/requests").status_code == 200  # rights.db is made
    path = os.path.join(box.data_dir, "rights.db")
    kept = _fingerprint(path)

    def refusing_open(name, *args, **kwargs):
        if name == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
        return builtins.open(name, *args, **kwargs)

    monkeypatch.setattr(web.refused, "open", refusing_open, raising=False)
    assert web.refused.refusing(box.data_dir, ("rights.db",)) == ("rights.db", "rights.db: permission denied")
    assert _fingerprint(path) == kept


def test_the_web_ui_closes_quietly_when_web_db_cannot_be_written(box, people, caplog):
    """At its stop the web UI ends every session in web.db; a web.db damaged meanwhile made
    the stop raise (a traceback in place of the message it stopped with: a port taken), and
    left the database open and the unlocked keys of the sessions in memory. Now it logs a
    line, forgets the keys and closes the database all the same (the next start ends the
    sessions)."""
    assert people["audrey"].get("/audit").status_code == 200
    box.web.wait_whole_checks()
    assert box.web.sessions.memory  # the logged-in people's sessions
    damage(os.path.join(box.data_dir, "web.db"))  # the test's data goes with it
    box.web.close()  # raised sqlite3.DatabaseError: file is not a database
    assert "the sessions could not be ended in web.db as the web UI stopped" in caplog.text
    assert "not a database" in caplog.text
    assert box.web.sessions.memory == {}
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        box.web.db.one("SELECT 1")
    box.web.close()  # a second close (the box's, at the end of the test) does nothing
