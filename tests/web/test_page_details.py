"""What a person sees on a page, beyond what it does: the menu, the alarm banner, words.

Found by looking at every page at 1280 and 390 px (tests/web/test_responsive.py
keeps the widths in check in a browser); these are the fast checks of what was fixed.
"""

import re


def _current(html):
    """The menu items marked as the current page."""
    menu = re.search(r'<nav aria-label="Main menu" id="menu">(.*?)</nav>', html, re.S).group(1)
    return re.findall(r'aria-current="page">([^<]+)<', menu)


def test_one_menu_item_is_current_even_where_two_share_a_section(people):
    ivan, sam = people["ivan"], people["sam"]
    assert _current(ivan.get("/documents/checklist").get_data(as_text=True)) == ["Checklist"]
    assert _current(ivan.get("/documents/staff-notice").get_data(as_text=True)) == ["Staff notice"]
    assert _current(sam.get("/disclosures").get_data(as_text=True)) == ["Disclosures"]
    assert _current(sam.get("/sar").get_data(as_text=True)) == ["Subject access"]


def test_a_page_that_does_not_exist_keeps_the_menu_of_whoever_is_logged_in(box, people):
    resp = people["sam"].get("/no-such-page")
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert 'id="menu"' in html and 'id="logout"' in html
    assert 'id="menu"' not in box.client().get("/no-such-page").get_data(as_text=True)


def test_the_alarm_banner_says_where_to_read_about_alarms(box, people):
    box.alarm_log.set("line_fault", True, line=2, message="no line voltage on line 2")
    html = people["sam"].get("/calls").get_data(as_text=True)
    banner = re.search(r'<div class="alarm-banner" id="alarm-banner".*?</div>', html, re.S).group(0)
    assert 'href="/help/alarms"' in banner and 'href="/alarms"' in banner
    assert 'aria-label="Acknowledge: Line fault on line 2"' in banner
    # Above the page's own help link, so it never sits beside it.
    assert html.index('id="alarm-banner"') < html.index('id="page-help"')


def test_the_alarm_history_is_one_card_per_alarm_on_a_phone(box, people):
    box.alarm_log.set("disk_low", True, message="the card is 92% full")
    html = people["sam"].get("/alarms").get_data(as_text=True)
    assert '<table id="alarm-history" class="cards">' in html
    assert 'data-label="Acknowledged"' in html
    assert "Raised (UTC)" not in html  # the times are in the box's zone
    # A screen reader hears each row by its alarm and each button by what it acknowledges.
    assert '<th scope="col">No.</th>' in html and '<th scope="row" data-label="Alarm">' in html
    assert re.search(r'aria-label="Acknowledge alarm \d+: [^"]+">Acknowledge</button>', html)


def test_the_upload_and_the_staff_page_label_what_they_show(box, people):
    html = people["ivan"].get("/updates").get_data(as_text=True)
    assert 'aria-labelledby="upload-progress-text"' in html and 'id="upload-progress-text"' in html
    box.add_user(people["alice"], "stella", ["staff"], [1])
    mine = box.login("stella").get("/my-line").get_data(as_text=True)
    assert "<h2>Line 1</h2>" in mine  # not "Line 1 (line 1)"
    assert 'aria-describedby="concern-hint"' in mine


def test_every_control_says_whose_and_what_it_is(box, people):
    """An accessibility review: controls a screen reader named "1", "Delete", or not at all."""
    users = people["ivan"].get("/users").get_data(as_text=True)
    row = users.split('id="user-audrey"')[1].split("</tr>")[0]
    assert 'aria-label="Line 1 for audrey"' in row and 'aria-label="Delete audrey"' in row
    assert "placeholder" not in row.split("users/audrey/password")[0]  # a real label, not a placeholder
    mail = people["ivan"].get("/settings/mail").get_data(as_text=True)
    for every in ("daily", "weekly", "monthly"):
        assert re.search(
            r'<select name="%s_fmt" aria-label="%s report as">' % (every, every.capitalize()), mail
        )
    rules = people["ivan"].get("/rules").get_data(as_text=True)
    assert "<h3>" not in rules  # no heading level skipped after the page's h1


def test_an_alarm_whose_message_says_its_title_again_reads_it_once(box, people):
    box.alarm_log.set(
        "consent_notice_failed",
        True,
        line=2,
        message="the consent notice could not be given: the announcement file is missing",
    )
    html = people["sam"].get("/alarms").get_data(as_text=True)
    banner = re.search(r'<div class="alarm-banner" id="alarm-banner".*?</div>', html, re.S).group(0)
    assert (
        "The consent notice could not be given</strong> on line 2: the announcement file is missing <span"
        in banner
    )
    history = re.search(r'<table id="alarm-history".*?</table>', html, re.S).group(0)
    assert '<td data-label="Message">the announcement file is missing</td>' in history
    assert "the consent notice could not be given:" not in html


def test_an_alarm_about_a_call_links_to_it_for_whoever_may_see_the_call(box, people):
    row = box.alarm_log.set(
        "recording_failed", True, line=2, message="no space left", call_id=7, call_us=1_782_900_000_000_000
    )
    box.alarm_log.set("disk_full", True, message="the disk is full")
    link = '<a href="/calls/7" id="alarm-call-%d">The call</a>' % row["id"]
    for name, sees in (("sam", True), ("audrey", True), ("sue", False), ("ivan", False)):
        html = people[name].get("/alarms").get_data(as_text=True)
        assert (link in html) is sees, name
        assert html.count('id="alarm-call-') == (1 if sees else 0), name


def test_each_sentence_of_the_help_pages_starts_with_a_capital():
    """The Rekey help had a sentence starting in lower case ("... the Users page. every key
    store backup ..."). Each help page's sentences, read as shown (tags and template code
    left out), start with a capital letter."""
    import glob
    import os

    templates = os.path.join(os.path.dirname(__file__), "..", "..", "web", "templates")
    found = []
    for path in sorted(glob.glob(os.path.join(templates, "help_*.html"))):
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"\{[{%#].*?[}%#]\}", " ", f.read(), flags=re.S)
        text = re.sub(r"<[^>]+>", " ", text)
        found += [
            (os.path.basename(path), m.group(0)) for m in re.finditer(r"[a-z]{2,}[.!?] +[a-z]\w*", text)
        ]
    assert found == []
