"""Issue 4 acceptance: no secret in clear anywhere under the data dir; private file modes.

The box is driven through the installed ``linekeeper`` command, as a person
would (``init`` with the real Argon2id cost, ``sim`` on a day of calls,
``export`` to another directory, ``verify``), so the CLI's umask is the one in
force. Then every file under the data dir - databases, their WAL and
shared-memory files, locks, key store, recordings - is searched for each
secret, raw and in the text encodings a careless program would write it in
(hex, base64 at every alignment, the recovery key as printed):

* the recording private key (unlocked here to learn it),
* every recording's data key (each row's wrapped key, unwrapped here),
* the password, and the recovery key's bytes.
"""

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

from firmware.recording.store import RecordingStore
from firmware.storage.keystore import KeyStore, parse_recovery_key

PASSWORD = "correct horse battery 7"
SPEECH = [
    "Good morning, thank you for calling.",
    "I would like to check my order, please.",
    "Could you give me the order number?",
    "It is four five six, seven eight nine.",
]


def day_of_calls():
    calls = []
    for i in range(8):
        line = 1 + i % 4
        at = 0.5 + i * 1.3 + (i // 4) * 8.0
        speech = [{"at": 0.3, "text": SPEECH[i % 4]}]
        if i % 2:
            calls.append(
                {
                    "line": line,
                    "at": at,
                    "direction": "out",
                    "dial": {"digits": "0207946%04d" % i},
                    "talk": 5.0,
                    "speech": speech,
                }
            )
        else:
            calls.append(
                {
                    "line": line,
                    "at": at,
                    "direction": "in",
                    "rings": 1,
                    "talk": 5.0,
                    "caller_id": {"number": "0163296%04d" % i, "name": "CALLER %d" % i},
                    "speech": speech,
                }
            )
    return calls


def linekeeper(*args, env):
    proc = subprocess.run(
        [sys.executable, "-m", "firmware.cli"] + [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout


def encodings(secret):
    """``secret`` (bytes) as a program might have written it."""
    forms = {"raw": secret, "hex": secret.hex().encode(), "HEX": secret.hex().upper().encode()}
    # Base64 of the secret inside a longer blob: it starts at any of three byte
    # alignments; search for the characters that encode whole groups of its bytes.
    for pad in range(3):
        group = -(-pad // 3)  # first group wholly in the secret
        groups = (len(secret) - (3 * group - pad)) // 3
        for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = enc(bytes(pad) + secret)
            forms["%s@%d" % (name, pad)] = text[4 * group : 4 * (group + groups)]
    return forms


@pytest.fixture(scope="module")
def box(module_lab):
    lab = module_lab
    tmp = lab.tmp_path
    # The CLI's speech cache (XDG_CACHE_HOME/linekeeper/speech) is the session's.
    (tmp / "cache" / "linekeeper").mkdir(parents=True)
    os.symlink(lab.speech_cache, tmp / "cache" / "linekeeper" / "speech")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
    data_dir, exports = tmp / "box", tmp / "exports"
    exports.mkdir()
    pw = lab.password_file(PASSWORD)
    shown = linekeeper("init", "--data-dir", data_dir, "--password-file", pw, env=env)
    recovery = [line.strip() for line in shown.splitlines() if line.startswith("    ")][0]
    after_init = sorted(_files(data_dir))
    # A box `init` made records nothing until a consent notice is set: one set, a beep on
    # inbound calls (outbound ones would wait to hear the far end for theirs).
    with open(data_dir / "config.json") as f:
        config = json.load(f)
    config["policy"]["consent"]["inbound"] = "tone"
    with open(data_dir / "config.json", "w") as f:
        json.dump(config, f)
    linekeeper("sim", lab.write_scenario(lab.scenario_doc(day_of_calls())), "--data-dir", data_dir, env=env)
    calls = lab.calls(data_dir)
    answered = [c["id"] for c in calls if c["answered"]]
    assert len(answered) == 8 and all(c["recording"] == "complete" for c in calls if c["answered"])
    for call_id in answered[:3]:
        linekeeper(
            "export",
            call_id,
            "--data-dir",
            data_dir,
            "--password-file",
            pw,
            "--reason",
            "a test export of the call",
            "--out",
            exports / ("call%d.wav" % call_id),
            env=env,
        )
    linekeeper(
        "export",
        answered[3],
        "--data-dir",
        data_dir,
        "--password-file",
        pw,
        "--reason",
        "a test export of the call",
        "--out",
        exports / "call.ogg",
        env=env,
    )
    assert "intact" in linekeeper("verify", "--data-dir", data_dir, "--password-file", pw, env=env)
    return data_dir, recovery, after_init


def _files(top):
    for root, _dirs, files in os.walk(top):
        for name in files:
            yield os.path.join(root, name)


def secrets_of(data_dir, recovery):
    """Every secret, by name."""
    from firmware.recording.store import RecordingStore

    found = {
        "password": PASSWORD.encode(),
        "recovery key": parse_recovery_key(recovery),
        "recovery key text": recovery.encode(),
        "recovery key text (no dashes)": recovery.replace("-", "").encode(),
    }
    with KeyStore(data_dir).unlock("admin", PASSWORD) as key:
        found["recording private key"] = bytes(key._private)  # the one place a test looks inside
        store = RecordingStore(data_dir)
        try:
            rows = store.all()
            for row in rows:
                found["data key of %s" % row["id"]] = key.unwrap(row["wrapped_key"], store.key_context(row))
            for line in (1, 2, 3, 4):
                private = key.line_private(line)
                if private is not None:
                    found["line %d private key" % line] = bytes(private)
        finally:
            store.close()
    assert len(rows) == 8
    assert sum(name.startswith("line ") for name in found) >= 2  # the lines that recorded
    return found


def test_no_secret_in_any_file_under_the_data_dir(box):
    data_dir, recovery, after_init = box
    secrets = secrets_of(data_dir, recovery)
    files = sorted(_files(data_dir))
    names = {os.path.relpath(f, data_dir) for f in files}
    # Every kind of file the box writes is searched, the SQLite side files included.
    assert {"calls.db", "audit.db", "audit.head", "keys/keystore.json"} <= names
    assert sum(n.startswith("recordings/") and n.endswith(".lkrec") for n in names) == 8
    # Each recording's wrapped data key copy (no secret: wrapped to a line key) is searched too.
    assert sum(n.startswith("recordings/") and n.endswith(".lkkey") for n in names) == 8
    assert not leaks_in(files, secrets, data_dir)


def test_no_secret_in_the_files_of_a_running_box(lab):
    """Mid-call, with the SQLite write-ahead logs and recordings still open, copied raw."""
    scenario = lab.load(lab.scenario_doc(day_of_calls()))
    data_dir = lab.init_data_dir(lab.tmp_path / "live")
    raw = lab.tmp_path / "raw"
    lab.run(
        scenario,
        data_dir,
        before_start=lambda box: box.clock.call_at(6_500_000, lambda: shutil.copytree(data_dir, raw)),
    )
    files = sorted(_files(raw))
    names = {os.path.relpath(f, raw) for f in files}
    assert {"calls.db-wal", "calls.db-shm"} <= names
    assert sum(n.startswith("recordings/") for n in names) >= 3
    secrets = {"password": PASSWORD.encode()}
    with KeyStore(data_dir).unlock("admin", PASSWORD) as key:
        secrets["recording private key"] = bytes(key._private)
        store = RecordingStore(data_dir)
        try:
            for row in lab.rows(data_dir):
                secrets["data key of %s" % row["id"]] = key.unwrap(row["wrapped_key"], store.key_context(row))
        finally:
            store.close()
    assert len(secrets) == 2 + 8
    assert not leaks_in(files, secrets, raw)


def leaks_in(files, secrets, top):
    leaks = []
    for path in files:
        with open(path, "rb") as f:
            content = f.read()
        for what, secret in secrets.items():
            for form, needle in encodings(secret).items():
                if needle in content:
                    leaks.append("%s (%s) in %s" % (what, form, os.path.relpath(path, top)))
    return leaks


def test_the_search_finds_a_planted_secret(box, tmp_path):
    """Control: the same search does find a data key written in base64 into a file."""
    data_dir, recovery, _ = box
    secrets = secrets_of(data_dir, recovery)
    name, secret = next((k, v) for k, v in secrets.items() if k.startswith("data key"))
    planted = tmp_path / "planted"
    planted.write_bytes(b'{"k": "' + base64.b64encode(b"x" + secret) + b'"}')
    assert "%s (base64@1) in planted" % name in leaks_in([planted], {name: secret}, tmp_path)


def test_data_dir_files_are_0600_and_directories_0700(box):
    data_dir, _, after_init = box
    assert os.stat(data_dir).st_mode & 0o777 == 0o700  # init created it
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == 0o700, name
        for name in files:
            mode = os.stat(os.path.join(root, name)).st_mode & 0o777
            assert mode == 0o600, "%s is %o" % (os.path.relpath(os.path.join(root, name), data_dir), mode)
    assert any(p.endswith("keystore.json") for p in after_init)
