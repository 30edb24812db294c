"""I2C on a real Pi: the HAT's ID EEPROM as the Pi firmware read it, and every chip
the HAT file names answering at its address on its bus (through smbus2, as
board/rpi.py sets them up)."""

import os

import pytest
from which_hat import hat_name

from board.hat import load_hat

HAT_DT = "/proc/device-tree/hat"  # the Pi firmware's copy of the HAT ID EEPROM


def _devices():
    hat = load_hat(hat_name())
    devices = list(hat.i2c.devices) if hat.i2c is not None else []
    out = [(d.name, d.address) for d in devices]
    if hat.mcu is not None:
        out.append(("mcu", hat.mcu.address))
    return out


def _read(name):
    with open(os.path.join(HAT_DT, name), "rb") as f:
        return f.read().rstrip(b"\0").decode("ascii", "replace")


def test_the_hat_eeprom_was_read_at_boot(hat):
    assert os.path.isdir(HAT_DT), (
        "no HAT ID EEPROM was read at boot (%s missing): is the HAT seated, its EEPROM "
        "write-protect jumper fitted and the EEPROM programmed?" % HAT_DT
    )
    vendor, product = _read("vendor"), _read("product")
    print("HAT EEPROM: vendor %r, product %r, uuid %s" % (vendor, product, _read("uuid")))
    assert product, "the HAT EEPROM names no product"


@pytest.mark.parametrize("name,address", _devices())
def test_the_chip_answers(hat, name, address):
    from smbus2 import SMBus

    with SMBus(hat.i2c.bus) as bus:
        try:
            value = bus.read_byte_data(address, 0)
        except OSError as exc:
            pytest.fail("%s at 0x%02x on I2C bus %d does not answer: %s" % (name, address, hat.i2c.bus, exc))
    print("%s at 0x%02x on bus %d answers (register 0 = 0x%02x)" % (name, address, hat.i2c.bus, value))
