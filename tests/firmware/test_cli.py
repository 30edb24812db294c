"""The `linekeeper` command: sim, calls, and bad input."""

import json
import os
import subprocess
import sys

import pytest

from support.cli import calls_args, owner_slot

SCENARIO = {
    "start": "2026-03-02T09:00:00Z",
    "country": "uk",
    "lines": 4,
    "calls": [
        {
            "line": 1,
            "at": 2.0,
            "direction": "in",
            "caller_id": {"number": "01632960123", "name": "ACME LTD"},
            "rings": 2,
            "talk": 20.0,
            "speech": "Hello, I would like to place an order",
            "hangup": "local",
        },
        {
            "line": 2,
            "at": 5.0,
            "direction": "out",
            "dial": {"digits": "02079460000", "mode": "dtmf"},
            "talk": 15.0,
            "hangup": "remote",
        },
        {"line": 3, "at": 1.0, "direction": "in", "rings": 5, "answer": False},
    ],
}

FIELDS = {"id", "line", "direction", "started_at", "answered_at", "ended_at", "number", "name", "answered"}


def linekeeper(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "firmware.cli", *args], capture_output=True, text=True, timeout=120, **kw
    )


def _simulated_day(tmp_path):
    """The data folder of :data:`SCENARIO` run through ``linekeeper sim`` (a box without keys)."""
    path = tmp_path / "day.json"
    path.write_text(json.dumps(SCENARIO))
    data = tmp_path / "data"
    assert linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max").returncode == 0
    return data


def list_calls(data, *args):
    """``linekeeper calls ARGS`` of ``data`` as its owner (a key slot made for a box without
    keys: :func:`support.cli.owner_slot`)."""
    return linekeeper(*calls_args(str(data), owner_slot(data), *args))


def _calls_json(data):
    """``linekeeper calls --json`` of ``data``, one dict a call."""
    return [json.loads(line) for line in list_calls(data, "--json").stdout.splitlines()]


def test_sim_then_calls_json(tmp_path):
    path = tmp_path / "day.json"
    path.write_text(json.dumps(SCENARIO))
    data = tmp_path / "data"
    run = linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max")
    assert run.returncode == 0, run.stderr
    out = list_calls(data, "--json")
    assert out.returncode == 0, out.stderr
    calls = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(calls) == 3
    for call in calls:
        assert FIELDS <= set(call)
    by_line = {c["line"]: c for c in calls}
    acme = by_line[1]
    assert acme == dict(
        acme,
        direction="in",
        number="01632960123",
        name="ACME LTD",
        answered=True,
        started_at="2026-03-02T09:00:02.000Z",
    )
    assert acme["ended_at"] > acme["answered_at"] > acme["started_at"]
    assert by_line[2]["number"] == "02079460000" and by_line[2]["direction"] == "out"
    assert by_line[3]["answered"] is False and by_line[3]["answered_at"] is None


def test_sim_says_how_many_calls_the_log_holds_and_how_many_this_run_added(tmp_path):
    """A one-call scenario on a data directory used before said "2 calls in the log", as if
    the scenario had made two; and one call was "1 calls"."""
    one = dict(SCENARIO, calls=SCENARIO["calls"][:1])
    path = tmp_path / "one.json"
    path.write_text(json.dumps(one))
    data = tmp_path / "data"
    said = []
    for _ in range(2):
        run = linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max")
        assert run.returncode == 0, run.stderr
        said.append(run.stderr.splitlines()[-1])
    assert said == [
        "linekeeper: scenario done, 1 call in the log",
        "linekeeper: scenario done, 2 calls in the log, 1 from this run",
    ]


