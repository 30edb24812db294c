"""Subject access on the web: a supervisor finds a number's calls on their lines and releases
them; the auditor sees the disclosure log."""

import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import zipfile

import numpy as np
import pytest

from support.web import page

# A release of Mr Jones's calls to himself (the form of the Subject access page).
RELEASE = {
    "number": "+44 20 7946 0000",
    "from": "",
    "to": "",
    "requester": "Mr Jones",
    "recipient": "Mr Jones",
    "reason": "subject access request",
}


def a_tone():
    """``RecordingStore.export_stream``'s answer for 3 s of tone (the fake recording files
    are random bytes): ``(pieces, samples, rate)``."""
    from support.web import wav_bytes

    samples = np.frombuffer(wav_bytes(3.0)[44:], "<i2")
    return [samples], len(samples), 8000


def shown_earlier(client, form):
    """The copies given before the release form shows for ``form``'s search (its hidden
    ``shown_earlier``), as a person's browser sends them back."""
    query = {f: form[f] for f in ("number", "from", "to") if form.get(f)}
    page = client.get("/sar", query_string=query).get_data(as_text=True)
    return page.split('name="shown_earlier" value="')[1].split('"')[0]


def letter_shown(box, client, form):
    """The letter the form shows on Preview for ``form`` (its hidden ``letter_shown``; empty
    when the form is refused), as a person's browser sends it back once they read it."""
    page = box.post(client, "/sar", dict(form, preview="1"), token_from="/sar").get_data(as_text=True)
    found = page.split('name="letter_shown" value="')
    return found[1].split('"')[0] if len(found) > 1 else ""


def post_release(box, client, form):
    """Post ``form`` to the release form as a browser does, with the copies given before
    the form showed (:func:`shown_earlier`) and the letter it previewed (:func:`letter_shown`)
    unless ``form`` names them."""
    form = dict(form, shown_earlier=form.get("shown_earlier", shown_earlier(client, form)))
    form.setdefault("letter_shown", letter_shown(box, client, form))
    return box.post(client, "/sar", form, token_from="/sar")


def released(box, client, form):
    """Release ``form`` on the Subject access page, wait for the bundle, and download it."""
    resp = post_release(box, client, form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    page = resp.headers["Location"]
    box.web.sar_jobs.wait()
    ready = client.get(page).get_data(as_text=True)
    assert 'id="sar-bundle-ready"' in ready, ready[-800:]
    return client.get(page + "/file")


def test_release_and_disclosure_log(box, people, tmp_path):
    box.recordings.store = box.store  # the real catalogue behind the fake audio
    sam = people["sam"]
    page = sam.get("/sar?number=%2B44+20+7946+0000").get_data(as_text=True)
    assert 'id="sar-found">1 call on your lines.' in page and "02079460000" in page
    # sue holds line 3 only: the same number's call on line 1 is not hers to release,
    # but she is told her search left lines out (she answered "nothing held"), not
    # whether the number called them: narrowing the dates would tell her when it did.
    page = people["sue"].get("/sar?number=02079460000").get_data(as_text=True)
    assert "No calls found for 02079460000 on your lines." in page and "02079460000</td>" not in page
    told = "Searched on your lines only. Lines 1, 2, 4 are not granted to you"
    assert told in page
    none_there = people["sue"].get("/sar?number=01999000000").get_data(as_text=True)
    assert told in none_there  # the same words whether or not it called them
    every_line = people["alice"].get("/sar?number=02079460000").get_data(as_text=True)
    assert 'id="sar-found">1 call ' in every_line and 'id="sar-elsewhere"' not in every_line
    resp = released(box, sam, dict(RELEASE, bundle_password="tell him by phone"))
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    assert resp.headers["Content-Disposition"].endswith('subject-access-1.zip.gpg"')
    path = tmp_path / "b.gpg"
    path.write_bytes(resp.data)
    opened = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(tmp_path),
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "tell him by phone",
            "--decrypt",
            str(path),
        ],
        capture_output=True,
    )
    assert opened.returncode == 0
    calls = json.loads(zipfile.ZipFile(io.BytesIO(opened.stdout)).read("calls.json"))
    assert [c["number"] for c in calls] == ["02079460000"]
    log = people["audrey"].get("/disclosures").get_data(as_text=True)
    assert "Mr Jones" in log and "sam" in log and "subject access request" in log
    assert "disclosure" in box.audit_actions()
    # The call's own page says it was released, to whom and why.
    history = sam.get("/calls/1").get_data(as_text=True).split('id="call-history"')[1]
    assert "Released calls (subject access)" in history and "Mr Jones" in history
    # sam sees his own release; sue (line 3) not one of line 1's calls.
    assert "Mr Jones" in sam.get("/disclosures").get_data(as_text=True)
    assert "Mr Jones" not in people["sue"].get("/disclosures").get_data(as_text=True)


