"""Every page in Chromium at 1280 px and at a 390 px phone: no sideways scroll on any
of them (the box's and the central archive viewer's); a screenshot of each page at
both widths in tests/artifacts/pages/ (look at them after a UI change).

The box is the web app over a simulated call's data directory (see
test_call_story.Story), with an alarm on (its banner is on every page), a rekey
running (its progress) and the updates inbox, served on a local port. The
archive viewer reads a bucket of sealed call records, served on another.
"""

import base64
import datetime
import json
import re
import threading
from pathlib import Path

import pytest
from playwright import sync_api
from werkzeug.serving import make_server

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.alarmlog import AlarmLog
from firmware.archive import sealing
from firmware.archive.viewer import rebuild_index
from firmware.clock import SimClock
from firmware.mail.service import MailService
from firmware.mail.settings import MailSettings
from firmware.reports.source import ReportSource
from firmware.rights import RightsRegister
from firmware.secretbox import SecretBox
from firmware.storage.fieldseal import LazyFieldCipher, load_field_cipher
from firmware.storage.keystore import Argon2Params, KeyStore
from firmware.update.inbox import UpdateInbox, inbox_dir
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST
from web.rekeyjob import RekeyJob

from .test_archive_access import MemoryBucket
from .test_browser import ARGS, CHROMIUM
from .test_call_story import Story
from .test_pause import FakeLive

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "pages"
PAGES = [
    ("dashboard", "/"),
    ("calls", "/calls"),
    ("call", "/calls/1"),
    ("phonebook", "/phonebook"),
    ("audit", "/audit"),
    ("users", "/users"),
    ("settings", "/settings"),
    ("mail", "/settings/mail"),
    ("rules", "/rules"),
    ("consent", "/consent"),
    ("retention", "/retention"),
    ("alarms", "/alarms"),
    ("my-line", "/my-line"),
    ("updates", "/updates"),
    ("rekey", "/rekey"),
    ("help", "/help"),
    ("help-call", "/help/call"),
    ("help-rekey", "/help/rekey"),
    ("security", "/security"),
    ("sar", "/sar?from=2026-03-02&to=2026-03-02"),
    ("disclosures", "/disclosures"),
    ("deletions", "/retention/deletions"),
    ("reports", "/reports?from=2026-03-02&to=2026-03-02"),
    ("checklist", "/documents/checklist"),
    ("requests", "/requests"),
    ("request", "/requests/1"),
    ("staff-notice", "/documents/staff-notice"),
    ("year-review", "/documents/year-review?from=2026-03-01&to=2026-03-31"),
    ("breach-scope", "/audit/breach-scope?account=alice&from=2026-03-01&to=2026-03-31"),
]
ARCHIVE_PAGES = [
    ("archive-calls", "/"),
    ("archive-call", "/calls/leeds/1"),
    ("archive-reports", "/reports?from=2026-03-02&to=2026-03-02"),
    ("archive-sites", "/sites"),
    ("archive-audit", "/audit"),
    ("archive-help", "/help"),
    ("archive-missing", "/no-such-page"),
]
OVERFLOW_JS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# Tables (or their scrolling boxes) wider than the screen, with no visible hint just
# before them that they scroll sideways: a phone shows no scroll bar, so the columns
# past the edge go unseen.
UNHINTED_JS = """[...document.querySelectorAll("table, .table-scroll")]
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .filter(box => {
    const hint = box.previousElementSibling;
    return !(hint && hint.classList.contains("scroll-hint") && hint.offsetParent !== null);
  })
  .map(box => box.id || box.className || box.tagName)"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, synth):
    story = Story(tmp_path_factory.mktemp("pages"), synth)
    client = story.client()
    web = story.app.extensions["linekeeper"]
    web.phonebook.put("01632960777", "Acme Supplies", "uk")
    web.notes.add(story.call_id, "Customer asked for a call back on Tuesday.", "alice")
    # A data subject's request in the register (its list and its page).
    register = RightsRegister(story.data, story.services.cipher)
    register.add(
        actor="alice",
        kind="access",
        received=datetime.date(2026, 2, 20),
        requester="Jo Bloggs",
        contact="jo@example.org",
        numbers="01632 960777",
        details="A copy of my calls of February",
        today=datetime.date(2026, 3, 2),
        wall_us=1772442000000000,
    )
    register.close()
    # Every role, so that every page can be captured in one session.
    with web.db.tx() as conn:
        web.accounts.update(conn, "alice", {"installer", "supervisor", "auditor", "staff"}, [1, 2, 3, 4])
        # Another account: the users page's forms are on every row but your own.
        web.accounts.create(conn, "audrey", "a long enough password 7", {"auditor"}, [])
    story.services.live = FakeLive()
    # An alarm on (the banner on every page), the updates inbox, a rekey half done.
    alarms = AlarmLog(Path(story.data) / "alarms.db", story.services, story.audit)
    story.services.alarms = alarms
    alarms.set("line_fault", True, line=2, message="no line voltage on line 2 for 5 minutes")
    # Reports and subject access read the call log through a report source.
    story.services.reports = ReportSource(story.data, n_lines=4, alarms=alarms)
    story.services.updates = UpdateInbox(story.data, slot_info=str(Path(story.data) / "slot.json"))
    # The E-mail settings page, with alarm recipients (one tied to an account) and what each
    # gets, and a password saved before the recorder handed over the vault's key (its note).
    vault = tmp_path_factory.mktemp("vault")
    load_field_cipher(str(vault), vault=McuLink(SimMcu(SimClock()).bus), run_dir=str(vault / "run"))
    secrets = SecretBox(
        story.data, identity=b"test", cipher=LazyFieldCipher(str(vault), None), on_trial=lambda: False
    )
    story.services.mail = MailService(story.data, story.services.wall_us, secrets, alarm_log=alarms)
    story.services.mail.store.save(
        MailSettings(
            host="mail.example.com",
            username="box",
            sender="box@example.com",
            alarm_to=("audrey@example.com", "office@example.com"),
            alarm_accounts=(("audrey@example.com", "audrey"),),
        ),
        new_password="smtp pass 99",
    )
    assert story.services.mail.store.password_weaker(story.services.mail.store.get())
    gate = threading.Event()
    progress = ["rekey: started by alice", "rekey: 602/1204 recordings re-wrapped"]
    rekey = RekeyJob(lambda *a: gate.wait(600) and None, lambda: {"running": True, "progress": progress})
    story.services.rekey = rekey
    rekey.start("alice", "unused", "alice")
    cookie = client.get_cookie("lk_session").value
    server = make_server("127.0.0.1", 0, story.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield cookie, story, "http://127.0.0.1:%d" % server.server_port
    server.shutdown()
    gate.set()
    rekey.wait(30)
    alarms.close()
    story.close()


# Fields whose placeholder is cut short by the field's edge ("set \u2014 leave empty to kee"
# of the e-mail password at both widths).
PLACEHOLDER_CUT_JS = """[...document.querySelectorAll("input[placeholder], textarea[placeholder]")]
  .filter(field => field.offsetParent !== null)
  .filter(field => {
    const style = getComputedStyle(field);
    const pen = document.createElement("canvas").getContext("2d");
    pen.font = style.font;
    const room = field.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return pen.measureText(field.placeholder).width > room + 1;
  })
  .map(field => field.id || field.name)"""


def _screens(width, height, base, cookie, pages, name_prefix=""):
    """Visit ``pages`` at ``width`` (logged in by ``cookie``, a ``(name, value)``); returns
    ``[(page, sideways overflow px, menu items marked current, wide tables without a
    hint, fields whose placeholder is cut)]`` and saves a screenshot of each."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base + "/"}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        for name, path in pages:
            page.goto(base + path)
            page.wait_for_selector("main")
            current = page.locator("nav#menu [aria-current=page]").count()
            seen.append(
                (
                    name,
                    page.evaluate(OVERFLOW_JS),
                    current,
                    page.evaluate(UNHINTED_JS),
                    page.evaluate(PLACEHOLDER_CUT_JS),
                )
            )
            page.screenshot(path=str(ARTIFACTS / ("%s-%d.png" % (name, width))), full_page=True)
        context.close()
        browser.close()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_pages_fit_and_are_captured(served, width, height):
    cookie, _story, base = served
    seen = _screens(width, height, base, ("lk_session", cookie), PAGES)
    too_wide = [(name, px) for name, px, _, _, _ in seen if px > 0]
    assert not too_wide, "pages wider than %d px: %s" % (width, too_wide)
    unhinted = [(name, boxes) for name, _, _, boxes, _ in seen if boxes]
    assert not unhinted, "tables wider than %d px, with nothing to say so: %s" % (width, unhinted)
    cut = [(name, fields) for name, _, _, _, fields in seen if fields]
    assert not cut, "placeholders cut short at %d px: %s" % (width, cut)
    # Exactly one menu item is current on each page (Help on the help pages); the
    # security page is linked from every page's footer, not from the menu.
    marked = {name: n for name, _, n, _, _ in seen}
    assert all(n == (0 if name == "security" else 1) for name, n in marked.items()), marked