def test_calls_as_text_have_a_heading_and_never_call_an_unrecorded_call_recorded(tmp_path):
    """A box without keys records nothing, though its rules say record: the listing
    says what the rules decided ("Record") apart from what happened ("No recording")."""
    data = _simulated_day(tmp_path)
    out = list_calls(data)
    assert out.returncode == 0, out.stderr
    heading, *rows = out.stdout.splitlines()
    assert (
        heading.split()[:4] == ["call", "line", "dir", "started"]
        and "rules" in heading
        and "ended" in heading
    )
    assert len(rows) == 3 and "Recorded" not in out.stdout
    acme = next(r for r in rows if "ACME LTD" in r)
    assert "No recording" in acme and "  Record  " in acme
    # A call no caller ID came with: "unknown", as the calls list says, not a blank.
    (missed,) = [r for r in rows if "line 3" in r]
    assert missed.split()[-1] == "unknown"


def test_calls_say_which_call_is_on_legal_hold_as_the_calls_csv_does(tmp_path):
    """The calls CSV has each call's legal hold (``legal_hold``, ``legal_hold_since``);
    ``linekeeper calls`` said nothing of it, in JSON or text."""
    from firmware.policy.callmeta import CallMeta

    data = _simulated_day(tmp_path)
    calls = _calls_json(data)
    acme = next(c for c in calls if c["name"] == "ACME LTD")
    meta = CallMeta(str(data / "calls.db"))
    try:
        assert meta.set_legal_hold(acme["id"], True, "sam", 1_772_445_600_000_000)  # 2026-03-02 10:00 UTC
    finally:
        meta.close()
    out = list_calls(data, "--json")
    assert out.returncode == 0, out.stderr
    held = {
        c["id"]: (c["legal_hold"], c["legal_hold_since"]) for c in map(json.loads, out.stdout.splitlines())
    }
    assert held.pop(acme["id"]) == (True, "2026-03-02T10:00:00.000Z")
    assert set(held.values()) == {(False, None)}
    out = list_calls(data)
    assert out.returncode == 0, out.stderr
    said = {int(row.split()[0]): row for row in out.stdout.splitlines()[1:]}
    assert "No recording, held  " in said.pop(acme["id"])
    assert not any("held" in row for row in said.values())


def test_calls_as_text_say_a_calls_digits_after_a_card_number_were_withheld(tmp_path):
    """Digits keyed after a card number while dialling are not kept (``digits_withheld``):
    ``--json`` said so, the text table did not, and its number read as all that was dialled."""
    import sqlite3

    data = _simulated_day(tmp_path)
    db = sqlite3.connect(data / "calls.db")
    db.execute("UPDATE calls SET digits_withheld = 1 WHERE line = 2")
    db.commit()
    db.close()
    out = list_calls(data)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()[1:]
    (dialled,) = [r for r in rows if "line 2" in r]
    assert dialled.endswith("  02079460000, digits withheld ")
    assert not any("digits withheld" in r for r in rows if r is not dialled)


def test_a_call_on_a_box_not_set_up_says_why_it_has_no_recording(tmp_path):
    """The rules said record, no key could: the call page blamed "a storage problem at
    that time" and the report counted the call as a failed recording."""
    from firmware.policy.rules import NOT_SET_UP
    from web.callstory import why_no_recording

    data = _simulated_day(tmp_path)
    calls = _calls_json(data)
    acme = next(c for c in calls if c["name"] == "ACME LTD")
    assert acme["policy_decision"] == "record" and acme["policy_reason"].endswith(NOT_SET_UP)
    # What the box did, as the calls CSV says it; policy_decision stays the rules' own.
    assert acme["outcome"] == "before_setup"
    assert "not set up" in why_no_recording(acme, []) and "storage" not in why_no_recording(acme, [])
    password = tmp_path / "pw"
    password.write_text(owner_slot(data) + "\n")  # the key slot made to list the calls above
    password.chmod(0o600)
    out = tmp_path / "r.json"
    assert linekeeper("report", "--data-dir", str(data), "--password-file", str(password), "--from",
                      "2026-03-02", "--to", "2026-03-02", "--out", str(out)).returncode == 0  # fmt: skip
    coverage = json.loads(out.read_text())["box"]["coverage"]
    # Not "Excluded by rule" (no rule said skip): a figure of its own.
    assert (coverage["failed"], coverage["excluded"], coverage["before_setup"]) == (0, 0, 2)
    assert coverage["excluded_by_reason"] == {}


