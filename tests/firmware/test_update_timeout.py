"""``rauc install`` that outlives its timeout. Only the client is stopped then: ``rauc
service`` may go on writing the slot. Before, the report said "the box was not changed"
and the bundle counted as done, so a technician pulled the power mid-write. Now RAUC is
asked (its D-Bus ``Operation`` and ``LastError``) and the report says what it did:
installed (the update goes on), failed, or still installing (the LEDs and the page go on
saying not to cut the power, and the bundle is not counted as done).

The fast tests drive :class:`Updater` with a fake RAUC; the last ones run ``linekeeper
update --watch STICK --once`` with a fake ``rauc`` on PATH that outlives a one-second
timeout and a fake ``busctl`` that answers for its service."""

import json
import os
import subprocess
import sys
import time

import pytest

from firmware.errors import UpdateError
from firmware.localtime import duration_text
from firmware.update.flow import PROGRESS_NAME, Updater, UpdateSettings
from firmware.update.rauc import InstallTimedOut, Rauc, TimedOut
from firmware.update.watch import Watcher
from tests.firmware.test_update_flow import FakeClient, FakeClock, FakeRauc, FakeSlots, _bundle
from tests.firmware.test_update_stop import STATUS as STOP_STATUS
from tests.firmware.test_update_stop import _wait_for_step


class SlowRauc(FakeRauc):
    """``rauc install`` times out; the service then reports ``answers`` (operation,
    last error, and its progress: without one, a progress that moves at every answer)
    one poll after another, the last one for good."""

    def __init__(self, answers, writes=True):
        super().__init__()
        self.answers = list(answers)
        self.writes = writes  # the service makes the new slot primary once idle without error
        self.asked = 0

    def install(self, path):
        assert os.path.exists(path)
        raise InstallTimedOut("rauc install did not finish in 600 s (RAUC may still be writing the slot)")

    def installer(self):
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if answer[:2] == ("idle", "") and self.writes:
            self.installed = True
        if len(answer) == 2:  # a RAUC that keeps going: its progress moves at each answer
            answer = (*answer, (self.asked % 100, "Copying image to app.1", 2))
        return answer

    def operation(self):
        return self.installer()[:2]


def _states_told(updater):
    """The states the update tells the recorder (its LEDs and alarm), in order, as it runs."""
    told = []
    call = updater.client.call
    updater.client.call = lambda op, **kw: told.append(kw.get("state")) or call(op, **kw)
    return told


