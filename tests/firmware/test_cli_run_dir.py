"""The `linekeeper` commands find the recorder's run directory as one: LINEKEEPER_RUN_DIR
when it is set, else the box's own (/run/linekeeper, here a temporary folder standing in
for it) when it exists; and when they find no key there, they say where they looked."""

import os

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware import signing
from firmware.calls.calllog import CallLog
from firmware.cli import main
from firmware.clock import SimClock
from firmware.storage.fieldseal import load_field_cipher
from firmware.storage.keystore import Argon2Params, KeyStore

from support.cli import calls_args, password_beside

PASSWORD = "a key slot's password"  # `linekeeper report`'s and `calls`', who asks for it


@pytest.fixture
def vault_box(tmp_path, monkeypatch):
    """``(data_dir, run)``: a box whose personal data is sealed with the MCU vault's key,
    an empty call log, and the recorder's copy of the key in ``run``; no variable set."""
    data_dir, run = tmp_path / "box", tmp_path / "run"
    data_dir.mkdir()
    cipher = load_field_cipher(str(data_dir), vault=McuLink(SimMcu(SimClock()).bus), run_dir=str(run))
    CallLog(str(data_dir / "calls.db"), SimClock(), cipher=cipher).close()
    KeyStore(str(data_dir), Argon2Params(memory_kib=8, iterations=1)).initialise("admin", PASSWORD)
    monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
    return str(data_dir), str(run)


COMMANDS = {
    "calls": lambda data_dir, tmp_path: list(calls_args(data_dir, PASSWORD)),
    "report": lambda data_dir, tmp_path: [
        "report", "--data-dir", data_dir, "--password-file", password_beside(data_dir, PASSWORD),
        "--from", "2026-01-01", "--to", "2026-01-31", "--out", str(tmp_path / "report.json"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_from_a_root_shell_a_command_finds_the_box_s_run_directory(vault_box, tmp_path, monkeypatch, command):
    data_dir, run = vault_box
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", run)  # /run/linekeeper on the box
    assert main(COMMANDS[command](data_dir, tmp_path)) == 0


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_that_finds_no_key_says_where_it_looked(vault_box, tmp_path, monkeypatch, capsys, command):
    data_dir, run = vault_box
    argv = COMMANDS[command](data_dir, tmp_path)
    missing = str(tmp_path / "no-run-dir")
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", missing)  # off the box: not there
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "LINEKEEPER_RUN_DIR is not set, and there is no %s (the box's run directory)" % missing in err

    os.makedirs(missing)  # there, and the recorder left nothing in it
    assert main(argv) == 2
    assert (
        "LINEKEEPER_RUN_DIR is not set, and %s, the box's run directory, holds no copy of it" % missing
        in capsys.readouterr().err
    )

    elsewhere = str(tmp_path / "elsewhere")
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", elsewhere)  # the variable, and it is wrong
    assert main(argv) == 2
    assert "LINEKEEPER_RUN_DIR is %s, which holds no copy of it" % elsewhere in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "report.json")


def test_the_variable_comes_before_the_box_s_run_directory(vault_box, tmp_path, monkeypatch):
    data_dir, run = vault_box
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", run)
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(tmp_path / "elsewhere"))
    assert signing.run_dir() == str(tmp_path / "elsewhere")
    assert main(list(calls_args(data_dir, PASSWORD))) == 2  # not the box's, though it holds the key
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", "")  # set but empty: as unset
    assert signing.run_dir() == run
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(tmp_path / "no-run-dir"))
    assert signing.run_dir() is None


def test_a_signing_key_not_found_says_where_it_looked(tmp_path, monkeypatch):
    """The device key of a box whose MCU vault keeps it, asked for by a process that is not
    the recorder (audit entries of a command, a statement it signs)."""
    from firmware.signing import SigningKeyError, load_signer

    data_dir, run = str(tmp_path / "box"), str(tmp_path / "run")
    os.makedirs(data_dir)
    made = load_signer(data_dir, vault=McuLink(SimMcu(SimClock()).bus), run_dir=run)
    monkeypatch.delenv("LINEKEEPER_RUN_DIR", raising=False)
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", run)
    assert load_signer(data_dir, run_dir=signing.run_dir(), create=False).public_key == made.public_key
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(tmp_path / "no-run-dir"))
    with pytest.raises(SigningKeyError) as exc:
        load_signer(data_dir, run_dir=signing.run_dir(), create=False)
    said = "there is no %s (the box's run directory): is the recorder running?" % (tmp_path / "no-run-dir")
    assert said in str(exc.value)


def test_update_confirm_with_no_recorder_says_where_it_looked(vault_box, tmp_path, capsys):
    """The recorder's control socket is in the data directory, not the run directory:
    the refusal names it, so a mistyped --data-dir shows."""
    from firmware.control import socket_path

    data_dir, _ = vault_box
    before = sorted(os.listdir(data_dir))
    update_dir = tmp_path / "rauc"
    update_dir.mkdir()
    assert main(["update", "--confirm", "--data-dir", data_dir, "--update-dir", str(update_dir)]) == 2
    assert (
        "the recorder is not running (no recorder answers on %s, the control socket of the box in %s)"
        % (socket_path(data_dir), data_dir)
        in capsys.readouterr().err
    )
    assert sorted(os.listdir(data_dir)) == before and os.listdir(update_dir) == []


def _box_with_a_vault(data_dir, synth):
    """A sim box with its HAT's MCU vault, started and stopped: it loads its keys."""
    import json

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": []}
    vault = McuLink(SimMcu(SimClock()).bus)
    box = open_sim_box(loads_scenario(json.dumps(doc)), str(data_dir), synth=synth, vault=vault)
    box.start()
    box.stop()


def test_a_box_run_by_hand_on_the_appliance_leaves_the_recorders_run_directory_alone(
    tmp_path, monkeypatch, synth
):
    """The recorder writes in LINEKEEPER_RUN_DIR only (the services give it): a box run
    as root by hand on an appliance (a demo, a test) must not overwrite the running
    recorder's key copies in /run/linekeeper."""
    given = tmp_path / "given"
    monkeypatch.setenv("LINEKEEPER_RUN_DIR", str(given))
    _box_with_a_vault(tmp_path / "with", synth)
    assert os.listdir(given)  # given one, the box leaves its key copies there

    appliance = tmp_path / "appliance"
    appliance.mkdir()
    (appliance / "running-recorder").write_text("its copies")
    monkeypatch.setattr(signing, "APPLIANCE_RUN_DIR", str(appliance))
    monkeypatch.delenv("LINEKEEPER_RUN_DIR")
    _box_with_a_vault(tmp_path / "without", synth)
    assert os.listdir(appliance) == ["running-recorder"]
