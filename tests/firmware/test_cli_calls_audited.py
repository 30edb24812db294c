"""`linekeeper calls` prints the callers' numbers and names: it asks who reads them (a
supervisor, their lines' calls; an auditor, every call) and audits them as the web UI's calls
list does (``list_viewed`` of ``calls`` naming the calls), before printing anything."""

import json
import os
import shutil
import sqlite3
import time

import pytest

from firmware import cli
from firmware.box import open_audit
from firmware.breachscope import scope
from firmware.signing import run_dir
from firmware.simtime import SIM_CLOCK_NAME
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import load_field_cipher
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import Accounts
from web.db import WebDb

from support.cli import OWNER_PASSWORD, calls_args, owner_slot, password_beside, run_linekeeper

THEIRS = "their own long password 9"
UNTIL_2100_US = 4_102_444_800_000_000
NUMBERS = {1: "01632960101", 2: "01632960202", 3: "01632960303"}
DAY = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 3,
    "calls": [
        {"line": n, "at": float(n), "direction": "in", "caller_id": {"number": number}, "rings": 2,
         "talk": 3.0}
        for n, number in NUMBERS.items()
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def day_dir(tmp_path_factory):
    """A box's day of three calls, one a line (a keyless sim's, given its owner's key slot)."""
    root = tmp_path_factory.mktemp("calls-day")
    (root / "day.json").write_text(json.dumps(DAY))
    data = str(root / "data")
    assert cli.main(["sim", str(root / "day.json"), "--data-dir", data, "--speed", "max"]) == 0
    owner_slot(data)
    return data


@pytest.fixture
def data(day_dir, tmp_path):
    path = str(tmp_path / "data")
    shutil.copytree(day_dir, path)
    # Dated on the machine's clock, as on a real box: not the simulated box's.
    os.remove(os.path.join(path, SIM_CLOCK_NAME))
    return path


def listed(data_dir):
    """The trail's ``list_viewed`` entries, oldest first."""
    with open_audit(data_dir) as audit:
        return audit.entries(limit=100, action="list_viewed", newest_first=False)


def accounts(data_dir, **people):
    """Web UI accounts, each with a key slot of its own granting its lines: ``name=(roles,
    lines)``; admin (the key slot's owner) an installer. Their password: :data:`THEIRS`
    (admin's stays :data:`OWNER_PASSWORD`)."""
    web_db = WebDb(os.path.join(data_dir, "web.db"))
    try:
        made = Accounts(web_db, lambda: int(time.time() * 1e6))
        with web_db.tx() as conn:
            made.create(conn, "admin", THEIRS, {"installer"}, [])
            for name, (roles, lines) in people.items():
                made.create(conn, name, THEIRS, set(roles), lines)
    finally:
        web_db.close()
    store = KeyStore(data_dir, Argon2Params(memory_kib=8, iterations=1))
    unlocked = store.unlock("admin", OWNER_PASSWORD)
    try:
        for name, (_, lines) in people.items():
            store.add_slot(name, THEIRS, unlocked, lines)
    finally:
        unlocked.forget()


def test_the_calls_printed_are_audited_as_the_web_calls_page_is(data):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--json"))
    assert status == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert sorted(c["number"] for c in printed) == sorted(NUMBERS.values())
    (entry,) = listed(data)
    assert (entry.actor, entry.target) == ("admin", "calls")
    ids = [c["id"] for c in printed]
    # The web's calls page's entry (web/views/calls.py), with where it was shown.
    assert entry.details == {"filter": "all calls", "rows": 3, "calls": ids, "via": "cli"}
    # Found by the auditor's search by number (the calls an entry names) and in a breach's
    # scope, as the web's pages are: each call listed, its caller counted.
    with open_audit(data) as audit:
        assert audit.naming_calls(ids[:1], 0, 100) == ({entry.seq: ids[:1]}, None)
        cipher = load_field_cipher(data, run_dir=run_dir(), create=False)
        _, summary = scope(audit, os.path.join(data, "calls.db"), "admin", 0, UNTIL_2100_US, cipher=cipher)
    assert summary["calls_listed_only"] == 3 and summary["listed_only_numbers"] == 3


@pytest.mark.parametrize(
    "user, password, said",
    [
        (
            "sue",
            "not the password at all",
            # Said once, by "not printed" (it ended ": nothing was done" too)
            "--user sue: no such account or wrong password (the password in PASSWORD_FILE)",
        ),
        # The same words as a wrong password: no refusal tells which names are accounts.
        (
            "nobody",
            THEIRS,
            "--user nobody: no such account or wrong password (the password in PASSWORD_FILE)",
        ),
        ("ivy", THEIRS, "ivy is not a supervisor or an auditor: only they may list the calls"),
        ("admin", OWNER_PASSWORD, "admin is not a supervisor or an auditor: only they may list the calls"),
        ("dee", THEIRS, "account dee is disabled (a test): an installer can enable it on the Users page"),
    ],
)
def test_anyone_else_or_a_wrong_password_is_refused_and_nothing_is_printed(data, user, password, said):
    accounts(data, ivy=(("staff",), [1]), dee=(("supervisor",), [1]), sue=(("supervisor",), [1]))
    web_db = WebDb(os.path.join(data, "web.db"))
    try:
        with web_db.tx() as conn:
            Accounts(web_db, lambda: int(time.time() * 1e6)).disable(conn, "dee", "a test")
    finally:
        web_db.close()
    args = calls_args(data, password, "--user", user)
    status, out, err = run_linekeeper(*args)
    assert (status, out) == (2, "")
    password_file = args[args.index("--password-file") + 1]
    assert err == "linekeeper: the calls were not printed: %s\n" % said.replace(
        "PASSWORD_FILE", password_file
    )
    assert listed(data) == []


def test_a_supervisor_lists_the_calls_of_their_lines_only(data):
    accounts(data, sam=(("supervisor",), [2, 3]), ann=(("auditor",), []))
    status, out, err = run_linekeeper(*calls_args(data, THEIRS, "--json", "--user", "sam"))
    assert status == 0, err
    mine = [json.loads(line) for line in out.splitlines()]
    assert sorted(c["line"] for c in mine) == [2, 3]
    status, out, err = run_linekeeper(*calls_args(data, THEIRS, "--json", "--user", "ann"))
    assert status == 0, err
    assert len(out.splitlines()) == 3  # an auditor: every line's
    sams, anns = listed(data)
    assert (sams.actor, sams.details["calls"], sams.details["rows"]) == ("sam", [c["id"] for c in mine], 2)
    assert (anns.actor, anns.details["rows"]) == ("ann", 3)


def test_nothing_is_printed_when_the_trail_cannot_take_the_entry(data, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(AuditLog, "append", full)
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD))
    assert (status, out) == (2, "")
    assert err.startswith("linekeeper: the calls were not printed: they could not be audited ("), err
    monkeypatch.undo()
    assert listed(data) == []


