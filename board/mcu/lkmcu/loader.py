"""The MCU's firmware loader: a new firmware image received over I2C, verified,
and tried once; the old firmware stays until the new one has reported.

It answers at its own I2C address (``ADDRESS``) with its own 64-byte memory, so
the supervisor's register map is untouched (multi-byte values little-endian):

=============== ==== ====================================================
``L_MAGIC``      0   2 bytes, ``b"LB"``
``L_CMD``        2   1 byte, ``LC_*`` (the loader acts, then clears it)
``L_STATE``      3   1 byte, ``LS_*``
``L_TOTAL``      4   u32, the image's size (with ``LC_BEGIN``)
``L_OFFSET``     8   u32, where ``L_DATA`` goes in the image (``LC_WRITE``)
``L_LEN``       12   1 byte, how many bytes of ``L_DATA`` (1..32)
``L_VERSION``   13   3 bytes, the image's firmware version (``LC_BEGIN``)
``L_CRC``       16   u32, CRC-32 of the bytes received so far (read back to verify)
``L_ERROR``     20   1 byte, ``LE_*``: why the state is ``LS_ERROR``
``L_DATA``      32   32 bytes
=============== ==== ====================================================

The Pi begins (``LC_BEGIN``: size and version), writes the image in order
(``LC_WRITE``), reads ``L_CRC`` back and compares, then ``LC_COMMIT`` (the image
is written to the spare half of the flash: ``LS_STAGED``) and ``LC_ACTIVATE``:
the MCU restarts into the new image once. If that firmware comes up and the Pi
sees its version in the supervisor's ``FW_VERSION``, the Pi sends
``LC_CONFIRM`` and the new image is kept; if it does not come up, or the MCU
restarts before the confirmation, the old image runs again (``LS_FELL_BACK``).
``LC_ABORT`` drops whatever was received. What restarting and keeping two
images means is the ``flash`` object's (:class:`board.mcu.sim.SimFlash` in the
simulator).
"""

ADDRESS = 0x4B  # the supervisor is at 0x48
SIZE = 64
MAGIC_BYTES = b"LB"
MAX_IMAGE = 128 * 1024  # half of the flash the firmware may use

L_MAGIC = 0
L_CMD = 2
L_STATE = 3
L_TOTAL = 4
L_OFFSET = 8
L_LEN = 12
L_VERSION = 13
L_CRC = 16
L_ERROR = 20
L_DATA = 32
DATA_LEN = 32

LC_NONE = 0
LC_BEGIN = 1
LC_WRITE = 2
LC_COMMIT = 3
LC_ACTIVATE = 4
LC_CONFIRM = 5
LC_ABORT = 6

LS_IDLE = 0
LS_RECEIVING = 1
LS_STAGED = 2
LS_ERROR = 3
LS_TRYING = 4
LS_FELL_BACK = 5

LE_NONE = 0
LE_ORDER = 1  # a write not where the image ends so far
LE_SIZE = 2  # larger than announced or than MAX_IMAGE, or short at commit
LE_STATE = 3  # a command the state does not allow
LE_FLASH = 4  # the spare half of the flash could not be written


def crc32(crc, data):
    """CRC-32 (as zlib's) of ``data`` continuing from ``crc`` (0 to start)."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def get_u32(mem, offset):
    return mem[offset] | (mem[offset + 1] << 8) | (mem[offset + 2] << 16) | (mem[offset + 3] << 24)


def put_u32(mem, offset, value):
    for i in range(4):
        mem[offset + i] = (value >> (8 * i)) & 0xFF


class Loader:
    """Carries out the loader commands written into ``mem`` (``bytearray(SIZE)``).

    ``flash``: ``write_spare(image, version) -> bool``, ``try_spare()`` (restart
    into it once), ``keep_spare()`` (make it the firmware from now on).
    """

    def __init__(self, mem, flash):
        self.mem = mem
        self.flash = flash
        self._image = bytearray()
        self._crc = 0
        for i in range(SIZE):
            mem[i] = 0
        mem[L_MAGIC] = MAGIC_BYTES[0]
        mem[L_MAGIC + 1] = MAGIC_BYTES[1]

    def tick(self):
        cmd = self.mem[L_CMD]
        if cmd == LC_NONE:
            return
        self.mem[L_CMD] = LC_NONE
        state = self.mem[L_STATE]
        if cmd == LC_ABORT:
            self._reset(LS_IDLE)
        elif cmd == LC_BEGIN:
            self._begin()
        elif cmd == LC_WRITE and state == LS_RECEIVING:
            self._write()
        elif cmd == LC_COMMIT and state == LS_RECEIVING:
            self._commit()
        elif cmd == LC_ACTIVATE and state == LS_STAGED:
            self.mem[L_STATE] = LS_TRYING
            self.flash.try_spare()
        elif cmd == LC_CONFIRM and state == LS_TRYING:
            self.flash.keep_spare()
            self._reset(LS_IDLE)
        else:
            self._fail(LE_STATE)

    def trying(self):
        """This start runs the image tried (a real restart loses the loader's state):
        the Pi may now confirm it."""
        self._reset(LS_TRYING)

    def fell_back(self):
        """The image tried did not come up: the old one runs again."""
        self._reset(LS_FELL_BACK)

    def _reset(self, state):
        self._image = bytearray()
        self._crc = 0
        put_u32(self.mem, L_CRC, 0)
        self.mem[L_ERROR] = LE_NONE
        self.mem[L_STATE] = state

    def _begin(self):
        total = get_u32(self.mem, L_TOTAL)
        self._reset(LS_RECEIVING)
        if total == 0 or total > MAX_IMAGE:
            self._fail(LE_SIZE)

    def _write(self):
        mem = self.mem
        offset = get_u32(mem, L_OFFSET)
        length = mem[L_LEN]
        if offset != len(self._image):
            self._fail(LE_ORDER)
            return
        if length == 0 or length > DATA_LEN or offset + length > get_u32(mem, L_TOTAL):
            self._fail(LE_SIZE)
            return
        chunk = bytes(mem[L_DATA : L_DATA + length])
        self._image.extend(chunk)
        self._crc = crc32(self._crc, chunk)
        put_u32(mem, L_CRC, self._crc)

    def _commit(self):
        mem = self.mem
        if len(self._image) != get_u32(mem, L_TOTAL):
            self._fail(LE_SIZE)
            return
        version = (mem[L_VERSION], mem[L_VERSION + 1], mem[L_VERSION + 2])
        if not self.flash.write_spare(bytes(self._image), version):
            self._fail(LE_FLASH)
            return
        self._image = bytearray()
        mem[L_STATE] = LS_STAGED

    def _fail(self, error):
        self._image = bytearray()
        self.mem[L_ERROR] = error
        self.mem[L_STATE] = LS_ERROR
