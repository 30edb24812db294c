"""`make bench` section "card": what the card itself receives, file system included.

``power_fail.write_path`` counts the bytes the box's own process sends to
storage (``write_bytes`` of /proc/self/io): its file pages and its direct
writes. The card receives more: ext4's own journal (every inode whose size,
blocks or times changed, committed every 5 s and at every ``fdatasync`` that
must make a new size durable), block bitmaps, directory blocks, and each of
those written again at its home when the journal is checkpointed. And the kernel
writes an unsynced page back about 30 s after it was dirtied, so a file that is
appended all the time has its last, partly filled page sent twice a minute.
``write_path`` runs half an hour of calls in under a minute of real time and
sees none of the timed work.

This section runs the same busy calls at real-time pace (``SimClock(speed=1)``)
with the data directory on a file system of its own: a fresh ext4 (4 KiB
blocks as on a card, mounted ``noatime`` as Raspberry Pi OS mounts its root, and
``commit=60`` as the box's installer remounts it)
on a loop device, so that ``/sys/block/loopN/stat`` counts every sector the
file system sends down, whoever wrote it. Each run is one process; the runs go
side by side, each on its own loop device. Two calls on every line, 12 minutes:
what is counted is the second call of each (from :data:`FROM_S`), so that
what happens once in a box's life (its databases made, its journal written
through) and the first growth of the databases' write-ahead logs stay out.
When the calls are over, ``syncfs`` puts everything still in memory on the
device before the window's last reading: nothing the calls wrote is left out.
The box then stops, which a box does once per boot (its databases'
checkpoints, its clean-stop mark): that is read after another ``syncfs`` and
given apart (``stop_kib``, and ``card_with_stop``: the window and the stop
together, as this section measured until 2026-12-04).

The same rows are then run again on the talking calls of ``bench.box``
(``talking``: the same calls with speech from the answer to the hang-up, about
four times the audio of the busy calls, which talk for their first 25 s only):
what a byte stored costs depends on how much audio each call and minute
carries, and the busy calls carry little.

Per row (``lines_N``), by write path as in ``write_path``: ``per_line`` (each
line's file synced every chunk; call log and audit trail as they were before
they were batched), ``journal`` (the shared journal, the default) and
``holdup_60000`` (the power-fail path); for each, ``card`` = sectors written
to the device per byte stored in the window, next to ``process`` = the same
run's ``write_bytes`` per byte stored (the measure ``write_path`` uses).

It needs root (loop devices, mount); without it the section says so and
measures nothing.
"""

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

# As on the box: Raspberry Pi OS mounts its root noatime, and linekeeper-card-commit.service
# (scripts/install-box) remounts the data's file system commit=60 (docs/journal.md).
MOUNT_OPTIONS = "noatime,commit=60"
MINUTES = 12  # two calls on every line (the busy calls start every 270 s and talk for 240)
FROM_S = 265.0  # measured from here: the second call of every line, the first ones over
PATHS = {
    "per_line": {"flush_ms": 1000, "journal": False},
    "journal": {"flush_ms": 1000, "journal": True},
    "holdup_60000": {"flush_ms": 60_000, "journal": True},  # the box leaves the journal out
}
IMAGE_BYTES = 256 << 20
TRAFFIC = {"busy": False, "talking": True}  # bench.box's calls: talking from answer to hang-up?
TARGETS = {  # issue 16's, for the device bytes per byte stored
    ("journal", 4): "<= 5",
    ("journal", 16): "<= 1.5",
    ("holdup_60000", 4): "<= 1.2",
    ("holdup_60000", 16): "<= 1.2",
}


def run(quick=False):
    why = _cannot()
    if why:
        return {"skipped": why}
    rows = (16,) if quick else (4, 16)
    out = {"minutes": MINUTES, "file_system": "ext4 (4 KiB blocks), %s, on a loop device" % MOUNT_OPTIONS}
    # One traffic after the other: the six boxes of one at real-time pace keep two
    # cores busy enough.
    for traffic in ("busy",) if quick else TRAFFIC:
        figures = _rows_of(traffic, rows)
        if traffic == "busy":
            out.update(figures)  # where the section has always had them
        else:
            out[traffic] = figures
    return out


