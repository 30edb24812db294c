"""The ``linekeeper`` command."""

import argparse
import base64
import contextlib
import dataclasses
import functools
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import time

from firmware.storage.fsutil import SHARED_UMASK

from .argtypes import DATA_DIR_HELP, port
from .errors import LinekeeperError

log = logging.getLogger("linekeeper")


def _speed(text):
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be 'max' or a positive number, not %r" % text) from None
    # NaN passes "<= 0"; 1e-300 made the clock's waits overflow after the box had begun.
    if not 0.001 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(
            "must be 'max' or a number from 0.001 to 1000000 (times real time), not %r" % text
        )
    return value


def _load_scenario(name):
    from board.sim.scenario import load_scenario

    from .config import BoxConfig

    return load_scenario(name, parse_config=BoxConfig.from_dict)


def cmd_sim(args):
    """Run the box headless on a scenario until it ends."""
    from .box import open_sim_host
    from .config import load_config_file

    scenario = _load_scenario(args.scenario)
    config = load_config_file(args.config) if args.config else None
    # The host starts the box again after each of the scenario's power cuts.
    host = open_sim_host(
        scenario, args.data_dir, speed=args.speed, config=config, config_file=args.config, resume=True
    )
    box = host.box
    calls_before = len(box.calllog.calls())
    if not box.recorder.enabled:
        print(
            "linekeeper: %s is not initialised (`linekeeper init`): calls are logged but no "
            "audio is recorded" % args.data_dir,
            file=sys.stderr,
        )
    elif box.config.policy.consent.waits_for_notice():
        print(
            "linekeeper: %s has no consent notice set (policy.consent): calls are logged but "
            "none is recorded until one is" % args.data_dir,
            file=sys.stderr,
        )
    stop = _on_signals(box.clock.stop)
    host.start()
    try:
        finished = host.board.run()
        n_calls = len(host.box.calllog.calls()) if host.box is not None else None
    finally:
        host.stop()
    if not finished or stop.is_set():
        print("linekeeper: stopped before the scenario ended", file=sys.stderr)
        return 1
    if n_calls is None:
        print("linekeeper: scenario done; the box had no power at its end", file=sys.stderr)
    else:
        print("linekeeper: scenario done, %s" % _calls_said(n_calls, calls_before), file=sys.stderr)
    return 0


def _calls_said(n_calls, calls_before):
    """What the log holds ("3 calls in the log"), and what this run added to a log used before."""
    said = "1 call in the log" if n_calls == 1 else "%d calls in the log" % n_calls
    if calls_before:
        # A data directory used before: its calls are not the scenario's.
        said += ", %d from this run" % (n_calls - calls_before)
    return said


def _data_dir(data_dir):
    """Check that ``data_dir`` is a directory this process can read; returns it.

    :raises LinekeeperError: missing, not a directory, or unreadable (one line)
    """
    import stat

    from .datadir import storage_error
    from .errors import StorageError

    try:
        st = os.stat(data_dir)
    except FileNotFoundError:
        raise LinekeeperError("no data directory %s" % data_dir) from None
    except OSError as exc:
        raise storage_error(exc, "cannot open the data directory %s" % data_dir) from None
    if not stat.S_ISDIR(st.st_mode):
        raise LinekeeperError("%s is not a directory" % data_dir)
    if not os.access(data_dir, os.R_OK | os.X_OK):
        raise StorageError(13, "cannot read the data directory %s: permission denied" % data_dir)
    return data_dir


def _call_log(data_dir, hint=""):
    """The path of ``data_dir``'s call log, which must exist.

    :raises LinekeeperError: no data directory, no call log, or unreadable (one line)
    """
    from .datadir import storage_error

    path = os.path.join(_data_dir(data_dir), "calls.db")
    try:
        os.stat(path)
    except FileNotFoundError:
        raise LinekeeperError("no call log in %s%s" % (data_dir, hint)) from None
    except OSError as exc:
        raise storage_error(exc, "cannot open the call log") from None
    return path


# How many calls `linekeeper calls` prints unless --limit says otherwise, and at most: its
# audit entry names every call printed, so a year's call log is narrowed by a search.
CALLS_LIMIT = 1000
CALLS_LIMIT_MAX = 10_000


def cmd_calls(args):
    """Print the calls of the call log a search finds (``--line``, ``--from``, ``--to``,
    ``--number``, ``--direction``, ``--name``, ``--tag``, ``--min-duration``: the web UI's calls
    list's filters, by its search code), the
    newest ``--limit`` of them, oldest first; stderr says when more matched. Audited as the web
    UI's calls list is: one ``list_viewed`` entry of ``calls`` by ``--user`` with what it
    printed (``filter``, the search as the page's entry says it, ``all calls`` with none;
    ``rows``, how many calls; ``calls``, their ids; ``via``, ``cli``), written before anything
    is printed: when the trail cannot take it, nothing is printed. Who may
    (:func:`_calls_lines`): a supervisor the calls of the lines granted to them, an auditor
    every call (on a box with no accounts yet, the key slot's owner), with the password of
    their key slot.

    The call log is opened read-only (a full card's can be read; its audit entry cannot be
    written there: refused, nothing printed).

    :raises LinekeeperError: refused (who may, above), a search option that is not one (named),
        or the entry not made; nothing printed
    :raises Stopped: Ctrl-C once the entry was made
    """
    from firmware.calls.calllog import CallLog
    from firmware.calls.callsearch import CallSearch
    from firmware.storage.fieldseal import load_field_cipher

    from .clock import SimClock
    from .signing import run_dir

    path = _call_log(args.data_dir, " (run the box with --data-dir %s first)" % args.data_dir)
    if not 1 <= args.limit <= CALLS_LIMIT_MAX:
        raise LinekeeperError(
            "the calls were not printed: --limit %d is not from 1 to %d" % (args.limit, CALLS_LIMIT_MAX)
        )
    # Numbers and names sealed under the MCU vault's key: the recorder's RAM copy opens them.
    cipher = load_field_cipher(args.data_dir, run_dir=run_dir(), create=False)
    granted = _calls_lines(args)
    search = CallSearch(path, cipher=cipher)
    try:
        flt, shown = _calls_filter(args, granted, search, cipher)
        ids, more = _calls_found(search, flt, args.limit)
        matched = search.count(flt) if more else None
    finally:
        search.close()
    calllog = CallLog(path, SimClock(), readonly=True, cipher=cipher)
    try:
        archived, holds = _archive_statuses_and_holds(path)
        calls = calllog.calls_of(ids)
    finally:
        calllog.close()
    from .calls.corrected import corrected_names

    corrected = corrected_names(args.data_dir, [c["id"] for c in calls], cipher)
    printed = [
        _call_json(c, archived, holds, corrected) if args.json else _call_text(c, holds, corrected)
        for c in calls
    ]
    if calls and not args.json:
        printed.insert(0, CALLS_HEADING)
    _audit_calls_listed(args, calls, shown)
    done = 0
    try:
        for text in printed:
            print(text)
            done += 1
        if matched is not None:
            print(_calls_cut(len(calls), matched, args.limit), file=sys.stderr)
        elif not calls:  # said on stderr: stdout stays a list (of no calls; --json: no lines)
            print("linekeeper: %s" % _calls_none(shown), file=sys.stderr)
    except KeyboardInterrupt as exc:
        raise Stopped(_calls_stopped(len(calls), printing=done > 0)) from exc
    return 0


def _calls_found(search, flt, limit):
    """``(ids, more)``: the ids of the newest ``limit`` calls ``flt`` finds in ``search`` (a
    :class:`~firmware.calls.callsearch.CallSearch`), page by page as the calls list pages;
    ``more``: whether further calls matched."""
    from firmware.calls.callsearch import PAGE_MAX

    ids, after = [], None
    while len(ids) < limit:
        page, after = search.search(flt, after=after, limit=min(PAGE_MAX, limit - len(ids)))
        ids += [c["id"] for c in page]
        if after is None:
            break
    return ids, after is not None


def _calls_none(shown):
    """What stderr says when no call was found by the search :func:`_calls_filter` says it
    made (``shown``), its options as they were given."""
    if not isinstance(shown, dict):
        return "the call log has no calls"
    words = []
    for name, value in shown.items():
        if name == "match":
            value = {v: k for k, v in CALLS_MATCHES.items()}.get(value, value)
        for one in value if isinstance(value, list) else [value]:
            words.append("--%s %s" % (name, one))
    from firmware.policy.cards import scrub_typed

    # A card number typed as --number is not said back (PCI DSS), as the calls list's isn't.
    return "no calls match %s" % scrub_typed(" ".join(words))


def _calls_cut(n_printed, matched, limit):
    """What stderr says of a list ``--limit`` cut: ``matched``, CallSearch.count's ``(n, exact)``."""
    n, exact = matched
    return (
        "linekeeper: the newest %d of %s%d calls that matched were printed (--limit %d): narrow the "
        "search with --from, --to, --line, --number, --direction, --name, --tag or --min-duration, "
        "or raise --limit (at most %d)" % (n_printed, "" if exact else "at least ", n, limit, CALLS_LIMIT_MAX)
    )


# --match: the calls list's "starts with" and "contains", as CallFilter.number_match says them.
CALLS_MATCHES = {"starts": "prefix", "contains": "contains"}


def _calls_filter(args, granted, search, cipher=None):
    """``(CallFilter, filter)``: the search ``linekeeper calls``' options ask for on the lines
    ``granted`` (None: every line), as the web UI's calls list searches (days in the box's
    zone; a number as the page's *contains* or *starts with*, with the box's country and its
    lines' outside-line digits), and as its audit entry says it (``filter``: each option
    given by the name of the page's field, ``all calls`` with none). ``search``: the call
    log's :class:`~firmware.calls.callsearch.CallSearch` (the box's lines: :func:`_box_lines`);
    ``cipher``, its field cipher (a name is found in web.db: :func:`_calls_named`).

    :raises LinekeeperError: a value that is not one, a line the box does not have or one
        not granted, named (nothing printed or audited)
    """
    from firmware.calls.callsearch import NUMBER_MATCH_DEFAULT, CallFilter, search_number
    from firmware.localtime import LocalTime
    from firmware.policy.cards import scrub_typed

    from .config import load_config
    from .datadir import site_settings, site_zone
    from .sar import search_lines

    shown = {}
    try:
        clock = LocalTime(site_zone(args.data_dir))
        since_us = until_us = None
        if args.first is not None:
            since_us = clock.day_start_us(_calls_day(args.first, "--from"))
            shown["from"] = args.first
        if args.last is not None:
            until_us = clock.day_end_us(_calls_day(args.last, "--to"))
            shown["to"] = args.last
        if since_us is not None and until_us is not None and until_us <= since_us:
            raise LinekeeperError("--to %s is before --from %s" % (args.last, args.first))
        lines = None if granted is None else tuple(sorted(granted))
        if args.lines:
            # As the page: a line the box does not have, or not the user's, is refused, not
            # searched as nothing.
            n_lines = _box_lines(args.data_dir, search)
            lines = tuple(search_lines(args.lines, granted, n_lines, name="--line"))
            given = [str(n) for n in dict.fromkeys(int(t) for t in args.lines)]
            shown["line"] = given if len(given) > 1 else given[0]
        if args.direction is not None:
            shown["direction"] = args.direction
        if args.match is not None and args.match not in CALLS_MATCHES:
            raise LinekeeperError(
                "--match %r is not one: give starts (the number's start, the calls list's "
                '"starts with") or contains (its digits anywhere, the default)' % args.match[:40]
            )
        if args.match is not None and args.number is None:
            raise LinekeeperError("--match %s says how --number is matched: give --number too" % args.match)
        match = NUMBER_MATCH_DEFAULT if args.match is None else CALLS_MATCHES[args.match]
        # The page's country (its site settings') and, for "starts with", its lines'
        # outside-line digits (policy.rules.lines), by the page's own search code.
        country = (site_settings(args.data_dir) or {}).get("country") or "uk"
        number, outside = None, ()
        if args.number is not None:
            number = search_number(args.number, country, match)
            if not re.fullmatch(r"[0-9*#+]{1,32}", number):
                raise LinekeeperError(
                    "--number %r is not a number or part of one: give 1 to 32 digits (and "
                    "spaces, * # + - ( )), such as 01632 or +44 1632 960777" % scrub_typed(args.number[:40])
                )
            outside = tuple(sorted(load_config(args.data_dir).policy.rules.outside_lines().items()))
            shown.update(match=match, number=args.number)
        name = " ".join((args.name or "").split()) or None
        if name is not None:
            if len(name) > 64:
                raise LinekeeperError("--name is %d characters: give at most 64 of the name" % len(name))
            shown["name"] = name
        if args.tag is not None:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", args.tag):
                raise LinekeeperError(
                    "--tag %r is not a tag: a tag is 1 to 32 lower-case letters, digits, - and _, "
                    "as the calls list offers them" % args.tag[:40]
                )
            shown["tag"] = args.tag
        if args.min_duration is not None:
            if not re.fullmatch(r"\d{1,5}", args.min_duration) or int(args.min_duration) > 86400:
                raise LinekeeperError(
                    "--min-duration %r is not a talk time: give whole seconds, 0 to 86400"
                    % args.min_duration[:40]
                )
            shown["min_duration"] = args.min_duration
    except LinekeeperError as exc:
        raise LinekeeperError("the calls were not printed: %s" % exc) from None
    flt = CallFilter(
        since_us=since_us,
        until_us=until_us,
        lines=lines,
        direction=args.direction,
        number=number,
        number_match=match,
        country=country,
        outside=outside,
        min_duration_s=None if args.min_duration is None else int(args.min_duration),
        tag=args.tag,
        **_calls_named(args.data_dir, name, country, cipher),
    )
    return flt, shown or "all calls"


