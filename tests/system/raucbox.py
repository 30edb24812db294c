"""A simulated box for the update tests: real RAUC on a private system D-Bus, two
loop-device ext4 slots, the custom bootloader backend, and the firmware (recorder
and web UI) run from the active slot.

Needs root (loop devices, mount) and the Debian packages rauc, dbus, e2fsprogs,
squashfs-tools (scripts/install-deps). Everything it makes — processes, mounts,
loop devices — is undone by :meth:`RaucBox.close`.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = os.path.join(ROOT, "tests", "system", "rauc")
BACKEND = os.path.join(ROOT, "scripts", "system", "rauc", "bootloader-backend")
INSTALL_CHECK = os.path.join(ROOT, "scripts", "system", "rauc", "install-check")
COMPATIBLE = "linekeeper-rpi-lk-4l"
SLOT_MB = 24

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

SYSTEM_CONF = """[system]
compatible=%(compatible)s
bootloader=custom
data-directory=%(update_dir)s
mountprefix=%(mount_prefix)s

[keyring]
path=%(keyring)s

[handlers]
bootloader-custom-backend=%(backend)s
pre-install=%(install_check)s

[slot.app.0]
device=%(dev_a)s
type=ext4
bootname=A

[slot.app.1]
device=%(dev_b)s
type=ext4
bootname=B
"""


def run(argv, **kw):
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise AssertionError("%s exited %d: %s" % (" ".join(argv), done.returncode, said))
    return done


def make_bundle(out, version, *, source=ROOT, key="test", security=1, compatible=COMPATIBLE, env=None):
    """Build a plain development bundle of ``source`` (a checkout) with scripts/make-bundle
    (run in ``env``, None: ours)."""
    run(
        [
            os.path.join(source, "scripts", "make-bundle"),
            version,
            "--format",
            "plain",
            "--venv",
            "none",
            "--cert",
            os.path.join(KEYS, "%s-signing.cert.pem" % key),
            "--key",
            os.path.join(KEYS, "%s-signing.key.pem" % key),
            "--compatible",
            compatible,
            "--security-version",
            str(security),
            "--out",
            out,
        ],
        env=env,
    )
    return out


def copy_checkout(dest):
    """A copy of this checkout's tracked files and its built C extension (to be altered)."""
    files = run(["git", "ls-files", "-z"], cwd=ROOT).stdout.split("\0")
    files += [
        os.path.relpath(os.path.join(d, f), ROOT)
        for d, _, fs in os.walk(os.path.join(ROOT, "firmware"))
        for f in fs
        if f.endswith(".so")
    ]
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.exists(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))
    return dest


