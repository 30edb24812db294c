"""A simulated box on a fresh data folder, its key store set up (cheap key derivation)."""

import json
import os
import sqlite3

from board.sim.scenario import loads_scenario
from firmware.box import open_sim_box
from firmware.storage.keystore import Argon2Params, KeyStore


def keyed_sim_box(tmp_path, synth, calls, lines, **extra):
    """``(box, data_dir)``: the scenario ``calls`` on ``lines`` lines (``extra``: more of the
    scenario, e.g. ``hat`` or ``config``), the box opened but not started."""
    data_dir = str(tmp_path / "box")
    os.makedirs(data_dir)
    KeyStore(data_dir, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "correct horse battery 7"
    )
    doc = {"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": lines, "calls": calls, **extra}
    return open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth), data_dir


def refusing_destructions(monkeypatch, store):
    """The card refuses the decision to destroy a recording (``store.unname_file``, a disk
    I/O error) while the dict returned says ``"refusing"``; ``"refused"`` counts the tries."""
    import sqlite3

    real = store.unname_file
    card = {"refusing": True, "refused": 0}

    def unname(recording_id, call_id=None, why=None, **decision):
        if card["refusing"]:
            card["refused"] += 1
            raise sqlite3.OperationalError("disk I/O error")
        return real(recording_id, call_id, why, **decision)

    monkeypatch.setattr(store, "unname_file", unname)
    return card


def save_site_settings(data_dir, **settings):
    """The web UI's site settings (``time_zone``, ``organisation``, ``lines``...) saved in
    ``data_dir``'s web.db, as the settings page saves them, on a folder that has none yet."""
    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    db.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO site (key, value) VALUES ('settings', ?)", (json.dumps(settings),))
    db.commit()
    db.close()