def _calls_named(data_dir, name, country, cipher):
    """The calls list's name search (web/views/calls.py), as CallFilter's fields: ``name``,
    and ``name_numbers`` (the numbers the phonebook gives a name holding it),
    ``named_ids`` and ``renamed_ids`` (the calls corrected to a name holding it, and every
    call corrected: :meth:`web.corrections.NameCorrections.calls_named`), read from web.db
    without writing with ``cipher`` (the call log's: it seals web.db too); {} for no
    ``name``."""
    if name is None:
        return {}
    found = {"name": name}
    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):  # a box whose web UI never ran: no phonebook, no correction
        return found
    from web.corrections import NameCorrections
    from web.phonebook import Phonebook

    from .datadir import connect_readonly

    conn = connect_readonly(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db = _ReadOnlyWebDb(conn)
        if "phonebook" in tables:
            found["name_numbers"] = Phonebook(db, _wall_us, cipher).numbers_named(name, country)
        if "call_corrections" in tables:
            named = NameCorrections(db, _wall_us, cipher).calls_named(name)
            found["named_ids"], found["renamed_ids"] = named
    finally:
        conn.close()
    return found


def _box_lines(data_dir, search):
    """How many lines the box has, as `linekeeper report` counts them without its board:
    those its site settings or its HAT name (:func:`firmware.box.configured_lines`), or the
    highest line of a call in ``search``'s log when that is higher; None when neither says
    (a simulated box not set up, with no call yet)."""
    from .box import configured_lines

    return max(configured_lines(data_dir) or 0, search.top_line()) or None


def _calls_day(text, option):
    """The :class:`datetime.date` of ``option``'s ``text`` (``YYYY-MM-DD``).

    :raises LinekeeperError: not such a date, or not a day of the calendar"""
    import datetime

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise LinekeeperError("%s %r is not a date: give it as YYYY-MM-DD" % (option, text[:40]))
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise LinekeeperError("%s %s is not a day of the calendar" % (option, text)) from None


def _calls_stopped(n_calls, printing=False):
    """What a Ctrl-C after the calls' audit entry left, in words."""
    from .words import counted

    return (
        "calls stopped %s: its audit entry, naming the %s it was to print, was made; "
        "nothing else was changed"
        % (
            "part way through printing the calls" if printing else "before printing any call",
            counted(n_calls, "call"),
        )
    )


def _calls_lines(args):
    """The lines whose calls ``--user`` may list, as on the web UI's calls list
    (:func:`web.security.visible_lines`): a supervisor's granted lines, every line (None) for
    an auditor, or for the key slot's owner on a box with no accounts yet.

    :raises LinekeeperError: not a supervisor or an auditor, no line granted, an unknown or
        disabled account, or a wrong password (nothing is printed)"""
    try:
        # The password first: no refusal says what an account is before it is taken.
        _prove(args)  # the password says --user asks for it
        account = _account(args.data_dir, args.user)
        lines = None
        if account is not None and not account.has("auditor"):
            if not account.has("supervisor"):
                raise LinekeeperError(
                    "%s is not a supervisor or an auditor: only they may list the calls" % args.user
                )
            lines = set(account.lines)
            if not lines:
                raise LinekeeperError("no lines are granted to %s: ask an installer" % args.user)
    except LinekeeperError as exc:
        raise LinekeeperError("the calls were not printed: %s" % _why_alone(exc)) from None
    return lines


def _audit_calls_listed(args, calls, shown="all calls"):
    """Audit ``calls`` as listed by ``--user``: the web calls page's entry (``list_viewed`` of
    ``calls``: its search, ``shown``; ``rows``, ``calls``: every id, which the auditor's search by
    number and a breach's scope read) with ``via`` ``cli``.

    :raises LinekeeperError: the trail cannot take it (nothing printed)
    :raises Stopped: Ctrl-C as it was appended, delivered once the entry is made"""
    from firmware.storage.held import SignalsHeld

    from .box import open_audit
    from .datadir import storage_error

    details = {"filter": shown, "rows": len(calls), "calls": [c["id"] for c in calls], "via": "cli"}
    made = False
    try:
        with SignalsHeld():  # a stop in the append comes once it is made, and `made` says so
            with open_audit(args.data_dir) as audit:
                audit.append(args.user, "list_viewed", "calls", details, _wall_us())
            made = True
    except (OSError, sqlite3.Error) as exc:
        raise LinekeeperError(
            "the calls were not printed: they could not be audited (%s)" % storage_error(exc, "audit trail")
        ) from None
    except KeyboardInterrupt as exc:
        if made:
            raise Stopped(_calls_stopped(len(calls))) from exc
        raise


CALLS_HEADING = "%5s  %-6s  %-3s  %-24s  %-8s  %-31s  %-14s  %-13s  %s" % (
    "call",
    "line",
    "dir",
    "started (UTC)",
    "answered",
    "ended",
    "recording",
    "rules",
    "number, name",
)


class _ReadOnlyWebDb:
    """web.db opened by :func:`firmware.datadir.connect_readonly`, for the web UI's stores'
    reads (``query``): a command that only reads changes nothing in it, on a full card too."""

    def __init__(self, conn):
        self._conn = conn
        self._conn.row_factory = sqlite3.Row

    def query(self, sql, args=()):
        return self._conn.execute(sql, args).fetchall()


def _call_json(call, archived, holds, corrected=None):
    """``call`` as ``linekeeper calls --json`` prints it; ``corrected`` as
    :func:`firmware.calls.corrected.corrected_names` gives it: ``corrected_name``, the name
    the call was corrected to (null for none), beside ``name``, what the caller-ID sent."""
    from firmware.calls.calllog import dumps, iso_ms

    from .policy.rules import outcome

    # What the box did, as the calls CSV's decision column says it (a call the
    # rules would record, on a box not set up, was not recorded: before_setup);
    # policy_decision stays what the rules decided, as the call log keeps it.
    call["outcome"] = outcome(call.get("policy_decision"), call.get("policy_reason"))
    if call["id"] in archived:
        status, reason = archived[call["id"]]
        call["archive"] = {"status": status, "reason": reason}
    # The legal hold, as the calls CSV's columns of the same names have it.
    call["legal_hold"] = call["id"] in holds
    call["legal_hold_since"] = iso_ms(holds[call["id"]]) if call["id"] in holds else None
    # The name corrected on request (UK GDPR Art. 16), as the calls CSV's corrected_name.
    call["corrected_name"] = (corrected or {}).get(call["id"])
    return dumps(call)


def _call_text(call, holds, corrected=None):
    """``call`` as ``linekeeper calls`` prints it, a line under :data:`CALLS_HEADING`;
    a name corrected on request (``corrected``, :func:`firmware.calls.corrected.corrected_names`)
    in place of the caller-ID's, marked "(corrected)", as the calls list shows it."""
    from . import words
    from .policy.deletions import recording_word

    # The same plain words as the web pages (firmware.words); an erasure on
    # request is not a deletion, as the calls list says.
    recording = words.say("recording", recording_word(call["recording"], call.get("recording_deleted")))
    # A call on legal hold (never deleted while held), in a word: --json says since when.
    held = ", held" if call["id"] in holds else ""
    # Digits keyed after a card number while dialling, not kept: said after the
    # number, never which nor how many (as the call page says it).
    withheld = ", digits withheld" if call.get("digits_withheld") else ""
    # As the web pages say a number the caller's network did not send, and one
    # no caller ID brought at all ("unknown", not a blank).
    number = call["number"] or {
        "unavailable": "unavailable",
        "erased": "erased on request",
        # Removed by the retention sweep past call_details_days: no one asked.
        "expired": "removed after its retention period",
        None: "unknown",
    }.get(call.get("absence"), "withheld")
    name = (corrected or {}).get(call["id"])
    name = "%s (corrected)" % name if name else call["name"] or ""
    return "%5d  line %d  %-3s  %-24s  %-8s  %-31s  %-14s  %-13s  %s %s" % (
        call["id"],
        call["line"],
        call["direction"],
        call["started_at"],
        "answered" if call["answered"] else "-",
        # How it ended in the call page's words ("We hung up"); --json keeps the codes.
        words.say("end", call["end_reason"]) or ("-" if call["ended_at"] is None else "not known"),
        (words.say("recording", recording) or "No recording") + held,
        words.say("decision", call["policy_decision"]) or "-",
        number + withheld,
        name,
    )


def _archive_statuses_and_holds(path):
    """``({call_id: (status, reason)}`` of the archive replication (docs/archive.md),
    ``{call_id: when its legal hold was placed (µs, UTC)}``)."""
    from .archive.queue import statuses
    from .datadir import connect_readonly
    from .policy.callmeta import held_since

    db = connect_readonly(path)
    try:
        return statuses(db), held_since(db)
    finally:
        db.close()


def cmd_linecheck(args):
    """Report what each line's hub, ATA or exchange was seen to do (docs/adapters.md)."""
    from .linecheck import report

    if not os.path.isdir(args.data_dir):
        raise LinekeeperError("no data directory %s" % args.data_dir)
    print(report(args.data_dir, as_json=args.json))
    return 0


def _read_password(path, what="password file"):
    """The first line of the file ``path``; warns when others may read the file (``what``
    names it: "recovery key file", "secret file").

    :raises LinekeeperError: the file cannot be read, is not UTF-8 text, or its first line
        is empty (``what`` named)"""
    import stat

    try:
        if path in _READ_AS_ROOT:
            line, mode = _READ_AS_ROOT[path]
            password = line.rstrip("\r\n")
        else:
            with open(path, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                password = f.readline().rstrip("\r\n")
    except OSError as exc:
        raise LinekeeperError(
            "cannot read the %s %s: %s%s" % (what, path, exc.strerror, _as_whom())
        ) from None
    except UnicodeDecodeError:
        raise LinekeeperError("the %s %s is not text (UTF-8)" % (what, path)) from None
    if stat.S_ISREG(mode) and mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            "linekeeper: warning: the %s %s can be read by other users (mode "
            "%03o); make it private (chmod 600) or delete it after use" % (what, path, stat.S_IMODE(mode)),
            file=sys.stderr,
        )
    if not password:
        raise LinekeeperError("the %s %s is empty" % (what, path))
    return password


def _as_whom():
    """Said beside a file the command could not use: run by root on the appliance, it acts
    as the box's user (:func:`_as_the_box`), who must be able to use it."""
    if not _ACTING_FOR_ROOT:
        return ""
    import pwd

    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        name = "uid %d" % os.geteuid()
    return " (run by root on the box, the command acts as the box's user %s: give it the file)" % name


def _wall_us():
    """Now, µs since the epoch: by the simulated box's clock on a simulated box's data
    directory (:func:`_date_by_box`), else the machine's."""
    import time

    if _SIM_DATA_DIR is not None:
        from .simtime import box_wall_us

        now = box_wall_us(_SIM_DATA_DIR)
        if now is not None:
            return now
    return time.time_ns() // 1000


_SIM_DATA_DIR = None  # a simulated box's data directory this command runs on (_date_by_box)


def _date_by_box(args):
    """A command on a simulated box's data directory dates what it does (audit entries,
    "today", a report's period) by that box's clock, as the box dates its calls: by the
    machine's, a demo box's March was audited in December (docs/scenarios.md)."""
    global _SIM_DATA_DIR
    from .simtime import read_note

    _SIM_DATA_DIR = None
    data_dir = getattr(args, "data_dir", None)
    if isinstance(data_dir, str) and args.command not in ("sim", "run", "recorder", "web"):
        if read_note(data_dir) is not None:
            _SIM_DATA_DIR = data_dir


def cmd_init(args):
    """Create the box's recording keys and the first key slot.

    The box's configuration gets ``policy.consent.require_notice``: a box made this way
    records no line until a consent notice is set (the setup wizard, the Consent page,
    ``config import``): nobody on its calls would be told they may be recorded.
    """
    import dataclasses

    from board.hat import list_hats, load_hat
    from firmware.storage.fsutil import make_private_dir
    from firmware.storage.keystore import KeyStore
    from web.accounts import name_problem
    from web.passwords import password_problem

    from . import words
    from .box import configured_lines, open_audit
    from .config import load_config, save_config
    from .migrations import note_if_fresh

    # The web UI's rule: the setup wizard asks for this account by a name it accepts.
    problem = name_problem(args.user)
    if problem:
        raise LinekeeperError("--user %r: %s: nothing was created" % (args.user, problem.rstrip(".")))
    password = _read_password(args.password_file)
    problem = password_problem(password, args.user)
    if problem:
        raise LinekeeperError(
            "%s (the password file %s): nothing was created" % (problem.rstrip("."), args.password_file)
        )
    make_private_dir(args.data_dir)
    # A new data directory is made at this release's data schema: no migration runs on it.
    note_if_fresh(args.data_dir)
    # Read first, so that a configuration that does not load is said before anything is made.
    config = load_config(args.data_dir)
    consent = dataclasses.replace(config.policy.consent, require_notice=True)
    config = config.replace(policy=dataclasses.replace(config.policy, consent=consent))
    # Every line's key with the keys, as the setup wizard does, not at each line's first
    # recording: a key store backup made next holds them all (one without a line's key,
    # put back, opens none of that line's recordings: docs/keys.md).
    n_lines = configured_lines(args.data_dir)
    keyed = "every line of the box"
    if n_lines is None and config.hat:
        load_hat(config.hat)  # raises, saying why, before anything is made
    if n_lines is None:
        widest = max(list_hats(), key=lambda name: len(load_hat(name).lines))
        n_lines = len(load_hat(widest).lines)
        keyed = "no HAT is configured: every line the %s HAT has, the most of any" % widest

    def show(recovery):
        # Once the key store is known not to exist yet, before the keys are committed: a
        # box never has keys that record with no notice set (a failure here leaves none).
        save_config(args.data_dir, config)
        # Audited before the keys are committed: a card too full for the entry leaves no
        # keys (init can be run again once there is room), never keys the trail does not show.
        # The configuration it wrote: nothing is recorded until a consent notice is set.
        audit.append(args.user, "init", None, {"via": "cli", "require_notice": True}, _wall_us())
        # Shown before the keys are committed: a key store never exists whose
        # recovery key nobody saw (a failure here leaves no keys).
        print("Recovery key for %s (shown once; store it somewhere safe, away from the box):" % args.data_dir)
        print()
        print("    " + recovery)
        print()
        sys.stdout.flush()

    try:
        with open_audit(args.data_dir) as audit:
            KeyStore(args.data_dir).initialise(args.user, password, show=show, lines=range(1, n_lines + 1))
    except KeyboardInterrupt as exc:
        if KeyStore(args.data_dir).is_initialised:
            raise Stopped(
                "init stopped once the keys were made: %s is initialised for user %r, with the "
                "recovery key shown above" % (args.data_dir, args.user)
            ) from exc
        raise Stopped(
            "init stopped before the keys were made: %s has none (its configuration and `init` "
            "audit entry may be written already); run `linekeeper init` again" % args.data_dir
        ) from exc
    print("Linekeeper is initialised in %s for user %r." % (args.data_dir, args.user))
    print(
        "Recording keys made for %s (%s): a key store backup made now holds them all."
        % (words.lines_named(range(1, n_lines + 1)), keyed)
    )
    if consent.waits_for_notice():
        print(
            "No line is recorded until a consent notice is set (the setup wizard sets one; the "
            "Consent page or `linekeeper config import` can too)."
        )
    return 0


def _unlock(args):
    """``--user``'s key slot opened with ``--password-file``'s password (:func:`_proven`: the
    password checked first, counted with the web login's failures; a disabled account
    refused after it)."""
    from firmware.storage.keystore import KeyStore

    return _proven(args, KeyStore(args.data_dir), by_hash=False)[0]


def _slots(store):
    """The key store's slot names, or none when it cannot say."""
    try:
        return store.slots()
    except (LinekeeperError, OSError):
        return ()


# A password that proves nobody: the same words whether an account (or key slot) has the
# name --user gives or not, so that no refusal tells which names are accounts (as the web
# login's "Wrong user name or password.").
NOT_PROVEN = "--user %s: no such account or wrong password (the password in %s): nothing was done"
# Said of admin, --user's default, which the person may not have typed.
ADMIN_DEFAULT = "(admin is the user when --user is not given: give --user and your own account's name)"


def _prove(args):
    """Check that ``--password-file`` holds ``--user``'s password, for a command that needs
    no key, only to know who runs it: their key slot opens with it or, for an account
    without one (only supervisors hold a key slot: an auditor, an installer), the account's
    password hash in web.db takes it, as the web UI's login checks it (:func:`_proven`).
    Before, only a key slot proved anyone, so an auditor could run none of the auditors'
    commands on a box set up (audit-export, breach-scope, calls, report, year-review).

    A password an installer set and its owner has not changed yet (the web UI asks for a
    new one at their first login) proves nobody: the installer knows it too, and the trail
    would name its owner.

    Returns whether the key slot it opened opens every line (False: none opened).

    :raises WrongPasswordError: neither takes it, or no account has the name
    :raises LinekeeperError: the account is locked out or its guesses wait (the password
        is not checked), is disabled, or its password is still the installer's"""
    from firmware.storage.keystore import KeyStore

    key, account = _proven(args, KeyStore(args.data_dir))
    every_line = key is not None and key.holds_all
    if key is not None:
        key.forget()
    _refuse_installers_password(args.data_dir, account)
    return every_line


def _proven(args, store, password=None, by_hash=True, sweep=True):
    """``(key, account)``: ``--user``'s key slot in ``store`` opened with ``password`` (by
    default ``--password-file``'s), and their web UI account (a :class:`web.accounts.User`,
    or None: no account has the name). The one check of a password on the command line,
    made before anything of the account is said: that it is one, its roles, that it is
    disabled. Before, `export`, `sar` and `hat-replaced` said "is not a supervisor" and
    every command "is disabled" before the password was checked, to anyone who typed the
    name. With ``by_hash``, an account without a key slot (only supervisors hold one) is
    proven by its password hash in web.db, as the web login checks it; ``key`` is then None.

    A name no account has and a wrong password are refused in the same words
    (:data:`NOT_PROVEN`) after the same work (a stand-in key slot and hash): the refusal
    tells nobody which names are accounts, nor their roles, nor whether they are disabled.
    On a box set up, the try is counted with the web login's failures and refused unchecked
    while the account is locked out or its guesses wait (:mod:`web.consoleguess`), for any
    name typed, as the web login does; a failure that begins a lockout is audited
    (:func:`_guess_failed`). Once the password is right, a disabled account is refused
    (with ``sweep``, the accounts unused for 90 days are disabled first:
    :func:`_disable_unused`).

    :raises WrongPasswordError: the password proves nobody
    :raises LinekeeperError: locked out or waiting (the password not checked); the account
        is disabled (its password right)"""
    from .errors import WrongPasswordError

    if password is None:
        password = _read_password(args.password_file)
    has_accounts, account = _read_account(args.data_dir, args.user)
    guess = _guess(args.data_dir, args.user) if has_accounts else None
    if guess is not None:
        refusal = guess.refusal()
        if refusal:
            raise LinekeeperError("%s: nothing was done" % refusal)
    key = None
    try:
        try:
            key = store.unlock(args.user, password)
        except WrongPasswordError:
            if not (by_hash and has_accounts and _hash_takes(args.data_dir, args.user, account, password)):
                raise
    except WrongPasswordError:
        if guess is not None:
            _guess_failed(guess, args.data_dir, args.user)
        why = NOT_PROVEN % (args.user, args.password_file)
        if args.user == "admin" and (by_hash or "admin" not in _slots(store)):
            # --user's default, which the person may not have typed: said whether or not an
            # account has the name, so that the words tell nobody which names are accounts
            # (a command that opens a key slot alone says it when no slot has the name).
            why = why.replace(": nothing was done", " " + ADMIN_DEFAULT + ": nothing was done")
        raise WrongPasswordError(why) from None
    if guess is not None:
        guess.succeeded()
    try:
        _refuse_disabled(account)
        if sweep and account is not None and _disable_unused(args.data_dir):
            account = _read_account(args.data_dir, args.user)[1]
            _refuse_disabled(account)
    except BaseException:
        if key is not None:
            key.forget()
        raise
    if guess is not None and account is not None and not _installers_password(args.data_dir, account):
        # The console a place its owner uses (web lockouts do not hold here), once the
        # command has done what it was asked: a refusal after this (its role, its lines)
        # changes nothing (:func:`main`).
        _USED_HERE.append(guess)
    return key, account


_USED_HERE = []  # the password checks to keep the console for, once the command succeeds


def _installers_password(data_dir, account):
    """Whether ``account``'s password is one an installer set (:func:`_refuse_installers_password`
    refuses it; its commands go on in nobody's name)."""
    try:
        _refuse_installers_password(data_dir, account)
    except LinekeeperError:
        return True
    return False


def _guess(data_dir, user):
    """A password typed for ``user`` on ``data_dir``'s box, counted with the web login's
    (:class:`web.consoleguess.Guess`)."""
    from web.consoleguess import Guess

    from .signing import run_dir

    return Guess(data_dir, user, run_dir(), _wall_us)


def _guess_failed(guess, data_dir, user):
    """Count a wrong password typed for ``user`` (:meth:`web.consoleguess.Guess.failed`); one
    that begins or lengthens a lockout is audited as the web login's is: a `login_failed`
    entry by ``anonymous`` of the account (none, and ``no_account``, for a name no account
    has), from the console, with which counters it locked and for how long. The failures a
    lockout refuses are not checked, nor audited one by one. A trail that cannot take the
    entry (a read-only card) is logged; the password is refused all the same."""
    from web.accounts import who_typed
    from web.consoleguess import CONSOLE

    from .box import open_audit

    locked = guess.failed()
    if not locked:
        return
    named = who_typed(user, lambda name: _read_account(data_dir, name)[1])
    target = named.pop("target")
    details = dict(named, address=CONSOLE, via="cli", **locked)
    try:
        with open_audit(data_dir) as audit:
            audit.append("anonymous", "login_failed", target, details, _wall_us())
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        log.warning("a lockout begun on the command line was not audited (%s)", exc)


def _recovery_guess(data_dir, nothing_done=""):
    """A recovery key typed on ``data_dir``'s command line, counted box-wide
    (:func:`web.consoleguess.recovery_guess`), or None (no web.db to count it in).
    ``nothing_done`` is said after a refusal.

    :raises LinekeeperError: wrong recovery keys wait (the key is not checked)"""
    from web.consoleguess import recovery_guess

    from .signing import run_dir

    guess = recovery_guess(data_dir, run_dir(), _wall_us)
    refusal = guess.refusal() if guess is not None else None
    if refusal:
        raise LinekeeperError(refusal + nothing_done)
    return guess


def _recovery_failed(guess, data_dir):
    """Count a wrong recovery key typed on the command line; one that begins or lengthens
    a wait is audited as a lockout on the web is: a `login_failed` entry by ``anonymous``
    (the recovery key is no account's), ``field`` ``recovery key``, from the console, with
    which counter it locked and for how long. A mistyped key is not a guess: not counted."""
    from web.consoleguess import CONSOLE

    from .box import open_audit

    if guess is None:
        return
    locked = guess.failed()
    if not locked:
        return
    details = dict(field="recovery key", address=CONSOLE, via="cli", **locked)
    try:
        with open_audit(data_dir) as audit:
            audit.append("anonymous", "login_failed", None, details, _wall_us())
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        log.warning("a wait for wrong recovery keys on the command line was not audited (%s)", exc)


def _unlock_recovery(data_dir, store, recovery_key):
    """The admin key of ``store`` opened with ``recovery_key``, the try counted box-wide
    (:func:`_recovery_guess`): refused unchecked while wrong keys wait.

    :raises WrongPasswordError: not the box's recovery key (counted), or mistyped (not)
    :raises LinekeeperError: wrong recovery keys wait"""
    from .errors import RecoveryKeyFormatError, WrongPasswordError

    guess = _recovery_guess(data_dir, ": nothing was changed")
    try:
        key = store.unlock_recovery(recovery_key)
    except RecoveryKeyFormatError:
        raise
    except WrongPasswordError:
        _recovery_failed(guess, data_dir)
        raise
    if guess is not None:
        guess.succeeded()
    return key


def _hash_takes(data_dir, user, account, password):
    """Whether ``account`` (a :class:`web.accounts.User` without a key slot, or None) of
    ``user`` takes ``password`` by its hash in ``data_dir``'s web.db, by the web login's
    check. A disabled account's hash (marked) is checked as it was before it was marked:
    the caller refuses it once its password is right.

    One Argon2id check whatever the name, so that a name no account has is refused after
    the same work as a wrong password: checked against another account's hash (of the
    same cost) and refused; a supervisor's (whose key slot alone proves them) against
    their own, and refused."""
    from web.db import DISABLED_MARK
    from web.passwords import check_password

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "web.db"), uri=True)
    try:
        row = db.execute("SELECT pw_hash FROM users WHERE name = ?", (user,)).fetchone()
        if row is None:  # a stand-in: its answer is not taken
            row = db.execute("SELECT pw_hash FROM users ORDER BY name LIMIT 1").fetchone()
    finally:
        db.close()
    if row is None:
        return False
    phc = row[0][len(DISABLED_MARK) :] if row[0].startswith(DISABLED_MARK) else row[0]
    taken = check_password(password, phc)
    return taken and account is not None and not account.needs_key_slot


# Who the audit entries of a command root runs on the box with no account name (``config
# import``, ``keystore backup``): root on the box's console, unless a --user proves who it is.
ROOT_ACTOR = "cli"


def _proven_actor(args, nothing_done, installers_work, every_line=False):
    """The actor of the audit entries of a command that root runs on the box without an
    account (``config import``, ``keystore backup``): :data:`ROOT_ACTOR`, or ``--user``
    once their key slot opens with ``--password-file`` (on a box set up, their account is
    there, enabled, and an installer's: ``installers_work`` says what only an installer
    does, as the web UI has it). A name typed alone proves nothing: the trail would name
    anyone. Before, any proven account was named: an auditor's password put "audrey changed
    the configuration" in the trail, of a role that changes nothing. With ``every_line`` (a
    key store backup), the account must be a supervisor too and its key slot open every line,
    as the Settings page's download asks (web.views.settings.may_back_up).

    :raises LinekeeperError: ``--user`` without ``--password-file``, or the other way round;
        no account of that name, a disabled one, a wrong password, or an account that is
        no installer's (``nothing_done`` is said after why); checked before anything is
        read, written or audited"""
    if args.user is None:
        if args.password_file:
            raise LinekeeperError(
                "--password-file without --user: give the user whose key slot's password it is, "
                "or neither (the audit trail then names %s, root on the box) — %s"
                % (ROOT_ACTOR, nothing_done)
            )
        return ROOT_ACTOR
    if not args.password_file:
        raise LinekeeperError(
            "--user %s must be proven: give --password-file with that user's password, or leave "
            "--user out (the audit trail then names %s, root on the box) — %s"
            % (args.user, ROOT_ACTOR, nothing_done)
        )
    try:
        # The password first: a disabled account is said to be so once it is right.
        opens_all = _prove(args)
        # A key slot's owner proven, whom no account has (said once the password is taken).
        account = _account(args.data_dir, args.user, enabled=False)
    except LinekeeperError as exc:
        # A wrong password's words end "nothing was done" already: said once, as this command says it.
        raise LinekeeperError("%s — %s" % (_why_alone(exc), nothing_done)) from None
    # None: a box not set up, whose key slot's owner is the box's owner.
    if account is not None and "installer" not in account.roles:
        raise LinekeeperError(
            "--user %s is not an installer: only an installer %s (leave --user out and the "
            "audit trail names %s, root on the box) — %s"
            % (args.user, installers_work, ROOT_ACTOR, nothing_done)
        )
    if every_line and account is not None and not ("supervisor" in account.roles and opens_all):
        # The copy's password slots can be guessed offline, with no lockout: the web gives it
        # only to someone who can already open every recording, and --user is named as such.
        raise LinekeeperError(
            "--user %s is not an installer who is also a supervisor with a key slot that opens "
            "every line: only such an installer %s (leave --user out and the audit trail names "
            "%s, root on the box) — %s" % (args.user, installers_work, ROOT_ACTOR, nothing_done)
        )
    return args.user


def _why_alone(refusal):
    """The ``refusal``'s words without their own "nothing was done", for a command that says
    what was not done before them ("the calls were not printed: ...") or after them."""
    return re.sub(r":? nothing was done\.?$", "", str(refusal).rstrip("."))


NO_ACCOUNT = "%s has no account on this box"
# A disabled account (web.inactive: unused for 90 days, or by an installer) is refused
# here as at the web login: its key slot's password opens nothing from the command line.
DISABLED = "account %s is disabled (%s): an installer can enable it on the Users page"


def _read_account(data_dir, user):
    """``(has_accounts, account)``: whether ``data_dir``'s web.db has any account, and
    ``user``'s (a :class:`web.accounts.User`), or None. A web.db from a release before
    accounts could be disabled (not opened by the web UI since) has them all enabled."""
    from web.accounts import User

    web_db = os.path.join(data_dir, "web.db")
    if not os.path.exists(web_db):
        return False, None
    try:
        db = sqlite3.connect("file:%s?mode=ro" % web_db, uri=True)
        db.row_factory = sqlite3.Row
        try:
            if db.execute("SELECT count(*) FROM users").fetchone()[0] == 0:
                return False, None
            row = db.execute("SELECT * FROM users WHERE name = ?", (user,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        # A damaged web.db must not stop the commands that recover a box (keystore restore,
        # hat-replaced, rekey, verify, repair): the key slot's password is checked all the same.
        print(
            "linekeeper: warning: %s cannot be read (%s): --user %s's lockout and whether the "
            "account is disabled are not checked, only its key slot's password" % (web_db, exc, user),
            file=sys.stderr,
        )
        return False, None
    if row is None:
        return True, None
    have = row.keys()
    return True, User(
        user,
        frozenset(r for r in row["roles"].split(",") if r),
        tuple(sorted(int(x) for x in row["lines"].split(",") if x)),
        must_change=row["must_change"] if "must_change" in have else "",
        disabled_us=row["disabled_us"] if "disabled_us" in have else None,
        disabled_why=row["disabled_why"] if "disabled_why" in have else "",
    )


def _disable_unused(data_dir):
    """Disable the accounts unused for 90 days before a key slot's password is checked, as
    the web UI's login does, by its rule, clock guard and code
    (:func:`web.inactive.disable_accounts`): each audited (``account_disabled``, by
    ``system``) before web.db says so. The web UI may not be running, or not have swept
    yet: an account 91 days unused opened its key slot here until it had. The web UI ends
    their sessions at their next request. Returns the names disabled.

    Its clock guard, read here as the web UI reads it while the recorder does not answer
    (:func:`web.inactive.judged_apart`): the kernel's word that the clock is synchronised
    (the recorder's, on a box), and the retention clock guard's state in calls.db (a jump it
    holds, or no sweep passed yet, disables nothing; the days are counted to the last time
    a sweep passed it, and on from it by the kernel's boot clock in the same boot, which no
    step of the wall clock moves: the recorder stopped, no sweep passes).

    :raises LinekeeperError: web.db, calls.db or the audit trail could not be read or
        written: nothing is opened by a check that could not be made"""
    from web import inactive
    from web.accounts import Accounts
    from web.db import WebDb

    from .box import open_audit

    if not os.path.exists(os.path.join(data_dir, "web.db")):
        return []  # a box not set up: no accounts
    try:
        held, counted_to_us = inactive.judged_apart(data_dir, _wall_us())
        if held is not None:
            return []  # (the web UI's Users page says why they wait)
        web_db = WebDb(os.path.join(data_dir, "web.db"))
        try:
            with open_audit(data_dir) as audit:
                return inactive.disable_accounts(
                    web_db, Accounts(web_db, _wall_us), audit, _wall_us, counted_to_us, lambda: held
                )
        finally:
            web_db.close()
    except (OSError, sqlite3.Error) as exc:  # (StorageError too)
        raise LinekeeperError(
            "the accounts unused for %d days could not be checked: %s" % (inactive.UNUSED_DAYS, exc)
        ) from None


def _account(data_dir, user, enabled=True):
    """``user``'s web UI account (a :class:`web.accounts.User`), or None on a box that has
    none yet: initialised with `linekeeper init` and not set up, the key slot's owner is the
    box's owner. Asked once ``user``'s password is taken (:func:`_proven`), or for who an
    entry names: no refusal here tells an unproven name what it is.

    :raises LinekeeperError: the box has accounts, none of them ``user``'s; or ``user``'s
        is disabled (unless ``enabled`` is False: who an entry names)
    """
    has_accounts, account = _read_account(data_dir, user)
    if not has_accounts:
        return None
    if account is None:
        raise LinekeeperError(_no_account_words(user))
    if enabled:
        _refuse_disabled(account)
        if _disable_unused(data_dir):
            account = _read_account(data_dir, user)[1]
            _refuse_disabled(account)
    return account


def _no_account_words(user):
    """:data:`NO_ACCOUNT` for ``user``; for admin, --user's default, that it is the default
    (the person may not have typed it) and to give their own account's name."""
    why = NO_ACCOUNT % user
    if user == "admin":
        why += " " + ADMIN_DEFAULT
    return why


def _refuse_disabled(account):
    """:raises LinekeeperError: ``account`` (a :class:`web.accounts.User`, or None) is disabled"""
    if account is not None and account.disabled_us is not None:
        raise LinekeeperError(DISABLED % (account.name, account.disabled_why))


# What a refusal of a password an installer set adds for the commands the recovery key runs too.
RECOVERY_KEY_TOO = " (or give --recovery-key-file instead)"


def _refuse_installers_password(data_dir, account, instead=""):
    """A password an installer set and its owner has not changed yet (the web UI asks for a
    new one at their first login) proves nobody: the installer knows it too, and the trail
    would name its owner. Checked once the password was taken, by :func:`_prove` and by the
    commands that open ``--user``'s key slot to act in their name (export, sar, rekey,
    hat-replaced, keystore restore; ``instead`` is said after what to do). So is one
    an installer set whose change a cut stopped after the key slot was written: web.db's
    account does not say it yet (its hash waits for the owner's next web login,
    :mod:`web.pwchange`), but the slot opens with it.

    :raises LinekeeperError: ``account`` (a :class:`web.accounts.User`, or None) has it, or
        a change of its password cut short could not be read"""
    if account is None:
        return
    if account.must_change == "set_by_other" or _installers_change_cut(data_dir, account.name):
        raise LinekeeperError(
            "--user %s still has the password an installer set: %s logs in to the web UI once "
            "to choose their own, then runs this again%s: nothing was done"
            % (account.name, account.name, instead)
        )


def _restore_refuses_installers_password(data_dir, account):
    """:func:`_refuse_installers_password` for `keystore restore`, in its words: each of its
    refusals ends "nothing was changed"."""
    try:
        _refuse_installers_password(data_dir, account, RECOVERY_KEY_TOO)
    except LinekeeperError as exc:
        said = str(exc)
        if said.endswith(": nothing was done"):
            said = said[: -len("nothing was done")] + "nothing was changed"
        else:  # a cut change of the password whose note cannot be read here
            said += " — nothing was changed"
        raise LinekeeperError(said) from None


def _installers_change_cut(data_dir, user):
    """Whether ``user``'s key slot holds a password an installer set that web.db's account
    does not say yet: a change by another (``must_change`` ``set_by_other``) that a cut
    stopped after the slot was written (its note, :mod:`web.pwchange`, is kept until the
    owner's next web login finishes it).

    :raises LinekeeperError: there is such a note, and it cannot be read here (sealed, the
        storage key out of reach)"""
    import json

    from web import intent, pwchange

    from .signing import run_dir
    from .storage.fieldseal import FieldSealError, load_field_cipher, opener
    from .storage.keystore import KeyStore

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "web.db"), uri=True)
    try:
        # A web.db the web UI never opened (made by hand, by a test) may have no site table.
        row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'site'").fetchone()
        if row is not None:
            row = db.execute("SELECT value FROM site WHERE key = ?", (pwchange.PREFIX + user,)).fetchone()
    finally:
        db.close()
    if row is None:
        return False
    try:
        cipher = load_field_cipher(data_dir, run_dir=run_dir(), create=False)
        note = json.loads(opener(cipher)(row[0], intent.NOTE_FIELD))
    except (FieldSealError, ValueError):
        raise LinekeeperError(
            "a change of --user %s's password was cut short, and its note cannot be read here: %s "
            "logs in to the web UI once to finish it, then runs this again: nothing was done" % (user, user)
        ) from None
    store = KeyStore(data_dir)
    slot_now = store.slot_fingerprint(user) if store.is_initialised else None
    return note.get("must_change") == "set_by_other" and slot_now != note["slot_before"]


