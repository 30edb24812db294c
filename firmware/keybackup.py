"""A backup of the key store, and putting it back (docs/keys.md, docs/recovery.md).

``keys/keystore.json`` holds the box's recording keys sealed in password and recovery
slots: without it, no recording on the card can ever be opened again. A backup is the
file as it is, in a JSON document that says which box and when::

    {"format": "linekeeper-keystore-backup", "version": 1,
     "made_at": "2026-03-02T09:00:00Z", "host": "linekeeper-3f2a",
     "signing_key": "lk1:…" or null, "key_store": "ks1:…",
     "keystore": "<keystore.json's text>", "inventory": {…}}

``key_store`` is the fingerprint of the key store's admin public key (the settings
page shows the current one): a rekey makes new keys, and a backup made before it
names another. The copy opens nothing without a password or the recovery key.

It also carries an ``inventory`` (:func:`inventory`): what the box held when the copy was
made, in counts and dates only (no number, name or address), so that once a box with no
archive is lost or stolen something off it still says what was on it, for a breach report
to the ICO (docs/operating.md). Its ``key_backup`` audit entry records the same, and the
Settings page shows the last one.

Putting it back (:func:`restore`) is for a card whose ``keystore.json`` is missing:
only then, and only a copy that opens with the recovery key or a password given, and
that is this box's (its admin key is the one pinned in ``recording-key.pin``, else
its signing key is this box's or one it took over from). The file is written
atomically; the caller audits it.
"""

import base64
import datetime as dt
import hashlib
import json
import os
import socket
import sqlite3

from .datadir import connect_readonly
from .errors import LinekeeperError, RecoveryKeyFormatError, WrongPasswordError
from .handover import HandoverError, chain_of, read_handovers
from .keypin import PIN_FILE
from .signing import SigningKeyError, fingerprint, read_public_record
from .storage.keystore import KeyStore, decode_document, open_copy

BACKUP_FORMAT = "linekeeper-keystore-backup"
BACKUP_VERSION = 1
MAX_BACKUP_BYTES = 4 * 1024 * 1024  # a key store of every line and many users is a few KiB


class KeyBackupError(LinekeeperError, ValueError):
    """A key store backup that is not one, not this box's, or not to be put back now."""


BACKUP_ENTRIES_PAGE = 20  # key_backup entries read at a time, looking for the last one made


def _format_named(doc):
    """What a JSON file that is not ours says it is, for a refusal: ``its format is 'x'``,
    or that it names none."""
    named = doc.get("format") if isinstance(doc, dict) else None
    if isinstance(named, str) and named:
        return "its format is %r" % named[:60]
    return "it names no format" if isinstance(doc, dict) else "it is JSON but not an object"


def last_backup(audit):
    """``(when, key store fingerprint, contents, inventory)`` of the newest key store backup
    made (on the Settings page or with ``linekeeper keystore backup``), from the audit trail
    ``audit`` (an :class:`~firmware.storage.audit.AuditLog`), or None. ``contents`` is None
    for a backup audited before entries recorded it, and ``inventory`` (:func:`inventory`)
    for one audited before entries recorded what the box held. Read back a page at a time past the other
    ``key_backup`` entries: an installer refused the copy (phase ``refused``) as often as
    they like no longer hides the last one made."""
    offset = 0
    while True:
        entries = audit.entries(limit=BACKUP_ENTRIES_PAGE, offset=offset, action="key_backup")
        for entry in entries:
            details = entry.details if isinstance(entry.details, dict) else {}
            if details.get("phase") == "made":
                return (
                    entry.wall_us,
                    details.get("key_store"),
                    details.get("contents"),
                    details.get("inventory") if isinstance(details.get("inventory"), dict) else None,
                )
        if len(entries) < BACKUP_ENTRIES_PAGE:
            return None
        offset += BACKUP_ENTRIES_PAGE


