"""The register map the MCU shows the Pi over I2C, version 1.

One byte-addressed memory of ``SIZE`` bytes behind I2C address ``ADDRESS``
(8-bit memory addresses). Multi-byte values are little-endian. The Pi reads
``MAGIC`` and ``REGMAP_VERSION`` first and refuses to go on when the version is
not one it speaks; a new register map gets a new version number.

Read by the Pi (the MCU writes them):

=============== ==== ====================================================
``MAGIC``        0   2 bytes, ``b"LK"``
``REGMAP_VER``   2   1 byte, this map's version (``VERSION``)
``FW_VERSION``   3   3 bytes, major, minor, patch of the MCU firmware
``STATUS``       6   1 byte of ``ST_*`` flags
``HOLDUP_MS``    7   u16, hold-up time left at the present load (0 without a
                     hold-up capacitor; 65535 means "more than a minute")
``SUPPLY_MV``    9   u16, the 5 V supply in mV
``CAP_MV``      11   u16, the hold-up capacitor in mV
``RESETS``      13   1 byte, how many times the MCU has reset the Pi
``VAULT_STATE`` 14   1 byte of ``VS_*`` values
=============== ==== ====================================================

Written by the Pi (the MCU acts, then clears the command registers):

=============== ==== ====================================================
``LED``         16   1 byte, the status LED pattern (``LED_*``)
``BUZZ_MS``     17   u16, sound the buzzer for this long
``WDT_KICK``    19   write ``WDT_KICK_MAGIC`` to restart the Pi watchdog
``WDT_S``       20   1 byte, arm the Pi watchdog with this timeout (0: off)
``VAULT_CMD``   24   1 byte, ``VC_*``
``VAULT_DATA``  32   32 bytes, a key while ``VAULT_STATE`` is ``VS_SHOWN``
=============== ==== ====================================================
"""

ADDRESS = 0x48
VERSION = 1
SIZE = 64
MAGIC_BYTES = b"LK"

MAGIC = 0
REGMAP_VER = 2
FW_VERSION = 3
STATUS = 6
HOLDUP_MS = 7
SUPPLY_MV = 9
CAP_MV = 11
RESETS = 13
VAULT_STATE = 14
LED = 16
BUZZ_MS = 17
WDT_KICK = 19
WDT_S = 20
VAULT_CMD = 24
VAULT_DATA = 32
VAULT_DATA_LEN = 32

# STATUS flags
ST_POWER_GOOD = 0x01
ST_POWER_FAIL = 0x02
ST_HOLDUP_PRESENT = 0x04
ST_WDT_ARMED = 0x08
ST_VAULT_READY = 0x10

WDT_KICK_MAGIC = 0xA5
HOLDUP_MORE = 0xFFFF

# Status LED patterns
LED_OFF = 0
LED_ON = 1
LED_SETUP = 2
LED_FAULT = 3
LED_RECORDING = 4
LED_UPDATING = 5
LED_POWER_FAIL = 6
LED_UPDATE_FAILED = 7

# Vault commands and states
VC_NONE = 0
VC_SHOW_STORAGE = 1
VC_SHOW_AUDIT = 2
VC_HIDE = 3
VC_LOCK = 4
VS_EMPTY = 0
VS_READY = 1
VS_SHOWN = 2
VS_LOCKED = 3


def get_u16(mem, offset):
    return mem[offset] | (mem[offset + 1] << 8)


def put_u16(mem, offset, value):
    value = max(0, min(0xFFFF, int(value)))
    mem[offset] = value & 0xFF
    mem[offset + 1] = value >> 8
