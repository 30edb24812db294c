"""An alarm mail as its reader gets it: which box, which line, what happened, and when.

A supervisor reading an alarm at night got "[Linekeeper] Alarm: ico renewal 30 on the
box", raised at a UTC time in ISO form: no box of several could be told from another,
no line by its name, and the alarm by its code. And a second staff concern within the
rate window was never mailed: each concern was taken for a repeat of the first.
"""

import json

from firmware.mail.alarms import FOLLOW_UP_S, AlarmMailer
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings

from support.simbox import save_site_settings

T_US = 1_782_900_000_000_000  # Wed 1 Jul 2026, 10:00:00 UTC: 11:00 BST


class Queue:
    def __init__(self):
        self.mails = []

    def enqueue(self, msg):
        self.mails.append(msg)


SETTINGS = MailSettings(
    host="mail.example",
    sender="box@example.com",
    alarm_to=("sam@example.com",),
    alarm_accounts=(("sam@example.com", "sam"),),
)
# sam's account: an installer's, who sees every line's alarms (firmware.mail.alarms.recipients_for).
ACCOUNTS = {"sam": (frozenset({"installer"}), ())}


def mailer_of(queue, wall_us, **kw):
    """An AlarmMailer of :data:`SETTINGS` and :data:`ACCOUNTS`."""
    return AlarmMailer(queue, lambda: SETTINGS, wall_us, accounts=lambda: ACCOUNTS, **kw)


def _row(kind, line=0, message="", n=1):
    return {"id": n, "kind": kind, "line": line, "message": message, "raised_us": T_US}


def test_the_mail_names_the_box_the_line_and_the_time_as_the_pages_do(tmp_path):
    lines = [{"line": 1, "name": "Line 1", "record": True}, {"line": 2, "name": "Sales", "record": True}]
    save_site_settings(tmp_path, organisation="Acme Ltd", time_zone="Europe/London", lines=lines)
    service = MailService(str(tmp_path), lambda: T_US, secrets=None)
    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US, site=service.site)
    mailer(_row("no_line_voltage", 2, "no line voltage"))
    mailer(_row("ico_renewal_30", 0, "", 2))
    first, second = queue.mails
    assert first["Subject"] == "[Acme Ltd] Alarm on line 2 (Sales): No voltage on the line"
    body = first.get_content()
    assert "Raised: Wed 1 Jul 2026, 11:00:00 BST" in body and "Z\n" not in body
    assert "What happened: no line voltage" in body
    assert (
        second["Subject"]
        == "[Acme Ltd] Alarm on the box: The ICO registration must be renewed within 30 days"
    )


def test_every_staff_concern_is_mailed(tmp_path):
    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US)
    mailer(_row("staff_concern", 0, "from sam: the beep was not played", 1))
    mailer(_row("staff_concern", 0, "from sue: line 3 was recorded though private", 2))
    mailer(_row("no_line_voltage", 1, "", 3))
    mailer(_row("no_line_voltage", 1, "", 4))  # a flapping line: once per window
    assert [m["Subject"].split(": ", 1)[1] for m in queue.mails] == [
        "A concern raised by staff",
        "A concern raised by staff",
        "No voltage on the line",
    ]
    assert "raised by the account sue" in queue.mails[1].get_content()  # its words stay on the box


def test_every_alarm_mail_says_what_to_do_and_that_a_late_one_may_be_over():
    """The mail said only "Acknowledge it on the box's dashboard": a supervisor reading
    "No voltage on the line" at night did not learn to check the cable, nor, for a mail
    that waited out a mail server's outage, that the fault may be long over."""
    from firmware import words

    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US)
    for n, kind in enumerate(sorted(words.ALARMS), start=1):
        mailer(_row(kind, 0, "", n))
    bodies = {kind: m.get_content() for kind, m in zip(sorted(words.ALARMS), queue.mails, strict=True)}
    for kind, body in bodies.items():
        advice = words.ALARM_ADVICE[kind]
        assert "What to do: %s" % advice in body, kind
        assert "Alarms page" in body and "still on" in body, kind
    assert "cable" in bodies["no_line_voltage"]
    assert "Retention" in bodies["disk_warning"]
    # The advice never names a caller: it is the same text for every occurrence.
    assert set(words.ALARM_ADVICE) == set(words.ALARMS)


