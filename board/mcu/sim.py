"""The supervisor MCU on the simulated clock, behind a simulated I2C bus.

:class:`SimMcu` runs the real firmware (:class:`lkmcu.core.Supervisor`) with
fake pins and voltages. It ticks the firmware whenever the Pi talks to it and
at every moment something happens to the supply, so the power-fail output
rises exactly ``fail_ms`` after a cut, as on the HAT. The hold-up capacitor is
modelled as an ideal capacitor feeding a constant-power load:
``V(t) = sqrt(V0**2 - 2 P t / C)``, charged to the supply voltage whenever the
supply is present (charging time is not modelled). When it falls to the
converter's cut-off, ``on_brownout`` is called: the Pi loses power.
"""

import math
import os

from . import fakes
from .flash import declared_version, read_image
from .lkmcu import VERSION, loader, regmap
from .lkmcu.core import Supervisor
from .lkmcu.loader import Loader
from .lkmcu.power import PowerWatch
from .lkmcu.vault import Vault

SUPPLY_MV = 5100


class SimI2cBus:
    """The part of ``smbus2.SMBus`` the Pi's driver uses, wired to a :class:`SimMcu`."""

    def __init__(self, mcu):
        self.mcu = mcu
        self.transactions = 0

    def _memory(self, address):
        """The memory behind ``address``: the supervisor's registers or the loader's."""
        if self.mcu.present and address == regmap.ADDRESS:
            mem = self.mcu.mem
        elif self.mcu.present and address == loader.ADDRESS:
            mem = self.mcu.loader_mem
        else:
            raise OSError(121, "Remote I/O error")
        self.transactions += 1
        return mem

    def read_i2c_block_data(self, address, register, length):
        mem = self._memory(address)
        self.mcu.tick()
        return list(mem[register : register + length])

    def read_byte_data(self, address, register):
        mem = self._memory(address)
        self.mcu.tick()
        return mem[register]

    def write_i2c_block_data(self, address, register, data):
        mem = self._memory(address)
        mem[register : register + len(data)] = bytes(data)
        self.mcu.tick()

    def write_byte_data(self, address, register, value):
        self.write_i2c_block_data(address, register, [value])

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SimFlash:
    """The MCU's two firmware images, for the loader: the one it runs and a spare.

    Trying the spare "restarts" the MCU into it: it comes up when every Python file
    in it compiles, it has ``main.py`` and ``lkmcu/``, and its ``lkmcu`` declares the
    version the image says; then the supervisor reports that version. Otherwise the
    old image runs again (and the loader says so).
    """

    def __init__(self, mcu, version):
        self.mcu = mcu
        self.version = tuple(version)  # the image running
        self.spare = None  # (image, version)
        self.trying = None  # the version tried and not yet kept
        self.kept = []  # versions made permanent, in order

    def write_spare(self, image, version):
        self.spare = (bytes(image), tuple(version))
        return True

    def try_spare(self):
        image, version = self.spare
        if _boots(image, version):
            self.trying = version
            self.mcu.report_version(version)
        else:
            self.mcu.loader.fell_back()

    def keep_spare(self):
        self.version, self.trying = self.trying, None
        self.kept.append(self.version)

    def restart(self):
        """A reset of the MCU: an image tried and not kept is dropped."""
        if self.trying is not None:
            self.trying = None
            self.mcu.report_version(self.version)


def _boots(image, version):
    try:
        declared, files = read_image(image)
        if declared != version or "main.py" not in files or "lkmcu/__init__.py" not in files:
            return False
        for name, data in files.items():
            if name.endswith(".py"):
                compile(data.decode(), name, "exec")
        return declared_version(files["lkmcu/__init__.py"].decode()) == version
    except (ValueError, SyntaxError, UnicodeDecodeError):
        return False


