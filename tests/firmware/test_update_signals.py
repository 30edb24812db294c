"""The recorder's side of a field update: the line LEDs' pattern and the alarm, from the
``update_state`` control operation through the bus (firmware/update/signals.py)."""

import threading
import time
import types

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.alarmlog import AlarmLog
from firmware.alarms import AlarmBoard
from firmware.bus import EventBus, UpdateState
from firmware.clock import SimClock
from firmware.control import ControlError, recorder_handlers
from firmware.errors import UpdateError
from firmware.update.signals import PATTERNS_MS, UpdateSignals, pattern_for


class LedBoard:
    """Records every LED change: (line, on)."""

    lines = 2

    def __init__(self):
        self.changes = []
        self.lock = threading.Lock()

    def set_led(self, line, on):
        with self.lock:
            self.changes.append((line, on))

    def seen(self):
        with self.lock:
            return list(self.changes)


class Clock:
    def now_us(self):
        return 5_000_000

    def wall_us(self):
        return 1_772_442_000_000_000


def _wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _box(tmp_path, **kw):
    board, clock, bus = LedBoard(), Clock(), EventBus(strict=True)
    log = AlarmLog(tmp_path / "alarms.db", clock)
    log.attach(bus)
    board_alarms = AlarmBoard()
    board_alarms.attach(bus)
    signals = UpdateSignals(board, clock.now_us, **kw)
    signals.attach(bus)
    box = types.SimpleNamespace(
        board=board, bus=bus, clock=clock, status=types.SimpleNamespace(snapshot=None), alarms=board_alarms
    )
    return box, signals, log


def test_a_running_update_blinks_every_line_led_and_an_installed_one_turns_them_off(tmp_path):
    box, signals, log = _box(tmp_path)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="running")
        # On, off, on again: a blink, on both lines.
        _wait_for(lambda: [on for line, on in box.board.seen() if line == 1][:3] == [True, False, True])
        assert {line for line, _ in box.board.seen()} == {1, 2}
        update_state(state="installed", version="2.0.0", previous_version="1.0.0")
        _wait_for(lambda: not signals.led_on)
        assert box.board.seen()[-2:] == [(1, False), (2, False)]
        assert log.history() == []  # installed: no alarm
    finally:
        signals.stop()
        log.close()


def test_a_failed_update_flashes_the_leds_and_raises_an_alarm_kept_until_acknowledged(tmp_path):
    box, signals, log = _box(tmp_path, failure_show_s=2.0)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="running")
        update_state(
            state="rolled_back",
            message="version 2.0.1 failed its health check",
            version="2.0.1",
            previous_version="1.0.0",
        )
        [row] = log.history()
        assert row["kind"] == "update_failed" and row["line"] == 0
        assert row["message"] == (
            "the update to 2.0.1 did not install (rolled back): version 2.0.1 failed its health check"
        )
        assert log.banner() == [row]  # an event: cleared at once, shown until acknowledged
        assert box.alarms() == []
        # Three quick flashes, then (after failure_show_s) the LEDs go off for good.
        _wait_for(lambda: [on for line, on in box.board.seen() if line == 2].count(True) >= 3)
        _wait_for(lambda: not signals.led_on and signals._pattern is None)
    finally:
        signals.stop()
        log.close()


def _status_led(signals):
    """The simulated HAT MCU's status LED, showing "recording", given to ``signals``."""
    link = McuLink(SimMcu(SimClock()).bus)
    link.open()
    link.set_led("recording")
    signals.status_led = link
    return link


def test_a_bundle_refused_before_its_version_was_read_is_not_called_a_new_version(tmp_path):
    """A junk bundle on a stick: its alarm said "the update to a new version did not
    install", a version nobody had read."""
    box, signals, log = _box(tmp_path, failure_show_s=0.1)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="refused", message="A.RAUCB is not a bundle RAUC can read")
        [row] = log.history()
        assert row["message"] == (
            "an update whose version was not read did not install (refused): A.RAUCB is not a "
            "bundle RAUC can read"
        )
    finally:
        signals.stop()
        log.close()


def test_the_hat_mcu_s_status_led_shows_the_update_and_then_its_old_pattern(tmp_path):
    box, signals, log = _box(tmp_path, failure_show_s=0.3)
    link = _status_led(signals)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="running")
        assert link.led() == "updating"
        update_state(state="installed")
        assert link.led() == "recording"
        update_state(state="running")
        update_state(state="refused", message="the bundle is not signed")
        assert link.led() == "update_failed"
        _wait_for(lambda: link.led() == "recording")  # once the failure has been shown
    finally:
        signals.stop()
        log.close()