# Calls written straight into the log (as tests/support/web.py's add_calls does), around the
# midnight that starts 2 July 2026 in the box's zone (Europe/London: BST, UTC+1).
JULY = {
    "A": (1, "in", "2026-07-01T22:51:00", "01632960500"),  # 23:51 BST, 1 July
    "B": (2, "out", "2026-07-01T23:05:00", "02079460600"),  # 00:05 BST, 2 July (1 July in UTC)
    "C": (3, "in", "2026-07-02T00:05:00", "01632960700"),  # 01:05 BST, 2 July
    "D": (1, "in", "2026-07-03T10:00:00", "02079460800"),
}


@pytest.fixture
def july(data):
    """``{name: call id}`` of the :data:`JULY` calls, added to :func:`data`'s three of March."""
    import datetime

    ids = {}
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    with db:
        for name, (line, direction, at, number) in JULY.items():
            start = int(datetime.datetime.fromisoformat(at + "+00:00").timestamp()) * 1_000_000
            ids[name] = db.execute(
                "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (line, direction, start, start + 20_000_000, number),
            ).lastrowid
    db.close()
    return ids


def printed_ids(data_dir, *args, password=OWNER_PASSWORD):
    """The ids of the calls ``linekeeper calls --json ARGS`` printed, and its stderr."""
    status, out, err = run_linekeeper(*calls_args(data_dir, password, "--json", *args))
    assert status == 0, err
    return [json.loads(line)["id"] for line in out.splitlines()], err


