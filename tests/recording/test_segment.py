import errno
import json
import os
import struct

import pytest

from firmware.errors import DiskFullError, LinekeeperError, TamperError
from firmware.recording import segment
from firmware.recording.segment import SegmentReader, SegmentWriter, inspect
from firmware.storage import crypto

HEADER = {
    "call_id": 42,
    "line": 2,
    "created_us": 1_700_000_000_000_000,
    "profile": "voice",
    "rate": 8000,
    "chunk_ms": 1000,
}
CHUNKS = [b"first chunk", b"second chunk, a little longer", b"third", b"fourth chunk"]


def write(path, key, chunks=CHUNKS, close=True, fsync=False):
    w = SegmentWriter(path, "rec-1", key, HEADER, fsync=fsync)
    for c in chunks:
        w.write_chunk(c)
    if close:
        w.close()
    else:
        w.abort()
    return w


def read(path, key):
    return SegmentReader(path, key).read_all()


def records(data):
    """(header bytes, [record bytes]) of a file's content."""
    n = struct.unpack_from(">I", data, 9)[0]
    pos, out = 13 + n, []
    head = data[:pos]
    while pos < len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        out.append(data[pos : pos + 4 + length])
        pos += 4 + length
    return head, out


@pytest.fixture
def rec(tmp_path, key):
    path = tmp_path / "rec.lkr"
    write(path, key, fsync=True)
    return path


def test_round_trip(rec, key):
    reader = SegmentReader(rec, key)
    assert list(reader.chunks()) == CHUNKS + [b""]
    assert reader.complete and reader.torn_bytes == 0
    assert reader.header == dict(HEADER, recording_id="rec-1")
    assert read(rec, key) == (b"".join(CHUNKS), True)


def test_file_is_private_and_never_overwritten(rec, key):
    assert os.stat(rec).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        SegmentWriter(rec, "rec-2", key, HEADER)


def test_inspect_needs_no_key(rec, tmp_path, key):
    info = inspect(rec)
    assert info["header"]["call_id"] == 42
    assert (info["chunks"], info["torn_bytes"], info["closed"]) == (len(CHUNKS) + 1, 0, True)
    assert info["file_bytes"] == os.path.getsize(rec)
    part = tmp_path / "part.lkr"
    write(part, key, close=False)
    with open(part, "ab") as f:
        f.write(b"\0\0\0\x40torn")
    info = inspect(part)
    assert (info["chunks"], info["torn_bytes"], info["closed"]) == (len(CHUNKS), 8, False)


def test_inspect_of_a_file_cut_inside_its_header(rec, tmp_path):
    cut = tmp_path / "cut.lkr"
    cut.write_bytes(rec.read_bytes()[:20])
    info = inspect(cut)
    assert info["header"] is None and info["chunks"] == 0 and info["torn_bytes"] == 20


def test_empty_chunks_are_not_written(tmp_path, key):
    w = write(tmp_path / "r", key, chunks=[b"", b"a", b""])
    assert w.chunks == 2  # "a" and the final chunk


def test_partial_file_reads_up_to_the_last_whole_chunk(tmp_path, key):
    path = tmp_path / "r"
    write(path, key, close=False)
    assert read(path, key) == (b"".join(CHUNKS), False)
    assert not inspect(path)["closed"]


def test_truncation_at_every_byte(rec, key):
    data = rec.read_bytes()
    head, recs = records(data)
    ends = [len(head)]
    for r in recs:
        ends.append(ends[-1] + len(r))
    for cut in range(len(data) + 1):
        rec.write_bytes(data[:cut])
        if cut < len(head):
            with pytest.raises(TamperError):
                read(rec, key)
            continue
        whole = sum(1 for e in ends[1:] if e <= cut)
        reader = SegmentReader(rec, key)
        got = b"".join(reader.chunks())
        assert got == b"".join(CHUNKS[:whole]), cut
        assert reader.complete == (cut == len(data))
        assert reader.torn_bytes == cut - ends[whole]