def test_every_page_showing_what_a_release_holds_says_which_lines_were_not_searched(box, people):
    """The search said that lines 3 and 4 were not searched, but the page that came back
    on Preview the letter (the calls and the letter, read just before the release) did
    not, nor did the form refused, nor the bundle's page: exactly when the supervisor
    checks what they are about to tell the person is all that is held."""
    box.recordings.store = box.store
    sam = people["sam"]
    told = (
        'id="sar-elsewhere">Searched on your lines only. Lines 3, 4 are not granted to you: before '
        "telling the person what is held, ask a supervisor of those lines to search them too"
    )
    form = dict(RELEASE, **{"from": "2026-03-02"})
    searched = page(sam, "/sar?number=%2B44+20+7946+0000&from=2026-03-02")
    assert 'id="sar-found">1 call on your lines.' in searched and told in searched
    previewed = box.post(sam, "/sar", dict(form, preview="1"), token_from="/sar").get_data(as_text=True)
    assert 'id="sar-letter-text"' in previewed and 'id="sar-calls"' in previewed
    assert told in previewed
    refused = box.post(sam, "/sar", dict(form, only="one"), token_from="/sar")
    assert refused.status_code == 400 and 'id="sar-calls"' in refused.get_data(as_text=True)
    assert told in refused.get_data(as_text=True)
    resp = post_release(box, sam, form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    box.web.sar_jobs.wait()
    ready = page(sam, resp.headers["Location"])
    assert 'id="sar-bundle-ready"' in ready and told in ready
    # A supervisor of every line searched them all: nothing to say.
    alice = people["alice"].get("/sar?number=02079460000").get_data(as_text=True)
    assert 'id="sar-found">1 call ' in alice and 'id="sar-elsewhere"' not in alice


def test_a_date_range_alone_releases_only_the_calls_named(box, people):
    """Searched by date alone, every caller's calls of the day went to one requester. The
    calls to release are named, and as they can be anyone's the page says so and asks how
    the supervisor knows each named is the requester's (Whose calls): required, audited with
    the release (not in the bundle: it can name someone else); a number searched has none."""
    box.recordings.store = box.store
    sam = people["sam"]
    day = dict(RELEASE, number="", **{"from": "2026-03-02", "to": "2026-03-02"})
    page = sam.get("/sar?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    assert 'id="only-hint"' in page and "these calls can be anyone's" in page  # why they are named
    assert 'id="sar-whose"' in page
    assert 'id="sar-whose"' not in sam.get("/sar?number=02079460000").get_data(as_text=True)
    resp = post_release(box, sam, day)
    assert resp.status_code == 400 and "a release names the requester&#39;s number" in resp.get_data(
        as_text=True
    )
    assert post_release(box, sam, dict(day, only="1, x")).status_code == 400
    for whose in ("", "   ", "x"):  # a single "x" released the calls
        resp = post_release(box, sam, dict(day, only="1", whose=whose))
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "calls found by date alone can be any caller&#39;s" in text
        assert 'id="sar-whose"' in text  # the form again, to say it
    assert "disclosure" not in box.audit_actions()
    whose = "withheld number; the times and line she gave"
    resp = released(box, sam, dict(day, only="1", whose=whose))
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    bundle = zipfile.ZipFile(io.BytesIO(resp.data))
    assert [c["id"] for c in json.loads(bundle.read("calls.json"))] == [1]
    assert all(whose not in bundle.read(name).decode() for name in bundle.namelist() if "wav" not in name)
    [entry] = box.services.audit.entries(action="disclosure")
    assert entry.details["whose"] == whose and entry.details["calls"] == [1]


def test_a_search_by_line_finds_every_call_on_it_and_its_release_says_whose(box, people):
    """A staff member asks on My line for their own recordings: a supervisor searched by date
    and named the calls one by one. Lines (of those granted to the supervisor, over a date
    range) find every call on them whichever the number, audited as a search with its lines;
    their release goes whole or named, once the supervisor says whose the calls are (a line
    is a staff member's only if it is theirs alone, which the form says). A line not theirs,
    not a line, or without days is refused, nothing searched."""
    box.recordings.store = box.store
    sam = people["sam"]  # lines 1 and 2; call k is on line 1 + (k-1) % 4

    def searches():
        return box.services.audit.entries(action="disclosure_search", newest_first=False)

    page = sam.get("/sar").get_data(as_text=True)
    assert 'name="line" value="1"' in page and 'name="line" value="2"' in page
    assert 'name="line" value="3"' not in page and "theirs alone" in page.split('id="sar-lines-hint"')[1]
    found = sam.get("/sar", query_string={"line": "2", "from": "2026-03-02"}).get_data(as_text=True)
    on_two = [str(k) for k in range(2, 41, 4)]
    assert re.findall(r'<tr><th scope="row"><a href="/calls/(\d+)"', found) == on_two
    assert 'id="line-hint"' in found and "theirs alone" in found and 'id="sar-whose"' in found
    assert '<input type="hidden" name="line" value="2">' in found  # carried to the release
    [search] = searches()
    assert {k: v for k, v in search.details.items() if k != "address"} == {
        "lines": [2],
        "from": "2026-03-02",
        "found": 10,
        "copies": [],
    }
    for bad, said in (
        ({"line": "3", "from": "2026-03-02"}, "Line 3 is not granted to you: search only your lines (1, 2)"),
        ({"line": "9", "from": "2026-03-02"}, "Line 9 is not one of the box&#39;s lines (1 to 4)"),
        ({"line": "2"}, "a search by line is over a date range: give its first day (From) too"),
    ):
        resp = sam.get("/sar", query_string=bad)
        assert resp.status_code == 400 and said in resp.get_data(as_text=True), bad
    assert len(searches()) == 1
    form = dict(RELEASE, number="", line="2", **{"from": "2026-03-02"})
    resp = post_release(box, sam, form)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "calls found by line are every call on those lines" in text
    resp = post_release(box, sam, dict(form, line="3", whose="her own line, nobody else's"))
    assert resp.status_code == 400 and "Line 3 is not granted to you" in resp.get_data(as_text=True)
    assert "disclosure" not in box.audit_actions()
    whose = "line 2 is her own phone, nobody else's"
    resp = released(box, sam, dict(form, whose=whose))
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    calls = json.loads(zipfile.ZipFile(io.BytesIO(resp.data)).read("calls.json"))
    assert [str(c["id"]) for c in calls] == on_two
    [entry] = box.services.audit.entries(action="disclosure")
    assert entry.details["whose"] == whose and entry.details["calls"] == [int(k) for k in on_two]


def test_times_of_day_narrow_a_search_by_date(box, people):
    """To find a withheld caller's call "about 9:05 on Monday" a supervisor listed every
    caller of that day. From and To take a time of day as the calls list's do (both ends
    included; To left empty is the From day), audited with the search beside its days; a
    time that is not one, one without its day, or an end before the start is said, and
    nothing is searched or audited."""
    box.recordings.store = box.store
    sam = people["sam"]  # lines 1 and 2: calls 1, 2, 5, 6, 9, 10 ... a minute apart from 09:00

    def searches():
        return box.services.audit.entries(action="disclosure_search", newest_first=False)

    quarter = {"from": "2026-03-02", "from_time": "09:04", "to_time": "09:06"}
    page = sam.get("/sar", query_string=quarter).get_data(as_text=True)
    assert re.findall(r'<tr><th scope="row"><a href="/calls/(\d+)"', page) == ["5", "6"]
    assert 'value="09:04"' in page and 'name="from_time" value="09:04"' in page  # carried to the release
    [search] = searches()
    assert {k: v for k, v in search.details.items() if k != "address"} == {
        "from": "2026-03-02",
        "from_time": "09:04",
        "to_time": "09:06",
        "found": 2,
        "copies": [],
    }
    from firmware import words

    assert ("From (time of day)", "09:04") in words.audit_fields(search.details, search.action)
    for bad, said in (
        (dict(quarter, from_time="9.05"), "From time &#39;9.05&#39;: Enter a time of day as HH:MM"),
        ({"number": RELEASE["number"], "to_time": "09:05"}, "Choose the day of this time too (From)"),
        (
            dict(quarter, from_time="09:07"),
            "The end (Mon 2 Mar 2026 at 09:06) is before the start (Mon 2 Mar 2026 at 09:07)",
        ),
    ):
        resp = sam.get("/sar", query_string=bad)
        assert resp.status_code == 400 and said in resp.get_data(as_text=True), bad
    assert len(searches()) == 1
    # The release keeps to those minutes: a call of the day outside them is not among those found.
    form = dict(RELEASE, number="", whose="withheld number; she said about 9:05", **quarter)
    resp = post_release(box, sam, dict(form, only="1"))
    assert resp.status_code == 400 and "call 1 is not among the calls found" in resp.get_data(as_text=True)
    resp = released(box, sam, dict(form, only="5"))
    assert [c["id"] for c in json.loads(zipfile.ZipFile(io.BytesIO(resp.data)).read("calls.json"))] == [5]


def test_a_search_by_date_says_which_callers_sent_no_number(box, people):
    """Searched by date for a withheld caller, the list's Number column was empty for every
    call whose network sent no number: the withheld caller's call looked like one with no
    record of its number at all. It says so as the calls list does."""
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("UPDATE calls SET number = NULL, absence = 'private' WHERE id = 5")
    db.execute("UPDATE calls SET number = NULL, absence = 'unavailable' WHERE id = 6")
    db.commit()
    db.close()
    quarter = {"from": "2026-03-02", "from_time": "09:04", "to_time": "09:06"}
    page = people["sam"].get("/sar", query_string=quarter).get_data(as_text=True)
    numbers = re.findall(r'<td data-label="Number">(.*?)</td>', page)
    assert numbers == ['<span class="number">withheld</span>', '<span class="number">unavailable</span>']


@pytest.mark.parametrize("field", ["requester", "recipient", "reason"])
def test_a_release_whose_words_would_show_in_another_order_is_refused(box, people, field):
    """The requester, recipient and reason of a release (kept in the disclosure log, shown on
    its page and written in the letter) took a right-to-left override, shown there in another
    order than typed; a request's own fields refuse it. Refused, naming it: nothing released."""
    box.recordings.store = box.store
    form = dict(RELEASE, **{field: "Mr \u202eJones"})
    resp = post_release(box, people["sam"], form)
    assert resp.status_code == 400
    assert "the %s: remove the direction control U+202E (character 4)" % field in resp.get_data(as_text=True)
    assert "disclosure" not in box.audit_actions()


def test_bad_requests_are_named(box, people):
    box.recordings.store = box.store
    sam = people["sam"]
    page = sam.get("/sar?from=2026-03-05&to=2026-03-01")
    assert page.status_code == 400 and "the date range is backwards" in page.get_data(as_text=True)
    resp = box.post(
        sam,
        "/sar",
        {"number": "02079460000", "requester": "", "recipient": "x", "reason": "y"},
        token_from="/sar",
    )
    assert resp.status_code == 400
    assert "give the requester of the release" in resp.get_data(as_text=True)
    resp = box.post(
        sam,
        "/sar",
        {"number": "02079460000", "requester": "a", "recipient": "b", "reason": "c", "redact": "1:9-2"},
        token_from="/sar",
    )
    assert resp.status_code == 400 and "is empty or backwards" in resp.get_data(as_text=True)
    resp = post_release(box, sam, dict(RELEASE, bundle_password="a"))
    assert resp.status_code == 400 and "the bundle password needs at least 10 characters" in resp.get_data(
        as_text=True
    )
    assert "disclosure" not in box.audit_actions()


def test_a_web_bundle_waits_only_sealed_on_the_card_and_goes_once_downloaded(box, people, monkeypatch):
    """The bundle was made in the request, whole in memory (the reason for a one-hour cap).
    It is now made in the background; between the making and the download it is on the
    card only sealed under a key in memory, and deleted once downloaded. The page follows
    its progress; another supervisor cannot see or take it."""
    import os

    from support.web import wav_bytes

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    resp = post_release(box, sam, RELEASE)
    assert resp.status_code == 302
    page = resp.headers["Location"]
    box.web.sar_jobs.wait()
    status = sam.get(page + ".json").get_json()
    assert status["state"] == "done" and status["done"] == status["total"] == 1
    assert status["name"] == "subject-access-1.zip"
    assert people["sue"].get(page + ".json").status_code == 404
    assert people["sue"].get(page + "/file").status_code == 404
    spool_dir = os.path.join(box.data_dir, "sar-bundles")
    [name] = os.listdir(spool_dir)
    sealed = open(os.path.join(spool_dir, name), "rb").read()
    for clear in (b"PK\x03\x04", b"02079460000", b"Mr Jones", b"RIFF"):
        assert clear not in sealed
    resp = sam.get(page + "/file")
    data = resp.get_data()
    assert resp.headers["Content-Disposition"].endswith('subject-access-1.zip"')
    calls = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("calls.json"))
    assert [c["number"] for c in calls] == ["02079460000"]
    assert zipfile.ZipFile(io.BytesIO(data)).read("recordings/call-1.wav") == wav_bytes(3.0)
    assert os.listdir(spool_dir) == [] and sam.get(page + "/file").status_code == 404


def test_a_bundle_not_downloaded_is_deleted_and_its_release_logged_as_not_made(box, people, monkeypatch):
    import os

    from web import sarjob

    box.recordings.store = box.store
    now = [0.0]
    monkeypatch.setattr(box.web.sar_jobs, "_now_s", lambda: now[0])
    resp = post_release(box, people["sam"], RELEASE)
    box.web.sar_jobs.wait()
    now[0] += sarjob.KEEP_S + 1
    assert people["sam"].get(resp.headers["Location"]).status_code == 404
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    log = people["audrey"].get("/disclosures").get_data(as_text=True)
    assert "Not released" in log and "not downloaded within 30 minutes" in log


def test_a_bundle_that_fails_while_made_leaves_nothing_and_says_why(box, people, monkeypatch):
    import os

    from firmware.errors import TamperError

    box.recordings.store = box.store

    def altered(*a):
        raise TamperError("recording 1: altered or damaged")

    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", altered)
    resp = post_release(box, people["sam"], RELEASE)
    box.web.sar_jobs.wait()
    page = people["sam"].get(resp.headers["Location"]).get_data(as_text=True)
    assert "recording 1: altered or damaged. Nothing was released." in page
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    assert "disclosure" not in box.audit_actions()


def test_the_disclosure_log_says_which_releases_were_never_written(box, people):
    """A release is logged before its bundle is written (``linekeeper sar``): one whose
    write failed was audited as failed, and listed in the disclosure log as released."""
    from firmware.sar import DisclosureLog

    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        ids = [
            log.add(
                wall_us=box.clock(),
                actor="sam",
                requester="Mr Jones",
                recipient="Mr Jones",
                reason="subject access request",
                search="{}",
                call_ids="1",
                recordings=1,
                bundle="b%d.zip" % n,
                bundle_sha256="ab" * 32,
                encrypted=0,
            )  # fmt: skip
            for n in range(2)
        ]
    finally:
        log.close()
    box.services.audit.append(
        "sam", "disclosure", "disclosure:%d" % ids[1], {"failed": "No space"}, box.clock()
    )
    page = people["audrey"].get("/disclosures").get_data(as_text=True)
    rows = re.findall(r'<tr id="disclosure-(\d+)"><th scope="row">\1</th>.*?</tr>', page, re.S)
    assert sorted(int(r) for r in rows) == sorted(ids)
    row_of = {n: page[page.index('<tr id="disclosure-%d">' % n) :].split("</tr>")[0] for n in ids}
    assert "Not released" in row_of[ids[1]] and "No space" in row_of[ids[1]]
    assert "Not released" not in row_of[ids[0]] and "Released" in row_of[ids[0]]
    assert "(UTC)" not in page  # its times are in the box's zone


def test_the_search_says_which_calls_have_a_recording(box, people):
    """The Recording column said "yes" for every answered call: a private line's calls
    and calls from before setup too, none of which has a recording."""
    box.recordings.store = box.store
    sam = people["sam"]  # lines 1 and 2; calls 1 to 40 go round the four lines
    box.add_recordings([1])
    page = sam.get("/sar?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    rows = {int(n): row for n, row in re.findall(r'<th scope="row"><a [^>]*>(\d+)</a></th>(.*?)</tr>', page)}
    assert sorted(rows)[:2] == [1, 2]
    assert "Complete, 30 s" in rows[1] and "Inbound" in rows[1]
    assert rows[2].endswith('<td data-label="Recording">No recording</td>') and "Outbound" in rows[2]
    assert ">yes<" not in page and "T09:" not in page  # words and the box's time, not codes


def test_a_search_with_only_its_last_day_says_what_is_missing(box, people):
    """'To' alone did nothing, silently; a short number was named in code quotes."""
    box.recordings.store = box.store
    page = people["sam"].get("/sar?to=2026-03-02")
    assert page.status_code == 400 and "give the first day (From) too" in page.get_data(as_text=True)
    page = people["sam"].get("/sar?number=12").get_data(as_text=True)
    assert "12 is not a phone number: give at least 4 of its digits" in page and "&#39;12&#39;" not in page
    # A letter O for a 0 (or a superscript ²) left fewer digits, searched as they were: "0 calls".
    for typed in ("01632 96O123", "0163296\u00b2123"):
        page = people["sam"].get("/sar", query_string={"number": typed})
        assert page.status_code == 400
        assert "is not a phone number: give only its digits (a letter O is not a 0)" in page.get_data(
            as_text=True
        )


@pytest.mark.parametrize(
    "query,said",
    [
        ("number=01999000000", "No calls found for 01999000000 on your lines."),
        (
            "number=01999000000&from=2026-03-02",
            "No calls found for 01999000000 on Mon 2 Mar 2026 on your lines.",
        ),
        (
            "from=2026-04-01&to=2026-04-03&from_time=09:00",
            "No calls found from Wed 1 Apr 2026 to Fri 3 Apr 2026 from 09:00 on your lines.",
        ),
    ],
)
def test_a_search_that_finds_nothing_says_so_not_an_empty_table(box, people, query, said):
    """Nothing found drew the list's six column headers over no row, and "0 call(s)": a
    screen reader read out an empty table, and nothing said what had been searched. Its
    days are written as the pages write dates (they read "from 2026-04-01 to 2026-04-03")."""
    page = people["sam"].get("/sar?" + query).get_data(as_text=True)
    assert 'id="sar-found">%s</p>' % said in page
    assert 'id="sar-calls"' not in page and 'id="sar-release"' not in page


def test_a_release_on_a_calls_page_is_shown_as_on_the_disclosures_page(box, people):
    """The call page showed a release's requester, recipient, reason and every call it
    held to a supervisor of one of its lines, which the Disclosures page hides from them."""
    box.services.audit.append(
        "alice",
        "disclosure",
        "disclosure:1",
        {"requester": "Mr O'Brien", "recipient": "Mr O'Brien", "reason": "SECRETREF", "calls": [1, 3]},
        box.T0_US,
    )
    assert "SECRETREF" not in people["sue"].get("/calls/3").get_data(as_text=True)  # line 3 only
    assert "SECRETREF" in people["audrey"].get("/calls/3").get_data(as_text=True)
    assert "SECRETREF" in people["alice"].get("/calls/3").get_data(as_text=True)  # who released it


def test_the_bundle_holds_the_notes_on_the_calls_and_the_name_the_box_gives_the_number(box, people):
    """It held the call records and recordings only: a colleague's note on the call ("says
    her son has asthma") and the phonebook's name for the number were left out."""
    box.recordings.store = box.store
    box.web.notes.add(1, "Caller says her son Fred has asthma", "sam")
    box.web.phonebook.put("02079460000", "Mrs Zog Home", "uk")
    resp = released(box, people["sam"], RELEASE)
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    about = json.loads(zipfile.ZipFile(io.BytesIO(resp.data)).read("notes-and-names.json"))
    assert [n["note"] for n in about["notes"]["1"]] == ["Caller says her son Fred has asthma"]
    assert "sam" not in json.dumps(about["notes"])  # what was written, not who wrote it
    assert about["phonebook"] == {"02079460000": "Mrs Zog Home"}


def test_the_bundle_names_no_other_caller(box, people):
    """docs/reports.md, who a bundle names: another caller's number, the phone book's name
    for it and a colleague's note on their call stay out of the person's bundle, in every
    file of it (the letter, the call records, the notes and names, the manifest)."""
    box.recordings.store = box.store
    box.web.notes.add(2, "Mr Other rang about his overdue invoice", "sam")
    box.web.phonebook.put("02079460001", "Mr Other Private", "uk")
    box.web.phonebook.put("02079460000", "Mrs Zog Home", "uk")
    resp = released(box, people["sam"], RELEASE)
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    bundle = zipfile.ZipFile(io.BytesIO(resp.data))
    files = {
        name: bundle.read(name).decode("utf-8") for name in bundle.namelist() if not name.endswith(".wav")
    }
    assert {"README.txt", "calls.json", "notes-and-names.json", "manifest.json"} <= set(files)
    assert [c["number"] for c in json.loads(files["calls.json"])] == ["02079460000"]
    for name, text in files.items():
        for other in ("02079460001", "7946 0001", "Mr Other", "overdue invoice"):
            assert other not in text, (name, other)
    assert "Mrs Zog Home" in files["notes-and-names.json"]


def test_the_disclosure_log_shows_the_whole_hash_of_each_bundle(box, people):
    """A recipient's copy is checked against the log: sixteen hex digits of it
    were shown, which no one can compare a bundle's SHA-256 with."""
    box.recordings.store = box.store
    resp = released(box, people["sam"], RELEASE)
    assert resp.status_code == 200
    digest = hashlib.sha256(resp.data).hexdigest()
    assert "<code>%s</code>" % digest in people["audrey"].get("/disclosures").get_data(as_text=True)


def test_the_notes_that_go_in_the_bundle_are_shown_before_it_is_released(box, people):
    """notes-and-names.json went out unread: the search page never showed the notes it
    holds, which may be about someone else."""
    box.web.notes.add(1, "Her husband rang about the debt", "sam")
    box.web.phonebook.put("02079460000", "Mrs Zog Home", "uk")
    page = people["sam"].get("/sar?number=02079460000").get_data(as_text=True)
    about = page.split('id="sar-about"')[1].split("</section>")[0]
    assert "Call 1, Mon 2 Mar 2026" in about and "Her husband rang about the debt" in about
    assert "Mrs Zog Home" in about
    # Another number's search shows none of it.
    page = people["sam"].get("/sar?number=02079460001").get_data(as_text=True)
    assert 'id="sar-about"' not in page and "Her husband" not in page


def test_the_bundle_opens_with_a_letter_of_what_the_person_is_owed(box, people, monkeypatch):
    """The bundle held JSON files and WAVs, times in UTC: nothing said who keeps the
    data, why, how long, who sees it, the person's rights or the ICO (UK GDPR Art. 15(1)).
    README.txt now says them, from the box's settings, each call in UK time."""

    box.recordings.store = box.store
    box.add_recordings([1])
    # The fake recording files are random bytes; the bundle gets a real tone for them.
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    set_basis_and_contact(box)
    resp = released(box, people["sam"], RELEASE)
    assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
    z = zipfile.ZipFile(io.BytesIO(resp.data))
    text = z.read("README.txt").decode("utf-8")
    for words in (
        "Acme Plumbing Ltd",  # the setup wizard's organisation, ICO number and purpose
        "ZA123456",
        "To keep a record of orders taken by phone.",
        "Call 1: Mon 2 Mar 2026, 09:00:00 GMT",
        "on Line 1",
        "recordings/call-1.wav",
        "ico.org.uk/make-a-complaint",
        "The lawful basis for recording them: consent (Article 6(1)(a) of the UK GDPR).",
        "write to Acme Plumbing Ltd:\r\n  E-mail: dpo@acme.example",
    ):
        assert words in text, words
    sums = z.read("SHA256SUMS").decode()
    assert "README.txt" in sums


def test_the_command_lines_bundle_has_the_same_letter(box, people, tmp_path):
    """``linekeeper sar`` reads the organisation, purpose and zone from the web UI's settings,
    and the lawful basis and data protection contact."""
    from firmware import cli

    set_basis_and_contact(box)

    (tmp_path / "pw").write_text(box.PASSWORDS["alice"] + "\n")
    out = tmp_path / "jones.zip"
    args = ["sar", "--data-dir", box.data_dir, "--user", "alice", "--password-file", str(tmp_path / "pw")]
    args += ["--requester", "Mr Jones", "--recipient", "Mr Jones", "--reason", "subject access request"]
    assert cli.main(args + ["--number", "02079460000", "--out", str(out)]) == 0
    text = zipfile.ZipFile(out).read("README.txt").decode("utf-8")
    assert "Acme Plumbing Ltd" in text and "To keep a record of orders taken by phone." in text
    assert "Call 1: Mon 2 Mar 2026, 09:00:00 GMT" in text and "on Line 1" in text
    assert "consent (Article 6(1)(a) of the UK GDPR)" in text and "  E-mail: dpo@acme.example" in text


def test_a_copy_given_before_can_be_withheld_from_the_letter_with_its_reason(box, people, monkeypatch):
    """The letter lists every earlier release of the person's calls: one to the police they
    may lawfully not be told of (DPA 2018 Sch. 2 para 2) went into it, unseen by the
    supervisor. The form now shows them; one ticked, with its reason, is left out of the letter
    (which does not say so) and named with the reason in the audit trail and the log."""
    import csv

    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    police = dict(RELEASE, requester="DC Wood", recipient="Thames Valley Police", reason="Sch 2 request")
    assert released(box, sam, police).status_code == 200
    assert released(box, sam, dict(RELEASE, recipient="Jones & Co Solicitors")).status_code == 200
    page = sam.get("/sar?number=%2B44+20+7946+0000").get_data(as_text=True)
    shown = page.split('id="sar-earlier"')[1].split("</fieldset>")[0]
    assert 'id="sar-earlier-1"' in shown and "Thames Valley Police" in shown and "Mon" in shown
    assert 'id="sar-earlier-2"' in shown and "Jones &amp; Co Solicitors" in shown
    assert '<td data-label="Calls">1</td>' in shown

    def refused(form, said):
        resp = post_release(box, sam, dict(RELEASE, **form))
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and said in text, text[-800:]
        assert 'id="sar-earlier-1"' in text  # the form again, with the copies
        assert len(DisclosureLog(box.data_dir).entries()) == 2
        assert box.audit_actions().count("disclosure") == 2
        return text

    text = refused({"withhold": "1"}, "give the reason the copy of disclosure log entry 1 is withheld")
    assert "Nothing was released" in text or "nothing was released" in text
    refused(
        {"withhold": "1", "withhold_reason_1": "  "}, "give the reason the copy of disclosure log entry 1"
    )
    refused({"withhold_reason_1": "crime"}, "but Withhold is not ticked")
    refused({"withhold": "7", "withhold_reason_7": "crime"}, "entry 7 is not among the copies of these calls")
    refused({"withhold": "x1"}, "Withhold: x1 is not a disclosure log entry")

    why = "exemption: crime prevention, DPA 2018 Sch 2 para 2"
    resp = released(box, sam, dict(RELEASE, withhold="1", withhold_reason_1=why))
    letter = zipfile.ZipFile(io.BytesIO(resp.data)).read("README.txt").decode("utf-8")
    before = letter.split("COPIES GIVEN BEFORE\r\n")[1].split("\r\n\r\n")[0].split("\r\n")
    assert len(before) == 3 and before[1].endswith(", to Jones & Co Solicitors: call 1.")
    assert "Thames Valley" not in letter and "withh" not in letter.lower() and "exemption" not in letter
    [audited] = [e for e in box.services.audit.entries(action="disclosure") if e.target == "disclosure:3"]
    assert audited.details["withheld"] == [{"disclosure": 1, "reason": why}]
    assert json.loads(DisclosureLog(box.data_dir).get(3)["withheld"]) == [{"disclosure": 1, "reason": why}]
    # A release withholding nothing says nothing of it.
    [first] = [e for e in box.services.audit.entries(action="disclosure") if e.target == "disclosure:1"]
    assert "withheld" not in first.details and DisclosureLog(box.data_dir).get(1)["withheld"] is None
    # The Disclosures page and its CSV show it to who sees the release's requester: an
    # auditor could not tell the letter left a copy out, nor why.
    page = people["audrey"].get("/disclosures").get_data(as_text=True)
    row = page.split('<th scope="row">3</th>')[1].split("</tr>")[0]
    assert '<td data-label="Withheld from the letter">entry 1: %s</td>' % why in row
    row = page.split('<th scope="row">1</th>')[1].split("</tr>")[0]
    assert '<td data-label="Withheld from the letter">none</td>' in row
    assert "exemption" not in people["sue"].get("/disclosures").get_data(as_text=True)  # line 3's only
    rows = list(csv.DictReader(io.StringIO(people["audrey"].get("/disclosures.csv").get_data(as_text=True))))
    assert [(r["id"], r["withheld_from_letter"]) for r in rows] == [
        ("1", ""),
        ("2", ""),
        ("3", "entry 1: " + why),
    ]


def test_a_letter_naming_who_was_given_copies_before_goes_only_once_the_supervisor_read_it(
    box, people, monkeypatch
):
    """The letter names the recipient of each copy given before: a private person's name (a
    relative given a copy of a call they were on) went to the requester by default, and the
    supervisor never saw the letter, only a table. Preview shows the letter as the bundle
    holds it; a release whose letter names anyone goes only once that very letter was shown
    (a first release, naming no one, goes at once)."""
    import html

    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    resp = post_release(box, sam, dict(RELEASE, recipient="Mrs Jones", letter_shown=""))
    assert resp.status_code == 302  # named no one: no preview asked for
    box.web.sar_jobs.wait()
    assert released(box, sam, dict(RELEASE, recipient="Jones & Co Solicitors")).status_code == 200

    def letter(page):
        text = page.split('<pre id="sar-letter-text">')[1].split("</pre>")[0]
        return re.sub(r"It was made on [^\r\n]*", "", html.unescape(text))

    resp = post_release(box, sam, dict(RELEASE, letter_shown=""))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "The letter names who was given copies of these calls before" in page
    assert "to Mrs Jones: call 1." in letter(page) and len(DisclosureLog(box.data_dir).entries()) == 2
    # Read, then changed (a copy withheld): that letter was not shown, and is shown now.
    shown = letter_shown(box, sam, RELEASE)
    form = dict(RELEASE, withhold="1", withhold_reason_1="his mother's name: Sch 2 para 16")
    resp = post_release(box, sam, dict(form, letter_shown=shown))
    assert resp.status_code == 400 and "Mrs Jones" not in letter(resp.get_data(as_text=True))
    preview = box.post(sam, "/sar", dict(form, preview="1", shown_earlier="1,2"), token_from="/sar")
    assert preview.status_code == 200 and 'id="error-release"' not in preview.get_data(as_text=True)
    bundle = released(box, sam, form)
    readme = zipfile.ZipFile(io.BytesIO(bundle.data)).read("README.txt").decode("utf-8")
    assert letter(preview.get_data(as_text=True)) == re.sub(r"It was made on [^\r\n]*", "", readme)
    assert "Mrs Jones" not in readme and "to Jones & Co Solicitors: call 1." in readme


def test_each_reading_of_the_letter_before_its_release_is_audited(box, people, monkeypatch):
    """The form's letter names the person's calls and who was given copies of them before (a
    private person's name too), and the trail said nothing of a supervisor reading it: only a
    release was audited. Each showing of the letter is audited (``disclosure_preview``: its
    calls, the copies it names, those withheld), a Preview and a release refused to show it."""
    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    first = _log_release(box, "sam", "Mrs Jones", "1")

    def readings():
        return box.services.audit.entries(action="disclosure_preview", newest_first=False)

    assert letter_shown(box, sam, dict(RELEASE, shown_earlier=str(first)))
    [read] = readings()
    assert read.actor == "sam" and read.target is None
    assert {k: read.details[k] for k in ("calls", "copies", "withheld")} == {
        "calls": [1],
        "copies": [first],
        "withheld": [],
    }
    assert read.details["address"]
    # A release refused because its letter was not read shows the letter: read, and audited.
    resp = box.post(sam, "/sar", dict(RELEASE, letter_shown="", shown_earlier=str(first)), token_from="/sar")
    assert resp.status_code == 400 and 'id="sar-letter-text"' in resp.get_data(as_text=True)
    assert len(readings()) == 2
    form = dict(RELEASE, withhold=str(first), withhold_reason_1="his mother's name: Sch 2 para 16")
    letter_shown(box, sam, dict(form, shown_earlier=str(first)))
    assert readings()[-1].details["copies"] == [] and readings()[-1].details["withheld"] == [first]
    # A search shows no letter, and a refused form none either: nothing audited as read.
    sam.get("/sar", query_string={"number": RELEASE["number"]})
    box.post(sam, "/sar", dict(RELEASE, requester="", preview="1"), token_from="/sar")
    assert len(readings()) == 3 and "disclosure" not in box.audit_actions()


def test_each_search_for_a_person_s_calls_is_audited_once(box, people):
    """A search shows a person's calls and who was given copies of them before: the trail
    said nothing of it, where the letter's preview is audited. Each search is one entry
    (``disclosure_search``: the number searched, how many calls, the copies shown); a search
    refused for bad input shows nothing and writes nothing."""
    sam = people["sam"]
    first = _log_release(box, "sam", "Mrs Jones", "1")

    def searches():
        return box.services.audit.entries(action="disclosure_search", newest_first=False)

    page = sam.get("/sar", query_string={"number": RELEASE["number"]}).get_data(as_text=True)
    assert 'id="sar-found">1 call on your lines.' in page and "Mrs Jones" in page
    [search] = searches()
    assert search.actor == "sam" and search.target is None and search.details["address"]
    assert {k: v for k, v in search.details.items() if k != "address"} == {
        "number": RELEASE["number"],
        "found": 1,
        "copies": [first],
    }
    sam.get("/sar", query_string={"number": "01632 960999", "from": "2026-03-01", "to": "2026-03-02"})
    assert searches()[-1].details["found"] == 0 and searches()[-1].details["from"] == "2026-03-01"
    assert len(searches()) == 2
    resp = sam.get("/sar", query_string={"number": RELEASE["number"], "to": "2026-03-02"})
    assert resp.status_code == 400 and len(searches()) == 2
    sam.get("/sar")  # the empty form searches nothing
    assert len(searches()) == 2


def test_a_form_shown_again_with_the_calls_is_audited_as_a_search(box, people, monkeypatch):
    """A release refused, or a letter previewed, shows the form again with the person's calls
    and the copies given before, as a search does: audited only as ``disclosure_refused`` (or
    ``disclosure_preview``), so the trail's searches lacked that look. Each such showing is a
    ``disclosure_search`` too (the number, the days, how many calls, the copies shown), beside
    the refusal's entry (what was said) or the preview's; a refusal before any search shows no
    calls and writes no search."""
    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    first = _log_release(box, "sam", "Mrs Jones", "1")

    def entries(action):
        return box.services.audit.entries(action=action, newest_first=False)

    def details(entry):
        return {k: v for k, v in entry.details.items() if k != "address"}

    looked = {"number": RELEASE["number"], "found": 1, "copies": [first]}
    resp = box.post(sam, "/sar", dict(RELEASE, requester="", only="1x"), token_from="/sar")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'id="sar-calls"' in page and 'id="sar-earlier-%d"' % first in page
    [refused] = entries("disclosure_refused")
    assert details(refused) == {
        "refused": "Only these calls: give call numbers (as in the list), separated by commas"
    }
    [search] = entries("disclosure_search")
    assert search.actor == "sam" and search.details["address"] and details(search) == looked
    # A preview shows the calls again with the letter: both looks are on the trail.
    box.post(sam, "/sar", dict(RELEASE, preview="1", shown_earlier=str(first)), token_from="/sar")
    assert len(entries("disclosure_preview")) == 1 and details(entries("disclosure_search")[-1]) == looked
    assert len(entries("disclosure_search")) == 2
    resp = box.post(sam, "/sar", dict(RELEASE, to="2026-03-02"), token_from="/sar")  # no search made
    assert resp.status_code == 400 and 'id="sar-calls"' not in resp.get_data(as_text=True)
    assert entries("disclosure_refused")[-1].details["refused"].startswith("give the first day")
    assert len(entries("disclosure_search")) == 2


def test_a_release_the_form_or_its_job_refuses_is_logged_and_audited(box, people, monkeypatch, caplog):
    """A release refused (bad input, a letter not read, or one changed before its job made the
    bundle) was said on the page and nowhere else. Each is logged and audited
    (``disclosure_refused``: by whom, from where, what was said), as ``linekeeper sar``'s are."""
    from firmware import sar

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]

    def refusals():
        return [
            e.details for e in box.services.audit.entries(action="disclosure_refused", newest_first=False)
        ]

    resp = box.post(sam, "/sar", dict(RELEASE, requester=""), token_from="/sar")
    assert resp.status_code == 400
    [refused] = refusals()
    assert refused["refused"] == "give the requester of the release" and refused["address"]
    assert any(
        r.name == "linekeeper.sar" and "release by sam refused: give the requester" in r.getMessage()
        for r in caplog.records
    )
    first = _log_release(box, "sam", "Mrs Jones", "1")
    form = dict(RELEASE, letter_shown="", shown_earlier=str(first))
    assert box.post(sam, "/sar", form, token_from="/sar").status_code == 400
    assert refusals()[-1]["refused"].startswith("The letter names who was given copies of these calls before")
    # A copy logged while the job waits to read them: the job refuses it, audited as well.
    real = sar.earlier_releases

    def meanwhile(*args, **kw):
        _log_release(box, "sam", "Mr Jones", "1")
        monkeypatch.setattr(sar, "earlier_releases", real)
        return real(*args, **kw)

    shown = letter_shown(box, sam, dict(RELEASE, shown_earlier=str(first)))
    monkeypatch.setattr(sar, "earlier_releases", meanwhile)
    resp = box.post(
        sam, "/sar", dict(RELEASE, letter_shown=shown, shown_earlier=str(first)), token_from="/sar"
    )
    assert resp.status_code == 302
    box.web.sar_jobs.wait()
    assert len(refusals()) == 3 and "not the one shown on the form" in refusals()[-1]["refused"]
    assert "disclosure" not in box.audit_actions()
    # A release that goes is no refusal.
    released(box, sam, dict(RELEASE, shown_earlier="%d,%d" % (first, first + 1)))
    assert len(refusals()) == 3 and "disclosure" in box.audit_actions()


def test_a_bundle_password_typed_before_the_form_was_shown_again_is_asked_for_not_dropped(
    box, people, monkeypatch
):
    """The page never holds the bundle password: shown again (a preview), its field was
    empty, and Release made the bundle unencrypted though one had been typed. It is asked
    for again; the release refused until it is."""
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    form = dict(RELEASE, bundle_password="tell him by phone")
    page = box.post(sam, "/sar", dict(form, preview="1"), token_from="/sar").get_data(as_text=True)
    assert "tell him by phone" not in page and '<input type="hidden" name="encrypt" value="1">' in page
    assert "typed before: type it again" in page
    again = dict(RELEASE, encrypt="1", letter_shown="")  # the form as shown, the field empty
    resp = post_release(box, sam, again)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "Type the bundle password again" in text, text[-800:]
    assert DisclosureLog(box.data_dir).entries() == [] and 'name="encrypt" value="1"' in text
    resp = released(box, sam, dict(again, bundle_password="tell him by phone"))
    assert resp.headers["Content-Disposition"].endswith('subject-access-1.zip.gpg"')


def test_a_copy_the_letter_lists_for_the_request_chosen_is_shown_before_it_goes(box, people, monkeypatch):
    """The form lists the copies given before of the calls found; the letter those of the
    request chosen too (one for the person's other number): such a copy went into the letter
    unseen, with no chance to withhold it. It is refused now, the form shown again with it."""
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    form = {"kind": "access", "received": "2026-03-02", "requester": "Mr Jones", "contact": "j@example.org"}
    resp = box.post(sam, "/requests", dict(form, numbers="", details="my calls"), token_from="/requests")
    rid = str(int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1)))
    police = dict(RELEASE, recipient="Thames Valley Police", request=rid)
    assert released(box, sam, police).status_code == 200
    other = dict(RELEASE, number="02079460001", request=rid)  # the person's other line: call 2
    assert shown_earlier(sam, other) == ""  # no copy of call 2 was given
    resp = post_release(box, sam, other)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "the letter would also list disclosure log entry 1" in text
    assert 'id="sar-earlier-1"' in text and "Thames Valley Police" in text
    assert len(DisclosureLog(box.data_dir).entries()) == 1
    shown = text.split('name="shown_earlier" value="')[1].split('"')[0]
    assert shown == "1"
    letter = released(box, sam, dict(other, shown_earlier=shown, withhold="1", withhold_reason_1="crime"))
    assert "Thames Valley" not in zipfile.ZipFile(io.BytesIO(letter.data)).read("README.txt").decode()


