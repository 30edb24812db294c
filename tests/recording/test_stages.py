import errno
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import DiskFullError
from firmware.recording import codec
from firmware.recording.segment import SegmentReader, inspect
from firmware.recording.stages import ChunkPolicy, EncoderStage, Fanout, RecordingPipeline

RATE = 8000
HEADER = {"call_id": 7, "line": 1, "created_us": 1_700_000_000_000_000}


class ListOutput:
    """A stand-in output stage that keeps what it is given."""

    def __init__(self):
        self.chunks, self.closed_with, self.aborted = [], None, False

    def write_chunk(self, data):
        self.chunks.append(data)

    def close(self, data=b""):
        self.closed_with = data

    def abort(self):
        self.aborted = True


def feed_in_pieces(target, samples, piece=160, t0_us=0):
    for start in range(0, len(samples), piece):
        target.feed(samples[start : start + piece], t0_us + start * 1_000_000 // RATE)


@pytest.mark.parametrize(
    "profile, flush_ms, expect",
    [
        ("voice", 1000, 7680),
        ("voice", 250, 1920),
        ("high", 1000, 8000),
        ("pcm", 1000, 8000),
        ("alaw", 20, 160),
    ],
)
def test_chunk_policy_cuts_whole_frames_within_flush_ms(profile, flush_ms, expect):
    frame = codec.Encoder(profile).frame_samples
    assert ChunkPolicy(flush_ms).samples_per_chunk(RATE, frame) == expect


def test_chunk_policy_refuses_less_than_a_frame():
    with pytest.raises(ValueError):
        ChunkPolicy(0)
    with pytest.raises(ValueError, match="shorter than one encoder frame"):
        ChunkPolicy(50).samples_per_chunk(RATE, 480)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 5000), max_size=12), st.sampled_from(["voice", "pcm"]))
def test_encoder_stage_writes_one_decodable_chunk_per_flush_interval(pieces, profile):
    out = ListOutput()
    stage = EncoderStage(profile, RATE, ChunkPolicy(500), output=out)
    x = np.random.default_rng(0).integers(-3000, 3000, sum(pieces)).astype(np.int16)
    pos = 0
    for n in pieces:
        stage.feed(x[pos : pos + n])
        pos += n
    assert len(out.chunks) == len(x) // stage.chunk_samples
    assert stage.stored_samples == len(out.chunks) * stage.chunk_samples
    lookahead = 52 if profile == "voice" else 0
    for i in range(1, len(out.chunks) + 1):
        prefix = codec.decode(b"".join(out.chunks[:i]), profile)
        assert len(prefix) == i * stage.chunk_samples - lookahead
    stage.close()
    assert len(codec.decode(b"".join(out.chunks) + out.closed_with, profile)) == len(x)


def test_encoder_stage_abort_passes_on():
    out = ListOutput()
    stage = EncoderStage("voice", output=out)
    stage.feed(np.zeros(100, np.int16))
    stage.abort()
    assert out.aborted and out.chunks == []


class FailingOutput(ListOutput):
    def write_chunk(self, data):
        raise OSError("the archive is unreachable")


def test_fanout_gives_every_output_the_same_chunks_primary_first():
    order = []
    first, second = ListOutput(), ListOutput()
    first.write_chunk = lambda data: (order.append("first"), first.chunks.append(data))
    second.write_chunk = lambda data: (order.append("second"), second.chunks.append(data))
    stage = EncoderStage("voice", policy=ChunkPolicy(250), output=Fanout(first, [second]))
    x = np.arange(4000, dtype=np.int16) % 300
    for start in range(0, len(x), 160):
        stage.feed(x[start : start + 160])
    stage.close()
    assert first.chunks and first.chunks == second.chunks
    assert order == ["first", "second"] * len(first.chunks)
    assert first.closed_with == second.closed_with


def test_a_failing_extra_output_is_dropped_and_the_recording_goes_on():
    primary, bad, good = ListOutput(), FailingOutput(), ListOutput()
    fan = Fanout(primary, [bad, good])
    fan.write_chunk(b"one")
    fan.write_chunk(b"two")
    fan.close(b"end")
    assert primary.chunks == good.chunks == [b"one", b"two"] and good.closed_with == b"end"
    assert bad.aborted and fan.others == [good]


