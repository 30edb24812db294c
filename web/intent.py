"""Changes noted in web.db before they are made, so a cut leaves no half of one.

Several of the web UI's changes write two or more stores one after the other
(web.db, the key store, ``config.json``, the audit trail), and a power cut
between them used to leave the first without the rest. Each such change notes
what it is about to do in web.db's ``site`` table first, under its own key,
and the note goes once every step is done; what the web UI finds at its start
is finished there (:mod:`web.pwchange`, :mod:`web.sitechange`).

A page that changes one file (``config.json`` from the rules, retention and
consent pages, ``mail.json`` from the mail page) audits the change before it
writes the file (:func:`change_file`): a change nobody can see in the trail is
worse than an entry for one a cut stopped, and the start after such a cut adds
an entry saying the change was not made.

The audit entries a change owes each carry the change's id (``change_id``), so an
entry written before a cut is not written again when the change is finished.
"""

import contextlib
import json
import os
import secrets

from firmware.storage.fieldseal import opener

NOTE_FIELD = "site.change_note"  # what a note is sealed for (FieldCipher's field)


def new_id():
    return secrets.token_hex(8)


def put(web, conn, key, note):
    """Keep ``note`` under ``key`` in the transaction ``conn``, sealed with the box's
    storage key where it has one: a note may hold what the audit trail seals (an
    address, a number in the phonebook), and a row deleted from web.db leaves its
    bytes on the card until SQLite reuses the page."""
    text = json.dumps(note)
    if web.services.cipher is not None:
        text = web.services.cipher.seal(text, NOTE_FIELD)
    conn.execute("INSERT OR REPLACE INTO site (key, value) VALUES (?, ?)", (key, text))


def get(web, key):
    row = web.db.one("SELECT value FROM site WHERE key = ?", (key,))
    return None if row is None else _read(web, row[0])


def drop(db, key):
    with db.tx() as conn:
        conn.execute("DELETE FROM site WHERE key = ?", (key,))


def notes(web, prefix):
    """``(key, note)`` of every note whose key starts with ``prefix``."""
    rows = web.db.query("SELECT key, value FROM site")
    return [(k, _read(web, v)) for k, v in rows if k.startswith(prefix)]


def _read(web, text):
    return json.loads(opener(web.services.cipher)(text, NOTE_FIELD))


def audit_once(services, actor, entries, change_id):
    """Append each of ``entries`` (``[action, target, details]``) by ``actor`` that the
    trail does not already hold for ``change_id`` (among the latest of its action)."""
    audit = services.audit
    done = {
        (e.action, e.details.get("change_id"))
        for action in {entry[0] for entry in entries}
        for e in audit.entries(limit=50, action=action)
    }
    for action, target, details in entries:
        if (action, change_id) not in done:
            audit.append(actor, action, target, dict(details, change_id=change_id), int(services.wall_us()))


CHECKED_PREFIX = "checked_change:"


