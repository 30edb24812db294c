"""The call page's timeline of a call still being recorded: its key said "Recorded: the thin
red band, under the events above it", and no band was drawn (the recording's length is
known only once it is sealed: the band was 0 wide). It runs from the recording's start to
now, the timeline's end, as the call's other spans in progress do."""

from web.callstory import timeline

T0_US = 1772442000000000  # 2026-03-02T09:00:00Z


def test_a_recording_in_progress_is_drawn_to_now():
    call = {
        "started_at": "2026-03-02T09:00:00.000Z",
        "answered_at": "2026-03-02T09:00:05.000Z",
        "direction": "in",
        "answered": True,
    }
    info = {"started_us": T0_US + 4_000_000, "duration_s": None}
    t = timeline(call, info, now_us=T0_US + 50_000_000)
    assert t["length_s"] == 50.0 and t["rec_from_s"] == 4.0
    assert t["rec_x"] == 80.0 and t["rec_w"] == 920.0  # 4 s to 50 s of 1000 units
    assert t["rec_x"] + t["rec_w"] == 1000.0


def test_a_sealed_recording_keeps_its_own_length():
    call = {
        "started_at": "2026-03-02T09:00:00.000Z",
        "answered_at": "2026-03-02T09:00:05.000Z",
        "ended_at": "2026-03-02T09:00:50.000Z",
        "end_reason": "remote_hangup",
        "direction": "in",
        "answered": True,
    }
    info = {"started_us": T0_US + 4_000_000, "duration_s": 40.0}
    t = timeline(call, info, now_us=T0_US + 90_000_000)
    assert t["rec_to_s"] == 44.0 and t["rec_w"] == 800.0
