"""Scheduled reports: each daily / weekly / monthly period mailed once, caught up after a stop.

On the box's clock, a period is due once it has ended (a day at midnight, a
week on Monday, a month on the 1st, in the reports' time zone). The state
file ``schedules.json`` keeps, per schedule, the first day of the last period
queued. When the box was off, every period missed since is queued in order,
at most the latest :data:`MAX_CATCH_UP`: older ones are not mailed, and one
mail says which they were and where to make them (a box off for months must not
bury its owner in reports); a schedule new to the box starts with the last
complete period. A period wholly before the box was first started is not mailed:
nothing could be recorded in it. Each mail carries the key ``report:SCHEDULE:FROM``,
which the queue accepts once, so a period is never mailed twice even if the
state file is lost.

A report mail waiting in the queue (the mail server unreachable) holds the call log
as it was when it was made. When a caller's details are erased on request,
:func:`withdraw_reports` replaces each report still waiting whose days include the
call's with a notice that it was withdrawn and why, audited (``mail_withdrawn``); one that
the web UI was handing to the server then is audited once the server took it
(``mail_already_sent``: it had gone) or not (``mail_withdrawn``), by
:func:`withdrawal_auditor`.
"""

import datetime as dt
import json
import logging
import os

from firmware.storage.audit import read_head, with_address
from firmware.storage.fsutil import atomic_write

from ..datadir import site_line_names, site_settings
from ..reports.formats import render, report_title
from ..reports.period import Period, named_period
from .compose import (
    expired_report_message,
    missed_reports_message,
    report_message,
    stale_report_message,
    withdrawn_report_message,
)

log = logging.getLogger(__name__)

MAX_CATCH_UP = 31
# A scheduled report's key in the queue: ``report:SCHEDULE:FIRST DAY``.
REPORT_KEY = "report:"
# A report that waited longer than this for the mail server is not sent: a notice goes instead.
MAX_REPORT_WAIT_DAYS = 7


def next_period(every, period):
    """The period after ``period`` of the same kind."""
    start = period.last + dt.timedelta(days=1)
    if every == "daily":
        end = start
    elif every == "weekly":
        end = start + dt.timedelta(days=6)
    else:
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        end = following - dt.timedelta(days=1)
    return Period(start, end, period.tz)


