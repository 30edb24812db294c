"""A settings form sent from a page loaded before someone else saved the same settings
is refused whole: it would have undone their change with nothing said (web/stale.py)."""

import html
import io
import re

from firmware.config import load_config
from web.services import site_settings_applier
from web.site import form_values

from support.web import page, wav_bytes


def form_of(client, url, form_id):
    """The fields of form ``form_id`` on the page at ``url``, as a browser would send
    them (text inputs and hidden fields, selected options, ticked boxes)."""
    text = page(client, url)
    form = re.search(r'<form[^>]*id="%s".*?</form>' % form_id, text, re.S).group(0)
    fields = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag or 'type="radio"' in tag:
            if " checked" in tag:
                fields.setdefault(name.group(1), []).append(value.group(1) if value else "on")
            continue
        fields[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = html.unescape(chosen.group(1)) if chosen else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = html.unescape(body)
    return fields


def site_changes(box):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if (e.action, e.target) == ("config_change", "site")]


def test_a_stale_settings_form_does_not_undo_another_installers_change(box, people):
    """Alice and Ivan have the Settings page open; Ivan makes line 2 private and saves.
    Alice then saves her page with a new organisation name: her form still says line 2
    is recorded, and it used to be recorded again, Ivan's change undone unnoticed."""
    # The settings put into the configuration, as on a real box.
    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    alices = form_of(people["alice"], "/settings", "settings-form")
    ivans = form_of(people["ivan"], "/settings", "settings-form")
    assert alices["based_on"] == ivans["based_on"]
    ivans["line-2-mode"] = "private"
    assert box.post(people["ivan"], "/settings", ivans, token_from="/settings").status_code == 302
    assert not box.web.site.settings().line(2).record
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"
    audited = site_changes(box)

    alices["organisation"] = "Acme Plumbing and Heating Ltd"
    resp = box.post(people["alice"], "/settings", alices, token_from="/settings")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409
    assert "saved by someone else after this page was loaded" in body
    # Nothing saved, nothing audited: line 2 stays private, the name as it was.
    site = box.web.site.settings()
    assert not site.line(2).record and site.organisation == "Acme Plumbing Ltd"
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"
    assert site_changes(box) == audited
    # The page shows the settings as saved (line 2 private), and sent again it saves.
    again = form_of(people["alice"], "/settings", "settings-form")
    assert again["line-2-mode"] == "private"
    assert 'value="%s"' % again["based_on"] in body
    again["organisation"] = "Acme Plumbing and Heating Ltd"
    assert box.post(people["alice"], "/settings", again, token_from="/settings").status_code == 302
    site = box.web.site.settings()
    assert not site.line(2).record and site.organisation == "Acme Plumbing and Heating Ltd"
    assert load_config(box.data_dir).policy.rules.mode(2) == "never"


def test_the_same_settings_form_sent_twice_is_no_conflict(box, people):
    """A second submit of the same form (a double click) asks for what is saved now: it
    is not refused, and saves nothing more."""
    form = form_of(people["ivan"], "/settings", "settings-form")
    form["organisation"] = "Acme Two Ltd"
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.web.site.settings().organisation == "Acme Two Ltd"
    assert len(site_changes(box)) == 1


def test_a_form_without_the_field_is_not_checked(box, people):
    form = form_values(box.web.site.settings(), box.LINES)
    form["organisation"] = "Acme Two Ltd"
    assert box.post(people["ivan"], "/settings", form, token_from="/settings").status_code == 302
    assert box.web.site.settings().organisation == "Acme Two Ltd"


def rules_changes(box, target):
    found = box.services.audit.entries(limit=1000, newest_first=False)
    return [e for e in found if (e.action, e.target) == ("config_change", target)]


def test_a_stale_rules_form_does_not_drop_a_list_of_numbers_saved_since(box, people):
    """Ivan adds a list of numbers never recorded (a doctor's); Alice, whose Rules page was
    loaded before, changes the shortest call recorded: her form has no such list, and
    saving it used to delete Ivan's, the doctor's calls recorded again."""
    alices = form_of(people["alice"], "/rules", "rules-form")
    ivans = form_of(people["ivan"], "/rules", "rules-form")
    ivans.update(
        {"numbers-0-name": "Doctor", "numbers-0-action": "exclude", "numbers-0-patterns": "01632 960001"}
    )
    assert box.post(people["ivan"], "/rules", ivans, token_from="/rules").status_code == 302
    assert [x.name for x in load_config(box.data_dir).policy.rules.numbers] == ["Doctor"]
    audited = rules_changes(box, "policy.rules")

    alices["min_duration_s"] = "5"
    resp = box.post(people["alice"], "/rules", alices, token_from="/rules")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "saved by someone else after this page was loaded" in body
    rules = load_config(box.data_dir).policy.rules
    assert [x.name for x in rules.numbers] == ["Doctor"] and rules.min_duration_s != 5
    assert rules_changes(box, "policy.rules") == audited
    # Shown as saved, the list in it; sent again from there, it saves and keeps the list.
    assert 'value="Doctor"' in body
    again = form_of(people["alice"], "/rules", "rules-form")
    again["min_duration_s"] = "5"
    assert box.post(people["alice"], "/rules", again, token_from="/rules").status_code == 302
    rules = load_config(box.data_dir).policy.rules
    assert [x.name for x in rules.numbers] == ["Doctor"] and rules.min_duration_s == 5


