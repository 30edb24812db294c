"""MCU entry point on the HAT (RP2040, MicroPython): wire the hardware, then tick.

Copied to the MCU's flash beside the ``lkmcu`` package. The pin numbers, the
divider ratios and the hold-up figures are the LK-4L's; the HAT data file
documents them from the Pi's side.
"""

import os
import time

import machine
from lkmcu import regmap
from lkmcu.core import Supervisor
from lkmcu.power import PowerWatch
from lkmcu.vault import Vault

TICK_MS = 1
SUPPLY_DIVIDER = 2  # 10k / 10k: the 5 V rail at half scale
CAP_DIVIDER = 2
VAULT_FILE = "vault.bin"


class FlashStore:
    """The vault's keys in a file on the MCU's own flash (littlefs)."""

    def load(self):
        try:
            with open(VAULT_FILE, "rb") as f:
                return f.read()
        except OSError:
            return None

    def save(self, data):
        with open(VAULT_FILE + ".new", "wb") as f:
            f.write(data)
        os.rename(VAULT_FILE + ".new", VAULT_FILE)


def millivolts(adc, divider):
    return lambda: adc.read_u16() * 3300 * divider // 65535


def run():
    mem = bytearray(regmap.SIZE)
    # The target serves ``mem`` to the Pi by itself; it lives as long as run().
    _target = machine.I2CTarget(0, regmap.ADDRESS, mem=mem, scl=machine.Pin(1), sda=machine.Pin(0))
    sup = Supervisor(
        mem,
        millivolts(machine.ADC(26), SUPPLY_DIVIDER),
        millivolts(machine.ADC(27), CAP_DIVIDER),
        power_fail_pin=machine.Pin(2, machine.Pin.OUT),
        led_pin=machine.Pin(25, machine.Pin.OUT),
        buzzer_pin=machine.Pin(3, machine.Pin.OUT),
        pi_reset_pin=machine.Pin(4, machine.Pin.OPEN_DRAIN),
        pi_alive_pin=machine.Pin(5, machine.Pin.IN),
        vault=Vault(FlashStore(), os.urandom),
        power=PowerWatch(farads=2.5, load_mw=4000, min_mv=2500),
    )
    own_watchdog = machine.WDT(timeout=2000)
    next_ms = time.ticks_ms()
    while True:
        sup.tick(time.ticks_ms())
        own_watchdog.feed()
        next_ms = time.ticks_add(next_ms, TICK_MS)
        delay = time.ticks_diff(next_ms, time.ticks_ms())
        if delay > 0:
            time.sleep_ms(delay)


run()
