"""The call page's timeline of a call that ended while paused: the pause, ended by the
call's end, was marked at the capture period it was closed in, after the hang-up the call
log keeps, and the timeline said "(to 0:45.9)" beside "We hung up 0:45.8"."""

from web.callstory import timeline


def shown(s):
    """A time on the axis as the page writes it (call.html)."""
    return "%d:%04.1f" % (s // 60, s % 60)


def test_a_pause_ended_by_the_calls_end_ends_no_later_than_the_end_shown():
    call = {
        "started_at": "2026-03-02T09:00:00.000Z",
        "answered_at": "2026-03-02T09:00:05.000Z",
        "ended_at": "2026-03-02T09:00:45.840Z",
        "end_reason": "local_hangup",
        "direction": "out",
        "answered": True,
        "pause_spans": [
            {
                "from": "2026-03-02T09:00:30.000Z",
                "to": "2026-03-02T09:00:45.900Z",
                "by": "dtmf",
                "ended_by": "call_end",
            }
        ],
    }
    info = {"started_us": 1772442004000000, "duration_s": 41.9}
    t = timeline(call, info, now_us=0)
    (pause,) = [e for e in t["events"] if e["kind"] == "pause"]
    (end,) = [e for e in t["events"] if e["kind"] == "end"]
    assert pause["to_s"] == end["at_s"] == 45.84
    assert shown(pause["to_s"]) == shown(end["at_s"]) == "0:45.8"
    assert pause["label"] == "Paused (16 s): nothing recorded"
    assert pause["x"] + pause["w"] == 1000.0
