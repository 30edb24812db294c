"""A breach's scope for one account over a period: what a misused account (a shared
password, a leaver's) looked at, from the audit trail, for a report to the ICO (UK GDPR
Article 33: the categories and approximate number of data subjects and records concerned).

:func:`scope` reads the period's entries of :data:`ACCESS` and :data:`LOGINS` through the
trail's indexes (:meth:`AuditLog.in_period`), keeps the account's, and names each call they
were about (a call's page viewed, its recording played or exported, released to a subject or
previewed in a letter) with its line, its time and the far end's number from the call log; the
number of distinct numbers is the number of data subjects (callers) affected, the number a
subject access search (``disclosure_search``) found calls of among them. A calls list or
report downloaded (``export_list``, ``report``) is one row of its own, with what it held,
since the calls in it are not on record one by one; the summary adds up the rows each kind of
list held (its entry's ``rows``, or the rows written of one cut short, ``export_list_cut``; an
auditor's copy of the whole trail, ``audit_export``, and a breach scope's CSV it took,
``breach_scope``, too), the records a DPO reports beside the calls named, and the callers'
numbers each report's callback list held (its entry's ``callers``); the box's configuration
written to a file (``config_export``) is a row, its number rules' patterns (staff's or callers'
numbers, in clear) counted apart (its entry's ``number_patterns``); a document that holds no
personal data (the year in review: counts only), its ``report`` entry saying
``"personal_data": false``, is a row all the same but not counted as calls or personal data
accessed. The calls list, a report and the phonebook shown on screen (``list_viewed``, one
entry per page shown) are rows too, counted by the page with the calls or phonebook entries
(``rows``) or callers' numbers (``callers``) each showed; a page of the calls list names the
calls it showed (``calls``), and those the account did not otherwise look at are counted
apart, as shown in a list only (``calls_listed_only``), never among the calls looked at, their
callers made distinct from the call log (``listed_only_numbers``: those not among the distinct
numbers already). A data subject's request opened (``request_viewed``: its page shows who asked,
how to reach them and what they asked) is a row too, its request named in its details, and the
summary counts the requests opened (``requests_viewed``), each a person whose contact details
the account read. A figure added up over lists, pages or reports (their entries say how many,
not which) is an upper bound of the people in them: a caller in two is counted in each; a
report's entry that names its callback list's calls too (``calls``: each number's last missed
call) has them made distinct from the call log (``report_numbers``). What the
account destroyed or unprotected (:data:`DESTROYS`: a call's recordings erased, a caller's
details erased, a legal hold released) is a row for each call, with its line and number where
the call log still has it, counted apart (a loss of availability is a breach too), its callers
among the distinct numbers, its time within the first and last access; one refused, or not
made (its ``not_made``
entry looked for after the period too), is a row alone. What it altered (:data:`ALTERS`: a
caller's name corrected for a call) is a row for each call too, counted apart (an alteration
is a breach too, of integrity), its callers among the distinct numbers. A copy (:data:`COPIES`, or a
recording's ``export``) whose failure was audited after it (a second entry by the account
with the same details and ``failed``, maybe after the period) handed nothing over: a row, not
a list taken. A look at the audit
trail filtered by a number (``audit_view``, or its CSV: ``export_list`` of ``audit``) showed
every entry about that person's calls: the number is one of the distinct numbers, as a subject
access search's is. The logins (and failed ones, the wrong passwords typed for it at the login
page among them, audited by ``anonymous``) say when, and from which addresses, the account was
used or tried.

``linekeeper breach-scope`` (auditors) writes it as CSV (:func:`csv_text`, under
:data:`COLUMNS`) and prints the summary (:func:`summary_lines`); the Audit trail page's
*Breach scope* page (web/views/audit.py) shows the summary and downloads the same CSV.
docs/operating.md says how a DPO uses it.
"""

import csv
import io
import json
import os
import sqlite3
from collections import Counter
from typing import Any

from firmware.calls.calllog import CALL_ROWS, call_json, iso_ms
from firmware.csvsafe import cell
from firmware.datadir import connect_readonly
from firmware.policy import cards
from firmware.policy.rules import called_number, normalise
from firmware.sar import failed_releases
from firmware.storage.fieldseal import register_sql
from firmware.words import counted, lines_named

# What an account did with calls: each names its call(s), but the lists and reports.
ACCESS = (
    "call_viewed",
    "playback",
    "export",
    "disclosure",
    "disclosure_preview",
    "disclosure_search",
    "export_list",
    "report",
    "audit_export",
    "breach_scope",
    "list_viewed",
    "request_viewed",
    "config_export",
)
# A data subject's request's page opened (``request_viewed``, target ``request:N``): it shows
# who asked, how to reach them, their numbers and what they asked, so each request opened is a
# data subject whose contact details the account read (web/views/rights.py).
REQUEST_VIEW = "request_viewed"
# A page of callers' numbers shown on screen (``list_viewed``): the calls list, one page of
# its search (``rows``: the calls shown), a report (``callers``: its callback list's
# numbers), the phonebook (``rows``: its entries, every one), or the data subjects' requests
# (``rows``: the requests listed, each with who asked). By its target: the page in
# words, its entry's count, what that counts, in words.
LIST_VIEW = "list_viewed"
SHOWN = {
    "calls": ("calls list page", "rows", "call", "calls", "each with its caller's number"),
    "phonebook": ("phonebook page", "rows", "entry", "entries", "names and numbers"),
    "requests": ("requests list page", "rows", "request", "requests", "each with its requester's name"),
    "report": (
        "report",
        "callers",
        "caller's number",
        "callers' numbers",
        "in the reports' callback lists: missed, not called back",
    ),
}
# What an account did that destroyed callers' data or lifted a protection: a call's
# recordings erased on request (``delete``; its caller's details too, when it says
# ``details``), a caller's details erased from the call log (``erase_details``), a legal hold
# released (``legal_hold`` with ``"on": false``; one placed is not in the scope), so that
# retention may delete the recording. A loss of availability is a personal data breach too.
DESTROYS = ("delete", "erase_details", "legal_hold")
# What an account did that altered callers' data: a caller's name corrected for a call
# (``correct_details``, UK GDPR Art. 16; web/corrections.py). An alteration is a personal
# data breach too (Art. 4(12)): a misused account that "corrected" names left calls showing a
# name the caller never gave. Only a correction made is audited (a refused one changes nothing).
ALTERS = ("correct_details",)
# The audit trail's page, or its CSV (``export_list`` of ``audit``), filtered by a number:
# every entry about that person's calls (web/views/audit.py).
AUDIT_VIEW = "audit_view"
# Of those, the copies an account takes: the whole trail (``linekeeper audit-export``), a
# breach scope's CSV (each call another account looked at, with its caller's number), and an
# installer's copy of the box's configuration (``linekeeper config export``), whose number
# rules' patterns (staff's or callers' numbers, the rules' sealed ones opened) it writes in clear.
CONFIG = "config_export"
COPIES = ("audit_export", "breach_scope", CONFIG)
# What a copy's failure entry adds to the copy's own details (``linekeeper export``'s
# ``left``: the recording's file that stayed, its manifest not written).
FAILURE = ("failed", "left")
# A number searched holding one of these is a pattern (as the recording rules' are), which
# may match several people's numbers: not one data subject.
WILDCARDS = frozenset("*?")
# Of those, what gave the account the recording itself.
RECORDING_ACTIONS = ("playback", "export", "disclosure")
LOGINS = ("login", "login_failed", "logout")
# A list's CSV cut short part way (web.views.csv_download): the rows it did hold.
CUT = "export_list_cut"
# What a row of each list downloaded (``export_list``'s target) is, in words.
HELD = {
    "calls": "calls, each with its caller's number",
    "phonebook": "phonebook entries, names and numbers",
    "requests": "data subjects' requests",
    "disclosures": "releases of calls to people",
    "audit": "audit trail entries",
    "deletions": "deletion log entries",
    "alarms": "alarms",
    "breach-scope": "breach scopes: the calls an account looked at, each with its caller's number",
}
COLUMNS = (
    "seq",
    "time_utc",
    "action",
    "call_id",
    "line",
    "number",
    "call_started_utc",
    "address",
    "details",
)
BATCH = 500  # calls read from the call log at a time


