"""An update whose service is stopped (the USB stick pulled: its unit is bound to the
stick's device, so systemd sends SIGTERM) ends with a report, nothing switched, and the
stick put back installs the bundle. Before, the process died at once: no report, no audit,
the LEDs left blinking, and the stick put back did nothing (the bundle counted as seen).

``linekeeper update --watch STICK --once`` runs for real here, with a fake ``rauc`` on
PATH that logs what it is asked; no recorder runs, so the update waits for it."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

STATUS = {
    "compatible": "linekeeper-rpi-lk-4l",
    "booted": "A",
    "slots": [
        {
            "app.0": {
                "bootname": "A",
                "device": "/dev/fake-a",
                "slot_status": {"bundle": {"version": "1.0.0"}},
            }
        },
        {
            "app.1": {
                "bootname": "B",
                "device": "/dev/fake-b",
                "slot_status": {"bundle": {"version": "2.0.0"}},
            }
        },
    ],
}
FAKE_RAUC = """#!/bin/sh
echo "$*" >> "%(log)s"
case "$1" in
  status)
    if [ "$2" = "--detailed" ]; then
      if [ -e "%(installed)s" ]; then primary=app.1; else primary=app.0; fi
      printf '%%s' '%(status)s' | sed "s/PRIMARY/$primary/"
    fi
    exit 0;;
  info) echo '{"version": "2.0.0"}'; exit 0;;
  install) touch "%(installed)s"; exit 0;;
esac
exit 0
"""


def _setup(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    log, installed = tmp_path / "rauc.log", tmp_path / "installed"
    status = json.dumps(dict(STATUS, boot_primary="PRIMARY"))
    (fake / "rauc").write_text(FAKE_RAUC % {"log": log, "installed": installed, "status": status})
    (fake / "rauc").chmod(0o755)
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "linekeeper-2.0.0.raucb").write_bytes(b"hsqs" + os.urandom(64 * 1024))
    (tmp_path / "data").mkdir()
    (tmp_path / "update").mkdir()  # made by scripts/install-box
    return fake, log, stick


def _start(tmp_path, fake, stick, by_hand=False):
    """The updater watching ``stick`` once, or (``by_hand``) run on its bundle as a person
    runs it, without --status-dir."""
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    what = [str(stick / "linekeeper-2.0.0.raucb")] if by_hand else ["--watch", str(stick), "--once"]
    args = [sys.executable, "-m", "firmware.cli", "update", *what,
            "--data-dir", str(tmp_path / "data"), "--update-dir", str(tmp_path / "update"),
            "--slots-dir", str(tmp_path / "slots"), "--current-link", str(tmp_path / "current"),
            "--restart-cmd", "true"]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_step(tmp_path, step, proc, timeout_s=30):
    progress = tmp_path / "update" / "progress.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if json.loads(progress.read_text())["step"] == step:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("the update never reached %s" % step)


def test_a_stick_pulled_while_the_update_waits_for_idle_lines(tmp_path):
    fake, log, stick = _setup(tmp_path)
    proc = _start(tmp_path, fake, stick)
    _wait_for_step(tmp_path, "wait_idle", proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    assert "not switched" in out and "insert the stick again" in out
    update = tmp_path / "update"
    report = (update / "last-report.txt").read_text()
    assert "insert the stick again" in report and "slot A" in report and "(no switch)" in report
    result = json.loads((update / "last-result.json").read_text())
    assert result["outcome"] == "not_switched" and result["retry"] is True
    assert not (update / "progress.json").exists() and not (update / "incoming.raucb").exists()
    assert "status mark-active app.0" in log.read_text()  # the running slot primary again
    assert not (tmp_path / "current").exists()  # nothing switched
    # The stick put back: the same bundle is taken again.
    assert json.loads((update / "watched.json").read_text()) == {}
    proc = _start(tmp_path, fake, stick)
    _wait_for_step(tmp_path, "wait_idle", proc)
    proc.kill()
    proc.communicate(timeout=30)


def test_an_update_run_by_hand_without_status_dir_shows_on_the_installer_s_page(tmp_path):
    """`linekeeper update BUNDLE --data-dir D` typed at the console, without --status-dir:
    its progress goes into D's update inbox, as the page's and a stick's updates do, so the
    page says an update runs and takes no upload (before, it kept the progress in the
    update directory only, and the page offered an upload as if nothing ran)."""
    from firmware.update.inbox import UpdateInbox

    fake, log, stick = _setup(tmp_path)
    page = UpdateInbox(str(tmp_path / "data"))
    os.makedirs(page.dir)  # made at boot by linekeeper.tmpfiles
    proc = _start(tmp_path, fake, stick, by_hand=True)
    try:
        _wait_for_step(tmp_path, "wait_idle", proc)
        assert page.running()
        # The inbox's copy of the note is written just after the update directory's.
        deadline = time.monotonic() + 30
        while (page.state()["progress"] or {}).get("step") != "wait_idle":
            assert time.monotonic() < deadline and proc.poll() is None, "the page never showed wait_idle"
            time.sleep(0.05)
        assert page.running()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_an_update_run_by_hand_without_an_inbox_keeps_its_status_in_the_update_dir(tmp_path):
    """A data directory without the page's inbox (not made by linekeeper.tmpfiles): the
    updater makes none (as root, it would be root's, and the web UI could not write it)."""
    fake, log, stick = _setup(tmp_path)
    proc = _start(tmp_path, fake, stick, by_hand=True)
    try:
        _wait_for_step(tmp_path, "wait_idle", proc)
        assert not (tmp_path / "data" / "update-inbox").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_recover_at_boot_ends_the_progress_the_page_shows_too(tmp_path):
    """An upload's update cut by the power: the boot's `linekeeper update --recover` (its unit
    gives no --status-dir) ends it in the page's inbox too. Before, the inbox kept the note,
    and the page said "Updating: install. Do not cut the power" and took no upload for good."""
    from firmware.update.inbox import UpdateInbox

    fake, log, stick = _setup(tmp_path)
    page = UpdateInbox(str(tmp_path / "data"))
    os.makedirs(page.dir)
    note = json.dumps({"step": "install", "bundle": "uploaded-1.raucb", "from": "A", "to": None})
    for folder in (tmp_path / "update", pathlib.Path(page.dir)):
        (folder / "progress.json").write_text(note)
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "firmware.cli",
            "update",
            "--recover",
            "--data-dir",
            str(tmp_path / "data"),
            "--update-dir",
            str(tmp_path / "update"),
            "--slots-dir",
            str(tmp_path / "slots"),
            "--current-link",
            str(tmp_path / "current"),
            "--restart-cmd",
            "true",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "update not switched" in done.stdout, done.stdout + done.stderr
    assert not page.running()
    state = page.state()
    assert state["progress"] is None and state["last"]["outcome"] == "not_switched"
    assert "before the switch" in state["last"]["message"]