def _log_release(box, actor, recipient, call_ids, number="02079460000"):
    """A release logged as another's (the command line's, or another supervisor's) would be."""
    from firmware.sar import DisclosureLog

    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        return log.add(
            wall_us=box.T0_US,
            actor=actor,
            requester="DC Wood",
            recipient=recipient,
            reason="police request, Operation Falcon",
            search=json.dumps({"number": number}),
            call_ids=call_ids,
            recordings=1,
            bundle="b.zip",
            bundle_sha256="ab" * 32,
            encrypted=0,
        )
    finally:
        log.close()


def test_a_copy_given_before_a_supervisor_may_not_see_is_not_shown_them_nor_released_by_them(
    box, people, monkeypatch
):
    """A copy of the person's calls given by another supervisor, of calls on lines not
    sam's, was shown on sam's form and in the letter's preview with its recipient: a release
    the Disclosures page does not show sam. The form says only when it was given; the
    letter, which must name its recipient, is neither shown nor released by sam, but by a
    supervisor who may see that copy (alice, of every line)."""
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    _log_release(box, "sue", "Thames Valley Police", "3")  # call 3: line 3, sue's
    sam = people["sam"]
    assert "Thames Valley" not in sam.get("/disclosures").get_data(as_text=True)
    page = sam.get("/sar?number=%2B44+20+7946+0000").get_data(as_text=True)
    shown = page.split('id="sar-earlier"')[1].split("</fieldset>")[0]
    assert "recorded by another member of staff; details not shown" in shown
    assert "Thames Valley" not in page and 'name="withhold"' not in shown
    # Nor its disclosure log entry: the form's list of the copies it showed lists it not.
    assert shown_earlier(sam, RELEASE) == ""
    for form in (dict(RELEASE, preview="1"), dict(RELEASE, letter_shown="")):
        resp = post_release(box, sam, form)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "details not shown" in text, text[-800:]
        assert "a supervisor of every line" in text and "Nothing was released" in text
        assert "Thames Valley" not in text and 'id="sar-letter-text"' not in text
    # Withholding it, unseen, is refused too: whether it may be left out is not sam's to judge.
    resp = post_release(box, sam, dict(RELEASE, withhold="1", withhold_reason_1="crime"))
    assert resp.status_code == 400 and "Thames Valley" not in resp.get_data(as_text=True)
    assert len(DisclosureLog(box.data_dir).entries()) == 1 and "disclosure" not in box.audit_actions()
    alice = people["alice"]
    assert "Thames Valley Police" in alice.get("/sar?number=%2B44+20+7946+0000").get_data(as_text=True)
    letter = released(box, alice, RELEASE)
    readme = zipfile.ZipFile(io.BytesIO(letter.data)).read("README.txt").decode()
    assert "to Thames Valley Police: call 3." in readme


