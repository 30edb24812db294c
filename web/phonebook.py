"""The phonebook: names people gave to numbers, and notes on calls (both in web.db).

A number is kept in its international form (``+441632960777``), so
``01632 960777`` and ``+44 1632 960777`` are one entry, and a call's number
finds its name however the call log wrote it. The phonebook never replaces
a caller-ID name: pages show both, the phonebook's marked as such.

CSV (import and export): a header row ``number,name``, then one entry a
line; an import is checked whole first and refused whole, with the line and
the problem, if any row is bad (nothing changes).

Sealed (docs/card-alone.md): given the box's field cipher, numbers, names
and note texts are stored as sealed text (:mod:`firmware.storage.sealstores`).
The seal is deterministic, so the sealed number is the phonebook's keyed
index: a number is looked up by sealing its international form, and the
card shows no number. Names are opened in memory to sort and search (a
phonebook holds at most :data:`MAX_ENTRIES`). Rows an older firmware left in
clear are read as they are until the recorder seals them at its next start.
"""

import csv
import io
import threading

from firmware import csvsafe
from firmware.calls.callsearch import number_forms
from firmware.policy import cards
from firmware.policy.rules import normalise
from firmware.storage.fieldseal import PREFIX, is_sealed, opener
from firmware.storage.sealstores import NOTE, PHONEBOOK_NAME, PHONEBOOK_NUMBER
from firmware.typed import control_problem

MAX_NAME = 80
MAX_ENTRIES = 10_000
MAX_NOTE = 1000
# The same note by the same person on the same call within this time is its form sent twice
# (a double click, Back then Send): added once.
NOTE_AGAIN_US = 10 * 60 * 1_000_000
ERASED_NOTE = ""  # a note's text erased on request (a note is never empty)


class PhonebookError(ValueError):
    """A phonebook entry or CSV file that cannot be taken; the message says why."""


class NoteAddedAlready(PhonebookError):
    """The same note by the same person on the same call a moment ago: its form sent twice."""


def clean_number(text, country):
    """The international form of ``text``; raises PhonebookError if it is not a number."""
    raw = "".join((text or "").split())
    n = normalise(raw, country)
    digits = n[1:] if n.startswith("+") else n
    if not (digits.isascii() and digits.isdigit()) or not 3 <= len(digits) <= 20:
        raise PhonebookError(
            "%r is not a phone number (digits, spaces and a leading +, 3 to 20 digits)" % (text or "")[:40]
        )
    return n


def clean_name(text):
    name = " ".join((text or "").split())
    if not name:
        raise PhonebookError("a name is needed")
    if is_sealed(name):
        raise PhonebookError("a name cannot start with %r" % PREFIX)
    if len(name) > MAX_NAME:
        raise PhonebookError("a name is at most %d characters" % MAX_NAME)
    problem = control_problem(name)
    if problem:
        raise PhonebookError("in the name, " + problem[0].lower() + problem[1:].rstrip("."))
    return name


