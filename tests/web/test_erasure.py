"""Erasing one recording on request: destroyed as retention destroys, logged, audited, refused
when held, still recording, or asked without a reason."""

import contextlib
import csv
import dataclasses
import html
import io
import json
import os
import re
import sqlite3

from firmware.calls.calllog import iso_ms
from firmware.localtime import iso_to_us
from firmware.policy import deletions
from web.services import StoreRecordings


def real_recordings(box, call_ids):
    box.add_recordings(call_ids)
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)


def erase(box, client, call_id, **form):
    data = {"erase_reason": "erasure request ref 77", "confirm": "yes"}
    data.update(form)
    return box.post(client, "/calls/%d/erase" % call_id, data, token_from="/calls/%d" % call_id)


def test_a_supervisor_erases_a_recording_with_a_reason(box, people):
    real_recordings(box, [1, 5])
    sam = people["sam"]
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="erase-form"' in page
    path = box.store.path_of("%032x" % 1)
    assert os.path.exists(path)
    resp = erase(box, sam, 1)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    # Gone as retention's deletions go: its row (and key), its file; call 5 untouched.
    assert [r["call_id"] for r in box.store.all()] == [5]
    assert not os.path.exists(path)
    (entry,) = box.sweeper.deletion_log()
    assert entry["reason"] == "erasure" and entry["rule"] == "erasure request" and entry["call_id"] == 1
    (audited,) = box.services.audit.entries(action="delete")
    assert audited.actor == "sam" and audited.target == "call:1"
    assert audited.details["reason"] == "erasure request ref 77"
    assert audited.details["recordings"] == ["%032x" % 1]
    # The audit entry anchors the deletion log: removing the entry shows.
    assert deletions.latest_anchor(box.audit) == (entry["seq"], entry["hash"])
    assert box.sweeper.verify() == []
    page = sam.get("/calls/1").get_data(as_text=True)
    assert "Its recording was erased on" in page and "on request" in page
    # The calls list and its CSV say it is gone, not that the call was never recorded;
    # both, as the call's page, that it was erased on request.
    row = re.search(r'<tr id="call-1".*?</tr>', sam.get("/calls").get_data(as_text=True), re.S).group(0)
    assert 'data-label="Recording">Erased on request<' in row
    assert any(
        line.startswith("1,") and ",erased," in line
        for line in sam.get("/calls.csv").get_data(as_text=True).splitlines()
    )
    history = page.split('id="call-history"')[1]
    assert "Asked to erase the recording" in history and "erasure request ref 77" in history
    assert 'id="erase-form"' not in page


def test_the_deletion_log_page_says_it_holds_erasures_on_request_too(box, people):
    """The page began "Every recording retention deleted" above an erasure on request
    (and a full card's overwrite), which an auditor read as the log of retention alone."""
    real_recordings(box, [1])
    assert erase(box, people["sam"], 1).status_code == 302
    page = people["audrey"].get("/retention/deletions").get_data(as_text=True)
    lead = html.unescape(re.search(r"</h1>\s*<p>(.*?)</p>", page, re.S).group(1))
    assert "retention deleted" not in lead
    assert "erased on request" in lead and "full card" in lead
    assert ">erasure request<" in page


def test_the_reports_help_counts_erasures_among_the_recordings_deleted(box, people):
    """The help said a report shows "how many recordings retention deleted", where its
    figure and its table by rule count erasures on request and a full card's too."""
    page = html.unescape(people["sam"].get("/help/reports").get_data(as_text=True))
    assert "recordings retention deleted" not in page
    assert "how many recordings were deleted and why" in page and "erased on request" in page


