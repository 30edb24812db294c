"""A recorder of control protocol version 1 (before version 2 named ``address``), for the
web UI and the client of a later release to meet after an update left half done.

Version 1 came in two kinds, which the handlers given model: the first releases' operations
took no ``address`` (``pause(line, actor)``); the release before version 2 (8f95689) took
it already (``pause(line, actor, address=None)``) and audited it."""

import json

from firmware.control import ControlServer


class OldRecorder(ControlServer):
    """As a version 1 recorder answered: a request of any other version refused, one its
    handlers' arguments do not fit refused as bad arguments. ``asked``: each request, as
    ``(version, op, args)``."""

    def __init__(self, path, handlers, **kw):
        super().__init__(path, handlers, **kw)
        self.asked = []

    def _answer(self, line):
        request = json.loads(line)
        op = request.get("op")
        self.asked.append((request.get("v"), op, request.get("args", {})))
        if request.get("v") != 1:
            return _refused("this recorder speaks control protocol version 1", "version")
        if op not in self.handlers:
            return _refused("unknown operation %r" % (op,), "bad_request")
        try:
            return {"v": 1, "ok": True, "result": self.handlers[op](**request.get("args", {}))}
        except TypeError as exc:
            return _refused("bad arguments for %s: %s" % (op, exc), "bad_request")


def _refused(message, kind):
    return {"v": 1, "ok": False, "error": message, "kind": kind}
