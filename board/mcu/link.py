"""The Pi's side of the supervisor MCU: its register map over I2C (smbus2).

:class:`McuLink` reads the map's header first and refuses a map version this
firmware does not speak (a clear :class:`McuError`, never a silent misread),
then offers the status (power-fail warning, hold-up time left, supply), the Pi
watchdog, the status LED and buzzer, and the key vault. ``bus`` is an
``smbus2.SMBus`` on the HAT, or :class:`board.mcu.sim.SimI2cBus` in the
simulator; any ``OSError`` from it becomes an :class:`McuError`.
"""

from dataclasses import dataclass

from telephony.errors import HardwareError

from .lkmcu import regmap

SUPPORTED_REGMAPS = (regmap.VERSION,)

LED_PATTERNS = {
    "off": regmap.LED_OFF,
    "on": regmap.LED_ON,
    "setup": regmap.LED_SETUP,
    "fault": regmap.LED_FAULT,
    "recording": regmap.LED_RECORDING,
    "updating": regmap.LED_UPDATING,
    "power_fail": regmap.LED_POWER_FAIL,
    "update_failed": regmap.LED_UPDATE_FAILED,
}
KEYS = {"storage": regmap.VC_SHOW_STORAGE, "audit": regmap.VC_SHOW_AUDIT}


# The status block read in one transaction (STATUS .. VAULT_STATE), and where its
# little-endian u16s (HOLDUP_MS, SUPPLY_MV, CAP_MV) and RESETS sit in it.
_STATUS_LEN = regmap.VAULT_STATE + 1 - regmap.STATUS
_STATUS_AT = tuple(
    reg - regmap.STATUS for reg in (regmap.HOLDUP_MS, regmap.SUPPLY_MV, regmap.CAP_MV, regmap.RESETS)
)


class McuError(HardwareError):
    """The supervisor MCU is missing, does not answer, or speaks another register map."""


@dataclass(frozen=True)
class McuInfo:
    regmap_version: int
    firmware_version: tuple

    @property
    def firmware(self):
        return "%d.%d.%d" % self.firmware_version


@dataclass(frozen=True)
class McuStatus:
    """One reading of the MCU's status registers (voltages in mV)."""

    power_fail: bool
    holdup_present: bool
    holdup_ms: int
    supply_mv: int
    cap_mv: int
    watchdog_armed: bool
    vault_ready: bool
    pi_resets: int


