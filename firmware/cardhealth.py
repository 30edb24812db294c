"""How hard the box is wearing out its SD card, and how long the card will last at that.

The kernel counts the sectors written to each block device since boot
(``/sys/dev/block/MAJ:MIN/stat``, the 7th field; sectors of 512 bytes). The
device holding the data directory, divided by the time since boot
(``/proc/uptime``), gives the bytes written to the card per day at the box's
current traffic. Flash wears out by erase cycles: a card of ``size`` bytes
takes about ``size * ERASE_CYCLES`` bytes of writes in its life, so

    projected life (days) = size * ERASE_CYCLES / bytes written per day

ERASE_CYCLES is an assumption, stated wherever the figure is shown: 1000
program/erase cycles, what a consumer TLC card is rated for (industrial pSLC
cards are rated for 20 000 or more, so this errs on the side of an early
warning). The card's own write amplification is not known from outside and is
not counted. Where the card reports its own wear (eMMC: ``life_time`` and
``pre_eol_info`` of the MMC device), that is given too.

A card in service for some time has used part of that life already: the box was set
up on it when its audit trail began (the trail's first entry), so, at the same rate all
along, ``life left = projected life - days in service`` (:func:`_in_service_days`; an
entry dated before :data:`FIRST_PLAUSIBLE_S`, by a clock not set yet, or after now is not
taken: the first entry dated between counts, and with none the life left is the new
card's). A card made after that entry
(the box moved onto a new card, a copy of the old one) counts from the month it was
made (:func:`_made_days`, the card's CID date), not the old card's days; one that does
not say counts them, and so errs early; a card used elsewhere before this
box is not known to be older than its trail.

Under a year of life left, :func:`card_health` adds an alarm, once the box
has been up for :data:`MIN_UPTIME_S`: just after a boot (a restart after a power
cut) the start-up's own writes over a few minutes of uptime read as tens of GB a
day, a false alarm that cleared a day later. The life is a new card's: what the
card has already used is not known from outside (an eMMC card says, below), so a
card that says it is near its end (:data:`WORN_PERCENT` of its life used, or its
reserved blocks at a warning) is an alarm too, however little is written.

:class:`CardWearCheck` (in the box's periodic round, as the date checks) puts that
alarm in the alarm history as ``card_wear``, so it is e-mailed, on every page's
banner and on the Alarms page, and clears it when the card no longer wears too
fast (judged only once the box has been up :data:`MIN_UPTIME_S`: a restart does
not clear it, to raise it again six hours later and mail it again).
"""

import datetime as dt
import os
import sqlite3
import time

from .datadir import connect_readonly, site_local_time
from .errors import StorageError

SECTOR_BYTES = 512
ERASE_CYCLES = 1000
ALARM_DAYS = 365
MIN_UPTIME_S = 6 * 3600  # the rate means little before (the boot's own writes)
DAY_S = 86_400
# No box ran this firmware before 2024: an audit trail begun earlier was dated by a clock
# never set (a Pi's first boot), not the day its card went into service.
FIRST_PLAUSIBLE_S = 1_704_067_200  # 2024-01-01 UTC
REPLACE_BY_MAX_DAYS = 20 * 365  # a date further off than this is not said (a card idle)
WORN_PERCENT = 90  # an eMMC's life used (its upper bound, in steps of 10%) that is an alarm
EMMC_EOL = {
    1: "normal",
    2: "warning (80% of reserved blocks used)",
    3: "urgent (90% of reserved blocks used)",
}


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _device_dir(data_dir, sys_root):
    """The sysfs directory of the block device holding ``data_dir``, or None (tmpfs,
    overlay, a network file system: nothing the kernel counts as a disk)."""
    try:
        dev = os.stat(data_dir).st_dev
    except OSError:
        return None
    path = os.path.join(sys_root, "dev", "block", "%d:%d" % (os.major(dev), os.minor(dev)))
    return os.path.realpath(path) if os.path.exists(os.path.join(path, "stat")) else None


def _card_dir(device_dir):
    """The whole card: a partition's parent device."""
    if os.path.exists(os.path.join(device_dir, "partition")):
        return os.path.dirname(device_dir)
    return device_dir


