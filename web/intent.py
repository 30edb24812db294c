"""Changes noted in web.db before they are made, so a cut leaves no half of one.

Several of the web UI's changes write two or more stores one after the other
(web.db, the key store, ``config.json``, the audit trail), and a power cut
between them used to leave the first without the rest. Each such change notes
what it is about to do in web.db's ``site`` table first, under its own key,
and the note goes once every step is done; what the web UI finds at its start
is finished there (:mod:`web.pwchange`, :mod:`web.sitechange`).

The audit entries a change owes each carry the change's id (``change``), so an
entry written before a cut is not written again when the change is finished.
"""

import json
import secrets


def new_id():
    return secrets.token_hex(8)


def put(conn, key, note):
    conn.execute("INSERT OR REPLACE INTO site (key, value) VALUES (?, ?)", (key, json.dumps(note)))


def get(db, key):
    row = db.one("SELECT value FROM site WHERE key = ?", (key,))
    return None if row is None else json.loads(row[0])


def drop(db, key):
    with db.tx() as conn:
        conn.execute("DELETE FROM site WHERE key = ?", (key,))


def notes(db, prefix):
    """``(key, note)`` of every note whose key starts with ``prefix``."""
    return [(k, json.loads(v)) for k, v in db.query("SELECT key, value FROM site") if k.startswith(prefix)]


def audit_once(services, actor, entries, change_id):
    """Append each of ``entries`` (``[action, target, details]``) by ``actor`` that the
    trail does not already hold for ``change_id`` (among the latest of its action)."""
    audit = services.audit
    done = {
        (e.action, e.details.get("change"))
        for action in {entry[0] for entry in entries}
        for e in audit.entries(limit=50, action=action)
    }
    for action, target, details in entries:
        if (action, change_id) not in done:
            audit.append(actor, action, target, dict(details, change=change_id), int(services.wall_us()))