class Phonebook:
    """Names for numbers, in ``db`` (a :class:`web.db.WebDb`); ``country`` reads national forms.

    ``cipher``: the box's field cipher, or None on a box that does not seal.
    """

    def __init__(self, db, clock_us, cipher=None):
        self._db = db
        self._clock_us = clock_us
        self._cipher = cipher
        self._opener = opener(cipher)
        # Opened values by sealed text: a name search reads every entry, and opening
        # 10 000 of them each time would cost it about 100 ms. RAM only, bounded.
        self._opened = {}

    def _open(self, value, field):
        if self._cipher is None or value is None:
            return value
        key = (value, field)
        text = self._opened.get(key)
        if text is None:
            text = self._opener(value, field)
            if len(self._opened) >= 4 * MAX_ENTRIES:
                self._opened.clear()
            self._opened[key] = text
        return text

    def _seal(self, text, field):
        return text if self._cipher is None else self._cipher.seal(text, field)

    def _keys(self, number):
        """What a row for the international ``number`` may hold: its sealed form (the
        keyed index) and, until the recorder sealed an older card's rows, the clear one;
        for ``+44…``, the ``44…`` an older release kept when it was typed so (it did not
        take the country code without its ``+`` for international)."""
        forms = [number] + ([number[1:]] if number.startswith("+") else [])
        keys = []
        for form in forms:
            sealed = self._seal(form, PHONEBOOK_NUMBER)
            keys += [sealed] if sealed == form else [sealed, form]
        return keys

    def entries(self):
        rows = [
            {
                "number": self._open(r["number"], PHONEBOOK_NUMBER),
                "name": self._open(r["name"], PHONEBOOK_NAME),
                "updated_us": r["updated_us"],
            }
            for r in self._db.query("SELECT number, name, updated_us FROM phonebook")
        ]
        return sorted(rows, key=lambda e: (e["name"], e["number"]))

    def count(self):
        return self._db.one("SELECT count(*) FROM phonebook")[0]

    def _tx(self, audited, *args):
        """The transaction of a change: web.db's own, or ``audited(*args)`` (a page's,
        which audits the change first: :func:`web.intent.audited_tx`)."""
        return self._db.tx() if audited is None else audited(*args)

    def put(self, number, name, country, audited=None):
        """Add or rename ``number``; returns its international form. Raises PhonebookError.

        ``audited(number, name)``, if given, makes the transaction (once both are checked)."""
        number, name = clean_number(number, country), clean_name(name)
        keys = self._keys(number)
        row = (keys[0], self._seal(name, PHONEBOOK_NAME), int(self._clock_us()))
        with self._tx(audited, number, name) as conn:
            known = conn.execute(
                "SELECT 1 FROM phonebook WHERE number IN (%s)" % ",".join("?" * len(keys)), keys
            ).fetchone()
            if conn.execute("SELECT count(*) FROM phonebook").fetchone()[0] >= MAX_ENTRIES and known is None:
                raise PhonebookError("the phonebook is full (%d entries)" % MAX_ENTRIES)
            conn.execute("DELETE FROM phonebook WHERE number IN (%s)" % ",".join("?" * len(keys)), keys)
            conn.execute("INSERT INTO phonebook (number, name, updated_us) VALUES (?, ?, ?)", row)
        return number

    def remove(self, number, country, audited=None):
        """Remove ``number``; False when it was not there (then ``audited(number)`` is not
        called)."""
        number = clean_number(number, country)
        keys = self._keys(number)
        where = "number IN (%s)" % ",".join("?" * len(keys))
        if self._db.one("SELECT count(*) FROM phonebook WHERE " + where, keys)[0] == 0:
            return False
        with self._tx(audited, number) as conn:
            return conn.execute("DELETE FROM phonebook WHERE " + where, keys).rowcount > 0

    def names_for(self, numbers, country):
        """``{number as given: phonebook name}`` for those of ``numbers`` it knows."""
        wanted = {}
        for number in set(n for n in numbers if n):
            try:
                clean = clean_number(number, country)
            except PhonebookError:
                continue
            for key in self._keys(clean):
                wanted[key] = number
        if not wanted:
            return {}
        rows = self._db.query(
            "SELECT number, name FROM phonebook WHERE number IN (%s)" % ",".join("?" * len(wanted)),
            list(wanted),
        )
        return {wanted[r["number"]]: self._open(r["name"], PHONEBOOK_NAME) for r in rows}

    def numbers_named(self, text, country, limit=100):
        """Every way the call log may hold the numbers whose name contains ``text``
        (any case, with or without accents: ``jose`` finds José, ``strasse`` Straße)."""
        text = folded(text)
        forms = set()
        found = 0
        for r in self._db.query("SELECT number, name FROM phonebook"):
            if text in folded(self._open(r["name"], PHONEBOOK_NAME)):
                forms.update(number_forms(self._open(r["number"], PHONEBOOK_NUMBER), country))
                found += 1
                if found >= limit:
                    break
        return tuple(sorted(forms))

    def export_csv(self):
        out = io.StringIO()
        writer = csvsafe.Writer(out)
        writer.writerow(["number", "name"])
        for e in self.entries():
            writer.writerow([e["number"], e["name"]])
        return out.getvalue()

    def import_csv(self, text, country, audited=None):
        """Add or rename every row of ``text``; returns how many. Nothing changes on an error.

        ``audited(n)``, if given, makes the transaction once every row is checked."""
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error as exc:  # a field over the csv module's 128 KiB, a NUL
            raise PhonebookError("the file is not CSV the box can read (%s)" % exc) from None
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["number", "name"]:
            raise PhonebookError("the first line must be the header: number,name")
        entries, line_of = {}, {}
        for i, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) < 2:
                raise PhonebookError("line %d: a number and a name are needed" % i)
            try:
                number = clean_number(row[0], country)
                entries[number] = clean_name(csvsafe.unquote(row[1].strip()))
            except PhonebookError as exc:
                raise PhonebookError("line %d: %s" % (i, exc)) from None
            if number in line_of:
                # Which name should win is the person's call, not the file order's.
                raise PhonebookError(
                    "line %d: the number %s is on line %d already: keep one of the two"
                    % (i, number, line_of[number])
                )
            line_of[number] = i
        if len(entries) + self.count() > MAX_ENTRIES:
            raise PhonebookError("the phonebook would hold more than %d entries" % MAX_ENTRIES)
        now = int(self._clock_us())
        rows = []
        for number, name in entries.items():
            keys = self._keys(number)
            rows.append((keys, (keys[0], self._seal(name, PHONEBOOK_NAME), now)))
        with self._tx(audited, len(entries)) as conn:
            for keys, row in rows:
                conn.execute("DELETE FROM phonebook WHERE number IN (%s)" % ",".join("?" * len(keys)), keys)
                conn.execute("INSERT INTO phonebook (number, name, updated_us) VALUES (?, ?, ?)", row)
        return len(entries)