def _updater(tmp_path, rauc, **settings):
    clock = FakeClock()
    s = UpdateSettings(
        data_dir=str(tmp_path),
        update_dir=str(tmp_path / "update"),
        status_dir=str(tmp_path / "inbox"),
        poll_s=1.0,
        install_poll_s=5.0,
        **settings,
    )
    os.makedirs(s.status_dir, exist_ok=True)
    updater = Updater(
        s,
        rauc,
        FakeSlots(),
        FakeClient(clock, lambda t: []),
        None,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    return updater, clock


# The service's answers at the first check (idle: no earlier install at work) and then.
IDLE = ("idle", "")


def test_an_install_that_finishes_after_the_timeout_goes_on_to_the_switch(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", ""), ("installing", ""), IDLE])
    updater, clock = _updater(tmp_path, rauc, restart_cmd=("true",), health_timeout_s=5)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    # On as any install: the switch to the slot RAUC wrote (its health check is not this
    # test's: the fake recorder never restarts, so it is rolled back).
    assert result.steps[:5] == ["copy", "install", "still_installing", "wait_idle", "switch"]
    assert result.slot == "B" and result.version == "2.0.0"
    assert updater.slots.pointed[0] == "B"


def test_an_install_still_running_when_the_wait_ends_is_reported_as_still_installing(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=60)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "installing"
    assert result.later and not result.retry  # not done with: taken again
    assert 60 <= clock.t <= 66
    assert "Do not cut the power" in result.message and "the box runs slot A" in result.message
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE STILL INSTALLING - do not cut the power" in report
    assert "not changed" not in report and "REFUSED" not in report
    # Nothing marked or switched while RAUC works; the page still says an update runs.
    assert rauc.marks == [] and updater.slots.pointed == []
    for folder in ("update", "inbox"):
        assert json.loads((tmp_path / folder / PROGRESS_NAME).read_text())["step"] == "still_installing"


def test_an_install_that_fails_after_the_timeout_says_why_and_that_nothing_changed(tmp_path):
    rauc = SlowRauc(
        [IDLE, ("installing", ""), ("idle", "Compatible mismatch: Expected 'x' but bundle manifest has 'y'")]
    )
    updater, _ = _updater(tmp_path, rauc)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused" and not result.later and not result.retry
    assert "rauc install did not finish in 600 s" in result.message
    assert "the bundle is for another board or HAT" in result.message
    assert result.message.endswith("the box was not changed: it runs slot A as before")
    assert rauc.marks == [] and updater.slots.pointed == []
    assert not (tmp_path / "update" / PROGRESS_NAME).exists()


def test_rauc_idle_without_having_written_the_slot_is_no_install(tmp_path):
    rauc = SlowRauc([IDLE], writes=False)
    updater, _ = _updater(tmp_path, rauc)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused"
    assert "RAUC is idle now and did not install it" in result.message
    assert updater.slots.pointed == []


def test_rauc_that_errs_from_its_first_question_fails_the_update_not_installing_for_good(tmp_path):
    # Before, it ended "still installing": the LEDs blinked and the page said not to cut the
    # power and took no upload for as long as the errors went on (the page and the recorder
    # cannot ask RAUC either), and no alarm was raised.
    rauc = SlowRauc([IDLE, UpdateError("cannot ask RAUC what it is doing: no such bus")])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "failed" and result.later and not result.retry
    assert result.message.startswith(
        "rauc install did not finish in 600 s (RAUC may still be writing the slot), and RAUC has not "
        "answered properly since (cannot ask RAUC what it is doing: no such bus, for 20 s). Nothing "
        "was switched: the box runs slot A"
    )
    assert 20 <= clock.t <= 25 and "Restart the box" in result.message
    assert told == ["running", "failed"]  # the LEDs flash the failure and the alarm is raised
    assert rauc.marks == [] and updater.slots.pointed == []  # not taken for done either
    for folder in ("update", "inbox"):
        assert not (tmp_path / folder / PROGRESS_NAME).exists()  # a later install may go ahead
    assert "UPDATE FAILED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def test_rauc_that_cannot_be_asked_when_the_update_is_stopped_is_still_installing(tmp_path):
    # Stopped (the stick pulled) before a whole wait without an answer: nothing can be said yet.
    rauc = SlowRauc([IDLE, UpdateError("cannot ask RAUC what it is doing: no such bus")])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    updater.stopped = lambda: clock.t >= 10
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "installing" and result.later
    assert "cannot be asked what it is doing (cannot ask RAUC" in result.message
    assert rauc.marks == [] and updater.slots.pointed == []


def test_rauc_that_never_answers_after_the_timeout_is_a_failure_not_installing_for_good(tmp_path):
    # Before, an update whose RAUC hung ended "still installing": the LEDs blinked and the
    # page said not to cut the power, and took no upload, until a RAUC that never answers
    # went idle, and no alarm was raised.
    rauc = SlowRauc([IDLE, TimedOut("RAUC did not say what it is doing within 30 s")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "failed" and result.later and not result.retry
    assert result.message.startswith(
        "rauc install did not finish in 600 s (RAUC may still be writing the slot), and RAUC has not "
        "answered since (RAUC did not say what it is doing within 30 s, for 20 s): it hangs. Nothing "
        "was switched: the box runs slot A"
    )
    assert "Restart the box" in result.message
    assert told == ["running", "failed"]  # the LEDs flash the failure and the alarm is raised
    assert rauc.marks == [] and updater.slots.pointed == []
    assert not (tmp_path / "inbox" / PROGRESS_NAME).exists()  # the page takes an upload again
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE FAILED" in report and "it hangs" in report


def test_rauc_that_answers_once_then_hangs_fails_the_update(tmp_path):
    # Before, it ended "still installing" at the end of the wait, for good: what it does
    # cannot be said, and nothing would ever find it idle.
    hung = TimedOut("RAUC did not say what it is doing within 30 s")
    rauc = SlowRauc([IDLE, ("installing", ""), ("installing", ""), hung])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "failed" and result.later
    assert result.message.startswith(
        "rauc install did not finish in 600 s (RAUC may still be writing the slot), and RAUC stopped "
        "answering (RAUC did not say what it is doing within 30 s, for 20 s): it hangs. Nothing was "
        "switched: the box runs slot A"
    )
    assert 25 <= clock.t <= 30  # its last answer at 5 s: the whole wait again from there
    assert told == ["running", "failed"]
    assert rauc.marks == [] and updater.slots.pointed == []
    assert not (tmp_path / "inbox" / PROGRESS_NAME).exists()


# RAUC's service gone from the bus (it crashed): busctl answers at once, with an error.
GONE = UpdateError(
    "cannot ask RAUC what it is doing: Failed to get property Operation on interface "
    "de.pengutronix.rauc.Installer: The name is not activatable"
)


def test_rauc_that_answers_then_only_errs_fails_the_update_not_installing_for_good(tmp_path):
    # Before, it ended "still installing": the LEDs blinked and the page took no upload for
    # as long as the errors went on (the page and the recorder cannot ask RAUC either), and
    # no alarm was raised.
    rauc = SlowRauc([IDLE, ("installing", ""), GONE])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "failed" and result.later and not result.retry
    assert result.message.startswith(
        "rauc install did not finish in 600 s (RAUC may still be writing the slot), and RAUC stopped "
        "answering properly (cannot ask RAUC what it is doing: Failed to get property Operation"
    )
    assert "for 20 s). Nothing was switched: the box runs slot A" in result.message
    assert "Restart the box" in result.message
    assert told == ["running", "failed"]  # the LEDs leave "installing"; the alarm is raised
    assert rauc.marks == [] and updater.slots.pointed == []
    for folder in ("update", "inbox"):
        assert not (tmp_path / folder / PROGRESS_NAME).exists()  # a later install may go ahead
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE FAILED" in report and "stopped answering properly" in report


def test_rauc_that_errs_once_its_wait_is_over_is_given_the_whole_wait_from_its_last_answer(tmp_path):
    # At work until the very end of the wait, then an error: not failed at once. It answers
    # again within the wait that follows, still at work: still installing.
    rauc = SlowRauc([IDLE, *[("installing", "")] * 4, GONE, GONE, GONE, ("installing", "")])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "installing", result.message
    assert 35 <= clock.t <= 40  # its last answer at 15 s, the errors, an answer within 20 s of it
    # Or it finishes: the update goes on.
    rauc = SlowRauc([IDLE, *[("installing", "")] * 4, GONE, GONE, GONE, IDLE])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=20, restart_cmd=("true",), health_timeout_s=5)
    result = updater.run(_bundle(tmp_path))
    assert result.steps[:4] == ["copy", "install", "still_installing", "wait_idle"]
    # Or the errors go on: failed once 20 s have passed since its last answer, not before.
    rauc = SlowRauc([IDLE, *[("installing", "")] * 4, GONE])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "failed" and "stopped answering properly" in result.message
    assert 35 <= clock.t <= 40


# Each question met in turn: it runs out of time, then fails at once, and so on.
HUNG = TimedOut("RAUC did not say what it is doing within 30 s")


@pytest.mark.parametrize(
    "answers, since",
    [
        ([IDLE, HUNG, GONE, HUNG, GONE], "has not answered properly since"),  # from its first
        ([IDLE, GONE, HUNG], "has not answered properly since"),
        ([IDLE, ("installing", ""), GONE, HUNG, GONE], "stopped answering properly"),
        ([IDLE, ("installing", ""), HUNG, GONE, HUNG], "stopped answering properly"),
    ],
)
def test_rauc_that_alternates_timeouts_and_errors_fails_the_update_not_installing_for_good(
    tmp_path, answers, since
):
    # Before, a question that ran out of time among the errors (or errors among the
    # questions that did) kept the update "still installing" for good: LEDs blinking, the
    # page taking no upload, no alarm.
    rauc = SlowRauc(answers)
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "failed" and result.later and not result.retry, result.message
    # What it met last of each kind, in the order met.
    met = [str(exc) for exc in answers[1:] if isinstance(exc, UpdateError)][-2:]
    assert "and RAUC %s (%s; %s, for 20 s). Nothing was switched" % (since, *met) in result.message
    assert told == ["running", "failed"]
    assert rauc.marks == [] and updater.slots.pointed == []
    for folder in ("update", "inbox"):
        assert not (tmp_path / folder / PROGRESS_NAME).exists()
    assert "UPDATE FAILED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def test_an_install_whose_progress_stands_still_for_a_whole_wait_fails_as_stuck(tmp_path):
    # Before, only Operation was read: RAUC saying "installing" for ever, its slot write hung,
    # ended the update "still installing" for good (LEDs blinking, the page taking no upload).
    stuck = ("installing", "", (40, "Copying image to app.1", 2))
    rauc = SlowRauc([IDLE, stuck])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    told = _states_told(updater)
    result = updater.run(_bundle(tmp_path), report_dir=str(tmp_path / "stick"))
    assert result.outcome == "failed" and result.later and not result.retry, result.message
    assert result.message.startswith(
        "rauc install did not finish in 600 s (RAUC may still be writing the slot), and RAUC's install "
        "has not moved on since (still at 40 %: Copying image to app.1, for 20 s): it is stuck. Nothing "
        "was switched: the box runs slot A"
    )
    assert 20 <= clock.t <= 25 and "Restart the box" in result.message
    assert told == ["running", "failed"]  # the LEDs flash the failure and the alarm is raised
    assert rauc.marks == [] and updater.slots.pointed == []
    for folder in ("update", "inbox"):
        assert not (tmp_path / folder / PROGRESS_NAME).exists()  # the page takes an upload again
    assert "UPDATE FAILED" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def test_a_new_update_while_an_install_found_stuck_stands_says_it_is_stuck_until_rauc_is_idle(tmp_path):
    # Before, the install the last update failed as stuck refused every update after it with
    # "RAUC is still installing an earlier bundle ... try again once it has finished", which
    # it never would: only a restart (RAUC with it) ends it, as RAUC cannot be told to stop.
    stuck = ("installing", "", (40, "Copying image to app.1", 2))
    rauc = SlowRauc([IDLE, stuck])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    updater._wall_us = lambda: int(1e15 + clock.t * 1e6)
    bundle = _bundle(tmp_path)
    assert updater.run(bundle).outcome == "failed"
    clock.t = 2000.0  # a while later: still at 40 %
    again = updater.run(bundle, report_dir=str(tmp_path / "stick"))
    assert again.outcome == "refused" and again.later
    note = json.loads((tmp_path / "update" / "rauc-stuck.json").read_text())
    assert again.message.startswith(
        "RAUC's earlier install is stuck: it has said it is installing without moving on for %s "
        "(still at 40 %%: Copying image to app.1). Nothing was changed. It never finishes, and RAUC "
        "cannot be told to stop it: restart the box (RAUC with it) before another update"
        % duration_text((updater._wall_us() - note["rauc_moved_us"]) / 1e6)
    ), again.message
    assert "33 min" in again.message and "still installing" not in again.message
    assert "is stuck" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    # Moving on after all (another install, or it got going): not stuck, still installing.
    rauc.answers = [("installing", "", (41, "Copying image to app.1", 2))]
    assert "RAUC is still installing an earlier bundle" in updater.run(bundle).message
    # The box restarted, RAUC with it: idle, the note goes and the update is made.
    rauc.answers = [IDLE]
    updater.s.restart_cmd, updater.s.health_timeout_s = ("true",), 5
    assert updater.run(bundle).steps[:2] == ["copy", "install"]
    assert not (tmp_path / "update" / "rauc-stuck.json").exists()


def test_a_new_update_after_one_that_ended_installing_says_stuck_once_rauc_stood_a_whole_wait(tmp_path):
    # The page takes an upload once RAUC stood still a whole wait after an update ended
    # "installing"; the update that upload starts refused it as "still installing" for good.
    # It moves on once, 5 s into the wait, then stands: at the wait's end it has stood 15 s.
    moving = [("installing", "", (at, "Copying image to app.1", 2)) for at in (59, 60)]
    rauc = SlowRauc([IDLE, *moving])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    updater._wall_us = lambda: int(1e15 + clock.t * 1e6)
    bundle = _bundle(tmp_path)
    told = []
    call = updater.client.call
    updater.client.call = lambda op, **kw: told.append(kw) or call(op, **kw)
    assert updater.run(bundle).outcome == "installing"
    # The recorder's LEDs watch RAUC for the updater's own wait, not the default 30 minutes.
    assert [(kw["state"], kw["install_wait_s"]) for kw in told] == [("running", 20), ("installing", 20)]
    # Less than a whole wait since it last moved: still installing, not to cut the power.
    assert "RAUC is still installing an earlier bundle" in updater.run(bundle).message
    clock.t += 60.0
    assert updater.run(bundle).message.startswith("RAUC's earlier install is stuck")


def test_a_slow_install_whose_progress_moves_is_not_failed(tmp_path):
    # Moving at every answer until the wait ends: still installing, as before.
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    assert updater.run(_bundle(tmp_path)).outcome == "installing"
    # Its message changes while its percentage stands (RAUC's steps): that is moving too. It
    # moved 5 s into the wait, so at the wait's end it has not stood still for a whole one.
    steps = [(5, "Checking bundle", 1), (5, "Checking bundle done.", 1)]
    rauc = SlowRauc([IDLE, *[("installing", "", step) for step in steps]])
    updater, clock = _updater(tmp_path, rauc, install_wait_s=20)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "installing", result.message
    assert 20 <= clock.t <= 25
    # Or it finishes moving: the update goes on.
    rauc = SlowRauc([IDLE, *[("installing", "", step) for step in steps], IDLE])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=20, restart_cmd=("true",), health_timeout_s=5)
    result = updater.run(_bundle(tmp_path))
    assert result.steps[:4] == ["copy", "install", "still_installing", "wait_idle"]


def test_rauc_that_does_not_answer_at_the_start_changes_nothing(tmp_path):
    rauc = SlowRauc([IDLE])

    def status():
        raise TimedOut("rauc status did not finish in 600 s")

    rauc.status = status
    updater, _ = _updater(tmp_path, rauc)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused" and result.later
    assert result.message == (
        "RAUC does not answer (rauc status did not finish in 600 s); nothing was changed: restart "
        "the box, then try again"
    )


def test_rauc_whose_service_is_not_running_at_the_start_changes_nothing_and_takes_the_stick_again(tmp_path):
    # `rauc status` failing at once (rauc service not running, gone from the bus) was
    # "UPDATE FAILED" with RAUC's words alone, and the stick's bundle counted as done: put
    # back once RAUC ran again, it was never taken.
    rauc = FakeRauc()
    real_status = rauc.status
    down = [
        "rauc status failed: Error retrieving slot status via D-Bus: error creating proxy: Could not connect"
    ]

    def status():
        if down:
            raise UpdateError(down[0])
        return real_status()

    rauc.status = status
    updater, _ = _updater(tmp_path, rauc, restart_cmd=("true",), health_timeout_s=5)
    bundle = _bundle(tmp_path)
    os.makedirs(tmp_path / "update")  # made by scripts/install-box
    watcher = Watcher(os.path.dirname(bundle), str(tmp_path / "update"), updater.run, stable_s=0)
    [result] = watcher.poll()
    assert result.outcome == "refused" and result.later
    assert result.message == (
        "RAUC cannot say which slot runs (%s); nothing was changed: restart the box (RAUC with it), "
        "then try again" % down[0]
    )
    assert result.steps == [] and not rauc.installed and rauc.marks == []
    assert json.loads((tmp_path / "update" / "watched.json").read_text()) == {}
    report = (tmp_path / "update" / "last-report.txt").read_text()
    assert "UPDATE REFUSED" in report and "nothing was changed" in report
    # RAUC runs again (the box restarted) and the stick is put back: the bundle installs.
    down.clear()
    assert updater.run(bundle).steps[:2] == ["copy", "install"]


def test_an_update_on_a_box_without_rauc_says_it_is_not_installed_not_to_restart(tmp_path):
    # No rauc command: the refusal said "restart the box (RAUC with it)", again at every
    # try; a restart brings no RAUC.
    def missing(argv, **kw):
        raise FileNotFoundError(argv[0])

    rauc = FakeRauc()
    rauc.status = Rauc(run=missing).status
    updater, _ = _updater(tmp_path, rauc, restart_cmd=("true",), health_timeout_s=5)
    bundle = _bundle(tmp_path)
    os.makedirs(tmp_path / "update")  # made by scripts/install-box
    watcher = Watcher(os.path.dirname(bundle), str(tmp_path / "update"), updater.run, stable_s=0)
    [result] = watcher.poll()
    assert result.outcome == "refused" and result.later
    assert result.message.startswith("RAUC is not installed (no rauc command); nothing was changed. ")
    assert (
        "A restart does not help: install RAUC" in result.message and "restart the box" not in result.message
    )
    assert result.steps == [] and not rauc.installed and rauc.marks == []


@pytest.mark.parametrize(
    "answer", ["", '{"booted": "A", "slots": [', "[]", '{"slots": 3}', '{"slots": ["app.0"]}', "null"]
)
def test_rauc_status_whose_answer_is_not_understood_is_a_refusal_not_a_traceback(tmp_path, answer):
    # `rauc status`'s answer went to json.loads unguarded: one cut short (or another
    # RAUC's) escaped as a traceback instead of a refusal with nothing changed.
    def garbled(argv, **kw):
        return subprocess.CompletedProcess(argv, 0, answer, "")

    with pytest.raises(UpdateError, match="rauc status's answer was not understood"):
        Rauc(run=garbled).status()
    rauc = FakeRauc()
    rauc.status = Rauc(run=garbled).status
    updater, _ = _updater(tmp_path, rauc, restart_cmd=("true",), health_timeout_s=5)
    bundle = _bundle(tmp_path)
    os.makedirs(tmp_path / "update")  # made by scripts/install-box
    watcher = Watcher(os.path.dirname(bundle), str(tmp_path / "update"), updater.run, stable_s=0)
    [result] = watcher.poll()
    assert result.outcome == "refused" and result.later
    assert result.message == (
        "RAUC cannot say which slot runs (rauc status's answer was not understood: %r); nothing was "
        "changed: restart the box (RAUC with it), then try again" % answer
    )
    assert result.steps == [] and not rauc.installed and rauc.marks == []
    assert json.loads((tmp_path / "update" / "watched.json").read_text()) == {}  # taken again


def test_an_update_stopped_while_rauc_still_writes_ends_at_once_as_still_installing(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, clock = _updater(tmp_path, rauc)
    updater.stopped = lambda: clock.t >= 10  # the stick's unit stopped: no 15-minute kill
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "installing" and 10 <= clock.t <= 16


def test_an_update_while_rauc_is_still_busy_is_refused_and_leaves_the_last_one_standing(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=10)
    bundle = _bundle(tmp_path)
    assert updater.run(bundle).outcome == "installing"
    last = (tmp_path / "update" / "last-report.txt").read_text()
    again = updater.run(bundle, report_dir=str(tmp_path / "stick"))
    assert again.outcome == "refused" and again.later
    assert "RAUC is still installing an earlier bundle" in again.message
    assert "STILL INSTALLING" in (tmp_path / "update" / "last-report.txt").read_text() == last
    assert (tmp_path / "inbox" / PROGRESS_NAME).exists()  # the page: still not to cut the power
    assert "RAUC is still installing" in (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()


def test_a_bundle_whose_install_outcome_is_unknown_is_not_counted_as_done(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=10)
    bundle = _bundle(tmp_path)
    os.makedirs(tmp_path / "update")  # made by scripts/install-box
    watcher = Watcher(os.path.dirname(bundle), str(tmp_path / "update"), updater.run, stable_s=0)
    [result] = watcher.poll()
    assert result.outcome == "installing"
    assert json.loads((tmp_path / "update" / "watched.json").read_text()) == {}


def test_recovery_after_a_restart_while_rauc_wrote_keeps_the_box_on_its_slot(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=10)
    updater.run(_bundle(tmp_path))
    rauc.installed = True  # RAUC finished later and made B primary
    result = updater.recover()
    assert result.outcome == "not_switched" and rauc.marks == [("active", "app.0")]
    assert not (tmp_path / "update" / PROGRESS_NAME).exists()


# What `busctl --json=short get-property ... Operation LastError Progress` prints.
PROPERTIES = '{"type":"s","data":"%s"}\n{"type":"s","data":""}\n{"type":"(isi)","data":[40,"%s",2]}\n'


def test_rauc_s_operation_is_read_from_its_d_bus_properties():
    calls = []

    def run(argv, **kw):
        calls.append(argv)
        out = PROPERTIES % ("installing", "Copying image to app.1")
        return subprocess.CompletedProcess(argv, 0, out, "")

    assert Rauc(run=run).operation() == ("installing", "")
    assert calls[0][-5:] == ["/", "de.pengutronix.rauc.Installer", "Operation", "LastError", "Progress"]
    assert Rauc(run=run).installer() == ("installing", "", (40, "Copying image to app.1", 2))

    def garbled(argv, **kw):
        return subprocess.CompletedProcess(argv, 0, "nonsense\n", "")

    with pytest.raises(UpdateError, match="not understood"):
        Rauc(run=garbled).operation()

    def no_progress(argv, **kw):  # Operation and LastError alone: its progress is not known
        return subprocess.CompletedProcess(
            argv, 0, '{"type":"s","data":"idle"}\n{"type":"s","data":""}\n', ""
        )

    with pytest.raises(UpdateError, match="not understood"):
        Rauc(run=no_progress).installer()

    def not_allowed(argv, **kw):
        raise PermissionError(13, "Permission denied", argv[0])

    with pytest.raises(UpdateError, match="Permission denied"):  # the page says so, not a 500
        Rauc(run=not_allowed).operation()

    def timeout(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    with pytest.raises(InstallTimedOut, match="may still be writing"):
        Rauc(run=timeout).install("/b.raucb")
    with pytest.raises(TimedOut, match="RAUC did not say what it is doing within 30 s"):
        Rauc(run=timeout).operation()
    with pytest.raises(TimedOut, match="within 2 s"):  # never longer than rauc itself may take
        Rauc(run=timeout, timeout_s=2).operation()


# -- the command, with a fake rauc that outlives a one-second timeout ------------------

STATUS = dict(STOP_STATUS, boot_primary="PRIMARY")  # the fake's two slots, B once installed
# `rauc install` hands the work to "the service" (a background job that runs until the
# file `release` appears, then makes slot B primary) and waits for it, as the client
# does: stopped at its timeout, it leaves the "service" at work. It also ends when the test's
# folder is gone: a passing test's folder is removed at once, and a "service" waiting for
# `release` in it span for ever, three of them through the rest of the run.
FAKE_RAUC = """#!/bin/sh
echo "$*" >> "%(dir)s/rauc.log"
case "$1" in
  status)
    if [ "$2" = "--detailed" ]; then
      if [ -e "%(dir)s/installed" ]; then primary=app.1; else primary=app.0; fi
      printf '%%s' '%(status)s' | sed "s/PRIMARY/$primary/"
    fi
    exit 0;;
  info) echo '{"version": "2.0.0"}'; exit 0;;
  install)
    touch "%(dir)s/busy"
    ( while [ -d "%(dir)s" ] && [ ! -e "%(dir)s/release" ]; do sleep 0.1; done
      touch "%(dir)s/installed"; rm -f "%(dir)s/busy" ) </dev/null >/dev/null 2>&1 &
    sleep 0.2; while [ -e "%(dir)s/busy" ]; do sleep 0.1; done; exit 0;;
esac
exit 0
"""
# Its Progress moves at each question (a slot write going on).
FAKE_BUSCTL = """#!/bin/sh
if [ -e "%(dir)s/busy" ]; then op=installing; else op=idle; fi
echo >> "%(dir)s/asked"
printf '{"type":"s","data":"%%s"}\\n{"type":"s","data":""}\\n' "$op"
printf '{"type":"(isi)","data":[%%d,"Copying image to app.1",2]}\\n' $(wc -l < "%(dir)s/asked")
"""


def _fake_bin(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    values = {"dir": tmp_path, "status": json.dumps(STATUS)}
    for name, text in (("rauc", FAKE_RAUC), ("busctl", FAKE_BUSCTL)):
        (fake / name).write_text(text % values)
        (fake / name).chmod(0o755)
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "linekeeper-2.0.0.raucb").write_bytes(b"hsqs" + os.urandom(64 * 1024))
    (tmp_path / "data").mkdir()
    (tmp_path / "update").mkdir()
    return fake, stick


def _update(tmp_path, fake, stick, *more):
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    args = [sys.executable, "-m", "firmware.cli", "update", "--watch", str(stick), "--once",
            "--data-dir", str(tmp_path / "data"), "--update-dir", str(tmp_path / "update"),
            "--slots-dir", str(tmp_path / "slots"), "--current-link", str(tmp_path / "current"),
            "--restart-cmd", "true", "--install-timeout-s", "1", *more]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_the_command_reports_still_installing_and_takes_the_bundle_once_rauc_is_done(tmp_path):
    fake, stick = _fake_bin(tmp_path)
    try:
        proc = _update(tmp_path, fake, stick, "--install-wait-s", "2")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1, out
        assert "update linekeeper-2.0.0.raucb: installing" in out
        assert (tmp_path / "busy").exists()  # the "service" goes on after its client was stopped
        report = (stick / "linekeeper-update-report.txt").read_text()
        assert "UPDATE STILL INSTALLING" in report and "rauc install did not finish in 1 s" in report
        assert json.loads((tmp_path / "update" / "watched.json").read_text()) == {}
        assert "mark" not in (tmp_path / "rauc.log").read_text()
        assert json.loads((tmp_path / "update" / PROGRESS_NAME).read_text())["step"] == "still_installing"
        # The stick put back while RAUC still writes: refused, nothing done.
        proc = _update(tmp_path, fake, stick)
        out, _ = proc.communicate(timeout=60)
        assert "RAUC is still installing an earlier bundle" in out, out
        assert (tmp_path / "rauc.log").read_text().count("install") == 1
        # RAUC done: the stick put back installs it (here up to the wait for idle lines).
        (tmp_path / "release").touch()
        deadline = time.monotonic() + 10
        while (tmp_path / "busy").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (tmp_path / "installed").unlink()  # a fresh install, which RAUC finishes in time
        proc = _update(tmp_path, fake, stick)
        _wait_for_step(tmp_path, "wait_idle", proc)
        assert "still_installing" not in (tmp_path / "update" / PROGRESS_NAME).read_text()
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        (tmp_path / "release").touch()  # ends any "service" left


def test_the_command_goes_on_when_rauc_finishes_within_the_wait(tmp_path):
    fake, stick = _fake_bin(tmp_path)
    try:
        proc = _update(tmp_path, fake, stick, "--install-wait-s", "60")
        _wait_for_step(tmp_path, "still_installing", proc)
        (tmp_path / "release").touch()  # RAUC finishes writing
        _wait_for_step(tmp_path, "wait_idle", proc)
        progress = json.loads((tmp_path / "update" / PROGRESS_NAME).read_text())
        assert progress["to"] == "B" and progress["version"] == "2.0.0"
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        (tmp_path / "release").touch()


@pytest.mark.parametrize("option", ["--install-timeout-s", "--install-wait-s"])
@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_wait_that_is_no_number_of_seconds_is_refused_by_name(tmp_path, option, value):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware.cli",
            "update",
            option,
            value,
            "--data-dir",
            str(tmp_path),
            "b.raucb",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "%s must be a number of seconds above 0" % option in done.stderr
    assert os.listdir(tmp_path) == []


def _inbox_of(tmp_path, rauc):
    """The page's inbox over the folder the updater mirrors its progress into."""
    from firmware.update.inbox import UpdateInbox

    inbox = UpdateInbox(str(tmp_path), rauc=rauc)
    inbox.dir = str(tmp_path / "inbox")
    return inbox


def _upload(inbox):
    import io

    from tests.web.test_update_pages import bundle_bytes

    return inbox.save(io.BytesIO(bundle_bytes()), "linekeeper-2.0.0.raucb")


def test_after_an_update_ended_installing_the_page_takes_no_upload_while_rauc_is_busy(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=10)
    assert updater.run(_bundle(tmp_path)).outcome == "installing"
    inbox = _inbox_of(tmp_path, rauc)
    with pytest.raises(UpdateError, match="an update is running"):
        _upload(inbox)
    state = inbox.state()
    assert state["progress"]["step"] == "still_installing" and state["after_install"] is None
    # RAUC that cannot be asked is not taken for done either.
    rauc.answers = [UpdateError("cannot ask RAUC what it is doing: no such bus")]
    with pytest.raises(UpdateError, match="an update is running"):
        _upload(inbox)
    # Nor is an update still running at that step, whatever RAUC says (it goes on to switch).
    rauc.answers = [IDLE]
    progress = json.loads((tmp_path / "inbox" / PROGRESS_NAME).read_text())
    del progress["ended_us"]
    (tmp_path / "inbox" / PROGRESS_NAME).write_text(json.dumps(progress))
    with pytest.raises(UpdateError, match="an update is running"):
        _upload(inbox)


def test_once_rauc_is_idle_the_note_is_stale_the_page_says_what_rauc_did_and_takes_an_upload(tmp_path):
    rauc = SlowRauc([IDLE, ("installing", "")])
    updater, _ = _updater(tmp_path, rauc, install_wait_s=10)
    bundle = _bundle(tmp_path)
    assert updater.run(bundle).outcome == "installing"
    inbox = _inbox_of(tmp_path, rauc)
    rauc.answers = [("idle", "Compatible mismatch: Expected 'x' but bundle manifest has 'y'")]
    state = inbox.state()
    assert state["progress"] is None
    assert "failed after the update stopped waiting" in state["after_install"]
    assert "Compatible mismatch" in state["after_install"]
    rauc.answers = [IDLE]  # RAUC finished: it wrote the new slot
    state = inbox.state()
    assert state["progress"] is None and "finished writing" in state["after_install"]
    assert "Upload the bundle again" in state["after_install"]
    assert _upload(inbox)["name"].startswith("uploaded-")
    # The next update takes over from the stale note: it installs (RAUC idle).
    again = updater.run(bundle)
    assert again.steps[:2] == ["copy", "install"] and again.outcome != "refused"


def _ended_installing(tmp_path, answers):
    """An update that ended ``installing`` (a wait of 10 s), and the page over its inbox,
    both on the test's clock; the note it left."""
    rauc = SlowRauc(answers)
    updater, clock = _updater(tmp_path, rauc, install_wait_s=10)

    def wall_us():
        return 1_772_442_000_000_000 + int(clock.t * 1e6)

    updater._wall_us = wall_us
    assert updater.run(_bundle(tmp_path)).outcome == "installing"
    inbox = _inbox_of(tmp_path, rauc)
    inbox._wall_us = wall_us
    return rauc, clock, inbox, json.loads((tmp_path / "inbox" / PROGRESS_NAME).read_text())


def _at(clock, wall_us):
    clock.t = (wall_us - 1_772_442_000_000_000) / 1e6


def test_after_an_update_ended_installing_rauc_that_cannot_be_asked_for_a_whole_wait_is_not_known(tmp_path):
    # Before, RAUC that cannot be asked kept the page saying "do not cut the power" and taking no
    # upload for good, once the updater had ended (a stick pulled with RAUC at work).
    rauc, clock, inbox, note = _ended_installing(tmp_path, [IDLE, ("installing", "")])
    assert note["install_wait_s"] == 10 and note["rauc_answered_us"] <= note["ended_us"]
    rauc.answers = [GONE]
    _at(clock, note["rauc_answered_us"] + 9_000_000)  # less than a wait since its last answer
    with pytest.raises(UpdateError, match="an update is running"):
        _upload(inbox)
    # The page heard it answer, still at work, 8 s after: a whole wait from then.
    rauc.answers = [("installing", "")]
    assert inbox.running()
    heard = note["rauc_answered_us"] + 9_000_000
    rauc.answers = [GONE]
    _at(clock, heard + 9_000_000)
    assert inbox.running()
    _at(clock, heard + 10_000_000)
    state = inbox.state()
    assert state["progress"] is None and not inbox.running()
    assert state["after_install"] == (
        "The update of b.raucb stopped waiting for RAUC's install, and RAUC has not "
        "answered for 10 s (%s) since: what RAUC did is not known. The box was not switched: it runs "
        "its version as before, and RAUC never boots a slot it did not finish writing. Restart the box "
        "(RAUC with it), then upload the bundle again, or insert its stick again. No update is running."
        % GONE
    )
    assert _upload(inbox)["name"].startswith("uploaded-")
    # RAUC that answers again (the box restarted, say) is believed again.
    rauc.answers = [IDLE]
    assert "RAUC has finished writing" in inbox.state()["after_install"]


def test_after_an_update_ended_installing_rauc_at_work_without_progress_for_a_whole_wait_is_not_known(
    tmp_path,
):
    # Before, RAUC saying "installing" at the same point for ever kept the page saying "do not
    # cut the power" and taking no upload for good. Here its progress moved last 5 s into the
    # updater's wait (the note says when), and stands there.
    at_40 = ("installing", "", (40, "Copying image to app.1", 2))
    rauc, clock, inbox, note = _ended_installing(
        tmp_path, [IDLE, ("installing", "", (30, "Copying image to app.1", 2)), at_40]
    )
    assert note["rauc_progress"] == [40, "Copying image to app.1", 2]
    assert note["rauc_answered_us"] - note["rauc_moved_us"] == 5_000_000
    _at(clock, note["rauc_moved_us"] + 9_000_000)
    assert inbox.running() and inbox.state()["after_install"] is None
    _at(clock, note["rauc_moved_us"] + 10_000_000)
    state = inbox.state()
    assert state["progress"] is None and not inbox.running()
    assert (
        "and RAUC has said it is installing without moving on for 10 s (still at 40 %: Copying image "
        "to app.1) since: what RAUC did is not known" in state["after_install"]
    )
    # Moving again: at work, the page says not to cut the power again.
    rauc.answers = [("installing", "", (41, "Copying image to app.1", 2))]
    assert inbox.running()


def _restarted(tmp_path, inbox, rauc):
    """The page after the web UI restarted: a new inbox over the same folders and clock."""
    again = _inbox_of(tmp_path, rauc)
    again._wall_us = inbox._wall_us
    return again


def test_what_the_page_heard_of_rauc_outlives_a_restart_of_the_web_ui(tmp_path):
    # Before, the page kept RAUC's later answers in memory only: the web UI restarted, it
    # counted from the updater's note again, said what RAUC did was not known and took an
    # upload while RAUC, answering a moment before, was still writing the slot.
    rauc, clock, inbox, note = _ended_installing(tmp_path, [IDLE, ("installing", "")])
    _at(clock, note["rauc_answered_us"] + 9_000_000)
    rauc.answers = [("installing", "")]
    assert inbox.running()  # heard at work 9 s after the note
    heard = note["rauc_answered_us"] + 9_000_000
    rauc.answers = [GONE]
    _at(clock, heard + 9_000_000)
    page = _restarted(tmp_path, inbox, rauc)
    assert page.running()
    assert page.state()["progress"]["step"] == "still_installing"
    with pytest.raises(UpdateError, match="an update is running"):
        _upload(page)
    _at(clock, heard + 10_000_000)  # a whole wait since it was last heard: not known
    assert "RAUC has not answered for 10 s" in _restarted(tmp_path, inbox, rauc).state()["after_install"]


def test_the_progress_the_page_saw_move_outlives_a_restart_of_the_web_ui(tmp_path):
    at_40 = ("installing", "", (40, "Copying image to app.1", 2))
    at_41 = ("installing", "", (41, "Copying image to app.1", 2))
    rauc, clock, inbox, note = _ended_installing(
        tmp_path, [IDLE, ("installing", "", (30, "Copying image to app.1", 2)), at_40]
    )
    _at(clock, note["rauc_moved_us"] + 9_000_000)
    rauc.answers = [at_41]
    assert inbox.running()  # moved on to 41 % then
    moved = note["rauc_moved_us"] + 9_000_000
    _at(clock, moved + 9_000_000)  # still at 41 %
    page = _restarted(tmp_path, inbox, rauc)
    assert page.running() and page.state()["after_install"] is None
    _at(clock, moved + 10_000_000)
    after = _restarted(tmp_path, inbox, rauc).state()["after_install"]
    assert "without moving on for 10 s (still at 41 %" in after


def test_what_the_page_heard_is_kept_outside_the_folder_the_updater_watches(tmp_path):
    """A file written into the inbox would start the updater's path unit; one kept for an
    earlier note counts for nothing."""
    rauc, clock, inbox, note = _ended_installing(tmp_path, [IDLE, ("installing", "")])
    before = sorted(os.listdir(tmp_path / "inbox"))
    _at(clock, note["rauc_answered_us"] + 9_000_000)
    rauc.answers = [("installing", "")]
    assert inbox.running()
    assert sorted(os.listdir(tmp_path / "inbox")) == before
    # Another update's note (another ended_us): what was heard of the first is not its.
    note["ended_us"] += 1
    (tmp_path / "inbox" / PROGRESS_NAME).write_text(json.dumps(note))
    rauc.answers = [GONE]
    _at(clock, note["rauc_answered_us"] + 10_000_000)
    assert not _restarted(tmp_path, inbox, rauc).running()


# RAUC that hangs: `rauc install` and its D-Bus service never answer.
HUNG_RAUC = """#!/bin/sh
echo "$*" >> "%(dir)s/rauc.log"
case "$1" in
  status) printf '%%s' '%(status)s' | sed "s/PRIMARY/app.0/"; exit 0;;
  info) echo '{"version": "2.0.0"}'; exit 0;;
esac
exec sleep 600
"""
HUNG_BUSCTL = "#!/bin/sh\nexec sleep 600\n"


def test_the_command_with_a_rauc_that_hangs_fails_says_so_and_a_later_install_goes_ahead(tmp_path):
    from firmware.alarminbox import INBOX, UPDATE_FAILED
    from firmware.update.inbox import UpdateInbox
    from firmware.update.signals import pattern_for
    from tests.firmware.test_update_stop import FAKE_RAUC as WORKING_RAUC

    fake, stick = _fake_bin(tmp_path)
    values = {"dir": tmp_path, "status": json.dumps(STATUS)}
    (fake / "rauc").write_text(HUNG_RAUC % values)
    (fake / "busctl").write_text(HUNG_BUSCTL)
    page = UpdateInbox(str(tmp_path / "data"))
    status_dir = ["--status-dir", page.dir]
    os.makedirs(page.dir)

    proc = _update(tmp_path, fake, stick, "--install-wait-s", "2", *status_dir)
    out, _ = proc.communicate(timeout=120)

    assert proc.returncode == 1, out
    assert "update linekeeper-2.0.0.raucb: failed: rauc install did not finish in 1 s" in out
    assert "RAUC has not answered since (RAUC did not say what it is doing within 1 s" in out
    # The page: no update running, the failure and its report shown, an upload taken.
    state = page.state()
    assert state["progress"] is None and not page.running()
    assert state["last"]["outcome"] == "failed" and "it hangs" in state["last"]["message"]
    assert "UPDATE FAILED" in state["report"] and "Restart the box" in state["report"]
    # The LEDs leave "installing" for the failure's flashes; the alarm waits for the recorder.
    assert pattern_for(state["last"]["outcome"]) != pattern_for("installing")
    [note] = os.listdir(tmp_path / "data" / INBOX)
    note = json.loads((tmp_path / "data" / INBOX / note).read_text())
    assert note["kind"] == UPDATE_FAILED and "it hangs" in note["message"]
    assert not (tmp_path / "update" / PROGRESS_NAME).exists()  # nothing for --recover

    # RAUC works again (the box restarted): the same stick installs.
    log, installed = tmp_path / "rauc.log", tmp_path / "installed"
    (fake / "rauc").write_text(
        WORKING_RAUC % {"log": log, "installed": installed, "status": json.dumps(STATUS)}
    )
    (fake / "busctl").write_text(FAKE_BUSCTL % values)
    proc = _update(tmp_path, fake, stick, *status_dir)
    _wait_for_step(tmp_path, "wait_idle", proc)
    assert installed.exists()
    proc.kill()
    proc.communicate(timeout=30)


def _update_failed_by(tmp_path, busctl, wait_s="2"):
    """Run the updater, with the Updates page's folder, against the fake RAUC service whose
    ``busctl`` is the script ``busctl``: it must end failed, the page taking an upload, an
    ``update_failed`` note posted and nothing left for ``--recover``. Returns the updater's
    output, the page's state and the note's message (the fake service ends either way)."""
    from firmware.alarminbox import INBOX, UPDATE_FAILED
    from firmware.update.inbox import UpdateInbox

    fake, stick = _fake_bin(tmp_path)
    (fake / "busctl").write_text(busctl % {"dir": tmp_path})
    page = UpdateInbox(str(tmp_path / "data"))
    os.makedirs(page.dir)
    try:
        proc = _update(tmp_path, fake, stick, "--install-wait-s", wait_s, "--status-dir", page.dir)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1, out
        assert "update linekeeper-2.0.0.raucb: failed: rauc install did not finish in 1 s" in out
        state = page.state()
        assert state["progress"] is None and not page.running()
        assert state["last"]["outcome"] == "failed"
        [note] = os.listdir(tmp_path / "data" / INBOX)
        note = json.loads((tmp_path / "data" / INBOX / note).read_text())
        assert note["kind"] == UPDATE_FAILED
        assert not (tmp_path / "update" / PROGRESS_NAME).exists()  # nothing for --recover
        return out, state, note["message"]
    finally:
        (tmp_path / "release").touch()  # ends the fake "service"


# RAUC's service crashes once it has said it is installing: busctl then fails at once.
CRASHED_BUSCTL = """#!/bin/sh
if [ -e "%(dir)s/crashed" ]; then
  echo "Failed to get property Operation on interface de.pengutronix.rauc.Installer:" \\
    "The name is not activatable" >&2
  exit 1
fi
if [ -e "%(dir)s/busy" ]; then touch "%(dir)s/crashed"; op=installing; else op=idle; fi
printf '{"type":"s","data":"%%s"}\\n{"type":"s","data":""}\\n' "$op"
printf '{"type":"(isi)","data":[40,"Copying image to app.1",2]}\\n'
"""


def test_the_command_with_a_rauc_that_crashes_while_installing_fails_and_the_page_takes_an_upload(tmp_path):
    from firmware.update.signals import pattern_for

    out, state, message = _update_failed_by(tmp_path, CRASHED_BUSCTL)
    assert "RAUC stopped answering properly (cannot ask RAUC what it is doing: Failed to get" in out
    assert "Restart the box" in state["report"]
    assert pattern_for(state["last"]["outcome"]) != pattern_for("installing")
    assert "stopped answering properly" in message
    assert "mark" not in (tmp_path / "rauc.log").read_text()


# RAUC's service, once it has begun, says it is installing, for ever, at the same point.
STUCK_BUSCTL = """#!/bin/sh
if [ -e "%(dir)s/busy" ]; then op=installing; else op=idle; fi
printf '{"type":"s","data":"%%s"}\\n{"type":"s","data":""}\\n' "$op"
printf '{"type":"(isi)","data":[40,"Copying image to app.1",2]}\\n'
"""


def test_the_command_with_a_rauc_stuck_installing_fails_and_the_page_takes_an_upload(tmp_path):
    out, state, message = _update_failed_by(tmp_path, STUCK_BUSCTL)
    assert "RAUC's install has not moved on since (still at 40 %: Copying image to app.1" in out
    assert "it is stuck" in state["report"]
    assert "it is stuck" in message
    assert json.loads((tmp_path / "update" / "watched.json").read_text()) == {}  # taken again


# RAUC's service neither answers nor is gone: its questions run out of time and fail at
# once by turns, from the first one on.
FLAKY_BUSCTL = """#!/bin/sh
echo >> "%(dir)s/asked"
if [ $(( $(wc -l < "%(dir)s/asked") %% 2 )) -eq 1 ]; then exec sleep 600; fi
echo "Failed to get property Operation on interface de.pengutronix.rauc.Installer:" \\
  "Connection timed out" >&2
exit 1
"""


def test_the_command_with_a_rauc_that_hangs_and_errs_by_turns_fails_and_the_page_takes_an_upload(tmp_path):
    from firmware.update.signals import pattern_for

    out, state, message = _update_failed_by(tmp_path, FLAKY_BUSCTL, wait_s="3")
    assert "RAUC has not answered properly since (" in out
    assert "RAUC did not say what it is doing within 1 s" in out and "Connection timed out" in out
    assert len((tmp_path / "asked").read_text().splitlines()) >= 3  # both kinds met
    assert "Restart the box" in state["report"]
    assert pattern_for(state["last"]["outcome"]) != pattern_for("installing")
    assert "has not answered properly" in message
    assert "mark" not in (tmp_path / "rauc.log").read_text()


def test_status_with_rauc_not_answering_says_so_and_still_shows_the_last_update(
    tmp_path, monkeypatch, capsys
):
    """`linekeeper update --status` with RAUC's service stopped ended with RAUC's D-Bus error
    alone (status 2), hiding the last update's outcome the box keeps itself."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "rauc").write_text(
        "#!/bin/sh\necho 'Error retrieving slot status via D-Bus: error creating proxy: "
        "Could not connect: No such file or directory' >&2\nexit 1\n"
    )
    (fake / "rauc").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (fake, os.environ["PATH"]))
    (tmp_path / "update").mkdir()
    last = {"bundle": "linekeeper-2.0.0.raucb", "outcome": "installed", "message": "now on slot B"}
    (tmp_path / "update" / "last-result.json").write_text(json.dumps(last))
    from firmware.cli import main

    assert main(["update", "--status", "--update-dir", str(tmp_path / "update")]) == 1
    out = capsys.readouterr().out
    assert "RAUC does not answer, so the slots cannot be shown" in out and "systemctl status rauc" in out
    assert "Could not connect" in out
    assert "last update: linekeeper-2.0.0.raucb installed: now on slot B" in out
