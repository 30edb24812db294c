"""The recording decision (firmware.policy.rules) as a pure function: each rule, its reason."""

import datetime as dt

import pytest

from firmware.policy import rules
from firmware.policy.settings import BusinessHours, LineMode, NumberList, OnDemand, RecordingRules


def wall(iso):
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1_000_000)


MON_10 = wall("2026-03-02T10:00:00+00:00")  # a Monday, 10:00 in London (GMT)
BY_RULE = (LineMode(1, "by_rule"),)


def decide(r, number="01632960123", direction="in", when=MON_10, line=1, country="uk"):
    return rules.decide(r, line, direction, number, when, country)


def test_line_modes():
    r = RecordingRules(lines=(LineMode(2, "never"), LineMode(3, "on_demand")))
    assert decide(r, line=1) == rules.Decision("record", "line 1 records every call", "line")
    assert decide(r, line=2) == rules.Decision("skip", "line 2 is private", "line")
    assert decide(r, line=3).decision == "pending"


def test_direction():
    r = RecordingRules(lines=BY_RULE, directions=("in",))
    assert decide(r, direction="out").reason == "outbound calls are not recorded"
    assert decide(r, direction="in").decision == "record"


@pytest.mark.parametrize(
    "number, pattern, matched",
    [
        ("08001234567", "0800*", True),
        ("08081234567", "0800*", False),
        ("01632960123", "+44*", True),
        ("01632960123", "+441632 96????", True),
        ("01632960123", "01632 96????", True),
        ("016329601234", "01632 96????", False),
        ("00441632960123", "01632*", True),
        ("999", "999", True),
        (None, "*", False),
        # Dialled withholding (141) or showing (1470) the caller's own number: the number
        # called is what follows, and an exclude list of 0800 numbers still holds.
        ("14108001234567", "0800*", True),
        ("14700800123456", "0800*", True),
        ("141 00441632960123", "+441632*", True),
        ("1412", "0800*", False),  # not a prefix before a number
        ("#31#08001234567", "0800*", True),  # GSM's (a mobile through a GSM gateway)
        # Through Relay UK (18001 from a textphone, 18002 to one): the number called follows,
        # after a withholding prefix too.
        ("1800108001234567", "0800*", True),
        ("18002 01632 960123", "01632 96????", True),
        ("141 18001 08001234567", "0800*", True),
        ("18001 141 08001234567", "0800*", True),
        ("18001999", "0800*", False),
        # A caller's number as some networks send it: international without its "+".
        ("448001234567", "0800*", True),
        ("441632960123", "01632 96????", True),
    ],
)
def test_number_patterns_uk(number, pattern, matched):
    assert rules.matches(pattern, number, "uk") is matched


@pytest.mark.parametrize(
    "number, pattern, matched",
    [
        ("2025550143", "+1202*", True),
        ("12025550143", "202555????", True),
        ("18005550100", "800*", True),
        ("01144207946000", "+44*", True),
        ("*678005550100", "800*", True),
        ("*6718005550100", "800*", True),
        ("*82 2025550143", "+1202*", True),
        ("#31#2025550143", "+1202*", True),
        # Through the relay service (711): the number called follows.
        ("711 18005550100", "800*", True),
        ("711 2025550143", "+1202*", True),
        ("*67 711 8005550100", "800*", True),
        ("711", "711", True),
    ],
)
def test_number_patterns_us(number, pattern, matched):
    assert rules.matches(pattern, number, "us") is matched


def test_exclude_wins_and_include_lists():
    r = RecordingRules(
        lines=BY_RULE,
        numbers=(
            NumberList("helplines", "exclude", ("0800*",)),
            NumberList("clients", "include", ("01632*", "0800 1*")),
        ),
    )
    assert decide(r, "08001234567").reason == 'number excluded by rule "helplines"'
    assert decide(r, "01632960123").reason == 'number included by rule "clients"'
    assert decide(r, "02079460000").reason == 'number not on an include list ("clients")'
    assert decide(r, None).reason == "number withheld: not on an include list"


@pytest.mark.parametrize(
    "number, pattern",
    [
        ("9 01632 960123", "01632960123"),
        ("901632960123", "+441632*"),
        ("9 141 08001234567", "0800*"),  # withheld too: the outside-line digit first
        ("9 00441632960123", "01632 96????"),
    ],
)
def test_a_number_dialled_after_the_lines_outside_line_digit_matches_its_lists(number, pattern):
    """On a PBX extension the outside-line digit is dialled before every number: an exclude
    list of the numbers called still holds (the line's ``outside_line``)."""
    assert rules.matches(pattern, number, "uk", outside="9")
    assert not rules.matches(pattern, number, "uk")  # a line without: as dialled


