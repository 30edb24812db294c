"""The register of data subjects' requests: the deadline arithmetic, the states, the overdue alarm."""

import datetime as dt
import os

import pytest

from firmware.alarmlog import AlarmLog
from firmware.rights import (
    ANSWERED,
    CLARIFICATION,
    EXTENDED,
    IDENTITY,
    OPEN,
    REFUSED,
    SCHEMA,
    WAITING,
    OverdueCheck,
    RequestError,
    RightsRegister,
    add_months,
    attention,
    bank_holidays,
    due_date,
    holidays_of,
)
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import FieldCipher

from support.cardscan import scan

D = dt.date


@pytest.mark.parametrize(
    "received, due",
    [
        (D(2025, 1, 31), D(2025, 2, 28)),  # no 31 February: the month's last day (a Friday)
        (D(2024, 1, 31), D(2024, 2, 29)),  # a leap year
        (D(2025, 3, 31), D(2025, 4, 30)),  # no 31 April
        (D(2025, 12, 15), D(2026, 1, 15)),  # over the year's end
        (D(2025, 3, 3), D(2025, 4, 3)),  # a Thursday: as it is
        (D(2025, 2, 5), D(2025, 3, 5)),  # a Wednesday
        (D(2025, 7, 5), D(2025, 8, 5)),  # a Tuesday
        (D(2025, 4, 12), D(2025, 5, 12)),  # 12 May 2025 a Monday
        (D(2025, 5, 14), D(2025, 6, 16)),  # 14 June a Saturday: Monday 16
        (D(2025, 5, 15), D(2025, 6, 16)),  # 15 June a Sunday: Monday 16
        (D(2025, 3, 18), D(2025, 4, 22)),  # 18 April Good Friday, then the weekend, Easter Monday
        (D(2025, 11, 25), D(2025, 12, 29)),  # Christmas Day a Thursday, Boxing Day, the weekend
        (D(2026, 11, 26), D(2026, 12, 29)),  # Boxing Day 2026 a Saturday: Monday 28 is its day
        (D(2025, 7, 25), D(2025, 8, 26)),  # the summer bank holiday (Monday 25 August)
    ],
)
def test_one_calendar_month_then_the_next_working_day(received, due):
    assert due_date(received) == due


def test_add_months_keeps_the_date_or_takes_the_months_last_day():
    assert add_months(D(2025, 1, 31), 1) == D(2025, 2, 28)
    assert add_months(D(2025, 1, 31), 3) == D(2025, 4, 30)
    assert add_months(D(2025, 11, 30), 3) == D(2026, 2, 28)
    assert add_months(D(2025, 8, 31), 1) == D(2025, 9, 30)


def test_bank_holidays_of_england_and_wales():
    assert sorted(bank_holidays(2025)) == [
        D(2025, 1, 1),
        D(2025, 4, 18),
        D(2025, 4, 21),
        D(2025, 5, 5),
        D(2025, 5, 26),
        D(2025, 8, 25),
        D(2025, 12, 25),
        D(2025, 12, 26),
    ]
    # Christmas and Boxing Day 2027 on a weekend: Monday and Tuesday; New Year 2028 a Saturday.
    assert {D(2027, 12, 27), D(2027, 12, 28)} <= bank_holidays(2027)
    assert D(2028, 1, 3) in bank_holidays(2028)
    # The one-offs: 2022's jubilee and the funeral, 2023's coronation.
    assert {D(2022, 6, 2), D(2022, 6, 3), D(2022, 9, 19)} <= bank_holidays(2022)
    assert D(2022, 5, 30) not in bank_holidays(2022)
    assert D(2023, 5, 8) in bank_holidays(2023)


@pytest.mark.parametrize(
    "region, received, due, england",
    [
        # Scotland: 2 January (Friday 2 January 2026), then the weekend.
        ("SCT", D(2025, 12, 2), D(2026, 1, 5), D(2026, 1, 2)),
        # St Andrew's Day, Monday 30 November 2026.
        ("SCT", D(2026, 10, 30), D(2026, 12, 1), D(2026, 11, 30)),
        # St Andrew's Day 2025 a Sunday: Monday 1 December in lieu.
        ("SCT", D(2025, 11, 1), D(2025, 12, 2), D(2025, 12, 1)),
        # The summer holiday on the first Monday of August (4 August 2025) ...
        ("SCT", D(2025, 7, 4), D(2025, 8, 5), D(2025, 8, 4)),
        # ... not the last (25 August), nor Easter Monday (21 April 2025).
        ("SCT", D(2025, 7, 25), D(2025, 8, 25), D(2025, 8, 26)),
        ("SCT", D(2025, 3, 21), D(2025, 4, 21), D(2025, 4, 22)),
        # Northern Ireland: St Patrick's Day, Tuesday 17 March 2026.
        ("NIR", D(2026, 2, 17), D(2026, 3, 18), D(2026, 3, 17)),
        # The Battle of the Boyne, Monday 12 July 2027; 2025's a Saturday: Monday 14 July.
        ("NIR", D(2027, 6, 12), D(2027, 7, 13), D(2027, 7, 12)),
        ("NIR", D(2025, 6, 14), D(2025, 7, 15), D(2025, 7, 14)),
        # Wales: England's bank holidays.
        ("WLS", D(2025, 7, 25), D(2025, 8, 26), D(2025, 8, 26)),
        ("WLS", D(2025, 12, 2), D(2026, 1, 2), D(2026, 1, 2)),
    ],
)
def test_the_deadline_counts_the_bank_holidays_where_the_business_is(region, received, due, england):
    assert due_date(received, region=region) == due
    assert due_date(received) == due_date(received, region="ENG") == england


