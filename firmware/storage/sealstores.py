"""Personal data outside the call log and audit trail, sealed with the same key.

The box's field cipher (:mod:`firmware.storage.fieldseal`, the storage data
key the HAT MCU's vault wraps) also seals:

* ``web.db``: the phonebook's numbers and names, the text of notes on calls, the
  caller's names corrected for a call, and
  the login throttle's keys (account names with the addresses they were tried from);
* ``config.json``: the number patterns of the recording rules' number lists
  (a pattern is often a whole number: ``"07700 900123"``);
* the mail queue (``mail/queue/*.json``): each waiting message, its subject
  and its last delivery error (alarm and report mails may carry numbers and
  names).
* ``alarms.db``: the words of a concern staff raised (it may name a caller).

Each value is sealed text (``lkp1:``…) under its own field name, so a value
moved from one store or column to another does not open. The seal is
deterministic, so a sealed phonebook number is a keyed index of the number:
a number is found by sealing it and looking the result up, as the call log
finds its numbers; nothing on the card matches a number without the key.

A box without the MCU has no cipher and keeps these in clear, as it keeps
the call log (docs/card-alone.md).

:func:`seal_clear_stores` is the sealing: data migration 1
(:mod:`firmware.migrations.m001_seal_stores`) marks the data as sealed stores after
the framework backed the clear files up, and the recorder runs this at each start
with the key open, sealing whatever an older firmware (or a process without the
key) left in clear. Every step is atomic or batched and
idempotent: a power cut midway keeps what was done and the next start
finishes the job.
"""

import contextlib
import json
import logging
import os
import re
import sqlite3

from firmware.datadir import immediate_transaction
from firmware.storage import fsutil
from firmware.storage.fieldseal import FieldSealError, is_sealed

log = logging.getLogger(__name__)

# The field names (the associated data of each sealed value).
PHONEBOOK_NUMBER = "phonebook.number"
PHONEBOOK_NAME = "phonebook.name"
NOTE = "call_notes.note"
CORRECTED_NAME = "call_corrections.name"
THROTTLE_KEY = "throttle.key"
RULE_PATTERN = "rules.pattern"
MAIL_FIELDS = ("mail.message", "mail.subject", "mail.last_error", "mail.withdrawal")
# ``withdrawal``: who erased whose details while the mail was being sent, and from where
# (firmware/mail/queue.py), for the audit entry written once the try's outcome is known.
_MAIL_KEYS = ("message", "subject", "last_error", "withdrawal")

# A call's policy reason named the pattern that matched (``number 0800* excluded by
# rule "helplines"``) before rules were sealed; it names only the rule now.
_REASON_WITH_PATTERN = re.compile(r'^number (.+) ((?:ex|in)cluded by rule ".*")$', re.DOTALL)


# ---------------------------------------------------------------- config.json
def _number_lists(doc):
    """The number lists of a config document (dicts), or [] when it has none."""
    try:
        lists = doc["policy"]["rules"]["numbers"]
    except (KeyError, TypeError):
        return []
    return [item for item in lists if isinstance(item, dict)] if isinstance(lists, list) else []


def seal_rule_patterns(doc, cipher):
    """Seal, in the config document ``doc`` (a dict, changed in place), every rule
    pattern still in clear; returns how many."""
    changed = 0
    for item in _number_lists(doc):
        patterns = item.get("patterns")
        if not isinstance(patterns, list):
            continue
        for i, pattern in enumerate(patterns):
            if isinstance(pattern, str) and not is_sealed(pattern):
                patterns[i] = cipher.seal(pattern, RULE_PATTERN)
                changed += 1
    return changed


def open_rule_patterns(doc, cipher):
    """Open, in ``doc`` (changed in place), every sealed rule pattern.

    :raises FieldSealError: a pattern does not open with this box's key
    """
    for item in _number_lists(doc):
        patterns = item.get("patterns")
        if isinstance(patterns, list):
            item["patterns"] = [cipher.open(p, RULE_PATTERN) if is_sealed(p) else p for p in patterns]
    return doc


def seal_config_file(path, cipher):
    """Seal the clear rule patterns in the config file at ``path``; returns how many.

    The file is rewritten atomically (the data's mode) only when something changed.
    A file that is not a JSON object is left alone: the box's config loader
    reports it, with its line and column.
    """
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        return 0
    except ValueError:
        return 0
    if not isinstance(doc, dict):
        return 0
    changed = seal_rule_patterns(doc, cipher)
    if changed:
        fsutil.atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return changed


