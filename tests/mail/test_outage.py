"""A mail server down for a day, then back: the alarms of that day arrive in the order they
were raised, at once, each once, each dated when it was raised.

Each queued mail used to back off on its own: after a day's outage the first alarm waited
up to an hour for its next try while the last one, raised a minute before the server came
back, went first; and every mail due in a round knocked at the dead server in turn.
"""

import email
import email.policy
import email.utils
import os

import pytest

from firmware.alarmlog import AlarmLog
from firmware.mail.service import MailService
from firmware.secretbox import SecretBox

from .conftest import PASSWORD, ops_account, server_settings
from .test_smtp_e2e import Clock

pytestmark = pytest.mark.slow  # a real server on a real port
T_US = 1_773_100_800_000_000  # 2026-03-10T00:00:00Z
MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US


@pytest.fixture
def box(tmp_path, smtp_server):
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    clock = Clock(T_US)
    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), clock)
    service = MailService(
        data_dir,
        clock.wall_us,
        SecretBox(data_dir, identity=b"test-board"),
        alarm_log=alarms,
        ssl_context=smtp_server.client_context(),
        box_name="Shop",
    )
    ops_account(data_dir)  # the recipients' account: an installer's, who sees every line
    service.store.save(server_settings(smtp_server), new_password=PASSWORD)
    yield service, alarms, clock
    alarms.close()


def test_a_day_without_the_server_then_every_alarm_in_order_once(box, smtp_server):
    service, alarms, clock = box
    smtp_server.stop()
    raised = {}  # subject's words -> when raised
    plan = {0: ("disk_warning", 0), 8 * 60: ("no_line_voltage", 1), 23 * 60 + 50: ("call_log", 0)}
    tries = 0
    for minute in range(24 * 60):  # the web UI's rounds, one a minute here
        if minute in plan:
            kind, line = plan[minute]
            alarms.set(kind, True, line=line, message=kind)
            raised[kind] = clock.t
        tries += service.tick()[1]
        clock.t += MINUTE_US
    waiting = service.queue.pending()
    assert len(waiting) == 3 and all("cannot reach the mail server" in w["last_error"] for w in waiting)
    # One knock at the server per backoff, whatever the queue holds (a day: under 40).
    assert tries < 40
    smtp_server.start()
    delivered_in = []
    for _ in range(61):  # the longest backoff is an hour
        delivered, failed = service.tick()
        assert failed == 0
        if delivered:
            delivered_in.append(delivered)
        clock.t += MINUTE_US
    assert delivered_in == [3]  # all in one round
    msgs = [email.message_from_bytes(c, policy=email.policy.default) for _, _, c in smtp_server.messages]
    assert [m["Subject"] for m in msgs] == [
        "[Shop] Alarm on the box: Storage nearly full",
        "[Shop] Alarm on line 1: No voltage on the line",
        "[Shop] Alarm on the box: The call log cannot be written",
    ]
    # Each dated when it was raised, not when it finally went: a reader sees how old it is.
    dates = [email.utils.parsedate_to_datetime(m["Date"]).timestamp() * 1e6 for m in msgs]
    assert dates == [raised["disk_warning"], raised["no_line_voltage"], raised["call_log"]]
    for _ in range(3):
        clock.t += HOUR_US
        assert service.tick() == (0, 0)
    assert len(smtp_server.messages) == 3 and service.queue.pending() == []


def test_a_message_the_server_refuses_does_not_hold_up_the_others(box, smtp_server):
    """One mail refused for itself (every recipient gone) backs off alone; the rest go."""
    service, alarms, clock = box
    service.store.save(server_settings(smtp_server, alarm_to=("gone@example.com",)), new_password=PASSWORD)
    smtp_server.refuse.add("gone@example.com")
    alarms.set("disk_warning", True, message="85% full")
    assert service.tick() == (0, 1)
    service.store.save(server_settings(smtp_server), new_password=PASSWORD)
    alarms.set("call_log", True, message="cannot write")
    assert service.tick() == (1, 0)  # the refused one is not due yet and waits on its own
    assert [to for _, to, _ in smtp_server.messages] == [["ops@example.com"]]
    [waiting] = service.queue.pending()
    assert "refused the recipients gone@example.com" in waiting["last_error"]


def test_a_report_that_waited_over_a_week_is_not_sent_a_notice_goes(box, smtp_server):
    """A daily report a week late is out of date: the delivering round sends a notice of it;
    one six days late still goes as it is."""
    import datetime as dt
    from email.message import EmailMessage

    service, _, clock = box
    smtp_server.stop()
    for day in (2, 3):
        report = EmailMessage()
        report["From"], report["To"] = "box@example.com", "ops@example.com"
        report["Subject"] = "[Shop] Daily report 2026-03-0%d" % day
        report.set_content("Calls: 12")
        first = dt.date(2026, 3, day)
        service.queue.enqueue(report, key="report:daily-csv:%s" % first, period=(first, first))
        clock.t += 86_400_000_000
    service.tick()
    clock.t += 6 * 86_400_000_000 - MINUTE_US  # the second queued a minute short of 7 days ago
    smtp_server.start()
    assert service.tick() == (2, 0)
    msgs = [email.message_from_bytes(c, policy=email.policy.default) for _, _, c in smtp_server.messages]
    assert [m["Subject"] for m in msgs] == [
        "[Shop] Daily report 2026-03-02 not sent (7 days late)",
        "[Shop] Daily report 2026-03-03",
    ]
    notice = msgs[0].get_content()
    assert "waited more than 7 days" in notice
    assert "Reports page (from Mon 2 Mar 2026 to Mon 2 Mar 2026)" in notice
    assert "Calls: 12" not in notice
