"""The hardware tests check the HAT the box is configured with (docs/hats.md: set
``"hat"`` in config.json, then ``make hwtest``); they checked lk-4l's pins whatever the
box had, unless LINEKEEPER_HAT said otherwise."""

import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _hat_name(monkeypatch, data_dir, env_hat=None):
    spec = importlib.util.spec_from_file_location("which_hat", os.path.join(ROOT, "hw_tests", "which_hat.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("LINEKEEPER_DATA_DIR", str(data_dir))
    if env_hat is None:
        monkeypatch.delenv("LINEKEEPER_HAT", raising=False)
    else:
        monkeypatch.setenv("LINEKEEPER_HAT", env_hat)
    return module.hat_name()


def test_the_hat_under_test_is_the_box_s_own(tmp_path, monkeypatch):
    assert _hat_name(monkeypatch, tmp_path) == "lk-4l"  # no configuration: the default
    (tmp_path / "config.json").write_text(json.dumps({"version": 1, "hat": "lk-2lb"}))
    assert _hat_name(monkeypatch, tmp_path) == "lk-2lb"
    assert _hat_name(monkeypatch, tmp_path, env_hat="lk-4l") == "lk-4l"  # named for the run


def _refusal(monkeypatch, data_dir):
    try:
        name = _hat_name(monkeypatch, data_dir)
    except Exception as exc:
        assert type(exc).__name__ == "HatUnknown", exc
        return str(exc)
    raise AssertionError("the HAT %r was guessed" % name)


def test_a_configuration_the_technician_cannot_read_names_no_hat(tmp_path, monkeypatch):
    """The data directory is the services' (mode 2770, group linekeeper): run by someone
    outside the group, the configuration looked absent and lk-4l's pins were checked on any
    box, an LK-2LB's too, and its record named lk-4l."""
    (tmp_path / "config.json").write_text(json.dumps({"version": 1, "hat": "lk-2lb"}))
    blocked = str(tmp_path / "config.json")
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path) == blocked:
            raise PermissionError(13, "Permission denied", blocked)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    said = _refusal(monkeypatch, tmp_path)
    assert "cannot read the box's configuration %s" % blocked in said
    assert "Permission denied" in said and "LINEKEEPER_HAT=" in said


def test_a_damaged_configuration_or_a_wrong_data_dir_is_said_in_one_line(tmp_path, monkeypatch):
    """Each was a traceback in every module's collection (INTERNALERROR for the
    configuration), or lk-4l for a data directory that is not there."""
    (tmp_path / "config.json").write_text("{broken")
    said = _refusal(monkeypatch, tmp_path)
    assert said.startswith(
        "cannot tell which HAT the box has: %s:1:2: malformed JSON" % (tmp_path / "config.json")
    )
    said = _refusal(monkeypatch, tmp_path / "nowhere")
    assert "LINEKEEPER_DATA_DIR %s is not a directory" % (tmp_path / "nowhere") in said


def test_make_hwtest_says_so_before_any_test_is_collected(tmp_path):
    (tmp_path / "config.json").write_text("{broken")
    env = dict(os.environ, LINEKEEPER_DATA_DIR=str(tmp_path))
    env.pop("LINEKEEPER_HAT", None)
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hw_tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 4, out  # a usage error, as off a Pi
    assert (
        "ERROR: cannot tell which HAT the box has: %s:1:2: malformed JSON" % (tmp_path / "config.json") in out
    )
    assert "Traceback" not in out and "INTERNALERROR" not in out, out


def test_an_unknown_hat_is_refused_naming_the_hats_there_are(tmp_path, monkeypatch):
    """LINEKEEPER_HAT=lk-9 was taken as it was: off a Pi the refusal spoke of "the line HAT
    'lk-9'", and on one every test failed loading it."""
    monkeypatch.setenv("LINEKEEPER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LINEKEEPER_HAT", "lk-9")
    said = _refusal_as_is(monkeypatch)
    assert said == (
        "LINEKEEPER_HAT 'lk-9' is no HAT there is: the HATs are lk-2lb and lk-4l (board/hats), "
        "or give the path to a HAT file of your own"
    )
    monkeypatch.setenv("LINEKEEPER_HAT", str(tmp_path / "mine.json"))
    said = _refusal_as_is(monkeypatch)
    assert said.startswith("LINEKEEPER_HAT %s: " % (tmp_path / "mine.json")) and "\n" not in said
    # The box's own configuration naming one is refused as well, naming the file.
    monkeypatch.delenv("LINEKEEPER_HAT")
    (tmp_path / "config.json").write_text(json.dumps({"version": 1, "hat": "lk-9"}))
    said = _refusal_as_is(monkeypatch)
    assert said.startswith("the box's configuration %s names the HAT 'lk-9'" % (tmp_path / "config.json"))
    assert "the HATs are lk-2lb and lk-4l (board/hats)" in said


def _refusal_as_is(monkeypatch):
    """:func:`_refusal`, the environment as the test set it."""
    spec = importlib.util.spec_from_file_location("which_hat", os.path.join(ROOT, "hw_tests", "which_hat.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        name = module.hat_name()
    except module.HatUnknown as exc:
        return str(exc)
    raise AssertionError("the HAT %r was taken" % name)


def test_make_hwtest_refuses_an_unknown_hat_before_anything_else(tmp_path):
    env = dict(os.environ, LINEKEEPER_DATA_DIR=str(tmp_path), LINEKEEPER_HAT="lk-9")
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hw_tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = ran.stdout + ran.stderr
    assert ran.returncode == 4, out
    assert "ERROR: LINEKEEPER_HAT 'lk-9' is no HAT there is: the HATs are lk-2lb and lk-4l" in out
    assert "with the line HAT" not in out and "Traceback" not in out, out
