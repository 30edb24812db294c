"""`linekeeper linecheck` on a simulated day: each line's adapter profile is
recognised from what the box saw (issue 18)."""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware import cli
from firmware.box import open_sim_box
from firmware.linecheck import read

GOODBYE = "Thank you for calling, goodbye now, goodbye, goodbye, goodbye, goodbye, goodbye, goodbye"


def day(country, sources, lines):
    """Every line: an answered call cleared by the far end, a missed call, an outbound call."""
    calls = []
    for line in range(1, lines + 1):
        silent = sources.get(str(line)) == "silent-ata"
        calls += [
            {
                "line": line,
                "at": 1.0,
                "direction": "in",
                "caller_id": {"number": "0163296012%d" % line},
                "rings": 2,
                "talk": 5.0,
                "hangup": "remote",
                "hangup_delay": 15.0 if silent else 3.0,
                "speech": [{"at": 0.2, "text": GOODBYE if silent else "Hello"}],
            },
            {
                "line": line,
                "at": 40.0,
                "direction": "in",
                "caller_id": {"absence": "private"},
                "rings": 2,
                "answer": False,
            },
            {"line": line, "at": 70.0, "direction": "out", "dial": {"digits": "02079460000"}, "talk": 4.0},
        ]
    return {
        "start": "2026-03-02T09:00:00Z",
        "country": country,
        "lines": lines,
        "seed": 2,
        "sources": sources,
        "calls": calls,
        "config": {"silence_clear_s": 10},
    }


def run_day(spec, data_dir, synth):
    box = open_sim_box(loads_scenario(json.dumps(spec)), str(data_dir), synth=synth)
    box.start()
    assert box.board.run()
    status = box.status.snapshot()
    box.stop()
    return status


def linecheck(data_dir, capsys, *extra):
    assert cli.main(["linecheck", "--data-dir", str(data_dir), *extra]) == 0
    return capsys.readouterr().out


def test_a_uk_day_on_four_adapters(tmp_path, synth, capsys):
    sources = {"1": "uk-dv-hub", "2": "etsi-dtas-hub", "3": "etsi-ring-ata", "4": "silent-ata"}
    status = run_day(day("uk", sources, 4), tmp_path, synth)
    report = json.loads(linecheck(tmp_path, capsys, "--json"))
    assert {entry["line"]: entry["profiles"] for entry in report["lines"]} == {
        int(k): [v] for k, v in sources.items()
    }
    assert all(entry["calls"] == 3 for entry in report["lines"])
    text = linecheck(tmp_path, capsys)
    assert "line 4: 3 calls seen" in text and "behaves like:  silent-ata" in text
    # The status page shows what each line learned.
    by_line = {entry["line"]: entry for entry in report["lines"]}
    assert by_line[2]["answer_reversal"] >= 2 and by_line[1]["answer_reversal"] == 0
    learned = {entry["line"]: entry["learned"] for entry in status["lines"]}
    assert learned[1]["caller_id"] == "v23:before_ring:dtas:reversal"
    assert learned[3]["text"] == "caller ID v23 after first ring; clear: loop break; like etsi-ring-ata"
    assert learned[4]["clear"] == "remote_silence"


def test_a_us_day_tells_the_ata_from_the_exchange(tmp_path, synth, capsys):
    run_day(day("us", {"1": "us-ata-bell202", "2": "exchange", "3": "etsi-rpas-hub"}, 3), tmp_path, synth)
    report = {e["line"]: e for e in json.loads(linecheck(tmp_path, capsys, "--json"))["lines"]}
    assert report[1]["profiles"] == ["us-ata-bell202"]
    assert report[3]["profiles"] == ["etsi-rpas-hub"]
    assert report[3]["caller_id"] == {"v23:before_ring:ring_pulse": 2}  # answered, missed
    assert report[3]["ring_ms"][:4] == pytest.approx([400, 200, 400, 2000], abs=60)
    assert report[1]["clears"] == {"remote_tone": 1}
    # The exchange clears by a K-break: like no adapter profile.
    assert report[2]["profiles"] == [] and report[2]["clears"] == {"remote_break": 1}


def test_observations_survive_a_restart(tmp_path, synth):
    spec = day("uk", {"1": "uk-dv-hub"}, 1)
    run_day(spec, tmp_path, synth)
    run_day(spec, tmp_path, synth)
    assert read(str(tmp_path))[1]["calls"] == 6


