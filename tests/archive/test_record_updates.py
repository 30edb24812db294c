"""A call's record goes up again when its tags or legal hold change after it was archived."""

import base64
import json

import pytest
from conftest import archive_settings, prepare_box
from test_replication import all_versions, bucket_of, drain, run_box

from firmware.archive.queue import statuses
from firmware.archive.replicator import Replicator, call_key
from firmware.archive.viewer import read_record
from firmware.policy.callmeta import CallMeta
from firmware.storage import crypto

pytestmark = pytest.mark.slow


def test_tags_and_a_hold_added_later_reach_the_archive_as_a_new_version(tmp_path, synth, s3, bucket_name):
    org_private, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_public)
    run_box(data, synth, "01632960101", n_calls=2)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_public))
    bucket = bucket_of(s3, bucket_name)
    try:
        drain(rep)
        key = call_key("leeds", 1)
        assert len([v for v in all_versions(bucket.client, bucket_name) if v["Key"] == key]) == 1
        first = read_record(bucket.get(key), org_private)
        assert first["legal_hold"] is False and "complaint" not in first["call"]["tags"]

        # Nothing changed: a step puts nothing again.
        put_before = rep.stats["objects_put"]
        rep.step(ignore_backoff=True)
        assert rep.stats["objects_put"] == put_before

        # Later (as the web UI would, through the call log): a tag and a legal hold.
        meta = CallMeta(data + "/calls.db")
        meta.add_tags(1, ["complaint"])
        meta.set_legal_hold(1, True, "sam", 1_772_442_000_000_000)
        meta.close()
        drain(rep)
        assert statuses(rep.calls.raw())[1] == ("archived", None)
        versions = [v for v in all_versions(bucket.client, bucket_name) if v["Key"] == key]
        assert len(versions) == 2
        latest = read_record(bucket.get(key), org_private)
        assert latest["legal_hold"] is True and "complaint" in latest["call"]["tags"]
        # The recording itself was not sent again, and call 2's record is untouched.
        assert rep.stats["objects_put"] == put_before + 1
        assert (
            len([v for v in all_versions(bucket.client, bucket_name) if v["Key"] == call_key("leeds", 2)])
            == 1
        )
        # The data key is still wrapped to the organisation in the new version.
        rec = latest["recordings"][0]
        assert len(base64.b64decode(rec["org_wrapped_key"])) == crypto.WRAPPED_KEY_BYTES
        assert json.loads(bucket.get(key))["legal_hold"] is True

        # A hold released later goes up too.
        meta = CallMeta(data + "/calls.db")
        meta.set_legal_hold(1, False, "sam", 1_772_442_100_000_000)
        meta.close()
        drain(rep)
        assert read_record(bucket.get(key), org_private)["legal_hold"] is False
    finally:
        rep.close()


def test_a_name_corrected_on_the_box_reaches_the_archive_as_a_new_version(tmp_path, synth, s3, bucket_name):
    """UK GDPR Art. 16 off the box: a caller's name corrected on the box (web.db) is in the
    record put again, beside what the caller-ID sent, and is the name the viewer shows."""
    from firmware.calls.corrected import corrected_names
    from web.corrections import NameCorrections
    from web.db import WebDb

    org_private, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_public, clear_numbers=True)
    run_box(data, synth, "01632960101", n_calls=2)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_public, clear_numbers=True))
    bucket = bucket_of(s3, bucket_name)
    try:
        drain(rep)
        key = call_key("leeds", 1)
        first = read_record(bucket.get(key), org_private)
        assert first["call"]["corrected_name"] is None
        sent = first["call"]["name"]

        # As the call page's form does: the correction kept in web.db, the call noted.
        web = WebDb(data + "/web.db")
        NameCorrections(web, lambda: 1_772_442_000_000_000).correct(1, "Wilhelmina Pottage", "sam")
        web.close()
        assert corrected_names(data, [1, 2], None) == {1: "Wilhelmina Pottage"}
        meta = CallMeta(data + "/calls.db")
        meta.note_changed(1)
        meta.close()
        drain(rep)
        assert statuses(rep.calls.raw())[1] == ("archived", None)
        assert len([v for v in all_versions(bucket.client, bucket_name) if v["Key"] == key]) == 2
        latest = read_record(bucket.get(key), org_private)
        assert latest["call"]["corrected_name"] == "Wilhelmina Pottage"
        assert latest["call"]["name"] == sent  # what the caller-ID sent stays beside it
        assert latest["name"] == "Wilhelmina Pottage"
        assert json.loads(bucket.get(key))["name"] == "Wilhelmina Pottage"  # clear_numbers
        assert read_record(bucket.get(call_key("leeds", 2)), org_private)["call"]["corrected_name"] is None
    finally:
        rep.close()


