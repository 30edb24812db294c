"""The recorder's running record (firmware/uptime.py): how ``box_start`` dates the time
nothing was recorded, and a start whose entry the card refuses."""

import json

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.calls.calllog import iso_ms
from firmware.storage.audit import AuditEntry, AuditLog
from firmware.uptime import start_details, write_alive

HOUR_US = 3_600_000_000
T0 = 1_772_442_000_000_000  # 2026-03-02 09:00 UTC


def _entry(seq, wall_us, action):
    return AuditEntry(seq, wall_us, "system", action, "box", {"release": "0.1.0"}, "", "")


class _Trail:
    """The two look-ups start_details makes: the latest entry of an action."""

    def __init__(self, *entries):
        self._entries = entries

    def entries(self, limit, action):
        return [e for e in sorted(self._entries, key=lambda e: -e.seq) if e.action == action][:limit]


def test_a_power_cut_whose_entry_the_card_refused_is_not_dated_from_an_older_cut(tmp_path):
    """The power-fail seal went, its audit entry did not (a card error, only logged): the
    latest power_fail entry is a cut from before the last start, a week ago. The time not
    recording is from the last sign of life, not from that old cut."""
    week_ago, started = T0 - 7 * 24 * HOUR_US, T0 - 6 * 24 * HOUR_US
    write_alive(tmp_path, T0)
    trail = _Trail(_entry(10, week_ago, "power_fail"), _entry(11, started, "box_start"))
    details = start_details(
        stopped_cleanly=False,
        clean_stop_us=None,
        power_failed=True,
        crashed=False,
        after_update=False,
        audit=trail,
        data_dir=tmp_path,
    )
    assert details["after"] == "power_fail"
    assert details["down_from"] == iso_ms(T0)


def test_the_power_cut_entry_after_the_last_start_dates_the_gap(tmp_path):
    write_alive(tmp_path, T0 - 30_000_000)
    trail = _Trail(_entry(11, T0 - HOUR_US, "box_start"), _entry(12, T0, "power_fail"))
    details = start_details(
        stopped_cleanly=False,
        clean_stop_us=None,
        power_failed=True,
        crashed=False,
        after_update=False,
        audit=trail,
        data_dir=tmp_path,
    )
    assert details == {"after": "power_fail", "down_from": iso_ms(T0), "release": details["release"]}


def test_a_start_whose_entry_the_card_refuses_still_stops_and_lets_go(tmp_path, synth, monkeypatch):
    """box_start is written after the box counts as started: a card refusing it fails the
    start (the next start notes the gap), and the stop that follows must still close the
    files and let go of the data folder, not fail on the sign of life never started."""
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}
    data_dir = str(tmp_path / "box")
    box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    append = AuditLog.append

    def refuse_box_start(self, actor, action, *args, **kwargs):
        if action == "box_start":
            raise OSError(28, "No space left on device")
        return append(self, actor, action, *args, **kwargs)

    monkeypatch.setattr(AuditLog, "append", refuse_box_start)
    with pytest.raises(OSError, match="No space"):
        box.start()
    box.stop()
    monkeypatch.setattr(AuditLog, "append", append)
    again = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
    again.start()
    again.stop()