def test_the_calls_csv_and_list_tell_an_erasure_on_request_from_a_retention_deletion(box, people):
    """Both recordings are gone, but the CSV said ``deleted`` of both while the call's page
    said one was erased on request: an inspector checking that erasure requests were
    carried out could not find them in the export. The list said "Deleted" of both."""
    real_recordings(box, [1, 2])
    sam = people["sam"]
    assert erase(box, sam, 1).status_code == 302
    # The calls are 40 days old: a 30-day default deletes call 2's recording.
    box.sweeper.update_settings(dataclasses.replace(box.sweeper.settings, default_days=30))
    assert box.sweeper.sweep().deleted == 1
    text = sam.get("/calls.csv").get_data(as_text=True)
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}
    assert rows[1]["recording"] == "erased"
    assert rows[2]["recording"] == "deleted"
    assert rows[5]["recording"] == ""  # never recorded
    page = sam.get("/calls").get_data(as_text=True)
    said = dict(re.findall(r'<tr id="call-(\d+)".*?data-label="Recording">([^<]*)<', page, re.S))
    assert (said["1"], said["2"], said["5"]) == ("Erased on request", "Deleted", "No recording")


def test_the_subject_access_page_tells_an_erasure_on_request_from_a_retention_deletion(box, people):
    """The Subject access page said "Deleted: not in the release" of a recording erased on
    the person's request too, while the calls list and the call's page said it was erased."""
    real_recordings(box, [1, 2])
    sam = people["sam"]
    assert erase(box, sam, 1).status_code == 302
    box.sweeper.update_settings(dataclasses.replace(box.sweeper.settings, default_days=30))
    assert box.sweeper.sweep().deleted == 1
    page = sam.get("/sar?from=2026-03-02").get_data(as_text=True)
    table = page.split('id="sar-calls"')[1].split("</table>")[0]
    said = dict(re.findall(r'<a href="/calls/(\d+)">.*?data-label="Recording">([^<]*)<', table, re.S))
    assert said["1"] == "Erased on request: not in the release"
    assert said["2"] == "Deleted: not in the release"
    assert said["5"] == "No recording"


def notice_played(box, call_id, at_s=5.0):
    """Call ``call_id``'s log entry: its spoken announcement played ``at_s`` into the call,
    for 3.1 s, as the recorder writes it."""
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    with db:
        started_us = db.execute("SELECT started_at FROM calls WHERE id = ?", (call_id,)).fetchone()[0]
        consent = {
            "notice": "announcement",
            "given": True,
            "at": iso_ms(started_us + int(at_s * 1e6)),
            "duration_s": 3.1,
        }
        db.execute("UPDATE calls SET consent = ? WHERE id = ?", (json.dumps(consent), call_id))
    db.close()


def consent_line(client, call_id):
    shown = client.get("/calls/%d" % call_id).get_data(as_text=True)
    said = re.search(r'id="f-consent">(.*?)</dd>', shown, re.S).group(1)
    return " ".join(re.sub(r"<[^>]*>", "", said).split())  # its words, as a person reads them


def test_a_call_whose_recording_is_erased_no_longer_says_the_recording_proves_its_notice(box, people):
    """Erased, the call's Recording section said it had no recording, but its Consent
    notice line still said "It is in the recording, which is the proof"."""
    real_recordings(box, [1])
    notice_played(box, 1)
    sam = people["sam"]
    before = consent_line(sam, 1)
    assert "Spoken announcement played at" in before and "for 3.1 s" in before
    assert "It is in the recording, which is the proof." in before
    assert erase(box, sam, 1).status_code == 302
    after = consent_line(sam, 1)
    assert "Spoken announcement played at" in after and "for 3.1 s" in after
    assert "in the recording" not in after and "proof" not in after
    assert (
        "Its recording has since been erased on request, so this entry of the call log is what "
        "remains to show it was played." in after
    )


