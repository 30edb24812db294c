"""The phonebook: names people gave to numbers, and notes on calls (both in web.db).

A number is kept in its international form (``+441632960777``), so
``01632 960777`` and ``+44 1632 960777`` are one entry, and a call's number
finds its name however the call log wrote it. The phonebook never replaces
a caller-ID name: pages show both, the phonebook's marked as such.

CSV (import and export): a header row ``number,name``, then one entry a
line; an import is checked whole first and refused whole, with the line and
the problem, if any row is bad (nothing changes).
"""

import csv
import io

from firmware.calls.callsearch import number_forms
from firmware.policy.rules import normalise

MAX_NAME = 80
MAX_ENTRIES = 10_000
MAX_NOTE = 1000


class PhonebookError(ValueError):
    """A phonebook entry or CSV file that cannot be taken; the message says why."""


def clean_number(text, country):
    """The international form of ``text``; raises PhonebookError if it is not a number."""
    raw = "".join((text or "").split())
    n = normalise(raw, country)
    digits = n[1:] if n.startswith("+") else n
    if not digits.isdigit() or not 3 <= len(digits) <= 20:
        raise PhonebookError(
            "%r is not a phone number (digits, spaces and a leading +, 3 to 20 digits)" % (text or "")[:40]
        )
    return n


def clean_name(text):
    name = " ".join((text or "").split())
    if not name:
        raise PhonebookError("a name is needed")
    if len(name) > MAX_NAME:
        raise PhonebookError("a name is at most %d characters" % MAX_NAME)
    return name


class Phonebook:
    """Names for numbers, in ``db`` (a :class:`web.db.WebDb`); ``country`` reads national forms."""

    def __init__(self, db, clock_us):
        self._db = db
        self._clock_us = clock_us

    def entries(self):
        return [
            dict(r)
            for r in self._db.query("SELECT number, name, updated_us FROM phonebook ORDER BY name, number")
        ]

    def count(self):
        return self._db.one("SELECT count(*) FROM phonebook")[0]

    def put(self, number, name, country):
        """Add or rename ``number``; returns its international form. Raises PhonebookError."""
        number, name = clean_number(number, country), clean_name(name)
        with self._db.tx() as conn:
            if (
                conn.execute("SELECT count(*) FROM phonebook").fetchone()[0] >= MAX_ENTRIES
                and conn.execute("SELECT 1 FROM phonebook WHERE number = ?", (number,)).fetchone() is None
            ):
                raise PhonebookError("the phonebook is full (%d entries)" % MAX_ENTRIES)
            conn.execute(
                "INSERT OR REPLACE INTO phonebook (number, name, updated_us) VALUES (?, ?, ?)",
                (number, name, int(self._clock_us())),
            )
        return number

    def remove(self, number, country):
        number = clean_number(number, country)
        with self._db.tx() as conn:
            return conn.execute("DELETE FROM phonebook WHERE number = ?", (number,)).rowcount > 0

    def names_for(self, numbers, country):
        """``{number as given: phonebook name}`` for those of ``numbers`` it knows."""
        wanted = {}
        for number in set(n for n in numbers if n):
            try:
                wanted[clean_number(number, country)] = number
            except PhonebookError:
                continue
        if not wanted:
            return {}
        rows = self._db.query(
            "SELECT number, name FROM phonebook WHERE number IN (%s)" % ",".join("?" * len(wanted)),
            list(wanted),
        )
        return {wanted[r["number"]]: r["name"] for r in rows}

    def numbers_named(self, text, country, limit=100):
        """Every way the call log may hold the numbers whose name contains ``text``."""
        rows = self._db.query(
            "SELECT number FROM phonebook WHERE instr(lower(name), ?) > 0 LIMIT ?", (text.lower(), limit)
        )
        forms = set()
        for r in rows:
            forms.update(number_forms(r["number"], country))
        return tuple(sorted(forms))

    def export_csv(self):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["number", "name"])
        for e in self.entries():
            writer.writerow([e["number"], e["name"]])
        return out.getvalue()

    def import_csv(self, text, country):
        """Add or rename every row of ``text``; returns how many. Nothing changes on an error."""
        rows = list(csv.reader(io.StringIO(text)))
        if not rows or [c.strip().lower() for c in rows[0][:2]] != ["number", "name"]:
            raise PhonebookError("the first line must be the header: number,name")
        entries = {}
        for i, row in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in row):
                continue
            if len(row) < 2:
                raise PhonebookError("line %d: a number and a name are needed" % i)
            try:
                entries[clean_number(row[0], country)] = clean_name(row[1])
            except PhonebookError as exc:
                raise PhonebookError("line %d: %s" % (i, exc)) from None
        if len(entries) + self.count() > MAX_ENTRIES:
            raise PhonebookError("the phonebook would hold more than %d entries" % MAX_ENTRIES)
        now = int(self._clock_us())
        with self._db.tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO phonebook (number, name, updated_us) VALUES (?, ?, ?)",
                [(n, m, now) for n, m in entries.items()],
            )
        return len(entries)


class CallNotes:
    """Free-text notes people add to calls (web.db), oldest first."""

    def __init__(self, db, clock_us):
        self._db = db
        self._clock_us = clock_us

    def of_call(self, call_id):
        return [
            dict(r)
            for r in self._db.query(
                "SELECT note, by_user, at_us FROM call_notes WHERE call_id = ? ORDER BY id", (int(call_id),)
            )
        ]

    def add(self, call_id, note, by):
        note = " ".join((note or "").split())
        if not note:
            raise PhonebookError("write the note first")
        if len(note) > MAX_NOTE:
            raise PhonebookError("a note is at most %d characters" % MAX_NOTE)
        with self._db.tx() as conn:
            conn.execute(
                "INSERT INTO call_notes (call_id, note, by_user, at_us) VALUES (?, ?, ?, ?)",
                (int(call_id), note, by, int(self._clock_us())),
            )
        return note
