"""Finding calls in the call log: filters and keyset pagination.

A read-only view of the call log's SQLite file (``calls.db``), kept apart
from :class:`firmware.calls.calllog.CallLog`, which writes it. Results are newest
first; a page ends with a cursor (the last row's ``started_at`` and ``id``)
and the next page starts strictly after it, so paging costs the same on the
first page and the thousandth (no ``OFFSET``), and calls arriving meanwhile
do not shift the pages.

The filters map onto indexes that :func:`ensure_indexes` creates. A number
search is either a prefix (uses the number index: a range for the number as
dialled, and one after each of the prefixes dialled before a number, 141 or 18001,
and a line's outside-line digit: :func:`number_starts`) or "contains" (a scan of a
covering ``(started_at, number)`` index in time order, which stops as soon
as a page is full). Duration is talk time: from answer to end, in whole
seconds; a call never answered lasts 0 s.
"""

import dataclasses
import os
import re
import sqlite3
import threading
import time

from firmware.calls.calllog import ERASED, EXPIRED, call_json
from firmware.datadir import connect_readonly
from firmware.policy.rules import called_number
from firmware.storage.fieldseal import KEY_FILE, register_sql
from telephony import countries

PAGE_MAX = 200
DIRECTIONS = ("in", "out")
NUMBER_MATCHES = ("prefix", "contains")
# The calls list's number search when none is chosen, and `linekeeper calls --number`'s.
NUMBER_MATCH_DEFAULT = "contains"
_NUMBER_CHARS = re.compile(r"^[0-9*#+]{1,32}$")

# Below this many matches a number filter is served from its index and the
# matches sorted; above it, scanning in time order fills a page sooner.
SELECTIVE_ROWS = 2000
# Sealed numbers and names (firmware.storage.fieldseal): up to this many distinct
# matching values are looked up by their sealed text; more are matched by opening
# the calls in time order. The newest calls re-read at every search.
SEALED_IN_MAX = 500
SEALED_RECENT_ROWS = 5000
# A number, name or tag search counts its matches up to this many ("at least").
COUNT_CAP = 10_000
# How long a count is reused while no call is added (calls updated in place,
# e.g. a recording finishing, show in the count within this time).
COUNT_TTL_S = 10.0

INDEXES = """
CREATE INDEX IF NOT EXISTS calls_search_started_number ON calls (started_at, number);
CREATE INDEX IF NOT EXISTS calls_search_line_started ON calls (line, started_at);
CREATE INDEX IF NOT EXISTS calls_search_number_started ON calls (number, started_at);
"""

# "Contains" searches: a trigram index over each of these columns of the calls table
# (the numbers; the caller-ID names, case-insensitive), kept in step with it by
# triggers (the call log writes them after the row is created, as caller ID arrives).
FTS_COLUMNS = ("number", "name")


def fts_table(column):
    """The statement creating the trigram index of ``column`` (``calls_COLUMN_fts``)."""
    return (
        f"CREATE VIRTUAL TABLE calls_{column}_fts USING fts5(\n"
        f"    {column}, content='calls', content_rowid='id', tokenize='trigram');"
    )


def fts_triggers(column):
    """The statements of the triggers keeping ``calls_COLUMN_fts`` in step with the calls
    table: a row inserted, deleted, or its ``column`` changed."""
    return [
        statement.format(c=column)
        for statement in (
            """CREATE TRIGGER IF NOT EXISTS calls_{c}_fts_ai AFTER INSERT ON calls
WHEN new.{c} IS NOT NULL BEGIN
    INSERT INTO calls_{c}_fts (rowid, {c}) VALUES (new.id, new.{c});
END;""",
            """CREATE TRIGGER IF NOT EXISTS calls_{c}_fts_ad AFTER DELETE ON calls
WHEN old.{c} IS NOT NULL BEGIN
    INSERT INTO calls_{c}_fts (calls_{c}_fts, rowid, {c}) VALUES ('delete', old.id, old.{c});
END;""",
            """CREATE TRIGGER IF NOT EXISTS calls_{c}_fts_au AFTER UPDATE OF {c} ON calls
WHEN old.{c} IS NOT new.{c} BEGIN
    INSERT INTO calls_{c}_fts (calls_{c}_fts, rowid, {c})
        SELECT 'delete', old.id, old.{c} WHERE old.{c} IS NOT NULL;
    INSERT INTO calls_{c}_fts (rowid, {c})
        SELECT new.id, new.{c} WHERE new.{c} IS NOT NULL;
END;""",
        )
    ]


def _ensure_fts(db, column):
    """Create ``column``'s trigram index (filled from the calls table) and its triggers
    where missing; True when the index was new."""
    table = "calls_%s_fts" % column
    new = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is None
    if new:
        db.execute(fts_table(column))
        db.execute("INSERT INTO %s (%s) VALUES ('rebuild')" % (table, table))
    for statement in fts_triggers(column):
        db.execute(statement)
    return new


