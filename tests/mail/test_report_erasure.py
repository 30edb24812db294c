"""A scheduled report waiting for the mail server when a caller's details are erased does
not go out with them: it is withdrawn, a notice goes in its place, and that is audited."""

import datetime as dt
import fcntl
import functools
import json
import os
import threading

import pytest

from firmware.bus import CallEnded, CallStarted, EventBus
from firmware.calls.call import Call
from firmware.calls.calllog import CallLog
from firmware.clock import SimClock
from firmware.mail.queue import MailQueue
from firmware.mail.schedule import ReportScheduler, withdraw_reports, withdrawal_auditor
from firmware.mail.settings import MailSettings, Schedule
from firmware.mail.smtp import MailServerError
from firmware.policy.retention import RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore
from firmware.reports.source import ReportSource
from firmware.storage.audit import AuditLog

NUMBER = "01632960101"
OTHER = "01632960202"


def us(*args):
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000


class Clock:
    def __init__(self, t):
        self.t = t

    def wall_us(self):
        return self.t


class Down:
    """The mail server cannot be reached; ``during(n)`` runs at the n-th try (0 first)."""

    def __init__(self, during=None):
        self.tries = 0
        self.during = during

    def send(self, msg):
        if self.during is not None:
            self.during(self.tries)
        self.tries += 1
        raise MailServerError("cannot reach the mail server")


class Up:
    def __init__(self, during=None):
        self.sent = []
        self.during = during

    def send(self, msg):
        if self.during is not None:
            self.during(len(self.sent))
        self.sent.append(msg)
        return {}


def text_of(msg):
    """Every part of a message, decoded, as one text."""
    parts = [msg.get("Subject", "")]
    for part in msg.walk():
        if not part.is_multipart():
            content = part.get_content()
            parts.append(content if isinstance(content, str) else content.decode("latin-1"))
    return "\n".join(parts)


