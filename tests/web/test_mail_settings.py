"""The e-mail settings page: bad input named, the password never shown back, a test e-mail."""

import html
import json
import os

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from firmware.errors import ConfigError
from firmware.secretbox import PREFIX, VAULT_PREFIX, SecretBox
from firmware.storage.fieldseal import LazyFieldCipher, load_field_cipher

from support.ports import closed_port

NOBODY = closed_port()  # no mail server there, nor ever: the test e-mail cannot be sent
GOOD = {
    "host": "127.0.0.1",
    "port": str(NOBODY),
    "security": "starttls",
    "username": "box",
    "password": "smtp pass 99",
    "sender": "box@example.com",
    "alarm_to": "ops@example.com, boss@example.com",
    "rate_window_min": "15",
    "daily_to": "",
    "daily_fmt": "pdf",
    "weekly_to": "boss@example.com",
    "weekly_fmt": "csv",
    "monthly_to": "",
    "monthly_fmt": "pdf",
}


def test_bad_recipient_is_named_and_nothing_is_saved(box, people):
    resp = box.post(
        people["ivan"],
        "/settings/mail",
        dict(GOOD, alarm_to="ops@example.com, not-an-address"),
        token_from="/settings/mail",
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "&#34;not-an-address&#34; is not an e-mail address" in page
    assert 'id="error-alarm_to"' in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))
    resp = box.post(
        people["ivan"], "/settings/mail", dict(GOOD, weekly_to="boss@"), token_from="/settings/mail"
    )
    assert resp.status_code == 400 and 'id="error-weekly_to"' in resp.get_data(as_text=True)


def test_recipients_without_a_server_are_told_nothing_is_sent(box, people):
    """Alarm recipients saved with no mail server said only "Saved.": an installer left
    believing alarms were mailed, while they were only shown on the dashboard."""
    ivan = people["ivan"]
    resp = box.post(ivan, "/settings/mail", dict(GOOD, host="", sender=""), token_from="/settings/mail")
    assert resp.status_code == 302
    page = ivan.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="saved"' in page
    assert (
        '<p class="error" role="alert" id="not-sent">No e-mail is sent until the mail server and '
        "sender address are set: alarms are only shown on the dashboard and no report is mailed.</p>"
    ) in page
    box.post(ivan, "/settings/mail", dict(GOOD, sender=""), token_from="/settings/mail")
    assert "No e-mail is sent until the sender address is set:" in ivan.get("/settings/mail").get_data(
        as_text=True
    )
    box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail")
    assert 'id="not-sent"' not in ivan.get("/settings/mail").get_data(as_text=True)
    # Nobody to send to: nothing to warn of.
    box.post(
        ivan, "/settings/mail", dict(GOOD, host="", alarm_to="", weekly_to=""), token_from="/settings/mail"
    )
    assert 'id="not-sent"' not in ivan.get("/settings/mail").get_data(as_text=True)


def test_the_password_is_sealed_and_never_shown_back(box, people):
    ivan = people["ivan"]
    assert box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail").status_code == 302
    stored = json.load(open(os.path.join(box.data_dir, "mail.json")))
    assert stored["password"].startswith("lksec1:") and "smtp pass 99" not in json.dumps(stored)
    page = ivan.get("/settings/mail").get_data(as_text=True)
    assert "smtp pass 99" not in page and "set — leave empty to keep it" in page
    # Saving again without a password keeps the stored one.
    assert (
        box.post(ivan, "/settings/mail", dict(GOOD, password=""), token_from="/settings/mail").status_code
        == 302
    )
    again = json.load(open(os.path.join(box.data_dir, "mail.json")))
    assert again["password"] == stored["password"]
    assert box.services.mail.store.password(box.services.mail.store.get()) == "smtp pass 99"
    entries = [e for e in box.services.audit.entries(limit=10) if e.target == "mail"]
    assert [e.details["password_changed"] for e in entries] == [True]  # saved again unchanged: no entry
    assert all("smtp pass 99" not in json.dumps(e.details) for e in entries)


