"""Card health: bytes written a day and the card's projected life, from the kernel's
counters (a fake /sys and /proc here), with an alarm under a year."""

import os

import pytest

from firmware.cardhealth import ALARM_DAYS, card_health

GB = 1_000_000_000


def fake_system(tmp_path, *, written_bytes, uptime_s, card_bytes, partition=True, emmc=None):
    """A /sys and /proc where ``tmp_path/data``'s device wrote ``written_bytes`` since boot."""
    data = tmp_path / "data"
    data.mkdir()
    dev = os.stat(data).st_dev
    sys_root, proc_root = tmp_path / "sys", tmp_path / "proc"
    card = sys_root / "devices" / "mmcblk0"
    device = card / "mmcblk0p2" if partition else card
    device.mkdir(parents=True)
    fields = [0] * 11
    fields[6] = written_bytes // 512
    (device / "stat").write_text(" ".join(map(str, fields)) + "\n")
    if partition:
        (device / "partition").write_text("2\n")
    (card / "size").write_text("%d\n" % (card_bytes // 512))
    if emmc:
        (card / "device").mkdir()
        (card / "device" / "life_time").write_text(emmc[0] + "\n")
        (card / "device" / "pre_eol_info").write_text(emmc[1] + "\n")
    (sys_root / "dev" / "block").mkdir(parents=True)
    os.symlink(device, sys_root / "dev" / "block" / ("%d:%d" % (os.major(dev), os.minor(dev))))
    proc_root.mkdir()
    (proc_root / "uptime").write_text("%.2f 100.00\n" % uptime_s)
    return str(data), str(sys_root), str(proc_root)


def test_bytes_a_day_and_life_of_the_whole_card(tmp_path):
    # 2 GB in half a day on a 32 GB card (its partition is what is counted).
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=2 * GB, uptime_s=43_200, card_bytes=32 * GB
    )
    health = card_health(data, sys_root=sys_root, proc_root=proc_root)
    assert health["bytes_written_per_day"] == 4 * GB
    assert health["card_size_bytes"] == 32 * GB
    assert health["erase_cycles_assumed"] == 1000
    assert health["projected_life_days"] == 32 * 1000 // 4
    assert health["alarm"] is None and health["own_wear"] is None


def test_under_a_year_of_life_is_an_alarm_that_says_why(tmp_path):
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=40 * GB, uptime_s=86_400, card_bytes=8 * GB, partition=False
    )
    health = card_health(data, sys_root=sys_root, proc_root=proc_root)
    assert health["projected_life_days"] == 200 < ALARM_DAYS
    assert "200 days" in health["alarm"] and "40 GB written a day" in health["alarm"]
    assert "1000 erase cycles" in health["alarm"]


def test_no_alarm_in_the_first_hours_after_a_start(tmp_path):
    """Two minutes after a boot its own 40 MB read as 29 GB a day: an alarm that a box
    restarting after a power cut raised, and cleared a day later."""
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=40_000_000, uptime_s=120, card_bytes=8 * GB, partition=False
    )
    health = card_health(data, sys_root=sys_root, proc_root=proc_root)
    assert health["projected_life_days"] < ALARM_DAYS and health["measured_s"] == 120
    assert health["alarm"] is None


def test_an_emmc_card_reports_its_own_wear(tmp_path):
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=GB, uptime_s=86_400, card_bytes=16 * GB, emmc=("0x02 0x03", "0x01")
    )
    wear = card_health(data, sys_root=sys_root, proc_root=proc_root)["own_wear"]
    assert wear == {"life_used_percent": [20, 30], "pre_eol": "normal"}


@pytest.mark.parametrize(
    "emmc, said",
    [
        (("0x09 0x03", "0x01"), "90% / 30% of its life used"),
        (("0x02 0x03", "0x02"), "end of life: warning (80% of reserved blocks used)"),
        (("0x0a 0x03", "0x03"), "100% / 30% of its life used; end of life: urgent"),
    ],
)
def test_a_card_that_says_it_is_worn_out_is_an_alarm(tmp_path, emmc, said):
    """The alarm was of a new card's projected life only: an eMMC card reporting 90% of its
    life used, writing little, showed its wear in the panel's small print and no alarm."""
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=GB, uptime_s=86_400, card_bytes=16 * GB, emmc=emmc
    )
    health = card_health(data, sys_root=sys_root, proc_root=proc_root)
    assert health["projected_life_days"] > ALARM_DAYS
    assert health["alarm"].startswith("the card reports that it is wearing out (" + said)
    assert "replace it soon" in health["alarm"]