# The left edge of each field of the e-mail form, by its fieldset (the scheduled reports' format lists
# sit under their address, as a field of their own).
MAIL_EDGES_JS = """[...document.querySelectorAll("#mail-form fieldset")].map(set =>
  [...new Set([...set.querySelectorAll("input:not([type=hidden]), select")]
    .map(field => Math.round(field.getBoundingClientRect().left)))])"""


@pytest.mark.slow
@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_the_mail_form_s_fields_line_up_under_their_names(served, width, height):
    """Each field of the E-mail settings was on its name's line, as wide as the browser's
    default: their left edges were as ragged as the names were long ("Server", "Port",
    "Send alarms to (addresses, comma separated)"), two addresses were cut at the field's
    edge, and at 390 px some names wrapped round their field. Now each field is under its
    name, as on the Settings page, every field of a box starting at the same edge."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/settings/mail", width=width, height=height)
        page.wait_for_selector("#mail-form")
        edges = page.evaluate(MAIL_EDGES_JS)
        cut = page.evaluate(PLACEHOLDER_CUT_JS)
        context.close()
        browser.close()
    assert all(len(box) == 1 for box in edges), edges
    assert cut == [], cut


@pytest.mark.slow
def test_the_checklist_is_a_card_per_safeguard_on_a_phone(served):
    """The checklist's four columns at 390 px were a table 12 px wider than the screen on a
    box whose reasons held a long word ("announcement,"), its Why column cut at the edge with
    nothing to say so (seen on a box's screenshot): on a phone each safeguard is a card, as
    each alarm is."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/documents/checklist", width=390, height=844)
        page.wait_for_selector("#checklist")
        # As a box's reason said it (the served box's reasons have no word as long).
        longer = "(cell) => { cell.textContent += ' callers hear a spoken announcement, but'; }"
        page.eval_on_selector("#safeguard-5 td:last-child", longer)
        unhinted = page.evaluate(UNHINTED_JS)
        wide = page.evaluate(OVERFLOW_JS)
        page.screenshot(path=str(ARTIFACTS / "checklist-cards-390.png"), full_page=True)
        context.close()
        browser.close()
    assert unhinted == [] and wide == 0, (unhinted, wide)


