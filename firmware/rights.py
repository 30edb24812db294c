"""The register of data subjects' requests: who asked for what, by when it is due, what was done.

Under UK GDPR a person may ask for a copy of their data (Art. 15), for it to be
corrected (Art. 16), erased (Art. 17) or restricted (Art. 18), or object to its
use (Art. 21). The business answers without undue delay and within one calendar
month of receipt, extendable by up to two further months when the request is
complex or one of many (the person told within the first month, with reasons).
Waiting for proof of identity and waiting for the person to say what they want
are not the same (Art. 12A, as the Data (Use and Access) Act 2025 inserted it):
the month runs from the day the proof of identity is received, and the days
from asking for clarification to its answer, both included, do not count. An
auditor or the ICO expects a record of each: this register, ``DATA_DIR/rights.db``.

The deadline (:func:`due_date`): from the day of receipt (or the day proof of
identity came, when the business waited for it), the same date one month on
(the last day of that month when it has no such date: 31 January -> 28 or 29
February), the days excluded while waiting for clarification added; when that
is a Saturday, Sunday or a bank holiday where the business is (:func:`bank_holidays`
of the site's region: England and Wales, Scotland or Northern Ireland), the next
working day. An extension adds its months to the month.

Who asked, how to reach them, the numbers concerned, what they asked, and the
reasons and outcome are personal data: sealed with the box's field cipher
(:mod:`firmware.storage.fieldseal`) like the disclosure log's requester. The
kind, the dates and the state are kept in clear, so the recorder's periodic
round (:class:`OverdueCheck`) can raise ``request_overdue`` without the key.
"""

import calendar
import contextlib
import datetime as dt
import functools
import logging
import os
import sqlite3

import holidays

from .errors import LinekeeperError
from .localtime import check_zone, day_words
from .storage import fsutil
from .storage.fieldseal import opener

log = logging.getLogger(__name__)

