"""Replication from simulated boxes to a real S3 server (SeaweedFS), never a mock."""

import base64
import hashlib
import json
import os
import time

import pytest
from conftest import BASE_PORT, SECRET_KEY, archive_settings, prepare_box

from board.sim.scenario import loads_scenario
from firmware.archive import sealing
from firmware.archive.queue import statuses
from firmware.archive.replicator import Replicator, call_key
from firmware.archive.store import Bucket, make_client
from firmware.archive.viewer import read_record, rebuild_index, search
from firmware.box import open_sim_box
from firmware.recording.segment import SegmentReader

from support.cli import calls_args

pytestmark = pytest.mark.slow

NUMBERS = {"alpha": "01632960101", "bravo": "01632960202", "charlie": "01632960303"}


def scenario(number, n_calls=2, talk_s=3.0):
    calls = [
        {
            "line": 1 + i % 2,
            "direction": "in",
            "rings": 1,
            "talk": talk_s,
            "at": 1.0 + 12 * i,
            "caller_id": {"number": number},
        }
        for i in range(n_calls)
    ]
    return loads_scenario(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 2, "calls": calls})
    )


def run_box(data, synth, number, n_calls=2, wait_archived=False):
    """Play a small scenario on a simulated box; with ``wait_archived``, keep the box running
    until its own uploader thread has archived every call."""
    box = open_sim_box(scenario(number, n_calls), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
        deadline = time.monotonic() + 60
        while wait_archived:
            with box.archive.calls.lock:
                got = [s for s, _ in statuses(box.archive.calls.raw()).values()]
            if got == ["archived"] * n_calls:
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.2)
    finally:
        box.stop()


