"""Subject access: every call of one number, bundled for release, and the disclosure log.

:func:`find_calls` finds a number's calls in any of its forms (``01632
960123``, ``+44 1632 960123``, ``00441632960123`` are one number: compared
in international form) and/or in a date range. :func:`build_bundle` writes a
ZIP of a cover letter (``README.txt``, :mod:`firmware.sarletter`: what the
person is owed in plain words, each call in local time), the call records (``calls.json``), their recordings
(``recordings/call-N.wav``, decrypted with an unlocked recording key and
checked as an export is; spans can be redacted: made silence),
``manifest.json`` (the request and each file's size
and SHA-256) and ``SHA256SUMS`` (``sha256sum -c`` checks it). With a bundle
password the ZIP is encrypted with OpenPGP (AES-256, gpg's symmetric mode,
opened with ``gpg -d`` and that password, which is given to the requester
separately). Every release is written to the disclosure log
(``DATA_DIR/disclosures.db``: who asked, when, what was released, to whom,
why, and which copies given before its letter left out and why) and to the audit trail
(action ``disclosure``).
"""

import hashlib
import io
import json
import logging
import math
import os
import re
import sqlite3

from firmware.calls.calllog import CALL_ROWS, call_json, deleted_recordings
from firmware.storage.fieldseal import opener, register_sql

from .errors import LinekeeperError
from .localtime import TIME_OF_DAY_PROBLEM, LocalTime, day_words, duration_text, time_of_day
from .logwhere import SAID
from .policy import cards
from .policy.rules import called_number, normalise
from .sarbundle import Counted, GpgStream, MemorySpool, ZipStream, wav_parts
from .sarletter import letter_text
from .typed import control_problem, given_reason

log = logging.getLogger("linekeeper.sar")

MAX_CALLS = 5000
# The recordings one bundle carries, in seconds of audio. The bundle is streamed
# (firmware/sarbundle.py): memory holds a chunk of one recording's samples at a time,
# whatever the bundle's or the call's length (measured: a 30 min call peaked at 4.2 MB
# under tracemalloc; decoded whole it took 90 MB). What bounds it is
# the card: the web UI keeps a bundle sealed there until it is downloaded (57.6 MB an hour
# of WAV). A day of recordings is 1.4 GB.
MAX_BUNDLE_AUDIO_S = 24 * 3600
# What a number may be written with: digits (ASCII: "²" is a digit to str.isdigit),
# spaces, a leading + and the brackets, dashes and dots people write between groups.
_NOT_IN_A_NUMBER = re.compile(r"[^0-9\s+().-]")

DISCLOSURES = """
CREATE TABLE IF NOT EXISTS disclosures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    wall_us     INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    requester   TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    search      TEXT NOT NULL,
    call_ids    TEXT NOT NULL,
    recordings  INTEGER NOT NULL,
    bundle      TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    encrypted   INTEGER NOT NULL,
    request_id  INTEGER
);
"""
# Columns added after the first release of the log: a log made before gets them, empty.
ADDED_COLUMNS = (
    ("request_id", "INTEGER"),  # the register's request (firmware.rights) it answers
    # The copies given before left out of its letter, and why (JSON: [{"disclosure", "reason"}]).
    ("withheld", "TEXT"),
)


class SarError(LinekeeperError, ValueError):
    """A subject access request cannot be carried out as asked."""


class RedactionError(SarError):
    """A span to silence (``--redact``, the form's Redact field) is not one the release can
    silence as its letter and manifest would say: nothing was released."""


class LetterChanged(SarError):
    """The letter a release would write is not the one the supervisor read (:func:`release`'s
    ``letter_sha256``): nothing was released."""


MIN_BUNDLE_PASSWORD = 10


def search_bounds(period, first_time="", last_time="", names=("From", "To")):
    """``(since_us, until_us)`` of a search of the days of ``period`` (a
    :class:`~firmware.reports.period.Period`, or None: no day given), narrowed to start at
    minute ``first_time`` of its first day and to end with minute ``last_time`` of its last
    (``HH:MM``, 24-hour, in the period's zone; "": the whole day), both included, as the
    calls list's times are: a withheld caller's call "about 9:05 on Monday" is found among
    that quarter hour's calls, not every caller's of the day. ``(None, None)`` with no day.
    ``names``: what the search calls its first and last day (the form's fields, the
    command's options), which the messages name.

    :raises SarError: a time that is not one, a time without its day, or an end before the
        start (nothing is searched)
    """
    for name, text in zip(names, (first_time, last_time), strict=True):
        if text and time_of_day(text) is None:
            raise SarError("%s time %r: %s" % (name, text[:20], TIME_OF_DAY_PROBLEM))
    if period is None:
        if first_time or last_time:
            raise SarError("Choose the day of this time too (%s): a time alone names no moment." % names[0])
        return None, None
    since_us, until_us = period.start_us, period.end_us
    clock = LocalTime(period.tz)
    if first_time:
        since_us = clock.minute_start_us(period.first, time_of_day(first_time))
    if last_time:
        until_us = clock.minute_start_us(period.last, time_of_day(last_time), last=True) + 60_000_000
    if until_us <= since_us:  # only with both times: each day is at least a minute long
        raise SarError(
            "The end (%s at %s) is before the start (%s at %s): nothing was searched."
            % (day_words(period.last), last_time, day_words(period.first), first_time)
        )
    return since_us, until_us


def search_lines(texts, granted, n_lines, name="Line"):
    """The lines a search by line asks for (``texts``: the form's ticked lines, ``--line``'s
    values), as sorted ints: each one of the box's lines (1 to ``n_lines``; None: any line
    from 1, the command line knowing no board) and granted to the user (``granted``: their
    lines; None: every line, a box not set up).

    :raises SarError: one that is not a line of the box, or not the user's (nothing is searched)
    """
    found = set()
    for text in texts:
        text = str(text).strip()
        if not (text.isascii() and text.isdigit() and len(text) < 4 and int(text) >= 1) or (
            n_lines is not None and int(text) > n_lines
        ):
            raise SarError(
                "%s %s is not one of the box's lines (%s): nothing was searched"
                % (name, text[:20], "1 to %d" % n_lines if n_lines is not None else "1, 2 ...")
            )
        if granted is not None and int(text) not in granted:
            raise SarError(
                "%s %s is not granted to you: search only your lines (%s); a supervisor of that line "
                "searches it. Nothing was searched" % (name, text, ", ".join(str(n) for n in sorted(granted)))
            )
        found.add(int(text))
    return sorted(found)


