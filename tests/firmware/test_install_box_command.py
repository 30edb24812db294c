"""On a box set up by scripts/install-box, the technician runs the steps of the docs as
written (`sudo -u linekeeper-rec linekeeper hat-replaced ...`, `linekeeper keystore restore
...`, `linekeeper update --status`): the `linekeeper` command must be on the PATH, root's
and sudo's (its secure_path has /usr/local/bin), and be the running slot's. The installer
put it only in the venv (/opt/linekeeper/current/venv/bin), which no PATH names, so every
such step ended "linekeeper: command not found"."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
LINK = "/usr/local/bin/linekeeper"


def _unit_command():
    """The linekeeper the services run (the running slot's, through `current`)."""
    unit = (SCRIPTS / "system" / "linekeeper-recorder.service").read_text()
    return re.search(r"^ExecStart=(\S+/linekeeper) recorder ", unit, re.M).group(1)


def test_the_installer_puts_the_running_slot_s_command_on_the_path():
    installer = (SCRIPTS / "install-box").read_text()
    assert _unit_command() == "/opt/linekeeper/current/venv/bin/linekeeper"
    assert "PREFIX=/opt/linekeeper\n" in installer
    link = 'ln -sfn "$PREFIX/current/venv/bin/linekeeper" %s\n' % LINK
    assert link in installer
    # Made once the firmware is in place, and never a copy: the link follows an update's
    # switch of `current`, as the services do.
    assert installer.index('mv "$PREFIX.new" "$PREFIX"') < installer.index(link)


def test_uninstall_removes_the_link_and_only_a_link():
    installer = (SCRIPTS / "install-box").read_text()
    uninstall = installer[installer.index("uninstall() {") : installer.index('if [ "$ACTION" = uninstall ]')]
    assert "if [ -L %s ]; then rm -f %s; fi" % (LINK, LINK) in uninstall
