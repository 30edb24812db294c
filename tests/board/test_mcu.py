"""The supervisor MCU's firmware under CPython, with fake pins and voltages."""

import pytest

from board.mcu import fakes
from board.mcu.lkmcu import VERSION, leds, regmap
from board.mcu.lkmcu.core import Supervisor
from board.mcu.lkmcu.power import PowerWatch
from board.mcu.lkmcu.vault import Vault


class Rig:
    """A Supervisor with every input and output in reach, on a hand-driven clock."""

    def __init__(self, farads=2.5, store=None):
        self.t_ms = 0
        self.mem = bytearray(regmap.SIZE)
        self.supply = fakes.Millivolts(5100)
        self.cap = fakes.Millivolts(5100)
        clock = lambda: self.t_ms  # noqa: E731
        self.power_fail = fakes.Pin(clock_ms=clock)
        self.led = fakes.Pin(clock_ms=clock)
        self.buzzer = fakes.Pin(clock_ms=clock)
        self.reset = fakes.Pin(level=1, clock_ms=clock)
        self.alive = fakes.Pin(level=1)
        self.store = store if store is not None else fakes.MemoryStore()
        self.sup = Supervisor(
            self.mem,
            self.supply,
            self.cap,
            self.power_fail,
            self.led,
            self.buzzer,
            self.reset,
            self.alive,
            Vault(self.store, lambda n: bytes(range(n))),
            PowerWatch(farads=farads, load_mw=4000, min_mv=2500),
        )

    def run(self, until_ms, step_ms=1):
        while self.t_ms < until_ms:
            self.t_ms += step_ms
            self.sup.tick(self.t_ms)

    def write(self, register, *data):
        self.mem[register : register + len(data)] = bytes(data)


def test_header_names_the_map_and_firmware():
    rig = Rig()
    assert bytes(rig.mem[0:2]) == b"LK"
    assert rig.mem[regmap.REGMAP_VER] == regmap.VERSION
    assert tuple(rig.mem[regmap.FW_VERSION : regmap.FW_VERSION + 3]) == VERSION


def test_power_fail_rises_after_fail_ms_and_reports_holdup():
    rig = Rig()
    rig.run(100)
    assert rig.mem[regmap.STATUS] & regmap.ST_POWER_GOOD
    assert rig.power_fail.changes == []
    rig.supply.mv = 4000
    rig.run(101)
    assert rig.power_fail.level == 0  # one low sample is not a failure
    rig.run(102)
    assert rig.power_fail.level == 0
    rig.run(103)  # low for fail_ms = 2 ms
    assert rig.power_fail.changes == [(103, 1)]
    status = rig.mem[regmap.STATUS]
    assert status & regmap.ST_POWER_FAIL and not status & regmap.ST_POWER_GOOD
    # 2.5 F from 5.1 V down to 2.5 V at 4 W: 2.5 * (5.1**2 - 2.5**2) / 2 / 4 = 6.175 s
    assert abs(regmap.get_u16(rig.mem, regmap.HOLDUP_MS) - 6175) <= 1
    assert regmap.get_u16(rig.mem, regmap.SUPPLY_MV) == 4000


def test_a_glitch_shorter_than_fail_ms_raises_nothing():
    rig = Rig()
    rig.supply.mv = 4000
    rig.run(1)
    rig.supply.mv = 5100
    rig.run(50)
    assert rig.power_fail.changes == []


def test_warning_clears_only_after_the_supply_is_good_for_good_ms():
    rig = Rig()
    rig.supply.mv = 0
    rig.run(10)
    rig.supply.mv = 5100
    rig.run(300)
    rig.supply.mv = 4700  # between fail and good: not yet good
    rig.run(400)
    rig.supply.mv = 5100
    rig.run(899)
    assert rig.power_fail.level == 1
    rig.run(901)
    assert rig.power_fail.changes == [(3, 1), (901, 0)]


def test_without_a_holdup_capacitor_holdup_is_zero_and_flagged_absent():
    rig = Rig(farads=0)
    rig.supply.mv = 0
    rig.run(10)
    assert regmap.get_u16(rig.mem, regmap.HOLDUP_MS) == 0
    assert not rig.mem[regmap.STATUS] & regmap.ST_HOLDUP_PRESENT


def test_holdup_falls_as_the_capacitor_drains():
    power = PowerWatch(farads=2.5, load_mw=4000, min_mv=2500)
    assert power.holdup_ms(5000) > power.holdup_ms(4000) > power.holdup_ms(3000) > 0
    assert power.holdup_ms(2500) == 0