def test_from_and_to_are_days_in_the_boxs_zone_as_on_the_calls_page(data, july):
    # B started at 23:05 UTC on 1 July: 00:05 on 2 July in London, so a day of 2 July's.
    ids, _ = printed_ids(data, "--from", "2026-07-02", "--to", "2026-07-02")
    assert ids == [july["B"], july["C"]]
    ids, _ = printed_ids(data, "--from", "2026-03-03", "--to", "2026-07-01")
    assert ids == [july["A"]]
    ids, _ = printed_ids(data, "--from", "2026-07-02")
    assert ids == [july["B"], july["C"], july["D"]]
    (both, _, since) = listed(data)
    # The page's entry: the search by the names of its fields, and only the calls printed.
    assert both.details == {
        "filter": {"from": "2026-07-02", "to": "2026-07-02"},
        "rows": 2,
        "calls": [july["B"], july["C"]],
        "via": "cli",
    }
    assert since.details["filter"] == {"from": "2026-07-02"}


def test_lines_number_and_direction_narrow_the_calls_printed(data, july):
    march = dict(zip((1, 2, 3), printed_ids(data, "--to", "2026-03-31")[0], strict=True))  # a call a line
    ids, _ = printed_ids(data, "--line", "1", "--line", "3")
    assert ids == [march[1], march[3], july["A"], july["C"], july["D"]]
    # The start of a number, as the page's "starts with"; an international form finds the national.
    ids, _ = printed_ids(data, "--number", "02079", "--match", "starts")
    assert ids == [july["B"], july["D"]]
    ids, _ = printed_ids(data, "--number", "+44 20 7946 0600", "--match", "starts")
    assert ids == [july["B"]]
    ids, _ = printed_ids(data, "--direction", "out")
    assert ids == [july["B"]]
    ids, _ = printed_ids(data, "--line", "1", "--number", "01632", "--match", "starts")
    assert ids == [march[1], july["A"]]
    entries = listed(data)[1:]  # after March's
    assert [e.details["filter"] for e in entries] == [
        {"line": ["1", "3"]},
        {"match": "prefix", "number": "02079"},
        {"match": "prefix", "number": "+44 20 7946 0600"},
        {"direction": "out"},
        {"line": "1", "match": "prefix", "number": "01632"},
    ]
    assert [e.details["rows"] for e in entries] == [5, 2, 1, 1, 2]


def test_number_contains_or_starts_with_as_the_page_offers_contains_unless_asked(data, july):
    """`--number` matched only a number's start, where the calls list offers "starts with"
    and "contains" (its default): the command offers both, through the page's search."""
    ids, _ = printed_ids(data, "--number", "9460", "--match", "contains")
    assert ids == [july["B"], july["D"]]  # 020 7946 0600, 020 7946 0800: digits inside
    ids, _ = printed_ids(data, "--number", "9460")
    assert ids == [july["B"], july["D"]]  # the page's default
    ids, _ = printed_ids(data, "--number", "9460", "--match", "starts")
    assert ids == []
    # An international form finds the national significant number anywhere, as on the page.
    ids, _ = printed_ids(data, "--number", "+44 20 7946 0800")
    assert ids == [july["D"]]
    assert [e.details["filter"] for e in listed(data)] == [
        {"match": "contains", "number": "9460"},
        {"match": "contains", "number": "9460"},
        {"match": "prefix", "number": "9460"},
        {"match": "contains", "number": "+44 20 7946 0800"},
    ]


def test_starts_with_looks_past_a_lines_outside_line_digit_and_prefixes_as_the_page(data, july):
    """The page's "starts with" looks past the outside-line digit set for a line and the
    prefixes dialled before a number (141, 18001); the command's did neither."""
    import dataclasses

    from firmware.config import load_config, save_config
    from firmware.policy.rules import LineMode

    config = load_config(data)
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(2, "always", "9"),))
    save_config(data, dataclasses.replace(config, policy=dataclasses.replace(config.policy, rules=rules)))
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    with db:
        after = db.execute(
            "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
            " VALUES (2, 'out', 1790000000000000, 1790000020000000, 1, '91411800102079460600')"
        ).lastrowid
    db.close()
    ids, _ = printed_ids(data, "--number", "020 7946 0600", "--match", "starts")
    assert ids == [july["B"], after]


