"""Mail end to end to a real SMTP server (aiosmtpd, STARTTLS and login) on 127.0.0.1.

A scheduled report and an alarm arrive; the server down for a while means
the mail waits on disk and arrives later, once; a flapping line is mailed
at once, then its repeats gathered.
"""

import dataclasses
import email
import email.policy
import json
import os

import pytest

from firmware import cli
from firmware.alarmlog import AlarmLog
from firmware.errors import ConfigError, TamperError
from firmware.mail.service import MailService
from firmware.mail.settings import Schedule
from firmware.mail.smtp import MailError
from firmware.reports.source import ReportSource
from firmware.secretbox import SecretBox

from .conftest import PASSWORD, USER, ops_account, server_settings
from support.ports import free_port

pytestmark = pytest.mark.slow  # a real server on a real port
TUESDAY_US = 1_773_100_800_000_000  # 2026-03-10T00:00:00Z
SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "calls": [
        {
            "line": 1,
            "at": 1.0,
            "direction": "in",
            "caller_id": {"number": "01632960001"},
            "rings": 2,
            "talk": 12.0,
        },
        {
            "line": 2,
            "at": 100.0,
            "direction": "in",
            "caller_id": {"number": "01632960002"},
            "rings": 2,
            "answer": False,
        },
    ],
}


class Clock:
    def __init__(self, t_us):
        self.t = t_us

    def wall_us(self):
        return self.t


@pytest.fixture
def mailbox(tmp_path, smtp_server):
    """A box's data dir with last week's calls, an alarm log and a mail service."""
    data_dir = str(tmp_path / "data")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert cli.main(["sim", str(path), "--data-dir", data_dir]) == 0
    clock = Clock(TUESDAY_US)
    alarms = AlarmLog(os.path.join(data_dir, "alarms.db"), clock)
    ops_account(data_dir)  # the recipients' account: an installer's, who sees every line
    source = ReportSource(data_dir, n_lines=2, alarms=alarms)
    service = MailService(
        data_dir,
        clock.wall_us,
        SecretBox(data_dir, identity=b"test-board"),
        reports=source,
        alarm_log=alarms,
        ssl_context=smtp_server.client_context(),
        box_name="Shop",
    )
    service.store.save(
        server_settings(smtp_server, schedules=(Schedule("weekly", ("boss@example.com",), "csv"),)),
        new_password=PASSWORD,
    )
    yield service, alarms, clock, data_dir
    alarms.close()


def received(server):
    return [
        email.message_from_bytes(content, policy=email.policy.default) for _, _, content in server.messages
    ]


def test_the_password_is_sealed_on_disk(mailbox):
    service, _, _, data_dir = mailbox
    text = open(os.path.join(data_dir, "mail.json")).read()
    assert PASSWORD not in text and '"password": "lksec1:' in text
    assert oct(os.stat(os.path.join(data_dir, "mail.json")).st_mode & 0o777) == "0o600"


def test_a_scheduled_report_and_an_alarm_arrive(mailbox, smtp_server):
    service, alarms, clock, _ = mailbox
    alarms.set("no_line_voltage", True, line=2, message="no line voltage")
    assert service.tick() == (2, 0)
    msgs = {m["To"]: m for m in received(smtp_server)}
    report = msgs["boss@example.com"]
    assert report["Subject"] == "[Shop] Weekly report, Mon 2 Mar - Sun 8 Mar 2026"
    body = report.get_body(("plain",)).get_content()
    assert "Calls: 2 (in 2, out 0)" in body and "Missed: 1" in body
    assert "Answered rate: 50.0 %" in body  # as in the attachment and on the pages, to 0.1 %
    [attachment] = list(report.iter_attachments())
    # The file's name keeps ISO dates, which sort.
    assert attachment.get_filename() == "linekeeper-report-2026-03-02-2026-03-08.csv"
    assert "Missed,1,0,1" in attachment.get_content()
    alarm = msgs["ops@example.com"]
    assert alarm["Subject"] == "[Shop] Alarm on line 2: No voltage on the line"
    assert smtp_server.logins == [(USER, True), (USER, True)]
    # The same week is never sent again, whatever runs later that week.
    clock.t += 3 * 86_400_000_000
    assert service.tick() == (0, 0) and len(smtp_server.messages) == 2