def test_a_letter_that_changed_since_it_was_shown_is_not_released(box, people, monkeypatch):
    """The form carried the letter it showed only while that letter named someone, and the
    bundle's job read the copies given before again: a copy given (or taken back) between the
    preview and the release changed the letter unseen. A release whose letter is not the one
    shown is refused, nothing released, the letter shown again to read."""
    from firmware import sar
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    # Previewed naming a copy, which is then audited as never made: the letter lists none.
    first = _log_release(box, "sam", "Thames Valley Police", "1")
    shown = letter_shown(box, sam, dict(RELEASE, shown_earlier=str(first)))
    assert shown
    box.services.audit.append(
        "sam", "disclosure", "disclosure:%d" % first, {"failed": "No space"}, box.clock()
    )
    resp = post_release(box, sam, dict(RELEASE, letter_shown=shown))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "The letter is not the one shown" in text, text[-800:]
    assert "Thames Valley" not in text.split('id="sar-letter-text"')[1]
    assert len(DisclosureLog(box.data_dir).entries()) == 1
    # A copy logged (the command line's) while the job waits to read them: refused in the job.
    real = sar.earlier_releases

    def meanwhile(*args, **kw):
        _log_release(box, "sam", "Mrs Jones", "1")
        monkeypatch.setattr(sar, "earlier_releases", real)
        return real(*args, **kw)

    monkeypatch.setattr(sar, "earlier_releases", meanwhile)
    resp = post_release(box, sam, RELEASE)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-800:]
    box.web.sar_jobs.wait()
    page = sam.get(resp.headers["Location"]).get_data(as_text=True)
    assert "not the one shown on the form" in page and 'id="sar-again"' in page, page[-800:]
    assert [e["recipient"] for e in DisclosureLog(box.data_dir).entries()] == [
        "Mrs Jones",
        "Thames Valley Police",
    ]
    assert "disclosure:3" not in [e.target for e in box.services.audit.entries(action="disclosure")]
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    # Back to the form, the letter as it is now, to read before releasing again.
    again = page.split('id="sar-again"')[1].split("</form>")[0]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', again))
    assert "bundle_password" not in fields and fields["requester"] == "Mr Jones"
    resp = sam.post("/sar", data=dict(fields, preview="1"))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "to Mrs Jones: call 1." in text.split('id="sar-letter-text"')[1]