class CallNotes:
    """Free-text notes people add to calls (web.db), oldest first; ``cipher`` seals
    their text (None on a box that does not seal)."""

    def __init__(self, db, clock_us, cipher=None):
        self._db = db
        self._clock_us = clock_us
        self._cipher = cipher
        # The last note looked at and the new one written in one step: of a form sent twice
        # at once, the second finds the first.
        self._adding = threading.Lock()

    def of_call(self, call_id):
        rows = self._db.query(
            "SELECT note, by_user, at_us FROM call_notes WHERE call_id = ? ORDER BY id", (int(call_id),)
        )
        read = opener(self._cipher)
        # A note an older firmware took with a card number in it is shown masked.
        # An erased note is kept as an empty text (no note can be empty): it existed, it is gone.
        return [
            dict(r, note=cards.scrub_typed(read(r["note"], NOTE)), erased=r["note"] == ERASED_NOTE)
            for r in rows
        ]

    def erase_of_call(self, call_id, audited=None):
        """Erase the text of every note on call ``call_id`` (the right to erasure); who
        wrote each and when stay, so the page shows a note was there and was erased.
        Returns how many were erased. ``audited(n)``, if given, makes the transaction.
        The old texts are zeroed in their pages (``secure_delete``) and the write-ahead
        log emptied, so web.db keeps no copy."""
        (n,) = self._db.one(
            "SELECT count(*) FROM call_notes WHERE call_id = ? AND note != ?", (int(call_id), ERASED_NOTE)
        )
        if not n:
            return 0
        with self._db.tx() if audited is None else audited(n) as conn:
            conn.execute(
                "UPDATE call_notes SET note = ? WHERE call_id = ? AND note != ?",
                (ERASED_NOTE, int(call_id), ERASED_NOTE),
            )
        self._db.checkpoint()
        return n

    def add(self, call_id, note, by, audited=None):
        """Add ``note`` to call ``call_id``; returns it as kept (one line). Raises PhonebookError.

        ``audited(note)``, if given, makes the transaction once the note is checked."""
        note = " ".join((note or "").split())
        if not note:
            raise PhonebookError("write the note first")
        if len(note) > MAX_NOTE:
            raise PhonebookError("a note is at most %d characters" % MAX_NOTE)
        if is_sealed(note):
            # It would be stored as it is and read back as sealed text that does not open.
            raise PhonebookError("a note cannot start with %r" % PREFIX)
        # PCI DSS: a card number not on the card, not on the page, not in a bundle; nor a
        # control that shows the note (and its audit entry) in another order, or cuts it.
        problem = control_problem(note)
        if problem:
            raise PhonebookError(problem[0].lower() + problem[1:].rstrip("."))
        stored = note if self._cipher is None else self._cipher.seal(note, NOTE)
        with self._adding:
            now_us = int(self._clock_us())
            last = self._db.one(
                "SELECT note, by_user, at_us FROM call_notes WHERE call_id = ? ORDER BY id DESC LIMIT 1",
                (int(call_id),),
            )
            if (
                last is not None
                and last[1] == by
                and 0 <= now_us - last[2] < NOTE_AGAIN_US
                and opener(self._cipher)(last[0], NOTE) == note
            ):
                raise NoteAddedAlready(
                    "this note was added already, by you a moment ago: it is not added twice"
                )
            with self._db.tx() if audited is None else audited(note) as conn:
                conn.execute(
                    "INSERT INTO call_notes (call_id, note, by_user, at_us) VALUES (?, ?, ?, ?)",
                    (int(call_id), stored, by, now_us),
                )
        return note


def folded(text):
    """``text`` for matching: case folded, accents taken off (NFKD, combining marks dropped)."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