def test_the_outside_line_digit_is_a_lines_and_an_outbound_calls():
    r = RecordingRules(
        lines=(LineMode(1, "by_rule"), LineMode(2, "by_rule", "9")),
        numbers=(NumberList("staff homes", "exclude", ("01632960123", "9175550123")),),
    )
    home = 'number excluded by rule "staff homes"'
    assert decide(r, "901632960123", "out", line=2).reason == home
    assert decide(r, "901632960123", "out", line=1).decision == "record"  # no digit set there
    # A caller's number (inbound) is the network's: no outside-line digit before it.
    assert decide(r, "9175550123", "in", line=2, country="us").reason == home


@pytest.mark.parametrize(
    "dialled, country, pattern",
    [
        ("999", "uk", "999"),  # passed straight through by the switchboard: "99" without the 9
        ("9 999", "uk", "999"),
        ("112", "uk", "112"),  # no 9 before it: as dialled either way
        ("9123", "uk", "9123"),  # an internal extension
        ("9 141 08001234567", "uk", "0800*"),
        ("9 18001 08001234567", "uk", "0800*"),
        ("911", "us", "911"),
    ],
)
def test_an_exclude_list_matches_a_number_dialled_with_or_without_the_outside_line_digit(
    dialled, country, pattern
):
    """In doubt whether a number beginning with the line's outside-line digit was dialled
    after it or straight past the switchboard, an exclude list holds for both."""
    r = RecordingRules(
        lines=(LineMode(1, "by_rule", "9"),), numbers=(NumberList("never", "exclude", (pattern,)),)
    )
    assert decide(r, dialled, "out", country=country).reason == 'number excluded by rule "never"'


def test_an_include_list_matches_a_number_without_the_outside_line_digit_only():
    """The number as dialled is read only to keep a call out, never to record one: 999
    dialled alone on a line with 9 is 99 to an include list, 9 999 is 999."""
    r = RecordingRules(
        lines=(LineMode(1, "by_rule", "9"),), numbers=(NumberList("these", "include", ("999", "9123")),)
    )
    assert decide(r, "999", "out").reason == 'number not on an include list ("these")'
    assert decide(r, "9123", "out").decision == "skip"
    assert decide(r, "9999", "out").reason == 'number included by rule "these"'
    assert decide(r, "99123", "out").reason == 'number included by rule "these"'


def test_withheld_numbers_pass_exclude_only_lists():
    r = RecordingRules(lines=BY_RULE, numbers=(NumberList("helplines", "exclude", ("0800*",)),))
    assert decide(r, None).decision == "record"


def test_business_hours_and_holidays_in_local_time():
    hours = BusinessHours(
        "Europe/London", {"mon": ("09:00-17:30",), "tue": ("09:00-17:30",)}, ("2026-03-03",)
    )
    r = RecordingRules(lines=BY_RULE, hours=hours)
    assert decide(r, when=MON_10).reason == "inside business hours"
    assert decide(r, when=wall("2026-03-02T08:59:59+00:00")).reason == "outside business hours"
    assert decide(r, when=wall("2026-03-02T17:30:00+00:00")).reason == "outside business hours"
    assert decide(r, when=wall("2026-03-03T10:00:00+00:00")).reason == "public holiday 2026-03-03"
    assert decide(r, when=wall("2026-03-07T10:00:00+00:00")).reason == "outside business hours"
    # British Summer Time: 08:30 UTC is 09:30 in London.
    assert decide(r, when=wall("2026-06-01T08:30:00+00:00")).decision == "record"


def test_sampling_is_repeatable_and_near_its_share():
    r = RecordingRules(lines=BY_RULE, sample_percent=30)
    outcomes = [decide(r, when=MON_10 + k * 7_919_000) for k in range(2000)]
    assert outcomes == [decide(r, when=MON_10 + k * 7_919_000) for k in range(2000)]
    kept = sum(o.decision == "record" for o in outcomes)
    assert 540 <= kept <= 660
    assert {o.reason for o in outcomes} == {"sampled in (30 %)", "sampled out (30 %)"}
    assert decide(RecordingRules(lines=BY_RULE, sample_percent=0)).decision == "skip"


def test_minimum_duration_is_settled_at_the_end():
    r = RecordingRules(lines=BY_RULE, min_duration_s=10)
    d = decide(r)
    assert d.decision == "record" and d.min_talk_s == 10
    assert rules.too_short(d, 0, 9_999_999) == rules.Decision("skip", "shorter than 10 s", "min_duration")
    assert rules.too_short(d, 0, 10_000_000) is None
    assert rules.too_short(decide(RecordingRules()), 0, 1) is None  # "always" has no minimum


def test_on_demand_settings_do_not_decide():
    r = RecordingRules(lines=(LineMode(1, "on_demand"),), on_demand=OnDemand(dtmf_code=None))
    assert decide(r).decision == "pending"
