"""The MCU's main job, one tick at a time.

Each tick reads the supply and the hold-up capacitor, raises or clears the
power-fail warning (the ``power_fail`` output to a Pi GPIO, and
``ST_POWER_FAIL`` in ``STATUS``), publishes the hold-up time left, carries out
the commands the Pi wrote into the register memory, and drives the Pi
watchdog, the LED and the buzzer. Everything it needs is passed in, so the
same code runs on the RP2040 (``main.py``) and on the simulated clock.

Times are milliseconds from any origin (``time.ticks_ms()`` on the MCU; the
callers keep them monotonic, the tick copes with any gap between calls).
"""

from . import VERSION, regmap
from .leds import Indicator
from .power import PowerWatch
from .vault import Vault
from .watchdog import PiWatchdog


class Supervisor:
    """``mem``: the I2C register memory (``bytearray(regmap.SIZE)``).

    ``read_supply_mv`` and ``read_cap_mv``: callables returning millivolts.
    Pins (``machine.Pin``-like, ``.value()``): ``power_fail_pin``, ``led_pin``,
    ``buzzer_pin``, ``pi_reset_pin`` (outputs), ``pi_alive_pin`` (input, the
    Pi's 3.3 V rail).
    """

    def __init__(
        self,
        mem,
        read_supply_mv,
        read_cap_mv,
        power_fail_pin,
        led_pin,
        buzzer_pin,
        pi_reset_pin,
        pi_alive_pin,
        vault,
        power=None,
    ):
        if len(mem) < regmap.SIZE:
            raise ValueError("register memory must hold %d bytes" % regmap.SIZE)
        self.mem = mem
        self.read_supply_mv = read_supply_mv
        self.read_cap_mv = read_cap_mv
        self.power_fail_pin = power_fail_pin
        self.pi_alive_pin = pi_alive_pin
        self.power = power if power is not None else PowerWatch()
        self.indicator = Indicator(led_pin, buzzer_pin)
        self.watchdog = PiWatchdog(pi_reset_pin)
        self.vault: Vault = vault
        self._pi_alive = bool(pi_alive_pin.value())
        for i in range(regmap.SIZE):
            mem[i] = 0
        mem[regmap.MAGIC] = regmap.MAGIC_BYTES[0]
        mem[regmap.MAGIC + 1] = regmap.MAGIC_BYTES[1]
        mem[regmap.REGMAP_VER] = regmap.VERSION
        for i in range(3):
            mem[regmap.FW_VERSION + i] = VERSION[i]
        mem[regmap.LED] = regmap.LED_SETUP
        power_fail_pin.value(0)

    def tick(self, now_ms):
        self._watch_pi(now_ms)
        self._commands(now_ms)
        self._power(now_ms)
        if self.watchdog.tick(now_ms):
            self.vault.unlock()
        self.mem[regmap.RESETS] = min(255, self.watchdog.resets)
        self.indicator.tick(now_ms)

    def _watch_pi(self, now_ms):
        alive = bool(self.pi_alive_pin.value())
        if alive and not self._pi_alive:
            # The Pi has (re)started: its software gets the keys once more.
            self.vault.unlock()
            self._hide()
        self._pi_alive = alive

    def _power(self, now_ms):
        mem = self.mem
        supply = self.read_supply_mv()
        cap = self.read_cap_mv()
        failing = self.power.update(supply, now_ms)
        self.power_fail_pin.value(1 if failing else 0)
        regmap.put_u16(mem, regmap.SUPPLY_MV, supply)
        regmap.put_u16(mem, regmap.CAP_MV, cap)
        holdup = self.power.holdup_ms(cap)
        regmap.put_u16(mem, regmap.HOLDUP_MS, min(holdup, regmap.HOLDUP_MORE))
        status = 0
        if failing:
            status |= regmap.ST_POWER_FAIL
            self.indicator.select(regmap.LED_POWER_FAIL, now_ms)
        else:
            status |= regmap.ST_POWER_GOOD
        if self.power.has_holdup:
            status |= regmap.ST_HOLDUP_PRESENT
        if self.watchdog.armed:
            status |= regmap.ST_WDT_ARMED
        if not self.vault.locked:
            status |= regmap.ST_VAULT_READY
        mem[regmap.STATUS] = status

    def _commands(self, now_ms):
        mem = self.mem
        if mem[regmap.WDT_S]:
            self.watchdog.arm(mem[regmap.WDT_S], now_ms)
            mem[regmap.WDT_S] = 0
        if mem[regmap.WDT_KICK] == regmap.WDT_KICK_MAGIC:
            self.watchdog.kick(now_ms)
        mem[regmap.WDT_KICK] = 0
        buzz = regmap.get_u16(mem, regmap.BUZZ_MS)
        if buzz:
            self.indicator.buzz(buzz, now_ms)
            regmap.put_u16(mem, regmap.BUZZ_MS, 0)
        if not self.power.failing:
            self.indicator.select(mem[regmap.LED], now_ms)
        cmd = mem[regmap.VAULT_CMD]
        if cmd:
            mem[regmap.VAULT_CMD] = 0
            self._vault_command(cmd)

    def _vault_command(self, cmd):
        if cmd == regmap.VC_LOCK:
            self.vault.lock()
            self._hide()
        elif cmd == regmap.VC_HIDE:
            self._hide()
        else:
            key = self.vault.key(cmd)
            if key is None:
                self._hide()
                return
            base = regmap.VAULT_DATA
            for i in range(regmap.VAULT_DATA_LEN):
                self.mem[base + i] = key[i]
            self.mem[regmap.VAULT_STATE] = regmap.VS_SHOWN

    def _hide(self):
        for i in range(regmap.VAULT_DATA_LEN):
            self.mem[regmap.VAULT_DATA + i] = 0
        self.mem[regmap.VAULT_STATE] = regmap.VS_LOCKED if self.vault.locked else regmap.VS_READY
