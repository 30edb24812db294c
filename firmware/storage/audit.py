"""The tamper-evident audit trail: who played, exported, deleted or changed what, and when.

Entries are rows of an append-only SQLite table (WAL, ``synchronous=FULL``:
an entry is on the card before :meth:`AuditLog.append` returns). Each entry
carries the hash of the one before it::

    hash = SHA-256(prev_hash || canonical entry)

where the canonical entry is the JSON object of ``seq``, ``wall_us``,
``actor``, ``action``, ``target`` and ``details`` with sorted keys, no
whitespace and ASCII escapes, and the first entry's ``prev_hash`` is 32 zero
bytes. Hashes are stored as hex text. Editing, deleting, inserting or
reordering entries therefore breaks the chain, and :meth:`AuditLog.verify`
says where.

Deleting entries at the *end* leaves a valid chain, so the chain head (last
``seq`` and ``hash``) is also written to a separate file after every commit
(atomically). :meth:`verify` reports a log that ends before the head, or whose
entry at the head's ``seq`` has another hash. The head is written just after
the commit, so a power cut in between leaves it one commit behind; that much is
accepted (the entries are chained like any other) and the next commit brings
the head up to date.

Group commit (the box, docs/audit-writes.md): given a clock and ``commit_us``,
:meth:`AuditLog.append_soon` keeps an entry in memory and commits it, with every
other entry staged meanwhile, in one transaction at most ``commit_us`` later (or
with the next :meth:`append`, a read, :meth:`flush` or :meth:`close`). A group
never spans more than ``commit_us`` of its entries' wall times nor more than
:data:`GROUP_ENTRIES_MAX` entries, and the head written after it says
``group_us``; so after a crash between a commit and its head, what follows the
head is one such group, and :meth:`verify` accepts exactly that (one entry for
a head without ``group_us``; none beyond one entry after a clean stop).

Someone who can rewrite both the database and the head file (whoever holds
the card) can rewrite history consistently. A head copied off the box closes
that gap: the audit page shows it as ``SEQ:HASH``, and
``verify(anchor=...)`` (``linekeeper verify --head SEQ:HASH``) checks that the
entry taken then is still in the chain with the same hash, so nothing up to
it was deleted, edited or re-chained. docs/security.md says what that does
and does not reveal.

Keyed: given the box's device signer (:mod:`firmware.signing`, kept in the
HAT's MCU vault), every entry's hash is also signed (Ed25519 over
:data:`SIG_TAG` || the 32 hash bytes, hex in table ``audit_sig``), and so is
the head. ``verify(public_key=...)`` then requires each entry from the first
signed one on to carry a valid signature: whoever re-chains the log with the
card alone cannot sign it. Entries from before signing began are covered by
the first signed entry after them (its hash chains them).

Sealed: given the box's field cipher (:mod:`firmware.storage.fieldseal`, its
key unwrapped by the HAT's MCU vault), an entry's details (addresses,
reasons, notes) are stored as ``{"lk_sealed": SEALED TEXT}`` and the hash
covers that stored form, so the chain and the signatures are checked without
the key, while only the box reads the details. The box's own bookkeeping
(:data:`UNSEALED_ACTIONS`: recording digests, sweep anchors) stays readable,
so ``verify`` accounts for every recording on any machine.

Indexed: the call ids that pages of the calls list and reports named
(:data:`CALLS_NAMED_BY`, in their sealed details) are also rows of table
``audit_calls``, written in the entry's own transaction, so that a search by
number finds those entries whatever their age (:meth:`AuditLog.naming_calls`).
The index is outside the chain: a search opens each entry it gives, and
``verify`` rebuilds it from the entries (with the key) and reports a row added
or deleted. A trail from before it (schema 1) is indexed by
:meth:`AuditLog.build_calls_index`, which needs the key (the recorder, at its start).
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import heapq
import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

from firmware.datadir import new_db_pages, on_read_only_card
from firmware.errors import AuditError
from firmware.policy import cards
from firmware.signing import device_signer, run_dir
from firmware.storage.fieldseal import FieldSealError, is_sealed, load_field_cipher
from firmware.storage.fsutil import atomic_write, create_db_file, overwrite_in_place
from firmware.storage.held import SignalsHeld

ACTIONS = frozenset(
    {
        "playback",
        "export",
        "delete",
        "erase_details",  # a caller's details erased from the call log on request
        # The caller's name corrected for one call on request (web/views/calls.py, web.corrections).
        "correct_details",
        # A scheduled report waiting in the mail queue withdrawn (replaced by a notice) as
        # the caller's details of a call in its days were erased (firmware/mail/schedule.py).
        "mail_withdrawn",
        # A report being mailed as such an erasure was made, which the mail server took: it
        # had gone before it could be withdrawn (firmware/mail/queue.py).
        "mail_already_sent",
        # A caller's details erased on a box dropped from the central viewer's index, once
        # the erasure reached the bucket (web/archive/app.py, target "BOX/CALL_ID").
        "archive_erasure",
        "mail_test",
        # The consent announcement played into a line as a test, or refused (web/views/consent.py).
        "consent_test",
        "login",
        "login_failed",
        "logout",
        # An account's lockout (after its failed logins) ended by an installer.
        "account_unlock",
        # An account disabled (unused for 90 days, by the box; or by an installer), and one
        # an installer enabled again (web/inactive.py).
        "account_disabled",
        "account_enabled",
        # The audit trail's page viewed, once per page shown with its filter (PCI DSS 10.2.1.3).
        "audit_view",
        # A call's page opened (it shows the caller's number and name), once per login
        # session and call (web/views/calls.py).
        "call_viewed",
        # A data subject's request's page opened (it shows who asked, how to reach them and
        # what they asked), once per login session and request (web/views/rights.py).
        "request_viewed",
        # A page of callers' numbers shown on screen, once per page shown: the calls list
        # (target "calls": its filter, the calls shown), a report (target "report": its
        # lines and period, how many numbers its callback list held and their calls) or the
        # phonebook (target "phonebook": the entries shown). web/views/calls.py, reports.py,
        # phonebook.py; the call log printed by `linekeeper calls` is a calls page's, with
        # "via": "cli" (firmware/cli.py).
        "list_viewed",
        # The staff notice in a version not shown before: its words, as first shown.
        "staff_notice",
        "config_change",
        "key_slot_add",
        "key_slot_remove",
        "password_change",
        "retention_sweep",
        "init",
        "legal_hold",
        "pause",
        "resume",
        # A call marked personal by its staff member's code on the handset: not recorded, and
        # what was recorded of it discarded (firmware/policy/engine.py; target "call:N").
        "personal_call",
        "quarantine",
        "repair",
        "alarm",
        "report",
        "disclosure",
        # A subject access letter read before its release (the web form's preview, `linekeeper
        # sar --letter`): it names the person's calls and who was given copies of them before.
        "disclosure_preview",
        # A person's calls looked at for a subject access request (the web form's search,
        # `linekeeper sar --earlier`): the number searched, how many calls, the copies shown.
        "disclosure_search",
        # A subject access release (or its letter's preview) refused, nothing released, and
        # why: on the web form, in its bundle's job, or by `linekeeper sar` (firmware/sar.py).
        "disclosure_refused",
        # A data subject's request logged, its clock stopped or restarted, extended,
        # answered or refused (firmware/rights.py); target "request:N".
        "data_request",
        # The MCU warned of a power cut: every recording in progress was sealed.
        "power_fail",
        # People's work in the web UI: the calls list exported, tags and notes on a
        # call, the phonebook changed.
        "export_list",
        # A list's CSV whose reading failed part way: it ends with a row saying so, and
        # this says how many rows it holds (web.views.csv_download).
        "export_list_cut",
        "call_note",
        "phonebook",
        # A firmware update: installed, refused or rolled back (firmware/update/).
        "update",
        # The recordings' own lives (issue 19): the box creates, seals, recovers and
        # deletes them, so that a recording removed behind its back shows.
        "recording_created",
        "recording_sealed",
        "recording_recovered",
        "recording_deleted",
        "recording_signed_at_upgrade",
        # A recording's file written again from the recording journal at the start: what
        # it was (missing, shorter, other bytes) and why (firmware/recording/store.py).
        "recording_replayed",
        # The storage key moved to a new HAT and the signing key handed over (firmware/hatswap.py).
        "hat_replaced",
        # Line keys (issue 19): a slot's lines granted or taken away, and every
        # key of the box replaced by `linekeeper rekey`.
        "key_grant",
        "rekey",
        # A copy of the key store downloaded or written as a backup, or put back where it
        # was missing (firmware/keybackup.py).
        "key_backup",
        # The whole trail written to a file by `linekeeper audit-export` (its last entry this
        # one), or that export refused or failed (firmware/auditcopy.py).
        "audit_export",
        # The configuration written to a file by `linekeeper config export` (where to, its
        # sections, how many number-rule patterns it holds in clear; never the patterns), or
        # that write failed (firmware/cli.py).
        "config_export",
        # What one account did over a period (calls viewed, played, exported, released, its
        # logins) read for a personal data breach report by `linekeeper breach-scope`, or
        # refused (firmware/breachscope.py); target the account looked into.
        "breach_scope",
        # A call the silence clear had ended went on (sound again, our side still
        # off-hook): its end in the call log was taken back.
        "call_resumed",
        # The chain's head written again at the start, after the card had refused it
        # (AuditLog.restore_head).
        "audit_head_restored",
        # The recorder's starts failed for a time before the one that worked
        # (firmware/startfail.py): the gap in which nothing was recorded.
        "recorder_start_failed",
        # The recorder started (how the run before ended, since when it had not been
        # recording) and stopped cleanly: the running periods reports show (firmware/uptime.py).
        "box_start",
        "box_stop",
        # The clock was set (NTP) in a run whose start it had dated before: that start
        # dated again (firmware/box.py, read by firmware/reports/downtime.py).
        "clock_set",
        # The off-box archive's work on a call's copies (firmware/archive/replicator.py), one
        # entry for what a job did (not one per try): the call's recordings and record put,
        # put over a damaged copy, its copies deleted (retention, an erasure), and versions
        # a deletion left because they are not the box's own.
        "archive_copied",
        "archive_replaced",
        "archive_deleted",
        "archive_left",
        # The web UI's HTTPS certificate made anew at a start, not renewed: its key did not
        # open or was missing, or it did not load; the old files kept aside (web/tls.py).
        "https_replaced",
        # The web UI told the syslog server that the recorder cannot start, or has started
        # again (web/startalarm.py): the only alarm that can leave the box then.
        "start_syslog",
        # The web UI mailed the alarm recipients that the recorder has not started for
        # minutes (web/startmail.py): who was told, since when, why in a word.
        "start_mail",
    }
)
SEALED_KEY = "lk_sealed"  # the details of a sealed entry: {SEALED_KEY: sealed text}
# The box's own bookkeeping, which ``verify`` reads on any machine (recording
# digests, sweep anchors, hold-up figures): no person's data, never sealed.
UNSEALED_ACTIONS = frozenset(
    {
        "recording_created",
        "recording_sealed",
        "recording_recovered",
        "recording_deleted",
        "recording_signed_at_upgrade",
        "recording_replayed",
        "retention_sweep",
        "power_fail",
        "audit_head_restored",
        "box_start",
        "box_stop",
        "clock_set",
        # Written by the web UI as it starts, maybe before it has the key: file names and a
        # fingerprint, nobody's data.
        "https_replaced",
        # Written while the recorder cannot start, so without the storage key: a fault's
        # class and times, nobody's data.
        "start_syslog",
    }
)
# Actions whose target is a person's number (not a call or recording id): sealed too.
SEALED_TARGET_ACTIONS = frozenset({"phonebook"})
# The entries that name the calls whose callers' numbers they showed (``calls`` in their
# details), as ``(action, target)``, target None for any: a page of the calls list shown, a
# report shown (its callback list's calls) and a report downloaded.
CALLS_NAMED_BY: tuple[tuple[str, str | None], ...] = (
    ("list_viewed", "calls"),
    ("list_viewed", "report"),
    ("report", None),
)
# Their actions, for reading them.
_NAMING_ACTIONS = tuple(sorted({action for action, _ in CALLS_NAMED_BY}))
SIG_TAG = b"linekeeper audit entry v1\n"
HEAD_SIG_TAG = b"linekeeper audit head v1\n"
GENESIS_HASH = "00" * 32
# 2: the index of the call ids that the entries of CALLS_NAMED_BY named (``audit_calls``).
SCHEMA_VERSION = 2
# Group commit (AuditLog.append_soon): at most this many entries in one commit, and
# a head's ``group_us`` counts for at most this long (the longest a box lets audio
# wait, config ``holdup_flush_ms``): entries after the head beyond that are tampering.
GROUP_ENTRIES_MAX = 64
GROUP_SPAN_MAX_US = 60_000_000
# Later than any entry's time (µs: some 146 000 years after 1970): an upper bound that is no bound.
_NO_END_US = 1 << 62
# The box's own per-call bookkeeping that may wait for a group commit: a crash loses
# at most the last group (docs/audit-writes.md says what that costs and why it is fine).
DEFERRABLE_ACTIONS = frozenset({"recording_created", "recording_sealed"})

log = logging.getLogger(__name__)


def with_address(details, address):
    """``details`` with the web client's ``address``, as the web UI's own entries carry it
    ("From address"): for an entry the box writes on a page's behalf. None: not asked from
    a page, and no address is added. Not for :data:`UNSEALED_ACTIONS`, which stay
    readable on the card alone and so hold no person's data."""
    return details if address is None else dict(details, address=address)


