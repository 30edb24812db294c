"""A caller's details erased on the box leave no copy in the archive: not in the call record,
not in an older version of it, not in the central viewer's index once rebuilt."""

import base64
import json
import os
import re

import pytest
from conftest import archive_settings, prepare_box
from test_replication import all_versions, bucket_of, drain, run_box

from firmware.archive import sealing
from firmware.archive.queue import statuses
from firmware.archive.replicator import Replicator, call_key
from firmware.archive.viewer import rebuild_index, search

pytestmark = pytest.mark.slow

NUMBER = "01632960101"
FORMS = (NUMBER, NUMBER[1:], "+44" + NUMBER[1:], "441632960101")


def opened(body, org_private):
    """A record version's clear part and its sealed part opened, as one text."""
    doc = json.loads(body)
    context = ("%s/%d" % (doc["box"], doc["call_id"])).encode()
    private = sealing.unseal(base64.b64decode(doc["sealed"]), bytes(org_private), context)
    return body.decode() + private.decode()


def versions_of(bucket, name, key):
    client = bucket.client
    return [
        client.get_object(Bucket=name, Key=key, VersionId=v["VersionId"])["Body"].read()
        for v in all_versions(client, name)
        if v["Key"] == key and "Size" in v  # a delete marker has no body
    ]


def assert_number_gone(bucket, name, key, org_private):
    bodies = versions_of(bucket, name, key)
    assert bodies, "the call's record is no longer in the archive at all"
    for body in bodies:
        text = opened(body, org_private)
        assert not any(form in text for form in FORMS), text
        assert json.loads(body)["number"] is None


def held(index):
    """How many times the index file's bytes hold the number, and its reversed form."""
    with open(index, "rb") as f:
        raw = f.read()
    return raw.count(NUMBER.encode()), raw.count(NUMBER[::-1].encode())


class Site:
    """A box whose calls are archived with ``clear_numbers``, with its retention sweeper."""

    def __init__(self, tmp_path, synth, s3, bucket_name, org_public):
        from firmware.calls.calllog import CallLog
        from firmware.clock import SimClock
        from firmware.policy.retention import RetentionSettings
        from firmware.policy.sweeper import RetentionSweeper
        from firmware.recording.store import RecordingStore
        from firmware.storage.audit import AuditLog

        self.data = data = str(tmp_path / "box")
        prepare_box(data, s3, bucket_name, "leeds", org_public, clear_numbers=True)
        run_box(data, synth, NUMBER, n_calls=2)
        settings = archive_settings(s3, bucket_name, "leeds", org_public, clear_numbers=True)
        self.rep = Replicator(data, settings)
        self.store = RecordingStore(data)
        self.audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
        self.clock = SimClock()
        self.log = CallLog(os.path.join(data, "calls.db"), self.clock)
        self.sweeper = RetentionSweeper(
            self.store, self.clock, self.audit, RetentionSettings.from_dict({}), call_log=self.log
        )
        self.sweeper.on_destroyed.append(self.rep.forget)

    def close(self):
        self.sweeper.close()
        self.rep.close()
        self.log.close()
        self.store.close()
        self.audit.close()


@pytest.fixture
def site(tmp_path, synth, s3, bucket_name, org_keys):
    s = Site(tmp_path, synth, s3, bucket_name, org_keys[1])
    try:
        yield s
    finally:
        s.close()


