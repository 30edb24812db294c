"""Flashing the HAT's supervisor MCU from the Pi: an image of its firmware files sent
through the MCU's loader (:mod:`board.mcu.lkmcu.loader`), verified by reading its
CRC back, tried once, and kept only when the new firmware reports its version.

The image (``build_image``) is the firmware folder as one byte string::

    b"LKFW", major, minor, patch (1 byte each), file count (u16),
    then per file: name length (u16), name (UTF-8, "/"-separated), size (u32), bytes

(little-endian), files in name order so the same folder always gives the same
image. An update bundle carries the folder as ``/mcu`` (scripts/make-bundle);
the recorder flashes it when the MCU runs another version (docs/mcu.md).
"""

import ast
import os
import struct
import time
import zlib

from .link import McuError
from .lkmcu import loader

IMAGE_MAGIC = b"LKFW"


def firmware_version(mcu_dir):
    """The version ``lkmcu/__init__.py`` in ``mcu_dir`` declares (``VERSION = (1, 0, 0)``).

    :raises McuError: it declares none
    """
    with open(os.path.join(mcu_dir, "lkmcu", "__init__.py"), encoding="utf-8") as f:
        version = declared_version(f.read())
    if version is None:
        raise McuError("%s declares no firmware VERSION = (major, minor, patch)" % mcu_dir)
    return version


def declared_version(source):
    """The ``VERSION = (major, minor, patch)`` a module's ``source`` declares, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VERSION" for t in node.targets):
            try:
                version = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(version, tuple) and len(version) == 3 and all(isinstance(v, int) for v in version):
                return version
    return None


def build_image(mcu_dir):
    """``(image bytes, version)`` of the MCU firmware in ``mcu_dir`` (``main.py``, ``lkmcu/``)."""
    version = firmware_version(mcu_dir)
    names = ["main.py"] + sorted(
        "lkmcu/" + n for n in os.listdir(os.path.join(mcu_dir, "lkmcu")) if n.endswith(".py")
    )
    parts = [IMAGE_MAGIC, bytes(version), struct.pack("<H", len(names))]
    for name in names:
        with open(os.path.join(mcu_dir, name), "rb") as f:
            data = f.read()
        encoded = name.encode()
        parts += [struct.pack("<H", len(encoded)), encoded, struct.pack("<I", len(data)), data]
    return b"".join(parts), version


def read_image(image):
    """``(version, {name: bytes})`` of an image.

    :raises ValueError: not an image, or cut short
    """
    if image[:4] != IMAGE_MAGIC or len(image) < 9:
        raise ValueError("not an MCU firmware image")
    version = tuple(image[4:7])
    (count,) = struct.unpack_from("<H", image, 7)
    pos, files = 9, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", image, pos)
        name = image[pos + 2 : pos + 2 + n].decode()
        (size,) = struct.unpack_from("<I", image, pos + 2 + n)
        start = pos + 6 + n
        files[name] = image[start : start + size]
        if len(files[name]) != size:
            raise ValueError("the image is cut short in %s" % name)
        pos = start + size
    return version, files


class McuFlasher:
    """Sends images to the loader at ``address`` on ``bus`` (``smbus2.SMBus``-like);
    ``link`` (:class:`board.mcu.link.McuLink`) reads the version the MCU runs."""

    def __init__(self, bus, link, address=loader.ADDRESS, sleep=time.sleep, monotonic=time.monotonic):
        self.bus = bus
        self.link = link
        self.address = address
        self._sleep = sleep
        self._monotonic = monotonic

    def flash(self, image, version, report_timeout_s=10.0):
        """Flash ``image`` (firmware ``version``) and keep it once it reports.

        :raises McuError: the loader refused, the read-back CRC differs (nothing was
            tried), or the new firmware did not report (the MCU runs its old one)
        """
        version = tuple(version)
        self._write(loader.L_TOTAL, list(struct.pack("<I", len(image))) + [0] * 5 + list(version))
        self._command(loader.LC_BEGIN)
        for offset in range(0, len(image), loader.DATA_LEN):
            chunk = image[offset : offset + loader.DATA_LEN]
            self._write(loader.L_DATA, list(chunk))
            self._write(loader.L_OFFSET, list(struct.pack("<I", offset)) + [len(chunk)])
            self._command(loader.LC_WRITE)
        got = struct.unpack("<I", bytes(self._read(loader.L_CRC, 4)))[0]
        want = zlib.crc32(image)
        if got != want:
            self._command(loader.LC_ABORT)
            raise McuError(
                "the MCU firmware image did not arrive whole (CRC read back %08x, sent %08x); "
                "nothing was flashed" % (got, want)
            )
        self._command(loader.LC_COMMIT)
        self._command(loader.LC_ACTIVATE)  # trying it now, or already fallen back
        deadline = self._monotonic() + report_timeout_s
        while True:
            running = self._reports()
            if running == version:
                self._command(loader.LC_CONFIRM, expect=loader.LS_IDLE)
                return
            state = self._read(loader.L_STATE, 1)[0]
            if state == loader.LS_FELL_BACK or self._monotonic() >= deadline:
                raise McuError(
                    "the MCU firmware %s did not start; the MCU runs its old firmware %s"
                    % (_dotted(version), _dotted(running) if running else "(not answering)")
                )
            self._sleep(0.1)

    def _reports(self):
        try:
            return tuple(self.link.open().firmware_version)
        except McuError:
            return None

    def _command(self, cmd, expect=None):
        self._write(loader.L_CMD, [cmd])
        state, error = self._read(loader.L_STATE, 1)[0], self._read(loader.L_ERROR, 1)[0]
        if state == loader.LS_ERROR or (expect is not None and state != expect):
            raise McuError(
                "the MCU's firmware loader refused command %d (state %d, error %d); nothing was flashed"
                % (cmd, state, error)
            )

    def _read(self, register, length):
        try:
            return list(self.bus.read_i2c_block_data(self.address, register, length))
        except OSError as exc:
            raise McuError("the MCU's firmware loader did not answer: %s" % exc) from exc

    def _write(self, register, data):
        try:
            self.bus.write_i2c_block_data(self.address, register, list(data))
        except OSError as exc:
            raise McuError("the MCU's firmware loader did not answer: %s" % exc) from exc


def _dotted(version):
    return "%d.%d.%d" % tuple(version)