def test_an_erased_call_goes_up_with_no_corrected_name_whatever_web_db_holds(
    tmp_path, synth, s3, bucket_name
):
    """The caller's details erased on request: the call log erases the number and name (the
    recorder), then the web UI the names it was corrected to (web.db). The uploader puts the
    erased record as soon as the call log says so: read between the two, web.db still held
    the corrected name, and the erased record carried it, sealed and, with clear_numbers, in
    clear in the record's ``name``, where the erasure is processed once."""
    import os

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from web.corrections import NameCorrections
    from web.db import WebDb

    org_private, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_public, clear_numbers=True)
    run_box(data, synth, "01632960101", n_calls=1)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_public, clear_numbers=True))
    bucket = bucket_of(s3, bucket_name)
    try:
        web = WebDb(data + "/web.db")
        NameCorrections(web, lambda: 1_772_442_000_000_000).correct(1, "Wilhelmina Pottage", "sam")
        web.close()
        drain(rep)
        key = call_key("leeds", 1)
        assert read_record(bucket.get(key), org_private)["name"] == "Wilhelmina Pottage"
        log = CallLog(os.path.join(data, "calls.db"), SimClock())
        try:
            log.erase_details(1)  # the recorder's step; web.db's comes after
        finally:
            log.close()
        rep.enqueue_erased()
        drain(rep)
        body = bucket.get(key)
        assert b"Wilhelmina" not in body
        erased = read_record(body, org_private)
        assert erased["call"]["corrected_name"] is None and erased["name"] is None
    finally:
        rep.close()


def test_a_call_whose_details_retention_removed_goes_up_with_no_corrected_name(
    tmp_path, synth, s3, bucket_name
):
    """As an erasure: the retention sweep removes the number and name from the call log
    (batch after batch), then the names the call was corrected to from web.db (after every
    batch, or at the next sweep when web.db refused). The uploader puts the record as soon as
    the call log says so: read between the two, it carried the corrected name, sealed and,
    with clear_numbers, in clear as the record's name, past the details' period (the record
    is put once)."""
    import os
    import sqlite3

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from web.corrections import NameCorrections
    from web.db import WebDb

    org_private, org_public = crypto.new_key_pair()
    data = str(tmp_path / "box")
    prepare_box(data, s3, bucket_name, "leeds", org_public, clear_numbers=True)
    run_box(data, synth, "01632960101", n_calls=1)
    rep = Replicator(data, archive_settings(s3, bucket_name, "leeds", org_public, clear_numbers=True))
    bucket = bucket_of(s3, bucket_name)
    try:
        web = WebDb(data + "/web.db")
        NameCorrections(web, lambda: 1_772_442_000_000_000).correct(1, "Wilhelmina Pottage", "sam")
        web.close()
        drain(rep)
        key = call_key("leeds", 1)
        assert read_record(bucket.get(key), org_private)["name"] == "Wilhelmina Pottage"
        db = sqlite3.connect(os.path.join(data, "calls.db"))
        db.execute("DELETE FROM recordings WHERE call_id = 1")  # its recording's period ended first
        db.commit()
        db.close()
        log = CallLog(os.path.join(data, "calls.db"), SimClock())
        try:
            assert log.expire_details([1], 2**62) == [1]  # the sweep's call-log step; web.db's after
        finally:
            log.close()
        rep.enqueue_erased()
        drain(rep)
        body = bucket.get(key)
        assert b"Wilhelmina" not in body
        removed = read_record(body, org_private)
        assert removed["call"]["absence"] == "expired"
        assert removed["call"]["corrected_name"] is None and removed["name"] is None
    finally:
        rep.close()
