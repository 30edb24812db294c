"""The alarms a user sees: those of the lines whose calls they may list, and the whole box's.

sam supervises lines 1 and 2, sue line 3; audrey (auditor) sees every line, as she sees
every call; ivan (installer) every line too: a dead line is his to mend."""

import csv
import io
import re

import pytest


@pytest.fixture
def alarms(box):
    """A line 2 alarm, a line 3 alarm and one of the whole box, raised in that order."""
    log, t0 = box.alarm_log, box.T0_US
    log.set("no_line_voltage", True, line=2, message="no voltage on line 2", wall_us=t0)
    log.set("stuck_off_hook", True, line=3, message="a handset left off on line 3", wall_us=t0 + 1_000_000)
    log.set("disk_warning", True, message="the card is 85% full", wall_us=t0 + 2_000_000)
    return {a["kind"]: a for a in log.history()}


def _row(box, alarm_id):
    return {a["id"]: a for a in box.alarm_log.history()}[alarm_id]


def _lines_of(html, alarms):
    """The lines (0: the box) of ``alarms`` whose banner row or history row ``html`` has."""
    return {
        a["line"]
        for a in alarms.values()
        if 'id="alarm-%d"' % a["id"] in html or re.search(r'<td data-label="No.">%d</td>' % a["id"], html)
    }


@pytest.mark.parametrize(
    "who,lines", [("sam", {0, 2}), ("sue", {0, 3}), ("audrey", {0, 2, 3}), ("ivan", {0, 2, 3})]
)
def test_a_user_sees_the_alarms_of_the_lines_they_may_see_and_the_boxs(box, people, alarms, who, lines):
    client = people[who]
    assert (
        _lines_of(client.get("/settings" if who == "ivan" else "/calls").get_data(as_text=True), alarms)
        == lines
    )
    assert _lines_of(client.get("/alarms").get_data(as_text=True), alarms) == lines
    banner = client.get("/api/alarms?next=/").get_json()["banner"]
    assert _lines_of(banner, alarms) == lines
    rows = list(csv.DictReader(io.StringIO(client.get("/alarms.csv").get_data(as_text=True))))
    assert {0 if r["line"] == "box" else int(r["line"]) for r in rows} == lines


def test_an_alarm_of_a_line_not_theirs_is_not_acknowledged_nor_audited(box, people, alarms):
    line3 = alarms["stuck_off_hook"]
    before = len(box.services.audit)
    resp = box.post(people["sam"], "/alarms/%d/acknowledge" % line3["id"])
    assert resp.status_code == 400
    assert _row(box, line3["id"])["acknowledged_by"] is None
    assert len(box.services.audit) == before
    # Nor through the banner's "also" of an alarm that is theirs.
    line2 = alarms["no_line_voltage"]
    resp = box.post(people["sam"], "/alarms/%d/acknowledge" % line2["id"], {"also": str(line3["id"])})
    assert resp.status_code == 302
    assert _row(box, line2["id"])["acknowledged_by"] == "sam"
    assert _row(box, line3["id"])["acknowledged_by"] is None
    # sue supervises line 3: hers to acknowledge, and the box's alarm is everyone's.
    for alarm in (line3, alarms["disk_warning"]):
        resp = box.post(people["sue"], "/alarms/%d/acknowledge" % alarm["id"])
        assert resp.status_code == 302
        assert _row(box, alarm["id"])["acknowledged_by"] == "sue"


def test_an_alarm_of_a_line_not_theirs_is_answered_as_one_that_does_not_exist(box, people, alarms):
    """It was refused with a 403, where an alarm that does not exist was a 400: the answer
    told a supervisor that there was an alarm of that number on a line not theirs. Both are
    now the same answer, with the same words, and neither is audited."""
    line3 = alarms["stuck_off_hook"]
    missing = max(a["id"] for a in alarms.values()) + 1
    before = len(box.services.audit)
    answers = {}
    for alarm_id in (line3["id"], missing):
        resp = box.post(people["sam"], "/alarms/%d/acknowledge" % alarm_id)
        body = resp.get_data(as_text=True)
        # Said as a sentence where it is shown as one (it read "there is no alarm 4").
        assert '<p class="error" role="alert" id="alarm-error">There is no alarm %d.</p>' % alarm_id in body
        # The number asked for (in the message, and the page's own address) is the only difference.
        for said in ("There is no alarm %d.", "/alarms/%d/acknowledge"):
            body = body.replace(said % alarm_id, said.replace("%d", "N"))
        answers[alarm_id] = (resp.status_code, body)
    assert answers[line3["id"]] == answers[missing]
    assert answers[missing][0] == 400
    assert _row(box, line3["id"])["acknowledged_by"] is None
    assert len(box.services.audit) == before