@pytest.mark.parametrize(
    "args, said",
    [
        (
            ("--number", "01632", "--match", "begins"),
            "--match 'begins' is not one: give starts (the number's start, the calls list's "
            '"starts with") or contains (its digits anywhere, the default)',
        ),
        (("--match", "starts"), "--match starts says how --number is matched: give --number too"),
    ],
)
def test_a_match_that_is_not_one_is_refused_in_one_line(data, args, said):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, *args))
    assert (status, out) == (2, "")
    assert err == "linekeeper: the calls were not printed: %s\n" % said
    assert listed(data) == []


def test_a_supervisors_line_not_granted_is_refused_as_on_the_page(data, july):
    """The page refuses a search of a line not the user's ("You can search lines 2, 3
    only."), showing no call and writing no entry: so does the command."""
    accounts(data, sam=(("supervisor",), [2, 3]))
    status, out, err = run_linekeeper(*calls_args(data, THEIRS, "--user", "sam", "--line", "1"))
    assert (status, out) == (2, "")
    assert err == (
        "linekeeper: the calls were not printed: --line 1 is not granted to you: search only your "
        "lines (2, 3); a supervisor of that line searches it. Nothing was searched\n"
    )
    assert listed(data) == []
    ids, _ = printed_ids(data, "--user", "sam", "--line", "2", password=THEIRS)
    assert ids[-1:] == [july["B"]] and len(ids) == 2  # March's and July's calls on line 2


@pytest.mark.parametrize(
    "args, said",
    [
        (("--from", "2026-02-30"), "--from 2026-02-30 is not a day of the calendar"),
        (("--to", "1/7/2026"), "--to '1/7/2026' is not a date: give it as YYYY-MM-DD"),
        (("--from", "2026-07-03", "--to", "2026-07-02"), "--to 2026-07-02 is before --from 2026-07-03"),
        (("--line", "0"), "--line 0 is not one of the box's lines (1 to 3): nothing was searched"),
        (
            ("--number", "O1632"),
            "--number 'O1632' is not a number or part of one: give 1 to 32 digits (and spaces, "
            "* # + - ( )), such as 01632 or +44 1632 960777",
        ),
        (("--limit", "0"), "--limit 0 is not from 1 to 10000"),
    ],
)
def test_a_bad_search_is_refused_naming_its_option_and_nothing_is_printed(data, args, said):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, *args))
    assert (status, out) == (2, "")
    assert err == "linekeeper: the calls were not printed: %s\n" % said
    assert listed(data) == []


@pytest.mark.parametrize("user", ["admin", "ann", "sam"])
def test_a_line_the_box_does_not_have_is_refused_naming_its_lines(data, july, user):
    """An auditor's `--line 4` on a box of three lines printed nothing and was audited as a
    search that found nothing; it is refused, naming the box's lines, as anyone's is."""
    password = OWNER_PASSWORD  # admin: the key slot's owner on a box with no accounts yet
    if user != "admin":
        accounts(data, sam=(("supervisor",), [2, 3]), ann=(("auditor",), []))
        password = THEIRS
    status, out, err = run_linekeeper(*calls_args(data, password, "--user", user, "--line", "4"))
    assert (status, out) == (2, "")
    assert err == (
        "linekeeper: the calls were not printed: --line 4 is not one of the box's lines (1 to 3): "
        "nothing was searched\n"
    )
    assert listed(data) == []


def test_a_direction_that_is_not_one_is_refused_by_name(data):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--direction", "both"))
    assert (status, out) == (2, "")
    assert "argument --direction: invalid choice: 'both'" in err
    assert listed(data) == []


def test_limit_prints_the_newest_calls_found_and_says_more_matched(data, july):
    ids, err = printed_ids(data, "--limit", "2")
    assert ids == [july["C"], july["D"]]  # the newest two, oldest first as ever
    assert err == (
        "linekeeper: the newest 2 of 7 calls that matched were printed (--limit 2): narrow the "
        "search with --from, --to, --line, --number, --direction, --name, --tag or --min-duration, "
        "or raise --limit (at most 10000)\n"
    )
    (entry,) = listed(data)
    assert entry.details == {"filter": "all calls", "rows": 2, "calls": ids, "via": "cli"}
    ids, err = printed_ids(data, "--limit", "3", "--from", "2026-07-02")
    assert (ids, err) == ([july["B"], july["C"], july["D"]], "")  # all that matched: nothing said
    # The text listing too: the heading, the calls, and the cut on stderr, not among them.
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--limit", "1"))
    assert status == 0 and out.splitlines()[0] == cli.CALLS_HEADING and len(out.splitlines()) == 2
    assert out.splitlines()[1].split()[0] == str(july["D"]) and "newest 1 of 7 calls" in err