# ---------------------------------------------------------------- web.db
def seal_throttle_key(key, cipher):
    """A login throttle key ``KIND:REST`` with ``REST`` (an account name and an address)
    sealed: its kind stays readable (it sets how many failures are free)."""
    kind, _, rest = key.partition(":")
    return kind + ":" + cipher.seal(rest, THROTTLE_KEY)


def _has_table(db, name):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()


def seal_web_db(path, cipher, batch=500):
    """Seal, in place, the phonebook entries, call notes and corrected names still in clear in the
    ``web.db`` at ``path``; returns how many rows changed.

    Batched transactions (a power cut keeps what was done; the next run
    finishes). Afterwards the file is vacuumed and its write-ahead log
    truncated, so the clear text does not linger in free pages.
    """
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        changed = 0
        if _has_table(db, "phonebook"):
            changed += _seal_rows(
                db,
                "SELECT rowid, number, name FROM phonebook WHERE substr(number, 1, 5) != 'lkp1:' "
                "OR substr(name, 1, 5) != 'lkp1:' LIMIT ?",
                "UPDATE phonebook SET number = ?, name = ? WHERE rowid = ?",
                (PHONEBOOK_NUMBER, PHONEBOOK_NAME),
                cipher,
                batch,
            )
        if _has_table(db, "call_notes"):
            changed += _seal_rows(
                db,
                # An erased note (empty: web.phonebook.ERASED_NOTE) has nothing to seal.
                "SELECT rowid, note FROM call_notes"
                " WHERE substr(note, 1, 5) != 'lkp1:' AND note != '' LIMIT ?",
                "UPDATE call_notes SET note = ? WHERE rowid = ?",
                (NOTE,),
                cipher,
                batch,
            )
        if _has_table(db, "call_corrections"):
            changed += _seal_rows(
                db,
                # An erased name (empty: web.corrections.ERASED_NAME) has nothing to seal.
                "SELECT rowid, name FROM call_corrections"
                " WHERE substr(name, 1, 5) != 'lkp1:' AND name != '' LIMIT ?",
                "UPDATE call_corrections SET name = ? WHERE rowid = ?",
                (CORRECTED_NAME,),
                cipher,
                batch,
            )
        if _has_table(db, "throttle"):
            changed += _seal_throttle(db, cipher)
        if changed:
            _forget(db)
        return changed
    finally:
        db.close()


def _seal_throttle(db, cipher):
    """Seal the login throttle's clear keys (addresses): one transaction, the table is
    small (a day of failed logins)."""
    rows = db.execute("SELECT key FROM throttle WHERE key NOT LIKE '%:lkp1:%'").fetchall()
    if not rows:
        return 0
    with immediate_transaction(db, contextlib.nullcontext()):
        for (key,) in rows:
            sealed = seal_throttle_key(key, cipher)
            # A sealed twin (counted since the key came): the older clear count wins.
            db.execute("DELETE FROM throttle WHERE key = ?", (sealed,))
            db.execute("UPDATE throttle SET key = ? WHERE key = ?", (sealed, key))
    return len(rows)


def _seal_rows(db, select, update, fields, cipher, batch, args=()):
    changed = 0
    while True:
        rows = db.execute(select, (*args, batch)).fetchall()
        if not rows:
            return changed
        with immediate_transaction(db, contextlib.nullcontext()):
            for row in rows:
                values = [cipher.seal(v, f) for v, f in zip(row[1:], fields, strict=True)]
                db.execute(update, values + [row[0]])
        changed += len(rows)


def _forget(db):
    """Vacuum and truncate the write-ahead log: the old clear pages go."""
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# ---------------------------------------------------------------- alarms.db
def seal_alarm_history(path, cipher):
    """Seal, in the ``alarms.db`` at ``path``, the messages of the alarms that hold a
    person's own words (:data:`firmware.alarmlog.PRIVATE_KINDS`: staff concerns) that
    an older firmware kept in clear; returns how many. Vacuumed and its log truncated
    afterwards, as web.db is."""
    from firmware.alarmlog import MESSAGE_FIELD, PRIVATE_KINDS

    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        if not _has_table(db, "alarm_history"):
            return 0
        kinds = sorted(PRIVATE_KINDS)
        changed = _seal_rows(
            db,
            "SELECT rowid, message FROM alarm_history WHERE kind IN (%s) AND message != '' "
            "AND substr(message, 1, 5) != 'lkp1:' LIMIT ?" % ", ".join("?" * len(kinds)),
            "UPDATE alarm_history SET message = ? WHERE rowid = ?",
            (MESSAGE_FIELD,),
            cipher,
            500,
            kinds,
        )
        if changed:
            _forget(db)
        return changed
    finally:
        db.close()