def set_basis_and_contact(box):
    import dataclasses

    with box.web.db.tx() as conn:
        site = box.web.site.settings()
        box.web.site.save(
            conn, dataclasses.replace(site, lawful_basis="consent", dp_email="dpo@acme.example")
        )


def test_a_release_too_long_to_make_in_memory_is_refused_with_what_to_do(box, people, monkeypatch):
    """A bundle longer than ``MAX_BUNDLE_AUDIO_S`` (a day of audio: what the card keeps
    sealed until the download) is refused before anything is decrypted, saying what to do."""
    from firmware import sar

    box.recordings.store = box.store
    box.add_recordings([1, 5])  # 30 s each, both on line 1
    monkeypatch.setattr(sar, "MAX_BUNDLE_AUDIO_S", 45)
    day = dict(RELEASE, number="", **{"from": "2026-03-02", "to": "2026-03-02"})
    monkeypatch.setattr(box.store, "export_stream", lambda *a: pytest.fail("the bundle was made"))
    resp = post_release(box, people["sam"], dict(day, only="1, 5", whose="withheld number; her times"))
    assert resp.status_code == 400
    assert "these calls hold 1 min of recordings, more than one bundle carries (45 s)" in resp.get_data(
        as_text=True
    )
    assert "disclosure" not in box.audit_actions()


