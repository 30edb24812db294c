"""The network edge's cost (issue 11): a page through web.edge vs. cheroot serving TLS itself.

Both serve the same set-up app (the security page, which needs no login)
on loopback, each request on a new TLS connection with session resumption
as a browser does (the edge closes every connection after one response):

- ``edge``      :class:`web.server.WebServer`: asyncio TLS and request
                reading, then cheroot on a Unix socket (the box now)
- ``baseline``  cheroot with its builtin TLS adapter (the box before)

Reported: p50/p95 per request and the edge's p50 as a ratio of the
baseline's. What the edge buys (slow clients cannot take the UI down) is
shown by tests/web/test_slowloris.py, not timed here.
"""

import os
import socket
import ssl
import statistics
import tempfile
import threading
import time


def _get(port, context, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, session=session) as tls:
        tls.sendall(b"GET /security HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:80]
        return tls.session


def _measure(port, iterations):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    session = _get(port, context)
    samples = []
    for _ in range(iterations):
        t = time.perf_counter()
        session = _get(port, context, session) or session
        samples.append(time.perf_counter() - t)
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 2),
        "n": len(ms),
    }


def _app(data_dir):
    from bench.web import _app as set_up_app

    calls_db = os.path.join(data_dir, "calls.db")
    import sqlite3

    from firmware.calls.calllog import SCHEMA

    db = sqlite3.connect(calls_db)
    db.executescript(SCHEMA)
    db.close()
    app, _ = set_up_app(data_dir, calls_db)
    return app


def run(quick=False):
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter

    from web.server import WebServer
    from web.tls import ensure_certificate

    iterations = 50 if quick else 300
    results = {"iterations": iterations, "targets": {"edge_p50_vs_baseline": "report only"}}
    with tempfile.TemporaryDirectory() as tmp:
        app = _app(tmp)
        cert = ensure_certificate(os.path.join(tmp, "tls"), ["localhost"])
        edge = WebServer(app, cert, "127.0.0.1", 0, 0)
        edge.start()
        baseline = wsgi.Server(("127.0.0.1", 0), app, numthreads=16, timeout=30, shutdown_timeout=2)
        adapter = BuiltinSSLAdapter(cert.cert_path, cert.key_path, private_key_password=cert.password)
        adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        baseline.ssl_adapter = adapter
        baseline.prepare()
        thread = threading.Thread(target=baseline.serve, daemon=True)
        thread.start()
        try:
            # Interleaved rounds, so both see the same machine load.
            rounds = {"edge": [], "baseline": []}
            for _ in range(3):
                rounds["baseline"].append(_measure(baseline.bind_addr[1], iterations // 3))
                rounds["edge"].append(_measure(edge.https_port, iterations // 3))
        finally:
            edge.stop()
            baseline.stop()
            app.extensions["linekeeper"].close()
    for name, parts in rounds.items():
        results[name] = {
            "p50_ms": round(statistics.median(p["p50_ms"] for p in parts), 2),
            "p95_ms": round(max(p["p95_ms"] for p in parts), 2),
            "n": sum(p["n"] for p in parts),
        }
    results["edge_p50_vs_baseline"] = round(results["edge"]["p50_ms"] / results["baseline"]["p50_ms"], 2)
    return results
