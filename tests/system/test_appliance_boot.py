"""The appliance booted for real: systemd as PID 1 in a container (systemd-nspawn).

A Debian 12 root (scripts/make-test-root, cached under var/cache between local
runs) gets the box through scripts/install-box exactly as a Pi would, with the
simulated board playing a scenario in a loop; then it boots and is tested from
outside through nsenter:

- the recorder reports READY and records calls; the web UI answers;
- only the web UI listens on TCP; only the recorder could open devices;
- the web UI killed with SIGKILL during a call: the recording is complete;
- the recorder stopped with SIGSTOP: the watchdog restarts it within
  WatchdogSec + 5 s;
- a recorder that cannot start (its data directory held by another process)
  is started again for as long as it fails, and says why, on a web UI that
  starts without it; it records again once it can;
- systemctl poweroff, boot again: recording again, and verify passes.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "appliance owner password 1"
WATCHDOG_S = 10
DATA = "/var/lib/linekeeper"
LK = "/opt/linekeeper/current/venv/bin/linekeeper"
# The installer fetches from PyPI inside the container: it trusts what this
# machine trusts (which may include a local proxy's authority).
HOST_CA = [
    "--bind-ro=/etc/ssl/certs/ca-certificates.crt",
    "--setenv=PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
]

# A call every 20 s on line 1, 12 s of talk each; the recorder loops it.
SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 2,
    "calls": [
        {
            "line": 1,
            "at": 2.0 + 20 * i,
            "direction": "in",
            "rings": 1,
            "talk": 12.0,
            "speech": [{"at": 1.0, "text": "This is call number %d on the appliance." % i}],
        }
        for i in range(3)
    ],
}

pytestmark = pytest.mark.slow


def run(*argv, check=True, timeout=600, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise AssertionError(
            "%s failed (%d):\n%s%s" % (" ".join(argv), result.returncode, result.stdout, result.stderr)
        )
    return result


class Container:
    """A booted container: :meth:`sh` runs a command inside it."""

    def __init__(self, root, log_path):
        self.root = root
        self.log_path = log_path
        self.proc = None
        self.leader = None

    def boot(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--register=no",
                "--keep-unit",
                "--private-network",
                "--quiet",
                "-D",
                str(self.root),
                "-b",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 60
        while self.leader is None:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "the container did not start:\n" + self.log()
            # The container's PID 1 is nspawn's child running systemd (nspawn forks
            # short-lived helpers too).
            kids = run("pgrep", "-P", str(self.proc.pid), "-x", "systemd", check=False).stdout.split()
            self.leader = int(kids[0]) if kids else None
            time.sleep(0.2)
        # systemd's bus comes up a moment after PID 1 starts.
        while True:
            state = self.sh("systemctl is-system-running --wait", check=False, timeout=120)
            if state.stdout.strip() in ("running", "degraded"):
                break
            assert time.monotonic() < deadline + 60, state.stdout + state.stderr + self.log()
            time.sleep(0.5)

    def sh(self, command, check=True, timeout=120):
        return run(
            "nsenter", "-t", str(self.leader), "-a", "/bin/sh", "-c", command, check=check, timeout=timeout
        )

    def poweroff(self):
        self.sh("systemctl poweroff", check=False)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.leader = None

    def journal(self, unit):
        return self.sh("journalctl -b -u %s --no-pager -n 40" % unit, check=False).stdout

    def log(self):
        return Path(self.log_path).read_text(errors="replace")[-4000:]

    def show(self, unit, *props):
        out = self.sh("systemctl show -p %s %s" % (",".join(props), unit)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def calls(self):
        out = self.sh("%s calls --data-dir %s --password-file /root/pw --json" % (LK, DATA)).stdout
        return [json.loads(line) for line in out.splitlines()]

    def wait_for(self, what, predicate, timeout_s, unit="linekeeper-recorder"):
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, "timed out waiting for %s; %s:\n%s" % (
                what,
                unit,
                self.journal(unit),
            )
            time.sleep(1)


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    assert os.geteuid() == 0, "booting the appliance in a container needs root"
    # Files made for the container as an installer's shell would (the CLI's main(),
    # run in-process by other tests, narrows this process's umask to 077).
    old_umask = os.umask(0o022)
    try:
        cache = REPO / "var" / "cache" / "root-amd64"
        cache.parent.mkdir(parents=True, exist_ok=True)
        run(str(REPO / "scripts" / "make-test-root"), str(cache), timeout=1800)
        root = tmp_path_factory.mktemp("appliance") / "root"
        run("cp", "-a", "--reflink=auto", str(cache), str(root))
        try:
            src = root / "opt" / "src"
            run(
                "sh",
                "-c",
                "git -C %s ls-files -z | (cd %s && tar --null -T - -cf -) "
                "| (mkdir -p %s && tar -xf - -C %s)" % (REPO, REPO, src, src),
            )
            # Readable by the recorder's user whatever this process's umask is (the CLI's
            # main(), run in-process by other tests, narrows it to 077).
            (root / "etc" / "linekeeper").mkdir(parents=True, exist_ok=True)
            (root / "etc" / "linekeeper").chmod(0o755)
            (root / "etc" / "linekeeper" / "scenario.json").write_text(json.dumps(SCENARIO))
            (root / "etc" / "linekeeper" / "scenario.json").chmod(0o644)
            (root / "root" / "pw").write_text(PASSWORD + "\n")
            # Install as on a Pi, with the simulated board; then the box's keys, made
            # by the recorder's user as the setup wizard would.
            nspawn = (
                ["systemd-nspawn", "--register=no", "--keep-unit", "--quiet", "--pipe", "-D", str(root)]
                + HOST_CA
                + ["--"]
            )
            run(*nspawn, "/opt/src/scripts/install-box", "--board", "sim", "--no-start", timeout=1200)
            (root / "etc" / "default" / "linekeeper").write_text(
                "LINEKEEPER_BOARD=sim\n"
                "LINEKEEPER_RECORDER_ARGS=--scenario /etc/linekeeper/scenario.json --loop\n"
            )
            run(
                *nspawn,
                "/bin/sh",
                "-c",
                "install -m 0640 -g linekeeper /root/pw /var/lib/linekeeper/.pw && "
                "setpriv --reuid linekeeper-rec --regid linekeeper --init-groups /bin/sh -c "
                "'umask 0007; %s init --data-dir %s --password-file %s/.pw' && rm %s/.pw"
                % (LK, DATA, DATA, DATA),
            )
            # A box `init` made records nothing until a consent notice is set: one set (a
            # beep on inbound calls), the file keeping its owner and mode.
            config_path = root / DATA.lstrip("/") / "config.json"
            config = json.loads(config_path.read_text())
            config["policy"]["consent"]["inbound"] = "tone"
            with open(config_path, "w") as f:
                json.dump(config, f)
            box = Container(root, str(root.parent / "console.log"))
            box.boot()
            yield box
            if box.leader is not None:
                box.poweroff()
        finally:
            run("rm", "-rf", str(root), check=False)
    finally:
        os.umask(old_umask)


def completed(box, n):
    """The calls that have ended and whose recording is sealed (the recorder seals a
    moment after the call ends), if there are ``n`` of them."""
    calls = [c for c in box.calls() if c["ended_at"] and c["recording"] != "recording"]
    return calls if len(calls) >= n else None


def test_recorder_ready_and_recording_web_answering(appliance):
    appliance.wait_for(
        "the recorder to start",
        lambda: appliance.show("linekeeper-recorder", "ActiveState")["ActiveState"] != "activating",
        90,
    )
    rec = appliance.show("linekeeper-recorder", "ActiveState", "SubState", "StatusText", "Type")
    assert rec == {
        "ActiveState": "active",
        "SubState": "running",
        "StatusText": "recording 2 lines",
        "Type": "notify",
    }, appliance.journal("linekeeper-recorder")
    # Run through the active-slot link (no slot partitions here: the installed firmware).
    assert appliance.show("linekeeper-slot", "ActiveState")["ActiveState"] == "active"
    assert appliance.sh("readlink /opt/linekeeper/current").stdout.strip() == "installed"
    # Its slot note, which the Updates page shows as the installed version.
    note = json.loads(appliance.sh("cat /opt/linekeeper/current/linekeeper-slot.json").stdout)
    assert note["installed_by"] == "install-box" and note["version"]
    assert appliance.show("linekeeper-update-recover", "ConditionResult") == {"ConditionResult": "no"}
    web = appliance.sh("curl -sk -o /dev/null -w '%{http_code} %{redirect_url}' https://127.0.0.1/").stdout
    assert web.startswith("302") and web.endswith("/setup")
    calls = appliance.wait_for("a recorded call", lambda: completed(appliance, 1), 90)
    assert calls[0]["recording"] == "complete"


def test_the_setup_code_is_on_the_console_and_the_login_prompt(appliance):
    appliance.wait_for(
        "the setup banner",
        lambda: appliance.show("linekeeper-banner", "ActiveState")["ActiveState"] == "active",
        60,
        unit="linekeeper-banner",
    )
    code = appliance.sh("cat %s/setup-code" % DATA).stdout.strip()
    assert code and code in appliance.log(), appliance.journal("linekeeper-banner")
    assert code in appliance.sh("cat /etc/issue.d/60-linekeeper.issue").stdout


def test_only_the_web_ui_listens_and_only_the_recorder_has_devices(appliance):
    listening = appliance.sh("ss -Htlnp").stdout
    owners = {part.split(",")[0].strip('("') for part in listening.split("users:")[1:]}
    assert owners == {"linekeeper"}, listening
    web_pid = appliance.show("linekeeper-web", "MainPID")["MainPID"]
    rec_pid = appliance.show("linekeeper-recorder", "MainPID")["MainPID"]
    assert "pid=%s," % web_pid in listening and "pid=%s," % rec_pid not in listening
    # The web UI's /dev has no device nodes but the basic ones (PrivateDevices=yes).
    web_dev = appliance.sh("ls /proc/%s/root/dev" % web_pid).stdout.split()
    assert not [d for d in web_dev if d.startswith(("gpiochip", "snd", "i2c"))]


def test_killing_the_web_ui_during_a_call_keeps_the_recording(appliance):
    before = len(appliance.calls())
    rec_pid = appliance.show("linekeeper-recorder", "MainPID")["MainPID"]
    # Wait until a call is up, then kill the web UI.
    appliance.wait_for("a call in progress", lambda: [c for c in appliance.calls() if not c["ended_at"]], 40)
    web_pid = appliance.show("linekeeper-web", "MainPID")["MainPID"]
    appliance.sh("kill -9 %s" % web_pid)
    calls = appliance.wait_for("the call to end", lambda: completed(appliance, before + 1), 40)
    assert calls[-1]["recording"] == "complete"
    assert appliance.show("linekeeper-recorder", "MainPID")["MainPID"] == rec_pid

    def web_back():
        web = appliance.show("linekeeper-web", "ActiveState", "MainPID")
        return web["ActiveState"] == "active" and web["MainPID"] not in ("0", web_pid)

    appliance.wait_for("the web UI back", web_back, 30, unit="linekeeper-web")


def test_a_stopped_recorder_is_restarted_by_the_watchdog(appliance):
    open_calls = appliance.wait_for(
        "a call in progress",
        lambda: [c for c in appliance.calls() if not c["ended_at"] and c["answered_at"]],
        40,
    )
    first = appliance.show("linekeeper-recorder", "MainPID", "NRestarts")
    appliance.sh("kill -STOP %s" % first["MainPID"])
    stopped = time.monotonic()
    appliance.wait_for(
        "a new recorder",
        lambda: appliance.show("linekeeper-recorder", "MainPID")["MainPID"] not in ("0", first["MainPID"]),
        40,
    )
    assert time.monotonic() - stopped <= WATCHDOG_S + 5 + 2  # + 2: our own polling
    after = appliance.show("linekeeper-recorder", "NRestarts", "StatusText")
    assert int(after["NRestarts"]) == int(first["NRestarts"]) + 1
    appliance.wait_for(
        "READY again",
        lambda: appliance.show("linekeeper-recorder", "StatusText")["StatusText"] == "recording 2 lines",
        60,
    )
    # The interrupted call is closed (the recorder did not stop cleanly) and its
    # audio up to the stall is kept.
    stalled = {c["id"]: c for c in appliance.calls()}[open_calls[0]["id"]]
    assert stalled["ended_at"] and stalled["end_reason"] == "power_loss", stalled
    assert stalled["recording"] in ("partial", "complete"), stalled
    assert stalled["recording_duration_s"] > 0


def test_a_recorder_that_cannot_start_is_never_given_up_and_says_why(appliance):
    """Another process holds the data directory (as `linekeeper repair` would): the
    service starts the recorder again and again (it fails in well under a second:
    systemd's start limit must not stop it); the web UI's user reads why from the run
    directory, and a web UI started meanwhile comes up without the recorder; once the
    data directory is free the recorder records again and raises the alarm for the
    time it recorded nothing, and the web UI starts again beside it."""
    as_web = "setpriv --reuid linekeeper-web --regid linekeeper --init-groups "
    appliance.sh("systemctl stop linekeeper-recorder")
    appliance.sh("(nohup flock -n -o %s/lock sleep 600 > /dev/null 2>&1 &)" % DATA)
    appliance.sh("systemctl start --no-block linekeeper-recorder")

    def note():
        out = appliance.sh(as_web + "cat /run/linekeeper/recorder-start.json", check=False).stdout
        return json.loads(out) if out else None

    failing = appliance.wait_for(
        "seven failed starts", lambda: (note() or {}).get("attempts", 0) >= 7 and note(), 120
    )
    assert "in use by another Linekeeper process" in failing["error"], failing
    state = appliance.show("linekeeper-recorder", "ActiveState", "NRestarts")
    assert state["ActiveState"] != "failed" and int(state["NRestarts"]) >= 6, (
        state,
        appliance.journal("linekeeper-recorder"),
    )

    # The web UI started meanwhile (after a reboot, say) comes up without the recorder.
    appliance.sh("systemctl restart linekeeper-web", timeout=180)
    web = appliance.sh("curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1/").stdout
    assert web in ("200", "302"), (web, appliance.journal("linekeeper-web"))
    first_web = appliance.show("linekeeper-web", "MainPID")["MainPID"]

    appliance.sh("pkill -f '[f]lock -n -o %s/lock'" % DATA)
    appliance.wait_for(
        "READY again",
        lambda: (
            appliance.show("linekeeper-recorder", "ActiveState", "SubState")
            == {"ActiveState": "active", "SubState": "running"}
        ),
        90,
    )
    assert note() is None
    query = (
        "import sqlite3; db = sqlite3.connect('file:%s/alarms.db?mode=ro', uri=True); "
        "print(db.execute('SELECT message FROM alarm_history WHERE kind = ?', ('recorder_start_failed',))"
        ".fetchall())" % DATA
    )
    alarms = appliance.sh(as_web + "/opt/linekeeper/current/venv/bin/python -c " + shlex.quote(query)).stdout
    assert "no call was recorded in that time" in alarms and "in use by another" in alarms, alarms
    # The web UI that started without the recorder starts again beside it.

    def web_beside_recorder():
        web = appliance.show("linekeeper-web", "ActiveState", "MainPID")
        return web["ActiveState"] == "active" and web["MainPID"] not in ("0", first_web)

    appliance.wait_for("the web UI beside the recorder", web_beside_recorder, 60, unit="linekeeper-web")


def test_poweroff_and_boot_records_again_and_verifies(appliance):
    n = len(appliance.calls())
    appliance.poweroff()
    appliance.boot()
    appliance.wait_for("a call after the boot", lambda: completed(appliance, n + 1), 90)
    verify = appliance.sh("%s verify --data-dir %s --password-file /root/pw" % (LK, DATA), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_linekeeper_command_is_on_the_path(appliance):
    """The docs' steps run `linekeeper ...` (as root, or with sudo -u linekeeper-rec)."""
    assert (
        appliance.sh('readlink -f "$(command -v linekeeper)"').stdout.strip()
        == appliance.sh("readlink -f %s" % LK).stdout.strip()
    )
    assert "hat-replaced" in appliance.sh("linekeeper --help").stdout


def _curl(box, jar, path, form=None):
    """``(status, redirect, body)`` of a request to the booted box's web UI, with cookies."""
    args = ""
    if form is not None:
        args = " ".join("--data-urlencode %s" % shlex.quote("%s=%s" % kv) for kv in form.items())
    out = box.sh(
        "curl -sk -c %s -b %s -w '\\n%%{http_code} %%{redirect_url}' %s https://127.0.0.1%s"
        % (jar, jar, args, path)
    ).stdout
    body, _, last = out.rpartition("\n")
    status, _, redirect = last.partition(" ")
    return int(status), redirect, body


def _token(body):
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def test_the_installer_finishes_the_setup_and_logs_in(appliance):
    """The web UI runs as its own user: it signs its audit entries with the key the
    recorder made (a board without the MCU keeps it on the card), so the setup finishes
    and the installer can log in again."""
    jar = "/tmp/installer-cookies"
    _, _, body = _curl(appliance, jar, "/setup")
    form = {
        "csrf_token": _token(body),
        "setup_code": appliance.sh("cat %s/setup-code" % DATA).stdout.strip(),
        "organisation": "Acme Plumbing Ltd",
        "country": "uk",
        "ico_number": "ZA123456",
        "ico_renewal": "2027-01-31",
        "purpose": "To keep a record of orders taken by phone.",
        # The box has its keys already (`linekeeper init` above): the wizard takes that slot.
        "admin_name": "admin",
        "admin_password": PASSWORD,
        "admin_confirm": PASSWORD,
    }
    for n in sorted(set(re.findall(r'name="line-(\d+)-name"', body))):
        form["line-%s-name" % n] = "Line %s" % n
        form["line-%s-mode" % n] = "record"
    status, redirect, body = _curl(appliance, jar, "/setup", form)
    said = re.findall(r'class="(?:field-)?error"[^>]*>([^<]+)<', body) or [body[-600:]]
    # Its keys came with `linekeeper init` (its recovery key shown then): to the dashboard.
    assert (status, redirect.split("127.0.0.1", 1)[-1]) == (302, "/"), (
        said,
        appliance.journal("linekeeper-web"),
    )
    status, _, body = _curl(appliance, jar, "/")
    assert status == 200 and 'id="lines"' in body, body[-600:]
    jar = "/tmp/login-cookies"
    _, _, body = _curl(appliance, jar, "/login")
    login = {"csrf_token": _token(body), "name": "admin", "password": PASSWORD}
    status, _, _ = _curl(appliance, jar, "/login", login)
    assert status == 302, appliance.journal("linekeeper-web")
    assert "Permission denied" not in appliance.journal("linekeeper-web")


# A throwaway SMTP server for the box to deliver to (Debian 12's Python 3.11 still has
# smtpd): each message it takes is one file in INBOX, its envelope on the first lines.
SMTP_PORT = 2525
INBOX = "/root/smtp-inbox"
SMTP_SINK = """\
import asyncore, itertools, os, smtpd
count = itertools.count(1)
class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        path = os.path.join(%r, "%%04d.eml" %% next(count))
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Envelope-To: %%s\\r\\n" %% ", ".join(rcpttos)).encode() + data)
        os.replace(path + ".tmp", path)
Sink(("127.0.0.1", %d), None, decode_data=False)
asyncore.loop()
""" % (INBOX, SMTP_PORT)


def _inbox(box):
    """The messages the SMTP server took so far, parsed."""
    import email
    import email.policy

    names = box.sh("ls %s" % INBOX).stdout.split()
    return [
        email.message_from_string(box.sh("cat %s/%s" % (INBOX, n)).stdout, policy=email.policy.default)
        for n in sorted(names)
        if n.endswith(".eml")
    ]


def test_an_alarm_the_recorder_raises_is_mailed_by_the_web_ui(appliance):
    """The two services' mail, on the booted box: the installer sets the mail server on the
    web UI (mail.json, the web UI's user's file, which the recorder reads); the recorder
    killed, started again by systemd, raises power_loss_restart and queues its mail (a file
    of the recorder's user, which the web UI reads and removes); the web UI delivers it.
    Each side once could not open the other's file (0600): no alarm mail ever went out."""
    as_web = "setpriv --reuid linekeeper-web --regid linekeeper --init-groups "
    (appliance.root / "root" / "smtpsink.py").write_text(SMTP_SINK)
    appliance.sh("mkdir -p %s && rm -f %s/*" % (INBOX, INBOX))
    appliance.sh(
        "(nohup python3 -W ignore /root/smtpsink.py > /root/smtpsink.log 2>&1 & echo $! > /root/smtpsink.pid)"
    )
    try:
        appliance.wait_for(
            "the SMTP server",
            lambda: appliance.sh("ss -Htln 'sport = :%d'" % SMTP_PORT).stdout.strip(),
            20,
        )
        # The installer logs in and sets the mail server on the mail settings page.
        jar = "/tmp/mail-cookies"
        _, _, body = _curl(appliance, jar, "/login")
        login = {"csrf_token": _token(body), "name": "admin", "password": PASSWORD}
        status, _, _ = _curl(appliance, jar, "/login", login)
        assert status == 302, appliance.journal("linekeeper-web")
        status, _, body = _curl(appliance, jar, "/settings/mail")
        assert status == 200 and 'id="mail-form"' in body, body[-600:]
        form = {
            "csrf_token": _token(body),
            "host": "127.0.0.1",
            "port": str(SMTP_PORT),
            "security": "none",
            "username": "",
            "password": "",
            "sender": "linekeeper@example.com",
            "alarm_to": "alarms@example.com",
            "rate_window_min": "15",
            "syslog": "",
        }
        for every in ("daily", "weekly", "monthly"):
            form.update({"%s_to" % every: "", "%s_fmt" % every: "pdf"})
        status, redirect, body = _curl(appliance, jar, "/settings/mail", form)
        assert (status, redirect.split("127.0.0.1", 1)[-1]) == (302, "/settings/mail?saved=1"), (
            re.findall(r'class="(?:field-)?error"[^>]*>([^<]+)<', body) or body[-600:]
        )

        # The recorder stops without a clean stop; systemd starts it again, and it says so.
        first = appliance.show("linekeeper-recorder", "MainPID")["MainPID"]
        appliance.sh("kill -9 %s" % first)

        def started_again():
            rec = appliance.show("linekeeper-recorder", "MainPID", "StatusText")
            return rec["MainPID"] not in ("0", first) and rec["StatusText"] == "recording 2 lines"

        appliance.wait_for("the recorder started again", started_again, 60)
        deadline = time.monotonic() + 60
        while True:
            mails = [m for m in _inbox(appliance) if "power cut or crash" in m["Subject"]]
            if mails:
                break
            assert time.monotonic() < deadline, "no alarm mail at the SMTP server:\n%s\n%s\n%s" % (
                appliance.sh("ls -l %s/mail.json %s/mail/queue" % (DATA, DATA), check=False).stdout,
                appliance.journal("linekeeper-recorder"),
                appliance.journal("linekeeper-web"),
            )
            time.sleep(1)
        mail = mails[0]
        assert mail["X-Envelope-To"] == "alarms@example.com" and mail["From"] == "linekeeper@example.com"
        assert mail["Subject"].startswith("[Acme Plumbing Ltd] Alarm on the box"), mail["Subject"]
        assert "the box restarted without a clean stop" in mail.get_content(), mail.get_content()
        # Delivered: the web UI's user removed the recorder's files from the queue. The
        # restarted recorder may queue another alarm just after this one (the queue was once
        # found holding one a moment later): each is delivered in its turn, none is left.
        deadline = time.monotonic() + 60
        while True:
            queue = appliance.sh(as_web + "ls %s/mail/queue" % DATA).stdout.split()
            left = [n for n in queue if n != "sent-keys.json"]
            if not left:
                break
            assert time.monotonic() < deadline, "mail left in the queue: %s\n%s\n%s" % (
                left,
                [m["Subject"] for m in _inbox(appliance)],
                appliance.journal("linekeeper-web"),
            )
            time.sleep(1)
        for unit in ("linekeeper-recorder", "linekeeper-web"):
            journal = appliance.sh("journalctl -b -u %s --no-pager" % unit).stdout
            assert "Permission denied" not in journal, (unit, journal[-3000:])
    finally:
        appliance.sh("kill $(cat /root/smtpsink.pid)", check=False)


def test_a_configuration_root_imports_is_one_the_recorder_can_read(appliance):
    """An installer's `linekeeper config import` run as root left config.json root's alone
    (0600): the recorder's next start refused it. Run as root on the box's data, a
    command acts as the box's user (firmware/cli.py _as_the_box)."""
    appliance.sh("%s config export /tmp/box-config.json --data-dir %s" % (LK, DATA))
    appliance.sh("%s config import /tmp/box-config.json --data-dir %s" % (LK, DATA))
    owner = appliance.sh("stat -c '%%U %%G %%a' %s/config.json" % DATA).stdout.split()
    assert owner == ["linekeeper-rec", "linekeeper", "660"], owner
    before = appliance.show("linekeeper-recorder", "MainPID")["MainPID"]
    appliance.sh("systemctl restart linekeeper-recorder")

    def back():
        now = appliance.show("linekeeper-recorder", "ActiveState", "MainPID")
        return now["ActiveState"] == "active" and now["MainPID"] not in ("0", before)

    appliance.wait_for("the recorder back, reading its configuration", back, 60)
    assert "ermission denied" not in appliance.journal("linekeeper-recorder")
    # A secret from where root keeps it: read as root, stored as the box's (the web UI's to read).
    appliance.sh("umask 077; echo the-s3-secret > /root/only-root.txt")
    appliance.sh("%s archive set-secret --data-dir %s --secret-file /root/only-root.txt" % (LK, DATA))
    owner = appliance.sh("stat -c '%%U %%G %%a' %s/archive.secret" % DATA).stdout.split()
    assert owner == ["linekeeper-rec", "linekeeper", "660"], owner


def test_uninstall_with_purge_leaves_nothing_running_and_no_update_state(appliance):
    """Last: the box removed. Its boot units were left running and the update's own folder
    kept, whose progress note would start the update recovery at the next install."""
    appliance.sh("echo '{}' > /var/lib/linekeeper-update/progress.json")
    out = appliance.sh("/opt/src/scripts/install-box --uninstall --purge", timeout=300).stdout
    assert "removed Linekeeper and its data" in out
    units = appliance.sh("systemctl list-units --all --plain --no-legend 'linekeeper*'").stdout
    active = [u.split()[0] for u in units.splitlines() if u.split()[2] == "active"]  # UNIT LOAD ACTIVE
    assert active == [], units
    assert appliance.sh("ls -d /var/lib/linekeeper /var/lib/linekeeper-update", check=False).returncode != 0
    assert appliance.sh("ls /usr/local/bin/linekeeper", check=False).returncode != 0
