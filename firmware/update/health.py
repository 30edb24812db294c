"""Is a freshly started box healthy? Recorder ready, lines supervised, data writable, web up."""

import http.client
import os
import time
import urllib.parse

from firmware.calls.supervisor import STATES

from ..control import ControlError, RecorderUnavailable


def _recorder(client, old_pid):
    try:
        hello = client.call("hello", protocol=1)
        snapshot = client.call("snapshot")
    except (RecorderUnavailable, ControlError) as exc:
        return "the recorder does not answer (%s)" % exc
    if hello["pid"] == old_pid:
        return "the recorder has not restarted (still pid %d)" % old_pid
    lines = snapshot.get("lines", [])
    if len(lines) != hello["lines"]:
        return "the recorder supervises %d of its %d lines" % (len(lines), hello["lines"])
    bad = [entry["line"] for entry in lines if entry.get("state") not in STATES]
    if bad:
        return "lines %s are in no known state" % bad
    return None


def _data(data_dir):
    probe = os.path.join(data_dir, ".update-health-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return "the data directory is not writable (%s)" % exc
    return None


def _web(url):
    # The web UI's HTTP port answers every request with a redirect to HTTPS;
    # any answer below 500 means its process serves.
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
    try:
        conn.request("GET", parts.path or "/")
        status = conn.getresponse().status
    except OSError as exc:
        return "the web UI does not answer on %s (%s)" % (url, exc)
    finally:
        conn.close()
    if status >= 500:
        return "the web UI answers %d on %s" % (status, url)
    return None


def check_once(client, data_dir, web_url, old_pid):
    """The first thing wrong with the box now, or None when it is healthy."""
    return _recorder(client, old_pid) or _data(data_dir) or (_web(web_url) if web_url else None)


def wait_healthy(
    client, data_dir, web_url, old_pid, timeout_s, poll_s=0.5, monotonic=time.monotonic, sleep=time.sleep
):
    """Wait up to ``timeout_s`` for the box to be healthy; None, or what was still wrong."""
    deadline = monotonic() + timeout_s
    while True:
        problem = check_once(client, data_dir, web_url, old_pid)
        if problem is None or monotonic() >= deadline:
            return problem
        sleep(poll_s)