def test_an_alarm_number_past_any_alarms_is_no_alarm(box, people, alarms):
    """An alarm number past SQLite's integers (the URL, or the banner's "also", takes any
    digits) raised an OverflowError on Acknowledge: a server error. The URL's is no alarm's
    (404, the guard the call pages have); an "also" one is passed over as one not an alarm."""
    before = len(box.services.audit)
    for number in (2**63, 10**30):
        assert box.post(people["sam"], "/alarms/%d/acknowledge" % number).status_code == 404
    assert len(box.services.audit) == before
    line2 = alarms["no_line_voltage"]
    resp = box.post(people["sam"], "/alarms/%d/acknowledge" % line2["id"], {"also": str(2**63)})
    assert resp.status_code == 302 and _row(box, line2["id"])["acknowledged_by"] == "sam"


def test_an_also_alarm_number_not_in_digits_0_to_9_is_passed_over(box, people, alarms):
    """int() took Arabic-Indic digits: an "also" of "٣" acknowledged alarm 3."""
    line2, disk = alarms["no_line_voltage"], alarms["disk_warning"]
    other = "".join(chr(0x660 + int(d)) for d in str(disk["id"]))
    resp = box.post(people["sam"], "/alarms/%d/acknowledge" % line2["id"], {"also": other})
    assert resp.status_code == 302 and _row(box, line2["id"])["acknowledged_by"] == "sam"
    assert _row(box, disk["id"])["acknowledged_by"] is None


@pytest.mark.parametrize("who,lines", [("sam", {2}), ("sue", {3}), ("audrey", {2, 3}), ("ivan", {2, 3})])
def test_the_dashboards_alarms_on_now_are_those_of_their_lines_and_the_boxs(box, people, who, lines):
    from types import SimpleNamespace

    from firmware.alarms import AlarmBoard
    from firmware.bus import Alarm, EventBus
    from web.services import disk_and_clock_health

    bus, board = EventBus(), AlarmBoard()
    board.attach(bus)
    bus.publish(
        Alarm(line=2, t_us=1, kind="call_log", active=True, message="the card refused the call on line 2")
    )
    bus.publish(
        Alarm(line=3, t_us=2, kind="call_log", active=True, message="the card refused the call on line 3")
    )
    bus.publish(Alarm(line=0, t_us=3, kind="disk_warning", active=True, message="the card is 85% full"))
    box.services.health = disk_and_clock_health(
        box.data_dir, SimpleNamespace(synchronised=True), board, card=lambda data_dir: None
    )
    client = people[who]
    said = {n for n in (2, 3) if "the call on line %d" % n in client.get("/").get_data(as_text=True)}
    assert said == lines
    for active in (
        client.get("/api/health").get_json()["alarms"],
        client.get("/api/alarms").get_json()["active"],
    ):
        assert {n for n in (2, 3) if any("the call on line %d" % n in text for text in active)} == lines
        assert any("85% full" in text for text in active)


DAY_US = 86400 * 1_000_000


@pytest.fixture
def days(box):
    """An alarm on each of 2, 4 and 6 March 2026 (09:00 UTC, in the box's zone that day)."""
    log, t0 = box.alarm_log, box.T0_US
    for n, kind in enumerate(("disk_warning", "call_log", "clock_jump")):
        log.set(kind, True, message="alarm of day %d" % n, wall_us=t0 + 2 * n * DAY_US)
    return {a["kind"]: a["id"] for a in log.history()}


def _ids(html):
    return {int(n) for n in re.findall(r'<td data-label="No.">(\d+)</td>', html)}


def test_the_history_and_its_csv_show_the_days_asked_for(box, people, days):
    audrey = people["audrey"]
    html = audrey.get("/alarms?from=2026-03-03&to=2026-03-04").get_data(as_text=True)
    assert _ids(html) == {days["call_log"]}
    assert 'value="2026-03-03"' in html
    assert 'href="/alarms.csv?from=2026-03-03&amp;to=2026-03-04"' in html
    later = _ids(audrey.get("/alarms?from=2026-03-04").get_data(as_text=True))
    assert later == {days["call_log"], days["clock_jump"]}
    assert _ids(audrey.get("/alarms?to=2026-03-02").get_data(as_text=True)) == {days["disk_warning"]}
    resp = audrey.get("/alarms.csv?from=2026-03-03&to=2026-03-04")
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == [days["call_log"]]
    exported = box.services.audit.entries(limit=1)[0]
    assert exported.action == "export_list" and exported.details["rows"] == 1
    assert exported.details["filter"] == {"from": "2026-03-03", "to": "2026-03-04"}