class Site:
    """A box's call log with two missed calls (9 March, ``NUMBER``; 1 February, ``OTHER``),
    its sweeper wired as the box wires it, and its daily, weekly and monthly reports of
    10 March queued while the mail server is down."""

    def __init__(self, tmp_path):
        self.data = data = str(tmp_path)
        self.clock = SimClock(start_wall_us=us(2026, 3, 9, 12))
        bus = EventBus(strict=True)
        self.log = CallLog(os.path.join(data, "calls.db"), self.clock)
        self.log.attach(bus)
        self.ids = []
        for number, t_us in ((OTHER, us(2026, 2, 10, 9) - us(2026, 3, 9, 12)), (NUMBER, 0)):
            call = Call(line=1, direction="in", started_us=t_us)
            call.number = number
            bus.publish(CallStarted(line=1, t_us=t_us, call=call))
            call.ended_us = t_us + 20_000_000
            bus.publish(CallEnded(line=1, t_us=call.ended_us, call=call))
            self.ids.append(call.id)
        self.log.flush()
        self.store = RecordingStore(data)
        self.audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
        self.mail_clock = Clock(us(2026, 3, 10, 6))
        self.queue = MailQueue(os.path.join(data, "mail", "queue"), self.mail_clock.wall_us)
        # As firmware/mail/service.py wires it, in the web UI: a report withdrawn while it
        # was being sent is audited once the try has ended.
        self.queue.on_withdrawal_settled.append(withdrawal_auditor(self.audit, self.mail_clock.wall_us))
        self.sweeper = RetentionSweeper(
            self.store, self.clock, self.audit, RetentionSettings.from_dict({}), call_log=self.log
        )
        # As firmware/box.py wires it, in the recorder: its own queue object on the same
        # directory (the web UI's process delivers it, through ``queue``).
        recorders = MailQueue(os.path.join(data, "mail", "queue"), self.clock.wall_us)
        self.sweeper.on_details_erased.append(
            lambda call_id, started_us, actor, address: withdraw_reports(
                recorders, self.audit, call_id, started_us, actor, self.clock.wall_us, address
            )
        )
        settings = MailSettings(
            host="mail.example.com",
            sender="box@example.com",
            schedules=(
                Schedule("daily", ("a@example.com",), "csv"),
                Schedule("weekly", ("b@example.com",), "csv"),
                Schedule("monthly", ("c@example.com",), "csv"),
            ),
        )
        self.scheduler = ReportScheduler(
            ReportSource(data, n_lines=2),
            self.queue,
            lambda: settings,
            self.mail_clock.wall_us,
            os.path.join(data, "mail", "schedules.json"),
        )
        self.scheduler.run()
        assert self.queue.flush(Down()) == (0, 1)  # the server is down: all three wait

    def reports(self):
        """The queued mails' texts by subject."""
        import base64
        import email
        import email.policy

        return {
            i["subject"]: text_of(
                email.message_from_bytes(base64.b64decode(i["message"]), policy=email.policy.SMTP)
            )
            for i in self.queue._items()
        }

    def close(self):
        self.sweeper.close()
        self.log.close()
        self.store.close()
        self.audit.close()


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_a_queued_report_naming_the_erased_caller_is_withdrawn_and_a_notice_goes(site):
    before = site.reports()
    assert NUMBER in before["[Linekeeper] Daily report, Mon 9 Mar 2026"]
    assert OTHER in before["[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026"]

    site.sweeper.erase_details(site.ids[1], "sam", "erasure request ref 9", address="192.0.2.7")

    up = Up()
    site.mail_clock.t += 3600_000_000
    assert site.queue.flush(up) == (3, 0)
    sent = {str(m["Subject"]): (m, text_of(m)) for m in up.sent}
    assert not any(NUMBER in text for _, text in sent.values())
    daily, text = sent["[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn"]
    assert str(daily["To"]) == "a@example.com" and str(daily["From"]) == "box@example.com"
    assert (
        "were erased from the call log" in text
        and "Reports page (from Mon 9 Mar 2026 to Mon 9 Mar 2026)" in text
    )
    # The week before ends the day before the call: withdrawn too (a day's margin each
    # side, as the reports' zone may put the call on either day).
    assert "[Linekeeper] Weekly report, Mon 2 Mar - Sun 8 Mar 2026 withdrawn" in sent
    # February's report holds no call of 9 March: it goes as it was, the other caller in it.
    monthly = sent["[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026"][1]
    assert OTHER in monthly and "withdrawn" not in monthly

    entries = site.audit.entries(action="mail_withdrawn")
    assert sorted(e.details["period"][0] for e in entries) == ["2026-03-02", "2026-03-09"]
    for e in entries:
        assert e.actor == "sam" and e.target.startswith("mail:")
        assert e.details["call"] == site.ids[1] and e.details["request"] == "erasure"
        assert e.details["address"] == "192.0.2.7"
        assert e.details["key"].startswith("report:")
        assert NUMBER not in str(e)
    # Never queued again: the notice took its key.
    assert site.scheduler.run() == []


def erase_at(site, call_id, at=0):
    """A sender's ``during``: call ``call_id``'s details erased (by the recorder, another
    process) as the round's ``at``-th mail is with the server."""

    def during(n):
        if n == at:
            site.sweeper.erase_details(call_id, "sam", "erasure request ref 9", address="192.0.2.7")

    return during


def test_a_report_withdrawn_while_the_queue_is_being_delivered_stays_withdrawn(site):
    """The recorder withdraws (another process) while the web UI's round runs: a failed
    try written back keeps the notice, and is audited as withdrawn once it has failed; a
    report tried after the withdrawal sends it."""
    erase = functools.partial(erase_at, site)
    site.mail_clock.t += 3600_000_000
    assert site.queue.flush(Down(during=erase(site.ids[1]))) == (0, 1)
    texts = site.reports()
    assert not any(NUMBER in text for text in texts.values())
    assert "[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn" in texts
    # The daily report was with the server as the withdrawal was made: audited once the
    # try failed; the weekly one at once.
    entries = site.audit.entries(action="mail_withdrawn")
    assert sorted(e.details["period"][0] for e in entries) == ["2026-03-02", "2026-03-09"]
    assert all(e.actor == "sam" and e.details["address"] == "192.0.2.7" for e in entries)
    assert all(e.details["call"] == site.ids[1] for e in entries)
    assert site.audit.entries(action="mail_already_sent") == []
    assert not any(i.get("sending") or i.get("withdrawal") for i in site.queue._items())

    # February's caller erased as the daily notice goes: the monthly report, tried after
    # it in the same round, goes as its notice.
    site.mail_clock.t += 3600_000_000
    up = Up(during=erase(site.ids[0]))
    assert site.queue.flush(up) == (3, 0)
    assert len(site.audit.entries(action="mail_withdrawn")) == 3
    assert [str(m["Subject"]).endswith(" withdrawn") for m in up.sent] == [True, True, True]
    assert not any(NUMBER in text_of(m) or OTHER in text_of(m) for m in up.sent)


