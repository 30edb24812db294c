"""An alarm reads its words once: the title, then what the message says beyond it.

A supervisor read "The consent notice could not be given (line 4): the consent notice
could not be given: ..." on the banner, the alarms page and the mail: the message of
some kinds begins by saying its title again.
"""

import pytest

from firmware import words
from firmware.alarms import AlarmBoard
from firmware.bus import LINE_FAULTS, Alarm, EventBus

# The kinds whose raised message said the title again, as their raisers word them.
DOUBLED = [
    (
        "consent_notice_failed",
        "the consent notice could not be given: the announcement file is missing",
        "the announcement file is missing",
    ),
    (
        "call_log",
        "the call log cannot be written: the card is full; 3 call(s) kept in memory until it can",
        "the card is full; 3 call(s) kept in memory until it can",
    ),
    (
        "power_fail",
        "the power failed: 2 recording(s) sealed in 40 ms (hold-up 80 ms); the box records again "
        "when the power returns",
        "2 recording(s) sealed in 40 ms (hold-up 80 ms); the box records again when the power returns",
    ),
    ("audit_unverified", "the audit trail does not verify: entry 5 was changed", "entry 5 was changed"),
    ("deletion_log_unverified", "the deletion log does not verify: entry 2 is missing", "entry 2 is missing"),
    (
        "mcu_unreachable",
        "the HAT's supervisor chip does not answer: the calls under way at a power cut could lose "
        "their last second; check the HAT",
        "the calls under way at a power cut could lose their last second; check the HAT",
    ),
]


@pytest.mark.parametrize(("kind", "message", "rest"), DOUBLED)
def test_a_message_that_says_its_title_again_is_shown_without_it(kind, message, rest):
    assert words.alarm_text(kind, message) == rest


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        # What the title does not say (which notice failed: the advice follows it).
        ("consent_notice_failed", "the consent beep could not be played: the board refused"),
        ("audit_unverified", "the audit trail could not be checked (locked): a change to it would go unseen"),
        # Begins like its title, but goes on in the same clause: left whole.
        ("recorder_start_failed", "the recorder could not start for 5 min (it tried twice): no card"),
        ("disk_warning", "the card is 92% full (warning at 90%)"),
    ],
)
def test_a_message_that_says_more_than_its_title_is_left_whole(kind, message):
    assert words.alarm_text(kind, message) == message


def test_a_message_that_is_only_its_title_adds_nothing():
    assert words.alarm_text("power_fail", "the power failed") == ""


def test_the_dashboard_says_an_alarm_on_now_in_its_words_once():
    bus, board = EventBus(), AlarmBoard()
    board.attach(bus)
    bus.publish(Alarm(line=4, t_us=1, kind="consent_notice_failed", active=True, message=DOUBLED[0][1]))
    bus.publish(Alarm(line=0, t_us=2, kind="power_fail", active=True, message="the power failed"))
    assert board() == [
        "The consent notice could not be given (line 4): the announcement file is missing",
        "The power failed",
    ]


def test_a_consent_notice_not_given_keeps_its_call_and_the_mail_dates_it_without_the_number(tmp_path):
    from types import SimpleNamespace

    from firmware.alarmchecks import ConsentWatch
    from firmware.alarmlog import AlarmLog
    from firmware.bus import CallEnded
    from firmware.mail.compose import alarm_message
    from firmware.mail.settings import MailSettings

    t_us = 1_782_900_000_000_000  # Wed 1 Jul 2026, 10:00:00 UTC: 11:00 BST, the default zone's
    log = AlarmLog(tmp_path / "alarms.db", SimpleNamespace(wall_us=lambda: t_us + 60_000_000))
    bus = EventBus()
    ConsentWatch(log, wall_at=lambda us: t_us + us).attach(bus)
    call = SimpleNamespace(
        id=17,
        line=4,
        started_us=5_000_000,
        number="07700900123",
        consent={"notice": "announcement", "error": "x"},
    )
    bus.publish(CallEnded(line=4, t_us=9, call=call))
    (row,) = log.history()
    assert (row["call_id"], row["call_us"]) == (17, t_us + 5_000_000)
    settings = MailSettings(host="mail.example", sender="box@example.com", alarm_to=("sam@example.com",))
    body = alarm_message(settings, row, "Acme", t_us).get_content()
    assert "Call: the call on line 4 that began Wed 1 Jul 2026, 11:00:05 BST" in body
    assert "07700900123" not in body