def test_every_flipped_bit_is_detected(rec, key):
    data = rec.read_bytes()
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            rec.write_bytes(bytes(bad))
            with pytest.raises(TamperError):
                read(rec, key)


def test_swapped_duplicated_dropped_and_appended_chunks_are_detected(rec, key):
    head, r = records(rec.read_bytes())
    for bad in (
        [r[1], r[0]] + r[2:],  # swapped
        r[:2] + [r[1]] + r[2:],  # duplicated
        r[:1] + r[2:],  # dropped from the middle
        r + [r[-1]],  # final chunk twice
        r + [b"\0\0\0\x10" + bytes(16)],  # a record after the final one
        r[:-1],
    ):  # (cut before the final chunk: partial, not complete)
        rec.write_bytes(head + b"".join(bad))
        try:
            _, complete = read(rec, key)
        except TamperError:
            continue
        assert bad == r[:-1] and not complete


def test_wrong_key_is_detected(rec):
    with pytest.raises(TamperError):
        read(rec, crypto.new_data_key())


def test_edited_header_is_detected(rec, key):
    data = rec.read_bytes()
    n = struct.unpack_from(">I", data, 9)[0]
    header = json.loads(data[13 : 13 + n])
    header["line"] = 3
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    rec.write_bytes(data[:9] + struct.pack(">I", len(body)) + body + data[13 + n :])
    with pytest.raises(TamperError):
        read(rec, key)


def test_bad_magic_or_version(rec, key):
    data = rec.read_bytes()
    for bad in (b"RIFF" + data[4:], data[:8] + b"\x02" + data[9:], b"", b"\x89LKREC"):
        rec.write_bytes(bad)
        with pytest.raises(TamperError):
            SegmentReader(rec, key)


def test_a_torn_tail_of_garbage_or_zeros_is_ignored(tmp_path, key):
    path = tmp_path / "r"
    write(path, key, close=False)
    clean = path.read_bytes()
    for tail in (
        b"\x00\x00",
        b"\xff\xff\xff\xff garbage",
        b"\x00\x00\x00\x30" + bytes(48),
        b"\x00\x00\x00\x30" + os.urandom(20),
    ):
        path.write_bytes(clean + tail)
        reader = SegmentReader(path, key)
        assert b"".join(reader.chunks()) == b"".join(CHUNKS)
        assert not reader.complete and reader.torn_bytes == len(tail)


def test_an_enlarged_length_field_is_not_taken_for_a_torn_tail(rec, key):
    head, r = records(rec.read_bytes())
    for i in (len(r) - 1, len(r) - 2):
        bad = list(r)
        length = struct.unpack_from(">I", bad[i])[0]
        bad[i] = struct.pack(">I", length + 1000) + bad[i][4:]
        rec.write_bytes(head + b"".join(bad))
        with pytest.raises(TamperError):
            read(rec, key)


def _last_record_at(tmp_path, key, sector_offset):
    """A partial file of three chunks whose last record starts ``sector_offset`` bytes
    into a 512-byte sector: ``(path, its content, where that record starts)``."""
    path = tmp_path / "r"

    def made(n):
        if path.exists():
            path.unlink()
        write(path, key, chunks=[bytes(n), b"second", b"the last chunk"], close=False)
        head, recs = records(path.read_bytes())
        return len(head) + len(recs[0]) + len(recs[1])

    start = made(1)
    start = made(1 + (sector_offset - start) % 512)
    assert start % 512 == sector_offset
    return path, path.read_bytes(), start


