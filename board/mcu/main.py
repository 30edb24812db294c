"""MCU entry point on the HAT (RP2040, MicroPython): wire the hardware, then tick.

Copied to the MCU's flash beside the ``lkmcu`` package. It serves the supervisor's
register map and the firmware loader (:mod:`lkmcu.loader`, at its own address),
and runs a new image once when the loader tries it (:mod:`lkmcu.images`). The pin numbers, the
divider ratios and the hold-up figures are the LK-4L's; the HAT data file
documents them from the Pi's side.
"""

import os
import sys
import time

import machine
from lkmcu import loader, regmap
from lkmcu.core import Supervisor
from lkmcu.images import BOOT_FELL_BACK, BOOT_TRY, FlashImages
from lkmcu.loader import Loader
from lkmcu.power import PowerWatch
from lkmcu.vault import Vault

TICK_MS = 1
SUPPLY_DIVIDER = 2  # 10k / 10k: the 5 V rail at half scale
CAP_DIVIDER = 2
VAULT_FILE = "vault.bin"
# The second I2C block (I2C1) for the firmware loader, wired in parallel with GP0/GP1.
LOADER_SDA = 6
LOADER_SCL = 7
# Set in the globals of a spare image the image below it runs (``run_spare``).
SPARE_FLAG = "LK_SPARE"


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


def run(fell_back=False, trying=False):
    mem = bytearray(regmap.SIZE)
    loader_mem = bytearray(loader.SIZE)
    # The targets serve ``mem`` and ``loader_mem`` to the Pi by themselves; they live as
    # long as run(). The loader answers at its own address on the second I2C block,
    # whose pins the HAT wires to the same bus (one block answers one address).
    _target = machine.I2CTarget(0, regmap.ADDRESS, mem=mem, scl=machine.Pin(1), sda=machine.Pin(0))
    _loader_target = machine.I2CTarget(
        1, loader.ADDRESS, mem=loader_mem, scl=machine.Pin(LOADER_SCL), sda=machine.Pin(LOADER_SDA)
    )
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
    updates = Loader(loader_mem, FlashImages(os, machine.reset))
    if fell_back:
        updates.fell_back()
    elif trying:
        updates.trying()
    own_watchdog = machine.WDT(timeout=2000)
    next_ms = time.ticks_ms()
    while True:
        sup.tick(time.ticks_ms())
        updates.tick()
        own_watchdog.feed()
        next_ms = time.ticks_add(next_ms, TICK_MS)
        delay = time.ticks_diff(next_ms, time.ticks_ms())
        if delay > 0:
            time.sleep_ms(delay)


def run_spare(images):
    """Run the image in ``spare/`` (tried once): its own ``lkmcu`` first on the path."""
    for name in [n for n in sys.modules if n == "lkmcu" or n.startswith("lkmcu.")]:
        del sys.modules[name]
    sys.path.insert(0, images.spare_folder())
    with open(images.spare_main()) as f:
        source = f.read()
    exec(source, {"__name__": "__main__", SPARE_FLAG: True})


def boot():
    """Run the firmware this start is for (lkmcu.images says which)."""
    if globals().get(SPARE_FLAG):
        run(trying=True)  # the spare, started by the image below it: the Pi may confirm it
        return
    images = FlashImages(os, machine.reset)
    step = images.boot()
    if step == BOOT_TRY:
        run_spare(images)
    else:
        run(fell_back=step == BOOT_FELL_BACK)


boot()