@pytest.mark.parametrize("what", ["no sysfs", "nothing written"])
def test_unknown_or_idle(tmp_path, what):
    if what == "no sysfs":
        (tmp_path / "data").mkdir()
        assert card_health(str(tmp_path / "data"), sys_root=str(tmp_path / "none")) is None
        return
    data, sys_root, proc_root = fake_system(tmp_path, written_bytes=0, uptime_s=600, card_bytes=8 * GB)
    health = card_health(data, sys_root=sys_root, proc_root=proc_root)
    assert health["projected_life_days"] is None and health["alarm"] is None


def test_the_card_wear_alarm_is_in_the_alarm_history_until_the_wear_ends(tmp_path):
    """The card's alarm was only in the dashboard's Health list: never in the alarm history,
    so never e-mailed, on the banner, nor on the Alarms page. The round's check raises it
    there (audited), once; a restart does not clear it (its rate is not judged yet); a card
    writing less, judged, clears it."""
    from firmware.alarmlog import AlarmLog
    from firmware.cardhealth import MIN_UPTIME_S, CardWearCheck
    from firmware.storage.audit import AuditLog

    class Clock:
        def wall_us(self):
            return 1_780_000_000 * 10**6

    audit = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head")
    alarms = AlarmLog(tmp_path / "alarms.db", Clock(), audit)
    mailed = []
    alarms.on_raised.append(mailed.append)
    said = "the SD card is projected to wear out in 200 days"
    wear = {"alarm": said, "measured_s": 86_400}
    check = CardWearCheck(alarms, str(tmp_path), card=lambda data_dir: None if wear is None else dict(wear))
    check()
    check()  # still wearing: the same occurrence, mailed once
    assert [(r["kind"], r["message"]) for r in alarms.banner()] == [("card_wear", said)]
    assert [r["kind"] for r in mailed] == ["card_wear"]
    wear = {"alarm": None, "measured_s": MIN_UPTIME_S - 1}  # just restarted: too soon to say
    check()
    wear = None  # not measurable: nothing known
    check()
    assert alarms.open_box_alarms() == {"card_wear"}
    wear = {"alarm": None, "measured_s": MIN_UPTIME_S}
    check()
    assert alarms.open_box_alarms() == set()
    events = [e.details["event"] for e in audit.entries(action="alarm", newest_first=False)]
    assert events == ["raised", "cleared"]
    alarms.close()
    audit.close()


def _trail_begun(data, days_ago, now_s):
    """An audit trail in ``data`` whose first entry is ``days_ago`` days before ``now_s``."""
    from firmware.storage.audit import AuditLog

    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    audit.append("installer", "init", None, {}, wall_us=int((now_s - days_ago * 86_400) * 10**6))
    audit.append("installer", "login", None, {}, wall_us=int(now_s * 10**6))
    audit.close()


NOW_S = 1_780_000_000  # 2026-05-28


def test_the_life_left_counts_the_days_the_card_has_been_in_service(tmp_path):
    """After a year the panel still said what a new card lasts, and the alarm waited for
    a new card's life to fall under a year: a card 2 years into its 2.7 got no warning."""
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=3 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    _trail_begun(data, 730, NOW_S)
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["projected_life_days"] == 8000 // 3 == 2666 > ALARM_DAYS
    assert health["in_service_days"] == 730 and health["life_left_days"] == 2666 - 730 == 1936
    _trail_begun(data, 0, NOW_S)  # later entries change nothing: the first is the card's start
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S + 1700 * 86_400)
    assert health["in_service_days"] == 2430 and health["life_left_days"] == 236 < ALARM_DAYS
    assert health["replace_by"] == "2031-09-15"
    assert health["alarm"].startswith(
        "the SD card is projected to wear out in 236 days: it has been in service 2430 days"
    )


def test_a_card_past_its_life_says_replace_it_now(tmp_path):
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=16 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    _trail_begun(data, 800, NOW_S)
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["life_left_days"] == -300 and health["replace_by"] == "2026-05-28"
    assert "in service 800 days, past the 500 a new card lasts" in health["alarm"]
    assert "replace it now" in health["alarm"]


