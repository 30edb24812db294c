"""Who gets an alarm's mail: the pages show an alarm of one line only to those who may see
that line (a supervisor's own lines, every line for an installer or auditor); its mail went
to every recipient, whatever the line. A recipient tied to an account now gets a line's
alarm only if that account sees that line; an address tied to no account still gets every
alarm, as the installer who wrote it there asked. A whole box's alarm still goes to every
recipient."""

from firmware.datadir import account_lines
from firmware.mail.alarms import AlarmMailer, recipients_for, unreached_lines
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings

from .conftest import ops_account

T_US = 1_782_900_000_000_000

SETTINGS = MailSettings(
    host="mail.example",
    sender="box@example.com",
    alarm_to=(
        "ivan@example.com",
        "audrey@example.com",
        "sam@example.com",
        "sue@example.com",
        "stan@example.com",
        "gone@example.com",
        "office@example.com",
    ),
    alarm_accounts=(
        ("ivan@example.com", "ivan"),
        ("audrey@example.com", "audrey"),
        ("sam@example.com", "sam"),
        ("sue@example.com", "sue"),
        ("stan@example.com", "stan"),
        ("gone@example.com", "gone"),  # an account since removed
    ),
)
ACCOUNTS = {
    "ivan": (frozenset({"installer"}), ()),
    "audrey": (frozenset({"auditor"}), ()),
    "sam": (frozenset({"supervisor"}), (1, 2)),
    "sue": (frozenset({"supervisor"}), (3,)),
    "stan": (frozenset({"staff"}), (1,)),  # staff do not see the box's alarms
}


class Queue:
    def __init__(self):
        self.mails = []

    def enqueue(self, msg):
        self.mails.append(msg)


def _row(kind, line, n=1):
    return {"id": n, "kind": kind, "line": line, "message": "", "raised_us": T_US}


def test_a_lines_alarm_goes_to_those_who_see_that_line_and_the_boxs_to_all():
    assert recipients_for(SETTINGS, 1, ACCOUNTS) == (
        "ivan@example.com",
        "audrey@example.com",
        "sam@example.com",
        "office@example.com",
    )
    assert recipients_for(SETTINGS, 3, ACCOUNTS) == (
        "ivan@example.com",
        "audrey@example.com",
        "sue@example.com",
        "office@example.com",
    )
    assert recipients_for(SETTINGS, 0, ACCOUNTS) == SETTINGS.alarm_to
    # The accounts cannot be read now: the tied addresses get the whole box's alarms only.
    assert recipients_for(SETTINGS, 1, None) == ("office@example.com",)


def test_the_mail_is_addressed_to_them_alone_and_nobody_else_is_sent_one():
    queue = Queue()
    mailer = AlarmMailer(queue, lambda: SETTINGS, lambda: T_US, accounts=lambda: ACCOUNTS)
    mailer(_row("no_line_voltage", 3))
    mailer(_row("disk_full", 0, 2))
    line, box = queue.mails
    assert line["To"] == "ivan@example.com, audrey@example.com, sue@example.com, office@example.com"
    assert box["To"] == ", ".join(SETTINGS.alarm_to)
    # A box whose recipients are bare addresses mails them every alarm, as before accounts.
    bare = MailSettings(host="mail.example", sender="box@example.com", alarm_to=("office@example.com",))
    queue = Queue()
    mailer = AlarmMailer(queue, lambda: bare, lambda: T_US, accounts=lambda: ACCOUNTS)
    mailer(_row("no_line_voltage", 1))
    assert [m["To"] for m in queue.mails] == ["office@example.com"]


SUPERVISORS_ONLY = MailSettings(
    host="mail.example",
    sender="box@example.com",
    alarm_to=("sue@example.com", "sam@example.com", "gone@example.com"),
    alarm_accounts=(("sue@example.com", "sue"), ("sam@example.com", "sam"), ("gone@example.com", "gone")),
)


