"""A recorder of control protocol version 1 (before ``address``), for the web UI and
the client of a later release to meet after an update left half done."""

import json

from firmware.control import ControlServer


class OldRecorder(ControlServer):
    """As a version 1 recorder answered: a request of any other version refused, one its
    handlers' arguments do not fit refused as bad arguments."""

    def _answer(self, line):
        request = json.loads(line)
        op = request.get("op")
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