def test_a_call_s_notice_is_said_to_be_in_its_recording_only_when_it_is(box, people):
    """The same words, "It is in the recording, which is the proof", were said of a call
    whose recording retention deleted, of one never recorded, and of one recorded on
    demand from the request, after its notice had been played."""
    real_recordings(box, [5, 17])
    # Call 9 (line 1, 08:00 after T0) is recorded from 20 s into it: after its notice at 5 s.
    late = "%032x" % 9
    started_us = box.T0_US + (8 * 60 + 20) * 1_000_000
    box.store.begin(9, os.urandom(93), "voice", 1000, started_us, recording_id=late)
    with open(box.store.path_of(late), "wb") as f:
        f.write(os.urandom(1000))
    box.store.finish(late, "complete", 10.0)
    for call_id in (5, 9, 13, 17):
        notice_played(box, call_id)
    # Call 17's line is paused (card details) from 4 s to 12 s into it, over its notice.
    start_us = box.T0_US + 16 * 60 * 1_000_000
    pause = {"from": iso_ms(start_us + 4_000_000), "to": iso_ms(start_us + 12_000_000)}
    db = sqlite3.connect(os.path.join(box.data_dir, "calls.db"))
    with db:
        spans = json.dumps([dict(pause, by="dtmf", ended_by="dtmf")])
        db.execute("UPDATE calls SET pause_spans = ? WHERE id = 17", (spans,))
    db.close()
    sam = people["sam"]
    assert "It is in the recording, which is the proof." in consent_line(sam, 5)
    on_demand = consent_line(sam, 9)
    assert "in the recording, which is the proof" not in on_demand
    assert (
        "The recording began after it, at Mon 2 Mar 2026, 09:08:20 GMT, so it does not hold all "
        "of it: this entry of the call log is what shows it was played." in on_demand
    )
    paused = consent_line(sam, 17)
    assert "in the recording, which is the proof" not in paused
    assert (
        "The line was paused (card details) while it played, so it is silenced in the recording "
        "there: this entry of the call log is what shows it was played." in paused
    )
    # The calls are 40 days old: a 30-day default deletes their recordings.
    box.sweeper.update_settings(dataclasses.replace(box.sweeper.settings, default_days=30))
    assert box.sweeper.sweep().deleted == 3
    deleted = consent_line(sam, 5)
    assert "in the recording" not in deleted and "proof" not in deleted
    assert "Its recording has since been deleted, so this entry of the call log is what remains" in deleted
    never = consent_line(sam, 13)
    assert "in the recording" not in never and "proof" not in never
    assert "The call has no recording, so this entry of the call log is the only record" in never