FTS_NAMES = tuple("calls_%s_fts_%s" % (column, when) for column in FTS_COLUMNS for when in ("ai", "ad", "au"))


def drop_trigram_indexes(db):
    """Drop the trigram indexes and their triggers from the open connection ``db``, if there.

    A box that seals its numbers and names (:mod:`firmware.storage.fieldseal`) would
    only fill them with sealed text that no search uses, at a dozen 1 KiB pages of
    every call-log commit that writes a number or a name (docs/audit-writes.md).
    """
    for name in FTS_NAMES:
        db.execute("DROP TRIGGER IF EXISTS %s" % name)
    for column in FTS_COLUMNS:
        db.execute("DROP TABLE IF EXISTS calls_%s_fts" % column)


def ensure_indexes(db_path, sealed=None):
    """Create the indexes searches need (idempotent; quick when they exist).

    Creating them on a log that already holds a million calls takes a few
    seconds, once. ``sealed``: whether the box seals numbers and names (None: it
    does when its storage key is beside ``db_path``); then there are no trigram
    indexes (:func:`drop_trigram_indexes`). Raises :class:`sqlite3.Error` if the
    file is not a call log.
    """
    if sealed is None:
        sealed = os.path.exists(os.path.join(os.path.dirname(os.path.abspath(db_path)), KEY_FILE))
    db = sqlite3.connect(os.fspath(db_path), isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        for statement in INDEXES.split(";")[:-1]:
            db.execute(statement)
        if sealed:
            drop_trigram_indexes(db)
            db.execute("COMMIT")
            return
        created = [_ensure_fts(db, column) for column in FTS_COLUMNS]
        db.execute("COMMIT")
        if any(created):
            db.execute("ANALYZE")
    finally:
        db.close()


@dataclasses.dataclass(frozen=True)
class CallFilter:
    """What to look for; every field is optional (``None`` means any).

    ``since_us`` / ``until_us``  start time range, µs since the epoch (UTC),
                                 inclusive / exclusive
    ``lines``                    the lines to include (a tuple); an empty tuple
                                 matches nothing (a user granted no lines)
    ``direction``                "in" or "out"
    ``number``                   digits (and ``* # +``) of the caller's or
                                 dialled number; ``number_match`` is "prefix"
                                 or "contains". A "prefix" search also finds
                                 a number dialled with prefixes before it
                                 (141, 18001: :func:`number_starts`), those of
                                 ``country``, and on a line of ``outside`` (a
                                 tuple of ``(line, digit)``), a number dialled
                                 after that line's outside-line digit
    ``min_duration_s``           at least this much talk time
    ``recorded``                 True: only calls with a recording (not deleted)
                                 in the ``recordings`` table; False: only
                                 calls without one
    ``name``                     part of the caller-ID name (any case), or
                                 one of ``name_numbers`` (the numbers a
                                 phonebook gives that name), or one of
                                 ``named_ids`` (the calls whose name was
                                 corrected to one holding it); never one of
                                 ``renamed_ids`` by the other two (calls whose
                                 name was corrected: the corrected name is
                                 the call's, web.corrections)
    ``tag``                      calls tagged with this category
    ``answered``                 True: only calls answered (by us, or the far end
                                 of an outbound call); False: only those never
                                 answered (missed, or unanswered when dialled)
    ``held``                     True: only calls on legal hold; False: only
                                 those not held
    ``absence``                  "private" (withheld) or "unavailable": calls
                                 whose caller's network sent that, not a number;
                                 "erased": calls whose caller's details were
                                 erased on request; "expired": removed by
                                 retention past call_details_days
    """

    since_us: int = None
    until_us: int = None
    lines: tuple = None
    direction: str = None
    number: str = None
    number_match: str = "prefix"
    country: str = "uk"
    outside: tuple = ()
    min_duration_s: int = None
    recorded: bool = None
    name: str = None
    name_numbers: tuple = ()
    named_ids: tuple = ()
    renamed_ids: tuple = ()
    tag: str = None
    absence: str = None
    answered: bool = None
    held: bool = None

    def __post_init__(self):
        if self.absence not in (None, "private", "unavailable", ERASED, EXPIRED):
            raise ValueError(
                "absence must be 'private', 'unavailable', 'erased' or 'expired', not %r" % (self.absence,)
            )
        if self.direction not in (None,) + DIRECTIONS:
            raise ValueError("direction must be 'in' or 'out', not %r" % (self.direction,))
        if self.number_match not in NUMBER_MATCHES:
            raise ValueError("number_match must be 'prefix' or 'contains'")
        if self.number is not None and not _NUMBER_CHARS.match(self.number):
            raise ValueError("a number is 1 to 32 of the characters 0-9 * # +")
        countries.country(self.country)  # ValueError naming the known countries
        if not isinstance(self.outside, tuple) or not all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and isinstance(pair[1], str)
            and re.fullmatch(r"[0-9]{1,2}", pair[1])
            for pair in self.outside
        ):
            raise ValueError("outside must be a tuple of (line, outside-line digit) pairs")
        if self.min_duration_s is not None and self.min_duration_s < 0:
            raise ValueError("min_duration_s must not be negative")
        if self.lines is not None and not isinstance(self.lines, tuple):
            raise ValueError("lines must be a tuple")
        if self.name is not None and not 1 <= len(self.name) <= 64:
            raise ValueError("a name to search for is 1 to 64 characters")
        if not isinstance(self.name_numbers, tuple) or len(self.name_numbers) > 500:
            raise ValueError("name_numbers must be a tuple of at most 500 numbers")
        for field in ("named_ids", "renamed_ids"):
            ids = getattr(self, field)
            if not isinstance(ids, tuple) or not all(type(i) is int and i > 0 for i in ids):
                raise ValueError("%s must be a tuple of call ids (whole numbers from 1)" % field)


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a page ended: ``started_at`` (µs) and ``id`` of its last call."""

    started_at: int
    id: int

    def encode(self):
        return "%d.%d" % (self.started_at, self.id)

    @classmethod
    def decode(cls, text):
        """Parse ``encode()``'s text; raises :class:`ValueError` for anything else."""
        m = re.fullmatch(r"(-?\d{1,19})\.(\d{1,19})", text or "")
        if not m:
            raise ValueError("not a page cursor: %r" % (text,))
        return cls(int(m.group(1)), int(m.group(2)))