def _call_ids(entry) -> list[int]:
    """The calls an entry is about: its target (``12`` or ``call:12``), or a release's or a
    letter's ``calls``. A copy (:data:`COPIES`) names none: a breach scope's target is an
    account, whatever its name."""
    if entry.action in COPIES:
        return []
    if entry.action in ("disclosure", "disclosure_preview"):
        ids = entry.details.get("calls") or ()
        return [int(i) for i in ids if isinstance(i, int) or str(i).isdigit()]
    target = entry.target or ""
    target = target[5:] if target.startswith("call:") else target
    return [int(target)] if target.isascii() and target.isdigit() else []


def holds_personal_data(entry) -> bool:
    """Whether what audit ``entry`` is about held personal data: not a document audited as
    ``report`` with ``"personal_data": false`` in its details (the year in review)."""
    details = entry.details if isinstance(entry.details, dict) else {}
    return not (entry.action == "report" and details.get("personal_data") is False)


# The copies the command line audits before it writes them, whose refusals (``refused``) and
# failures (``failed``, a second entry after the copy's) it audits too: a recording exported
# (``linekeeper export``), a report (``linekeeper report``).
WRITTEN = ("export", "report")


def _refused(entry) -> bool:
    """Whether ``entry`` is an export or a report refused (``linekeeper export`` and ``report``
    audit their refusals with ``refused``): nothing left the box, and the refusal named no
    caller."""
    return entry.action in WRITTEN and "refused" in entry.details


def _export_failed(entry, failed_copies) -> bool:
    """Whether ``entry`` is an export or a report (:data:`WRITTEN`) that handed nothing over:
    its failure (with ``failed``, written after it), or the copy that failure is of (in
    ``failed_copies``)."""
    return entry.action in WRITTEN and ("failed" in entry.details or entry.seq in failed_copies)


def _of(entry, account) -> bool:
    """Whether ``entry`` is ``account``'s: made by it, or a failed login to it. The login page
    audits a wrong password as ``anonymous`` (nobody is logged in yet) with the account typed
    as its target: someone guessing the account's password, and from where, is in its scope."""
    return entry.actor == account or (entry.action == "login_failed" and entry.target == account)


def _calls(calls_db, ids, cipher, progress=None) -> dict[int, dict[str, Any]]:
    """``{id: call JSON}`` of the calls ``ids`` in the call log (one lost with a damaged
    call log, or whose row the card refused, is not; retention keeps every call's row)."""
    if not ids or not os.path.exists(calls_db):
        return {}
    ids = sorted(ids)
    db = connect_readonly(calls_db)
    db.row_factory = sqlite3.Row
    register_sql(db, cipher)
    found = {}
    try:
        for at in range(0, len(ids), BATCH):
            batch = ids[at : at + BATCH]
            rows = db.execute(
                CALL_ROWS + " WHERE calls.id IN (%s)" % ",".join("?" * len(batch)), batch
            ).fetchall()
            for row in rows:
                found[row["id"]] = call_json(row, cipher)
            if progress is not None:
                progress(min(at + BATCH, len(ids)), len(ids))
    finally:
        db.close()
    return found


def _deleted(calls_db, ids) -> set[int]:
    """The calls of ``ids`` the deletion log names (a recording of theirs deleted: they had
    one), for :func:`_released_recordings`."""
    if not ids or not os.path.exists(calls_db):
        return set()
    db = connect_readonly(calls_db)
    try:
        have = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deletion_log'"
        if not db.execute(have).fetchone():
            return set()
        ids = sorted(ids)
        found = set()
        for at in range(0, len(ids), BATCH):
            batch = ids[at : at + BATCH]
            found.update(
                r[0]
                for r in db.execute(
                    "SELECT DISTINCT call_id FROM deletion_log WHERE call_id IN (%s)"
                    % ",".join("?" * len(batch)),
                    batch,
                )
            )
        return found
    finally:
        db.close()


def _int(value) -> int | None:
    """``value`` if a count (an int, 0 or more), else None: not on record."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _gave(entry) -> int | None:
    """How many recordings release ``entry``'s bundle held (its ``recordings``), or None."""
    return _int(entry.details.get("recordings"))


def _released_recordings(entry, ids, calls, deleted) -> tuple[set[int], int]:
    """``(calls, more)``: of release ``entry``'s calls ``ids``, those whose recording its
    bundle held, and how many more recordings it held whose calls cannot be told.

    Its details say how many recordings (``recordings``), not whose: none, or one for each
    call, says itself; fewer is told apart by the calls that could have had one (not in the
    call log ``calls`` now, with a recording row, or named by the deletion log: ``deleted``)
    when there are just that many of them. A release without the count gave, at most, every
    call's."""
    n = _gave(entry)
    if n is None or n >= len(ids):
        return set(ids), 0
    if n == 0:
        return set(), 0
    could = {i for i in ids if i not in calls or calls[i]["recording"] is not None or i in deleted}
    if len(could) <= n:
        return could, n - len(could)
    return set(), n