def test_whose_holidays_in_words():
    assert [holidays_of(r) for r in ("ENG", "WLS", "SCT", "NIR")] == [
        "England and Wales",
        "England and Wales",
        "Scotland",
        "Northern Ireland",
    ]


@pytest.mark.parametrize("region", ["Scotland", "sct", "GB", "", None])
def test_a_region_not_known_is_refused_naming_the_setting(tmp_path, region):
    with pytest.raises(RequestError, match=r"region: must be one of ENG, WLS, SCT, NIR"):
        due_date(D(2025, 7, 4), region=region)
    with pytest.raises(RequestError, match="region"):
        RightsRegister(str(tmp_path), region=region)
    assert not os.path.exists(tmp_path / "rights.db")


def test_the_register_and_the_alarm_count_the_regions_holidays(tmp_path):
    reg = RightsRegister(str(tmp_path), region="SCT")
    rid = add(reg, received=D(2025, 7, 4), today=D(2025, 7, 4))
    assert reg.get(rid)["due"] == D(2025, 8, 5)  # Monday 4 August a Scottish bank holiday
    assert [e["due"] for e in reg.deadlines()] == [D(2025, 8, 5)]
    reg.close()
    assert RightsRegister(str(tmp_path)).get(rid)["due"] == D(2025, 8, 4)
    clock = Clock(D(2025, 8, 5))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    try:
        assert OverdueCheck(alarms, str(tmp_path), clock.wall_us, region=lambda: "SCT").overdue() == []
        late = [(rid, "access", D(2025, 8, 4))]
        assert OverdueCheck(alarms, str(tmp_path), clock.wall_us, region=lambda: None).overdue() == late
        assert OverdueCheck(alarms, str(tmp_path), clock.wall_us).overdue() == late
        # A region not known (web.db edited by hand) is an alarm, not England's deadlines.
        OverdueCheck(alarms, str(tmp_path), clock.wall_us, region=lambda: "Scotland")()
        [on] = [r for r in alarms.history() if r["cleared_us"] is None]
        assert on["kind"] == "request_check_failed"
        assert "region: must be one of" in on["message"] and "Settings" in on["message"]
    finally:
        alarms.close()


def test_pauses_and_extensions_move_the_deadline():
    # 10 days waiting for ID: 3 March -> 3 April + 10 = 13 April 2025, a Sunday -> Monday 14.
    assert due_date(D(2025, 3, 3), paused_days=10) == D(2025, 4, 14)
    # Extended by two months (three in all): 31 January -> 30 April (a Wednesday).
    assert due_date(D(2025, 1, 31), extension_months=2) == D(2025, 4, 30)
    assert due_date(D(2025, 11, 30), extension_months=2) == D(2026, 3, 2)  # Sat 28 February -> Mon 2 March


class Clock:
    def __init__(self, day):
        self.set(day)

    def set(self, day):
        self.t = int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp()) * 10**6

    def wall_us(self):
        return self.t


@pytest.fixture
def register(tmp_path):
    reg = RightsRegister(str(tmp_path))
    yield reg
    reg.close()


def add(reg, received=None, today=None, kind="access", details="all my calls"):
    return reg.add(
        actor="sam",
        kind=kind,
        received=received or D(2025, 3, 3),
        requester="Mr Jones",
        contact="jones@example.org",
        numbers="020 7946 0000",
        details=details,
        today=today or max(received or D(2025, 3, 3), D(2025, 3, 4)),
        wall_us=1,
    )


def wait(reg, rid, on, kind=IDENTITY, today=None, reason="proof of ID"):
    return reg.wait(rid, kind=kind, on=on, reason=reason, today=today or on, wall_us=2)


def test_proof_of_identity_starts_the_month_again_from_the_day_it_comes(register):
    # Received 28 January 2029, ID asked for at once, it came on 31 January: the month runs
    # from 31 January (to 28 February, a Wednesday), not 28 February + 3 days.
    rid = add(register, received=D(2029, 1, 28), today=D(2029, 1, 28))
    entry = wait(register, rid, D(2029, 1, 28))
    assert entry["status"] == WAITING and entry["pause_kind"] == IDENTITY
    entry, days = register.resume(rid, on=D(2029, 1, 31), today=D(2029, 1, 31), wall_us=3)
    assert days is None and entry["status"] == OPEN and entry["id_received"] == "2029-01-31"
    assert entry["due"] == D(2029, 2, 28) and entry["first_due"] == D(2029, 2, 28)
    # Extended: two months from the ID's day.
    entry = register.extend(rid, months=2, reason="many", today=D(2029, 2, 1), wall_us=4)
    assert entry["due"] == D(2029, 4, 30)