def test_no_calls_yet_and_an_unreadable_check(tmp_path, capsys):
    assert "no calls seen yet" in linecheck(tmp_path, capsys)
    (tmp_path / "linecheck.json").write_text("{not json")
    assert cli.main(["linecheck", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linekeeper: the line check in") and "\n" not in err


def test_a_missing_data_dir_is_one_line_exit_2(tmp_path, capsys):
    assert cli.main(["linecheck", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "no data directory" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["uk-dv-hub", "us-ata-bell202"])
def test_every_profile_fits_its_own_description(profile):
    from board.adapter import load_adapter
    from firmware.linecheck import _empty, matching_profiles, variant_of

    adapter = load_adapter(profile)
    obs = dict(
        _empty(),
        calls=1,
        caller_id={variant_of(adapter): 1},
        clears={adapter.end_reason: 1},
        ring_ms=list(adapter.ring.cadence_ms),
    )
    assert profile in matching_profiles(obs, [adapter])


def test_a_us_cadence_on_a_uk_box_is_pointed_out(tmp_path, synth, capsys):
    """Without ring_timeout_ms each 2 s burst of a US-cadence ATA ends as a missed call;
    the line check still recognises the ATA and says what to set."""
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "seed": 3,
        "sources": {"1": "us-ata-bell202"},
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 2, "answer": False}],
    }
    run_day(spec, tmp_path, synth)
    text = linecheck(tmp_path, capsys)
    assert "line 1: 2 calls seen" in text  # one call, split in two
    assert "set ring_timeout_ms to 5500" in text and "us-ata-bell202" in text


def test_the_us_cadence_note_goes_once_ring_timeout_ms_is_set(tmp_path, synth, capsys):
    """The installer did what the note said (ring_timeout_ms 5500): the line check no
    longer tells them to, and the US-cadence call is one call, not a missed call per ring."""
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "seed": 3,
        "sources": {"1": "us-ata-bell202"},
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 2, "answer": False}],
        "config": {"ring_timeout_ms": 5500},
    }
    run_day(spec, tmp_path, synth)
    text = linecheck(tmp_path, capsys)
    assert "line 1: 1 call seen" in text and "us-ata-bell202" in text
    assert "ring_timeout_ms" not in text
    assert json.loads(linecheck(tmp_path, capsys, "--json"))["ring_timeout_ms"] == 5500


def test_the_us_cadence_note_says_the_timeout_the_box_ran_with(tmp_path, synth, capsys):
    spec = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 1,
        "seed": 3,
        "sources": {"1": "us-ata-bell202"},
        "calls": [{"line": 1, "at": 1.0, "direction": "in", "rings": 2, "answer": False}],
        "config": {"ring_timeout_ms": 4000},
    }
    run_day(spec, tmp_path, synth)
    text = linecheck(tmp_path, capsys)
    assert "the box ran with ring_timeout_ms 4000" in text and "set ring_timeout_ms to 5500" in text


# --- how often linecheck.json is written (docs/audit-writes.md) ----------------------------------


def ended(line, t_us, cid="v23:before_ring:dtas:reversal", reason="remote_break"):
    from firmware.bus import CallEnded
    from firmware.calls.call import Call

    call = Call(line=line, direction="in", started_us=t_us - 60_000_000)
    call.notes, call.end_reason, call.ring_cadence_ms = ["cid:" + cid], reason, (400, 200, 400, 2000)
    return CallEnded(line=line, t_us=t_us, call=call)


@pytest.fixture
def check(tmp_path, monkeypatch):
    from firmware import linecheck

    writes = []
    real = linecheck.atomic_write
    kwargs = []
    monkeypatch.setattr(
        linecheck, "atomic_write", lambda *a, **k: writes.append(a[0]) or kwargs.append(k) or real(*a, **k)
    )
    check = linecheck.LineCheck(str(tmp_path), 2)
    check.writes, check.kwargs = writes, kwargs
    return check


def test_the_check_is_written_when_a_line_shows_something_new_not_after_every_call(check, tmp_path):
    check._ended(ended(1, 100_000_000))  # the first call: a caller-ID variant and a clear seen
    assert len(check.writes) == 1 and read(str(tmp_path))[1]["calls"] == 1
    for k in range(2, 6):  # the same again: counts only
        check._ended(ended(1, k * 100_000_000))
    assert len(check.writes) == 1
    check._ended(ended(1, 700_000_000, cid="v23:after_ring"))  # another variant: at once
    assert len(check.writes) == 2 and read(str(tmp_path))[1]["calls"] == 6


def test_counts_alone_are_written_every_ten_minutes_and_at_the_stop(check, tmp_path):
    from firmware.linecheck import SAVE_EVERY_US

    check._ended(ended(1, 100_000_000))
    check._ended(ended(1, 100_000_000 + SAVE_EVERY_US - 1))
    assert len(check.writes) == 1
    check._ended(ended(1, 100_000_000 + SAVE_EVERY_US))
    assert len(check.writes) == 2 and read(str(tmp_path))[1]["calls"] == 3
    check._ended(ended(1, 200_000_000 + SAVE_EVERY_US))
    check.close()  # the clean stop: what waits is written
    assert len(check.writes) == 3 and read(str(tmp_path))[1]["calls"] == 4
    # ... with the stop's next commit (its clean-stop mark's), not two of its own.
    assert check.kwargs == [{"sync_dir": True}] * 2 + [{"sync_dir": False}]
    check.close()  # nothing new: nothing written
    assert len(check.writes) == 3


