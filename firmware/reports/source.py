"""Where a box's reports come from: its data directory, its country and time zone."""

import os
import sqlite3
import time

from .. import startfail
from ..signing import run_dir
from ..uptime import last_alive_us
from .compute import build_report
from .period import parse_period


def default_tz(config, data_dir=None):
    """The box's time zone, in which every page shows its times (the site settings', in
    ``data_dir``), else the zone of the configured business hours, else UTC."""
    from ..datadir import site_settings

    site = site_settings(data_dir) if data_dir is not None else None
    if site and isinstance(site.get("time_zone"), str) and site["time_zone"]:
        return site["time_zone"]
    hours = config.policy.rules.hours
    return hours.timezone if hours is not None else "UTC"


class ReportSource:
    """Build reports for the box whose data is in ``data_dir``.

    :param country: how numbers compare ("uk", "us")
    :param tz: the time zone of days and hours (IANA name), or a callable giving it now
        (a box's zone changes when its site settings are saved)
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
        tz="UTC",
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
            **how,
        )

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