def test_server_down_mail_waits_and_arrives_once(mailbox, smtp_server):
    service, alarms, clock, data_dir = mailbox
    smtp_server.stop()
    alarms.set("disk_warning", True, message="the card is 85% full")
    assert service.tick() == (0, 1)  # the report tried; the alarm waits with it, untried
    pending = service.queue.pending()
    assert len(pending) == 2 and all("cannot reach the mail server" in p["last_error"] for p in pending)
    # A restart of the box: a new service over the same data directory keeps the queue.
    again = MailService(
        data_dir,
        clock.wall_us,
        SecretBox(data_dir, identity=b"test-board"),
        ssl_context=smtp_server.client_context(),
    )
    assert len(again.queue.pending()) == 2
    smtp_server.start()
    assert again.tick() == (0, 0)  # not due yet: backoff
    clock.t += 61_000_000
    assert again.tick() == (2, 0)
    clock.t += 3600_000_000
    assert again.tick() == (0, 0) and len(smtp_server.messages) == 2
    assert again.queue.pending() == []


def test_a_refused_recipient_is_not_taken_for_delivered(mailbox, smtp_server):
    """One alarm recipient's mailbox is gone: the server takes the mail for the other and
    refuses that one. The mail waits for that recipient alone, saying why, and goes to
    them once the server takes it, never again to the other."""
    service, alarms, clock, _ = mailbox
    service.store.save(
        server_settings(smtp_server, alarm_to=("ops@example.com", "gone@example.com")), new_password=PASSWORD
    )
    smtp_server.refuse.add("gone@example.com")
    alarms.set("disk_warning", True, message="the card is 85% full")
    assert service.tick() == (0, 1)
    assert [to for _, to, _ in smtp_server.messages] == [["ops@example.com"]]
    [waiting] = service.queue.pending()
    assert "refused gone@example.com: 550 5.1.1 no such mailbox" in waiting["last_error"]
    # It is addressed to the refused recipient alone now: a release before this one (after
    # a rollback) ignores what it does not know, and would have sent it to both again.
    import base64

    [item] = service.queue._items()
    stored = email.message_from_bytes(base64.b64decode(item["message"]), policy=email.policy.default)
    assert stored["To"] == "gone@example.com" and "to" not in item
    smtp_server.refuse.clear()
    clock.t += 61_000_000
    assert service.tick() == (1, 0)
    assert [to for _, to, _ in smtp_server.messages] == [["ops@example.com"], ["gone@example.com"]]
    assert service.queue.pending() == []


def _drops(alarms, clock, service, n, line=1):
    """``n`` drops of ``line``, the demo's: 3 s without voltage every 10 minutes, the
    queue ticked after each; returns what each tick delivered."""
    delivered = []
    for _ in range(n):
        alarms.set("no_line_voltage", True, line=line, message="no line voltage")
        clock.t += 3_000_000
        alarms.set("no_line_voltage", False, line=line)
        clock.t += 597_000_000
        delivered.append(service.tick()[0])
    return delivered