def test_a_stale_card_payment_form_does_not_undo_a_pause_code_saved_since(box, people):
    alices = form_of(people["alice"], "/rules", "card-payments")
    ivans = form_of(people["ivan"], "/rules", "card-payments")
    ivans["pci-pause_code"] = "*7"
    assert box.post(people["ivan"], "/rules/card-payments", ivans, token_from="/rules").status_code == 302
    assert load_config(box.data_dir).policy.pci.pause_code == "*7"
    audited = rules_changes(box, "policy.pci")

    alices["pci-auto_resume_s"] = "300"
    resp = box.post(people["alice"], "/rules/card-payments", alices, token_from="/rules")
    assert resp.status_code == 409
    pci = load_config(box.data_dir).policy.pci
    assert pci.pause_code == "*7" and pci.auto_resume_s != 300
    assert rules_changes(box, "policy.pci") == audited


def test_the_same_rules_form_sent_twice_is_no_conflict(box, people):
    form = form_of(people["ivan"], "/rules", "rules-form")
    form["min_duration_s"] = "5"
    assert box.post(people["ivan"], "/rules", form, token_from="/rules").status_code == 302
    # A double click: the second is sent from the same page, and asks for what is saved.
    assert box.post(people["ivan"], "/rules", form, token_from="/rules").status_code == 302
    assert len(rules_changes(box, "policy.rules")) == 1


# The E-mail page: a password is needed for the sender to log in; only whether one is set
# is in the form's fingerprint.
MAIL = {
    "host": "mail.example.com",
    "port": "587",
    "security": "starttls",
    "username": "box",
    "password": "smtp pass 99",
    "sender": "box@example.com",
    "alarm_to": "ops@example.com",
    "rate_window_min": "15",
}


def mail_changes(box):
    return rules_changes(box, "mail")


def test_a_stale_mail_form_does_not_drop_an_alarm_recipient_saved_since(box, people):
    """Ivan adds an alarm recipient; Alice, whose E-mail page was loaded before, changes
    the port: her form has the old list, and saving it used to take Ivan's recipient off,
    their alarms no longer mailed."""
    assert box.post(people["ivan"], "/settings/mail", MAIL, token_from="/settings/mail").status_code == 302
    alices = form_of(people["alice"], "/settings/mail", "mail-form")
    ivans = form_of(people["ivan"], "/settings/mail", "mail-form")
    assert alices["password"] == "" and "smtp pass 99" not in alices["based_on"]
    ivans["alarm_to"] = "ops@example.com, boss@example.com"
    assert box.post(people["ivan"], "/settings/mail", ivans, token_from="/settings/mail").status_code == 302
    audited = mail_changes(box)

    alices["port"] = "465"
    alices["security"] = "tls"
    resp = box.post(people["alice"], "/settings/mail", alices, token_from="/settings/mail")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "saved by someone else after this page was loaded" in body
    saved = box.services.mail.store.get()
    assert saved.alarm_to == ("ops@example.com", "boss@example.com") and saved.port == 587
    assert box.services.mail.store.password(saved) == "smtp pass 99"
    assert mail_changes(box) == audited
    # Shown as saved, both recipients in it; sent again from there, it saves and keeps them.
    again = form_of(people["alice"], "/settings/mail", "mail-form")
    assert again["alarm_to"] == "ops@example.com, boss@example.com" and again["port"] == "587"
    assert 'value="%s"' % again["based_on"] in body
    again.update(port="465", security="tls")
    assert box.post(people["alice"], "/settings/mail", again, token_from="/settings/mail").status_code == 302
    saved = box.services.mail.store.get()
    assert saved.alarm_to == ("ops@example.com", "boss@example.com") and saved.port == 465


