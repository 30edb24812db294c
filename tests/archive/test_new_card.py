"""A new card under the old card's box_id leaves the old card's archived calls as they were.

The old card died; a technician fits a new one in the same box, imports the configuration
exported from the old card (the archive settings, box_id included) and the box records
again. Its call log numbers calls from 1 again, so its call 1 is not the archived call 1:
the archive is then the only copy of the old card's calls, and neither the new card's
records nor its retention may replace or delete them. The new card's calls are refused,
saying why and what to do (a box_id of its own), and go up once it has one.
Without an S3 server: the box's real replicator into a bucket kept in memory.
"""

import hashlib
import json
import os
import shutil
import sqlite3

from conftest import archive_settings, prepare_box
from test_export import MemoryBucket, Nowhere
from test_replication import drain

from board.sim.scenario import loads_scenario
from firmware.alarminbox import INBOX
from firmware.archive.replicator import Replicator, head_key, signing_key_key
from firmware.archive.viewer import latest_audit_head
from firmware.box import open_sim_box
from firmware.policy.sweeper import Candidate
from firmware.signing import KEY_FILE, PUBLIC_FILE
from firmware.storage import crypto
from firmware.storage.audit import AuditLog

BUCKET = "lk-card"


class VersionedBucket(MemoryBucket):
    """A MemoryBucket whose deletions the replicator can ask for (one version per key)."""

    def head(self, key, version_id=None):
        return super().head(key)

    def get(self, key, version_id=None):
        return super().get(key)

    def versions(self, key):
        return [(None, hashlib.md5(self.objects[key][0]).hexdigest())] if key in self.objects else []

    def delete_versions(self, key, ours):
        if key not in self.objects:
            return 0, []
        why = ours(*self.versions(key)[0])
        if why is not None:
            return 0, [(None, why)]
        del self.objects[key]
        return 1, []


