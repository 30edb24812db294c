"""The call page's timeline of a call whose silence clear stood: its recording runs on
past the call log's end, to the hang-up (docs/adapters.md), and the axis shows all of it."""

from web.callstory import timeline


def test_a_recording_past_the_calls_end_stays_on_the_axis():
    call = {
        "started_at": "2026-03-02T09:00:00.000Z",
        "answered_at": "2026-03-02T09:00:05.000Z",
        "ended_at": "2026-03-02T09:00:10.000Z",  # where the line went quiet
        "end_reason": "remote_silence",
        "direction": "in",
        "answered": True,
    }
    info = {"started_us": 1772442004000000, "duration_s": 100.0}  # 09:00:04, to the hang-up
    t = timeline(call, info, now_us=0)
    assert t["length_s"] == 104.0 and t["rec_to_s"] == 104.0
    assert t["rec_x"] + t["rec_w"] == 1000.0  # drawn to the end of the axis, not cut at 10 s
    (end,) = [e for e in t["events"] if e["kind"] == "end"]
    assert end["at_s"] == 10.0 and end["seek_s"] == 6.0
