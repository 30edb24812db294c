"""A fault mailed once is followed up once when it clears: when, and how often it happened.

The owner got "line 2: no voltage on the line" and never learned that it came back three
seconds later, nor that it dropped out twice more that morning: mail went only when an
occurrence was raised. Now a repeating alarm mailed in a run is told cleared once, when
the next mail about it may go (four hours after the first, then a day), with how many
times it happened since the first mail; nothing more while it stays clear.
"""

import datetime as dt

from firmware.alarmchecks import DateChecks
from firmware.alarmlog import AlarmLog
from firmware.bus import Alarm, EventBus, LineFault
from firmware.mail.alarms import FOLLOW_UP_S, SUMMARY_S
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings
from firmware.secretbox import SecretBox

from .conftest import OPS_TIED, ops_account

S = 1_000_000
H = 3600 * S


class Clock:
    t = int(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC).timestamp()) * S  # Mon 2 Mar 2026, 09:00 GMT

    def wall_us(self):
        return self.t


class Outbox:
    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(msg)
        return {}


def _box(tmp_path):
    clock, data = Clock(), str(tmp_path)
    alarms = AlarmLog(tmp_path / "alarms.db", clock)
    bus = EventBus(strict=True)
    alarms.attach(bus)
    mail = MailService(data, clock.wall_us, SecretBox(data, identity=b"t"), alarm_log=alarms)
    mail.deliver = False  # the recorder's: it queues, the web UI sends
    ops_account(data)  # an installer's: sees every line
    mail.store.save(
        MailSettings(
            host="mail.example.com",
            sender="box@example.com",
            alarm_to=("ops@example.com",),
            alarm_accounts=OPS_TIED,
            box_url="https://recorder.example.com/",
        )
    )
    return clock, bus, mail


def _sent(mail):
    outbox = Outbox()
    mail.queue.flush(outbox)
    return outbox.sent


def _line_2(bus, active):
    bus.publish(LineFault(line=2, t_us=0, kind="no_line_voltage", active=active))


def test_a_fault_that_stops_after_its_first_mail_is_followed_up_once(tmp_path):
    clock, bus, mail = _box(tmp_path)
    _line_2(bus, True)
    [first] = _sent(mail)
    assert first["Subject"] == "[Linekeeper] Alarm on line 2: No voltage on the line"
    clock.t += 3 * S
    _line_2(bus, False)  # back three seconds later
    mail.tick()
    assert _sent(mail) == []  # the next mail about it goes no sooner than four hours after the first
    clock.t += FOLLOW_UP_S * S
    mail.tick()
    [follow] = _sent(mail)
    assert follow["Subject"] == "[Linekeeper] Cleared on line 2: No voltage on the line"
    assert follow["To"] == first["To"] == "ops@example.com"
    assert follow["Auto-Submitted"] == "auto-generated"
    body = follow.get_content()
    assert "Cleared: Mon 2 Mar 2026, 09:00:03 GMT" in body
    assert (
        "It did not happen again after the first mail about it (Mon 2 Mar 2026, 09:00:00 GMT). "
        "It has been clear since Mon 2 Mar 2026, 09:00:03 GMT; nothing more is mailed about it "
        "while it stays clear." in body
    )
    assert "https://recorder.example.com/" in body
    # Nothing more while it stays clear, whatever the rounds.
    for hours in (1, 24, 48):
        clock.t += hours * H
        mail.tick()
        assert _sent(mail) == []


def test_the_follow_up_counts_the_occurrences_since_the_first_mail(tmp_path):
    clock, bus, mail = _box(tmp_path)
    for minutes in (0, 10, 20):  # a line dropping out for 3 seconds every 10 minutes
        clock.t = Clock.t + minutes * 60 * S
        _line_2(bus, True)
        clock.t += 3 * S
        _line_2(bus, False)
    assert len(_sent(mail)) == 1  # the first at once, the repeats held
    clock.t = Clock.t + FOLLOW_UP_S * S  # the window ends with no repeat
    mail.tick()
    [follow] = _sent(mail)
    assert (
        "It happened 2 more times after the first mail about it (Mon 2 Mar 2026, 09:00:00 GMT). "
        "It has been clear since Mon 2 Mar 2026, 09:20:03 GMT;" in follow.get_content()
    )


def test_a_fault_that_clears_after_its_window_is_followed_up_as_it_clears(tmp_path):
    clock, bus, mail = _box(tmp_path)
    _line_2(bus, True)
    assert len(_sent(mail)) == 1
    clock.t += 6 * H  # on for six hours, then back: the window ended meanwhile
    woken = []
    mail.alarms.on_queued = lambda: woken.append(True)  # (the service's wake)
    _line_2(bus, False)
    assert woken  # the clearing starts the service's round at once
    mail.tick()
    [follow] = _sent(mail)
    assert "Cleared: Mon 2 Mar 2026, 15:00:00 GMT" in follow.get_content()


