"""The dashboard says what is still to do to make the box compliant: the checklist's
safeguards not met yet, to those who may read the checklist."""

import html
import re

from support.web import chains_checked, page


def todo(html):
    """The safeguards the dashboard lists as still to do, as ``{number: text}``."""
    return {
        int(n): re.sub(r"<[^>]+>", "", text)
        for n, text in re.findall(r'<li class="status-\w+" id="todo-(\d+)" value="\1">(.*?)</li>', html)
    }


def test_a_box_just_set_up_says_on_its_dashboard_what_is_left_to_do(box):
    admin = box.do_setup()
    html = page(admin, "/")
    items = todo(html)
    # No lawful basis was chosen in the wizard, and this box's notices are off: both red.
    assert items[16].startswith("A lawful basis for recording (red): no lawful basis")
    assert items[5].startswith("Callers told that calls are recorded (red)")
    assert items[9].startswith("A retention period (amber): no retention period")
    # With no notice either way, none can be given (6, "the notice is actually given").
    assert items[6].startswith("The notice is actually given (red)")
    assert list(items)[:3] == [5, 6, 16]  # red first
    # Nobody downloaded a copy of the key store, which a dead card's recordings need.
    assert items[18].startswith("A backup of the key store (amber): no backup of the key store")
    assert 1 not in items and 2 not in items  # a purpose and the ICO registration were given
    assert 'href="/documents/checklist" id="todo-checklist"' in html


def test_a_reason_s_see_9_names_a_number_the_dashboard_shows(box):
    """A reason names another safeguard by its number ("retention sweeps run, but no retention
    period is set (see 9)"): the dashboard's list was bulleted, so 9 was nowhere on the page.
    It is numbered as the checklist is, each item by its safeguard's number."""
    admin = box.do_setup()
    html = page(admin, "/")
    listed = re.search(r'<ol id="compliance-todo">(.*?)</ol>', html, re.S)
    assert listed, "the to-do list is not a numbered list"
    items = todo(listed.group(1))
    assert "(see 9)" in items[10]
    assert 9 in items


def test_a_safeguard_met_leaves_the_list(box, people):
    ivan = people["ivan"]
    assert 5 in todo(page(ivan, "/"))
    resp = box.post(
        ivan,
        "/consent",
        {"inbound": "announcement", "outbound": "tone", "text": "This call may be recorded."},
        token_from="/consent",
    )
    assert resp.status_code == 302
    assert 5 not in todo(page(ivan, "/"))


def test_only_those_who_may_read_the_checklist_see_it(box, people):
    assert todo(page(people["audrey"], "/"))
    html = page(people["sam"], "/")
    assert "Still to do for compliance" not in html and not todo(html)
    assert people["sam"].get("/documents/checklist").status_code == 403


def test_the_health_panel_says_the_key_store_backup_and_the_dpia_review_once_as_they_are_now(box, people):
    """The checklist's ambers that are alarms (the key store's backup, the DPIA's review) are
    on the health panel for everyone who sees alarms, a supervisor who never opens the
    checklist too: each once, in its alarm's words with what to do (its occurrence in the
    history not listed again), and no longer once it is done, before the round clears it."""
    from firmware.alarms import reminder_words

    from .test_documents import back_up_key_store, change_site

    change_site(box, dpia_reviewed="2025-01-15")  # the box's day: Mon 2 Mar 2026
    box.alarm_log.set("keystore_backup_stale", True, message="no backup of the key store was made")
    box.alarm_log.set("dpia_review_due", True, message="the DPIA was last reviewed on Wed 15 Jan 2025")

    def said():
        alarms = people["sam"].get("/api/health").get_json()["alarms"]
        return [a for a in alarms if "key store" in a or "DPIA" in a]

    assert said() == [reminder_words("keystore_backup_stale"), reminder_words("dpia_review_due")]
    assert said()[0] == (
        "The key store has no current backup: a dead card would lose every recording. An installer "
        "with a key slot that opens every line downloads a new backup in Settings (Key store backup) "
        "and keeps it off the box, with the recovery key."
    )
    assert back_up_key_store(box, people["alice"]).status_code == 200
    change_site(box, dpia_reviewed="2026-02-20")
    assert said() == []


def test_the_dashboard_shows_while_the_audit_trail_is_sealed(box, people, monkeypatch):
    """Before the recorder has started the box's key is not open, and the audit trail's
    sealed entries (the key store's backups) cannot be read: the dashboard, which says then
    why the recorder is not up, is shown to a supervisor all the same, and the health panel
    to all, the checklist's reminders not said (their alarms stay as they are). It was the
    "Personal data locked" page."""
    from .test_documents import back_up_key_store

    assert back_up_key_store(box, people["alice"]).status_code == 200
    seal_the_trail(box, monkeypatch)
    resp = people["sam"].get("/")
    assert resp.status_code == 200 and "Personal data locked" not in resp.get_data(as_text=True)
    for who in ("sam", "ivan"):
        assert people[who].get("/api/health").status_code == 200, who
    # A backup was made: 18 cannot be told now, which is no reminder to make one.
    assert not [a for a in people["sam"].get("/api/health").get_json()["alarms"] if "key store" in a]