@pytest.mark.parametrize("sector_offset, wrong", [(511, [0]), (510, [0, 1]), (509, [0, 1, 2])])
def test_a_length_field_whose_first_bytes_a_cut_garbled_is_a_torn_tail(tmp_path, key, sector_offset, wrong):
    """The file's synced part ended inside the last record's length field: a power cut
    may garble the field's bytes in that sector, alone, while the next sectors, with
    the record's body, reach the card. The body is authentic, but the field hides
    nothing a torn write could not: a torn tail (the crash tests' model,
    tests/support/powercut.py, made it). (Left unwritten, those bytes are zeros, as
    the high bytes of every length field are.)"""
    path, data, start = _last_record_at(tmp_path, key, sector_offset)
    bad = bytearray(data)
    for i in wrong:
        bad[start + i] ^= 0x5A
    path.write_bytes(bytes(bad))
    reader = SegmentReader(path, key)
    assert b"".join(reader.chunks()) == _all_but_the_last_chunk(data, key, tmp_path)
    assert not reader.complete and reader.torn_bytes == len(data) - start


def _all_but_the_last_chunk(data, key, tmp_path):
    """The audio of every chunk but the last of the file ``data``."""
    head, recs = records(data)
    cut = tmp_path / "cut"
    cut.write_bytes(head + b"".join(recs[:-1]))
    return b"".join(SegmentReader(cut, key).chunks())


@pytest.mark.parametrize("sector_offset, wrong", [(511, [1]), (510, [0, 2]), (100, [0]), (508, [0])])
def test_a_length_field_altered_past_that_sector_still_hides_a_chunk(tmp_path, key, sector_offset, wrong):
    """Any other altered length field that hides an authentic chunk is damage: a byte
    past the sector boundary (the body's sector reached the card, so did it), or a
    field with no boundary inside it (its sector holds the body's first bytes too)."""
    path, data, start = _last_record_at(tmp_path, key, sector_offset)
    bad = bytearray(data)
    for i in wrong:
        bad[start + i] ^= 0x5A
    path.write_bytes(bytes(bad))
    with pytest.raises(TamperError, match="damaged length field"):
        read(path, key)


def test_a_torn_tail_longer_than_a_record_is_damage(tmp_path, key):
    path = tmp_path / "r"
    write(path, key, close=False)
    with open(path, "ab") as f:
        f.write(b"\xff" * (segment.max_chunk_bytes(HEADER) + 100))
    with pytest.raises(TamperError):
        read(path, key)
    with pytest.raises(TamperError):
        inspect(path)


def test_oversized_chunk_is_refused(tmp_path, key):
    w = SegmentWriter(tmp_path / "r", "r", key, HEADER, fsync=False)
    with pytest.raises(ValueError):
        w.write_chunk(bytes(w.max_chunk_bytes + 1))


def test_bytes_written_match_the_file(rec, key, tmp_path):
    w = write(tmp_path / "r2", key)
    assert w.bytes_written == os.path.getsize(tmp_path / "r2")


def test_disk_full_keeps_what_was_written(small_disk, fill_disk, key):
    other = small_disk / "older-recording"
    other.write_bytes(b"keep me" * 100)
    fill_disk(small_disk, leave_bytes=24 * 1024)
    path = small_disk / "rec.lkr"
    w = SegmentWriter(path, "rec-1", key, HEADER)
    chunk = os.urandom(3000)
    written = 0
    with pytest.raises(DiskFullError) as caught:
        for _ in range(100):
            w.write_chunk(chunk)
            written += 1
    err = caught.value
    assert isinstance(err, OSError) and isinstance(err, LinekeeperError)
    assert err.errno == errno.ENOSPC and "Free space" in str(err)
    assert 0 < written < 100 and w.closed
    data, complete = read(path, key)
    assert data == chunk * written and not complete
    assert other.read_bytes() == b"keep me" * 100
    with pytest.raises(ValueError):
        w.write_chunk(b"more")


def test_disk_full_at_creation_leaves_nothing(small_disk, fill_disk, key):
    fill_disk(small_disk, leave_bytes=0)
    with pytest.raises(DiskFullError):
        SegmentWriter(small_disk / "rec.lkr", "rec-1", key, dict(HEADER, pad="x" * 5000))
    assert not (small_disk / "rec.lkr").exists()