@pytest.mark.parametrize("port", ["99999", "587x"])
def test_every_bad_field_is_named_at_once(box, people, port):
    # The model names its first bad field only: a bad port hid a bad address, found by the
    # next save; a port not in digits hid every other mistake.
    resp = box.post(
        people["ivan"],
        "/settings/mail",
        dict(GOOD, port=port, alarm_to="ops@", syslog="logs:99999", weekly_to="boss@"),
        token_from="/settings/mail",
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for field in ("port", "alarm_to", "syslog", "weekly_to"):
        assert 'id="error-%s"' % field in page, field
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


def test_a_password_typed_on_a_refused_form_is_asked_for_again(box, people):
    # Never shown back, it came back empty under "not set": the installer mended the bad
    # address, saved ("Saved.") and the box had no password to log in to the server with.
    ivan = people["ivan"]
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to="ops@"), token_from="/settings/mail")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "smtp pass 99" not in page
    assert (
        '<span class="field-error" id="error-password-again" role="alert">The password typed was not '
        "saved either: type it again (a password is never shown back).</span>"
    ) in page
    # Nothing typed there: nothing to ask for.
    resp = box.post(
        ivan, "/settings/mail", dict(GOOD, alarm_to="ops@", password=""), token_from="/settings/mail"
    )
    assert resp.status_code == 400 and "error-password-again" not in resp.get_data(as_text=True)


def test_test_email_to_a_server_that_is_not_there(box, people):
    ivan = people["ivan"]
    box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail")
    resp = box.post(ivan, "/settings/mail/test", {"test_to": "me@example.com"}, token_from="/settings/mail")
    assert resp.status_code == 502
    sent = "The test e-mail was not sent: cannot reach the mail server 127.0.0.1:%d" % NOBODY
    assert sent in resp.get_data(as_text=True)
    resp = box.post(ivan, "/settings/mail/test", {"test_to": "me at home"}, token_from="/settings/mail")
    assert resp.status_code == 400 and "is not an e-mail address" in resp.get_data(as_text=True)
    # None typed: it said '"" is not an e-mail address'; it says one is needed.
    resp = box.post(ivan, "/settings/mail/test", {"test_to": "  "}, token_from="/settings/mail")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "An e-mail address is needed here, like name@example.com" in page
    assert "is not an e-mail address" not in page


def test_a_test_mail_is_audited_as_one_and_not_as_a_change(box, people, monkeypatch):
    ivan = people["ivan"]
    box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail")
    before = len(box.services.audit)
    monkeypatch.setattr(box.services.mail, "send_test", lambda to: None)
    resp = box.post(ivan, "/settings/mail/test", {"test_to": "me@example.com"}, token_from="/settings/mail")
    assert resp.status_code == 200
    (entry,) = box.services.audit.entries(limit=len(box.services.audit) - before)
    assert (entry.action, entry.target) == ("mail_test", "mail")
    assert entry.details == {"to": "me@example.com", "address": "192.0.2.10"}
    assert "Sent a test e-mail" in people["audrey"].get("/audit").get_data(as_text=True)


@pytest.mark.parametrize(
    "field, value, error, words",
    [
        ("username", "user\r\nRCPT TO:<x@y>", "username", "no control characters"),
        ("username", "u" * 300, "username", "at most 256 characters"),
        ("rate_window_min", "0", "rate_window_min", "The rate window is 1 to 1440 minutes (a day)."),
        ("box_url", "recorder.harbour.example", "box_url", "starting http:// or https://"),
        ("box_url", "https://ivan:pw@recorder.harbour.example/", "box_url", "holds a user name or password"),
    ],
)
def test_bad_fields_are_refused_in_the_page_s_own_words(box, people, field, value, error, words):
    resp = box.post(
        people["ivan"], "/settings/mail", dict(GOOD, **{field: value}), token_from="/settings/mail"
    )
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and words in page and 'id="error-%s"' % error in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


def test_the_address_people_reach_the_box_at_is_saved_and_shown_back(box, people):
    ivan = people["ivan"]
    url = "https://recorder.harbour.example/"
    resp = box.post(ivan, "/settings/mail", dict(GOOD, box_url=" %s " % url), token_from="/settings/mail")
    assert resp.status_code == 302 and box.services.mail.store.get().box_url == url
    page = ivan.get("/settings/mail").get_data(as_text=True)
    assert 'name="box_url" value="%s"' % url in page
    resp = box.post(ivan, "/settings/mail", dict(GOOD, box_url=""), token_from="/settings/mail")
    assert resp.status_code == 302 and box.services.mail.store.get().box_url == ""


