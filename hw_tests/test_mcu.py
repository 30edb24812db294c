"""The HAT's supervisor MCU on a real box: what a technician checks (`make hwtest`).

Run with the recorder stopped (it owns the MCU's watchdog and LED). Every test
prints what it found, so the output is the technician's record. The power-fail
test needs someone to pull the plug: it is marked ``pull_power`` and runs only with
`make hwtest-power` (see docs/power-fail.md); the box then runs on its hold-up capacitor long enough
to write the result to hw_tests/power-fail-result.txt before it stops.
"""

import os
import time

import pytest

from board.mcu.link import LED_PATTERNS, SUPPORTED_REGMAPS, McuLink

SUPPLY_MV = (4750, 5250)  # USB-C 5 V within +-5 %
RESULT = os.path.join(os.path.dirname(__file__), "power-fail-result.txt")


@pytest.fixture
def link(hat):
    from smbus2 import SMBus

    assert hat.mcu is not None, "the HAT %r has no supervisor MCU" % hat.id
    bus = SMBus(hat.i2c.bus)
    try:
        yield McuLink(bus, hat.mcu.address)
    finally:
        bus.close()


def test_mcu_is_present_and_speaks_this_register_map(hat, link):
    info = link.open()
    print(
        "MCU at 0x%02x: firmware %s, register map %d" % (hat.mcu.address, info.firmware, info.regmap_version)
    )
    assert info.regmap_version in SUPPORTED_REGMAPS
    assert info.regmap_version == hat.mcu.regmap_version


def test_supply_and_holdup_capacitor_are_good(hat, link):
    link.open()
    status = link.status()
    print(
        "supply %d mV, hold-up capacitor %d mV, hold-up %d ms, Pi resets %d"
        % (status.supply_mv, status.cap_mv, status.holdup_ms, status.pi_resets)
    )
    assert not status.power_fail
    assert SUPPLY_MV[0] <= status.supply_mv <= SUPPLY_MV[1]
    assert status.holdup_present == (hat.mcu.holdup_farads > 0)
    if status.holdup_present:
        assert status.holdup_ms >= 1000, "the capacitor holds the Pi for under a second"


def test_power_fail_line_is_inactive_with_the_power_on(hat, link):
    from gpiozero import DigitalInputDevice

    link.open()
    spec = hat.mcu.power_fail
    if spec is None:
        print("the HAT %r has no power-fail GPIO: the box reads the status register" % hat.id)
        assert link.status().power_fail is False
        return
    pull_up = {"up": True, "down": False, "floating": None}[spec.pull]
    line = DigitalInputDevice(
        spec.gpio, pull_up=pull_up, **({"active_state": True} if pull_up is None else {})
    )
    try:
        active = bool(line.pin.state) != spec.active_low  # the HAT file's sense, not gpiozero's
        print("power-fail GPIO %d reads %s" % (spec.gpio, "ACTIVE" if active else "inactive"))
        assert not active
    finally:
        line.close()


def test_led_shows_every_pattern(link):
    """The technician watches the LED: each pattern for two seconds, its name printed."""
    link.open()
    try:
        for name in LED_PATTERNS:
            link.set_led(name)
            assert link.led() == name
            print("LED: %s" % name, flush=True)
            time.sleep(2)
    finally:
        link.set_led("off")


@pytest.mark.pull_power
def test_pulling_the_power_raises_the_warning_with_the_holdup_time(link):
    link.open()
    print("pull the power plug now (60 s)...", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = link.status()
        if status.power_fail:
            with open(RESULT, "w") as f:
                f.write(
                    "power-fail warning seen: hold-up %d ms, capacitor %d mV at %s\n"
                    % (status.holdup_ms, status.cap_mv, time.strftime("%Y-%m-%d %H:%M:%S"))
                )
                f.flush()
                os.fsync(f.fileno())
            print("warning seen: hold-up %d ms" % status.holdup_ms, flush=True)
            assert status.holdup_ms > 0
            return
        time.sleep(0.01)
    pytest.fail("no power-fail warning within 60 s")


def test_key_vault_is_ready_and_opens_this_cards_storage_key(link):
    """The vault answers (the recorder has not locked it since this boot: run this
    with the recorder stopped, after a reboot) and its storage key unwraps the
    card's data key, so this card belongs to this HAT. No key is printed."""
    from firmware.storage.fieldseal import KEY_FILE, load_field_cipher

    link.open()
    status = link.status()
    print("key vault %s" % ("ready" if status.vault_ready else "LOCKED (reboot, then run again)"))
    assert status.vault_ready
    data_dir = os.environ.get("LINEKEEPER_DATA_DIR", "/var/lib/linekeeper")
    if not os.path.exists(os.path.join(data_dir, KEY_FILE)):
        print("%s has no sealed storage key yet (the recorder makes it at its first start)" % data_dir)
        return
    cipher = load_field_cipher(data_dir, vault=link, create=False)  # FieldSealError: another HAT's card
    assert cipher is not None
    print("the card in %s opens with this HAT's vault" % data_dir)
