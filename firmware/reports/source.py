"""Where a box's reports come from: its data directory, its country and time zone."""

import os
import sqlite3
import time

from .. import startfail
from ..signing import run_dir
from ..uptime import last_alive_us
from .compute import build_report
from .period import parse_period


class ReportSource:
    """Build reports for the box whose data is in ``data_dir``.

    :param country: how numbers compare ("uk", "us")
    :param tz: the time zone of days and hours (IANA name), or a callable giving it now;
        None (the default): the box's zone as its site settings say it now, the zone every
        page dates in (:func:`~firmware.datadir.site_zone`: Europe/London before one is saved)
    :param n_lines: the box's lines; None: the highest line in the call log
    :param alarms: an :class:`~firmware.alarmlog.AlarmLog`, or None
    :param calls_db: the call log (default ``DATA_DIR/calls.db``)
    :param cipher: the box's field cipher (sealed numbers and audit details), or None
    :param wall_us: ``() -> µs``, the box's clock (when a report is made)
    """

    def __init__(
        self,
        data_dir,
        *,
        country="uk",
        tz=None,
        n_lines=None,
        alarms=None,
        calls_db=None,
        cipher=None,
        wall_us=None,
    ):
        self.data_dir = os.fspath(data_dir)
        self.cipher = cipher
        self.calls_db = calls_db or os.path.join(self.data_dir, "calls.db")
        self.audit_db = os.path.join(self.data_dir, "audit.db")
        self.country = country
        self._tz = tz
        self.n_lines = n_lines
        self.alarms = alarms
        self.wall_us = wall_us or (lambda: time.time_ns() // 1000)

    @property
    def tz(self):
        if self._tz is None:
            from ..datadir import site_zone

            return site_zone(self.data_dir)
        return self._tz() if callable(self._tz) else self._tz

    def lines(self):
        if self.n_lines is not None:
            return self.n_lines
        db = sqlite3.connect("file:%s?mode=ro" % os.path.abspath(self.calls_db), uri=True)
        try:
            return db.execute("SELECT coalesce(max(line), 1) FROM calls").fetchone()[0]
        finally:
            db.close()

    def period(self, first, last):
        """A period in this box's zone (see :func:`~firmware.reports.period.parse_period`)."""
        return parse_period(first, last, self.tz)

    def report(self, period, lines=None, **how):
        """The report for ``period`` over ``lines`` (None: every line); raises ReportError.
        ``how``: ``callbacks``, ``progress``, ``sealed_ok`` of
        :func:`~firmware.reports.compute.build_report`."""
        return build_report(
            self.calls_db,
            period,
            audit_db=self.audit_db,
            lines=lines,
            n_lines=self.lines(),
            country=self.country,
            alarms=self.alarms,
            cipher=self.cipher,
            now_us=self.wall_us(),
            alive_us=last_alive_us(self.data_dir),
            # Why the recorder is refusing to start, when it is (noted in the run directory).
            failing=startfail.read(run_dir()),
            outside=self.outside_lines(),
            not_connected=self.not_connected_lines(),
            **how,
        )

    def not_connected_lines(self):
        """The lines ``config.json`` (its marker) says have nothing plugged in; () when it
        cannot be read (every line is then reported as any other)."""
        from ..config import load_config
        from ..errors import ConfigError

        try:
            return tuple(load_config(self.data_dir).not_connected)
        except (ConfigError, OSError):
            return ()

    def outside_lines(self):
        """``{line: outside-line digit}`` of ``config.json`` as saved now (read without the
        cipher: no sealed pattern is needed); {} when it cannot be read, and a number
        dialled is then taken as dialled."""
        from ..config import load_config
        from ..errors import ConfigError

        try:
            return load_config(self.data_dir).policy.rules.outside_lines()
        except (ConfigError, OSError):
            return {}
