"""A box made by `linekeeper init` records no line until a consent notice is set.

`init` before the setup wizard made keys, and a box with keys recorded every line with
no notice given to anyone, until the wizard turned the notice on (docs/recovery.md has a
dead card's box made again with `init` and a configuration imported). Calls are still
logged, each marked not recorded with the reason; the wizard's notice takes effect at
once, an imported one at the recorder's next start.
"""

import errno
import json
import os

import pytest

from board.sim.scenario import loads_scenario
from firmware.box import open_audit, open_sim_box
from firmware.calls.calllog import CallLog
from firmware.config import BoxConfig, load_config
from firmware.policy.rules import BEFORE_SETUP, NO_NOTICE, outcome
from firmware.storage import keystore
from web.callstory import why_no_recording
from web.services import BoxConfigStore, notice_defaults_applier

from support.cli import calls_args, report_args, run_linekeeper
from support.recording_lab import CHEAP_KDF, PASSWORD


def init_box(tmp_path, monkeypatch):
    """A data directory made by `linekeeper init` (cheap keys); returns ``(path, stdout)``."""
    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    data = str(tmp_path / "box")
    status, out, err = run_linekeeper("init", "--data-dir", data, "--password-file", pw)
    assert status == 0, err
    return data, out


def scenario(calls, lines=2):
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": lines, "calls": calls}
    return loads_scenario(json.dumps(doc))


def calls_of(box, data):
    return CallLog(data + "/calls.db", box.clock).calls()


def run(box):
    box.start()
    assert box.board.run()
    box.stop()


INBOUND = {"direction": "in", "rings": 1, "talk": 12.0}


def test_a_box_made_by_init_records_nothing_until_the_wizard_sets_a_notice(tmp_path, monkeypatch, synth):
    data, out = init_box(tmp_path, monkeypatch)
    assert "No line is recorded until a consent notice is set" in out
    assert load_config(data).policy.consent.waits_for_notice()
    spec = [
        dict(INBOUND, line=1, at=1.0),
        {
            "line": 2,
            "at": 2.0,
            "direction": "out",
            "dial": {"digits": "01632960123", "mode": "dtmf"},
            "talk": 8.0,
        },
        dict(INBOUND, line=1, at=60.0),
    ]
    box = open_sim_box(scenario(spec), data, synth=synth)
    assert box.recorder.enabled  # it has keys: only the notice is missing
    # The wizard's own step, on the running box (web.sitechange.finish calls it), at 40 s.
    wizard = notice_defaults_applier(BoxConfigStore(data, box.apply_config), box.audit, box.clock.wall_us)
    box.clock.call_at(40_000_000, wizard)
    run(box)
    first, dialled, after = sorted(calls_of(box, data), key=lambda c: c["started_at"])
    for call in (first, dialled):
        assert call["answered_at"] and call["recording"] is None, call
        assert call["policy_decision"] == "skip" and call["policy_reason"].endswith(NO_NOTICE), call
        assert outcome(call["policy_decision"], call["policy_reason"]) == BEFORE_SETUP
        assert not call["consent"], call  # a call that will not be recorded gets no notice
    assert first["policy_reason"].startswith("line 1 records every call")
    # Nothing of them reached the card, to be destroyed after: the outbound call, on a line
    # recording every call, is not recorded from off-hook while its notice is awaited.
    with open_audit(data) as audit:
        actions = [e.action for e in reversed(audit.entries(limit=100))]
    before = actions[: actions.index("config_change")]  # the wizard's
    assert "init" in before and not {"recording_created", "recording_deleted"} & set(before), actions
    # No restart: the notice the wizard set is in force from the next call.
    assert after["recording"] == "complete" and after["policy_decision"] == "record", after
    assert after["consent"]["notice"] == "announcement" and after["consent"]["given"]


def test_calls_nobody_was_told_of_are_before_setup_in_words_in_the_list_and_the_report(tmp_path, monkeypatch):
    """Neither "excluded by rule" (no rule said skip) nor a failed recording."""
    data, _ = init_box(tmp_path, monkeypatch)
    path = tmp_path / "day.json"
    doc = {
        "start": "2026-03-02T09:00:00Z",
        "country": "uk",
        "lines": 2,
        "calls": [dict(INBOUND, line=1, at=1.0)],
    }
    path.write_text(json.dumps(doc))
    status, _, err = run_linekeeper("sim", path, "--data-dir", data, "--speed", "max")
    assert (
        status == 0
        and "has no consent notice set (policy.consent): calls are logged but none is recorded" in err
    )
    status, out, err = run_linekeeper(*calls_args(data, PASSWORD, "--json"))
    assert status == 0, err
    (call,) = [json.loads(line) for line in out.splitlines()]
    assert call["outcome"] == "before_setup" and call["recording"] is None
    said = why_no_recording(call, [])
    assert said.startswith("The box was not set up yet: no consent notice was set") and "rules" not in said
    out = tmp_path / "r.json"
    args = report_args(data, PASSWORD, "--from", "2026-03-02", "--to", "2026-03-02", "--out", out)
    assert run_linekeeper(*args)[0] == 0
    coverage = json.loads(out.read_text())["box"]["coverage"]
    assert (coverage["before_setup"], coverage["excluded"], coverage["failed"]) == (1, 0, 0)
    assert coverage["excluded_by_reason"] == {}