class CallSearch:
    """Search the call log at ``db_path`` (read-only; one connection per thread).

    ``cipher``: the box's :class:`~firmware.storage.fieldseal.FieldCipher` when
    its numbers and names are sealed. Number and name searches then match the
    distinct opened values in memory and look the matching sealed texts up by
    the number index (:meth:`_sealed_matches`); when very many match, they open
    the values in time order inside SQLite (``lk_open``). The trigram indexes
    hold only sealed text and are not used.
    """

    def __init__(self, db_path, cipher=None):
        self.path = os.fspath(db_path)
        self._cipher = cipher
        self._sealed = {}  # field -> {"after_id", "values": {sealed: opened}} (see _sealed_matches)
        self._sealed_lock = threading.Lock()
        self._local = threading.local()
        self._fts = None
        self._recordings = False
        self._counts = {}  # (filter, cap, newest id) -> (monotonic s, (n, exact))

    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            # Read-only, and on a full or read-only card too (no -shm can be made there):
            # `linekeeper calls` searches a card the box refuses to start on.
            db = connect_readonly(self.path)
            db.row_factory = sqlite3.Row
            register_sql(db, self._cipher)
            db.create_function("lk_number_starts", 4, self._number_starts, deterministic=True)
            self._local.db = db
        return db

    def _number_starts(self, value, part, country, outside):
        """SQL's ``lk_number_starts(number, part, country, outside)``: :func:`number_starts`
        of the (opened) number; false for a number that does not open."""
        if value is not None and self._cipher is not None:
            value = self._cipher.open_quietly(value, "number")
        return value is not None and number_starts(value, part, country, outside)

    def _where(self, flt, for_count=False):
        where, args = [], []
        if flt.since_us is not None:
            where.append("started_at >= ?")
            args.append(int(flt.since_us))
        if flt.until_us is not None:
            where.append("started_at < ?")
            args.append(int(flt.until_us))
        if flt.lines is not None:
            if not flt.lines:
                where.append("0")
            else:
                where.append("line IN (%s)" % ",".join("?" * len(flt.lines)))
                args.extend(int(line) for line in flt.lines)
        if flt.direction is not None:
            where.append("direction = ?")
            args.append(flt.direction)
        if flt.number is not None:
            where.append(self._number_clause(flt, args, for_count))
        if flt.absence is not None:
            where.append("absence = ?")
            args.append(flt.absence)
        if flt.answered is not None:
            where.append("answered_at IS %sNULL" % ("NOT " if flt.answered else ""))
        if flt.held is not None:
            if self._has_table("legal_holds"):
                where.append("id %sIN (SELECT call_id FROM legal_holds)" % ("" if flt.held else "NOT "))
            elif flt.held:
                where.append("0")  # no call was ever held on this log
        if flt.min_duration_s:
            where.append("answered_at IS NOT NULL AND ended_at - answered_at >= ?")
            args.append(int(flt.min_duration_s) * 1_000_000)
        if flt.recorded is not None:
            if self._has_recordings():
                where.append(
                    "%sEXISTS (SELECT 1 FROM recordings r WHERE r.call_id = calls.id "
                    "AND r.state != 'deleted')" % ("" if flt.recorded else "NOT ")
                )
            elif flt.recorded:
                where.append("0")  # this log has no recordings at all
        if flt.name is not None:
            where.append(self._name_clause(flt, args, for_count))
        if flt.tag is not None:
            if self._has_table("call_tags"):
                where.append("id IN (SELECT call_id FROM call_tags WHERE tag = ?)")
                args.append(flt.tag)
            else:
                where.append("0")
        return where, args

    def _has_table(self, name):
        return (
            self._db().execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None
        )

    def _name_clause(self, flt, args, for_count=False):
        """The caller-name condition: the name trigram index when the part is long enough.

        Few matches (or counting): the matching ids from the index; many: a
        scan in time order, which fills a page quickly when matches are common.
        """
        like = "%" + flt.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clause = "%s LIKE ? ESCAPE '\\'" % self._col("name")
        clause_args = [like]
        if self._cipher is None and len(flt.name) >= 3 and self._has_table("calls_name_fts"):
            match = '"%s"' % flt.name.replace('"', '""')
            few = (
                for_count
                or self._db()
                .execute(
                    "SELECT count(*) FROM (SELECT 1 FROM calls_name_fts WHERE calls_name_fts "
                    "MATCH ? LIMIT ?)",
                    (match, SELECTIVE_ROWS),
                )
                .fetchone()[0]
                < SELECTIVE_ROWS
            )
            if few:
                clause = "id IN (SELECT rowid FROM calls_name_fts WHERE calls_name_fts MATCH ?) AND " + clause
                clause_args = [match, like]
        if self._cipher is not None:
            part = flt.name.lower()
            matches = self._sealed_matches("name", lambda name: part in name.lower())
            if matches is not None:
                clause = "name IN (%s)" % ",".join("?" * len(matches)) if matches else "0"
                clause_args = list(matches)
        if flt.name_numbers:
            numbers = list(flt.name_numbers)
            if self._cipher is not None:
                # Sealing is deterministic: a number's sealed text finds it by the index.
                numbers = [self._cipher.seal(n, "number") for n in numbers]
            clause = "((%s) OR number IN (%s))" % (clause, ",".join("?" * len(numbers)))
            clause_args.extend(numbers)
        # A call whose name was corrected is found by its corrected name alone. The ids are
        # whole numbers (checked by CallFilter), written in the SQL: however many calls were
        # corrected, no limit on a statement's parameters is reached; a list of constants is
        # one lookup a row (its primary key), so the list stays as fast (docs/web-ui.md).
        if flt.renamed_ids:
            clause = "(%s) AND id NOT IN (%s)" % (clause, ",".join("%d" % i for i in flt.renamed_ids))
        if flt.named_ids:
            clause = "((%s) OR id IN (%s))" % (clause, ",".join("%d" % i for i in flt.named_ids))
        args.extend(clause_args)
        return clause

    def _sealed_matches(self, field, wanted):
        """The sealed values of ``field`` whose opened text is ``wanted(text)``, or None
        when more than :data:`SEALED_IN_MAX` distinct values are.

        Sealing is deterministic, so the distinct sealed values are the distinct
        numbers (or names): far fewer than calls. Each is opened once and kept
        (in memory only); each search reads the distinct values of the newest
        :data:`SEALED_RECENT_ROWS` calls again (a call's number may come after
        its row, as caller ID arrives).
        """
        db = self._db()
        with self._sealed_lock:
            seen = self._sealed.setdefault(field, {"after_id": 0, "values": {}})
            top = db.execute("SELECT coalesce(max(id), 0) FROM calls").fetchone()[0]
            start = max(0, min(seen["after_id"], top) - SEALED_RECENT_ROWS)
            values = seen["values"]
            # The first time every distinct value (from the index); later the newest rows
            # by rowid range (DISTINCT would walk the whole index again).
            sql = (
                "SELECT DISTINCT %s FROM calls WHERE %s IS NOT NULL" % (field, field)
                if start == 0
                else "SELECT %s FROM calls WHERE id > %d AND %s IS NOT NULL" % (field, start, field)
            )
            for (value,) in db.execute(sql):
                if value not in values:
                    values[value] = self._cipher.open_quietly(value, field)
            seen["after_id"] = top
            matches = []
            for sealed, text in values.items():
                if text is not None and wanted(text):
                    matches.append(sealed)
                    if len(matches) > SEALED_IN_MAX:
                        return None
            return matches

    def _col(self, field):
        """The SQL for a personal field's clear value."""
        return field if self._cipher is None else "lk_open(%s, '%s')" % (field, field)

    def _number_clause(self, flt, args, for_count=False):
        """The number condition, shaped by how many calls the number matches.

        A "prefix" search matches :func:`number_starts`: the number as dialled, or
        without the prefixes dialled before it (and its line's outside-line digit).
        """
        db = self._db()
        part = flt.number
        prefix = flt.number_match == "prefix"
        if self._cipher is not None:
            clause = self._sealed_number_clause(flt, args) if prefix else None
            if clause is not None:
                return clause
            if not prefix:
                matches = self._sealed_matches("number", lambda number: part in number)
                if matches is not None:
                    # Few distinct numbers match: their sealed texts, through the number index.
                    args.extend(matches)
                    return "number IN (%s)" % ",".join("?" * len(matches)) if matches else "0"
            # Many: opened in time order until the page is full (matches are common).
            if prefix:
                args.extend([part, flt.country])
                return "lk_number_starts(number, ?, ?, %s)" % _outside_sql(flt, args)
            args.append(part)
            return "instr(%s, ?) > 0" % self._col("number")
        if prefix:
            # Ranges, not LIKE (case-insensitive by default, so no index): the number as
            # dialled, then after each chain of prefixes (and outside-line digit), each of
            # those checked by number_starts.
            branches = _prefix_branches(flt)
            bounds = [value for branch in branches for value in branch[0]]
            # A call log no web UI has opened yet lacks the index (ensure_indexes: a reader
            # such as `linekeeper calls` opens it read-only): the calls are walked in time order.
            few = self._has_table("calls_search_number_started") and (
                db.execute(
                    "SELECT count(*) FROM (%s LIMIT ?)"
                    % " UNION ALL ".join(
                        "SELECT 1 FROM calls INDEXED BY calls_search_number_started"
                        " WHERE number >= ? AND number < ?"
                        for _ in branches
                    ),
                    bounds + [SELECTIVE_ROWS],
                ).fetchone()[0]
                < SELECTIVE_ROWS
            )
            if few:
                selects = []
                for (low, high), check in branches:
                    args.extend([low, high])
                    sql = (
                        "SELECT id FROM calls INDEXED BY calls_search_number_started"
                        " WHERE number >= ? AND number < ?"
                    )
                    if check is not None:
                        sql += " AND " + check(args)
                    selects.append(sql)
                return "id IN (%s)" % " UNION ALL ".join(selects)
            # The unary + keeps the planner off the number index, so it walks
            # the calls in time order instead.
            # Grouped by their first character: nearly every number begins with none of
            # the prefixes, and is passed over after one range instead of each.
            (low, high), _ = branches[0]
            args.extend([low, high])
            ors = ["(+number >= ? AND +number < ?)"]
            groups = {}
            for branch in branches[1:]:
                groups.setdefault(branch[0][0][0], []).append(branch)
            for first, group in sorted(groups.items()):
                args.extend([first, chr(ord(first) + 1)])
                inner = []
                for (low, high), check in group:
                    args.extend([low, high])
                    inner.append("(+number >= ? AND +number < ? AND %s)" % check(args))
                ors.append("(+number >= ? AND +number < ? AND (%s))" % " OR ".join(inner))
            return "(%s)" % " OR ".join(ors)
        if len(flt.number) >= 3 and self._has_fts():
            match = '"%s"' % flt.number
            few = (
                for_count
                or db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM calls_number_fts WHERE calls_number_fts "
                    "MATCH ? LIMIT ?)",
                    (match, SELECTIVE_ROWS),
                ).fetchone()[0]
                < SELECTIVE_ROWS
            )
            if few:
                args.extend([match, flt.number])
                return (
                    "id IN (SELECT rowid FROM calls_number_fts WHERE calls_number_fts "
                    "MATCH ?) AND instr(number, ?) > 0"
                )
        args.append(flt.number)
        return "instr(number, ?) > 0"

    def _sealed_number_clause(self, flt, args):
        """A sealed "prefix" search through the number index: the sealed texts of the
        distinct numbers :func:`number_starts` matches (on a line with an outside-line
        digit, those only after it on that line's calls dialled); None when too many."""
        part, country = flt.number, flt.country
        matches = self._sealed_matches("number", lambda number: number_starts(number, part, country))
        if matches is None:
            return None
        clauses, clause_args = [], []
        if matches:
            clauses.append("number IN (%s)" % ",".join("?" * len(matches)))
            clause_args.extend(matches)
        for digit, lines in _outside_digits(flt.outside).items():
            plain = set(matches)
            after = self._sealed_matches(
                "number", lambda number, digit=digit: number_starts(number, part, country, digit)
            )
            if after is None:
                return None
            after = [sealed for sealed in after if sealed not in plain]
            if after:
                clauses.append(
                    "(direction = 'out' AND line IN (%s) AND number IN (%s))"
                    % (",".join("?" * len(lines)), ",".join("?" * len(after)))
                )
                clause_args.extend(lines + after)
        args.extend(clause_args)
        return "(%s)" % " OR ".join(clauses) if clauses else "0"

    def _has_recordings(self):
        # Only a positive answer is kept: the table may appear later.
        if not self._recordings:
            self._recordings = (
                self._db().execute("SELECT 1 FROM sqlite_master WHERE name = 'recordings'").fetchone()
                is not None
            )
        return self._recordings

    def _recording_states(self, ids):
        """``{call id: (state of its newest recording, its deletion or None)}`` for the
        calls ``ids``; the deletion is :func:`~firmware.calls.calllog.deleted_recordings`'
        ``{"at", "rule", "reason"}`` of a call whose recording the box deleted."""
        if not ids or not self._has_recordings():
            return {}
        rows = (
            self._db()
            .execute(
                "SELECT call_id, state FROM recordings WHERE call_id IN (%s) ORDER BY started_at"
                % ",".join("?" * len(ids)),
                list(ids),
            )
            .fetchall()
        )
        states = {row[0]: (row[1], None) for row in rows}  # the newest wins
        # A call whose recording the box deleted (retention, a full card, an erasure on
        # request) says so, not "no recording": its row is gone, its deletion logged
        # (and why: an erasure on request is told apart from retention by its reason).
        from .calllog import deleted_recordings

        for call_id, gone in deleted_recordings(self._db(), [i for i in ids if i not in states]).items():
            states[call_id] = ("deleted", gone)
        return states

    def tags_of(self, ids):
        """``{call id: [tag, ...]}`` for the calls ``ids`` (sorted tags)."""
        if not ids or not self._has_table("call_tags"):
            return {}
        out = {}
        for call_id, tag in self._db().execute(
            "SELECT call_id, tag FROM call_tags WHERE call_id IN (%s) ORDER BY tag"
            % ",".join("?" * len(ids)),
            [int(i) for i in ids],
        ):
            out.setdefault(call_id, []).append(tag)
        return out

    def legal_holds_of(self, ids):
        """``{call id: when its legal hold was placed (µs since the epoch, UTC)}`` for
        those of the calls ``ids`` on hold."""
        if not ids or not self._has_table("legal_holds"):
            return {}
        out = {}
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            out.update(
                self._db().execute(
                    "SELECT call_id, placed_at FROM legal_holds WHERE call_id IN (%s)"
                    % ",".join("?" * len(batch)),
                    batch,
                )
            )
        return out

    def lines_of(self, ids):
        """``{call id: its line}`` for those of the calls ``ids`` the log holds (no other
        column read: nothing of the caller is opened)."""
        out = {}
        ids = sorted({int(i) for i in ids})
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            out.update(
                self._db().execute(
                    "SELECT id, line FROM calls WHERE id IN (%s)" % ",".join("?" * len(batch)), batch
                )
            )
        return out

    def tags_in_use(self, lines=None):
        """Every tag on some call (on one of ``lines``, if given), sorted (for pick lists)."""
        if not self._has_table("call_tags"):
            return []
        if lines is None:
            return [r[0] for r in self._db().execute("SELECT DISTINCT tag FROM call_tags ORDER BY tag")]
        lines = [int(n) for n in lines]
        return [
            r[0]
            for r in self._db().execute(
                "SELECT DISTINCT t.tag FROM call_tags t JOIN calls c ON c.id = t.call_id"
                " WHERE c.line IN (%s) ORDER BY t.tag" % ",".join("?" * len(lines)),
                lines,
            )
        ]

    def _has_fts(self):
        if self._fts is None:
            self._fts = (
                self._db().execute("SELECT 1 FROM sqlite_master WHERE name = 'calls_number_fts'").fetchone()
                is not None
            )
        return self._fts

    def search(self, flt=CallFilter(), after=None, limit=50, before=None):
        """One page of calls matching ``flt``, newest first.

        :param after: a :class:`Cursor` from the previous page, or None
        :param limit: page size, 1 to :data:`PAGE_MAX`
        :param before: a :class:`Cursor` (the first call of a page): the page
            of newer calls just before it, instead (``after`` is ignored)
        :returns: ``(calls, next_cursor)``; ``calls`` in the JSON shape of
            :func:`firmware.calls.calllog.call_json` plus ``duration_s``;
            ``next_cursor`` is None on the last page (with ``before``: None
            when there are no newer calls than this page)
        """
        if not 1 <= limit <= PAGE_MAX:
            raise ValueError("limit must be from 1 to %d" % PAGE_MAX)
        if before is not None:
            return self._newer(flt, before, limit)
        db = self._db()
        where, args = self._where(flt)
        if after is not None:
            # A row value, not "a < x OR (a = x AND b < y)": SQLite turns the OR
            # into two index searches and a sort of everything older (0.5 s at
            # a million calls), while the row value is one index range.
            where.append("(started_at, id) < (?, ?)")
            args.extend([after.started_at, after.id])
        sql = "SELECT * FROM calls"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        rows = db.execute(sql, args + [limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        states = self._recording_states([row["id"] for row in rows])
        calls = [self._json(row, *states.get(row["id"], (None, None))) for row in rows]
        cursor = Cursor(rows[-1]["started_at"], rows[-1]["id"]) if more else None
        return calls, cursor

    def _newer(self, flt, before, limit):
        """The ``limit`` calls just newer than ``before``, newest first, and whether more are."""
        where, args = self._where(flt)
        where.append("(started_at, id) > (?, ?)")
        args.extend([before.started_at, before.id])
        sql = "SELECT * FROM calls WHERE " + " AND ".join(where) + " ORDER BY started_at ASC, id ASC LIMIT ?"
        rows = self._db().execute(sql, args + [limit + 1]).fetchall()
        more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
        states = self._recording_states([row["id"] for row in rows])
        calls = [self._json(row, *states.get(row["id"], (None, None))) for row in rows]
        cursor = Cursor(rows[0]["started_at"], rows[0]["id"]) if more else None
        return calls, cursor

    def count(self, flt=CallFilter(), cap=COUNT_CAP):
        """How many calls match ``flt``: ``(n, exact)``.

        Filters on time, line, direction, answer, duration, recording and legal hold are counted
        exactly, from the indexes; a line filter naming every line there is
        is left out (the table's own count is much quicker). A number, name or
        tag search counts through its index, up to ``cap`` matches, and then
        answers ``(cap, False)`` ("at least"). A count is kept for
        :data:`COUNT_TTL_S` while no call is added, so paging through a long
        list counts once.
        """
        if flt.lines and self._all_lines(flt.lines):
            flt = dataclasses.replace(flt, lines=None)
        newest = self._db().execute("SELECT max(id) FROM calls").fetchone()[0]
        key = (flt, cap, newest)
        now = time.monotonic()
        hit = self._counts.get(key)
        if hit is not None and now - hit[0] < COUNT_TTL_S:
            return hit[1]
        where, args = self._where(flt, for_count=True)
        body = "SELECT 1 FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
        if flt.number is None and flt.name is None and flt.tag is None:
            sql = "SELECT count(*) FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
            result = self._db().execute(sql, args).fetchone()[0], True
        else:
            n = self._db().execute("SELECT count(*) FROM (%s LIMIT ?)" % body, args + [cap]).fetchone()[0]
            result = n, n < cap
        if len(self._counts) > 64:
            self._counts.clear()
        self._counts[key] = (now, result)
        return result

    def top_line(self):
        """The highest line any call is on (an index lookup); 0 for an empty log."""
        return self._db().execute("SELECT coalesce(max(line), 0) FROM calls").fetchone()[0]

    def _all_lines(self, lines):
        """Whether ``lines`` names every line any call is on (min and max: index lookups)."""
        db = self._db()
        low = db.execute("SELECT min(line) FROM calls").fetchone()[0]
        high = db.execute("SELECT max(line) FROM calls").fetchone()[0]
        return low is None or set(range(low, high + 1)) <= set(lines)

    def get(self, call_id):
        """The call ``call_id`` (an int) as JSON, or None."""
        row = self._db().execute("SELECT * FROM calls WHERE id = ?", (int(call_id),)).fetchone()
        if row is None:
            return None
        return self._json(row, *self._recording_states([row["id"]]).get(row["id"], (None, None)))

    def _json(self, row, recording_state=None, deleted=None):
        data = call_json(row, self._cipher)
        data["started_us"] = row["started_at"]
        if row["answered_at"] is not None and row["ended_at"] is not None:
            data["duration_s"] = round((row["ended_at"] - row["answered_at"]) / 1e6, 1)
        else:
            data["duration_s"] = 0.0
        data["recording_state"] = data["recording"] = recording_state
        if deleted is not None:
            data["recording_deleted"] = deleted  # as CallLog.calls() has it
        return data

    def close(self):
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def number_starts(number, part, country="uk", outside=""):
    """Whether ``number`` starts with ``part`` (a "prefix" search) as dialled, or without
    the prefixes dialled before the number called (:func:`firmware.policy.rules.called_number`:
    141 01632 960123 and 18001 01632 960123 call 01632 960123), or, ``outside`` given (the
    outside-line digit of the line of a number dialled), without it (9 01632 960123) and
    then those prefixes: the readings a subject access search finds a call by
    (:func:`firmware.sar._readings`)."""
    if number.startswith(part):
        return True
    if not number.startswith(_dialled_prefixes(country) + ((outside,) if outside else ())):
        return False  # the quick answer for nearly every number
    return called_number(number, country).startswith(part) or bool(
        outside and called_number(number, country, outside).startswith(part)
    )


def _dialled_prefixes(country):
    numbers = countries.country(country).numbers
    return numbers.presentation_prefixes + numbers.relay_prefixes


def _outside_digits(outside):
    """``{digit: [line, ...]}`` of ``CallFilter.outside``."""
    out = {}
    for line, digit in sorted(outside):
        out.setdefault(digit, []).append(line)
    return out


def _outside_sql(flt, args):
    """SQL for the outside-line digit before a call's number: its line's, for a number dialled."""
    digits = _outside_digits(flt.outside)
    if not digits:
        return "''"
    whens = []
    for digit, lines in digits.items():
        whens.append("WHEN line IN (%s) THEN ?" % ",".join("?" * len(lines)))
        args.extend(lines + [digit])
    return "CASE WHEN direction != 'out' THEN '' %s ELSE '' END" % " ".join(whens)


def _prefix_branches(flt):
    """The index ranges of a clear "prefix" search, each ``((low, high), check)``: the
    number as dialled (``check`` None); after one of the country's prefixes (141 01632);
    every number dialled after two prefixes or more (141 18001 01632, 141 18001 18002 ...:
    few calls, so all of them, however many prefixes follow); and on a line with an
    outside-line digit, the same after it. Each but the first is checked exactly by
    ``check(args)`` (SQL, its arguments added): :func:`number_starts` looks past any
    number of prefixes, as a sealed number's search and a subject access search do."""
    part, country = flt.number, flt.country
    prefixes = _dialled_prefixes(country)
    # A number after one prefix: its range holds the part searched for. After two or more:
    # the range of the first two, whatever follows (the prefixes may go on).
    chains = [p + part for p in prefixes] + [p + q for p in prefixes for q in prefixes]

    def range_of(text):
        return (text, text + "\uffff")

    def check(digit, lines):
        def sql(args):
            # The line and direction first: a number past them is not opened and read.
            where = ""
            if lines:
                where = "direction = 'out' AND line IN (%s) AND " % ",".join("?" * len(lines))
                args.extend(lines)
            args.extend([part, country, digit])
            return where + "lk_number_starts(number, ?, ?, ?)"

        return sql

    branches = [(range_of(part), None)]
    branches += [(range_of(chain), check("", ())) for chain in chains]
    for digit, lines in _outside_digits(flt.outside).items():
        branches += [(range_of(digit + chain), check(digit, lines)) for chain in [part] + chains]
    return branches


# How a country writes its numbers: international code and national trunk prefix.
_DIALLING = {"uk": ("44", "0"), "us": ("1", "1")}


def _numbers(country):
    """The country's :class:`~telephony.countries.NumberFormat` (the UK's for one not known)."""
    from telephony import countries

    try:
        return countries.country(country).numbers
    except ValueError:
        return countries.country("uk").numbers


def search_number(text, country, match):
    """The digits to search the call log for, from a number as a person typed it.

    Spaces, dots, dashes and brackets go. An international form
    (``+44 1632 960777``, ``0044 1632 960777``) and the national one
    (``01632 960777``) find the same calls: for a "contains" search both
    become the national significant number (``1632960777``), which is part of
    the number however the call log wrote it; for a "prefix" search they
    become the national form (``01632960777``), which is how caller ID sends
    UK numbers. Anything else (part of a number, an extension) is searched
    as typed.

    :returns: the digits (``0-9 * # +``), or ``""`` when nothing is left
    """
    n = re.sub(r"[\s().\-/]", "", text or "")
    code, trunk = _DIALLING.get(country, _DIALLING["uk"])
    significant = None
    for intl in ("+" + code, "00" + code) + (("011" + code,) if country == "us" else ()):
        if n.startswith(intl) and len(n) > len(intl):
            significant = n[len(intl) :]
            if country != "us" and significant.startswith(trunk) and len(significant) > 6:
                significant = significant[len(trunk) :]  # +44 (0)1632 960777
            break
    if (
        significant is None
        and n.isdigit()
        and n.startswith(code)
        and len(n) - len(code) in _numbers(country).significant_digits
        and not n[len(code) :].startswith(trunk)
    ):
        significant = n[len(code) :]  # 44 1632 960777: the country code without + or 00
    if significant is None and n.startswith("+") and n[1:].isdigit() and len(n) > 4:
        # Another country's number (+353 …): the log holds it as dialled or sent, 00353 …
        return n[1:] if match == "contains" else _numbers(country).international_prefix + n[1:]
    if (
        significant is None
        and country != "us"
        and n.startswith(trunk)
        and not n.startswith("00")
        and len(n) > 6
    ):
        significant = n[len(trunk) :]
    if significant is None and country == "us" and n.isdigit():
        if n.startswith("1") and len(n) == 11:
            significant = n[1:]
        elif len(n) == 10:
            significant = n
    if significant is None:
        return n
    if match == "contains":
        return significant
    return (trunk if country != "us" else "") + significant


def number_forms(number, country):
    """The ways the call log may hold ``number``: national and international forms."""
    n = re.sub(r"[\s().\-/]", "", number or "")
    code, trunk = _DIALLING.get(country, _DIALLING["uk"])
    national = search_number(n, country, "prefix")
    significant = search_number(n, country, "contains")
    forms = {n, national}
    if significant != n or national != n or (country == "us" and len(n) == 10 and n.isdigit()):
        forms.add("+" + code + significant)
        if country == "us":
            forms.update((significant, "1" + significant))
    return tuple(sorted(f for f in forms if f))
