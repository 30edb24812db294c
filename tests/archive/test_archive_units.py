"""The archive's parts that need no S3 server: settings, sealing, the throttle, the escrow."""

import base64
import json
import os

import pytest

from firmware.archive import sealing
from firmware.archive.queue import read_secret, statuses, write_secret
from firmware.archive.replicator import Replicator
from firmware.archive.settings import ArchiveSettings
from firmware.archive.store import ArchiveError, Throttle
from firmware.config import BoxConfig, load_config, save_config
from firmware.errors import ConfigError, TamperError
from firmware.storage import crypto

from support.ports import closed_port

PUB = base64.b64encode(bytes(range(1, 33))).decode()
GOOD = {
    "enabled": True,
    "endpoint": "https://s3.example.com",
    "bucket": "acme-calls",
    "box_id": "leeds-1",
    "access_key_id": "AKIA1",
    "org_public_key": PUB,
}


def test_the_archive_section_round_trips_through_config_json(tmp_path):
    config = BoxConfig.from_dict({"archive": GOOD})
    assert config.archive.enabled and config.archive.org_key == bytes(range(1, 33))
    save_config(str(tmp_path), config)
    assert load_config(str(tmp_path)) == config
    assert "secret" not in json.dumps(config.to_dict()).lower()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"bucket": "Not_A_Bucket"}, "archive.bucket"),
        ({"box_id": "Leeds 1"}, "archive.box_id"),
        ({"endpoint": "ftp://x"}, "archive.endpoint"),
        ({"endpoint": "http://s3.example.com"}, "archive.endpoint"),
        ({"org_public_key": "c2hvcnQ="}, "archive.org_public_key"),
        ({"bandwidth_kbps": -1}, "archive.bandwidth_kbps"),
        ({"part_size_mb": 4}, "archive.part_size_mb"),
        ({"verify_tls": "yes"}, "archive.verify_tls"),
        ({"bucket": None}, "archive.bucket"),
        ({"secret_access_key": "x"}, "archive.secret_access_key"),
    ],
)
def test_a_bad_archive_setting_is_refused_naming_the_field(change, field):
    with pytest.raises(ConfigError) as err:
        BoxConfig.from_dict({"archive": dict(GOOD, **change)})
    assert err.value.field == field


def test_disabled_archive_needs_nothing_else():
    assert ArchiveSettings().enabled is False


def test_sealed_blobs_open_only_with_the_key_and_their_context():
    private, public = crypto.new_key_pair()
    blob = sealing.seal(b"01632960123", public, b"box/1")
    assert b"01632960123" not in blob
    assert sealing.unseal(blob, private, b"box/1") == b"01632960123"
    with pytest.raises(TamperError):
        sealing.unseal(blob, private, b"box/2")
    with pytest.raises(TamperError):
        sealing.unseal(blob, crypto.new_key_pair()[0], b"box/1")
    with pytest.raises(TamperError):
        sealing.unseal(blob[:-1] + bytes([blob[-1] ^ 1]), private, b"box/1")


def test_an_archived_recording_restores_the_box_file_byte_for_byte(tmp_path):
    from firmware.recording.segment import SegmentWriter

    private, public = crypto.new_key_pair()
    path = str(tmp_path / "r.lkrec")
    key = crypto.new_data_key()
    w = SegmentWriter(
        path, "rid", key, {"number": "01632960123", "rate": 8000, "chunk_ms": 1000}, fsync=False
    )
    w.write_chunk(b"audio" * 100)
    w.close()
    original = open(path, "rb").read()
    prefix, header_len = sealing.archive_prefix(path, "rid", public)
    archived = prefix + original[header_len:]
    assert b"01632960123" not in archived
    assert sealing.restore_recording(archived, "rid", private) == original
    with pytest.raises(TamperError):
        sealing.restore_recording(archived, "other", private)


def test_the_throttle_keeps_to_its_rate_without_sleeping_for_real():
    now, slept = [0.0], []

    def sleep(s):
        slept.append(s)
        now[0] += s

    t = Throttle(800, sleep=sleep, monotonic=lambda: now[0])  # 100 000 bytes/s
    for _ in range(5):
        t.take(50_000)
    assert now[0] == pytest.approx(2.0)  # 250 kB took 2 s (first free)
    Throttle(0, sleep=sleep).take(10**9)
    assert len(slept) == 4


