"""Issue 4 acceptance: a power cut that loses writes not yet synced, modelled as SQLite's crash tests do.

A kill -9 (test_crash_kill.py) loses nothing the process handed to the
kernel; a power cut loses whatever was not yet synced. This test records
the calls in-process with the segment writer's system calls observed: its
module's ``os`` is replaced by :class:`ObservedOs`, which passes every call
through to the real ``os`` and tells a :class:`Disk` model what was written
and synced (``write``, ``fdatasync``; ``fsync_dir`` for the file's name).
The recording journal's writes (durable when they return) are crash points
too: with the journal a recording file is created and sealed unsynced, and
only the journal holds it until the stop syncs it.
The product code runs unchanged - monkeypatching the module's reference,
rather than adding an injectable file-ops object to segment.py, means the
code under test is exactly the code that ships.

At :data:`CRASH_POINTS` randomly chosen system calls (fixed seed), the
model builds the image a power cut at that instant could leave, as
SQLite's crash tests (test6.c, "crash" VFS) do:

* everything synced is there;
* the unsynced writes are cut into 512-byte sectors and each sector is,
  independently, kept, dropped (zeros: blocks never written) or garbled
  (random bytes); the file's size is its synced size or anything up to its
  full size, at a sector boundary;
* a file whose directory entry was not yet synced may be missing altogether;
* each SQLite database is its files (the database and its write-ahead log)
  as SQLite or the box last synced them (:mod:`support.sqlitesyncs`): with
  ``synchronous=FULL`` every commit, with ``NORMAL`` (the call log under a
  hold-up capacitor) what a later sync carried, and nothing written since;
  SQLite recovers the log when the image is opened.

The model assumes "powersafe overwrite" (SQLite's default assumption too):
writing part of a sector does not damage the bytes of it written before.

The same run is replayed on the power-fail path too (``holdup_flush_ms``, on
the LK-4L, whose MCU warns of power cuts): a cut the warning never announced
(the MCU failed, or the kernel crashed) may then lose up to the interval, and
the guarantees are those of the kill test of that path (test_holdup_kill.py)
with a torn page on top. Each line's chunk is written to its file once an
interval and synced with the other lines' (``SyncGroup``); a seal goes into
the journal and then the file, unsynced, which a replay after the cut
writes again. The call log's rows and states wait up to the interval for
their sync, and the image has only what was synced.

On each image the guarantees of the kill test are checked
(:meth:`Lab.check_after_crash`). The crash instant is known exactly here,
so no kill-time uncertainty enters the 1 s budget. One thing a power cut
can do that a kill cannot: leave the last record at its full length with
garbage in it. Recovery, holding no key, counts it in the duration (one
chunk too many); reading with the key drops it, as a torn write - which is
why only a ``partial`` recording's last record may fail authentication.
"""

import os
import random
import shutil

import pytest

from firmware import datadir
from firmware.recording import journal, segment

from support.sqlitesyncs import SyncedFiles

pytestmark = pytest.mark.slow  # replays a power cut over a real run

SEED = int(os.environ.get("LK_CRASH_SEED", "20260302"))  # fixed; the variable explores others
CRASH_POINTS = 24
SECTOR = 512
# The power-fail path's interval, and the longest chunk it writes (the interval less
# the recorder's 360 ms delay line and one 120 ms frame, docs/holdup-writes.md).
HOLDUP_FLUSH_MS = 2_000
HOLDUP_CHUNK_US = (HOLDUP_FLUSH_MS - 360 - 120) * 1000
PATHS = {
    "journal": {"extra": {}, "loss_limit_us": 1_000_000, "torn_chunk_us": 960_000},
    "holdup": {
        "extra": {"hat": "lk-4l", "config": {"holdup_flush_ms": HOLDUP_FLUSH_MS}},
        # The interval, and the capture period in which its sync pass runs.
        "loss_limit_us": HOLDUP_FLUSH_MS * 1000 + 120_000,
        "torn_chunk_us": HOLDUP_CHUNK_US,
    },
}
CALLS = [
    {
        "line": 1,
        "at": 0.2,
        "direction": "in",
        "rings": 1,
        "talk": 6.0,
        "speech": [
            {"at": 0.2, "text": "Good morning, thank you for calling."},
            {"at": 3.0, "text": "I would like to check my order, please."},
        ],
    },
    {
        "line": 2,
        "at": 0.5,
        "direction": "out",
        "dial": {"digits": "42", "delay": 0.2},
        "talk": 5.0,
        "speech": [{"at": 0.3, "text": "Could you give me the order number?"}],
    },
    {
        "line": 3,
        "at": 2.0,
        "direction": "in",
        "rings": 1,
        "talk": 5.0,
        "speech": [{"at": 0.1, "text": "It is four five six, seven eight nine."}],
    },
    {
        "line": 1,
        "at": 9.0,
        "direction": "out",
        "dial": {"digits": "7", "delay": 0.2},
        "talk": 3.0,
        "speech": [{"at": 0.3, "text": "Thank you, it was sent yesterday."}],
    },
]