def _count_syncs(monkeypatch):
    """Every fdatasync and directory fsync the writer asks for, in order."""
    calls = []
    real_fdatasync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append("file"), real_fdatasync(fd))[1])
    monkeypatch.setattr(segment, "fsync_dir", lambda path: calls.append("dir"))
    return calls


def test_a_new_file_is_durable_at_once_by_default(tmp_path, key, monkeypatch):
    syncs = _count_syncs(monkeypatch)
    w = SegmentWriter(tmp_path / "rec.lkr", "rec-1", key, HEADER)
    assert syncs == ["file", "dir"]
    w.write_chunk(CHUNKS[0])
    assert syncs == ["file", "dir", "file"]


def test_under_a_hold_up_capacitor_the_header_is_synced_with_the_first_chunk(tmp_path, key, monkeypatch):
    """(``sync_create=False``) The header's page would otherwise be sent to the card
    twice: alone, then again with the first chunk; the file's name goes with it."""
    syncs = _count_syncs(monkeypatch)
    path = tmp_path / "rec.lkr"
    w = SegmentWriter(path, "rec-1", key, HEADER, sync_create=False)
    assert syncs == []
    w.write_chunk(CHUNKS[0])
    assert syncs == ["file", "dir"]
    w.write_chunk(CHUNKS[1])
    w.close()
    assert syncs == ["file", "dir", "file", "file", "dir"]
    assert read(path, key) == (CHUNKS[0] + CHUNKS[1], True)


def test_a_deferred_file_is_created_by_its_first_chunk_just_after_before_create(tmp_path, key, monkeypatch):
    """(``before_create``, under a hold-up capacitor) The box syncs the call log in the
    hook, so the card never holds a recording file its intent row does not precede."""
    syncs = _count_syncs(monkeypatch)
    path = tmp_path / "rec.lkr"
    w = SegmentWriter(
        path, "rec-1", key, HEADER, sync_create=False, before_create=lambda: syncs.append("call log")
    )
    assert syncs == [] and not path.exists()
    w.write_chunk(b"")  # nothing to write: still nothing
    assert not path.exists()
    w.write_chunk(CHUNKS[0])
    assert syncs == ["call log", "file", "dir"]
    w.write_chunk(CHUNKS[1])
    w.close()
    assert syncs == ["call log", "file", "dir", "file", "file", "dir"]
    assert read(path, key) == (CHUNKS[0] + CHUNKS[1], True)
    assert w.bytes_written == path.stat().st_size


@pytest.mark.parametrize("end", ["close", "abort"])
def test_a_deferred_file_with_no_chunk_is_created_at_its_end(tmp_path, key, end):
    hooked = []
    path = tmp_path / "rec.lkr"
    w = SegmentWriter(path, "rec-1", key, HEADER, before_create=lambda: hooked.append(1))
    getattr(w, end)()
    assert hooked == [1] and w.closed
    assert read(path, key) == (b"", end == "close")


def test_a_deferred_file_refuses_an_existing_path_at_once(tmp_path, key):
    path = tmp_path / "rec.lkr"
    path.write_bytes(b"someone's")
    with pytest.raises(FileExistsError):
        SegmentWriter(path, "rec-1", key, HEADER, before_create=lambda: None)
    assert path.read_bytes() == b"someone's"


def test_a_deferred_file_the_full_disk_refuses_leaves_nothing(small_disk, fill_disk, key):
    fill_disk(small_disk, leave_bytes=0)
    path = small_disk / "rec.lkr"
    w = SegmentWriter(path, "rec-1", key, dict(HEADER, pad="x" * 5000), before_create=lambda: None)
    with pytest.raises(DiskFullError):
        w.write_chunk(os.urandom(3000))
    assert w.closed and not path.exists()
    w.abort()  # the recorder's stop after the failure: nothing more
    assert not path.exists()