def file_identity(path):
    """What tells one version of ``path`` from the next: every save replaces the file
    (a new inode), so a save after this was taken changes it. None: no file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_mtime_ns, st.st_size]


def _file_saved(web, check):
    files = [(check["path"], check["before"])] + [tuple(f) for f in check.get("also", ())]
    return any(file_identity(path) != before for path, before in files)


def _hold_set(web, check):
    info = web.services.recordings.recording_info(check["call_id"])
    return info is not None and bool(info["legal_hold"]) == check["on"]


def _tag_set(web, check):
    return (check["tag"] in web.services.call_tags.tags(check["call_id"])) == check["on"]


def _recovery_replaced(web, check):
    return web.services.keystore.slot_fingerprint(None, kind="recovery") != check["before"]


# How the start tells whether a change audited before it was made, by the kind of change.
CHECKS = {"file": _file_saved, "legal_hold": _hold_set, "tag": _tag_set, "recovery_slot": _recovery_replaced}


def change_checked(web, entry, write, check):
    """Make a change from a page, audited before it is made.

    ``entry``: ``(action, target, details)`` by the person logged in; ``write()`` makes
    the change; ``check``: what tells the web UI's next start whether it was made
    (``{"kind": one of CHECKS, ...}``). The entry comes first, so no change goes
    unaudited; a note in web.db taken before it lets the next start tell whether a cut
    came between the entry and the change (:func:`settle_checked`). A ``write`` that
    fails gets a second entry saying the change was not made, and its error goes on up.
    """
    from .security import audit

    change = new_id()
    key = CHECKED_PREFIX + change
    action, target, details = entry
    with web.db.tx() as conn:
        put(web, conn, key, {"check": check, "action": action, "target": target})
    audit(action, target, change_id=change, **details)
    try:
        result = write()
    except Exception as exc:
        _not_made(web.services, action, target, change, _reason(exc))
        drop(web.db, key)
        raise
    drop(web.db, key)
    return result


def change_file(web, path, entry, write, also=()):
    """:func:`change_checked` for a page that saves one file (``write()`` saves ``path``,
    and the files ``also`` before it): the note holds the files as they stood. Any of
    them replaced is the change made: a cut after the first file leaves it in force."""
    check = {"kind": "file", "path": path, "before": file_identity(path)}
    if also:
        check["also"] = [[p, file_identity(p)] for p in also]
    return change_checked(web, entry, write, check)


def settle_checked(web):
    """At the web UI's start: each change a cut left between its entry and the change
    itself (as its check finds it) gets an entry saying it was not made."""
    for key, note in notes(web, CHECKED_PREFIX):
        change = key[len(CHECKED_PREFIX) :]
        action, target, check = note["action"], note["target"], note["check"]
        if _entered(web.services, action, change) and not CHECKS[check["kind"]](web, check):
            _not_made(web.services, action, target, change, "the box stopped before the change was made")
        drop(web.db, key)


def _not_made(services, action, target, change, reason):
    details = {"change_id": change, "not_made": reason}
    services.audit.append("system", action, target, details, int(services.wall_us()))


ROWS_PREFIX = "rows_change:"


@contextlib.contextmanager
def audited_tx(web, entries):
    """A web.db transaction audited before it: ``with audited_tx(web, entries) as conn:``.

    ``entries`` (``[(action, target, details)]``, by the person logged in) are written
    first, tagged with the change's number; a note taken before them goes in the
    transaction itself, so a note the next start finds is a transaction that never
    committed (:func:`settle_rows` then says so in the trail). An error inside (a check
    that refuses, a card that refuses) gets an entry saying the change was not made.
    """
    from .security import audit

    change = new_id()
    key = ROWS_PREFIX + change
    with web.db.tx() as conn:
        put(web, conn, key, {"entries": [[action, target] for action, target, _ in entries]})
    for action, target, details in entries:
        audit(action, target, change_id=change, **details)
    try:
        with web.db.tx() as conn:
            yield conn
            conn.execute("DELETE FROM site WHERE key = ?", (key,))
    except Exception as exc:
        for action, target, _ in entries:
            _not_made(web.services, action, target, change, _reason(exc))
        drop(web.db, key)
        raise


def settle_rows(web):
    """At the web UI's start: the entries of each audited transaction a cut stopped get
    an entry saying it was not made (those written, that is)."""
    for key, note in notes(web, ROWS_PREFIX):
        change = key[len(ROWS_PREFIX) :]
        for action, target in note["entries"]:
            if _entered(web.services, action, change):
                _not_made(web.services, action, target, change, "the box stopped before the change was saved")
        drop(web.db, key)


def _entered(services, action, change):
    """Whether the trail's latest entries of ``action`` hold the change ``change``."""
    return any(e.details.get("change_id") == change for e in services.audit.entries(limit=50, action=action))


def _reason(exc):
    return str(exc) or type(exc).__name__