def test_a_line_dropping_out_all_day_is_mailed_at_once_then_gathered(mailbox, smtp_server):
    """A line that drops out for 3 s every 10 minutes all day sent an alarm mail every rate
    window, 17 a day of the same alarm. It is mailed at once, once more four hours later
    saying how many times it happened since (and that it cleared, when it is clear then),
    then once a day while it keeps happening;
    another alarm meanwhile is mailed at once, and so is the fault after a quiet day."""
    service, alarms, clock, _ = mailbox
    service.store.save(service.store.get().__class__(**{**service.store.get().__dict__, "schedules": ()}))
    # From Tue 10 Mar 2026, 00:00 GMT.
    delivered = _drops(alarms, clock, service, 144)  # a whole day
    assert sum(delivered) == 2 and delivered[0] == 1 and delivered[23] == 1, delivered
    first, second = (m.get_body(("plain",)).get_content() for m in received(smtp_server))
    assert "It happened" not in first
    assert "next mail about it comes no sooner than Tue 10 Mar 2026, 04:00:00 GMT" in first
    assert "once it has cleared, one mail says so, and when" in first
    # Clear when its four hours were over: the second mail says so, and how often it happened.
    assert (
        "It happened 23 more times after the first mail about it (Tue 10 Mar 2026, 00:00:00 GMT). "
        "It has been clear since Tue 10 Mar 2026, 03:50:03 GMT" in second
    )
    assert "no sooner than Wed 11 Mar 2026, 04:00:00 GMT" in second
    # Another alarm, of the same line, is not held back by the fault's repeats.
    alarms.set("recording_failed", True, line=1, message="the recording could not be written")
    assert service.tick() == (1, 0)
    # The next day: one mail, four hours after the second day began (a day after the last).
    assert sum(_drops(alarms, clock, service, 144)) == 1
    third = received(smtp_server)[-1].get_body(("plain",)).get_content()
    assert "Cleared on line 1" in received(smtp_server)[-1]["Subject"]
    assert (
        "It happened 167 more times after the first mail about it (Tue 10 Mar 2026, 00:00:00 GMT), "
        "144 of them since the last mail about it (Tue 10 Mar 2026, 04:00:00 GMT)." in third
    )
    # A quiet day, then the line drops again: a new fault, mailed at once.
    clock.t += 86_400_000_000
    assert _drops(alarms, clock, service, 2) == [1, 0]
    assert len(smtp_server.messages) == 5
    fifth = received(smtp_server)[-1].get_body(("plain",)).get_content()
    assert "Raised: Fri 13 Mar 2026, 00:00:00 GMT" in fifth
    assert "It happened 120 more times since the last mail about it (Wed 11 Mar 2026, 04:00:00 GMT)" in fifth


def test_test_mail_and_bad_input(mailbox, smtp_server, tmp_path):
    service, _, _, _ = mailbox
    service.send_test("me@example.com")
    assert received(smtp_server)[-1]["Subject"] == "[Shop] Test e-mail"
    with pytest.raises(ConfigError, match="not an e-mail address"):
        service.send_test("me at example")
    # A password sealed on another board cannot be opened here: a clear message, no mail.
    other = tmp_path / "other"
    other.mkdir()
    foreign = SecretBox(str(other), identity=b"another-board").seal("mail.password", PASSWORD)
    moved = service.store.get().__class__(**{**service.store.get().__dict__, "password": foreign})
    with pytest.raises(TamperError, match="sealed on another box; enter it again"):
        service.send_test("me@example.com", settings=moved)
    refused = service.store.save(service.store.get(), new_password="wrong password")
    with pytest.raises(MailError, match="refused the login for 'box@example.com': 535"):
        service.send_test("me@example.com", settings=refused)
    nobody = free_port()
    down = service.store.get().__class__(**{**refused.__dict__, "port": nobody})
    with pytest.raises(MailError, match="cannot reach the mail server 127.0.0.1:%d" % nobody):
        service.send_test("me@example.com", settings=down)