def check_number(number):
    """The digits of ``number`` (any form), as a search takes it.

    :raises SarError: it holds something that is not in a number (a letter O for a 0), or
        fewer than 4 digits
    """
    if _NOT_IN_A_NUMBER.search(number):
        # "01632 96O123" (a letter O) was searched as the digits left, and found nothing.
        raise SarError(
            "%s is not a phone number: give only its digits (a letter O is not a 0), "
            "spaces and a leading +" % number
        )
    digits = "".join(c for c in number if c.isdigit())
    if len(digits) < 4:
        raise SarError("%s is not a phone number: give at least 4 of its digits" % number)
    return digits


def search_numbers(text):
    """The numbers a search takes (:func:`check_number`) of ``text``, a register request's
    numbers as typed ("01632 960555, 07700 900123": separated by commas, semicolons or line
    breaks), in their order, each once; a piece that is not one ("home, evenings") is left
    out."""
    found = []
    for piece in re.split(r"[,;\n]", text or ""):
        piece = piece.strip()
        try:
            check_number(piece)
        except SarError:
            continue
        if piece not in found:
            found.append(piece)
    return found


def request_numbers(text):
    """A register request's numbers as logging or correcting it gives them (``text``: separated
    by commas, semicolons or line breaks), each one a number the search takes (:func:`check_number`):
    stripped, each once (the same digits twice: the first), joined by ", "; "" for none.

    :raises SarError: a piece is not a phone number (naming it, as the search does)
    """
    found, digits_seen = [], set()
    for piece in re.split(r"[,;\n]", text or ""):
        piece = piece.strip()
        if not piece:
            continue
        digits = check_number(piece)
        if digits not in digits_seen:
            digits_seen.add(digits)
            found.append(piece)
    return ", ".join(found)


def find_calls(
    calls_db,
    *,
    number=None,
    since_us=None,
    until_us=None,
    country="uk",
    lines=None,
    cipher=None,
    on_lines=None,
    outside=None,
):
    """The calls (call-log JSON, oldest first) of ``number`` in any form, and/or in [since, until).

    ``lines``: the lines the user may see (None: all); ``on_lines``: a search by line (the
    lines searched, :func:`search_lines`), over a date range: every call on them, whichever
    the far end's number.
    ``cipher``: the box's field cipher, which opens sealed numbers and names.
    ``outside``: ``{line: outside-line digit}`` (``policy.rules.lines``): a number dialled
    on such a line is the subject's without it, as without ``141``, or as dialled (an
    extension dialled past the switchboard): a call is found by either.

    :raises SarError: neither a number nor a range, a search by line without a range, a
        number without digits, or more than :data:`MAX_CALLS` calls
    """
    if on_lines and since_us is None:
        raise SarError("a search by line is over a date range: give its first day (From) too")
    if not number and since_us is None:
        raise SarError("give a number, a date range, or both")
    where, args = [], []
    if on_lines:
        where.append("calls.line IN (%s)" % ", ".join("?" * len(on_lines)))
        args += list(on_lines)
    key = None
    if number:
        digits = check_number(number)
        key = normalise(number, country)
        # The last 7 digits are the same in every form of a number; the exact
        # comparison (international form) is made below. A card number keyed on after a
        # number dialled is masked at its end (docs/pci.md): the number's are before it.
        where.append("rtrim(lk_open(calls.number, 'number'), ?) LIKE ?")
        args += [cards.MASK, "%" + digits[-7:]]
    if since_us is not None:
        where += ["calls.started_at >= ?", "calls.started_at < ?"]
        args += [since_us, until_us]
    db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(calls_db), uri=True)
    db.row_factory = sqlite3.Row
    register_sql(db, cipher)
    try:
        rows = db.execute(
            CALL_ROWS + " WHERE %s ORDER BY calls.started_at, calls.id" % " AND ".join(where), args
        ).fetchall()
        # A recording deleted by retention or erased on request: the person is told when and why.
        gone = deleted_recordings(db, [r["id"] for r in rows if r["recording"] is None])
    finally:
        db.close()
    calls = [
        call
        for call in (call_json(r, cipher) for r in rows)
        # A number dialled with 141 (or 1470, *67..., the line's outside-line digit) before
        # it is still the subject's.
        if (key is None or key in _readings(call, country, outside))
        and (lines is None or call["line"] in lines)
    ]
    for call in calls:
        if call["id"] in gone:
            call["recording"] = "deleted"
            call["recording_deleted"] = gone[call["id"]]
    if len(calls) > MAX_CALLS:
        raise SarError("%d calls match; narrow the request with a date range" % len(calls))
    return calls


def _outside(call, outside):
    """The outside-line digit before ``call``'s number: its line's, for a number dialled."""
    return (outside or {}).get(call["line"], "") if call.get("direction") == "out" else ""


def _readings(call, country, outside):
    """The normalised numbers ``call``'s may be: without its line's outside-line digit, and
    as dialled. Which way a number beginning with the digit was dialled the box cannot know
    (9 01632 960123 after it, or 9123, an extension, straight past the switchboard), and a
    search that missed a call of the subject's would leave it out of their copy: a call of
    either reading is found, for the supervisor to check (docs/policy.md). A card number
    masked at the end of a number dialled is not part of it."""
    number = (call["number"] or "").rstrip(cards.MASK)
    return {
        normalise(called_number(number, country, _outside(call, outside)), country),
        normalise(called_number(number, country), country),
    }


def parse_redaction(text):
    """``"CALL:FROM-TO"`` (seconds into the recording) as ``(call_id, from_s, to_s)``.

    :raises RedactionError: not in that form, or the span is empty or backwards
    """
    try:
        call, span = text.split(":", 1)
        start, end = span.split("-", 1)
        call_id, from_s, to_s = int(call), float(start), float(end)
    except ValueError:
        raise RedactionError("a redaction is CALL:FROM-TO in seconds, e.g. 12:3.5-9, not %r" % text) from None
    if not 0 <= from_s < to_s:
        raise RedactionError("the redaction %r is empty or backwards" % text)
    return call_id, from_s, to_s


def _seconds(value_s):
    """``100`` of 100.0 and ``6.911625`` of itself: seconds as typed, not rounded."""
    return repr(float(value_s)).removesuffix(".0")


