"""The Pi's driver for the supervisor MCU, over the simulated I2C bus."""

import pytest

from board.hat import load_hat, loads_hat
from board.mcu.link import McuError, McuLink
from board.mcu.lkmcu import regmap
from board.mcu.sim import SimMcu
from firmware.clock import SimClock
from telephony.errors import HardwareError, HatError


@pytest.fixture
def clock():
    return SimClock()


def test_open_reads_the_header(clock):
    mcu = SimMcu(clock)
    info = McuLink(mcu.bus).open()
    assert info.regmap_version == regmap.VERSION
    assert info.firmware == "1.0.0"


def test_a_register_map_mismatch_is_a_clear_error(clock):
    mcu = SimMcu(clock)
    mcu.mem[regmap.REGMAP_VER] = regmap.VERSION + 1
    with pytest.raises(
        McuError,
        match=r"register map version 2; this firmware speaks "
        r"version 1: update the MCU firmware",
    ):
        McuLink(mcu.bus).open()


def test_not_our_device_and_no_answer_are_hardware_errors(clock):
    mcu = SimMcu(clock)
    mcu.mem[0] = ord("X")
    with pytest.raises(McuError, match="not a Linekeeper supervisor MCU"):
        McuLink(mcu.bus).open()
    mcu.present = False
    with pytest.raises(HardwareError, match="0x48 did not answer"):
        McuLink(mcu.bus).open()
    with pytest.raises(McuError, match="0x49 did not answer"):
        McuLink(SimMcu(clock).bus, address=0x49).open()


def test_power_cut_warns_within_fail_ms_then_brownout_at_holdup_end(clock):
    events = []
    mcu = SimMcu(
        clock,
        on_power_fail=lambda on, t: events.append(("fail", on, t)),
        on_brownout=lambda t: events.append(("brownout", t)),
    )
    link = McuLink(mcu.bus)
    link.open()
    clock.run_until(10_000_000)
    assert not link.status().power_fail and not link.power_fail()
    mcu.cut_power()
    clock.run_until(10_001_000)
    assert not link.power_fail()  # the warning comes fail_ms (2 ms) after the cut
    clock.run_until(10_005_000)
    assert link.power_fail()
    status = link.status()
    assert status.power_fail and status.holdup_present
    assert events == [("fail", True, 10_003_000)]
    assert 6000 <= status.holdup_ms <= 6200
    clock.run_until(13_000_000)
    later = link.status()
    assert later.holdup_ms < status.holdup_ms - 2500
    clock.run_until(20_000_000)
    assert events[-1][0] == "brownout"
    assert events[-1][1] == 10_000_000 + mcu.holdup_us()


def test_power_back_clears_the_warning_and_cancels_the_brownout(clock):
    events = []
    mcu = SimMcu(
        clock,
        on_power_fail=lambda on, t: events.append((on, t)),
        on_brownout=lambda t: events.append(("brownout", t)),
    )
    mcu.cut_power()
    clock.run_until(1_000_000)
    mcu.restore_power()
    clock.run_until(30_000_000)
    assert events == [(True, 3000), (False, 1_501_000)]


def test_watchdog_led_buzzer_through_the_link(clock):
    mcu = SimMcu(clock)
    link = McuLink(mcu.bus)
    link.open()
    link.arm_watchdog(3)
    assert link.status().watchdog_armed
    link.set_led("recording")
    link.buzz(100)
    assert mcu.supervisor.indicator.pattern == regmap.LED_RECORDING
    for t in range(1, 5):
        clock.run_until(t * 2_000_000)
        link.kick_watchdog()
    assert link.status().pi_resets == 0
    clock.run_until(20_000_000)
    mcu.tick()
    assert link.status().pi_resets == 1
    with pytest.raises(ValueError, match="no LED pattern 'disco'"):
        link.set_led("disco")
    with pytest.raises(ValueError):
        link.arm_watchdog(256)


