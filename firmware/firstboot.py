"""First boot without a screen: the setup code on the console and the HAT's LED blinking.

An installer puts the box on the wall and finishes setup from a phone. Until the
setup wizard has been completed:

* the console (an HDMI screen or a serial lead, if one is plugged in) shows where
  the web UI is and the setup code, at every boot: ``linekeeper banner`` run by the
  ``linekeeper-banner`` service writes it to the console and to the login prompt's
  issue file (``/etc/issue.d/60-linekeeper.issue`` links to it; ``\\4`` there is
  the box's IPv4 address, filled in by agetty);
* the HAT's status LED blinks the ``setup`` pattern (0.5 s on, 0.5 s off): the
  recorder's :class:`SetupLed` switches it to steady ``on`` once setup is done.

The web UI makes the code (``web.setupcode``) and deletes it when setup completes;
this module only reads it, and refuses anything in its place that is not a setup
code (a link, a big file, other text), so the banner can never show another file.
"""

import logging
import os
import re
import stat

from .errors import LinekeeperError

log = logging.getLogger(__name__)

SETUP_CODE_FILE = "setup-code"  # web.setupcode.FILE_NAME
WEB_DB = "web.db"
_CODE = re.compile(r"^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$")
_MAX_BYTES = 64
LED_CHECK_US = 5_000_000


def setup_pending(data_dir):
    """Whether the box still waits for its setup wizard: the web UI has not started yet
    (no ``web.db``) or its setup code is still there (deleted when setup completes)."""
    return not os.path.exists(os.path.join(data_dir, WEB_DB)) or os.path.lexists(
        os.path.join(data_dir, SETUP_CODE_FILE)
    )


def read_setup_code(data_dir):
    """The setup code the web UI made, or None when there is none (yet, or any more).

    :raises LinekeeperError: something other than a setup code is in its place
    """
    path = os.path.join(data_dir, SETUP_CODE_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LinekeeperError("cannot read the setup code %s: %s" % (path, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        data = os.read(fd, _MAX_BYTES + 1) if stat.S_ISREG(st.st_mode) else b""
    finally:
        os.close(fd)
    code = data.decode("ascii", "replace").strip()
    if not _CODE.match(code):
        raise LinekeeperError("%s does not hold a setup code: not shown" % path)
    return code


def banner_text(code, host):
    """The first-boot message: where to go and the setup code (``host``: the box's name)."""
    return (
        "Linekeeper is not set up yet.\n"
        "On a phone or computer on this network, open https://%s.local/\n"
        "and enter the setup code:\n\n"
        "    %s\n" % (host, code)
    )


def issue_text(code, host):
    """The login prompt's version of :func:`banner_text`, with the box's address (agetty
    puts it for ``\\4``): the console and the journal cannot know it."""
    text = banner_text(code, host).replace("/\nand enter", "/\n(or https://\\4/) and enter")
    return text + "Box address: \\4\n\n"


def write_issue(path, text):
    """Put ``text`` (or nothing: ``None``) in the issue file at ``path``, which the
    installer's tmpfiles entry makes at boot; an empty file shows nothing."""
    with open(path, "w", encoding="ascii") as f:
        f.write(text or "")


class SetupLed:
    """Keeps the HAT's status LED on ``setup`` while setup is pending, ``on`` after.

    :param link: an opened :class:`board.mcu.link.McuLink`
    :param data_dir: the box's data directory
    :param clock: a :class:`~firmware.clock.Clock`; looks again every ``period_us``
    """

    def __init__(self, link, data_dir, clock, period_us=LED_CHECK_US):
        self.link = link
        self.data_dir = data_dir
        self.clock = clock
        self.period_us = period_us
        self.shown = None
        self._timer = None
        self._closed = False

    def start(self):
        self._check()

    def _check(self):
        if self._closed:
            return
        pattern = "setup" if setup_pending(self.data_dir) else "on"
        if pattern != self.shown:
            try:
                self.link.set_led(pattern)
                self.shown = pattern
            except OSError as exc:  # an LED is not worth stopping the recorder for
                log.warning("cannot set the status LED to %s: %s", pattern, exc)
        self._timer = self.clock.call_later(self.period_us, self._check)

    def close(self):
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