def test_a_failing_primary_output_fails_the_chunk():
    fan = Fanout(FailingOutput(), [ListOutput()])
    with pytest.raises(OSError, match="unreachable"):
        fan.write_chunk(b"x")
    assert fan.others[0].chunks == []  # nothing passed on that the file did not take


def test_pipeline_hands_the_encoded_stream_to_extra_outputs(tmp_path, key):
    extra = ListOutput()
    pipe = RecordingPipeline(
        str(tmp_path / "r.lkr"),
        "rec1",
        key,
        {"call_id": 1},
        "voice",
        flush_ms=250,
        fsync=False,
        outputs=[extra],
    )
    x = (np.arange(8000, dtype=np.int16) % 200) * 50
    feed_in_pieces(pipe, x)
    info = pipe.close()
    assert info["state"] == "complete" and len(extra.chunks) >= 3
    decoded = codec.decode(b"".join(extra.chunks) + extra.closed_with, "voice")
    assert len(decoded) == len(x)


@pytest.mark.parametrize("profile", ["voice", "alaw"])
def test_pipeline_round_trip(tmp_path, key, speech, profile):
    x = speech[0][1]
    path = tmp_path / "rec.lkr"
    p = RecordingPipeline(path, "rec-9", key, HEADER, profile=profile, flush_ms=1000, fsync=False)
    feed_in_pieces(p, x, t0_us=5_000_000)
    info = p.close()
    assert info["state"] == "complete" and not info["disk_full"]
    assert info["duration_s"] == len(x) / RATE
    assert info["bytes"] == os.path.getsize(path) == info["bytes_written"]  # 1.0 written per stored
    assert info["first_t_us"] == 5_000_000
    reader = SegmentReader(path, key)
    data, complete = reader.read_all()
    assert complete
    assert reader.header["profile"] == profile and reader.header["chunk_ms"] == 1000
    assert reader.header["recording_id"] == "rec-9" and reader.header["call_id"] == 7
    assert len(codec.decode(data, profile)) == len(x)
    chunk = 7680 if profile == "voice" else 8000
    assert inspect(path)["chunks"] == len(x) // chunk + 2  # whole chunks, the tail, the final
    assert p.close() == info  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        p.feed(x[:160], 0)


def test_pipeline_abort_leaves_a_playable_partial_file(tmp_path, key):
    x = np.random.default_rng(2).integers(-2000, 2000, 3 * RATE + 100).astype(np.int16)
    path = tmp_path / "rec.lkr"
    p = RecordingPipeline(path, "r", key, HEADER, fsync=False)
    feed_in_pieces(p, x)
    info = p.abort()
    assert info["state"] == "partial" and info["duration_s"] == 3 * 7680 / RATE
    with pytest.raises(ValueError, match="aborted"):
        p.feed(x[:160], 0)
    data, complete = SegmentReader(path, key).read_all()
    assert not complete
    assert len(codec.decode(data, "voice")) == 3 * 7680 - 52


def test_disk_full_stops_the_pipeline_cleanly(small_disk, fill_disk, key):
    older = small_disk / "older.lkr"
    older.write_bytes(b"an older recording" * 50)
    fill_disk(small_disk, leave_bytes=40 * 1024)
    path = small_disk / "rec.lkr"
    p = RecordingPipeline(path, "r", key, HEADER, profile="pcm", flush_ms=250)
    x = np.random.default_rng(3).integers(-2000, 2000, 20 * RATE).astype(np.int16)
    raised = []
    for start in range(0, len(x), 160):
        try:
            p.feed(x[start : start + 160], start * 125)
        except DiskFullError as exc:
            raised.append(exc)
    assert len(raised) == 1 and raised[0].errno == errno.ENOSPC
    info = p.close()
    assert info["state"] == "partial" and info["disk_full"]
    stored = int(info["duration_s"] * RATE)
    assert 0 < stored < len(x)
    data, complete = SegmentReader(path, key).read_all()
    assert not complete
    assert np.array_equal(codec.decode(data, "pcm"), x[:stored])
    assert older.read_bytes() == b"an older recording" * 50
    assert sorted(os.listdir(small_disk)) == ["filler", "older.lkr", "rec.lkr"]


def test_disk_full_at_the_start_leaves_no_file(small_disk, fill_disk, key):
    fill_disk(small_disk, leave_bytes=0)
    with pytest.raises(DiskFullError):
        RecordingPipeline(small_disk / "rec.lkr", "r", key, dict(HEADER, note="x" * 5000))
    assert not (small_disk / "rec.lkr").exists()