def test_a_report_made_after_the_erasure_is_not_withdrawn(site):
    site.sweeper.erase_details(site.ids[1], "sam", "erasure request ref 9")
    site.mail_clock.t += 86_400_000_000  # the next day's report, made with the erased marker
    site.scheduler.run()
    assert "[Linekeeper] Daily report, Tue 10 Mar 2026" in site.reports()
    site.sweeper.erase_details(site.ids[0], "sam", "erasure request ref 10")  # February's caller
    subjects = sorted(site.reports())
    assert subjects == [
        "[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn",
        "[Linekeeper] Daily report, Tue 10 Mar 2026",
        "[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026 withdrawn",
        "[Linekeeper] Weekly report, Mon 2 Mar - Sun 8 Mar 2026 withdrawn",
    ]
    assert len(site.audit.entries(action="mail_withdrawn")) == 3


def box_with_a_waiting_report(tmp_path, synth, calls):
    """A simulated box of 9 March 2026 running ``calls`` (scenario calls, one line), with that
    day's report naming NUMBER waiting in its mail queue: ``(box, the queued item)``."""
    from email.message import EmailMessage

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    scenario = loads_scenario(
        json.dumps({"start": "2026-03-09T09:00:00Z", "country": "uk", "lines": 1, "calls": calls})
    )
    box = open_sim_box(scenario, str(tmp_path / "box"), synth=synth)
    report = EmailMessage()
    report["From"], report["To"] = "box@example.com", "a@example.com"
    report["Subject"] = "[Linekeeper] Daily report, Mon 9 Mar 2026"
    report.set_content("Not called back: " + NUMBER)
    day = dt.date(2026, 3, 9)
    return box, box.mail.queue.enqueue(report, key="report:daily-csv:2026-03-09", period=(day, day))


def test_the_box_withdraws_a_waiting_report_when_it_erases_the_callers_details(tmp_path, synth):
    """On a simulated box: the recorder's erasure of a caller's details withdraws the
    report of that day which the web UI's process left waiting in the queue."""
    import base64
    import email
    import email.policy

    calls = [
        {"line": 1, "direction": "in", "rings": 1, "talk": 3.0, "at": 1.0, "caller_id": {"number": NUMBER}},
        {"line": 1, "direction": "in", "rings": 1, "talk": 1.0, "at": 25.0},  # the run goes on after it
    ]
    box, queued = box_with_a_waiting_report(tmp_path, synth, calls)
    erased = []
    # (A box not set up records nothing: the call's details are erased on their own.)
    box.clock.call_at(20_000_000, lambda: erased.append(box.retention.erase_details(1, "sam", "ref 12")))
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    assert erased == [None]
    (item,) = box.mail.queue._items()
    message = email.message_from_bytes(base64.b64decode(item["message"]), policy=email.policy.SMTP)
    assert item["id"] == queued and item["withdrawn"]
    assert str(message["Subject"]) == "[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn"
    assert NUMBER not in text_of(message)
    audit = AuditLog(os.path.join(box.data_dir, "audit.db"), os.path.join(box.data_dir, "audit.head"))
    try:
        (entry,) = audit.entries(action="mail_withdrawn")
    finally:
        audit.close()
    assert entry.target == "mail:" + queued and entry.details["call"] == 1