class Disk:
    """What is durable of each file the segment writer opened, and what is still in flight."""

    def __init__(self):
        self.files = {}  # path -> {"synced": bytes, "written": bytearray, "named": bool}
        self.fds = {}

    def opened(self, fd, path):
        self.fds[fd] = path
        self.files[path] = {"synced": b"", "written": bytearray(), "named": False}

    def wrote(self, fd, data):
        self.files[self.fds[fd]]["written"] += data  # O_APPEND: always at the end

    def synced(self, fd):
        f = self.files[self.fds[fd]]
        f["synced"] = bytes(f["written"])

    def dir_synced(self, directory):
        for path, f in self.files.items():
            if os.path.dirname(os.path.abspath(path)) == directory:
                f["named"] = True

    def image_of(self, path, rng):
        """The content a power cut now could leave at ``path`` (None: the file is gone)."""
        f = self.files[path]
        if not f["named"] and rng.random() < 0.5:
            return None
        synced, written = f["synced"], bytes(f["written"])
        if len(written) == len(synced):
            return synced
        bounds = sorted(
            {len(synced), len(written)}
            | set(range((len(synced) // SECTOR + 1) * SECTOR, len(written), SECTOR))
        )
        size = rng.choice(bounds)
        out = bytearray(written[:size])
        start = len(synced)
        while start < size:
            end = min(size, (start // SECTOR + 1) * SECTOR)
            fate = rng.choice(("kept", "dropped", "garbled"))
            if fate == "dropped":
                out[start:end] = bytes(end - start)
            elif fate == "garbled":
                out[start:end] = rng.randbytes(end - start)
            start = end
        return bytes(out)


class JournalOs:
    """The ``os`` module as journal.py sees it, with each commit's write reported (the
    journal's writes are durable when they return: ``O_DIRECT | O_DSYNC``, or an
    ``fdatasync`` just after, so its file is copied as it stands). Only once a
    recording has begun: before, a power cut has nothing to lose."""

    def __init__(self, disk, on_call):
        self._disk, self._on_call = disk, on_call

    def __getattr__(self, name):
        return getattr(os, name)

    def pwrite(self, fd, data, offset):
        recording = bool(self._disk.files)
        if recording:
            self._on_call("before journal write")
        n = os.pwrite(fd, data, offset)
        if recording:
            self._on_call("after journal write")
        return n


class ObservedOs:
    """The ``os`` module as segment.py sees it, with its writes and syncs reported."""

    def __init__(self, disk, on_call):
        self._disk, self._on_call = disk, on_call

    def __getattr__(self, name):
        return getattr(os, name)

    def open(self, path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        self._disk.opened(fd, os.fspath(path))
        return fd

    def write(self, fd, data):
        self._on_call("before write")
        n = os.write(fd, data)
        self._disk.wrote(fd, bytes(data[:n]))
        self._on_call("after write")
        return n

    def fdatasync(self, fd):
        self._on_call("before fdatasync")
        os.fdatasync(fd)
        self._disk.synced(fd)


@pytest.fixture(scope="module", params=sorted(PATHS))
def images(module_lab, request):
    lab, path = module_lab, PATHS[request.param]
    scenario = lab.load(lab.scenario_doc(CALLS, lines=3, **path["extra"]))
    data_dir = lab.init_data_dir(lab.tmp_path / ("live-" + request.param))
    rng = random.Random(SEED)
    disk = Disk()
    calls = []  # every system call, as (name, clock µs)
    state = {}

    def on_call(name):
        calls.append(name)
        if len(calls) in state["points"]:
            image = str(lab.tmp_path / ("crash-%s-%03d" % (request.param, len(calls))))
            make_image(data_dir, image, disk, state["databases"], random.Random(SEED + len(calls)))
            in_flight = any(bytes(f["written"]) != f["synced"] or not f["named"] for f in disk.files.values())
            state["images"].append((image, name, state["box"].clock.now_us(), in_flight))

    original_fsync_dir = segment.fsync_dir
    original_sync_wal = datadir.sync_wal

    def observed_fsync_dir(path):
        original_fsync_dir(path)
        disk.dir_synced(os.path.dirname(os.path.abspath(path)))

    def observed_sync_wal(db_path):
        original_sync_wal(db_path)
        if "databases" in state:  # (the real run's; the dry run only counts)
            state["databases"].synced(os.fspath(db_path) + "-wal")

    # A dry run counts the system calls; the crash points are drawn from them.
    state.update(points=set(), images=[])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(segment, "os", ObservedOs(disk, on_call))
        mp.setattr(journal, "os", JournalOs(disk, on_call))
        mp.setattr(segment, "fsync_dir", observed_fsync_dir)
        mp.setattr(datadir, "sync_wal", observed_sync_wal)
        lab.run(
            scenario,
            lab.init_data_dir(lab.tmp_path / ("dry-" + request.param)),
            before_start=lambda box: state.update(box=box),
        )
        total = len(calls)
        calls.clear()
        disk.__init__()
        state["points"] = set(rng.sample(range(1, total + 1), CRASH_POINTS))
        with SyncedFiles(data_dir) as state["databases"]:
            lab.run(scenario, data_dir, before_start=lambda box: state.update(box=box))
    assert len(calls) == total, "the run is not deterministic"
    return lab, scenario, state["images"], path


def make_image(data_dir, image, disk, databases, rng):
    for root, _dirs, files in os.walk(data_dir):
        target = os.path.join(image, os.path.relpath(root, data_dir))
        os.makedirs(target, exist_ok=True)
        for name in files:
            src = os.path.join(root, name)
            if name.endswith((".db-wal", ".db-shm")):
                continue
            if name.endswith(".db"):
                for suffix in ("", "-wal"):
                    content = databases.content(src + suffix)
                    if content is not None:
                        with open(os.path.join(target, name + suffix), "wb") as f:
                            f.write(content)
            elif src in disk.files:
                content = disk.image_of(src, rng)
                if content is not None:
                    with open(os.path.join(target, name), "wb") as f:
                        f.write(content)
            else:
                shutil.copy2(src, target)


def test_power_cut_losing_unsynced_writes_loses_at_most_the_last_second(images):
    lab, scenario, crashes, path = images
    assert len(crashes) == CRASH_POINTS
    losses, empty, kinds, in_flight = [], 0, {}, 0
    for image, call, t_us, unsynced in crashes:
        kinds[call] = kinds.get(call, 0) + 1
        in_flight += unsynced
        found = lab.check_after_crash(
            image,
            scenario,
            t_us,
            t_us,
            "power cut %s" % image,
            torn_chunk_us=path["torn_chunk_us"],
            loss_limit_us=path["loss_limit_us"],
        )
        losses += found["loss_us"]
        empty += found["empty"]
    print(
        "power cuts: %d (%s; %d with a recording file not yet synced), %d partial recordings"
        " (%d empty), audio lost %d..%d ms"
        % (
            len(crashes),
            ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
            in_flight,
            len(losses),
            empty,
            min(losses) // 1000,
            max(losses) // 1000,
        )
    )
    # Crashes with a write in flight (a file written, or created, not yet synced: with
    # the journal, every file until the journal syncs it) are among them.
    assert in_flight >= 8