def _enabled_slot(data_dir, user):
    """Refuse ``user``'s key slot when their web UI account is disabled (a slot with no
    account, on a box not set up or the recovery's, is as before).

    :raises LinekeeperError: the account is disabled (unused for 90 days:
        :func:`_disable_unused` disables it first)"""
    account = _read_account(data_dir, user)[1]
    _refuse_disabled(account)
    if account is not None and _disable_unused(data_dir):
        _refuse_disabled(_read_account(data_dir, user)[1])


def _export_refusal(data_dir, user, call_id, account):
    """Why ``user``, whose password is taken, may not export call ``call_id``, or None.

    Once the box is set up, the web UI's accounts say who may hear what: only a
    supervisor (``account``), and only on the lines granted to them, as on the web. A box
    initialised with `linekeeper init` and not set up yet has no accounts: the key slot's
    owner is the box's owner. A key slot's owner whom no account has on a box set up may
    not either.
    """
    has_accounts, _ = _read_account(data_dir, user)
    if not has_accounts:
        return None
    if account is None:
        return _no_account_words(user)
    if not account.has("supervisor"):
        return "%s is not a supervisor: only supervisors hear or export recordings" % user
    calls = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "calls.db"), uri=True)
    try:
        call = calls.execute("SELECT line FROM calls WHERE id = ?", (call_id,)).fetchone()
    finally:
        calls.close()
    if call is None or call[0] not in account.lines:
        # As on the web: a call on a line not granted looks like one that does not exist.
        return "call %d has no recording" % call_id
    return None


def cmd_export(args):
    """Export one call's recording, audited (refusals too).

    Refused, with nothing written, when the user may not hear the call (not
    a supervisor, or not on its line), the password is wrong, the recording
    fails any check ``verify`` makes, or the audit trail is damaged (an
    export that cannot be audited reliably is not made).
    """
    from firmware.keybackup import keys_lost
    from firmware.recording.store import RecordingStore
    from firmware.storage.keystore import KeyStore

    from . import words
    from .box import open_audit
    from .datadir import storage_error
    from .handover import box_keys
    from .manifest import manifest_path
    from .signing import device_signer, read_public_record

    _call_log(args.data_dir)
    # Before the export is audited (not an entry, then a refusal); neither the recording nor
    # its manifest replaces a file (an earlier export's, which its audit entry names).
    _check_new_file(args.out, "an export")
    # Which of the two its recording takes (.ogg only if recorded so) is said once it is found.
    _check_file_name(args.out, (".wav", ".ogg"), "an export", "--out")
    _check_new_file(manifest_path(args.out), "an export's manifest")
    reason = _export_reason(args.reason)
    signer = device_signer(args.data_dir)
    record = read_public_record(args.data_dir)
    store = RecordingStore(args.data_dir, readonly=True)
    try:
        audit = open_audit(args.data_dir, signer)
        # A recording sealed before a HAT was replaced holds by the key handed over.
        store.verify_key = box_keys(args.data_dir, record and record["public_key"], audit)
        store.keys_lost_from = lambda: keys_lost(audit)
    except (OSError, sqlite3.Error) as exc:
        store.close()
        raise LinekeeperError(
            "call %d not exported: it could not be audited (%s)"
            % (args.call_id, storage_error(exc, "audit trail"))
        ) from None
    target = "call:%d" % args.call_id
    key = row = None
    audited = []

    def audit_it():
        audit.append(args.user, "export", target, entry, _wall_us())
        audited.append(True)

    try:
        try:
            broken = audit.verify()
            if broken:
                raise LinekeeperError(
                    "the audit trail is damaged (%s): exports are refused until it has been "
                    "looked into; `linekeeper verify` lists every problem" % "; ".join(broken)
                )
            # The password first: no refusal says what an account is before it is taken.
            key, account = _proven(args, KeyStore(args.data_dir))
            refusal = _export_refusal(args.data_dir, args.user, args.call_id, account)
            if refusal:
                raise LinekeeperError(refusal)
            _refuse_installers_password(args.data_dir, account)
            row = store.for_call(args.call_id)
            if row is None or row["state"] == "deleted":
                raise LinekeeperError(
                    "call %d has no recording%s" % (args.call_id, _deleted_why(args.data_dir, args.call_id))
                )
            entry = {
                "recording": row["id"],
                "file": os.path.basename(args.out),
                "state": row["state"],
                "reason": reason,
            }
            try:
                # Audited once the audio is checked and signed, before any of it is written:
                # a cut part way through leaves the entry, never a file the trail does not show.
                _export_signed(store, signer, row, key, args, audit_it)
            except OSError as exc:
                raise LinekeeperError("cannot write %s: %s" % (args.out, exc.strerror or exc)) from None
        except LinekeeperError as exc:
            if isinstance(exc, _ExportFailed):
                # Its entry's details again with what failed: the trail's readers (the breach
                # scope, the reports) pair the two and count no copy taken, unless one was left.
                details = dict(entry, failed=exc.failed)
                if exc.left:
                    details["left"] = os.path.basename(args.out)
                actor = args.user  # after the password opened the key slot
            else:
                actor, named, why = _refused_by(args.data_dir, args.user, str(exc))
                details = dict({"refused": why, "file": os.path.basename(args.out)}, **named)
                if row is not None:
                    details["recording"] = row["id"]
            audit.append(actor, "export", target, details, _wall_us())
            raise LinekeeperError("call %d not exported: %s" % (args.call_id, exc)) from exc
        except KeyboardInterrupt as exc:
            unaudited = None
            if isinstance(exc, _ExportStopped):
                # As a failure's (above): the trail's readers pair it with its export and
                # count no copy taken, unless the recording's file was left.
                details = dict(entry, failed=exc.failed)
                if exc.left:
                    details["left"] = os.path.basename(args.out)
                try:
                    audit.append(args.user, "export", target, details, _wall_us())
                except (OSError, sqlite3.Error) as failed:
                    unaudited = storage_error(failed, "audit trail")
            raise Stopped(_export_stopped(args.out, bool(audited), exc, unaudited)) from exc
    finally:
        if key is not None:
            key.forget()
        store.close()
        audit.close()
    # The recording's state in the call page's words ("Partly recorded (the box stopped
    # during the call)"), not its code.
    print("exported call %d to %s: %s" % (args.call_id, args.out, words.say("recording", row["state"])))
    return 0


def _export_reason(text):
    """``--reason`` as the web's export form takes it (:func:`firmware.typed.given_reason`):
    5 to 500 characters, no control characters. :raises LinekeeperError: otherwise (before
    anything is audited)"""
    from firmware.typed import given_reason

    reason, problem = given_reason(
        str(text),
        'say why the recording is exported in 5 to 500 characters (for example "complaint '
        'ref 1234"); it goes in the audit trail',
    )
    if problem:
        raise LinekeeperError("--reason: %s" % problem)
    return reason


def cmd_erase_calls(args):
    """Erase every call of a person's numbers (``--number``, again for each) on ``--user``'s
    lines, at their request (the right to erasure): found as ``linekeeper sar`` finds them,
    counted first. Without ``--confirm`` it prints what it would do (how many calls and
    recordings, the calls on legal hold or still being recorded, skipped) and the code that
    confirms exactly that; with it, the running recorder erases each call as the call's
    page erases it (its ``erase`` with the caller's details, or ``erase_details``), each
    audited and deletion-logged, printing how far it is. Refused whole, nothing erased, when
    the calls found have changed since the code was printed. Only a supervisor erases.

    :raises LinekeeperError: refused (who may, a number the search does not take, a
        reason not given, no recorder running, a code that no longer matches)
    """
    from firmware.storage.fieldseal import load_field_cipher
    from firmware.storage.keystore import KeyStore

    from .config import load_config
    from .control import ControlClient, ControlError, RecorderUnavailable, socket_path
    from .datadir import connect_readonly
    from .policy.callmeta import held_since
    from .sar import check_number
    from .signing import run_dir
    from .subjecterase import SubjectEraseError, carry_out, plan
    from .typed import given_reason

    nothing = "nothing was erased"
    calls_db = _call_log(args.data_dir, " (run the box with --data-dir %s first)" % args.data_dir)
    reason, problem = given_reason(
        str(args.reason),
        'say why the calls are erased in 5 to 500 characters (for example "erasure request #12"); '
        "it goes in the audit trail",
    )
    if problem:
        raise LinekeeperError("--reason: %s; %s" % (problem, nothing))
    for number in args.numbers:
        try:
            check_number(number)
        except LinekeeperError as exc:
            raise LinekeeperError("--number %s: %s; %s" % (number[:40], exc, nothing)) from None
    # The password first: no refusal says what an account is before it is taken.
    _, account = _proven(args, KeyStore(args.data_dir))
    if account is None and _read_account(args.data_dir, args.user)[0]:
        raise LinekeeperError(_no_account_words(args.user))
    if account is not None and not account.has("supervisor"):
        raise LinekeeperError(
            "%s is not a supervisor: only supervisors erase calls; %s" % (args.user, nothing)
        )
    _refuse_installers_password(args.data_dir, account)
    lines = None if account is None else set(account.lines)
    if lines is not None and not lines:
        raise LinekeeperError("no lines are granted to %s: ask an installer; %s" % (args.user, nothing))
    config = load_config(args.data_dir)
    db = connect_readonly(calls_db)
    try:
        holds = held_since(db)
    finally:
        db.close()
    try:
        planned = plan(
            calls_db,
            list(dict.fromkeys(args.numbers)),
            lines=lines,
            holds=holds,
            country=config.country,
            cipher=load_field_cipher(args.data_dir, run_dir=run_dir(), create=False),
            outside=config.policy.rules.outside_lines(),
        )
    except SubjectEraseError as exc:
        raise LinekeeperError("%s; %s" % (exc, nothing)) from None
    print(planned.words())
    if planned.to_erase:
        print("Calls to erase: %s" % ", ".join(map(str, planned.to_erase)))
    if args.confirm is None:
        if planned.to_erase:
            print(
                "Nothing was erased. To erase these calls (they cannot be brought back), run the same "
                "command again with --confirm %s" % planned.token
            )
        return 0
    if not planned.to_erase:
        raise LinekeeperError("there is no call to erase; %s" % nothing)
    client = ControlClient(socket_path(args.data_dir))
    web_details = _WebDetails(args.data_dir, args.user)
    try:
        try:
            client.call("hello", protocol=1)
        except RecorderUnavailable:
            raise LinekeeperError(
                "the recorder is not running on %s: it erases the calls; start it and try again; %s"
                % (args.data_dir, nothing)
            ) from None

        def erase(call_id):
            gone = client.call("erase", call_id=call_id, actor=args.user, reason=reason, details=True)
            web_details.erase(call_id, planned.lines.get(call_id))
            return gone

        def erase_details(call_id):
            client.call("erase_details", call_id=call_id, actor=args.user, reason=reason)
            web_details.erase(call_id, planned.lines.get(call_id))

        done_so_far = [0]

        def progress(done, total):
            done_so_far[0] = done
            print("erased %d of %d calls" % (done, total), file=sys.stderr, flush=True)

        try:
            result = carry_out(
                planned,
                args.confirm,
                erase=erase,
                erase_details=erase_details,
                progress=progress,
                refused=(ControlError,),
            )
        except SubjectEraseError as exc:
            raise LinekeeperError(str(exc)) from None
        except RecorderUnavailable:
            raise LinekeeperError(
                "the recorder stopped answering after %d of %d calls: once it runs again, run this "
                "command without --confirm to see what is left" % (done_so_far[0], len(planned.to_erase))
            ) from None
    finally:
        client.close()
        web_details.close()
    print(result.words())
    return 1 if result.refused else 0


class _WebDetails:
    """The caller's details the web UI holds of a call, erased as the call's page erases
    them (web.views.calls): the text of its notes and the names it was corrected to, each
    audited (``call_note``, with ``notes_erased`` or ``names_erased``) before web.db is
    written. ``linekeeper erase-calls`` had the recorder erase the recordings and the call
    log's number and name, and left these: a note naming the caller, or the name a caller
    asked to be corrected to, outlived their erasure. A box whose web UI never ran has no
    web.db, and nothing of the kind."""

    def __init__(self, data_dir, actor):
        self._data_dir, self._actor = data_dir, actor
        self._parts = None

    def _open(self):
        if self._parts is None:
            path = os.path.join(self._data_dir, "web.db")
            if not os.path.exists(path):
                self._parts = ()
                return self._parts
            from firmware.storage.fieldseal import load_field_cipher
            from web.corrections import NameCorrections
            from web.db import WebDb
            from web.phonebook import CallNotes

            from .box import open_audit
            from .signing import run_dir

            cipher = load_field_cipher(self._data_dir, run_dir=run_dir(), create=False)
            db = WebDb(path)
            self._parts = (
                db,
                open_audit(self._data_dir),
                NameCorrections(db, _wall_us, cipher),
                CallNotes(db, _wall_us, cipher),
            )
        return self._parts

    def erase(self, call_id, line):
        """Erase call ``call_id``'s corrected names and notes' text (on ``line``)."""
        parts = self._open()
        if not parts:
            return
        db, audit, corrections, notes = parts
        from firmware.policy.deletions import ERASURE

        @contextlib.contextmanager
        def audited(key, n):
            details = {"line": line, "request": ERASURE, key: n, "via": "cli"}
            audit.append(self._actor, "call_note", str(call_id), details, _wall_us())
            try:
                with db.tx() as conn:
                    yield conn
            except Exception as exc:
                failed = dict(details, failed=str(exc) or type(exc).__name__)
                audit.append(self._actor, "call_note", str(call_id), failed, _wall_us())
                raise

        corrections.erase_of_call(call_id, audited=lambda n: audited("names_erased", n))
        notes.erase_of_call(call_id, audited=lambda n: audited("notes_erased", n))

    def close(self):
        if self._parts:
            db, audit = self._parts[:2]
            audit.close()
            db.close()


def _notes_and_names(data_dir, country):
    """The web UI's notes on calls and phonebook names, for a subject access bundle
    (:func:`firmware.sar.notes_and_names`); None on a box whose web UI never ran."""
    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):
        return None
    from firmware.sar import notes_and_names
    from firmware.storage.fieldseal import load_field_cipher
    from web.corrections import NameCorrections
    from web.db import WebDb
    from web.phonebook import CallNotes, Phonebook

    from .signing import run_dir

    cipher = load_field_cipher(data_dir, run_dir=run_dir(), create=False)
    db = WebDb(path)  # read while the bundle is made; closed with the process
    return notes_and_names(
        CallNotes(db, _wall_us, cipher),
        Phonebook(db, _wall_us, cipher),
        country,
        NameCorrections(db, _wall_us, cipher),
    )


def _letter_facts(data_dir, config):
    """The :class:`firmware.sarletter.LetterFacts` of a subject access bundle's cover letter,
    from the web UI's site settings (the organisation, its purpose) and the configuration."""
    from firmware.policy.retention import retention_words
    from firmware.sarletter import LetterFacts

    facts = LetterFacts(
        retention=retention_words(config.policy.retention),
        country=config.country,
        # As the web UI's letter: the person is told their recordings are copied there too.
        archived=config.archive.enabled,
    )
    from firmware.configio import site_settings

    site = site_settings(data_dir)
    if site is None:
        return facts
    return dataclasses.replace(
        facts,
        organisation=site.organisation,
        ico_number=site.ico_number,
        purpose=site.purpose,
        zone=site.time_zone,
        line_names={x.line: x.name for x in site.lines},
        lawful_basis=site.lawful_basis,
        dp_contact=site.dp_contact,
        dp_address=site.dp_address,
        dp_email=site.dp_email,
        dp_phone=site.dp_phone,
    )


