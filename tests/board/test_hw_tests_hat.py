"""The hardware tests check the HAT the box is configured with (docs/hats.md: set
``"hat"`` in config.json, then ``make hwtest``); they checked lk-4l's pins whatever the
box had, unless LINEKEEPER_HAT said otherwise."""

import importlib.util
import json
import os

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