def keys_lost(audit):
    """``{line: (wall µs, audit entry)}``: the last ``keystore restore`` of a backup that lacked
    each line's recording key (``lines_without_key`` of a ``key_backup`` entry, phase
    ``restored``), read from the audit trail ``audit``: a recording of such a line begun before
    then cannot be opened (:class:`~firmware.errors.LineKeyLostError`). Empty where the
    trail's sealed details do not open (off the box, or before the recorder has started)."""
    from .storage.fieldseal import FieldSealError

    lost, after = {}, 0
    try:
        while True:
            page = audit.entries(limit=500, action="key_backup", after_seq=after)
            if not page:
                return lost
            for entry in page:
                details = entry.details if isinstance(entry.details, dict) else {}
                if details.get("phase") == "restored":
                    for line in details.get("lines_without_key") or ():
                        lost[int(line)] = (entry.wall_us, entry.seq)
            after = page[-1].seq
    except FieldSealError:
        return {}


def key_store_fingerprint(public_key):
    """The fingerprint of a key store (its admin public key): ``ks1:`` and 8 groups of 4 hex digits."""
    digest = hashlib.sha256(b"linekeeper key store\x00" + bytes(public_key)).hexdigest()[:32]
    return "ks1:" + "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def key_store_contents(raw):
    """What the key store file ``raw`` (its bytes) holds, as each backup's audit entry
    records it (``contents``) to tell later whether the key store changed since:
    ``{"digest", "slots", "recovery", "lines"}``, the file's SHA-256 (its first 32 hex
    digits), the users with a password slot, a digest of the recovery slot and the lines
    with a key. A rekey changes the fingerprint; a key slot added or removed, a new
    recovery key or password, a line's key or grant changes only these.

    :raises ValueError: ``raw`` is not a key store (:meth:`KeyStore.copy_bytes` checks it)
    """
    try:
        doc = decode_document(raw)
    except (KeyError, TypeError) as exc:
        raise ValueError("not a key store: %s" % exc) from None
    recovery = [slot.get("kdf") for slot in doc.slots if slot["kind"] == "recovery"]
    return {
        "digest": hashlib.sha256(raw).hexdigest()[:32],
        "slots": sorted(slot["user"] for slot in doc.slots if slot["kind"] == "password"),
        "recovery": hashlib.sha256(json.dumps(recovery, sort_keys=True).encode()).hexdigest()[:16],
        "lines": sorted(doc.lines),
    }


def _iso(wall_us):
    return dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signing_fingerprint(data_dir):
    try:
        record = read_public_record(data_dir)
    except SigningKeyError:
        return None
    return None if record is None else fingerprint(record["public_key"])


def _from_db(data_dir, name, read, unreadable):
    """``read(db)`` of the database ``name`` of ``data_dir`` opened read-only; None when it
    is not there (a box that never recorded), or when it cannot be read (added to
    ``unreadable`` as ``"name: why"``): an inventory never stops a key store backup."""
    path = os.path.join(data_dir, name)
    if not os.path.exists(path):
        return None
    try:
        db = connect_readonly(path)
        try:
            return read(db)
        finally:
            db.close()
    except (LinekeeperError, sqlite3.Error) as exc:
        unreadable.append("%s: %s" % (name, exc))
        return None


def _archive_box_id(data_dir):
    """The box's name in the archive's bucket (``config.json``'s ``archive.box_id``), or None."""
    try:
        with open(os.path.join(data_dir, "config.json"), encoding="utf-8") as f:
            archive = json.load(f).get("archive")
    except (OSError, ValueError, AttributeError):
        return None
    box_id = archive.get("box_id") if isinstance(archive, dict) else None
    return box_id if isinstance(box_id, str) else None