LONG_ORGANISATION = "The Extremely Long Named Plumbing and Heating Services Co-operative Ltd"
# The menu's width against the header's (inside its padding), and the rows its links take.
MENU_JS = """() => {
  const header = document.querySelector("header"), menu = document.getElementById("menu");
  const style = getComputedStyle(header);
  const room = header.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const rows = new Set([...menu.querySelectorAll("a")].map(a => Math.round(a.getBoundingClientRect().top)));
  return {share: menu.getBoundingClientRect().width / room, rows: rows.size};
}"""


@pytest.mark.slow
def test_a_long_organisation_name_leaves_the_menu_its_width(served):
    """A box set up for "The Extremely Long Named Plumbing and Heating Services Co-operative
    Ltd" showed its name on one line of the header at 1280 px and squeezed the menu into a
    column beside it, its 26 links in six rows (seen on a box's screenshot): the menu takes
    a row of its own then, beside the account's name alone."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/calls")
        short = page.evaluate(MENU_JS)
        page.eval_on_selector("header .org", "(org, name) => { org.textContent = name; }", LONG_ORGANISATION)
        long = page.evaluate(MENU_JS)
        page.screenshot(path=str(ARTIFACTS / "long-organisation-1280.png"))
        context.close()
        browser.close()
    assert long["share"] >= short["share"] and long["rows"] <= short["rows"], (short, long)


ORG_PASSWORD = "a long enough pass 42"


def _sealed_call(org_public, box, call_id, number, talk_s):
    call = {"number": number, "name": "A Caller", "tags": ["complaint"], "answered_at": None}
    sealed = sealing.seal(
        json.dumps({"call": call, "audit": []}).encode(), org_public, b"%s/%d" % (box.encode(), call_id)
    )
    return json.dumps(
        {
            "format": 1,
            "box": box,
            "call_id": call_id,
            "line": 1 + call_id % 4,
            "direction": "in",
            "started_at": "2026-03-02T09:%02d:00.000Z" % call_id,
            "started_us": 1772442000000000 + call_id * 60_000_000,
            "answered": True,
            "duration_s": talk_s,
            "recordings": [],
            "sealed": base64.b64encode(sealed).decode(),
        }
    ).encode()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The central viewer over a bucket of two sites' sealed call records, served; yields
    ``(base URL, session cookie of a supervisor who is also an auditor)``."""
    root = tmp_path_factory.mktemp("archive-pages")
    org = KeyStore(str(root / "org"), Argon2Params(memory_kib=8, iterations=1))
    org.initialise("sara", ORG_PASSWORD)
    objects = {
        "%s/calls/%010d.json" % (box, n): _sealed_call(org.public_key(), box, n, "0163296%04d" % n, 38.99 + n)
        for box in ("leeds", "york")
        for n in range(1, 13)
    }
    bucket = MemoryBucket(objects)
    users = ArchiveUsers(str(root / "viewer"), CHEAP_COST)
    viewer = Viewer(str(root / "viewer"), str(root / "org"), bucket, users=users, secure_cookies=False)
    users.set("sara", ORG_PASSWORD, ["supervisor", "auditor"])
    with org.unlock("sara", ORG_PASSWORD) as key:
        rebuild_index(bucket, viewer.index_path, key)
    app = create_archive_app(viewer)
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    form = {"user": "sara", "password": ORG_PASSWORD, "csrf_token": token.group(1)}
    resp = client.post("/login", data=form)
    assert resp.status_code == 302
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_port, client.get_cookie("lka_session").value
    server.shutdown()
    viewer.close()


@pytest.mark.slow
@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)])
def test_archive_viewer_pages_fit_and_are_captured(archive, width, height):
    base, cookie = archive
    seen = _screens(width, height, base, ("lka_session", cookie), ARCHIVE_PAGES)
    too_wide = [(name, px) for name, px, _, _, _ in seen if px > 0]
    assert not too_wide, "archive pages wider than %d px: %s" % (width, too_wide)
    unhinted = [(name, boxes) for name, _, _, boxes, _ in seen if boxes]
    assert not unhinted, "tables wider than %d px, with nothing to say so: %s" % (width, unhinted)
    cut = [(name, fields) for name, _, _, _, fields in seen if fields]
    assert not cut, "placeholders cut short at %d px: %s" % (width, cut)
    marked = {name: n for name, _, n, _, _ in seen}
    assert all(n == (0 if name == "archive-missing" else 1) for name, n in marked.items()), marked