def test_the_health_answer_says_the_line_of_each_alarm_of_one_line():
    """The web UI shows an alarm of a line only to those who may see that line: the
    dashboard's list of alarms on now must know each one's line."""
    from firmware.alarms import health_alarms

    bus, board = EventBus(), AlarmBoard()
    board.attach(bus)
    bus.publish(Alarm(line=4, t_us=1, kind="call_log", active=True, message="the card refused it"))
    bus.publish(Alarm(line=0, t_us=2, kind="power_fail", active=True, message="the power failed"))
    assert health_alarms(board) == {
        "alarms": ["The call log cannot be written (line 4): the card refused it", "The power failed"],
        "alarm_lines": {"The call log cannot be written (line 4): the card refused it": 4},
    }


@pytest.mark.parametrize("kind", list(LINE_FAULTS))
def test_a_line_fault_is_said_in_one_set_of_words_wherever_it_is_shown(tmp_path, kind):
    """A line fault's alarm had its title from words.ALARMS and its message from the alarm
    history's own table, in other words ("No voltage on the line: the phone line is
    unplugged or dead (line 2): no line voltage (line unplugged or cut?)"), the report a
    third (tables.LINE_CAUSES), and ring_not_sensed no words at all."""
    from types import SimpleNamespace

    from firmware.alarmlog import AlarmLog
    from firmware.bus import LineFault
    from firmware.reports.tables import LINE_CAUSES

    assert kind in words.FAULTS
    said = words.say("fault", kind)
    assert words.say("alarm", kind) == said
    assert LINE_CAUSES[kind] == said[0].lower() + said[1:]
    log = AlarmLog(tmp_path / "alarms.db", SimpleNamespace(wall_us=lambda: 1))
    bus = EventBus()
    log.attach(bus)
    bus.publish(LineFault(line=2, t_us=1, kind=kind, active=True))
    (row,) = log.history()
    assert row["message"] == said  # the CSV's message column
    assert words.alarm_text(kind, row["message"]) == ""  # the banner says the title once
    assert words.alarm_advice(kind)
    log.close()


def test_the_dates_in_a_message_are_said_as_the_pages_say_them_and_nothing_else_is():
    from firmware.localtime import LocalTime

    said = LocalTime("Europe/London").dates_in
    assert LocalTime("Asia/Tokyo").dates_in("9999-12-31T23:59:59Z") == "9999-12-31T23:59:59Z"
    assert said("due on 2026-07-01: answer it") == "due on Wed 1 Jul 2026: answer it"
    assert said("from 2026-07-01T09:30:00.000Z.") == "from Wed 1 Jul 2026, 10:30:00 BST."
    assert said("from 2026-07-01T09:30:00+00:00") == "from Wed 1 Jul 2026, 10:30:00 BST"
    assert said("since 2026-12-03 10:00 UTC;") == "since Thu 3 Dec 2026, 10:00:00 GMT;"
    # Not a date of the calendar, part of a name, or a time of no zone: left as it is.
    for text in (
        "2026-02-30",
        "linekeeper-2026-12-03.pdf",
        "v2026-12-03",
        "2026-12-03 10:00 local",
        "1.2026-12-03",
        # A time whose local date is out of the calendar's range (the year 0).
        "0001-01-01T00:00:00Z",
        # A time in another zone than UTC: it was said as if UTC, its offset left after it
        # ("10:00:00 GMT+01:00", an hour out), with or without its seconds' fraction.
        "2026-12-03T10:00:00+01:00",
        "2026-12-03T10:00:00.5+0100",
        "2026-12-03T10:00+01:00",
        "2026-12-03T10:00:00-05:00",
    ):
        assert said(text) == text
    assert said("") == "" and said(None) == ""


def test_ring_not_sensed_says_which_calls_may_be_missing():
    """Calls with caller ID on a line whose ringing is not sensed are logged (answered or
    missed, by their caller ID, docs/adapters.md): only those without one may be unseen.
    The alarm said any incoming call may not have been seen."""
    said = words.say("fault", "ring_not_sensed")
    assert "calls without caller ID may not have been seen" in said