class ReportScheduler:
    """Queue the scheduled reports that are due: each the whole box's report, of every
    line (its callback list and every account's playbacks and exports too), as a schedule
    names no lines and its addresses are tied to no account.

    :param source: a :class:`~firmware.reports.source.ReportSource`
    :param queue: a :class:`~firmware.mail.queue.MailQueue`
    :param settings: ``() -> MailSettings``
    :param wall_us: ``() -> µs``, the box's clock
    :param state_path: the state file
    """

    def __init__(self, source, queue, settings, wall_us, state_path, box_name="Linekeeper"):
        self.source = source
        self.queue = queue
        self.settings = settings
        self.wall_us = wall_us
        self.state_path = os.fspath(state_path)
        self.box_name = box_name

    def _state(self):
        try:
            with open(self.state_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def today(self):
        now = dt.datetime.fromtimestamp(self.wall_us() / 1e6, Period(None, None, self.source.tz).zone)
        return now.date()

    def due(self, schedule):
        """The periods of ``schedule`` not yet queued, oldest first: ``(missed, due)``, where
        ``due`` are the latest :data:`MAX_CATCH_UP` and ``missed`` those before them."""
        latest = named_period(schedule.every, self.today(), self.source.tz)
        last = self._state().get(schedule.id)
        if last is None:
            return [], [latest]
        periods = []
        first = dt.date.fromisoformat(last)
        day_before = first - dt.timedelta(days=1)
        p = next_period(schedule.every, Period(day_before, day_before, self.source.tz))
        while True:
            p = next_period(schedule.every, p)
            if p.first > latest.first:
                break
            periods.append(p)
        return periods[:-MAX_CATCH_UP], periods[-MAX_CATCH_UP:]

    def _done(self, schedule, period):
        state = self._state()
        state[schedule.id] = period.first.isoformat()
        atomic_write(self.state_path, json.dumps(state).encode("utf-8"), mode=0o600)

    def _say_missed(self, settings, schedule, missed):
        first, last = missed[0], missed[-1]
        msg = missed_reports_message(
            settings,
            schedule.to,
            schedule.every,
            first.first,
            last.last,
            len(missed),
            self.box_name() if callable(self.box_name) else self.box_name,
            int(self.wall_us()),
        )
        self.queue.enqueue(msg, key="report-missed:%s:%s" % (schedule.id, first.first))
        self._done(schedule, last)

    def run(self):
        """Queue every due report; returns the ``(schedule id, first day)`` queued."""
        settings = self.settings()
        queued = []
        for schedule in settings.schedules:
            missed, due = self.due(schedule)
            if missed:
                self._say_missed(settings, schedule, missed)
            for period in due:
                # The whole box's, of every line, every playback and export counted: a
                # schedule names no lines and its addresses no account (docs/reports.md).
                report = self.source.report(period)
                if report["running"]["before_first_start"]:
                    # Nothing could be recorded in it: a report of nothing, in the owner's
                    # inbox on the day the box is set up. Done all the same, never mailed.
                    log.info(
                        "%s report of %s not mailed: before the box was first started",
                        schedule.id,
                        period.first,
                    )
                    self._done(schedule, period)
                    continue
                site = site_settings(self.source.data_dir) or {}
                # Each line named as the Reports page and its download name it, "Line 2 (Office)".
                names = site_line_names(site)
                title = report_title(site.get("organisation"), schedule.every)
                data = render(report, schedule.fmt, title, line_names=names)
                msg = report_message(
                    settings,
                    schedule.to,
                    report,
                    data,
                    schedule.fmt,
                    self.box_name() if callable(self.box_name) else self.box_name,
                    int(self.wall_us()),
                    schedule.every,
                    read_head(os.path.join(self.source.data_dir, "audit.head")),
                    data_dir=os.path.abspath(self.source.data_dir),
                    line_names=names,
                )
                self.queue.enqueue(
                    msg,
                    key="%s%s:%s" % (REPORT_KEY, schedule.id, period.first),
                    period=(period.first, period.last),
                )
                self._done(schedule, period)
                queued.append((schedule.id, period.first.isoformat()))
        return queued


def withdraw_reports(queue, audit, call_id, started_us, actor, wall_us, address=None):
    """Withdraw the scheduled report mails waiting in ``queue`` that may name the caller of
    call ``call_id`` (started at ``started_us``), whose details were just erased on request:
    each is replaced by a notice that it was withdrawn and why (the notice goes in its
    place, :meth:`~firmware.mail.queue.MailQueue.withdraw`), and audited as
    ``mail_withdrawn`` on ``mail:ID`` (by ``actor``, with ``address`` when asked from a
    page): the erasure's call and the report's key and days, never the number. A report
    the other process was sending as the withdrawal was made (``"sending"`` in the item
    returned) may have gone: it is audited once that try's outcome is known
    (:func:`withdrawal_auditor`, in the process that sent it).

    A report is withdrawn when its days, one more each side (a day is the reports' zone's,
    the call's start here UTC's), include the call's start; a report mail queued before
    reports said their days (no ``period``), whatever its days. A report made after the
    erasure holds the erased marker, not the number, and is not touched. Returns the
    withdrawn items.
    """
    matches = _reports_of_days({dt.datetime.fromtimestamp(started_us / 1e6, dt.UTC).date()})
    now = int(wall_us())
    withdrawal = {"actor": actor, "call": call_id, "address": address}
    withdrawn = queue.withdraw(
        matches, lambda msg, item: withdrawn_report_message(msg, item.get("period"), now), withdrawal
    )
    for item in withdrawn:
        if item.get("sending"):
            log.info(
                "mail %s: being sent as call %d's details were erased: audited once it is known",
                item["id"],
                call_id,
            )
            continue
        _audit_withdrawal(audit, "mail_withdrawn", item, withdrawal, now)
    return withdrawn


def withdraw_expired_reports(queue, audit, started_us, details_days, wall_us):
    """Withdraw the scheduled report mails waiting in ``queue`` that may name a caller whose
    details the retention sweep just removed past ``details_days`` (``call_details_days``),
    of the calls started at ``started_us`` (wall µs, a set), as :func:`withdraw_reports`
    withdraws them after an erasure: each replaced by a notice saying why
    (:func:`~firmware.mail.compose.expired_report_message`) and audited as
    ``mail_withdrawn`` by ``system``, with ``request`` ``retention`` and the period, never
    a number. A report waits only while the mail server refuses it, but a monthly one may
    hold a call a month old, and would go out with details past their period. Returns the
    withdrawn items."""
    days = {dt.datetime.fromtimestamp(t / 1e6, dt.UTC).date() for t in started_us}
    if not days:
        return []
    matches = _reports_of_days(days)
    now = int(wall_us())
    withdrawal = {"actor": "system", "request": "retention", "details_days": details_days}
    withdrawn = queue.withdraw(
        matches,
        lambda msg, item: expired_report_message(msg, item.get("period"), details_days, now),
        withdrawal,
    )
    for item in withdrawn:
        if item.get("sending"):
            log.info(
                "mail %s: being sent as callers' details in it were removed: audited once it is known",
                item["id"],
            )
            continue
        _audit_withdrawal(audit, "mail_withdrawn", item, withdrawal, now)
    return withdrawn


def withdrawal_auditor(audit, wall_us):
    """For :attr:`~firmware.mail.queue.MailQueue.on_withdrawal_settled`: a report withdrawn
    (:func:`withdraw_reports`) while it was being sent is audited once the try has ended,
    by whoever erased: ``mail_already_sent`` when the server took it (it had gone before
    the withdrawal), else ``mail_withdrawn`` (its notice goes instead)."""

    def settled(item, withdrawal, sent):
        _audit_withdrawal(
            audit, "mail_already_sent" if sent else "mail_withdrawn", item, withdrawal, int(wall_us())
        )

    return settled


def _reports_of_days(days):
    """``(item) -> bool``: whether a queued mail is a scheduled report that may name a call
    started on one of ``days`` (UTC dates; a day's margin each side, for the report's zone),
    or one whose period is not known."""
    one = dt.timedelta(days=1)

    def matches(item):
        if not (item.get("key") or "").startswith(REPORT_KEY):
            return False
        if not item.get("period"):
            return True
        first, last = (dt.date.fromisoformat(d) for d in item["period"])
        return any(first - one <= day <= last + one for day in days)

    return matches


def _audit_withdrawal(audit, action, item, withdrawal, now):
    audit.append(
        withdrawal["actor"],
        action,
        "mail:%s" % item["id"],
        with_address(
            {
                # An erasure's call, or the retention period that removed callers' details.
                **(
                    {"request": "retention", "details_days": withdrawal.get("details_days")}
                    if withdrawal.get("request") == "retention"
                    else {"request": "erasure", "call": withdrawal["call"]}
                ),
                "key": item["key"],
                "period": item.get("period"),
            },
            withdrawal.get("address"),
        ),
        now,
    )


def withdraw_stale_reports(queue, wall_us, days=MAX_REPORT_WAIT_DAYS):
    """Replace each scheduled report that has waited in ``queue`` more than ``days`` days
    (since it was queued, on the box's clock ``wall_us``) with a notice that it was not
    sent, and why (:func:`~firmware.mail.compose.stale_report_message`): a report a week
    late is out of date, and read as a recent one. Run by the process that delivers, before
    each round. Returns the items replaced (each logged)."""
    now = int(wall_us())
    limit = now - days * 86_400_000_000

    def matches(item):
        return (item.get("key") or "").startswith(REPORT_KEY) and item["created_us"] < limit

    stale = queue.withdraw(
        matches, lambda report, item: stale_report_message(report, item.get("period"), now, days)
    )
    for item in stale:
        log.warning(
            "mail: the report %s waited more than %d days and is not sent (a notice goes)", item["key"], days
        )
    return stale