def test_a_mail_form_from_before_a_password_was_set_is_refused(box, people):
    """Whether a password is set is in the fingerprint (its value is not): a page that
    said "not set" is older than a save that set one."""
    form = dict(MAIL, password="")
    assert box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail").status_code == 302
    alices = form_of(people["alice"], "/settings/mail", "mail-form")
    ivans = form_of(people["ivan"], "/settings/mail", "mail-form")
    ivans["password"] = "smtp pass 99"
    assert box.post(people["ivan"], "/settings/mail", ivans, token_from="/settings/mail").status_code == 302
    alices["rate_window_min"] = "30"
    resp = box.post(people["alice"], "/settings/mail", alices, token_from="/settings/mail")
    assert resp.status_code == 409
    assert box.services.mail.store.get().rate_window_s == 15 * 60


def test_a_new_mail_password_does_not_refuse_a_page_that_showed_one_set(box, people):
    """A password changed since, over one already set, is no conflict: the older page's
    empty password field keeps the one stored, and the fingerprint holds no password."""
    assert box.post(people["ivan"], "/settings/mail", MAIL, token_from="/settings/mail").status_code == 302
    alices = form_of(people["alice"], "/settings/mail", "mail-form")
    ivans = form_of(people["ivan"], "/settings/mail", "mail-form")
    ivans["password"] = "another pass 42"
    assert box.post(people["ivan"], "/settings/mail", ivans, token_from="/settings/mail").status_code == 302
    assert alices["based_on"] == form_of(people["ivan"], "/settings/mail", "mail-form")["based_on"]
    alices["rate_window_min"] = "30"
    assert box.post(people["alice"], "/settings/mail", alices, token_from="/settings/mail").status_code == 302
    saved = box.services.mail.store.get()
    assert saved.rate_window_s == 30 * 60
    assert box.services.mail.store.password(saved) == "another pass 42"


def test_the_same_mail_form_sent_twice_is_no_conflict(box, people):
    """A double click of a form that sets the password and adds a recipient: the second
    asks for what is saved by then, and saves and audits nothing more."""
    assert (
        box.post(
            people["ivan"], "/settings/mail", dict(MAIL, password=""), token_from="/settings/mail"
        ).status_code
        == 302
    )
    form = form_of(people["ivan"], "/settings/mail", "mail-form")
    form.update(password="smtp pass 99", alarm_to="ops@example.com, boss@example.com")
    assert box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail").status_code == 302
    audited = mail_changes(box)
    assert box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail").status_code == 302
    assert mail_changes(box) == audited
    saved = box.services.mail.store.get()
    assert saved.alarm_to == ("ops@example.com", "boss@example.com")
    assert box.services.mail.store.password(saved) == "smtp pass 99"


def test_a_stale_consent_form_does_not_turn_off_a_notice_saved_since(box, people):
    """Ivan sets the tone for outbound calls; Alice, whose Consent page was loaded before,
    changes the announcement's words: her form says no notice outbound, and saving it
    used to take the notice off, outbound callers recorded without being told."""
    alices = form_of(people["alice"], "/consent", "consent-form")
    ivans = form_of(people["ivan"], "/consent", "consent-form")
    ivans.update(inbound="announcement", outbound="tone")
    assert box.post(people["ivan"], "/consent", ivans, token_from="/consent").status_code == 302
    audited = rules_changes(box, "policy.consent")

    alices["text"] = "This call is recorded for training."
    resp = box.post(people["alice"], "/consent", alices, token_from="/consent")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "saved by someone else after this page was loaded" in body
    consent = load_config(box.data_dir).policy.consent
    assert consent.outbound == "tone" and consent.announcement.text != alices["text"]
    assert rules_changes(box, "policy.consent") == audited
    again = form_of(people["alice"], "/consent", "consent-form")
    assert again["outbound"] == "tone" and 'value="%s"' % again["based_on"] in body
    again["text"] = "This call is recorded for training."
    assert box.post(people["alice"], "/consent", again, token_from="/consent").status_code == 302
    consent = load_config(box.data_dir).policy.consent
    assert consent.outbound == "tone" and consent.announcement.text == "This call is recorded for training."


def test_a_new_announcement_file_does_not_refuse_the_notices_form(box, people):
    """The announcement's file has forms of its own (upload, the spoken default): not in
    the notices form's fingerprint, so a change of it refuses nothing there."""
    before = form_of(people["alice"], "/consent", "consent-form")
    resp = people["ivan"].post(
        "/consent/announcement",
        content_type="multipart/form-data",
        data={
            "csrf_token": box.token_of(people["ivan"], "/consent"),
            "announcement": (io.BytesIO(wav_bytes(3.0)), "n.wav"),
        },
    )
    assert resp.status_code == 302
    assert form_of(people["alice"], "/consent", "consent-form")["based_on"] == before["based_on"]
    before.update(inbound="tone", outbound="tone")
    assert box.post(people["alice"], "/consent", before, token_from="/consent").status_code == 302
    consent = load_config(box.data_dir).policy.consent
    assert (consent.inbound, consent.outbound) == ("tone", "tone") and consent.announcement.file