def test_watchdog_resets_the_pi_when_kicks_stop_and_then_disarms():
    rig = Rig()
    rig.write(regmap.WDT_S, 2)
    rig.run(10)
    assert rig.mem[regmap.STATUS] & regmap.ST_WDT_ARMED
    for _ in range(5):  # kicks every 1.5 s keep it quiet
        rig.run(rig.t_ms + 1500)
        rig.write(regmap.WDT_KICK, regmap.WDT_KICK_MAGIC)
    kicked_at = rig.t_ms + 1
    rig.run(rig.t_ms + 5000)
    # Reset held low for 200 ms, 2 s after the last kick, once.
    assert rig.reset.changes == [(kicked_at + 2000, 0), (kicked_at + 2200, 1)]
    assert rig.mem[regmap.RESETS] == 1
    assert not rig.mem[regmap.STATUS] & regmap.ST_WDT_ARMED


def test_a_wrong_kick_value_does_not_kick():
    rig = Rig()
    rig.write(regmap.WDT_S, 1)
    rig.run(500)
    rig.write(regmap.WDT_KICK, 0x01)
    rig.run(1200)
    assert rig.mem[regmap.RESETS] == 1


@pytest.mark.parametrize("pattern", sorted(leds.PATTERNS))
def test_led_patterns_follow_their_steps(pattern):
    rig = Rig()
    rig.write(regmap.LED, regmap.LED_ON if pattern == regmap.LED_OFF else regmap.LED_OFF)
    rig.run(5)
    rig.write(regmap.LED, pattern)  # a pattern starts when it is selected
    rig.run(6)
    start = rig.t_ms
    levels = []
    for _ in range(4000):
        rig.run(rig.t_ms + 1)
        levels.append(rig.led.level)
    expected = [leds.level_at(pattern, t - start) for t in range(start + 1, start + 4001)]
    assert levels == expected
    period = sum(ms for _, ms in leds.PATTERNS[pattern])
    on = sum(ms for level, ms in leds.PATTERNS[pattern] if level)
    assert sum(levels[:period]) == on


def test_patterns_are_told_apart_by_their_first_two_seconds():
    shapes = {p: tuple(leds.level_at(p, t) for t in range(0, 2000, 10)) for p in leds.PATTERNS}
    assert len(set(shapes.values())) == len(shapes)


def test_power_fail_overrides_the_pis_pattern_and_buzzer_sounds_for_its_time():
    rig = Rig()
    rig.write(regmap.LED, regmap.LED_RECORDING)
    rig.write(regmap.BUZZ_MS, 250, 0)
    rig.run(10)
    assert rig.buzzer.changes == [(1, 1)]
    rig.run(300)
    assert rig.buzzer.changes == [(1, 1), (251, 0)]
    rig.supply.mv = 0
    rig.run(310)
    assert rig.sup.indicator.pattern == regmap.LED_POWER_FAIL


def test_vault_makes_keys_once_and_keeps_them():
    store = fakes.MemoryStore()
    Rig(store=store)
    first = store.data
    Rig(store=store)
    assert store.data == first and store.saves == 1 and len(first) == 64


def test_vault_shows_one_key_hides_it_and_locks_until_the_pi_restarts():
    rig = Rig()
    rig.write(regmap.VAULT_CMD, regmap.VC_SHOW_STORAGE)
    rig.run(1)
    assert rig.mem[regmap.VAULT_STATE] == regmap.VS_SHOWN
    assert bytes(rig.mem[regmap.VAULT_DATA : regmap.VAULT_DATA + 32]) == bytes(range(32))
    rig.write(regmap.VAULT_CMD, regmap.VC_SHOW_AUDIT)
    rig.run(2)
    assert bytes(rig.mem[regmap.VAULT_DATA : regmap.VAULT_DATA + 32]) == bytes(range(32, 64))
    rig.write(regmap.VAULT_CMD, regmap.VC_LOCK)
    rig.run(3)
    assert rig.mem[regmap.VAULT_STATE] == regmap.VS_LOCKED
    assert not any(rig.mem[regmap.VAULT_DATA : regmap.VAULT_DATA + 32])
    rig.write(regmap.VAULT_CMD, regmap.VC_SHOW_STORAGE)
    rig.run(4)
    assert not any(rig.mem[regmap.VAULT_DATA : regmap.VAULT_DATA + 32])
    assert not rig.mem[regmap.STATUS] & regmap.ST_VAULT_READY
    rig.alive.level = 0  # the Pi restarts
    rig.run(5)
    rig.alive.level = 1
    rig.run(6)
    rig.write(regmap.VAULT_CMD, regmap.VC_SHOW_STORAGE)
    rig.run(7)
    assert bytes(rig.mem[regmap.VAULT_DATA : regmap.VAULT_DATA + 32]) == bytes(range(32))


def test_register_memory_too_small_is_refused():
    with pytest.raises(ValueError, match="register memory"):
        Supervisor(
            bytearray(8), None, None, fakes.Pin(), fakes.Pin(), fakes.Pin(), fakes.Pin(), fakes.Pin(), None
        )