def card(tmp, name, box_id, org_public, synth, start, key_from=None):
    """A data dir (a card) that took one call in at ``start``; with ``key_from``, signing with
    that card's key (as a new card in the same HAT does: the key comes from the HAT's vault)."""
    data = str(tmp / name)
    prepare_box(data, Nowhere, BUCKET, box_id, org_public)
    if key_from:
        for name in (KEY_FILE, PUBLIC_FILE):
            shutil.copy2(os.path.join(key_from, name), os.path.join(data, name))
    call = {"line": 1, "direction": "in", "rings": 1, "talk": 2.0, "at": 1.0}
    calls = [dict(call, caller_id={"number": "01632960101"})]
    scenario = {"start": start, "country": "uk", "lines": 1, "calls": calls}
    box = open_sim_box(loads_scenario(json.dumps(scenario)), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()
    return data


def replicate(data, bucket, box_id, org_public, then=None):
    rep = Replicator(data, archive_settings(Nowhere, BUCKET, box_id, org_public), bucket=bucket)
    try:
        drain(rep)
        if then:
            then(rep)
            drain(rep)
    finally:
        rep.close()


def calls_and_recordings(bucket):
    return {k: v for k, v in bucket.objects.items() if "/calls/" in k or "/recordings/" in k}


def status(data, call_id):
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        query = "SELECT status, reason FROM archive_status WHERE call_id = ?"
        return db.execute(query, (call_id,)).fetchone()
    finally:
        db.close()


def destroyed(data, call_id):
    """The retention candidate of call ``call_id``'s recording on card ``data``."""
    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        rec_id, sha, size = db.execute(
            "SELECT id, sha256, bytes FROM recordings WHERE call_id = ?", (call_id,)
        ).fetchone()
        started = db.execute("SELECT started_at FROM calls WHERE id = ?", (call_id,)).fetchone()[0]
    finally:
        db.close()
    return Candidate(rec_id, call_id, 1, "in", (), started, 2.0, size, sha, "default", 30)


def test_a_new_card_under_the_old_box_id_neither_replaces_nor_deletes_the_old_cards_calls(tmp_path, synth):
    _, org_public = crypto.new_key_pair()
    bucket = VersionedBucket()
    old = card(tmp_path, "old", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    replicate(old, bucket, "leeds-1", org_public)
    archived = calls_and_recordings(bucket)
    assert "leeds-1/calls/0000000001.json" in archived

    new = card(tmp_path, "new", "leeds-1", org_public, synth, "2026-05-11T10:00:00Z", key_from=old)
    # Its call is refused, and so is its retention's deletion of "call 1".
    replicate(new, bucket, "leeds-1", org_public, then=lambda rep: rep.forget([destroyed(new, 1)]))
    assert calls_and_recordings(bucket) == archived  # nothing of the new card's went up, nothing went
    state, reason = status(new, 1)
    assert state == "failed"
    assert "already holds another call 1 under box_id leeds-1" in reason
    assert "another card's or box's" in reason and "damaged" not in reason
    assert "started 2026-03-02T09:00:01" in reason and "started 2026-05-11T10:00:01" in reason
    assert "give this box a box_id of its own" in reason
    notes = os.listdir(os.path.join(new, INBOX))
    assert len(notes) == 1
    with open(os.path.join(new, INBOX, notes[0])) as f:
        assert "box_id of its own" in json.load(f)["message"]

    # Given a box_id of its own, the new card's calls go up beside the old card's.
    replicate(new, bucket, "leeds-1b", org_public)
    assert status(new, 1) == ("archived", None)
    assert "leeds-1b/calls/0000000001.json" in bucket.objects
    assert all(bucket.objects[k] == v for k, v in archived.items())


def test_a_new_card_under_the_old_box_id_sends_no_audit_head_among_the_old_cards(tmp_path, synth):
    """Its trail numbers entries from 1 again: a head at a number the old card's heads used
    was skipped, the others added, and ``archive audit-head`` printed the new card's head."""
    _, org_public = crypto.new_key_pair()
    bucket = VersionedBucket()
    old = card(tmp_path, "old", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    replicate(old, bucket, "leeds-1", org_public)
    old_head = latest_audit_head(bucket, "leeds-1")
    assert old_head is not None
    heads = {k: v for k, v in bucket.objects.items() if "/audit-heads/" in k}

    new = card(tmp_path, "new", "leeds-1", org_public, synth, "2026-05-11T10:00:00Z", key_from=old)
    audit = AuditLog(os.path.join(new, "audit.db"), os.path.join(new, "audit.head"))
    try:
        # Past the old card's latest head and short of it: neither goes up.
        while audit.head()[0] <= old_head["seq"]:
            audit.append("sam", "playback", "call:1", {}, 1_778_493_600_000_000)
        rep = Replicator(new, archive_settings(Nowhere, BUCKET, "leeds-1", org_public), bucket=bucket)
        try:
            assert rep.send_audit_head(force=True) is None
        finally:
            rep.close()
    finally:
        audit.close()
    assert {k: v for k, v in bucket.objects.items() if "/audit-heads/" in k} == heads
    assert latest_audit_head(bucket, "leeds-1") == old_head
    notes = os.listdir(os.path.join(new, INBOX))
    assert len(notes) == 1
    with open(os.path.join(new, INBOX, notes[0])) as f:
        message = json.load(f)["message"]
    assert "audit head %d:%s" % (old_head["seq"], old_head["hash"]) in message
    assert "give this box a box_id of its own" in message

    # The old card's own heads still go up under it.
    audit = AuditLog(os.path.join(old, "audit.db"), os.path.join(old, "audit.head"))
    try:
        audit.append("sam", "playback", "call:1", {}, 1_772_442_000_000_000)
        rep = Replicator(old, archive_settings(Nowhere, BUCKET, "leeds-1", org_public), bucket=bucket)
        try:
            assert rep.send_audit_head(force=True) == audit.head()
        finally:
            rep.close()
    finally:
        audit.close()
    assert latest_audit_head(bucket, "leeds-1")["seq"] > old_head["seq"]

    # Given a box_id of its own, the new card's heads go up.
    rep = Replicator(new, archive_settings(Nowhere, BUCKET, "leeds-1b", org_public), bucket=bucket)
    try:
        assert rep.send_audit_head(force=True) is not None
    finally:
        rep.close()
    assert latest_audit_head(bucket, "leeds-1b") is not None


def test_a_head_another_box_archived_at_this_boxs_next_number_is_not_passed_over(tmp_path, synth):
    """Two boxes given one box_id at once: once this box's first head went up, a head the
    other archived at the number this box's trail reaches next is not skipped as sent."""
    _, org_public = crypto.new_key_pair()
    bucket = VersionedBucket()
    new = card(tmp_path, "new", "leeds-1", org_public, synth, "2026-05-11T10:00:00Z")
    audit = AuditLog(os.path.join(new, "audit.db"), os.path.join(new, "audit.head"))
    rep = Replicator(new, archive_settings(Nowhere, BUCKET, "leeds-1", org_public), bucket=bucket)
    try:
        first = rep.send_audit_head(force=True)
        assert first == audit.head()
        seq = first[0] + 1
        bucket.put(head_key("leeds-1", seq), json.dumps({"seq": seq, "hash": "ab" * 32}).encode())
        audit.append("sam", "playback", "call:1", {}, 1_778_493_600_000_000)
        assert audit.head()[0] == seq
        assert rep.send_audit_head(force=True) is None
    finally:
        rep.close()
        audit.close()
    notes = os.listdir(os.path.join(new, INBOX))
    assert len(notes) == 1
    with open(os.path.join(new, INBOX, notes[0])) as f:
        message = json.load(f)["message"]
    assert "audit head %d:%s" % (seq, "ab" * 32) in message and "has another entry at %d" % seq in message


def test_a_damaged_archived_copy_of_this_boxs_call_is_replaced_not_taken_for_another_call(
    tmp_path, synth, caplog
):
    """A record in the bucket that cannot be read (not JSON, cut short, not a call record) is
    no other box's call: the box's own good record replaces it (as a new version), saying so."""
    _, org_public = crypto.new_key_pair()
    card_ = card(tmp_path, "box", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    key = "leeds-1/calls/0000000001.json"
    for i, damaged in enumerate((b'{"format": 1, "box": "leeds-1", "li', b"\x00\x93bits", b"[1, 2]", b"{}")):
        data = shutil.copytree(card_, str(tmp_path / ("copy%d" % i)))
        bucket = VersionedBucket()
        bucket.put(key, damaged, {"content-sha256": "0" * 64})
        caplog.clear()
        with caplog.at_level("WARNING", logger="firmware.archive.replicator"):
            replicate(data, bucket, "leeds-1", org_public)
        record = json.loads(bucket.objects[key][0])
        assert (record["call_id"], record["started_at"][:19]) == (1, "2026-03-02T09:00:01"), damaged
        state, reason = status(data, 1)
        assert state == "archived"
        assert "a damaged copy" in reason and "was replaced" in reason
        assert any("damaged" in r.getMessage() and "call 1" in r.getMessage() for r in caplog.records)
        assert not os.path.exists(os.path.join(data, INBOX)) or not os.listdir(os.path.join(data, INBOX))


def test_a_damaged_archived_copy_does_not_hold_up_retention(tmp_path, synth):
    """Retention's deletion of a call whose archived record is damaged goes ahead: the call's
    record is put again without the recording. The damaged version, not shown to be this
    box's, is not deleted: the call's archive status names it."""
    _, org_public = crypto.new_key_pair()
    data = card(tmp_path, "box", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    bucket = VersionedBucket()
    replicate(data, bucket, "leeds-1", org_public)
    key = "leeds-1/calls/0000000001.json"
    bucket.put(key, b'{"format": 1, "call_id": 1, "line"', {})
    replicate(data, bucket, "leeds-1", org_public, then=lambda rep: rep.forget([destroyed(data, 1)]))
    record = json.loads(bucket.objects[key][0])
    assert record["call_id"] == 1 and record["started_at"].startswith("2026-03-02T09:00:01")
    assert not [k for k in bucket.objects if "/recordings/" in k]
    state, reason = status(data, 1)
    assert state == "archived"
    assert "left in the archive, not deleted: %s" % key in reason and "damaged (not JSON" in reason


def test_a_damaged_audit_head_at_this_boxs_number_is_replaced(tmp_path, synth, caplog):
    """Not passed over as sent: the box's own head replaces it, logged."""
    _, org_public = crypto.new_key_pair()
    data = card(tmp_path, "box", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    bucket = VersionedBucket()
    try:
        seq, digest = audit.head()
        bucket.put(head_key("leeds-1", seq), b'{"seq": %d, "ha' % seq)
        rep = Replicator(data, archive_settings(Nowhere, BUCKET, "leeds-1", org_public), bucket=bucket)
        try:
            with caplog.at_level("WARNING", logger="firmware.archive.replicator"):
                assert rep.send_audit_head(force=True) == (seq, digest)
        finally:
            rep.close()
    finally:
        audit.close()
    assert latest_audit_head(bucket, "leeds-1")["hash"] == digest
    assert any(
        "damaged" in r.getMessage() and "audit head %d" % seq in r.getMessage() for r in caplog.records
    )


def test_a_damaged_latest_head_does_not_let_another_trails_heads_in(tmp_path, synth):
    """The check before the first head reads the latest head that can be read: a damaged one
    after another trail's heads is no proof the trail is this box's."""
    _, org_public = crypto.new_key_pair()
    data = card(tmp_path, "box", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    bucket = VersionedBucket()
    try:
        seq = audit.head()[0]
        bucket.put(head_key("leeds-1", seq + 5), json.dumps({"seq": seq + 5, "hash": "ab" * 32}).encode())
        bucket.put(head_key("leeds-1", seq + 9), b"\x00\x00")
        rep = Replicator(data, archive_settings(Nowhere, BUCKET, "leeds-1", org_public), bucket=bucket)
        try:
            assert rep.send_audit_head(force=True) is None
        finally:
            rep.close()
    finally:
        audit.close()
    assert head_key("leeds-1", seq) not in bucket.objects
    notes = os.listdir(os.path.join(data, INBOX))
    with open(os.path.join(data, INBOX, notes[0])) as f:
        assert "audit head %d:%s" % (seq + 5, "ab" * 32) in json.load(f)["message"]


def test_audit_head_passes_over_a_damaged_latest_head_naming_it(caplog):
    """``archive audit-head`` read the latest head in the bucket as JSON, and a damaged one
    ended it with a raw JSONDecodeError: it is skipped, named, and the one before printed."""
    bucket = VersionedBucket()
    bucket.put(head_key("leeds-1", 7), json.dumps({"seq": 7, "hash": "ab" * 32}).encode())
    bucket.put(head_key("leeds-1", 9), b'{"seq": 9, "ha')
    bucket.put(head_key("leeds-1", 11), b"[11]")
    with caplog.at_level("WARNING", logger="firmware.archive.viewer"):
        assert latest_audit_head(bucket, "leeds-1") == {"seq": 7, "hash": "ab" * 32}
    said = [r.getMessage() for r in caplog.records]
    assert any(head_key("leeds-1", 9) in m and "damaged" in m and "cut short" in m for m in said), said
    assert any(head_key("leeds-1", 11) in m and "not a JSON object" in m for m in said), said

    bucket = VersionedBucket()
    bucket.put(head_key("leeds-1", 9), b"\x00\x00")
    assert latest_audit_head(bucket, "leeds-1") is None


def test_a_damaged_archived_signing_key_is_replaced_saying_what_was_wrong(tmp_path, synth, caplog):
    """It shows no other key, so the box's own replaces it; it was replaced without a word."""
    _, org_public = crypto.new_key_pair()
    card_ = card(tmp_path, "box", "leeds-1", org_public, synth, "2026-03-02T09:00:00Z")
    key = signing_key_key("leeds-1")
    damaged = (
        (b'{"box": "leeds-1", "public_k', "cut short"),
        (b'{"box": "leeds-1"}', "no public_key"),
        (b'{"public_key": "not base64!"}', "public_key is not base64"),
        (b'{"public_key": 12}', "public_key is not base64"),
    )
    for i, (body, wrong) in enumerate(damaged):
        data = shutil.copytree(card_, str(tmp_path / ("copy%d" % i)))
        bucket = VersionedBucket()
        bucket.put(key, body)
        caplog.clear()
        with caplog.at_level("WARNING", logger="firmware.archive.replicator"):
            replicate(data, bucket, "leeds-1", org_public)
        ours = json.loads(bucket.objects[key][0])
        assert ours["public_key"] and status(data, 1) == ("archived", None), body
        said = [r.getMessage() for r in caplog.records]
        named = [m for m in said if key in m and "damaged" in m and ours["fingerprint"] in m]
        assert any(wrong in m for m in named), said