def test_a_login_in_clear_is_refused_naming_the_security_and_nothing_is_saved(box, people):
    """Security "none" with a user name and password was saved: the password would have
    crossed the network in clear at every mail."""
    ivan = people["ivan"]
    resp = box.post(ivan, "/settings/mail", dict(GOOD, security="none"), token_from="/settings/mail")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="error-security"' in page
    assert "would send the user name and password over the network in clear" in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))
    # Without a login there is nothing to send in clear.
    resp = box.post(
        ivan, "/settings/mail", dict(GOOD, security="none", username=""), token_from="/settings/mail"
    )
    assert resp.status_code == 302


def test_a_login_in_clear_saved_before_still_loads_and_the_page_says_so(box, people):
    from firmware.mail.settings import MailSettings
    from firmware.mail.smtp import MailServerError, SmtpSender

    ivan = people["ivan"]
    assert box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail").status_code == 302
    path = os.path.join(box.data_dir, "mail.json")
    saved = json.load(open(path))
    with open(path, "w") as f:
        json.dump(dict(saved, security="none"), f)  # as a release that took it saved it
    page = ivan.get("/settings/mail").get_data(as_text=True)
    assert 'id="in-clear"' in page and "no e-mail is sent until you choose starttls or tls" in page
    settings = box.services.mail.store.get()
    assert settings.security == "none" and settings.username == "box"
    # Its sender does not log in in clear: refused before it connects (nobody listens there).
    with pytest.raises(MailServerError, match='not logged in, since security "none"'):
        SmtpSender(settings, "smtp pass 99").send(None)
    assert not MailSettings(security="none").login_in_clear()


def test_alarm_recipients_tied_to_accounts_and_what_each_gets(box, people):
    """Alarm mails went to every recipient, whatever the line, while the pages show a line's
    alarm only to those who may see that line. A recipient is tied to an account now
    ("address (account)") and gets the alarms of the lines that account sees; an address
    tied to none still gets every alarm. The page says so, and what each one gets."""
    ivan = people["ivan"]
    box.add_user(people["alice"], "stella", ["staff"], [1])
    before = len(box.audit)
    for alarm_to, said in (
        ("ops@example.com (bob)", 'There is no account "bob"'),
        ("ops@example.com (stella)", '"stella" sees no alarms (a staff account)'),
        ("ops@example.com (sam), ops@example.com", "ops@example.com is listed twice"),
    ):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
        page = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 400 and said in page and 'id="error-alarm_to"' in page, alarm_to
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json")) and len(box.audit) == before
    alarm_to = "ivan@example.com (ivan), sam@example.com (sam), office@example.com"
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302
    settings = box.services.mail.store.get()
    assert settings.alarm_to == ("ivan@example.com", "sam@example.com", "office@example.com")
    assert settings.alarm_accounts == (("ivan@example.com", "ivan"), ("sam@example.com", "sam"))
    entry = box.audit.entries(limit=1, action="config_change")[0]
    assert entry.details["alarm_accounts"] == {"ivan@example.com": "ivan", "sam@example.com": "sam"}
    page = html.unescape(ivan.get("/settings/mail").get_data(as_text=True))
    assert 'value="%s"' % alarm_to in page
    assert "An address tied to no account gets every alarm, of the whole box and of every line." in page
    reach = page[page.index('id="alarm-reach"') :]
    assert "ivan@example.com: every alarm, of the whole box and of every line (ivan)" in reach
    assert "sam@example.com: the whole box's alarms and those of lines 1 and 2 (sam)" in reach
    assert "office@example.com: every alarm, of the whole box and of every line (tied to no account)" in reach


def test_a_report_recipient_tied_to_an_account_is_refused_saying_a_report_is_every_lines(box, people):
    """A scheduled report is the whole box's, of every line (docs/reports.md): tying its
    address to an account, as an alarm recipient's, would not limit it. "sam@example.com
    (sam)" was refused as "not an e-mail address", which left an installer thinking the
    tie only needed writing otherwise; it is refused saying why, and nothing is saved. The
    page says whom the reports are for."""
    ivan = people["ivan"]
    before = len(box.audit)
    resp = box.post(
        ivan, "/settings/mail", dict(GOOD, weekly_to="boss@example.com, sam@example.com (sam)"),
        token_from="/settings/mail",
    )  # fmt: skip
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-weekly_to"' in page
    assert (
        '"sam@example.com (sam)": a scheduled report is not tied to an account, as it is the '
        "whole box's, of every line, whoever gets it." in page
    )
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json")) and len(box.audit) == before
    note = page[page.index('id="schedule-scope"') :]
    assert note.startswith('id="schedule-scope">Each report is the whole box\'s, of every line')