@pytest.fixture
def sealed_box(tmp_path, monkeypatch):
    """A box whose numbers are sealed (the MCU vault's key, the recorder's copy in a run
    directory), with :data:`JULY`'s calls; line 2 takes 9 for an outside line."""
    import dataclasses
    import datetime

    from board.mcu.link import McuLink
    from board.mcu.sim import SimMcu
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.config import load_config, save_config
    from firmware.policy.rules import LineMode

    data_dir, run = str(tmp_path / "box"), str(tmp_path / "run")
    os.mkdir(data_dir)
    cipher = load_field_cipher(data_dir, vault=McuLink(SimMcu(SimClock()).bus), run_dir=run)
    CallLog(os.path.join(data_dir, "calls.db"), SimClock(), cipher=cipher).close()
    owner_slot(data_dir)
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", run)
    config = load_config(data_dir)
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(2, "always", "9"),))
    save_config(data_dir, dataclasses.replace(config, policy=dataclasses.replace(config.policy, rules=rules)))
    calls = dict(JULY, E=(2, "out", "2026-07-04T10:00:00", "91411800102079460600"))
    ids = {}
    db = sqlite3.connect(os.path.join(data_dir, "calls.db"))
    with db:
        for name, (line, direction, at, number) in calls.items():
            start = int(datetime.datetime.fromisoformat(at + "+00:00").timestamp()) * 1_000_000
            ids[name] = db.execute(
                "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (line, direction, start, start + 20_000_000, cipher.seal(number, "number")),
            ).lastrowid
    db.close()
    return data_dir, ids


def test_sealed_numbers_are_searched_as_clear_ones(sealed_box):
    """The page's search of sealed numbers (each distinct number opened in memory, its
    sealed text looked up by the number index): "contains" and "starts with" alike."""
    data, ids = sealed_box
    printed, _ = printed_ids(data, "--number", "9460")
    assert printed == [ids["B"], ids["D"], ids["E"]]
    printed, _ = printed_ids(data, "--number", "9460", "--match", "starts")
    assert printed == []
    printed, _ = printed_ids(data, "--number", "+44 20 7946 0600", "--match", "starts")
    assert printed == [ids["B"], ids["E"]]  # E: 9 141 18001 on line 2
    printed, _ = printed_ids(data, "--number", "1632", "--line", "3")
    assert printed == [ids["C"]]


def test_a_breach_scope_says_the_calls_printed_were_printed_not_shown_on_screen(data, tmp_path):
    """`linekeeper calls` is audited as a page of the calls list is; a breach's scope of its
    user says the call log was printed by it (to a terminal, or a file), not that a calls
    list page was shown on screen: the DPO tells the ICO where the numbers went."""
    status, _, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD))
    assert status == 0, err
    first, last = (time.strftime("%Y-%m-%d", time.gmtime(time.time() + d)) for d in (-86400, 0))
    status, out, err = run_linekeeper(
        "breach-scope", "admin", tmp_path / "admin.csv", "--from", first, "--to", last,
        "--data-dir", data, "--password-file", password_beside(data, OWNER_PASSWORD),
    )  # fmt: skip
    assert status == 0, err
    assert "the call log printed by `linekeeper calls` 1 time (to a terminal, or to a file): 3 calls" in out
    assert "shown on screen" not in out
    assert "or in the call log `linekeeper calls` printed for it (each line with its caller's number)" in out


def test_a_name_corrected_on_request_is_printed_marked_corrected(data):
    """The name a call was corrected to (UK GDPR Art. 16, web/corrections.py) is printed in
    place of the caller-ID's, marked, as the calls list shows it; --json has it beside
    ``name`` (the call log's, as the caller-ID sent it)."""
    from web.corrections import NameCorrections

    cipher = load_field_cipher(data, run_dir=run_dir(), create=False)
    web_db = WebDb(os.path.join(data, "web.db"))
    try:
        NameCorrections(web_db, lambda: int(time.time() * 1e6), cipher).correct(
            2, "Wilhelmina Pottage", "sam"
        )
    finally:
        web_db.close()
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD))
    assert status == 0, err
    rows = {int(line.split()[0]): line for line in out.splitlines()[1:]}
    assert rows[2].endswith("%s Wilhelmina Pottage (corrected)" % NUMBERS[2])
    assert "corrected" not in rows[1] + rows[3]
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--json"))
    assert status == 0, err
    printed = {c["id"]: c for c in map(json.loads, out.splitlines())}
    assert printed[2]["corrected_name"] == "Wilhelmina Pottage" and printed[2]["name"] is None
    assert printed[1]["corrected_name"] is None