def test_sim_with_a_power_cut_ends_the_calls_as_power_loss_and_logs_after_it(tmp_path):
    spec = dict(SCENARIO, power=[{"at": 10.0, "cut": True}, {"at": 30.0, "cut": False}])
    spec["calls"] = spec["calls"][:2] + [{"line": 3, "at": 32.0, "direction": "in", "rings": 1, "talk": 3.0}]
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(spec))
    data = tmp_path / "data"
    run = linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max")
    assert run.returncode == 0, run.stderr
    out = list_calls(data, "--json")
    calls = {c["line"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert calls[1]["end_reason"] == calls[2]["end_reason"] == "power_loss"
    assert calls[1]["ended_at"] == calls[2]["ended_at"] and calls[1]["ended_at"] < "2026-03-02T09:00:10.050Z"
    assert calls[3]["end_reason"] != "power_loss" and calls[3]["ended_at"] is not None
    text = list_calls(data).stdout.splitlines()  # the text says it too
    assert ["Power loss" in row for row in text[1:]][:2] == [True, True]  # the call page's words


def test_recorder_exits_to_be_restarted_when_the_power_comes_back_after_a_warning(tmp_path):
    """A dip the hold-up capacitor rides out: the recorder sealed everything at the warning;
    when the MCU clears it, the recorder exits 75 (EX_TEMPFAIL) so systemd starts it afresh."""
    spec = dict(SCENARIO, power=[{"at": 10.0, "cut": True}, {"at": 11.0, "cut": False}])
    path = tmp_path / "dip.json"
    path.write_text(json.dumps(spec))
    data = tmp_path / "data"
    run = linekeeper(
        "recorder", "--board", "sim", "--scenario", str(path), "--data-dir", str(data), "--speed", "max"
    )
    assert run.returncode == 75, run.stderr
    assert "the power came back after a power-fail warning" in run.stderr
    out = list_calls(data, "--json")
    calls = {c["line"]: c for c in map(json.loads, out.stdout.splitlines())}
    assert calls[1]["end_reason"] == "power_loss"


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda s: s["calls"][2].update(rings="five"), "calls[2].rings"),
        (lambda s: s["calls"][0].update(line=9), "calls[0].line"),
        (lambda s: s.update(country="fr"), "country"),
        (lambda s: s["calls"][1].update(dail={"digits": "1"}), "calls[1].dail"),
    ],
)
def test_bad_scenario_names_the_field_and_position_and_starts_nothing(tmp_path, mutate, expect):
    spec = json.loads(json.dumps(SCENARIO))
    mutate(spec)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec, indent=1))
    data = tmp_path / "data"
    run = linekeeper("sim", str(path), "--data-dir", str(data))
    assert run.returncode == 2
    message = run.stderr.strip()
    assert expect in message and "bad.json:" in message
    assert len(message.splitlines()) == 1
    assert not data.exists()


