"""The release's version is written once, as ``__version__`` in firmware/__init__.py: the
package's metadata (pyproject.toml) and the slot note of a box set up by install-box
(scripts/system/rauc/slot-note) take it from there, so they cannot disagree with the version
the recorder compares an update's result with (the ``update_not_running`` alarm)."""

import json
import pathlib
import shutil
import subprocess
import tomllib

import pytest
from setuptools.config.pyprojecttoml import read_configuration

import firmware

# Reading pyproject.toml's [tool.setuptools] table (the dynamic version these tests
# check), the virtualenv's setuptools (65) warns that its support is beta.
pytestmark = pytest.mark.filterwarnings(r"ignore:Support for `\[tool\.setuptools\]`")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SLOT_NOTE = ROOT / "scripts" / "system" / "rauc" / "slot-note"


def _tree(tmp_path, init):
    """A source tree with this one's pyproject.toml and RAUC configuration, and the
    firmware/__init__.py given."""
    tree = tmp_path / "tree"
    (tree / "firmware").mkdir(parents=True)
    (tree / "scripts" / "system" / "rauc").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    shutil.copy(ROOT / "scripts" / "system" / "rauc" / "system.conf", tree / "scripts" / "system" / "rauc")
    (tree / "firmware" / "__init__.py").write_text(init)
    return tree


def test_pyproject_gives_no_version_of_its_own():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "firmware.__version__"}


def test_the_package_s_version_is_the_firmware_s(tmp_path):
    """Before, a release that bumped __version__ alone installed a package still saying 0.1.0."""
    tree = _tree(tmp_path, '"""A release."""\n\n__version__ = "9.8.7"\n')
    config = read_configuration(tree / "pyproject.toml")
    assert config["project"]["version"] == "9.8.7"
    assert read_configuration(ROOT / "pyproject.toml")["project"]["version"] == (firmware.__version__)


def test_install_box_s_slot_note_names_the_firmware_s_release(tmp_path):
    """Before, slot-note read pyproject.toml's version: a box whose firmware said 9.8.7 had a
    slot note saying 0.1.0, and the Updates page showed a release the box does not run."""
    tree = _tree(tmp_path, '"""A release."""\n\n__version__ = "9.8.7"\n')
    slot = tmp_path / "slot"
    slot.mkdir()
    done = subprocess.run(["sh", str(SLOT_NOTE), str(slot), str(tree)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((slot / "linekeeper-slot.json").read_text())["version"] == "9.8.7"


def test_a_tree_whose_firmware_gives_no_version_gets_no_slot_note(tmp_path):
    tree = _tree(tmp_path, '"""no version here"""\n')
    slot = tmp_path / "slot"
    slot.mkdir()
    done = subprocess.run(["sh", str(SLOT_NOTE), str(slot), str(tree)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no __version__ in %s/firmware/__init__.py" % tree in done.stderr
    assert not list(slot.iterdir())
