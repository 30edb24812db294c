"""An erasure on request, as evidence: on a box with the HAT's MCU (its audit details
sealed), `verify` passes on the box and on the card alone, and an erasure removed from
the deletion log is caught on both; who asked and why is sealed on the card."""

import os
import shutil
import sqlite3

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware.clock import SimClock

from support.cardscan import env as _env
from support.cardscan import scan as scan_for

WHY = "erasure request from Mrs Okonkwo-Baptiste, ref 77"
CALLS = [
    {"line": 1, "at": 0.2, "direction": "in", "rings": 1, "caller_id": {"number": "01632960777"},
     "talk": 3.0, "speech": "The birch canoe slid on the smooth planks."},
    {"line": 2, "at": 0.5, "direction": "in", "rings": 1, "caller_id": {"number": "01632960778"},
     "talk": 3.0, "speech": "Glue the sheet to the dark blue background."},
    {"line": 2, "at": 25.0, "direction": "in", "rings": 1, "talk": 1.0},  # the run goes on after it
]  # fmt: skip


def test_an_erasure_verifies_on_the_box_and_the_card_alone_and_its_removal_shows(lab, tmp_path):
    mcu = SimMcu(SimClock())
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    data_dir = lab.init_data_dir(tmp_path / "box")
    erased = []

    def erase_one(box):
        def act():
            row = next(r for r in box.recordings.all() if r["state"] == "complete")
            erased.append(box.retention.erase(row["call_id"], "sam", WHY))

        box.clock.call_at(20_000_000, act)

    scenario = lab.load(lab.scenario_doc(CALLS, lines=2, hat="lk-2lb"))
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        lab.run(scenario, data_dir, vault=McuLink(mcu.bus), before_start=erase_one)
        status, out, err = lab.verify(data_dir)
        assert erased == [1] and status == 0, out + err
    card = str(tmp_path / "card")
    shutil.copytree(data_dir, card)
    assert scan_for(card, [WHY, "Okonkwo"]) == []  # why, and who asked: sealed on the card
    status, out, err = lab.verify(card, with_key=False)  # the card alone: no run directory
    assert status == 0, out + err
    for where in (data_dir, card):
        db = sqlite3.connect(os.path.join(where, "calls.db"))
        db.execute("DROP TRIGGER deletion_log_no_delete")
        db.execute("DELETE FROM deletion_log WHERE reason = 'erasure'")
        db.commit()
        db.close()
    with _env("LINEKEEPER_RUN_DIR", run_dir):
        status, out, err = lab.verify(data_dir)
    assert status == 1 and "deletion log" in out, out + err
    status, out, err = lab.verify(card, with_key=False)
    assert status == 1 and "deletion log" in out, out + err
