"""Issue 19: a rekey inside the running recorder, asked for over its control socket.

The web asks the recorder to rekey while it records. A call is being recorded
on line 1 when the rekey runs, and calls on both lines follow it; afterwards
every recording - the ones made before, the one open during the rekey and the
ones made after - opens with the new keys and with nothing an old copy of
keystore.json holds, no tamper alarm is raised (the new keys are pinned before
a recording is wrapped to them), the new recovery key is returned once, and the
rekey is audited with who asked and from where. A recording begun between the re-wrapping and
the commit (wrapped to the old keys) is re-wrapped too. The entries carry the
web client's address the rekey was asked with.
"""

import os
import shutil
import tempfile
import threading
import types

import pytest

from firmware.alarmlog import AlarmLog
from firmware.box import Box
from firmware.control import ControlClient, ControlError, ControlServer, recorder_handlers
from firmware.errors import RekeyBusyError
from firmware.keypin import RecordingKeyPin
from firmware.recording.store import RecordingStore, new_wrapped_key
from firmware.rekey import Rekey
from firmware.signing import load_signer
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import KeyStore
from tests.recording.acceptance.test_rekey import count, opened, with_old_keystore
from tests.support.recording_lab import CHEAP_KDF, PASSWORD

S = "The birch canoe slid on the smooth planks."
REKEY_AT_S = 3.0  # line 1's first call is being recorded then
ADDRESS = "192.0.2.51"  # the web client's, which the rekey's entries carry


def call(line, at_s):
    return {
        "line": line,
        "at": at_s,
        "direction": "in",
        "rings": 1,
        "talk": 4.0,
        "speech": [{"at": 0.2, "text": S}],
    }


@pytest.fixture(scope="module")
def live(module_lab):
    lab = module_lab
    data_dir = lab.init_data_dir(lab.tmp_path / "live-box")
    keys = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    with keys.unlock("admin", PASSWORD) as admin:
        keys.add_slot("sam", "sam's line-1 password", admin, lines=[1])
    old = keys.path.read_bytes()
    out = {}

    sock_dir = tempfile.mkdtemp(prefix="lk-rekey-")  # a short path: AF_UNIX limits its length
    servers = []

    def before_start(box):
        server = ControlServer(os.path.join(sock_dir, "control.sock"), recorder_handlers(box))
        server.start()
        servers.append(server)
        client = ControlClient(server.path)

        def rekey():
            out["recording_then"] = list(box.policy.recording_lines())
            with pytest.raises(ControlError) as refused:
                client.call("rekey", user="admin", password="not the password", actor="ivan")
            out["refused"] = refused.value.kind
            out["result"] = client.call(
                "rekey", io_timeout_s=120, user="admin", password=PASSWORD, actor="ivan", address=ADDRESS
            )
            out["status"] = client.call("rekey_status")
            # The web found a right password whose slot did not open: the recorder raises it.
            client.call("slot_tampered", user="sam", failure="closed")
            with pytest.raises(ControlError):
                client.call("slot_tampered", user="sam", failure="anything the web likes")
            client.close()

        box.clock.call_at(box.clock.now_us() + int(REKEY_AT_S * 1e6), rekey)

    plan = [call(1, 0.3), call(2, 9.0), call(1, 10.0)]
    try:
        run = lab.run(lab.load(lab.scenario_doc(plan, lines=2)), data_dir, before_start=before_start)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)
    return data_dir, old, out, run


def test_the_rekey_ran_while_line_1_was_recording(live):
    _data_dir, _old, out, _run = live
    assert out["recording_then"] == [1]
    assert out["refused"] == "WrongPasswordError"
    assert out["status"]["running"] is False
    assert out["status"]["progress"][-1].startswith("rekey: done")
    assert out["result"]["summary"]["kept_slots"] == ["sam"]


def test_every_recording_opens_with_the_new_keys_only(live, tmp_path):
    data_dir, old, out, run = live
    n = count(data_dir)
    assert n == 3
    assert not [a for a in run.alarms if a.kind == "key_tampered"], run.alarms
    current = KeyStore(data_dir)
    with current.unlock("admin", PASSWORD) as admin:
        assert opened(data_dir, admin) == n
    with current.unlock_recovery(out["result"]["recovery_key"]) as by_recovery:
        assert opened(data_dir, by_recovery) == n
    with current.unlock("sam", "sam's line-1 password") as sam:
        assert opened(data_dir, sam) == 2  # line 1's two calls
    old_store = with_old_keystore(data_dir, old, tmp_path)
    with old_store.unlock("admin", PASSWORD) as old_admin:
        assert opened(data_dir, old_admin) == 0


def test_the_rekey_is_audited_with_who_asked(live):
    data_dir = live[0]
    log = AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True)
    try:
        entries = log.entries(limit=-1, action="rekey", newest_first=False)
    finally:
        log.close()
    assert [e.details["phase"] for e in entries] == ["started", "done"]
    assert {e.actor for e in entries} == {"ivan"} and entries[0].details["slot"] == "admin"
    # Where the page was used from, as every action from a page carries it.
    assert {e.details["address"] for e in entries} == {ADDRESS}


def test_a_recording_begun_before_the_commit_is_rewrapped(live, tmp_path):
    data_dir = str(tmp_path / "box")
    shutil.copytree(live[0], data_dir)
    signer = load_signer(data_dir)
    keystore = KeyStore(data_dir, kdf_params=CHEAP_KDF)
    store = RecordingStore(data_dir, signer=signer)
    held, late = [], {}

    def begin_one(_recovery):
        # A recording on line 1 starts after the rows were re-wrapped: wrapped to the old key.
        row = next(r for r in store.all() if store.line_of(r) == 1)
        ctx = types.SimpleNamespace(id=row["call_id"], line=1)
        late["id"] = os.urandom(16).hex()
        late["key"], wrapped = new_wrapped_key(keystore.line_public_key(1), late["id"], ctx)
        store.begin(row["call_id"], wrapped, row["profile"], row["chunk_ms"], row["started_at"], late["id"])

    class Hold:
        def __enter__(self):
            held.append("in")

        def __exit__(self, *exc):
            held.append("out")

    try:
        with keystore.unlock("admin", PASSWORD) as admin:
            summary = Rekey(keystore, store, RecordingKeyPin(data_dir, signer), lambda *a: None).run(
                admin, "admin", PASSWORD, begin_one, hold=Hold
            )
        assert held == ["in", "out"]
        assert summary["recordings"] == count(data_dir)
        row = store.get(late["id"])
        with KeyStore(data_dir).unlock("admin", PASSWORD) as admin:
            assert bytes(store.data_key(row, admin)) == bytes(late["key"])
    finally:
        store.close()


def test_a_second_rekey_is_refused_while_one_runs(live):
    box = types.SimpleNamespace(_rekeying=threading.Lock(), rekey_progress=[])
    box._rekeying.acquire()
    with pytest.raises(RekeyBusyError):
        Box.rekey(box, "admin", PASSWORD, "ivan", print)


def test_the_web_has_the_recorder_raise_a_slot_tamper_alarm(live):
    data_dir = live[0]
    alarms = AlarmLog.open_existing(data_dir)
    try:
        (row,) = [a for a in alarms.history() if a["kind"] == "key_tampered"]
    finally:
        alarms.close()
    assert row["message"].startswith("sam logged in with the right password but their key slot does not open")
    log = AuditLog(os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True)
    try:
        assert any("key_tampered" in repr(e.details) for e in log.entries(limit=-1, action="alarm"))
    finally:
        log.close()