def scope(
    audit,
    calls_db,
    account,
    since_us,
    until_us,
    *,
    cipher=None,
    country="uk",
    outside=None,
    progress=None,
):
    """``(rows, summary)``: the CSV rows (under :data:`COLUMNS`, oldest first) of what
    ``account`` did from ``since_us`` (inclusive) to ``until_us`` (exclusive), and its
    summary (a dict, :func:`summary_lines`).

    ``cipher`` opens the call log's sealed numbers; ``outside`` is ``{line: outside-line
    digit}``, a number dialled after it being the subject's without it where that is a full
    number, as dialled otherwise (:func:`_settle`; a subject access search finds it either way).
    ``progress(done, total)`` as the calls are read from the call log.

    :raises FieldSealError: the trail or the call log is sealed and ``cipher`` cannot open it
    """
    period = audit.in_period(ACCESS + LOGINS + (CUT, AUDIT_VIEW) + DESTROYS + ALTERS, since_us, until_us)
    entries = sorted((e for e in period if _of(e, account) and _in_scope(e)), key=lambda e: e.seq)
    undone = _undone(entries, _not_made(audit, entries))
    failed_copies = _failed_copies(audit, entries)
    wanted = {
        i
        for e in entries
        if (e.action in ACCESS and not _refused(e) and not _export_failed(e, failed_copies))
        or (e.action in DESTROYS and _done(e, undone))
        or e.action in ALTERS
        for i in _call_ids(e)
    }
    calls = _calls(calls_db, wanted, cipher, progress)
    # Releases whose bundle never went (audited failed after them): their calls looked at, not released.
    never = failed_releases(audit, [e.target for e in entries if e.action == "disclosure" and _call_ids(e)])
    # A release that held fewer recordings than calls: which calls had one, from the deletion log too.
    deleted = _deleted(
        calls_db,
        {
            i
            for e in entries
            if e.action == "disclosure" and 0 < (_gave(e) or 0) < len(_call_ids(e))
            for i in _call_ids(e)
        },
    )
    rows = []
    actions: Counter[str] = Counter()
    seen, recordings, numbers, unnumbered, lines, gone = set(), set(), set(), set(), set(), set()
    # What it destroyed or unprotected (DESTROYS): the calls erased, the holds released, the
    # lines of both, and those of their calls whose caller's number is not known here.
    erased, released, destroyed_lines, destroyed_unknown = set(), 0, set(), set()
    destroyed_numbered: set[int] = set()  # of them, those whose caller's number is known here
    # What it altered (ALTERS): the calls whose caller's name it corrected, their lines, and
    # those whose caller's number is not known here.
    altered, altered_lines, altered_unknown = set(), set(), set()
    altered_numbered: set[int] = set()
    readings: set[tuple[str, str]] = set()  # a number dialled after an outside-line digit, or not
    unplaced = 0  # recordings released whose calls cannot be told (_released_recordings)
    report_callers, reports_unknown = 0, 0  # the reports' callback lists: numbers, or not on record
    broad = {"searches": 0, "calls": 0, "patterns": 0}  # subject access searches not of one number
    accessed = []
    logins, failed, addresses = [], 0, set()
    held: dict[str, dict[str, int]] = {}  # {list: {"lists", "rows", "unknown"}}
    configs = {"files": 0, "patterns": 0, "unknown": 0}  # the configurations exported (CONFIG)
    shown: dict[str, dict[str, int]] = {}  # {page: {"pages", "rows", "unknown"}} (LIST_VIEW)
    # The calls the calls list's pages shown named (their entries' ``calls``), and the pages
    # whose entries do not (written before they did): :func:`listed_words`.
    listed: set[int] = set()
    listed_unnamed = 0
    requests: set[str] = set()  # the data subjects' requests opened (REQUEST_VIEW), by target
    # The calls the reports' callback lists named (their entries' ``calls``: each caller's
    # last missed call), and how many reports' entries named them: :func:`report_numbers_words`.
    reported: set[int] = set()
    reports_named = 0
    last_rows: dict[str, int] = {}  # each list's last download's rows, which a cut corrects
    for e in entries:
        personal = holds_personal_data(e)
        refused = _refused(e) or (e.action in DESTROYS and "refused" in e.details)
        copy_failed = not refused and _export_failed(e, failed_copies)
        actions[
            e.action + " (refused)"
            if refused
            else e.action + " (failed)"
            if copy_failed
            else e.action + " (not made)"
            if e.action in DESTROYS and not _done(e, undone)
            else e.action
            if personal
            else e.action + " (no personal data)"
        ] += 1
        address = e.details.get("address") or ""
        details = {k: v for k, v in e.details.items() if k != "address"}
        said = json.dumps(details, sort_keys=True, ensure_ascii=False) if details else ""
        searched = _searched(e)
        if searched and _int(e.details.get("rows")) != 0:
            # The trail's entries about one person's calls (by number, as a subject access
            # search finds them): that person is a data subject, whatever else the entry is.
            numbers.add(normalise(searched, country))
            if e.action == AUDIT_VIEW:
                accessed.append(e.wall_us)
        if e.action == AUDIT_VIEW:  # the trail's page by number: a row, the number in its details
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if e.action in DESTROYS:
            ids = _call_ids(e)
            if not _done(e, undone):  # refused, or not made: a row with its call, nothing changed
                rows.append(
                    [e.seq, iso_ms(e.wall_us), e.action, ids[0] if ids else "", "", "", "", address, said]
                )
                continue
            # Erasing or unprotecting callers' data is using the account on it: the first
            # and last access span it as they do a look.
            accessed.append(e.wall_us)
            if e.action == "legal_hold":
                released += 1
            else:
                erased.update(ids)
            for call_id in ids:
                call = calls.get(call_id)
                if call is None:
                    destroyed_unknown.add(call_id)
                    rows.append(_gone_row(e, call_id, address, said))
                    continue
                destroyed_lines.add(call["line"])
                number = _caller(call, country, outside, numbers, readings)
                if not number:  # withheld, or erased on request
                    destroyed_unknown.add(call_id)
                else:
                    destroyed_numbered.add(call_id)
                rows.append(_call_row(e, call, number, address, said))
            continue
        if e.action in ALTERS:  # a caller's name corrected: their data altered, a row a call
            accessed.append(e.wall_us)
            for call_id in _call_ids(e):
                altered.add(call_id)
                call = calls.get(call_id)
                if call is None:
                    altered_unknown.add(call_id)
                    rows.append(_gone_row(e, call_id, address, said))
                    continue
                altered_lines.add(call["line"])
                number = _caller(call, country, outside, numbers, readings)
                if not number:  # withheld, or erased on request since
                    altered_unknown.add(call_id)
                else:
                    altered_numbered.add(call_id)
                rows.append(_call_row(e, call, number, address, said))
            continue
        if e.action in ("export_list", CUT):
            _held(held, last_rows, e)
        if e.action in COPIES:  # a list it took, or tried to: a row of its own
            if _copied(e) and e.seq not in failed_copies:
                accessed.append(e.wall_us)
                _held_copy(held, configs, e)
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if e.action == CUT:  # the rows its list did hold, counted above: a row of its own
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if e.action in LOGINS:
            if e.action == "login":
                logins.append(e.wall_us)
            elif e.action == "login_failed":
                failed += 1
            if address:
                addresses.add(address)
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if not personal:  # counts only (the year in review): a row, not personal data accessed
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if e.action == "disclosure" and "failed" in e.details:  # a release's bundle never went
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        if refused or copy_failed:  # tried, nothing given: a row with its call, no call or caller exposed
            ids = _call_ids(e)
            rows.append(
                [e.seq, iso_ms(e.wall_us), e.action, ids[0] if ids else "", "", "", "", address, said]
            )
            continue
        accessed.append(e.wall_us)
        named = _reported(e)
        if named is not None:
            reported.update(named)
            reports_named += 1
        if e.action == REQUEST_VIEW:  # a person's request opened: who asked and how to reach them
            requests.add(str(e.target or ""))
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, _with_target(e, said)])
            continue
        if e.action == LIST_VIEW:  # the calls list or a report on screen: what it showed, counted
            _shown(shown, e)
            if e.target == "calls":
                named = _listed(e)
                listed.update(named or ())
                listed_unnamed += named is None
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        ids = _call_ids(e)
        if not ids:  # a list or report downloaded, a search: what it held, in its details
            found = _int(e.details.get("found")) if e.action == "disclosure_search" else None
            searched = str(e.details.get("number") or "")
            if found and searched and not WILDCARDS.intersection(searched):
                numbers.add(normalise(searched, country))  # the person whose calls it showed
            elif found:  # by line or day alone, or a pattern: whoever's calls they were
                broad["searches"] += 1
                broad["calls"] += found
                broad["patterns"] += bool(searched)
            if e.action == "report":
                held_callers = _int(e.details.get("callers"))
                if held_callers is None:
                    reports_unknown += 1
                else:
                    report_callers += held_callers
            rows.append([e.seq, iso_ms(e.wall_us), e.action, "", "", "", "", address, said])
            continue
        given = set(ids)  # the calls whose recording it gave, if it is one that gives them
        if e.action == "disclosure":
            given, more = _released_recordings(e, ids, calls, deleted)
            unplaced += more if e.target not in never else 0
        for call_id in ids:
            seen.add(call_id)
            if e.action in RECORDING_ACTIONS and e.target not in never and call_id in given:
                recordings.add(call_id)
            call = calls.get(call_id)
            if call is None:
                gone.add(call_id)
                rows.append(_gone_row(e, call_id, address, said))
                continue
            lines.add(call["line"])
            number = _caller(call, country, outside, numbers, readings)
            if not number:
                unnumbered.add(call_id)
            rows.append(_call_row(e, call, number, address, said))
    _settle(numbers, readings, set(numbers))
    listed_callers = _more_callers(calls_db, listed - seen, calls, cipher, country, outside, numbers)
    known = numbers | listed_callers[0]
    report_callers_named = _more_callers(calls_db, reported, calls, cipher, country, outside, known)
    summary = {
        "account": account,
        "from": iso_ms(since_us),
        "to": iso_ms(until_us),
        "entries": len(entries),
        "actions": dict(sorted(actions.items())),
        "calls": len(seen),
        "recordings": len(recordings),
        "recordings_unplaced": unplaced,
        "numbers": len(numbers),
        "calls_without_number": len(unnumbered),
        "calls_not_in_log": len(gone),
        "lines": sorted(lines),
        "erased": len(erased),
        "holds_released": released,
        "destroyed_lines": sorted(destroyed_lines),
        "destroyed_without_number": len(destroyed_unknown),
        "destroyed_with_number": len(destroyed_numbered),
        "altered": len(altered),
        "altered_lines": sorted(altered_lines),
        "altered_without_number": len(altered_unknown),
        "altered_with_number": len(altered_numbered),
        "first_access": iso_ms(min(accessed)) if accessed else None,
        "last_access": iso_ms(max(accessed)) if accessed else None,
        "bulk": actions["export_list"] + actions["report"],
        "held": dict(sorted(held.items())),
        # The box's configuration written to files: how many, and the number rules'
        # patterns they held in clear (a sum; ``unknown``: files whose entry does not say).
        "config_exports": configs,
        "shown": dict(sorted(shown.items())),
        # Shown in a list and never opened: kept apart from "calls" (looked at), so that a
        # report tells the calls it opened from those it only saw a line of in a list.
        "calls_listed_only": len(listed - seen),
        "list_pages_unnamed": listed_unnamed,
        # Their callers, made distinct from the call log (the pages name the calls): the
        # numbers not among "numbers" already, the calls with none, the calls not in the log.
        "listed_only_numbers": len(listed_callers[0]),
        "listed_only_without_number": listed_callers[1],
        "listed_only_not_in_log": listed_callers[2],
        # The callers the reports' callback lists named, made distinct from the call log:
        # those not among the numbers above (looked at, or in a list only).
        "reports_named": reports_named,
        "report_numbers": len(report_callers_named[0]),
        "report_numbers_without_number": report_callers_named[1],
        "report_numbers_not_in_log": report_callers_named[2],
        "reports": actions["report"],
        # The data subjects' requests opened (each a person, their contact details shown):
        # how many, and which (``request:N``), not among the callers' numbers.
        "requests_viewed": len(requests),
        "requests": sorted(requests, key=_request_order),
        "report_callers": report_callers,
        "broad_searches": broad,
        "reports_callers_unknown": reports_unknown,
        "logins": len(logins),
        "first_login": iso_ms(min(logins)) if logins else None,
        "last_login": iso_ms(max(logins)) if logins else None,
        "failed_logins": failed,
        "addresses": sorted(addresses),
    }
    return rows, summary


