"""A call log rebuilt by ``linekeeper repair`` holds what the lost one held.

Notices on (as the setup wizard leaves them), so calls are recorded as on a real
box: the demo's outbound call to 0808 157 0000, whose last digit the box learns
only after the far end answered (a reversal as its tone ended), and a withheld
inbound call. With ``calls.db`` deleted, repair rebuilds each call from its
recording's own record: every field that record carries comes back as it was;
what it does not carry is said, not guessed.
"""

import os

import pytest

# Notices on, as the setup wizard leaves them (a beep once the far end is heard outbound).
CONSENT = {"inbound": "announcement", "outbound": "tone", "warning_tone": {"enabled": True}}

CALLS = [
    {
        "line": 1,
        "at": 1.0,
        "direction": "out",
        "dial": {"digits": "08081570000", "mode": "dtmf", "on_ms": 90, "off_ms": 90},
        "talk": 12.0,
        "polarity_on_answer": True,
        "speech": [{"at": 1.0, "text": "Thank you for calling."}],
    },
    {
        "line": 2,
        "at": 2.0,
        "direction": "in",
        "caller_id": {"absence": "private"},
        "rings": 2,
        "talk": 12.0,
    },
]

# What a recording's own record carries of its call.
CARRIED = (
    "id",
    "line",
    "direction",
    "started_at",
    "answered_at",
    "answered",
    "number",
    "name",
    "absence",
    "digits_withheld",
    "clock_synced",
    "recording",
)


@pytest.fixture(scope="module")
def repaired(module_lab):
    lab = module_lab
    data_dir, original = lab.sim(lab.scenario(CALLS, config=lab.policy(consent=CONSENT)))
    assert [c["recording"] for c in original] == ["complete", "complete"], original
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(data_dir, "calls.db" + suffix)):
            os.unlink(os.path.join(data_dir, "calls.db" + suffix))
    pw = lab.tmp_path / "pw"
    pw.write_text("correct horse battery 7\n")
    pw.chmod(0o600)
    status, out, err = lab.cli("repair", "--data-dir", data_dir, "--password-file", pw)
    assert status == 0, out + err
    return original, lab.calls(data_dir), out


def test_the_outbound_number_comes_back_with_its_last_digit(repaired):
    original, rebuilt, _ = repaired
    assert original[0]["number"] == "08081570000"
    assert rebuilt[0]["number"] == "08081570000"


def test_a_withheld_number_comes_back_withheld_not_unknown(repaired):
    original, rebuilt, _ = repaired
    assert (original[1]["number"], original[1]["absence"]) == (None, "private")
    assert (rebuilt[1]["number"], rebuilt[1]["absence"]) == (None, "private")


def test_every_field_the_recording_carries_is_as_the_lost_log_held_it(repaired):
    original, rebuilt, _ = repaired
    assert len(rebuilt) == len(original) == 2
    for was, now in zip(original, rebuilt, strict=True):
        assert {f: now[f] for f in CARRIED} == {f: was[f] for f in CARRIED}
        assert now["end_reason"] == "repaired"


def test_repair_says_which_fields_it_could_not_rebuild(repaired):
    _, rebuilt, out = repaired
    said = [line for line in out.splitlines() if "the rebuilt calls do not say" in line]
    assert len(said) == 1, out
    # In words (it listed column names: end_reason, cid_standard, ...).
    for words in (
        "how the call ended",
        "how the caller ID came",
        "how the number was dialled",
        "the recording rules' decision",
        "the consent notice",
    ):
        assert words in said[0]
    # Left unknown, not guessed.
    assert all(c["cid_standard"] is None and c["policy_decision"] is None for c in rebuilt)