def drain(replicator, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while True:
        replicator.step(ignore_backoff=True)
        if replicator.pending() == 0:
            return
        assert time.monotonic() < deadline, "the archive queue did not drain"
        time.sleep(0.2)


def restores_exactly(bucket, box_id, rows, org_private):
    """Each recording of ``rows`` (id, sha256) comes back from ``bucket`` byte for byte."""
    for rec_id, sha in rows:
        restored = sealing.restore_recording(
            bucket.get("%s/recordings/%s.lkarc" % (box_id, sha)), rec_id, bytes(org_private)
        )
        assert hashlib.sha256(restored).hexdigest() == sha


def bucket_of(s3, name):
    return Bucket(make_client(s3.endpoint, "us-east-1", "linekeeper-test", SECRET_KEY, False), name)


def all_versions(client, bucket):
    out = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        out += page.get("Versions", []) + page.get("DeleteMarkers", [])
    return out


def linekeeper(*args, env=None):
    """Run the ``linekeeper`` command; returns its stdout (fails the test on a non-zero exit)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "firmware.cli"] + list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_three_boxes_one_bucket_every_call_found_and_nothing_in_clear(tmp_path, synth, s3, bucket_name):
    from firmware.storage.keystore import KeyStore

    password = tmp_path / "org-password"
    password.write_text("organisation archive pass\n")
    out = linekeeper(
        "archive", "init-org", "--org-dir", str(tmp_path / "org"), "--password-file", str(password)
    )
    org_public = base64.b64decode(out.split("org_public_key: ")[1].strip())
    recordings = {}
    for box_id, number in NUMBERS.items():
        data = str(tmp_path / box_id)
        prepare_box(data, s3, bucket_name, box_id, org_public)
        run_box(data, synth, number, wait_archived=box_id == "alpha")
        # The box's own thread archived alpha's; the others are drained here.
        rep = Replicator(data, archive_settings(s3, bucket_name, box_id, org_public))
        try:
            drain(rep)
            assert set(s for s, _ in statuses(rep.calls.raw()).values()) == {"archived"}
            recordings[box_id] = rep.calls.query("SELECT id, sha256, call_id FROM recordings")
        finally:
            rep.close()
        assert len(recordings[box_id]) == 2
        out = linekeeper(*calls_args(data, "pw-pw-pw-pw", "--json")).splitlines()  # prepare_box's slot
        assert [json.loads(line)["archive"]["status"] for line in out] == ["archived"] * 2

    # The central viewer: its index rebuilt from the bucket alone, the key from its slots.
    index = str(tmp_path / "index.db")
    # init-org's admin opens the key once their viewer account is made (add-user, their
    # slot's own password): a slot with no account opens nothing at the command line.
    viewer_dir = str(tmp_path / "viewer")
    os.makedirs(viewer_dir)
    linekeeper("archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", str(tmp_path / "org"),
               "--name", "admin", "--roles", "supervisor", "--password-file", str(password))  # fmt: skip
    env = dict(os.environ, AWS_ACCESS_KEY_ID="linekeeper-test", AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    linekeeper(
        "archive",
        "index",
        "--endpoint",
        s3.endpoint,
        "--bucket",
        bucket_name,
        "--index",
        index,
        "--org-dir",
        str(tmp_path / "org"),
        "--password-file",
        str(password),
        "--viewer-dir",
        viewer_dir,
        env=env,
    )
    org_key = KeyStore(str(tmp_path / "org")).unlock("admin", "organisation archive pass")
    bucket = bucket_of(s3, bucket_name)
    for box_id, number in NUMBERS.items():
        found = [
            json.loads(line)
            for line in linekeeper(
                "archive", "search", "--index", index, "--number", number[-6:], "--json"
            ).splitlines()
        ]
        assert [(c["box"], c["number"]) for c in found] == [(box_id, number)] * 2
        # Each site's recording plays with the organisation key alone.
        doc = read_record(bucket.get(found[0]["record_key"]), org_key)
        assert doc["call"]["number"] == number
        rec = doc["recordings"][0]
        restored = sealing.restore_recording(bucket.get(rec["key"]), rec["id"], org_key)
        assert hashlib.sha256(restored).hexdigest() == rec["sha256"]
        key = org_key.unwrap(base64.b64decode(rec["org_wrapped_key"]), rec["id"].encode())
        path = str(tmp_path / "restored.lkrec")
        with open(path, "wb") as f:
            f.write(restored)
        reader = SegmentReader(path, key)
        assert sum(len(c) for c in reader.chunks()) > 0 and reader.complete
    assert len(linekeeper("archive", "search", "--index", index).splitlines()) == 6

    # Without the organisation key the index has the calls but no numbers.
    assert rebuild_index(bucket, index) == (6, 0)
    assert search(index, number="0163") == [] and len(search(index)) == 6

    # The bucket scanned: no number, no box-wrapped key, no clear recording header.
    forbidden = [n.encode() for n in NUMBERS.values()] + [b"\x89LKREC", b"call_started_us"]
    for box_id in NUMBERS:
        for (wrapped,) in _rows(str(tmp_path / box_id), "SELECT wrapped_key FROM recordings"):
            forbidden += [wrapped, base64.b64encode(wrapped)]
    everything = list(bucket.keys())
    # Beside the calls: each box's audit heads (hashes only; scanned too) and its public
    # signing key (for central exports), put once.
    assert {k.split("/")[0] for k in everything if "/audit-heads/" in k} == set(NUMBERS)
    assert sorted(k for k in everything if k.endswith("/signing-key.json")) == sorted(
        "%s/signing-key.json" % b for b in NUMBERS
    )
    keys = [k for k in everything if "/audit-heads/" not in k]
    assert len([k for k in keys if "/recordings/" in k]) == 6
    for key in everything:
        body = bucket.get(key)
        for word in forbidden:
            assert word not in body, (key, word)
    # Each object was put once: a single version each.
    versions = [v for v in all_versions(bucket.client, bucket_name) if "/audit-heads/" not in v["Key"]]
    assert len(versions) == len(keys) == 12 + len(NUMBERS)


def _rows(data, sql):
    import sqlite3

    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture
def own_s3(tmp_path):
    """A server of this test's own, to stop and start (ports apart from the session's)."""
    from s3server import S3Server

    server = S3Server(str(tmp_path / "s3"), None if BASE_PORT is None else BASE_PORT + 20).start()
    try:
        yield server
    finally:
        server.stop()


def _new_bucket(server):
    client = server.client()
    client.create_bucket(Bucket="outage")
    client.put_bucket_versioning(Bucket="outage", VersioningConfiguration={"Status": "Enabled"})
    return "outage"


def test_a_multipart_upload_cut_by_the_store_going_down_resumes_where_it_stopped(own_s3):
    name = _new_bucket(own_s3)
    part = 5 << 20
    body = os.urandom(3 * part - 1234)
    sent = []

    class State:
        upload_id, done = None, {}

        def set_upload_id(self, upload_id):
            self.upload_id = upload_id

        def parts(self):
            return dict(self.done)

        def part_done(self, number, md5):
            self.done[number] = md5

    def read_part(i):
        if i == 3 and len(sent) == 2:
            own_s3.stop()  # the store goes down mid-upload
        sent.append(i)
        return body[(i - 1) * part : i * part]

    bucket = bucket_of(own_s3, name)
    state = State()
    from botocore.exceptions import BotoCoreError, ClientError

    with pytest.raises((BotoCoreError, ClientError, OSError)):
        bucket.upload_multipart("k", read_part, 3, state)
    assert sorted(state.done) == [1, 2]
    own_s3.start()
    bucket = bucket_of(own_s3, name)
    etag = bucket.upload_multipart("k", read_part, 3, state)
    assert sent == [1, 2, 3, 3]  # parts 1 and 2 were not sent again
    assert etag.endswith("-3") and bucket.get("k") == body
    assert len(all_versions(bucket.client, name)) == 1


def test_boxes_keep_recording_through_an_outage_and_catch_up_without_duplicates(
    tmp_path, synth, own_s3, org_keys
):
    org_private, org_public = org_keys
    name = _new_bucket(own_s3)
    data = str(tmp_path / "box")
    prepare_box(data, own_s3, name, "delta", org_public)
    own_s3.stop()
    run_box(data, synth, NUMBERS["alpha"], n_calls=3)  # the box's own uploader meets no store
    settings = archive_settings(own_s3, name, "delta", org_public)
    rep = Replicator(data, settings)
    try:
        rep.step(ignore_backoff=True)
        status = statuses(rep.calls.raw())
        assert len(status) == 3 and {s for s, _ in status.values()} == {"queued"}
        assert any("retrying: cannot reach the store" in (r or "") for _, r in status.values())
        assert rep.pending() == 3
    finally:
        rep.close()
    own_s3.start()
    rep = Replicator(data, settings)  # a restart: the queue was on disk
    try:
        drain(rep)
        assert {s for s, _ in statuses(rep.calls.raw()).values()} == {"archived"}
        rows = rep.calls.query("SELECT id, sha256 FROM recordings")
    finally:
        rep.close()
    bucket = bucket_of(own_s3, name)
    versions = [v for v in all_versions(bucket.client, name) if "/audit-heads/" not in v["Key"]]
    # The calls' objects and the box's public signing key, each put once.
    assert len(versions) == len(set(v["Key"] for v in versions)) == 6 + 1  # nothing twice
    assert "delta/signing-key.json" in {v["Key"] for v in versions}
    restores_exactly(bucket, "delta", rows, org_private)  # nothing lost


def test_retention_deletes_every_archived_version_and_a_legal_hold_keeps_them(
    tmp_path, synth, s3, bucket_name, org_keys
):
    from firmware.clock import SimClock
    from firmware.policy.callmeta import CallMeta
    from firmware.policy.retention import DAY_US, RetentionSettings
    from firmware.policy.sweeper import RetentionSweeper
    from firmware.recording.store import RecordingStore
    from firmware.storage.audit import AuditLog

    org_private, org_public = org_keys
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "echo", org_public)
    run_box(data, synth, NUMBERS["bravo"], n_calls=2)
    settings = archive_settings(s3, bucket_name, "echo", org_public)
    rep = Replicator(data, settings)
    store = RecordingStore(data)
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    meta = CallMeta(os.path.join(data, "calls.db"))
    start = scenario(NUMBERS["bravo"]).start_wall_us
    clock = SimClock(start_wall_us=start + 40 * DAY_US)
    sweeper = RetentionSweeper(store, clock, audit, RetentionSettings.from_dict({"default_days": 30}))
    sweeper.on_destroyed.append(rep.forget)
    bucket = bucket_of(s3, bucket_name)
    try:
        drain(rep)
        rows = {r["call_id"]: r for r in store.all()}
        held, gone = sorted(rows)
        # A second version of the doomed recording's object: versioned buckets keep every one.
        gone_key = "echo/recordings/%s.lkarc" % rows[gone]["sha256"]
        bucket.client.put_object(Bucket=bucket_name, Key=gone_key, Body=bucket.get(gone_key))
        meta.set_legal_hold(held, True, "dpo", clock.wall_us())
        sweeper.guard.confirm(clock.wall_us())
        assert sweeper.sweep().deleted == 1
        drain(rep)
        names = {v["Key"] for v in all_versions(bucket.client, bucket_name)}
        assert gone_key not in names
        assert "echo/recordings/%s.lkarc" % rows[held]["sha256"] in names
        doc = read_record(bucket.get(call_key("echo", gone)), bytes(org_private))
        assert doc["recordings"] == [] and doc["number"] == NUMBERS["bravo"]
        versions = [v for v in all_versions(bucket.client, bucket_name) if v["Key"] == call_key("echo", gone)]
        assert len(versions) == 1  # the old record (with the wrapped key) is gone
        reasons = [(e["reason"], e["recording_id"]) for e in sweeper.deletion_log()]
        assert sorted(reasons) == sorted([("retention", rows[gone]["id"]), ("archive", rows[gone]["id"])])
        assert sweeper.verify() == []
    finally:
        sweeper.close()
        rep.close()
        meta.close()
        store.close()
        audit.close()


def big_recording(data):
    """One ended call with a recording of two 5 MiB parts and a bit; returns its row."""
    import sqlite3

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.recording.segment import SegmentWriter
    from firmware.recording.store import RecordingStore
    from firmware.storage.crypto import new_data_key

    CallLog(os.path.join(data, "calls.db"), SimClock()).close()
    store = RecordingStore(data)
    db = sqlite3.connect(os.path.join(data, "calls.db"), isolation_level=None)
    db.execute(
        "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, "
        "clock_synced, number) VALUES (1, 'in', 1, 1, 2, 1, '01632960999')"
    )
    db.close()
    rid = store.begin(1, os.urandom(93), "pcm", 1000, 1)
    w = SegmentWriter(
        store.path_of(rid),
        rid,
        new_data_key(),
        {"number": "01632960999", "rate": 8000, "chunk_ms": 1000},
        fsync=False,
    )
    for _ in range(200):  # 200 x 32 kB
        w.write_chunk(os.urandom(32000))
    w.close()
    store.finish(rid, "complete", 200.0)
    (row,) = store.all()
    store.close()
    return row


def test_a_recording_larger_than_a_part_goes_up_in_parts_and_restores_exactly(
    tmp_path, s3, bucket_name, org_keys
):
    org_private, org_public = org_keys
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "foxtrot", org_public, part_size_mb=5)
    row = big_recording(data)
    rep = Replicator(data, archive_settings(s3, bucket_name, "foxtrot", org_public, part_size_mb=5))
    try:
        drain(rep)
        assert rep.queue.query("SELECT count(*) FROM parts")[0][0] == 0  # done, forgotten
    finally:
        rep.close()
    bucket = bucket_of(s3, bucket_name)
    key = "foxtrot/recordings/%s.lkarc" % row["sha256"]
    assert bucket.head(key)["ETag"].strip('"').endswith("-2")
    restored = sealing.restore_recording(bucket.get(key), row["id"], bytes(org_private))
    assert hashlib.sha256(restored).hexdigest() == row["sha256"]
    assert b"01632960999" not in bucket.get(key)


def test_the_replicator_resumes_a_cut_multipart_upload_after_a_restart(tmp_path, own_s3, org_keys):
    from firmware.archive.store import Throttle

    org_private, org_public = org_keys
    name = _new_bucket(own_s3)
    data = str(tmp_path / "box")
    prepare_box(data, own_s3, name, "golf", org_public, part_size_mb=5)
    row = big_recording(data)
    settings = archive_settings(own_s3, name, "golf", org_public, part_size_mb=5)

    def cut(wait_s):  # the throttle holds part 2 back: the store goes down then
        own_s3.stop()

    throttle = Throttle(10_000_000, sleep=cut, monotonic=lambda: 0.0)  # time stands still
    rep = Replicator(data, settings, bucket=Bucket(bucket_of(own_s3, name).client, name, throttle))
    try:
        rep.step(ignore_backoff=True)
        assert rep.queue.query("SELECT number FROM parts") == [(1,)]
        assert rep.pending() == 1
    finally:
        rep.close()
    own_s3.start()
    rep = Replicator(data, settings)  # restarted: the progress was on disk
    try:
        drain(rep)
    finally:
        rep.close()
    bucket = bucket_of(own_s3, name)
    key = "golf/recordings/%s.lkarc" % row["sha256"]
    restored = sealing.restore_recording(bucket.get(key), row["id"], bytes(org_private))
    assert hashlib.sha256(restored).hexdigest() == row["sha256"]
    assert len([v for v in all_versions(bucket.client, name) if v["Key"] == key]) == 1


def test_beside_a_recorder_without_network_the_web_ui_process_uploads(
    tmp_path, synth, s3, bucket_name, org_keys
):
    """On the box the recorder has no network (linekeeper-recorder.service): its own
    uploads never reached the bucket. `linekeeper recorder` now only queues (its
    replicator's ``uploads_here`` off), and the web UI's process uploads what it queued
    (``replicator.uploader``, started by ``web.server.start_web_process``)."""
    from firmware.archive.replicator import uploader
    from firmware.storage.audit import open_audit
    from firmware.storage.fieldseal import load_field_cipher

    org_private, org_public = org_keys
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "echo", org_public)
    box = open_sim_box(scenario(NUMBERS["alpha"], 2), data, synth=synth)
    box.archive.uploads_here = False  # as `linekeeper recorder` sets it
    watched = []
    box.archive_stall = lambda: watched.append(True)  # the round's watch of the uploads
    assert box._archive_stall in box.mail.checks
    box.start()
    try:
        assert box.board.run()
        time.sleep(1.5)  # a second of the (absent) uploads' thread
        assert box.archive._thread is None
        box._archive_stall()
        assert watched == []  # the web UI's process, which uploads, watches them
        box.archive.uploads_here = True  # a box that uploads itself (a simulated one) watches its own
        box._archive_stall()
        assert watched == [True]
    finally:
        box.stop()
    assert [v["Key"] for v in all_versions(bucket_of(s3, bucket_name).client, bucket_name)] == []
    audit = open_audit(data)
    web_side = uploader(data, lambda: time.time_ns() // 1000, load_field_cipher(data, create=False), audit)
    try:
        drain(web_side)
        assert {s for s, _ in statuses(web_side.calls.raw()).values()} == {"archived"}
        rows = web_side.calls.query("SELECT id, sha256 FROM recordings")
        # What it put, in the box's trail it was given (the web UI's, which the Audit page reads).
        copied = audit.entries(limit=10, action="archive_copied")
        assert sorted(e.target for e in copied) == ["call:1", "call:2"]
    finally:
        web_side.close()
        audit.close()
    restores_exactly(bucket_of(s3, bucket_name), "echo", rows, org_private)
