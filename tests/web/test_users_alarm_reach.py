"""The Users page says, after a change of accounts, when the alarm recipients (E-mail page)
no longer reach some line, and what an address tied to the changed account gets now.

A list of alarm recipients that leaves a line's alarms to nobody who may see that line is
refused on the E-mail page, but a later change on the Users page (an account deleted, a
supervisor's lines narrowed, a role changed) can leave a saved list so; the installer who
made it found out only on the E-mail page or the checklist, later. The change itself is
never refused: taking a leaver's access away comes first.

sam supervises lines 1 and 2, sue line 3; audrey is an auditor (every line); alice the admin."""

import html
import os

from .test_mail_settings import GOOD


def _save_recipients(box, people, alarm_to):
    form = dict(GOOD, alarm_to=alarm_to)
    resp = box.post(people["ivan"], "/settings/mail", form, token_from="/settings/mail")
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))[-800:]


def _after(client, resp):
    """The Users page the change's redirect leads to, as its reader sees it."""
    assert resp.status_code == 302, html.unescape(resp.get_data(as_text=True))[-800:]
    return html.unescape(client.get(resp.headers["Location"]).get_data(as_text=True))


def _said(page, id_):
    return page[page.index('id="%s"' % id_) :].split("</p>")[0]


def test_deleting_the_account_a_line_was_reached_through_says_so_and_is_done(box, people):
    _save_recipients(box, people, "sam@example.com (sam), sue@example.com (sue), audrey@example.com (audrey)")
    resp = box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users")
    page = _after(people["alice"], resp)
    assert box.web.accounts.get("audrey") is None  # done all the same
    said = _said(page, "alarm-unreached")
    assert "After this change: No alarm recipient gets the alarms of line 4: every address is tied" in said
    assert "Until one does, they are mailed to every recipient, without their details, saying why." in said
    assert "on the E-mail page tie an address to an account that sees it" in said
    assert 'href="/settings/mail"' in said
    # What its address gets now, as recipients_for mails it: the whole box's alarms only.
    tied = _said(page, "alarm-tied-1")
    assert tied.startswith('id="alarm-tied-1">audrey@example.com, an alarm recipient on the')
    assert "was tied to audrey's account: it now gets the whole box's alarms only" in tied
    assert "an account made again with the name audrey would have" in tied
    assert 'id="alarm-tied-2"' not in page
    # The E-mail page says the same of what it gets.
    mail = html.unescape(people["ivan"].get("/settings/mail").get_data(as_text=True))
    assert 'audrey@example.com: the whole box\'s alarms only ("audrey" is not an account' in mail
    # Made again, the account takes that address back, and line 4 has a recipient again.
    box.add_user(people["alice"], "audrey", ["auditor"])
    page = html.unescape(people["alice"].get("/users?done=added&name=audrey").get_data(as_text=True))
    assert 'id="alarm-unreached"' not in page
    assert (
        "audrey@example.com, an alarm recipient on the E-mail page tied to audrey's account, now gets "
        "every alarm, of the whole box and of every line (audrey)." in _strip_links(page)
    )


def _strip_links(page):
    return page.replace('<a href="/settings/mail">', "").replace("</a>", "")


def test_a_deleted_supervisor_whose_lines_others_reach_is_said_of_its_address_only(box, people):
    _save_recipients(box, people, "sam@example.com (sam), audrey@example.com (audrey), sue@example.com (sue)")
    resp = box.post(people["alice"], "/users/sam/delete", {}, token_from="/users")
    assert "removed=sam" in resp.headers["Location"]
    page = _after(people["alice"], resp)
    assert 'id="rekey-advised"' in page and 'id="alarm-unreached"' not in page
    assert "sam@example.com, an alarm recipient on the" in _said(page, "alarm-tied-1")
    assert 'id="alarm-tied-2"' not in page