def check_redaction(call, from_s, to_s):
    """Refuse a span of ``call`` (call-log JSON) to silence that is not all within its
    recording: the letter and the manifest say the span was silenced, and one past the end
    silenced nothing (minutes typed for seconds: 6:100-200 of a 31 s recording), or less
    than they say. Refused, not cut at the end: a span past the end is a span typed wrong,
    and the person typing it is told the recording's length to type it again.

    :raises RedactionError: the call has no recording in the release, its length is not
        on record, or the span ends after the recording does
    """
    span = "%d:%s-%s" % (call["id"], _seconds(from_s), _seconds(to_s))
    if call.get("recording") in (None, "deleted"):
        raise RedactionError(
            "call %d has no recording in the release: the redaction %s silences nothing. "
            "Nothing was released" % (call["id"], span)
        )
    length_s = call.get("recording_duration_s")
    if length_s is None:
        raise RedactionError(
            "call %d's recording has no length on record (is it still being made?): the redaction "
            "%s cannot be checked against it. Nothing was released" % (call["id"], span)
        )
    if to_s > length_s:
        said = math.floor(length_s * 100) / 100  # (what may be typed as the end: within it)
        where = "is past" if from_s >= length_s else "runs past"
        raise RedactionError(
            "the redaction %s %s the end of call %d's recording, which is %g seconds long "
            "(a span is in seconds into the recording, within 0 to %g). Nothing was released"
            % (span, where, call["id"], said, said)
        )


def redact_wav(data, spans):
    """WAV bytes with the samples in ``spans`` (``[(from_s, to_s)]``) made digital silence."""
    import wave

    with wave.open(io.BytesIO(data)) as w:
        params = w.getparams()
        frames = bytearray(w.readframes(w.getnframes()))
    width = params.sampwidth * params.nchannels
    for from_s, to_s in spans:
        a = min(len(frames), int(from_s * params.framerate) * width)
        b = min(len(frames), int(to_s * params.framerate) * width)
        frames[a:b] = bytes(b - a)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setparams(params)
        w.writeframes(bytes(frames))
    return buf.getvalue()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _json(value, **kw):
    return (json.dumps(value, indent=2, **kw) + "\n").encode("utf-8")


def write_bundle(
    out,
    store,
    calls,
    recording_key,
    request,
    redactions=(),
    about=None,
    facts=None,
    released_us=0,
    progress=None,
    earlier=(),
):
    """Write the bundle's ZIP to ``out`` (a binary stream, need not seek): the cover letter,
    call records, recordings, manifest and checksums. Returns the number of recordings.

    The recordings are decoded a chunk at a time and go into the ZIP in slices
    (:meth:`~firmware.recording.store.RecordingStore.export_stream`,
    :mod:`firmware.sarbundle`): memory holds a chunk's samples, never a recording or the
    bundle.
    ``redactions``: ``(call_id, from_s, to_s)`` spans silenced in the released audio
    (listed in the manifest).

    :param store: the :class:`~firmware.recording.store.RecordingStore`
    :param request: the request's details for the manifest (plain JSON data)
    :param about: ``fn(calls)``: the notes on the calls and the phonebook's names of their
        numbers (``{"notes": {call id: [{"note", "at_us"}]}, "phonebook": {number: name}}``),
        kept in the bundle as ``notes-and-names.json``
    :param facts: the business's :class:`~firmware.sarletter.LetterFacts` for the cover
        letter (``README.txt``), made on ``released_us`` (µs since the epoch)
    :param progress: ``fn(done, total)``, recordings written of those to write
    :param earlier: the copies of the person's calls given before (:func:`earlier_releases`),
        which the letter lists
    :raises TamperError: a recording fails its check (the bundle is incomplete: discard it)
    """
    rows = _recorded(store, calls)
    names = _file_names(rows, about is not None)
    z = ZipStream(out)
    try:
        # The letter first: it says what every other file is, and a person opening the ZIP
        # on a phone sees it at the top.
        z.add(
            "README.txt",
            letter_text(calls, names, facts, request, released_us, redactions, earlier).encode("utf-8"),
        )
        z.add("calls.json", _json(calls))
        if about is not None:
            # What else the box keeps about the person and these calls: colleagues' notes on
            # them (what was written and when; not who wrote it, a third party) and the name
            # the phonebook gives their number.
            z.add("notes-and-names.json", _json(about(calls), sort_keys=True))
        if progress is not None:
            progress(0, len(rows))
        for done, (call, row) in enumerate(rows, 1):
            # Decrypted into memory only: in a temporary file it would be on the card (/tmp
            # is, on Raspberry Pi OS), in blocks that deleting the file does not wipe. Checked
            # as an export is, then decoded a chunk at a time: a 3 h call whole was 173 MB.
            pieces, n_samples, rate = store.export_stream(row["id"], recording_key)
            spans = [(a, b) for c, a, b in redactions if c == call["id"]]
            parts, size = wav_parts(pieces, n_samples, rate, spans)
            z.add_parts("recordings/call-%d.wav" % call["id"], parts, size)
            del pieces, parts
            if progress is not None:
                progress(done, len(rows))
        listing = [z.listing[name] for name in sorted(z.listing)]
        z.add(
            "manifest.json",
            _json(
                {
                    "request": request,
                    "calls": [c["id"] for c in calls],
                    "files": listing,
                    "redacted": [{"call": c, "from_s": a, "to_s": b} for c, a, b in redactions],
                }
            ),
        )
        z.add("SHA256SUMS", "".join("%s  %s\n" % (f["sha256"], f["name"]) for f in listing).encode("ascii"))
        z.close()
    except BaseException:
        z.abandon()
        raise
    return len(rows)


def _recorded(store, calls):
    """``[(call, its recording's row)]``: the calls whose recording goes in the bundle."""
    rows = [(call, store.for_call(call["id"])) for call in calls]
    return [(call, row) for call, row in rows if row is not None and row["state"] != "deleted"]


def _file_names(rows, about):
    """The names of the bundle's files the letter says what they are (``about``: it holds
    ``notes-and-names.json``)."""
    names = {"calls.json"} | {"recordings/call-%d.wav" % call["id"] for call, _ in rows}
    if about:
        names.add("notes-and-names.json")
    return names