def _rows_of(traffic, rows):
    """``{"lines_N": {path: figures}}`` for ``traffic``, every row and path side by side."""
    out = {}
    with tempfile.TemporaryDirectory(
        prefix="lk-bench-card-", dir=os.environ.get("BENCH_TMP", "/var/tmp")
    ) as tmp:
        procs = {}
        for lines in rows:
            for name in PATHS:
                work = os.path.join(tmp, "%s-%d" % (name, lines))
                os.mkdir(work)
                cmd = [sys.executable, "-m", "bench.card", work, str(lines), name, str(MINUTES), traffic]
                procs[(lines, name)] = subprocess.Popen(
                    cmd,
                    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
        for (lines, name), proc in procs.items():
            stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(
                    "bench.card %s, %d lines, %s failed:\n%s" % (traffic, lines, name, stderr[-3000:])
                )
            row = json.loads(stdout.strip().splitlines()[-1])
            target = TARGETS.get((name, lines))
            if target:
                row["targets"] = {"card": target}
            out.setdefault("lines_%d" % lines, {})[name] = row
    return out


def _cannot():
    if os.geteuid() != 0:
        return "needs root: it mounts a file system of its own on a loop device"
    for tool in ("mkfs.ext4", "losetup", "mount", "umount"):
        if shutil.which(tool) is None:
            return "needs %s (Debian e2fsprogs, mount)" % tool
    return None


def _syncfs(path):
    """Write back everything waiting for the file system under ``path``, and only that
    one (a ``sync`` would write back the runs beside it too, early)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs %s" % path)
    finally:
        os.close(fd)


def _sectors_written(dev):
    with open("/sys/block/%s/stat" % os.path.basename(dev)) as f:
        return int(f.read().split()[6])


def _one(work, lines, path, minutes, traffic="busy", options=MOUNT_OPTIONS):
    """One box at real-time pace on a fresh ext4 in ``work``, mounted with ``options``,
    on the ``traffic`` calls: a dict of its figures."""
    image, mnt = os.path.join(work, "card.img"), os.path.join(work, "card")
    with open(image, "wb") as f:
        f.truncate(IMAGE_BYTES)
    # 4 KiB blocks, as on a card (mkfs gives a file system this small 1 KiB ones); inode
    # tables and ext4's journal initialised now, not by a kernel thread during the run.
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0", image],
        check=True,
    )
    dev = subprocess.run(
        ["losetup", "--find", "--show", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        os.mkdir(mnt)
        subprocess.run(["mount", "-o", options, dev, mnt], check=True)
        try:
            return _measure(os.path.join(mnt, "data"), dev, lines, path, minutes, traffic)
        finally:
            subprocess.run(["umount", mnt], check=True)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def _measure(data_dir, dev, lines, path, minutes, traffic):
    from bench import measure
    from bench import power_fail as pf
    from board.sim.speech import SpeechSynth
    from firmware.recording.store import RecordingStore

    synth = SpeechSynth(cache_dir=os.path.join(os.path.dirname(__file__), ".cache", "speech"))
    hat = pf._wide_hat(lines)
    scenario = pf._scenario(lines, minutes / 60, talking=TRAFFIC[traffic])
    spec = PATHS[path]
    box = pf._prepared_box(scenario, hat, synth, data_dir, spec["flush_ms"], journal=spec["journal"], speed=1)
    start = []

    def begin():
        _syncfs(data_dir)  # the first calls' writes are on the device, not counted
        start.extend((_sectors_written(dev), measure.device_write_bytes(), time.monotonic()))

    box.clock.call_at(int(FROM_S * 1e6), begin)
    box.start()
    try:
        box.board.run()
        _syncfs(data_dir)  # what the calls left in memory reaches the device too
        s1, io1, t1 = _sectors_written(dev), measure.device_write_bytes(), time.monotonic()
    finally:
        box.stop()
    _syncfs(data_dir)
    s2, io2 = _sectors_written(dev), measure.device_write_bytes()
    s0, io0, t0 = start
    store = RecordingStore(data_dir)
    try:
        rows = list(store.all())
    finally:
        store.close()
    rows = [r for r in rows if r["started_at"] >= box.clock.wall_at(int(FROM_S * 1e6))]
    stored = sum(r["bytes"] for r in rows)
    return {
        "card": round((s1 - s0) * 512 / stored, 2),
        "process": round((io1 - io0) / stored, 2),
        "stop_kib": round((s2 - s1) * 512 / 1024, 1),
        "card_with_stop": round((s2 - s0) * 512 / stored, 2),
        "process_with_stop": round((io2 - io0) / stored, 2),
        "stored_bytes": stored,
        "recordings": len(rows),
        "real_s": round(t1 - t0, 1),
    }


if __name__ == "__main__":
    # WORK LINES PATH MINUTES [TRAFFIC [MOUNT_OPTIONS]]: one run (the section starts one
    # per traffic, row and path)
    work, lines, path, minutes = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    print(json.dumps(_one(work, lines, path, minutes, *sys.argv[5:7])))