def test_a_clarification_excludes_the_days_from_asking_to_the_answer_both_included(register):
    rid = add(register)  # 3 March 2025: due 3 April
    entry = wait(register, rid, D(2025, 3, 5), kind=CLARIFICATION, reason="which line?")
    assert entry["pause_kind"] == CLARIFICATION
    entry, days = register.resume(rid, on=D(2025, 3, 6), today=D(2025, 3, 6), wall_us=3)
    assert days == 2 and entry["paused_days"] == 2 and entry["due"] == D(2025, 4, 7)  # 5 April a Saturday
    # Asked again the day the answer came: that day is not counted twice.
    wait(register, rid, D(2025, 3, 6), kind=CLARIFICATION, reason="and which month?")
    entry, days = register.resume(rid, on=D(2025, 3, 7), today=D(2025, 3, 7), wall_us=5)
    assert days == 1 and entry["paused_days"] == 3 and entry["due"] == D(2025, 4, 7)  # the 6th: a Sunday
    # Proof of identity afterwards: the month runs from it, the earlier days no longer matter.
    wait(register, rid, D(2025, 3, 10))
    entry, _ = register.resume(rid, on=D(2025, 3, 12), today=D(2025, 3, 12), wall_us=7)
    assert entry["paused_days"] == 0 and entry["due"] == D(2025, 4, 14)  # 12 April a Saturday
    # Then a clarification: its days added to the month from the ID.
    wait(register, rid, D(2025, 3, 20), kind=CLARIFICATION)
    entry, days = register.resume(rid, on=D(2025, 3, 22), today=D(2025, 3, 22), wall_us=9)
    assert days == 3 and entry["due"] == D(2025, 4, 15)


def test_a_clarification_begun_on_a_deadline_moved_past_a_weekend_leaves_time_after(register):
    """A month that ends on a Saturday (or a bank holiday) is answered by the next working
    day; a clarification asked for on that day stops the clock too, and the time it had
    left comes after the answer: the request is not overdue as the clock runs again."""
    cases = [  # received, asked on, answered: due before, due after
        ("2025-05-14 2025-06-16 2025-06-17", "2025-06-16 2025-06-18"),  # 14 June a Saturday
        ("2025-03-18 2025-04-22 2025-04-23", "2025-04-22 2025-04-24"),  # Good Friday to Easter Monday
        ("2025-03-03 2025-04-03 2025-04-04", "2025-04-03 2025-04-07"),  # on the month's last day
        ("2025-05-14 2025-06-02 2025-06-03", "2025-06-16 2025-06-16"),  # early: 14 June + 2 days
    ]
    cases = [[D.fromisoformat(d) for d in (a + " " + b).split()] for a, b in cases]
    for received, asked, answered, before, after in cases:
        rid = add(register, received=received, today=received, details="calls asked on %s" % asked)
        assert register.get(rid)["due"] == before
        wait(register, rid, asked, kind=CLARIFICATION, reason="which line?")
        entry, days = register.resume(rid, on=answered, today=answered, wall_us=3)
        assert days == 2 and entry["due"] == after and entry["due"] >= answered, (received, entry["due"])


def test_a_register_of_the_first_release_gains_the_new_columns(tmp_path):
    import sqlite3

    old = sqlite3.connect(tmp_path / "rights.db")
    first_release = SCHEMA.split("    pause_kind")[0].rstrip().rstrip(",") + "\n);"
    old.executescript(first_release)
    old.execute(
        "INSERT INTO requests (created_us, updated_us, actor, kind, received, status, paused_since, "
        "requester, contact, numbers, details) VALUES (1, 1, 'sam', 'access', '2025-03-03', 'waiting', "
        "'2025-03-05', 'x', 'x', 'x', 'x')"
    )
    old.commit()
    old.close()
    clock = Clock(D(2025, 4, 9))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us)
    try:
        assert check.overdue() == []  # the recorder reads it before the web UI migrated it
        reg = RightsRegister(str(tmp_path))
        try:
            # A wait begun then reads as one for clarification: 5 to 6 March excluded.
            entry, days = reg.resume(1, on=D(2025, 3, 6), today=D(2025, 3, 6), wall_us=2)
            assert days == 2 and entry["due"] == D(2025, 4, 7)
        finally:
            reg.close()
        assert check.overdue() == [(1, "access", D(2025, 4, 7))]
    finally:
        alarms.close()


def test_refusals_change_nothing(register):
    rid = add(register)
    before = register.get(rid)
    bad = [
        lambda: register.resume(rid, on=D(2025, 3, 5), today=D(2025, 3, 5), wall_us=9),  # not waiting
        lambda: wait(register, rid, D(2025, 3, 9), today=D(2025, 3, 5)),  # future
        lambda: wait(register, rid, D(2025, 3, 1), today=D(2025, 3, 5)),  # before its receipt
        lambda: wait(register, rid, D(2025, 3, 4), kind="patience"),
        lambda: register.extend(rid, months=3, reason="many", today=D(2025, 3, 5), wall_us=9),
        lambda: register.extend(rid, months=0, reason="many", today=D(2025, 3, 5), wall_us=9),
        lambda: register.close_request(
            rid, status="open", on=D(2025, 3, 5), outcome="x", today=D(2025, 3, 5), wall_us=9
        ),
        lambda: wait(register, 99, D(2025, 3, 5)),
        lambda: add(register, received=D(2025, 3, 6), today=D(2025, 3, 5)),
        lambda: add(register, received=D(2018, 5, 24), today=D(2025, 3, 5)),
        lambda: add(register, kind="portability"),
    ]
    for step in bad:
        with pytest.raises(RequestError):
            step()
    assert register.get(rid) == before
    assert [e["id"] for e in register.entries()] == [rid]