def bundle_letter(store, calls, request, redactions=(), about=True, facts=None, released_us=0, earlier=()):
    """The cover letter (``README.txt``) :func:`write_bundle` puts first in the bundle of
    ``calls`` (``about``: whether the bundle holds the notes and names), as its text: read
    by the supervisor before the release (the web UI's preview)."""
    names = _file_names(_recorded(store, calls), about)
    return letter_text(calls, names, facts, request, released_us, redactions, earlier)


def preview_details(calls, copies, withheld=None, request_id=None):
    """The details of the ``disclosure_preview`` audit entry of a letter (:func:`bundle_letter`)
    read before its release, on the web form or with ``linekeeper sar --letter``: the ids of
    its ``calls``, of the copies given before it names (``copies``, :func:`letter_copies`) and
    of those ``withheld`` from it (``{entry id: reason}``), and the register's request."""
    details = {
        "calls": [c["id"] for c in calls],
        "copies": [e["id"] for e in copies],
        "withheld": sorted(withheld or ()),
    }
    if request_id is not None:
        details["request"] = request_id
    return details


def search_details(search, calls, earlier):
    """The details of the ``disclosure_search`` audit entry of a look at a person's calls for
    a subject access request, on the web form's search or with ``linekeeper sar --earlier``:
    what was searched (``search``: the number as typed, the lines of a search by line, the
    first and last days and the times of day that narrow them, :func:`search_bounds`), how many
    ``calls`` it found, and the disclosure log entries of the copies given before shown with
    them (``earlier``, :func:`earlier_releases`: those whose recipient the user was shown)."""
    details = {
        key: search[key]
        for key in ("number", "lines", "from", "from_time", "to", "to_time")
        if search.get(key)
    }
    details["found"] = len(calls)
    details["copies"] = [e["id"] for e in earlier if e.get("shown", True)]
    return details


def refusal_audited(append, actor, why):
    """A release (or its letter's preview) refused, nothing released: logged, and audited as
    ``disclosure_refused`` with why (``{"refused": why}``) through ``append(action, details)``,
    on the web form, in its bundle's job and by ``linekeeper sar`` alike. A trail that refuses
    the entry is logged too; the refusal stands (it is shown or printed), whatever the trail.
    A web form shown again with the person's calls is a look at them too, audited apart as a
    search's is (``disclosure_search``, :func:`search_details`)."""
    # The command prints it itself: not shown twice where its warnings are on the terminal.
    log.warning("subject access release by %s refused: %s", actor, why, extra=SAID)
    try:
        append("disclosure_refused", {"refused": why})
    except Exception as exc:  # the trail's card full, or the trail damaged: said, not hidden
        log.error("subject access release by %s refused, and not audited (%s): %s", actor, exc, why)


