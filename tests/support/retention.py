"""Instruments for the retention tests: a data directory with calls and recordings (:class:`Shelf`)."""

import os
import sqlite3

from firmware.bus import Alarm, EventBus
from firmware.calls.calllog import SCHEMA as CALLS_SCHEMA
from firmware.clock import SimClock
from firmware.policy.callmeta import CallMeta
from firmware.policy.retention import DAY_US, RetentionSettings
from firmware.policy.sweeper import RetentionSweeper
from firmware.recording.store import RecordingStore, new_wrapped_key
from firmware.storage import crypto
from firmware.storage.audit import AuditLog

T0_US = 1_772_442_000_000_000  # 2026-03-02T09:00:00Z


S = 1_000_000


class FakeDisk:
    """``shutil.disk_usage`` for a card of ``total`` bytes: ``base`` used plus the recordings."""

    def __init__(self, recordings_dir, total, base):
        self.dir, self.total, self.base = recordings_dir, total, base

    def __call__(self, path):
        used = self.base + sum(os.path.getsize(os.path.join(self.dir, n)) for n in os.listdir(self.dir))
        return self.total, used, self.total - used


class Shelf:
    def __init__(self, tmp_path, settings=None):
        self.data_dir = str(tmp_path / "data")
        os.makedirs(self.data_dir)
        self.clock = SimClock(start_wall_us=T0_US)
        self.db = sqlite3.connect(os.path.join(self.data_dir, "calls.db"), isolation_level=None)
        self.db.executescript(CALLS_SCHEMA)
        self.store = RecordingStore(self.data_dir)
        self.meta = CallMeta(os.path.join(self.data_dir, "calls.db"))
        self.audit = AuditLog(
            os.path.join(self.data_dir, "audit.db"), os.path.join(self.data_dir, "audit.head")
        )
        self.bus = EventBus(strict=True)
        self.alarms = []
        self.bus.subscribe(Alarm, self.alarms.append)
        self.public_key = crypto.new_key_pair()[1]
        self.disk = FakeDisk(self.store.dir, total=100 << 20, base=10 << 20)
        self.sweeper = RetentionSweeper(
            self.store,
            self.clock,
            self.audit,
            settings or RetentionSettings(),
            bus=self.bus,
            disk_usage=self.disk,
        )
        self.wrapped = {}
        # A box that has been sweeping all along (its first sweep is covered apart).
        self.sweeper.guard.passed(self.clock.wall_us())

    def close(self):
        self.sweeper.close()
        self.store.close()
        self.meta.close()
        self.audit.close()
        self.db.close()

    def add_call(
        self, days_ago, line=1, direction="in", tags=(), hold=False, size=4096, number="01632960123"
    ):
        """A call that started ``days_ago`` days before now, with a complete recording."""
        start = self.clock.wall_us() - int(days_ago * DAY_US)
        cur = self.db.execute(
            "INSERT INTO calls (line, direction, started_at, answered_at, ended_at, clock_synced,"
            " number, name) VALUES (?, ?, ?, ?, ?, 1, ?, 'ACME LTD')",
            (line, direction, start, start + 5 * S, start + 65 * S, number),
        )
        call_id = cur.lastrowid
        rid = "%032x" % (call_id * 7919)
        _, wrapped = new_wrapped_key(self.public_key, rid)
        self.store.begin(call_id, wrapped, "voice", 1000, start + 4 * S, recording_id=rid)
        with open(self.store.path_of(rid), "wb") as f:
            f.write(os.urandom(size))
        self.store.finish(rid, "complete", 60.0)
        self.wrapped[call_id] = wrapped
        if tags:
            self.meta.add_tags(call_id, tags)
        if hold:
            self.meta.set_legal_hold(call_id, True, "sam", self.clock.wall_us())
        return call_id

    def recorded(self):
        """Ids of the calls that still have a recording row."""
        return sorted(r["call_id"] for r in self.store.all())

    def advance(self, seconds):
        self.clock.run_until(self.clock.now_us() + int(seconds * S))

    def jump(self, seconds):
        """Step the wall clock by ``seconds`` without monotonic time passing."""
        self.clock.start_wall_us += int(seconds * S)

    def sweeps(self):
        return [
            e for e in self.audit.entries(limit=1000, newest_first=False) if e.action == "retention_sweep"
        ]


def settings(**kw):
    return RetentionSettings.from_dict(kw)
