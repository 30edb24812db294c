"""A line's recording policy in plain words (firmware.policy.describe): each rule kind said,
as the staff notice and the My line page say it; "recorded by the rules" alone told a staff
member nothing of which of their calls are recorded."""

import dataclasses

from firmware.policy.describe import line_words
from firmware.policy.settings import (
    BusinessHours,
    LineMode,
    NumberList,
    OnDemand,
    PciSettings,
    PolicySettings,
    RecordingRules,
)

NO_PAUSE = PciSettings(pause_code=None, resume_code="*2", button=False)


def words(line=1, pci=NO_PAUSE, hat=None, **rules):
    """``line_words`` of line 1 recorded by the rules ``rules`` (no pause unless given)."""
    rules.setdefault("lines", (LineMode(1, "by_rule"),))
    return line_words(PolicySettings(rules=RecordingRules(**rules), pci=pci), line, hat)


def test_the_modes_of_a_line():
    lines = (LineMode(2, "never"), LineMode(3, "on_demand"))
    assert words(lines=lines) == "every call recorded, those you take and those you make"
    assert words(line=2, lines=lines) == "never recorded"
    assert words(line=3, lines=lines) == (
        "recorded only when asked during the call (key *9 on the handset or press the line's "
        "record button); the recording then holds the call from its start (up to 30 s back)"
    )


def test_a_line_recorded_on_request_names_the_code_staff_key_and_where_the_recording_begins():
    lines = (LineMode(1, "on_demand"),)
    on_demand = OnDemand(dtmf_code="#5", button=False, from_start=False)
    assert words(lines=lines, on_demand=on_demand) == (
        "recorded only when asked during the call (key #5 on the handset); the recording then "
        "begins when asked"
    )
    # The LK-4L has no record button: staff are not told to press one.
    assert words(lines=lines, on_demand=OnDemand(dtmf_code="*7", lookback_s=60), hat="lk-4l") == (
        "recorded only when asked during the call (key *7 on the handset); the recording then "
        "holds the call from its start (up to 60 s back)"
    )
    assert words(lines=lines, on_demand=OnDemand(dtmf_code=None), hat="lk-4l") == (
        "recorded only when asked, but no way to ask is set: nothing is recorded"
    )


def test_directions():
    assert words() == "recorded by the rules: calls you take and calls you make"
    assert (
        words(directions=("in",))
        == "recorded by the rules: only calls you take (incoming), not those you make"
    )
    assert (
        words(directions=("out",))
        == "recorded by the rules: only calls you make (outgoing), not those you take"
    )


def test_number_lists_are_named_with_their_size_never_their_numbers():
    numbers = (
        NumberList("helplines", "exclude", ("0800*", "0808*")),
        NumberList("family", "exclude", ("07700 900123",)),
        NumberList("customers", "include", ("01632 96????",)),
    )
    said = words(numbers=numbers)
    assert said == (
        "recorded by the rules: calls you take and calls you make; not calls to or from the "
        "numbers on the lists \u201chelplines\u201d (2 entries) or \u201cfamily\u201d (1 entry); only calls "
        "to or from the numbers on the list \u201ccustomers\u201d (1 entry)"
    )
    assert "0800" not in said and "07700" not in said and "01632" not in said


def test_business_hours_group_days_and_name_the_holidays():
    hours = BusinessHours(
        "Europe/London",
        {
            "mon": ("09:00-17:30",),
            "tue": ("09:00-17:30",),
            "wed": ("09:00-17:30",),
            "thu": ("09:00-12:30", "13:30-17:30"),
            "fri": ("09:00-12:30", "13:30-17:30"),
            "sun": ("10:00-12:00",),
        },
        ("2026-12-26", "2026-12-25"),
    )
    assert words(hours=hours) == (
        "recorded by the rules: calls you take and calls you make; only Monday to Wednesday "
        "09:00-17:30, Thursday and Friday 09:00-12:30 and 13:30-17:30, Sunday 10:00-12:00 "
        "(Europe/London time), not on Fri 25 Dec 2026 or Sat 26 Dec 2026"
    )
    # Monday and Wednesday alike but not one after the other: said apart.
    apart = BusinessHours("Europe/Paris", {"mon": ("08:00-12:00",), "wed": ("08:00-12:00",)}, ("2026-05-01",))
    assert words(hours=apart).endswith(
        "only Monday 08:00-12:00, Wednesday 08:00-12:00 (Europe/Paris time), not on Fri 1 May 2026"
    )
    assert words(hours=BusinessHours("Europe/London", {})).endswith("at no time: no business hours are set")


def test_sampling_and_minimum_length():
    assert words(sample_percent=30, min_duration_s=10) == (
        "recorded by the rules: calls you take and calls you make; of those, only 30 % picked at "
        "random; not a call that talks less than 10 s"
    )
    assert words(sample_percent=12.5).endswith("of those, only 12.5 % picked at random")
    assert words(sample_percent=0).endswith("of those, none (a sample of 0 %)")


def test_every_rule_in_the_order_the_recorder_checks_them():
    said = words(
        directions=("out",),
        numbers=(NumberList("helplines", "exclude", ("0800*",)),),
        hours=BusinessHours("Europe/London", {"sat": ("09:00-12:00",)}),
        sample_percent=50,
        min_duration_s=5,
    )
    assert said == (
        "recorded by the rules: only calls you make (outgoing), not those you take; not calls to "
        "or from the numbers on the list \u201chelplines\u201d (1 entry); only Saturday 09:00-12:00 "
        "(Europe/London time); of those, only 50 % picked at random; not a call that talks less than 5 s"
    )


def test_the_card_details_pause_is_said_on_every_recorded_line():
    pci = PciSettings()  # *1, and the pause button
    assert words(pci=pci, lines=(LineMode(1, "always"),)) == (
        "every call recorded, those you take and those you make; to pause it while a caller "
        "gives card details, key *1 on the handset or press the line's pause button"
    )
    assert words(pci=pci, hat="lk-4l").endswith(
        "calls you make; to pause it while a caller gives card details, key *1 on the handset"
    )
    assert words(pci=dataclasses.replace(pci, pause_code=None), hat="lk-2lb").endswith(
        "to pause it while a caller gives card details, press the line's pause button"
    )
    # A private line: nothing to pause.
    assert words(pci=pci, lines=(LineMode(1, "never"),)) == "never recorded"
