"""Disk alarms at the thresholds, and the overwrite mode (oldest past their minimum only)."""

from support.retention import settings

MB = 1 << 20


def active(shelf):
    state = {}
    for alarm in shelf.alarms:
        state[alarm.kind] = alarm.active
    return sorted(k for k, v in state.items() if v)


def test_disk_thresholds_raise_and_clear_alarms(shelf):
    shelf.sweeper.update_settings(settings(disk_warning_percent=80, disk_critical_percent=95))
    shelf.disk.base = 70 * MB
    assert round(shelf.sweeper.check_disk()) == 70 and active(shelf) == []
    shelf.disk.base = 81 * MB
    shelf.sweeper.check_disk()
    assert active(shelf) == ["disk_warning"]
    shelf.disk.base = 96 * MB
    shelf.sweeper.check_disk()
    assert active(shelf) == ["disk_critical", "disk_warning"]
    assert "96% full" in [a for a in shelf.alarms if a.kind == "disk_critical"][-1].message
    n = len(shelf.alarms)
    shelf.sweeper.check_disk()
    assert len(shelf.alarms) == n  # published on change only
    shelf.disk.base = 50 * MB
    shelf.sweeper.check_disk()
    assert active(shelf) == []
    assert shelf.alarms[-1].line == 0


def test_disk_is_checked_every_minute_on_the_clock(shelf):
    shelf.sweeper.start()
    shelf.disk.base = 90 * MB
    shelf.advance(61)
    assert active(shelf) == ["disk_warning"]


def test_full_disk_without_overwrite_deletes_nothing(shelf):
    for d in (400, 300, 200):
        shelf.add_call(d, size=2 * MB)
    shelf.disk.base = 94 * MB
    shelf.sweeper.check_disk()
    assert len(shelf.recorded()) == 3 and "disk_critical" in active(shelf)


def test_overwrite_deletes_the_oldest_past_their_minimum_only(shelf):
    shelf.sweeper.update_settings(settings(overwrite_oldest_when_full=True, minimum_days={"regulated": 1827}))
    regulated = shelf.add_call(1000, tags=["regulated"], size=2 * MB)  # oldest, but protected
    held = shelf.add_call(900, hold=True, size=2 * MB)
    oldest = shelf.add_call(800, size=2 * MB)
    second = shelf.add_call(700, size=2 * MB)
    newest = shelf.add_call(10, size=2 * MB)
    shelf.disk.base = 86 * MB  # 86 + 10 = 96 % used
    percent = shelf.sweeper.check_disk()
    assert percent < 95
    assert shelf.recorded() == sorted([regulated, held, second, newest])
    log = shelf.sweeper.deletion_log()
    assert [(e["call_id"], e["reason"], e["rule"]) for e in log] == [
        (oldest, "overwrite", "overwrite-when-full")
    ]
    assert active(shelf) == ["disk_warning"]
    assert shelf.sweeps()[-1].details["trigger"] == "overwrite"
    # Fuller still: the next oldest goes, never the regulated or the held call.
    shelf.disk.base = 92 * MB
    shelf.sweeper.check_disk()
    assert shelf.recorded() == sorted([regulated, held])
    assert "disk_critical" in active(shelf)
    assert shelf.sweeper.verify() == []