def test_an_account_name_is_tied_as_login_takes_it(box, people):
    """ "sam@example.com (Sam)" was refused as no account "Sam", though login takes "Sam"
    as sam's (it lowercases the name): the account's name is taken as login takes it, and
    kept as the account's."""
    ivan = people["ivan"]
    alarm_to = "sam@example.com ( Sam ), office@example.com"  # (office: lines 3 and 4 need one)
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))[-800:]
    assert box.services.mail.store.get().alarm_accounts == (("sam@example.com", "sam"),)
    page = html.unescape(ivan.get("/settings/mail").get_data(as_text=True))
    assert "sam@example.com: the whole box's alarms and those of lines 1 and 2 (sam)" in page


def test_the_web_ui_start_moves_recipients_accounts_out_of_mail_json(box, people):
    """A development build of this release kept the recipients' accounts in mail.json, which the
    release before refuses (an unknown key): an update rolled back before it was marked
    good mailed no alarm at all. The web UI's start moves them to a file of their own."""
    from firmware.mail.settings import ACCOUNTS_FILE

    ivan = people["ivan"]
    alarm_to = "ivan@example.com (ivan), office@example.com"
    assert (
        box.post(
            ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail"
        ).status_code
        == 302
    )
    path = os.path.join(box.data_dir, "mail.json")
    saved = json.load(open(path))
    assert "alarm_accounts" not in saved
    os.unlink(os.path.join(box.data_dir, ACCOUNTS_FILE))
    with open(path, "w") as f:  # as a development build of this release saved it
        json.dump(dict(saved, alarm_accounts={"ivan@example.com": "ivan"}), f)
    box.web.settle()
    assert "alarm_accounts" not in json.load(open(path))
    assert json.load(open(os.path.join(box.data_dir, ACCOUNTS_FILE))) == {"ivan@example.com": "ivan"}
    assert box.services.mail.store.get().alarm_accounts == (("ivan@example.com", "ivan"),)


def test_a_list_that_leaves_a_lines_alarms_to_nobody_is_refused_naming_the_lines(box, people):
    """Each address tied to a supervisor of other lines: a line's alarm was mailed to
    nobody, only logged, and an installer who tied every address to a supervisor of lines
    1 to 3 never heard that line 4 stopped recording. Such a list is refused now, naming
    the lines, and nothing is saved; one a later change of accounts left so is said on the
    page, with what the box does meanwhile."""
    ivan = people["ivan"]
    before = len(box.audit)
    for alarm_to, said in (
        ("sam@example.com (sam), sue@example.com (sue)", "the alarms of line 4: every address"),
        ("sam@example.com (sam)", "the alarms of lines 3 and 4: every address"),
    ):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
        page = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 400 and 'id="error-alarm_to"' in page, alarm_to
        assert "No alarm recipient would be mailed %s is tied to an account that does not see" % said in page
        assert (
            "tie an address to an account that sees" in page
            and "or add an address tied to no account" in page
        )
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json")) and len(box.audit) == before
    # An address tied to an auditor (every line), or to no account, gives every line one.
    for alarm_to in (
        "sam@example.com (sam), audrey@example.com (audrey)",
        "sam@example.com (sam), office@example.com",
    ):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
        assert resp.status_code == 302, alarm_to
        assert 'id="alarm-unreached"' not in ivan.get("/settings/mail").get_data(as_text=True)
    # No recipient at all is a state of its own, kept as it was.
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=""), token_from="/settings/mail")
    assert resp.status_code == 302


def test_a_saved_list_an_account_change_left_without_a_recipient_for_a_line_is_said(box, people):
    ivan = people["ivan"]
    alarm_to = "sam@example.com (sam), sue@example.com (sue), audrey@example.com (audrey)"
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 302
    assert box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users").status_code == 302
    page = html.unescape(ivan.get("/settings/mail").get_data(as_text=True))
    said = page[page.index('id="alarm-unreached"') :].split("</p>")[0]
    assert "No alarm recipient gets the alarms of line 4: every address is tied to an account" in said
    assert "Until one does, they are mailed to every recipient, without their details, saying why." in said
    # Saving it again is refused, as the account is gone; and without its address too, until
    # line 4 has a recipient, whatever else is changed.
    resp = box.post(ivan, "/settings/mail", dict(GOOD, alarm_to=alarm_to), token_from="/settings/mail")
    assert resp.status_code == 400 and 'There is no account "audrey"' in html.unescape(
        resp.get_data(as_text=True)
    )
    alarm_to = "sam@example.com (sam), sue@example.com (sue)"
    resp = box.post(
        ivan,
        "/settings/mail",
        dict(GOOD, alarm_to=alarm_to, host="mail.example"),
        token_from="/settings/mail",
    )
    assert resp.status_code == 400 and box.services.mail.store.get().host == "127.0.0.1"
    assert "No alarm recipient would be mailed the alarms of line 4" in html.unescape(
        resp.get_data(as_text=True)
    )