def test_the_same_consent_form_sent_twice_is_no_conflict(box, people):
    form = form_of(people["ivan"], "/consent", "consent-form")
    form.update(inbound="tone", outbound="tone", tone_interval_s="20")
    assert box.post(people["ivan"], "/consent", form, token_from="/consent").status_code == 302
    audited = rules_changes(box, "policy.consent")
    assert len(audited) == 1
    assert box.post(people["ivan"], "/consent", form, token_from="/consent").status_code == 302
    assert rules_changes(box, "policy.consent") == audited
    assert load_config(box.data_dir).policy.consent.warning_tone.interval_s == 20


def test_a_stale_retention_form_does_not_put_back_an_older_period(box, people):
    """Ivan sets the default period the business decided (30 days); Alice, whose Retention
    page was loaded before, changes the minutes between sweeps: her form has the older
    period, and saving it used to put it back, recordings kept longer or deleted sooner."""
    alices = form_of(people["alice"], "/retention", "retention-form")
    ivans = form_of(people["ivan"], "/retention", "retention-form")
    assert ivans["default_days"] != "30"
    ivans["default_days"] = "30"
    assert (
        box.post(
            people["ivan"], "/retention", dict(ivans, action="save"), token_from="/retention"
        ).status_code
        == 302
    )
    assert load_config(box.data_dir).policy.retention.default_days == 30
    audited = rules_changes(box, "policy.retention")

    alices.update(sweep_interval_min="30", action="save")
    resp = box.post(people["alice"], "/retention", alices, token_from="/retention")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "saved by someone else after this page was loaded" in body
    retention = load_config(box.data_dir).policy.retention
    assert retention.default_days == 30 and retention.sweep_interval_min != 30
    assert box.sweeper.settings.default_days == 30
    assert rules_changes(box, "policy.retention") == audited
    again = form_of(people["alice"], "/retention", "retention-form")
    assert again["default_days"] == "30" and 'value="%s"' % again["based_on"] in body
    again.update(sweep_interval_min="30", action="save")
    assert box.post(people["alice"], "/retention", again, token_from="/retention").status_code == 302
    retention = load_config(box.data_dir).policy.retention
    assert retention.default_days == 30 and retention.sweep_interval_min == 30


def test_a_preview_from_a_stale_retention_page_keeps_what_it_was_loaded_with(box, people):
    """A preview sends the form back as it was: with the fingerprint of the page it came
    from, not of the settings now, so saving from the preview is refused all the same."""
    alices = form_of(people["alice"], "/retention", "retention-form")
    ivans = form_of(people["ivan"], "/retention", "retention-form")
    ivans["default_days"] = "30"
    assert (
        box.post(
            people["ivan"], "/retention", dict(ivans, action="save"), token_from="/retention"
        ).status_code
        == 302
    )

    alices.update(sweep_interval_min="30", action="preview")
    resp = box.post(people["alice"], "/retention", alices, token_from="/retention")
    assert resp.status_code == 200 and 'value="%s"' % alices["based_on"] in resp.get_data(as_text=True)
    resp = box.post(people["alice"], "/retention", dict(alices, action="save"), token_from="/retention")
    assert resp.status_code == 409
    assert load_config(box.data_dir).policy.retention.default_days == 30


def test_the_same_retention_form_sent_twice_is_no_conflict(box, people):
    form = form_of(people["ivan"], "/retention", "retention-form")
    form.update(default_days="30", action="save")
    assert box.post(people["ivan"], "/retention", form, token_from="/retention").status_code == 302
    audited = rules_changes(box, "policy.retention")
    assert len(audited) == 1
    assert box.post(people["ivan"], "/retention", form, token_from="/retention").status_code == 302
    assert rules_changes(box, "policy.retention") == audited


def account_changes(box, name):
    return rules_changes(box, name)