def test_a_lines_alarm_no_recipient_may_see_is_mailed_to_every_recipient_saying_why(caplog):
    """Every recipient tied to an account that does not see the line (supervisors of other
    lines, an account since removed): the alarm was mailed to nobody, only logged, and an
    installer who tied each address to a supervisor of lines 1 to 3 never heard that line 4
    stopped recording. It goes to every recipient now, saying why they got it, without the
    alarm's own words (they may name a caller or carry a concern) or its call."""
    queue = Queue()
    mailer = AlarmMailer(queue, lambda: SUPERVISORS_ONLY, lambda: T_US, accounts=lambda: ACCOUNTS)
    row = dict(
        _row("staff_concern", 4), message="Concern from 07700 900123: manager shouts", call_id=7, call_us=T_US
    )
    mailer(row)
    (mail,) = queue.mails
    assert mail["To"] == "sue@example.com, sam@example.com, gone@example.com"
    assert mail["Subject"].startswith("[Linekeeper] Alarm on line 4: ")
    body = mail.get_content()
    assert "no alarm recipient is tied to an account that sees line 4" in body
    assert "the box tells every alarm recipient instead, without its details" in body
    assert "ties an alarm recipient to an account that sees line 4" in body
    assert "07700" not in body and "shouts" not in body and "Call:" not in body
    assert "mailed to every recipient without its details" in caplog.text
    # A line one of them sees, and the whole box's, go as before: to whoever may read them.
    mailer(_row("no_line_voltage", 3, 2))
    mailer(_row("disk_full", 0, 3))
    assert [m["To"] for m in queue.mails[1:]] == ["sue@example.com", ", ".join(SUPERVISORS_ONLY.alarm_to)]
    assert "What happened:" in queue.mails[1].get_content()
    # web.db unreadable: a tied address's lines are not known, and every recipient is told.
    queue.mails.clear()
    AlarmMailer(queue, lambda: SUPERVISORS_ONLY, lambda: T_US, accounts=lambda: None)(
        _row("no_line_voltage", 1)
    )
    assert [m["To"] for m in queue.mails] == [", ".join(SUPERVISORS_ONLY.alarm_to)]


def test_the_lines_whose_alarms_reach_no_recipient():
    assert unreached_lines(SUPERVISORS_ONLY, ACCOUNTS, 4) == (4,)
    assert unreached_lines(SETTINGS, ACCOUNTS, 4) == ()
    no_sue = {k: v for k, v in ACCOUNTS.items() if k != "sue"}  # removed since
    assert unreached_lines(SUPERVISORS_ONLY, no_sue, 4) == (3, 4)
    # No recipient at all is a state of its own (nothing is mailed), not "every line".
    assert unreached_lines(MailSettings(host="mail.example"), ACCOUNTS, 4) == ()


def test_the_mail_service_reads_the_accounts_lines_from_web_db(tmp_path):
    ops_account(tmp_path, "sam", roles="supervisor", lines="1,2")
    ops_account(tmp_path, "ivan", roles="installer,supervisor")
    assert account_lines(str(tmp_path)) == {
        "sam": (frozenset({"supervisor"}), (1, 2)),
        "ivan": (frozenset({"installer", "supervisor"}), ()),
    }
    service = MailService(str(tmp_path), lambda: T_US, secrets=None)
    queue = Queue()
    service.alarms.queue = queue
    service.alarms.settings = lambda: SETTINGS
    service.alarms(_row("no_line_voltage", 3))
    assert queue.mails[0]["To"] == "ivan@example.com, office@example.com"


