"""An export sent in chunks, so that one the browser drops part way is told from one taken.

A recording's export is audited before it leaves (``export``). Sent as one block, a
download the browser dropped (closed, or the connection lost) stayed in the trail as a
recording taken. Sent by :func:`export_body`, the server asks the body for each next chunk
only once it has written the last, and closes it (``GeneratorExit``) when the connection
goes: a body closed before its last byte writes a second ``export`` entry with the first's
details and ``failed``, saying how far it got, so the breach scope and the reports count no
copy taken (:func:`firmware.breachscope.failed_copies`). The box's web UI and the central
viewer both send their exports this way.
"""

import logging

log = logging.getLogger(__name__)

# A download's chunk (the box's and the viewer's exports).
CHUNK = 64 * 1024


def cut_said(sent, size):
    """The ``failed`` of an export's download that stopped after ``sent`` of its ``size`` bytes."""
    return "the download stopped after %d of its %d bytes (the connection closed)" % (sent, size)


def export_body(data, chunk_bytes, trail, wall_us, actor, target, details):
    """A generator of ``data`` (bytes, from memory) in chunks of ``chunk_bytes``, for a
    :class:`flask.Response` with ``direct_passthrough``; closed before its last byte, it
    appends to ``trail`` (an audit trail: ``append(actor, action, target, details, wall_us)``)
    an ``export`` entry of ``actor`` on ``target`` with ``details`` (the export's own entry's,
    as written) and ``failed`` (:func:`cut_said`), at ``wall_us()`` µs. Nothing of the request
    is read once it runs: the view has returned by then. A trail that refuses the entry is
    logged: the response is gone, nobody is left to tell."""
    view = memoryview(data)
    sent = 0
    try:
        for at in range(0, len(view), chunk_bytes):
            chunk = view[at : at + chunk_bytes].tobytes()
            yield chunk
            sent += len(chunk)  # the server has written it: it asks for the next
    finally:
        if sent < len(view):  # closed part way (GeneratorExit): the browser dropped it
            failed = dict(details, failed=cut_said(sent, len(view)))
            try:
                trail.append(actor, "export", target, failed, int(wall_us()))
            except Exception as exc:
                log.error("call %s's export by %s, cut short, could not be audited: %s", target, actor, exc)