def test_an_erasure_is_refused_without_a_reason_or_confirmation(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    for form, message in (
        ({"erase_reason": "no"}, "Say why this recording is erased"),
        ({"erase_reason": "x" * 501}, "At most 500 characters"),
        ({"erase_reason": "request \u202e77"}, "control"),
        ({"confirm": ""}, "Tick the box to confirm"),
    ):
        resp = erase(box, sam, 1, **form)
        assert resp.status_code == 400
        assert message in html.unescape(resp.get_data(as_text=True))
    assert [r["call_id"] for r in box.store.all()] == [1]
    assert box.sweeper.deletion_log() == [] and box.services.audit.entries(action="delete") == []


def test_a_held_recording_is_not_erased(box, people):
    real_recordings(box, [1])
    sam = people["sam"]
    box.services.recordings.set_legal_hold(1, True, by="sam")
    page = sam.get("/calls/1").get_data(as_text=True)
    assert 'id="erase-form"' not in page and 'id="erase-held"' in page
    resp = erase(box, sam, 1)
    assert resp.status_code == 409
    assert "on legal hold: release the hold" in resp.get_data(as_text=True)
    assert [r["call_id"] for r in box.store.all()] == [1]
    assert box.sweeper.deletion_log() == [] and box.services.audit.entries(action="delete") == []


def test_a_recording_still_being_made_is_not_erased(box, people):
    box.store.begin(1, os.urandom(93), "voice", 1000, box.T0_US, recording_id="%032x" % 1)
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    resp = erase(box, people["sam"], 1)
    assert resp.status_code == 409
    assert "still being recorded" in resp.get_data(as_text=True)
    assert [r["state"] for r in box.store.all()] == ["recording"]


def test_only_a_supervisor_of_the_line_may_erase(box, people):
    real_recordings(box, [1])
    assert erase(box, people["sue"], 1).status_code == 404  # line 3's supervisor
    assert erase(box, people["audrey"], 1).status_code in (403, 404)
    assert erase(box, people["ivan"], 1).status_code in (403, 404)
    assert 'id="erase-form"' not in people["audrey"].get("/calls/1").get_data(as_text=True)
    assert [r["call_id"] for r in box.store.all()] == [1]


@contextlib.contextmanager
def beside_a_recorder(box, tmp_path):
    """A :class:`~web.remote.RemoteRetention` asking a recorder (over its control socket)
    whose sweeper is the box's."""
    from types import SimpleNamespace

    from firmware.control import ControlClient, ControlServer, recorder_handlers
    from web.remote import RemoteRetention

    recorder = SimpleNamespace(
        status=SimpleNamespace(snapshot=dict), clock=SimpleNamespace(wall_us=int), retention=box.sweeper
    )
    server = ControlServer(str(tmp_path / "control.sock"), recorder_handlers(recorder))
    server.start()
    client = ControlClient(str(tmp_path / "control.sock"))
    try:
        yield RemoteRetention(client, box.sweeper)
    finally:
        client.close()
        server.stop()


def test_beside_a_running_recorder_the_recorder_erases(box, tmp_path):
    """Split services: the web UI asks the recorder (whose archive follows the deletion);
    a refusal comes back in the recorder's words."""
    from firmware.control import ControlError

    box.add_recordings([1, 2])
    box.services.recordings = StoreRecordings(box.store, box.box_clock.wall_us)
    box.services.recordings.set_legal_hold(2, True, by="sam")
    with beside_a_recorder(box, tmp_path) as remote:
        assert remote.erase(1, "sam", "erasure request ref 9") == 1
        try:
            remote.erase(2, "sam", "erasure request ref 9")
        except ControlError as exc:
            assert "on legal hold" in str(exc)
        else:
            raise AssertionError("a held recording was erased")
    assert [r["call_id"] for r in box.store.all()] == [2]
    assert [e.actor for e in box.services.audit.entries(action="delete")] == ["sam"]


def test_beside_a_running_recorder_its_entries_say_where_the_page_was_used(box, tmp_path):
    """The recorder writes the entries of an erasure and of a confirmed clock: they lacked
    the "From address" every action from a page carries. The web UI sends it (an optional
    argument: a caller that is not a page sends none, and its entries have none)."""
    box.add_recordings([1, 2])
    box.box_clock.start_wall_us += 3600 * 10**6  # a clock jump: deletion suspended
    assert box.sweeper.sweep().refused == "jump"
    with beside_a_recorder(box, tmp_path) as remote:
        assert remote.erase(1, "sam", "erasure request ref 9", address="192.0.2.31") == 1
        remote.erase_details(1, "sam", "erasure request ref 9", address="192.0.2.32")
        remote.confirm_clock("ivan", address="192.0.2.33")
        assert remote.client.call("erase", call_id=2, actor="sam", reason="ref 10") == 1
    deletes = box.services.audit.entries(action="delete")
    assert [e.details.get("address") for e in deletes] == [None, "192.0.2.31"]  # newest first
    (details,) = box.services.audit.entries(action="erase_details")
    assert details.details["address"] == "192.0.2.32"
    changes = box.services.audit.entries(action="config_change")
    (clock,) = [e for e in changes if e.target == "retention.clock"]
    assert (clock.actor, clock.details["address"]) == ("ivan", "192.0.2.33")


def test_a_recording_begun_within_a_frame_of_its_notice_holds_it():
    """The notice's time is kept to the millisecond, cut down, and a recording with no
    pre-roll begins on the encoder's frame grid: one begun 0.5 ms or one 120 ms frame after
    the notice's millisecond was said to have begun "late", after the notice."""
    from web.callstory import notice_proof

    at_us = 1_780_000_000_020_000
    call = {"consent": {"at": "2026-05-28T20:26:40.020Z", "duration_s": 3.1}}
    assert iso_to_us(call["consent"]["at"]) == at_us
    for after_us, said in ((500, "recording"), (120_000, "recording"), (200_000, "late")):
        assert notice_proof(call, {"started_us": at_us + after_us}, []) == said, after_us
