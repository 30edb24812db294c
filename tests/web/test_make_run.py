"""`make run`'s entry point: the box on the simulated board with the demo,
served over HTTPS; after the setup wizard, the status page shows the lines
change state as the demo plays."""

import http.cookiejar
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from support.ports import free_port

pytestmark = pytest.mark.slow  # runs `make run` as a real server

ROW = re.compile(r'<tr id="line-(\d)" data-state="(\w+)"')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "demo box admin password 7"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Cookies, CSRF tokens, and TLS checked against the box's own certificate."""

    def __init__(self, base, cafile, follow=True):
        self.base = base
        context = ssl.create_default_context(cafile=cafile)
        handlers = [
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        ]
        if not follow:
            handlers.append(NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)

    def get(self, path):
        with self.opener.open(self.base + path, timeout=10) as resp:
            return resp.read().decode()

    def post(self, path, form, token_from):
        form = dict(form, csrf_token=TOKEN.search(self.get(token_from)).group(1))
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=30) as resp:
            return resp.read().decode()


@pytest.fixture
def running_box(tmp_path):
    http_port, https_port = free_port(), free_port()
    data = tmp_path / "data"
    # The same command `make run` runs, a little faster than real time.
    cmd = [
        sys.executable,
        "-m",
        "firmware.cli",
        "run",
        "--board",
        "sim",
        "--scenario",
        "demo",
        "--loop",
        "--speed",
        "3",
        "--data-dir",
        str(data),
        "--port",
        str(http_port),
        "--https-port",
        str(https_port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    base = "https://127.0.0.1:%d" % https_port
    deadline = time.monotonic() + 60
    while True:
        try:
            cert = data / "tls" / "cert.pem"
            if cert.exists() and any("setup code" in line for line in output):
                Browser(base, str(cert)).get("/security")
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            reader.join(5)
            pytest.fail("the box did not come up:\n" + "".join(output))
        time.sleep(0.2)
    yield base, http_port, str(cert), proc, output
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the box did not stop on SIGTERM")


def set_up(browser, code):
    form = {
        "setup_code": code,
        "organisation": "Demo Ltd",
        "country": "uk",
        "ico_number": "ZA123456",
        "ico_renewal": "2027-01-31",
        "purpose": "To keep a record of orders taken by phone.",
        "admin_name": "admin",
        "admin_password": PASSWORD,
        "admin_confirm": PASSWORD,
    }
    for n in range(1, 5):
        form["line-%d-name" % n] = "Line %d" % n
        form["line-%d-mode" % n] = "record"
    page = browser.post("/setup", form, token_from="/setup")
    key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
    browser.post("/setup/recovery", {"typed_key": key}, token_from="/setup/recovery")


def test_status_page_follows_the_demo(running_box):
    base, http_port, cert, proc, output = running_box
    text = "".join(output)
    code = re.search(r"setup code ([A-Z0-9-]{19})", text).group(1)
    assert base + "/" in text
    assert re.search(r"fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}", text)

    # Plain HTTP only redirects to HTTPS.
    plain = urllib.request.build_opener(NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as redirect:
        plain.open("http://127.0.0.1:%d/calls?x=1" % http_port, timeout=5)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"] == base + "/calls?x=1"

    browser = Browser(base, cert)
    assert "Set up this box" in browser.get("/")
    set_up(browser, code)

    seen = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page = browser.get("/")
        for line, state in ROW.findall(page):
            seen.setdefault(int(line), set()).add(state)
        busy = {line for line, states in seen.items() if states - {"idle"}}
        back_to_idle = {line for line in busy if "idle" in seen[line]}
        # A ring burst lasts a fraction of a second and a page can take longer on a loaded
        # machine: the demo's next calls ring again, so look until both states were seen.
        shown = set().union(*seen.values())
        if len(busy) >= 2 and back_to_idle and {"ringing", "connected"} <= shown:
            break
        time.sleep(0.1)
    assert sorted(seen) == [1, 2, 3, 4]
    assert len(busy) >= 2, seen
    assert {"ringing", "connected"} <= set().union(*seen.values()), seen
    assert back_to_idle, seen
    assert '"lines"' in browser.get("/api/status")
    # Logged out, nothing but the login page.
    anonymous = Browser(base, cert, follow=False)
    with pytest.raises(urllib.error.HTTPError) as refused:
        anonymous.get("/api/status")
    assert refused.value.code == 401


def test_stops_cleanly_on_sigterm(running_box):
    base, http_port, cert, proc, output = running_box
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
