"""Calls for supervisors: their lines only, search, Range playback, export, legal hold."""

import csv
import html
import io
import os
import re

import pytest

from support.web import audio_url, listen


def ids_on(page):
    return [int(x) for x in re.findall(r'<tr id="call-(\d+)"', page)]


def test_supervisors_see_only_their_lines(box, people):
    sam, sue = people["sam"], people["sue"]
    # 40 calls; call k is on line 1 + (k - 1) % 4. sam has lines 1-2, sue line 3.
    sam_ids = ids_on(sam.get("/calls").get_data(as_text=True))
    assert sam_ids == [k for k in range(40, 0, -1) if (k - 1) % 4 in (0, 1)]
    assert ids_on(sue.get("/calls").get_data(as_text=True)) == [
        k for k in range(40, 0, -1) if (k - 1) % 4 == 2
    ]
    # The same for every way of reaching a call: 404, as if it did not exist.
    for path in ("/calls/3", "/calls/3/audio?p=x", "/calls/999"):
        assert sam.get(path).status_code == 404, path
    for path, data in (
        ("/calls/3/export", {"reason": "a good reason", "format": "ogg"}),
        ("/calls/3/hold", {"on": "1"}),
    ):
        assert box.post(sam, path, data).status_code == 404, path
    assert sue.get("/calls/3").status_code == 200
    # Asking for a line not granted is refused, not silently widened.
    resp = sam.get("/calls?line=3")
    assert resp.status_code == 400 and "lines 1, 2 only" in resp.get_data(as_text=True)
    assert box.recordings.exports == [] and box.recordings.held == set()


def test_a_call_number_in_other_digits_than_0_to_9_is_no_call(box, people):
    """Werkzeug's <int:> took any script's digits: /calls/١ (Arabic-Indic one) opened
    call 1, and its forms acted on it."""
    sam = people["sam"]
    box.add_recordings([1])
    assert sam.get("/calls/1").status_code == 200
    for path in ("/calls/%D9%A1", "/calls/%D9%A1/audio?p=x", "/calls/%C2%B9"):  # "١", "¹"
        assert sam.get(path).status_code == 404, path
    for action, data in (
        ("export", {"reason": "complaint ref 1234", "format": "ogg"}),
        ("hold", {"on": "1", "hold_reason": "complaint ref 1234"}),
    ):
        path = "/calls/%%D9%%A1/%s" % action
        assert box.post(sam, path, data, token_from="/calls/1").status_code == 404, path
    assert box.recordings.exports == [] and box.recordings.held == set()


def test_a_call_number_past_any_calls_is_no_call(box, people):
    """A call number past SQLite's integers (the URL takes any digits) raised an
    OverflowError on the call's page and on each form and file of it, the Listen form
    among them: a server error where a number no call has answers 404."""
    sam = people["sam"]
    box.add_recordings([1])
    for number in (2**63, 10**30):
        assert sam.get("/calls/%d" % number).status_code == 404
        assert sam.get("/calls/%d/audio?p=x" % number).status_code == 404
        for action, data in (
            ("listen", {"listen_reason": "complaint ref 1234"}),
            ("export", {"reason": "complaint ref 1234", "format": "ogg"}),
            ("hold", {"on": "1", "hold_reason": "complaint ref 1234"}),
        ):
            path = "/calls/%d/%s" % (number, action)
            assert box.post(sam, path, data, token_from="/calls/1").status_code == 404, path
    assert sam.get("/calls/%d" % (2**63 - 1)).status_code == 404  # the largest: no such call
    assert box.recordings.exports == [] and box.recordings.held == set()


def test_search_filters_and_pages(box, people):
    alice = people["alice"]  # all four lines
    page = alice.get("/calls").get_data(as_text=True)
    assert ids_on(page) == list(range(40, 0, -1))
    assert "next-page" not in page
    assert ids_on(alice.get("/calls?line=2&direction=out").get_data(as_text=True)) == [
        k for k in range(40, 0, -1) if (k - 1) % 4 == 1 and (k - 1) % 2 == 1
    ]
    assert ids_on(alice.get("/calls?number=0017&match=contains").get_data(as_text=True)) == [18]
    assert ids_on(alice.get("/calls?number=0207946001&match=prefix").get_data(as_text=True)) == list(
        range(20, 10, -1)
    )
    assert ids_on(alice.get("/calls?min_duration=31").get_data(as_text=True)) == []
    assert ids_on(alice.get("/calls?from=2026-03-02&to=2026-03-02").get_data(as_text=True)) == list(
        range(40, 0, -1)
    )
    assert ids_on(alice.get("/calls?from=2026-03-03").get_data(as_text=True)) == []
    assert ids_on(alice.get("/calls?recorded=yes").get_data(as_text=True)) == []


def test_the_calendars_last_day_is_a_day_like_another(box, people):
    """A date field takes 9999-12-31, whose next day the calendar has not: the search,
    its download and a subject access search answered 500 (an overflow)."""
    alice, sam = people["alice"], people["sam"]
    for url in ("/calls?to=9999-12-31", "/calls.csv?to=9999-12-31"):
        assert alice.get(url).status_code == 200, url
    assert ids_on(alice.get("/calls?from=2026-03-02&to=9999-12-31").get_data(as_text=True)) == list(
        range(40, 0, -1)
    )
    assert ids_on(alice.get("/calls?from=9999-12-31").get_data(as_text=True)) == []
    assert sam.get("/sar?from=9999-12-31").status_code == 200


def test_keyset_pages(box, people, monkeypatch):
    import web.views.calls as calls_view

    monkeypatch.setattr(calls_view, "PAGE", 15)
    alice = people["alice"]
    seen, url = [], "/calls?line=1&line=2&line=3&line=4"
    while url:
        page = alice.get(url).get_data(as_text=True)
        seen += ids_on(page)
        m = re.search(r'href="([^"]+)" id="next-page"', page)
        url = html.unescape(m.group(1)) if m else None
    assert seen == list(range(40, 0, -1))


