"""scripts/make-bundle takes the release's version from the firmware (``firmware.__version__``),
so a bundle's manifest, its slot note and the firmware it holds say the same release.

Run with a fake ``mkfs.ext4`` (it keeps the slot's tree) and a fake ``rauc`` (it keeps the
bundle's folder): what the script puts in a bundle is read here without building one
(tests/system/test_make_bundle.py builds real ones, slowly)."""

import json
import os
import pathlib
import re
import subprocess

import pytest
from setuptools.config.pyprojecttoml import read_configuration

import firmware

# Reading pyproject.toml's [tool.setuptools] table (the dynamic version these tests
# check), the virtualenv's setuptools (65) warns that its support is beta.
pytestmark = pytest.mark.filterwarnings(r"ignore:Support for `\[tool\.setuptools\]`")

ROOT = pathlib.Path(__file__).resolve().parents[2]
MAKE = ROOT / "scripts" / "make-bundle"

FAKE_MKFS = """#!/bin/sh
# mkfs.ext4 -q -F -L LABEL -d TREE IMAGE SIZE: keeps TREE beside IMAGE
while [ $# -gt 0 ]; do
    case "$1" in -d) tree=$2; shift 2 ;; -L) shift 2 ;; -*) shift ;; *) image=$1; break ;; esac
done
cp -r "$tree" "%(keep)s/slot"
: > "$image"
"""
FAKE_RAUC = """#!/bin/sh
# rauc bundle --cert=C --key=K [--keyring=R] DIR OUT: keeps DIR
for a; do case "$a" in bundle|--*) ;; *) if [ -z "${dir:-}" ]; then dir=$a; else out=$a; fi ;; esac; done
cp -r "$dir" "%(keep)s/bundle"
: > "$out"
"""


def _make(tmp_path, *args):
    fake = tmp_path / "bin"
    fake.mkdir()
    keep = tmp_path / "kept"
    keep.mkdir()
    for name, text in (("mkfs.ext4", FAKE_MKFS), ("rauc", FAKE_RAUC)):
        (fake / name).write_text(text % {"keep": keep})
        (fake / name).chmod(0o755)
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("not a real key\n")
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ["PATH"]))
    done = subprocess.run(
        [
            "sh",
            str(MAKE),
            *args,
            "--format",
            "plain",
            "--venv",
            "none",
            "--cert",
            str(tmp_path / "c.pem"),
            "--key",
            str(tmp_path / "k.pem"),
            "--out",
            str(tmp_path / "out.raucb"),
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, keep


def _said(keep):
    """The versions the bundle gives: its manifest's, its slot note's, its firmware's."""
    manifest = (keep / "bundle" / "manifest.raucm").read_text()
    init = (keep / "slot" / "app" / "firmware" / "__init__.py").read_text()
    return {
        "manifest": re.search(r"^version=(.+)$", manifest, re.M).group(1),
        "slot": json.loads((keep / "slot" / "linekeeper-slot.json").read_text())["version"],
        "bundle": json.loads((keep / "bundle" / "linekeeper-bundle.json").read_text())["version"],
        "firmware": re.search(r'^__version__ = "(.+)"$', init, re.M).group(1),
        # The package's version, as pip installs it into the bundle's venv.
        "package": read_configuration(keep / "slot" / "app" / "pyproject.toml")["project"]["version"],
    }


def test_a_bundle_without_a_version_given_is_the_firmware_s_release(tmp_path):
    done, keep = _make(tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(_said(keep).values()) == {firmware.__version__}
    assert "linekeeper %s" % firmware.__version__ in done.stdout


def test_a_version_given_that_is_not_the_firmware_s_is_the_bundle_s_firmware_s_too(tmp_path):
    """Before, a bundle built as 9.8.7 from a tree whose __version__ was not bumped held
    firmware saying 0.1.0: the box's pages, reports and audit named the old release."""
    assert firmware.__version__ != "9.8.7"
    done, keep = _make(tmp_path, "9.8.7")
    assert done.returncode == 0, done.stderr
    assert set(_said(keep).values()) == {"9.8.7"}
    assert "firmware/__init__.py says %s" % firmware.__version__ in done.stderr
    # The tree itself is left as it is.
    assert firmware.__version__ in (ROOT / "firmware" / "__init__.py").read_text()


def test_a_tree_whose_firmware_gives_no_version_is_refused(tmp_path):
    source = tmp_path / "tree"
    (source / "scripts").mkdir(parents=True)
    (source / "firmware").mkdir()
    (source / "firmware" / "__init__.py").write_text('"""no version here"""\n')
    (source / "scripts" / "make-bundle").write_text(MAKE.read_text())
    done = subprocess.run(
        ["sh", str(source / "scripts" / "make-bundle"), "--cert", "x", "--key", "y"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no __version__" in done.stderr and "firmware/__init__.py" in done.stderr