# ---------------------------------------------------------------- calls.db
def forget_rule_patterns_in_calls(path, batch=500):
    """Drop the matching pattern from the policy reasons of the calls in the
    ``calls.db`` at ``path`` (``number 07700 900123 excluded by rule "x"`` becomes
    ``number excluded by rule "x"``); returns how many calls changed."""
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        if not _has_table(db, "calls"):
            return 0
        cols = [r[1] for r in db.execute("PRAGMA table_info(calls)")]
        if "policy_reason" not in cols:
            return 0
        changed = 0
        last = 0
        while True:
            rows = db.execute(
                "SELECT id, policy_reason FROM calls WHERE id > ? "
                "AND policy_reason LIKE 'number %cluded by rule %' ORDER BY id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            updates = []
            for call_id, reason in rows:
                m = _REASON_WITH_PATTERN.match(reason)
                if m:
                    updates.append(("number " + m.group(2), call_id))
            if updates:
                with immediate_transaction(db, contextlib.nullcontext()):
                    db.executemany("UPDATE calls SET policy_reason = ? WHERE id = ?", updates)
                changed += len(updates)
        if changed:
            _forget(db)
        return changed
    finally:
        db.close()


# ---------------------------------------------------------------- the mail queue
def seal_mail_item(item, cipher):
    """A queued mail (dict) with its message, subject, last error and pending withdrawal
    sealed (a copy)."""
    out = dict(item)
    for key, field in zip(_MAIL_KEYS, MAIL_FIELDS, strict=True):
        if isinstance(out.get(key), str):
            out[key] = cipher.seal(out[key], field)
    return out


def open_mail_item(item, cipher):
    """A queued mail (dict) with its sealed fields opened (a copy).

    :raises FieldSealError: a field does not open with this box's key, or the
        item is sealed and there is no key (``cipher`` None)
    """
    out = dict(item)
    for key, field in zip(_MAIL_KEYS, MAIL_FIELDS, strict=True):
        value = out.get(key)
        if is_sealed(value):
            if cipher is None:
                raise FieldSealError("a queued mail is sealed, and this process has no storage key")
            out[key] = cipher.open(value, field)
    return out


def mail_item_in_clear(item):
    return any(isinstance(item.get(k), str) and not is_sealed(item[k]) for k in _MAIL_KEYS)


# ---------------------------------------------------------------- all of them
def seal_clear_stores(data_dir, cipher, mail_queue=None, leave=()):
    """The sealing (data migration 1, :mod:`firmware.migrations.m001_seal_stores`, and
    every start): seal what is still in clear in web.db, config.json, alarms.db, the mail queue
    (``mail_queue``: a :class:`firmware.mail.queue.MailQueue`, whose :meth:`seal_clear`
    does it), and drop rule patterns from the calls' policy reasons. Returns
    ``{store: how many}``; nothing is done without ``cipher``. The stores named in
    ``leave`` (``"config_patterns"``, ``"mail"``) are left as they are, and not counted.

    A store that cannot be sealed now (web.db held by the web UI past the busy
    timeout, a damaged file, a full card) is logged and counted as None: the
    box still starts and records, and the next start tries again.
    """
    if cipher is None:
        return {}
    steps = [
        ("web_db", seal_web_db, os.path.join(data_dir, "web.db"), cipher),
        ("config_patterns", seal_config_file, os.path.join(data_dir, "config.json"), cipher),
        ("call_reasons", forget_rule_patterns_in_calls, os.path.join(data_dir, "calls.db")),
        ("alarms", seal_alarm_history, os.path.join(data_dir, "alarms.db"), cipher),
    ]
    counts = {}
    for name, step, *args in steps:
        if name not in leave:
            counts[name] = _attempt(name, step, *args)
    if mail_queue is not None and "mail" not in leave:
        counts["mail"] = seal_mail_queue(mail_queue)
    return counts


def seal_mail_queue(queue):
    """Seal the mails ``queue`` (a :class:`firmware.mail.queue.MailQueue` with a cipher)
    holds in clear; how many, or None when that failed (logged; the next start tries)."""
    return _attempt("mail", queue.seal_clear)


def _attempt(name, step, *args):
    try:
        return step(*args)
    except (sqlite3.Error, OSError) as exc:
        log.warning("sealing the personal data in %s failed (the next start tries again): %s", name, exc)
        return None
