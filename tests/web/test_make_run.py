"""`make run`'s entry point: the box on the simulated board with the demo,
and the status page showing the lines change state as the demo plays."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROW = re.compile(r'<tr id="line-(\d)" data-state="(\w+)"')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture
def running_box(tmp_path):
    port = free_port()
    # The same command `make run` runs, a little faster than real time.
    cmd = [sys.executable, "-m", "firmware.cli", "run", "--board", "sim", "--scenario", "demo",
           "--speed", "3", "--data-dir", str(tmp_path / "data"), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = "http://127.0.0.1:%d/" % port
    deadline = time.monotonic() + 60
    while True:
        try:
            fetch(url)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the box did not come up:\n" + proc.stdout.read())
            time.sleep(0.2)
    yield url, proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the box did not stop on SIGTERM")


def test_status_page_follows_the_demo(running_box):
    url, proc = running_box
    seen = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page = fetch(url)
        for line, state in ROW.findall(page):
            seen.setdefault(int(line), set()).add(state)
        busy = {l for l, states in seen.items() if states - {"idle"}}
        back_to_idle = {l for l in busy if "idle" in seen[l]}
        if len(busy) >= 2 and back_to_idle:
            break
        time.sleep(0.1)
    assert sorted(seen) == [1, 2, 3, 4]
    assert len(busy) >= 2, seen
    assert {"ringing", "connected"} <= set().union(*seen.values()), seen
    assert back_to_idle, seen
    status = fetch(url + "api/status")
    assert '"lines"' in status


def test_stops_cleanly_on_sigterm(running_box):
    url, proc = running_box
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