def test_a_release_answers_a_request_of_the_register_and_is_listed_on_it(box, people):
    """A release and the request it answered were two records an auditor matched by hand,
    and every bundle was "subject-access.zip": the person's second one overwrote the first."""
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    sam = people["sam"]
    form = {
        "kind": "access",
        "received": "2026-03-02",
        "requester": "Mr Jones",
        "contact": "jones@example.org",
    }
    resp = box.post(sam, "/requests", dict(form, numbers="", details="my calls"), token_from="/requests")
    rid = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    # An erasure request is not one a release answers.
    resp = box.post(sam, "/requests", dict(form, kind="erasure", details="delete"), token_from="/requests")
    erasure = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    page = sam.get("/sar?number=02079460000").get_data(as_text=True)
    options = re.findall(r'<option value="(\d+)"', page.split('id="sar-request"')[1].split("</select>")[0])
    assert options == [str(rid)]
    # Bad input changes nothing: not an open access request, nothing released nor logged.
    for bad in (str(erasure), "999", "x"):
        resp = post_release(box, sam, dict(RELEASE, request=bad))
        assert resp.status_code == 400 and "is not an open access request" in resp.get_data(as_text=True)
    assert "disclosure" not in box.audit_actions()
    names = []
    for _ in range(2):
        resp = released(box, sam, dict(RELEASE, request=str(rid)))
        assert resp.status_code == 200, resp.get_data(as_text=True)[-800:]
        names.append(resp.headers["Content-Disposition"].split('filename="')[1].rstrip('"'))
    log = DisclosureLog(box.data_dir, box.services.audit.cipher)
    try:
        made = log.of_request(rid)
    finally:
        log.close()
    assert names == ["subject-access-%d.zip" % e["id"] for e in made]
    assert [e["bundle"] for e in made] == names and len(set(names)) == 2
    detail = sam.get("/requests/%d" % rid).get_data(as_text=True)
    for e in made:
        shown = detail.split('id="r-release-%d"' % e["id"])[1].split("</li>")[0]
        assert "Disclosure #%d" % e["id"] in shown and e["bundle_sha256"] in shown
    # Audited on both sides: the disclosure names the request, the request's history the release.
    found = box.services.audit.entries(limit=1000, newest_first=False)
    assert [a.details.get("request") for a in found if a.action == "disclosure"] == [rid, rid]
    history = [a for a in found if a.target == "request:%d" % rid and a.action == "data_request"]
    assert [a.details.get("disclosure") for a in history][1:] == [e["id"] for e in made]


def test_a_release_answers_only_a_request_the_register_shows_the_supervisor(box, people):
    """The release form listed every open access request, with who asked, to every
    supervisor: sam (lines 1 and 2) read that stella, on sue's line 3, asked for a copy of
    her recordings, and could name her request as the one his release answered, though the
    Requests page no longer shows it to him."""
    box.recordings.store = box.store
    box.add_recordings([1, 3])  # call 1 on line 1 (sam's), call 3 on line 3 (sue's)
    box.add_user(people["alice"], "stella", ["staff"], [3])
    stella = box.login("stella")
    resp = box.post(stella, "/my-line/request", {"kind": "access"}, token_from="/my-line")
    hers = int(resp.headers["Location"].split("asked=")[1])
    form = {"kind": "access", "received": "2026-03-02", "requester": "Mr Jones"}
    form["contact"] = "jones@example.org"
    resp = box.post(
        people["sam"], "/requests", dict(form, numbers="", details="my calls"), token_from="/requests"
    )
    caller = int(re.search(r"/requests/(\d+)", resp.headers["Location"]).group(1))
    for client, number, listed in (
        (people["sam"], "02079460000", [str(caller)]),
        (people["sue"], "02079460002", [str(hers), str(caller)]),
    ):
        page = client.get("/sar?number=" + number).get_data(as_text=True)
        select = page.split('id="sar-request"')[1].split("</select>")[0]
        assert re.findall(r'<option value="(\d+)"', select) == listed
        assert ("stella" in select) == (client is people["sue"])
    resp = post_release(box, people["sam"], dict(RELEASE, request=str(hers)))
    assert resp.status_code == 400 and "is not an open access request" in resp.get_data(as_text=True)
    assert "disclosure" not in box.audit_actions()


def test_a_request_s_page_shows_only_the_releases_made_for_it_the_supervisor_may_see(box, people):
    """A request about no line is shown to every supervisor. Sue's release of call 3 (her
    line 3) for it was listed on its page to sam, with its date, its count of recordings
    and the bundle's hash, though the Disclosures page hides that release from him; and the
    answer form told him which disclosure log entries exist by taking their ids."""
    from tests.web.test_requests import act, log_request, release_logged

    sam, sue, audrey = people["sam"], people["sue"], people["audrey"]
    rid = log_request(box, sam)  # about no line in particular: sam's and sue's
    hers = release_logged(box, rid)
    mark = 'id="r-release-%d"' % hers
    assert mark not in sam.get("/requests/%d" % rid).get_data(as_text=True)
    assert "cd" * 32 not in sam.get("/requests/%d" % rid).get_data(as_text=True)
    for client in (sue, audrey):
        assert mark in client.get("/requests/%d" % rid).get_data(as_text=True)
    # Named in sam's answer: refused as an entry that does not exist is; nothing changes.
    trail = len(box.services.audit.entries(limit=1000))
    for ids in (str(hers), "999"):
        resp = act(box, sam, rid, action="answer", outcome="sent the copy", disclosures=ids)
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400 and "There is no disclosure log entry %s." % ids in text
    assert len(box.services.audit.entries(limit=1000)) == trail
    assert (
        act(box, sue, rid, action="answer", outcome="sent the copy", disclosures=str(hers)).status_code == 302
    )


def test_the_disclosure_log_is_downloaded_as_csv_as_the_page_shows_it(box, people):
    """An inspector asks for the record of what was disclosed to whom: the log could only
    be read on the box. The CSV holds the releases the page shows that reader (a supervisor
    not those of other lines' calls), times in UTC, never the search (a person's number),
    and a name someone typed never runs as a spreadsheet formula."""
    import csv

    from firmware.sar import DisclosureLog

    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        for actor, requester, failed in (
            ("sam", '=HYPERLINK("http://evil.example")', False),
            ("sue", "Ms Lee", True),
        ):
            n = log.add(
                wall_us=box.T0_US,
                actor=actor,
                requester=requester,
                recipient="Their solicitor",
                reason="subject access request",
                search='{"number": "02079460000"}',
                call_ids="1",
                recordings=1,
                bundle="b.zip",
                bundle_sha256="ab" * 32,
                encrypted=1,
            )
            if failed:
                box.services.audit.append(
                    actor, "disclosure", "disclosure:%d" % n, {"failed": "No space"}, box.clock()
                )
    finally:
        log.close()
    audrey = people["audrey"]
    assert 'id="disclosures-csv" href="/disclosures.csv"' in audrey.get("/disclosures").get_data(as_text=True)
    resp = audrey.get("/disclosures.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    text = resp.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["released_by"], r["requested_by"], r["outcome"]) for r in rows] == [
        ("sam", '\'=HYPERLINK("http://evil.example")', "released"),
        ("sue", "Ms Lee", "not released: the bundle could not be written (No space)"),
    ]
    assert rows[0]["at"] == "2026-03-02T09:00:00.000Z" and rows[0]["encrypted"] == "yes"
    assert "02079460000" not in text and "search" not in rows[0]
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.actor, exported.action, exported.target) == ("audrey", "export_list", "disclosures")
    assert exported.details["rows"] == 2
    # sue (line 3) sees her own release of line 1's call, not sam's; staff and installers none.
    mine = list(csv.DictReader(io.StringIO(people["sue"].get("/disclosures.csv").get_data(as_text=True))))
    assert [r["released_by"] for r in mine] == ["sue"]
    assert people["ivan"].get("/disclosures.csv").status_code == 403


