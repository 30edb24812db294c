"""The caller's name corrected for one call (UK GDPR Art. 16: the right to rectification).

The call log keeps what the caller-ID sent, as the line delivered it: the recorder's own
record of the call. A name that is wrong for the call (the caller-ID names the company's
switchboard, the phonebook names the number's usual caller) is corrected beside it, in
web.db: the name this call is shown with, who corrected it and when. The newest correction
is the call's name; the older ones stay as its history. The name is sealed as the notes are
(:mod:`firmware.storage.sealstores`), and erased with the caller's other details
(:meth:`NameCorrections.erase_of_call`). Why it was corrected is in the audit trail, as an
erasure's reason is.
"""

from firmware.calls.corrected import ERASED_NAME, newest
from firmware.storage.fieldseal import opener
from firmware.storage.sealstores import CORRECTED_NAME

from .phonebook import clean_name, folded


class NameCorrections:
    """The names calls were corrected to (web.db ``call_corrections``); ``cipher`` seals
    them (None on a box that does not seal)."""

    def __init__(self, db, clock_us, cipher=None):
        self._db = db
        self._clock_us = clock_us
        self._cipher = cipher

    def of_calls(self, call_ids):
        """``{call_id: {"name", "by_user", "at_us", "request", "erased"}}``: the newest
        correction of each call in ``call_ids`` that has one
        (:func:`firmware.calls.corrected.newest`)."""
        return newest(self._db.query, call_ids, self._cipher)

    def calls_named(self, text):
        """``(named, corrected)``, ids of calls sorted: the calls whose newest corrected name
        holds ``text`` (any case, with or without accents, as a phonebook name is found), and
        every call corrected at all. A corrected call's name is its corrected one: the calls
        list finds it by that alone, not by what the caller-ID sent nor by the phonebook's
        name (:class:`firmware.calls.callsearch.CallFilter`'s ``named_ids`` and
        ``renamed_ids``); one whose corrected name was erased is found by no name.
        Corrections are few (one per request granted): each is opened once a search."""
        text = folded(text)
        rows = self._db.query(
            "SELECT call_id, name FROM call_corrections WHERE id IN "
            "(SELECT max(id) FROM call_corrections GROUP BY call_id)"
        )
        read = opener(self._cipher)
        named = [
            r["call_id"]
            for r in rows
            if r["name"] != ERASED_NAME and text in folded(read(r["name"], CORRECTED_NAME))
        ]
        return tuple(sorted(named)), tuple(sorted(r["call_id"] for r in rows))

    def of_call(self, call_id):
        """The newest correction of call ``call_id`` (as :meth:`of_calls`), or None."""
        return self.of_calls([call_id]).get(int(call_id))

    def correct(self, call_id, name, by, request=None, audited=None):
        """Correct the caller's name of call ``call_id`` to ``name``; returns it as kept
        (its spaces run together). ``request``: the number of the data subject's request
        in the register it answers, or None. Raises PhonebookError (a ValueError) naming
        what is wrong with the name (empty, over 80 characters, a control character, a
        card number); nothing is kept then. ``audited(name)``, if given, makes the
        transaction once the name is checked."""
        name = clean_name(name)
        stored = name if self._cipher is None else self._cipher.seal(name, CORRECTED_NAME)
        with self._db.tx() if audited is None else audited(name) as conn:
            conn.execute(
                "INSERT INTO call_corrections (call_id, name, by_user, at_us, request)"
                " VALUES (?, ?, ?, ?, ?)",
                (int(call_id), stored, by, int(self._clock_us()), request),
            )
        return name

    def erase_of_call(self, call_id, audited=None):
        """Erase every name call ``call_id`` was corrected to (the right to erasure: they
        are the caller's details); who corrected it and when stay, so the page shows a
        correction was made and erased. Returns how many were erased. ``audited(n)``, if
        given, makes the transaction. The old names are zeroed in their pages
        (``secure_delete``) and the write-ahead log emptied, so web.db keeps no copy."""
        n = self.left_of_call(call_id)
        if not n:
            return 0
        with self._db.tx() if audited is None else audited(n) as conn:
            conn.execute(
                "UPDATE call_corrections SET name = ? WHERE call_id = ? AND name != ?",
                (ERASED_NAME, int(call_id), ERASED_NAME),
            )
        self._db.checkpoint()
        return n

    def left_of_call(self, call_id):
        """How many of call ``call_id``'s corrected names are not erased."""
        (n,) = self._db.one(
            "SELECT count(*) FROM call_corrections WHERE call_id = ? AND name != ?",
            (int(call_id), ERASED_NAME),
        )
        return n