def test_the_dpia_review_is_judged_while_the_key_store_backups_are_sealed(box, people, monkeypatch):
    """Before the recorder has started the key store's backups cannot be read: their
    reminder is left as it is, but the DPIA's review needs nothing sealed and is raised or
    cleared as usual. Neither was told then (nothing at all), and dpia_review_due stayed as
    it was until the recorder started."""
    from web.documents import checklist_reminders

    from .test_documents import change_site

    change_site(box, dpia_reviewed="2025-01-15")  # the box's day: Mon 2 Mar 2026
    seal_the_trail(box, monkeypatch)
    assert checklist_reminders(box.web) == {
        "dpia_review_due": "the DPIA was last reviewed on Wed 15 Jan 2025, over a year ago: look at it "
        "again (Settings)"
    }
    change_site(box, dpia_reviewed="2026-02-20")
    assert checklist_reminders(box.web) == {"dpia_review_due": False}


def seal_the_trail(box, monkeypatch):
    """The audit trail's sealed entries (the key store's backups) cannot be read, as before
    the recorder has started after a boot and left the box's key open."""
    from firmware.storage.fieldseal import FieldSealError

    entries = box.audit.entries

    def sealed(*args, **kwargs):
        if kwargs.get("action") == "key_backup":
            raise FieldSealError("the audit trail's details are sealed with the key in the HAT's MCU vault")
        return entries(*args, **kwargs)

    monkeypatch.setattr(box.audit, "entries", sealed)


UNTOLD = (
    "A backup of the key store (amber): whether the key store has a current backup cannot be "
    "told until the recorder has started and opened the box's key"
)


def test_an_installer_and_an_auditor_see_what_is_left_to_do_while_the_audit_trail_is_sealed(
    box, people, monkeypatch
):
    """The dashboard is where an installer reads why the recorder is not up, and its "Still to
    do for compliance" and the checklist were the "Personal data locked" page while the key
    store's backups (sealed entries) could not be read. Safeguard 18 is amber, in words saying
    it cannot be told yet, and every other safeguard is as it is."""
    from .test_documents import statuses

    chains_checked(box)
    before = {n: text for n, text in todo(page(people["ivan"], "/")).items() if n != 18}
    checks = statuses(people["audrey"])
    seal_the_trail(box, monkeypatch)
    for who in ("ivan", "audrey"):
        items = todo(page(people[who], "/"))
        assert html.unescape(items.pop(18)) == UNTOLD, who
        assert items == before, who
    assert people["audrey"].get("/documents/checklist").status_code == 200
    sealed = statuses(people["audrey"])
    status, reason = sealed.pop(18)
    assert status == "amber" and html.unescape(reason) == UNTOLD.split(": ", 1)[1]
    assert sealed == {n: c for n, c in checks.items() if n != 18}
    assert people["ivan"].get("/documents/checklist.pdf").status_code == 200


def test_the_count_says_how_many_are_not_met_and_how_many_met_in_part(box):
    """It read "13 of the checklist's safeguards are not met yet" of three reds and ten
    ambers: those met in part (or due soon) were counted as not met."""
    text = page(box.do_setup(), "/")
    statuses = re.findall(r'<li class="status-(\w+)" id="todo-\d+" value="\d+">', text)
    red, amber = statuses.count("red"), statuses.count("amber")
    assert red > 1 and amber > 1 and red + amber == len(statuses)
    said = re.search(r'<p id="todo-count">(.*?)</p>', text).group(1)
    assert html.unescape(said) == (
        "Of the checklist's safeguards, %d are not met (red) and %d are met in part or due soon (amber)."
        % (red, amber)
    )


def test_the_count_leaves_out_a_colour_with_none_and_says_one_as_one():
    from types import SimpleNamespace

    from web.views.dashboard import todo_count

    def of(*statuses):
        return todo_count([SimpleNamespace(status=s) for s in statuses])

    assert of("red") == "Of the checklist's safeguards, 1 is not met (red)."
    assert of("amber", "amber") == "Of the checklist's safeguards, 2 are met in part or due soon (amber)."
    assert of("red", "red", "amber") == (
        "Of the checklist's safeguards, 2 are not met (red) and 1 is met in part or due soon (amber)."
    )


def test_access_audited_says_its_first_check_is_running_only_while_it_is(box, people, monkeypatch):
    """It read "the audit trail is being checked since the web UI started: look again in a
    minute", and said so too when no check was running."""
    from web import ChainCheck
    from web.documents import audit_unchecked

    from support.web import HeldWholeCheck

    held = HeldWholeCheck(monkeypatch, box.services.audit)
    items = todo(page(people["ivan"], "/"))
    assert html.unescape(items[12]) == (
        "Access audited (amber): the first check of the whole audit trail since the web UI started "
        "is running now: look again in a minute for its result"
    )
    held.release()
    box.web.wait_whole_checks()
    assert 12 not in todo(page(people["ivan"], "/"))  # it verifies: green
    # No whole check made, none running (the web UI stopping): not "running now".
    said = audit_unchecked(ChainCheck([], None, False, None, None))
    assert said and "running" not in said and "not been checked" in said