def test_an_extension_is_up_to_two_months_and_made_within_the_first(register):
    rid = add(register, received=D(2025, 1, 31), today=D(2025, 1, 31))
    entry = register.extend(rid, months=1, reason="many calls", today=D(2025, 2, 28), wall_us=2)
    assert entry["status"] == EXTENDED and entry["due"] == D(2025, 3, 31)
    entry = register.extend(rid, months=1, reason="and a third party's", today=D(2025, 2, 28), wall_us=3)
    assert entry["due"] == D(2025, 4, 30) and entry["extension_reason"] == "many calls; and a third party's"
    with pytest.raises(RequestError, match="at most 2"):
        register.extend(rid, months=1, reason="more", today=D(2025, 2, 28), wall_us=4)
    late = add(register, received=D(2025, 1, 31), today=D(2025, 1, 31), details="every call")
    with pytest.raises(RequestError, match="first month ended on Fri 28 Feb 2025"):
        register.extend(late, months=1, reason="many", today=D(2025, 3, 1), wall_us=4)
    wait(register, late, D(2025, 2, 3))
    with pytest.raises(RequestError, match="clock is stopped"):
        register.extend(late, months=1, reason="many", today=D(2025, 2, 3), wall_us=6)


def test_answered_and_refused_are_final(register):
    rid = add(register)
    entry = register.close_request(
        rid,
        status=ANSWERED,
        on=D(2025, 3, 20),
        outcome="bundle released",
        today=D(2025, 3, 20),
        wall_us=2,
        disclosure_ids=[4],
    )
    assert entry["status"] == ANSWERED and entry["disclosure_ids"] == "4"
    assert entry["closed_on"] == "2025-03-20"
    with pytest.raises(RequestError, match="already answered"):
        register.close_request(
            rid, status=REFUSED, on=D(2025, 3, 20), outcome="x", today=D(2025, 3, 20), wall_us=3
        )


def test_attention_lists_overdue_first_then_due_within_a_week(register):
    soon = add(register, received=D(2025, 3, 3))  # due 3 April
    late = add(register, received=D(2025, 2, 3))  # due 3 March
    add(register, received=D(2025, 3, 25), today=D(2025, 3, 28))  # due 25 April
    waiting = add(register, received=D(2025, 2, 3), details="my calls in January")
    wait(register, waiting, D(2025, 2, 4), today=D(2025, 3, 28))
    found = [(days, e["id"]) for days, e in attention(register.entries(), D(2025, 3, 28))]
    assert found == [(-25, late), (6, soon)]


def test_overdue_raises_the_alarm_and_the_answer_clears_it(tmp_path, register):
    clock = Clock(D(2025, 4, 3))
    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    alarms = AlarmLog(tmp_path / "alarms.db", clock, audit)
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us, zone=lambda: "Europe/London")
    try:
        rid = add(register)  # due 3 April
        check()
        assert not alarms.open_box_alarms()
        clock.set(D(2025, 4, 4))
        check()
        [on] = [r for r in alarms.history() if r["cleared_us"] is None]
        assert on["kind"] == "request_overdue"
        assert "request %d (access) was due on 2025-04-03" % rid in on["message"]
        assert "Mr Jones" not in on["message"]
        day = D(2025, 4, 4)
        register.close_request(rid, status=ANSWERED, on=day, outcome="sent", today=day, wall_us=3)
        check()
        assert [r for r in alarms.history() if r["cleared_us"] is None] == []
    finally:
        alarms.close()
        audit.close()


def test_overdue_is_raised_where_the_request_is_seen_each_line_naming_its_own(tmp_path, register):
    """A staff member's request (about their lines) was named on the whole box's alarm, seen
    and mailed to every supervisor, though the register shows it only to its lines'. Now
    each line's alarm names the requests about it; the whole box's those about no line."""
    clock = Clock(D(2025, 4, 4))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us)

    def staff(lines, kind):
        return register.add(
            actor="stella",
            kind=kind,
            received=D(2025, 3, 3),
            requester="stella",
            contact="stella",
            numbers="",
            details="my calls",
            today=D(2025, 3, 3),
            wall_us=1,
            lines=lines,
        )

    def open_now():
        return {r["line"]: r["message"] for r in alarms.history() if r["cleared_us"] is None}

    try:
        caller = add(register)
        three = staff([3], "erasure")
        both = staff([1, 3], "objection")
        check()
        on = open_now()
        assert sorted(on) == [0, 1, 3]
        assert on[0].startswith("request %d (access)" % caller) and "request %d" % three not in on[0]
        assert "request %d (erasure)" % three in on[3] and "request %d (objection)" % both in on[3]
        assert "request %d" % caller not in on[3] and "request %d" % three not in on[1]
        day = D(2025, 4, 4)
        for rid in (caller, three):
            register.close_request(rid, status=ANSWERED, on=day, outcome="sent", today=day, wall_us=3)
        check()
        on = open_now()
        assert sorted(on) == [1, 3] and "request %d" % three not in on[3]
        register.close_request(both, status=ANSWERED, on=day, outcome="sent", today=day, wall_us=4)
        check()
        assert open_now() == {}
    finally:
        alarms.close()