def inventory(data_dir, wall_us):
    """What ``data_dir`` holds at ``wall_us``, with no personal data in it: the box (host
    name, signing key fingerprint, archive box id), the calls in the call log (how many,
    the first's and last's start, the lines, how many distinct numbers: the callers, counted
    as stored, so one number in two forms counts twice), the recordings still held (how many,
    the first's and last's start), the web UI's accounts (how many, and of each role), and
    the stores it could not read (``unreadable``). Times are UTC.

    Never raises for a store it cannot read: a key store backup is made all the same."""
    unreadable: list[str] = []

    def iso(us):
        return None if us is None else _iso(us)

    def calls(db):
        n, first, last, numbers = db.execute(
            "SELECT count(*), min(started_at), max(started_at), count(DISTINCT number) FROM calls"
        ).fetchone()
        lines = [row[0] for row in db.execute("SELECT DISTINCT line FROM calls ORDER BY line")]
        held = (0, None, None)
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'recordings'").fetchone():
            held = db.execute(
                "SELECT count(*), min(started_at), max(started_at) FROM recordings WHERE state != 'deleted'"
            ).fetchone()
        return n, first, last, numbers, lines, held

    def accounts(db):
        roles: dict[str, int] = {}
        rows = db.execute("SELECT roles FROM users").fetchall()
        for (text,) in rows:
            for role in filter(None, text.split(",")):
                roles[role] = roles.get(role, 0) + 1
        return len(rows), dict(sorted(roles.items()))

    found = _from_db(data_dir, "calls.db", calls, unreadable)
    n_calls, first, last, numbers, lines, held = found or (0, None, None, 0, [], (0, None, None))
    n_accounts, roles = _from_db(data_dir, "web.db", accounts, unreadable) or (0, {})
    return {
        "made_at": _iso(wall_us),
        "host": socket.gethostname(),
        "signing_key": _signing_fingerprint(data_dir),
        "archive_box_id": _archive_box_id(data_dir),
        "calls": n_calls,
        "first_call": iso(first),
        "last_call": iso(last),
        "callers": numbers,
        "lines": lines,
        "recordings": held[0],
        "first_recording": iso(held[1]),
        "last_recording": iso(held[2]),
        "accounts": n_accounts,
        "accounts_by_role": roles,
        "unreadable": unreadable,
    }


def inventory_lines(inv):
    """The inventory ``inv`` in plain words, a line each (the command prints them, the
    Settings page shows them). Read back from an audit entry, it may be an older release's
    or a hand-edited backup's: what is missing or not of its type is left unsaid, never
    guessed, and never an error (the Settings page shows it)."""
    inv = inv if isinstance(inv, dict) else {}

    def count(key):
        value = inv.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def said(key, none):
        """A time or a name in words (``none``: None, none on record), or None: not there."""
        if key not in inv or not (inv[key] is None or isinstance(inv[key], str)):
            return None
        return inv[key] or none

    def span(first, last):
        a, b = said(first, "none"), said(last, "none")
        return ", from %s to %s (UTC)" % (a, b) if a is not None and b is not None else ""

    def items(key):
        value = inv.get(key)
        if not isinstance(value, list):
            return None
        return [str(v) for v in value if isinstance(v, (int, str)) and not isinstance(v, bool)]

    def number(n, one, many):
        return "%d %s" % (n, one if n == 1 else many)

    out = []
    if count("calls") is not None:
        line = "%s in the call log%s" % (
            number(count("calls"), "call", "calls"),
            span("first_call", "last_call"),
        )
        if items("lines") is not None:
            line += ", on lines %s" % (", ".join(items("lines")) or "none")
        if count("callers") is not None:
            line += "; %s" % number(count("callers"), "distinct caller's number", "distinct callers' numbers")
        out.append(line)
    if count("recordings") is not None:
        held = number(count("recordings"), "recording", "recordings")
        out.append("%s held%s" % (held, span("first_recording", "last_recording")))
    if count("accounts") is not None:
        line = number(count("accounts"), "account", "accounts")
        roles = inv.get("accounts_by_role")
        if isinstance(roles, dict):
            by_role = [(r, n) for r, n in roles.items() if isinstance(n, int) and not isinstance(n, bool)]
            # An account may have several roles ("1 account (installer 1, supervisor 1)"
            # read as two): the counts say with which role, not how many accounts.
            line += " (%s)" % (", ".join("%d with the role %s" % (n, r) for r, n in by_role) or "no role")
        out.append(line)
    box = []
    if isinstance(inv.get("host"), str):
        box.append("box %s" % inv["host"])
    if said("signing_key", "") is not None:
        box.append("signing key %s" % said("signing_key", "none on record"))
    if said("archive_box_id", "") is not None:
        box.append("archive box id %s" % inv["archive_box_id"] if inv["archive_box_id"] else "no archive")
    if box:
        out.append(", ".join(box))
    if items("unreadable"):
        out.append("could not be read: %s" % "; ".join(items("unreadable")))
    return out


