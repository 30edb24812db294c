"""A call answered on a line whose ringing the HAT cannot sense (``ring_not_sensed``)
is an inbound call, recorded by the inbound rules, and its keys are masked like any
call's: a card number keyed straight after the answer, while the box still listens
for dial tone, is in no recording and nowhere in the call log."""

import json

from board.adapter import load_adapter

CARD = "4111111111111111"


def weak_line(tmp_path):
    """uk-dv-hub with its ringing at 18 V rms: below the LK-4L's 25 V."""
    doc = json.loads((load_adapter.__globals__["adapters_dir"]() / "uk-dv-hub.json").read_text())
    doc["ring"]["vrms"] = 18
    path = tmp_path / "weak-ring.json"
    path.write_text(json.dumps(doc))
    return str(path)


def keys_in_recording(lab, tmp_path, mask):
    """The recorded call and the DTMF keys found in its exported recording."""
    call = {
        "line": 1,
        "at": 1.0,
        "direction": "in",
        "caller_id": {"number": "01632960123"},
        "rings": 3,
        "talk": 12.0,
        "keys": [{"at": 0.6, "digits": CARD}, {"at": 8.0, "digits": CARD}],
    }
    config = lab.policy(pci={"mask_dtmf": mask})
    doc = lab.scenario([call], lines=1, config=config, sources={"1": weak_line(tmp_path)})
    data_dir, (got,) = lab.sim(doc)
    assert (got["direction"], got["number"], got["answered"]) == ("in", "01632960123", True)
    assert got["policy_decision"] == "record" and got["recording"] is not None
    assert len(got["key_times"]) == 2 * len(CARD)
    assert CARD not in json.dumps(got)
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    wav = tmp_path / ("masked.wav" if mask else "plain.wav")
    status, _out, err = lab.export(data_dir, got["id"], wav, pw)
    assert status == 0, err
    status, out, err = lab.cli("analyze", wav, "--json")
    assert status == 0, err
    return "".join(e["digit"] for e in map(json.loads, out.splitlines()) if e["event"] == "dtmf")


def test_keys_on_a_call_answered_without_a_sensed_ring_are_masked(lab, tmp_path):
    assert keys_in_recording(lab, tmp_path, mask=True) == ""
    # Unmasked the card is there, from its first key: the test can tell.
    assert keys_in_recording(lab, tmp_path, mask=False).startswith(CARD)
