"""systemd's notify protocol: READY, STOPPING, STATUS and watchdog pings.

A few lines over ``$NOTIFY_SOCKET`` (a Unix datagram socket; a name starting
with ``@`` is in the abstract namespace), so no library is needed. Without the
variable (not started by systemd) every call does nothing.
"""

import os
import socket


class Notifier:
    def __init__(self, address=None):
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if address and address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        self.sent = []

    @property
    def enabled(self):
        return self.address is not None

    def watchdog_us(self):
        """The watchdog interval systemd asked for (``$WATCHDOG_USEC``), or None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and int(pid) != os.getpid()):
            return None
        return int(usec)

    def notify(self, **fields):
        """Send ``READY=1``-style fields (``ready=1`` becomes ``READY=1``)."""
        message = "\n".join("%s=%s" % (k.upper(), v) for k, v in fields.items())
        self.sent.append(message)
        if self.address is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(self.address)
            sock.sendall(message.encode())

    def ready(self, status=None):
        self.notify(ready=1, **({"status": status} if status else {}))

    def ping(self):
        self.notify(watchdog=1)

    def stopping(self):
        self.notify(stopping=1)