def make_backup(data_dir, wall_us):
    """``(file bytes, backup document)`` of ``data_dir``'s key store, made at ``wall_us``.

    :raises NotInitialisedError: the box has no key store
    :raises TamperError: it is damaged (a copy of it would restore nothing)
    """
    raw, public = KeyStore(data_dir).copy_bytes()
    doc = {
        "format": BACKUP_FORMAT,
        "version": BACKUP_VERSION,
        "made_at": _iso(wall_us),
        "host": socket.gethostname(),
        "signing_key": _signing_fingerprint(data_dir),
        "key_store": key_store_fingerprint(public),
        "keystore": raw.decode("ascii"),
        "inventory": inventory(data_dir, wall_us),
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("ascii"), doc


def backup_file_name(doc):
    """What a backup is saved as: ``linekeeper-keystore-HOST-DATE.json``."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in doc["host"])[:63] or "box"
    return "linekeeper-keystore-%s-%s.json" % (host, doc["made_at"][:10])


def read_backup(raw, source):
    """The backup document in ``raw`` (the bytes of the file ``source``), checked.

    :raises KeyBackupError: it is not a key store backup, saying what is wrong
    """
    if len(raw) > MAX_BACKUP_BYTES:
        raise KeyBackupError("%s is not a key store backup: %d bytes, more than any" % (source, len(raw)))
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyBackupError("%s is not a key store backup: not JSON (%s)" % (source, exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise KeyBackupError(
            "%s is not a key store backup (%s; a backup's is %r): a backup is what the settings "
            "page or `linekeeper keystore backup` saves" % (source, _format_named(doc), BACKUP_FORMAT)
        )
    if doc.get("version") != BACKUP_VERSION:
        raise KeyBackupError(
            "%s is a key store backup of version %r; this release reads version %d"
            % (source, doc.get("version"), BACKUP_VERSION)
        )
    for field in ("made_at", "host", "key_store", "keystore"):
        if not isinstance(doc.get(field), str):
            raise KeyBackupError("%s is damaged: its %s is missing or not text" % (source, field))
    return doc


def _pinned_public_key(data_dir):
    """The admin public key ``recording-key.pin`` holds, or None (no pin, or unreadable)."""
    try:
        with open(os.path.join(data_dir, PIN_FILE), "rb") as f:
            return base64.b64decode(json.loads(f.read())["public_key"], validate=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _lines_missing(data_dir, keystore):
    """The lines whose recording key this box pinned (``recording-key.pin``) and the key
    store ``keystore`` (its bytes) does not hold: keys made after the copy, so their
    recordings made since open with nothing the copy holds. Sorted line numbers."""
    try:
        with open(os.path.join(data_dir, PIN_FILE), "rb") as f:
            pinned = json.loads(f.read()).get("lines") or {}
        held = json.loads(keystore).get("lines") or {}
    except (OSError, ValueError, AttributeError):
        return []  # nothing says which lines had keys: opening the copy is the check
    if not isinstance(pinned, dict) or not isinstance(held, dict):
        return []
    missing = []
    for name, entry in pinned.items():
        theirs = held.get(name)
        key = entry.get("public_key") if isinstance(entry, dict) else None
        if name.isdigit() and key and not (isinstance(theirs, dict) and theirs.get("public_key") == key):
            missing.append(int(name))
    return sorted(missing)


def lines_words(lines):
    """``line 2`` or ``lines 2 and 3``."""
    if len(lines) == 1:
        return "line %d" % lines[0]
    return "lines %s and %d" % (", ".join(map(str, lines[:-1])), lines[-1])


def _another_box(data_dir, doc, public):
    """Why the copy (``doc``, admin key ``public``) is not this box's key store, or None."""
    pinned = _pinned_public_key(data_dir)
    if pinned is not None:
        if pinned == public:
            return None
        return (
            "its key store %s is not the one this box records to (%s, pinned in %s): it is another "
            "box's, or this box's from before a rekey, and opens none of the recordings made since"
            % (doc["key_store"], key_store_fingerprint(pinned), PIN_FILE)
        )
    theirs = doc.get("signing_key")
    try:
        record = read_public_record(data_dir)
        keys = chain_of(record["public_key"], read_handovers(data_dir))[0] if record else None
    except (SigningKeyError, HandoverError):
        keys = None
    if keys is None or not isinstance(theirs, str):
        return None  # nothing on the card says which box it is: opening it is the check
    ours = [keys.current] + [old["key"] for old in keys.handed_over]
    if theirs in {fingerprint(k) for k in ours}:
        return None
    return "it was made on the box whose signing key is %s; this box's is %s" % (
        theirs,
        fingerprint(keys.current),
    )


def restore(
    data_dir,
    raw,
    source,
    recovery_key=None,
    user=None,
    password=None,
    audited=None,
    accept=None,
    lines_lost=False,
    wrong_password=None,
):
    """Put the key store in the backup ``raw`` (read from ``source``) back into ``data_dir``.

    The copy must open with ``recovery_key``, or ``user``'s ``password``, and be this box's;
    ``keys/keystore.json`` must be missing. A copy made before a line's recording key (the
    box pinned one it does not hold) is refused unless ``lines_lost``: that line's
    recordings would open with nothing, and a later copy may hold its key. ``accept()`` is
    called once the copy opens, and may refuse (raising: ``user``'s password is still one
    an installer set); ``wrong_password()`` once ``user``'s ``password``, or a well-formed
    ``recovery_key``, does not open it (a guess, counted by the caller; a mistyped key is
    none). ``audited(details)`` is called once the copy is checked, before the file is
    written (a cut leaves the entry, never a key store put back that the trail does not show).
    Returns the backup document, with ``lines_without_key``: the lines whose key it lacks.

    :raises KeyBackupError: nothing was written, saying why
    :raises LinekeeperError: ``accept()`` refused, nothing written
    """
    store = KeyStore(data_dir)
    if store.is_initialised:
        raise KeyBackupError(
            "%s has a key store (keys/keystore.json): a backup is put back only where it is "
            "missing; nothing was changed" % data_dir
        )
    if new_card(data_dir):
        raise KeyBackupError(
            "%s holds no recording, no call log's recording, no account and no pinned key: it "
            "is a new card, not one that lost its key store, and a backup is put back only "
            "beside the recordings it opens. A card that died is replaced by setting the box "
            "up again (the setup wizard, or `linekeeper init`), which makes new keys and a new "
            "recovery key; the old card's recordings are in the archive, if the box had one "
            '(docs/recovery.md, "A card that died"). Nothing was changed' % data_dir
        )
    try:
        doc = read_backup(raw, source)
    except KeyBackupError as exc:
        raise KeyBackupError("%s; nothing was changed" % exc) from None
    keystore = doc["keystore"].encode("utf-8")
    try:
        key, public = open_copy(keystore, recovery_key=recovery_key, user=user, password=password)
    except LinekeeperError as exc:
        if (
            isinstance(exc, WrongPasswordError)
            and not isinstance(exc, RecoveryKeyFormatError)
            and wrong_password is not None
        ):
            wrong_password()
        how = "the recovery key" if recovery_key is not None else "%s's password" % user
        raise KeyBackupError(
            "the key store in %s does not open with %s (%s): nothing was changed"
            % (source, how, str(exc).rstrip("."))
        ) from None
    key.forget()
    if accept is not None:
        accept()
    if key_store_fingerprint(public) != doc["key_store"]:
        raise KeyBackupError(
            "%s is damaged: it names key store %s, and holds %s; nothing was changed"
            % (source, doc["key_store"], key_store_fingerprint(public))
        )
    why = _another_box(data_dir, doc, public)
    if why:
        raise KeyBackupError("%s is not this box's key store backup: %s. Nothing was changed" % (source, why))
    missing = _lines_missing(data_dir, keystore)
    if missing and not lines_lost:
        which = lines_words(missing)
        raise KeyBackupError(
            "%s was made on %s, before %s had %s recording key (made since, and pinned by this box): "
            "put back, it opens none of %s's recordings made with that key, and nothing else holds "
            "it. Put back a backup made later, if there is one; to put this one back all the same "
            "(the other lines' recordings open with it), run the command again with "
            "--accept-lost-lines. Nothing was changed"
            % (source, doc["made_at"], which, "its" if len(missing) == 1 else "their", which)
        )
    details = {
        "phase": "restored",
        "key_store": doc["key_store"],
        "made_at": doc["made_at"],
        "host": doc["host"],
        "via": "recovery key" if recovery_key is not None else "password",
    }
    if missing:
        details["lines_without_key"] = missing
    doc = dict(doc, lines_without_key=missing)
    if audited is not None:
        audited(details)
    try:
        if missing:
            # Their pins go first: the box then makes and pins a new key for each, where the
            # old pin, of a key in no copy, had it record the line to the admin key for ever
            # and raise key_tampered. A cut before the key store is put back leaves it
            # missing, and the command run again (the pins gone) puts it back.
            _unpin_lines(data_dir, missing)
        store.put_back(keystore)
    except (LinekeeperError, OSError) as exc:
        said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if audited is not None:
            audited(dict(details, phase="failed", reason=said))
        raise KeyBackupError(
            "the key store was not put back: %s; %s"
            % (said, "run the command again" if missing else "nothing was changed")
        ) from None
    return doc


def new_card(data_dir):
    """Whether ``data_dir`` holds nothing a key store backup could be put back for: no
    recording (in ``recordings/``, ``quarantine/``, the recording journal or the call log),
    no account in web.db and no ``recording-key.pin`` (the recorder pins the admin key at
    its first start with keys). A replacement for a card that died is one: its box is set up
    again (docs/recovery.md). Anything it cannot read counts as something held."""
    from . import recovery
    from .recording import journal

    data_dir = os.fspath(data_dir)
    if os.path.lexists(os.path.join(data_dir, PIN_FILE)) or recovery.recording_files(data_dir):
        return False
    try:
        if any(n.endswith(".lkrec") for n in os.listdir(os.path.join(data_dir, "quarantine"))):
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        if journal.read_records(journal.journal_path(data_dir)):
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return not _has_rows(os.path.join(data_dir, "calls.db"), "recordings") and not _has_rows(
        os.path.join(data_dir, "web.db"), "users"
    )


def _has_rows(path, table):
    """Whether the SQLite database at ``path`` has a row in ``table`` (one that cannot be
    read counts as having one; a missing or empty file, or no such table, as none)."""
    try:
        if os.path.getsize(path) == 0:
            return False
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        db = connect_readonly(path)
    except Exception:  # StorageError: unreadable, not a database
        return True
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone():
            return False
        return db.execute("SELECT 1 FROM %s LIMIT 1" % table).fetchone() is not None
    except sqlite3.Error:
        return True
    finally:
        db.close()


def _unpin_lines(data_dir, lines):
    """Remove the pins of ``lines`` from ``recording-key.pin`` (each line's pin is signed on
    its own: the others, and the admin key's, hold as they were)."""
    from .storage.fsutil import atomic_write

    path = os.path.join(data_dir, PIN_FILE)
    with open(path, "rb") as f:
        pin = json.loads(f.read())
    for line in lines:
        pin.get("lines", {}).pop(str(line), None)
    atomic_write(path, (json.dumps(pin, sort_keys=True) + "\n").encode("ascii"))


STATEMENT_FORMAT = "linekeeper-unaudited-action"
STATEMENT_SUFFIX = ".statement.json"


def unaudited_statement(data_dir, actor, action, details, data, wall_us, why):
    """A statement of an action the audit trail could not record (``why``: the card is
    read-only), to be kept beside what the action wrote (``data``, by its SHA-256): whoever
    keeps the box's records adds it to them. Signed with the box's signing key where this
    process has it (the key never leaves the box in it: only the signature does); else
    plain, saying why it is not signed. The signature is over the document without its
    ``signature``, as canonical JSON. Returns ``(the file's bytes, the document)``."""
    from .signing import load_signer, run_dir

    doc = {
        "format": STATEMENT_FORMAT,
        "version": 1,
        "action": action,
        "actor": actor,
        "at": _iso(wall_us),
        "wall_us": wall_us,
        "host": socket.gethostname(),
        "data_dir": os.path.abspath(data_dir),
        "not_audited_because": why,
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "details": details,
    }
    try:
        signer = load_signer(data_dir, run_dir=run_dir(), create=False)
    except (SigningKeyError, OSError) as exc:
        doc["signature"] = None
        doc["not_signed_because"] = str(exc)
        return _statement_bytes(doc), doc
    return _signed(signer, doc)


def _signed(signer, doc):
    """``doc`` signed by ``signer`` (a :class:`~firmware.signing.Signer`): its
    ``signature`` over the document without it, as canonical JSON. Returns ``(the
    file's bytes, the document)``."""
    from .storage.audit import canonical_json

    doc = dict(doc)
    doc["signature"] = {
        "key": signer.fingerprint,
        # The public key too, so that the fingerprint alone checks it off the box.
        "public_key": base64.b64encode(signer.public_key).decode("ascii"),
        "ed25519": base64.b64encode(signer.sign(canonical_json(doc).encode("utf-8"))).decode("ascii"),
    }
    return _statement_bytes(doc), doc


def _statement_bytes(doc):
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


COPY_FORMAT = "linekeeper-signed-copy"


def copy_statement(signer, data_dir, actor, wall_us, data_sha256, details):
    """A statement that the box made the copy of one of its logs whose SHA-256 is
    ``data_sha256`` (the deletion log's CSV, with ``details``: which log, how many entries,
    the first and last, the period), for ``actor`` at ``wall_us``, signed by ``signer`` as
    :func:`unaudited_statement` signs. Kept beside the copy as ``FILE`` +
    :data:`STATEMENT_SUFFIX`, ``linekeeper verify-statement`` checks it and the copy off the
    box with only the box's fingerprint. Returns ``(the file's bytes, the document)``."""
    doc = {
        "format": COPY_FORMAT,
        "version": 1,
        "action": "copy",
        "actor": actor,
        "at": _iso(wall_us),
        "wall_us": wall_us,
        "host": socket.gethostname(),
        "data_dir": os.path.abspath(data_dir),
        "file_sha256": data_sha256,
        "details": details,
    }
    return _signed(signer, doc)


MAX_STATEMENT_BYTES = MAX_BACKUP_BYTES  # its details carry a backup's inventory, no more


def check_statement(raw, source, keys):
    """The statement in ``raw`` (the bytes of the file ``source``), checked: made by
    :func:`unaudited_statement`, signed by one of ``keys`` (public keys, 32 bytes each:
    the box's, and those it took over), and not changed since. Returns the document.

    :raises KeyBackupError: it is not a statement, not signed, not by these keys, or
        changed since it was signed, saying which
    """
    doc = read_statement(raw, source)
    signature = doc["signature"]
    if statement_signer(doc, source, keys) is None:
        said = signature.get("key") if isinstance(signature.get("key"), str) else "no key named"
        if any(fingerprint(key) == said for key in keys):
            raise KeyBackupError(
                "%s does NOT verify: it names this key (%s), and its signature does not match what "
                "it says: it was changed after it was signed" % (source, said)
            )
        raise KeyBackupError(
            "%s does NOT verify: it was signed by %s, not by %s"
            % (source, said, " or ".join(fingerprint(key) for key in keys) or "the key expected")
        )
    return doc


def statement_signer(doc, source, keys):
    """The one of ``keys`` (public keys, 32 bytes each) whose signature the statement ``doc``
    (from the file ``source``, read by :func:`read_statement`) bears, or None.

    :raises KeyBackupError: its signature cannot be read
    """
    from .signing import verify_signature
    from .storage.audit import AuditError, canonical_json

    try:
        ed25519 = base64.b64decode(doc["signature"]["ed25519"], validate=True)
        body = dict(doc)
        del body["signature"]
        message = canonical_json(body).encode("utf-8")
    except (KeyError, TypeError, ValueError, AuditError) as exc:
        raise KeyBackupError("%s is damaged: its signature cannot be read (%s)" % (source, exc)) from None
    return next((key for key in keys if verify_signature(key, ed25519, message)), None)


def read_statement(raw, source):
    """The signed statement document in ``raw`` (the bytes of ``source``), its shape checked,
    its signature not yet.

    :raises KeyBackupError: not a statement, or one not signed, saying which
    """
    if len(raw) > MAX_STATEMENT_BYTES:
        raise KeyBackupError("%s is not a statement: %d bytes, more than any" % (source, len(raw)))
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyBackupError("%s is not a statement: not JSON (%s)" % (source, exc)) from None
    if not isinstance(doc, dict) or doc.get("format") not in (STATEMENT_FORMAT, COPY_FORMAT):
        raise KeyBackupError(
            "%s is not a statement (%s; a statement's is %r or %r): a statement is what `linekeeper "
            "keystore backup` writes beside a backup, as FILE%s, when the audit trail cannot record "
            "it, or what the box signs beside a copy of its deletion log"
            % (
                source,
                _format_named(doc),
                STATEMENT_FORMAT,
                COPY_FORMAT,
                STATEMENT_SUFFIX,
            )
        )
    if doc.get("version") != 1:
        raise KeyBackupError(
            "%s is a statement of version %r; this release reads version 1" % (source, doc.get("version"))
        )
    fields = ("action", "actor", "at", "host", "data_dir", "file_sha256")
    if doc["format"] == STATEMENT_FORMAT:
        fields += ("not_audited_because",)
    for field in fields:
        if not isinstance(doc.get(field), str):
            raise KeyBackupError("%s is damaged: its %s is missing or not text" % (source, field))
    if "signature" not in doc:
        raise KeyBackupError("%s is damaged: it has no signature field" % source)
    if doc["signature"] is None:
        why = doc.get("not_signed_because")
        raise KeyBackupError(
            "%s is NOT signed (%s): nothing shows the box made it; it says what it says, "
            "and anyone could have written it"
            % (source, why if isinstance(why, str) else "it does not say why")
        )
    if not isinstance(doc["signature"], dict):
        raise KeyBackupError("%s is damaged: its signature is not a signature" % source)
    return doc


def statement_key(doc, source):
    """The public key (32 bytes) the signed statement ``doc`` carries, or None when it was
    made before statements carried it.

    :raises KeyBackupError: it carries one that is not a key, or not the one it names
    """
    text = doc["signature"].get("public_key")
    if text is None:
        return None
    try:
        key = base64.b64decode(text, validate=True)
        if len(key) != 32:
            raise ValueError("%d bytes, not 32" % len(key))
    except (TypeError, ValueError) as exc:
        raise KeyBackupError("%s is damaged: its public key is not one (%s)" % (source, exc)) from None
    if fingerprint(key) != doc["signature"].get("key"):
        raise KeyBackupError(
            "%s does NOT verify: the public key it carries is %s, not the %s it names"
            % (source, fingerprint(key), doc["signature"].get("key"))
        )
    return key


def statement_lines(doc):
    """What the checked statement ``doc`` states, a line each, in plain words."""
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    if doc["format"] == COPY_FORMAT:
        return _copy_lines(doc, details)
    what = doc["action"]
    if doc["action"] == "key_backup":
        what = "a key store backup (key store %s)" % details.get("key_store", "not named")
    out = [
        "%s made %s of %s on %s at %s (UTC)" % (doc["actor"], what, doc["data_dir"], doc["host"], doc["at"]),
        "not in the audit trail because: %s" % doc["not_audited_because"],
        "the file it speaks of has SHA-256 %s" % doc["file_sha256"],
    ]
    if doc["action"] == "key_backup" and isinstance(details.get("inventory"), dict):
        out += ["the box held: " + line for line in inventory_lines(details["inventory"])]
    return out


def _copy_lines(doc, details):
    """:func:`statement_lines` of a :data:`COPY_FORMAT` statement (of a deletion log's copy)."""
    what = {"deletions": "the deletion log"}.get(details.get("log"), "the log %r" % details.get("log"))
    period = details.get("period")
    if isinstance(period, dict):
        days = "deleted from %s to %s (the box's days)" % (
            period.get("from") or "its start",
            period.get("to") or "its end",
        )
    else:
        days = "every entry"
    out = [
        "the box made a copy of %s of %s on %s for %s at %s (UTC)"
        % (what, doc["data_dir"], doc["host"], doc["actor"], doc["at"]),
    ]
    if details.get("entries") == 1:
        out.append(
            "it holds 1 entry, %s, number %s; its hash is %s"
            % (days, details.get("last_seq"), details.get("last_hash"))
        )
    elif details.get("entries"):
        out.append(
            "it holds %s entries, %s, numbers %s to %s; the last one's hash is %s"
            % (
                details["entries"],
                days,
                details.get("first_seq"),
                details.get("last_seq"),
                details.get("last_hash"),
            )
        )
    else:
        out.append("it holds no entry (%s)" % days)
    head = details.get("head")
    if isinstance(head, dict) and not head.get("seq") and not head.get("hash"):
        out.append("the log was then empty: nothing had been deleted")
    elif isinstance(head, dict):
        out.append("the log then ended at entry %s, hash %s" % (head.get("seq"), head.get("hash")))
    if details.get("audit_seq") is not None:
        out.append("its download is entry %s of the box's audit trail" % details["audit_seq"])
    out.append("the file it speaks of has SHA-256 %s" % doc["file_sha256"])
    return out
