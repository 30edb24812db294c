"""The appliance's systemd units: valid, sandboxed within their exposure budgets,
and consistent with the users, groups and paths the installer makes."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEM = Path(__file__).resolve().parents[2] / "scripts" / "system"
UNITS = {"linekeeper-web.service": 2.0, "linekeeper-recorder.service": 3.5, "linekeeper-banner.service": 1.0}
# The firmware of the running application slot (docs/updates.md).
EXE = "/opt/linekeeper/current/venv/bin/linekeeper"
# Run once at boot, as root: the slot mount and the update recovery.
BOOT_UNITS = {
    "linekeeper-slot.service": "/usr/lib/linekeeper/rauc/mount-slot",
    "linekeeper-update-recover.service": EXE,
    "linekeeper-update-inbox.service": EXE,
    "linekeeper-stick@.service": "/usr/lib/linekeeper/rauc/stick",
    "linekeeper-card-commit.service": "/usr/lib/linekeeper/card-commit",
}
OTHER_FILES = ["linekeeper-update-inbox.path", "61-linekeeper-stick.rules"]


@pytest.fixture
def unit_dir(tmp_path):
    """The units as installed, but for ExecStart's program, which is not on this
    machine outside an installed box: an existing one stands in for it."""
    for name in UNITS:
        text = (SYSTEM / name).read_text()
        assert EXE in text
        (tmp_path / name).write_text(text.replace(EXE, sys.executable))
    return tmp_path


def test_units_verify_clean(unit_dir):
    for name, program in BOOT_UNITS.items():
        text = (SYSTEM / name).read_text()
        assert program in text
        (unit_dir / name).write_text(text.replace(program, sys.executable))
    (unit_dir / OTHER_FILES[0]).write_text((SYSTEM / OTHER_FILES[0]).read_text())
    instances = [n.replace("@.", "@sda1.") for n in BOOT_UNITS]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no"]
        + [str(unit_dir / n) for n in [*UNITS, *instances, OTHER_FILES[0]]],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("name", sorted(UNITS))
def test_exposure_within_budget(unit_dir, name):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit_dir / name)],
        capture_output=True,
        text=True,
        cwd=unit_dir,
    )
    level = re.search(r"Overall exposure level for %s: ([\d.]+)" % re.escape(name), result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= UNITS[name]


def unit(name):
    fields = {}
    for line in (SYSTEM / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            fields.setdefault(key, []).append(value)
    return fields


def test_each_process_has_only_what_its_job_needs():
    web, rec = unit("linekeeper-web.service"), unit("linekeeper-recorder.service")
    assert rec["Type"] == ["notify"] and rec["WatchdogSec"] and rec["Restart"] == ["always"]
    assert rec["PrivateNetwork"] == ["yes"] and rec["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert set(rec["DeviceAllow"]) == {"char-gpiochip rw", "char-alsa rw", "char-i2c rw"}
    assert web["PrivateDevices"] == ["yes"] and "DeviceAllow" not in web
    assert web["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert web["ReadOnlyPaths"] == ["/var/lib/linekeeper/recordings"]
    assert web["User"] != rec["User"] and web["Group"] == rec["Group"] == ["linekeeper"]
    assert web["UMask"] == rec["UMask"] == ["0007"]  # fsutil.data_mode's shared group


def test_users_groups_and_paths_match_the_installer():
    sysusers = (SYSTEM / "linekeeper.sysusers").read_text()
    for name in UNITS:
        fields = unit(name)
        assert re.search(r"^u %s " % fields["User"][0], sysusers, re.M)
        assert re.search(r"^m %s linekeeper$" % fields["User"][0], sysusers, re.M)
    tmpfiles = (SYSTEM / "linekeeper.tmpfiles").read_text()
    assert "d /var/lib/linekeeper 2770 linekeeper-rec linekeeper" in tmpfiles
    assert "d /var/lib/linekeeper/recordings " in tmpfiles  # ReadOnlyPaths needs it
    installer = (SYSTEM.parent / "install-box").read_text()
    for name in list(UNITS) + list(BOOT_UNITS) + OTHER_FILES + ["60-linekeeper.rules", "journald.conf"]:
        assert name in installer
    assert "rauc/mount-slot" in installer and "rauc/stick" in installer
    assert "system.conf" in installer


def test_a_usb_stick_starts_its_update_unit():
    rule = (SYSTEM / "61-linekeeper-stick.rules").read_text()
    assert 'ENV{ID_BUS}=="usb"' in rule and 'SUBSYSTEM=="block"' in rule
    assert 'ENV{SYSTEMD_WANTS}+="linekeeper-stick@%k.service"' in rule
    stick = unit("linekeeper-stick@.service")
    assert stick["BindsTo"] == ["dev-%i.device"]  # pulled out: the unit stops
    assert stick["ExecStart"] == ["/usr/lib/linekeeper/rauc/stick /dev/%I"]
    inbox = (SYSTEM / "linekeeper-update-inbox.path").read_text()
    assert "PathChanged=/var/lib/linekeeper/update-inbox" in inbox
    service = unit("linekeeper-update-inbox.service")
    assert "--status-dir /var/lib/linekeeper/update-inbox" in service["ExecStart"][0]


def test_the_services_start_after_the_slot_is_mounted_and_recovery_after_them():
    for name in UNITS:
        assert "linekeeper-slot.service" in unit(name)["After"][0]
    recover = unit("linekeeper-update-recover.service")
    assert recover["ConditionPathExists"] == ["/var/lib/linekeeper-update/progress.json"]
    assert "--recover" in recover["ExecStart"][0]
    for name in UNITS:
        assert name in recover["After"][0]


def test_mount_slot_leaves_an_installed_box_without_slot_partitions_as_it_is(tmp_path):
    (tmp_path / "opt" / "installed").mkdir(parents=True)
    os.symlink("installed", tmp_path / "opt" / "current")
    (tmp_path / "update").mkdir()
    (tmp_path / "update" / "current").write_text("B\n")
    env = dict(
        os.environ,
        LINEKEEPER_UPDATE_DIR=str(tmp_path / "update"),
        LINEKEEPER_PREFIX=str(tmp_path / "opt"),
        LINEKEEPER_SLOTS_DIR=str(tmp_path / "slots"),
        LINEKEEPER_SLOT_DEVICES=str(tmp_path / "no-devices"),
    )
    done = subprocess.run([str(SYSTEM / "rauc" / "mount-slot")], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "no slot partition" in done.stdout and "linekeeper-app-b" in done.stdout
    assert os.readlink(tmp_path / "opt" / "current") == "installed"


def test_installer_is_valid_shell_and_refuses_bad_options():
    installer = str(SYSTEM.parent / "install-box")
    assert subprocess.run(["sh", "-n", installer]).returncode == 0
    result = subprocess.run(["sh", installer, "--frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2 and "unknown option --frobnicate" in result.stderr
    if os.geteuid() == 0:  # the HAT is checked after the check for root
        result = subprocess.run(["sh", installer, "--hat", "lk-9x"], capture_output=True, text=True)
        assert (
            result.returncode == 2
            and "--hat 'lk-9x' is not a HAT of board/hats/ (lk-2lb lk-4l" in result.stderr
        )
    assert shutil.which("systemd-sysusers"), "the installer needs systemd-sysusers"


def test_an_installed_box_notes_its_version_for_the_updates_page(tmp_path):
    """install-box writes the slot note of the firmware it installs: the Updates page then
    shows the version a box set up by hand runs."""
    from firmware.update.inbox import UpdateInbox

    source = SYSTEM.parents[1]
    installer = (SYSTEM.parent / "install-box").read_text()
    assert 'rauc/slot-note" "$PREFIX.new/installed" "$SRC" "$COMPATIBLE"' in installer
    slot = tmp_path / "installed"
    slot.mkdir()
    done = subprocess.run(
        ["sh", str(SYSTEM / "rauc" / "slot-note"), str(slot), str(source)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    version = re.search(r'^__version__ = "(.+)"$', (source / "firmware" / "__init__.py").read_text(), re.M)[1]
    inbox = UpdateInbox(str(tmp_path / "data"), slot_info=str(slot / "linekeeper-slot.json"))
    assert inbox.state()["installed_version"] == version
    note = json.loads((slot / "linekeeper-slot.json").read_text())
    assert note["compatible"] == "linekeeper-rpi-lk-4l" and note["security_version"] == 0
    # A box with another HAT (install-box --hat lk-2lb) takes only bundles made for it.
    done = subprocess.run(
        ["sh", str(SYSTEM / "rauc" / "slot-note"), str(slot), str(source), "linekeeper-rpi-lk-2lb"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((slot / "linekeeper-slot.json").read_text())["compatible"] == "linekeeper-rpi-lk-2lb"
    # A source tree without a version is refused, and nothing is written.
    empty = tmp_path / "empty"
    (empty / "scripts" / "system" / "rauc").mkdir(parents=True)
    (empty / "firmware").mkdir()
    (empty / "firmware" / "__init__.py").write_text('"""no version here"""\n')
    (empty / "scripts" / "system" / "rauc" / "system.conf").write_text("compatible=x\n")
    other = tmp_path / "other"
    other.mkdir()
    note_cmd = ["sh", str(SYSTEM / "rauc" / "slot-note"), str(other), str(empty)]
    done = subprocess.run(note_cmd, capture_output=True, text=True)
    assert done.returncode == 2 and "no __version__" in done.stderr and not list(other.iterdir())