def test_a_box_restarting_in_a_loop_does_not_flood_the_inbox(tmp_path):
    """A recorder that crashes and is started again every few seconds raises
    ``power_loss_restart`` at each start, and each start is a new process with a new
    mailer: the rate window is kept on the card, so at most a few mails go in a window
    and the next one says how many were not sent. A flapping fault, likewise, is mailed
    once, then once more a few hours later, across restarts."""
    state = tmp_path / "alarm-rate.json"
    queue = Queue()
    t = [T_US]
    for n in range(40):  # 40 starts, 5 s apart: 200 s, within the 15-minute window
        mailer = mailer_of(queue, lambda: t[0], state_path=str(state))
        mailer(_row("power_loss_restart", 0, "", 2 * n + 1))
        mailer(_row("no_line_voltage", 1, "", 2 * n + 2))
        t[0] += 5_000_000
    kinds = [m["Subject"].split(": ", 1)[1] for m in queue.mails]
    assert len(kinds) == 6, kinds  # five restarts and the fault once
    t[0] = T_US + SETTINGS.rate_window_s * 1_000_000 + 1  # the window has passed
    mailer = mailer_of(queue, lambda: t[0], state_path=str(state))
    mailer(_row("power_loss_restart", 0, "", 99))
    mailer(_row("no_line_voltage", 1, "", 100))  # a repeat: gathered for a few hours
    [restart] = queue.mails[6:]
    assert "It happened 35 more times since the last mail about it" in restart.get_content()
    t[0] = T_US + FOLLOW_UP_S * 1_000_000
    mailer_of(queue, lambda: t[0], state_path=str(state))(_row("no_line_voltage", 1, "", 101))
    assert "It happened 40 more times since the last mail about it" in queue.mails[-1].get_content()
    # A clock set back does not hold mail back until it catches up.
    t[0] = T_US - 3600 * 1_000_000
    mailer_of(queue, lambda: t[0], state_path=str(state))(_row("no_line_voltage", 1, "", 102))
    assert len(queue.mails) == 9


def test_one_persons_concerns_never_hold_back_the_mail_of_anothers(tmp_path):
    """Five concerns of one account in a rate window (as many as it may raise in a day) took
    the window's whole burst of concern mails: a colleague's concern raised next was on the
    banner only, where a supervisor it was about could acknowledge it unmailed. The burst is
    counted per person (the "from NAME: " the web UI writes), so every concern is mailed."""
    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US, state_path=str(tmp_path / "alarm-rate.json"))
    for n in range(5):
        mailer(_row("staff_concern", 0, "from sam: concern number %d" % n, n))
    mailer(_row("staff_concern", 0, "from sue: the manager listens to our personal calls", 9))
    assert len(queue.mails) == 6
    said = queue.mails[-1].get_content()
    assert "raised by the account sue" in said and "the manager" not in said  # never its words
    mailer(_row("staff_concern", 0, "from sam: a sixth in the window", 10))  # the web refuses it: 5 a day
    assert len(queue.mails) == 6


def test_a_damaged_or_planted_rate_file_never_stops_the_mails(tmp_path):
    """The windows' file is read as data from the card: a field of the wrong type, a number
    out of range, a file that is not an object or is too large is dropped and rewritten,
    and every alarm is still mailed."""
    state = tmp_path / "alarm-rate.json"
    bad = [
        {"staff_concern:0": {"sent": "3", "from_us": T_US - 1}},
        {"old:9": {"seen_us": "x"}},
        {"no_line_voltage:1": {"last_us": "1", "suppressed": True}},
        '{"power_fail:0": {"suppressed": 1e400, "last_us": -5}}',
        [1, 2, 3],
        "x" * (2 << 20),
    ]
    for n, content in enumerate(bad):
        state.write_text(content if isinstance(content, str) else json.dumps(content))
        queue = Queue()
        mailer = mailer_of(queue, lambda: T_US, state_path=str(state))
        for i, (kind, line) in enumerate((("staff_concern", 0), ("no_line_voltage", 1), ("power_fail", 0))):
            mailer(_row(kind, line, "", 10 * n + i))
        assert len(queue.mails) == 3, content
        assert isinstance(json.loads(state.read_text()), dict)  # healed