def test_every_mail_says_it_is_automatic_why_it_came_and_how_to_stop_it(mailbox, smtp_server):
    """An owner reads the box's mails on a phone and never logs in. No mail said why it came
    or how to stop it, and none was marked as sent by a machine, so an out-of-office reply
    went back to the sender address for every alarm and every report (RFC 3834)."""
    service, alarms, _, _ = mailbox
    alarms.set("no_line_voltage", True, line=2, message="no line voltage")
    assert service.tick() == (2, 0)
    service.send_test("me@example.com")
    msgs = {m["To"]: m for m in received(smtp_server)}
    for msg in msgs.values():
        assert msg["Auto-Submitted"] == "auto-generated", msg["Subject"]
        assert msg["X-Auto-Response-Suppress"] == "All", msg["Subject"]
    alarm = msgs["ops@example.com"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert (
        "You get this mail because this address is one of the box's alarm recipients, on its "
        "E-mail page (Settings, E-mail). To stop these mails, an installer takes the address off "
        "there. The box sent this mail by itself and does not read replies.\n"
    ) in alarm, alarm
    report = msgs["boss@example.com"].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert (
        "You get this mail because this address is given for the box's weekly report, on its "
        "E-mail page (Settings, E-mail). To stop these mails, an installer takes the address off "
        "there. The box sent this mail by itself and does not read replies.\n"
    ) in report, report


def test_an_address_taken_off_the_e_mail_page_gets_none_of_the_mail_still_waiting(mailbox, smtp_server):
    """The mail server was down; meanwhile an installer took a leaver's address off the
    alarm recipients (or the owner asked to stop the reports). When the server came back,
    every alarm and report that had waited still went to that address, with the concerns'
    words and the callers' numbers, as if it had never been taken off."""
    service, alarms, clock, _ = mailbox
    settings = service.store.get()
    service.store.save(
        dataclasses.replace(
            settings,
            alarm_to=("ops@example.com", "leaver@example.com"),
            alarm_accounts=(("ops@example.com", "ops"),),
        )
    )
    smtp_server.stop()
    alarms.set("disk_warning", True, message="the card is 85% full")
    assert service.tick() == (0, 1)  # the weekly report tried; the alarm waits with it
    assert len(service.queue.pending()) == 2
    # Taken off while both wait: the alarm recipient, and the weekly report's only one.
    now = service.store.get()
    service.store.save(
        dataclasses.replace(now, alarm_to=("ops@example.com",), schedules=()),
    )
    smtp_server.start()
    clock.t += 61_000_000
    service.tick()
    assert service.queue.pending() == []
    [alarm] = received(smtp_server)
    assert alarm["To"] == "ops@example.com" and "Storage nearly full" in alarm["Subject"]
    assert [rcpt for _, rcpt, _ in smtp_server.messages] == [["ops@example.com"]]


def test_an_address_saved_twice_gets_a_mail_once(mailbox, smtp_server):
    """The E-mail page took "boss@example.com, Boss@example.com" for a report before it
    refused an address twice in other letters, and the mail.json so saved still loads:
    each report went to that mailbox twice."""
    service, _, _, _ = mailbox
    settings = service.store.get()
    twice = (Schedule("weekly", ("boss@example.com", "Boss@example.com"), "csv"),)
    service.store.save(dataclasses.replace(settings, schedules=twice))
    assert service.tick() == (1, 0)
    assert [rcpt for _, rcpt, _ in smtp_server.messages] == [["boss@example.com"]]
    assert received(smtp_server)[0]["To"] == "boss@example.com"


def test_an_alarm_mail_links_to_the_dashboard_at_the_address_the_e_mail_page_gives(mailbox, smtp_server):
    """The mail said "Acknowledge it on the box's dashboard" and gave no address: the
    recorder writing it does not know the one people use. Given on the E-mail page, the
    mail links to it; without it, the mail says no more than before."""
    service, alarms, clock, data_dir = mailbox
    plain = dataclasses.replace(service.store.get(), schedules=())
    service.store.save(plain)
    alarms.set("disk_warning", True, message="the card is 85% full")
    service.store.save(dataclasses.replace(plain, box_url="https://recorder.harbour.example"))
    assert json.load(open(os.path.join(data_dir, "mail-box-url.json"))) == {
        "box_url": "https://recorder.harbour.example"
    }
    alarms.set("call_log", True, message="the call log cannot be written")
    assert service.tick() == (2, 0)
    without, linked = (m.get_body(("plain",)).get_content() for m in received(smtp_server))
    assert "Acknowledge it on the box's dashboard; the Alarms page" in without
    assert "Acknowledge it on the box's dashboard, at https://recorder.harbour.example/; the Alarms" in linked
    service.store.save(plain)  # taken off again
    assert not os.path.exists(os.path.join(data_dir, "mail-box-url.json"))
    assert service.store.get().box_url == ""


def test_a_sender_with_a_display_name_shows_it_and_gives_the_server_the_address_alone(mailbox, smtp_server):
    """ "Harbour Box <recorder@harbour.example>" was refused as "not an e-mail address":
    the mails' From shows the name, the envelope's sender is the address alone."""
    service, _, _, _ = mailbox
    named = "Harbour Box <recorder@harbour.example>"
    service.store.save(server_settings(smtp_server, sender=named), new_password=PASSWORD)
    service.send_test("me@example.com")
    mail_from, _, content = smtp_server.messages[-1]
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert mail_from == "recorder@harbour.example"
    assert msg["From"].addresses[0].display_name == "Harbour Box"
    assert msg["From"].addresses[0].addr_spec == "recorder@harbour.example"
    for bad in ("Harbour Box <recorder@harbour>", "a <b@c.example>, d <e@f.example>", "<r@h.example>"):
        with pytest.raises(ConfigError, match="write the address alone, like recorder@example.com, or with"):
            server_settings(smtp_server, sender=bad).check()