def test_a_mail_delivered_as_the_recorder_lists_the_queue_does_not_stop_the_withdrawal(site, monkeypatch):
    """The web UI delivers a mail (its file removed) between the recorder's listing of the
    queue and its reading of that file: the FileNotFoundError ended the withdrawal (the
    erasure's hook only logged it), and the daily report naming the erased caller went out
    once the mail server came back, unaudited."""
    import firmware.mail.queue as queue_module

    queue_dir = os.path.join(site.data, "mail", "queue")
    (monthly,) = [i["id"] for i in site.queue._items() if "Monthly" in i["subject"]]
    listdir = os.listdir

    def delivered_meanwhile(path):
        names = listdir(path)
        if os.path.abspath(path) == os.path.abspath(queue_dir) and monthly + ".json" in names:
            os.unlink(os.path.join(queue_dir, monthly + ".json"))  # sent by the web UI
        return names

    monkeypatch.setattr(queue_module.os, "listdir", delivered_meanwhile)
    site.sweeper.erase_details(site.ids[1], "sam", "erasure request ref 9")
    monkeypatch.setattr(queue_module.os, "listdir", listdir)

    up = Up()
    site.mail_clock.t += 3600_000_000
    site.queue.flush(up)
    assert up.sent and not any(NUMBER in text_of(m) for m in up.sent)
    assert len(site.audit.entries(action="mail_withdrawn")) == 2


def test_a_report_the_server_takes_as_it_is_withdrawn_is_audited_as_gone(site):
    """The recorder withdraws the daily report while the web UI has it with the server,
    which takes it: it has gone, and the audit trail says so (``mail_already_sent``), not
    that it was withdrawn. It said ``mail_withdrawn``: the report was read before the
    notice was written, sent, and its file (by then the notice) removed as delivered."""
    up = Up(during=erase_at(site, site.ids[1]))
    site.mail_clock.t += 3600_000_000
    assert site.queue.flush(up) == (3, 0)
    subjects = [str(m["Subject"]) for m in up.sent]
    assert subjects == [
        "[Linekeeper] Daily report, Mon 9 Mar 2026",  # with the server as the erasure was made
        "[Linekeeper] Weekly report, Mon 2 Mar - Sun 8 Mar 2026 withdrawn",
        "[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026",
    ]
    assert site.queue.pending() == []
    (daily,) = site.audit.entries(action="mail_already_sent")
    assert daily.actor == "sam" and daily.details["period"] == ["2026-03-09", "2026-03-09"]
    assert daily.details["call"] == site.ids[1] and daily.details["address"] == "192.0.2.7"
    assert daily.details["key"] == "report:daily-csv:2026-03-09" and NUMBER not in str(daily)
    (weekly,) = site.audit.entries(action="mail_withdrawn")
    assert weekly.details["period"] == ["2026-03-02", "2026-03-08"]


def test_a_round_coming_to_a_report_being_withdrawn_waits_and_sends_the_notice(site, monkeypatch):
    """The web UI's round comes to the queue while the recorder is withdrawing the daily
    report (its notice not written yet): the round waits for the queue's lock, and sends
    the notices. Without the lock it read the report meanwhile and sent it, while the
    audit trail said it was withdrawn."""
    import firmware.mail.schedule as schedule_module

    flusher = threading.Thread(target=lambda: errors.extend(flush_and_catch()), name="web UI")
    errors, up = [], Up()
    there = threading.Event()  # the round has come to the queue's files
    notice = schedule_module.withdrawn_report_message

    def flush_and_catch():
        try:
            site.queue.flush(up)
        except Exception as exc:  # raised again in the test's thread
            return [exc]
        return []

    def notice_once_the_round_is_there(*args):
        # The recorder holds the queue (its first notice not written): the round starts.
        if not flusher.is_alive() and not there.is_set():
            flusher.start()
        there.wait()
        return notice(*args)

    flock, on_disk = fcntl.flock, MailQueue._on_disk

    def flock_noted(fd, operation):
        if threading.current_thread() is flusher:
            there.set()  # about to wait for the queue's lock
        return flock(fd, operation)

    def on_disk_noted(self, item):
        found = on_disk(self, item)
        if threading.current_thread() is flusher:
            there.set()  # read without the lock
        return found

    monkeypatch.setattr(schedule_module, "withdrawn_report_message", notice_once_the_round_is_there)
    monkeypatch.setattr(fcntl, "flock", flock_noted)
    monkeypatch.setattr(MailQueue, "_on_disk", on_disk_noted)
    site.mail_clock.t += 3600_000_000
    try:
        site.sweeper.erase_details(site.ids[1], "sam", "erasure request ref 9")
    finally:
        there.set()
        if flusher.ident is not None:
            flusher.join()
    assert errors == []
    assert [str(m["Subject"]) for m in up.sent] == [
        "[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn",
        "[Linekeeper] Weekly report, Mon 2 Mar - Sun 8 Mar 2026 withdrawn",
        "[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026",
    ]
    assert not any(NUMBER in text_of(m) for m in up.sent)
    assert len(site.audit.entries(action="mail_withdrawn")) == 2
    assert site.audit.entries(action="mail_already_sent") == []


