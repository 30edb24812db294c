"""The MCU's two firmware images on its own flash (littlefs), for the loader.

The firmware that runs is the one at the top of the flash (``main.py``,
``lkmcu/``): the one the technician installed, or the last one kept. A new
image (:mod:`board.mcu.flash`'s format) is written to ``spare/`` whole or not
at all (``spare.part/`` renamed), tried once, and kept only when the Pi
confirms it. The step the flash is at is the file ``fwstate``:

- ``try_spare`` notes ``try`` and restarts the MCU. At boot ``main.py`` turns
  ``try`` into ``tried`` (from now on any restart falls back) and runs
  ``spare/main.py``;
- ``keep_spare`` (the spare, running and confirmed): every file is copied
  beside its place as ``NAME.new``, ``fwstate`` says ``keep``, then each is
  renamed into place; a boot that finds ``keep`` finishes the renames (a power
  cut in the middle of them);
- a boot that finds ``tried``: the spare was never confirmed. The old image
  runs and the loader reports ``LS_FELL_BACK``.

``fs`` is ``os`` on the MCU (MicroPython's: no ``os.path``, no ``shutil``), and
``root`` the folder the flash is mounted at ("" there; a temporary folder in the
tests).
"""

STATE_FILE = "fwstate"
SPARE = "spare"
BOOT_RUN = 0  # run the image at the top of the flash
BOOT_TRY = 1  # run the spare, once
BOOT_FELL_BACK = 2  # run the top image: the spare tried did not get confirmed
_S_IFDIR = 0x4000  # a folder, in os.stat's mode (MicroPython has no stat module)


def parse_image(image):
    """``(version, [(name, bytes)])`` of a firmware image; ValueError when it is not one."""
    if len(image) < 9 or bytes(image[:4]) != b"LKFW":
        raise ValueError("not an MCU firmware image")
    version = (image[4], image[5], image[6])
    count = image[7] | (image[8] << 8)
    pos, files = 9, []
    for _ in range(count):
        n = image[pos] | (image[pos + 1] << 8)
        name = bytes(image[pos + 2 : pos + 2 + n]).decode()
        at = pos + 2 + n
        size = image[at] | (image[at + 1] << 8) | (image[at + 2] << 16) | (image[at + 3] << 24)
        data = bytes(image[at + 4 : at + 4 + size])
        if len(data) != size or ".." in name or name.startswith("/"):
            raise ValueError("the image is cut short or names a file outside the firmware")
        files.append((name, data))
        pos = at + 4 + size
    return version, files


class FlashImages:
    """The ``flash`` of :class:`lkmcu.loader.Loader` on the MCU's own file system.

    :param fs: ``os`` (listdir, mkdir, remove, rename, rmdir, stat)
    :param reset: restarts the MCU (``machine.reset``); never returns there
    """

    def __init__(self, fs, reset, root=""):
        self.fs = fs
        self.reset = reset
        self.root = root

    def _path(self, name):
        return self.root + "/" + name if self.root else name

    def _exists(self, name):
        try:
            self.fs.stat(self._path(name))
            return True
        except OSError:
            return False

    def _state(self):
        try:
            with open(self._path(STATE_FILE)) as f:
                return f.read().strip()
        except OSError:
            return ""

    def _set_state(self, state):
        if not state:
            if self._exists(STATE_FILE):
                self.fs.remove(self._path(STATE_FILE))
            return
        with open(self._path(STATE_FILE + ".new"), "w") as f:
            f.write(state)
        self.fs.rename(self._path(STATE_FILE + ".new"), self._path(STATE_FILE))

    def _drop(self, folder):
        """Remove ``folder`` and everything in it (no shutil on the MCU)."""
        if not self._exists(folder):
            return
        for name in self.fs.listdir(self._path(folder)):
            path = folder + "/" + name
            if self.fs.stat(self._path(path))[0] & _S_IFDIR:
                self._drop(path)
            else:
                self.fs.remove(self._path(path))
        self.fs.rmdir(self._path(folder))

    def _write(self, name, data):
        with open(self._path(name), "wb") as f:
            f.write(data)

    def write_spare(self, image, version):
        """Unpack ``image`` into ``spare/``; False when it is not a whole image of
        ``version`` or the flash refused it (the spare is then dropped)."""
        part = SPARE + ".part"
        try:
            declared, files = parse_image(image)
            if declared != tuple(version):
                return False
            self._drop(part)
            self.fs.mkdir(self._path(part))
            self.fs.mkdir(self._path(part + "/lkmcu"))
            for name, data in files:
                self._write(part + "/" + name, data)
            self._write(part + "/IMAGE", bytes(image[:7]))
            self._drop(SPARE)
            self.fs.rename(self._path(part), self._path(SPARE))
        except (OSError, ValueError):
            try:
                self._drop(part)
            except OSError:
                pass
            return False
        return True

    def try_spare(self):
        """Restart into the spare, once."""
        self._set_state("try")
        self.reset()

    def keep_spare(self):
        """The spare is confirmed: it becomes the firmware at the top of the flash."""
        names = self._spare_files()
        for name in names:
            with open(self._path(SPARE + "/" + name), "rb") as f:
                self._write(name + ".new", f.read())
        self._set_state("keep")
        self._finish_keep(names)

    def _spare_files(self):
        names = ["main.py"]
        folder = self._path(SPARE + "/lkmcu")
        for name in self.fs.listdir(folder):
            # A folder is no file of the image: CPython's __pycache__, where the simulated
            # board and the tests run the spare from a folder standing for the flash.
            if not self.fs.stat(folder + "/" + name)[0] & _S_IFDIR:
                names.append("lkmcu/" + name)
        return names

    def _finish_keep(self, names):
        for name in names:
            if self._exists(name + ".new"):
                self.fs.rename(self._path(name + ".new"), self._path(name))
        self._set_state("")
        self._drop(SPARE)

    def boot(self):
        """What this start runs: ``BOOT_RUN``, ``BOOT_TRY`` or ``BOOT_FELL_BACK``."""
        state = self._state()
        if state == "keep":
            self._finish_keep(self._spare_files() if self._exists(SPARE) else [])
            return BOOT_RUN
        if state == "try" and self._exists(SPARE + "/main.py"):
            self._set_state("tried")  # a restart before the Pi confirms falls back
            return BOOT_TRY
        if state:
            self._set_state("")
            return BOOT_FELL_BACK
        return BOOT_RUN

    def spare_main(self):
        """The path of the spare's ``main.py``."""
        return self._path(SPARE + "/main.py")

    def spare_folder(self):
        return self._path(SPARE)