def test_the_secret_must_be_private(tmp_path):
    write_secret(str(tmp_path), "s3cr3t")
    assert read_secret(str(tmp_path)) == "s3cr3t"
    assert os.stat(tmp_path / "archive.secret").st_mode & 0o777 == 0o600
    os.chmod(tmp_path / "archive.secret", 0o644)
    with pytest.raises(ArchiveError, match="chmod 600"):
        read_secret(str(tmp_path))
    os.remove(tmp_path / "archive.secret")
    with pytest.raises(ArchiveError, match="cannot read"):
        read_secret(str(tmp_path))


def test_the_secret_is_sealed_on_the_card_not_in_clear(tmp_path):
    from firmware.secretbox import SecretBox

    here, there = SecretBox(str(tmp_path), b"board-1"), SecretBox(str(tmp_path), b"board-2")
    write_secret(str(tmp_path), "s3cr3t-access-key", here)
    stored = (tmp_path / "archive.secret").read_bytes()
    assert b"s3cr3t" not in stored and stored.startswith(b"lksec1:")
    assert read_secret(str(tmp_path), here) == "s3cr3t-access-key"
    # The card read with another board's identity: the secret does not open, and says what to do.
    with pytest.raises(ArchiveError, match="set-secret") as refused:
        read_secret(str(tmp_path), there)
    assert refused.value.permanent
    assert (tmp_path / "archive.secret").read_bytes() == stored  # nothing changed


def test_a_secret_stored_in_clear_is_sealed_on_first_read(tmp_path):
    from firmware.secretbox import SecretBox

    box = SecretBox(str(tmp_path), b"board-1")
    (tmp_path / "archive.secret").write_text("old-clear-secret\n")
    os.chmod(tmp_path / "archive.secret", 0o600)
    assert read_secret(str(tmp_path), box) == "old-clear-secret"
    stored = (tmp_path / "archive.secret").read_bytes()
    assert b"old-clear-secret" not in stored and stored.startswith(b"lksec1:")
    assert os.stat(tmp_path / "archive.secret").st_mode & 0o777 == 0o600
    assert read_secret(str(tmp_path), box) == "old-clear-secret"


def test_escrowed_keys_are_wrapped_to_the_organisation_and_survive_a_restart(tmp_path):
    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock

    private, public = crypto.new_key_pair()
    CallLog(str(tmp_path / "calls.db"), SimClock()).close()
    from firmware.recording.store import RecordingStore

    RecordingStore(str(tmp_path)).close()
    settings = ArchiveSettings.from_dict(dict(GOOD, org_public_key=base64.b64encode(public).decode()))
    rep = Replicator(str(tmp_path), settings)
    data_key = crypto.new_data_key()
    rep.escrow("rid", data_key)
    rep.close()
    rep = Replicator(str(tmp_path), settings)
    try:
        (wrapped,) = [w for (w,) in rep.queue.query("SELECT wrapped FROM org_keys")]
        assert crypto.unwrap_data_key(wrapped, private, b"rid") == data_key
        assert rep.enqueue_ended() == 0 and rep.pending() == 0
    finally:
        rep.close()


def test_a_call_is_queued_once_when_it_ends_even_after_later_calls(tmp_path):
    import sqlite3

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.recording.store import RecordingStore

    CallLog(str(tmp_path / "calls.db"), SimClock()).close()
    RecordingStore(str(tmp_path)).close()
    db = sqlite3.connect(str(tmp_path / "calls.db"), isolation_level=None)
    for ended in (10, None, 30):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced) "
            "VALUES (1, 'in', 1, ?, 1)",
            (ended,),
        )
    rep = Replicator(str(tmp_path), ArchiveSettings.from_dict(GOOD))
    try:
        assert rep.enqueue_ended() == 2 and rep.enqueue_ended() == 0
        db.execute("UPDATE calls SET ended_at = 20 WHERE id = 2")
        assert rep.enqueue_ended() == 1 and rep.enqueue_ended() == 0
        assert sorted(r[0] for r in rep.queue.query("SELECT call_id FROM jobs")) == [1, 2, 3]
        assert {s for s, _ in statuses(rep.calls.raw()).values()} == {"queued"}
    finally:
        rep.close()
        db.close()