def test_a_stale_roles_form_does_not_give_back_a_line_taken_away_since(box, people):
    """Ivan takes line 2 from Sam; Alice, whose Users page was loaded before, makes Sam an
    auditor too: her form still ticks line 2, and saving it used to give it back (granted
    with her key), Sam hearing a line's calls again that he had just been taken off."""
    alices = form_of(people["alice"], "/users", "roles-sam")
    ivans = form_of(people["ivan"], "/users", "roles-sam")
    assert alices["lines"] == ["1", "2"]
    ivans["lines"] = ["1"]
    assert box.post(people["ivan"], "/users/sam", ivans, token_from="/users").status_code == 302
    assert box.web.accounts.get("sam").lines == (1,)
    audited = account_changes(box, "sam")
    slot_before = box.services.keystore.slot_fingerprint("sam")

    alices["roles"] = ["supervisor", "auditor"]
    resp = box.post(people["alice"], "/users/sam", alices, token_from="/users")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409
    assert "sam's roles and lines were changed by someone else after this page was loaded" in body
    sam = box.web.accounts.get("sam")
    assert sam.lines == (1,) and set(sam.roles) == {"supervisor"}
    assert box.services.keystore.slot_fingerprint("sam") == slot_before
    assert account_changes(box, "sam") == audited
    # The form to add a user is not filled in with the roles and lines sent for Sam.
    new_user = re.search(r'<form[^>]*id="new-user".*?</form>', body, re.S).group(0)
    assert " checked" not in new_user
    # Shown as saved, line 2 not ticked; sent again from there, it saves without it.
    again = form_of(people["alice"], "/users", "roles-sam")
    assert again["lines"] == ["1"] and 'value="%s"' % again["based_on"] in body
    again["roles"] = ["supervisor", "auditor"]
    assert box.post(people["alice"], "/users/sam", again, token_from="/users").status_code == 302
    sam = box.web.accounts.get("sam")
    assert sam.lines == (1,) and set(sam.roles) == {"supervisor", "auditor"}


def test_a_change_of_another_account_does_not_refuse_a_roles_form(box, people):
    """Each account's form carries its own roles and lines only."""
    alices = form_of(people["alice"], "/users", "roles-sam")
    audreys = form_of(people["ivan"], "/users", "roles-audrey")
    audreys["roles"] = ["auditor", "installer"]
    assert box.post(people["ivan"], "/users/audrey", audreys, token_from="/users").status_code == 302
    assert set(box.web.accounts.get("audrey").roles) == {"auditor", "installer"}
    alices["lines"] = ["1"]
    assert box.post(people["alice"], "/users/sam", alices, token_from="/users").status_code == 302
    assert box.web.accounts.get("sam").lines == (1,)


def test_the_same_roles_form_sent_twice_is_no_conflict(box, people):
    form = form_of(people["alice"], "/users", "roles-sam")
    form["lines"] = ["1", "2", "3"]
    assert box.post(people["alice"], "/users/sam", form, token_from="/users").status_code == 302
    audited = account_changes(box, "sam")
    resp = box.post(people["alice"], "/users/sam", form, token_from="/users")
    assert resp.status_code == 302 and "done=unchanged" in resp.headers["Location"]
    assert account_changes(box, "sam") == audited
    assert box.web.accounts.get("sam").lines == (1, 2, 3)


def test_a_stale_retention_form_with_a_mistake_is_refused_as_stale_first(box, people):
    """Checked for mistakes first, a stale form with one got the 400, and only when sent
    again, corrected, the 409: the correction typed for nothing. As the Settings and Rules
    forms, staleness is said first; nothing is saved either way."""
    alices = form_of(people["alice"], "/retention", "retention-form")
    ivans = form_of(people["ivan"], "/retention", "retention-form")
    ivans.update(default_days="30", action="save")
    assert box.post(people["ivan"], "/retention", ivans, token_from="/retention").status_code == 302
    audited = rules_changes(box, "policy.retention")

    alices.update(sweep_interval_min="not a number", action="save")
    resp = box.post(people["alice"], "/retention", alices, token_from="/retention")
    body = html.unescape(resp.get_data(as_text=True))
    assert resp.status_code == 409 and "saved by someone else after this page was loaded" in body
    assert 'value="not a number"' not in body  # the page as saved, to make the change on
    retention = load_config(box.data_dir).policy.retention
    assert retention.default_days == 30 and rules_changes(box, "policy.retention") == audited
    # From the page as saved, the same mistake is named (400), and still nothing is saved.
    again = form_of(people["alice"], "/retention", "retention-form")
    again.update(sweep_interval_min="not a number", action="save")
    resp = box.post(people["alice"], "/retention", again, token_from="/retention")
    assert resp.status_code == 400 and 'id="error-sweep_interval_min"' in resp.get_data(as_text=True)
    assert load_config(box.data_dir).policy.retention == retention
    assert rules_changes(box, "policy.retention") == audited