def test_a_fault_back_after_its_follow_up_is_mailed_as_the_backoff_allows(tmp_path):
    clock, bus, mail = _box(tmp_path)
    _line_2(bus, True)
    clock.t += 3 * S
    _line_2(bus, False)
    clock.t = Clock.t + FOLLOW_UP_S * S
    mail.tick()
    assert len(_sent(mail)) == 2  # the first and its follow-up
    clock.t += H
    _line_2(bus, True)  # back within a day: a repeat, held for a day after the follow-up
    clock.t += 3 * S
    _line_2(bus, False)
    mail.tick()
    assert _sent(mail) == []
    clock.t = Clock.t + (FOLLOW_UP_S + SUMMARY_S) * S
    mail.tick()
    [follow] = _sent(mail)
    assert (
        "It happened 1 more time after the first mail about it (Mon 2 Mar 2026, 09:00:00 GMT), 1 of "
        "them since the last mail about it (Mon 2 Mar 2026, 13:00:00 GMT). It has been clear since "
        "Mon 2 Mar 2026, 14:00:03 GMT;" in follow.get_content()
    )


def test_an_alarm_mailed_every_time_has_no_follow_up(tmp_path):
    clock, bus, mail = _box(tmp_path)
    bus.publish(Alarm(line=0, t_us=0, kind="power_fail", active=True, message="power failed"))
    bus.publish(Alarm(line=1, t_us=0, kind="recording_failed", active=True, message="the file failed"))
    sent = _sent(mail)
    assert len(sent) == 2
    assert "once it has cleared" not in sent[1].get_content()  # nothing of the kind comes
    clock.t += 2 * SUMMARY_S * S
    mail.tick()
    assert _sent(mail) == []


def test_the_follow_up_goes_to_whom_its_alarm_went(tmp_path):
    clock, bus, mail = _box(tmp_path)
    ops_account(str(tmp_path), name="sue", roles="supervisor", lines="1")  # another team's lines
    settings = mail.store.get()
    mail.store.save(
        MailSettings(
            host=settings.host,
            sender=settings.sender,
            alarm_to=("ops@example.com", "sue@example.com"),
            alarm_accounts=OPS_TIED + (("sue@example.com", "sue"),),
        )
    )
    _line_2(bus, True)
    clock.t += 6 * H
    _line_2(bus, False)
    mail.tick()
    first, follow = _sent(mail)
    assert first["To"] == follow["To"] == "ops@example.com"
    assert "Cleared on line 2" in follow["Subject"]


def test_a_fault_on_for_weeks_is_followed_up_when_it_clears(tmp_path):
    """The mails' state forgets an alarm a week after it was last raised: a line dead for
    two weeks (raised once) was forgotten, and its clearing never told."""
    clock, bus, mail = _box(tmp_path)
    _line_2(bus, True)
    clock.t += 14 * SUMMARY_S * S
    bus.publish(LineFault(line=1, t_us=0, kind="no_line_voltage", active=True))  # the state is kept again
    assert len(_sent(mail)) == 2
    _line_2(bus, False)
    mail.tick()
    [follow] = _sent(mail)
    assert follow["Subject"] == "[Linekeeper] Cleared on line 2: No voltage on the line"
    assert "Cleared: Mon 16 Mar 2026, 09:00:00 GMT" in follow.get_content()


def test_a_step_cleared_by_the_next_is_not_followed_up(tmp_path):
    """The ICO renewal's 60 days clear as its 30 days are raised: no news, the 30 days'
    own mail says where things are. Once renewed, the step on is followed up."""
    clock, _, mail = _box(tmp_path)
    renewal = {"date": "2026-04-20"}  # 49 days on
    mail.checks.append(DateChecks(mail.alarm_log, clock.wall_us, ico_renewal=lambda: renewal["date"]))
    mail.tick()
    [sixty] = _sent(mail)
    assert "within 60 days" in sixty["Subject"]
    clock.t += 20 * SUMMARY_S * S  # 29 days left
    mail.tick()
    [thirty] = _sent(mail)
    assert "within 30 days" in thirty["Subject"]
    for _ in range(3):
        clock.t += H
        mail.tick()
        assert _sent(mail) == []
    renewal["date"] = "2027-04-20"  # renewed
    clock.t += FOLLOW_UP_S * S
    mail.tick()
    [follow] = _sent(mail)
    assert (
        follow["Subject"]
        == "[Linekeeper] Cleared on the box: The ICO registration must be renewed within 30 days"
    )