def test_a_withholding_reason_is_shown_only_to_who_sees_the_copy_withheld(box, people):
    """A release's letter left out a copy given before, and why ("police request..."):
    the Disclosures page, its CSV and the call's history showed that reason to every
    supervisor who saw the release, though the copy withheld was one they may not see (another's, of calls on
    lines not theirs), and the reason named who asked for it. It is shown only to who
    sees that copy's requester; the others read that it was withheld, not why."""
    import csv

    from firmware.sar import DisclosureLog

    why = "police request by DC Wood, Operation Falcon"
    log = DisclosureLog(box.data_dir, getattr(box.services.audit, "cipher", None))
    try:
        for actor, calls, withheld in (
            ("alice", "1,3", None),  # lines 1 and 3: not all sam's, not all sue's
            ("sam", "1", None),  # sam's own
            ("sam", "1", [{"disclosure": 1, "reason": why}, {"disclosure": 2, "reason": "his wife"}]),
        ):
            n = log.add(
                wall_us=box.T0_US,
                actor=actor,
                requester="Mr Jones",
                recipient="Mr Jones",
                reason="subject access request",
                search='{"number": "02079460000"}',
                call_ids=calls,
                recordings=1,
                bundle="b.zip",
                bundle_sha256="ab" * 32,
                encrypted=1,
                withheld=json.dumps(withheld) if withheld else None,
            )
            details = {"calls": [int(c) for c in calls.split(",")], "recipient": "Mr Jones"}
            box.services.audit.append(
                actor, "disclosure", "disclosure:%d" % n, dict(details, withheld=withheld or []), box.clock()
            )
    finally:
        log.close()

    def said(client):
        page = client.get("/disclosures").get_data(as_text=True)
        row = page.split('<th scope="row">3</th>')[1].split("</tr>")[0]
        cell = row.split('<td data-label="Withheld from the letter">')[1].split("</td>")[0]
        rows = list(csv.DictReader(io.StringIO(client.get("/disclosures.csv").get_data(as_text=True))))
        assert [r["withheld_from_letter"] for r in rows if r["id"] == "3"] == [cell]
        return cell

    assert said(people["audrey"]) == "entry 1: %s; entry 2: his wife" % why
    assert said(people["sam"]) == "entry 1: withheld (reason not shown); entry 2: his wife"
    page = people["sam"].get("/disclosures").get_data(as_text=True)
    assert "Operation Falcon" not in page and '<th scope="row">1</th>' not in page
    # The call's history shows the release's audit entry: the same reasons, the same way.
    history = people["sam"].get("/calls/1").get_data(as_text=True).split('id="call-history"')[1]
    assert "Operation Falcon" not in history and "withheld (reason not shown)" in history
    assert "his wife" in history
    assert "Operation Falcon" in people["audrey"].get("/calls/1").get_data(as_text=True)


def _made(box, people, monkeypatch, now):
    """A bundle of call 1 made and waiting, on a clock the test moves; its page."""

    if getattr(box.recordings, "store", None) is not box.store:
        box.recordings.store = box.store
        box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    monkeypatch.setattr(box.web.sar_jobs, "_now_s", lambda: now[0])
    resp = post_release(box, people["sam"], RELEASE)
    assert resp.status_code == 302
    box.web.sar_jobs.wait()
    return resp.headers["Location"]


def _not_made(box):
    entries = box.services.audit.entries(action="disclosure")
    return [e.details["failed"] for e in entries if "failed" in e.details]


def test_a_bundle_being_downloaded_when_its_time_runs_out_is_not_logged_as_not_downloaded(
    box, people, monkeypatch
):
    """A large bundle's download began before its half hour ran out and ended after: the
    sweep deleted it under the download and audited the release "not downloaded", though
    the person had it whole."""
    import os

    from web import sarjob

    now = [0.0]
    page = _made(box, people, monkeypatch, now)
    resp = people["sam"].get(page + "/file", buffered=False)
    body = iter(resp.response)
    first = next(body)
    now[0] += sarjob.KEEP_S + 1
    box.web.sar_jobs.sweep()
    data = first + b"".join(body)
    resp.close()
    assert zipfile.ZipFile(io.BytesIO(data)).read("recordings/call-1.wav")
    assert _not_made(box) == []
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    # A download broken off leaves it to be tried again, and to its time.
    page = _made(box, people, monkeypatch, now)
    resp = people["sam"].get(page + "/file", buffered=False)
    next(iter(resp.response))
    resp.close()
    now[0] += sarjob.KEEP_S + 1
    box.web.sar_jobs.sweep()
    assert _not_made(box) == ["not downloaded within 30 minutes: deleted"]


def test_a_bundle_nobody_comes_back_for_is_deleted_and_logged_when_its_time_is_up(box, people, monkeypatch):
    """The half hour was counted only when someone next opened a bundle's page or made
    another: a bundle left stayed on the card, its release logged as made, until then."""
    import os

    from web import sarjob

    now = [0.0]
    _made(box, people, monkeypatch, now)
    now[0] += sarjob.KEEP_S + 1
    box.web.sweep()  # the server's, every half minute, with no request
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    assert _not_made(box) == ["not downloaded within 30 minutes: deleted"]


def test_a_bundle_waiting_when_the_web_ui_stops_is_logged_as_not_made(box, people, monkeypatch, tmp_path):
    """Its key dies with the process and the next start empties the directory: its release
    stayed in the disclosure log as made."""
    import os

    from web.server import WebServer
    from web.tls import ensure_certificate

    _made(box, people, monkeypatch, [0.0])
    server = WebServer(box.app, ensure_certificate(tmp_path / "tls", ["localhost"]), "127.0.0.1", 0, 0)
    server.start()
    server.stop()
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    assert _not_made(box) == ["not downloaded before the web UI stopped: deleted"]
    page = people["audrey"].get("/disclosures").get_data(as_text=True)
    assert "not downloaded before the web UI stopped" in page


def test_a_card_that_fills_while_the_bundle_is_made_is_said_plainly(box, people, monkeypatch):
    """The page said "the bundle could not be made ([Errno 28] No space left on device)"
    and the thread's traceback went to the console: now what happened and what to do."""
    import errno
    import os

    from web import sarjob

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sarjob.SealedSpool, "write", full)
    page = _made(box, people, monkeypatch, [0.0])
    shown = people["sam"].get(page).get_data(as_text=True)
    assert "The box&#39;s card is full" in shown and "Errno" not in shown
    assert "Nothing was released." in shown
    assert os.listdir(os.path.join(box.data_dir, "sar-bundles")) == []
    assert "disclosure" not in box.audit_actions()


def test_a_folder_left_among_the_bundles_does_not_stop_the_web_ui_starting(tmp_path):
    """The web UI empties the sealed bundles' folder as it starts (their keys died with the
    process before): a folder put there made it fail to start at all."""
    from web.sarjob import DIR, SarJobs

    os.makedirs(tmp_path / DIR / "left-by-hand")
    (tmp_path / DIR / "old-token").write_bytes(b"sealed")
    SarJobs(str(tmp_path))
    assert os.listdir(tmp_path / DIR) == ["left-by-hand"]


def test_a_bundle_a_crash_left_is_logged_as_not_made_at_the_next_start(box, people, monkeypatch):
    """A crash or power cut left the bundle waiting: the next start emptied the folder with
    no audit entry, and the disclosure log said it released for ever."""
    from web import create_app, sarjob

    _made(box, people, monkeypatch, [0.0])
    page = _made(box, people, monkeypatch, [0.0])  # a second, downloaded: nothing left of it
    assert zipfile.ZipFile(io.BytesIO(people["sam"].get(page + "/file").get_data())).testzip() is None
    # One being made when the cut came was never logged: nothing to account for either.
    open(os.path.join(box.data_dir, sarjob.DIR, "being-made"), "wb").close()
    app2 = create_app(box.services, box.config)  # the first never stopped
    try:
        assert os.listdir(os.path.join(box.data_dir, sarjob.DIR)) == []
        [why] = _not_made(box)
        assert why == "not downloaded: the web UI stopped unexpectedly (a crash or power cut): deleted"
        [left] = [e for e in box.services.audit.entries(action="disclosure") if "failed" in e.details]
        assert (left.actor, left.target) == ("sam", "disclosure:1")
    finally:
        app2.extensions["linekeeper"].db.close()
    page = box.login("audrey").get("/disclosures").get_data(as_text=True)
    said = "<strong>Not released</strong>: the bundle could not be written (not downloaded: the web UI"
    assert said in page
    assert page.count("Not released") == 1


def test_a_bundle_a_crash_left_waits_for_the_audit_trail_to_open(tmp_path):
    """At start the audit trail may not be open yet (web.Web.settle): the bundle is kept,
    and accounted for at a later sweep, not deleted unaudited."""
    from firmware.errors import KeyStoreError
    from web.sarjob import DIR, LEFT, LOGGED, SarJobs

    os.makedirs(tmp_path / DIR)
    assert _logged(tmp_path) == 1
    (tmp_path / DIR / ("tok" + LOGGED + "1")).write_bytes(b"sealed")
    told = []

    def expired(entry_id, actor, why):
        if not told:
            told.append("refused")
            raise KeyStoreError("the storage key is not here yet")
        told.append((entry_id, actor, why))

    jobs = SarJobs(str(tmp_path), expired=expired)
    with pytest.raises(KeyStoreError):
        jobs.settle()
    assert os.listdir(tmp_path / DIR) == ["tok" + LOGGED + "1"]
    jobs.settle()
    jobs.settle()
    assert told == ["refused", (1, None, LEFT)] and os.listdir(tmp_path / DIR) == []


