"""A subject access bundle is streamed: memory holds one recording, never the bundle."""

import hashlib
import io
import subprocess
import tracemalloc
import zipfile

import numpy as np
import pytest

from firmware.sar import write_bundle
from firmware.sarbundle import BundleError, Counted, FileSpool, GpgStream

RATE = 8000
SECONDS = 600  # each fake recording: 10 min, 9.6 MB as WAV


class FakeStore:
    """Recordings of ``SECONDS`` of noise each, made when asked (as the real store decodes)."""

    def __init__(self, calls):
        self.calls = calls
        self.asked = []

    def for_call(self, call_id):
        return {"id": "r%d" % call_id, "state": "complete"}

    def export_stream(self, recording_id, key):
        self.asked.append(recording_id)
        samples = ramp()
        return [samples], len(samples), RATE


def ramp():
    """Noise (the same each time): audio that deflates little, as speech."""
    return np.random.default_rng(7).integers(-32768, 32767, SECONDS * RATE, dtype=np.int16)


def calls(n):
    return [
        {
            "id": i,
            "line": 1,
            "direction": "in",
            "number": "01632960123",
            "started_at": "2026-03-02T09:00:00Z",
            "recording": "complete",
        }
        for i in range(1, n + 1)
    ]


def peak_while(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class Sink:
    """A non-seekable destination that keeps only the SHA-256 of what it is given."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data):
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)


def test_the_bundle_of_many_recordings_holds_one_in_memory_at_a_time():
    """The bundle was made whole in memory (WAVs held two or three times over): a caller's
    hours of recordings killed the web UI. Six recordings (58 MB of WAV) now peak at
    about one recording's samples and one slice of its WAV."""
    store = FakeStore(calls(6))
    sink, seen = Sink(), []
    peak = peak_while(
        lambda: write_bundle(
            Counted(sink), store, store.calls, None, {}, progress=lambda d, t: seen.append((d, t))
        )
    )
    one_recording = SECONDS * RATE * 2
    assert sink.bytes > 5 * one_recording
    assert peak < 2.5 * one_recording, peak
    assert seen == [(i, 6) for i in range(7)]


def test_the_streamed_bundle_opens_and_its_checksums_hold(tmp_path):
    store = FakeStore(calls(2))
    out = io.BytesIO()
    assert write_bundle(out, store, store.calls, None, {}, redactions=[(2, 1.0, 2.0)]) == 2
    z = zipfile.ZipFile(out)
    assert z.testzip() is None
    for line in z.read("SHA256SUMS").decode().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256(z.read(name)).hexdigest() == digest
    wav = z.read("recordings/call-2.wav")
    samples = np.frombuffer(wav[44:], "<i2")
    assert len(samples) == SECONDS * RATE and not samples[RATE : 2 * RATE].any()
    assert samples[2 * RATE] != 0 and samples[RATE - 1] != 0
    assert z.read("recordings/call-1.wav")[44:] == ramp().astype("<i2").tobytes()


def test_encrypted_as_a_stream_it_opens_with_the_password(tmp_path):
    store = FakeStore(calls(3))
    out = tmp_path / "b.zip.gpg"
    spool = FileSpool(out)
    counted = Counted(spool)
    gpg = GpgStream("a long bundle password 7", counted)

    def run():
        write_bundle(gpg, store, store.calls, None, {})
        gpg.finish()

    peak = peak_while(run)
    spool.commit()
    assert peak < 2.5 * SECONDS * RATE * 2, peak
    assert hashlib.sha256(out.read_bytes()).hexdigest() == counted.sha256.hexdigest()
    opened = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--batch", "--quiet", "--pinentry-mode", "loopback"]
        + ["--passphrase", "a long bundle password 7", "--decrypt", str(out)],
        capture_output=True,
    )
    assert opened.returncode == 0
    assert len(zipfile.ZipFile(io.BytesIO(opened.stdout)).namelist()) == 3 + 4


def test_a_bundle_that_fails_half_way_leaves_no_file(tmp_path):
    store = FakeStore(calls(3))

    def broken(recording_id, key):
        if recording_id == "r2":
            raise BundleError("recording r2: altered")
        return FakeStore.export_stream(store, recording_id, key)

    store.export_stream = broken
    spool = FileSpool(tmp_path / "b.zip")
    with pytest.raises(BundleError):
        try:
            write_bundle(Counted(spool), store, store.calls, None, {})
        except BaseException:
            spool.discard()
            raise
    assert list(tmp_path.iterdir()) == []