FILE = "rights.db"
KINDS = {
    "access": "Access: a copy of their data (Art. 15)",
    "rectification": "Rectification: correct their data (Art. 16)",
    "erasure": "Erasure: delete their data (Art. 17)",
    "restriction": "Restriction: stop using their data for a time (Art. 18)",
    "objection": "Objection to the recording or its use (Art. 21)",
}
# A kind as a pick list names it: its name and article, short enough for a phone's list
# (the longest of ``KINDS`` is wider than a 390 px screen); the list's hint says the rest.
KIND_CHOICES = {
    "access": "Access (Art. 15)",
    "rectification": "Rectification (Art. 16)",
    "erasure": "Erasure (Art. 17)",
    "restriction": "Restriction (Art. 18)",
    "objection": "Objection (Art. 21)",
}
# What each kind means, for the list's hint: ``KINDS`` without their articles.
KIND_MEANINGS = "; ".join(label.rsplit(" (", 1)[0] for label in KINDS.values()) + "."
OPEN, WAITING, EXTENDED, ANSWERED, REFUSED = "open", "waiting", "extended", "answered", "refused"
# What a waiting request waits for: the month restarts when the ID comes; a
# clarification's days are excluded.
IDENTITY, CLARIFICATION = "identity", "clarification"
WAIT_KINDS = {
    IDENTITY: "Proof of identity (the month runs again from the day it comes)",
    CLARIFICATION: "Clarification of what they want (the days waited do not count)",
}
STATUSES = {
    OPEN: "Open",
    WAITING: "Waiting for ID or clarification (clock stopped)",
    EXTENDED: "Extended",
    ANSWERED: "Answered",
    REFUSED: "Refused",
}
CLOSED = (ANSWERED, REFUSED)
MAX_EXTENSION_MONTHS = 2
# The day the GDPR (now UK GDPR) began to apply: no request under it was received before.
GDPR_START = dt.date(2018, 5, 25)
DUE_SOON_DAYS = 7
MAX_TEXT = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_us       INTEGER NOT NULL,
    updated_us       INTEGER NOT NULL,
    actor            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    received         TEXT NOT NULL,
    status           TEXT NOT NULL,
    paused_since     TEXT,
    paused_days      INTEGER NOT NULL DEFAULT 0,
    extension_months INTEGER NOT NULL DEFAULT 0,
    closed_on        TEXT,
    disclosure_ids   TEXT NOT NULL DEFAULT '',
    call_ids         TEXT NOT NULL DEFAULT '',
    requester        TEXT NOT NULL,
    contact          TEXT NOT NULL,
    numbers          TEXT NOT NULL,
    details          TEXT NOT NULL,
    pause_reason     TEXT,
    extension_reason TEXT,
    outcome          TEXT,
    pause_kind       TEXT,
    id_received      TEXT,
    excluded_until   TEXT,
    resumed_on       TEXT,
    version          INTEGER NOT NULL DEFAULT 0,
    follows          INTEGER,
    lines            TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS corrections (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL,
    wall_us    INTEGER NOT NULL,
    field      TEXT NOT NULL,
    before     TEXT NOT NULL,
    after      TEXT NOT NULL
);
"""
# The fields of a request corrected with their old and new values kept (:meth:`RightsRegister.
# corrections`): who asked, how to reach them, and the numbers their calls are found by. Kept
# here, sealed, not in the audit trail: they go with the request when the retention sweep
# deletes it (:mod:`firmware.rightsretention`), as who asked does.
CORRECTED = {"requester": "who asked", "contact": "how to reach them", "numbers": "their numbers"}
# What a correction that leaves a field empty is told (the numbers may be none).
REQUIRED = {"requester": "give the name of the person who asked", "contact": "give how to reach them"}
# Columns added after the first release of the register: ``(name, declaration)``. A
# register made before gets them, empty; a wait begun then is read as one for
# clarification (its days excluded, the earlier of the two deadlines).
ADDED_COLUMNS = (
    ("pause_kind", "TEXT"),  # what the current (or last) wait is for: IDENTITY or CLARIFICATION
    ("id_received", "TEXT"),  # the day proof of identity last came: the month runs from it
    ("excluded_until", "TEXT"),  # the last day a clarification excluded (none counted twice)
    ("resumed_on", "TEXT"),  # the day the last thing waited for came: no wait starts before it
    ("version", "INTEGER NOT NULL DEFAULT 0"),  # one more at each change: a stale page is refused
    ("follows", "INTEGER"),  # the closed request this one follows up (incomplete, asked again)
    # The lines whose calls it is about ("1,4"; "" none named): a staff member's own, asked on
    # My line. In clear, as the kind is: it says which supervisors it waits for.
    ("lines", "TEXT NOT NULL DEFAULT ''"),
)


class RequestError(LinekeeperError, ValueError):
    """A change to a request that cannot be made as asked (nothing was changed).

    ``field``: the form field the refusal is about (``"on"``, the date of the change),
    or None when it is about the change as a whole (the request's state, a stale page).
    """

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.field = field


# ----- the calendar ---------------------------------------------------------------


# Where the business is: the parts of the UK by their ISO 3166-2 codes (the ``holidays``
# library's subdivisions of GB). Scotland and Northern Ireland have bank holidays of
# their own (and Scotland not Easter Monday nor the last Monday of August).
REGIONS = {"ENG": "England", "WLS": "Wales", "SCT": "Scotland", "NIR": "Northern Ireland"}
DEFAULT_REGION = "ENG"


def holidays_of(region):
    """Whose bank holidays ``region``'s deadlines count, in words: "England and Wales"
    (one calendar), "Scotland" or "Northern Ireland"."""
    return "England and Wales" if region in ("ENG", "WLS") else REGIONS.get(region, region)


def check_region(region):
    """:raises RequestError: ``region`` is not one of :data:`REGIONS` (the message names
    the setting and the choices)"""
    if region not in REGIONS:
        raise RequestError(
            "region: must be one of %s (%s), not %r"
            % (", ".join(REGIONS), ", ".join(REGIONS.values()), region)
        )


@functools.lru_cache(maxsize=128)
def _holidays(region, year):
    return frozenset(holidays.country_holidays("GB", subdiv=region, years=year))


def bank_holidays(year, region=DEFAULT_REGION):
    """The bank holidays of ``year`` in ``region`` (one of :data:`REGIONS`; England by
    default), from the ``holidays`` library: the standing rules, the days given in lieu
    of those on a weekend, and the one-off days proclaimed since (2020's VE Day move,
    2022's jubilee and state funeral, 2023's coronation). A holiday on a weekend is
    listed as well as its day in lieu. A holiday proclaimed after the library's release
    is not known: a deadline computed without it falls a day early, never late.

    :raises RequestError: ``region`` is not one of :data:`REGIONS`
    """
    check_region(region)
    return _holidays(region, year)


def working_day(day, region=DEFAULT_REGION):
    """``day``, or the next day after it that is neither a weekend nor a bank holiday
    of ``region``."""
    while day.weekday() >= 5 or day in bank_holidays(day.year, region):
        day += dt.timedelta(days=1)
    return day


def add_months(day, months):
    """The same date ``months`` calendar months after ``day``; the last day of that
    month when it has no such date (31 January + 1 month: 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_date(received, paused_days=0, extension_months=0, id_received=None, region=DEFAULT_REGION):
    """When a request received on ``received`` (a date) must be answered by.

    One calendar month (plus ``extension_months``) from receipt, or from
    ``id_received`` (the day proof of identity came, when it was waited for),
    ``paused_days`` (days excluded while waiting for clarification since then)
    added, moved to the next working day when it falls on a weekend or a bank
    holiday of ``region`` (:data:`REGIONS`: where the business is).
    """
    start = id_received or received
    day = add_months(start, 1 + extension_months) + dt.timedelta(days=paused_days)
    return working_day(day, region)


def _deadlines(entry, region):
    """``(due, first_due)`` of a request row (a dict of its clear columns)."""
    received = dt.date.fromisoformat(entry["received"])
    id_received = entry.get("id_received")
    id_received = dt.date.fromisoformat(id_received) if id_received else None
    paused = entry["paused_days"]
    return (
        due_date(received, paused, entry["extension_months"], id_received, region),
        due_date(received, paused, 0, id_received, region),
    )


# ----- the register ---------------------------------------------------------------


def _date(text, what):
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise RequestError("%s: give a date as YYYY-MM-DD, not %r" % (what, text)) from None


def _ids(text, what):
    """``"12, 15"`` as ``[12, 15]``; raises RequestError for anything else."""
    parts = (text or "").replace(",", " ").split()
    if not all(p.isascii() and p.isdigit() and len(p) < 12 for p in parts):
        raise RequestError("%s: give numbers separated by commas, e.g. 12, 15" % what)
    return sorted({int(p) for p in parts})


# How long a change to the register waits for another's lock (SQLite's default busy timeout).
WRITE_BUSY_S = 5


class RightsRegister:
    """The requests in ``DATA_DIR/rights.db``; ``cipher`` seals their personal fields;
    the deadlines count the bank holidays of ``region`` (:data:`REGIONS`).

    Every method that changes a request checks it all first and raises
    :class:`RequestError` (naming what was wrong) before anything is written; the
    caller audits the change it returns.
    """

    SEALED = ("requester", "contact", "numbers", "details", "pause_reason", "extension_reason", "outcome")

    def __init__(self, data_dir, cipher=None, region=DEFAULT_REGION, busy_s=None):
        check_region(region)
        self._cipher = cipher
        self.region = region
        path = os.path.join(data_dir, FILE)
        # The web UI writes it, the recorder reads it: the box's data mode, and WAL, so a
        # writer killed mid-change leaves nothing a read-only reader must roll back (a hot
        # rollback journal makes its open fail: "attempt to write a readonly database").
        fsutil.create_db_file(path)
        # ``busy_s``: how long a read waits for another process's lock (a page that only
        # reads: a moment, then it says the register is locked); a change always waits
        # SQLite's busy timeout (:data:`WRITE_BUSY_S`), as before.
        wait_s = WRITE_BUSY_S if busy_s is None else busy_s
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=wait_s)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _missing(self):
        have = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        return [name for name, _ in ADDED_COLUMNS if name not in have]

    def _migrate(self):
        """Add the columns a register made by an earlier release lacks (in one transaction:
        two processes may open it at once). A register that has them takes no write lock
        here: a page that only reads must not wait for, or fail under, another's change."""
        if not self._missing():
            return
        self._writing()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
            for name, declaration in ADDED_COLUMNS:
                if name not in have:
                    self._db.execute("ALTER TABLE requests ADD COLUMN %s %s" % (name, declaration))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self):
        self._db.close()

    def _writing(self):
        """A change waits for another's lock as long as a writer does (:data:`WRITE_BUSY_S`),
        whatever the register was opened to wait for a read."""
        self._db.execute("PRAGMA busy_timeout = %d" % (WRITE_BUSY_S * 1000))

    def _seal(self, values):
        if self._cipher is None:
            return values
        return {c: self._cipher.seal(v, "rights." + c) if c in self.SEALED else v for c, v in values.items()}

    def _row(self, row, names):
        open_ = opener(self._cipher)
        entry = {
            c: open_(v, "rights." + c) if c in self.SEALED else v for c, v in zip(names, row, strict=True)
        }
        entry["due"], entry["first_due"] = _deadlines(entry, self.region)
        entry["lines"] = _lines(entry.get("lines"))
        return entry

    def get(self, request_id):
        """The request (a dict with ``due`` and ``first_due`` dates), or None."""
        cur = self._db.execute("SELECT * FROM requests WHERE id = ?", (request_id,))
        row = cur.fetchone()
        return None if row is None else self._row(row, [d[0] for d in cur.description])

    def entries(self):
        """Every request, newest first."""
        cur = self._db.execute("SELECT * FROM requests ORDER BY id DESC")
        names = [d[0] for d in cur.description]
        return [self._row(r, names) for r in cur.fetchall()]

    def deadlines(self):
        """The open, extended and waiting requests' clear columns with their deadlines
        (:func:`clear_entries`): what a list of what is due needs, readable without the key
        (the web UI may start before the recorder has opened it)."""
        return clear_entries(self._db, (OPEN, EXTENDED, WAITING), self.region)

    def logged_by(self, actor, since_us=0):
        """Every request the account ``actor`` logged itself (a staff member's own, from the
        My line page) at or after ``since_us`` (the account's making: an earlier account of
        the same name logged the others), by id: their clear columns (:func:`clear_entries`),
        readable without the key, and nothing sealed (who asked, their words, the outcome)."""
        return clear_entries(self._db, tuple(STATUSES), self.region, actor=actor, since_us=since_us)

    def add(
        self,
        *,
        actor,
        kind,
        received,
        requester,
        contact,
        numbers,
        details,
        today,
        wall_us,
        follows=None,
        lines=(),
    ):
        """Log a request received on ``received`` (a date, not after ``today``); its id.
        ``lines``: the lines whose calls it is about (a staff member's own), if any; a
        follow-up is about its first's.

        ``follows``: the id of the answered or refused request this one follows up (the
        person says the answer was incomplete, or asks again): a request of its own, with
        its own month from ``received``, which is not before that one was closed.
        """
        if kind not in KINDS:
            raise RequestError("choose what was asked for: %s" % ", ".join(KINDS))
        check_received(received, today)
        if follows is not None:
            first = self.get(follows)
            if first is None or first["status"] not in CLOSED:
                raise RequestError(
                    "request %s is not answered or refused: record what happens to it there" % follows
                )
            if received.isoformat() < first["closed_on"]:
                raise RequestError(
                    "received: %s is before request %d was closed (%s)"
                    % (day_words(received), follows, day_words(first["closed_on"])),
                    field="received",
                )
            lines = first["lines"]
        values = {"requester": requester, "contact": contact, "numbers": numbers, "details": details}
        self._writing()
        # Looked for and written in one write transaction: of a form sent twice at once, the
        # second finds the first.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            same = self._same_open(kind, received, follows, _lines_text(lines), values)
            if same is not None:
                raise RequestError(
                    "this request is logged already, as request %d (the same person, day received "
                    "and words, still open): it was not logged again" % same,
                    field="details",
                )
            cur = self._db.execute(
                "INSERT INTO requests (created_us, updated_us, actor, kind, received, status, follows, "
                "lines, requester, contact, numbers, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    wall_us,
                    wall_us,
                    actor,
                    kind,
                    received.isoformat(),
                    OPEN,
                    follows,
                    _lines_text(lines),
                    *self._seal(values).values(),
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return cur.lastrowid

    def _same_open(self, kind, received, follows, lines_text, values):
        """The id of a request not yet closed that is this one again (its form sent twice):
        the same kind, day received, request followed up, lines, person and words; or None."""
        rows = self._db.execute(
            "SELECT id FROM requests WHERE kind = ? AND received = ? AND follows IS ? AND lines IS ? "
            "AND status NOT IN (%s) ORDER BY id" % ", ".join("?" * len(CLOSED)),
            (kind, received.isoformat(), follows, lines_text, *CLOSED),
        ).fetchall()
        for (request_id,) in rows:
            entry = self.get(request_id)
            if entry is not None and all(entry[c] == v for c, v in values.items()):
                return request_id
        return None

    def set_lines(self, request_id, *, lines, wall_us, version=None):
        """Say which lines' calls request ``request_id`` is about (``lines``; none: no line
        in particular), while it is open: who is shown it follows them
        (:func:`concerns_lines`). Returns the request and the lines it was about before.

        :raises RequestError: a line is not a number from 1, or the request is closed, gone
            or changed since ``version`` (:meth:`_changing`)
        """
        text = _lines_text(lines)
        with self._changing(request_id, version) as entry:
            before = entry["lines"]
            self._update(request_id, wall_us, lines=text)
        return self.get(request_id), before

    def correct_received(self, request_id, *, received, today, wall_us, version=None):
        """Correct the day request ``request_id`` was received (mistyped when it was logged):
        its month runs from ``received`` then. Only while it is open and its clock has never
        stopped nor been extended: a wait's days and an extension's deadline were decided on
        the day first given, and stay as they were. Returns the request and the day it said
        before.

        :raises RequestError: ``received`` is after ``today``, before the GDPR applied, before
            the request it follows up was closed, or the day already given; the request has
            waited or been extended, or is closed, gone or changed since ``version``
            (:meth:`_changing`)
        """
        try:
            check_received(received, today)
        except RequestError as exc:
            raise RequestError(str(exc), field="received") from None
        with self._changing(request_id, version) as entry:
            if (
                entry["status"] != OPEN
                or entry["extension_months"]
                or entry["paused_days"]
                or any(entry[c] for c in ("paused_since", "resumed_on", "id_received", "excluded_until"))
            ):
                # About the request as a whole: its page no longer shows the form.
                raise RequestError(
                    "request %d has waited or been extended since it was logged, counted from the "
                    "day received it gives: that day is no longer corrected" % request_id
                )
            before = entry["received"]
            if received.isoformat() == before:
                raise RequestError(
                    "received: it says %s already" % day_words(dt.date.fromisoformat(before)),
                    field="received",
                )
            if entry["follows"] is not None:
                first = self.get(entry["follows"])
                if first is not None and received.isoformat() < (first["closed_on"] or ""):
                    raise RequestError(
                        "received: %s is before request %d was closed (%s)"
                        % (
                            day_words(received),
                            entry["follows"],
                            day_words(dt.date.fromisoformat(first["closed_on"])),
                        ),
                        field="received",
                    )
            self._update(request_id, wall_us, received=received.isoformat())
        return self.get(request_id), dt.date.fromisoformat(before)

    def correct(self, request_id, *, field, value, wall_us, version=None):
        """Correct who asked (``field`` ``"requester"``: their name, mistyped when it was
        logged), how to reach them (``"contact"``: the address, e-mail or phone they are to be
        answered at; mistyped, or they moved) or the numbers their calls are found by
        (``"numbers"``: as the caller checked them, :func:`firmware.sar.request_numbers`; ""
        for none), while request ``request_id`` is open. Sealed as when it was logged; the old
        and new values are kept in the register, sealed, with the request (:meth:`corrections`);
        the caller audits that it changed, with the correction's id, never what it says
        (personal data, which goes with the request). Returns the request and that id.

        :raises RequestError: ``field`` is not one of :data:`CORRECTED`; who asked or how to
            reach them is empty, or the value is what the request says already (``field`` the
            field); the request is closed, gone or changed since ``version`` (:meth:`_changing`)
        """
        if field not in CORRECTED:
            names = list(CORRECTED.values())
            raise RequestError(
                "only %s and %s are corrected here, not %r" % (", ".join(names[:-1]), names[-1], field)
            )
        value = (value or "").strip()
        if field in REQUIRED and not value:
            raise RequestError("%s: %s" % (field, REQUIRED[field]), field=field)
        with self._changing(request_id, version) as entry:
            before = entry[field]
            if before == value:
                raise RequestError("%s: it says that already" % field, field=field)
            self._update(request_id, wall_us, **{field: value})
            sealed = self._seal({field: before})[field], self._seal({field: value})[field]
            cur = self._db.execute(
                "INSERT INTO corrections (request_id, wall_us, field, before, after) VALUES (?, ?, ?, ?, ?)",
                (request_id, wall_us, field, *sealed),
            )
        return self.get(request_id), cur.lastrowid

    def corrections(self, request_id):
        """``{id: (field, before, after)}`` of request ``request_id``'s corrections of who
        asked, how to reach them and their numbers (:meth:`correct`), opened. A correction of
        how to reach them made before its values were kept has none here (its audit entry
        names no correction)."""
        open_ = opener(self._cipher)
        rows = self._db.execute(
            "SELECT id, field, before, after FROM corrections WHERE request_id = ? ORDER BY id", (request_id,)
        )
        return {
            cid: (field, open_(before, "rights." + field), open_(after, "rights." + field))
            for cid, field, before, after in rows
        }

    def follow_ups(self, request_id):
        """The ids of the requests that follow request ``request_id`` up, oldest first."""
        rows = self._db.execute("SELECT id FROM requests WHERE follows = ? ORDER BY id", (request_id,))
        return [r[0] for r in rows]

    def _update(self, request_id, wall_us, **values):
        values = self._seal(values)
        cols = sorted(values)
        self._db.execute(
            "UPDATE requests SET updated_us = ?, version = version + 1, %s WHERE id = ?"
            % ", ".join("%s = ?" % c for c in cols),
            [wall_us] + [values[c] for c in cols] + [request_id],
        )

    @contextlib.contextmanager
    def _changing(self, request_id, version):
        """The open request ``request_id``, read and changed in one write transaction (two
        supervisors at once: the second waits, then reads what the first wrote), committed
        when the block ends, rolled back when it raises.

        :raises RequestError: no such request, it is closed, or its ``version`` is not
            ``version`` (it changed since the page the change was made on was drawn)
        """
        self._writing()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            entry = self.get(request_id)
            if entry is None:
                raise RequestError("there is no request %d" % request_id)
            if entry["status"] in CLOSED:
                raise RequestError("request %d is already %s" % (request_id, entry["status"]))
            if version is not None and entry["version"] != version:
                raise RequestError(
                    "request %d was changed by someone else meanwhile: look again, then make "
                    "the change again if it is still needed" % request_id
                )
            yield entry
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _since(entry):
        """The first day a new wait or the answer may be dated: the receipt, or the day the
        last thing waited for came (waits never overlap)."""
        return max(dt.date.fromisoformat(d) for d in (entry["received"], entry["resumed_on"]) if d)

    @staticmethod
    def _on(entry, on, today, since, what):
        if on > today:
            raise RequestError(
                "%s: %s is after today (%s)" % (what, day_words(on), day_words(today)), field="on"
            )
        if on < since:
            raise RequestError("%s: %s is before %s" % (what, day_words(on), day_words(since)), field="on")

    def wait(self, request_id, *, kind, on, reason, today, wall_us, version=None):
        """Stop the clock from ``on``: waiting (``kind``) for proof of identity
        (:data:`IDENTITY`) or for clarification (:data:`CLARIFICATION`).

        ``version`` (here and in every change): the request's version the change was
        decided on, or None not to check it."""
        if kind not in WAIT_KINDS:
            raise RequestError("say what you are waiting for: proof of identity or clarification")
        with self._changing(request_id, version) as entry:
            self._wait(entry, kind=kind, on=on, reason=reason, today=today, wall_us=wall_us)
        return self.get(request_id)

    def _wait(self, entry, *, kind, on, reason, today, wall_us):
        request_id = entry["id"]
        if entry["status"] == WAITING:
            raise RequestError(
                "request %d is already waiting (since %s)" % (request_id, day_words(entry["paused_since"]))
            )
        self._on(entry, on, today, self._since(entry), "waiting from")
        if on > entry["due"]:
            # The clock cannot be stopped after the deadline: that would hide a request
            # already overdue.
            raise RequestError(
                "waiting from: %s is after the deadline (%s); a request already overdue cannot "
                "stop its clock: answer it" % (day_words(on), day_words(entry["due"])),
                field="on",
            )
        self._update(
            request_id,
            wall_us,
            status=WAITING,
            pause_kind=kind,
            paused_since=on.isoformat(),
            pause_reason=reason,
        )

    def resume(self, request_id, *, on, today, wall_us, version=None):
        """What was waited for came on ``on``: the clock runs again. Proof of identity
        starts the month again from ``on``; a clarification excludes the days from asking
        to ``on``, both included (a day already excluded is not counted twice). Returns
        the request and the days excluded (None for proof of identity)."""
        with self._changing(request_id, version) as entry:
            days = self._resume(entry, on=on, today=today, wall_us=wall_us)
        return self.get(request_id), days

    def _resume(self, entry, *, on, today, wall_us):
        request_id = entry["id"]
        if entry["status"] != WAITING:
            raise RequestError("request %d is not waiting for anything" % request_id)
        since = dt.date.fromisoformat(entry["paused_since"])
        self._on(entry, on, today, since, "received on")
        values = {
            "status": EXTENDED if entry["extension_months"] else OPEN,
            "paused_since": None,
            "resumed_on": on.isoformat(),
        }
        if entry["pause_kind"] == IDENTITY:
            days = None
            values.update(id_received=on.isoformat(), paused_days=0, excluded_until=None)
        else:
            if entry["excluded_until"]:
                since = max(since, dt.date.fromisoformat(entry["excluded_until"]) + dt.timedelta(days=1))
            days = max((on - since).days + 1, 0)
            # A wait begun after the month's last day, in the days a weekend or a bank
            # holiday had moved the deadline on by: those days were still the business's
            # to answer in, and come after the wait too (without them the request was
            # overdue as the clock ran again).
            start = dt.date.fromisoformat(entry["id_received"] or entry["received"])
            last = add_months(start, 1 + entry["extension_months"]) + dt.timedelta(days=entry["paused_days"])
            moved = (working_day(last, self.region) - last).days if since > last else 0
            values.update(paused_days=entry["paused_days"] + days + moved, excluded_until=on.isoformat())
        self._update(request_id, wall_us, **values)
        return days

    def extend(self, request_id, *, months, reason, today, wall_us, version=None):
        """Extend by ``months`` (the whole extension at most two months), decided no later
        than the first month's deadline."""
        with self._changing(request_id, version) as entry:
            self._extend(entry, months=months, reason=reason, today=today, wall_us=wall_us)
        return self.get(request_id)

    def _extend(self, entry, *, months, reason, today, wall_us):
        request_id = entry["id"]
        if entry["status"] == WAITING:
            raise RequestError(
                "the clock is stopped (waiting since %s): record what came first"
                % day_words(entry["paused_since"])
            )
        if months not in range(1, MAX_EXTENSION_MONTHS + 1):
            raise RequestError("extend by 1 or 2 months")
        if entry["extension_months"] + months > MAX_EXTENSION_MONTHS:
            raise RequestError(
                "request %d is already extended by %d month%s: at most %d in all"
                % (
                    request_id,
                    entry["extension_months"],
                    "" if entry["extension_months"] == 1 else "s",
                    MAX_EXTENSION_MONTHS,
                )
            )
        if today > entry["first_due"]:
            raise RequestError(
                "the first month ended on %s: an extension is decided, and the person told, within it"
                % day_words(entry["first_due"])
            )
        total = entry["extension_months"] + months
        reasons = "; ".join(r for r in (entry["extension_reason"], reason) if r)
        self._update(request_id, wall_us, status=EXTENDED, extension_months=total, extension_reason=reasons)

    def close_request(
        self, request_id, *, status, on, outcome, today, wall_us, disclosure_ids=(), call_ids=(), version=None
    ):
        """Answered (``outcome``: what was done) or refused (``outcome``: why) on ``on``."""
        if status not in CLOSED:
            raise RequestError("a request is closed as answered or refused")
        with self._changing(request_id, version) as entry:
            self._close(entry, status, on, outcome, today, wall_us, disclosure_ids, call_ids)
        return self.get(request_id)

    def _close(self, entry, status, on, outcome, today, wall_us, disclosure_ids, call_ids):
        request_id = entry["id"]
        since = max(self._since(entry), dt.date.fromisoformat(entry["paused_since"] or entry["received"]))
        self._on(entry, on, today, since, "answered on" if status == ANSWERED else "refused on")
        self._update(
            request_id,
            wall_us,
            status=status,
            closed_on=on.isoformat(),
            paused_since=None,
            outcome=outcome,
            disclosure_ids=",".join(map(str, disclosure_ids)),
            call_ids=",".join(map(str, call_ids)),
        )


# The columns kept in clear: what the deadline and the alarm need, readable without the key.
CLEAR = (
    "id",
    "kind",
    "received",
    "status",
    "paused_since",
    "paused_days",
    "extension_months",
    "closed_on",
    "pause_kind",
    "id_received",
    "follows",
    "lines",
)


def clear_entries(db, statuses, region=DEFAULT_REGION, actor=None, since_us=0):
    """The requests in ``statuses`` as dicts of their clear columns (:data:`CLEAR`) with
    ``due`` and ``first_due`` (counting ``region``'s bank holidays), by id; with ``actor``,
    only those that account logged at or after ``since_us``. ``db`` may be a read-only
    connection to a register an earlier release made (a column it lacks reads as None)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(requests)")}
    cols = [c for c in CLEAR if c in have]
    cur = db.execute(
        "SELECT %s FROM requests WHERE status IN (%s)%s ORDER BY id"
        % (
            ", ".join(cols),
            ", ".join("?" * len(statuses)),
            "" if actor is None else " AND actor = ? AND created_us >= ?",
        ),
        tuple(statuses) + (() if actor is None else (actor, since_us)),
    )
    found = []
    for row in cur.fetchall():
        entry = dict.fromkeys(CLEAR)
        entry.update(zip(cols, row, strict=True))
        entry["due"], entry["first_due"] = _deadlines(entry, region)
        entry["lines"] = _lines(entry["lines"])
        found.append(entry)
    return found


def is_late(entry, today):
    """Whether the request ``entry`` (a dict with ``status``, ``closed_on`` and ``due``) is
    late: closed after its deadline, or not closed and past it on ``today`` (the register's
    CSV says so in its ``late`` column; the year in review counts them)."""
    closed = entry["status"] in CLOSED and entry["closed_on"]
    ended = dt.date.fromisoformat(entry["closed_on"]) if closed else today
    return ended > entry["due"]


def read_clear(data_dir, region=DEFAULT_REGION):
    """Every request in ``data_dir``'s register as its clear columns with its deadlines
    (:func:`clear_entries`), by id, read-only and without the key (nothing sealed: who asked,
    their words, the outcome); [] when the box has no register.

    :raises RequestError: ``region`` is not one of :data:`REGIONS`
    """
    check_region(region)
    path = os.path.join(data_dir, FILE)
    if not os.path.exists(path):
        return []
    db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(path), uri=True)
    try:
        return clear_entries(db, tuple(STATUSES), region)
    finally:
        db.close()


def _lines(text):
    """The lines a request is about, as sorted ints (``"1,4"``; "" or None: none named)."""
    return sorted(int(n) for n in (text or "").split(",") if n.strip())


def _lines_text(lines):
    """``lines`` as the register keeps them (``"1,4"``, sorted, each once).

    :raises RequestError: one is not a whole number from 1 (naming it)
    """
    bad = [n for n in lines if type(n) is not int or n < 1]
    if bad:
        raise RequestError("lines: a line is a number from 1, not %s" % ", ".join(map(repr, bad)))
    return ",".join(str(n) for n in sorted(set(lines)))


def supervised_lines(accounts):
    """The lines some supervisor holds, of ``accounts``: ``{name: (roles, lines)}`` of the
    enabled accounts (:meth:`web.accounts.Accounts.lines`,
    :func:`firmware.datadir.account_lines`; a disabled one answers nothing)."""
    return {n for roles, lines in accounts.values() if "supervisor" in roles for n in lines}


def concerns_lines(entry, lines, supervised=None):
    """Whether request ``entry`` is one for a supervisor of ``lines``: about one of them, or
    about no line in particular (a caller's, found by their number), which any may answer;
    or, ``supervised`` the lines some enabled supervisor holds (:func:`supervised_lines`),
    about none of those (a staff member's on a line no supervisor holds), which any must
    answer, as nobody else would. ``supervised`` None: every line has its supervisor."""
    about = set(entry["lines"])
    return not about or bool(about & set(lines)) or (supervised is not None and not about & set(supervised))


def attention(entries, today):
    """The open requests overdue or due within :data:`DUE_SOON_DAYS` days, overdue first:
    ``[(days left, entry)]`` (negative: days overdue). A waiting request's clock stands,
    so it is not among them."""
    found = [
        ((e["due"] - today).days, e)
        for e in entries
        if e["status"] in (OPEN, EXTENDED) and (e["due"] - today).days <= DUE_SOON_DAYS
    ]
    return sorted(found, key=lambda x: (x[0], x[1]["id"]))


def check_received(received, today):
    """:raises RequestError: ``received`` is after ``today`` or before :data:`GDPR_START`"""
    if received > today:
        raise RequestError("received: %s is after today (%s)" % (day_words(received), day_words(today)))
    if received < GDPR_START:
        raise RequestError(
            "received: %s is before the GDPR applied (%s): check the year"
            % (day_words(received), day_words(GDPR_START))
        )


def read_ids(text, what):
    """The ids typed in a form field (``"12, 15"``); :class:`RequestError` for anything else."""
    return _ids(text, what)


def parse_date(text, what):
    """A date typed as YYYY-MM-DD; :class:`RequestError` naming ``what`` otherwise."""
    return _date(text, what)


class OverdueCheck:
    """``request_overdue``: on while any open request is past its deadline (the
    recorder's periodic round). Reads only the clear columns, read-only; a box with no
    register has nothing overdue. Raised where the request is seen: a request about no
    line on the whole box, one about lines (a staff member's) on each of them, so that a
    supervisor is told only of the requests the register shows them
    (:func:`concerns_lines`); one about lines no enabled supervisor holds, on the whole
    box too, as every supervisor is shown it. Its message names those overdue there; when they change
    (another one late, one answered while others stay late) the occurrence clears and a
    new one is raised, so the mail goes again and never names one already answered.
    A register that cannot be read raises ``request_check_failed`` (and is logged)
    until it can.

    :param wall_us: the box's clock
    :param zone: ``() -> IANA zone name``: the box's time zone, whose date the
        deadlines are (UTC when None or not a zone)
    :param region: ``() -> region`` (:data:`REGIONS`): where the business is, whose
        bank holidays the deadlines count (England when it, or what it gives, is None);
        one not known is like a register that cannot be read: ``request_check_failed``,
        its message naming the region.
    :param accounts: ``() -> {name: (roles, lines)}`` of the enabled accounts
        (:func:`firmware.datadir.account_lines`), whose supervisors' lines are held
        (:func:`supervised_lines`); when it, or what it gives, is None (web.db not read),
        every line is taken as held: a request is raised on its lines.
    """

    def __init__(self, alarm_log, data_dir, wall_us, zone=None, region=None, accounts=None):
        self.alarm_log = alarm_log
        self.path = os.path.join(data_dir, FILE)
        self.wall_us = wall_us
        self.zone = zone
        self.region = region
        self.accounts = accounts

    def today(self):
        try:
            zone = check_zone(self.zone() if self.zone is not None else "UTC")
        except ValueError:
            zone = dt.UTC
        return dt.datetime.fromtimestamp(self.wall_us() / 1e6, zone).date()

    def overdue(self):
        """``[(id, kind, due)]`` of the open requests past their deadline."""
        return [(e["id"], e["kind"], e["due"]) for e in self._late()]

    def overdue_by_line(self):
        """``{line: [(id, kind, due)]}`` of the open requests past their deadline, by where
        their alarm is raised: 0 (the whole box) for one about no line or about none a
        supervisor holds, else each of its lines."""
        found = {}
        late = self._late()
        accounts = self.accounts() if self.accounts is not None and late else None
        supervised = supervised_lines(accounts) if accounts is not None else None
        for e in late:
            held = supervised is None or set(e["lines"]) & supervised
            for line in (e["lines"] if held else []) or [0]:
                found.setdefault(line, []).append((e["id"], e["kind"], e["due"]))
        return found

    def _late(self):
        if not os.path.exists(self.path):
            return []
        region = (self.region() if self.region is not None else None) or DEFAULT_REGION
        check_region(region)
        db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(self.path), uri=True)
        try:
            rows = clear_entries(db, (OPEN, EXTENDED), region)
        finally:
            db.close()
        today = self.today()
        return [e for e in rows if e["due"] < today]

    def __call__(self):
        wall_us = int(self.wall_us())
        try:
            late = self.overdue_by_line()
        except (sqlite3.Error, OSError, ValueError) as exc:
            # Not watching the deadlines must not be silent: said in the log and as an
            # alarm of its own (request_overdue stays as it was: nothing is known).
            if isinstance(exc, RequestError):  # the site's region: not known
                what = "the site settings' %s: choose where the business is in Settings" % exc
            else:
                what = "%s cannot be read (%s)" % (FILE, exc)
            log.error("the register of requests %s: %s", self.path, what)
            self.alarm_log.set(
                "request_check_failed",
                True,
                message="%s: the requests' deadlines are not being watched" % what,
                wall_us=wall_us,
            )
            return
        self.alarm_log.set("request_check_failed", False, wall_us=wall_us)
        # Cleared where none is overdue now: the whole box, and each line it is open on.
        open_on = self.alarm_log.open_line_faults()
        raised = {0} | {n for n, kinds in open_on.items() if "request_overdue" in kinds}
        for line in sorted(raised | set(late)):
            here = late.get(line, [])
            self.alarm_log.set(
                "request_overdue",
                bool(here),
                line=line,
                message="; ".join("request %d (%s) was due on %s" % (i, k, d) for i, k, d in here)
                + (": answer it, or record the answer (Requests)" if here else ""),
                wall_us=wall_us,
                # Another request overdue, or one answered: a new occurrence naming those
                # overdue now, mailed again.
                renew=True,
            )