def _own_wear(card_dir):
    """What an eMMC card says of its own wear, or None (SD cards do not say)."""
    life = _read(os.path.join(card_dir, "device", "life_time"))
    eol = _read(os.path.join(card_dir, "device", "pre_eol_info"))
    if life is None and eol is None:
        return None
    out = {}
    if life:
        # Two estimates (type A and B cells), each in steps of 10% of the life used.
        steps = [int(x, 16) for x in life.split()]
        out["life_used_percent"] = [min(100, 10 * s) for s in steps if s]
    if eol:
        out["pre_eol"] = EMMC_EOL.get(int(eol, 16), "unknown (%s)" % eol)
    return out


def _in_service_days(data_dir, now_s):
    """Whole days since the box was set up on this card (its audit trail's first entry
    dated by a clock set: from :data:`FIRST_PLAUSIBLE_S` to ``now_s``, those before by a
    clock not set yet, as on a Pi's first boot before its time server answered, those
    after by one set back since), or None when that is not known: no trail readable, or
    no entry so dated. Read through the trail's index of times (``audit_wall``)."""
    path = os.path.join(data_dir, "audit.db")
    if not os.path.exists(path):
        return None
    try:
        db = connect_readonly(path)
        try:
            row = db.execute(
                "SELECT min(wall_us) FROM audit WHERE wall_us >= ? AND wall_us <= ?",
                (FIRST_PLAUSIBLE_S * 1_000_000, int(now_s * 1_000_000)),
            ).fetchone()
        finally:
            db.close()
    except (StorageError, sqlite3.Error):
        return None
    if row is None or row[0] is None:
        return None
    return int((now_s - row[0] / 1e6) // DAY_S)


def _made_days(card_dir, now_s):
    """Whole days since the start of the month the card was made (its CID's date, which
    the kernel gives SD and eMMC cards as ``device/date``, ``MM/YYYY``), or None: not said,
    not a month, or after ``now_s``. The first of the month errs early, never late."""
    said = _read(os.path.join(card_dir, "device", "date")) or ""
    month, _, year = said.partition("/")
    try:
        made = dt.datetime(int(year), int(month), 1, tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None
    if made > now_s:
        return None
    return int((now_s - made) // DAY_S)


def card_health(
    data_dir, *, sys_root="/sys", proc_root="/proc", erase_cycles=ERASE_CYCLES, now_s=None, local_time=None
):
    """The card's wear as a dict, or None where the data is not on a block device.

    Keys: ``bytes_written_per_day``, ``card_size_bytes``, ``erase_cycles_assumed``,
    ``projected_life_days`` (a new card's; None before anything was written),
    ``in_service_days`` (since the box was set up on the card, or None: not known),
    ``life_left_days`` (the projected life less the days in service; the projected life
    when those are not known; may be negative), ``replace_by`` (the date, ISO, that life
    left runs out, on the box's calendar, or None: not known, or over
    :data:`REPLACE_BY_MAX_DAYS` away),
    ``measured_s`` (the uptime the rate is over), ``own_wear`` (or None), ``alarm`` (text,
    or None).

    :param now_s: the time now (seconds since the epoch; the clock's by default)
    :param local_time: the :class:`~firmware.localtime.LocalTime` whose date ``replace_by``
        is (the box's, from its site settings, by default: the pages' dates)
    """
    device_dir = _device_dir(data_dir, sys_root)
    if device_dir is None:
        return None
    stat = _read(os.path.join(device_dir, "stat"))
    uptime = _read(os.path.join(proc_root, "uptime"))
    card_dir = _card_dir(device_dir)
    size = _read(os.path.join(card_dir, "size"))
    if not stat or not uptime or not size:
        return None
    written = int(stat.split()[6]) * SECTOR_BYTES
    up_s = max(1.0, float(uptime.split()[0]))
    per_day = written * DAY_S / up_s
    size_bytes = int(size) * SECTOR_BYTES
    life_days = size_bytes * erase_cycles / per_day if per_day > 0 else None
    now_s = time.time() if now_s is None else now_s
    in_service = _in_service_days(data_dir, now_s)
    made = _made_days(card_dir, now_s)
    if in_service is not None and made is not None:
        # A card made after the box's setup is a newer one (the box moved onto it, a
        # copy of the whole card): it has not served the days before it was made.
        in_service = min(in_service, made)
    left_days = None if life_days is None else life_days - (in_service or 0)
    alarms = []
    if left_days is not None and left_days < ALARM_DAYS and up_s >= MIN_UPTIME_S:
        if in_service is None:
            alarms.append(
                "the SD card is projected to wear out in %d days at the current %s written a "
                "day (assuming %d erase cycles): plan to replace it, or use a larger or "
                "industrial card" % (life_days, _size(per_day), erase_cycles)
            )
        elif left_days <= 0:
            alarms.append(
                "the SD card has been in service %d days, past the %d a new card lasts at the "
                "current %s written a day (assuming %d erase cycles): replace it now, before it "
                "fails and recordings with it" % (in_service, life_days, _size(per_day), erase_cycles)
            )
        else:
            alarms.append(
                "the SD card is projected to wear out in %d days: it has been in service %d "
                "days of the %d a new card lasts at the current %s written a day (assuming %d "
                "erase cycles): plan to replace it, or use a larger or industrial card"
                % (left_days, in_service, life_days, _size(per_day), erase_cycles)
            )
    own_wear = _own_wear(card_dir)
    worn = _worn(own_wear)
    if worn:
        alarms.append(worn)
    return {
        "bytes_written_per_day": int(per_day),
        "card_size_bytes": size_bytes,
        "erase_cycles_assumed": erase_cycles,
        "projected_life_days": None if life_days is None else int(life_days),
        "in_service_days": in_service,
        "life_left_days": None if left_days is None else int(left_days),
        "replace_by": _replace_by(now_s, left_days, local_time, data_dir),
        "measured_s": int(up_s),
        "own_wear": own_wear,
        "alarm": "; ".join(alarms) or None,
    }


def _replace_by(now_s, left_days, local_time, data_dir):
    """The date (ISO, in ``local_time``, else the box's zone: the day the pages say it is)
    ``left_days`` from ``now_s`` (today when none are left), or None: no life known, or more
    than :data:`REPLACE_BY_MAX_DAYS` left (nothing to plan for)."""
    if left_days is None or left_days > REPLACE_BY_MAX_DAYS:
        return None
    if local_time is None:
        local_time = site_local_time(data_dir)
    today = local_time.local(int(now_s * 1_000_000)).date()
    return (today + dt.timedelta(days=max(0, int(left_days)))).isoformat()


def _worn(own_wear):
    """The alarm's words when the card itself says it is near the end of its life (eMMC:
    :data:`WORN_PERCENT` of its life used, or its reserved blocks at a warning), or None.
    The projected life is a new card's, so a worn card writing little raised nothing."""
    if not own_wear:
        return None
    said = []
    used = own_wear.get("life_used_percent") or []
    if any(p >= WORN_PERCENT for p in used):
        said.append("%s%% of its life used" % "% / ".join(map(str, used)))
    if own_wear.get("pre_eol") in (EMMC_EOL[2], EMMC_EOL[3]):
        said.append("end of life: %s" % own_wear["pre_eol"])
    if not said:
        return None
    return (
        "the card reports that it is wearing out (%s): replace it soon, before it fails and "
        "recordings with it" % "; ".join(said)
    )


class CardWearCheck:
    """Raise ``card_wear`` on ``alarm_log`` while :func:`card_health` of ``data_dir`` says
    the card wears out (its ``alarm``, the occurrence's message), and clear it when it no
    longer does. Nothing changes where the wear is not measurable (no block device), nor
    while the rate is too new to judge (a box up under :data:`MIN_UPTIME_S`: no alarm of
    the rate is raised then, so none is cleared either).

    :param card: ``(data_dir) -> dict or None``, :func:`card_health` by default (tests)
    """

    def __init__(self, alarm_log, data_dir, card=None):
        self.alarm_log = alarm_log
        self.data_dir = data_dir
        self.card = card or card_health

    def __call__(self):
        wear = self.card(self.data_dir)
        if wear is None:
            return
        if wear["alarm"]:
            self.alarm_log.set("card_wear", True, message=wear["alarm"])
        elif wear["measured_s"] >= MIN_UPTIME_S:
            self.alarm_log.set("card_wear", False)


def _size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return "%.0f %s" % (n, unit)
        n /= 1000
    return "%.1f TB" % n