def test_three_hours_of_recordings_are_released_in_one_bundle():
    """An hour was the most one bundle carried, when it was made in memory."""
    from firmware.sar import check_release

    found = [dict(c, recording_duration_s=3600) for c in calls(3)]
    chosen, _, _ = check_release(
        actor="sam",
        requester="Mr Jones",
        recipient="Mr Jones",
        reason="subject access request",
        calls=found,
        search={"number": "01632960123"},
        bundle_password=None,
        redactions=(),
        only=None,
    )
    assert chosen == found


LONG_S = 1800  # a long call, as Opus (the default profile): 2 MB on the card, 28.8 MB decoded


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """A real store holding one sealed ``LONG_S`` recording of call 1, and the key to it."""
    from firmware.recording.codec import Encoder
    from firmware.recording.segment import SegmentWriter
    from firmware.recording.store import RecordingStore, new_wrapped_key
    from firmware.storage import crypto
    from firmware.storage.keystore import RecordingKey

    data_dir = tmp_path_factory.mktemp("long")
    private, public = crypto.new_key_pair()
    store = RecordingStore(str(data_dir))
    rid = "ab" * 16
    data_key, wrapped = new_wrapped_key(public, rid)
    store.begin(1, wrapped, "voice", 1000, 1_772_442_000_000_000, recording_id=rid)
    header = {"call_id": 1, "line": 1, "created_us": 1_772_442_000_000_000}
    header.update(profile="voice", rate=RATE, chunk_ms=1000)
    writer = SegmentWriter(store.path_of(rid), rid, data_key, header, fsync=False)
    encoder, rng = Encoder("voice", RATE), np.random.default_rng(3)
    for second in range(LONG_S):  # a tone that wanders, with noise: not silence, which DTX drops
        tone = np.sin(np.arange(RATE) * 0.05 * (1 + second % 7)) * 8000
        samples = (tone + rng.normal(0, 2000, RATE)).astype(np.int16)
        writer.write_chunk(encoder.encode(samples) + encoder.flush())  # a chunk a second, as recorded
    writer.close(encoder.finish())
    store.finish(rid, "complete", float(LONG_S))
    yield store, RecordingKey(private, public), rid
    store.close()


def test_a_long_recording_goes_into_the_bundle_a_chunk_at_a_time(long_recording):
    """A recording was decoded whole into memory (its samples two or three times over) on
    its way into the bundle: a 3 h call cost 179 MB of the web UI's 384 MiB. Its chunks are
    now opened and decoded one at a time: the peak is a small part of the decoded audio."""
    store, key, _ = long_recording
    decoded = LONG_S * RATE * 2
    sink = Sink()
    peak = peak_while(lambda: write_bundle(Counted(sink), store, calls(1), key, {}))
    assert sink.bytes > decoded // 2  # the audio is in it (deflate takes a little)
    assert peak < decoded // 4, peak


def test_the_streamed_audio_is_the_calls_pages_download_byte_for_byte(long_recording):
    """What the calls page's download (the recording decoded whole) gives, redactions apart."""
    store, key, rid = long_recording
    whole = store.export_bytes(rid, key, "wav")
    out = io.BytesIO()
    write_bundle(out, store, calls(1), key, {})
    assert zipfile.ZipFile(out).read("recordings/call-1.wav") == whole
    samples, rate = store.export_samples(rid, key)
    assert len(whole) == 44 + 2 * len(samples) and rate == RATE

    out = io.BytesIO()
    write_bundle(out, store, calls(1), key, {}, redactions=[(1, 10.5, 12.25), (1, LONG_S - 1, LONG_S + 5)])
    redacted = np.frombuffer(zipfile.ZipFile(out).read("recordings/call-1.wav")[44:], "<i2")
    silent = np.zeros(len(samples), bool)
    silent[int(10.5 * RATE) : int(12.25 * RATE)] = silent[(LONG_S - 1) * RATE :] = True
    assert not redacted[silent].any()
    assert (redacted[~silent] == samples[~silent]).all()


def test_a_recording_altered_after_its_check_fails_the_bundle(long_recording, monkeypatch):
    """Checked whole, then read again as it goes in: a chunk that fails then stops the bundle
    (it is discarded, nothing released), as one failing its check does."""
    from firmware.errors import TamperError
    from firmware.recording import segment

    store, key, _ = long_recording
    chunks = segment.SegmentReader.chunks
    reads = []

    def second_read_cut_short(reader):
        reads.append(reader.path)
        for i, chunk in enumerate(chunks(reader)):
            if len(reads) == 2 and i == 300:
                raise TamperError("%s: chunk 300 is damaged" % reader.path)
            yield chunk

    monkeypatch.setattr(segment.SegmentReader, "chunks", second_read_cut_short)
    with pytest.raises(TamperError, match="chunk 300 is damaged"):
        write_bundle(io.BytesIO(), store, calls(1), key, {})
    assert len(reads) == 2