def test_narrowing_a_supervisors_lines_or_changing_a_role_says_which_line_is_left(box, people):
    alice = people["alice"]
    box.add_user(alice, "stella", ["supervisor"], [4])
    _save_recipients(box, people, "sam@example.com (sam), sue@example.com (sue), stella@example.com (stella)")
    resp = box.post(alice, "/users/sam", {"roles": ["supervisor"], "lines": ["1"]}, token_from="/users")
    page = _after(people["alice"], resp)
    assert box.web.accounts.get("sam").lines == (1,)
    assert "sam changed" in page
    assert "No alarm recipient gets the alarms of line 2: every address" in _said(page, "alarm-unreached")
    assert (
        "sam@example.com, an alarm recipient on the E-mail page tied to sam's account, now gets "
        "the whole box's alarms and those of line 1 (sam)." in _strip_links(page)
    )
    # stella made staff of line 4: she sees no alarms, and her address gets the box's only.
    resp = box.post(alice, "/users/stella", {"roles": ["staff"], "lines": ["4"]}, token_from="/users")
    page = _after(people["alice"], resp)
    assert box.web.accounts.get("stella").roles == frozenset({"staff"})
    assert "the alarms of lines 2 and 4: every address" in _said(page, "alarm-unreached")
    said = _strip_links(page)
    assert (
        "stella@example.com, an alarm recipient on the E-mail page tied to stella's account, now gets "
        'the whole box\'s alarms only ("stella" is not an account that sees alarms now).' in said
    )


def test_a_change_that_leaves_every_line_reached_says_nothing_of_it(box, people):
    _save_recipients(box, people, "sam@example.com (sam), office@example.com")
    resp = box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users")
    page = _after(people["alice"], resp)
    assert 'id="alarm-unreached"' not in page and 'id="alarm-tied-1"' not in page
    # Nor the page seen again without a change.
    page = people["alice"].get("/users").get_data(as_text=True)
    assert 'id="alarm-unreached"' not in page


def test_recipients_that_cannot_be_read_do_not_stop_a_deletion_and_the_page_says_so(box, people):
    with open(os.path.join(box.data_dir, "mail.json"), "w") as f:
        f.write("{not json")
    resp = box.post(people["alice"], "/users/audrey/delete", {}, token_from="/users")
    page = _after(people["alice"], resp)
    assert box.web.accounts.get("audrey") is None
    said = _said(page, "alarm-unreadable")
    assert "the e-mail settings cannot be read (mail.json is not valid JSON" in said
    assert 'id="alarm-unreached"' not in page


def test_disabling_the_account_an_address_is_tied_to_says_what_it_gets_and_enabling_restores_it(box, people):
    """A disabled account's address is mailed as a deleted one's (a leaver's address gets no
    line's details); the Users page and the E-mail page say so, and enabling it gives the
    address that account's lines' alarms again."""
    _save_recipients(box, people, "sam@example.com (sam), audrey@example.com (audrey)")
    resp = box.post(people["alice"], "/users/sam/disable", {}, token_from="/users")
    page = _strip_links(_after(people["alice"], resp))
    assert box.web.accounts.get("sam").disabled_us is not None
    assert (
        "sam@example.com, an alarm recipient on the E-mail page tied to sam's account, now gets the whole "
        "box's alarms only (sam is disabled: a line's alarms again once an installer enables it)." in page
    )
    assert 'id="alarm-unreached"' not in page  # audrey sees every line
    mail = html.unescape(people["ivan"].get("/settings/mail").get_data(as_text=True))
    assert "sam@example.com: the whole box's alarms only (sam is disabled" in mail
    resp = box.post(people["alice"], "/users/sam/enable", {}, token_from="/users")
    page = _strip_links(_after(people["alice"], resp))
    assert (
        "sam@example.com, an alarm recipient on the E-mail page tied to sam's account, now gets the whole "
        "box's alarms and those of lines 1 and 2 (sam)." in page
    )