def test_archive_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from firmware.cli import main

    assert main(["archive", "search", "--index", str(tmp_path / "none.db")]) == 2
    assert "no index" in capsys.readouterr().err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    nobody = closed_port()  # nothing listens there
    assert (
        main(
            [
                "archive",
                "index",
                "--endpoint",
                "http://127.0.0.1:%d" % nobody,
                "--bucket",
                "b-1",
                "--index",
                str(tmp_path / "i.db"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot index the bucket b-1" in err
    assert os.listdir(tmp_path) == []  # no index, no half-written one
    assert (
        main(
            [
                "archive",
                "set-secret",
                "--data-dir",
                str(tmp_path / "missing"),
                "--secret-file",
                str(tmp_path / "nofile"),
            ]
        )
        == 2
    )


@pytest.mark.parametrize(
    "endpoint, message",
    [
        ("127.0.0.1:9000", "must be an http(s) URL"),
        ("http://[::1", "must be an http(s) URL"),
        ("http://s3.example.com", "must be https://"),
    ],
)
@pytest.mark.parametrize("command", ["index", "audit-head", "serve"])
def test_an_endpoint_the_box_would_refuse_is_refused_by_its_option(
    tmp_path, capsys, command, endpoint, message
):
    """The box's archive settings check the store's address; these options did not, and
    the S3 client's ValueError came out as a traceback."""
    from firmware.cli import main

    args = ["archive", command, "--endpoint", endpoint, "--bucket", "b-1"]
    args += {"index": ["--index", str(tmp_path / "i.db")], "audit-head": ["--box", "leeds"]}.get(command, [])
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --endpoint: " + message in err, err
    assert os.listdir(tmp_path) == []


class _Refusing:
    """A bucket whose every request fails with ``error()``; counts the requests."""

    name = "acme-calls"

    def __init__(self, error):
        self.error = error
        self.requests = 0

    def head(self, key):
        self.requests += 1
        raise self.error()

    put = head


def _ended_calls(tmp_path, n):
    import sqlite3

    from firmware.calls.calllog import CallLog
    from firmware.clock import SimClock
    from firmware.recording.store import RecordingStore

    CallLog(str(tmp_path / "calls.db"), SimClock()).close()
    RecordingStore(str(tmp_path)).close()
    db = sqlite3.connect(str(tmp_path / "calls.db"), isolation_level=None)
    for _ in range(n):
        db.execute(
            "INSERT INTO calls (line, direction, started_at, ended_at, clock_synced)"
            " VALUES (1, 'in', 1, 2, 1)"
        )
    db.close()


def test_a_store_that_cannot_be_reached_is_backed_off_as_a_whole(tmp_path):
    """Each job had its own backoff: with a backlog the next job was due at every poll,
    so the store was contacted (and a warning logged) about once a second for the whole
    outage. The store now backs off as a whole: 2 s, doubling to 10 minutes."""
    from botocore.exceptions import EndpointConnectionError

    _ended_calls(tmp_path, 20)
    now = [0.0]
    bucket = _Refusing(lambda: EndpointConnectionError(endpoint_url="https://s3.example.com"))
    rep = Replicator(str(tmp_path), ArchiveSettings.from_dict(GOOD), bucket=bucket, monotonic=lambda: now[0])
    try:
        for second in range(600):
            now[0] = float(second)
            rep.step()
        # At 0, 2, 6, 14, 30, 62, 126, 254, 510 s: not 300 times.
        assert bucket.requests == 9, bucket.requests
        assert {s for s, _ in statuses(rep.calls.raw()).values()} == {"queued"}
    finally:
        rep.close()


def test_a_store_that_refuses_the_box_fails_its_calls_in_words_and_raises_one_alarm(tmp_path):
    """A HEAD request's refusal has no body: its code is '403', which was not taken for a
    refusal, so wrong credentials (or a clock hours off) left every call 'waiting' for
    ever, retried, with no alarm."""
    from botocore.exceptions import ClientError

    from firmware.alarminbox import INBOX

    _ended_calls(tmp_path, 3)
    bucket = _Refusing(lambda: ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject"))
    rep = Replicator(str(tmp_path), ArchiveSettings.from_dict(GOOD), bucket=bucket)
    try:
        rep.step()
        rep.step()
        found = statuses(rep.calls.raw())
        assert {s for s, _ in found.values()} == {"failed"} and len(found) == 3
        words = "the store refuses this box: its access key or secret is wrong, or the box's clock is off"
        assert all(words in reason for _, reason in found.values())
        (note,) = os.listdir(tmp_path / INBOX)
        doc = json.loads((tmp_path / INBOX / note).read_text())
        assert doc["kind"] == "archive_failed" and "the archive did not take call 1" in doc["message"]
    finally:
        rep.close()


@pytest.mark.parametrize(
    "number,why",
    [
        ("١٦٣٢", "digits 0-9"),  # Arabic-Indic digits: str.isdigit() takes them
        ("01632 ９60101", "digits 0-9"),  # a full-width 9
        ("²³", "digits 0-9"),
        ("sixty", "digits 0-9"),
        ("", "digits 0-9"),
        ("1" * 33, "at most 32 digits"),
    ],
)
def test_archive_search_takes_a_number_in_digits_0_9_only(tmp_path, capsys, number, why):
    """``archive search --number`` searched the index for any text, found nothing and said
    so with status 0, as if no call had that number. Other text is refused by the option,
    named, with status 2; the index is read by no search. A number as typed is taken."""
    import sqlite3

    from firmware.archive.viewer import INDEX_INDEXES, INDEX_SCHEMA
    from firmware.cli import main

    index = tmp_path / "index.db"  # an empty index: its tables, no calls
    db = sqlite3.connect(index)
    db.executescript(INDEX_SCHEMA + INDEX_INDEXES)
    db.close()
    before = index.read_bytes()
    with pytest.raises(SystemExit) as exited:
        main(["archive", "search", "--index", str(index), "--number", number])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --number: must be" in err and why in err, err
    assert index.read_bytes() == before
    for typed in ("+44 (0)1632 960101", "960-101", "1" * 32):
        assert main(["archive", "search", "--index", str(index), "--number", typed]) == 0


@pytest.mark.parametrize("saved,zone", [("Asia/Tokyo", "Asia/Tokyo"), (None, "Europe/London")])
def test_a_call_record_carries_the_zone_the_box_s_pages_date_in(tmp_path, saved, zone):
    """The central viewer shows a call's times in its site's zone: the box's saved
    ``time_zone``, or the zone its pages use without one (docs/archive-viewer.md)."""
    import sqlite3

    _ended_calls(tmp_path, 1)
    if saved is not None:
        db = sqlite3.connect(str(tmp_path / "web.db"))
        db.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO site VALUES ('settings', ?)", (json.dumps({"time_zone": saved}),))
        db.commit()
        db.close()
    rep = Replicator(str(tmp_path), ArchiveSettings.from_dict(GOOD))
    try:
        assert json.loads(rep.call_record(1, []))["time_zone"] == zone
    finally:
        rep.close()


def test_a_central_report_does_not_count_deletions_it_cannot_know(tmp_path):
    """The boxes' deletion logs are not archived (docs/archive-viewer.md): the viewer's
    report says its deletions are not known (null), not 0, for each site and the sum."""
    report = _one_call_report(tmp_path, sealed_opened=True)
    assert report["total"]["calls"] == report["sites"]["leeds"]["calls"] == 1
    assert report["total"]["deletions"] is report["sites"]["leeds"]["deletions"] is None


@pytest.mark.parametrize("opened", [True, False])
def test_a_central_report_says_whether_its_coverage_and_consent_figures_are_known(tmp_path, opened):
    """Built without the organisation key, the index has no call's sealed part: the JSON's
    consent and coverage figures read 0 with nothing to say they were not known (only the
    page said so)."""
    assert _one_call_report(tmp_path, sealed_opened=opened)["coverage_and_consent_known"] is opened


#: Of a call's totals, those read from its sealed part (policy decision and reason, consent,
#: pause spans): not known in an index built without the organisation key.
_SEALED_COVERAGE = (
    "private",
    "excluded",
    "personal",
    "not_asked",
    "before_setup",
    "unheard",
    "paused_unheard",
    "failed",
    "excluded_by_reason",
    "paused_calls",
    "pauses",
    "paused_ms",
    "paused_s",
)


@pytest.mark.parametrize("recorded", [True, False])
def test_a_central_report_without_the_sealed_part_says_its_coverage_and_consent_are_not_known(
    tmp_path, recorded
):
    """Built without the organisation key, the index has no call's policy decision, consent
    or pause spans: the JSON's consent figures read 0, and a call answered and not recorded
    counted as failed (no decision: none to say it was skipped). They are null, not known;
    what the record holds in clear (connected, recorded, partial) is still counted."""
    rec = {"recordings": [{"state": "complete"}]} if recorded else {}
    report = _one_call_report(tmp_path, sealed_opened=False, answered_us=1772442305000000, **rec)
    for totals in (report["sites"]["leeds"], report["total"]):
        cov = totals["coverage"]
        assert (cov["connected"], cov["recorded"], cov["partial"]) == (1, int(recorded), 0)
        assert {k: cov[k] for k in _SEALED_COVERAGE} == dict.fromkeys(_SEALED_COVERAGE)
        assert totals["consent"] == {"given": None, "failed": None, "unheard": None, "off": None}
        assert (totals["calls"], totals["answered_in"]) == (1, 1)  # in clear: counted


def test_a_central_report_with_the_sealed_part_counts_its_coverage_and_consent(tmp_path):
    """With the organisation key the index has each call's sealed part: every figure counted."""
    call = {
        "policy_decision": "record",
        "policy_reason": "line 1 records",
        "consent": {"given": True},
        "pause_spans": [{"from": "2026-03-02T09:05:06.000Z", "to": "2026-03-02T09:05:08.000Z"}],
    }
    report = _one_call_report(
        tmp_path, sealed_opened=True, answered_us=1772442305000000, ended_us=1772442310000000,
        recordings=[{"state": "complete"}], call=call,
    )  # fmt: skip
    for totals in (report["sites"]["leeds"], report["total"]):
        cov = totals["coverage"]
        assert (cov["connected"], cov["recorded"], cov["failed"], cov["excluded_by_reason"]) == (1, 1, 0, {})
        assert (cov["paused_calls"], cov["pauses"], cov["paused_ms"], cov["paused_s"]) == (1, 1, 2000, 2.0)
        assert totals["consent"] == {"given": 1, "failed": 0, "unheard": 0, "off": 0}


def _one_call_report(tmp_path, sealed_opened, **fields):
    """The central report of 2 Mar 2026 over an index of one call of leeds at 09:05;
    ``fields``: more of its call record's (answered_us, recordings, call: its sealed part)."""
    from firmware.archive import viewer
    from firmware.reports.period import parse_period

    path = str(tmp_path / "index.db")
    doc = {"box": "leeds", "call_id": 1, "line": 1, "direction": "in", "started_us": 1772442300000000}
    doc.update(fields)
    viewer.write_index(path, [(doc, "leeds/calls/0000000001.json")], sealed_opened=sealed_opened)
    db = viewer.open_index(path)
    try:
        return viewer.central_report(db, parse_period("2026-03-02", "2026-03-02"))
    finally:
        db.close()


def test_serve_on_a_port_in_use_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """``archive serve`` on a port another program holds said "archive viewer on ...",
    printed cheroot's traceback from its thread and went on running, serving nothing."""
    import socket

    from firmware.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        args = ["archive", "serve", "--viewer-dir", str(tmp_path / "viewer"), "--org-dir", _org_dir(tmp_path)]
        args += ["--endpoint", "http://127.0.0.1:9", "--bucket", "b-1", "--port", str(port)]
        assert main(args) == 2  # it returned: nothing is left running
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("linekeeper: cannot serve the viewer on 127.0.0.1 port %d" % port), err
    assert "in use" in err and "archive viewer on" not in err


@pytest.mark.parametrize("given", ["cert only", "key only", "no such cert", "no such key", "not PEM"])
def test_serve_s_tls_files_that_will_not_do_are_refused_naming_them(tmp_path, capsys, monkeypatch, given):
    """``--cert`` without ``--key`` served plain HTTP without a word; a file not there was
    "storage error: No such file or directory", naming neither option nor file."""
    from firmware.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    missing = str(tmp_path / "missing.pem")
    tls = {
        "cert only": (["--cert", str(junk)], "--cert needs --key"),
        "key only": (["--key", str(junk)], "--key needs --cert"),
        "no such cert": (["--cert", missing, "--key", str(junk)], "--cert %s: No such file" % missing),
        "no such key": (["--cert", str(junk), "--key", missing], "--key %s: No such file" % missing),
        "not PEM": (
            ["--cert", str(junk), "--key", str(junk)],
            "--cert %s and --key %s are not a certificate and its private key (PEM)" % (junk, junk),
        ),
    }
    options, said = tls[given]
    args = ["archive", "serve", "--viewer-dir", str(tmp_path / "viewer"), "--org-dir", str(tmp_path)]
    args += ["--endpoint", "http://127.0.0.1:9", "--bucket", "b-1", "--port", str(closed_port()), *options]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err
    assert not (tmp_path / "viewer").exists()


def _org_dir(tmp_path):
    """A folder holding an organisation key (cheap to unlock)."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    org = tmp_path / "org"
    KeyStore(str(org), kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise(
        "admin", "org pass 12 word"
    )
    return str(org)


def test_serve_with_no_organisation_key_in_its_org_dir_is_refused(tmp_path, capsys, monkeypatch):
    """A mistyped ``--org-dir``: the viewer started all the same, made its folder and could
    open no call."""
    from firmware.cli import main

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    org = tmp_path / "no-such-org"
    args = ["archive", "serve", "--viewer-dir", str(tmp_path / "viewer"), "--org-dir", str(org)]
    args += ["--endpoint", "http://127.0.0.1:9", "--bucket", "b-1", "--port", str(closed_port())]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "%s holds no organisation key" % org in err, err
    assert not (tmp_path / "viewer").exists() and not org.exists()


def test_a_call_record_carries_its_recordings_audit_entries(tmp_path):
    """A recording's own entries (created, sealed, recovered, deleted) name it
    "recording:ID": the archived record carries those of its recordings, and no other
    recording's (docs/archive.md, "What goes up": the call's and its recordings' entries)."""
    from firmware.archive.viewer import read_record
    from firmware.storage.audit import AuditLog

    _ended_calls(tmp_path, 1)
    private, public = crypto.new_key_pair()
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    entries = [
        ("system", "recording_created", "recording:r1", {"call_id": 1}),
        ("system", "recording_sealed", "recording:r1", {"sha256": "00" * 32}),
        ("system", "recording_created", "recording:r2", {"call_id": 2}),
    ]
    try:
        for n, (actor, action, target, details) in enumerate(entries):
            audit.append(actor, action, target, details, 1_000_000 + n)
    finally:
        audit.close()
    settings = ArchiveSettings.from_dict(dict(GOOD, org_public_key=base64.b64encode(public).decode()))
    rep = Replicator(str(tmp_path), settings)
    recording = {
        "id": "r1",
        "sha256": "00" * 32,
        "bytes": 1,
        "state": "sealed",
        "duration_s": 1.0,
        "profile": "voice",
        "signature": None,
    }
    try:
        doc = read_record(rep.call_record(1, [recording]), private)
    finally:
        rep.close()
    carried = [(e["action"], e["target"]) for e in doc["audit"]]
    assert carried == [("recording_created", "recording:r1"), ("recording_sealed", "recording:r1")]


def test_a_call_record_carries_the_call_s_audit_entries_whichever_form_names_the_call(tmp_path):
    """The web UI names a call in the trail by its bare id ("1": call_viewed, playback,
    export, legal_hold, call_note, correct_details), the recorder and the command line as
    "call:1": the archived record carries the call's entries of both forms, and no other
    call's (docs/archive.md, "What goes up")."""
    from firmware.archive.viewer import read_record
    from firmware.storage.audit import AuditLog

    _ended_calls(tmp_path, 1)
    private, public = crypto.new_key_pair()
    audit = AuditLog(str(tmp_path / "audit.db"), str(tmp_path / "audit.head"))
    wanted = [
        ("sam", "call_viewed", "1", {"line": 1}),
        ("sam", "playback", "1", {"line": 1, "reason": "complaint"}),
        ("sam", "export", "1", {"line": 1, "reason": "complaint"}),
        ("sam", "legal_hold", "1", {"line": 1, "on": True, "reason": "claim"}),
        ("sam", "call_note", "1", {"line": 1, "added": "complaint"}),
        ("sam", "correct_details", "1", {"line": 1}),
        ("alice", "export", "call:1", {"via": "cli"}),
        ("system", "archive_copied", "call:1", {"box_id": "leeds-1"}),
    ]
    others = [("sam", "call_viewed", "11", {}), ("sam", "export", "call:11", {}), ("sam", "login", "sam", {})]
    try:
        for n, (actor, action, target, details) in enumerate(wanted + others):
            audit.append(actor, action, target, details, 1_000_000 + n)
    finally:
        audit.close()
    settings = ArchiveSettings.from_dict(dict(GOOD, org_public_key=base64.b64encode(public).decode()))
    rep = Replicator(str(tmp_path), settings)
    try:
        doc = read_record(rep.call_record(1, []), private)
    finally:
        rep.close()
    carried = [(e["actor"], e["action"], e["target"]) for e in doc["audit"]]
    assert carried == [(actor, action, target) for actor, action, target, _ in wanted]