def test_details_erased_after_the_recording_leave_no_version_and_no_index_entry(
    tmp_path, site, s3, bucket_name, org_keys
):
    org_private = bytes(org_keys[0])
    bucket = bucket_of(s3, bucket_name)
    drain(site.rep)
    key = call_key("leeds", 2)
    # A tag added later: a second version of the record, with the number too.
    from firmware.policy.callmeta import CallMeta

    meta = CallMeta(os.path.join(site.data, "calls.db"))
    meta.add_tags(2, ["complaint"])
    meta.close()
    drain(site.rep)
    index = str(tmp_path / "calls.idx")
    rebuild_index(bucket, index, org_private)
    assert [c["call_id"] for c in search(index, number=NUMBER)] == [1, 2]
    before = held(index)

    # The recording erased without the details, then the details on their own.
    assert site.sweeper.erase(2, "sam", "erasure request ref 9") == 1
    drain(site.rep)
    site.sweeper.erase_details(2, "sam", "erasure request ref 9")
    site.rep.enqueue_erased()
    assert statuses(site.rep.calls.raw())[2][0] == "queued"
    drain(site.rep)
    assert statuses(site.rep.calls.raw())[2] == ("archived", None)

    assert_number_gone(bucket, bucket_name, key, org_private)
    doc = json.loads(bucket.get(key))
    assert doc["recordings"] == []
    # Call 1 keeps its number (only call 2 was erased).
    assert json.loads(bucket.get(call_key("leeds", 1)))["number"] == NUMBER

    rebuild_index(bucket, index, org_private)
    assert [c["call_id"] for c in search(index, number=NUMBER)] == [1]
    (erased,) = [c for c in search(index, box="leeds") if c["call_id"] == 2]
    assert erased["number"] is None and erased["name"] is None
    # The index file's bytes hold call 1's copies of the number, and no more.
    assert held(index) == tuple(n // 2 for n in before) and min(before) > 0
    assert not os.path.exists(index + ".new")


@pytest.mark.parametrize("delete_job_first", [False, True])
def test_the_recording_and_the_details_erased_together_leave_no_version(
    site, s3, bucket_name, org_keys, delete_job_first
):
    org_private = bytes(org_keys[0])
    bucket = bucket_of(s3, bucket_name)
    drain(site.rep)
    if delete_job_first:
        # The uploader (another process on the box) runs the recording's deletion job
        # before the details are erased: it puts the record again, number and all.
        site.sweeper.on_destroyed.append(lambda _: drain(site.rep))
    assert site.sweeper.erase(1, "sam", "erasure request ref 10", details=True) == 1
    drain(site.rep)

    key = call_key("leeds", 1)
    assert_number_gone(bucket, bucket_name, key, org_private)
    assert len(versions_of(bucket, bucket_name, key)) == 1
    names = {v["Key"] for v in all_versions(bucket.client, bucket_name)}
    assert len([n for n in names if n.startswith("leeds/recordings/")]) == 1  # call 2's stays
    assert json.loads(bucket.get(call_key("leeds", 2)))["number"] == NUMBER


def test_the_viewers_index_drops_the_erased_number_once_the_erasure_reaches_the_archive(
    tmp_path, site, s3, bucket_name, org_keys
):
    """No rebuild by hand: the viewer's pages look for the erasures that reached the bucket
    (at most once a minute) and the index built before them no longer finds the number."""
    from test_viewer import login

    from firmware.archive.replicator import erasure_key
    from firmware.archive.viewer import get_call, open_index
    from web.archive import Viewer, create_archive_app
    from web.archive.app import ERASURES_EVERY_S
    from web.archive.users import ArchiveUsers
    from web.passwords import CHEAP_COST

    org_private = bytes(org_keys[0])
    bucket = bucket_of(s3, bucket_name)
    drain(site.rep)
    viewer_dir = str(tmp_path / "viewer")
    os.makedirs(viewer_dir, mode=0o700)
    ArchiveUsers(viewer_dir, CHEAP_COST).set("audra", "auditor's own pass 7", ["auditor"])
    clock = [1000.0]
    viewer = Viewer(
        viewer_dir, str(tmp_path / "org"), bucket, secure_cookies=False, monotonic=lambda: clock[0]
    )
    try:
        client = create_archive_app(viewer).test_client()
        login(client, "audra", "auditor's own pass 7")
        rebuild_index(bucket, viewer.index_path, org_private)  # as a supervisor rebuilt it before

        def found():
            page = client.get("/?number=" + NUMBER[-6:]).get_data(as_text=True)
            return sorted(int(i) for i in re.findall(r'<a href="/calls/leeds/(\d+)">', page))

        assert found() == [1, 2]
        before = held(viewer.index_path)

        assert site.sweeper.erase(2, "sam", "erasure request ref 11", details=True) == 1
        drain(site.rep)
        note = json.loads(bucket.get(erasure_key("leeds", 2)))
        assert note["box"] == "leeds" and note["call_id"] == 2 and NUMBER not in json.dumps(note)

        clock[0] += ERASURES_EVERY_S  # the viewer's next look
        assert found() == [1]
        db = open_index(viewer.index_path)
        try:
            erased = get_call(db, "leeds", 2)
        finally:
            db.close()
        assert erased["number"] is None and erased["name"] is None
        # The index file's bytes hold call 1's copies of the number, and no more.
        assert held(viewer.index_path) == tuple(n // 2 for n in before) and min(before) > 0
        (entry,) = viewer.audit_log.entries(action="archive_erasure")
        assert (entry.actor, entry.target, entry.details) == (
            "system",
            "leeds/2",
            {"box": "leeds", "call_id": 2},
        )

        # Once: a later look, or a rebuild, finds nothing more to drop.
        clock[0] += ERASURES_EVERY_S
        assert viewer.refresh_erasures() == []
        viewer.rebuild_index(org_private)
        assert found() == [1]
        assert len(viewer.audit_log.entries(action="archive_erasure")) == 1
    finally:
        viewer.close()


def test_details_removed_by_retention_leave_no_archived_version(site, s3, bucket_name, org_keys):
    """A call whose details the retention sweep removed past call_details_days goes from the
    archive as an erased one does (its archived record held the number too); a call whose
    recording is still kept keeps its details there as on the box."""
    import dataclasses

    from firmware.policy.sweeper import SweepResult

    org_private = bytes(org_keys[0])
    bucket = bucket_of(s3, bucket_name)
    drain(site.rep)
    assert site.sweeper.erase(2, "sam", "erasure request ref 9") == 1  # the recording only
    drain(site.rep)
    site.sweeper.update_settings(dataclasses.replace(site.sweeper.settings, call_details_days=1))
    result = SweepResult()
    (ended_us,) = site.log._db.execute("SELECT max(ended_at) FROM calls").fetchone()
    site.sweeper.expire_details(ended_us + 2 * 86_400_000_000, result)  # two days after
    assert result.details_removed == 1
    site.rep.enqueue_erased()
    assert statuses(site.rep.calls.raw())[2][0] == "queued"
    drain(site.rep)
    assert_number_gone(bucket, bucket_name, call_key("leeds", 2), org_private)
    assert '"absence": "expired"' in opened(bucket.get(call_key("leeds", 2)), org_private)
    assert json.loads(bucket.get(call_key("leeds", 1)))["number"] == NUMBER
