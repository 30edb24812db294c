"""A password change that a power cut cannot leave half made.

A supervisor's password is kept twice: in their key slot (``keystore.json``,
which opens their lines) and as their account's hash (``web.db``). A change
writes the slot, then the hash, then the audit entry. A cut between the slot
and the hash used to leave the new password in the slot and the old one in
the hash: the next login with the old password (slot refused, hash accepted)
looked like a slot altered on the card, and raised a false ``key_tampered``
alarm; a cut before the entry left the change unaudited.

So a change is noted in web.db's ``site`` table first, with a fingerprint of
the slot it replaces and the audit entries it owes (each carries the change's
id, so none is written twice). The hash is set in one transaction with a mark
on the note, then the entries are written, then the note goes. What the web
UI finds at its start (:func:`settle`):

- a note marked: the change is whole; its entries are written if missing;
- a slot other than the one noted: the slot was written but not the hash; the
  entries are written, and the note stays until the person logs in with the
  new password (:func:`slot_opened` makes it the account's hash). A login with
  the old password is refused with words that say why (:func:`old_password`);
- the slot noted, or no slot at all: the change never reached the card; the
  note goes, and the person's password is the one they had.
"""

from . import intent

PREFIX = "password_change:"


def begin(web, name, actor, entries, must_change=""):
    """Note a change of ``name``'s password before anything is written.

    ``entries``: the audit entries it owes, ``[(action, details), ...]`` about
    ``name`` by ``actor``; ``must_change``: why the person must change the new password
    at their next login (a key of :data:`web.accounts.MUST_CHANGE`: one an installer
    set), "" when it is their own. Returns the note (for :func:`finish`).
    """
    keystore = web.services.keystore
    note = {
        "id": intent.new_id(),
        "actor": actor,
        "entries": [[action, name, details] for action, details in entries],
        "slot_before": _fingerprint(keystore, name),
        "hash_set": False,
        "must_change": must_change,
    }
    with web.db.tx() as conn:
        intent.put(web, conn, PREFIX + name, note)
    return note


def finish(web, name, password, note):
    """After the slot (if any) was written: the hash, then the entries, then the note goes."""
    note = dict(note, hash_set=True)
    with web.db.tx() as conn:
        web.accounts.set_password(conn, name, password, note.get("must_change", ""))
        intent.put(web, conn, PREFIX + name, note)
    _audit_once(web, name, note)
    _drop(web, name)


def abandon(web, name, note):
    """The slot could not be written (an error, not a cut): the note goes, unless the
    slot was written all the same (then the next login or start finishes it)."""
    if not _slot_written(web, name, note):
        _drop(web, name)


def pending(web, name):
    """The note of a change of ``name``'s password cut short, or None."""
    return intent.get(web, PREFIX + name)


def settle(web):
    """At the web UI's start: finish or forget every change a cut left (module doc)."""
    for key, note in intent.notes(web, PREFIX):
        name = key[len(PREFIX) :]
        if note["hash_set"]:
            _audit_once(web, name, note)
            _drop(web, name)
        elif _slot_written(web, name, note):
            _audit_once(web, name, note)
        else:
            _drop(web, name)


def slot_opened(web, name, password):
    """``name`` logged in by opening their slot: a change whose hash a cut left behind
    takes this password (the slot's, so the new one) as the account's hash."""
    note = pending(web, name)
    if note is None:
        return
    if _slot_written(web, name, note):
        with web.db.tx() as conn:
            web.accounts.set_password(conn, name, password, note.get("must_change", ""))
            intent.put(web, conn, PREFIX + name, dict(note, hash_set=True))
        _audit_once(web, name, note)
    _drop(web, name)


def old_password(web, name):
    """Whether a slot that refused ``name``'s password (which the hash accepts) is the
    new slot of a change cut short: the password given is the old one, not a sign of
    an altered key store."""
    note = pending(web, name)
    return note is not None and _slot_written(web, name, note)


def _slot_written(web, name, note):
    return _fingerprint(web.services.keystore, name) != note["slot_before"]


def _fingerprint(keystore, name):
    return keystore.slot_fingerprint(name) if keystore.is_initialised else None


def _audit_once(web, name, note):
    intent.audit_once(web.services, note["actor"], note["entries"], note["id"])


def _drop(web, name):
    intent.drop(web.db, PREFIX + name)