def _settle(numbers, readings, known) -> None:
    """Add to ``numbers`` one reading of each number dialled after its line's outside-line
    digit (``readings``: ``(without the digit, as dialled)``, :func:`_caller`), given the
    numbers ``known`` to be counted already.

    Without the digit, a full number (one that normalises to international form: 9 01632
    960123 is 01632 960123) can only be an outside call: it is its caller's, unless only the
    number as dialled is known (a subject access search for 901632960123). A short one
    (9123) may be 123 after the 9 or an extension dialled straight past the switchboard:
    which is not known, and taking it as 123 made one caller of two different numbers (9123
    and a call to 123), so it is counted as dialled, the number the call log holds. A person
    who dialled both may then be counted twice: the figure errs high, never low."""
    for without, dialled in readings:
        if without.startswith("+") and not (dialled in known and without not in known):
            numbers.add(without)
        else:
            numbers.add(dialled)


def _more_callers(calls_db, ids, calls, cipher, country, outside, numbers) -> tuple[set[str], int, int]:
    """``(numbers, without, gone)`` of the calls ``ids`` named by pages or reports (the calls
    shown in a list only, the reports' callback lists): the distinct callers' numbers they
    had that are not among ``numbers`` (those counted already), how many had no number
    (withheld, or erased on request), how many are not in the call log. Read from the call
    log (``calls``: those read already), so a caller on two pages or reports, or with two
    calls in them, is one number."""
    found = dict(calls)
    found.update(_calls(calls_db, {i for i in ids if i not in calls}, cipher))
    mine: set[str] = set()
    readings: set[tuple[str, str]] = set()
    without = gone = 0
    for call_id in ids:
        call = found.get(call_id)
        if call is None:
            gone += 1
        elif not _caller(call, country, outside, mine, readings):
            without += 1
    _settle(mine, readings, numbers | mine)
    return mine - numbers, without, gone