def test_the_replace_by_date_is_the_boxs_date(tmp_path):
    """At half past midnight in London (23:30 UTC the day before) a card past its life is
    to be replaced by today, the 29th, as every other date on the pages says it: the date
    was UTC's, the 28th, a day behind the box's calendar."""
    from firmware.localtime import LocalTime

    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=16 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    now_s = 1_780_011_000  # 2026-05-28T23:30Z: 00:30 BST on the 29th
    _trail_begun(data, 800, now_s)
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=now_s)
    assert health["life_left_days"] <= 0 and health["replace_by"] == "2026-05-29"  # Europe/London
    new_york = card_health(
        data, sys_root=sys_root, proc_root=proc_root, now_s=now_s, local_time=LocalTime("America/New_York")
    )
    assert new_york["replace_by"] == "2026-05-28"


@pytest.mark.parametrize("days_ago", [20_000, -3])
def test_a_trail_dated_by_a_clock_not_set_is_not_the_cards_age(tmp_path, days_ago):
    """A Pi's first boot dated 1970, or a clock set back since: no false alarm of a card
    worn out for fifty years; the age is counted from the first entry dated by a clock
    set (here the one written now: a new card's life)."""
    data, sys_root, proc_root = fake_system(tmp_path, written_bytes=GB, uptime_s=86_400, card_bytes=8 * GB)
    _trail_begun(data, days_ago, NOW_S)
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["in_service_days"] == 0 and health["life_left_days"] == 8000
    assert health["alarm"] is None


def test_a_setup_dated_before_its_clock_was_set_counts_from_the_first_entry_dated_after(tmp_path):
    """A Pi with no clock set up before the time server answered: its first entries are
    dated 1970, the later ones as they were. The card's age was never known (the first
    entry not taken), and a card past its life got no warning at all; it is counted from
    the first entry dated by a clock set."""
    from firmware.storage.audit import AuditLog

    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=16 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    audit = AuditLog(os.path.join(data, "audit.db"), os.path.join(data, "audit.head"))
    audit.append("installer", "init", None, {}, wall_us=60 * 10**6)  # 1970-01-01T00:01Z
    for days_ago in (800, 10, 0):
        audit.append("installer", "login", None, {}, wall_us=int((NOW_S - days_ago * 86_400) * 10**6))
    audit.close()
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["in_service_days"] == 800 and health["life_left_days"] == -300
    assert "in service 800 days, past the 500 a new card lasts" in health["alarm"]


def test_a_new_card_copied_from_a_worn_one_counts_from_its_own_making(tmp_path):
    """A technician moved a box whose card was past its life onto a new card (a copy of the
    whole card, docs/recovery.md "Moving to a new card"): the new card's days in service
    were still counted from the box's setup on the old one, so it said "replace it now"
    for ever, an alarm nobody could clear. An SD or eMMC card gives the month it was made
    (``device/date``): a card made after the box's setup cannot have served longer."""
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=16 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    _trail_begun(data, 800, NOW_S)  # set up 800 days ago, on the old card
    device = os.path.join(sys_root, "devices", "mmcblk0", "device")
    os.makedirs(device)
    with open(os.path.join(device, "date"), "w") as f:
        f.write("04/2026\n")  # the new card was made in April 2026: 57 days before NOW_S
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["in_service_days"] == 57 and health["life_left_days"] == 500 - 57
    assert "replace it now" not in (health["alarm"] or "")
    with open(os.path.join(device, "date"), "w") as f:
        f.write("01/2020\n")  # a card made before the setup: the setup is its start
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["in_service_days"] == 800


@pytest.mark.parametrize("said", ["", "13/2026", "00/0000", "garbage", "04/2999"])
def test_a_card_date_that_does_not_read_as_a_month_is_not_taken(tmp_path, said):
    data, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=16 * GB, uptime_s=86_400, card_bytes=8 * GB
    )
    _trail_begun(data, 800, NOW_S)
    device = os.path.join(sys_root, "devices", "mmcblk0", "device")
    os.makedirs(device)
    with open(os.path.join(device, "date"), "w") as f:
        f.write(said + "\n")
    health = card_health(data, sys_root=sys_root, proc_root=proc_root, now_s=NOW_S)
    assert health["in_service_days"] == 800


def test_the_card_wear_advice_says_how_to_move_to_a_new_card():
    """The alarm's "What to do" said to replace the card "before it fails, and the recordings
    on it with it", which read as if a new card began empty: a technician found no word on
    moving the box onto a new card, only a dead card's (a new box, every recording gone).
    It points to the procedure, which the docs have."""
    from firmware.words import alarm_advice

    advice = alarm_advice("card_wear")
    assert "copy of the whole card" in advice and '"Moving to a new card"' in advice, advice
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "recovery.md")) as f:
        assert "\n## Moving to a new card\n" in f.read()