def test_with_a_sync_group_the_chunks_are_written_at_once_and_synced_together(tmp_path, key, monkeypatch):
    """(Under a hold-up capacitor) Every line's chunk is written first; the group then
    syncs them all, so that ext4 commits its journal once for all of them."""
    syncs = _count_syncs(monkeypatch)
    backs = []
    monkeypatch.setattr(segment.fsutil, "write_back", lambda fds: backs.append(list(fds)))
    group = segment.SyncGroup()
    paths = [tmp_path / ("rec%d.lkr" % i) for i in range(3)]
    writers = [
        SegmentWriter(
            p, "rec-%d" % i, key, HEADER, sync_create=False, before_create=lambda: None, sync_group=group
        )
        for i, p in enumerate(paths)
    ]
    for w in writers:
        w.write_chunk(CHUNKS[0])
    assert syncs == [] and len(group) == 3 and all(p.exists() for p in paths)
    assert group.sync() == []
    assert backs == [[w.fd for w in writers]]  # their pages sent down together, then each synced
    assert syncs == ["file", "dir"] * 3 and len(group) == 0
    assert group.sync() == [] and len(backs) == 1  # nothing waits: nothing to do
    for w in writers:
        w.write_chunk(CHUNKS[1])
    group.sync()
    assert syncs == ["file", "dir"] * 3 + ["file"] * 3
    for w, p in zip(writers, paths, strict=True):
        w.close()
        assert read(p, key) == (CHUNKS[0] + CHUNKS[1], True)


@pytest.mark.parametrize("then", ["next chunk", "close", "abort"])
def test_a_file_never_has_two_chunks_waiting_for_the_group(tmp_path, key, monkeypatch, then):
    """One chunk in flight per file, as without the group: a power cut can still tear
    only the last chunk (docs/holdup-writes.md). What comes before the group's sync
    syncs the waiting chunk first."""
    group = segment.SyncGroup()
    path = tmp_path / "rec.lkr"
    w = SegmentWriter(path, "rec-1", key, HEADER, sync_create=False, sync_group=group)
    syncs = _count_syncs(monkeypatch)
    sizes = []
    monkeypatch.setattr(
        os, "fdatasync", lambda fd: (syncs.append("file"), sizes.append(os.fstat(fd).st_size))
    )
    w.write_chunk(CHUNKS[0])
    first = path.stat().st_size
    assert syncs == [] and len(group) == 1
    if then == "next chunk":
        w.write_chunk(CHUNKS[1])
        assert sizes == [first] and len(group) == 1  # the first synced before the second was written
    elif then == "close":
        w.close()
        assert sizes[0] == first and len(group) == 0
        assert read(path, key) == (CHUNKS[0], True)
    else:
        w.abort()
        assert sizes == [first] and len(group) == 0 and w.closed
        assert read(path, key) == (CHUNKS[0], False)


def test_a_sync_the_group_finds_failing_closes_that_file_alone(tmp_path, key, monkeypatch):
    group = segment.SyncGroup()
    writers = [
        SegmentWriter(tmp_path / ("rec%d.lkr" % i), "rec-%d" % i, key, HEADER, sync_group=group)
        for i in range(2)
    ]
    for w in writers:
        w.write_chunk(CHUNKS[0])
    bad = writers[0].fd
    real = os.fdatasync

    def fdatasync(fd):
        if fd == bad:
            raise OSError(errno.EIO, "card gone")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    failed = group.sync()
    assert [(w, exc.errno) for w, exc in failed] == [(writers[0], errno.EIO)]
    assert writers[0].closed and not writers[1].closed
    writers[1].close()
    assert read(tmp_path / "rec1.lkr", key) == (CHUNKS[0], True)
    assert read(tmp_path / "rec0.lkr", key) == (CHUNKS[0], False)  # partial, what it had