def test_malformed_json_scenario(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"start": "2026-03-02T09:00:00Z",\n "calls": [}')
    run = linekeeper("sim", str(path), "--data-dir", str(tmp_path / "d"))
    assert run.returncode == 2 and "broken.json:2:" in run.stderr


def test_bad_hat_file_stops_the_box_before_it_starts(tmp_path):
    hat = json.loads(open(os.path.join("board", "hats", "lk-4l.json")).read())
    hat["lines"][1]["pins"]["ring"]["gpio"] = 40
    (tmp_path / "myhat.json").write_text(json.dumps(hat, indent=2))
    spec = dict(SCENARIO, hat=str(tmp_path / "myhat.json"))
    path = tmp_path / "day.json"
    path.write_text(json.dumps(spec))
    run = linekeeper("sim", str(path), "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 2
    assert "lines[1].pins.ring.gpio" in run.stderr and "myhat.json:" in run.stderr
    assert not (tmp_path / "data").exists()


def test_a_card_number_searched_for_is_not_said_back(tmp_path):
    """`calls --number 4111 1111 1111 1111` (a card number typed where a caller's number
    goes) said it back whole, "no calls match ... --number 4111 1111 1111 1111"; the web
    UI's search never shows a card number typed (PCI DSS: on no page), nor does the trail."""
    data = _simulated_day(tmp_path)
    out = list_calls(data, "--number", "4111 1111 1111 1111")
    assert (out.returncode, out.stdout) == (0, "")
    said = out.stderr
    assert said == "linekeeper: no calls match --match contains --number XXXX XXXX XXXX XXXX\n", said


def test_calls_that_match_nothing_say_so_on_stderr_with_the_search(tmp_path):
    """`calls --from 2027-01-01` (nothing matches) exited 0 and printed nothing at all."""
    data = _simulated_day(tmp_path)
    out = list_calls(data, "--from", "2027-01-01", "--line", "1", "--line", "2")
    assert (out.returncode, out.stdout) == (0, "")
    assert out.stderr == "linekeeper: no calls match --from 2027-01-01 --line 1 --line 2\n"
    out = list_calls(data, "--number", "0163 296", "--match", "starts", "--json", "--direction", "out")
    assert (out.returncode, out.stdout) == (0, "")  # --json: a line a call, none here
    assert out.stderr == "linekeeper: no calls match --direction out --match starts --number 0163 296\n"
    out = list_calls(data, "--json")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 3 and out.stderr == ""


def test_calls_without_a_log(tmp_path):
    (tmp_path / "box").mkdir()
    out = linekeeper(*calls_args(str(tmp_path / "box"), "any password at all"))
    assert out.returncode == 2 and "no call log" in out.stderr


def test_rpi_board_without_hardware_is_an_error_not_the_simulator(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hat": "lk-4l"}))
    env = dict(os.environ)
    env.pop("LINEKEEPER_BOARD", None)
    run = linekeeper("run", "--data-dir", str(tmp_path), "--port", "0", "--https-port", "0", env=env)
    # The first part of the HAT it cannot open (here: I2C) stops the box, with the reason.
    assert run.returncode == 2
    assert run.stderr.startswith("linekeeper: I2C set-up of the HAT failed"), run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("web", "--port", "80800"),
        ("run", "--https-port", "99999"),
        ("run", "--port", "-1"),
        ("archive", "serve", "--port", "http"),
    ],
)
def test_a_port_out_of_range_is_refused_before_anything_starts(tmp_path, args):
    """It reached bind(): a traceback, and a web UI dead beside a recorder still running."""
    cmd, *rest = args
    if cmd != "archive":
        rest += ["--data-dir", str(tmp_path / "data")]
    run = linekeeper(cmd, *rest)
    assert run.returncode == 2 and "must be a port number" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "data").exists()


@pytest.mark.parametrize("speed", ["nan", "1e-300", "0", "inf", "-2"])
def test_a_speed_the_clock_cannot_run_at_is_refused_before_anything_starts(tmp_path, speed):
    """NaN was taken and ran; 1e-300 ended in a traceback (the clock's wait overflowed)
    after the data directory was made."""
    run = linekeeper("sim", "demo", "--speed", speed, "--data-dir", str(tmp_path / "data"))
    assert run.returncode == 2 and "must be 'max' or a number from 0.001 to 1000000" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "command, message",
    [
        ("keys", "no data directory"),
        ("repair", "it is not a box's data directory; nothing was made"),
        ("rekey", "has no recording keys: it is not a box's data directory"),
    ],
)
def test_a_folder_that_is_not_a_box_is_named_as_such(tmp_path, command, message):
    """``repair`` on the wrong folder made a box's files in it; ``rekey`` spoke of the
    signing key's run directory; ``keys`` of a signing key not made yet."""
    folder = tmp_path / ("missing" if command == "keys" else "empty")
    if command != "keys":
        folder.mkdir()
    pw = tmp_path / "pw"
    pw.write_text("a long enough password 7\n")
    pw.chmod(0o600)
    extra = ["--password-file", str(pw)] if command == "rekey" else []
    run = linekeeper(command, "--data-dir", str(folder), *extra)
    assert run.returncode == 2 and message in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert not folder.exists() if command == "keys" else list(folder.iterdir()) == []