def test_who_withdrew_a_report_being_sent_is_sealed_in_its_file(tmp_path):
    """The withdrawal kept with a report being sent (who erased, from where) is sealed in
    the queue's file as its message is: the card alone does not show the address."""
    from email.message import EmailMessage

    from firmware.storage.fieldseal import FieldCipher

    cipher = FieldCipher(os.urandom(32))
    path = tmp_path / "mail" / "queue"
    web, recorder = MailQueue(path, lambda: 1, cipher), MailQueue(path, lambda: 1, cipher)
    settled = []
    web.on_withdrawal_settled.append(lambda item, withdrawal, sent: settled.append((withdrawal, sent)))
    report = EmailMessage()
    report["From"], report["To"], report["Subject"] = "box@example.com", "a@example.com", "Daily report"
    report.set_content("Not called back: " + NUMBER)
    queued = web.enqueue(report, key="report:daily-csv:2026-03-09")
    files = []

    def withdraw(n):
        withdrawal = {"actor": "sam", "call": 7, "address": "192.0.2.7"}
        (item,) = recorder.withdraw(lambda item: True, lambda msg, item: msg, withdrawal)
        assert item["sending"]
        files.append((path / (queued + ".json")).read_text())

    assert web.flush(Down(during=withdraw)) == (0, 1)
    (raw,) = files
    assert "192.0.2.7" not in raw and '"sam"' not in raw and NUMBER not in raw
    assert json.loads(raw)["withdrawal"].startswith("lkp1:")
    assert settled == [({"actor": "sam", "call": 7, "address": "192.0.2.7"}, False)]
    assert "withdrawal" not in json.loads((path / (queued + ".json")).read_text())


def test_a_report_some_recipients_took_as_it_was_withdrawn_is_audited_as_gone(tmp_path):
    """The recorder withdraws a report while the web UI has it with the server, which takes
    it for one recipient and refuses the other: the report has gone, to the one, and the
    audit trail says so (``mail_already_sent``). It said ``mail_withdrawn``, as for a try
    that failed for every recipient, while a copy naming the erased caller had left."""
    from email.message import EmailMessage

    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    path = tmp_path / "mail" / "queue"
    web, recorder = MailQueue(path, lambda: 1), MailQueue(path, lambda: 1)
    web.on_withdrawal_settled.append(withdrawal_auditor(audit, lambda: 2))
    report = EmailMessage()
    report["From"], report["Subject"] = "box@example.com", "Daily report"
    report["To"] = "a@example.com, b@example.com"
    report.set_content("Not called back: " + NUMBER)
    web.enqueue(report, key="report:daily-csv:2026-03-09", period=(dt.date(2026, 3, 9), dt.date(2026, 3, 9)))

    class PartlyRefused:
        sent = []

        def send(self, msg):
            withdrawal = {"actor": "sam", "call": 7, "address": None}
            recorder.withdraw(lambda item: True, lambda msg, item: msg, withdrawal)
            self.sent.append(msg)
            return {"b@example.com": "550 no such user"}

    try:
        assert web.flush(PartlyRefused()) == (0, 1)
        (gone,) = audit.entries(action="mail_already_sent")
        assert gone.actor == "sam" and gone.details["call"] == 7
        assert audit.entries(action="mail_withdrawn") == []
        # What waits for the refused recipient is the notice, never the report.
        (item,) = web._items()
        assert item["withdrawn"] and not item.get("sending") and "withdrawal" not in item
    finally:
        audit.close()


def _report(to="a@example.com"):
    from email.message import EmailMessage

    report = EmailMessage()
    report["From"], report["To"], report["Subject"] = "box@example.com", to, "Daily report"
    report.set_content("Not called back: " + NUMBER)
    return report