@pytest.mark.parametrize(
    "query, field",
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("to=2026-02-30", "to"),
        ("from=2026-03-05&to=2026-03-01", "to"),
        ("direction=sideways", "direction"),
        ("number=0207'%20OR%201=1", "number"),
        ("match=regex", "match"),
        ("min_duration=-5", "min_duration"),
        ("min_duration=ten", "min_duration"),
        ("recorded=maybe", "recorded"),
        ("after=garbage", "after"),
        ("line=x", "line"),
        # int() took Arabic-Indic digits: line "٢" searched line 2, 30 seconds as "٣٠".
        ("line=%D9%A2", "line"),
        ("min_duration=%D9%A3%D9%A0", "min_duration"),
    ],
)
def test_bad_search_input_is_named(box, people, query, field):
    resp = people["sam"].get("/calls?" + query)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert 'id="error-%s"' % field in page
    assert ids_on(page) == []


def test_range_requests(box, people):
    sam = people["sam"]
    url = audio_url(sam, 1)
    whole = box.recordings.audio[1]
    size = len(whole)
    resp = sam.get(url)
    assert resp.status_code == 200 and resp.data == whole
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Type"] == "audio/wav"
    assert int(resp.headers["Content-Length"]) == size
    for header, start, end in (
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
        ("bytes=%d-%d" % (size - 10, size + 500), size - 10, size - 1),
    ):
        resp = sam.get(url, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.headers["Content-Range"] == "bytes %d-%d/%d" % (start, end, size)
        assert resp.data == whole[start : end + 1]
        assert int(resp.headers["Content-Length"]) == end - start + 1
    for header in ("bytes=%d-" % size, "bytes=50-10", "bytes=-0", "bytes=abc", "items=0-1"):
        resp = sam.get(url, headers={"Range": header})
        assert resp.status_code == 416, header
        assert resp.headers["Content-Range"] == "bytes */%d" % size
    # Several ranges: the whole file is a valid answer.
    assert sam.get(url, headers={"Range": "bytes=0-1,5-6"}).status_code == 200


def test_each_playback_is_audited_once(box, people):
    sam = people["sam"]
    url = audio_url(sam, 1)
    for header in (None, "bytes=0-99", "bytes=100-", "bytes=-10"):
        sam.get(url, headers={"Range": header} if header else {})
    playbacks = box.services.audit.entries(action="playback")
    assert [(e.actor, e.target) for e in playbacks] == [("sam", "1")]
    # Opening the call again is a new playback session.
    sam.get(audio_url(sam, 1), headers={"Range": "bytes=0-1"})
    assert len(box.services.audit.entries(action="playback")) == 2
    # Playback used sam's own unlocked key.
    assert box.recordings.keys_seen and not box.recordings.keys_seen[-1].forgotten


def test_nobody_listens_without_saying_why(box, people):
    """A supervisor played any call of their lines with nothing but a click: the trail said
    who listened, never why (an export asked a reason, a playback did not). The page now
    asks first; the reason is in the playback entry."""
    sam = people["sam"]
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="listen-form"' in page and "<audio" not in page
    # No reason, or one too short: said beside the field, no player, no token, nothing audited.
    for reason in ("", "   ", "why"):
        resp = listen(sam, 1, reason)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400 and 'id="error-listen_reason"' in page, reason
        assert "Say why this recording is played" in page and "<audio" not in page
    assert box.services.audit.entries(action="playback") == []
    assert sam.get("/calls/1/audio").status_code == 403
    # With a reason: the player, and the reason goes with the playback entry.
    resp = listen(sam, 1, "  complaint   ref 1234 ")
    assert resp.status_code == 200 and 'id="listen-why"' in resp.get_data(as_text=True)
    assert box.services.audit.entries(action="playback") == []  # said why, not played yet
    sam.get(audio_url(sam, 1, "quality check of order 77"))
    (entry,) = box.services.audit.entries(action="playback")
    assert entry.actor == "sam" and entry.details["reason"] == "quality check of order 77"
    # Only a supervisor of the call's line may ask: another line's call is 404.
    assert box.post(sam, "/calls/3/listen", {"listen_reason": "a good reason"}).status_code == 404
    assert (
        box.post(people["audrey"], "/calls/1/listen", {"listen_reason": "a good reason"}).status_code == 403
    )


def test_the_listen_form_answers_with_a_redirect_so_a_reload_resends_nothing(box, people):
    """The Listen form answered its POST with the page: a reload asked the browser to send
    the form again. Now Post/Redirect/Get: the page it redirects to shows the player of that
    listen, again on a reload, which plays nothing by itself and audits nothing more."""
    sam = people["sam"]
    token = box.token_of(sam, "/calls/1")
    resp = sam.post("/calls/1/listen", data={"csrf_token": token, "listen_reason": "complaint ref 1234"})
    assert resp.status_code == 303
    m = re.fullmatch(r"/calls/1\?listen=([\w-]+)#player", resp.headers["Location"])
    assert m, resp.headers["Location"]
    pages = [sam.get(resp.headers["Location"]).get_data(as_text=True) for _ in range(2)]  # and a reload
    srcs = [re.search(r'<audio id="player" controls preload="none"[^>]* src="([^"]+)"', p) for p in pages]
    assert srcs[0] and srcs[1] and srcs[0].group(1) == srcs[1].group(1), pages[0]
    assert all("complaint ref 1234" in p and "autoplay" not in p for p in pages)
    assert box.services.audit.entries(action="playback") == []  # shown twice, played never
    for _ in range(2):  # played, reloaded and played again: one listen, one entry
        assert sam.get(srcs[0].group(1).replace("&amp;", "&")).status_code in (200, 206)
    played = box.services.audit.entries(action="playback")
    assert [e.details["reason"] for e in played] == ["complaint ref 1234"]
    # The player's address is this session's, for this call: elsewhere it shows the form.
    for client, url in ((sam, "/calls/2?listen=" + m.group(1)), (box.login("sam"), resp.headers["Location"])):
        page = client.get(url).get_data(as_text=True)
        assert 'id="listen-form"' in page and "<audio" not in page, url
    # A new listen form sent is a new listen: its play its own entry.
    sam.get(audio_url(sam, 1, "quality check of order 77"))
    assert len(box.services.audit.entries(action="playback")) == 2


def test_opening_a_calls_page_is_audited_once_a_login(box, people):
    """The call's page shows the caller's number and name, and nobody's opening it was
    audited: the trail could not say who looked at a person's call. Each login's first view
    of a call is, under the call's id, so the Audit page's number filter finds it; the page
    shown again (reloaded, after the Listen form) writes no more."""
    sam, audrey = people["sam"], people["audrey"]
    log = box.services.audit
    assert sam.get("/calls/1").status_code == 200
    sam.get("/calls/1")
    listen(sam, 1)
    sam.get("/calls/2")
    assert sam.get("/calls/3").status_code == 404  # another line's: not shown, not audited
    views = log.entries(limit=10, action="call_viewed", newest_first=False)
    assert [(e.actor, e.target, e.details["line"]) for e in views] == [("sam", "1", 1), ("sam", "2", 2)]
    assert views[0].details["address"] == "192.0.2.10"
    # Another login's view is its own, and so is a new login's.
    audrey.get("/calls/1")
    box.login("sam").get("/calls/1")
    views = log.entries(limit=10, action="call_viewed", targets=["1"], newest_first=False)
    assert [e.actor for e in views] == ["sam", "audrey", "sam"]
    # Found by the caller's number on the Audit page, in the call's words.
    page = audrey.get("/audit?number=020+7946+0000&action=call_viewed").get_data(as_text=True)
    assert page.count('<tr class="action-call_viewed"') == 3
    assert "Opened a call&#39;s page" in page or "Opened a call's page" in page


def test_opening_a_call_plays_nothing(box, people):
    """Issue 11: the page fetched the audio to show its length, which was audited as a playback."""
    page = listen(people["sam"], 1).get_data(as_text=True)
    assert 'preload="none"' in page and 'preload="metadata"' not in page
    assert ", 3 s." in page  # the length, from the call's record
    assert box.services.audit.entries(action="playback") == []


def test_parallel_first_requests_write_one_playback(box, people):
    import threading

    sam = people["sam"]
    url = audio_url(sam, 1)
    start = threading.Barrier(8, timeout=10)

    def fetch(offset):
        start.wait()
        sam.get(url, headers={"Range": "bytes=%d-" % offset})

    threads = [threading.Thread(target=fetch, args=(n * 100,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(box.services.audit.entries(action="playback")) == 1


def test_no_playback_without_a_token_from_this_session(box, people):
    sam, alice = people["sam"], people["alice"]
    assert sam.get("/calls/1/audio").status_code == 403
    assert sam.get("/calls/1/audio?p=made-up").status_code == 403
    # A token is bound to the session and the call.
    alice_url = audio_url(alice, 1)
    assert sam.get(alice_url).status_code == 403
    assert sam.get(audio_url(sam, 2).replace("/calls/2/", "/calls/1/")).status_code == 403
    assert box.services.audit.entries(action="playback") == []


def test_a_recording_still_being_made_offers_no_player(box, people, monkeypatch):
    """The player was offered while the call was still recorded, and playing it answered
    500 "Recording damaged" (its file is checked against its seal, which comes at the
    end): the newest calls of a busy box all looked damaged."""
    sam = people["sam"]
    url = audio_url(sam, 1)  # a token from when it could be played
    real = box.recordings.recording_info
    monkeypatch.setattr(
        box.recordings, "recording_info", lambda call_id: dict(real(call_id), state="recording")
    )
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="still-recording"' in page and "<audio" not in page
    resp = sam.get(url)
    assert resp.status_code == 409 and "still being recorded" in resp.get_data(as_text=True)
    assert box.services.audit.entries(action="playback") == []


def test_a_recording_still_being_made_says_no_length_it_has_not_got(box, people, monkeypatch):
    """A recording still being made has no length yet: its state read "Recording now, ."."""
    real = box.recordings.recording_info
    monkeypatch.setattr(
        box.recordings,
        "recording_info",
        lambda call_id: dict(real(call_id), state="recording", duration_s=None),
    )
    page = people["sam"].get("/calls/1").get_data(as_text=True)
    assert re.search(r'State: <span id="recording-state">Recording now</span>\.</p>', page), page


def test_no_recording_no_player(box, people):
    page = people["sam"].get("/calls/9").get_data(as_text=True)
    assert 'id="no-recording"' in page and "<audio" not in page


def test_export_needs_a_reason_and_is_audited(box, people):
    sam = people["sam"]
    for data, message in (
        ({"reason": "", "format": "ogg"}, "Say why"),
        ({"reason": "why", "format": "ogg"}, "Say why"),
        ({"reason": "complaint ref 12", "format": "mp3"}, "Choose Ogg/Opus, WAV"),
        ({"reason": "ref \u202e1234 ok", "format": "wav"}, "direction control"),
    ):
        resp = box.post(sam, "/calls/1/export", data)
        assert resp.status_code == 400
        assert message in html.unescape(resp.get_data(as_text=True))
    assert box.recordings.exports == []
    assert box.services.audit.entries(action="export") == []
    resp = box.post(sam, "/calls/1/export", {"reason": "complaint ref 1234", "format": "wav"})
    assert resp.status_code == 200
    assert resp.data == box.recordings.audio[1]
    assert "attachment; filename=call-1.wav" in resp.headers["Content-Disposition"]
    (entry,) = box.services.audit.entries(action="export")
    assert entry.actor == "sam" and entry.target == "1"
    assert entry.details["reason"] == "complaint ref 1234" and entry.details["format"] == "wav"


def test_an_export_the_box_fails_to_make_is_audited_as_failed_and_not_counted(box, people, monkeypatch):
    """Audited before it is made, an export whose audio could not be made (400) left its
    entry alone, read as a recording taken; now a second entry with the same details and
    ``failed`` follows, and the breach scope counts no recording exported."""
    from firmware.breachscope import scope

    def cannot(call_id, key, fmt):
        raise ValueError("this recording exports as WAV or .opus")

    monkeypatch.setattr(box.services.recordings, "export", cannot)
    sam = people["sam"]
    resp = box.post(sam, "/calls/1/export", {"reason": "complaint ref 1234", "format": "ogg"})
    assert resp.status_code == 400 and "exports as WAV" in resp.get_data(as_text=True)
    made, failed = box.services.audit.entries(action="export", newest_first=False)
    assert "failed" not in made.details and made.target == failed.target == "1"
    assert failed.details == dict(
        made.details, failed="the recording was not made: this recording exports as WAV or .opus"
    )
    calls_db = os.path.join(box.data_dir, "calls.db")
    _rows, summary = scope(box.services.audit, calls_db, "sam", 0, 4_000_000_000_000_000)
    assert summary["recordings"] == 0 and summary["actions"].get("export (failed)") == 2


def _export_taken(box):
    """The breach scope's summary of sam's access: recordings taken, and its actions but
    the login."""
    from firmware.breachscope import scope

    calls_db = os.path.join(box.data_dir, "calls.db")
    _rows, summary = scope(box.services.audit, calls_db, "sam", 0, 4_000_000_000_000_000)
    return summary["recordings"], {k: n for k, n in summary["actions"].items() if k != "login"}


@pytest.mark.parametrize("read, sent", [(2, 3), (0, 0)])
def test_an_export_download_the_browser_drops_part_way_is_audited_as_failed(
    box, people, monkeypatch, read, sent
):
    """The export's entry is written before its audio leaves; a download closed before its
    last byte (the browser gone: the server closes the body, GeneratorExit) left that entry
    alone, a recording taken. Now a second entry with the same details and ``failed`` says
    how far it got, and the breach scope counts no recording exported."""
    from web.views import calls as calls_view

    monkeypatch.setattr(calls_view, "CHUNK", 3)
    sam = people["sam"]
    form = {"reason": "complaint ref 1234", "format": "wav", "csrf_token": box.token_of(sam, "/")}
    resp = sam.post("/calls/1/export", data=form, buffered=False)
    body = iter(resp.response)
    assert b"".join(next(body) for _ in range(read)) == box.recordings.audio[1][: 3 * read]
    resp.close()  # the browser went: the server closes the body part way
    # Sent: the chunks the server asked past. The last one read was handed over, not known
    # written; read=0: only the first, which the test client takes to see the headers.
    made, failed = box.services.audit.entries(action="export", newest_first=False)
    assert "failed" not in made.details
    size = len(box.recordings.audio[1])
    assert failed.details == dict(
        made.details,
        failed="the download stopped after %d of its %d bytes (the connection closed)" % (sent, size),
    )
    assert (failed.actor, failed.target) == ("sam", "1")
    assert _export_taken(box) == (0, {"export (failed)": 2})


def test_an_export_download_read_to_its_last_byte_is_one_recording_taken(box, people, monkeypatch):
    from web.views import calls as calls_view

    monkeypatch.setattr(calls_view, "CHUNK", 3)
    sam = people["sam"]
    form = {"reason": "complaint ref 1234", "format": "wav", "csrf_token": box.token_of(sam, "/")}
    resp = sam.post("/calls/1/export", data=form, buffered=False)
    assert resp.headers["Content-Length"] == str(len(box.recordings.audio[1]))
    assert b"".join(resp.response) == box.recordings.audio[1]
    resp.close()
    (made,) = box.services.audit.entries(action="export")
    assert "failed" not in made.details
    assert _export_taken(box) == (1, {"export": 1})


def test_legal_hold_toggle_is_audited_with_its_reason(box, people):
    sam = people["sam"]
    assert (
        box.post(sam, "/calls/2/hold", {"on": "maybe", "hold_reason": "complaint ref 1234"}).status_code
        == 400
    )
    assert box.recordings.held == set()
    assert box.post(sam, "/calls/2/hold", {"on": "1", "hold_reason": "complaint ref 1234"}).status_code == 302
    assert box.recordings.held == {2}
    page = sam.get("/calls/2").get_data(as_text=True)
    assert 'id="on-hold"' in page
    assert "Placed on legal hold: complaint ref 1234" in page  # the call's own history says why
    box.post(sam, "/calls/2/hold", {"on": "0", "hold_reason": "complaint 1234 closed"})
    assert box.recordings.held == set()
    assert [
        (e.details["on"], e.details["reason"])
        for e in box.services.audit.entries(action="legal_hold", newest_first=False)
    ] == [(True, "complaint ref 1234"), (False, "complaint 1234 closed")]


@pytest.mark.parametrize("on", ["maybe", "", "2"])
def test_a_bad_on_on_the_hold_form_gives_the_calls_page_naming_the_field(box, people, on):
    """It gave a bare error page. Now the call's page, the message by the hold form naming
    its "on" field, the reason still in its box, and nothing held or audited."""
    sam = people["sam"]
    resp = box.post(sam, "/calls/2/hold", {"on": on, "hold_reason": "complaint ref 1234"})
    assert resp.status_code == 400
    text = html.unescape(resp.get_data(as_text=True))
    assert 'id="hold-form"' in text and 'id="f-number"' in text  # the call's page
    error = re.search(r'id="error-on"[^>]*>([^<]*)<', text)
    assert error and '"on" field must be 1' in error.group(1) and "nothing changed" in error.group(1)
    assert 'value="complaint ref 1234"' in text
    assert box.recordings.held == set()
    assert box.services.audit.entries(action="legal_hold") == []


def test_a_hold_placed_and_released_reads_in_words_in_the_calls_history_and_the_trail(box, people):
    """Not "Legal hold" with "Hold on: yes": what was done to the hold, and why, the same on
    the call's page and the audit trail's."""
    sam = people["sam"]
    for on, reason in (("1", "complaint ref 1234"), ("0", "complaint 1234 closed")):
        assert box.post(sam, "/calls/2/hold", {"on": on, "hold_reason": reason}).status_code == 302
    said = ["Released from legal hold: complaint 1234 closed", "Placed on legal hold: complaint ref 1234"]
    history = html.unescape(sam.get("/calls/2").get_data(as_text=True)).split('id="call-history"')[1]
    assert re.findall(r'<td data-label="What">([^<]*)</td>', history) == said
    trail = html.unescape(people["audrey"].get("/audit?action=legal_hold").get_data(as_text=True))
    assert re.findall(r'data-action="legal_hold">([^<]*)</td>', trail) == said
    for text in (history, trail):
        assert "Hold on" not in text and "Reason" not in text  # said once, in words


@pytest.mark.parametrize(
    "path, form, done",
    [
        ("listen", {"listen_reason": "complaint ref 1234"}, "played"),
        ("export", {"reason": "complaint ref 1234", "format": "ogg"}, "exported"),
        ("hold", {"on": "1", "hold_reason": "complaint ref 1234"}, "placed on legal hold"),
        ("erase", {"erase_reason": "erasure ref 1234", "confirm": "yes"}, "erased"),
    ],
)
def test_a_form_sent_after_retention_deleted_the_recording_says_so_and_does_nothing(
    box, people, path, form, done
):
    """The call's page opened, then retention deleted its recording before the form was
    sent: not "Not found" (the call is there, on the supervisor's line) but the call's page
    saying its recording is gone and nothing was done."""
    sam = people["sam"]
    token = box.token_of(sam, "/calls/2")
    del box.recordings.audio[2]  # deleted by retention meanwhile
    before = len(box.services.audit.entries(limit=1000))
    resp = sam.post("/calls/2/" + path, data=dict(form, csrf_token=token))
    assert resp.status_code == 409
    text = html.unescape(resp.get_data(as_text=True))
    assert 'id="error-recording"' in text
    assert "This call has no recording now" in text and "nothing was %s" % done in text
    assert box.recordings.held == set() and box.recordings.exports == []
    assert len(box.services.audit.entries(limit=1000)) == before


def test_a_hold_placed_or_released_twice_is_refused_the_second_time_and_audited_once(box, people):
    """The form sent twice (a double click, or a page opened before someone else placed or
    released the hold): the trail must not say a hold was placed, or released, when nothing
    changed. The second is refused, saying how the hold stands."""
    sam = people["sam"]
    for on, reason, already in (
        ("1", "complaint ref 1234", "already on legal hold"),
        ("0", "complaint ref 1234 closed", "not on legal hold"),
    ):
        assert box.post(sam, "/calls/2/hold", {"on": on, "hold_reason": reason}).status_code == 302
        held, entries = set(box.recordings.held), box.services.audit.entries(action="legal_hold")
        resp = box.post(sam, "/calls/2/hold", {"on": on, "hold_reason": reason})
        assert resp.status_code == 409
        text = html.unescape(resp.get_data(as_text=True))
        assert already in text and 'id="error-hold_reason"' in text
        assert box.recordings.held == held
        assert box.services.audit.entries(action="legal_hold") == entries
    # Released already: releasing a call never held is refused the same way.
    resp = box.post(sam, "/calls/1/hold", {"on": "0", "hold_reason": "complaint ref 1234 closed"})
    assert resp.status_code == 409 and len(box.services.audit.entries(action="legal_hold")) == 2


@pytest.mark.parametrize(
    "on, reason, message",
    [
        ("1", "", 'Say why this recording is placed on legal hold (for example "complaint ref 1234")'),
        ("1", "   ab  ", "Say why this recording is placed on legal hold"),
        ("1", "x" * 501, "At most 500 characters."),
        ("1", "ref \u202e1234 ok", "direction control"),
        ("0", "", 'Say why the legal hold is released (for example "complaint ref 1234 closed")'),
    ],
)
def test_a_legal_hold_without_a_good_reason_is_refused_and_changes_nothing(box, people, on, reason, message):
    """Placing a hold keeps evidence, releasing one lets retention delete it: the trail says
    why each was done, or neither is done."""
    sam = people["sam"]
    if on == "0":
        assert (
            box.post(sam, "/calls/2/hold", {"on": "1", "hold_reason": "complaint ref 1234"}).status_code
            == 302
        )
    held, entries = set(box.recordings.held), len(box.services.audit.entries(action="legal_hold"))
    resp = box.post(sam, "/calls/2/hold", {"on": on, "hold_reason": reason})
    assert resp.status_code == 400
    text = html.unescape(resp.get_data(as_text=True))
    assert message in text and 'id="error-hold_reason"' in text
    assert box.recordings.held == held
    assert len(box.services.audit.entries(action="legal_hold")) == entries


def test_without_an_unlocked_key_no_playback(box, people):
    sam = people["sam"]
    for mem in box.web.sessions.memory.values():
        if mem["key"] is not None:
            mem["key"].forget()
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="no-key"' in page and "<audio" not in page


def test_a_damaged_recording_says_so(box, people):
    from firmware.errors import TamperError

    def damaged(call_id, key):
        raise TamperError("chunk 3 failed authentication")

    box.recordings.open_audio = damaged
    sam = people["sam"]
    resp = sam.get(audio_url(sam, 1))
    assert resp.status_code == 500
    assert "integrity check" in resp.get_data(as_text=True)


def test_the_call_page_marks_masked_keys_without_saying_which(box, people):
    """Issue 20: keys masked out of a recording show as places, never as digits."""
    import json
    import sqlite3

    from firmware.calls.calllog import iso_ms

    db = sqlite3.connect(box.data_dir + "/calls.db")
    started = db.execute("SELECT started_at FROM calls WHERE id = 3").fetchone()[0]
    marks = [iso_ms(started + 72_000_000), iso_ms(started + 72_150_000)]
    db.execute("UPDATE calls SET key_times = ? WHERE id = 3", (json.dumps(marks),))
    db.commit()
    db.close()
    page = people["sue"].get("/calls/3").get_data(as_text=True)
    shown = re.search(r'<dd id="key-marks">([^<]*)</dd>', page).group(1)
    # Where (from the call's start, as on its timeline), never which key.
    assert shown.startswith("2, at 1:12.0, 1:12.2 into the call"), shown
    assert "silenced in the recording" in shown
    assert 'id="key-marks"' not in people["sue"].get("/calls/7").get_data(as_text=True)


def test_the_call_page_says_digits_after_a_card_number_were_withheld(box, people):
    """Digits keyed after a card number while still dialling (a security code) are not
    kept: the call page says some were, never which or how many."""
    import sqlite3

    db = sqlite3.connect(box.data_dir + "/calls.db")
    db.execute("UPDATE calls SET digits_withheld = 1 WHERE id = 3")
    db.commit()
    db.close()
    page = people["sue"].get("/calls/3").get_data(as_text=True)
    shown = re.search(r'<dd id="digits-withheld">([^<]*)</dd>', page).group(1)
    assert "after a card number" in shown and "not kept" in shown
    assert 'id="digits-withheld"' not in people["sue"].get("/calls/7").get_data(as_text=True)
    # The calls CSV says so too, in its digits_withheld column (an inspector's copy).
    rows = list(csv.reader(io.StringIO(people["sue"].get("/calls.csv").get_data(as_text=True))))
    column = rows[0].index("digits_withheld")
    said = {row[0]: row[column] for row in rows[1:]}
    assert said["3"] == "yes" and said["7"] == "no"


def test_a_fault_in_a_page_answers_with_the_boxs_own_page(box, people, monkeypatch):
    """No page of the box showed a fault in its own words: Flask's bare 'Internal Server
    Error' came instead."""
    import web.views.calls as calls_view

    def broken(*args, **kwargs):
        raise RuntimeError("a fault nobody foresaw")

    monkeypatch.setattr(calls_view, "parse_filters", broken)
    box.app.testing = False  # as served: the fault is answered, not raised to the test
    resp = people["alice"].get("/calls")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 500 and "Something went wrong" in page and "tell your installer" in page
    assert "a fault nobody foresaw" not in page and "Traceback" not in page


def test_a_number_the_network_did_not_send_is_not_called_withheld(box, people):
    """Caller ID says why a number is missing: withheld by the caller ("private"), or not
    available to the network ("unavailable"). Both showed as "withheld", and the call page
    said "withheld by the caller (unavailable)"."""
    import sqlite3

    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    db.execute("UPDATE calls SET number = NULL, absence = 'unavailable' WHERE id = 1")
    db.execute("UPDATE calls SET number = NULL, absence = 'private' WHERE id = 3")
    db.commit()
    db.close()
    alice = people["alice"]
    unavailable = alice.get("/calls/1").get_data(as_text=True)
    assert "network did not send it" in unavailable and "withheld" not in unavailable
    private = alice.get("/calls/3").get_data(as_text=True)
    assert "withheld by the caller" in private and "network did not send" not in private
    listing = alice.get("/calls?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    numbers = re.findall(r'<span class="number">([^<]*)</span>', listing)
    assert numbers.count("unavailable") == 1 and numbers.count("withheld") == 1


def test_a_date_in_the_right_form_but_not_in_the_calendar_is_named_so(box, people):
    page = people["sam"].get("/calls?from=2026-02-30").get_data(as_text=True)
    assert "2026-02-30 is not a day of the calendar." in page and "Enter a date as YYYY-MM-DD" not in page


def test_a_line_with_its_default_name_is_not_named_twice(box, people):
    """The call page said "Line 1 — Line 1" for a line nobody had named."""
    page = people["alice"].get("/calls/1").get_data(as_text=True)
    assert re.search(r'<dd id="f-line">(.*?)</dd>', page).group(1) == "Line 1"


def test_an_export_the_recording_cannot_be_is_neither_offered_nor_audited(box, people):
    """A WAV-only recording (profile pcm) on a box whose web UI cannot sign: the page offers
    WAV only, and a forged Ogg or .zip request is refused before the audit trail hears of it."""
    import os

    from web.services import StoreRecordings

    box.store.begin(1, os.urandom(93), "pcm", 1000, box.T0_US, recording_id="%032x" % 1)
    box.store.finish("%032x" % 1, "complete", 3.0)
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)  # no signer
    # The row alone, no file: the page would say it cannot be played. The formats are tested.
    box.services.recordings.damaged = lambda call_id: None
    sam = people["sam"]
    page = sam.get("/calls/1").get_data(as_text=True)
    assert '<option value="wav">WAV</option>' in page
    assert 'value="ogg"' not in page and ".zip" not in page
    for fmt in ("ogg", "wav.zip"):
        resp = box.post(sam, "/calls/1/export", {"reason": "complaint ref 1234", "format": fmt})
        assert resp.status_code == 400 and "Choose WAV." in resp.get_data(as_text=True)
    assert box.services.audit.entries(action="export") == []


def test_tag_lists_hold_only_the_tags_of_calls_the_user_may_see(box, people):
    box.services.call_tags.add_tags(3, ["secret-project-x"])  # call 3: line 3 (sue's)
    box.services.call_tags.add_tags(1, ["complaint"])
    for path in ("/calls", "/calls/1"):
        page = people["sam"].get(path).get_data(as_text=True)
        assert "complaint" in page and "secret-project-x" not in page, path
    assert "secret-project-x" in people["sue"].get("/calls").get_data(as_text=True)
    assert "secret-project-x" in people["audrey"].get("/calls").get_data(as_text=True)


def test_a_tag_no_call_has_is_said_with_the_tags_in_use(box, people):
    """/calls?tag=urgnet (a well-formed tag no call has) listed "0 calls" without a word:
    the page now says no call has that tag and names the tags there are."""
    box.services.call_tags.add_tags(1, ["complaint"])
    box.services.call_tags.add_tags(2, ["sales"])
    box.services.call_tags.add_tags(3, ["secret-project-x"])  # line 3: not sam's
    sam = people["sam"]
    page = sam.get("/calls?tag=urgnet").get_data(as_text=True)
    assert ids_on(page) == []
    said = re.search(r'<p id="no-such-tag">(.*?)</p>', page, re.S)
    assert said, page
    assert html.unescape(said.group(1)) == (
        "No call you can see has the tag \u201curgnet\u201d. Tags in use: complaint, sales."
    )
    # A tag in use that the other fields leave out: the usual words, none of these.
    page = sam.get("/calls?tag=complaint&direction=out&line=2").get_data(as_text=True)
    assert ids_on(page) == [] and "no-such-tag" not in page and "No calls match." in page
    # No tag on any call sam may see.
    page = people["sue"].get("/calls?tag=complaint").get_data(as_text=True)
    assert "No call you can see has the tag \u201ccomplaint\u201d. Tags in use: secret-project-x." in (
        html.unescape(page)
    )
    box.services.call_tags.remove_tag(3, "secret-project-x")
    page = html.unescape(people["sue"].get("/calls?tag=complaint").get_data(as_text=True))
    assert "No call you can see has the tag \u201ccomplaint\u201d; no call you can see has a tag yet." in page


def test_withheld_and_unavailable_callers_are_found_by_the_word_the_list_shows(box, people):
    import sqlite3

    db = sqlite3.connect(box.data_dir + "/calls.db")
    db.execute("UPDATE calls SET number = NULL, absence = 'private' WHERE id IN (1, 5)")
    db.execute("UPDATE calls SET number = NULL, absence = 'unavailable' WHERE id = 2")
    db.commit()
    db.close()
    sam = people["sam"]

    def found(query):
        page = sam.get("/calls?" + query).get_data(as_text=True)
        return sorted(int(n) for n in re.findall(r'href="/calls/(\d+)"', page))

    assert found("number=withheld") == [1, 5] == found("number=Private")
    assert found("number=unavailable") == [2]
    csv = sam.get("/calls.csv?number=withheld").get_data(as_text=True)
    assert csv.count(",withheld,") == 2


def test_query_keys_that_are_not_the_forms_do_not_reach_its_links(box, people):
    """/calls?_anchor=x answered 500 (url_for took it as its own); ?_external=1 made the
    page and CSV links absolute, built from the request's Host header."""
    sam = people["sam"]
    for query in ("_anchor=x", "_scheme=https", "_method=POST", "_external=1", "_external=1&_scheme=ftp"):
        resp = sam.get("/calls?line=1&" + query)
        assert resp.status_code == 200, query
        page = resp.get_data(as_text=True)
        assert "http://localhost" not in page and 'href="/calls.csv?line=1"' in page, query


def test_a_calls_csv_cut_short_by_a_card_error_ends_with_a_row_saying_so(box, people, monkeypatch):
    """A batch that failed to read ended the download short and nothing in the file
    said so: a supervisor held 14 calls that looked like the whole list. Its last row
    now says it stopped early and why, and the early stop is audited."""
    import csv
    import io

    from web.views import calls as calls_view

    monkeypatch.setattr(calls_view, "CSV_BATCH", 7, raising=False)
    search = box.services.calls
    real = search.search
    batches = []

    def failing(flt, after=None, limit=50, before=None):
        batches.append(after)
        if len(batches) == 3:
            raise OSError(5, "Input/output error")
        return real(flt, after=after, limit=limit, before=before)

    monkeypatch.setattr(search, "search", failing)
    rows = list(csv.reader(io.StringIO(people["audrey"].get("/calls.csv").get_data(as_text=True))))
    assert [int(r[0]) for r in rows[1:-1]] == list(range(40, 26, -1))
    assert rows[-1][0].startswith("EXPORT STOPPED EARLY: this copy is NOT complete. Only the 14 rows above")
    assert "of the 40 it should hold (OSError: [Errno 5] Input/output error)" in rows[-1][0]
    cut = box.services.audit.entries(limit=1)[0]
    assert (cut.action, cut.target) == ("export_list_cut", "calls")
    assert (cut.details["rows"], cut.details["of"]) == (14, 40)


def test_the_calls_csv_is_sent_as_it_is_read_not_made_whole_first(box, people, monkeypatch):
    """Up to 100 000 calls were written to one string before the first byte left, in a web
    UI of 384 MiB. Now they are read a batch at a time as the download goes, each batch
    from where the last ended; the audit entry, written first, says how many rows the file
    holds, and it holds no more."""
    import csv
    import io

    import web.views
    from web.views import calls as calls_view

    monkeypatch.setattr(calls_view, "CSV_BATCH", 7, raising=False)
    monkeypatch.setattr(web.views, "CSV_CHUNK_ROWS", 5)
    search = box.services.calls
    reads = []
    real = search.search

    def counted(flt, after=None, limit=50, before=None):
        reads.append((after, limit))
        return real(flt, after=after, limit=limit, before=before)

    monkeypatch.setattr(search, "search", counted)
    resp = people["audrey"].get("/calls.csv", buffered=False)
    assert resp.status_code == 200 and len(reads) <= 1  # read as it goes, not whole first
    exported = box.services.audit.entries(limit=1)[0]
    assert (exported.action, exported.target, exported.details["rows"]) == ("export_list", "calls", 40)
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == list(range(40, 0, -1))
    assert len(reads) == 6 and reads[0][0] is None and all(after is not None for after, _ in reads[1:])
    # At most CSV_MAX_ROWS, as many as the audit entry says.
    monkeypatch.setattr(calls_view, "CSV_MAX_ROWS", 10)
    text = people["audrey"].get("/calls.csv?line=1").get_data(as_text=True)
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(text))] == [37, 33, 29, 25, 21, 17, 13, 9, 5, 1]
    assert box.services.audit.entries(limit=1)[0].details == {
        "filter": {"line": "1"},
        "rows": 10,
        "address": "192.0.2.10",
    }


def test_a_calls_csv_that_would_hold_more_than_one_download_is_refused_saying_so(box, people, monkeypatch):
    """A search selecting more than CSV_MAX_ROWS calls gave a file of the newest of them,
    and nothing in it said the rest were left out: a copy handed on looked whole. It is
    refused with the count and what to do, nothing is audited as exported, and the calls
    page says so where the download link was."""
    from web.views import calls as calls_view

    monkeypatch.setattr(calls_view, "CSV_MAX_ROWS", 9)
    audrey = people["audrey"]
    before = box.services.audit.entries(limit=1)[0].seq
    resp = audrey.get("/calls.csv?line=1")  # line 1 has 10 of the 40 calls
    assert resp.status_code == 400
    said = html.unescape(resp.get_data(as_text=True))
    assert "This selects 10 calls, more than the 9 one download holds" in said
    assert "Choose a shorter period (from and to), and download each part." in said
    assert [e.action for e in box.services.audit.entries(limit=5) if e.seq > before] == []
    # A number search is counted up to one over the cap: "more than".
    resp = audrey.get("/calls.csv?number=0207946001&match=prefix")  # 10 calls
    assert resp.status_code == 400
    assert "This selects more than the 9 calls one download holds" in html.unescape(
        resp.get_data(as_text=True)
    )
    page = audrey.get("/calls?line=1").get_data(as_text=True)
    assert 'id="export-too-many"' in page and 'id="export-csv"' not in page
    monkeypatch.setattr(calls_view, "CSV_MAX_ROWS", 10)
    assert audrey.get("/calls.csv?line=1").status_code == 200
    assert 'id="export-csv"' in audrey.get("/calls?line=1").get_data(as_text=True)


def viewed(box):
    """The trail's ``list_viewed`` entries, oldest first: ``(actor, target, details)``."""
    entries = box.services.audit.entries(limit=100, action="list_viewed", newest_first=False)
    return [(e.actor, e.target, {k: v for k, v in e.details.items() if k != "address"}) for e in entries]


def test_each_page_of_the_calls_list_shown_is_audited_with_its_search_and_calls(box, people):
    """The calls list shows each call's caller's number: a look at personal data a breach's
    scope must count, and only its CSV was audited. Now each page shown writes one entry
    with its search, how many calls it showed and which (never the numbers shown: the
    calls' ids, so an auditor can tell who saw a call in a list); a search refused shows
    none and writes none."""
    sam = people["sam"]
    shown = ids_on(sam.get("/calls").get_data(as_text=True))
    found = ids_on(sam.get("/calls?number=0207946001&match=prefix&line=1&line=2").get_data(as_text=True))
    assert sam.get("/calls?line=3").status_code == 400  # refused: no entry
    assert sam.get("/calls?number=abc").status_code == 400
    assert viewed(box) == [
        ("sam", "calls", {"filter": "all calls", "rows": len(shown), "calls": shown}),
        (
            "sam",
            "calls",
            {
                "filter": {"number": "0207946001", "match": "prefix", "line": ["1", "2"]},
                "rows": len(found),
                "calls": found,
            },
        ),
    ]
    assert len(shown) == 20 and 0 < len(found) < 20


def test_each_further_page_of_the_calls_list_is_an_entry_of_its_own(box, people, monkeypatch):
    from web.views import calls

    monkeypatch.setattr(calls, "PAGE", 15)
    alice = people["alice"]
    page = alice.get("/calls?direction=in").get_data(as_text=True)
    older = html.unescape(re.search(r'href="([^"]+)" id="next-page"', page).group(1))
    further = ids_on(alice.get(older).get_data(as_text=True))
    assert len(further) == 5
    assert [d for _, _, d in viewed(box)] == [
        {"filter": {"direction": "in"}, "rows": 15, "calls": ids_on(page)},
        {"filter": {"direction": "in"}, "rows": 5, "calls": further},
    ]


def test_starts_with_finds_a_number_dialled_after_141_relay_and_the_outside_line_digit(box, people):
    """A supervisor looking for a complaint's calls to 01632 960123 with "starts with" did
    not find them dialled as 141 01632 960123, 18001 01632 960123, or 9 01632 960123 on a
    line taking 9 for an outside line; only "contains" did. Now they are found, as a
    subject access search finds them, each row showing the number as dialled; the digits
    elsewhere in a number, and 9 before it where the line takes no 9, are not."""
    import dataclasses

    from firmware.policy.rules import LineMode

    from support.web import add_calls

    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(2, "always", "9"),))
    box.config_store.save(dataclasses.replace(config, policy=dataclasses.replace(config.policy, rules=rules)))
    add_calls(box.data_dir, ("901632960123", "14101632960123"), line=2, direction="out")  # 41, 42
    add_calls(box.data_dir, ("901632960123", "1800101632960123", "5501632960123"), direction="out")  # 43-45
    add_calls(box.data_dir, ("901632960123",), line=2)  # 46: a caller's number, not dialled
    sam = people["sam"]  # lines 1 and 2
    page = sam.get("/calls?number=01632+960123&match=prefix").get_data(as_text=True)
    assert sorted(ids_on(page)) == [41, 42, 44]
    for dialled in ("901632960123", "14101632960123", "1800101632960123"):
        assert '<span class="number">%s</span>' % dialled in page
    csv_text = sam.get("/calls.csv?number=01632+960123&match=prefix").get_data(as_text=True)
    assert sorted(int(row["id"]) for row in csv.DictReader(io.StringIO(csv_text))) == [41, 42, 44]
    page = sam.get("/calls?number=01632+960123&match=contains").get_data(as_text=True)
    assert sorted(ids_on(page)) == [41, 42, 43, 44, 45, 46]