def test_a_data_dir_that_is_a_file_is_named_as_such(tmp_path):
    """``sim`` said only "storage error: File exists"."""
    path = tmp_path / "afile"
    path.write_bytes(b"not a box")
    run = linekeeper("sim", "demo", "--data-dir", str(path))
    assert run.returncode == 2 and "afile is not a directory" in run.stderr, run.stderr
    assert path.read_bytes() == b"not a box"


def test_calls_as_text_say_a_withheld_or_unavailable_number(tmp_path):
    """The listing left the number blank, as for a call with no caller ID at all."""
    calls = [
        {"line": n, "at": 1.0, "direction": "in", "caller_id": {"absence": absence}, "answer": False}
        for n, absence in ((1, "private"), (2, "unavailable"))
    ] + [{"line": 3, "at": 1.0, "direction": "in", "answer": False}]
    path = tmp_path / "day.json"
    path.write_text(json.dumps(dict(SCENARIO, calls=calls)))
    data = tmp_path / "data"
    assert linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max").returncode == 0
    rows = list_calls(data).stdout.splitlines()[1:]
    by_line = {int(r.split()[2]): r for r in rows}
    assert by_line[1].rstrip().endswith("withheld") and by_line[2].rstrip().endswith("unavailable")
    assert not by_line[3].rstrip().endswith(("withheld", "unavailable"))


class _Stream:
    """A stream that is a terminal or not, keeping what is written."""

    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_progress_away_from_a_terminal_is_whole_lines_at_each_tenth():
    """`linekeeper repair` wrote its progress with carriage returns only: redirected to a
    file or the journal, it was one long line."""
    from firmware.cli import Progress

    out = _Stream(tty=False)
    progress = Progress("repair: %d/%d read", stream=out)
    for done in range(1, 26):
        progress(done, 25, "name")
    progress.end()
    assert "\r" not in out.text
    assert out.text.splitlines() == ["repair: %d/25 read" % n for n in (*range(2, 25, 2), 25)]


def test_progress_on_a_terminal_is_one_line_written_over_and_ended():
    from firmware.cli import Progress

    out = _Stream(tty=True)
    progress = Progress("bundle: %d/%d written", stream=out)
    for done in range(1, 4):
        progress(done, 3)
    assert out.text == "\rbundle: 1/3 written\rbundle: 2/3 written\rbundle: 3/3 written\n"
    out.text = ""
    progress(1, 3)
    progress.end()  # stopped short: the line is ended for what follows
    progress.end()
    assert out.text == "\rbundle: 1/3 written\n"


def test_repair_redirected_writes_its_progress_as_lines(tmp_path, synth):
    from support.cli import run_linekeeper
    from support.simbox import keyed_sim_box

    calls = [
        {"line": 1, "at": 1.0, "direction": "in", "rings": 1, "talk": 2.0},
        {"line": 2, "at": 1.5, "direction": "in", "rings": 1, "talk": 2.0},
    ]
    box, data_dir = keyed_sim_box(tmp_path, synth, calls, lines=2)
    box.start()
    assert box.board.run()
    box.stop()
    for name in ("calls.db", "calls.db-wal", "calls.db-shm"):
        if os.path.exists(os.path.join(data_dir, name)):
            os.unlink(os.path.join(data_dir, name))
    status, out, err = run_linekeeper("repair", "--data-dir", data_dir)
    assert status == 0 and "rebuilt 2 recording(s)" in out, (out, err)
    assert "\r" not in err
    assert err.splitlines() == [
        "linekeeper: repair: 1/2 recording files read",
        "linekeeper: repair: 2/2 recording files read",
    ]


