"""Ports on 127.0.0.1 for the test servers, found free at the time they are asked for.

Fixed ports collided with anything else on the machine listening there (another
checkout's ``make test``, a developer's own server), and the tests then failed
for a reason of their own. A server that can listen on port 0 should (the
kernel picks, nothing can take it meanwhile); these are for those that cannot
say which port they got (SeaweedFS), for a port where nothing must listen, and
for a box started in another process.
"""

import random
import socket

# Below Linux's ephemeral range (32768 and up), where outgoing connections take
# their source ports, so that none takes a port found here before its server binds it.
LOW, HIGH = 20000, 32000


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HELD = []  # the sockets holding closed_port()'s ports


def closed_port():
    """A TCP port where nothing listens, and nothing can while the tests run: this process
    holds it bound and never listens, so a connection there is refused. (A port of
    :func:`free_port` may be taken meanwhile by a server that binds port 0, and a test
    expecting nobody there then talks to it.)"""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def free_ports(offsets, tries=500):
    """A base port ``p`` such that ``p + o`` is free for every ``o`` in ``offsets``
    (a server that listens on several ports at fixed distances, SeaweedFS's).

    :raises RuntimeError: none found in ``tries`` random bases
    """
    span = max(offsets)
    rng = random.SystemRandom()
    for _ in range(tries):
        base = rng.randrange(LOW, HIGH - span)
        if all(_free(base + o) for o in offsets):
            return base
    raise RuntimeError("no %d free ports at offsets %s on 127.0.0.1" % (len(offsets), sorted(offsets)))