def _caller(call, country, outside, numbers, readings) -> str:
    """Call ``call``'s (call JSON) far end's number as the CSV shows it, or "" (withheld, or
    erased on request), added to ``numbers`` (normalised) or, dialled after its line's
    outside-line digit (``outside``), its two readings to ``readings`` (:func:`scope`)."""
    # A card number keyed on after a number dialled is kept masked at its end
    # (docs/pci.md): not part of the caller's number.
    number = (call["number"] or "").rstrip(cards.MASK)
    if number:
        digit = (outside or {}).get(call["line"], "") if call["direction"] == "out" else ""
        without = normalise(called_number(number, country, digit), country)
        dialled = normalise(called_number(number, country), country)
        if without == dialled:
            numbers.add(without)
        else:  # which reading is the caller's is decided once every number is read
            readings.add((without, dialled))
    return number


def _in_scope(entry) -> bool:
    """Whether the account's ``entry`` is in its scope: not a legal hold placed (only one
    released lifts a protection), nor a look at the audit trail's page not by number."""
    if entry.action == "legal_hold":
        return entry.details.get("on") is False
    if entry.action == AUDIT_VIEW:
        return bool(_searched(entry))
    return True


def _searched(entry) -> str:
    """The number the audit trail was filtered by in ``entry`` (``audit_view``, or
    ``export_list`` of ``audit``: its ``filter``'s ``number``), or ""."""
    if entry.action != AUDIT_VIEW and not (entry.action == "export_list" and entry.target == "audit"):
        return ""
    shown = entry.details.get("filter")
    return str(shown.get("number") or "") if isinstance(shown, dict) else ""


def _later(audit, action, after_seq, actor, targets):
    """Every entry of ``action`` by ``actor`` about one of ``targets`` written after entry
    ``after_seq``, oldest first, read :data:`BATCH` at a time: what is audited after an entry
    to say it came to nothing (a change not made, a copy failed) may be after the period."""
    if None in targets:  # entries with no target (a report's): every one of the account's, kept so
        seq = after_seq
        while True:
            got = audit.entries(limit=BATCH, action=action, actor=actor, after_seq=seq)
            yield from (e for e in got if e.target in targets)
            if len(got) < BATCH:
                break
            seq = got[-1].seq
        targets = targets - {None}
    targets = sorted(targets)
    for at in range(0, len(targets), BATCH):
        batch, seq = targets[at : at + BATCH], after_seq
        while True:
            got = audit.entries(limit=BATCH, action=action, actor=actor, targets=batch, after_seq=seq)
            yield from got
            if len(got) < BATCH:
                break
            seq = got[-1].seq


def _not_made(audit, entries) -> set[str]:
    """The ``change_id`` of each legal hold released among ``entries`` that the box audited
    as ``not_made`` (by ``system``, web/intent.py): at the next start after a cut, which may
    be after the period, so looked for after the release, not in the period."""
    released = [e for e in entries if e.action == "legal_hold" and e.details.get("change_id")]
    if not released:
        return set()
    later = _later(
        audit, "legal_hold", min(e.seq for e in released) - 1, "system", {e.target for e in released}
    )
    return {e.details.get("change_id") for e in later if "not_made" in e.details} - {None}


def _failed_copies(audit, entries) -> set[int]:
    """The seqs of the copies among ``entries`` (:data:`COPIES`, and recordings exported:
    ``export``) that failed: a copy is audited before it is written (by ``linekeeper
    audit-export``, ``breach-scope`` or ``export``, or the breach scope's page), and its
    failure after it as a second entry by the same account with the same details and
    ``failed``, maybe after the period. Each failure is of the latest copy before it with
    those details that no other failure is of: nothing was handed over. A failed export that
    says ``left`` (its recording's file stayed, without its manifest) handed the recording
    over all the same: it cancels nothing."""
    failed = set()
    for action in (*COPIES, *WRITTEN):
        copies = [e for e in entries if e.action == action and _copied(e)]
        if not copies:
            continue
        # The account's (its entries': :func:`_of`), from its first copy of the kind on.
        later = _later(audit, action, copies[0].seq - 1, copies[0].actor, {e.target for e in copies})
        failed |= failed_copies(
            (e.seq, e.target, e.details if isinstance(e.details, dict) else {})
            for e in sorted(later, key=lambda e: e.seq)
        )
    return failed


def failed_copies(entries) -> set[Any]:
    """Which copies a later failure entry says handed nothing over. ``entries``: ``(id,
    target, details)`` of one account's entries of one kind of copy, oldest first. A copy is
    audited before it is written, and its failure after it with the same details and
    ``failed``; each failure is of the latest copy before it with those details that no
    other failure is of. A failure that says ``left`` (a recording's file stayed, its
    manifest not written) cancels nothing: the recording was handed over all the same.
    Returns the ids of the copies cancelled (not of the failure entries)."""
    failed = set()
    waiting: dict[tuple[str, str], list[Any]] = {}  # copies no failure is of, by details
    for ident, target, details in entries:
        if "failed" not in details:
            if "refused" not in details:
                waiting.setdefault(_key(target, details), []).append(ident)
            continue
        tried = waiting.get(_key(target, {k: v for k, v in details.items() if k not in FAILURE}))
        if tried:
            made = tried.pop()
            if "left" not in details:
                failed.add(made)
    return failed


def _key(target, details):
    """What tells one copy's entry from another's: its target and its details, the address
    it was asked from aside (where from, not what was copied)."""
    kept = {k: v for k, v in details.items() if k != "address"}
    return target, json.dumps(kept, sort_keys=True, default=str)


def _undone(entries, not_made) -> set[int]:
    """The seqs of those of ``entries`` (the account's, oldest first) of :data:`DESTROYS` that
    changed nothing, besides the refusals themselves (``refused``).

    An erasure is audited before it is made: a refusal after it (a hold placed, or the
    recording deleted, in between) is a ``refused`` entry on its call, the erasure's not
    made (a ``delete``'s refusal that says ``details`` is of the caller's details alone,
    after its recordings were erased). A legal hold's release is audited before it too, and
    one the box failed or stopped before making has an entry by ``system`` with
    ``not_made`` and its ``change_id`` (web/intent.py): ``not_made``, their change ids
    (:func:`_not_made`)."""
    undone, last = set(), {}
    for e in entries:
        if e.action == "legal_hold":
            if e.details.get("change_id") in not_made:
                undone.add(e.seq)
        elif e.action in DESTROYS:
            key = (e.action, e.target)
            if "refused" not in e.details:
                last[key] = e.seq
            elif (e.action == "erase_details" or "details" not in e.details) and key in last:
                undone.add(last.pop(key))
    return undone


