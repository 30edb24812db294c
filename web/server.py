"""Serve the web UI with waitress on a background thread."""

import threading

from waitress import create_server

from . import create_app


class WebServer:
    def __init__(self, box, host="127.0.0.1", port=8080):
        self.app = create_app(box.status, box.calllog)
        self._server = create_server(self.app, host=host, port=port, threads=8,
                                     channel_timeout=30, ident="linekeeper")
        self._thread = None

    @property
    def url(self):
        host, port = self._server.effective_host, self._server.effective_port
        return "http://%s:%s/" % (host, port)

    def start(self):
        self._thread = threading.Thread(target=self._server.run, name="linekeeper-web", daemon=True)
        self._thread.start()

    def stop(self):
        self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