def test_a_try_that_fails_on_the_boxs_side_lets_go_of_the_claim_and_tells_the_withdrawal(tmp_path):
    """A try ending in an error that is not the server's answer (smtplib cannot encode the
    message) is a failed try: the mail waits with the error, not left marked as being sent,
    a withdrawal made during it audited at once, and the round goes on to the next mail.
    The error escaped the round: the claim stayed, and the withdrawal was never audited
    while every try failed so."""
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    path = tmp_path / "mail" / "queue"
    web, recorder = MailQueue(path, lambda: 1), MailQueue(path, lambda: 1)
    web.on_withdrawal_settled.append(withdrawal_auditor(audit, lambda: 2))
    first = web.enqueue(_report(), key="report:daily-csv:2026-03-09")
    web.enqueue(_report("b@example.com"), key="alarm:1")
    sent = []

    class Unencodable:
        def send(self, msg):
            if "Daily" in str(msg["Subject"]) and not sent:
                recorder.withdraw(
                    lambda item: item["id"] == first,
                    lambda msg, item: msg,
                    {"actor": "sam", "call": 7, "address": None},
                )
                sent.append(None)
                raise UnicodeEncodeError("ascii", "Zoë", 2, 3, "ordinal not in range(128)")
            sent.append(msg)
            return {}

    try:
        assert web.flush(Unencodable()) == (1, 1)
        (item,) = web._items()
        assert item["id"] == first and not item.get("sending") and "withdrawal" not in item
        assert item["attempts"] == 1 and "UnicodeEncodeError" in item["last_error"]
        (entry,) = audit.entries(action="mail_withdrawn")
        assert entry.actor == "sam" and entry.details["call"] == 7
        assert audit.entries(action="mail_already_sent") == []
    finally:
        audit.close()


def test_a_claim_left_by_a_stopped_web_ui_is_let_go_at_its_next_round(tmp_path):
    """The web UI stopped while it had a report with the server, which the recorder then
    withdrew: the next web UI's first round lets go of that claim and audits the withdrawal,
    though the server is down and an older mail is tried first (the report waits behind
    it). It waited, marked as being sent, its withdrawal unaudited, until a try of its own."""
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    path = tmp_path / "mail" / "queue"
    clock = Clock(1)
    stopped, recorder = MailQueue(path, clock.wall_us), MailQueue(path, clock.wall_us)
    stopped.enqueue(_report("b@example.com"), key="alarm:1")
    clock.t = 2
    report = stopped.enqueue(_report(), key="report:daily-csv:2026-03-09")
    (item,) = [i for i in stopped._items() if i["id"] == report]
    stopped._claim(item)  # and the process stops during the try
    (withdrawn,) = recorder.withdraw(
        lambda item: item["id"] == report, lambda msg, item: msg, {"actor": "sam", "call": 7, "address": None}
    )
    assert withdrawn["sending"]

    web = MailQueue(path, clock.wall_us)
    web.on_withdrawal_settled.append(withdrawal_auditor(audit, lambda: 3))
    try:
        assert web.flush(Down()) == (0, 1)
        (entry,) = audit.entries(action="mail_withdrawn")
        assert entry.actor == "sam" and entry.details["call"] == 7
        assert not any(i.get("sending") or i.get("withdrawal") for i in web._items())
    finally:
        audit.close()


def test_the_notice_of_a_report_some_recipients_took_goes_to_those_refused_alone(tmp_path):
    """Withdrawn while the server took it for one recipient and refused the other: the
    notice that waits in its place goes to the one refused alone. It kept the report's To:,
    and told the one who had the report that it was withdrawn."""
    from email.message import EmailMessage

    path = tmp_path / "mail" / "queue"
    web, recorder = MailQueue(path, lambda: 1), MailQueue(path, lambda: 1)
    web.enqueue(_report("a@example.com, b@example.com"), key="report:daily-csv:2026-03-09")

    def notice(msg, item):
        out = EmailMessage()
        out["From"], out["To"], out["Subject"] = msg["From"], msg["To"], "Daily report withdrawn"
        out.set_content("withdrawn")
        return out

    class PartlyRefused:
        def send(self, msg):
            recorder.withdraw(lambda item: True, notice, {"actor": "sam", "call": 7, "address": None})
            return {"b@example.com": "550 no such user"}

    assert web.flush(PartlyRefused()) == (0, 1)
    up = Up()
    web.wall_us = lambda: 10**12
    assert web.flush(up) == (1, 0)
    (sent,) = up.sent
    assert str(sent["Subject"]) == "Daily report withdrawn"
    assert str(sent["To"]) == "b@example.com" and sent["Cc"] is None


