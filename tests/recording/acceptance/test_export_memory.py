"""Issue 11: a web export is made in memory, never as a decrypted file on the card.

On Raspberry Pi OS /tmp is on the SD card: a decrypted export written there
(even briefly, even deleted after) can be read back from the card later.
"""

import os
import sys

import pytest

from web.services import StoreRecordings

# Audit hooks cannot be removed: one is installed, the first time it is needed,
# and only records while a test switches it on.
_WATCH = {"on": False, "written": [], "installed": False}


def _hook(event, args):
    # open() with any write flag while watching: a file made on the card.
    if _WATCH["on"] and event == "open" and args[0] is not None:
        mode, flags = args[1], args[2]
        if (mode and any(c in str(mode) for c in "wax+")) or (flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            _WATCH["written"].append(str(args[0]))


@pytest.fixture
def watch_writes():
    if not _WATCH["installed"]:
        sys.addaudithook(_hook)
        _WATCH["installed"] = True
    _WATCH.update(on=False, written=[])
    yield _WATCH
    _WATCH["on"] = False


CALLS = [
    {"line": 1, "at": 1.0, "direction": "in", "caller_id": {"number": "01632960123"}, "rings": 1, "talk": 2.0}
]


def test_web_export_writes_no_file(lab, tmp_path, watch_writes):
    scenario = lab.load(lab.scenario_doc(CALLS, lines=1))
    data_dir = lab.init_data_dir(tmp_path / "box")
    lab.run(scenario, data_dir)
    (row,) = lab.rows(data_dir)
    store = lab.store(data_dir)
    service = StoreRecordings(store)
    try:
        with lab.unlock(data_dir) as key:
            _WATCH.update(on=True, written=[])
            try:
                wav = service.export(row["call_id"], key, "wav")
                ogg = service.export(row["call_id"], key, "ogg")
            finally:
                _WATCH["on"] = False
    finally:
        store.close()
    assert wav[:4] == b"RIFF" and ogg[:4] == b"OggS"
    assert _WATCH["written"] == [], "files written during an export: %s" % _WATCH["written"]
    # The same audio as the command line's export.
    out = tmp_path / "cli.wav"
    status, _, err = lab.export(data_dir, row["call_id"], out)
    assert status == 0, err
    assert out.read_bytes() == wav