def test_name_tag_and_talk_time_search_as_the_calls_list_does(data):
    """The docs say `linekeeper calls` searches as the calls list does: it had no name, tag or
    talk time. A name is found as on the page: the phonebook's, and a name a call was
    corrected to on request (not the one it was corrected from)."""
    from firmware.policy.callmeta import SCHEMA
    from web.corrections import NameCorrections
    from web.phonebook import Phonebook

    cipher = load_field_cipher(data, run_dir=run_dir(), create=False)
    web_db = WebDb(os.path.join(data, "web.db"))
    try:
        now = lambda: int(time.time() * 1e6)  # noqa: E731
        Phonebook(web_db, now, cipher).put(NUMBERS[3], "Ada Lovelace", "uk")
        Phonebook(web_db, now, cipher).put(NUMBERS[2], "Ada Byron", "uk")
        NameCorrections(web_db, now, cipher).correct(2, "Wilhelmina Pottage", "sam")
    finally:
        web_db.close()
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    with db:
        db.executescript(SCHEMA)
        db.execute("INSERT INTO call_tags (call_id, tag) VALUES (1, 'complaint')")
        db.execute("UPDATE calls SET ended_at = answered_at + 9000000 WHERE id = 3")
    db.close()
    assert printed_ids(data, "--name", "ADA")[0] == [3]  # call 2's name is its corrected one
    assert printed_ids(data, "--name", "pottage")[0] == [2]
    assert printed_ids(data, "--tag", "complaint")[0] == [1]
    assert printed_ids(data, "--min-duration", "5")[0] == [3]
    assert printed_ids(data, "--min-duration", "0", "--name", "ada", "--tag", "complaint")[0] == []
    assert [e.details["filter"] for e in listed(data)] == [
        {"name": "ADA"},
        {"name": "pottage"},
        {"tag": "complaint"},
        {"min_duration": "5"},
        {"name": "ada", "tag": "complaint", "min_duration": "0"},
    ]


@pytest.mark.parametrize(
    "args, said",
    [
        (("--name", "x" * 65), "--name is 65 characters: give at most 64 of the name"),
        (
            ("--tag", "Complaint!"),
            "--tag 'Complaint!' is not a tag: a tag is 1 to 32 lower-case letters, digits, - and _, "
            "as the calls list offers them",
        ),
        (
            ("--min-duration", "1.5"),
            "--min-duration '1.5' is not a talk time: give whole seconds, 0 to 86400",
        ),
        (
            ("--min-duration", "90000"),
            "--min-duration '90000' is not a talk time: give whole seconds, 0 to 86400",
        ),
    ],
)
def test_a_bad_name_tag_or_talk_time_is_refused_naming_it(data, args, said):
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, *args))
    assert (status, out) == (2, "")
    assert err == "linekeeper: the calls were not printed: %s\n" % said
    assert listed(data) == []


def test_how_each_call_ended_is_printed_in_the_call_pages_words_and_json_keeps_the_codes(data):
    """The listing printed how a call ended as its code (``local``, ``remote_break``), which
    the call page says in words ("We hung up", "The other party hung up"): the same words
    now, from firmware.words; --json keeps the codes, for machines."""
    from firmware import words

    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD, "--json"))
    assert status == 0, err
    ends = {c["id"]: c["end_reason"] for c in map(json.loads, out.splitlines())}
    assert ends and all(code in words.END_REASONS for code in ends.values())
    status, out, err = run_linekeeper(*calls_args(data, OWNER_PASSWORD))
    assert status == 0, err
    heading, *lines = out.splitlines()
    start = heading.index("ended")
    for line in lines:
        said = line[start : start + 31].rstrip()
        assert said == words.END_REASONS[ends[int(line.split()[0])]], line
        assert line[start + 31 : start + 33] == "  ", line  # the columns after it stay in place