def test_the_web_uis_round_lets_go_of_a_stale_claim_with_no_mail_server_set(tmp_path):
    """The mail server's settings were cleared after the web UI stopped mid-try: its next
    round tries nothing, yet the claim is let go and the withdrawal made meanwhile audited.
    It waited for a server to be set again."""
    from firmware.mail.service import MailService
    from firmware.secretbox import SecretBox

    data = str(tmp_path)
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    try:
        mail = MailService(data, lambda: 1, SecretBox(data, identity=b"t"), audit=audit)
        assert not mail.store.get().configured
        recorder = MailQueue(os.path.join(data, "mail", "queue"), lambda: 1)
        report = mail.queue.enqueue(_report(), key="report:daily-csv:2026-03-09")
        mail.queue._claim({"id": report})  # and the web UI stops during the try
        recorder.withdraw(
            lambda item: True, lambda msg, item: msg, {"actor": "sam", "call": 7, "address": None}
        )
        assert mail.tick() == (0, 0)
        (entry,) = audit.entries(action="mail_withdrawn")
        assert entry.actor == "sam" and entry.details["call"] == 7
        (item,) = mail.queue._items()
        assert item["withdrawn"] and not item.get("sending")
    finally:
        audit.close()


def test_a_sealed_queue_with_no_claim_is_let_be_by_the_rounds_release(tmp_path):
    """Looking for claims left by a stop opens no mail: a queue sealed with a key this
    process has not opened yet (before the recorder has started), which holds no claim,
    does not fail the round of a box with no mail server set."""
    from firmware.storage.fieldseal import FieldCipher

    path = tmp_path / "mail" / "queue"
    MailQueue(path, lambda: 1, FieldCipher(os.urandom(32))).enqueue(_report(), key="alarm:1")
    MailQueue(path, lambda: 1).release_claims()  # no key here: the item does not open


def test_the_notice_does_not_say_the_caller_asked_when_nobody_said_so(site):
    """An erasure takes any reason (a business closing down erases its calls' details); the
    notice in a withdrawn report's place said the details "were erased at their request
    (UK GDPR's right to erasure)" whatever the reason, as the call page did before it was
    put right. It says they were erased, and where who asked and why is kept."""
    site.sweeper.erase_details(site.ids[1], "sam", "the business is closing down", address="192.0.2.7")
    up = Up()
    site.mail_clock.t += 3600_000_000
    site.queue.flush(up)
    sent = {str(m["Subject"]): text_of(m) for m in up.sent}
    text = sent["[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn"]
    assert "at their request" not in text and "right to erasure" not in text, text
    assert (
        "after it was made, the details of a caller in its days were erased from the call log (the "
        "box's audit trail says who asked and why), and the report could name them." in " ".join(text.split())
    ), text


def details_past_a_day(site):
    """The sweeper wired as the recorder wires it (the waiting reports withdrawn after a
    removal), callers' details kept 1 day, and the clock at 11 March, 14:00: the call of 9
    March at noon is past it (on 10 March it was not yet, nor in any report)."""
    from firmware.box import withdraw_expired_reports as wired

    recorders = MailQueue(os.path.join(site.data, "mail", "queue"), site.clock.wall_us)
    site.sweeper.on_details_expired.append(
        lambda started_us: wired(
            recorders, site.audit, started_us, site.sweeper.settings.call_details_days, site.clock.wall_us
        )
    )
    site.sweeper.update_settings(RetentionSettings.from_dict({"call_details_days": 1}))
    site.clock.run_until(site.clock.now_us() + 50 * 3600_000_000)