def test_both_services_share_one_window(tmp_path, monkeypatch):
    """The recorder and the web UI each have a mailer on the same file: a change by one
    is not lost under the other's (the file is locked from reading to writing)."""
    import threading
    import time

    state = tmp_path / "alarm-rate.json"
    load = AlarmMailer._load

    def slow_load(self):
        found = load(self)
        time.sleep(0.02)  # the other service gets in between reading and writing
        return found

    monkeypatch.setattr(AlarmMailer, "_load", slow_load)
    queue = Queue()
    services = [mailer_of(queue, lambda: T_US, state_path=str(state)) for _ in range(2)]

    def raise_concerns(mailer, first):
        for n in range(5):
            mailer(_row("staff_concern", 0, "from sam: the beep was not played", first + n))

    threads = [threading.Thread(target=raise_concerns, args=(m, 10 * i)) for i, m in enumerate(services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queue.mails) == 5  # the burst of one window, whichever service raised them


def test_a_consent_alarm_says_what_to_do_about_what_failed():
    """A warning tone that could not be played raised consent_notice_failed whose mail said to
    check the announcement, which had nothing to do with it: a beep the box cannot play into
    the line is the box's fault, whichever beep it was."""
    from types import SimpleNamespace

    from firmware.alarmchecks import ConsentWatch
    from firmware.mail.compose import alarm_message

    class Alarms:
        messages = []

        def set(self, kind, active, line, message=None, call_id=None, call_us=None):
            self.messages.append(message)

    watch = ConsentWatch(Alarms())
    for consent in (
        {"notice": "announcement", "given": False, "error": "the announcement file is missing"},
        {"notice": "tone", "given": False, "error": "the playback device is gone"},
        {"notice": "announcement", "given": True, "warning_tone_error": "the playback device is gone"},
    ):
        watch._on_call(SimpleNamespace(call=SimpleNamespace(line=2, consent=consent)))
    said = [
        alarm_message(SETTINGS, _row("consent_notice_failed", 2, m), "Acme", T_US)
        .get_content()
        .split("What to do: ")[1]
        .split(".\n")[0]
        for m in Alarms.messages
    ]
    announcement, beep, tone = said
    assert announcement.startswith("check the announcement on the Consent page")
    assert beep == tone
    assert tone.startswith("call the supplier if it happens again: the box may be failing to play")
    assert "announcement" not in tone and "the beep that tells them calls are recorded" in tone


def test_the_mail_says_what_happened_without_saying_the_alarm_again():
    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US)
    mailer(_row("consent_notice_failed", 4, "the consent notice could not be given: no announcement"))
    mailer(_row("power_fail", 0, "the power failed", 2))
    consent, power = (m.get_content() for m in queue.mails)
    assert "Alarm: The consent notice could not be given\nWhat happened: no announcement\n" in consent
    assert consent.lower().count("could not be given") == 2  # the subject's and the alarm's
    assert "Alarm: The power failed\nWhat happened: The power failed\n" in power


def test_the_mail_says_the_dates_in_its_message_as_the_pages_do(tmp_path):
    """ "What happened" said a date or time in the message as the box keeps it (2026-07-01,
    2026-07-01 09:30:00 UTC, 2026-07-01T09:30:00.000Z) under "Raised: Wed 1 Jul 2026, 11:00:00
    BST": now each as the pages write it, in the box's zone."""
    save_site_settings(tmp_path, organisation="Acme Ltd", time_zone="Europe/London", lines=[])
    service = MailService(str(tmp_path), lambda: T_US, secrets=None)
    queue = Queue()
    mailer = mailer_of(queue, lambda: T_US, site=service.site)
    mailer(_row("ico_expired", 0, "the ICO registration was due for renewal on 2026-06-30"))
    mailer(_row("recorder_start_failed", 0, "the recorder could not start (from 2026-07-01 09:30:00 UTC)", 2))
    mailer(_row("recording_failed", 1, "the card failed at 2026-07-01T09:30:00.000Z: full", 3))
    bodies = [m.get_content() for m in queue.mails]
    assert "What happened: the ICO registration was due for renewal on Tue 30 Jun 2026\n" in bodies[0]
    assert "(from Wed 1 Jul 2026, 10:30:00 BST)" in bodies[1]
    assert "the card failed at Wed 1 Jul 2026, 10:30:00 BST: full" in bodies[2]
    assert not any("2026-0" in b for b in bodies)