def test_overdue_on_a_line_no_supervisor_holds_is_raised_on_the_whole_box(tmp_path, register):
    """A staff member's request on line 4, which no enabled supervisor holds, was raised on
    line 4 alone, told to nobody; the register now shows it to every supervisor, and its
    alarm is the whole box's. Once a supervisor holds line 4 it moves there; a disabled
    account (left out of the accounts) holds nothing."""
    clock = Clock(D(2025, 4, 4))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    sam = (frozenset({"supervisor"}), (1, 2))
    accounts = {"sam": sam, "stella": (frozenset({"staff"}), (4,)), "ivan": (frozenset({"installer"}), (4,))}
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us, accounts=lambda: accounts)

    def open_now():
        return {r["line"]: r["message"] for r in alarms.history() if r["cleared_us"] is None}

    try:
        four = register.add(
            actor="stella",
            kind="erasure",
            received=D(2025, 3, 3),
            requester="stella",
            contact="stella",
            numbers="",
            details="my calls",
            today=D(2025, 3, 3),
            wall_us=1,
            lines=[4],
        )
        check()
        assert list(open_now()) == [0] and "request %d (erasure)" % four in open_now()[0]
        accounts["sue"] = (frozenset({"supervisor"}), (3, 4))
        check()
        assert list(open_now()) == [4] and "request %d (erasure)" % four in open_now()[4]
        del accounts["sue"]
        check()
        assert list(open_now()) == [0]
    finally:
        alarms.close()


def test_no_register_no_alarm_and_no_file_made(tmp_path):
    clock = Clock(D(2025, 4, 3))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    try:
        OverdueCheck(alarms, str(tmp_path), clock.wall_us)()
        assert not os.path.exists(tmp_path / "rights.db")
        assert alarms.history() == []
    finally:
        alarms.close()


def test_personal_fields_are_sealed_on_the_card(tmp_path):
    reg = RightsRegister(str(tmp_path), FieldCipher(os.urandom(32)))
    try:
        rid = add(reg)
        wait(reg, rid, D(2025, 3, 4), reason="Mr Jones's passport")
        reg.resume(rid, on=D(2025, 3, 4), today=D(2025, 3, 4), wall_us=3)
        reg.close_request(
            rid, status=REFUSED, on=D(2025, 3, 4), outcome="unfounded", today=D(2025, 3, 4), wall_us=4
        )
        entry = reg.get(rid)
        assert entry["requester"] == "Mr Jones" and entry["numbers"] == "020 7946 0000"
    finally:
        reg.close()
    secrets = ["Mr Jones", "jones@example.org", "020 7946 0000", "all my calls", "passport", "unfounded"]
    assert scan(str(tmp_path), secrets) == []


def test_waits_never_overlap_nor_start_after_the_deadline(register):
    rid = add(register)  # 3 March 2025: due 3 April
    wait(register, rid, D(2025, 3, 5), kind=CLARIFICATION)
    register.resume(rid, on=D(2025, 3, 10), today=D(2025, 3, 10), wall_us=3)  # 6 days: due 9 April
    before = register.get(rid)
    assert before["resumed_on"] == "2025-03-10" and before["due"] == D(2025, 4, 9)
    # Before the last answer came: those days would be counted twice.
    with pytest.raises(RequestError, match="before Mon 10 Mar 2025"):
        wait(register, rid, D(2025, 3, 8), kind=CLARIFICATION, today=D(2025, 3, 12))
    # Overdue: the clock cannot be stopped afterwards to hide it.
    with pytest.raises(RequestError, match="after the deadline"):
        wait(register, rid, D(2025, 4, 10), today=D(2025, 4, 14))
    # Not in the future.
    with pytest.raises(RequestError, match="after today"):
        wait(register, rid, D(2025, 3, 20), today=D(2025, 3, 19))
    assert register.get(rid) == before
    # Recorded late, but asked on the deadline itself: taken.
    assert wait(register, rid, D(2025, 4, 9), today=D(2025, 4, 11))["status"] == WAITING


