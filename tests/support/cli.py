"""The `linekeeper` command run in the test's own process."""

import contextlib
import io


def run_linekeeper(*args):
    """``(exit status, stdout, stderr)`` of ``linekeeper ARGS`` run in this process
    (argparse's exits are a status too)."""
    from firmware.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def export_args(data_dir, call_id, out, password_file, reason="a test export of the call"):
    """The arguments of ``linekeeper export`` of ``call_id`` to ``out``, with its reason."""
    return ("export", call_id, "--data-dir", data_dir, "--password-file", password_file,
            "--reason", reason, "--out", out)  # fmt: skip


def secret_file(tmp_path, name, text):
    """A file of the test's that holds ``text`` (a password), readable by its owner only."""
    path = tmp_path / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def password_beside(data_dir, password):
    """A password file beside the data directory ``data_dir`` (a file of the test's, not
    the box's) holding ``password``, readable by its owner only: its path, as text."""
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(str(data_dir))), "password.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    os.chmod(path, 0o600)
    return path


def report_args(data_dir, password, *args):
    """The arguments of ``linekeeper report`` of ``data_dir`` as its key slot's owner (admin),
    whose ``password`` a file beside ``data_dir`` holds, then ``args``."""
    return ("report", "--data-dir", data_dir, "--password-file", password_beside(data_dir, password), *args)


def calls_args(data_dir, password, *args):
    """The arguments of ``linekeeper calls`` of ``data_dir`` as its key slot's owner (admin),
    whose ``password`` a file beside ``data_dir`` holds, then ``args``."""
    return ("calls", "--data-dir", data_dir, "--password-file", password_beside(data_dir, password), *args)


# The password of the key slot :func:`owner_slot` gives a box a keyless `linekeeper sim` made.
OWNER_PASSWORD = "the box owner's password 1"


def owner_slot(data_dir, password=OWNER_PASSWORD):
    """``password``, of admin's key slot on ``data_dir``, made now if the box has no key
    store (a keyless `linekeeper sim`'s: its calls logged, no audio), so that ``linekeeper
    calls`` can ask who reads the call log."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    store = KeyStore(str(data_dir), Argon2Params(memory_kib=8, iterations=1))
    if not store.is_initialised:
        store.initialise("admin", password)
    return password


def stop(*args, **kwargs):
    """Ctrl-C, in place of what it replaces."""
    raise KeyboardInterrupt


def stop_after(real):
    """``real``, then Ctrl-C: what it did is done."""

    def stopped(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    return stopped


def one_line(err):
    """The one line ``err`` holds (the test fails if it holds more or none)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def record_calls(data, synth, calls, start="2026-03-02T09:00:00Z"):
    """Run the simulated box on ``data`` (its key store made) through one line's ``calls``
    (scenario call objects) from ``start``, to their end."""
    import json

    from board.sim.scenario import loads_scenario
    from firmware.box import open_sim_box

    doc = {"start": start, "country": "uk", "lines": 1, "calls": calls}
    box = open_sim_box(loads_scenario(json.dumps(doc)), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()


def recorded_box(tmp_path, synth, password):
    """A box in ``tmp_path/data`` with one recorded call (and the signing key its recorder
    made), its owner's ``password``: ``(data dir, password file)``."""
    from firmware.storage.keystore import Argon2Params, KeyStore

    data = str(tmp_path / "data")
    KeyStore(data, Argon2Params(memory_kib=8, iterations=1)).initialise("admin", password)
    record_calls(data, synth, [{"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 3.0}])
    return data, secret_file(tmp_path, "pw", password)


def box_with_auditor(root, calls, slot_password, auditor_password):
    """A box set up in ``root/data`` by ``linekeeper sim`` (``calls`` on line 1): a supervisor
    "sup" with a key slot and an account (``slot_password``), and an auditor "ava" with an
    account and no key slot (``auditor_password``). Its data directory."""
    import json
    import os
    import time

    from firmware.cli import main
    from firmware.storage.keystore import Argon2Params, KeyStore
    from web.accounts import Accounts
    from web.db import WebDb
    from web.passwords import CHEAP_COST

    data = str(root / "data")
    KeyStore(data, kdf_params=Argon2Params(memory_kib=8, iterations=1)).initialise("sup", slot_password)
    (root / "s.json").write_text(
        json.dumps({"start": "2026-03-02T09:00:00Z", "country": "uk", "lines": 1, "calls": calls})
    )
    assert main(["sim", str(root / "s.json"), "--data-dir", data]) == 0
    db = WebDb(os.path.join(data, "web.db"))
    accounts = Accounts(db, lambda: time.time_ns() // 1000, cost=CHEAP_COST)
    with db.tx() as conn:
        accounts.create(conn, "sup", slot_password, ["supervisor"], [1])
        accounts.create(conn, "ava", auditor_password, ["auditor"], [])
    db.close()
    return data
