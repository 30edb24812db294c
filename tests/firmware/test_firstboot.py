"""First boot without a screen: the setup code on the console and the login prompt,
the HAT's LED blinking ``setup`` until the wizard is done (issue 14)."""

import os

import pytest

from board.mcu.link import McuLink
from board.mcu.sim import SimMcu
from firmware import firstboot
from firmware.clock import SimClock
from firmware.errors import LinekeeperError
from web.setupcode import forget_setup_code, setup_code_for

from support.policy_lab import PolicyLab


def _complete_setup(data_dir):
    """What the wizard leaves: web.db saying so, the code gone."""
    import sqlite3

    db = sqlite3.connect(os.path.join(data_dir, "web.db"))
    db.execute("CREATE TABLE site (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO site VALUES ('setup_complete', 'true')")
    db.commit()
    db.close()
    forget_setup_code(data_dir)


def test_pending_until_the_wizard_is_done(tmp_path):
    d = str(tmp_path)
    assert firstboot.setup_pending(d)  # the web UI has not even started
    code = setup_code_for(d)
    open(os.path.join(d, "web.db"), "wb").close()
    assert firstboot.setup_pending(d) and firstboot.read_setup_code(d) == code
    os.remove(os.path.join(d, "web.db"))
    _complete_setup(d)
    assert not firstboot.setup_pending(d) and firstboot.read_setup_code(d) is None


@pytest.mark.parametrize("kind", ["symlink", "text", "big"])
def test_only_a_setup_code_is_ever_shown(tmp_path, kind):
    d, secret = tmp_path / "data", tmp_path / "secret"
    d.mkdir()
    secret.write_text("ABCD-EFGH-JKMN-PQRS\n")
    path = d / firstboot.SETUP_CODE_FILE
    if kind == "symlink":
        path.symlink_to(secret)
    elif kind == "text":
        path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    else:
        path.write_text("ABCD-EFGH-JKMN-PQRS" * 10)
    with pytest.raises(LinekeeperError, match="setup code"):
        firstboot.read_setup_code(str(d))


def test_banner_on_the_console_and_the_login_prompt_until_set_up(tmp_path):
    d, issue = str(tmp_path / "data"), tmp_path / "setup.issue"
    code = setup_code_for(d)
    status, out, err = PolicyLab.cli("banner", "--data-dir", d, "--issue", issue)
    assert status == 0, err
    assert code in out and "https://" in out
    assert "ADDRESS" not in out  # the console and the journal cannot know the address
    text = issue.read_text()
    assert code in text and "(or https://\\4/)" in text  # agetty puts the box's address there
    _complete_setup(d)
    status, out, err = PolicyLab.cli("banner", "--data-dir", d, "--issue", issue)
    assert (status, out, issue.read_text()) == (0, "", "")


def test_banner_refuses_a_missing_data_dir_in_one_line(tmp_path):
    status, out, err = PolicyLab.cli("banner", "--data-dir", tmp_path / "nope")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_the_led_blinks_setup_until_set_up_then_shows_on(tmp_path):
    d = str(tmp_path)
    setup_code_for(d)
    open(os.path.join(d, "web.db"), "wb").close()
    clock = SimClock()
    link = McuLink(SimMcu(clock).bus)
    link.open()
    led = firstboot.SetupLed(link, d, clock, period_us=5_000_000)
    led.start()
    assert link.led() == "setup"
    os.remove(os.path.join(d, "web.db"))
    _complete_setup(d)
    clock.run_until(6_000_000)
    assert link.led() == "on"
    led.close()
    link.set_led("setup")
    clock.run_until(20_000_000)
    assert link.led() == "setup"  # closed: it no longer touches the LED