def _open(p, cookie, base, path="/", width=1280, height=900, csp=False):
    """``(browser, context, page)``: the box's page ``path`` open at ``width`` px, logged
    in by ``cookie``; ``csp``: under the page's own Content-Security-Policy (its scripts
    as the box serves them), not bypassed for the test's own scripts."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=not csp)
    context.add_cookies([{"name": "lk_session", "value": cookie, "url": base + "/"}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(base + path)
    return browser, context, page


@pytest.mark.slow
def test_a_call_starting_moves_nothing_on_the_dashboard(served):
    """Rows and the pause button stay put as a call starts (live, over server-sent events)."""
    cookie, story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base)

        def layout():
            return [
                page.locator(sel).bounding_box()
                for sel in ("#line-1", "#line-2", "#line-3", "#line-4", "#pause-1", "#pause-2")
            ]

        before = layout()
        assert not page.is_visible("#pause-1")
        story.services.status.set(
            1,
            "connected",
            {"direction": "in", "number": "01632960777", "name": "J SMITH", "policy_decision": "record"},
        )
        page.wait_for_selector('#line-1[data-recording="recording"]')
        page.wait_for_selector("#pause-1", state="visible")
        after = layout()
        page.screenshot(path=str(ARTIFACTS / "dashboard-call-1280.png"), full_page=True)
        story.services.status.set(1, "idle")
        context.close()
        browser.close()
    assert after == before, (before, after)


@pytest.mark.slow
def test_pause_and_resume_keep_the_keyboard_where_it_was(served):
    """Pause pressed from the keyboard comes back focused on the same line's button, saying
    so; a resume from elsewhere (the keypad) turns that button round in place, no reload."""
    cookie, story, base = served
    live = story.services.live
    live.paused.clear()
    call = {"direction": "in", "number": "01632960777", "name": "J SMITH", "policy_decision": "record"}
    story.services.status.set(2, "connected", dict(call))
    try:
        with sync_api.sync_playwright() as p:
            browser, context, page = _open(p, cookie, base)
            page.focus("#pause-2")
            page.keyboard.press("Enter")
            page.wait_for_selector("#resume-2")
            assert page.evaluate("document.activeElement.id") == "resume-2"
            told = page.inner_text("#acted")
            assert told == "Line 2: recording paused. Nothing is recorded until you resume it."
            assert live.asked[-1] == ("pause", 2, "alice")
            page.evaluate("window.drawnOnce = true")
            live.paused.discard(2)  # resumed at the keypad: the box's line state changes
            story.services.status.set(2, "connected", dict(call, name="J SMITH."))
            page.wait_for_selector("#pause-2")
            assert page.evaluate("window.drawnOnce === true"), "the page was loaded again"
            assert page.evaluate("document.activeElement.id") == "pause-2"
            assert page.inner_text("#pause-2") == "Pause recording"
            assert page.get_attribute("#pause-2", "value") == "pause"
            assert page.is_enabled("#pause-2")
            # The call ends under the focused button: the focus stays on the line's row.
            story.services.status.set(2, "idle")
            page.wait_for_selector("#pause-2:disabled", state="attached")
            assert page.evaluate(
                "document.activeElement.closest('tr') && document.activeElement.closest('tr').id"
            ) == ("line-2")
            context.close()
            browser.close()
    finally:
        story.services.status.set(2, "idle")
        live.paused.clear()


# The words in the table cells ``sel`` drawn across more than one line: a number, a
# name or a heading cut in two ("+44163296 / 0777", "Directio / n").
CUT_WORDS_JS = """sel => [...document.querySelectorAll(sel)].flatMap(cell => {
  const cut = [];
  const head = cell.closest("thead");
  if (head && head.getBoundingClientRect().width < 2) return cut;  // the cards' hidden headings
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      // A digest is longer than any column: it may break, anywhere.
      if (tops.size > 1 && !/^[0-9a-f]{32,}$/.test(m[0])) cut.push(m[0]);
    }
  }
  return cut;
})"""


@pytest.mark.slow
def test_large_text_never_cuts_a_number_or_a_name_in_two(served):
    """Text made larger (WCAG's 200 %) on a wide window: the dashboard's lines become cards
    when its columns grow too narrow for their words, so a caller's number, a line's name
    and a heading stay whole; at the browser's own size it stays a table."""
    cookie, story, base = served
    story.services.status.set(
        1,
        "connected",
        {"direction": "in", "number": "+441632960777", "name": "J SMITH", "policy_decision": "record"},
    )
    story.services.status.set(
        2, "connected", {"direction": "out", "number": "01632960777", "policy_decision": "record"}
    )
    seen = {}
    try:
        with sync_api.sync_playwright() as p:
            browser, context, page = _open(p, cookie, base)
            page.wait_for_selector('#line-1[data-recording="recording"]')
            for percent in (100, 150, 200):
                page.evaluate("pc => { document.documentElement.style.fontSize = pc + '%'; }", percent)
                page.wait_for_timeout(100)
                table = page.evaluate("getComputedStyle(document.getElementById('lines')).display")
                cut = page.evaluate(CUT_WORDS_JS, "#lines th, #lines td")
                seen[percent] = (table, cut, page.evaluate(OVERFLOW_JS))
            page.screenshot(path=str(ARTIFACTS / "dashboard-text-200-1280.png"), full_page=True)
            context.close()
            browser.close()
    finally:
        story.services.status.set(1, "idle")
        story.services.status.set(2, "idle")
    assert seen[100][0] == "table", seen
    assert seen[200][0] == "block", seen  # cards
    for what, (_, cut, overflow) in seen.items():
        assert cut == [] and overflow == 0, (what, seen[what])


@pytest.mark.slow
def test_the_subject_access_letter_s_preview_fits_a_phone(served):
    """The letter a supervisor previews before releasing a bundle (the page's only POST
    answer with a long text in it) was one unwrapped line per paragraph: on a phone the
    page scrolled sideways by some 2000 px and the letter could not be read. It wraps."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/sar?number=01632960777", 390, 844)
        page.fill("input[name=requester]", "Jo Bloggs")
        page.fill("input[name=recipient]", "Jo Bloggs")
        page.fill("input[name=only]", "1")
        page.click("button[name=preview]")
        page.wait_for_selector("#sar-letter-text")
        overflow = page.evaluate(OVERFLOW_JS)
        page.screenshot(path=str(ARTIFACTS / "sar-letter-390.png"), full_page=True)
        context.close()
        browser.close()
    assert overflow == 0, "the letter's preview is %d px wider than the phone" % overflow


@pytest.mark.slow
def test_a_field_s_error_is_tied_to_the_field_and_takes_the_focus(served):
    """A screen reader on a field hears its error: marked invalid, described by the message."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(
            p, cookie, base, "/calls?number=abc&from=2026-13-45", 390, 844, csp=True
        )
        assert page.get_attribute("#f-number", "aria-invalid") == "true"
        assert page.get_attribute("#f-number", "aria-describedby").split() == ["number-hint", "error-number"]
        assert page.get_attribute("#call-filters input[name=from]", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "f-number"  # the first of them
        page.goto(base + "/users")
        page.fill("#new-name", "newcomer")
        page.fill("#new-password", "1qaz2wsx3edc")  # common: refused by the server
        page.click("#new-user button[type=submit]")
        page.wait_for_selector("#error-password")
        # forms.js ties the error to its field once it runs, after the message is in the page:
        # asked at once, under load, the field was not marked yet (one .ci/run in several).
        page.wait_for_load_state("load")
        assert page.get_attribute("#new-password", "aria-invalid") == "true"
        assert page.get_attribute("#new-password", "aria-describedby") == "error-password"
        assert page.evaluate("document.activeElement.id") == "new-password"
        page.goto(base + "/phonebook")
        page.fill("#pb-number", "not a number")
        page.fill("#pb-name", "Someone")
        page.click("#phonebook-form button[type=submit]")
        page.wait_for_selector("#error-entry")
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        # A message about the entry as a whole is tied to no one field.
        assert page.get_attribute("#pb-name", "aria-invalid") is None
        context.close()
        browser.close()


@pytest.mark.slow
def test_a_report_s_day_refused_is_marked_and_takes_the_keyboard(served):
    """A period refused was one message for the whole form: no field marked, the keyboard
    left at the page's top, ahead of the menu and the alarms."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/reports?from=2026-03-05&to=2026-03-01", csp=True)
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        assert page.get_attribute("#report-form input[name=to]", "aria-invalid") == "true"
        assert page.get_attribute("#report-form input[name=to]", "aria-describedby") == "error-to"
        assert page.get_attribute("#report-form input[name=from]", "aria-invalid") is None
        assert page.evaluate("document.activeElement.name") == "to"
        context.close()
        browser.close()


@pytest.mark.slow
def test_a_year_review_s_day_refused_is_marked_and_takes_the_keyboard(served):
    """As the Reports page's: one date given without the other was one message for the whole
    form, no field marked, the keyboard left at the page's top."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/documents/year-review?from=2026-03-01", csp=True)
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        form = "#year-review-form"
        assert page.get_attribute(form + " input[name=to]", "aria-invalid") == "true"
        assert page.get_attribute(form + " input[name=to]", "aria-describedby") == "error-to"
        assert page.get_attribute(form + " input[name=from]", "aria-invalid") is None
        assert page.evaluate("document.activeElement.name") == "to"
        context.close()
        browser.close()


@pytest.mark.slow
def test_a_wrong_password_leaves_the_keyboard_on_password(served):
    """The login page came back with the keyboard on User name, filled in already."""
    _cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(base + "/login")
        assert page.evaluate("document.activeElement.id") == "name"
        page.fill("#name", "alice")
        page.fill("#password", "not her password")
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#form-error")
        assert page.get_attribute("#form-error", "role") == "alert"
        assert page.evaluate("document.activeElement.id") == "password"
        context.close()
        browser.close()


@pytest.mark.slow
def test_the_call_page_takes_the_keyboard_to_a_tag_refused_and_to_the_player(served):
    """A tag refused was said in a message tied to no field (its field is named "add", its
    message "tag"): the keyboard stayed at the page's top, the field was not marked. And
    "Listen" gave the page back from its top: the player was some 20 stops of Tab down,
    with no name for a screen reader."""
    cookie, story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/calls/%d" % story.call_id, csp=True)
        page.fill("#add-tag", "Not A Tag!")
        with page.expect_navigation():
            page.press("#add-tag", "Enter")
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        error = page.locator("#tag-form .field-error")
        assert "lowercase letters" in error.inner_text()
        assert page.get_attribute("#add-tag", "aria-invalid") == "true"
        assert error.get_attribute("id") in page.get_attribute("#add-tag", "aria-describedby").split()
        assert page.evaluate("document.activeElement.id") == "add-tag"
        assert page.input_value("#add-tag") == "Not A Tag!"  # what was typed stays
        page.goto(base + "/calls/%d" % story.call_id)
        page.fill("#listen_reason", "complaint ref 1234")
        with page.expect_navigation():
            page.press("#listen_reason", "Enter")
        page.wait_for_load_state("load")
        assert page.evaluate("document.activeElement.id") == "player"
        assert page.get_attribute("#player", "aria-label") == "Recording of call %d" % story.call_id
        assert page.evaluate("document.getElementById('player').readyState") == 0  # nothing played
        context.close()
        browser.close()


@pytest.mark.slow
def test_a_request_s_forms_tie_their_errors_and_a_stale_change_takes_the_focus(served):
    """The request page carries five forms: a radio group's error is heard on whichever button
    the keyboard lands on, and a change refused as a whole (someone else changed the
    request meanwhile) takes the focus with its message, not left at the page's top unheard; a
    date the register refuses takes the keyboard to that date."""
    cookie, _story, base = served
    with sync_api.sync_playwright() as p:
        browser, context, page = _open(p, cookie, base, "/requests/1", 390, 844, csp=True)
        # No kind of wait chosen (a browser without its own check of "required").
        page.eval_on_selector("#request-wait", "f => { f.noValidate = true; }")
        page.fill("#wait-reason", "a copy of a passport")
        page.click("#request-wait button[type=submit]")
        page.wait_for_selector("#error-wait_kind")
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        for radio in ("#wait-kind-identity", "#wait-kind-clarification"):
            assert page.get_attribute(radio, "aria-invalid") == "true", radio
            assert page.get_attribute(radio, "aria-describedby") == "error-wait_kind", radio
        assert page.get_attribute("#wait-reason", "aria-invalid") is None
        assert page.evaluate("document.activeElement.id") == "wait-kind-identity"
        # Drawn from a version of the request that is no longer there: refused as a whole.
        page.goto(base + "/requests/1")
        page.eval_on_selector("#request-extend input[name=seen]", "e => { e.value = '999'; }")
        page.fill("#extend-reason", "many calls to find")
        page.check("#extend-told")
        page.click("#request-extend button[type=submit]")
        page.wait_for_selector("#error-action")
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        assert page.evaluate("document.activeElement.id") == "error-action"
        assert "still in its form below" in page.inner_text("#error-action")
        assert page.input_value("#extend-reason") == "many calls to find"
        # A date the register refuses (after today) lands the keyboard on that date.
        page.goto(base + "/requests/1")
        page.fill("#refuse-outcome", "manifestly unfounded")
        page.fill("#refuse-on", "2099-01-01")
        page.click("#request-refuse button[type=submit]")
        page.wait_for_selector("#error-on")
        page.wait_for_load_state("load")  # forms.js marks the field once it runs
        assert page.get_attribute("#refuse-on", "aria-invalid") == "true"
        assert page.get_attribute("#refuse-on", "aria-describedby") == "error-on"
        assert page.evaluate("document.activeElement.id") == "refuse-on"
        assert page.input_value("#refuse-on") == "2099-01-01"
        context.close()
        browser.close()


@pytest.mark.slow
def test_a_bundle_held_back_after_the_page_was_drawn_is_said_there_with_its_button(served):
    """The updater holding back an older bundle while the page is open: its notice and the
    button to confirm it come under "Now" as an alert (heard as it comes), once; before,
    the page said nothing of it until it was reloaded. The page the upload landed on said
    "Uploaded X. The box installs it when every line is idle" above it still: it goes."""
    cookie, story, base = served
    folder = Path(inbox_dir(story.data))
    folder.mkdir(parents=True, exist_ok=True)
    name = "uploaded-0123456789abcdef.raucb"
    try:
        with sync_api.sync_playwright() as p:
            browser, context, page = _open(p, cookie, base, "/updates?uploaded=" + name, csp=True)
            assert page.locator("#update-held").count() == 0
            assert "installs it when every line is idle" in page.inner_text("#uploaded")
            (folder / name).write_bytes(b"a bundle")
            downgrade = {"from": "2.0.0", "to": "1.0.0", "kind": "older", "confirmed": False}
            (folder / "last-result.json").write_text(
                json.dumps({"bundle": name, "outcome": "refused", "downgrade": downgrade})
            )
            page.wait_for_selector("#update-held", timeout=15_000)
            assert page.get_attribute("#update-held", "role") == "alert"
            assert page.inner_text("#confirm-button") == "Install 1.0.0 instead of 2.0.0"
            # Under "Now", where the server puts it; and not again at the next poll.
            after_now = "document.getElementById('update-now').nextElementSibling.id"
            assert page.evaluate(after_now) == "update-held"
            assert page.locator("#uploaded").count() == 0
            for _ in range(2):
                with page.expect_response(lambda r: r.url.endswith("/updates/state.json")):
                    pass
            assert page.locator("#update-held").count() == 1
            context.close()
            browser.close()
    finally:
        for leftover in (name, "last-result.json"):
            (folder / leftover).unlink(missing_ok=True)


@pytest.mark.slow
def test_the_update_s_step_is_heard_once_as_it_changes(served):
    """ "Now" was no live region, so "Do not cut the power" was never heard; and the poll put
    its text in again every 3 s, which a live region would read out every 3 s."""
    cookie, story, base = served
    folder = Path(inbox_dir(story.data))
    folder.mkdir(parents=True, exist_ok=True)
    progress = folder / "progress.json"
    try:
        with sync_api.sync_playwright() as p:
            browser, context, page = _open(p, cookie, base, "/updates", csp=True)
            assert page.get_attribute("#update-now", "role") == "status"
            page.evaluate(
                """window.nowChanges = 0;
                new MutationObserver(() => window.nowChanges++).observe(document.getElementById("update-now"),
                    {childList: true, characterData: true, subtree: true});"""
            )
            progress.write_text(json.dumps({"step": "wait_idle"}))
            page.locator("#update-now", has_text="Do not cut the power").wait_for()
            assert page.inner_text("#update-now") == "Updating: wait idle. Do not cut the power."
            # Two polls on, the first's answer handled: the same step, not written again.
            for _ in range(2):
                with page.expect_response(lambda r: r.url.endswith("/updates/state.json")):
                    pass
            assert page.evaluate("window.nowChanges") == 1
            context.close()
            browser.close()
    finally:
        progress.unlink(missing_ok=True)


@pytest.mark.slow
def test_the_index_rebuild_says_it_is_at_work_and_then_what_it_found(archive):
    """The rebuild's button cannot be pressed twice, and the form still reaches the viewer."""
    base, cookie = archive
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844})  # the viewer's own CSP
        context.add_cookies([{"name": "lka_session", "value": cookie, "url": base + "/"}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(base + "/sites")
        # Held back once (the submit is cancelled after busy.js has seen it): what it shows.
        page.evaluate(
            "() => document.getElementById('rebuild-form').addEventListener('submit', "
            "(e) => e.preventDefault())"
        )
        page.click("#rebuild-form button")
        page.wait_for_function("document.querySelector('#rebuild-form button').disabled")
        assert "can take minutes" in page.inner_text("[data-busy-text]")
        page.goto(base + "/sites")
        with page.expect_navigation():
            page.click("#rebuild-form button")
        assert "Index rebuilt from the bucket: 24 calls" in page.inner_text("main")
        context.close()
        browser.close()


# A deletion log's entry, as the log shows one (the served box deleted none).
DELETION_ROW = (
    "<tr><th scope=row>1</th><td data-label=Deleted>2026-03-02T10:00:00Z</td><td data-label=Rule>"
    "default</td><td data-label=Why>age</td><td data-label=Call>1</td><td data-label=Line>1</td>"
    "<td data-label=Direction>Inbound</td><td data-label=Categories>complaint</td>"
    "<td data-label='Day of the call, UTC'>2026-03-02</td><td data-label=Length>0:00:26</td>"
    "<td data-label='File SHA-256'><code>%s</code></td></tr>" % ("ab12" * 16)
)
LISTS = (
    "/calls",
    "/audit",
    "/users",
    "/alarms",
    "/disclosures",
    "/retention/deletions",
    "/documents/checklist",
    "/requests",
    "/phonebook",
)


# Pages whose table cells hold words, not ids: none of them is cut in two.
WORDS_WHOLE = ("/calls", "/calls/1", "/sar?from=2026-03-02&to=2026-03-02", "/users", "/alarms", "/requests")


@pytest.mark.slow
def test_a_list_keeps_its_words_whole(served):
    """A list's column headings are never cut mid-word ("Directio|n" in the calls list at
    1280 px, "Acknowledge|d" in the alarm history), nor its cells' words ("complain|t", a
    caller's number in the subject access list at 760 px), and no list widens the page for
    them: a list too wide for its words turns to cards (the disclosure and deletion logs
    sooner than the others, having eleven columns). A word with a hyphen may break at it.
    A filter's long choice (the audit trail's actions) no longer widens the page at 700 px
    either."""
    cookie, _story, base = served
    cut, wide = {}, {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for width in (700, 760, 1024, 1280):
            context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
            context.add_cookies([{"name": "lk_session", "value": cookie, "url": base + "/"}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            for path in LISTS:
                page.goto(base + path)
                page.wait_for_selector("main")
                if path.endswith("deletions"):
                    page.eval_on_selector(
                        "#deletions tbody", "(b, row) => { b.innerHTML = row; }", DELETION_ROW
                    )
                words = page.evaluate(CUT_WORDS_JS, "thead th")
                if words:
                    cut[(width, path)] = words
            for path in WORDS_WHOLE:
                page.goto(base + path)
                page.wait_for_selector("main")
                words = [w for w in page.evaluate(CUT_WORDS_JS, "table td, table th") if "-" not in w]
                if words:
                    cut[(width, path + " cells")] = words
                px = page.evaluate(OVERFLOW_JS)
                if px:
                    wide[(width, path)] = px
            context.close()
        browser.close()
    assert not cut, cut
    assert not wide, wide


@pytest.mark.slow
def test_a_many_column_list_or_a_digest_never_widens_the_page(served):
    """No table pushes the page sideways: the audit trail and the disclosure log on an 800 px
    window (their whole words need more), and a deletion's file digest (a <code> of 64 hex
    digits) in the deletion log at 1280 px. (Table cells that kept their words whole were
    tried, and widened all three.)"""
    cookie, _story, base = served
    row = DELETION_ROW
    seen = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for width, path in ((800, "/audit"), (800, "/disclosures"), (1280, "/retention/deletions")):
            context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
            context.add_cookies([{"name": "lk_session", "value": cookie, "url": base + "/"}])
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(base + path)
            page.wait_for_selector("main")
            if path.endswith("deletions"):  # as the log shows an entry (the served box deleted none)
                page.eval_on_selector("#deletions tbody", "(b, row) => { b.innerHTML = row; }", row)
            seen[(width, path)] = page.evaluate(OVERFLOW_JS)
            context.close()
        browser.close()
    assert all(px == 0 for px in seen.values()), seen


# A4's 210 mm less the print margins (12 mm a side), at 96 px an inch: the width a
# printed page lays its content out in.
PRINT_WIDTH_PX = 703
PRINTED_AT = r"printed \w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d [A-Z+0-9]+, from the box's page of"
PRINTED_JS = """() => {
  const right = document.documentElement.clientWidth;
  const name = e => e.id || e.className || e.tagName;
  const seen = e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden";
  return {
    shown: [...document.querySelectorAll(
      "nav, .filters, button, .skip, #alarm-banner-slot .alarm-banner, footer, .no-print, input, select"
    )].filter(seen).map(name),
    cards: [...document.querySelectorAll("table")].filter(t => getComputedStyle(t).display !== "table"
      || t.tHead && t.tHead.getBoundingClientRect().width < 2).map(name),
    cut: [...document.querySelectorAll("table, th, td")].filter(e =>
      e.getBoundingClientRect().right > right + 0.5 || e.scrollWidth > e.clientWidth + 1).map(e =>
      name(e.closest("table")) + ": " + e.textContent.trim().slice(0, 30)),
    overflow: document.documentElement.scrollWidth - right,
    printed: seen(document.getElementById("printed")) ? document.getElementById("printed").innerText : null,
    title: document.querySelector("h1").innerText,
  };
}"""


@pytest.mark.slow
def test_a_printed_log_is_its_tables_whole_without_the_menu_or_forms(served):
    """An inspector is handed the audit trail and the deletion log on paper: the menu, the
    alarm banner, the filters, buttons and links to download had no place there, and the
    deletion log's eleven columns printed as cards. On paper (print media, A4's width) no
    table is a card or cut at the right edge, and the page's title, the organisation and
    when it was printed head the page; the PDF Chromium prints says so too."""
    import subprocess

    cookie, story, base = served
    site = story.app.extensions["linekeeper"].site.settings()
    seen, texts = {}, {}
    with sync_api.sync_playwright() as p:
        for path in ("/audit", "/retention/deletions"):
            browser, context, page = _open(p, cookie, base, path, width=PRINT_WIDTH_PX, csp=True)
            page.wait_for_selector("main")
            if path.endswith("deletions"):  # as the log shows an entry (the served box deleted none)
                page.eval_on_selector("#deletions tbody", "(b, row) => { b.innerHTML = row; }", DELETION_ROW)
            page.emulate_media(media="print")
            seen[path] = page.evaluate(PRINTED_JS)
            pdf = ARTIFACTS / ("%s-print.pdf" % path.rsplit("/", 1)[1])
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.pdf(path=str(pdf), prefer_css_page_size=True)
            texts[path] = subprocess.run(
                ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
            ).stdout
            context.close()
            browser.close()
    for path, found in seen.items():
        assert found["shown"] == [] and found["cards"] == [] and found["cut"] == [], (path, found)
        assert found["overflow"] == 0, (path, found)
        assert found["printed"].startswith(found["title"]), found["printed"]
        assert "from the box's page of Mon 2 Mar 2026" in found["printed"], found["printed"]
        if site is not None:
            assert site.organisation in found["printed"]
        text = texts[path]
        # When it was printed (this computer's clock) beside when the box drew the page.
        assert found["title"] in text and re.search(PRINTED_AT, text), text[:400]
        for gone in ("Log out", "Skip to the page", "Download", "Help with this page"):
            assert gone not in text, (path, gone)
    assert "ab12" * 4 in texts["/retention/deletions"].replace(" ", "")