def _done(entry, undone) -> bool:
    """Whether ``entry`` of :data:`DESTROYS` destroyed or released what it says: not refused,
    nor among ``undone`` (:func:`_undone`)."""
    return "refused" not in entry.details and entry.seq not in undone


def _without_number(n) -> str:
    """What :func:`destroyed_words` and :func:`altered_words` add of ``n`` calls whose caller's
    number is not known here ("" for none)."""
    if not n:
        return ""
    return (
        "; %s whose caller's number is not known here "
        "(erased on request, removed after its retention period, withheld, or not in the call log)"
        % counted(n, "call")
    )


def _among(numbered, unknown) -> str:
    """Whose callers :func:`destroyed_words` and :func:`altered_words` say are among the
    distinct numbers: of ``numbered`` calls whose caller's number is known here, none when
    it is 0 (a person's calls erased with their details leave no number to count), all, or
    those of the calls with a number when ``unknown`` others have none."""
    if not numbered:
        return ""
    if not unknown:
        return "; their callers are among the distinct numbers"
    return "; the callers of the %s with a number on record are among the distinct numbers" % counted(
        numbered, "call"
    )


def destroyed_words(s) -> str:
    """What the account destroyed or unprotected (summary ``s``, :func:`scope`'s), in words."""
    said = "%s whose recording or details it erased, %s it released" % (
        counted(s["erased"], "call"),
        counted(s["holds_released"], "legal hold"),
    )
    if s["destroyed_lines"]:
        said += ", on %s" % lines_named(s["destroyed_lines"])
        said += _among(s.get("destroyed_with_number", 1), s["destroyed_without_number"])
    said += _without_number(s["destroyed_without_number"])
    return said


def altered_words(s) -> str:
    """What the account altered (summary ``s``, :func:`scope`'s), in words: the calls whose
    caller's name it corrected."""
    said = "%s whose caller's name it corrected" % counted(s["altered"], "call")
    if s["altered_lines"]:
        said += ", on %s" % lines_named(s["altered_lines"])
        said += _among(s.get("altered_with_number", 1), s["altered_without_number"])
    said += _without_number(s["altered_without_number"])
    return said


def _held(held, last_rows, entry):
    """Add a list downloaded (``export_list``: its ``rows``) or cut short (:data:`CUT`: the
    ``rows`` written of the ``of`` its download's entry promised) to ``held``."""
    what = str(entry.target or "")
    rows = entry.details.get("rows")
    rows = rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
    if entry.action == CUT:
        promised = last_rows.pop(what, None)
        if promised is not None and rows is not None and rows <= promised:
            held[what]["rows"] -= promised - rows
        return
    count = held.setdefault(what, {"lists": 0, "rows": 0, "unknown": 0})
    count["lists"] += 1
    if rows is None:
        count["unknown"] += 1
        last_rows.pop(what, None)
    else:
        count["rows"] += rows
        last_rows[what] = rows


def _copied(entry) -> bool:
    """Whether copy ``entry`` (:data:`COPIES`, or ``export``) gave the account a file: a
    recording exported, the trail's copy, a breach scope's CSV (downloaded from the page,
    or written by the command), or the box's configuration (written by the command); not
    one refused or failed, nor a look at the scope's page (its counts only)."""
    details = entry.details
    if "refused" in details or "failed" in details:
        return False
    if entry.action == "report":  # the command line's, whose failure it audits (the web's never fails)
        return details.get("via") == "cli"
    return entry.action in ("audit_export", "export") or "download" in details or details.get("via") == "cli"


def _held_copy(held, configs, entry):
    """Add copy ``entry`` to ``held``: the trail's copy holds entry 1 to its own entry (the
    copy's last), a breach scope's CSV rows its entry does not say; or, a configuration's
    (:data:`CONFIG`), to ``configs``: the number rules' patterns its file held in clear (its
    entry's ``number_patterns``)."""
    if entry.action == CONFIG:
        configs["files"] += 1
        patterns = _int(entry.details.get("number_patterns"))
        if patterns is None:
            configs["unknown"] += 1
        else:
            configs["patterns"] += patterns
        return
    if entry.action == "audit_export":
        count = held.setdefault("audit", {"lists": 0, "rows": 0, "unknown": 0})
        count["rows"] += entry.seq
    else:
        count = held.setdefault("breach-scope", {"lists": 0, "rows": 0, "unknown": 0})
        count["unknown"] += 1
    count["lists"] += 1


def _shown(shown, entry):
    """Add page ``entry`` (:data:`LIST_VIEW`) to ``shown``: its calls or callers' numbers
    (:data:`SHOWN`), not on record where its details do not say."""
    what = str(entry.target or "")
    count = shown.setdefault(what, {"pages": 0, "rows": 0, "unknown": 0, "printed": 0})
    count["pages"] += 1
    # `linekeeper calls` is audited as a page of the calls list is, but its lines went to a
    # terminal, which may have been a file: the scope says so rather than "on screen".
    if entry.details.get("via") == "cli":
        count["printed"] += 1
    held = _int(entry.details.get(SHOWN[what][1] if what in SHOWN else "rows"))
    if held is None:
        count["unknown"] += 1
    else:
        count["rows"] += held


def _listed(entry) -> list[int] | None:
    """The calls a page of the calls list showed, as its entry (:data:`LIST_VIEW` of
    ``calls``) names them (``calls``), or None: an entry written before they were named."""
    ids = entry.details.get("calls")
    if not isinstance(ids, list):
        return None
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def _reported(entry) -> list[int] | None:
    """The calls a report's callback list named (its entry's ``calls``: each caller's last
    missed call), downloaded (``report``) or shown (:data:`LIST_VIEW` of ``report``), or
    None: another entry, or one written before reports named them (or of a list too long)."""
    if not (entry.action == "report" or (entry.action == LIST_VIEW and entry.target == "report")):
        return None
    ids = entry.details.get("calls")
    if not isinstance(ids, list):
        return None
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def report_numbers_words(s) -> str:
    """The callers the reports' callback lists named (summary ``s``, :func:`scope`'s
    ``report_numbers``), made distinct from the call log, in words."""
    said = (
        "the callback lists of the %s whose entries name their callers' calls, made distinct "
        "from the call log (a caller in two reports, or missed on two lines, is one): %s not "
        "among those above"
        % (
            counted(s["reports_named"], "report downloaded or shown", "reports downloaded or shown"),
            counted(s["report_numbers"], "more distinct caller's number", "more distinct callers' numbers"),
        )
    )
    if s.get("report_numbers_without_number"):
        said += (
            ", %s with no number on record now (erased on request or removed by retention since)"
            % counted(s["report_numbers_without_number"], "caller")
        )
    if s.get("report_numbers_not_in_log"):
        said += ", %s whose call is not in the call log (number not known here)" % counted(
            s["report_numbers_not_in_log"], "caller"
        )
    return said