def test_a_card_that_refuses_the_check_does_not_stop_a_call_ending(check, tmp_path, monkeypatch):
    from firmware import linecheck

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(linecheck, "atomic_write", full)
    check._ended(ended(1, 100_000_000))
    monkeypatch.undo()
    assert read(str(tmp_path)) == {}
    check.close()  # still waiting: written now
    assert read(str(tmp_path))[1]["calls"] == 1


def test_a_port_that_signals_no_hang_up_is_pointed_out(tmp_path, synth, capsys):
    """A silent ATA's calls end only by the silence clear, a minute late: the line check
    says what to enable on the ATA (docs/adapters.md), as it does for a US cadence."""
    sources = {"1": "silent-ata", "2": "uk-dv-hub"}
    run_day(day("uk", sources, 2), tmp_path, synth)
    text = linecheck(tmp_path, capsys)
    line1, line2 = text.split("line 2:")
    assert "note: the far end's hang-up was seen only as silence" in line1
    assert "enable the ATA's loop current disconnect (CPC) or its disconnect tone" in line1
    assert "note:" not in line2


def test_an_exchange_line_with_v23_and_dtmf_caller_id_is_like_no_adapter(tmp_path, synth, capsys):
    """The demo's line 1, an exchange line: V.23 and DTMF caller ID, no far-end clear yet.
    A profile fitted when any one variant seen was its own, so the dashboard said
    "like silent-ata, uk-dv-hub" of a line that is neither."""
    calls = [
        {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960121"}, "talk": 3.0},
        {
            "line": 1,
            "at": 40.0,
            "direction": "in",
            "caller_id": {"number": "01632960122", "standard": "dtmf"},
            "talk": 3.0,
        },
    ]
    spec = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "seed": 2, "calls": calls}
    status = run_day(spec, tmp_path, synth)
    report = json.loads(linecheck(tmp_path, capsys, "--json"))["lines"][0]
    assert sorted(report["caller_id"]) == ["dtmf:before_ring:reversal", "v23:before_ring:dtas:reversal"]
    assert report["profiles"] == []
    assert "behaves like:  no shipped profile" in linecheck(tmp_path, capsys)
    text = status["lines"][0]["learned"]["text"]
    assert "silent-ata" not in text and "uk-dv-hub" not in text
    assert text.endswith("; like no adapter profile"), text


def test_a_line_that_fits_before_a_far_end_clear_is_not_named_yet(tmp_path, synth, capsys):
    """V.23 caller ID with a reversal and an alert and no far-end clear yet: an exchange line
    and a uk-dv-hub look the same until the far end hangs up (a 200 ms K-break or 600 ms)."""
    calls = [{"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960121"}, "talk": 3.0}]
    spec = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "seed": 2, "calls": calls}
    status = run_day(spec, tmp_path, synth)
    text = status["lines"][0]["learned"]["text"]
    assert text == (
        "caller ID v23 before ring (dtas, reversal); "
        "not enough seen yet (no far-end clear; fits uk-dv-hub so far)"
    )
    report = linecheck(tmp_path, capsys)
    assert "behaves like:  not enough seen yet (no far-end clear; fits uk-dv-hub so far)" in report


def test_a_foreign_busy_tone_is_a_limit_docs_adapters_md_names(tmp_path, synth, capsys):
    """A US ATA on a UK box without "tone_countries": its busy tone is not one the box listens
    for, so the calls end when our side hangs up and the line check says "far-end clear: none
    seen". It learns only the signals the supervisor recognised (no audio of its own to find an
    unknown repeating tone), so docs/adapters.md's known limits say what to look for instead."""
    import pathlib

    spec = day("uk", {"1": "us-ata-bell202"}, 1)
    spec["config"]["ring_timeout_ms"] = 5500
    run_day(spec, tmp_path, synth)
    report = linecheck(tmp_path, capsys)
    assert "far-end clear: none seen" in report
    assert "caller ID:     bell202:after_first_ring (2)" in report
    assert "behaves like:  not enough seen yet (no far-end clear; fits us-ata-bell202 so far)" in report
    docs = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "adapters.md").read_text()
    limits = docs.split("### Known limits")[1]
    assert "*far-end clear: none seen*" in limits and "`tone_countries`" in limits
