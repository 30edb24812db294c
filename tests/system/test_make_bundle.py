"""scripts/make-bundle: a release bundle (verity, with its venv) and its refusals."""

import os
import subprocess

import pytest

from tests.system.raucbox import KEYS, ROOT

MAKE = os.path.join(ROOT, "scripts", "make-bundle")
CERT = os.path.join(KEYS, "test-signing.cert.pem")
KEY = os.path.join(KEYS, "test-signing.key.pem")
KEYRING = os.path.join(KEYS, "test-ca.cert.pem")


def _debugfs(image, command):
    return subprocess.run(
        ["debugfs", "-R", command, image], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slow
def test_a_release_bundle_is_verity_signed_and_holds_firmware_venv_and_mcu(tmp_path):
    out = str(tmp_path / "lk.raucb")
    done = subprocess.run(
        [
            MAKE,
            "1.4.0",
            "--security-version",
            "3",
            "--cert",
            CERT,
            "--key",
            KEY,
            "--keyring",
            KEYRING,
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    info = subprocess.run(
        ["rauc", "info", "--keyring", KEYRING, out], capture_output=True, text=True, check=True
    ).stdout
    assert "Bundle Format: \tverity" in info
    assert "'linekeeper-rpi-lk-4l'" in info and "'1.4.0'" in info
    subprocess.run(
        ["rauc", "extract", "--keyring", KEYRING, out, str(tmp_path / "x")], capture_output=True, check=True
    )
    assert '"security_version": 3' in (tmp_path / "x" / "linekeeper-bundle.json").read_text()
    image = str(tmp_path / "x" / "app.ext4")
    assert '"version": "1.4.0"' in _debugfs(image, "cat /linekeeper-slot.json")
    # The venv runs from the link to the active slot, whichever slot it is in.
    assert _debugfs(image, "cat /venv/bin/linekeeper").startswith("#!/opt/linekeeper/current/venv/bin/python")
    assert "def main" in _debugfs(image, "cat /app/firmware/cli.py")
    assert "lkmcu" in _debugfs(image, "ls /mcu")
    assert "tests" not in _debugfs(image, "ls /app").split()


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give the signing certificate and key"),  # the version is the firmware's
        (["1.0"], "is not like 1.4.0"),
        (["1.0.0", "--format", "zip"], "--format is plain or verity"),
        (["1.0.0", "--security-version", "-1"], "whole number"),
        (["1.0.0", "--compatible", "Bad Name"], "is not a name"),
        (["1.0.0", "--cert", CERT], "give the signing certificate and key"),
        (["1.0.0", "--cert", "/nonexistent.pem", "--key", KEY], "cannot read the certificate"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, message):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEKEEPER_SIGNING")}
    done = subprocess.run(
        [MAKE, *args, "--out", str(tmp_path / "b.raucb")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "b.raucb").exists()


def test_a_bundle_says_the_cpu_it_was_built_for_in_its_signed_note_and_manifest(tmp_path):
    """The box's install-check refuses a bundle for another CPU (docs/updates.md): the
    bundle names its own, this machine's as dpkg names it."""
    out = str(tmp_path / "lk.raucb")
    done = subprocess.run(
        [MAKE, "1.4.0", "--format", "plain", "--venv", "none", "--cert", CERT, "--key", KEY, "--out", out],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert ", %s, security version 1" % arch in done.stdout
    subprocess.run(
        ["rauc", "extract", "--keyring", KEYRING, out, str(tmp_path / "x")], capture_output=True, check=True
    )
    assert '"arch": "%s"' % arch in (tmp_path / "x" / "linekeeper-bundle.json").read_text()
    assert '"arch": "%s"' % arch in _debugfs(str(tmp_path / "x" / "app.ext4"), "cat /linekeeper-slot.json")