@pytest.mark.parametrize(
    "query,field,message",
    [
        ("from=2026-02-30", "from", "2026-02-30 is not a day of the calendar."),
        ("to=3 March", "to", "Enter a date as YYYY-MM-DD."),
        ("from=2026-03-04&to=2026-03-02", "to", "The end date is before the start date."),
    ],
)
def test_a_bad_date_is_named_and_shows_or_exports_nothing(box, people, days, query, field, message):
    audrey = people["audrey"]
    resp = audrey.get("/alarms?" + query)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(r'id="error-%s" role="alert">%s<' % (field, re.escape(message)), html)
    assert _ids(html) == set()
    before = len(box.services.audit)
    resp = audrey.get("/alarms.csv?" + query)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert len(box.services.audit) == before


def test_the_help_names_each_alarm_as_the_banner_does_with_its_mails_advice(box, people):
    """The help page had its own names for the alarms ("No line voltage", "Card nearly
    full") and its own advice, beside the banner's and the mail's."""
    import html as markup

    from firmware import words

    page = markup.unescape(people["sam"].get("/help/alarms").get_data(as_text=True))
    listed = re.findall(r"<li><strong>(.*?)</strong>: (.*?)\.</li>", page)
    assert len(listed) >= 5
    titles = {text: kind for kind, text in words.ALARMS.items()}
    for title, advice in listed:
        assert title in titles, title
        assert advice == words.alarm_advice(titles[title])


def test_an_alarms_dates_read_as_the_pages_write_them_and_its_csv_keeps_them(box, people):
    """Alarm messages said their dates as the box keeps them ("was due on 2026-03-01", "from
    2026-03-02 08:30:00 UTC"), beside times every page writes "Mon 2 Mar 2026, 09:00:00 GMT".
    The banner and the Alarms page say them so, in the box's zone; the message is kept as it
    was and its CSV copy says it so."""
    message = "request 3 (access) was due on 2026-03-01; the recorder failed from 2026-03-02T08:30:00.000Z"
    box.alarm_log.set("request_overdue", True, message=message, wall_us=box.T0_US)
    said = (
        "request 3 (access) was due on Sun 1 Mar 2026; the recorder failed from Mon 2 Mar 2026, 08:30:00 GMT"
    )
    for path in ("/", "/alarms"):
        text = people["audrey"].get(path).get_data(as_text=True)
        assert said in text and "2026-03-01" not in text, path
    assert [a["message"] for a in box.alarm_log.history() if a["kind"] == "request_overdue"] == [message]
    rows = list(csv.DictReader(io.StringIO(people["audrey"].get("/alarms.csv").get_data(as_text=True))))
    assert [r["message"] for r in rows if r["kind"] == "request_overdue"] == [message]


def test_the_lines_help_says_of_a_dead_line_what_the_alarm_says_hub_and_adapter_too(box, people):
    """The Lines help had its own advice for "No voltage on the line": the wall socket
    alone, where the line may be a broadband hub's or an adapter's phone port (Digital
    Voice, docs/adapters.md), dead while the hub is off or restarting."""
    import html as markup

    from firmware import words

    page = markup.unescape(people["sam"].get("/help/lines").get_data(as_text=True))
    advice = words.alarm_advice("no_line_voltage")
    assert "hub's or adapter's phone port" in advice and "restart" in advice
    entry = re.search(r"<dt>No voltage on the line</dt><dd>(.*?)</dd>", page, re.S).group(1)
    assert advice[0].upper() + advice[1:] in entry, entry


def test_the_lines_help_explains_the_learned_line_source_to_installers(box, people):
    """An installer fitting the box behind a Digital Voice hub reads "caller ID v23 before
    ring (dtas, reversal); clear: loop break; like uk-dv-hub" in the column only they see;
    the help said nothing of it."""
    import html as markup

    page = markup.unescape(people["ivan"].get("/help/lines").get_data(as_text=True))
    section = page.split("<h2>Line source (learned)</h2>")[1].split("<h2>")[0]
    for words in ("linekeeper linecheck", "uk-dv-hub", "no call has ended", "docs/adapters.md"):
        assert words in section, words
    assert "Line source (learned)" not in people["sam"].get("/help/lines").get_data(as_text=True)