def test_two_changes_at_once_one_is_made_the_other_refused(tmp_path, register):
    """Two supervisors (two connections, two threads) extend the same request, each from
    the version they saw: one extension is made and audited, the other refused, none lost."""
    import threading

    rid = add(register)
    version = register.get(rid)["version"]
    start = threading.Barrier(2)
    results = {}

    def extend(name, months):
        reg = RightsRegister(str(tmp_path))
        try:
            start.wait(timeout=10)
            entry = reg.extend(
                rid, months=months, reason=name, today=D(2025, 3, 4), wall_us=2, version=version
            )
            results[name] = entry["extension_months"]
        except RequestError as exc:
            results[name] = str(exc)
        finally:
            reg.close()

    threads = [threading.Thread(target=extend, args=(n, m)) for n, m in (("sam", 1), ("sue", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [n for n, r in results.items() if isinstance(r, int)]
    [refused] = [r for r in results.values() if isinstance(r, str)]
    assert len(made) == 1 and "changed by someone else meanwhile: look again" in refused
    entry = register.get(rid)
    assert entry["extension_reason"] == made[0] and entry["extension_months"] == results[made[0]]
    assert entry["version"] == version + 1


def test_a_change_is_all_or_nothing(register, monkeypatch):
    """A change that fails while it is written leaves the request as it was (the
    transaction rolls back) and the register usable."""
    rid = add(register)
    before = register.get(rid)

    def broken(*args, **kwargs):
        raise RuntimeError("the card went away")

    monkeypatch.setattr(register, "_update", broken)
    with pytest.raises(RuntimeError):
        register.extend(rid, months=1, reason="many", today=D(2025, 3, 4), wall_us=2)
    monkeypatch.undo()
    assert register.get(rid) == before
    assert register.extend(rid, months=1, reason="many", today=D(2025, 3, 4), wall_us=3)["version"] == 1


def test_the_alarm_is_raised_again_when_the_overdue_requests_change(tmp_path, register):
    """A second request overdue, or one answered while another stays late: a new
    occurrence naming those overdue now, so the mail goes again and never names one
    already answered."""
    clock = Clock(D(2025, 4, 4))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    mailed = []
    alarms.on_raised.append(lambda row: mailed.append(row["message"]))
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us, zone=lambda: "Europe/London")
    try:
        first = add(register)  # due 3 April
        second = add(register, received=D(2025, 3, 4))  # due 4 April
        check()
        check()  # nothing changed: still the one occurrence, not mailed again
        assert (
            len(mailed) == 1
            and "request %d " % first in mailed[0]
            and "request %d " % second not in mailed[0]
        )
        clock.set(D(2025, 4, 5))
        check()
        assert len(mailed) == 2 and "request %d " % first in mailed[1] and "request %d " % second in mailed[1]
        day = D(2025, 4, 5)
        register.close_request(first, status=ANSWERED, on=day, outcome="sent", today=day, wall_us=3)
        check()
        assert (
            len(mailed) == 3
            and "request %d " % first not in mailed[2]
            and "request %d " % second in mailed[2]
        )
        [on] = [r for r in alarms.history() if r["cleared_us"] is None]
        assert on["message"] == mailed[2]
        register.close_request(second, status=ANSWERED, on=day, outcome="sent", today=day, wall_us=4)
        check()
        assert len(mailed) == 3 and not alarms.open_box_alarms()
    finally:
        alarms.close()


def test_the_register_is_wal_in_the_data_mode_and_a_killed_writer_leaves_it_readable(tmp_path):
    """The web UI killed mid-change: the recorder's read-only open still works (with a
    rollback journal a hot journal made it fail) and sees the request as it was."""
    import subprocess
    import sys
    import textwrap

    from firmware.storage import fsutil

    reg = RightsRegister(str(tmp_path))
    try:
        rid = add(reg, received=D(2025, 2, 3))  # due 3 March
        assert reg._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        reg.close()
    assert os.stat(tmp_path / "rights.db").st_mode & 0o777 == fsutil.data_mode()
    # A change big enough that SQLite writes some of it to the file before the commit
    # (a small cache), then the process killed.
    killed = textwrap.dedent("""\
        import os, sys
        from firmware.rights import RightsRegister
        reg = RightsRegister(sys.argv[1])
        reg._db.execute("PRAGMA cache_size=2")
        reg._db.execute("BEGIN IMMEDIATE")
        reg._db.execute("UPDATE requests SET status = 'answered'")
        for n in range(300):
            reg._db.execute(
                "INSERT INTO requests (created_us, updated_us, actor, kind, received, status, "
                "requester, contact, numbers, details) "
                "VALUES (1, 1, 'x', 'access', '2025-02-03', 'open', 'x', 'x', 'x', ?)",
                ("x" * 1000,),
            )
        os._exit(9)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert subprocess.run([sys.executable, "-c", killed, str(tmp_path)], cwd=root).returncode == 9
    clock = Clock(D(2025, 4, 3))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    try:
        assert OverdueCheck(alarms, str(tmp_path), clock.wall_us).overdue() == [
            (rid, "access", D(2025, 3, 3))
        ]
    finally:
        alarms.close()


def test_a_register_that_cannot_be_read_is_an_alarm_not_silence(tmp_path, caplog):
    clock = Clock(D(2025, 4, 3))
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    check = OverdueCheck(alarms, str(tmp_path), clock.wall_us)
    try:
        (tmp_path / "rights.db").write_bytes(b"not a database, a damaged card" * 100)
        check()
        [on] = [r for r in alarms.history() if r["cleared_us"] is None]
        assert on["kind"] == "request_check_failed" and "rights.db cannot be read" in on["message"]
        assert any("register of requests" in r.getMessage() for r in caplog.records)
        os.unlink(tmp_path / "rights.db")
        RightsRegister(str(tmp_path)).close()
        check()
        assert not alarms.open_box_alarms()
    finally:
        alarms.close()


def test_reading_the_register_takes_no_write_lock(tmp_path):
    """The dashboard and the list only read: while another supervisor's change holds the
    register's write lock, they still open it and read, at once."""
    import os
    import sqlite3
    import time

    RightsRegister(str(tmp_path)).close()
    writer = sqlite3.connect(os.path.join(tmp_path, "rights.db"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        began = time.monotonic()
        register = RightsRegister(str(tmp_path))
        assert register.deadlines() == [] and time.monotonic() - began < 1.0
        register.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_the_recorder_reads_the_region_the_site_settings_saved(tmp_path):
    import dataclasses

    from firmware.datadir import site_region
    from web.db import WebDb
    from web.site import LineSetting, Site, SiteSettings

    assert site_region(str(tmp_path)) is None  # no web.db: England's, as before
    site = SiteSettings(
        "Acme", "ZA123456", "2027-01-31", "To keep orders.", "uk", (LineSetting(1, "A", True),)
    )
    db = WebDb(str(tmp_path / "web.db"))
    with db.tx() as conn:
        Site(db).save(conn, dataclasses.replace(site, region="NIR"))
    db.close()
    assert site_region(str(tmp_path)) == "NIR"


def test_a_request_keeps_the_lines_it_is_about_and_its_follow_up_the_same(register):
    """A staff member's request (My line) is about their lines, in clear: the dashboard of a
    supervisor of another line does not list it. One logged by number is about no line."""
    from firmware.rights import concerns_lines

    common = dict(actor="stella", kind="access", requester="stella", contact="My line", numbers="")
    rid = register.add(
        **common, received=D(2025, 3, 3), details="mine", today=D(2025, 3, 3), wall_us=1, lines=[4, 3, 4]
    )
    assert register.get(rid)["lines"] == [3, 4]
    [entry] = register.deadlines()
    assert entry["lines"] == [3, 4] and "requester" not in entry
    assert concerns_lines(entry, [3]) and not concerns_lines(entry, [1, 2])
    # About lines 3 and 4: anyone's when no supervisor holds either, else only theirs.
    assert concerns_lines(entry, [1, 2], supervised={1, 2}) and not concerns_lines(entry, [1, 2], {1, 2, 4})
    other = add(register)
    assert register.get(other)["lines"] == [] and concerns_lines(register.get(other), [1])
    register.close_request(
        rid, status=ANSWERED, on=D(2025, 3, 20), outcome="sent", today=D(2025, 3, 20), wall_us=2
    )
    again = register.add(
        **common, received=D(2025, 3, 21), details="more", today=D(2025, 3, 21), wall_us=3, follows=rid
    )
    assert register.get(again)["lines"] == [3, 4]


def test_the_lines_a_request_is_about_are_changed_while_it_is_open_and_a_bad_one_changes_nothing(register):
    """The Requests page names the lines a request is about (a staff member on line 3 who
    objects), and corrects them while it is open: each change one more version, the lines it
    was about returned for the trail; a line that is not a number from 1 is refused, naming
    it, and a closed request keeps its lines."""
    rid = add(register)
    version = register.get(rid)["version"]
    entry, before = register.set_lines(rid, lines=[4, 3, 3], wall_us=5, version=version)
    assert before == [] and entry["lines"] == [3, 4] and entry["version"] == version + 1
    assert register.deadlines()[0]["lines"] == [3, 4]
    for bad in ([0], [3, -1], ["3"], [True]):
        with pytest.raises(RequestError, match="a line is a number from 1, not ") as refused:
            register.set_lines(rid, lines=bad, wall_us=6)
        assert repr(bad[-1]) in str(refused.value)
        with pytest.raises(RequestError, match="a line is a number from 1"):
            register.add(
                actor="sam",
                kind="access",
                received=D(2025, 3, 3),
                requester="x",
                contact="x",
                numbers="",
                details="x",
                today=D(2025, 3, 4),
                wall_us=1,
                lines=bad,
            )
    assert register.get(rid)["lines"] == [3, 4] and register.get(rid)["version"] == version + 1
    assert len(register.entries()) == 1
    # A page drawn before the change is refused; none at all is about no line.
    with pytest.raises(RequestError, match="changed by someone else"):
        register.set_lines(rid, lines=[1], wall_us=7, version=version)
    entry, before = register.set_lines(rid, lines=[], wall_us=8)
    assert before == [3, 4] and entry["lines"] == []
    register.close_request(
        rid, status=ANSWERED, on=D(2025, 3, 20), outcome="sent", today=D(2025, 3, 20), wall_us=9
    )
    with pytest.raises(RequestError, match="already answered"):
        register.set_lines(rid, lines=[2], wall_us=10)
    assert register.get(rid)["lines"] == []


def test_the_day_received_is_corrected_only_before_the_clock_stops_or_is_extended(register):
    """A request logged with the wrong day received is corrected while open, its month then
    running from the day given; once a wait or an extension was counted from it, or it is
    closed, the day stays. A follow-up's day is not before its first was closed."""
    rid = add(register, received=D(2025, 3, 3), today=D(2025, 3, 4))
    version = register.get(rid)["version"]
    entry, before = register.correct_received(
        rid, received=D(2025, 2, 24), today=D(2025, 3, 4), wall_us=5, version=version
    )
    assert before == D(2025, 3, 3) and entry["received"] == "2025-02-24" and entry["due"] == D(2025, 3, 24)
    assert entry["version"] == version + 1
    for received, said in (
        (D(2025, 3, 5), "after today"),
        (D(2018, 5, 24), "before the GDPR applied"),
        (D(2025, 2, 24), "says Mon 24 Feb 2025 already"),
    ):
        with pytest.raises(RequestError, match=said) as refused:
            register.correct_received(rid, received=received, today=D(2025, 3, 4), wall_us=6)
        assert refused.value.field == "received"
    with pytest.raises(RequestError, match="changed by someone else"):
        register.correct_received(
            rid, received=D(2025, 2, 25), today=D(2025, 3, 4), wall_us=6, version=version
        )
    waited = add(register, details="every call")
    extended = add(register, details="every recording")
    wait(register, waited, D(2025, 3, 4))
    register.resume(waited, on=D(2025, 3, 4), today=D(2025, 3, 4), wall_us=7)
    assert register.get(waited)["status"] == OPEN
    register.extend(extended, months=1, reason="many calls", today=D(2025, 3, 4), wall_us=7)
    for other in (waited, extended):
        kept = register.get(other)
        with pytest.raises(RequestError, match="has waited or been extended") as refused:
            register.correct_received(other, received=D(2025, 3, 1), today=D(2025, 3, 4), wall_us=8)
        assert refused.value.field is None and register.get(other) == kept
    register.close_request(
        rid, status=ANSWERED, on=D(2025, 3, 4), outcome="sent", today=D(2025, 3, 4), wall_us=9
    )
    with pytest.raises(RequestError, match="already answered"):
        register.correct_received(rid, received=D(2025, 2, 25), today=D(2025, 3, 4), wall_us=10)
    common = dict(actor="sam", kind="access", requester="x", contact="x", numbers="", details="more")
    again = register.add(**common, received=D(2025, 3, 5), today=D(2025, 3, 6), wall_us=11, follows=rid)
    with pytest.raises(RequestError, match=r"before request \d+ was closed \(Tue 4 Mar 2025\)"):
        register.correct_received(again, received=D(2025, 3, 3), today=D(2025, 3, 6), wall_us=12)
    assert register.get(again)["received"] == "2025-03-05"
    register.correct_received(again, received=D(2025, 3, 4), today=D(2025, 3, 6), wall_us=12)
    assert register.get(again)["received"] == "2025-03-04"


def test_how_to_reach_the_person_is_corrected_while_open_the_old_and_new_kept_sealed(tmp_path):
    """The person moved, or their e-mail was mistyped: how to reach them is corrected while the
    request is open, sealed as when it was logged, its version one more; the old and new
    addresses are kept with the request, sealed too (a correction of it kept neither). Empty,
    the same, a stale page and a closed request are refused, nothing changed."""
    cipher = FieldCipher(os.urandom(32))
    register = RightsRegister(str(tmp_path), cipher)
    try:
        rid = add(register)
        version = register.get(rid)["version"]
        entry, first = register.correct(
            rid, field="contact", value=" 4 New Street, Leeds ", wall_us=5, version=version
        )
        assert entry["contact"] == "4 New Street, Leeds" and entry["version"] == version + 1
        assert register.corrections(rid) == {first: ("contact", "jones@example.org", "4 New Street, Leeds")}
        for contact, said in (("  ", "give how to reach them"), ("4 New Street, Leeds", "says that already")):
            with pytest.raises(RequestError, match=said) as refused:
                register.correct(rid, field="contact", value=contact, wall_us=6)
            assert refused.value.field == "contact"
        with pytest.raises(RequestError, match="changed by someone else"):
            register.correct(rid, field="contact", value="j@example.org", wall_us=6, version=version)
        register.close_request(
            rid, status=ANSWERED, on=D(2025, 3, 4), outcome="sent", today=D(2025, 3, 4), wall_us=7
        )
        with pytest.raises(RequestError, match="already answered"):
            register.correct(rid, field="contact", value="j@example.org", wall_us=8)
        assert register.get(rid)["contact"] == "4 New Street, Leeds" and len(register.corrections(rid)) == 1
    finally:
        register.close()
    assert scan(str(tmp_path), ["New Street", "jones@example.org"]) == []


def test_who_asked_and_their_numbers_are_corrected_the_old_and_new_kept_sealed(tmp_path):
    """Who asked (misheard) and the numbers their calls are found by are corrected while the
    request is open, sealed as when it was logged; the old and new values are kept with the
    request, sealed too. Who asked empty, the same value, another field, a stale page and a
    closed request are refused, nothing changed."""
    cipher = FieldCipher(os.urandom(32))
    register = RightsRegister(str(tmp_path), cipher)
    try:
        rid = add(register)
        version = register.get(rid)["version"]
        entry, first = register.correct(
            rid, field="requester", value=" Mr Joness ", wall_us=5, version=version
        )
        assert entry["requester"] == "Mr Joness" and entry["version"] == version + 1
        entry, second = register.correct(rid, field="numbers", value="07700 900123", wall_us=6)
        assert entry["numbers"] == "07700 900123"
        entry, third = register.correct(rid, field="numbers", value="", wall_us=7)
        assert entry["numbers"] == ""
        assert register.corrections(rid) == {
            first: ("requester", "Mr Jones", "Mr Joness"),
            second: ("numbers", "020 7946 0000", "07700 900123"),
            third: ("numbers", "07700 900123", ""),
        }
        for field, value, said in (
            ("requester", "  ", "give the name of the person who asked"),
            ("requester", "Mr Joness", "says that already"),
            ("numbers", "", "says that already"),
        ):
            with pytest.raises(RequestError, match=said) as refused:
                register.correct(rid, field=field, value=value, wall_us=8)
            assert refused.value.field == field
        with pytest.raises(RequestError, match="only who asked, how to reach them and their numbers"):
            register.correct(rid, field="details", value="all my calls", wall_us=8)
        with pytest.raises(RequestError, match="changed by someone else"):
            register.correct(rid, field="requester", value="Mrs Jones", wall_us=8, version=version)
        register.close_request(
            rid, status=ANSWERED, on=D(2025, 3, 4), outcome="sent", today=D(2025, 3, 4), wall_us=9
        )
        with pytest.raises(RequestError, match="already answered"):
            register.correct(rid, field="requester", value="Mrs Jones", wall_us=10)
        assert register.get(rid)["requester"] == "Mr Joness" and len(register.corrections(rid)) == 3
        assert register.corrections(rid + 1) == {}
    finally:
        register.close()
    assert scan(str(tmp_path), ["Mr Jones", "Mr Joness", "07700 900123", "020 7946 0000"]) == []