@pytest.mark.parametrize("direction", ["in", "out"])
def test_a_call_nobody_answered_says_so_as_why_it_has_no_recording(box, people, direction):
    """A supervisor asked "was this call recorded, and if not why not?" of a missed call: its
    page said "The recording rules did not record it: never connected.", as if a rule had
    left it out, and "none kept for this call" of its consent notice. The recorder settles
    every unanswered call as skipped, "never connected" (firmware.policy.engine), so the
    words meant for it ("It was never answered...") were never reached."""
    import sqlite3

    from support.web import T0_US

    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    with db:
        call_id = db.execute(
            "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced, number,"
            " policy_decision, policy_reason) VALUES (1, ?, ?, ?, 1, '01632960123', 'skip',"
            " 'never connected')",
            (direction, T0_US, T0_US + 20_000_000),
        ).lastrowid
    db.close()
    page = people["sam"].get("/calls/%d" % call_id).get_data(as_text=True)
    said = " ".join(page.split('id="no-recording">')[1].split("</p>")[0].split())
    assert said == "This call has no recording. It was never answered, so there was nothing to record."
    notice = " ".join(page.split('id="f-consent">')[1].split("</dd>")[0].split())
    assert notice == "none: the call was not answered, so there was nobody to tell"


@pytest.mark.parametrize("reason", ["line 2 is private", 'number excluded by rule "gp surgery"'])
def test_a_call_the_rules_did_not_record_says_why_it_had_no_consent_notice(box, people, reason):
    """An installer checking a private line's answered call read "Consent notice: none kept
    for this call", as if a notice had been played and its record lost. A call the rules
    do not record gets no notice (docs/policy.md, "Consent notice"): the page says so."""
    import sqlite3

    from support.web import T0_US

    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    with db:
        call_id = db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " number, policy_decision, policy_reason) VALUES (2, 'out', ?, ?, ?, 1, '01134960001',"
            " 'skip', ?)",
            (T0_US, T0_US + 5_000_000, T0_US + 40_000_000, reason),
        ).lastrowid
    db.close()
    page = html.unescape(people["sam"].get("/calls/%d" % call_id).get_data(as_text=True))
    notice = " ".join(page.split('id="f-consent">')[1].split("</dd>")[0].split())
    assert notice == (
        "none: the recording rules did not record this call, and a call not recorded gets no notice"
    )


def test_the_calls_history_lists_each_detail_apart_as_the_audit_trail_does(box, people):
    """The call page's "Who did what" ran an entry's details together, "Line: 1 Paused for:
    5 s How: the keypad code" (seen on the page's screenshot, in a phone's cards): each is a
    name and its value of their own, as on the audit trail's page."""
    sam = people["sam"]
    assert box.post(sam, "/calls/2/hold", {"on": "1", "hold_reason": "complaint ref 1234"}).status_code == 302
    history = html.unescape(sam.get("/calls/2").get_data(as_text=True)).split('id="call-history"')[1]
    cells = re.findall(r'<td data-label="Details">(.*?)</td>', history.split("</table>")[0], re.S)
    assert cells
    for cell in cells:
        fields = re.fullmatch(r'<dl class="fields">((?:<dt>[^<]+</dt><dd>[^<]*</dd>)+)</dl>', cell)
        assert fields, cell
    assert "<dt>Line</dt><dd>" in history