class McuLink:
    def __init__(self, bus, address=regmap.ADDRESS):
        self.bus = bus
        self.address = address
        self.info = None

    def open(self):
        """Read and check the register map header; returns :class:`McuInfo`.

        :raises McuError: no answer, not our MCU, or a register map version we do not speak
        """
        head = self._read(regmap.MAGIC, regmap.STATUS)
        if bytes(head[:2]) != regmap.MAGIC_BYTES:
            raise McuError(
                "the device at I2C address 0x%02x is not a Linekeeper supervisor MCU "
                "(magic %r)" % (self.address, bytes(head[:2]))
            )
        version = head[regmap.REGMAP_VER]
        firmware = tuple(head[regmap.FW_VERSION : regmap.FW_VERSION + 3])
        if version not in SUPPORTED_REGMAPS:
            raise McuError(
                "the supervisor MCU runs firmware %d.%d.%d with register map version "
                "%d; this firmware speaks version %s: update the MCU firmware (it "
                "travels in the update bundle)"
                % (firmware + (version, ", ".join(map(str, SUPPORTED_REGMAPS))))
            )
        self.info = McuInfo(version, firmware)
        return self.info

    def status(self):
        """One reading of the status registers (:class:`McuStatus`).

        :raises McuError: the MCU does not answer
        """
        # Polled every second for the box's life (and for every simulated second in the
        # tests): the offsets are worked out once, in _STATUS_AT, not on every call.
        mem = self._read(regmap.STATUS, _STATUS_LEN)
        flags = mem[0]
        holdup, supply, cap, resets = _STATUS_AT
        return McuStatus(
            power_fail=bool(flags & regmap.ST_POWER_FAIL),
            holdup_present=bool(flags & regmap.ST_HOLDUP_PRESENT),
            holdup_ms=mem[holdup] | mem[holdup + 1] << 8,
            supply_mv=mem[supply] | mem[supply + 1] << 8,
            cap_mv=mem[cap] | mem[cap + 1] << 8,
            watchdog_armed=bool(flags & regmap.ST_WDT_ARMED),
            vault_ready=bool(flags & regmap.ST_VAULT_READY),
            pi_resets=mem[resets],
        )

    def power_fail(self):
        """Whether the MCU's power-fail warning is up: the ``STATUS`` flags alone.

        The power-fail poll's read, every 20 ms during calls on a HAT without the warning
        line: one byte on the bus and no :class:`McuStatus` to build, where
        :meth:`status` reads the whole status block (nine bytes).

        :raises McuError: the MCU does not answer
        """
        try:
            flags = self.bus.read_byte_data(self.address, regmap.STATUS)
        except OSError as exc:
            raise McuError(
                "the supervisor MCU at I2C address 0x%02x did not answer: %s" % (self.address, exc)
            ) from exc
        return bool(flags & regmap.ST_POWER_FAIL)

    def arm_watchdog(self, timeout_s):
        """Have the MCU reset the Pi when no kick comes for ``timeout_s`` (1..255; 0 disarms)."""
        if not 0 <= timeout_s <= 255:
            raise ValueError("watchdog timeout must be 0..255 s")
        self._write(regmap.WDT_S, [timeout_s])

    def kick_watchdog(self):
        self._write(regmap.WDT_KICK, [regmap.WDT_KICK_MAGIC])

    def set_led(self, pattern):
        """Show a status LED pattern: one of :data:`LED_PATTERNS`."""
        try:
            code = LED_PATTERNS[pattern]
        except KeyError:
            raise ValueError("no LED pattern %r; known: %s" % (pattern, ", ".join(LED_PATTERNS))) from None
        self._write(regmap.LED, [code])

    def led(self):
        """The LED pattern the Pi last asked for, by name (read back from the MCU)."""
        code = self._read(regmap.LED, 1)[0]
        for name, value in LED_PATTERNS.items():
            if value == code:
                return name
        return "unknown (%d)" % code

    def buzz(self, ms):
        self._write(regmap.BUZZ_MS, [ms & 0xFF, (ms >> 8) & 0xFF])

    def read_key(self, which):
        """The vault's ``"storage"`` or ``"audit"`` key (32 bytes).

        :raises McuError: the vault is locked (until the Pi restarts) or does not answer
        """
        self._write(regmap.VAULT_CMD, [KEYS[which]])
        try:
            state = self._read(regmap.VAULT_STATE, 1)[0]
            if state != regmap.VS_SHOWN:
                raise McuError("the MCU key vault is locked until the box restarts")
            return bytes(self._read(regmap.VAULT_DATA, regmap.VAULT_DATA_LEN))
        finally:
            self._write(regmap.VAULT_CMD, [regmap.VC_HIDE])

    def lock_vault(self):
        """Refuse every key from now until the Pi restarts."""
        self._write(regmap.VAULT_CMD, [regmap.VC_LOCK])

    def _read(self, register, length):
        try:
            return list(self.bus.read_i2c_block_data(self.address, register, length))
        except OSError as exc:
            raise McuError(
                "the supervisor MCU at I2C address 0x%02x did not answer: %s" % (self.address, exc)
            ) from exc

    def _write(self, register, data):
        try:
            self.bus.write_i2c_block_data(self.address, register, list(data))
        except OSError as exc:
            raise McuError(
                "the supervisor MCU at I2C address 0x%02x did not answer: %s" % (self.address, exc)
            ) from exc