# The audit page's filters by who and when (and their CSV copies): without these each
# read the whole trail. Built on an older trail by migration m003.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, seq)",
    "CREATE INDEX IF NOT EXISTS audit_wall ON audit (wall_us)",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    wall_us INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, seq);
-- A call's page lists what was done to that call.
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, seq);
%s
-- Stops bugs, not attackers (who can drop these): the log is append-only.
-- The call ids that each entry of CALLS_NAMED_BY names in its (sealed) details, written
-- in the entry's own transaction: a search by number reads the entries naming its calls
-- from here, not every list shown. Outside the hash chain: verify rebuilds it.
CREATE TABLE IF NOT EXISTS audit_calls (
    call_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (call_id, seq)
) WITHOUT ROWID;
-- One row: every entry after ``covered_after`` is in audit_calls; the entries up to it
-- (an older trail's, from before the index) are still to be indexed (0: none are).
CREATE TABLE IF NOT EXISTS audit_calls_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    covered_after INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
""" % "\n".join(statement + ";" for statement in INDEXES)


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One audit entry; ``wall_us`` is µs since the Unix epoch (UTC), hashes are hex."""

    seq: int
    wall_us: int
    actor: str
    action: str
    target: str | None
    details: dict
    prev_hash: str
    hash: str
    # With ``entries(stored=True)``: the canonical text the hash was taken over (the target
    # and details as stored, sealed ones sealed: :func:`entry_body`) and the entry's
    # signature (hex; None for one written before the box signed).
    body: str | None = None
    sig: str | None = None


def read_head(head_path: str | os.PathLike[str]) -> tuple[int, str] | None:
    """The chain head in the file ``head_path``: ``(seq, hash)``, or None if there is none.

    Sent off the card (with every scheduled report, say), an earlier head is what
    ``linekeeper verify --head SEQ:HASH`` checks the trail against later.
    """
    head = _read_head_doc(os.fspath(head_path), lock=True)
    return None if head is None else (head["seq"], head["hash"])


# The head file: one 4 KiB block, its canonical JSON padded with spaces in the first
# 512-byte sector, spaces after it and a final newline (still one JSON document to any
# reader). Only that sector is rewritten in place: the card gets one sector, and the file
# never ends inside the write (a direct write that ends the file has the rest of its
# block written with zeros too). Its copy, written just before it, is what a reader takes
# when a power cut tore the head's own write (docs/audit-writes.md).
HEAD_BYTES = 4096
HEAD_SECTOR_BYTES = 512
HEAD_COPY_SUFFIX = ".prev"


def _head_bytes(doc):
    """The head's first sector (the part rewritten), or, for a head too long for it
    (never, for the fields a head has), the whole of a file of its own size."""
    text = canonical_json(doc)
    if len(text) > HEAD_SECTOR_BYTES:
        return (text + "\n").encode("ascii")
    return (text + " " * (HEAD_SECTOR_BYTES - len(text))).encode("ascii")


def _read_head_doc(head_path, lock=False):
    """The head document in ``head_path`` (None when there is no head file, nor its
    copy); a head that does not parse (a write a power cut tore), or that is missing
    while its copy is there (a cut as the head was first made, its copy just
    before), is read from its copy.

    ``lock``: hold the appenders' lock, shared, while reading, so that a head being
    rewritten in place is never read half old, half new (not where the caller holds
    it already, nor where it cannot be opened: a read-only copy of a data directory).

    :raises OSError, ValueError: neither the head nor its copy can be read
    """
    with _shared(head_path + ".lock") if lock else contextlib.nullcontext():
        try:
            with open(head_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            try:
                with open(head_path + HEAD_COPY_SUFFIX, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return None
        try:
            return json.loads(raw)
        except ValueError as torn:
            try:
                with open(head_path + HEAD_COPY_SUFFIX, "rb") as f:
                    return json.loads(f.read())
            except (OSError, ValueError):
                raise torn from None


@contextlib.contextmanager
def _shared(lock_path):
    try:
        lock_file = open(lock_path, "rb")
    except OSError:  # no lock file (never appended to here) or not ours to open
        yield
        return
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_SH)
        yield


def write_head_file(head_path, data):
    """Write the head file ``head_path`` (``data``: its first sector, from
    :func:`_head_bytes`), after every commit.

    In place: that sector to the card and no commit of ext4's journal
    (docs/audit-writes.md). Its copy first, then the head: a power cut tears one of
    them at most, and a torn head is read from its copy, which then holds the same
    head. A file not of the head's size yet (none, or one an older release wrote) is
    replaced whole, once.

    :raises OSError: a write failed
    """
    whole = data
    if len(data) == HEAD_SECTOR_BYTES:
        whole = data + b" " * (HEAD_BYTES - len(data) - 1) + b"\n"
    for path in (head_path + HEAD_COPY_SUFFIX, head_path):
        if not overwrite_in_place(path, data, file_bytes=len(whole)):
            atomic_write(path, whole, one_commit=True)


# A text as canonical JSON writes it (ASCII only): json's own encoder of strings.
json_text = json.encoder.encode_basestring_ascii


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text: sorted keys, no whitespace, ASCII only.

    Raises :class:`AuditError` for values JSON cannot hold exactly (NaN,
    infinities, non-string keys, other types).
    """
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise AuditError("audit details must be plain JSON data: %s" % err) from None


def entry_body(seq, wall_us, actor, action, target, details):
    """The canonical text of an entry that its hash covers (``details`` as stored)."""
    return canonical_json(
        {
            "seq": seq,
            "wall_us": wall_us,
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        }
    )


def body_hash(prev_hash, body):
    """The hex SHA-256 chaining the entry whose canonical text is ``body`` to ``prev_hash`` (hex)."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("ascii")).hexdigest()


def entry_hash(prev_hash, seq, wall_us, actor, action, target, details):
    """The hex SHA-256 chaining an entry to ``prev_hash`` (hex)."""
    return body_hash(prev_hash, entry_body(seq, wall_us, actor, action, target, details))


def _check_details(value):
    # Floats other than finite ones fail in canonical_json; dict keys must be text
    # (json.dumps would silently turn 1 into "1" and change the entry).
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError("audit details keys must be text, not %r" % (key,))
            _check_details(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_details(item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise AuditError("audit details cannot hold %r" % value)


def calls_named(action, target, details):
    """The call ids an entry of :data:`CALLS_NAMED_BY` names (``calls`` in its details, as
    written: opened), sorted and each once; [] for an entry of another kind."""
    if not any(action == a and t in (None, target) for a, t in CALLS_NAMED_BY):
        return []
    shown = details.get("calls") if isinstance(details, dict) else None
    if not isinstance(shown, list):
        return []
    # (Only what SQLite holds: an id beyond 64 bits would fail the entry's own commit.)
    return sorted({i for i in shown if type(i) is int and -(1 << 63) <= i < 1 << 63})


def _hits(details, wanted):
    """The ids of ``wanted`` among the calls an entry's (opened) details name, as they name them."""
    shown = details.get("calls") if isinstance(details, dict) else None
    return [i for i in shown if type(i) is int and i in wanted] if isinstance(shown, list) else []


class AuditLog:
    """The audit trail in SQLite database ``path_db``, its chain head in ``head_path``.

    Thread-safe; appends from several processes are serialised with
    ``flock`` on ``head_path + ".lock"``. Raises :class:`sqlite3.Error` or
    :class:`OSError` when the storage fails.

    ``clock`` and ``commit_us`` (the box): :meth:`append_soon` entries wait up to
    ``commit_us`` µs of clock time for one group commit (see the module
    docstring); without them every entry is committed as it is appended.
    """

    def __init__(
        self,
        path_db: str | os.PathLike[str],
        head_path: str | os.PathLike[str],
        readonly: bool = False,
        signer: Any = None,
        cipher: Any = None,
        clock: Any = None,
        commit_us: int = 0,
    ) -> None:
        self.path_db = os.fspath(path_db)
        self._clock = clock
        self.commit_us = min(int(commit_us), GROUP_SPAN_MAX_US) if clock is not None else 0
        self._staged: list[_Staged] = []  # entries waiting for their group commit
        self._timer: Any = None  # the group commit due, while entries wait for it
        self._head_due = False  # the card refused the last head write: the head lags the log
        self.commits = 0  # transactions written (tests and the bench count them)
        self.signer = signer
        self.cipher = cipher  # seals the details (None: kept in clear)
        # Why the last verify did not check the index of the calls named (None: it did).
        self.calls_index_unchecked: str | None = None
        self.head_path = os.fspath(head_path)
        self._lock = threading.Lock()
        # Read-only (``verify`` on a full or read-only card): nothing is created or
        # locked, and nothing can append meanwhile that a lock would hold off.
        self.readonly = readonly
        if readonly:
            from firmware.datadir import connect_readonly

            self._db = connect_readonly(self.path_db)
            return
        create_db_file(self.path_db)
        self._db = sqlite3.connect(self.path_db, isolation_level=None, check_same_thread=False, timeout=10.0)
        try:
            new_db_pages(self._db)  # smaller WAL frames for each entry (a new trail only)
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            self._db.close()
            said = on_read_only_card(exc, self.path_db)
            if said is exc:
                raise
            raise said from None
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # Signatures in a table of their own: the entries' table keeps its format.
        self._db.execute("CREATE TABLE IF NOT EXISTS audit_sig (seq INTEGER PRIMARY KEY, sig TEXT NOT NULL)")
        # Written only when it changes: a box must still open on a full card.
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._migrate()

    def _migrate(self):
        """Schema 1 -> 2: the index of the calls named (``audit_calls``, made by ``_SCHEMA``)
        covers the entries written from now on; those already there are marked still to be
        indexed (:meth:`build_calls_index`: their details are sealed, and this process may not
        have the key yet). Also where an older release wrote to the trail after this one
        (it wrote no index rows): everything is indexed again."""
        with self._lock, self._appending():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO audit_calls_state (one, covered_after)"
                    " SELECT 1, coalesce(max(seq), 0) FROM audit"
                )
                self._db.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _signer(self):
        """The signer now: ``signer`` may be one, or have ``get()`` (a LazySigner)."""
        get = getattr(self.signer, "get", None)
        return get() if get is not None else self.signer

    def _field_cipher(self):
        """The field cipher now: ``cipher`` may be one, or have ``get()`` (a LazyFieldCipher).

        :raises FieldSealError: the box seals and this process has no key yet
        """
        get = getattr(self.cipher, "get", None)
        return get() if get is not None else self.cipher

    def close(self) -> None:
        """Commit what waits, then close the database; the object is unusable afterwards."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._staged:
                try:
                    self._commit(self._staged)
                except (sqlite3.Error, OSError) as exc:
                    log.error(
                        "%d audit entries could not be written before the stop: %s", len(self._staged), exc
                    )
            if self._head_due:
                self._write_head_again()
            self._db.close()

    def _write_head_again(self):
        """Write the head the card refused after the last commit (call with ``_lock`` held)."""
        try:
            last = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if last is not None:
                self._write_head(last[0], last[1])
            self._head_due = False
        except (sqlite3.Error, OSError) as exc:
            log.error("the audit trail's head still cannot be written: %s", exc)

    def restore_head(self, stopped_cleanly: bool = False) -> tuple[int, int, bool] | None:
        """Write the head again where the log goes on past it, when every entry after
        it is this box's own: chained from the head and signed by this log's signer.
        For the box's start.

        A crash between a commit and its head write leaves the head behind by a
        group, which :meth:`verify` allows, but not once the box has stopped
        cleanly: a run that appends nothing would leave the lag to its clean stop.
        A card that refused the head's writes until the box stopped (full, or
        failing for a while) leaves it further behind, and ``verify`` would take
        those entries for ones added behind the log's back. Entries someone else
        added carry no signature of the box's key: then nothing is done, and
        ``verify`` reports them; so it does a head that is damaged, or missing
        (with its copy) further behind than a cut as the first head was made
        explains: a head mended there could hide entries deleted at the end.

        Returns ``(the head's seq, the last seq, whether verify's rule allowed the
        lag, with stopped_cleanly)`` when the head was written (the caller audits
        one the rule did not allow), else None.

        :raises OSError: the head cannot be written (the card still refuses)
        """
        signer = self._signer()
        if signer is None or self.readonly:
            return None
        from firmware.signing import verify_signature

        self._flush_for_read()
        with self._lock, self._appending():
            try:
                doc = self._head_doc()
            except (OSError, ValueError):
                return None
            missing = doc is None
            if missing:  # (restored only where a cut as the first head was made explains it)
                doc = {"seq": 0, "hash": GENESIS_HASH}
            if not isinstance(doc.get("seq"), int):
                return None
            seq, digest = doc["seq"], doc.get("hash")
            rows = self._db.execute(
                "SELECT a.seq, a.wall_us, a.prev_hash, a.hash, s.sig FROM audit a"
                " LEFT JOIN audit_sig s ON s.seq = a.seq WHERE a.seq >= ? ORDER BY a.seq",
                (seq,),
            ).fetchall()
            tail = _Tail((seq, digest))
            for row in rows:
                tail.add(row[0], row[1], row[3])
            last = rows[-1][0] if rows else seq
            if last == seq or (seq and (rows[0][0], rows[0][3]) != (seq, digest)):
                return None  # no lag; or the head's entry is not the head's (for verify)
            allowed = not self._check_head((seq, digest), last, tail, _group_us(doc), stopped_cleanly)
            if missing and not allowed:
                return None  # further behind than a cut explains: for verify to report
            expected, prev = seq + 1, digest if seq else GENESIS_HASH
            for row_seq, _wall, prev_hash, row_hash, sig in rows[1:] if seq else rows:
                if row_seq != expected or prev_hash != prev or sig is None:
                    return None
                try:
                    signature, message = bytes.fromhex(sig), SIG_TAG + bytes.fromhex(row_hash)
                except ValueError:
                    return None
                if not verify_signature(signer.public_key, signature, message):
                    return None
                expected, prev = row_seq + 1, row_hash
            self._write_head(last, prev)
            self._head_due = False
        return seq, last, allowed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def append(
        self, actor: str, action: str, target: str | None, details: dict[str, Any] | None, wall_us: int
    ) -> AuditEntry:
        """Record that ``actor`` did ``action`` to ``target`` at ``wall_us``; returns the entry.

        ``action`` is one of :data:`ACTIONS`; ``target`` is text or ``None``
        (a call or recording id, a user); ``details`` a dict of plain JSON
        data. The entry is durable when this returns, with every entry that
        waited for a group commit. Raises :class:`AuditError` for bad arguments.
        """
        item = self._prepare(actor, action, target, details, wall_us)
        with self._lock:
            if self._staged and not self._fits(item):
                self._commit(self._staged)
            return self._commit(self._staged + [item])[-1]

    def append_soon(
        self, actor: str, action: str, target: str | None, details: dict[str, Any] | None, wall_us: int
    ) -> None:
        """As :meth:`append`, but the entry may wait up to ``commit_us`` for a group commit.

        Without a clock and ``commit_us`` it is committed at once. A crash
        loses at most the group waiting (docs/audit-writes.md); the box uses
        this for :data:`DEFERRABLE_ACTIONS` only. Raises :class:`AuditError`
        for bad arguments; a commit that this append forces may raise as
        :meth:`append` does.
        """
        item = self._prepare(actor, action, target, details, wall_us)
        with self._lock:
            if self.commit_us <= 0:
                self._commit([item])
                return
            if self._staged and not self._fits(item):
                self._commit(self._staged)
            self._staged.append(item)
            if len(self._staged) >= GROUP_ENTRIES_MAX:
                self._commit(self._staged)
            elif self._timer is None:
                self._timer = self._clock.call_later(self.commit_us, self._commit_due)

    def flush(self) -> None:
        """Commit every entry waiting for its group commit now (raises as :meth:`append`)."""
        with self._lock:
            if self._staged:
                self._commit(self._staged)

    @property
    def waiting(self) -> int:
        """How many entries wait in memory for their group commit."""
        return len(self._staged)

    def _flush_for_read(self):
        """Before a read: what waits is committed, so the read sees it (a failure is logged:
        the read then shows what the card holds)."""
        if not self._staged:
            return
        try:
            self.flush()
        except (sqlite3.Error, OSError) as exc:
            log.error("audit entries wait in memory, the card refused them: %s", exc)

    def _commit_due(self):
        with self._lock:
            self._timer = None
            if not self._staged:
                return
            try:
                self._commit(self._staged)
            except (sqlite3.Error, OSError) as exc:
                # Kept in memory and tried again; the next append or the stop tries too.
                log.error("%d audit entries could not be written yet: %s", len(self._staged), exc)
                if self._staged and self._timer is None:
                    self._timer = self._clock.call_later(self.commit_us, self._commit_due)

    def _fits(self, item):
        """Whether ``item`` may join the staged group (wall times within ``commit_us``)."""
        walls = [s.wall_us for s in self._staged] + [item.wall_us]
        return len(walls) <= GROUP_ENTRIES_MAX and max(walls) - min(walls) <= self.commit_us

    def _prepare(self, actor, action, target, details, wall_us):
        """Check an entry's arguments and give it its stored form (scrubbed, sealed)."""
        if action not in ACTIONS:
            raise AuditError("unknown audit action %r (known: %s)" % (action, ", ".join(sorted(ACTIONS))))
        if not isinstance(actor, str) or not actor:
            raise AuditError("an audit entry needs an actor (a user name or 'system')")
        if target is not None and not isinstance(target, str):
            raise AuditError("an audit target is text or None, not %r" % (target,))
        if not isinstance(details, dict):
            raise AuditError("audit details must be a dict")
        if type(wall_us) is not int:
            raise AuditError("wall_us must be an integer number of microseconds")
        _check_details(details)
        # PCI DSS: no card number reaches the trail, whoever wrote the entry.
        target, details = cards.scrub(target), cards.scrub_json(details)
        details_json = canonical_json(details)
        # Store what will be verified: the details as they read back from JSON.
        details = json.loads(details_json)
        stored = details
        cipher = self._field_cipher()
        if cipher is not None and action not in UNSEALED_ACTIONS:
            stored = {SEALED_KEY: cipher.seal(details_json, "audit")}
            details_json = canonical_json(stored)
        shown_target = target
        if cipher is not None and action in SEALED_TARGET_ACTIONS:
            target = cipher.seal(target, "audit_target")
        return _Staged(wall_us, actor, action, target, stored, details_json, shown_target, details)

    def _commit(self, items):
        """Append ``items`` (prepared entries) in one transaction, then write the head once;
        returns their entries. The staged ones are no longer staged once committed.
        Call with ``_lock`` held.

        Never half of it: a SIGINT or SIGTERM that comes meanwhile is delivered (Ctrl-C's
        :class:`KeyboardInterrupt` raised) once the entries and the head are written, or the
        transaction rolled back (:class:`~firmware.storage.held.SignalsHeld`). A writer that
        must know whether its entry was made before such a stop holds them itself around the
        append and its note of it."""
        with SignalsHeld():
            return self._commit_whole(items)

    def _commit_whole(self, items):
        items = list(items)
        out = []
        with self._appending():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
                signer = self._signer()
                for item in items:
                    seq += 1
                    digest = entry_hash(
                        prev_hash, seq, item.wall_us, item.actor, item.action, item.target, item.stored
                    )
                    sig = None if signer is None else signer.sign(SIG_TAG + bytes.fromhex(digest)).hex()
                    self._db.execute(
                        "INSERT INTO audit (seq, wall_us, actor, action, target, details, prev_hash, hash)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            seq,
                            item.wall_us,
                            item.actor,
                            item.action,
                            item.target,
                            item.details_json,
                            prev_hash,
                            digest,
                        ),
                    )
                    if sig is not None:
                        self._db.execute(
                            "INSERT OR REPLACE INTO audit_sig (seq, sig) VALUES (?, ?)", (seq, sig)
                        )
                    named = calls_named(item.action, item.shown_target, item.details)
                    if named:
                        self._db.executemany(
                            "INSERT OR IGNORE INTO audit_calls (call_id, seq) VALUES (?, ?)",
                            [(call_id, seq) for call_id in named],
                        )
                    out.append(
                        AuditEntry(
                            seq,
                            item.wall_us,
                            item.actor,
                            item.action,
                            item.shown_target,
                            item.details,
                            prev_hash,
                            digest,
                        )
                    )
                    prev_hash = digest
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.commits += 1
            committed = {id(item) for item in items}
            self._staged = [item for item in self._staged if id(item) not in committed]
            if not self._staged and self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                self._write_head(seq, prev_hash)
            except OSError as exc:
                # The entries are committed: only the head lags, which the next commit, or
                # the close, writes. (Raised, it would tell the caller they were not.)
                self._head_due = True
                log.error(
                    "the card refused the audit trail's head (%s): entries up to %d are "
                    "committed, the head follows with the next commit",
                    exc,
                    seq,
                )
            else:
                self._head_due = False
        return out

    @contextlib.contextmanager
    def _appending(self):
        """Hold off appends from other processes (and their head writes)."""
        with open(self.head_path + ".lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield

    def last(self):
        """``(seq, hash)`` of the last entry in the log itself, or ``(0, GENESIS_HASH)``."""
        self._flush_for_read()
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS_HASH) if row is None else (row[0], row[1])

    def recording_seals(self):
        """``(seq, action, target, details)`` of every entry that sealed, recovered or signed a
        recording, oldest first (these actions are never sealed: ids, sizes and hashes)."""
        self._flush_for_read()
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, action, target, details FROM audit WHERE action IN "
                "('recording_sealed', 'recording_recovered', 'recording_signed_at_upgrade') ORDER BY seq"
            ).fetchall()
        return [(seq, action, target, json.loads(details)) for seq, action, target, details in rows]

    def head(self) -> tuple[int, str] | None:
        """The chain head file's ``(seq, hash)``, or ``None`` if there is none yet."""
        self._flush_for_read()
        head = self._head_doc(lock=not self.readonly)
        return None if head is None else (head["seq"], head["hash"])

    def _head_doc(self, lock=False):
        return _read_head_doc(self.head_path, lock=lock)

    def _write_head(self, seq, digest):
        doc: dict[str, Any] = {"seq": seq, "hash": digest}
        # How far behind a crash may leave it: this log's group window, or (a log that
        # commits at once, e.g. the web's) the one the head carried, the box's.
        group_us = self.commit_us
        if group_us <= 0:
            try:
                group_us = _group_us(self._head_doc())
            except (OSError, ValueError):
                group_us = 0
        if group_us > 0:
            doc["group_us"] = group_us
        signer = self._signer()
        if signer is not None:
            doc["sig"] = signer.sign(head_message(seq, digest)).hex()
        write_head_file(self.head_path, _head_bytes(doc))

    def entries(
        self,
        limit: int = 100,
        offset: int = 0,
        action: str | None = None,
        newest_first: bool = True,
        targets: Sequence[str] | None = None,
        actor: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        after_seq: int | None = None,
        stored: bool = False,
        or_seqs: Sequence[int] = (),
        before_seq: int | None = None,
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries after skipping ``offset``, newest first by default.

        ``action`` keeps only entries of that action; ``targets`` (a list of
        texts) only entries about one of them; ``actor`` only those of that user
        (or ``system``, ``cli``); ``since_us`` / ``until_us`` only those written in
        that time (µs since the epoch, inclusive / exclusive). ``after_seq``: only
        those after entry ``after_seq``, oldest first (``offset`` and ``newest_first``
        unused): a reader of many goes on from the last entry it read, not past ever
        more skipped rows. ``before_seq``: only those before entry ``before_seq`` (a page
        of older entries read from where the last ended, whatever was skipped or written
        since). ``or_seqs``: with ``targets``, the entries numbered so too
        (about one of them, or one of these). ``stored``: each entry also carries the text its hash covers
        and its signature (``body``, ``sig``), so a copy can be checked off the box.
        """
        self._flush_for_read()
        where, args = self._where(action, targets, actor, since_us, until_us, or_seqs)
        order = "DESC" if newest_first else "ASC"
        if after_seq is not None:
            where = (where + " AND" if where else "WHERE") + " seq > ?"
            args, order, offset = args + [int(after_seq)], "ASC", 0
        if before_seq is not None:
            where = (where + " AND" if where else "WHERE") + " seq < ?"
            args = args + [int(before_seq)]
        sig = "NULL"
        with self._lock:
            if stored and self._has_sig_table():
                sig = "(SELECT s.sig FROM audit_sig s WHERE s.seq = audit.seq)"
            rows = self._db.execute(
                "SELECT seq, wall_us, actor, action, target, details, prev_hash, hash, %s FROM audit "
                "%s ORDER BY seq %s LIMIT ? OFFSET ?" % (sig, where, order),
                args + [int(limit), int(offset)],
            ).fetchall()
        return [
            AuditEntry(
                r[0],
                r[1],
                r[2],
                r[3],
                self._target(r[4]),
                self._details(r[5]),
                r[6],
                r[7],
                entry_body(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) if stored else None,
                r[8],
            )
            for r in rows
        ]

    def in_period(self, actions: Sequence[str], since_us: int, until_us: int) -> list[AuditEntry]:
        """The entries of ``actions`` written from ``since_us`` (inclusive) to ``until_us``
        (exclusive), in no set order, their details opened. Read through the indexes
        alone: the period's lowest ``seq`` from ``audit_wall`` (the index's own rows, no
        entry read), then each action's entries from that one on through ``audit_action``;
        so a page counting the playbacks of the last months reads those entries, not a
        trail of a million and a half. An entry written while the clock was set back is
        found all the same (its ``seq`` is past the period's lowest), and one before the
        period is left out by its time.

        :raises FieldSealError: sealed, and this log has no cipher or another box's
        """
        actions = list(actions)
        if not actions:
            return []
        self._flush_for_read()
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, wall_us, actor, action, target, details, prev_hash, hash FROM audit"
                " WHERE action IN (%s) AND seq >= (SELECT min(seq) FROM audit WHERE wall_us >= ?"
                " AND wall_us < ?) AND +wall_us >= ? AND +wall_us < ?" % ",".join("?" * len(actions)),
                actions + [int(since_us), int(until_us)] * 2,
            ).fetchall()
        return [
            AuditEntry(r[0], r[1], r[2], r[3], self._target(r[4]), self._details(r[5]), r[6], r[7])
            for r in rows
        ]

    def calls_index_pending(self) -> int:
        """How far the index of the calls named (:meth:`build_calls_index`) is still to be
        built: the entries up to this ``seq`` are not in it yet (0: the index is whole).
        A trail from before the index, opened read-only: its last entry."""
        self._flush_for_read()
        with self._lock:
            return self._pending()

    def _pending(self):
        try:
            row = self._db.execute("SELECT covered_after FROM audit_calls_state").fetchone()
        except sqlite3.OperationalError:
            row = None  # a trail from before the index, opened read-only
        if row is not None:
            return int(row[0])
        return self._db.execute("SELECT coalesce(max(seq), 0) FROM audit").fetchone()[0]

    def build_calls_index(
        self, batch: int = 20_000, progress: Any = None, rows_max: int = 5_000, stop: Any = None
    ) -> int:
        """Index the calls named by the entries from before the index (a trail of schema 1),
        newest first, read ``batch`` entries' worth of ``seq`` at a time and written at most
        ``rows_max`` index rows per transaction (a page of the calls list names up to 50
        calls, a report up to 500), so that an append waits for one short transaction at
        most and a stop or a crash loses none of the work done. ``progress(done, total)``:
        called after each read (entries' ``seq`` counted). ``stop()``: checked before each
        transaction; true, the build ends there, the rest left for the next call.
        Returns how many entries were left to index (0: it was whole already).

        :raises FieldSealError: sealed, and this log has no cipher (nothing is written:
            the index stays as it was, and searches say it is not whole)
        """
        if self.readonly:
            return 0
        total = self.calls_index_pending()
        upto = total
        while upto > 0:
            low = max(0, upto - batch)
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, action, target, details FROM audit WHERE action IN (%s)"
                    " AND seq > ? AND seq <= ? ORDER BY seq DESC" % ",".join("?" * len(_NAMING_ACTIONS)),
                    list(_NAMING_ACTIONS) + [low, upto],
                ).fetchall()
            # Newest first, in groups of whole entries: each group's transaction marks the
            # entries from its lowest on as indexed, the last one the whole read's.
            groups: list[tuple[list[tuple[int, int]], int]] = []
            named: list[tuple[int, int]] = []
            for seq, action, target, details in rows:
                if len(named) >= rows_max:
                    groups.append((named, seq))  # every entry above this one's is in
                    named = []
                shown = calls_named(action, target, self._details(details))
                named.extend((call_id, seq) for call_id in shown)
            groups.append((named, low))
            for named, covered_after in groups:
                if stop is not None and stop():
                    return total
                self._index_rows(named, covered_after)
            upto = low
            if progress is not None:
                progress(total - upto, total)
        return total

    def _index_rows(self, named, covered_after):
        """Write ``named`` (``(call_id, seq)`` rows) and mark the entries after
        ``covered_after`` as indexed, in one transaction (:meth:`build_calls_index`)."""
        with self._lock, self._appending():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO audit_calls (call_id, seq) VALUES (?, ?)", named)
                # (Another process may be building it too: the lower mark holds.)
                self._db.execute(
                    "UPDATE audit_calls_state SET covered_after = min(covered_after, ?)", (covered_after,)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def naming_calls(
        self,
        call_ids: Sequence[int],
        from_us: int,
        most: int,
        kinds: Sequence[tuple[str, str | None]] = CALLS_NAMED_BY,
        actor: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        batch: int = 1000,
    ) -> tuple[dict[int, list[int]], int | None]:
        """The entries of ``kinds`` (:data:`CALLS_NAMED_BY`: pages of the calls list and
        reports, shown or downloaded) that named one of ``call_ids``, of ``actor``, written
        in ``[since_us, until_us)``: ``{seq: those ids it named}``; and, when the index was
        not whole and there were more than ``most`` entries before it to read, the ``wall_us``
        of the oldest read (older ones were not), else None.

        Found through the index of the calls named (``audit_calls``), whatever their age
        and number; each entry it gives is opened, and counts only if its details do name
        the call (the index is outside the hash chain). The entries the index does not
        cover yet (:meth:`calls_index_pending`) are each read and opened as before the
        index: those from the first entry written at ``from_us`` on (an entry cannot name
        a call before it began; by ``seq``, as :meth:`in_period`), newest first whatever
        their kind and at most ``most`` of them, ``batch`` at a time of each kind.

        :raises FieldSealError: sealed, and this log has no cipher or another box's
        """
        wanted = sorted({int(i) for i in call_ids})
        found: dict[int, list[int]] = {}
        if not wanted or not kinds:
            return found, None
        self._flush_for_read()
        with self._lock:
            pending = self._pending()
            seqs: set[int] = set()
            indexed = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_calls'").fetchone()
            for at in range(0, len(wanted) if indexed else 0, 500):
                part = wanted[at : at + 500]
                seqs.update(
                    r[0]
                    for r in self._db.execute(
                        "SELECT seq FROM audit_calls WHERE call_id IN (%s) AND seq > ?"
                        % ",".join("?" * len(part)),
                        part + [pending],
                    )
                )
            rows = []
            ordered = sorted(seqs)
            for at in range(0, len(ordered), 500):
                part = ordered[at : at + 500]
                rows += self._db.execute(
                    "SELECT seq, wall_us, actor, action, target, details FROM audit WHERE seq IN (%s)"
                    % ",".join("?" * len(part)),
                    part,
                ).fetchall()
        wanted_set = set(wanted)
        for seq, wall_us, who, action, target, details in rows:
            if not any(action == a and t in (None, target) for a, t in kinds):
                continue
            if actor is not None and who != actor:
                continue
            if (since_us is not None and wall_us < since_us) or (
                until_us is not None and wall_us >= until_us
            ):
                continue
            hits = _hits(self._details(details), wanted_set)
            if hits:
                found[seq] = hits
        if pending == 0 or most <= 0:
            return found, None
        older, cut_us = self._scanned(
            wanted_set, from_us, most, kinds, actor, since_us, until_us, batch, pending
        )
        found.update(older)
        return found, cut_us

    def _scanned(self, wanted, from_us, most, kinds, actor, since_us, until_us, batch, upto):
        """:meth:`naming_calls` for the entries up to ``upto`` the index does not cover yet:
        each read and opened, newest first, at most ``most``."""
        found: dict[int, list[int]] = {}
        # The lowest seq written from then on, from audit_wall's own rows. Bounded above too:
        # min(seq) with a lower bound alone is found walking the table from its first entry.
        start = max(int(from_us), int(since_us)) if since_us is not None else int(from_us)
        with self._lock:
            low = self._db.execute(
                "SELECT min(seq) FROM audit WHERE wall_us >= ? AND wall_us < ?",
                (start, int(until_us) if until_us is not None else _NO_END_US),
            ).fetchone()[0]
        if low is None or low > upto:
            return found, None
        # One reading per kind, each through its own index range, merged newest first: one
        # query with an OR of the kinds is sorted whole before its first row is given.
        rows = heapq.merge(
            *(self._newest_of(kind, int(low), actor, since_us, until_us, batch, upto) for kind in kinds),
            key=lambda row: -row[0],
        )
        read, oldest_us = 0, None
        for seq, wall_us, details_json in rows:
            if read == most:
                return found, oldest_us  # more than most: the older ones are left unread
            hits = _hits(self._details(details_json), wanted)
            if hits:
                found[seq] = hits
            read, oldest_us = read + 1, int(wall_us)
        return found, None

    def _newest_of(self, kind, low, actor, since_us, until_us, batch, upto):
        """The ``(seq, wall_us, details)`` of the entries of ``kind`` (``(action, target)``,
        target None: any) from ``seq`` ``low`` to ``upto``, of ``actor``, written in
        ``[since_us, until_us)``, newest first, read ``batch`` at a time (details as stored)."""
        action, target = kind
        where = ["action = ?", "seq >= ?"]
        args: list[int | str] = [action, low]
        for cond, value in (
            ("target = ?", target),
            ("actor = ?", actor),
            ("+wall_us >= ?", since_us),
            ("+wall_us < ?", until_us),
        ):
            if value is not None:
                where.append(cond)
                args.append(value)
        before = int(upto) + 1
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, wall_us, details FROM audit WHERE %s AND seq < %d ORDER BY seq DESC LIMIT ?"
                    % (" AND ".join(where), before),
                    args + [batch],
                ).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            before = rows[-1][0]

    def last_at(self, action: str, actor: str) -> int | None:
        """When ``actor`` last did ``action``: the newest such entry's ``wall_us``, or None.
        Its details are not opened, so a process without the cipher reads it too."""
        self._flush_for_read()
        with self._lock:
            row = self._db.execute(
                "SELECT wall_us FROM audit WHERE action = ? AND actor = ? ORDER BY seq DESC LIMIT 1",
                (action, actor),
            ).fetchone()
        return None if row is None else int(row[0])

    def _has_sig_table(self):
        return bool(self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_sig'").fetchone())

    def count(
        self,
        action: str | None = None,
        targets: Sequence[str] | None = None,
        actor: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        or_seqs: Sequence[int] = (),
    ) -> int:
        """How many entries :meth:`entries` with these filters could return."""
        self._flush_for_read()
        where, args = self._where(action, targets, actor, since_us, until_us, or_seqs)
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM audit %s" % where, args).fetchone()[0]

    @staticmethod
    def _where(action, targets, actor, since_us, until_us, or_seqs=()):
        conds: list[str] = []
        args: list[str | int] = []
        if action is not None:
            conds.append("action = ?")
            args.append(action)
        if actor is not None:
            conds.append("actor = ?")
            args.append(actor)
        if since_us is not None:
            conds.append("wall_us >= ?")
            args.append(int(since_us))
        if until_us is not None:
            conds.append("wall_us < ?")
            args.append(int(until_us))
        if targets is not None:
            about = ["target IN (%s)" % ",".join("?" * len(targets))] if targets else []
            if or_seqs:
                about.append("seq IN (%s)" % ",".join("?" * len(or_seqs)))
            conds.append("(%s)" % " OR ".join(about) if about else "0")
            args.extend(targets)
            args.extend(int(seq) for seq in or_seqs)
        return ("WHERE " + " AND ".join(conds) if conds else ""), args

    def _target(self, target):
        """An entry's target: a sealed one (a person's number) opened with the cipher."""
        if not is_sealed(target):
            return target
        cipher = self._field_cipher()
        if cipher is None:
            raise FieldSealError("the audit trail's sealed targets need the key in the HAT's MCU vault")
        return cipher.open(target, "audit_target")

    def targets_of(self, action: str) -> set[str]:
        """The targets of every entry of ``action``: read without their details, so on any
        machine (a sealed entry's target is in clear but for :data:`SEALED_TARGET_ACTIONS`)."""
        self._flush_for_read()
        with self._lock:
            rows = self._db.execute("SELECT target FROM audit WHERE action = ?", (action,)).fetchall()
        return {r[0] for r in rows if r[0] is not None}

    def _details(self, details_json):
        """An entry's details as written: sealed ones opened with the cipher.

        :raises FieldSealError: sealed, and this log has no cipher or another box's
        """
        details = json.loads(details_json)
        if isinstance(details, dict) and set(details) == {SEALED_KEY}:
            cipher = self._field_cipher()
            if cipher is None:
                raise FieldSealError(
                    "the audit trail's details are sealed with the key in the HAT's MCU vault "
                    "and this process has no copy of it"
                )
            return json.loads(cipher.open(details[SEALED_KEY], "audit"))
        return details

    def signed_entries(self) -> int:
        """How many entries carry a signature (the box signs every entry when it has a key)."""
        self._flush_for_read()
        with self._lock:
            try:
                return self._db.execute("SELECT count(*) FROM audit_sig").fetchone()[0]
            except sqlite3.OperationalError:
                return 0  # a trail from before signatures, opened read-only

    def __len__(self) -> int:
        self._flush_for_read()
        with self._lock:
            return self._db.execute("SELECT count(*) FROM audit").fetchone()[0]

    def verify(
        self, anchor: Any = None, public_key: bytes | None = None, stopped_cleanly: bool = False
    ) -> list[str]:
        """Check the whole chain and the head; returns a list of problems (empty = intact).

        Each problem is one line of text naming the entry it concerns.
        ``anchor``: a head taken earlier and kept off the box, ``(seq, hash)``
        or ``(None, hash)`` (see :func:`parse_anchor`); it must still be in
        the chain. ``public_key``: the device signing key (32 bytes): every
        entry from the first signed one on, and the head, must be signed by it;
        or the box's keys with their handovers (:class:`firmware.handover.TrustedKeys`):
        then an entry may also be signed by a replaced key up to its handover,
        whose named entry must be in the chain with the hash it names.
        ``stopped_cleanly``: the box's last run ended with a clean stop, which
        commits every group and writes the head: then at most one entry (an
        append whose head write was cut) may follow the head, whatever its ``group_us``.
        """
        return self._verify(anchor, public_key, stopped_cleanly, None)[0]

    def verify_after(self, checked: tuple[int, str]) -> tuple[list[str], tuple[int, str]]:
        """Check the entries after ``checked``, ``(seq, hash)`` of an entry an earlier
        check (:meth:`verify`, or this) reached, and the head; returns the problems and
        ``(seq, hash)`` of the last entry checked, to go on from next time.

        Only those entries are read (and the checked entry itself, which must still hold
        its hash, and any between the head and it), chained on from ``checked``: a page
        that shows whether the trail verifies reads what was added since it last looked,
        not the whole trail of a box years in service. An entry before ``checked``
        changed since is not seen: a whole check (:meth:`verify`) sees it."""
        return self._verify(None, None, False, checked)

    def _verify(self, anchor, public_key, stopped_cleanly, after):
        """:meth:`verify` (``after`` None) or :meth:`verify_after`: ``(problems, (seq, hash))``."""
        self._flush_for_read()
        problems = []
        # Its own connection and read transaction: a snapshot that matches the
        # head file read at the same moment, while appends go on meanwhile.
        if self.readonly:
            from firmware.datadir import connect_readonly

            db = connect_readonly(self.path_db)
        else:
            db = sqlite3.connect(self.path_db, isolation_level=None, timeout=10.0)
        try:
            # (Read-only: the appenders' lock shared, where it exists, so that a head being
            # rewritten in place is not read half written.)
            appending = _shared(self.head_path + ".lock") if self.readonly else self._appending()
            with self._lock, appending:
                db.execute("BEGIN")
                db.execute("SELECT count(*) FROM audit").fetchone()  # takes the snapshot
                try:
                    head_doc = self._head_doc()
                    head: Any = None if head_doc is None else (head_doc["seq"], head_doc["hash"])
                except (OSError, ValueError, KeyError, TypeError) as err:
                    head, head_doc = err, None
            expected_seq, prev_hash = 1, GENESIS_HASH
            tail = _Tail((0, GENESIS_HASH) if head is None else head)
            found_at = None
            signatures = _SignatureCheck(public_key)
            handed = {(o["audit_seq"], o["audit_hash"]): o for o in signatures.handed_over()}
            has_sig = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_sig'").fetchone()
            # The index of the calls named, rebuilt from the entries as they are read (a whole
            # check only: it needs every entry it covers).
            calls_index = _IndexCheck(db, self._details) if after is None else None
            first = 0
            if after is not None:
                # From the checked entry (or the head, if it is behind it): the head's
                # check needs the entries from the head on.
                expected_seq, prev_hash = after[0] + 1, after[1]
                first = after[0] if tail.head_seq is None else min(after[0], tail.head_seq)
                problems += check_checked(db, "audit", "audit entry", after)
            for row in db.execute(
                "SELECT a.seq, wall_us, actor, action, target, details, prev_hash, hash, %s "
                "FROM audit a %s WHERE a.seq >= ? ORDER BY a.seq"
                % (("s.sig", "LEFT JOIN audit_sig s ON s.seq = a.seq") if has_sig else ("NULL", "")),
                (first,),
            ):
                if after is not None and row[0] <= after[0]:
                    tail.add(row[0], row[1], row[7])
                    continue
                problems += _check_row(row[:8], expected_seq, prev_hash)
                problems += signatures.check(row[0], row[7], row[8])
                handed.pop((row[0], row[7]), None)
                expected_seq, prev_hash = row[0] + 1, row[7]
                tail.add(row[0], row[1], row[7])
                if calls_index is not None:
                    calls_index.add(row[0], row[3], row[4], row[5])
                if anchor is not None and row[7] == anchor[1]:
                    found_at = row[0]
            if calls_index is not None:
                problems += calls_index.finish()
                self.calls_index_unchecked = calls_index.unchecked
            db.execute("COMMIT")
        finally:
            db.close()
        problems += self._check_head(head, expected_seq - 1, tail, _group_us(head_doc), stopped_cleanly)
        problems += signatures.finish(expected_seq - 1, head_doc)
        problems += [
            "audit trail: the key handover at entry %d names a hash that entry does not have: "
            "entries up to it were changed or re-chained" % seq
            for seq, _ in sorted(handed)
        ]
        if anchor is not None:
            problems += _check_anchor(anchor, found_at)
        return problems, (expected_seq - 1, prev_hash)

    def _check_head(self, head, last_seq, tail, group_us, stopped_cleanly):
        if isinstance(head, Exception):
            return ["audit head file %s is unreadable or damaged: %s" % (self.head_path, head)]
        if head is None:
            # As a head at the start of the chain: a cut as the first head was made
            # (before its copy) leaves at most one entry after it.
            if not self._check_head((0, GENESIS_HASH), last_seq, tail, 0, stopped_cleanly):
                return []
            return ["audit head file %s is missing but the log has %d entries" % (self.head_path, last_seq)]
        seq, digest = head
        if not isinstance(seq, int) or seq < 0:
            return ["audit head file %s is damaged: seq %r" % (self.head_path, seq)]
        if seq > last_seq:
            return [
                "audit log ends at entry %d but its head says %d: %s deleted"
                % (last_seq, seq, _entries(last_seq + 1, seq))
            ]
        behind = last_seq - seq
        # One entry: a head write cut by a power cut. A group: the same, after a group
        # commit, if the entries could be one (within group_us, at most GROUP_ENTRIES_MAX).
        one_group = (
            group_us > 0
            and not stopped_cleanly
            and behind <= GROUP_ENTRIES_MAX
            and tail.span_us() is not None
            and tail.span_us() <= group_us
        )
        if behind > 1 and not one_group:
            return [
                "audit head says entry %d but the log goes on to %d: entries were added "
                "behind the log's back%s"
                % (
                    seq,
                    last_seq,
                    " (more than one group commit after the head)"
                    if group_us > 0 and not stopped_cleanly
                    else " (the box stopped cleanly: its head covers every group)"
                    if group_us > 0
                    else "",
                )
            ]
        if tail.hash_at_head != digest:
            return ["audit entry %d does not match the head's hash: the log was rewritten" % seq]
        return []


class _IndexCheck:
    """The index part of :meth:`AuditLog.verify`: ``audit_calls`` rebuilt from the entries
    (given in ``seq`` order) and compared with the stored one, row by row, both read in
    ``seq`` order (nothing held but one entry's rows). The index is outside the hash chain,
    so a row added or deleted there is tampering, which this reports: a search by number
    trusts the index to name the entries it opens (a row deleted hides an entry from it).
    Without the key to open sealed details the check stops and says so (``unchecked``)."""

    def __init__(self, db, details):
        self._open = details
        self.unchecked: str | None = None
        self.problems: list[str] = []
        try:
            row = db.execute("SELECT covered_after FROM audit_calls_state").fetchone()
        except sqlite3.OperationalError:
            self.unchecked = "the trail has no index of the calls named (written before it)"
            return
        self.covered_after = int(row[0]) if row is not None else 0
        self._rows = db.execute(
            "SELECT seq, call_id FROM audit_calls WHERE seq > ? ORDER BY seq, call_id", (self.covered_after,)
        )
        self._next = self._rows.fetchone()

    def _stored_before(self, seq):
        """The stored rows before entry ``seq``'s own (for entries not in the trail): problems."""
        while self._next is not None and self._next[0] < seq:
            self.problems.append(
                "the index of the calls named says entry %d named call %d, and no such entry "
                "is in the trail: an index row was added" % self._next
            )
            self._next = self._rows.fetchone()

    def add(self, seq, action, target, details_json):
        if self.unchecked is not None or seq <= self.covered_after:
            return
        self._stored_before(seq)
        stored = []
        while self._next is not None and self._next[0] == seq:
            stored.append(self._next[1])
            self._next = self._rows.fetchone()
        if action in _NAMING_ACTIONS:
            try:
                named = calls_named(action, target, self._open(details_json))
            except FieldSealError:
                self.unchecked = "the entries' details are sealed and this process has no key to open them"
                return
            except (ValueError, TypeError):
                named = []  # (a damaged entry: its own check reports it)
        else:
            named = []
        extra, missing = sorted(set(stored) - set(named)), sorted(set(named) - set(stored))
        if extra:
            self.problems.append(
                "the index of the calls named says entry %d named %s, which its details do not: "
                "index rows were added" % (seq, _call_words(extra))
            )
        if missing:
            self.problems.append(
                "audit entry %d named %s, missing from the index of the calls named: index rows "
                "were deleted (a search by number would not find the entry)" % (seq, _call_words(missing))
            )

    def finish(self):
        if self.unchecked is None:
            self._stored_before(1 << 63)
        return self.problems


def _call_words(ids):
    return ("call %d" if len(ids) == 1 else "calls %s") % (
        ids[0] if len(ids) == 1 else ", ".join(map(str, ids))
    )


class _Staged:
    """An entry prepared for its commit (checked, scrubbed, sealed), waiting for it."""

    __slots__ = ("wall_us", "actor", "action", "target", "stored", "details_json", "shown_target", "details")

    def __init__(self, wall_us, actor, action, target, stored, details_json, shown_target, details):
        self.wall_us, self.actor, self.action, self.target = wall_us, actor, action, target
        self.stored, self.details_json = stored, details_json
        self.shown_target, self.details = shown_target, details


class _Tail:
    """What :meth:`AuditLog.verify` needs of the entries at and after the head: the
    head entry's hash and the wall times of those after it (up to one group's worth)."""

    def __init__(self, head):
        self.head_seq = head[0] if isinstance(head, tuple) and isinstance(head[0], int) else None
        self.hash_at_head = GENESIS_HASH if self.head_seq == 0 else None
        self.after = 0
        self.walls: list[int] = []

    def add(self, seq, wall_us, digest):
        if self.head_seq is None or seq < self.head_seq:
            return
        if seq == self.head_seq:
            self.hash_at_head = digest
            return
        self.after += 1
        if self.after <= GROUP_ENTRIES_MAX and isinstance(wall_us, int):
            self.walls.append(wall_us)

    def span_us(self):
        """The wall time the entries after the head span, None if unknown or too many."""
        if self.after > GROUP_ENTRIES_MAX or len(self.walls) != self.after:
            return None
        return max(self.walls) - min(self.walls) if self.walls else 0


def _group_us(head_doc):
    """A head's ``group_us`` (0 when it has none), capped at :data:`GROUP_SPAN_MAX_US`."""
    value = head_doc.get("group_us", 0) if isinstance(head_doc, dict) else 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return 0
    return min(value, GROUP_SPAN_MAX_US)


def head_message(seq, digest):
    """The bytes the head's signature covers."""
    return HEAD_SIG_TAG + canonical_json({"seq": seq, "hash": digest}).encode("ascii")


class _SignatureCheck:
    """The keyed part of :meth:`AuditLog.verify`: each entry's signature, then the head's."""

    def __init__(self, public_key):
        self.public_key = public_key
        self.first_signed = None

    def handed_over(self):
        """The replaced keys' bounds, when the check is given the box's handovers."""
        return getattr(self.public_key, "handed_over", [])

    def check(self, seq, digest, sig):
        if self.public_key is None:
            return []
        if sig is None:
            if self.first_signed is None:
                return []  # from before signing began: the first signed entry covers it
            return ["audit entry %d is not signed by the box's key (added or rewritten without it)" % seq]
        if self.first_signed is None:
            self.first_signed = seq
        try:
            signature, message = bytes.fromhex(sig), SIG_TAG + bytes.fromhex(digest)
        except ValueError:
            signature, message = b"", b""
        if hasattr(self.public_key, "audit_problem"):
            problem = self.public_key.audit_problem(seq, signature, message)
            return [] if problem is None else [problem]
        from firmware.signing import verify_signature

        if verify_signature(self.public_key, signature, message):
            return []
        return [
            "audit entry %d: its signature does not match (rewritten or "
            "re-chained without the box's key)" % seq
        ]

    def finish(self, last_seq, head_doc):
        if self.public_key is None or last_seq == 0:
            return []
        if self.first_signed is None:
            return [
                "audit trail: no entry is signed by the box's key (%d entries): it was "
                "rewritten without the key, or the box never signed" % last_seq
            ]
        if head_doc is None:
            return []  # no head to sign: the head check says whether a cut explains that
        from firmware.signing import verify_signature

        sig = head_doc.get("sig") if isinstance(head_doc, dict) else None
        # The head is always the current key's: the box re-signs it at every append.
        current = getattr(self.public_key, "current", self.public_key)
        try:
            ok = sig is not None and verify_signature(
                current, bytes.fromhex(sig), head_message(head_doc["seq"], head_doc["hash"])
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        return [] if ok else ["audit head file is not signed by the box's key (written without it)"]


def parse_anchor(text):
    """``(seq, hash)`` from ``SEQ:HASH`` (as the audit page shows a head), ``(None, hash)``
    from a bare HASH. Raises :class:`AuditError` for anything else."""
    seq_text, _, digest = text.strip().rpartition(":")
    digest = digest.lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise AuditError("an audit head is SEQ:HASH or HASH (64 hex digits), not %r" % text)
    if not seq_text:
        return None, digest
    if not seq_text.isdigit():
        raise AuditError("an audit head is SEQ:HASH with SEQ a whole number, not %r" % text)
    return int(seq_text), digest


def _check_anchor(anchor, found_at):
    seq, digest = anchor
    if found_at is None:
        where = "entry %d" % seq if seq is not None else "an entry"
        return [
            "the earlier audit head %s (%s) is no longer in the audit trail: entries up to "
            "it were deleted, changed or re-chained" % (digest[:16], where)
        ]
    if seq is not None and found_at != seq:
        return [
            "the earlier audit head %s was entry %d but is now entry %d: entries before it "
            "were deleted or added" % (digest[:16], seq, found_at)
        ]
    return []


def check_checked(db, table, what, checked):
    """The problems with the entry an earlier check reached, ``(seq, hash)``, of the
    hash-chained ``table`` (its entries ``what``: "audit entry"): it must still be there
    with that hash (seq 0: the start of the chain). A check of the entries added since
    (:meth:`AuditLog.verify_after`, :func:`firmware.policy.deletions.verify_after`)
    chains on from it."""
    seq, digest = checked
    if seq == 0:
        return []
    row = db.execute("SELECT hash FROM %s WHERE seq = ?" % table, (seq,)).fetchone()
    if row is None:
        return ["%s %d, checked before, is gone: entries were deleted" % (what, seq)]
    if row[0] != digest:
        return ["%s %d no longer has the hash it was checked with: the log was rewritten" % (what, seq)]
    return []


def _stored_hash(prev_hash, seq, wall_us, actor, action, target, details_json):
    """:func:`entry_hash` of an entry as stored, its details taken as the text they are
    stored as (canonical JSON, as every entry is written), not parsed and written again:
    a whole check of 1.5 million entries spent two thirds of its time doing that. A row
    whose text is not canonical gives another hash, and is checked the long way; None
    where a field is not of its type."""
    if type(seq) is not int or type(wall_us) is not int or not isinstance(details_json, str):
        return None
    if (
        not isinstance(actor, str)
        or not isinstance(action, str)
        or not (target is None or isinstance(target, str))
    ):
        return None
    body = '{"action":%s,"actor":%s,"details":%s,"seq":%d,"target":%s,"wall_us":%d}' % (
        json_text(action),
        json_text(actor),
        details_json,
        seq,
        "null" if target is None else json_text(target),
        wall_us,
    )
    try:
        return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("ascii")).hexdigest()
    except (ValueError, TypeError, UnicodeEncodeError):
        return None


def _check_row(row, expected_seq, prev_hash):
    """The problems with one stored row, given what the chain so far says it must be."""
    seq, wall_us, actor, action, target, details_json, stored_prev, stored_hash = row
    problems = []
    if seq != expected_seq:
        problems.append(
            "audit %s missing before entry %d (deleted?)" % (_entries(expected_seq, seq - 1), seq)
            if seq > expected_seq
            else "audit entry %d is out of order" % seq
        )
    elif stored_prev != prev_hash:  # (a gap already explains a broken link)
        problems.append(
            "audit entry %d does not follow the entry before it (inserted, "
            "reordered, or an earlier entry was rewritten)" % seq
        )
    digest = _stored_hash(stored_prev, seq, wall_us, actor, action, target, details_json)
    if digest != stored_hash:
        try:
            details = json.loads(details_json)
            digest = entry_hash(stored_prev, seq, wall_us, actor, action, target, details)
        except (ValueError, TypeError, AuditError):
            digest = None
    if digest != stored_hash:
        problems.append("audit entry %d was modified: its content does not match its hash" % seq)
    return problems


def _entries(first, last):
    """ "entry 5 was" or "entries 5-7 were"."""
    return "entry %d was" % first if first == last else "entries %d-%d were" % (first, last)


def open_audit(
    data_dir: str,
    signer: Any = None,
    cipher: Any = None,
    clock: Any = None,
    commit_us: int = 0,
) -> AuditLog:
    """The box's audit trail (its chain head kept in a file of its own), signed and sealed.

    ``signer``: the device signer; by default the one this process can have
    (:func:`firmware.signing.device_signer`). ``cipher``: the field cipher sealing the
    details; by default the one this process can have (:func:`device_cipher`).
    ``clock``, ``commit_us``: the group commit of :meth:`AuditLog.append_soon`
    (the box's own; other processes commit each entry at once).

    :raises FieldSealError: the box seals its trail and this process has no key
    """
    if signer is None:
        signer = device_signer(data_dir)
    if cipher is None:
        cipher = device_cipher(data_dir)
    return AuditLog(
        os.path.join(data_dir, "audit.db"),
        os.path.join(data_dir, "audit.head"),
        signer=signer,
        cipher=cipher,
        clock=clock,
        commit_us=commit_us,
    )


def device_cipher(data_dir: str) -> Any:
    """The field cipher this process can have (from the recorder's RAM copy), or None on
    a box that does not seal.

    :raises FieldSealError: the box seals and this process has no copy of the key
    """
    return load_field_cipher(data_dir, run_dir=run_dir(), create=False)