def listed_words(s) -> str:
    """The calls the account was shown in the calls list and did not otherwise look at
    (summary ``s``, :func:`scope`'s ``calls_listed_only``), in words."""
    printed = s.get("shown", {}).get("calls", {}).get("printed", 0)
    said = (
        "%s shown in a list only: on a page of the calls list the account was shown%s (each line "
        "with its caller's number), and not opened, played, exported or released by it in the "
        "period, so not among the calls looked at nor their callers among the distinct numbers "
        "above (the CSV's calls list rows name them in their details)"
        % (
            counted(s.get("calls_listed_only", 0), "call"),
            ", or in the call log `linekeeper calls` printed for it" if printed else "",
        )
    )
    if s.get("calls_listed_only"):
        said += (
            "; their callers, made distinct from the call log (a caller on two pages, or with two "
            "calls in them, is one): %s not among those above"
            % counted(
                s.get("listed_only_numbers", 0),
                "more distinct caller's number",
                "more distinct callers' numbers",
            )
        )
        if s.get("listed_only_without_number"):
            said += (
                ", %s with no number on record (withheld, erased on request, or removed by retention)"
                % counted(s["listed_only_without_number"], "call")
            )
        if s.get("listed_only_not_in_log"):
            said += ", %s not in the call log (number not known here)" % counted(
                s["listed_only_not_in_log"], "call"
            )
    if s.get("list_pages_unnamed"):
        said += (
            "; and %s of the calls list whose entries do not name the calls shown (written before "
            "the trail named them): their calls are not in this figure"
            % counted(s["list_pages_unnamed"], "page")
        )
    return said


def shown_words(what, count, unnamed=None):
    """What the pages ``what`` shown on screen held (``count``, :func:`scope`'s ``shown``),
    in words: a sum over the pages, not on record one by one, so not among the calls and
    numbers counted; but the calls list's when every page named its calls (``unnamed``,
    the summary's ``list_pages_unnamed``, is 0): counted one by one in :func:`listed_words`."""
    page, _key, one, many, held = SHOWN.get(what, (what, "rows", "row", "rows", what))
    printed = count.get("printed", 0)
    how = []
    if count["pages"] > printed:
        how.append("%s shown on screen %s" % (page, counted(count["pages"] - printed, "time")))
    if printed:
        how.append(
            "the call log printed by `linekeeper calls` %s (to a terminal, or to a file)"
            % counted(printed, "time")
        )
    said = "%s: %s (%s)" % (" and ".join(how), counted(count["rows"], one, many), held)
    if count["unknown"]:
        said += ", and %s whose %s are not on record" % (counted(count["unknown"], "time"), many)
    if count["pages"] > 1:
        said += ", a sum over the %s: one shown on two is counted on each" % (
            "reports" if what == "report" else "pages"
        )
    if what == "requests":
        return said + (
            ". The people who asked, by name: not among the callers' numbers counted above (the "
            "CSV's rows name the requests each page listed)"
        )
    if what == "calls" and unnamed == 0:
        return said + (
            ". An upper bound: the calls each page named are counted one by one, and their "
            "callers made distinct, under calls shown in a list only"
        )
    return said + (
        ". They are not on record one by one: not among the calls and numbers counted above, and up "
        "to that many more callers were exposed (some may be the same people)"
    )


def held_words(what, count):
    """What the lists ``what`` downloaded held (``count``, :func:`scope`'s ``held``), in words."""
    said = "%s list downloaded %s: %s (%s)" % (
        what,
        counted(count["lists"], "time"),
        counted(count["rows"], "row"),
        HELD.get(what, what),
    )
    if count["unknown"]:
        said += ", and %d download%s whose rows are not on record" % (
            count["unknown"],
            "" if count["unknown"] == 1 else "s",
        )
    return said


def config_words(count) -> str:
    """The box's configuration the account exported (``count``, :func:`scope`'s summary
    ``config_exports``), in words: each file holds the recording rules' number patterns in
    clear, staff's or callers' numbers (some patterns with * or ?, which may match several
    people's), as many as its entry says."""
    said = "the box's configuration exported to a file %s (`linekeeper config export`): " % counted(
        count["files"], "time"
    )
    known = count["files"] - count["unknown"]
    if known and not count["patterns"]:
        said += "no number pattern (the recording rules named none)"
    elif known:
        said += "%s%s in clear (the numbers the recording rules name: staff's or callers', some perhaps " % (
            "up to " if known > 1 else "",
            counted(count["patterns"], "number pattern"),
        )
        said += "patterns with * or ? that match several people's numbers)"
        if known > 1:
            said += ", a sum over the files: a pattern in two is counted in each"
    if count["unknown"]:
        said += "%s%s whose number patterns are not on record" % (
            "; and " if known else "",
            counted(count["unknown"], "file"),
        )
    return said + (
        ". Not among the callers' numbers counted above (the rules name numbers, not calls); the "
        "CSV's rows say where each file was written"
    )


def _with_target(e, said):
    """Entry ``e``'s details ``said`` (JSON) with its target (``request``): a request's page
    names no call, and the CSV has no column for what else an entry is about."""
    details = {k: v for k, v in e.details.items() if k != "address"}
    details["request"] = e.target
    return json.dumps(details, sort_keys=True, ensure_ascii=False)


def _request_order(target):
    """Sort key of a request's target (``request:12``): by its number, others after."""
    number = target[8:] if target.startswith("request:") else ""
    return (0, int(number), "") if number.isascii() and number.isdigit() else (1, 0, target)


def requests_words(s) -> str:
    """The data subjects' requests the account opened (summary ``s``, :func:`scope`'s), in
    words: each page shows who asked, how to reach them, their numbers and what they asked."""
    said = (
        "%s opened (each page shows who asked, how to reach them, their numbers and what they "
        "asked): each a person whose contact details the account read, not among the distinct "
        "callers' numbers above (the Requests page names them)"
        % counted(s.get("requests_viewed", 0), "data subject's request", "data subjects' requests")
    )
    if s.get("requests"):
        said += ": " + ", ".join(s["requests"])
    return said


def _call_row(e, call, number, address, said):
    """The CSV row of entry ``e`` about ``call`` (a call log row), its caller ``number``."""
    return [
        e.seq,
        iso_ms(e.wall_us),
        e.action,
        call["id"],
        call["line"],
        number,
        call["started_at"],
        address,
        said,
    ]


def _gone_row(e, call_id, address, said):
    """The CSV row of entry ``e`` about ``call_id``, a call the call log does not hold: its
    line as the entry kept it, no number or time."""
    return [e.seq, iso_ms(e.wall_us), e.action, call_id, e.details.get("line", ""), "", "", address, said]