class RaucBox:
    """One box in ``base`` (a temporary directory) with web ports ``http_port``/+1."""

    def __init__(self, base, scenario, http_port, update_fs_mb=None):
        self.base = base
        self.scenario = scenario
        self.http_port = http_port
        self.update_dir = os.path.join(base, "update")
        self.data_dir = os.path.join(base, "data")
        self.slots_dir = os.path.join(base, "slots")
        self.current = os.path.join(base, "current")
        self.pids = os.path.join(base, "pids")
        self.bus = os.path.join(base, "bus.sock")
        self.conf = os.path.join(base, "system.conf")
        self.loops = []
        for d in (self.update_dir, self.data_dir, self.slots_dir, self.pids, os.path.join(base, "rauc-mnt")):
            os.makedirs(d, exist_ok=True)
        if update_fs_mb:
            # The update folder on a file system of its own that size (a nearly full card).
            run(["mount", "-t", "tmpfs", "-o", "size=%dm" % update_fs_mb, "tmpfs", self.update_dir])
        self.env = dict(
            os.environ,
            DBUS_SYSTEM_BUS_ADDRESS="unix:path=%s" % self.bus,
            LINEKEEPER_UPDATE_DIR=self.update_dir,
            # The install-check reads the running release there (slot A is not RAUC's).
            LINEKEEPER_CURRENT=self.current,
        )

    # -- set-up ------------------------------------------------------------

    def start(self, first_bundle):
        """Slot A holds ``first_bundle``'s image, B is empty; start RAUC and the box on A."""
        extract = os.path.join(self.base, "extract")
        run(["rauc", "extract", "--keyring", os.path.join(KEYS, "test-ca.cert.pem"), first_bundle, extract])
        for name in ("a", "b"):
            img = os.path.join(self.base, "slot-%s.img" % name)
            if name == "a":
                image = os.path.join(extract, "app.ext4")
                if os.path.getsize(image) > SLOT_MB << 20:
                    raise AssertionError(
                        "the bundle's image is %d MiB, more than a %d MiB test slot: "
                        "what did make-bundle put in it?" % (os.path.getsize(image) >> 20, SLOT_MB)
                    )
                shutil.copy(image, img)
                os.truncate(img, SLOT_MB << 20)
            else:
                with open(img, "wb") as f:
                    f.truncate(SLOT_MB << 20)
                run(["mkfs.ext4", "-q", img])
            self.loops.append(run(["losetup", "-f", "--show", img]).stdout.strip())
        shutil.rmtree(extract)
        with open(self.conf, "w") as f:
            f.write(
                SYSTEM_CONF
                % dict(
                    compatible=COMPATIBLE,
                    update_dir=self.update_dir,
                    mount_prefix=os.path.join(self.base, "rauc-mnt"),
                    keyring=os.path.join(KEYS, "test-ca.cert.pem"),
                    backend=BACKEND,
                    install_check=INSTALL_CHECK,
                    dev_a=self.loops[0],
                    dev_b=self.loops[1],
                )
            )
        with open(os.path.join(self.base, "bus.conf"), "w") as f:
            f.write(BUS_CONF % self.bus)
        bus = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--config-file", os.path.join(self.base, "bus.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._save_pid("dbus", bus.pid)
        for _ in range(100):
            if os.path.exists(self.bus):
                break
            time.sleep(0.05)
        os.makedirs(os.path.join(self.slots_dir, "A"), exist_ok=True)
        run(["mount", "-o", "ro", self.loops[0], os.path.join(self.slots_dir, "A")])
        os.symlink(os.path.join(self.slots_dir, "A"), self.current)
        with open(os.path.join(self.update_dir, "current"), "w") as f:
            f.write("A\n")
        with open(os.path.join(self.base, "box.json"), "w") as f:
            json.dump(
                {
                    "base": self.base,
                    "scenario": self.scenario,
                    "http_port": self.http_port,
                    "conf": self.conf,
                    "python": sys.executable,
                    "env": self.env,
                },
                f,
            )
        self.restart()

    def restart(self):
        """What the box's restart command does (see :func:`restart_main`)."""
        run([sys.executable, __file__, os.path.join(self.base, "box.json")], timeout=120)

    def restart_cmd(self):
        """The restart command: one path (a script), so it survives word splitting."""
        script = os.path.join(self.base, "restart")
        if not os.path.exists(script):
            with open(script, "w") as f:
                box_json = os.path.join(self.base, "box.json")
                f.write("#!/bin/sh\nexec %s %s %s\n" % (sys.executable, __file__, box_json))
            os.chmod(script, 0o755)
        return script

    # -- looking at it ------------------------------------------------------

    def rauc(self, *args, check=True):
        return subprocess.run(["rauc", *args], capture_output=True, text=True, env=self.env, check=check)

    def status(self):
        return json.loads(self.rauc("status", "--detailed", "--output-format=json").stdout)

    def bootstate(self):
        try:
            with open(os.path.join(self.update_dir, "bootstate")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def slot_digest(self, index):
        return run(["sha256sum", self.loops[index]]).stdout.split()[0]

    def pid(self, name):
        try:
            with open(os.path.join(self.pids, name)) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def running_from(self):
        """The slot (A or B) the recorder's code is running from."""
        cwd = os.readlink("/proc/%d/cwd" % self.pid("recorder"))
        return os.path.basename(os.path.dirname(cwd))

    def power_cut_and_boot(self):
        """Kill everything at once (kill -9, as a power cut does), lose the slot mounts
        (/run is gone), then boot: mount the slot ``current`` names and start it."""
        for name in ("web", "recorder", "rauc"):
            pid = self.pid(name)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                stop_pid(pid)
        for bootname in ("A", "B"):
            mnt = os.path.join(self.slots_dir, bootname)
            tries = 0
            while os.path.ismount(mnt):
                done = subprocess.run(["umount", mnt], capture_output=True, text=True)
                if done.returncode == 0:
                    continue
                # Busy: a process still exiting from the kill, or one the update started
                # (RAUC's copy) that held the slot open. A power cut takes them all: so here.
                tries += 1
                assert tries < 50, "umount %s: %s" % (mnt, done.stderr.strip())
                subprocess.run(["fuser", "-k", "-9", "-m", mnt], capture_output=True)
                time.sleep(0.1)
        with open(os.path.join(self.update_dir, "current")) as f:
            slot = f.read().strip()
        run(["mount", "-o", "ro", self.loops["AB".index(slot)], os.path.join(self.slots_dir, slot)])
        self.restart()

    def run_cli(self, *args):
        return subprocess.run(
            [sys.executable, "-m", "firmware.cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=120,
        )

    def update_args(self):
        """The arguments of ``linekeeper update`` that place it in this box."""
        return [
            "--update-dir",
            self.update_dir,
            "--slots-dir",
            self.slots_dir,
            "--current-link",
            self.current,
            "--restart-cmd",
            self.restart_cmd(),
            "--web-url",
            "http://127.0.0.1:%d/" % self.http_port,
        ]

    def update(self, bundle, *extra, env=None):
        argv = [
            sys.executable,
            "-m",
            "firmware.cli",
            "update",
            *([bundle] if bundle else []),
            "--data-dir",
            self.data_dir,
            *self.update_args(),
            *extra,
        ]
        return subprocess.run(
            argv, capture_output=True, text=True, env=dict(self.env, **(env or {})), cwd=ROOT, timeout=600
        )

    # -- tear-down ---------------------------------------------------------

    def _save_pid(self, name, pid):
        with open(os.path.join(self.pids, name), "w") as f:
            f.write(str(pid))

    def close(self):
        for name in ("web", "recorder", "rauc", "dbus"):
            stop_pid(self.pid(name))
        for bootname in ("A", "B"):
            mnt = os.path.join(self.slots_dir, bootname)
            while os.path.ismount(mnt):
                if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", mnt], capture_output=True)
        for mnt in _mounts_under(self.base):
            subprocess.run(["umount", "-l", mnt], capture_output=True)
        for dev in self.loops:
            # A mount copied into another mount namespace meanwhile (a container
            # started on this machine) keeps the device busy: detach sets autoclear
            # then, and the kernel frees it when that copy goes.
            subprocess.run(["losetup", "-d", dev], capture_output=True)


def _mounts_under(base):
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(base)]


def _running(pid):
    """Whether ``pid`` still runs. A process the restart command started is not this
    process's child: once it exits it stays a zombie until the machine's init reaps it,
    which some inits do only every few seconds (2 s on the CI's), and each stop waited
    for that (about 6 s a test's box). A zombie has let go of its files and its working
    directory (a slot's mount), but only once every thread has: the main thread shows
    as a zombie while the others are still ending, so each thread is looked at."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return False
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def stop_pid(pid, timeout_s=15):
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            pass
        if not _running(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def restart_main(config_path):
    """The test box's restart command: stop web, recorder and rauc service, start them
    again from the slot ``current`` points at (rauc with that slot as booted), like a
    reboot of the real box does."""
    with open(config_path) as f:
        cfg = json.load(f)
    base = cfg["base"]
    pids = os.path.join(base, "pids")
    env = dict(cfg["env"])

    def pid(name):
        try:
            with open(os.path.join(pids, name)) as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return None

    def spawn(name, argv, cwd):
        log = open(os.path.join(base, "%s.log" % name), "ab")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
        with open(os.path.join(pids, name), "w") as f:
            f.write(str(proc.pid))

    for name in ("web", "recorder", "rauc"):
        stop_pid(pid(name))
    with open(os.path.join(base, "update", "current")) as f:
        slot = f.read().strip()
    spawn("rauc", ["rauc", "service", "--conf", cfg["conf"], "--override-boot-slot", slot], base)
    for _ in range(200):
        if subprocess.run(["rauc", "status"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    app = os.path.join(base, "current", "app")
    data = os.path.join(base, "data")
    py = cfg["python"]
    spawn(
        "recorder",
        [
            py,
            "-m",
            "firmware.cli",
            "recorder",
            "--data-dir",
            data,
            "--board",
            "sim",
            "--scenario",
            cfg["scenario"],
            "--speed",
            "1",
        ],
        app,
    )
    spawn(
        "web",
        [
            py,
            "-m",
            "firmware.cli",
            "web",
            "--data-dir",
            data,
            "--port",
            str(cfg["http_port"]),
            "--https-port",
            str(cfg["http_port"] + 1),
        ],
        app,
    )
    return 0


if __name__ == "__main__":
    sys.exit(restart_main(sys.argv[1]))