class SimMcu:
    """The HAT's MCU on ``clock`` (a :class:`firmware.clock.SimClock`).

    :param on_power_fail: ``fn(active, t_us)`` when the power-fail output changes
    :param on_brownout: ``fn(t_us)`` when the hold-up capacitor is exhausted
    :param farads, load_mw, min_mv: the hold-up capacitor, the load it feeds and
        the converter's cut-off (``farads=0``: no hold-up)
    """

    def __init__(
        self,
        clock,
        *,
        farads=2.5,
        load_mw=4000,
        min_mv=2500,
        on_power_fail=None,
        on_brownout=None,
        store=None,
        random_bytes=None,
        firmware_version=VERSION,
    ):
        self.clock = clock
        self.present = True
        self.on_power_fail = on_power_fail
        self.on_brownout = on_brownout
        self.supply = fakes.Millivolts(SUPPLY_MV)
        self.farads = farads
        self.load_mw = load_mw
        self.min_mv = min_mv
        self._cut_us = None
        self._brownout_timer = None
        self.mem = bytearray(regmap.SIZE)
        self.power_fail_pin = fakes.Pin(clock_ms=self.now_ms, on_change=self._power_fail_changed)
        self.led_pin = fakes.Pin(clock_ms=self.now_ms)
        self.buzzer_pin = fakes.Pin(clock_ms=self.now_ms)
        self.pi_reset_pin = fakes.Pin(level=1, clock_ms=self.now_ms)
        self.pi_alive_pin = fakes.Pin(level=1)
        self.store = store if store is not None else fakes.MemoryStore()
        self.power = PowerWatch(farads=farads, load_mw=load_mw, min_mv=min_mv)
        self.supervisor = Supervisor(
            self.mem,
            self.supply,
            self.cap_mv,
            self.power_fail_pin,
            self.led_pin,
            self.buzzer_pin,
            self.pi_reset_pin,
            self.pi_alive_pin,
            Vault(self.store, random_bytes or os.urandom),
            self.power,
        )
        self.flash = SimFlash(self, firmware_version)
        self.loader_mem = bytearray(loader.SIZE)
        self.loader = Loader(self.loader_mem, self.flash)
        self.report_version(firmware_version)
        self.bus = SimI2cBus(self)
        # Ticks run so far: the MCU's firmware runs inside the Pi's process here, and
        # make bench counts its CPU time as the simulator's (docs/bench.md).
        self.ticks = 0
        self.tick()

    def report_version(self, version):
        """The firmware running now writes its version into the register map."""
        for i in range(3):
            self.mem[regmap.FW_VERSION + i] = version[i]

    def now_ms(self):
        return self.clock.now_us() // 1000

    def cap_mv(self):
        """The hold-up capacitor's voltage now."""
        if self._cut_us is None:
            return self.supply.mv
        if self.farads <= 0:
            return 0
        v0 = SUPPLY_MV / 1000
        t_s = (self.clock.now_us() - self._cut_us) / 1e6
        v2 = v0 * v0 - 2 * (self.load_mw / 1000) * t_s / self.farads
        return int(math.sqrt(v2) * 1000) if v2 > 0 else 0

    def holdup_us(self):
        """How long the capacitor keeps the Pi running after a cut."""
        return self.power.holdup_ms(SUPPLY_MV) * 1000

    def tick(self):
        """Run one tick of the MCU's firmware now (on the HAT it ticks every millisecond;
        here whenever the Pi talks to it and whenever the supply changes)."""
        self.ticks += 1
        self.supervisor.tick(self.now_ms())
        self.loader.tick()

    def cut_power(self):
        """The supply goes: the firmware warns ``fail_ms`` later; the Pi dies at hold-up's end."""
        if self._cut_us is not None:
            return
        now = self.clock.now_us()
        self._cut_us = now
        self.supply.mv = 0
        self.tick()
        self.clock.call_at(now + (self.power.fail_ms + 1) * 1000, self.tick)
        self._brownout_timer = self.clock.call_at(now + self.holdup_us(), self._brownout)

    def restore_power(self):
        """The supply is back: the warning clears ``good_ms`` later."""
        if self._cut_us is None:
            return
        self._cut_us = None
        self.supply.mv = SUPPLY_MV
        if self._brownout_timer is not None:
            self._brownout_timer.cancel()
            self._brownout_timer = None
        now = self.clock.now_us()
        self.tick()
        self.clock.call_at(now + (self.power.good_ms + 1) * 1000, self.tick)

    def _brownout(self):
        self._brownout_timer = None
        if self.on_brownout:
            self.on_brownout(self.clock.now_us())

    def _power_fail_changed(self, level):
        if self.on_power_fail:
            self.on_power_fail(bool(level), self.clock.now_us())