def test_a_repeat_waits_at_least_the_rate_window_and_holds_back_no_other_alarm():
    """A rate window longer than the few hours a repeat waits (6 h) is kept: the repeat
    goes no sooner. Another line's same alarm, and another alarm of the same line, go at
    once meanwhile."""
    import dataclasses

    queue = Queue()
    t = [T_US]
    six_hours = dataclasses.replace(SETTINGS, rate_window_s=6 * 3600)
    mailer = AlarmMailer(queue, lambda: six_hours, lambda: t[0], accounts=lambda: ACCOUNTS)
    mailer(_row("no_line_voltage", 1, "", 1))
    for n in range(2, 40):  # every 10 minutes for 6 h 20 min
        t[0] += 600_000_000
        mailer(_row("no_line_voltage", 1, "", n))
        if n == 20:
            mailer(_row("no_line_voltage", 2, "", 100))
            mailer(_row("disk_warning", 1, "", 101))
    subjects = [m["Subject"].split(": ", 1)[1] for m in queue.mails]
    assert subjects == ["No voltage on the line", "No voltage on the line", "Storage nearly full"] + [
        "No voltage on the line"
    ], subjects
    assert queue.mails[1]["Subject"].startswith("[Linekeeper] Alarm on line 2")
    last = queue.mails[-1].get_content()
    assert "It happened 35 more times" in last and "Raised" in last


def test_the_box_s_address_is_a_web_address_or_refused_naming_what_is_wrong(tmp_path):
    import dataclasses

    import pytest

    from firmware.errors import ConfigError
    from firmware.mail.settings import MailSettingsStore

    store = MailSettingsStore(str(tmp_path), secrets=None)
    for url, said in (
        ("recorder.example.com", "starting http:// or https://"),
        ("ftp://recorder.example.com/", "starting http:// or https://"),
        ("https://", "starting http:// or https://"),
        ("https://recorder.example.com:99999/", "starting http:// or https://"),
        ("https://admin:secret@recorder.example.com/", "holds a user name or password"),
        ("https://recorder example.com/", "has a space"),
        ("https://recorder.example.com/\u00e9", "has a space or a character a link cannot hold"),
        ("https://recorder.example.com/" + "x" * 200, "at most 200 characters"),
    ):
        with pytest.raises(ConfigError) as refused:
            store.save(dataclasses.replace(SETTINGS, box_url=url))
        assert refused.value.field == "mail.box_url" and said in str(refused.value), url
        assert not (tmp_path / "mail.json").exists() and not (tmp_path / "mail-box-url.json").exists()
    for url in ("https://recorder.example.com/", "http://192.168.1.20:8080", "https://[fd00::20]/"):
        assert store.save(dataclasses.replace(SETTINGS, box_url=url)).box_url == url


def test_the_storage_full_mail_says_what_to_do_once():
    """The "Storage full" mail said to make room twice: its message's first sentence ("Ask your
    installer to make room: ...", which the dashboard shows too) and then its "What to do"
    ("make room now: check the retention periods ..."). A message in the recorder's words
    alone, as before that sentence, still gets the advice."""
    from firmware.mail.compose import alarm_message
    from firmware.words import ALARM_ADVICE, DISK_FULL_PLAIN

    plain = "%s In detail: the card is full (found by line 1)" % DISK_FULL_PLAIN
    body = alarm_message(SETTINGS, _row("disk_full", 0, plain), "Acme", T_US).get_content()
    assert "What happened: %s\n" % plain in body, body
    assert body.count("make room") == 1 and "What to do" not in body, body
    older = alarm_message(SETTINGS, _row("disk_full", 0, "the card is full"), "Acme", T_US).get_content()
    assert "What to do: %s.\n" % ALARM_ADVICE["disk_full"] in older, older


def test_the_start_failure_mail_does_not_quote_a_refused_setting():
    """A configuration the recorder refuses is said back with its value (a number list's
    pattern): the mail the web UI sends while the recorder cannot start quoted it to every
    alarm recipient, off the box, where the dashboard (behind a login) says it."""
    from firmware import startfail
    from firmware.errors import ConfigError
    from firmware.mail.compose import start_failure_message

    settings = MailSettings(host="mail.example.com", sender="box@example.com", alarm_to=("ops@example.com",))
    exc = ConfigError(
        "must be a number pattern of digits, '*' and '?', not '07700 9OO123'",
        field="policy.rules.numbers[0].patterns[0]",
    )
    note = {"error": startfail.describe(exc), "cause": startfail.cause(exc), "since_us": 0, "attempts": 3}
    body = start_failure_message(settings, note, "Acme", 600 * 10**6).get_content()
    assert "07700" not in body and "9OO123" not in body
    assert "Why: its configuration is refused. The dashboard names the setting and why" in body
    # A card that fails is said as it is: no caller's data in it, and it says what to replace.
    note = dict(note, error="cannot open the data in /var/lib/linekeeper: an I/O error", cause="card")
    body = start_failure_message(settings, note, "Acme", 600 * 10**6).get_content()
    assert "Why: cannot open the data in /var/lib/linekeeper: an I/O error." in body