def test_a_disabled_accounts_address_is_mailed_as_a_deleted_ones_until_it_is_enabled(tmp_path):
    """A leaver's account disabled (unused for 90 days, or by an installer) kept its address
    getting its lines' alarms, their words and calls, as long as nobody deleted it: it is
    now mailed as an address tied to a deleted account is (the whole box's alarms only, and
    a line's only without its details when no other recipient sees that line)."""
    import os

    from web.accounts import Accounts
    from web.db import WebDb
    from web.inactive import UNUSED_REASON

    ops_account(tmp_path, "sam", roles="supervisor", lines="1,2")
    ops_account(tmp_path, "ivan", roles="installer,supervisor")
    db = WebDb(os.path.join(str(tmp_path), "web.db"))
    accounts = Accounts(db, lambda: T_US)
    with db.tx() as conn:
        accounts.disable(conn, "sam", UNUSED_REASON)
    assert account_lines(str(tmp_path)) == {"ivan": (frozenset({"installer", "supervisor"}), ())}
    assert accounts.lines() == account_lines(str(tmp_path))  # the pages say what is mailed
    service = MailService(str(tmp_path), lambda: T_US, secrets=None)
    queue = Queue()
    service.alarms.queue = queue
    service.alarms.settings = lambda: SETTINGS
    service.alarms(_row("no_line_voltage", 1))
    assert queue.mails[-1]["To"] == "ivan@example.com, office@example.com"
    # Every recipient tied to sam alone: line 1's alarm goes to all, without its details.
    only_sam = MailSettings(
        host="mail.example",
        sender="box@example.com",
        alarm_to=("sam@example.com",),
        alarm_accounts=(("sam@example.com", "sam"),),
    )
    assert unreached_lines(only_sam, account_lines(str(tmp_path)), 4) == (1, 2, 3, 4)
    with db.tx() as conn:
        accounts.enable(conn, "sam")
    db.close()
    assert unreached_lines(only_sam, account_lines(str(tmp_path)), 4) == (3, 4)
    service.alarms(_row("no_line_voltage", 2, n=2))
    assert queue.mails[-1]["To"] == "ivan@example.com, sam@example.com, office@example.com"


def test_a_recipient_is_tied_to_one_account_and_only_a_recipient_is():
    import dataclasses

    import pytest

    from firmware.errors import ConfigError

    for accounts, said in (
        (
            (("nobody@example.com", "sam"),),
            "nobody@example.com is tied to an account but is not an alarm recipient",
        ),
        (
            (("sam@example.com", "sam"), ("sam@example.com", "sue")),
            "a recipient is tied to one account at most",
        ),
        ((("sam@example.com", ""),), "an account name is 1 to 64 characters"),
    ):
        with pytest.raises(ConfigError, match=said):
            dataclasses.replace(SETTINGS, alarm_accounts=accounts).check()
    twice = dataclasses.replace(SETTINGS, alarm_to=("a@example.com", "a@example.com"), alarm_accounts=())
    with pytest.raises(ConfigError, match="a@example.com is listed twice"):
        twice.check()
    # Kept in mail.json as {address: account}; none tied: left out, as a release before wrote it.
    assert MailSettings.from_dict(SETTINGS.to_dict()) == SETTINGS
    assert "alarm_accounts" not in dataclasses.replace(SETTINGS, alarm_accounts=()).to_dict()


def test_a_mail_json_from_the_release_before_with_a_recipient_twice_still_mails_every_alarm(tmp_path):
    """The E-mail page took an address twice before recipients could be tied ("a@x, a@x"),
    and wrote it so: read after the update, that mail.json was refused whole (listed twice),
    and no alarm of any kind was mailed again until someone saved the page. Read now, the
    address is mailed once; the page still refuses a new list that names one twice."""
    import json

    from firmware.mail.settings import MailSettingsStore

    (tmp_path / "mail.json").write_text(
        json.dumps(
            {
                "host": "mail.example",
                "sender": "box@example.com",
                "alarm_to": ["office@example.com", "ops@example.com", "office@example.com"],
            }
        )
    )
    settings = MailSettingsStore(str(tmp_path), secrets=None).get()
    assert settings.alarm_to == ("office@example.com", "ops@example.com")
    queue = Queue()
    AlarmMailer(queue, lambda: settings, lambda: T_US, accounts=lambda: ACCOUNTS)(_row("no_line_voltage", 1))
    assert [m["To"] for m in queue.mails] == ["office@example.com, ops@example.com"]