def test_a_repair_stopped_part_way_is_audited_and_says_to_run_it_again(tmp_path, synth, monkeypatch):
    """Ctrl-C in a repair left the call log part rebuilt (and a damaged one moved aside)
    with no entry in the audit trail, and said nothing: the entry was written at the end."""
    from firmware import recovery
    from firmware.box import open_audit

    from support.cli import run_linekeeper
    from support.simbox import keyed_sim_box

    calls = [{"line": n, "at": 1.0 + n / 2, "direction": "in", "rings": 1, "talk": 2.0} for n in (1, 2, 3)]
    box, data_dir = keyed_sim_box(tmp_path, synth, calls, lines=3)
    box.start()
    assert box.board.run()
    box.stop()
    for name in ("calls.db", "calls.db-wal", "calls.db-shm"):
        if os.path.exists(os.path.join(data_dir, name)):
            os.unlink(os.path.join(data_dir, name))
    rebuild, seen = recovery._rebuild, []

    def stopped_at_the_second(*args):
        seen.append(args)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return rebuild(*args)

    monkeypatch.setattr(recovery, "_rebuild", stopped_at_the_second)
    status, out, err = run_linekeeper("repair", "--data-dir", data_dir)
    assert status == 128 + 2, (out, err)
    assert "repair stopped part way" in err and "run `linekeeper repair` again" in err, err
    with open_audit(data_dir) as audit:
        entries = audit.entries(action="repair")
    assert len(entries) == 1
    details = entries[0].details
    assert (details["rebuilt"], details["cut_short"], details["files_read"]) == (1, "stopped", "1/3")

    monkeypatch.setattr(recovery, "_rebuild", rebuild)
    status, out, err = run_linekeeper("repair", "--data-dir", data_dir)
    assert status == 0 and "rebuilt 2 recording(s) into the call log; 1 were already in it" in out, (out, err)


def test_update_once_without_a_folder_to_watch_says_what_it_is_for(tmp_path, capsys):
    """`--once` looks in the watched folder once: alone it was refused as if no bundle had
    been given, which did not say that it needs --watch."""
    from firmware.cli import main

    assert main(["update", "--once", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--once is for --watch FOLDER" in err and len(err.splitlines()) == 1, err


def test_sim_refuses_a_configured_hat_the_scenario_does_not_play(tmp_path):
    """The simulator plays the scenario's "hat" (lk-4l unless it says); a HAT set only in
    the data directory's config.json (or the --config file) was silently not played. It
    is refused in one line naming the HAT and the file, before anything is written; the
    same HAT in both runs."""
    path = tmp_path / "day.json"
    path.write_text(json.dumps(dict(SCENARIO, calls=[])))
    data = tmp_path / "data"
    data.mkdir()
    config = data / "config.json"
    config.write_text(json.dumps({"hat": "lk-2lb"}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hat": "lk-2lb"}))
    for named, extra in ((config, ()), (other, ("--config", str(other)))):
        run = linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max", *extra)
        assert run.returncode == 2, run.stderr
        assert run.stderr == (
            "linekeeper: %s: hat: the simulated board has the scenario's \"hat\" ('lk-4l'), not this "
            'one (\'lk-2lb\'): give the HAT as "hat": "lk-2lb" at the top of the scenario\n' % named
        ), run.stderr
        assert sorted(os.listdir(data)) == ["config.json"]
    path.write_text(json.dumps(dict(SCENARIO, calls=[], lines=2, hat="lk-2lb")))
    run = linekeeper("sim", str(path), "--data-dir", str(data), "--speed", "max")
    assert run.returncode == 0, run.stderr