def test_two_sweeps_at_once_audit_each_bundle_a_crash_left_once(tmp_path):
    """The server's sweep and a page's settled the bundles a cut left at the same time: the
    first bundle's release was audited as not made twice, and the second bundle was taken off
    the list by the other sweep unaudited (until the next start). One settles while the other
    waits, then finds nothing left."""
    import threading

    from web.sarjob import DIR, LEFT, LOGGED, SarJobs

    os.makedirs(tmp_path / DIR)
    for entry_id in (_logged(tmp_path), _logged(tmp_path)):
        (tmp_path / DIR / ("tok%d%s%d" % (entry_id, LOGGED, entry_id))).write_bytes(b"sealed")
    first_in, other_came = threading.Event(), threading.Event()
    told = []

    def expired(entry_id, actor, why):
        told.append((entry_id, actor, why))
        if threading.current_thread().name == "server":
            first_in.set()
            other_came.wait()  # the page's sweep is settling too, or waits to
        else:
            other_came.set()

    class Waiting:
        """The settle lock, saying when the other sweep has to wait for it."""

        def __init__(self):
            self._lock = threading.Lock()

        def __enter__(self):
            if not self._lock.acquire(blocking=False):
                other_came.set()
                self._lock.acquire()

        def __exit__(self, *exc):
            self._lock.release()

    jobs = SarJobs(str(tmp_path), expired=expired)
    jobs._settling = Waiting()
    server = threading.Thread(target=jobs.settle, name="server")
    server.start()
    first_in.wait()
    page = threading.Thread(target=jobs.settle, name="page")
    page.start()
    server.join()
    page.join()
    assert sorted(told) == [(1, None, LEFT), (2, None, LEFT)]
    assert os.listdir(tmp_path / DIR) == []


def test_a_damaged_disclosure_log_keeps_a_bundle_a_crash_left_and_the_web_ui_starts(box, caplog):
    """At start a bundle a cut left is looked up in the disclosure log: a damaged
    disclosures.db stopped the web UI starting at all. It is logged, and the bundle kept until
    a later sweep can read the log (then audited as not released)."""
    import logging

    from web import create_app
    from web.sarjob import DIR, LEFT, LOGGED

    left = "tok" + LOGGED + "1"
    os.makedirs(os.path.join(box.data_dir, DIR), exist_ok=True)
    with open(os.path.join(box.data_dir, DIR, left), "wb") as f:
        f.write(b"sealed")
    damaged = os.path.join(box.data_dir, "disclosures.db")
    with open(damaged, "wb") as f:
        f.write(b"a bad block of the card, not a database " * 100)
    with caplog.at_level(logging.ERROR, logger="linekeeper.web"):
        app2 = create_app(box.services, box.config)
    web2 = app2.extensions["linekeeper"]
    try:
        assert "the disclosure log (disclosures.db) cannot be read" in caplog.text
        assert os.listdir(os.path.join(box.data_dir, DIR)) == [left]
        web2.sweep()  # still damaged: kept, nothing audited
        assert os.listdir(os.path.join(box.data_dir, DIR)) == [left] and _not_made(box) == []
        os.unlink(damaged)  # restored (here: made again, with its release)
        assert _logged(box.data_dir) == 1
        web2.sweep()
        assert os.listdir(os.path.join(box.data_dir, DIR)) == [] and _not_made(box) == [LEFT]
    finally:
        web2.db.close()


def _logged(data_dir):
    """A release in the disclosure log of ``data_dir``; its entry's id."""
    from firmware.sar import DisclosureLog

    log = DisclosureLog(str(data_dir))
    try:
        return log.add(wall_us=1, actor="sam", requester="Mr Jones", recipient="Mr Jones", reason="SAR",
                       search="{}", call_ids="1", recordings=1, bundle="b", bundle_sha256="0" * 64,
                       encrypted=0)  # fmt: skip
    finally:
        log.close()


def test_a_sealed_bundle_reads_back_whole_and_refuses_a_changed_or_cut_file(tmp_path):
    """The bundle waits on the card sealed chunk by chunk (the recordings' own STREAM
    sealing): it reads back as written; a byte changed or the file cut short does not open."""
    from firmware.errors import TamperError
    from web.sarjob import CHUNK_BYTES, SealedSpool

    data = bytes(range(256)) * (CHUNK_BYTES // 128 + 3)  # three chunks, the last one short
    spool = SealedSpool(str(tmp_path / "b"))
    spool.write(data[:1000])
    spool.write(data[1000:])
    spool.commit()
    assert b"".join(spool.chunks()) == data
    assert data[:64] not in (tmp_path / "b").read_bytes()
    whole = (tmp_path / "b").read_bytes()
    for damaged in (whole[:100] + bytes([whole[100] ^ 1]) + whole[101:], whole[: CHUNK_BYTES + 24]):
        (tmp_path / "b").write_bytes(damaged)
        with pytest.raises(TamperError):
            b"".join(spool.chunks())


@pytest.mark.parametrize("listed", ["1" * 5000, "1,two", "-1", "1e3"])
def test_a_list_of_copies_shown_that_is_not_entries_is_refused_clearly(box, people, monkeypatch, listed):
    """The form's hidden list of the copies given before it showed was read with int(): an id
    of thousands of digits (past Python's limit on digits) was a server error, and anything
    else not a number was dropped unsaid. Either is refused, saying so, nothing released."""
    from firmware.sar import DisclosureLog

    box.recordings.store = box.store
    box.add_recordings([1])
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    for form in (dict(RELEASE, preview="1"), dict(RELEASE, letter_shown="")):
        resp = box.post(sam, "/sar", dict(form, shown_earlier=listed), token_from="/sar")
        text = resp.get_data(as_text=True)
        assert resp.status_code == 400, text[-800:]
        assert "is not a disclosure log entry" in text and "Nothing was released" in text
    assert DisclosureLog(box.data_dir).entries() == [] and "disclosure" not in box.audit_actions()
    assert "disclosure_refused" in box.audit_actions()


def test_a_search_the_locked_register_stops_is_not_audited(box, people, monkeypatch):
    """The search page and the form shown again read the register's open access requests
    (waiting a tenth of a second for a locked store) after auditing the look at the person's
    calls: a register still locked gave the "locked" page, and the trail recorded a look
    that was never shown. The look is audited once what it shows is read."""
    import sqlite3

    from web.views import sar as sar_view

    box.recordings.store = box.store
    sam = people["sam"]

    def locked():
        raise sqlite3.OperationalError("database is locked")

    def searches():
        return box.services.audit.entries(action="disclosure_search", newest_first=False)

    monkeypatch.setattr(sar_view, "open_access_requests", locked)
    resp = sam.get("/sar", query_string={"number": RELEASE["number"]})
    assert resp.status_code >= 500 and "02079460000" not in resp.get_data(as_text=True)
    assert sam.get("/sar").status_code == 200  # the empty form reads no register
    resp = box.post(sam, "/sar", dict(RELEASE, requester="", preview="1"), token_from="/sar")
    assert resp.status_code >= 500
    assert searches() == []
    monkeypatch.undo()
    sam.get("/sar", query_string={"number": RELEASE["number"]})
    assert len(searches()) == 1


def test_a_number_beginning_with_the_outside_line_digit_is_found_as_dialled_too(box, people):
    """Line 1 is a switchboard's extension taking 9 for an outside line. 9123 dialled on it
    may be an extension dialled straight past the switchboard: the page searched it as 123
    only, and said no calls for 9123. Either reading is found; 9 01632 960123 is still
    found as 01632 960123."""
    import dataclasses

    from firmware.policy.rules import LineMode

    from support.web import add_calls

    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(1, "always", "9"),))
    box.config_store.save(dataclasses.replace(config, policy=dataclasses.replace(config.policy, rules=rules)))
    add_calls(box.data_dir, ("9123", "901632960123"), direction="out")
    sam = people["sam"]
    page = sam.get("/sar?number=9123").get_data(as_text=True)
    assert 'id="sar-found">1 call on your lines.' in page and "9123</span></td>" in page
    page = sam.get("/sar?number=01632+960123").get_data(as_text=True)
    assert 'id="sar-found">1 call on your lines.' in page and "901632960123</span></td>" in page


@pytest.mark.parametrize(
    "redact, said",
    [
        ("1:100-200", "the redaction 1:100-200 is past the end of call 1's recording, which is 30 seconds"),
        ("1:20-45", "the redaction 1:20-45 runs past the end of call 1's recording, which is 30 seconds"),
    ],
)
def test_a_redaction_past_the_recording_is_refused_beside_its_field(box, people, monkeypatch, redact, said):
    """A span past the end of a recording silenced nothing, and the letter said it was
    silenced (seconds typed as minutes). Refused beside the Redact field, the spans kept as
    typed, nothing released nor previewed, the refusal audited."""
    box.recordings.store = box.store
    box.add_recordings([1])  # 30 s long
    monkeypatch.setattr(box.store, "export_stream", lambda rid, key: a_tone())
    sam = people["sam"]
    for preview in ({}, {"preview": "1"}):
        resp = box.post(sam, "/sar", dict(RELEASE, redact=redact, **preview), token_from="/sar")
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400
        beside = '<span class="field-error" id="error-redact" role="alert">%s' % said.replace("'", "&#39;")
        assert beside in page
        assert 'name="redact" value="%s" aria-invalid="true" aria-describedby="error-redact"' % redact in page
        assert 'id="sar-letter"' not in page
    refused = box.services.audit.entries(action="disclosure_refused", newest_first=False)
    assert len(refused) == 2 and all(said in e.details["refused"] for e in refused)
    assert "disclosure" not in box.audit_actions() and "disclosure_preview" not in box.audit_actions()
    # Within the recording, it goes.
    resp = released(box, sam, dict(RELEASE, redact="1:1-2"))
    assert resp.status_code == 200 and "disclosure" in box.audit_actions()
