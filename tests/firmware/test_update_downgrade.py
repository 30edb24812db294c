"""A bundle that is not newer than the running release is installed only on the
installer's confirmation (firmware/update/flow.py, ``_check_release``)."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from firmware.errors import UpdateError
from firmware.update.flow import CONFIRM_NAME
from firmware.update.rauc import Rauc, TimedOut
from firmware.update.watch import Watcher
from tests.firmware.test_update_flow import (
    HOST_ARCH,
    IMAGE_SHA256,
    INSTALL_CHECK,
    FakeRauc,
    _bundle,
    _updater,
)

RUNNING = "1.0.0"  # FakeRauc's slot A


class Audit:
    def __init__(self):
        self.entries = []

    def append(self, actor, action, target, details, t_us):
        self.entries.append(details)


def _box(tmp_path, version):
    rauc = FakeRauc(version=version)
    inbox = tmp_path / "update-inbox"  # firmware.update.inbox.inbox_dir(tmp_path)
    inbox.mkdir(exist_ok=True)
    updater, _ = _updater(tmp_path, rauc, lambda t: [], status_dir=str(inbox))
    updater.audit = Audit()
    return updater, rauc, inbox


def _confirm(inbox, bundle, **kw):
    with open(bundle, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    note = dict({"bundle": os.path.basename(bundle), "sha256": sha, "from": RUNNING}, **kw)
    (inbox / CONFIRM_NAME).write_text(json.dumps(note))


@pytest.mark.parametrize(
    "version, kind, said",
    [
        ("0.9.0", "older", "release 0.9.0, older than the running release (1.0.0 \u2192 0.9.0)"),
        ("1.0.0-rc.1", "older", "older than the running release (1.0.0 \u2192 1.0.0-rc.1)"),
        ("1.0.0", "same", "release 1.0.0, the one running now (a reinstall)"),
    ],
)
def test_a_bundle_not_newer_than_the_running_release_is_not_installed(tmp_path, version, kind, said):
    updater, rauc, inbox = _box(tmp_path, version)
    stick = _bundle(tmp_path)

    result = updater.run(stick, report_dir=os.path.dirname(stick))

    assert result.outcome == "refused" and not rauc.installed and rauc.marks == []
    assert said in result.message and "upload the bundle on the Updates page and confirm" in result.message
    assert result.downgrade == {"from": RUNNING, "to": version, "kind": kind, "confirmed": False}
    assert not result.later and not result.retry  # the bundle's own: a stick left in is not retried
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE REFUSED" in report and said in report
    assert updater.audit.entries[-1]["downgrade"]["kind"] == kind
    assert json.loads((inbox / "last-result.json").read_text())["downgrade"]["to"] == version


def test_the_running_release_written_in_other_capitals_is_a_reinstall(tmp_path):
    updater, rauc, _ = _box(tmp_path, "2.0.0~RC1")
    status = rauc.status

    def running_rc1():
        now = status()
        now["slots"]["app.0"]["slot_status"]["bundle"]["version"] = "2.0.0~rc1"
        return now

    rauc.status = running_rc1
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused" and not rauc.installed
    assert result.downgrade == {"from": "2.0.0~rc1", "to": "2.0.0~RC1", "kind": "same", "confirmed": False}
    assert "release 2.0.0~RC1, the one running now (a reinstall)" in result.message


def test_a_newer_release_installs_without_a_question(tmp_path):
    updater, rauc, _ = _box(tmp_path, "1.0.1")
    result = updater.run(_bundle(tmp_path))
    # Installed by RAUC and switched to (the fake box then fails its health check).
    assert rauc.installed and "switch" in result.steps and result.downgrade is None


def test_a_confirmed_downgrade_installs_once_and_uses_its_confirmation_up(tmp_path):
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")

    result = updater.run(bundle)

    assert rauc.installed and "switch" in result.steps
    assert result.downgrade == {"from": RUNNING, "to": "0.9.0", "kind": "older", "confirmed": True}
    assert updater.audit.entries[-1]["downgrade"]["confirmed"] is True
    assert not (inbox / CONFIRM_NAME).exists()


@pytest.mark.parametrize(
    "change",
    [
        {"to": "0.8.0"},  # confirmed for another release
        {"from": "0.5.0"},  # while another release ran
        {"sha256": "0" * 64},  # for another file of the same name
        {"bundle": "other.raucb"},
    ],
)
def test_a_confirmation_for_anything_else_installs_nothing(tmp_path, change):
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")
    note = json.loads((inbox / CONFIRM_NAME).read_text())
    (inbox / CONFIRM_NAME).write_text(json.dumps(dict(note, **change)))

    result = updater.run(bundle)

    assert result.outcome == "refused" and not rauc.installed
    assert not (inbox / CONFIRM_NAME).exists()  # used up: it never applies later by chance


@pytest.mark.parametrize("version", ["latest", "1.4", None])
def test_a_bundle_whose_version_is_not_a_release_version_is_refused_by_name(tmp_path, version):
    updater, rauc, _ = _box(tmp_path, version)
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused" and not rauc.installed
    assert "is not a release version like 1.4.0" in result.message
    assert "build the bundle again" in result.message


def test_an_older_release_on_a_stick_left_in_is_not_tried_again(tmp_path):
    updater, rauc, _ = _box(tmp_path, "0.9.0")
    stick = os.path.dirname(_bundle(tmp_path))
    os.makedirs(updater.s.update_dir)
    watcher = Watcher(stick, updater.s.update_dir, updater.run, stable_s=0)

    [result] = watcher.poll()

    assert result.outcome == "refused" and result.downgrade["kind"] == "older"
    assert watcher.poll() == []  # remembered, as any refusal that is the bundle's own


def test_the_page_s_confirmation_lets_the_inbox_s_next_run_install_the_held_bundle(tmp_path):
    from firmware.update.inbox import UpdateInbox

    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    os.makedirs(updater.s.update_dir)
    (inbox / "uploaded-0123456789abcdef.raucb").write_bytes(b"bundle" * 100)
    watcher = Watcher(str(inbox), updater.s.update_dir, updater.run, stable_s=0)
    [held] = watcher.poll()
    assert held.outcome == "refused" and not rauc.installed

    UpdateInbox(str(tmp_path)).confirm_downgrade("uploaded-0123456789abcdef.raucb", RUNNING, "0.9.0")
    [again] = watcher.poll()  # offered again: the path unit's next run

    assert rauc.installed and again.downgrade["confirmed"] is True


def test_a_confirmed_downgrade_a_busy_line_put_off_installs_when_taken_again(tmp_path):
    # The install went on the installer's word; a line busy for the whole wait left the box
    # on its slot "to be run again later": that later run is the same confirmed update,
    # not a bundle to refuse as if nobody had confirmed it.
    rauc = FakeRauc(version="0.9.0")
    inbox = tmp_path / "update-inbox"
    inbox.mkdir()
    lines = {"busy": [1]}
    updater, _ = _updater(tmp_path, rauc, lambda t: lines["busy"], status_dir=str(inbox), max_wait_idle_s=60)
    updater.audit = Audit()
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")

    first = updater.run(bundle)
    assert first.outcome == "not_switched" and first.later and first.downgrade["confirmed"]

    lines["busy"] = []
    rauc.installed = False
    again = updater.run(bundle)

    assert again.outcome != "refused", again.message
    assert again.downgrade["confirmed"] and "switch" in again.steps
    assert not (inbox / CONFIRM_NAME).exists()  # used up once the update is over


def test_a_confirmation_is_used_up_by_a_refusal_that_is_not_put_off(tmp_path):
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    rauc.refuse = "signature invalid"
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")

    result = updater.run(bundle)

    assert result.outcome == "refused" and not result.later and not result.retry
    assert not (inbox / CONFIRM_NAME).exists()


@pytest.mark.parametrize(
    "failure, said, later",
    [
        (
            UpdateError(
                "rauc info failed: Invalid bundle format: Signature size (999999) exceeds bundle size"
            ),
            "RAUC could not read the bundle's release: the bundle is damaged or incomplete "
            "(truncated?) (rauc info failed: Invalid bundle format: Signature size (999999) "
            "exceeds bundle size). Nothing was changed",
            False,
        ),
        (
            UpdateError("rauc info failed: Invalid bundle format: Signature size is 0"),
            "RAUC could not read the bundle's release: the bundle is not signed (rauc info failed",
            False,
        ),
        (
            TimedOut("rauc info did not finish in 600 s"),
            "RAUC could not read the bundle's release: rauc info did not finish in 600 s. Nothing "
            "was changed: try again once RAUC answers",
            True,  # RAUC hung, not the bundle's fault: a stick left in is taken again later
        ),
    ],
)
def test_a_bundle_rauc_cannot_read_is_refused_and_nothing_changes(tmp_path, failure, said, later):
    # Its release unknown, it might be older: before, it went on to the install unchecked.
    updater, rauc, inbox = _box(tmp_path, "0.9.0")

    def info(path):
        raise failure

    rauc.info = info
    told = []
    call = updater.client.call
    updater.client.call = lambda op, **kw: told.append((op, kw.get("state"))) or call(op, **kw)
    stick = _bundle(tmp_path)

    result = updater.run(stick, report_dir=os.path.dirname(stick))

    assert result.outcome == "refused" and not rauc.installed and rauc.marks == []
    assert updater.slots.pointed == [] and result.steps == ["copy"]
    assert said in result.message
    assert result.later is later and not result.retry
    report = (tmp_path / "stick" / "linekeeper-update-report.txt").read_text()
    assert "UPDATE REFUSED - the box runs its old version, unchanged" in report and said in report
    assert json.loads((inbox / "last-result.json").read_text())["message"] == result.message
    assert updater.audit.entries[-1]["outcome"] == "refused"
    assert told[-1] == ("update_state", "refused")  # the LEDs' three flashes and the alarm
    assert sorted(os.listdir(tmp_path / "update")) == ["last-report.txt", "last-result.json", "update.lock"]


def test_rauc_s_words_are_trimmed_in_the_refusal(tmp_path):
    updater, rauc, _ = _box(tmp_path, "0.9.0")

    def info(path):
        raise UpdateError("rauc info failed: Failed to mount bundle:\n   " + "x" * 1000)

    rauc.info = info
    result = updater.run(_bundle(tmp_path))
    assert result.outcome == "refused"
    assert "rauc info failed: Failed to mount bundle: xxx" in result.message
    assert "\u2026. Nothing was changed" in result.message and len(result.message) < 320


def test_rauc_info_that_does_not_answer_is_rauc_timing_out_not_the_bundle_s_fault():
    def hang(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw["timeout"])

    with pytest.raises(TimedOut, match="rauc info did not finish in 5 s"):
        Rauc(run=hang, timeout_s=5).info("/b.raucb")


def _install_check(tmp_path, updater, rauc):
    """The install-check run as RAUC runs it for a bundle of release 0.9.0 (its env); the
    fake ``rauc install`` runs it first, and the results it gave."""
    mounted = tmp_path / "mounted"  # the bundle as RAUC mounts it for its handlers
    mounted.mkdir()
    (mounted / "manifest.raucm").write_text(
        "[update]\ncompatible=x\nversion=0.9.0\n\n[image.app]\nfilename=app.ext4\nsha256=%s\n" % IMAGE_SHA256
    )
    (mounted / "linekeeper-bundle.json").write_text(json.dumps({"security_version": 1, "arch": HOST_ARCH}))
    current = tmp_path / "current"
    current.mkdir()
    (current / "linekeeper-slot.json").write_text(json.dumps({"version": RUNNING}))
    env = {
        "RAUC_BUNDLE_MOUNT_POINT": str(mounted),
        "RAUC_MF_VERSION": "0.9.0",
        "LINEKEEPER_UPDATE_DIR": updater.s.update_dir,
        "LINEKEEPER_CURRENT": str(current),
        "PATH": os.environ["PATH"],
    }
    images = [{"app": {"filename": "app.ext4", "checksum": IMAGE_SHA256, "size": 3}}]
    rauc.info = lambda path: {"version": "0.9.0", "images": images}
    checks = []
    real_install = rauc.install

    def by_hand():
        return subprocess.run([sys.executable, INSTALL_CHECK], env=env, capture_output=True, text=True)

    def install(path):
        checks.append(by_hand())
        if checks[-1].returncode:
            raise UpdateError("rauc install failed: Pre-install handler error")
        real_install(path)

    rauc.install = install
    return by_hand, checks


def test_a_confirmed_downgrade_passes_the_install_check_and_the_same_bundle_by_hand_does_not(tmp_path):
    # The install-check refuses a release that is not newer; `linekeeper update` tells it,
    # for the time of its `rauc install`, which bundle the installer confirmed.
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    by_hand, checks = _install_check(tmp_path, updater, rauc)
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")

    result = updater.run(bundle)

    assert checks[0].returncode == 0, checks[0].stderr
    assert rauc.installed and result.downgrade["confirmed"] and "switch" in result.steps
    assert not os.path.exists(os.path.join(updater.s.update_dir, "confirmed-install.json"))
    refused = by_hand()
    assert refused.returncode == 1
    assert "older than the running release (1.0.0 \u2192 0.9.0)" in refused.stderr
    assert "upload the bundle on the Updates page and confirm there" in refused.stderr


def test_a_confirmation_note_a_cut_update_left_lets_no_bundle_through_by_hand(tmp_path):
    # `linekeeper update` killed (or the power cut) during its `rauc install` of a confirmed
    # downgrade leaves its note: the same bundle by hand later is still refused, and the
    # recovery removes the note.
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    by_hand, checks = _install_check(tmp_path, updater, rauc)
    note = os.path.join(updater.s.update_dir, "confirmed-install.json")
    left = []
    install = rauc.install

    def cut(path):
        with open(note) as f:
            left.append(f.read())
        install(path)

    rauc.install = cut
    bundle = _bundle(tmp_path)
    _confirm(inbox, bundle, to="0.9.0")
    updater.run(bundle)
    assert checks[0].returncode == 0, checks[0].stderr
    with open(note, "w") as f:
        f.write(left[0])  # as the cut update left it: its own removal never came

    refused = by_hand()

    assert refused.returncode == 1
    assert "older than the running release (1.0.0 \u2192 0.9.0)" in refused.stderr
    assert not os.path.exists(note)
    with open(note, "w") as f:
        f.write(left[0])
    with open(os.path.join(updater.s.update_dir, "progress.json"), "w") as f:
        json.dump({"step": "install", "bundle": "b.raucb", "from": "A"}, f)
    updater.recover()
    assert not os.path.exists(note)


def test_a_note_a_killed_update_left_lets_nothing_through_while_the_next_update_runs(tmp_path):
    # Killed without a reboot, no recovery ran: the next update (a newer release) holds the
    # lock for its whole copy and wait, and the old note is gone by then.
    updater, rauc, inbox = _box(tmp_path, "0.9.0")
    by_hand, _ = _install_check(tmp_path, updater, rauc)
    note = {"bundle": "b.raucb", "sha256": "ab" * 32, "from": RUNNING, "to": "0.9.0"}
    note["images"] = {"app.ext4": IMAGE_SHA256}
    os.makedirs(updater.s.update_dir, exist_ok=True)
    with open(os.path.join(updater.s.update_dir, "confirmed-install.json"), "w") as f:
        json.dump(note, f)
    during = []

    def info(path):
        during.append(by_hand())  # the old bundle by hand, while this update runs
        return {"version": "1.1.0", "images": []}

    rauc.info = info
    updater.run(_bundle(tmp_path))

    assert during[0].returncode == 1
    assert "older than the running release (1.0.0 \u2192 0.9.0)" in during[0].stderr