# ---------------------------------------------------------------- sealed without the vault's key
WEAKER = 'id="password-weaker"'


def vault_secrets(box, tmp_path):
    """``(before the recorder handed the key over, with the key)``: SecretBoxes of ``box``'s
    data directory, made a box whose HAT has the MCU's key vault (the simulated MCU)."""
    run = str(tmp_path / "run")
    load_field_cipher(box.data_dir, vault=McuLink(SimMcu(SimClock()).bus), run_dir=run)
    return (
        SecretBox(box.data_dir, b"test", cipher=LazyFieldCipher(box.data_dir, None), on_trial=lambda: False),
        SecretBox(box.data_dir, b"test", cipher=LazyFieldCipher(box.data_dir, run), on_trial=lambda: False),
    )


def stored_password(box):
    with open(os.path.join(box.data_dir, "mail.json"), encoding="utf-8") as f:
        return json.load(f)["password"]


def test_a_password_sealed_without_the_vault_s_key_is_said_until_it_is_sealed_again(box, people, tmp_path):
    """Saved before the recorder had started since boot, the password is sealed without the
    vault's key (lksec1:), and the installer was not told; once the mail round has sealed it
    again (lksec2:) there is nothing to say."""
    ivan = people["ivan"]
    before, after = vault_secrets(box, tmp_path)
    store = box.services.mail.store
    store.secrets = before
    assert box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail").status_code == 302
    assert stored_password(box).startswith(PREFIX)
    page = ivan.get("/settings/mail").get_data(as_text=True)
    assert WEAKER in page
    note = html.unescape(page.split(WEAKER, 1)[1].split("</p>", 1)[0])
    assert "saved before the recorder had started" in note
    assert "sealed again with the HAT's key by itself once the recorder is running" in note
    assert "change the password at the mail provider" in note
    store.secrets = after  # the recorder has started: the mail round seals it again
    assert store.reseal() is True
    assert stored_password(box).startswith(VAULT_PREFIX)
    assert WEAKER not in ivan.get("/settings/mail").get_data(as_text=True)


def test_a_box_without_the_vault_says_nothing_of_it(box, people):
    """Every password there is sealed the one way there is (lksec1:): nothing better to wait for."""
    ivan = people["ivan"]
    assert box.post(ivan, "/settings/mail", GOOD, token_from="/settings/mail").status_code == 302
    assert stored_password(box).startswith(PREFIX)
    assert WEAKER not in ivan.get("/settings/mail").get_data(as_text=True)


@pytest.mark.parametrize("syslog", ["logs.example.com:²", "logs.example.com:٥١٤", "logs.example.com:"])
def test_a_syslog_port_not_in_digits_0_to_9_is_named_and_nothing_is_saved(box, people, syslog):
    """A superscript two passes str.isdigit() but not int(): the save failed with a server
    error instead of a message beside the field."""
    resp = box.post(people["ivan"], "/settings/mail", dict(GOOD, syslog=syslog), token_from="/settings/mail")
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-syslog"' in page
    assert "is not a host or host:port" in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


@pytest.mark.parametrize(
    "password, words",
    [
        ("a\nb", "has a control character"),
        ("smtp\x00pass 99", "has a control character"),
        ("p" * 1025, "at most 1024 characters (it has 1025)"),
    ],
)
def test_an_smtp_password_with_a_control_character_or_absurdly_long_is_named_and_nothing_saved(
    box, people, password, words
):
    """ "a\nb" was saved: a newline in the password breaks the SMTP AUTH exchange, so
    every alarm and report mail would fail to log in."""
    form = dict(GOOD, password=password)
    resp = box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail")
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-password"' in page and words in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