def searches_words(broad):
    """The subject access searches not of one person's number (``broad``, :func:`scope`'s
    summary ``broad_searches``) in words: a search by line or day alone shows whoever's
    calls they were, a pattern may match several people's numbers."""
    how = []
    if broad["searches"] > broad["patterns"]:
        how.append("%d by line or day alone" % (broad["searches"] - broad["patterns"]))
    if broad["patterns"]:
        how.append(
            "%d by a number pattern (with * or ?), which may match several people's numbers, not one"
            % broad["patterns"]
        )
    return (
        "%s not of one person's number (%s) showed %s: their callers "
        "are not on record one by one, not among the distinct numbers counted above, and up to that "
        "many more callers were exposed (some may be the same people)"
        % (
            counted(broad["searches"], "subject access search", "subject access searches"),
            "; ".join(how),
            counted(broad["calls"], "call"),
        )
    )


def reports_words(s):
    """What the reports of callers downloaded (summary ``s``, :func:`scope`'s) held, in words.

    A report's callback list names callers by number (one entry each, missed and not called
    back); its entry says how many (``callers``), not which, so they are not among the
    distinct numbers counted and may be some of the same people. A report downloaded before
    its entry said so held, at most, the number of every caller its lines missed in its
    period: the call log now cannot say which were called back then, nor those erased since.
    """
    said = "%d report%s downloaded (each a row of the CSV with its period and lines)" % (
        s["reports"],
        "" if s["reports"] == 1 else "s",
    )
    unknown = s.get("reports_callers_unknown", 0)
    if s["reports"] > unknown:
        said += "; the callback lists of %d of them held %s%s (missed, not called back)" % (
            s["reports"] - unknown,
            "up to " if s["reports"] - unknown > 1 else "",
            counted(s.get("report_callers", 0), "caller's number", "callers' numbers"),
        )
        if s["reports"] - unknown > 1:
            said += (
                ", a sum over the reports: a report's entry says how many numbers its callback "
                "list held, not which, so a caller in two reports is counted in each"
            )
    if unknown:
        said += (
            "; %d of them downloaded before a report's entry said how many numbers its callback list "
            "held: each held up to every number its lines missed in its period" % unknown
        )
    return (
        said + ". The numbers in a report are not on record one by one: they are not among the "
        "distinct numbers counted above, and up to that many more callers were exposed (some may be "
        "the same people). A report also names the accounts that played or exported recordings"
    )


def made_within(made_us, since_us, rows=None):
    """``made_us``, when the account of that name was made (µs; None: no such account now),
    if after the period began at ``since_us``, else None: the trail names accounts by name,
    and entries before then are an earlier account's of the same name (a leaver's, deleted),
    which a breach scope must not pass off as this one's. Given the scope's ``rows``
    (:func:`scope`'s), None too when none of them is from before then: nothing of an
    earlier account's is in it. Before, every account made on the first day asked about (a
    box set up that morning) came with the warning and its advice to choose a later day."""
    if made_us is None or made_us <= since_us:
        return None
    if rows is not None and not any(row[1] < iso_ms(made_us) for row in rows):
        return None
    return made_us


def summary_lines(summary, made_us=None) -> list[str]:
    """The summary in plain words, a line each, as ``linekeeper breach-scope`` prints it;
    ``made_us`` (:func:`made_within`) says when the account of that name was made, if after
    the period began."""
    s = summary
    out = ["What %s did from %s up to %s (UTC), from the audit trail:" % (s["account"], s["from"], s["to"])]
    if made_us is not None:
        out.append(
            "  the account %s was made at %s (UTC), after the period began: any entries by %s before "
            "then are an earlier account of the same name's (one deleted since, such as a leaver's), "
            "and are counted below with this one's; the CSV gives each row's time: choose a first "
            "day after that for this account's alone" % (s["account"], iso_ms(made_us), s["account"])
        )
    out += [
        "  %s looked at (page viewed, played, exported, released or previewed), on %s"
        % (counted(s["calls"], "call"), lines_named(s["lines"]) if s["lines"] else "no line"),
        "  %d of them with their recording played, exported or released%s"
        % (
            s["recordings"],
            "; and %s released in bundles that also held calls without one: "
            "which of their calls they were is not on record"
            % counted(s["recordings_unplaced"], "more recording")
            if s.get("recordings_unplaced")
            else "",
        ),
        "  " + destroyed_words(s),
        "  " + altered_words(s),
        "  %s (data subjects)%s"
        % (
            counted(s["numbers"], "distinct caller's number", "distinct callers' numbers"),
            "; %s with no number on record (withheld, erased on request, or removed by retention)"
            % counted(s["calls_without_number"], "call")
            if s["calls_without_number"]
            else "",
        ),
    ]
    if s["calls_not_in_log"]:
        out.append(
            "  %s not in the call log (lost with a damaged call log, or never written to it; "
            "retention deletes recordings, never a call's record): their numbers are not known here"
            % counted(s["calls_not_in_log"], "call")
        )
    if s.get("broad_searches", {}).get("searches"):
        out.append("  " + searches_words(s["broad_searches"]))
    for what, count in s["held"].items():
        out.append("  " + held_words(what, count))
    if s["held"].get("calls"):
        out.append(
            "  the calls in a calls list are not on record one by one: they are not among the calls "
            "and numbers counted above, and up to that many more calls and callers were exposed"
        )
    if s["reports"]:
        out.append("  " + reports_words(s))
    if s.get("config_exports", {}).get("files"):
        out.append("  " + config_words(s["config_exports"]))
    for what, count in s.get("shown", {}).items():
        out.append("  " + shown_words(what, count, s.get("list_pages_unnamed")))
    if s.get("shown", {}).get("calls"):
        out.append("  " + listed_words(s))
    if s.get("reports_named"):
        out.append("  " + report_numbers_words(s))
    if s.get("requests_viewed"):
        out.append("  " + requests_words(s))
    out.append("  first access %s, last %s" % (s["first_access"] or "none", s["last_access"] or "none"))
    out.append(
        "  %s (first %s, last %s), %d failed, from %s"
        % (
            counted(s["logins"], "login"),
            s["first_login"] or "none",
            s["last_login"] or "none",
            s["failed_logins"],
            ", ".join(s["addresses"]) or "no address on record",
        )
    )
    out.append("  entries: %s" % (", ".join("%s %d" % (a, n) for a, n in s["actions"].items()) or "none"))
    return out


def csv_text_rows(rows):
    """``rows`` with each cell made safe for a spreadsheet (:func:`firmware.csvsafe.cell`)."""
    return [[cell("" if v is None else v) for v in row] for row in rows]


def csv_text(rows):
    """The CSV file of ``rows`` (:func:`scope`'s), its header :data:`COLUMNS` first, each cell
    made safe for a spreadsheet: what ``linekeeper breach-scope`` writes and the web UI's
    breach scope downloads."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(csv_text_rows(rows))
    return text.getvalue()