def test_every_outcome_but_installed_is_a_failure_pattern():
    assert pattern_for("running") == PATTERNS_MS["running"]
    assert pattern_for("installed") is None
    for outcome in ("refused", "not_switched", "rolled_back", "failed"):
        assert pattern_for(outcome) == PATTERNS_MS["failed"]
        assert UpdateState(line=0, t_us=0, state=outcome).failed
    assert not UpdateState(line=0, t_us=0, state="installed").failed


def test_an_update_that_ended_while_rauc_still_writes_keeps_the_leds_saying_do_not_cut_the_power(tmp_path):
    box, signals, log = _box(tmp_path)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="running")
        update_state(state="installing", message="rauc install did not finish in 600 s")
        assert signals._pattern == PATTERNS_MS["running"]
        _wait_for(lambda: [on for line, on in box.board.seen() if line == 1][:3] == [True, False, True])
        assert log.history() == []  # no failure (yet): no alarm
        assert not UpdateState(line=0, t_us=0, state="installing").failed
    finally:
        signals.stop()
        log.close()


class Rauc:
    """RAUC as the recorder asks it: its answers to ``installer`` in turn, the last kept
    (operation, last error and progress; without one, a progress that moves at each
    answer). ``t`` is a clock that each question moves on by 10 s."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = 0
        self.t = 0.0

    def monotonic(self):
        return self.t

    def installer(self):
        self.asked += 1
        self.t += 10.0
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer if len(answer) == 3 else (*answer, (self.asked, "Copying image to app.1", 2))

    def operation(self):
        return self.installer()[:2]


def test_the_leds_go_back_to_normal_once_rauc_has_finished_the_install(tmp_path):
    rauc = Rauc(("installing", ""), UpdateError("RAUC did not say"), ("idle", ""))
    box, signals, log = _box(tmp_path, rauc=rauc, rauc_check_s=0.05)
    link = _status_led(signals)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="running")
        update_state(state="installing", message="rauc install did not finish in 600 s")
        assert signals._pattern == PATTERNS_MS["running"]
        # Busy, then not answering: still "do not cut the power"; idle: back to normal.
        _wait_for(lambda: rauc.asked >= 3 and signals._pattern is None and not signals.led_on)
        assert (1, True) in box.board.seen() and box.board.seen()[-2:] == [(1, False), (2, False)]
        assert link.led() == "recording"
        assert log.history() == []
    finally:
        signals.stop()
        log.close()


def test_a_new_update_s_state_is_not_undone_by_rauc_going_idle(tmp_path):
    rauc = Rauc(("installing", ""))
    box, signals, log = _box(tmp_path, rauc=rauc, rauc_check_s=0.05)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="installing", message="rauc install did not finish in 600 s")
        _wait_for(lambda: rauc.asked >= 1)
        update_state(state="running")  # the next update: RAUC is no longer asked for the old one
        rauc.answers = [("idle", "")]
        asked = rauc.asked
        _wait_for(lambda: [on for line, on in box.board.seen() if line == 1].count(True) >= 2)
        assert signals._pattern == PATTERNS_MS["running"] and rauc.asked <= asked + 1
    finally:
        signals.stop()
        log.close()


def _installing(tmp_path, rauc):
    """The recorder told an update ended ``installing``, RAUC asked every 10 ms by the
    recorder's clock (``rauc.t``: 10 s a question) with a wait of 60 s."""
    box, signals, log = _box(
        tmp_path, rauc=rauc, rauc_check_s=0.01, install_wait_s=60, monotonic=rauc.monotonic
    )
    link = _status_led(signals)
    update_state = recorder_handlers(box)["update_state"]
    update_state(state="running", version="2.0.1", previous_version="1.0.0")
    update_state(
        state="installing",
        message="rauc install did not finish in 600 s",
        version="2.0.1",
        previous_version="1.0.0",
    )
    return box, signals, log, link


GONE = UpdateError("cannot ask RAUC what it is doing: The name is not activatable")