class Progress:
    """A long command's progress on stderr, ``progress(done, total)``: ``text % (done, total)``.

    On a terminal, one line written over in place (a carriage return) at each step, ended
    at the last (or by :meth:`end`, when the command stops short). Anywhere else (a file,
    a pipe, the journal of a service), where a carriage return does not go back, whole
    lines: at each tenth of the way and at the last, as ``rekey`` prints its own.
    ``linekeeper repair`` and a subject access bundle show theirs so.

    :param stream: where to (None: ``sys.stderr`` as it is when written)
    """

    def __init__(self, text, stream=None):
        self.text = text
        self.stream = stream
        self._open = False  # a terminal's line written over and not yet ended

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def __call__(self, done, total, *_):
        if not total:
            return
        out = self._out()
        line = self.text % (done, total)
        if _isatty(out):
            self._open = done < total
            print("\r" + line, end="" if self._open else "\n", file=out, flush=True)
        elif done % max(1, total // 10) == 0 or done == total:
            print(line, file=out, flush=True)

    def end(self):
        """End a terminal's line left open (the command stopped before its last step)."""
        if self._open:
            self._open = False
            print(file=self._out(), flush=True)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # (closed)
        return False


def cmd_sar(args):
    """Answer a subject access request: a bundle of a number's calls, logged and audited.
    A request refused (bad input, not a supervisor, a copy given before they may not see, a
    letter not read or changed: anything refused before any of the bundle was written) is
    logged and audited as the web form's is (:func:`firmware.sar.refusal_audited`)."""
    begun = []  # the bundle's spool, once made
    try:
        return _sar(args, begun)
    except KeyboardInterrupt as exc:
        if begun or isinstance(exc, Stopped):  # what it began is said by _sar
            raise
        raise Stopped("sar stopped before its bundle was begun; nothing was released") from exc
    except LinekeeperError as exc:
        if not (begun and (begun[0].written or begun[0].whole)):
            _sar_refused(args, str(exc))
        raise


def _sar_refused(args, why):
    """Log and audit ``linekeeper sar``'s refusal, ``why``, by ``--user``: on a box whose
    audit trail there is (a wrong --data-dir has none to write to: logged only).

    Most refusals come before the key slot's password is checked: ``--user`` is named as
    typed only when an account has it (a box not set up: a key slot), by the rule of a failed
    login's entry (:func:`web.accounts.who_typed`); otherwise the entry's actor is
    ``anonymous`` and it says no account had the name (``no_account``), nor does its reason."""
    from firmware.sar import log, refusal_audited

    from .box import open_audit
    from .logwhere import SAID

    named = _typed_user(args.data_dir, args.user)
    actor = named.pop("actor") or "anonymous"
    if named.get("no_account"):
        why = _unnamed(why, args.user)
    if not os.path.exists(os.path.join(args.data_dir, "audit.db")):
        log.warning("subject access release by %s refused: %s", actor, why, extra=SAID)
        return
    try:
        audit = open_audit(args.data_dir)
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        log.error("subject access release by %s refused, and not audited (%s): %s", actor, exc, why)
        return
    try:
        refusal_audited(
            lambda action, details: audit.append(actor, action, None, dict(details, **named), _wall_us()),
            actor,
            why,
        )
    finally:
        audit.close()


def _typed_user(data_dir, user):
    """``{"actor": user}`` when an account has the name ``user`` typed (on a box not set up,
    which has none: a key slot), else ``{"actor": None, "no_account": True}``: the details
    of an entry written before its password was checked (:func:`web.accounts.who_typed`).
    Accounts that cannot be read keep no name."""
    from firmware.storage.keystore import KeyStore
    from web.accounts import who_typed

    def account_of(name):
        try:
            account = _account(data_dir, name, enabled=False)  # a disabled one is named
            if account is None:  # no accounts yet: the key slots' owners are the box's
                return name if name in KeyStore(data_dir).slots() else None
            return account
        except (LinekeeperError, OSError, sqlite3.Error):
            return None

    return who_typed(user, account_of, "actor")


def _refused_by(data_dir, user, why):
    """``(actor, details, why)`` for the audit entry of a refusal of ``user``'s command
    (export, audit-export, breach-scope, report, year-review), written whether or not their
    password was checked: ``user`` only when an account has the name (a box not set up: a
    key slot), else ``anonymous`` and ``{"no_account": True}`` in the details, by the rule of
    a failed login's entry (:func:`_typed_user`); a name typed is never the actor of an
    entry as if it were someone's, nor kept when it may be a password typed in its place.
    ``why``, the refusal, does not repeat a name no account has."""
    named = _typed_user(data_dir, user)
    actor = named.pop("actor") or "anonymous"
    if named.get("no_account"):
        why = _unnamed(why, user)
    return actor, named, why


def _unnamed(why, user):
    """A refusal's reason ``why`` without the name ``user`` typed, which no account has."""
    if why.startswith(NO_ACCOUNT % user) or why.startswith(NOT_PROVEN.split(" (")[0] % user):
        # The trail says what it said: no account has the name (auditors may know it).
        return NO_ACCOUNT % "--user"
    if user and user in why:  # a wrong password's words name it (`--user NAME`)
        return why.replace("--user %s" % user, "--user").replace(user, "--user")
    return why


def _sar(args, begun):
    """:func:`cmd_sar`; ``begun`` is given the bundle's spool once it is made."""
    from firmware.calls.calllog import iso_ms
    from firmware.keybackup import keys_lost
    from firmware.recording.store import RecordingStore
    from firmware.storage.fieldseal import load_field_cipher
    from firmware.storage.keystore import KeyStore

    from .box import open_audit
    from .config import load_config
    from .datadir import site_zone
    from .reports.period import parse_period
    from .sar import (
        LetterChanged,
        bundle_letter,
        check_release,
        earlier_releases,
        find_calls,
        letter_copies,
        letter_digest,
        parse_redaction,
        parse_withholding,
        preview_details,
        refuse_hidden,
        release,
        search_bounds,
        search_details,
        search_lines,
    )
    from .sarbundle import FileSpool
    from .signing import run_dir

    calls_db = os.path.join(args.data_dir, "calls.db")
    if not os.path.exists(calls_db):
        raise LinekeeperError("no call log in %s" % args.data_dir)
    if (args.first is None) != (args.last is None):
        raise LinekeeperError("give both --from and --to, or neither")
    if args.letter_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", args.letter_sha256):
        raise LinekeeperError(
            "--letter-sha256 %s is not a letter's SHA-256: give the 64 hex digits --letter printed, "
            "or read the letter again with --letter. Nothing was released" % args.letter_sha256[:80]
        )
    # The release is logged before the bundle is written: a file that cannot be written
    # is found now, before it leaves a disclosure on record that never happened. Nor is one
    # replaced: an earlier release's entry names it, and its hash.
    _check_new_file(args.out, "a subject access bundle")
    _check_bundle_name(args.out, encrypted=bool(args.bundle_password_file))
    redactions = [parse_redaction(r) for r in args.redact or ()]
    withheld = parse_withholding(args.withhold or ())
    config = load_config(args.data_dir)
    # Days, and the times of day that narrow them, in the box's zone, as the web form's are.
    period = parse_period(args.first, args.last, site_zone(args.data_dir)) if args.first else None
    since_us, until_us = search_bounds(
        period, args.first_time or "", args.last_time or "", names=("--from", "--to")
    )
    # The password first: no refusal says what an account is before it is taken (nor, by a
    # --line refused, which lines it holds). Then, as on the web UI's page: only a
    # supervisor releases (a box not set up: the key slot's owner).
    key, account = _proven(args, KeyStore(args.data_dir))
    try:
        if account is None and _read_account(args.data_dir, args.user)[0]:
            raise LinekeeperError(_no_account_words(args.user))
        if account is not None and not account.has("supervisor"):
            raise LinekeeperError(
                "%s is not a supervisor: only supervisors answer subject access requests" % args.user
            )
        _refuse_installers_password(args.data_dir, account)
        # A search by line: those of --user's lines, as the web form's (every call on them).
        granted = None if account is None else set(account.lines)
        lines = search_lines(args.lines or (), granted, None, name="--line")
        calls = find_calls(
            calls_db,
            number=args.number,
            country=config.country,
            since_us=since_us,
            until_us=until_us,
            # As the web UI's search: the calls on the lines granted to --user.
            lines=granted,
            cipher=load_field_cipher(args.data_dir, run_dir=run_dir(), create=False),
            on_lines=lines,
            outside=config.policy.rules.outside_lines(),
        )
        bundle_password = _read_password(args.bundle_password_file) if args.bundle_password_file else None
        store = RecordingStore(args.data_dir)
        audit = open_audit(args.data_dir)
        store.keys_lost_from = lambda: keys_lost(audit)
    except BaseException:
        if key is not None:
            key.forget()
        raise
    try:
        broken = audit.verify()
        if broken:
            raise LinekeeperError(
                "the audit trail is damaged (%s): releases are refused until "
                "it has been looked into" % "; ".join(broken)
            )
        search = {"number": args.number, "from": args.first, "to": args.last}
        search.update({k: v for k, v in (("from_time", args.first_time), ("to_time", args.last_time)) if v})
        if lines:
            search["lines"] = lines
        # The copies given before that the letter lists, said before anything is made (with
        # --earlier, and nothing released): one the person may not be told of is withheld.
        chosen, narrowed, asked = check_release(
            actor=args.user,
            requester=args.requester,
            recipient=args.recipient,
            reason=args.reason,
            calls=calls,
            search=search,
            bundle_password=bundle_password,
            redactions=redactions,
            only=args.calls,
            withheld=withheld,
            whose=args.whose,
        )
        earlier = _earlier_seen(
            args.data_dir,
            earlier_releases(args.data_dir, audit, chosen, narrowed, country=config.country),
            account,
        )
        copies = letter_copies(earlier, withheld)
        if args.earlier:
            # A look at the person's calls and who was given copies of them: audited before it
            # is printed, as the web form's search is (one entry).
            audit.append(
                args.user, "disclosure_search", None, search_details(search, calls, earlier), _wall_us()
            )
            _say_earlier(earlier, withheld, sys.stdout)
            return 0
        _say_earlier(earlier, withheld, sys.stderr)
        # Neither previewed nor released by them: the letter would show who received it.
        refuse_hidden(earlier, iso_ms)
        about = _notes_and_names(args.data_dir, config.country)
        facts = _letter_facts(args.data_dir, config)
        # What --letter shows of the letter, and a release is given back (--letter-sha256):
        # made on time 0, as the letter says when it was made (the release's time).
        digest = letter_digest(
            bundle_letter(store, chosen, asked, redactions, about is not None, facts, 0, copies)
        )
        if args.letter:
            # The letter as the bundle would hold it (made now), read before anything goes:
            # it names who was given copies before. Audited before it is shown, as the web's.
            audit.append(
                args.user, "disclosure_preview", None, preview_details(chosen, copies, withheld), _wall_us()
            )
            sys.stdout.write(
                bundle_letter(store, chosen, asked, redactions, about is not None, facts, _wall_us(), copies)
            )
            print(
                "letter sha256 %s: release this very letter with --letter-sha256 %s" % (digest, digest),
                file=sys.stderr,
            )
            return 0
        if args.letter_sha256 is not None and args.letter_sha256 != digest:
            raise LinekeeperError(_letter_differs(args.letter_sha256))
        if copies and args.letter_sha256 is None:
            # As on the web: a letter naming who was given copies before (a private person's
            # name is theirs) goes only once that very letter was read.
            raise LinekeeperError(
                "the letter names who was given copies of these calls before: read it with --letter "
                "(withhold any copy it should not name), then release with the --letter-sha256 it "
                "prints. Nothing was released"
            )
        # Streamed to a file beside --out, renamed to it once the release is logged: a failure
        # (a recording's check, gpg, a full stick) or an interrupt (Ctrl-C, SIGTERM) leaves no
        # part of it, but for a bundle whose release the trail refused to audit as not made
        # (kept, said).
        spool = FileSpool(args.out, mode=0o600)
        begun.append(spool)
        progress = Progress("bundle: %d/%d recordings written")
        try:
            with _interrupted_by_signals(lambda: spool.whole):
                try:
                    entry, _ = release(
                        args.data_dir,
                        store,
                        audit,
                        key,
                        actor=args.user,
                        requester=args.requester,
                        recipient=args.recipient,
                        reason=args.reason,
                        calls=calls,
                        search=search,
                        bundle_name=os.path.basename(args.out),
                        bundle_password=bundle_password,
                        wall_us=_wall_us(),
                        redactions=redactions,
                        spool=spool,
                        progress=progress,
                        only=args.calls,
                        about=about,
                        facts=facts,
                        withheld=withheld,
                        letter_sha256=args.letter_sha256,
                        whose=args.whose,
                    )
                except LetterChanged:  # a copy given or taken back since the check above
                    raise LinekeeperError(_letter_differs(args.letter_sha256)) from None
        except BaseException as exc:
            progress.end()
            if not spool.whole:
                # Nothing was logged: what was begun goes (release() removes it too; here also
                # on a signal before it began), and the user is told.
                spool.discard()
                said = "the unfinished bundle beside %s was removed: nothing was released" % args.out
                if isinstance(exc, KeyboardInterrupt):
                    # "interrupted (SIGTERM): …" for a signal the block turned into a stop
                    stop = "%s: " % exc if isinstance(exc, _Interrupted) else "sar stopped: "
                    raise Stopped(stop + said, getattr(exc, "signum", signal.SIGINT)) from exc
                if spool.written:
                    print("linekeeper: " + said, file=sys.stderr)
            raise
    finally:
        if key is not None:
            key.forget()
        store.close()
        audit.close()
    print(
        "released %d call(s) to %s (%s); disclosure log entry %d"
        % (
            len(set(args.calls or [c["id"] for c in calls])),
            args.out,
            "encrypted" if bundle_password else "not encrypted",
            entry,
        )  # fmt: skip
    )
    return 0


def _check_bundle_name(path, encrypted):
    """Refuse a bundle's name that does not say what it is (as ``export`` refuses one that is
    not .wav or .ogg): .zip, or .zip.gpg when ``encrypted``, in any case, which the person
    opens by its name (a .zip.gpg with gpg first)."""
    name = os.path.basename(path).lower()
    if encrypted and not name.endswith(".zip.gpg"):
        raise LinekeeperError(
            "--out %s: an encrypted bundle (--bundle-password-file) is a .zip.gpg file; give a "
            "name ending .zip.gpg — nothing was written" % path
        )
    if not encrypted and not name.endswith(".zip"):
        raise LinekeeperError(
            "--out %s: a bundle is a .zip file (.zip.gpg when encrypted, with "
            "--bundle-password-file); give a name ending .zip — nothing was written" % path
        )


def _letter_differs(sha256):
    """What ``linekeeper sar --letter-sha256 SHA256`` says of a letter that is not that one."""
    return (
        "the letter this release would give is not the one whose SHA-256 was given "
        "(--letter-sha256 %s): this release's options are not those --letter was run with (the "
        "search, --call, --redact, --withhold), or a copy of these calls was given or taken back "
        "since. Run --letter again with this release's options, --redact too, read the letter, "
        "and release with the --letter-sha256 it prints. Nothing was released" % sha256
    )


class _Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped ``linekeeper sar`` as it wrote a bundle."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

    def __str__(self):
        return "interrupted (%s)" % signal.Signals(self.signum).name


@contextlib.contextmanager
def _interrupted_by_signals(deferred):
    """SIGINT and SIGTERM raise :class:`_Interrupted` in the block (SIGTERM ended the process
    where it stood, its half-written bundle left beside ``--out``), so that what it began is
    removed; but while ``deferred()`` (the bundle is whole, its release being logged and
    audited: a cut between the two left them disagreeing) the signal waits for the block's
    end, and is then said (the release was made)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    waiting, raised = [], []

    def handler(signum, frame):
        if deferred() or raised:  # (a second one while the first's removal is under way: waits)
            waiting.append(signum)
        else:
            raised.append(signum)
            raise _Interrupted(signum)

    before = {n: signal.signal(n, handler) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for n, old in before.items():
            signal.signal(n, old)
    if waiting and not raised:
        print(
            "linekeeper: %s came as the release was being logged: it was finished first"
            % signal.Signals(waiting[0]).name,
            file=sys.stderr,
        )


def _earlier_seen(data_dir, earlier, account):
    """The copies given before (:func:`firmware.sar.earlier_releases`), each with ``shown``:
    whether ``account`` may see its release (:func:`firmware.sar.release_seen`, as the web
    UI's form has it); every one on a box with no accounts (``account`` None)."""
    from firmware.sar import release_seen

    if account is None:
        return [dict(e, shown=True) for e in earlier]
    ids = sorted({c for e in earlier for c in e["held"]})
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "calls.db"), uri=True)
    try:
        lines = {
            call_id: line
            for at in range(0, len(ids), 500)
            for call_id, line in db.execute(
                "SELECT id, line FROM calls WHERE id IN (%s)" % ",".join("?" * len(ids[at : at + 500])),
                ids[at : at + 500],
            )
        }
    finally:
        db.close()
    return [dict(e, shown=release_seen(e["actor"], e["held"], account, lines.get)) for e in earlier]


def _say_earlier(earlier, withheld, out):
    """The copies given before that a subject access letter lists, a line each (entry, when
    in UTC, to whom, how many calls), and those ``withheld`` from it with their reason; one
    the user may not see (``shown`` false) by when it was given alone."""
    from firmware.calls.calllog import iso_ms
    from firmware.sar import hidden_said

    if not earlier:
        print("the letter lists no copy of these calls given before", file=out)
    for e in earlier:
        if not e["shown"]:
            print("copy given before: %s" % hidden_said(e, iso_ms), file=out)
            continue
        why = withheld.get(e["id"])
        print(
            "copy given before: entry %d, %s, to %s, %d call(s): %s"
            % (
                e["id"],
                iso_ms(e["wall_us"]),
                " ".join(e["recipient"].split()),
                len(e["calls"]),
                "listed in the letter" if why is None else "withheld from the letter (%s)" % why,
            ),
            file=out,
        )
    if not all(e["shown"] for e in earlier):
        print(
            "the letter must name who received each copy given before, and only someone who may "
            "see a copy can judge whether it may be left out: a supervisor of every line its calls "
            "are on makes this release",
            file=out,
        )