def test_keys_come_once_then_the_vault_locks(clock):
    mcu = SimMcu(clock)
    link = McuLink(mcu.bus)
    storage, audit = link.read_key("storage"), link.read_key("audit")
    assert len(storage) == len(audit) == 32 and storage != audit
    assert mcu.mem[regmap.VAULT_STATE] == regmap.VS_READY  # hidden again after reading
    assert link.read_key("storage") == storage
    link.lock_vault()
    assert not link.status().vault_ready
    with pytest.raises(McuError, match="locked until the box restarts"):
        link.read_key("storage")


def test_vault_keys_survive_an_mcu_restart_with_its_flash(clock):
    first = SimMcu(clock)
    key = McuLink(first.bus).read_key("storage")
    again = SimMcu(clock, store=first.store)
    assert McuLink(again.bus).read_key("storage") == key
    assert McuLink(SimMcu(clock).bus).read_key("storage") != key


def test_shipped_hats_declare_their_mcu():
    four = load_hat("lk-4l").mcu
    assert four.address == regmap.ADDRESS and four.regmap_version == regmap.VERSION
    assert four.power_fail is None and four.holdup_farads == 2.5
    two = load_hat("lk-2lb").mcu
    assert two.power_fail.gpio == 22


HAT = """{"format": 1, "id": "t", "name": "T",
 "audio": {"capture": "c", "playback": "p", "rate": 8000, "channels": 1},
 %s
 "lines": [{"line": 1, "capture_channel": 0, "playback_channel": 0,
            "pins": {"hook": 4, "ring": 5, "polarity": 6}}]}"""
I2C = '"i2c": {"bus": 1, "devices": [{"name": "codec", "address": "0x18"}]},'


@pytest.mark.parametrize(
    "mcu, message",
    [
        ('"mcu": {"address": "0x48", "regmap_version": 1},', r"mcu: the supervisor MCU talks over I2C"),
        (
            I2C + '"mcu": {"address": "0x18", "regmap_version": 1},',
            r"mcu.address: address 0x18 is already used by the I2C device 'codec'",
        ),
        (
            I2C + '"mcu": {"address": "0x48", "regmap_version": 1, "power_fail": 5},',
            r"mcu.power_fail: GPIO 5 is already used by lines\[0\].pins.ring",
        ),
        (
            I2C + '"mcu": {"address": "0x48", "regmap_version": 1, "holdup": {"farads": -1, '
            '"load_mw": 1, "min_mv": 1}},',
            r"mcu.holdup.farads: must be a number of farads",
        ),
        (I2C + '"mcu": {"address": "0x48"},', r"mcu: .*regmap_version"),
        (
            I2C + '"mcu": {"address": "0x48", "regmap_version": 2},',
            r"mcu.regmap_version: this firmware speaks register map version 1, not 2",
        ),
    ],
)
def test_bad_mcu_sections_are_refused_with_the_field(mcu, message):
    with pytest.raises(HatError, match=r"hat.json:\d+:\d+: " + message):
        loads_hat(HAT % mcu, source="hat.json")


def test_the_pi_board_opens_the_mcu_bus_and_watches_the_power_fail_line(clock):
    """RpiBoard gives the box the MCU's bus and its power-fail GPIO line (LK-2LB: GPIO 22),
    here with gpiozero's mock pins and the simulated MCU as the I2C bus."""
    from gpiozero.pins.mock import MockFactory

    from board.rpi import RpiBoard

    hat = load_hat("lk-2lb")
    mcu = SimMcu(
        clock, farads=hat.mcu.holdup_farads, load_mw=hat.mcu.holdup_load_mw, min_mv=hat.mcu.holdup_min_mv
    )
    buses = []
    board = RpiBoard(hat, clock, bus_factory=lambda n: buses.append(n) or mcu.bus)
    board._factory = MockFactory()  # what start() sets, without ALSA
    assert McuLink(board.mcu_bus(), hat.mcu.address).open().regmap_version == regmap.VERSION
    assert buses == [hat.i2c.bus] and board.mcu_bus() is mcu.bus
    seen = []
    assert board.watch_power_fail(lambda active, t_us: seen.append(active))
    board._factory.pin(22).drive_high()
    board._factory.pin(22).drive_low()
    assert seen == [True, False]
    board.stop()
    assert board._power_fail_pin is None and board._mcu_bus is None
    assert not RpiBoard(load_hat("lk-4l"), clock).watch_power_fail(print)  # no such line