def test_rauc_that_cannot_be_asked_for_a_whole_wait_ends_installing_with_a_failure_and_its_alarm(tmp_path):
    # Before, the LEDs went on saying "do not cut the power" for as long as RAUC could not be
    # asked (for good, were it gone), and no alarm said anything was wrong.
    rauc = Rauc(("installing", ""), GONE)
    box, signals, log, link = _installing(tmp_path, rauc)
    try:
        _wait_for(lambda: log.history())
        [row] = log.history()
        assert row["kind"] == "update_failed" and row["line"] == 0
        assert row["message"].startswith(
            "the update to 2.0.1 did not install (failed): RAUC has not answered for 60 s (cannot ask "
            "RAUC what it is doing: The name is not activatable) since the update stopped waiting for "
            "its install, so whether RAUC wrote the new slot is not known. Nothing was switched"
        )
        assert "Restart the box (RAUC with it)" in row["message"]
        # Its last answer at 10 s, then a whole wait of questions that failed: not one fewer.
        assert rauc.asked == 7
        assert signals._pattern == PATTERNS_MS["failed"] and link.led() == "update_failed"
        _wait_for(lambda: box.alarms() == [])  # an event: cleared at once (the thread's next step)
        assert log.banner() == log.history()  # kept until acknowledged
    finally:
        signals.stop()
        log.close()


def test_rauc_installing_without_moving_for_a_whole_wait_ends_installing_with_a_failure(tmp_path):
    rauc = Rauc(("installing", "", (40, "Copying image to app.1", 2)))
    box, signals, log, link = _installing(tmp_path, rauc)
    try:
        _wait_for(lambda: log.history())
        [row] = log.history()
        assert row["kind"] == "update_failed"
        assert row["message"].startswith(
            "the update to 2.0.1 did not install (failed): RAUC has said it is installing without "
            "moving on for 60 s (still at 40 %: Copying image to app.1) since the update stopped waiting"
        )
        assert rauc.asked == 7  # the same from 10 s on: 60 s later
        assert signals._pattern == PATTERNS_MS["failed"] and link.led() == "update_failed"
    finally:
        signals.stop()
        log.close()


def test_the_leds_watch_waits_the_updaters_own_install_wait(tmp_path):
    # Before, the recorder was not told the updater's --install-wait-s: its watch always
    # waited its own (INSTALL_WAIT_S, 30 minutes), whatever the updater had waited.
    rauc = Rauc(("installing", "", (40, "Copying image to app.1", 2)))
    box, signals, log = _box(
        tmp_path, rauc=rauc, rauc_check_s=0.01, install_wait_s=60, monotonic=rauc.monotonic
    )
    update_state = recorder_handlers(box)["update_state"]
    try:
        with pytest.raises(ControlError, match="install_wait_s must be a number of seconds above 0"):
            update_state(state="installing", install_wait_s=0)
        with pytest.raises(ControlError, match="install_wait_s must be a number of seconds above 0"):
            update_state(state="installing", install_wait_s="30")
        assert rauc.asked == 0  # refused, nothing told: no watch began
        update_state(state="installing", version="2.0.1", install_wait_s=30)
        _wait_for(lambda: log.history())
        [row] = log.history()
        assert "without moving on for 30 s (still at 40 %" in row["message"]
        assert rauc.asked == 4  # the same from 10 s on: 30 s later
    finally:
        signals.stop()
        log.close()


def test_a_slow_install_that_keeps_moving_keeps_the_leds_and_raises_no_alarm(tmp_path):
    # Moving at each answer for 200 s (over three waits), its questions failing now and then
    # for less than a wait, then idle: back to normal, no alarm.
    answers = [("installing", ""), GONE, GONE, GONE, GONE] * 4 + [("idle", "")]
    rauc = Rauc(*answers)
    box, signals, log, link = _installing(tmp_path, rauc)
    try:
        _wait_for(lambda: rauc.asked >= len(answers) and signals._pattern is None)
        assert log.history() == [] and link.led() == "recording"
    finally:
        signals.stop()
        log.close()


def test_a_new_update_s_state_is_not_undone_by_giving_up_on_rauc(tmp_path):
    box, signals, log = _box(tmp_path)
    update_state = recorder_handlers(box)["update_state"]
    try:
        update_state(state="installing", message="rauc install did not finish in 600 s", version="2.0.1")
        installing = signals._state_seq
        update_state(state="running")  # the next update, before the wait for RAUC is over
        signals._give_up(installing, UpdateState(line=0, t_us=0, state="installing"), "RAUC has not answered")
        assert signals._pattern == PATTERNS_MS["running"] and log.history() == []
    finally:
        signals.stop()
        log.close()