def letter_digest(text):
    """The SHA-256 of a letter's text (:func:`bundle_letter`, made on time 0: the letter says
    when it was made, the release's time, not the preview's): what the web UI's form carries
    of the letter it showed, and :func:`release` compares with the letter it would write."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_bundle(store, calls, recording_key, request, redactions=(), about=None, facts=None, released_us=0):
    """:func:`write_bundle` into memory: ``(zip bytes, number of recordings)``."""
    buf = io.BytesIO()
    n = write_bundle(buf, store, calls, recording_key, request, redactions, about, facts, released_us)
    return buf.getvalue(), n


def encrypt(data, password):
    """``data`` as an OpenPGP message (AES-256) for ``password`` (gpg, symmetric).

    :raises BundleError: gpg is missing or failed
    """
    out = io.BytesIO()
    stream = GpgStream(password, out)
    stream.write(data)
    stream.finish()
    return out.getvalue()


# How long a change to the disclosure log waits for another's lock (SQLite's default).
WRITE_BUSY_S = 5


class DisclosureLog:
    """The disclosure log in ``DATA_DIR/disclosures.db``.

    ``cipher``: the box's field cipher; who asked, who received, why and the search
    (a person's number) are then sealed (:mod:`firmware.storage.fieldseal`).
    """

    SEALED = ("requester", "recipient", "reason", "search", "withheld")

    def __init__(self, data_dir, cipher=None, busy_s=None):
        self._cipher = cipher
        # ``busy_s``: how long a read waits for another process's lock (a page that only
        # reads: a moment, then it says the log is locked); a change always waits SQLite's
        # busy timeout (:data:`WRITE_BUSY_S`), as before.
        self._db = sqlite3.connect(
            os.path.join(data_dir, "disclosures.db"),
            check_same_thread=False,
            isolation_level=None,
            timeout=WRITE_BUSY_S if busy_s is None else busy_s,
        )
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(DISCLOSURES)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(disclosures)")}
            for name, declaration in ADDED_COLUMNS:
                if name not in have:
                    self._writing()
                    try:
                        self._db.execute("ALTER TABLE disclosures ADD COLUMN %s %s" % (name, declaration))
                    except sqlite3.OperationalError:  # another process added it meanwhile
                        pass
        except BaseException:  # damaged (not a database): not left open
            self._db.close()
            raise

    def close(self):
        self._db.close()

    def _writing(self):
        """A change waits for another's lock as long as a writer does (:data:`WRITE_BUSY_S`),
        whatever the log was opened to wait for a read."""
        self._db.execute("PRAGMA busy_timeout = %d" % (WRITE_BUSY_S * 1000))

    def add(self, logged=None, **entry):
        """Log a release; its id. A ``bundle`` name holding ``{id}`` is given the id
        (``subject-access-{id}.zip``: each release's file named apart). ``logged(id)`` runs
        before the entry is committed (a waiting bundle named by it, :mod:`web.sarjob`): if
        it raises, nothing is logged."""
        if self._cipher is not None:
            entry = {c: self._cipher.seal(v, c) if c in self.SEALED else v for c, v in entry.items()}
        cols = sorted(entry)
        self._writing()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO disclosures (%s) VALUES (%s)" % (", ".join(cols), ", ".join("?" * len(cols))),
                [entry[c] for c in cols],
            )
            entry_id = cur.lastrowid
            if "{id}" in entry.get("bundle", ""):
                self._db.execute(
                    "UPDATE disclosures SET bundle = ? WHERE id = ?",
                    (entry["bundle"].replace("{id}", str(entry_id)), entry_id),
                )
            if logged is not None:
                logged(entry_id)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return entry_id

    def has(self, entry_id):
        """Whether the entry ``entry_id`` is in the log (read without the cipher)."""
        return self._db.execute("SELECT 1 FROM disclosures WHERE id = ?", (entry_id,)).fetchone() is not None

    def remove(self, entry_id):
        """Take back the entry of a release the audit trail refused (:func:`release`): its
        bundle never went, and the trail holds nothing of it."""
        self._writing()
        self._db.execute("DELETE FROM disclosures WHERE id = ?", (entry_id,))

    def get(self, entry_id):
        """The entry ``entry_id`` (a dict), or None."""
        found = self._select("WHERE id = ?", (entry_id,))
        return found[0] if found else None

    def of_request(self, request_id):
        """The releases made for the register's request ``request_id``, oldest first."""
        return self._select("WHERE request_id = ? ORDER BY id", (request_id,))

    def entries(self):
        return self._select("ORDER BY id DESC")

    def _select(self, where, args=()):
        cur = self._db.execute("SELECT * FROM disclosures " + where, args)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
        open_ = opener(self._cipher)
        return [{c: open_(v, c) if c in self.SEALED else v for c, v in row.items()} for row in rows]


def not_released(audit, entries):
    """``{entry id: why}``: those of the disclosure log's ``entries`` whose bundle never went
    (the release is logged before its bundle is written or downloaded; one that failed, or
    waited undownloaded, is audited ``failed`` against its entry, ``disclosure:N``)."""
    targets = ["disclosure:%d" % e["id"] for e in entries]
    if not targets:
        return {}
    audited = audit.entries(limit=2 * len(targets) + 10, action="disclosure", targets=targets)
    return {int(a.target.split(":")[1]): a.details["failed"] for a in audited if "failed" in a.details}


def failed_releases(audit, targets):
    """Those of ``targets`` (``disclosure:N``, the releases' audit targets) audited ``failed``:
    the release was audited before its bundle was written, and the bundle never went (it
    failed, or waited undownloaded; :func:`not_released`). The failure may be audited after
    any period the release is counted in, so it is looked for by target, not by time."""
    targets = sorted({t for t in targets if t})
    found = set()
    for at in range(0, len(targets), 500):
        batch = targets[at : at + 500]
        audited = audit.entries(limit=2 * len(batch) + 10, action="disclosure", targets=batch)
        found |= {a.target for a in audited if isinstance(a.details, dict) and "failed" in a.details}
    return found


def earlier_releases(data_dir, audit, calls, search, request_id=None, country="uk"):
    """The copies of a person's calls given before this release, oldest first, for the cover
    letter (UK GDPR Art. 15(1)(c): the recipients their data was disclosed to): each
    ``{"id", "wall_us", "recipient", "calls"}`` from the disclosure log (``id``: its entry).

    A release is the person's when it was of the same number (``search["number"]``, in any
    form), made for the same register request (``request_id``), or held one of ``calls``;
    its ``calls`` are then the person's alone (of a release that also held other people's
    calls, only those of ``calls``). One whose bundle never went (:func:`not_released`) is
    left out. The letter tells nothing else of an entry: not who asked, nor why, nor the other
    calls (each has its ``actor`` and ``held``, every call of the release, to show it only to
    who may see it: :func:`release_seen`).
    """
    log = DisclosureLog(data_dir, getattr(audit, "cipher", None))
    try:
        entries = log.entries()
    finally:
        log.close()
    gone = not_released(audit, entries)
    key = _number_key(search.get("number"), country)
    ours = {c["id"] for c in calls}
    found = []
    for e in reversed(entries):  # oldest first
        held = {int(c) for c in str(e["call_ids"] or "").split(",") if c.isdigit()}
        if e["id"] in gone or not held:
            continue
        same = (request_id is not None and e.get("request_id") == request_id) or (
            key is not None and _number_key(_searched_number(e), country) == key
        )
        theirs = held if same else held & ours
        if theirs:
            found.append(
                {
                    "id": e["id"],
                    "wall_us": e["wall_us"],
                    "recipient": e["recipient"],
                    "calls": sorted(theirs),
                    # Who made it, and all its calls: whom the web UI may show it to.
                    "actor": e["actor"],
                    "held": sorted(held),
                }
            )
    return found


def release_seen(actor, call_ids, user, line_of):
    """Whether ``user`` (a :class:`web.accounts.User`) may see a release (its requester,
    recipient, reason, calls) made by ``actor`` of ``call_ids``: an auditor every one, a
    supervisor those they made and those whose every call is on their lines (the Disclosures
    page, a call's history, the copies given before on the release form and on the command
    line). ``line_of(call id)``: the call's line, None for a call not in the log."""
    if user.has("auditor") or actor == user.name:
        return True
    ids = [int(c) for c in call_ids]
    for call_id in ids:
        if line_of(call_id) not in user.lines:
            return False
    return bool(ids)


def hidden_said(copy, when):
    """A copy given before (:func:`earlier_releases`) that the user may not see, as they may
    read of it: by when it was given (``when(wall_us)``, its time in words) alone."""
    return "a copy given %s, recorded by another member of staff; details not shown" % when(copy["wall_us"])


def refuse_hidden(listed, when):
    """Refuse a release, or its letter's preview, whose letter would list a copy given before
    that the user may not see (``listed``: :func:`earlier_releases` each with ``shown``,
    :func:`release_seen`): another's release, of calls on lines not all theirs. The letter
    names its recipient, as Art. 15(1)(c) has it, and whether it may be left out (an
    exemption) is judged by who knows who had it: the release is made by a user who may see
    it (docs/reports.md).

    :raises SarError: there is one, named by its time alone (:func:`hidden_said`)
    """
    hidden = [e for e in listed if not e["shown"]]
    if hidden:
        it = "it" if len(hidden) == 1 else "them"
        raise SarError(
            "The letter must tell the person of %s. Who received %s, and whether the letter may "
            "leave %s out, is for someone who may see %s on the Disclosures page: ask a supervisor "
            "of every line its calls are on to make this release. Nothing was released."
            % ("; ".join(hidden_said(e, when) for e in hidden), it, it, it)
        )


def parse_withholding(texts):
    """``linekeeper sar --withhold`` values, ``"ID:REASON"`` each, as ``{disclosure log entry
    id: reason}``: the copies given before that the letter leaves out (:func:`letter_copies`).

    :raises SarError: one not in that form, or an entry given twice
    """
    withheld = {}
    for text in texts:
        entry, colon, reason = text.partition(":")
        entry = entry.strip()
        if not (colon and entry.isascii() and entry.isdigit() and len(entry) < 12):
            raise SarError(
                "--withhold is ID:REASON, the disclosure log entry of a copy given before and why "
                'the letter leaves it out (e.g. "3:exemption: crime prevention, DPA 2018 Sch 2 '
                'para 2"), not %r: nothing was released' % text
            )
        if int(entry) in withheld:
            raise SarError("--withhold names entry %s twice: give it once, with its reason" % entry)
        withheld[int(entry)] = reason.strip()
    return withheld


def letter_copies(earlier, withheld):
    """The copies given before (:func:`earlier_releases`) that the letter lists: ``earlier``
    less those ``withheld`` (``{entry id: reason}``), which it does not mention at all (the
    DPA 2018 Sch. 2 para 2 crime exemption: telling a suspect their calls went to the police
    can prejudice the investigation; the ICO's guidance is not to say anything was withheld).

    :raises SarError: a withheld entry that is not among ``earlier`` (nothing was released)
    """
    listed = {e["id"] for e in earlier}
    for entry_id in sorted(withheld):
        if entry_id not in listed:
            raise SarError(
                "disclosure log entry %d is not among the copies of these calls given before "
                "(%s): it cannot be withheld from the letter. Nothing was released"
                % (entry_id, ", ".join("%d" % e["id"] for e in earlier) or "there are none")
            )
    return [e for e in earlier if e["id"] not in withheld]


def _number_key(number, country):
    """A searched number in international form (as :func:`find_calls` compares it), or None."""
    if not number or not any(c.isdigit() for c in number):
        return None
    return normalise(number, country)


def _searched_number(entry):
    try:
        search = json.loads(entry["search"] or "{}")
    except (TypeError, ValueError):  # sealed under a key not given: not matched by number
        return None
    return search.get("number") if isinstance(search, dict) else None


def check_release(
    *,
    actor,
    requester,
    recipient,
    reason,
    calls,
    search,
    bundle_password,
    redactions,
    only,
    withheld=None,
    whose=None,
):
    """What :func:`release` checks before it makes anything (quick: the web UI checks the
    form with it before it starts the bundle): ``(calls, search, request)``, the calls
    and search narrowed to ``only``, ``request`` the manifest's account of it.
    ``withheld``: ``{entry id: reason}``, the copies given before the letter leaves out;
    each needs its reason (whether each is among them, :func:`letter_copies`).
    ``whose``: for calls named after a search by date alone, which can be any caller's, or
    released after a search by line (``search["lines"]``: every call on those lines; ``only``
    may then be empty, all of them), how the supervisor knows each is the requester's (or one
    the request covers): required then, and only then (a number searched says whose they are).

    :raises SarError: what is wrong, named (nothing was released)
    """
    for name, value in (("requester", requester), ("recipient", recipient), ("reason", reason)):
        if not value or not value.strip():
            raise SarError("give the %s of the release" % name)
        if cards.has_typed_card(value):  # PCI DSS: kept in the disclosure log
            raise SarError("take the card number out of the %s: the box keeps no card numbers" % name)
        problem = control_problem(value, lines=True)  # in the log and the letter in another order, or cut
        if problem:
            raise SarError("the %s: %s" % (name, problem[0].lower() + problem[1:].rstrip(".")))
    for entry_id, why in sorted((withheld or {}).items()):
        if not why or not why.strip():
            raise SarError(
                "give the reason the copy of disclosure log entry %d is withheld from the letter "
                '(e.g. "exemption: crime prevention, DPA 2018 Sch 2 para 2"): nothing was released' % entry_id
            )
        if cards.has_typed_card(why):
            raise SarError(
                "take the card number out of the reason entry %d is withheld: the box keeps no "
                "card numbers" % entry_id
            )
    if bundle_password is not None and len(bundle_password.strip()) < MIN_BUNDLE_PASSWORD:
        # "a" was taken: a bundle of someone's calls that anyone could open.
        raise SarError(
            "the bundle password needs at least %d characters (a few words): the bundle holds "
            "the calls' recordings" % MIN_BUNDLE_PASSWORD
        )
    if whose is not None and search.get("number"):
        raise SarError(
            "whose the calls are is said only of calls found by date alone: the number searched "
            "says it. Nothing was released"
        )
    if only:
        missing = sorted(set(only) - {c["id"] for c in calls})
        if missing:
            raise SarError("call %d is not among the calls found: nothing was released" % missing[0])
        if not search.get("number"):
            _check_whose(whose, WHOSE_BY_LINE if search.get("lines") else WHOSE_NOT_GIVEN)
        calls = [c for c in calls if c["id"] in set(only)]
        search = dict(search, calls=sorted(set(only)))
    elif search.get("lines") and not search.get("number"):
        # Every call found on the lines goes, the supervisor saying whose they are: a staff
        # member's line holds their calls only if it is theirs alone.
        _check_whose(whose, WHOSE_BY_LINE)
    elif not search.get("number"):
        raise SarError(
            "a release names the requester's number: a date range alone holds every other "
            "caller's calls of those days. For a withheld caller's calls, list them (their "
            "call numbers)"
        )
    if not calls:
        raise SarError("no calls match: nothing to release")
    audio_s = sum(c.get("recording_duration_s") or 0 for c in calls if c.get("recording") != "deleted")
    if audio_s > MAX_BUNDLE_AUDIO_S:
        raise SarError(
            "these calls hold %s of recordings, more than one bundle carries (%s). Nothing was "
            "released: release them in parts, by date range or naming the calls in each"
            % (duration_text(audio_s), duration_text(MAX_BUNDLE_AUDIO_S))
        )
    request = {
        "requester": requester,
        "recipient": recipient,
        "reason": reason,
        "search": search,
        "released_by": actor,
    }
    unknown = sorted({c for c, _, _ in redactions} - {c["id"] for c in calls})
    if unknown:
        raise RedactionError("call %d is not in the release: it cannot be redacted" % unknown[0])
    by_id = {c["id"]: c for c in calls}
    for call_id, from_s, to_s in redactions:
        check_redaction(by_id[call_id], from_s, to_s)
    return calls, search, request


WHOSE_NOT_GIVEN = (
    "calls found by date alone can be any caller's: say how you know each call named is "
    "the requester's, or one the request covers, in 5 to 500 characters (whose calls they "
    'are, e.g. "withheld number; the times and line she gave"). Nothing was released'
)

# Of calls found by line (firmware.sar.search_lines): every caller's on those lines, whoever
# answered. A staff member's line is theirs only if it is theirs alone.
WHOSE_BY_LINE = (
    "calls found by line are every call on those lines, whichever the number at the other end, "
    "and a line is one staff member's only if it is theirs alone (not shared, not answered by "
    "others): say how you know the calls released are the requester's, or ones the request "
    'covers, in 5 to 500 characters (e.g. "line 3 is her own phone, nobody else\'s"). Nothing '
    "was released"
)


def _check_whose(whose, missing=WHOSE_NOT_GIVEN):
    """The supervisor's word on calls named after a search by date alone (any caller's), or
    released after a search by line (every call on the lines): given by the rule of a reason
    the trail keeps (:func:`firmware.typed.given_reason`: 5 to 500 characters, no control
    character), with no card number in it. ``missing``: what is said when none is given.

    :raises SarError: none given, too short or long, a control character or a card number
        in it (nothing was released)
    """
    if whose and cards.has_typed_card(whose):
        raise SarError("take the card number out of whose calls they are: the box keeps no card numbers")
    _, problem = given_reason(whose, missing)
    if problem == missing:
        raise SarError(problem)
    if problem:
        raise SarError("whose calls they are: %s Nothing was released" % problem)


def release(
    data_dir,
    store,
    audit,
    recording_key,
    *,
    actor,
    requester,
    recipient,
    reason,
    calls,
    search,
    bundle_name,
    bundle_password=None,
    wall_us,
    redactions=(),
    spool=None,
    progress=None,
    only=None,
    about=None,
    facts=None,
    request_id=None,
    withheld=None,
    letter_sha256=None,
    whose=None,
):
    """Build (and encrypt) the bundle, log and audit the release, then hand it over.

    A release names the requester's number (``search["number"]``), or lists its calls
    (``only``: call ids, a withheld caller's found by date), or is of the lines searched
    (``search["lines"]``, a staff member's own calls) with ``whose``: a date range alone holds
    every other caller's calls of those days, and released them all.

    The bundle is streamed (:func:`write_bundle`, through gpg with ``bundle_password``)
    to ``spool`` (:mod:`firmware.sarbundle`; default a :class:`MemorySpool`), never
    whole in memory; ``progress(done, total)`` is told of each recording. Once it is
    whole (``spool.ready()``, where the spool has one: written out, so that a full card
    refuses it now) the disclosure log and the audit trail get the release, before any
    of it leaves (:func:`_log`: ``spool.logged(entry id)`` names a waiting bundle by its
    entry before the entry is committed); then ``spool.commit(entry id)`` keeps it (the
    command line's file is renamed into place), and a commit that fails adds an entry
    saying so before the bundle is deleted, or, the trail refusing that, keeps the bundle
    whole with its release on record as made (:func:`_not_released`). Anything failing
    before discards the spool (nothing half-written is left)
    and nothing is logged: a recording failing its check, gpg failing, the spool's disk
    full, the audit trail refusing the release. Returns ``(disclosure log entry id,
    spool)``.
    ``facts``: the business's :class:`~firmware.sarletter.LetterFacts`, which the
    bundle's cover letter gives, with the copies of the person's calls given before
    (:func:`earlier_releases`). ``request_id``: the register's request
    (:mod:`firmware.rights`) the release answers, kept in its entry; ``bundle_name``
    may hold ``{id}``, which becomes the entry's id. ``withheld``: ``{entry id: reason}``,
    copies given before that the letter leaves out (:func:`letter_copies`), each named
    with its reason in the release's audit entry and disclosure log entry.
    ``letter_sha256``: the :func:`letter_digest` of the letter the supervisor was shown (the
    web UI's form); the copies given before are read again here, and a letter that differs
    (another release logged meanwhile, or one audited as never made) is refused with
    :class:`LetterChanged` before anything is written or logged.
    ``whose``: how the supervisor knows calls named after a search by date alone are the
    requester's (:func:`check_release`), in the release's audit entry (not in the bundle:
    it can name someone else).
    """
    spool = MemorySpool() if spool is None else spool
    withheld = dict(withheld or {})
    try:
        calls, search, request = check_release(
            actor=actor,
            requester=requester,
            recipient=recipient,
            reason=reason,
            calls=calls,
            search=search,
            bundle_password=bundle_password,
            redactions=redactions,
            only=only,
            withheld=withheld,
            whose=whose,
        )
        # Read before the bundle is made: its letter lists the copies of these calls given
        # before, less those withheld.
        earlier = letter_copies(
            earlier_releases(
                data_dir, audit, calls, search, request_id, facts.country if facts is not None else "uk"
            ),
            withheld,
        )
        if letter_sha256 is not None:
            letter = bundle_letter(store, calls, request, redactions, about is not None, facts, 0, earlier)
            if letter_digest(letter) != letter_sha256:
                raise LetterChanged(
                    "the letter this bundle would open with is not the one shown on the form: the "
                    "copies of these calls given before (or their recordings) changed since. Read "
                    "the letter as it is now, then release again"
                )
        counted = Counted(spool)
        sink = GpgStream(bundle_password, counted) if bundle_password else counted
        try:
            n_recordings = write_bundle(
                sink,
                store,
                calls,
                recording_key,
                request,
                redactions,
                about,
                facts,
                wall_us,
                progress,
                earlier,
            )
            if bundle_password:
                sink.finish()
        except BaseException:
            if bundle_password:
                sink.abort()
            raise
        if hasattr(spool, "ready"):
            spool.ready()  # all of it on the card: a full card refuses it before anything is logged
        bundle_sha256 = counted.sha256.hexdigest()
    except BaseException:
        spool.discard()
        raise
    entry_id = _log(
        data_dir,
        audit,
        dict(
            wall_us=wall_us,
            actor=actor,
            requester=requester,
            recipient=recipient,
            reason=reason,
            search=json.dumps(search),
            call_ids=",".join(str(c["id"]) for c in calls),
            recordings=n_recordings,
            bundle=bundle_name,
            bundle_sha256=bundle_sha256,
            encrypted=int(bool(bundle_password)),
            request_id=request_id,
            withheld=json.dumps(_withheld_list(withheld)) if withheld else None,
        ),
        redactions,
        spool,
        _withheld_list(withheld),
        # As checked, and as the trail keeps a reason: its spaces run together (a line break
        # or a separator typed in it, which the check saw as a space, is not kept).
        given_reason(whose, WHOSE_NOT_GIVEN)[0] if whose else None,
        sorted({c["line"] for c in calls if c.get("line") is not None}),
    )
    try:
        spool.commit(entry_id)
    except OSError as exc:
        _not_released(audit, spool, actor, entry_id, wall_us, bundle_name.replace("{id}", str(entry_id)), exc)
    return entry_id, spool


def _not_released(audit, spool, actor, entry_id, wall_us, name, exc):
    """The bundle of a release logged and audited could not be kept (``spool.commit`` raised
    ``exc``): its release is audited as not made, then the bundle deleted (the command line's
    too where its rename into place was done). A bundle is deleted only once its release is
    audited as not made: the trail refusing that (its card full, or locked), it is kept,
    whole, and the release stays on record as made (the web UI's, :mod:`web.sarjob`, is
    audited as not made once the trail has room).

    :raises SarError: always, saying which
    """
    there = exc.filename or name if isinstance(exc, FileExistsError) else None
    if there:  # made there as the bundle was written: kept
        why = "%s is there already, made meanwhile: a subject access bundle never replaces a file" % there
    else:
        why = exc.strerror or str(exc)
    try:
        audit.append(actor, "disclosure", "disclosure:%d" % entry_id, {"failed": why}, wall_us)
    except Exception as refused:
        kept = spool.keep()
        said = getattr(refused, "strerror", None) or str(refused)
        if hasattr(spool, "logged"):
            then = "it is audited as not released once the card has room"
        else:
            then = (
                "it stays on record as released (disclosure log entry %d), and the bundle is "
                "kept, whole, as %s" % (entry_id, kept)
            )
        raise SarError(
            "cannot write %s: %s; the audit trail refused to record that it was not released (%s): %s"
            % (name, why, said, then)
        ) from refused
    spool.discard()
    if there:  # the refusal of a name there already at the start
        raise SarError(
            "%s is there already: a subject access bundle never replaces a file; give a new file "
            "name — nothing was written" % there
        ) from None
    raise SarError("cannot write %s: %s" % (name, why)) from None


def _withheld_list(withheld):
    """``{entry id: reason}`` as the audit entry and the disclosure log keep it."""
    return [{"disclosure": entry_id, "reason": why.strip()} for entry_id, why in sorted(withheld.items())]


def _log(data_dir, audit, entry, redactions, spool, withheld=(), whose=None, lines=()):
    """Write the release to the disclosure log and the audit trail; the log entry's id.
    ``lines``: the lines of its calls, which the audit entry keeps (a supervisor's year in
    review counts the release by them, its calls in the call log or not).

    The two agree whatever fails, or wherever a power cut comes: the entry is committed
    with the waiting bundle already named by it (``spool.logged``, :mod:`web.sarjob`,
    which at its next start audits such a bundle as not released, and deletes one whose
    entry never committed), then audited. An entry the trail refuses (a full card) is
    taken back: nothing was released. One that cannot be taken back either stays
    with its bundle, which the web UI audits as not released once the trail has room.

    :raises SarError: the trail refused the release (nothing was released)
    """
    log = DisclosureLog(data_dir, getattr(audit, "cipher", None))
    try:
        try:
            entry_id = log.add(logged=getattr(spool, "logged", None), **entry)
        except BaseException:
            spool.discard()  # rolled back: nothing logged
            raise
        try:
            audit.append(
                entry["actor"],
                "disclosure",
                "disclosure:%d" % entry_id,
                {
                    "requester": entry["requester"],
                    "recipient": entry["recipient"],
                    "reason": entry["reason"],
                    "calls": [int(c) for c in entry["call_ids"].split(",")],
                    "lines": list(lines),
                    "recordings": entry["recordings"],
                    "encrypted": bool(entry["encrypted"]),
                    "bundle_sha256": entry["bundle_sha256"],
                    "redacted": [[c, a, b] for c, a, b in redactions],
                    **({"request": entry["request_id"]} if entry["request_id"] is not None else {}),
                    # The copies given before its letter leaves out, and why (the crime exemption).
                    **({"withheld": list(withheld)} if withheld else {}),
                    # Calls named after a search by date alone: how the supervisor knows whose.
                    **({"whose": whose} if whose else {}),
                },
                entry["wall_us"],
            )
        except Exception as exc:  # the trail's card full, or the trail not open
            why = getattr(exc, "strerror", None) or str(exc)
            try:
                log.remove(entry_id)
            except Exception as kept:
                if hasattr(spool, "logged"):  # the web UI's: kept, and audited once the trail has room
                    then = (
                        "disclosure log entry %d is audited as not released once the card has room" % entry_id
                    )
                else:  # the command line's: nothing will audit it later
                    spool.discard()
                    then = (
                        "disclosure log entry %d could not be taken back (%s): the log lists it as "
                        "released, though nothing was" % (entry_id, getattr(kept, "strerror", None) or kept)
                    )
                raise SarError(
                    "the audit trail refused the release (%s): nothing was released; %s" % (why, then)
                ) from exc
            spool.discard()
            raise SarError("the audit trail refused the release (%s): nothing was released" % why) from exc
    finally:
        log.close()
    return entry_id


def notes_and_names(notes, phonebook, country, corrections=None):
    """``about(calls)`` for :func:`release` from the web UI's call notes and phonebook
    (:class:`web.phonebook.CallNotes`, :class:`web.phonebook.Phonebook`) and, given
    ``corrections`` (:class:`web.corrections.NameCorrections`), the names calls were
    corrected to on request (``corrected_names``: {call id: name}, only when there is one:
    the person's data as the box now shows it)."""

    def about(calls):
        kept = {}
        for call in calls:
            found = [
                {"note": n["note"], "at_us": n["at_us"]}
                for n in notes.of_call(call["id"])
                if not n.get("erased")
            ]
            if found:
                kept[str(call["id"])] = found
        names = phonebook.names_for([c["number"] for c in calls if c.get("number")], country)
        found = {"notes": kept, "phonebook": names}
        if corrections is not None:
            shown = corrections.of_calls([c["id"] for c in calls])
            corrected = {str(i): c["name"] for i, c in shown.items() if c["name"]}
            if corrected:
                found["corrected_names"] = corrected
        return found

    return about