def _check_out_file(path):
    """Refuse an output file that cannot be made: a folder, or in a folder that is
    missing or not writable (the write itself may still fail: a full card)."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LinekeeperError("--out %s is a folder: give the name of the file to write" % path)
    if not os.path.isdir(folder):
        raise LinekeeperError("--out %s: there is no folder %s" % (path, folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise LinekeeperError("--out %s: the folder %s cannot be written here" % (path, folder))


def _check_new_file(path, what):
    """Refuse ``path`` for a file that never replaces another (``what``: "a breach scope"),
    or one :func:`_check_out_file` refuses; the message ends "nothing was written". Each
    command that writes a file the box keeps a record of (its audit entry, a disclosure log
    entry's bundle and hash) makes a new one: replaced, the record points at a file that is
    no longer the one it names."""
    if os.path.lexists(path) and not os.path.isdir(path):  # (a folder: said as such below)
        raise LinekeeperError(_there_already(path, what))
    try:
        _check_out_file(path)
    except LinekeeperError as exc:
        raise LinekeeperError("%s — nothing was written" % str(exc).replace("--out ", "", 1)) from None


def _check_file_name(path, endings, what, option=""):
    """Refuse a name for ``what`` ("a breach scope") that does not end with one of
    ``endings`` (".csv"), in any case: as a subject access bundle's (:func:`_check_bundle_name`),
    the name says what the file is, and the person opens it by its name. ``option``: the
    option that gave it ("--out"), when it is one."""
    endings = (endings,) if isinstance(endings, str) else tuple(endings)
    if os.path.basename(path).lower().endswith(endings):
        return
    said = " or ".join(endings)
    raise LinekeeperError(
        "%s%s: %s is a %s file; give a name ending %s — nothing was written"
        % (option and option + " ", path, what, said, said)
    )


_MADE_MEANWHILE = "a file was made there meanwhile"


def _there_already(path, what):
    """The refusal of a file there already at ``path``, for a file that never replaces
    another (``what``: "a breach scope"): at a command's start (:func:`_check_new_file`), or
    at its end, for one made there while the command ran (it is written with
    :func:`firmware.storage.fsutil.write_new` or ``commit_new``, which never replace one)."""
    return "%s is there already: %s never replaces a file; give a new file name — nothing was written" % (
        path,
        what,
    )


def _write_whole(path, write, progress, failed, name, what):
    """Write the new file ``path`` with ``write(spool)`` (a
    :class:`~firmware.sarbundle.FileSpool` beside it) and put it in place once whole. On a
    failure, or a stop (Ctrl-C, a signal), no part of it is left, the ``progress`` line is
    ended and ``failed(why)`` is called (to audit it; ``why`` "stopped" for a stop, then
    raised as :class:`Stopped`, saying so of the command ``name``). A file made at ``path``
    meanwhile is kept, and refused as :func:`_check_new_file` does (``what``: "a breach
    scope").

    :raises LinekeeperError: it could not be read or written (why, and as whom)
    """
    from firmware.sarbundle import FileSpool

    spool = None
    try:
        spool = FileSpool(path)
        write(spool)
        spool.commit()
    except FileExistsError:  # made there while it was written: kept, never replaced
        progress.end()
        spool.discard()
        failed("not written: %s" % _MADE_MEANWHILE)
        raise LinekeeperError(_there_already(path, what)) from None
    except (OSError, LinekeeperError, sqlite3.Error) as exc:
        progress.end()
        said = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        if spool is not None:
            spool.discard()
        failed(said)
        raise LinekeeperError(
            "cannot write %s: %s%s — nothing was left there" % (path, said, _as_whom())
        ) from None
    except BaseException as exc:
        progress.end()
        if spool is not None:
            spool.discard()
        failed("stopped")
        if isinstance(exc, KeyboardInterrupt):
            raise Stopped(
                "%s stopped before %s was whole: none of it was left there, and the audit trail "
                "shows the stop; run it again to make the file" % (name, path)
            ) from exc
        raise


def _deleted_why(data_dir, call_id):
    """Why call ``call_id`` has no recording, from the deletion log: ``": it was deleted on …
    by the retention rule …"``, ``": it was erased on …, on request …"`` or the full card's or
    archive's words (:func:`firmware.policy.deletions.describe`); "" when the log has none."""
    from firmware.calls.calllog import deleted_recordings

    from .datadir import connect_readonly

    db = connect_readonly(os.path.join(data_dir, "calls.db"))
    try:
        gone = deleted_recordings(db, [call_id]).get(call_id)
    finally:
        db.close()
    if gone is None:
        return ""
    from .policy.deletions import describe

    sentence = describe(gone, gone["at"]).rstrip(".")
    if sentence.startswith("Its recording "):
        return ": it " + sentence[len("Its recording ") :]
    return ": " + sentence[0].lower() + sentence[1:]


def _deletion_log_problems(data_dir, audit):
    """The deletion log's chain and audit anchor checked (see firmware.policy.deletions)."""
    from .datadir import connect_readonly
    from .policy import deletions

    db = connect_readonly(os.path.join(data_dir, "calls.db"))
    try:
        if (
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deletion_log'"
            ).fetchone()
            is None
        ):
            # No log: then no sweep may have anchored one either.
            return deletions.verify(_EmptyLog(), audit)
        return deletions.verify(db, audit)
    finally:
        db.close()


class _EmptyLog:
    """A deletion log with no entries (the table was never made, or was dropped)."""

    def execute(self, *_args):
        return self  # its own rows: none

    def __iter__(self):
        return iter(())

    def fetchone(self):
        return None


def _export_stopped(out, audited, stopped=None, unaudited=None):
    """What an export stopped by Ctrl-C left: its entry made (``audited``) or not, and which
    of the recording and its manifest (each written whole, or not at all) are there.
    ``stopped``: the :class:`KeyboardInterrupt`, an :class:`_ExportStopped` when the stop
    came as the files were written (its failure audited, unless ``unaudited`` says why not)."""
    from .manifest import manifest_path

    if not audited:
        return "export stopped before anything was written or audited; nothing was changed"
    if isinstance(stopped, _ExportStopped):
        trail = (
            "the trail shows the export failed"
            if unaudited is None
            else "its failure could not be audited (%s): the trail shows the export alone" % unaudited
        )
        if stopped.left:
            return (
                "export stopped after %s was written, before its signed manifest; it could not be "
                "removed (%s): delete it and export the call again; %s" % (out, stopped.kept, trail)
            )
        return "export stopped before %s was written whole; nothing was left there; %s" % (out, trail)
    there = [p for p in (out, manifest_path(out)) if os.path.exists(p)]
    if len(there) == 2:
        return "export stopped once %s and its manifest were written (audited)" % out
    return (
        "export stopped after its audit entry was made, before %s was written whole (%s): export "
        "the call again; the trail shows both exports"
        % (out, "the recording is there without its signed manifest" if there else "none of it is there")
    )


def _export_signed(store, signer, row, key, args, audited):
    """Write the export and its signed manifest beside it (the manifest last), calling
    ``audited()`` once both are made in memory and before anything is written.

    :raises _ExportFailed: a file could not be written once audited (the recording is
        removed again when its manifest cannot be written)
    :raises _ExportStopped: Ctrl-C as its entry was appended (delivered once it is made)
        or as they were written (:func:`_stopped_writing`)"""
    from .manifest import build_manifest

    ext = os.path.splitext(args.out)[1].lower()
    payload = store.export_bytes(row["id"], key, ext.lstrip("."))
    if signer is None:
        raise LinekeeperError(
            "this process has no copy of the box's signing key to sign the "
            "export's manifest (the recorder makes it at its first start; on "
            "a box with the MCU, is the recorder running?)"
        )
    row = store.get(row["id"])
    manifest = build_manifest(
        signer,
        payload,
        args.out,
        row,
        store.statement_of(row),
        args.user,
        _wall_us(),
        handovers=getattr(store.verify_key, "statements", ()),
    )
    from firmware.storage.held import SignalsHeld

    # A Ctrl-C as the entry is appended comes once it is made (and noted), at the release:
    # a stop after the entry, whose failure is audited. Raised out of the append, it left
    # the export in the trail as taken.
    with SignalsHeld() as held:
        audited()
        try:
            held.release()
            _write_export(args.out, payload, manifest)
        except KeyboardInterrupt:
            raise _stopped_writing(args.out, payload, manifest) from None


def _write_export(out, payload, manifest):
    """Write the recording ``payload`` to ``out``, then its ``manifest`` beside it.

    :raises _ExportFailed: as :func:`_export_signed` says"""
    from firmware.storage.fsutil import write_new

    from .manifest import manifest_path

    try:
        write_new(out, payload, mode=0o600)
    except FileExistsError:  # made there since the check at the start: kept, never replaced
        raise _ExportFailed(
            _there_already(out, "an export"), "the recording was not written: %s" % _MADE_MEANWHILE
        ) from None
    except OSError as exc:  # nothing of it left (write_new): nothing taken
        said = exc.strerror or str(exc)
        raise _ExportFailed(
            "cannot write %s: %s; nothing was left there" % (out, said),
            "the recording was not written: %s" % said,
        ) from None
    try:
        write_new(manifest_path(out), manifest, mode=0o600)
    except OSError as exc:
        made = isinstance(exc, FileExistsError)
        said = _MADE_MEANWHILE if made else exc.strerror or str(exc)
        try:
            os.remove(out)  # all or nothing: no unsigned copy the trail shows as failed
        except OSError as kept:
            raise _ExportFailed(
                "cannot write %s: %s; %s, written before it, could not be removed (%s): it is "
                "not signed; delete it and export the call again"
                % (manifest_path(out), said, out, kept.strerror or kept),
                "its manifest was not written: %s; the recording written before it could not be "
                "removed" % said,
                left=True,
            ) from None
        raise _ExportFailed(
            _there_already(manifest_path(out), "an export's manifest")
            if made
            else "cannot write %s: %s; the recording written before it was removed, nothing was left"
            % (manifest_path(out), said),
            "its manifest was not written: %s; the recording written before it was removed" % said,
        ) from None


def _stopped_writing(out, payload, manifest):
    """The :class:`_ExportStopped` of an export stopped by Ctrl-C as its files were written:
    a recording written without its manifest is removed (all or nothing, as when the manifest
    cannot be written). Both written, the export was made: the Ctrl-C as it came.

    A file is the export's if it holds what the export wrote: one made at ``out`` by
    something else (an export never replaces it) is kept as it was."""
    from .manifest import manifest_path

    def holds(path, data):
        try:
            with open(path, "rb") as f:
                return f.read(len(data) + 1) == bytes(data)
        except OSError:
            return False

    recording = holds(out, payload)
    if recording and holds(manifest_path(out), manifest):
        return KeyboardInterrupt()
    if not recording:
        return _ExportStopped("stopped: the recording was not written")
    try:
        os.remove(out)
    except OSError as kept:
        return _ExportStopped(
            "stopped: its manifest was not written; the recording written before it could not be removed",
            kept=kept.strerror or str(kept),
        )
    return _ExportStopped(
        "stopped: its manifest was not written; the recording written before it was removed"
    )


class _ExportStopped(KeyboardInterrupt):
    """Ctrl-C stopped an export audited as its files were written: ``failed``, what the trail
    says of it; ``kept``: why the recording written without its manifest could not be
    removed (``left``: a copy was taken all the same), or None."""

    def __init__(self, failed, kept=None):
        super().__init__(failed)
        self.failed = failed
        self.kept = kept
        self.left = kept is not None


class _ExportFailed(LinekeeperError):
    """An export audited, then not written whole. ``failed``: what the trail says of it (which
    file was not written, and why); ``left``: the recording's file stayed (its manifest not
    written, and the file could not be removed), so a copy was taken all the same."""

    def __init__(self, message, failed, left=False):
        super().__init__(message)
        self.failed = failed
        self.left = left


def cmd_verify_export(args):
    """Check an exported recording against its manifest and the box's fingerprint."""
    from .manifest import ARCHIVE_FORMAT, verify_export

    doc = verify_export(args.file, args.key, args.manifest)
    rec = doc["recording"]
    if doc["format"] == ARCHIVE_FORMAT:
        print(
            "%s: intact; recording %s (%s, call %s at site %s) as sealed by %s, its audio and call "
            "record match it; exported from the archive viewer by %s (not signed: see the viewer's "
            "audit trail)" % (args.file, rec["id"], rec["state"], rec["call_id"], doc["box"],
                              doc["fingerprint"], doc["exported_by"])
        )  # fmt: skip
        return 0
    print(
        "%s: intact; exported from recording %s (%s, call %s) by %s, signed by %s"
        % (args.file, rec["id"], rec["state"], rec["call_id"], doc["exported_by"], doc["fingerprint"])
    )
    return 0


def cmd_verify_statement(args):
    """Check a signed statement (the one ``keystore backup`` writes beside a backup on a
    read-only card, or the one beside a signed copy of the deletion log): signed by the
    box's key (on the card given, or its fingerprint given), not changed since, and the
    file beside it the one it speaks of; say what it states."""
    import hashlib

    from firmware import keybackup

    from .handover import HandoverError, chain_of, read_handovers
    from .signing import SigningKeyError, fingerprint, normalise_fingerprint, read_public_record

    try:
        with open(args.file, "rb") as f:
            raw = f.read(keybackup.MAX_STATEMENT_BYTES + 1)
    except OSError as exc:
        raise LinekeeperError("cannot read %s: %s" % (args.file, exc.strerror or exc)) from None
    doc = keybackup.read_statement(raw, args.file)
    carried = keybackup.statement_key(doc, args.file)
    if args.key:
        wanted = normalise_fingerprint(args.key)
        if carried is None:
            raise LinekeeperError(
                "%s does not carry the public key it was signed with (an earlier release made it): "
                "check it on the box, with --data-dir instead of --key" % args.file
            )
        if fingerprint(carried) != wanted:
            raise LinekeeperError(
                "%s does NOT verify: it was signed by %s, not by %s"
                % (args.file, fingerprint(carried), wanted)
            )
        keys, whose = [carried], "the key given"
    else:
        _data_dir(args.data_dir)
        try:
            record = read_public_record(args.data_dir)
            if record is None:
                raise LinekeeperError(
                    "%s has no signing key on record (signing.pub): give the box's fingerprint with "
                    "--key instead" % args.data_dir
                )
            trusted = chain_of(record["public_key"], read_handovers(args.data_dir))[0]
        except (SigningKeyError, HandoverError, ValueError) as exc:
            raise LinekeeperError("cannot read %s's signing key: %s" % (args.data_dir, exc)) from None
        keys = [trusted.current] + [old["key"] for old in trusted.handed_over]
        whose = "the key of the box in %s" % args.data_dir
        if carried is not None and carried not in keys:
            raise LinekeeperError(
                "%s does NOT verify: it was signed by %s, not by %s"
                % (args.file, fingerprint(carried), " or ".join(fingerprint(k) for k in keys))
            )
    doc = keybackup.check_statement(raw, args.file, keys)
    said = []
    if not args.key:
        taken_over = _within_takeover(
            doc, args.file, keybackup.statement_signer(doc, args.file, keys), trusted
        )
        if taken_over:
            said.append(taken_over)
    if args.file.endswith(keybackup.STATEMENT_SUFFIX):
        beside = args.file[: -len(keybackup.STATEMENT_SUFFIX)]
        try:
            with open(beside, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            said.append("%s, the file it speaks of, is not beside it: not checked" % beside)
        except OSError as exc:
            raise LinekeeperError("cannot read %s: %s" % (beside, exc.strerror or exc)) from None
        else:
            if digest != doc["file_sha256"]:
                raise LinekeeperError(
                    "%s verifies, and %s beside it is NOT the file it speaks of (its SHA-256 is %s, "
                    "not %s): the file was changed or replaced"
                    % (args.file, beside, digest, doc["file_sha256"])
                )
            said.append("%s beside it is the file it speaks of" % beside)
    print("%s: intact, signed by %s (%s)" % (args.file, doc["signature"]["key"], whose))
    for line in keybackup.statement_lines(doc) + said:
        print("  " + line)
    return 0


def _within_takeover(doc, source, signer, trusted):
    """A statement signed by a key this box took over from a replaced HAT (``trusted``:
    :class:`~firmware.handover.TrustedKeys`) holds only when it says it was signed before
    that key's handover; the replaced HAT may sign anything since. Returns that, in words,
    for such a statement; None for one the box's current key signed.

    :raises LinekeeperError: it is dated at or after the handover, or bears no date
    """
    import datetime as dt

    from .signing import fingerprint

    def utc(wall_us):
        try:
            return dt.datetime.fromtimestamp(wall_us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (OverflowError, ValueError, OSError):
            return "%d µs since 1970" % wall_us

    for old in trusted.handed_over:
        if old["key"] != signer:
            continue
        wall_us = doc.get("wall_us")
        if isinstance(wall_us, bool) or not isinstance(wall_us, int):
            dated = "it bears no time it was signed (wall_us)"
        elif wall_us >= old["made_us"]:
            dated = "it is dated %s, not before that" % utc(wall_us)
        else:
            when = (utc(wall_us), utc(old["made_us"]))
            return (
                "signed by a key this box took over from a replaced HAT, dated %s, before its handover on %s"
                % when
            )
        raise LinekeeperError(
            "%s does NOT verify: it was signed by %s, a key this box took over from a replaced HAT, "
            "which signs for this box only before its handover on %s; %s"
            % (source, fingerprint(signer), utc(old["made_us"]), dated)
        )
    return None


def cmd_verify_audit(args):
    """Check a copy of the audit trail (the Audit trail page's CSV) with only the box's
    fingerprint: each entry's hash, what its row shows, the chain and the signatures."""
    from .auditcopy import check_copy
    from .words import counted

    problems, summary = check_copy(args.file, args.key)
    for problem in problems:
        print("%s: %s" % (args.file, problem), file=sys.stderr)
    if problems:
        print("%s: does NOT verify (%s)" % (args.file, counted(len(problems), "problem")), file=sys.stderr)
        return 1
    if not summary["rows"]:
        print("%s: holds no entry" % args.file)
        return 0
    missing = sum(b - a - 1 for a, b in summary["gaps"])
    for name, seq in summary["handed_over"]:
        print(
            "%s: the replaced key %s signed up to entry %d, handed over by a statement of the key "
            "given" % (args.file, name, seq)
        )
    if summary["whole"]:
        actor, at = summary["whole"]
        print(
            "%s: whole: every entry from 1 to %d, none missing, up to the head when %s copied "
            "the trail at %s (that copy's own entry)" % (args.file, summary["last"][0], actor, at)
        )
    print(
        "%s: intact; %d entries, %d to %d (%s), %d signed by the key given, %d with details "
        "sealed (only the box opens them); last entry %d:%s: compare it with a head kept off the box"
        % (
            args.file,
            summary["rows"],
            summary["first"][0],
            summary["last"][0],
            "none missing between them"
            if not missing
            else "%s between them not in the copy: a filtered copy, or removed"
            % counted(missing, "entry", "entries"),
            summary["signed"],
            summary["sealed"],
            summary["last"][0],
            summary["last"][1],
        )
    )
    return 0


def cmd_audit_export(args):
    """Copy the whole audit trail to FILE, from entry 1 to the head, with the handover
    statements of the box's keys, for ``verify-audit`` (audited; docs/evidence.md).

    As the Audit trail page's CSV, for an auditor only (a box not set up: the key slot's
    owner), whose password says who runs it. FILE must be new (nothing is ever overwritten)
    in a folder that can be written. The export's own entry is written first and is the
    copy's last: the copy then shows it ends at the head when it was made. It is written
    beside FILE and renamed into place once whole: a failure leaves no part of it.
    """
    from firmware.auditcopy import keys_on_record, write_whole

    from .box import open_audit

    _data_dir(args.data_dir)
    _check_new_file(args.file, "a copy of the audit trail")
    _check_file_name(args.file, ".csv", "a copy of the audit trail")
    try:
        key_of, statements = keys_on_record(args.data_dir)
    except (LinekeeperError, ValueError) as exc:
        raise LinekeeperError(
            "the box's signing key record or its handovers cannot be read (%s): `linekeeper verify` "
            "says what is wrong — nothing was written" % exc
        ) from None
    name = os.path.basename(args.file)
    with open_audit(args.data_dir) as audit:
        try:
            # The password first: no refusal says what an account is before it is taken.
            _prove(args)  # the password says --user runs this
            account = _account(args.data_dir, args.user)
            if account is not None and not account.has("auditor"):
                raise LinekeeperError("%s is not an auditor: only auditors copy the audit trail" % args.user)
        except LinekeeperError as exc:
            actor, named, why = _refused_by(args.data_dir, args.user, str(exc))
            details = dict({"refused": why, "file": name, "via": "cli"}, **named)
            audit.append(actor, "audit_export", "audit", details, _wall_us())
            raise LinekeeperError("the audit trail was not copied: %s" % _why_alone(exc)) from None
        details = {"file": name, "handovers": len(statements), "via": "cli"}
        # Before the file is written, and its last entry: a copy the trail does not show is
        # never made, and the copy shows the head it was made at.
        head = audit.append(args.user, "audit_export", "audit", details, _wall_us()).seq

        # One line written over on a terminal, whole lines in a log (a carriage return alone
        # made one long line there), as repair's.
        progress = Progress("linekeeper: audit-export: %d/%d entries written")
        _write_whole(
            args.file,
            lambda spool: write_whole(audit, spool, head, key_of, statements, progress=progress),
            progress,
            lambda said: audit.append(
                args.user, "audit_export", "audit", dict(details, failed=said), _wall_us()
            ),
            "audit-export",
            "a copy of the audit trail",
        )
    print(
        "copied the whole audit trail of %s to %s: entries 1 to %d (the head, this copy's own "
        "entry)%s; check it anywhere with `linekeeper verify-audit %s --key FINGERPRINT`"
        % (
            args.data_dir,
            args.file,
            head,
            ", with %d key handover(s)" % len(statements) if statements else "",
            args.file,
        )
    )
    return 0


def cmd_breach_scope(args):
    """What one account did over a period, for a personal data breach report: every call it
    viewed, played, exported, released or previewed (its line, time and far end's number),
    whose recordings or caller's details it erased or whose legal hold it released, the
    lists and reports it downloaded, its logins and their addresses, written to a new
    FILE as CSV, with a summary (distinct numbers: the data subjects affected) printed
    (:mod:`firmware.breachscope`; docs/operating.md).

    For an auditor only (a box not set up: the key slot's owner), whose password says who
    runs it; audited as ``breach_scope`` (refused ones too) before the file is written.
    """
    from firmware.breachscope import csv_text, made_within, scope, summary_lines
    from firmware.datadir import account_made_us
    from firmware.storage.fieldseal import load_field_cipher
    from firmware.words import counted

    from .box import open_audit
    from .config import load_config
    from .datadir import site_zone
    from .reports.period import parse_period
    from .signing import run_dir

    _data_dir(args.data_dir)
    _check_new_file(args.file, "a breach scope")
    _check_file_name(args.file, ".csv", "a breach scope")
    name = os.path.basename(args.file)
    config = load_config(args.data_dir)
    with open_audit(args.data_dir) as audit:
        details = {"account": args.account, "from": args.first, "to": args.last, "file": name, "via": "cli"}
        try:
            # The password first: no refusal says what an account is before it is taken.
            _prove(args)  # the password says --user runs this
            account = _account(args.data_dir, args.user)
            if account is not None and not account.has("auditor"):
                raise LinekeeperError("%s is not an auditor: only auditors read a breach's scope" % args.user)
            period = parse_period(args.first, args.last, site_zone(args.data_dir))
            if not audit.count(actor=args.account) and not _read_account(args.data_dir, args.account)[1]:
                # A mistyped name wrote an empty scope ("0 calls looked at") a DPO could pass on.
                raise LinekeeperError(
                    "no account is named %s, and the audit trail has no entry by that name: check "
                    "the user name (an account removed since keeps its entries under its name)" % args.account
                )
        except LinekeeperError as exc:
            actor, named, why = _refused_by(args.data_dir, args.user, str(exc))
            audit.append(actor, "breach_scope", args.account, dict(details, refused=why, **named), _wall_us())
            raise LinekeeperError("the breach scope was not written: %s" % _why_alone(exc)) from None
        # Before anything is read: a look at who saw what that the trail does not show is never made.
        audit.append(args.user, "breach_scope", args.account, details, _wall_us())
        progress = Progress("linekeeper: breach-scope: %d/%d calls read")
        found = []

        def write(spool):
            found.extend(
                scope(
                    audit,
                    os.path.join(args.data_dir, "calls.db"),
                    args.account,
                    period.start_us,
                    period.end_us,
                    cipher=load_field_cipher(args.data_dir, run_dir=run_dir(), create=False),
                    country=config.country,
                    outside=config.policy.rules.outside_lines(),
                    progress=progress,
                )
            )
            spool.write(csv_text(found[0]).encode("utf-8"))

        _write_whole(
            args.file,
            write,
            progress,
            lambda said: audit.append(
                args.user, "breach_scope", args.account, dict(details, failed=said), _wall_us()
            ),
            "breach-scope",
            "a breach scope",
        )
        rows, summary = found
    made_us = made_within(account_made_us(args.data_dir, args.account), period.start_us, rows)
    for line in summary_lines(summary, made_us):
        print(line)
    print("  each entry is a row of %s (%s)" % (args.file, counted(len(rows), "row")))
    return 0


def cmd_keys(args):
    """Print the box's public signing key fingerprint (for copying off the box)."""
    from .signing import fingerprint, read_public_record

    record = read_public_record(_data_dir(args.data_dir))
    if record is None:
        raise LinekeeperError("this box has no signing key yet: it is made when the recorder first starts")
    print(fingerprint(record["public_key"]))
    if not args.fingerprint:
        print(
            "kept in %s"
            % (
                "the HAT's MCU key vault"
                if record["source"] == "vault"
                else "a file on the card (no MCU): see docs/evidence.md"
            )
        )
    return 0


def cmd_banner(args):
    """Show the setup code on the console until setup is done (the linekeeper-banner service)."""
    import socket

    from . import firstboot

    data_dir = _data_dir(args.data_dir)
    code = firstboot.read_setup_code(data_dir) if firstboot.setup_pending(data_dir) else None
    host = socket.gethostname()
    if args.issue:
        try:
            firstboot.write_issue(args.issue, code and firstboot.issue_text(code, host))
        except OSError as exc:
            raise LinekeeperError("cannot write the issue file %s: %s" % (args.issue, exc.strerror)) from None
    if code is not None:
        print(firstboot.banner_text(code, host), flush=True)
    elif firstboot.setup_pending(data_dir):
        print("Linekeeper is not set up yet: the setup code appears when the web UI starts.", flush=True)
    return 0


def cmd_verify(args):
    """Check every recording and the audit trail; exit 1 listing each problem."""
    from firmware.keybackup import keys_lost
    from firmware.recording.store import RecordingStore
    from firmware.storage.audit import AuditLog, parse_anchor
    from firmware.storage.fieldseal import FieldSealError, load_field_cipher
    from firmware.storage.keystore import NotInitialisedError

    from . import words
    from .datadir import integrity_problems, stopped_cleanly
    from .handover import HandoverError, TrustedKeys, trusted_keys
    from .rekey import journal_exists
    from .signing import (
        SigningKeyError,
        fingerprint,
        own_public_key,
        read_public_record,
        run_dir,
        trusted_public_key,
    )

    anchor = parse_anchor(args.head) if args.head else None
    _call_log(args.data_dir)
    # Signatures are checked with the key on record, which --key pins (checked first).
    record = read_public_record(args.data_dir)
    problems, key = [], None
    try:
        public_key = trusted_public_key(args.data_dir, args.key)[0] if record else None
    except SigningKeyError as exc:
        raise SigningKeyError(str(exc) + _handed_over_hint(args.data_dir, args.key)) from None
    # On the box itself its own key (from the MCU vault, in RAM) is the one that counts:
    # a card whose key record was replaced with another key proves nothing.
    own_key = own_public_key(run_dir())
    if own_key is not None:
        if record is not None and record["public_key"] != own_key:
            problems.append(
                "the signing key on record in signing.pub (%s) is not this box's (%s): the "
                "card's key record was replaced, or this is another box's card"
                % (fingerprint(record["public_key"]), fingerprint(own_key))
            )
        public_key = own_key
    try:
        cipher = load_field_cipher(args.data_dir, run_dir=run_dir(), create=False)
    except FieldSealError:
        # Off the box: everything verify checks is readable without the storage key.
        cipher = None
    keyless_user = False  # --user is proven, and holds no key slot (an auditor, an installer)
    if args.password_file:
        try:  # a wrong password is the person's mistake, not the data's: refused (exit 2)
            key, keyless_user = _verify_unlock(args)
        except NotInitialisedError:
            pass  # said below, with what to do (restore the key store, never init)
    # Signatures by a replaced HAT's key hold up to its handover, as the current key says.
    keys = None
    if public_key is not None:
        try:
            keys, unused = trusted_keys(args.data_dir, public_key)
        except HandoverError as exc:
            keys, unused = TrustedKeys(public_key), [str(exc) + ": no replaced key's signature holds"]
        problems += unused
    # Read-only: verify writes nothing, so it also works on a full or read-only card.
    store = RecordingStore(args.data_dir, readonly=True, verify_key=keys)
    store.field_cipher = cipher
    keyless: list[str] = []  # of lines whose key is in no copy of the key store
    try:
        audit = AuditLog(
            os.path.join(args.data_dir, "audit.db"),
            os.path.join(args.data_dir, "audit.head"),
            readonly=True,
            cipher=cipher,
        )
    except BaseException:
        store.close()
        raise
    try:
        if keys is not None:
            keys.bind_recordings(audit.recording_seals())
        store.keys_lost = keys_lost(audit)
        rowless: dict[str, list[str]] = {}  # recordings on the card the call log has no row for
        problems += store.verify(key, keyless, lost=rowless) + [
            "audit trail: " + p
            for p in audit.verify(anchor, public_key=keys, stopped_cleanly=stopped_cleanly(args.data_dir))
        ]
        if audit.calls_index_unchecked is not None:
            # Not a problem with the trail: off the box, its sealed details do not open.
            print(
                "audit trail: its index of the calls named was not checked: %s" % audit.calls_index_unchecked,
                file=sys.stderr,
            )
        created: set[str] = set()
        problems += _accounting(store, audit, stopped_cleanly(args.data_dir), rowless, created)
        # One line a recording, not one a file and one for its audit entry: a call log
        # that lost its latest writes made 50 lines of 16 recordings.
        problems[:0] = _lost_recordings(rowless, created)
        problems += _card_problems(args.data_dir, store, audit, public_key, args.key)
        problems += integrity_problems(audit._db, "audit.db")
        problems += _deletion_log_problems(args.data_dir, audit)
        if journal_exists(args.data_dir):
            problems.append(
                "keys: a rekey was cut short (keys/rekey.json): every recording still opens; run "
                "`linekeeper rekey` again to finish it"
            )
        held = [r for r in store.all() if r["state"] != "deleted"]
        n = len(held)
        # A supervisor's key opens their lines' recordings only: the others are checked
        # without it (size and SHA-256), and "authenticated" must not be said of them.
        unopened = _not_granted(store, held, key)
    finally:
        if key is not None:
            key.forget()
        store.close()
        audit.close()
    for problem in problems + keyless:
        print(problem)
    if problems or keyless:
        # Not intact, yet not altered either: counted apart (docs/keys.md).
        lost = (
            ""
            if not keyless
            else "1 recording cannot be opened: its line's key is not in the key store"
            if len(keyless) == 1
            else "%d recordings cannot be opened: their lines' keys are not in the key store" % len(keyless)
        )
        found = "%d problem(s) found" % len(problems) if problems else ""
        if rowless:
            found += (
                ", %d of them %s on the card and not in the call log (`linekeeper repair` rebuilds %s)"
                % (
                    len(rowless),
                    "a recording" if len(rowless) == 1 else "recordings",
                    "it from its file" if len(rowless) == 1 else "them from their files",
                )
            )
        print(
            "%s; %s" % (found, lost) if found and lost else found or "no problem found, but " + lost,
            file=sys.stderr,
        )
        return 1
    if keyless_user:
        checked = (
            " (%s holds no recording key: each checked by its signature, size and SHA-256, "
            "none opened)" % args.user
        )
    elif key is None:
        checked = ""
    elif not unopened:
        checked = " (authenticated)"
    else:
        checked = (
            " (%d authenticated, those of %s granted to %s; the other %d checked by size and SHA-256 only)"
            % (
                n - unopened,
                words.lines_named(key.granted) if key.granted else "no line",
                args.user,
                unopened,
            )
        )
    print("%d recordings%s, the audit trail and the deletion log are intact" % (n, checked))
    return 0


def _verify_unlock(args):
    """``(key, keyless)`` for `verify`: ``--user``'s key slot opened with ``--password-file``'s
    password, or (``key`` None, ``keyless`` True) an account without a key slot (an auditor,
    an installer) proven by its password hash, as :func:`_prove` proves them. Only a key slot
    was taken before: an auditor following docs/evidence.md was refused "no such account or
    wrong password", and each run was counted as a wrong password, until the account was
    locked (the web login too).

    :raises WrongPasswordError: the password proves nobody
    :raises LinekeeperError: as :func:`_proven`; an account proven by the password an
        installer set (:func:`_refuse_installers_password`)"""
    from firmware.storage.keystore import KeyStore

    key, account = _proven(args, KeyStore(args.data_dir))
    if key is not None:
        return key, False
    _refuse_installers_password(args.data_dir, account)
    return None, True


def _not_granted(store, rows, key):
    """How many of the recordings ``rows`` are on a line ``key`` does not open (0 without a
    key, or with the admin key, which opens every line)."""
    from firmware.storage.keystore import ALL_LINES

    if key is None or key.granted == ALL_LINES:
        return 0
    return sum(1 for row in rows if store.line_of(row) not in key.granted)


def _handed_over_hint(data_dir, pinned):
    """A hint when ``pinned`` is a key this box handed over to a new HAT's (else "")."""
    from .handover import HandoverError, read_handovers
    from .signing import fingerprint, normalise_fingerprint

    try:
        wanted = normalise_fingerprint(pinned)
        for item in read_handovers(data_dir):
            if fingerprint(base64.b64decode(item["old_key"])) == wanted:
                return (
                    " (this card says %s was handed over to %s when its HAT was replaced, "
                    "at audit entry %d: pin the box's current fingerprint, from its security page)"
                    % (wanted, fingerprint(base64.b64decode(item["new_key"])), item["audit_seq"])
                )
    except (HandoverError, ValueError, TypeError, LinekeeperError):
        pass
    return ""


def _card_problems(data_dir, store, audit, public_key, pinned):
    """What a card's holder can remove that the other checks would take in their stride:
    the whole audit trail, the key on record that signatures are checked with, the key
    store (docs/evidence.md)."""
    from firmware.storage.keystore import KeyStore

    problems = []
    live = [r for r in store.all() if r["state"] != "deleted"]
    if live and len(audit) == 0:
        problems.append(
            "audit trail: it is empty, but the call log holds %d recordings: the trail was "
            "wiped (verify --head SEQ:HASH, from a report e-mail, says how far it reached)" % len(live)
        )
    signed = audit.signed_entries() or any(r.get("signature") for r in live)
    if public_key is None and pinned and not signed:
        problems.append(
            "signatures: this box has no signing key on record yet (it is made when the recorder "
            "first starts): nothing to check --key against"
        )
    elif public_key is None and signed:
        problems.append(
            "signatures: signing.pub (the box's signing key on record) is missing, though the "
            "audit trail and recordings are signed: it was removed, and no signature was checked; "
            "check them with --key and the fingerprint from the box's security page or recovery sheet"
            + (" (given here, but a fingerprint alone cannot check a signature)" if pinned else "")
        )
    if live and not KeyStore(data_dir).is_initialised:
        problems.append(
            "keys: keys/keystore.json is missing, while the call log holds %d recordings: no key "
            "opens them until it is restored from a backup (`linekeeper keystore restore`; "
            "`linekeeper init` would make new keys that can never open them)" % len(live)
        )
    return problems


def _accounting(store, audit, stopped_cleanly=False, lost=None, created_lost=None):
    """Recordings the audit trail saw created that nothing accounts for now, and sealed
    recordings whose row says otherwise. ``lost``: recordings whose files are in
    ``recordings/`` with no row (``RecordingStore.verify``'s): those the trail saw created
    are added to ``created_lost``, not said here (:func:`_lost_recordings` says each once)."""
    from .evidence import accounting_problems, seal_problems

    def ids(action):
        return {
            e.target.split(":", 1)[1]
            for e in audit.entries(limit=-1, action=action, newest_first=False)
            if e.target
        }

    created = ids("recording_created")
    if not created:
        return []
    try:
        rows = {r["id"]: r for r in store.all()}
        destroyed = store.logged_deleted_ids() | ids("recording_deleted")
    except sqlite3.Error as exc:
        return ["recordings: cannot be accounted for: %s" % exc]
    # A row that says "deleted" accounts for nothing by itself: the box removes a
    # destroyed recording's row and logs it; the state is the card holder's word only.
    known = {rid for rid, row in rows.items() if row["state"] != "deleted"} | destroyed
    marked = sorted(rid for rid in set(created) - known if rid in rows)
    problems = [
        "recording %s: the call log says it was deleted, but no deletion was recorded (deletion "
        "log, audit trail): it was removed behind the box's back" % rid
        for rid in marked
    ]
    sealed = {}  # as the trail saw each recording last sealed
    for _seq, action, target, details in audit.recording_seals():
        if not target or not target.startswith("recording:") or not isinstance(details, dict):
            continue
        rid = target.split(":", 1)[1]
        if action == "recording_sealed":
            sealed[rid] = details.get("sha256")
        elif action == "recording_recovered" and rid in sealed:
            # Its seal, which the card had refused, written at the next start from the
            # recording journal: the file as sealed, and only added to.
            extends = details.get("extends_sha256")
            if extends is not None and extends == sealed[rid]:
                sealed[rid] = details.get("sha256")
    unaccounted = set(created) - set(marked)
    if lost:
        grouped = unaccounted & set(lost)
        if created_lost is not None:
            created_lost |= grouped - known
        unaccounted -= grouped
    problems += accounting_problems(unaccounted, known, _files_on_card(store))
    return problems + seal_problems(sealed, rows) + _unsealed_again(store, sealed, rows, stopped_cleanly)


def _lost_recordings(lost, created):
    """One line for each recording whose files are in ``recordings/`` with no row in the call
    log (``lost``: ``{id: [file names]}``), naming its files and whether the audit trail saw
    it created (``created``): what `verify` said in a line a file and one for the entry."""
    lines = []
    for rid in sorted(lost):
        names = sorted(lost[rid], key=lambda n: (not n.endswith(".lkrec"), n))
        files = (
            "recordings/%s" % names[0]
            if len(names) == 1
            else "recordings/%s and %s"
            % (
                ", ".join(names[:-1]),
                names[-1],
            )
        )
        if rid in created:
            lines.append(
                "recording %s: not in the call log, created (audit trail) and still on the card "
                "(%s): the call log lost it (`linekeeper repair` rebuilds it from the file)" % (rid, files)
            )
        else:
            lines.append(
                "recording %s: not in the call log (%s; `linekeeper repair` rebuilds the log "
                "from the recordings)" % (rid, files)
            )
    return lines


def _files_on_card(store):
    """Ids of the recording files in ``recordings/`` and ``quarantine/``, the call log's or not."""
    ids = set()
    for folder in (store.dir, store.quarantine_dir):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        ids.update(name[: -len(".lkrec")] for name in names if name.endswith(".lkrec"))
    return ids


def _unsealed_again(store, sealed, rows, stopped_cleanly):
    """Sealed recordings whose row says they are still being recorded: set back, so that
    the file (cut, or gone) would not be checked, and the next start would sign what is
    left as partial. After a crash the row may lag its seal; the file is then the one
    sealed, and the next start finishes the row."""
    from firmware.recording.store import _file_digest

    problems = []
    for rid, digest in sorted(sealed.items()):
        row = rows.get(rid)
        if row is None or row["state"] != "recording":
            continue
        now = _file_digest(store.path_of(rid))[1]
        if stopped_cleanly or now != digest:
            problems.append(
                "recording %s: the audit trail saw it sealed (SHA-256 %s...), but the call log "
                "says it is still being recorded%s: its row was set back"
                % (rid, (digest or "?")[:12], "" if now == digest else ", and its file is not the one sealed")
            )
    return problems


def _pci_became(data, changed):
    """``{field: value}`` of the card-payment settings (``policy.pci``) an import's ``data``
    (checked whole) changes, as they become; ``changed``: the names it changes. Their values
    hold no caller's data, and an assessor reads from the trail whether masking was on, as
    the Rules page's own entry says it."""
    from .policy.settings import PolicySettings

    fields = [name[len("policy.pci.") :] for name in changed if name.startswith("policy.pci.")]
    if not fields:
        return None
    pci = PolicySettings.from_dict(data["config"]["policy"]).to_dict()["pci"]
    return {field: pci.get(field) for field in fields}


def _pci_codes_refused(config):
    """What ``config import`` says of a pause or resume code in ``config`` (the box's now)
    that the Rules page refuses (a resume code of digits alone is ended by the same digits
    keyed in a card's security code): the file takes every DTMF key, so a box set so
    before loads as it was, but the installer is told (docs/pci.md)."""
    for field, refused in config.policy.pci.refused().items():
        yield (
            "policy.pci.%s: %s The box uses it as it is; the Rules page refuses it until it "
            "is changed." % (field, refused)
        )


def _closed_all_week(config):
    """What ``config import`` says when ``config`` (the box's now) has business hours on and
    no day given any while lines record by the rules: those lines record no call at all.
    The Rules page refuses it; the file takes it (a box set so loads as it was), so the
    installer is told here."""
    lines, later = config.policy.rules.closed_all_week()
    if not lines and not later:
        return None
    who = [("line %d" % n) for n in lines] + (["lines added later"] if later else [])
    return (
        "policy.rules.hours: business hours are on and no day has any, so %s, set to record by "
        "the rules, %s no call at all. Set the hours, or turn them off (null), or choose "
        "another mode; the Rules page refuses it until it is changed."
        % (" and ".join(who), "record" if len(who) > 1 else "records")
    )


def cmd_config(args):
    """Export the box's configuration to FILE, or import it (validated whole; audited)."""
    import json

    from firmware.storage.fsutil import write_new

    from .box import open_audit
    from .config import load_config
    from .configio import (
        archive_box_id,
        box_id_taken,
        country_changed,
        current_config,
        export_config,
        import_config,
        waits_for_notice,
    )
    from .storage.audit import device_cipher

    if args.action == "export":
        # A missing or unreadable data directory is an error, never the defaults.
        _data_dir(args.data_dir)
        _check_new_file(args.file, "a configuration export")
        _check_file_name(args.file, ".json", "a configuration export")  # its import reads a .toml as TOML
        actor = _proven_actor(
            args,
            "nothing was written",
            "exports the box's configuration, whose number rules it writes in clear",
        )
        # The rules' number patterns are sealed on a box with the MCU: opened for the file.
        doc = export_config(args.data_dir, device_cipher(args.data_dir))
        text = json.dumps(doc, indent=2) + "\n"
        details = _export_details(args, doc)
        audit = _export_audited(args, actor, details)
        try:
            write_new(args.file, text.encode("utf-8"), mode=0o600)
        except (OSError, KeyboardInterrupt) as exc:
            if audit is not None:
                failed = "stopped" if isinstance(exc, KeyboardInterrupt) else str(exc)
                audit.append(actor, "config_export", "config", dict(details, failed=failed), _wall_us())
            if isinstance(exc, FileExistsError):  # made there since the check above: kept
                raise LinekeeperError(_there_already(args.file, "a configuration export")) from None
            if isinstance(exc, OSError):
                raise LinekeeperError("cannot write %s: %s" % (args.file, exc.strerror or exc)) from None
            raise
        finally:
            if audit is not None:
                audit.close()
        print("exported the configuration of %s to %s" % (args.data_dir, args.file))
        return 0
    from board import jsonpos

    from .configio import MAX_IMPORT_BYTES
    from .errors import ConfigError

    try:
        if ("import", args.file) in _READ_AS_ROOT:  # read as root before acting as the box
            raw = _READ_AS_ROOT[("import", args.file)]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError("not UTF-8 text (byte %d)" % exc.start, source=args.file) from None
            doc = jsonpos.loads(text, args.file, toml=args.file.lower().endswith(".toml"))
        else:
            doc = jsonpos.load(args.file, max_bytes=MAX_IMPORT_BYTES)
    except ConfigError as exc:
        raise LinekeeperError("%s — nothing was changed" % exc) from None
    if not os.path.isdir(args.data_dir):
        raise LinekeeperError("no data directory %s" % args.data_dir)
    actor = _proven_actor(
        args,
        "nothing was changed",
        "changes the box's configuration, as on the Rules, Consent, Retention and Settings pages",
    )
    cipher = device_cipher(args.data_dir)  # seals the rules' number patterns on a box with the MCU
    waited = waits_for_notice(args.data_dir, cipher)
    before = current_config(args.data_dir, cipher)
    details = {"via": "cli", "imported_from": os.path.basename(args.file)}
    opened = []
    said = []  # the names of the settings the import changes, once known

    def audited(sections, changed=None):
        # Once the document is checked, before anything is written: a cut part way
        # leaves the entry, never an import the trail does not show.
        opened.append(open_audit(args.data_dir))
        entry = dict(details, sections=sections)
        if changed is not None:
            entry["changed"] = changed  # the settings' names, as the web pages' entries say them
            said.append(changed)
            pci = _pci_became(doc.data, changed)
            if pci:
                entry["card_payments"] = pci
        opened[0].append(actor, "config_change", "config", entry, _wall_us())

    try:
        written = import_config(args.data_dir, doc.data, source=args.file, cipher=cipher, audited=audited)
    except ConfigError as exc:
        raise LinekeeperError("%s — nothing was changed" % jsonpos.located(doc, exc)) from None
    except (OSError, sqlite3.Error) as exc:
        if opened:
            opened[0].append(actor, "config_change", "config", dict(details, failed=str(exc)), _wall_us())
        raise
    except KeyboardInterrupt as exc:
        if not opened:
            raise Stopped("config import stopped before it wrote anything; nothing was changed") from exc
        opened[0].append(actor, "config_change", "config", dict(details, failed="stopped"), _wall_us())
        raise Stopped(
            "config import stopped part way: some of its sections may be written (each whole), "
            "the rest not; the audit trail shows the import and its stop; run the import again "
            "to write it all"
        ) from exc
    finally:
        for audit in opened:
            audit.close()
    taken = _recorder_reloaded(args.data_dir) if "config" in written else None
    print("imported %s into %s (%s)" % (args.file, args.data_dir, ", ".join(written)))
    if said:
        # Said to the installer as the trail says it: a file from another box replaces this
        # one's own settings too (the lines' names, the country), and they see which.
        print(
            "it changed: %s" % ", ".join(said[0])
            if said[0]
            else "it changed no setting: the box's were already the file's"
        )
    if "config" in written:
        print(
            "the running box uses it now (board, HAT, debounce, audio profile and ring size from "
            "its next start)"
            if taken is True
            else "no recorder answers on the box: it uses it when it starts"
            if taken is None
            else "the running box did not take it (%s): it uses it after a restart "
            "(systemctl restart linekeeper-recorder)" % taken
        )
        now = load_config(args.data_dir, cipher)
        for said in _pci_codes_refused(now):
            print(said)
        for said in (
            _closed_all_week(now),
            box_id_taken(archive_box_id(before), archive_box_id(now)),
            country_changed(None if before is None else before.country, now.country),
        ):
            if said:
                print(said)
    if waits_for_notice(args.data_dir, cipher):
        print(
            "no consent notice is set in it: the box records no line until one is "
            "(policy.consent, or the Consent page)"
        )
    elif waited and taken is not True:
        print(
            "a consent notice is set now: the box records no line until it restarts "
            "(systemctl restart linekeeper-recorder)"
        )
    elif waited:
        print("a consent notice is set now: the box records from its next call")
    if not _read_account(args.data_dir, "")[0]:
        # A new card for one that died: the file brings the settings back, never the
        # accounts, and nothing else said so before the wizard made only its first.
        print(
            "the file holds no account, and this box has none: the setup wizard makes the first; "
            "add the others on the Users page after setup (docs/recovery.md)"
        )
    return 0


def _export_details(args, doc):
    """The details of ``config export``'s audit entry for ``doc``: where the file goes,
    its sections, and how many number-rule patterns it holds in clear (never the
    patterns: they may be staff's or callers' numbers)."""
    rules = doc["config"].get("policy", {}).get("rules", {})
    patterns = sum(len(item.get("patterns", [])) for item in rules.get("numbers", []))
    sections = ["config"] + (["site"] if doc["site"] is not None else []) + sorted(doc["files"])
    where = os.path.abspath(args.file)
    return {"via": "cli", "file": where, "sections": sections, "number_patterns": patterns}


def _export_audited(args, actor, details):
    """Audit ``config export`` (``config_export``) before its file is written; the open
    trail, for a failure's entry, or None when the card cannot take the entry (read-only,
    full, damaged): the export is what a technician runs to save a failing card's
    settings, so it is written all the same, and stderr says it was not audited."""
    from .box import open_audit

    audit = None
    try:
        audit = open_audit(args.data_dir)
        audit.append(actor, "config_export", "config", details, _wall_us())
        return audit
    except (OSError, sqlite3.Error) as exc:
        if audit is not None:
            audit.close()
        print(
            "not audited: the audit trail could not record this export (%s); the file is written "
            "all the same, with the number rules in clear: note who exported it, when and where "
            "to, in the box's records" % (getattr(exc, "strerror", None) or exc),
            file=sys.stderr,
        )
        return None


def _recorder_reloaded(data_dir):
    """Have the recorder running on ``data_dir`` read ``config.json`` again (its control
    socket's ``reload``, as the web pages' changes do: rules, notices, card payments and
    retention at once, :meth:`firmware.box.Box.apply_config`): True when it did, None when no
    recorder answers (it reads the file when it starts), or why it refused."""
    from .control import ControlClient, ControlError, RecorderUnavailable, socket_path

    client = ControlClient(socket_path(data_dir))
    try:
        client.call("reload")
        return True
    except RecorderUnavailable:
        return None
    except ControlError as exc:
        return str(exc)
    finally:
        client.close()


def _what_file_is(path):
    """What is at ``path``, in a few words: whose key store backup it is, or what else.

    Only a regular file is opened (never through a link): a FIFO's open waits for a writer
    for ever, and a device (/dev/stdout, a link to one) is not a file to describe."""
    import stat

    from firmware import keybackup

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "a file that cannot be read"
    if not stat.S_ISREG(mode):
        return next(
            (
                what
                for test, what in (
                    (stat.S_ISDIR, "a directory"),
                    (stat.S_ISLNK, "a symbolic link"),
                    (stat.S_ISFIFO, "a named pipe (FIFO)"),
                    (stat.S_ISSOCK, "a socket"),
                    (stat.S_ISCHR, "a device"),
                    (stat.S_ISBLK, "a device"),
                )
                if test(mode)
            ),
            "not a regular file",
        )
    try:
        # O_NONBLOCK: made a FIFO since the look above, its open does not wait.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return "not a regular file"
            doc = keybackup.read_backup(f.read(keybackup.MAX_BACKUP_BYTES + 1), path)
    except (OSError, keybackup.KeyBackupError):
        return "a file that is not a key store backup"
    return "a key store backup of %s, key store %s, made %s" % (doc["host"], doc["key_store"], doc["made_at"])


def _read_only_card(data_dir):
    """True when ``data_dir``'s file system is mounted read-only (a failing SD card is)."""
    try:
        return bool(os.statvfs(data_dir).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _write_backup(args, actor, data, there_already, audit, details):
    """Write the key store backup ``data`` to ``args.file``, its ``made`` entry audited
    already (by ``actor``); a failure is audited too (when ``audit`` is given), and raised as a
    :class:`LinekeeperError`."""
    from firmware.storage.fsutil import write_new

    try:
        # Never over a file made since the look above (linked in place, or O_EXCL).
        write_new(args.file, data, mode=0o600)
    except OSError as exc:
        exists = isinstance(exc, FileExistsError)
        said = "the file was there already" if exists else exc.strerror or str(exc)
        if audit is not None:
            failed = dict(details, phase="failed", reason=said)
            audit.append(actor, "key_backup", None, failed, _wall_us())
        if exists:
            raise there_already() from None
        raise LinekeeperError("cannot write %s: %s%s" % (args.file, said, _as_whom())) from None
    except KeyboardInterrupt as exc:
        if os.path.exists(args.file):  # linked in place: it is whole
            raise Stopped("keystore backup stopped once %s was written whole" % args.file) from exc
        if audit is not None:
            audit.append(
                actor, "key_backup", None, dict(details, phase="failed", reason="stopped"), _wall_us()
            )
        raise Stopped(
            "keystore backup stopped before %s was written: none of it is there%s; make the backup "
            "again" % (args.file, ", and the audit trail shows the stop" if audit is not None else "")
        ) from exc


def _backup_unaudited(args, actor, data, details, exc, there_already):
    """The key store backup on a card mounted read-only, whose audit trail cannot take its
    entry (``exc``): a failing card is when a backup is needed most. What the entry would
    have said goes in a statement beside the backup, signed where this process has the
    box's key, written before it (as the entry is); stderr says so. Returns
    ``(the statement's path, whether it is signed)``."""
    from firmware import keybackup
    from firmware.storage.fsutil import write_new

    from .startfail import describe

    why = describe(exc)
    statement_path = args.file + keybackup.STATEMENT_SUFFIX
    if os.path.lexists(statement_path):
        raise LinekeeperError(
            "%s is there already: the statement of this backup goes there (the audit trail "
            "cannot record it, %s); give a new file name — nothing was written" % (statement_path, why)
        )
    statement, said = keybackup.unaudited_statement(
        args.data_dir, actor, "key_backup", details, data, _wall_us(), why
    )
    try:
        write_new(statement_path, statement, mode=0o600)
    except OSError as err:
        raise LinekeeperError(
            "cannot write %s: %s%s — nothing was written" % (statement_path, err.strerror or err, _as_whom())
        ) from None
    signed = said["signature"] is not None
    notice = (
        "linekeeper: the audit trail could not record this key store backup (%s); it is "
        "recorded instead in %s%s: keep it with the backup, and add it to the box's records"
        % (why, statement_path, ", signed with the box's key" if signed else " (not signed)")
    )
    try:
        _write_backup(args, actor, data, there_already, None, details)
    except LinekeeperError:
        os.unlink(statement_path)  # it would speak of a backup that is not there
        raise
    except KeyboardInterrupt:
        if os.path.exists(args.file):  # stopped once the copy was whole: it stays, with its statement
            print(notice, file=sys.stderr)
        else:
            os.unlink(statement_path)
        raise
    print(notice, file=sys.stderr)
    return statement_path, signed


def cmd_keystore(args):
    """Back up the key store to FILE, or put a backup back where it is missing (audited)."""
    from firmware import keybackup

    from .box import open_audit

    _data_dir(args.data_dir)
    if args.action == "backup":

        def there_already():
            return LinekeeperError(
                "%s is there already (%s): a key store backup never replaces a file, which may be "
                "the only copy of another box's keys or an earlier one of this box's; give a new "
                "file name — nothing was written" % (args.file, _what_file_is(args.file))
            )

        if os.path.lexists(args.file):
            raise there_already()
        actor = _proven_actor(
            args, "nothing was written", "backs up the key store, as in Settings", every_line=True
        )
        data, doc = keybackup.make_backup(args.data_dir, _wall_us())
        contents = keybackup.key_store_contents(doc["keystore"].encode("ascii"))
        details = {
            "phase": "made",
            "key_store": doc["key_store"],
            "contents": contents,
            "inventory": doc["inventory"],
            "via": "cli",
        }
        audit, refused = None, None
        try:
            audit = open_audit(args.data_dir)
            # Before the file is written: a copy the trail does not show is never made.
            audit.append(actor, "key_backup", None, details, _wall_us())
        except (OSError, sqlite3.Error) as exc:
            if audit is not None:
                audit.close()
            if not _read_only_card(args.data_dir):
                raise
            refused = exc  # the card is read-only: the one case a statement stands in for the entry
        except KeyboardInterrupt as exc:
            if audit is not None:
                audit.close()
            raise Stopped("keystore backup stopped before the copy was written: there is none") from exc
        unaudited = None
        if refused is None:
            with audit:
                _write_backup(args, actor, data, there_already, audit, details)
        else:
            unaudited = _backup_unaudited(args, actor, data, details, refused, there_already)
        print(
            "backed up the key store %s of %s to %s: keep it with the recovery key, away from the "
            "box; a rekey makes it out of date" % (doc["key_store"], args.data_dir, args.file)
        )
        if unaudited is not None:
            # Exit 0 all the same (the copy is made, and a non-zero status says a command did not
            # do its job); a script tells this case by the line's first words, on stdout.
            print(
                "not audited: the audit trail could not record this backup (the card is read-only); "
                "its statement is %s (%s): keep it with the backup, add it to the box's records, and "
                "check it with `linekeeper verify-statement`"
                % (unaudited[0], "signed with the box's key" if unaudited[1] else "NOT signed")
            )
        # What the box held, kept in the file too: if the box is lost, it says what was on it.
        print("what the box holds now (its inventory, in the file too):")
        for line in keybackup.inventory_lines(doc["inventory"]):
            print("  " + line)
        return 0
    if not args.recovery_key_file and not args.password_file:
        raise LinekeeperError(
            "keystore restore: give --recovery-key-file, or --password-file (with --user), to "
            "open the backup with — nothing was changed"
        )
    if ("keystore", args.file) in _READ_AS_ROOT:  # read as root before acting as the box
        raw = _READ_AS_ROOT[("keystore", args.file)]
    else:
        try:
            with open(args.file, "rb") as f:
                raw = f.read(keybackup.MAX_BACKUP_BYTES + 1)
        except OSError as exc:
            raise LinekeeperError(
                "cannot read %s: %s%s — nothing was changed" % (args.file, exc.strerror or exc, _as_whom())
            ) from None
    try:  # every refusal says nothing was changed, as the restore's own do
        if args.recovery_key_file:
            opens = {"recovery_key": _read_password(args.recovery_key_file, "recovery key file")}
            opens.update(_restore_recovery_guess(args.data_dir))
            actor = "recovery-key"
        else:
            args.user = args.user or "admin"
            opens = {"user": args.user, "password": _read_password(args.password_file)}
            opens.update(_restore_guess(args.data_dir, args.user))
            actor = args.user
    except LinekeeperError as exc:
        raise LinekeeperError("%s — nothing was changed" % exc) from None
    opened = []

    def audited(details):
        if not opened:
            opened.append(open_audit(args.data_dir))
        opened[0].append(actor, "key_backup", None, dict(details, via_cli=True), _wall_us())

    try:
        doc = keybackup.restore(
            args.data_dir, raw, args.file, audited=audited, lines_lost=args.accept_lost_lines, **opens
        )
    except KeyboardInterrupt as exc:
        raise Stopped(_restore_stopped(args.data_dir, opened, audited)) from exc
    finally:
        for audit in opened:
            audit.close()
    print(
        "put the key store %s back into %s from %s (made %s on %s)"
        % (doc["key_store"], args.data_dir, args.file, doc["made_at"], doc["host"])
    )
    if doc["lines_without_key"]:
        lost = doc["lines_without_key"]
        print(
            "it holds no key for %s (made after the backup): %s recordings made with that key "
            "do not open" % (keybackup.lines_words(lost), "its" if len(lost) == 1 else "their")
        )
    return 0


def _restore_guess(data_dir, user):
    """``keybackup.restore``'s ``accept`` and ``wrong_password`` for ``user``'s password: a
    try at the backup's key slot counted with the web login's failures on a box set up (the
    account locked out: refused here, its password not checked), as every key slot's
    password on the command line is (:func:`_proven`); once it opens the copy, a disabled
    account is refused, then a password an installer set.

    :raises LinekeeperError: the account is locked out or its guesses wait"""
    has_accounts, _ = _read_account(data_dir, user)
    guess = _guess(data_dir, user) if has_accounts else None
    if guess is not None:
        refusal = guess.refusal()
        if refusal:
            raise LinekeeperError(refusal)

    def accept():
        if guess is not None:
            guess.succeeded()
        try:
            _enabled_slot(data_dir, user)
        except LinekeeperError as exc:
            raise LinekeeperError("%s — nothing was changed" % exc) from None
        _restore_refuses_installers_password(data_dir, _read_account(data_dir, user)[1])
        if guess is not None:
            guess.used_here()

    def wrong_password():
        if guess is not None:
            _guess_failed(guess, data_dir, user)

    return {"accept": accept, "wrong_password": wrong_password}


def _restore_recovery_guess(data_dir):
    """``keybackup.restore``'s ``accept`` and ``wrong_password`` for the recovery key: a try
    counted box-wide, as every recovery key on the command line is (:func:`_unlock_recovery`).

    :raises LinekeeperError: wrong recovery keys wait (the key is not checked)"""
    guess = _recovery_guess(data_dir)

    def accept():
        if guess is not None:
            guess.succeeded()

    return {"accept": accept, "wrong_password": lambda: _recovery_failed(guess, data_dir)}


def _restore_stopped(data_dir, opened, audited):
    """What ``keystore restore`` stopped by Ctrl-C left: the key store put back (written
    whole, atomically) or not; a stop after its entry is audited as one."""
    from firmware.storage.keystore import KeyStore

    if KeyStore(data_dir).is_initialised:
        return "keystore restore stopped once the key store was put back: it is in place (audited)"
    if not opened:
        return "keystore restore stopped; nothing was changed"
    audited({"phase": "failed", "reason": "stopped"})
    return (
        "keystore restore stopped before the key store was put back: the box still has none, and "
        "the audit trail shows the stop; run the restore again"
    )


def _installer_refusal(data_dir, user, account, key):
    """Why ``user``, whose password is taken (``account``: theirs, or None; ``key``: their key
    slot's, or None: an account without one), may not move the box's keys to a new HAT, or None.

    Once the box is set up, only an installer may (as on the web UI, where
    installers look after the hardware); before, the key slot's owner is the
    box's owner. A disabled account's password moves nothing (:func:`_proven`).
    """
    if account is None:
        return _no_account_words(user) if _read_account(data_dir, user)[0] else None
    if not account.has("installer"):
        return (
            "%s is not an installer: only installers (or the recovery key) move the keys to a new HAT" % user
        )
    if key is None:
        return "--user %s holds no key slot: its password opens none of the box's keys%s" % (
            user,
            RECOVERY_KEY_TOO,
        )
    return None


def cmd_hat_replaced(args):
    """Move the box's sealed data to a new HAT with the escrow copy (docs/operating.md)."""
    from firmware.hatswap import move_to_new_hat
    from firmware.storage.keystore import KeyStore

    from .box import hat_vault, open_audit
    from .datadir import DataDirLock

    _data_dir(args.data_dir)
    store = KeyStore(args.data_dir)
    if args.recovery_key_file:
        key = _unlock_recovery(
            args.data_dir, store, _read_password(args.recovery_key_file, "recovery key file")
        )
        actor, via = "recovery-key", "recovery key"
    else:
        # The password first: no refusal says what an account is before it is taken.
        try:
            key, account = _proven(args, store)
        except LinekeeperError as exc:
            if str(exc).endswith("nothing was done"):
                raise
            raise LinekeeperError("%s: nothing was changed" % exc) from None
        refusal = _installer_refusal(args.data_dir, args.user, account, key)
        if refusal:
            if key is not None:
                key.forget()
            raise LinekeeperError(refusal + ": nothing was changed")
        actor, via = args.user, "password"
    try:
        if actor != "recovery-key":
            _refuse_installers_password(args.data_dir, account, RECOVERY_KEY_TOO)
        with DataDirLock(args.data_dir):
            moved = move_to_new_hat(
                args.data_dir,
                hat_vault(args.data_dir),
                key,
                open_audit,
                actor,
                via,
                _wall_us(),
                old_key=args.key,
            )
    finally:
        key.forget()
    if moved is None:
        print("storage.key already opens with this HAT's key vault: nothing to do")
        return 0
    old, new = moved
    print("the call log and audit trail of %s now open with this HAT; start the recorder" % args.data_dir)
    if old is not None:
        print(
            "signing key handed over from %s to %s: write the new fingerprint on the recovery "
            "sheet and check the old one against it (docs/evidence.md)" % (old, new)
        )
    return 0


def cmd_repair(args):
    """Rebuild the call log from the recordings' sealed headers (docs/recovery.md)."""
    from .box import open_audit
    from .clock import RealClock
    from .datadir import DataDirLock
    from .recovery import NOT_IN_HEADERS_WORDS, repair

    _data_dir(args.data_dir)
    if not any(
        os.path.exists(os.path.join(args.data_dir, name)) for name in ("recordings", "keys", "calls.db")
    ):
        # The wrong folder given: a repair would make a box's files in it.
        raise LinekeeperError(
            "%s holds no recordings, keys or call log: it is not a box's data directory; "
            "nothing was made" % args.data_dir
        )

    progress = Progress("linekeeper: repair: %d/%d recording files read")
    key = _unlock(args) if args.password_file else None
    try:
        with DataDirLock(args.data_dir):
            with open_audit(args.data_dir) as audit:
                report = repair(
                    args.data_dir,
                    RealClock(),
                    audit=audit,
                    progress=progress,
                    wall_us=_wall_us(),
                    recording_key=key,
                )
    except KeyboardInterrupt as exc:
        progress.end()
        raise Stopped(
            "repair stopped part way: the recordings rebuilt so far are in the call log "
            "(audited); run `linekeeper repair` again to finish it"
        ) from exc
    finally:
        progress.end()
        if key is not None:
            key.forget()
    if report["moved_aside"]:
        print("the damaged call log was kept as %s" % report["moved_aside"])
    print(
        "rebuilt %d recording(s) into the call log; %d were already in it"
        % (len(report["rebuilt"]), report["known"])
    )
    if report["rebuilt"]:
        # What the rebuilt rows do not hold: said, not guessed (docs/recovery.md).
        print("the rebuilt calls do not say %s: no recording carries them" % NOT_IN_HEADERS_WORDS)
    for name, fields in report["unknown"]:
        print(
            "rebuilt with %s unknown: %s (recorded by an older version, whose header did not "
            "carry it)" % (", ".join(fields), name)
        )
    for name, reason in report["failed"]:
        print("not rebuilt: %s: %s" % (name, reason))
    if report["failed"]:
        print(
            "%d file(s) could not be rebuilt; they are in %s"
            % (len(report["failed"]), os.path.join(args.data_dir, "quarantine")),
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_rekey(args):
    """Replace every key of the box and re-wrap every recording's data key (audited).

    Run with the box stopped (it holds the data directory). Prints progress,
    then the new recovery key once; the old one, and an old copy of
    keys/keystore.json, open nothing current afterwards.
    """
    from firmware.storage.keystore import KeyStore

    from .datadir import DataDirLock

    _data_dir(args.data_dir)
    if not KeyStore(args.data_dir).is_initialised:
        raise LinekeeperError(
            "%s has no recording keys: it is not a box's data directory, or the box was never "
            "set up; nothing was changed" % args.data_dir
        )
    password = _read_password(args.password_file)
    new_password = _read_password(args.new_password_file) if args.new_password_file else password
    keystore = KeyStore(args.data_dir)
    with DataDirLock(args.data_dir):
        # The current password first: one that does not open the key store is said to be
        # wrong, not judged by the rule for the new one; a disabled account is said to be so
        # once it is right (:func:`_proven`).
        key, account = _proven(args, keystore, password, by_hash=False)
        try:
            _refuse_installers_password(args.data_dir, account)
            summary = _rekey_with(args, keystore, key, new_password)
        finally:
            key.forget()
    print(
        "rekey done: %d recordings re-wrapped to new keys for lines %s; slots carried over: %s"
        % (
            summary["recordings"],
            ", ".join(map(str, summary["lines"])) or "none",
            ", ".join(summary["kept_slots"]) or "none",
        )
    )
    if summary["dropped_slots"]:
        print(
            "slots made before line keys were removed (their owners need a new password from a "
            "supervisor): %s" % ", ".join(summary["dropped_slots"])
        )
    if summary["header_copies"]:
        print(
            "%d recordings made before key copy files keep a copy of their old wrapped key in "
            "their sealed header: the old admin key still opens those (docs/FORMAT.md)"
            % summary["header_copies"]
        )
    return 0


def _rekey_with(args, keystore, key, new_password):
    """:meth:`Rekey.run` for ``cmd_rekey`` with the admin ``key`` it opened: its summary."""
    from firmware.recording.store import RecordingStore

    from .box import open_audit
    from .keypin import RecordingKeyPin
    from .rekey import Rekey

    signer = _rekey_can_start(args, new_password)
    # Each step said from here on: making the new slots (Argon2, seconds each on a box) comes
    # before the first recording is re-wrapped. Not before: a refusal is its one line alone.
    _rekey_says("rekey: the key store opened as %s" % args.user)
    store = RecordingStore(args.data_dir, signer=signer)
    try:
        with open_audit(args.data_dir, signer) as audit:

            def audited(action, details):
                audit.append(args.user, action, None, details, _wall_us())

            shown = []

            def show(recovery):
                # Shown before the new keys are in force: a crash before then leaves the old ones.
                print("New recovery key (shown once; the old one stops working now):")
                print()
                print("    " + recovery)
                print()
                sys.stdout.flush()
                shown.append(recovery)

            rewrapped = Progress("rekey: %d/%d recordings re-wrapped", stream=sys.stdout)
            pin = RecordingKeyPin(args.data_dir, signer)
            rekey = Rekey(keystore, store, pin, audited, progress=_rekey_says, counted=rewrapped)
            try:
                ran = rekey.run(key, args.user, new_password, show)
            except KeyboardInterrupt as exc:
                rewrapped.end()
                raise Stopped(_rekey_stopped(keystore, rekey, bool(shown))) from exc
    finally:
        store.close()
    if shown:  # it ran to the end (a refusal or a stop raises)
        _recovery_typed_back(args.data_dir, shown[-1])
    return ran


def _recovery_typed_back(data_dir, recovery):
    """After a rekey, the new recovery key counts as never confirmed (web.db's site flag,
    which the dashboard and the checklist read: they ask for a new one) until it is typed
    back whole, here when the command runs at a terminal, as the web's Rekey page has it
    typed back (docs/rekey.md); a key nobody wrote down is not taken as stored."""
    from web.db import WebDb

    path = os.path.join(data_dir, "web.db")
    if not os.path.exists(path):
        return  # a box whose web UI never ran: the wizard's confirmation is still to come
    try:
        _typed_back(WebDb(path), recovery)
    except (OSError, sqlite3.Error) as exc:
        # The rekey has run, its keys in force: said, not taken for a failed rekey (exit 2,
        # no summary).
        print(
            "rekey: whether the new recovery key is written down could not be kept (web.db: %s): "
            "make sure it is; a supervisor can make a new one on Settings" % exc
        )


def _typed_back(db, recovery):
    """:func:`_recovery_typed_back` with web.db open as ``db`` (closed here)."""
    from web.site import Site
    from web.views.setup import typed_key_problem

    try:
        site = Site(db)
        site.set_recovery_confirmed(False)
        if sys.stdin.isatty():
            for _ in range(3):
                try:
                    typed = input("Type the new recovery key back as you wrote it down (Enter: later): ")
                except (EOFError, KeyboardInterrupt):
                    # Ctrl-D or Ctrl-C: the rekey has run; taken as Enter (later), not as a
                    # stop (a traceback, or "part of what it does may be done").
                    print()
                    break
                if not typed.strip():
                    break
                problem = typed_key_problem(typed, recovery)
                if problem is None:
                    site.set_recovery_confirmed(True)
                    print("rekey: the recovery key is confirmed as written down")
                    return
                print(problem)
        print(
            "rekey: the new recovery key is counted as not confirmed: the dashboard and the "
            "checklist ask a supervisor for a new one (Settings) until one is typed back"
        )
    finally:
        db.close()


def _rekey_says(text):
    """A step of ``rekey``, on stdout as it starts (a pipe's buffer held every one to the end)."""
    print(text, flush=True)


def _rekey_can_start(args, new_password):
    """The device signer, once the new password passes the web UI's rule and the signer is
    reachable; else :class:`LinekeeperError`, nothing changed."""
    from web.passwords import password_problem

    from .signing import device_signer

    problem = password_problem(new_password, args.user)
    if problem and not args.new_password_file:
        # The technician gave no new password: the one that breaks the rule is the current one.
        raise LinekeeperError(
            "without --new-password-file the current password (the password file %s) is kept as "
            "the new slot's, and it fails the password rule: %s; give a new password with "
            "--new-password-file; nothing was changed"
            % (args.password_file, problem.rstrip(".").replace("The password", "it"))
        )
    if problem:
        raise LinekeeperError(
            "%s (the new password, %s): nothing was changed" % (problem.rstrip("."), args.new_password_file)
        )
    signer = device_signer(args.data_dir)
    if signer is None:
        raise LinekeeperError(
            "the device signing key is not reachable from here (is the recorder's run "
            "directory set?): the new keys could not be pinned; nothing was changed"
        )
    return signer


def _rekey_stopped(keystore, rekey, shown=False):
    """What a rekey stopped part way (Ctrl-C) left, in words (:mod:`firmware.rekey`'s steps):
    exiting without a word, it left a technician not knowing which keys, or which recovery
    key, were in force. ``shown``: whether the new recovery key was shown before it stopped."""
    if not os.path.exists(rekey.journal_path):
        return "rekey stopped before it began: nothing was changed"
    if os.path.exists(keystore.next_path):
        # Stopped while re-wrapping, before the new recovery key was shown, there is none to throw away.
        new_key = (
            "the new recovery key shown above is NOT (throw it away)"
            if shown
            else "no new recovery key was shown"
        )
        return (
            "rekey stopped part way, before the new keys were put in force: the old keys, passwords "
            "and recovery key are still the ones in force, and %s; every recording reads as before. "
            "Run `linekeeper rekey` again: it undoes this one first, then starts afresh" % new_key
        )
    return (
        "rekey stopped part way, after the new keys were put in force: the new recovery key shown "
        "above is the one in force (keep it), and every recording reads. Run `linekeeper rekey` "
        "again to finish it: it finishes this one, then replaces every key once more, with a "
        "recovery key of its own (the last one shown is then the one in force)"
    )


def _open_box(args, on_box):
    """``(board name, box)`` for ``recorder``; ``on_box(box)`` for each box made.

    On the simulated board the box is a :class:`CurrentBox` of a
    :class:`~firmware.box.SimHost`: after a brownout the simulated Pi has no
    power, and when it returns a new box starts on the same data, as systemd
    starts the recorder on a real Pi (whose process the brownout ended).
    """
    from .box import SimHost, board_for, open_rpi_box, open_sim_host

    board_name, config = board_for(args.data_dir, args.board)
    if board_name == "sim":
        host = open_sim_host(
            _load_scenario(args.scenario),
            args.data_dir,
            speed=args.speed,
            config=config,
            restart=SimHost.AFTER_BROWNOUT,
            on_box=on_box,
            resume=True,
        )
        return board_name, CurrentBox(host)
    box = open_rpi_box(args.data_dir, config)
    on_box(box)
    return board_name, box


class CurrentBox:
    """The box a :class:`~firmware.box.SimHost` runs now, for the recorder's control
    socket and loop: a new one after each power return; none while the Pi is off."""

    def __init__(self, host):
        self.host = host
        self.board = host.board
        self.clock = host.board.clock

    def start(self):
        self.host.start()

    def stop(self):
        self.host.stop()

    def __getattr__(self, name):
        box = self.host.box
        if box is None:
            from .control import ControlError

            raise ControlError("the simulated Pi has no power (a brownout): nothing runs", "power")
        return getattr(box, name)


def cmd_recorder(args):
    """Run the recorder (board, supervision, DSP, policy, recording, retention) until stopped.

    It serves the web UI's few requests on DATA_DIR/control.sock, tells systemd
    when it is ready, and pings systemd's watchdog only while its lines are
    really being serviced.
    """
    from .control import ControlServer, recorder_handlers, socket_path
    from .heartbeat import Heartbeat
    from .sdnotify import Notifier

    power_back = threading.Event()

    def on_power_back():
        # Sealed for a power cut the capacitor rode out: exit, and systemd
        # (Restart=always) starts a fresh recorder on the returned power.
        power_back.set()
        stopping.set()
        if board_name == "sim":
            box.clock.stop()

    def on_box(new_box):
        new_box.on_power_back = on_power_back
        # The recorder has no network on the box (linekeeper-recorder.service): it queues
        # its mail, and the web UI's process delivers the queue and the scheduled reports.
        new_box.mail.deliver = False
        if new_box.archive is not None:
            new_box.archive.uploads_here = False  # the web UI's process uploads

    from . import startfail
    from .signing import own_run_dir

    def failed(exc):
        # Dated on the monotonic clock too: a failure before the network time arrives is
        # dated again once it has (firmware/startfail.py).
        wall_us, mono_us, synced = startfail.clocks_now()
        startfail.record(own_run_dir(), exc, wall_us, mono_us, synced)

    try:
        board_name, box = _open_box(args, on_box)
    except Exception as exc:
        failed(exc)
        raise
    notifier = Notifier()
    stopping = _on_signals(lambda: box.clock.stop() if board_name == "sim" else None)
    group = _group_id(args.web_group)
    server = ControlServer(
        socket_path(args.data_dir), recorder_handlers(box, board_name=board_name), group=group
    )
    heartbeat = Heartbeat(box, notifier)
    try:
        try:
            box.start()
            # The gap the failed starts left, alarmed and audited; the note goes only
            # then (a card that refuses the entry fails this start too, and the next
            # start notes the whole gap).
            earlier = startfail.read(own_run_dir())
            if earlier is not None:
                box.note_failed_starts(earlier)
        except Exception as exc:
            failed(exc)
            raise
        startfail.clear(own_run_dir())
        server.start()
        heartbeat.start()
        notifier.ready("recording %d lines" % box.board.lines)
        print(
            "linekeeper: recorder: %s board, %d lines; control socket %s"
            % (board_name, box.board.lines, server.path),
            flush=True,
        )
        if board_name == "sim":
            finished = box.board.run()
            rounds = 1
            while finished and args.loop and not stopping.is_set():
                log.info("the scenario has ended (round %d); playing it again", rounds)
                box.board.replay()
                finished = box.board.run()
                rounds += 1
            if finished and not stopping.is_set():
                print("linekeeper: the scenario has ended; the box stays up (Ctrl-C to stop)", flush=True)
        heartbeat.idle = True  # nothing left to service but the control socket
        stopping.wait()
    finally:
        notifier.stopping()
        heartbeat.stop()
        server.stop()
        box.stop()
    if power_back.is_set():
        print(
            "linekeeper: recorder: the power came back after a power-fail warning; exiting "
            "to be started again",
            file=sys.stderr,
        )
        return EX_TEMPFAIL
    return 0


def _group_id(name):
    if not name:
        return None
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise LinekeeperError("no group %r for the web UI (--web-group)" % name) from None


def cmd_web(args):
    """Serve the web UI beside a running recorder until stopped."""
    from web.server import start_web_process
    from web.setupcode import setup_code_for

    from .control import ControlClient, RecorderUnavailable, socket_path
    from .sdnotify import Notifier

    client = ControlClient(socket_path(args.data_dir))
    hello = None
    for _ in range(int(args.wait_s * 10) + 1):
        try:
            hello = client.call("hello", protocol=1)
            break
        except RecorderUnavailable:
            time.sleep(0.1)
    without_recorder = hello is None
    if without_recorder:
        # The UI is served all the same: while the recorder cannot start, the dashboard
        # is where people read why (firmware/startfail.py).
        hello = _hello_without_recorder(args.data_dir)
        print(
            "linekeeper: no recorder answers on %s: the web UI starts without it (%d lines); "
            "the dashboard says the recorder is down, and why when it knows"
            % (socket_path(args.data_dir), hello["lines"]),
            file=sys.stderr,
            flush=True,
        )
    host = args.host or ("0.0.0.0" if hello["board"] == "rpi" else "127.0.0.1")
    server = start_web_process(
        args.data_dir,
        client,
        hello["lines"],
        host=host,
        https_port=args.https_port,
        http_port=args.port,
        box_name=args.name,
    )
    stopping = _on_signals(lambda: None)
    print(
        "linekeeper: %s board, %d lines; web UI on %s (port %d redirects there)"
        % (hello["board"], hello["lines"], server.public_url, server.http_port),
        flush=True,
    )
    print(
        "linekeeper: the box's certificate has SHA-256 fingerprint %s" % server.certificate.fingerprint,
        flush=True,
    )
    if server.certificate.replaced:
        print(
            "linekeeper: the box's certificate was made anew, %s: browsers will warn of it, check "
            "the fingerprint above; the old files are kept aside in %s (%s)"
            % (
                server.certificate.replaced,
                os.path.dirname(server.certificate.cert_path),
                ", ".join(server.certificate.kept) or "none",
            ),
            file=sys.stderr,
            flush=True,
        )
    code = setup_code_for(args.data_dir) if server.data_refused is None else None
    if code is not None:
        print(
            "linekeeper: not set up yet: open %s and enter the setup code %s" % (server.public_url, code),
            flush=True,
        )
    Notifier().ready("serving %s" % server.url)
    came = threading.Event()
    opened = threading.Event()
    if server.data_refused is not None:
        from web.refused import wait_until_it_opens

        reason, named = server.data_refused
        print(
            "linekeeper: the web UI cannot open the box's data (%s): it serves a page that says so "
            "until the data opens" % reason,
            file=sys.stderr,
            flush=True,
        )
        threading.Thread(
            target=wait_until_it_opens,
            args=(args.data_dir, named, stopping, opened),
            name="await-data",
            daemon=True,
        ).start()
    elif without_recorder:
        # Once a recorder answers, the UI starts again beside it (its lines, its clock).
        threading.Thread(
            target=_await_recorder, args=(client, stopping, came), name="await-recorder", daemon=True
        ).start()
    try:
        stopping.wait()
    finally:
        server.stop()
    if came.is_set():
        print("linekeeper: the recorder answers now; the web UI starts again beside it", file=sys.stderr)
        return EX_TEMPFAIL
    if opened.is_set():
        print("linekeeper: the web UI tries its full start again", file=sys.stderr)
        return EX_TEMPFAIL
    return 0


def _await_recorder(client, stopping, came, interval_s=2.0):
    from .control import RecorderUnavailable

    while not stopping.wait(interval_s):
        try:
            client.call("hello", protocol=1)
        except RecorderUnavailable:
            continue
        came.set()
        stopping.set()
        return


def _hello_without_recorder(data_dir, default_lines=4):
    """What the recorder's hello would say, for a web UI that starts without it: the
    board the configuration names, and the number of lines the site settings name (a
    box set up), or its HAT has, or ``default_lines``."""
    from .box import board_for, configured_lines

    board_name, _ = board_for(data_dir)
    lines = configured_lines(data_dir)
    return {"board": board_name, "lines": lines or default_lines}


def cmd_run(args):
    """Run the whole box, recorder and web UI, as two processes until stopped.

    The two are what the systemd services run on the box. Here one command
    starts both, restarts either one that dies (the other goes on: a web UI
    crash never stops recording), and stops both on SIGINT/SIGTERM.
    """
    from .runner import run_box

    return run_box(args)


EX_TEMPFAIL = 75  # sysexits.h: try again (the power came back)


def _on_signals(action):
    """Run ``action`` on SIGINT/SIGTERM; returns an Event set when that happens."""
    stopping = threading.Event()

    def stop():
        stopping.set()
        action()

    def handler(signum, frame):
        # Not here: a handler runs between two bytecodes of the main thread, which
        # may be holding the very lock (an Event's) that setting a flag needs.
        threading.Thread(target=stop, name="linekeeper-stop", daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return stopping


# Commands whose process may hold a recording key or the device signing key.
# The commands that never hold a secret key (public keys, WAV files, the console's setup
# banner, an update bundle's signature): every other one runs without core dumps.
KEYLESS_COMMANDS = frozenset(
    {"keys", "verify-export", "verify-audit", "analyze", "banner", "linecheck", "update"}
)


def holds_keys(command):
    """Whether ``command`` may hold a key in memory (a recording key, the storage key, a
    password), so must never leave it in a core file."""
    return command not in KEYLESS_COMMANDS


# What `linekeeper --help` says first: plain words, not the module's docstring (its reST
# markup was shown raw: "The ``linekeeper`` command.").
DESCRIPTION = (
    "Linekeeper, the call recording box: run it, and look after its recordings, keys, audit "
    "trail, reports and archive. Each command's --help says more."
)


def _describe(parser):
    """Give every command under ``parser`` with no description of its own its line in the
    list of commands, as a sentence: `linekeeper calls --help` said nothing of what it does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            said = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and said.get(name):
                    text = said[name]
                    sub.description = text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
                _describe(sub)


def build_parser():
    parser = argparse.ArgumentParser(prog="linekeeper", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sim", help="run the box headless on a scenario file, then exit")
    p.add_argument("scenario", help="scenario file (JSON or TOML), or 'demo'")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="'max' (default: as fast as possible) or simulated seconds per second",
    )
    p.add_argument(
        "--config",
        help="box configuration (as config.json) to run with, instead of "
        'the scenario\'s "config" or DATA_DIR/config.json',
    )
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("run", help="run the box and its web UI until stopped")
    p.add_argument(
        "--board", choices=("sim", "rpi"), help="override LINEKEEPER_BOARD and the configured board"
    )
    p.add_argument("--scenario", default="demo", help="scenario for the simulated board")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="simulated seconds per second on the simulated board (default 1), or 'max'",
    )
    p.add_argument(
        "--loop",
        action="store_true",
        help="play the scenario again each time it ends (the demo of `make run`)",
    )
    p.add_argument(
        "--host",
        help="address to serve the web UI on (default: 127.0.0.1 on the "
        "simulated board, every address (0.0.0.0) on the box)",
    )
    p.add_argument("--port", type=port, default=8080, help="HTTP port (redirects to HTTPS)")
    p.add_argument(
        "--name",
        help="the box's name or address, where the HTTP port redirects "
        "(default: the --host address, or HOSTNAME.local)",
    )
    p.add_argument("--https-port", type=port, default=8443, help="HTTPS port of the web UI")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("recorder", help="run the recorder alone (the linekeeper-recorder service)")
    p.add_argument(
        "--board", choices=("sim", "rpi"), help="override LINEKEEPER_BOARD and the configured board"
    )
    p.add_argument("--scenario", default="demo", help="scenario for the simulated board")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="simulated seconds per second on the simulated board (default 1), or 'max'",
    )
    p.add_argument("--loop", action="store_true", help="play the scenario again each time it ends")
    p.add_argument("--web-group", help="group whose members (the web UI's user) may use the control socket")
    p.set_defaults(func=cmd_recorder)

    p = sub.add_parser("web", help="serve the web UI beside a running recorder (the linekeeper-web service)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--host",
        help="address to serve on (default: 127.0.0.1 on the simulated "
        "board, every address (0.0.0.0) on the box)",
    )
    p.add_argument("--port", type=port, default=8080, help="HTTP port (redirects to HTTPS)")
    p.add_argument("--https-port", type=port, default=8443, help="HTTPS port of the web UI")
    p.add_argument(
        "--name",
        help="the box's name or address, where the HTTP port redirects "
        "(default: the --host address, or HOSTNAME.local)",
    )
    p.add_argument(
        "--wait-s", type=float, default=30.0, help="how long to wait for the recorder at start (default 30 s)"
    )
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("init", help="create the box's recording keys and first key slot")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--password-file", required=True, help="file whose first line is the password")
    p.add_argument("--user", default="admin", help="the key slot's user name (default: admin)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "rekey", help="replace every recording key and the recovery key (box stopped; audited)"
    )
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument("--user", default="admin", help="a user whose slot opens every line")
    p.add_argument(
        "--new-password-file", help="a new password for --user's new slot (default: the same password)"
    )
    p.set_defaults(func=cmd_rekey)

    p = sub.add_parser("export", help="export a call's recording (audited)")
    p.add_argument("call_id", type=int, help="the call's number on the box (N of its page, /calls/N)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument(
        "--user", default="admin", help="who exports it: their key slot opens it; audited (default: admin)"
    )
    p.add_argument(
        "--reason",
        required=True,
        help='why it is exported, 5 to 500 characters (e.g. "complaint ref 1234"); audited',
    )
    p.add_argument("--out", required=True, help="a .wav or .ogg file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "sar",
        help="answer a subject access request: a bundle of every call "
        "of a number (any form), and/or of lines, and/or a date range",
    )
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--number", help="the requester's number, in any form")
    p.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        help="first day of the calls (YYYY-MM-DD, the box's zone; with --to)",
    )
    p.add_argument(
        "--to", dest="last", metavar="DATE", help="last day of the calls, included (YYYY-MM-DD; with --from)"
    )
    p.add_argument(
        "--from-time",
        dest="first_time",
        metavar="HH:MM",
        help="start at this time of --from's day (24-hour, the box's time zone), as the calls list's "
        "times: a withheld caller's call \"about 9:05\" among that quarter hour's calls, not the day's",
    )
    p.add_argument(
        "--to-time", dest="last_time", metavar="HH:MM", help="end with this minute of --to's day (included)"
    )
    p.add_argument(
        "--line",
        dest="lines",
        action="append",
        metavar="N",
        help="every call on line N of --from to --to, whichever the number at the other end "
        "(again for more; --user's lines only): a staff member's own calls, with --whose",
    )
    p.add_argument(
        "--call",
        dest="calls",
        type=int,
        action="append",
        metavar="ID",
        help="release only this call (again for more): a withheld caller's calls, found by date",
    )
    p.add_argument(
        "--whose",
        metavar="TEXT",
        help="with --call after a search by date alone (the calls found are any caller's), or "
        "after a search by --line (a line is a staff member's only if it is theirs alone): how "
        "you know each call released is the requester's, or one the request covers; required "
        "then, audited with the release, not in the bundle",
    )
    p.add_argument(
        "--password-file", required=True, help="file whose first line is the password of --user's key slot"
    )
    p.add_argument("--user", default="admin", help="who releases (a key slot's user)")
    p.add_argument(
        "--bundle-password-file", help="encrypt the bundle (OpenPGP, AES-256) with this file's first line"
    )
    p.add_argument("--requester", required=True, help="who asked")
    p.add_argument("--recipient", required=True, help="to whom it is released")
    p.add_argument("--reason", required=True, help="why (e.g. subject access request)")
    p.add_argument(
        "--redact",
        action="append",
        metavar="CALL:FROM-TO",
        help="silence seconds FROM to TO of call CALL's recording (repeatable)",
    )
    p.add_argument(
        "--withhold",
        action="append",
        metavar="ID:REASON",
        help="leave the copy given before of disclosure log entry ID out of the letter, for REASON "
        '(e.g. "3:exemption: crime prevention, DPA 2018 Sch 2 para 2"); audited (repeatable)',
    )
    p.add_argument(
        "--earlier",
        action="store_true",
        help="only list the copies given before that the letter would list (and those withheld); "
        "release nothing; audited as a look at the person's calls",
    )
    p.add_argument(
        "--letter",
        action="store_true",
        help="only print the bundle's letter (README.txt) as it would go, on stdout, and its "
        "SHA-256 on stderr; release nothing",
    )
    p.add_argument(
        "--letter-sha256",
        metavar="HEX",
        help="release only the letter --letter showed with this SHA-256 (refused, nothing released, "
        "if it changed since); needed when the letter names who was given copies before",
    )
    p.add_argument("--out", required=True, help="the bundle (.zip, or .zip.gpg when encrypted)")
    p.set_defaults(func=cmd_sar)

    p = sub.add_parser(
        "erase-calls",
        help="erase every call of a person's numbers (any form) on --user's lines, at their request: "
        "prints what it would do and a code; erases with --confirm CODE (audited)",
    )
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--number",
        dest="numbers",
        action="append",
        required=True,
        metavar="NUMBER",
        help="the person's number, in any form (again for each of their numbers)",
    )
    p.add_argument("--user", default="admin", help="the supervisor who erases (audited)")
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument(
        "--reason", required=True, help='why, 5 to 500 characters (e.g. "erasure request #12"); audited'
    )
    p.add_argument(
        "--confirm",
        metavar="CODE",
        help="erase the calls the run without it listed, with the code it printed (refused, nothing "
        "erased, if the calls found changed since)",
    )
    p.set_defaults(func=cmd_erase_calls)

    p = sub.add_parser("verify", help="check every recording and the audit trail")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--password-file",
        help="also authenticate every chunk of every recording (a supervisor's: of their lines); "
        "an auditor's or installer's password proves who ran it, and opens no recording",
    )
    p.add_argument("--user", default="admin", help="--password-file's user (default: admin)")
    p.add_argument(
        "--head",
        help="an audit head taken earlier (SEQ:HASH, from the audit page "
        "or a report): it must still be in the audit trail",
    )
    p.add_argument(
        "--key",
        help="the box's signing key fingerprint, kept off the box "
        "(`linekeeper keys --fingerprint`): signatures must be by it",
    )
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "verify-export",
        help="check an exported recording with only the box's public key fingerprint (no box needed)",
    )
    p.add_argument(
        "file",
        help="the exported .wav or .ogg (its FILE.manifest.json beside it), or the zip the call "
        "page's export with signed manifest gives, as it is",
    )
    p.add_argument("--key", required=True, help="the box's signing key fingerprint")
    p.add_argument("--manifest", help="the manifest, if not FILE.manifest.json")
    p.set_defaults(func=cmd_verify_export)

    p = sub.add_parser(
        "verify-audit",
        help="check a copy of the audit trail (the Audit trail page's CSV) with only the box's "
        "public key fingerprint (no box needed)",
    )
    p.add_argument("file", help="the audit.csv downloaded from the Audit trail page")
    p.add_argument(
        "--key",
        required=True,
        action="append",
        help="the box's signing key fingerprint (the current one, from the recovery sheet: a "
        "whole copy from audit-export carries the handovers to it); again for each replaced "
        "HAT's key, for the entries it signed before its handover in a copy without them",
    )
    p.set_defaults(func=cmd_verify_audit)

    p = sub.add_parser(
        "verify-statement",
        help="check a signed statement: the one `keystore backup` writes beside a backup when the "
        "audit trail cannot record it (a read-only card), or the one beside a copy of the deletion "
        "log signed by the box (the Deletion log page's .zip): signed by the box, unchanged, what "
        "it states; exit 0 only when it verifies",
    )
    p.add_argument("file", help="the statement, FILE.statement.json (the FILE beside it is checked)")
    whose = p.add_mutually_exclusive_group(required=True)
    whose.add_argument("--data-dir", help="the box's data directory: signed by its key (or one it took over)")
    whose.add_argument("--key", help="the box's signing key fingerprint (`linekeeper keys --fingerprint`)")
    p.set_defaults(func=cmd_verify_statement)

    p = sub.add_parser(
        "audit-export",
        help="copy the whole audit trail, entry 1 to the head, to a new FILE that verify-audit "
        "checks with the box's current fingerprint alone (audited)",
    )
    p.add_argument("file", help="the CSV file to write (a new file)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--user", default="admin", help="the auditor who copies it")
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.set_defaults(func=cmd_audit_export)

    p = sub.add_parser(
        "breach-scope",
        help="what one account viewed, played, exported or released over a period, its logins, "
        "and how many callers' numbers: a CSV for a breach report (auditors; audited)",
    )
    p.add_argument("account", help="the account whose use is looked into")
    p.add_argument("file", help="the CSV file to write (a new file)")
    p.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD (the box's zone)")
    p.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD (the box's zone)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--user", default="admin", help="the auditor who reads it")
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.set_defaults(func=cmd_breach_scope)

    p = sub.add_parser("keys", help="show the box's public signing key fingerprint")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--fingerprint", action="store_true", help="print the fingerprint alone")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("repair", help="rebuild a lost or damaged call log from the recordings")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--password-file", help="also authenticate each rebuilt recording and record its exact duration"
    )
    p.add_argument("--user", default="admin", help="--password-file's user (default: admin)")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser(
        "hat-replaced", help="after a HAT replacement: move the sealed data's keys to the new HAT's vault"
    )
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--recovery-key-file", help="file whose first line is the recovery key")
    who.add_argument("--password-file", help="file whose first line is a user's password")
    p.add_argument("--user", default="admin", help="the password's user (default: admin)")
    p.add_argument(
        "--key",
        help="the old signing key fingerprint, as on the recovery sheet: the key handed over must have it",
    )
    p.set_defaults(func=cmd_hat_replaced)

    p = sub.add_parser("config", help="export or import the box's configuration (no secrets)")
    p.add_argument(
        "action",
        choices=("export", "import"),
        help="export: write the configuration to FILE; import: read it",
    )
    p.add_argument("file", help="the JSON file to write (export) or read (import)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument(
        "--user",
        help="who exports or imports, for the audit trail, proven by --password-file (without both, "
        "the trail names cli, root on the box)",
    )
    p.add_argument("--password-file", help="file whose first line is --user's password")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser(
        "keystore",
        help="back up the key store, or put a backup back where it is missing (audited)",
        description="Back up the key store to a new FILE, or put a backup back where it is missing; "
        "audited. On a card mounted read-only the audit trail cannot record a backup: it is made all "
        "the same, with a statement of it beside it (FILE.statement.json, checked by "
        "`linekeeper verify-statement`), the command exits 0, and a line on stdout begins "
        "'not audited:' and names the statement. Exit 2: nothing was done, stderr says why.",
    )
    p.add_argument(
        "action",
        choices=("backup", "restore"),
        help="backup: write the key store to FILE; restore: put FILE back where the key store is missing",
    )
    p.add_argument("file", help="the backup to write, a new file (backup), or read (restore)")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--recovery-key-file", help="restore: file whose first line is the recovery key")
    p.add_argument(
        "--password-file",
        help="file whose first line is --user's password: restore, to open the backup; backup, "
        "to prove who backs up",
    )
    p.add_argument(
        "--user",
        help="backup: who backs up, for the audit trail, proven by --password-file (without both, "
        "the trail names cli, root on the box); restore: whose password opens the backup "
        "(default: admin)",
    )
    p.add_argument(
        "--accept-lost-lines",
        action="store_true",
        help="restore: put back a backup made before a line had its recording key, all the same "
        "(that line's recordings made with the key then open with nothing)",
    )
    p.set_defaults(func=cmd_keystore)

    p = sub.add_parser("banner", help="show the setup code on the console until setup is done")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--issue", help="also write it to this login-prompt issue file (emptied once set up)")
    p.set_defaults(func=cmd_banner)

    p = sub.add_parser("calls", help="print the calls a search finds (callers' numbers and names), audited")
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per call")
    p.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    p.add_argument(
        "--user",
        default="admin",
        help="who asks for it: a supervisor (their lines' calls only) or an auditor; audited",
    )
    p.add_argument(
        "--line", dest="lines", action="append", metavar="N", help="only this line's calls (repeatable)"
    )
    p.add_argument(
        "--from", dest="first", metavar="YYYY-MM-DD", help="calls from this day on (the box's zone)"
    )
    p.add_argument(
        "--to", dest="last", metavar="YYYY-MM-DD", help="calls up to this day's end (the box's zone)"
    )
    p.add_argument(
        "--number",
        help="calls whose number contains this, or starts with it (--match): 01632, +44 1632 960777",
    )
    p.add_argument(
        "--match",
        metavar="starts|contains",
        help="how --number is matched, as the calls list's search: starts, the number's start "
        "(past 141, 18001 and the line's outside-line digit); contains, its digits anywhere "
        "(the default)",
    )
    p.add_argument("--direction", choices=("in", "out"), help="inbound or outbound calls only")
    p.add_argument(
        "--name",
        help="calls whose caller's name holds this (any case), as the calls list's search: the "
        "caller-ID's, the phonebook's, or the name a call was corrected to on request",
    )
    p.add_argument("--tag", help="calls tagged with this tag (as the calls list lists them)")
    p.add_argument(
        "--min-duration",
        metavar="SECONDS",
        help="calls of at least this talk time, from answer to end, in whole seconds",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=CALLS_LIMIT,
        metavar="N",
        help="print the newest N calls found, at most %d (default %d; stderr says when more matched)"
        % (CALLS_LIMIT_MAX, CALLS_LIMIT),
    )
    p.set_defaults(func=cmd_calls)

    p = sub.add_parser(
        "report", help="a report of the calls, recordings and alarms of a period, as JSON, CSV or PDF"
    )
    from .reports import cli as report_cli

    report_cli.add_arguments(p)
    p.set_defaults(func=report_cli.run)
    p = sub.add_parser(
        "year-review",
        help="the year in review: calls recorded and not, requests, access, alarms and records "
        "kept over a period (default: the last 12 whole months), as PDF or JSON, no personal data",
    )
    report_cli.add_year_arguments(p)
    p.set_defaults(func=report_cli.run_year)
    from .archive.cli import add_parser as add_archive

    add_archive(sub)
    p = sub.add_parser("update", help="install a signed update bundle (RAUC), or --status")
    from .update import command as update_command

    update_command.add_arguments(p)
    p.set_defaults(func=update_command.run)

    p = sub.add_parser(
        "linecheck",
        help="report each line's observed adapter behaviour "
        "(caller ID, clear signal, ringing) and the profiles "
        "it fits",
    )
    p.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=cmd_linecheck)

    p = sub.add_parser("analyze", help="find caller ID, DTMF and tones in a WAV file")
    from firmware.dsp import analyze

    analyze.add_arguments(p)
    p.set_defaults(func=analyze.run)
    _describe(parser)
    return parser


# Commands that need root itself (RAUC, mounts) or run as the services' own users, and
# those that only read the box's data (their output goes where root asks).
_ROOT_COMMANDS = ("update", "recorder", "web", "banner")
_READ_ONLY = ("calls", "verify", "export", "analyze", "verify-statement")
_ACTING_FOR_ROOT = False  # run by root, acting as the box's user (_as_the_box)
_READ_AS_ROOT = {}  # path -> (text, mode): the files of secrets given, read before acting


class Stopped(KeyboardInterrupt):
    """Ctrl-C (or a signal a command stops on) stopped a command, which says in ``words``
    what it had done by then and what to do (:func:`main` says them on stderr); raised from
    the :class:`KeyboardInterrupt`. ``signum``: the signal, for the exit status."""

    def __init__(self, words, signum=signal.SIGINT):
        super().__init__(words)
        self.words = words
        self.signum = signum


# Commands a stop leaves as they were: they read, and write nothing on the box or elsewhere.
CHANGE_NOTHING = frozenset(
    {
        "calls",
        "verify",
        "verify-export",
        "verify-audit",
        "verify-statement",
        "keys",
        "banner",
        "linecheck",
        "analyze",
        "archive audit-head",
        "archive search",
    }
)
# Commands that write one file, atomically (a temporary file renamed over it), and nothing else.
ONE_FILE = {"report": "out", "year-review": "out", "config export": "file"}


def _command_name(args):
    """The command as typed: ``calls``, ``config import``, ``archive index``."""
    sub = getattr(args, "archive_command", None) or (
        args.action if args.command in ("config", "keystore") else None
    )
    return args.command if sub is None else "%s %s" % (args.command, sub)


def _stopped(args):
    """What a command stopped by Ctrl-C left, in words, when it did not say so itself."""
    name = _command_name(args)
    if name in CHANGE_NOTHING:
        return "%s stopped; nothing was changed" % name
    if name in ONE_FILE and getattr(args, ONE_FILE[name]) == "-":  # to stdout
        return "%s stopped; nothing was changed" % name
    if name in ONE_FILE:
        return (
            "%s stopped; nothing on the box was changed, and %s is not there or is the whole new "
            "file, never part of one" % (name, getattr(args, ONE_FILE[name]))
        )
    return (
        "%s stopped before it finished: part of what it does may be done; read what it printed "
        "before running it again" % name
    )


def _as_the_box(args):
    """Run as root on the appliance's data directory (2770, the services' group), a command
    acts as the directory's owner (the recorder's user) with the services' umask, so what
    it makes (config.json, the keys, the call log) the services can use: made by root,
    0600, the recorder could not read its own configuration. Files the command reads
    or writes elsewhere (a password file, an export's output) must then be that user's
    to use; the message of a refusal says so."""
    data_dir = getattr(args, "data_dir", None)
    if not data_dir or args.command in _ROOT_COMMANDS + _READ_ONLY or os.geteuid() != 0:
        return
    if args.command in ("config", "keystore") and getattr(args, "action", None) in ("export", "backup"):
        return
    from .storage.fsutil import appliance_dir

    try:
        if not appliance_dir(data_dir):
            return
        st = os.stat(data_dir)
    except OSError:
        return  # the command says what is wrong with it
    if st.st_uid == 0:
        return
    global _ACTING_FOR_ROOT
    # The password, recovery key or secret files given are read as root first: they
    # are where root keeps them (/root), which the box's user cannot read.
    for name, path in sorted(vars(args).items()):
        if name.endswith("_file") and isinstance(path, str):
            try:
                with open(path, encoding="utf-8") as f:
                    _READ_AS_ROOT[path] = (f.readline(), os.fstat(f.fileno()).st_mode)
            except (OSError, UnicodeDecodeError):
                pass  # said when the command reads it
    if args.command == "config":  # the file to import, from where root keeps it
        from board.jsonpos import InputFileError, read_input_file

        from .configio import MAX_IMPORT_BYTES

        try:
            _READ_AS_ROOT[("import", args.file)] = read_input_file(args.file, MAX_IMPORT_BYTES)
        except InputFileError:
            pass  # said when the command reads it
    if args.command == "keystore":  # the backup to put back, from where root keeps it
        from .keybackup import MAX_BACKUP_BYTES

        try:
            with open(args.file, "rb") as f:
                _READ_AS_ROOT[("keystore", args.file)] = f.read(MAX_BACKUP_BYTES + 1)
        except OSError:
            pass  # said when the command reads it
    os.setgroups([])
    os.setgid(st.st_gid)
    os.setuid(st.st_uid)
    os.umask(SHARED_UMASK)
    _ACTING_FOR_ROOT = True


@functools.lru_cache(maxsize=1)
def _parser():
    """:func:`build_parser`, once a process: its hundred-odd commands and options take
    some 30 ms to build, and a process that runs the command again and again (the
    tests run it in theirs) need not build them each time; parsing leaves it as it was."""
    return build_parser()


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    from .logwhere import configure as configure_log

    configure_log(args)  # a service's log on stderr (the journal); a person's command's to the system log
    # Everything the box writes (call log, recordings, keys, audit) is private:
    # to the box's user, or to the group of its two services, which run with
    # umask 0007 (see firmware.storage.fsutil.data_mode).
    if os.umask(0o077) == SHARED_UMASK:
        os.umask(SHARED_UMASK)
    _as_the_box(args)
    _date_by_box(args)
    if holds_keys(args.command):
        from .hardening import no_core_dumps

        no_core_dumps()  # keys in memory never reach the card in a core file
    terminated = []
    before = _stop_on_sigterm(args.command, terminated)
    del _USED_HERE[:]
    try:
        status = args.func(args)
        if status == 0:
            for guess in _USED_HERE:
                guess.used_here()
        return status
    except BrokenPipeError:
        return 0
    except (LinekeeperError, OSError, sqlite3.Error) as exc:
        # Storage: full, read-only, permission, I/O, not a database — one line, never a trace.
        from .startfail import describe

        print("linekeeper: %s" % describe(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM where a command stops on it
        print("linekeeper: %s" % (exc.words if isinstance(exc, Stopped) else _stopped(args)), file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else getattr(exc, "signum", signal.SIGINT))
    finally:
        del _USED_HERE[:]
        if before is not None:
            signal.signal(signal.SIGTERM, before)


# Commands that take a SIGTERM (systemd, timeout, a supervisor's kill) as a Ctrl-C: a copy
# of personal data made, whose audit entry says whether it was taken or failed. SIGTERM's
# default ended the process where it stood: after the entry, a copy the trail shows as
# taken with nothing written.
SIGTERM_STOPS = frozenset({"export", "report", "year-review", "calls"})


def _stop_on_sigterm(command, terminated):
    """For :data:`SIGTERM_STOPS`, SIGTERM raises :class:`KeyboardInterrupt` as Ctrl-C does
    (noted in ``terminated``, for the exit status); returns the handler it had, or None."""
    if command not in SIGTERM_STOPS or threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt("SIGTERM")

    return signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