def test_an_imported_notice_makes_it_record_after_a_restart(tmp_path, monkeypatch, synth):
    """docs/recovery.md: a new card is set up with `init`, its configuration imported."""
    data, _ = init_box(tmp_path, monkeypatch)

    def imported(consent):
        doc = {"linekeeper_config": 1, "config": BoxConfig().to_dict(), "site": None, "files": {}}
        doc["config"]["policy"]["consent"].update(consent)
        path = tmp_path / "backup.json"
        path.write_text(json.dumps(doc))
        status, out, err = run_linekeeper("config", "import", path, "--data-dir", data)
        assert status == 0, err
        return out

    # A file that sets no notice (written before the setting, it does not name it): the
    # box still waits, and says so.
    out = imported({})
    assert "no consent notice is set in it: the box records no line until one is" in out
    assert load_config(data).policy.consent.require_notice
    box = open_sim_box(scenario([dict(INBOUND, line=1, at=1.0)]), data, synth=synth)
    run(box)
    (call,) = calls_of(box, data)
    assert call["recording"] is None and call["policy_reason"].endswith(NO_NOTICE)

    out = imported({"inbound": "tone"})
    assert "a consent notice is set now: the box records no line until it restarts" in out
    box = open_sim_box(scenario([dict(INBOUND, line=1, at=1.0)]), data, synth=synth)  # the restart
    run(box)
    call = calls_of(box, data)[-1]
    assert call["recording"] == "complete" and call["consent"]["given"], call


def test_init_refused_on_a_box_with_keys_leaves_its_configuration_as_it_was(tmp_path, monkeypatch):
    data, _ = init_box(tmp_path, monkeypatch)
    with open(data + "/config.json", "w") as f:
        json.dump({"policy": {"consent": {"inbound": "tone"}}}, f)
    before = open(data + "/config.json").read()
    status, _, err = run_linekeeper("init", "--data-dir", data, "--password-file", tmp_path / "pw")
    assert status == 2 and "already has recording keys" in err, err
    assert open(data + "/config.json").read() == before


@pytest.mark.parametrize("where", ["open", "append"])
def test_init_on_a_card_too_full_for_its_audit_entry_makes_no_keys_and_can_be_run_again(
    tmp_path, monkeypatch, where
):
    """The keys were committed before the audit trail was opened: a card that filled up
    there left a box with keys and no `init` entry, and `init` run again (room made) was
    refused as "already has recording keys". The entry now comes before the keys."""
    from firmware import box
    from firmware.storage.audit import AuditLog

    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    data = str(tmp_path / "box")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "open":
        monkeypatch.setattr(box, "open_audit", full)
    else:
        monkeypatch.setattr(AuditLog, "append", full)
    status, out, err = run_linekeeper("init", "--data-dir", data, "--password-file", pw)
    assert status == 2 and "the disk is full" in err, (out, err)
    assert not os.path.exists(os.path.join(data, "keys", "keystore.json"))
    assert "Recovery key" not in out  # no key store exists whose recovery key was shown

    monkeypatch.undo()
    monkeypatch.setattr(keystore, "DEFAULT_KDF", CHEAP_KDF)
    status, out, err = run_linekeeper("init", "--data-dir", data, "--password-file", pw)
    assert status == 0 and "Recovery key" in out, (out, err)
    with open_audit(data) as audit:
        assert [e.action for e in audit.entries(action="init")] == ["init"]


def test_a_box_whose_notices_are_all_turned_off_again_says_so_not_that_it_was_not_set_up(
    tmp_path, monkeypatch, synth
):
    """docs/policy.md: notices all turned off again on such a box stop its recording again.
    Each call then said "the box was not set up yet" and counted as before_setup, though the
    box had been set up and recording; it says now that every notice was turned off."""
    import dataclasses

    from firmware.policy.rules import NOTICES_OFF

    data, _ = init_box(tmp_path, monkeypatch)
    store = BoxConfigStore(data)  # as the Consent page saves it

    def notices(inbound):
        config = store.get()
        consent = dataclasses.replace(config.policy.consent, inbound=inbound)
        store.save(config.replace(policy=dataclasses.replace(config.policy, consent=consent)))

    notices("tone")
    notices("off")
    assert store.get().policy.consent.waits_for_notice()
    box = open_sim_box(scenario([dict(INBOUND, line=1, at=1.0)]), data, synth=synth)
    run(box)
    (call,) = calls_of(box, data)
    assert call["recording"] is None and call["policy_reason"].endswith(NOTICES_OFF)
    assert "not set up" not in call["policy_reason"]
    assert outcome(call["policy_decision"], call["policy_reason"]) == "skip"
    said = why_no_recording(call, [])
    assert said.startswith("Every consent notice had been turned off since one was set")
    out = tmp_path / "r.json"
    args = report_args(data, PASSWORD, "--from", "2026-03-02", "--to", "2026-03-02", "--out", out)
    assert run_linekeeper(*args)[0] == 0
    coverage = json.loads(out.read_text())["box"]["coverage"]
    assert (coverage["before_setup"], coverage["excluded"]) == (0, 1)
    assert list(coverage["excluded_by_reason"]) == [call["policy_reason"]]
    # A call skipped so before (the same words as one on a box never set up) is still read
    # as before_setup, as it was counted then.
    old = call["policy_reason"][: -len(NOTICES_OFF)] + NO_NOTICE
    assert outcome("skip", old) == BEFORE_SETUP
