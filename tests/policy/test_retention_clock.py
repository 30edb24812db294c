"""The clock guard: no automatic deletion unsynchronised or after a jump (to 2040, say)."""

import datetime

import pytest

from firmware.clock import SimClock
from firmware.policy.sweeper import RetentionSweeper

from support.retention import S, Shelf, settings

YEAR_2040_US = int(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC).timestamp()) * S


def kinds(shelf, active=True):
    return [a.kind for a in shelf.alarms if a.active == active]


def test_a_clock_that_jumps_to_2040_deletes_nothing_and_raises_an_alarm(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    calls = [shelf.add_call(d) for d in (1, 10, 29)]  # all would be past 30 days in 2040
    shelf.sweeper.start()
    shelf.advance(3600)
    assert len(shelf.sweeps()) == 1 and shelf.recorded() == calls
    shelf.jump((YEAR_2040_US - shelf.clock.wall_us()) / S)
    assert len(shelf.sweeper.preview()) == 3  # what a trusting sweep would have done
    shelf.advance(3600)
    assert shelf.recorded() == calls
    assert kinds(shelf) == ["clock_jump"]
    assert "jumped forward" in shelf.alarms[-1].message
    last = shelf.sweeps()[-1]
    assert last.details["deleted"] == 0 and last.details["refused"] == "jump"
    # The clock now keeps step with itself at 2040: still nothing, hour after hour.
    shelf.advance(5 * 3600)
    assert shelf.recorded() == calls
    assert all(e.details["refused"] == "jump" for e in shelf.sweeps()[1:])


def test_a_jump_across_a_restart_is_caught_by_the_last_sweep(shelf, tmp_path):
    shelf.sweeper.update_settings(settings(default_days=30))
    calls = [shelf.add_call(d) for d in (1, 10)]
    assert shelf.sweeper.sweep().refused is None
    shelf.sweeper.close()
    # The box restarts with its clock at 2040 (synchronised to a bad server).
    clock = SimClock(start_wall_us=YEAR_2040_US)
    sweeper = RetentionSweeper(
        shelf.store, clock, shelf.audit, settings(default_days=30), bus=shelf.bus, disk_usage=shelf.disk
    )
    shelf.sweeper = sweeper
    result = sweeper.sweep()
    assert result.refused == "jump" and "past the last sweep" in result.message
    assert shelf.recorded() == calls and kinds(shelf) == ["clock_jump"]


def test_an_unsynchronised_clock_deletes_nothing(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    call = shelf.add_call(40)
    shelf.clock.synchronised = False
    result = shelf.sweeper.sweep()
    assert result.refused == "unsynchronised" and shelf.recorded() == [call]
    assert kinds(shelf) == ["clock_unsynchronised"]
    shelf.clock.synchronised = True
    assert shelf.sweeper.sweep().deleted == 1
    assert kinds(shelf, active=False) == ["clock_unsynchronised"]


def test_a_step_made_while_unsynchronised_is_a_jump_when_the_sync_returns(shelf):
    """A time daemon stepping to a bad server drops its sync at that moment. The guard
    forgot its reference while unsynchronised, so a step of 30 days (under
    clock_max_ahead_days) passed once the sync came back, and every recording went."""
    shelf.sweeper.update_settings(settings(default_days=30))
    calls = [shelf.add_call(d) for d in (1, 5, 10, 20, 29)]
    shelf.sweeper.start()
    shelf.advance(3600)
    shelf.clock.synchronised = False
    shelf.advance(3600)  # one sweep unsynchronised: refused
    shelf.jump(30 * 86400)  # the bad server's time
    shelf.clock.synchronised = True
    shelf.advance(3600)
    assert shelf.recorded() == calls
    assert [e.details.get("refused") for e in shelf.sweeps()][-1] == "jump"
    assert "clock_jump" in kinds(shelf)


def test_a_clock_going_back_before_the_last_sweep_deletes_nothing(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    shelf.sweeper.sweep()
    shelf.sweeper.guard._offset_us = None  # as after a restart
    shelf.jump(-3 * 86400)
    call = shelf.add_call(40)
    result = shelf.sweeper.sweep()
    assert result.refused == "jump" and "before the last sweep" in result.message
    assert shelf.recorded() == [call]


def test_a_small_drift_within_tolerance_is_not_a_jump(shelf):
    shelf.sweeper.update_settings(settings(default_days=30, clock_tolerance_s=120))
    shelf.sweeper.sweep()
    shelf.add_call(31)
    shelf.advance(3600)
    shelf.jump(90)  # NTP stepping 90 s
    assert shelf.sweeper.sweep().deleted == 1


def test_after_a_jump_an_installer_confirms_the_time_and_deletion_resumes(shelf):
    shelf.sweeper.update_settings(settings(default_days=30))
    shelf.sweeper.sweep()
    shelf.jump(10 * 60)  # a real correction of ten minutes
    call = shelf.add_call(40)
    assert shelf.sweeper.sweep().refused == "jump"
    shelf.advance(3600)
    assert shelf.sweeper.sweep().refused == "jump"  # suspended until confirmed
    shelf.sweeper.confirm_clock("ivan")
    assert kinds(shelf, active=False) == ["clock_jump"]
    assert shelf.sweeper.sweep().deleted == 1 and call not in shelf.recorded()
    confirm = [e for e in shelf.audit.entries(limit=100) if e.action == "config_change"][0]
    assert confirm.actor == "ivan" and confirm.target == "retention.clock"
    assert "jumped forward" in confirm.details["suspended_because"]


class _Cut(BaseException):
    """Stands for a power cut: nothing after it runs, nothing catches it."""


def test_a_confirmation_is_audited_before_deletion_resumes(shelf, monkeypatch):
    """A cut between lifting the suspension and its entry let deletion resume with no
    entry saying who confirmed the time. The entry now comes first: a cut after it
    leaves the suspension, and the installer confirms again."""
    shelf.sweeper.update_settings(settings(default_days=30))
    shelf.sweeper.sweep()
    shelf.jump(10 * 60)
    call = shelf.add_call(40)
    assert shelf.sweeper.sweep().refused == "jump"

    def cut(wall_us):
        raise _Cut()

    monkeypatch.setattr(shelf.sweeper.guard, "confirm", cut)
    with pytest.raises(_Cut):
        shelf.sweeper.confirm_clock("ivan")
    monkeypatch.undo()
    (confirm,) = [e for e in shelf.audit.entries(limit=100) if e.action == "config_change"]
    assert confirm.actor == "ivan" and "jumped forward" in confirm.details["suspended_because"]
    assert shelf.sweeper.sweep().refused == "jump" and call in shelf.recorded()


def test_the_first_sweep_of_a_box_judges_by_its_newest_call(tmp_path):
    shelf = Shelf(tmp_path)
    try:
        shelf.sweeper.guard._put("last_passed_wall_us", None)
        shelf.sweeper.guard._offset_us = None
        shelf.sweeper.update_settings(settings(default_days=30))
        call = shelf.add_call(1)
        shelf.jump(400 * 86400)
        result = shelf.sweeper.sweep()
        assert result.refused == "jump" and "past the newest call" in result.message
        assert shelf.recorded() == [call]
    finally:
        shelf.close()


def test_a_confirmed_time_lets_deletion_resume_after_calls_logged_while_the_clock_was_ahead(shelf):
    """The clock was 10 days ahead for a while (the time daemon said synchronised) and calls
    were logged then; corrected, the installer confirmed the time, and every sweep after was
    refused 'before the newest call' until real time passed those calls' times."""
    shelf.sweeper.update_settings(settings(default_days=30))
    due = [shelf.add_call(d) for d in (40, 50)]
    shelf.sweeper.guard.passed(shelf.clock.wall_us())
    shelf.sweeper.start()
    shelf.jump(10 * 86400)
    shelf.advance(3600)
    assert shelf.sweeps()[-1].details["refused"] == "jump"
    ahead = [shelf.add_call(0) for _ in range(3)]  # stamped 10 days ahead
    shelf.jump(-10 * 86400)
    shelf.advance(3600)
    shelf.sweeper.confirm_clock("ivan")
    shelf.advance(3600)
    last = shelf.sweeps()[-1].details
    assert last.get("refused") is None and last["deleted"] == 2, last
    assert shelf.recorded() == ahead and not set(due) & set(shelf.recorded())


class BootedClock(SimClock):
    """A simulated clock that says which boot it is in and how long since it began
    (``boot_at_us`` at its ``t_us == 0``), as the kernel's boot id and boot clock do."""

    def __init__(self, start_wall_us, boot_id, boot_at_us):
        super().__init__(start_wall_us=start_wall_us)
        self.boot_id, self.boot_at_us = boot_id, boot_at_us

    def boot_us(self):
        return self.boot_id, self.boot_at_us + self.now_us()


def _restarted(shelf, clock):
    """The recorder stopped and started again on ``clock``: a new sweeper, its guard's
    state only what calls.db kept."""
    shelf.sweeper.close()
    shelf.sweeper = RetentionSweeper(
        shelf.store, clock, shelf.audit, settings(default_days=30), bus=shelf.bus, disk_usage=shelf.disk
    )
    return shelf.sweeper


@pytest.mark.parametrize("step_days", [0, 10])
def test_a_step_made_while_the_recorder_was_stopped_is_a_jump_at_its_next_start(shelf, step_days):
    """The step against the monotonic clock was seen within one run only: after a restart a
    forward step under clock_max_ahead_days (10 days here) passed the guard, and a sweep
    deleted by it, and accounts were disabled by it. The boot clock kept at each passed
    sweep catches it at the next start of the same boot; without a step it deletes as due."""
    from web import inactive

    hour_us = 3600 * S
    wall_us = shelf.clock.wall_us()
    _restarted(shelf, BootedClock(wall_us, "boot-1", 5 * hour_us))
    shelf.sweeper.update_settings(settings(default_days=30))
    assert shelf.sweeper.sweep().refused is None
    calls = [shelf.add_call(d) for d in (25, 29)]  # past 30 days 10 days on
    # Stopped for two hours, the clock stepped meanwhile; started again in the same boot.
    later = BootedClock(wall_us + 2 * hour_us + step_days * 86400 * S, "boot-1", 7 * hour_us)
    result = _restarted(shelf, later).sweep()
    if step_days:
        assert result.refused == "jump", result.message
        assert (
            "jumped forward by 10 days since the last sweep, while the recorder was stopped" in result.message
        )
        assert shelf.recorded() == calls and kinds(shelf) == ["clock_jump"]
        # Accounts wait too, on the web UI and the command line (the same guard state).
        assert inactive.held_by(True, shelf.sweeper.guard) == inactive.CLOCK_JUMPED
    else:
        assert result.refused is None and shelf.recorded() == calls
        assert inactive.held_by(True, shelf.sweeper.guard) is None


def test_after_a_reboot_the_boot_clock_is_not_compared(shelf):
    """Another boot's clock started again from nought: compared, every reboot would be a
    jump. Across one only the bounds hold (before the last sweep, or too far past it)."""
    hour_us = 3600 * S
    wall_us = shelf.clock.wall_us()
    _restarted(shelf, BootedClock(wall_us, "boot-1", 5 * hour_us))
    assert shelf.sweeper.sweep().refused is None
    later = BootedClock(wall_us + 3 * 86400 * S, "boot-2", 60 * S)
    assert _restarted(shelf, later).sweep().refused is None
