"""A staff concern's mail says that one was raised, by whom and about what, never its words.

A concern is free text a staff member types (My line, the Alarms page): it may name a
caller or say something personal about a colleague. Its mail carried the words as
written, so they left the box to every alarm recipient's mailbox. The mail now says a
concern was raised, by which account and about which line, and links to the box, where
the words are read after logging in.
"""

from firmware.alarmlog import AlarmLog
from firmware.mail.alarms import AlarmMailer
from firmware.mail.settings import MailSettings

T_US = 1_782_900_000_000_000  # Wed 1 Jul 2026, 10:00:00 UTC
WORDS = "Mrs Jones on 07700 900123 told me about her divorce and it was recorded"

SETTINGS = MailSettings(
    host="mail.example",
    sender="box@example.com",
    alarm_to=("sam@example.com",),
    box_url="https://recorder.example.com/",
)


class Queue:
    def __init__(self):
        self.mails = []

    def enqueue(self, msg):
        self.mails.append(msg)


class Clock:
    def wall_us(self):
        return T_US


def _mail_of(tmp_path, message, line=0):
    """The mail of a concern raised through the alarm history, as the web UI raises it."""
    log = AlarmLog(tmp_path / "alarms.db", Clock())
    queue = Queue()
    log.on_raised.append(AlarmMailer(queue, lambda: SETTINGS, lambda: T_US))
    log.set("staff_concern", True, line=line, message=message)
    log.set("staff_concern", False, line=line)
    log.close()
    (mail,) = queue.mails
    return mail


def test_a_concern_s_mail_names_the_account_and_the_box_not_the_words(tmp_path):
    mail = _mail_of(tmp_path, "from sue: " + WORDS)
    body = mail.get_content()
    for said in ("Jones", "07700", "divorce", WORDS):
        assert said not in body and said not in mail["Subject"]
    assert "A concern was raised by the account sue about the box." in body
    assert "Log in to the box to read it on its Alarms page: https://recorder.example.com/alarms" in body
    assert mail["Auto-Submitted"] == "auto-generated"


def test_a_request_from_my_line_names_its_line_not_what_was_asked(tmp_path):
    message = (
        "from sue: asked on My line: erasure, about their own calls on line 2 "
        "(request 4 on the Requests page, due 2026-07-31)"
    )
    body = _mail_of(tmp_path, message, line=2).get_content()
    assert "erasure" not in body and "request 4" not in body
    assert "A concern was raised by the account sue about line 2." in body


def test_a_concern_whose_words_are_sealed_still_says_one_was_raised(tmp_path):
    body = _mail_of(tmp_path, "(sealed: readable on the box once the recorder has started)").get_content()
    assert "A concern was raised by an account (the Alarms page names it) about the box." in body