def test_a_queued_report_naming_callers_whose_details_retention_removed_is_withdrawn(site):
    """A report waiting for the mail server went out naming callers whose details the
    retention sweep had removed past ``call_details_days`` after it was made, which an
    erasure on request withdraws: it is withdrawn the same way, a notice in its place."""
    details_past_a_day(site)
    result = site.sweeper.sweep()
    assert result.details_removed == 2, result

    up = Up()
    site.mail_clock.t += 3600_000_000
    assert site.queue.flush(up) == (3, 0)
    sent = {str(m["Subject"]): text_of(m) for m in up.sent}
    assert not any(NUMBER in text or OTHER in text for text in sent.values())
    daily = sent["[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn"]
    assert "reached the end of their retention period (1 day, set on the box's Retention page)" in daily
    assert "Reports page (from Mon 9 Mar 2026 to Mon 9 Mar 2026)" in daily
    assert "[Linekeeper] Weekly report, Mon 2 Mar - Sun 8 Mar 2026 withdrawn" in sent
    assert "[Linekeeper] Monthly report, Sun 1 Feb - Sat 28 Feb 2026 withdrawn" in sent
    entries = site.audit.entries(action="mail_withdrawn")
    assert len(entries) == 3
    for e in entries:
        assert e.actor == "system" and e.details["request"] == "retention"
        assert e.details["details_days"] == 1 and "call" not in e.details
        assert NUMBER not in str(e) and OTHER not in str(e)
    assert site.scheduler.run() == []


def test_the_box_withdraws_a_waiting_report_when_its_sweep_removes_callers_details(tmp_path, synth):
    """On a simulated box: the recorder's retention sweep that removes callers' details past
    ``call_details_days`` withdraws the report of that day left waiting in the queue."""
    import base64
    import email
    import email.policy

    calls = [
        {"line": 1, "direction": "in", "rings": 1, "talk": 3.0, "at": 1.0, "caller_id": {"number": NUMBER}}
    ]
    box, queued = box_with_a_waiting_report(tmp_path, synth, calls)
    box.start()
    try:
        assert box.board.run()
        box.retention.update_settings(RetentionSettings.from_dict({"call_details_days": 1}))
        # Two days on: the box's own hourly sweeps remove the call's details.
        box.clock.run_until(box.clock.now_us() + 2 * 86_400_000_000)
        assert box.calllog.expired_of([1]) == [1]
    finally:
        box.stop()
    (item,) = box.mail.queue._items()
    message = email.message_from_bytes(base64.b64decode(item["message"]), policy=email.policy.SMTP)
    assert item["id"] == queued and item["withdrawn"]
    assert str(message["Subject"]) == "[Linekeeper] Daily report, Mon 9 Mar 2026 withdrawn"
    assert NUMBER not in text_of(message) and "retention period (1 day" in text_of(message)
    audit = AuditLog(os.path.join(box.data_dir, "audit.db"), os.path.join(box.data_dir, "audit.head"))
    try:
        (entry,) = audit.entries(action="mail_withdrawn")
    finally:
        audit.close()
    assert entry.target == "mail:" + queued and entry.details["request"] == "retention"


def test_a_sweep_cut_after_removing_details_withdraws_the_waiting_reports_at_the_next_start(site):
    """The reports that may name callers whose details a sweep removed were withdrawn only
    after the sweep's last batch: a power cut between a batch's commit and that left them
    waiting, and the next sweep did not select those calls again, so a report went out
    naming callers past their period. The sweep notes the calls' starts before each batch
    commits; the next start withdraws the reports the note covers."""
    from firmware.policy.sweeper import PENDING_EXPIRY

    from support.web import Cut

    details_past_a_day(site)
    removal = site.sweeper.call_log.expire_details

    def cut_after(*args, **kwargs):
        removal(*args, **kwargs)
        raise Cut()  # the power goes as the batch has committed

    site.sweeper.call_log.expire_details = cut_after
    with pytest.raises(Cut):
        site.sweeper.sweep()
    site.sweeper.call_log.expire_details = removal
    assert os.path.exists(os.path.join(site.data, PENDING_EXPIRY))
    assert site.audit.entries(action="mail_withdrawn") == []
    # The next start, before any mail goes: the waiting reports are withdrawn.
    site.sweeper.withdraw_pending()
    assert not os.path.exists(os.path.join(site.data, PENDING_EXPIRY))
    assert len(site.audit.entries(action="mail_withdrawn")) == 3
    up = Up()
    site.mail_clock.t += 3600_000_000
    assert site.queue.flush(up) == (3, 0)
    assert not any(NUMBER in text_of(m) or OTHER in text_of(m) for m in up.sent)
    # A sweep that finishes leaves no note.
    assert site.sweeper.sweep().details_removed == 0
    assert not os.path.exists(os.path.join(site.data, PENDING_EXPIRY))
