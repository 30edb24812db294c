"""The box's audit head goes to the archive, so a later rewrite of the trail on the box shows."""

import json
import os
import sqlite3

import pytest
from conftest import SECRET_KEY, archive_settings, prepare_box
from test_replication import bucket_of, drain, linekeeper, run_box

from firmware.archive.replicator import Replicator, head_key
from firmware.archive.viewer import latest_audit_head
from firmware.storage import crypto
from firmware.storage.audit import AuditLog, canonical_json, parse_anchor

pytestmark = pytest.mark.slow


class Clock:
    def __init__(self):
        self.t_s = 0.0

    def __call__(self):
        return self.t_s


def test_a_trail_cut_short_on_the_box_no_longer_holds_the_archived_head(tmp_path, synth, s3, bucket_name):
    _, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_public)
    run_box(data, synth, "01632960101", n_calls=2)
    clock = Clock()
    rep = Replicator(
        data, archive_settings(s3, bucket_name, "leeds", org_public), monotonic=clock, head_interval_s=300
    )
    bucket = bucket_of(s3, bucket_name)
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    try:
        drain(rep)
        sent = audit.head()
        assert latest_audit_head(bucket, "leeds")["seq"] == sent[0]
        assert latest_audit_head(bucket, "leeds")["hash"] == sent[1]

        # The trail moves on; nothing is sent before the interval has passed, then the new head.
        audit.append("sam", "playback", "call:1", {}, 1_772_442_000_000_000)
        assert rep.send_audit_head() is None
        clock.t_s += 301
        assert rep.send_audit_head() == audit.head()
        assert bucket.head(head_key("leeds", sent[0])) is not None  # the earlier one is kept
        assert rep.send_audit_head(force=True) is None  # unchanged: not sent again
    finally:
        rep.close()
        audit.close()

    # The central side reads the latest head; the box's trail verifies against it.
    env = dict(os.environ, AWS_ACCESS_KEY_ID="linekeeper-test", AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    anchor = linekeeper(
        "archive", "audit-head", "--endpoint", s3.endpoint, "--bucket", bucket_name, "--box", "leeds", env=env
    ).strip()
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    try:
        assert audit.verify(parse_anchor(anchor)) == []
    finally:
        audit.close()

    # Someone with the card removes the last entry (the playback) and writes a matching head:
    # the chain alone still checks, but the archived head is no longer in it.
    seq = int(anchor.split(":")[0])
    db = sqlite3.connect(os.path.join(data, "audit.db"))
    db.execute("DROP TRIGGER audit_no_delete")  # the append-only guard is only a trigger
    db.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    db.execute("DELETE FROM audit_sig WHERE seq >= ?", (seq,))
    prev_seq, prev_hash = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    db.commit()
    db.close()
    with open(os.path.join(data, "audit.head"), "w") as f:
        f.write(canonical_json({"seq": prev_seq, "hash": prev_hash}) + "\n")
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    try:
        assert audit.verify() == []  # without the archived head, the cut does not show
        problems = audit.verify(parse_anchor(anchor))
        assert any("no longer in the audit trail" in p for p in problems), problems
    finally:
        audit.close()
    assert json.loads(bucket.get(head_key("leeds", seq)))["box"] == "leeds"