def test_the_mail_store_itself_refuses_an_smtp_password_with_a_control_character(box):
    """The page is not the only way to the store: it refuses such a password too."""
    store = box.services.mail.store
    with pytest.raises(ConfigError, match="control character") as caught:
        store.save(store.get(), new_password="a\r\nb")
    assert caught.value.field == "mail.password"
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("port", "\u0665\u0668\u0667", "The port is a number in digits 0-9"),
        ("port", "5_87", "The port is a number in digits 0-9"),
        ("rate_window_min", "\u0661\u0665", "The rate window is a number of minutes, in digits 0-9"),
    ],
)
def test_a_number_not_in_digits_0_to_9_is_named_and_nothing_is_saved(box, people, field, value, words):
    """int() took Arabic-Indic digits: the port "٥٨٧" was saved as 587."""
    form = dict(GOOD, **{field: value})
    resp = box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail")
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-%s"' % field in page and words in page
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


def test_an_address_twice_in_a_list_in_other_letters_or_in_a_report_s_list_is_refused(box, people):
    """ "Owner@Harbour.example, owner@harbour.example" among the alarm recipients, or an
    address twice in a report's list, was saved: the same mailbox, named twice, can get
    each mail twice. Refused, naming the address and the list, and nothing is saved."""
    ivan = people["ivan"]
    before = len(box.audit)
    for field, value, said in (
        ("alarm_to", "Owner@Harbour.example, owner@harbour.example", "owner@harbour.example is listed twice"),
        (
            "daily_to",
            "boss@example.com, boss@example.com",
            "boss@example.com is listed twice among the daily",
        ),
        (
            "weekly_to",
            "Boss@example.com, boss@EXAMPLE.com",
            "boss@EXAMPLE.com is listed twice among the weekly",
        ),
    ):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, **{field: value}), token_from="/settings/mail")
        page = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 400 and said in page and 'id="error-%s"' % field in page, (
            field,
            page[-3000:],
        )
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json")) and len(box.audit) == before


def test_a_server_written_with_its_port_is_refused_saying_where_the_port_goes(box, people):
    """ "smtp.example.com:587", as a mail provider's help page writes it, was refused as
    "'smtp.example.com:587' is not a host name or address", which did not say what to
    change: the port has a field of its own."""
    ivan = people["ivan"]
    for host in ("smtp.example.com:587", "[2001:db8::25]:465"):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, host=host), token_from="/settings/mail")
        page = html.unescape(resp.get_data(as_text=True))
        port = host.rsplit(":", 1)[1]
        said = "write the server without its port, and the port (%s) in the Port field" % port
        assert resp.status_code == 400 and said in page and 'id="error-host"' in page, host
    assert not os.path.exists(os.path.join(box.data_dir, "mail.json"))


def test_a_server_of_hex_letters_with_its_port_is_not_taken_for_an_ipv6_address(box, people):
    """ "abc.de:25" (only the letters a to f, a dot and a colon) passed a pattern of an
    IPv6 address's characters and was saved as a server the box could never reach: it is
    refused as any name with its port, while a real IPv6 address is still taken."""
    ivan = people["ivan"]
    for host in ("abc.de:25", "cafe:25", "dead.beef"):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, host=host), token_from="/settings/mail")
        page = html.unescape(resp.get_data(as_text=True))
        if host == "dead.beef":  # a host name
            assert resp.status_code == 302, page
            continue
        said = "write the server without its port, and the port (25) in the Port field"
        assert resp.status_code == 400 and said in page and 'id="error-host"' in page, host
    for host in ("2001:db8::25", "[2001:db8::25]", "192.0.2.25"):
        resp = box.post(ivan, "/settings/mail", dict(GOOD, host=host), token_from="/settings/mail")
        assert resp.status_code == 302, host


def test_a_sender_with_a_display_name_is_saved_as_written(box, people):
    """ "Harbour Box <recorder@harbour.example>" was refused as "not an e-mail address",
    though mail programs write a sender so; one that is neither is refused saying both ways."""
    ivan = people["ivan"]
    named = "Harbour Box <recorder@harbour.example>"
    resp = box.post(ivan, "/settings/mail", dict(GOOD, sender=named), token_from="/settings/mail")
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))
    assert box.services.mail.store.get().sender == named
    assert 'value="Harbour Box &lt;recorder@harbour.example&gt;"' in ivan.get("/settings/mail").get_data(
        as_text=True
    )
    resp = box.post(
        ivan, "/settings/mail", dict(GOOD, sender="Harbour Box <recorder>"), token_from="/settings/mail"
    )
    page = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 400 and 'id="error-sender"' in page
    assert "write the address alone, like recorder@example.com, or with a name before it" in page
    assert box.services.mail.store.get().sender == named
