"""Site settings whose change a cut left in web.db only.

The setup wizard and the settings page commit the site settings to web.db, then
put them into config.json (a private line gets the rule ``never``; the wizard
also turns the consent notice on), then audit the change. A cut after the
commit left the rest undone for good: the box recorded a line its settings
page called private, a box set up with the wizard recorded without telling
callers, and nothing was audited. Each test cuts after the commit and starts
the web UI again.
"""

import pytest

from firmware.config import load_config
from web import sitechange
from web.services import notice_defaults_applier, site_settings_applier

from support.web import Cut, cut, restart_web


def _locked(settings):
    raise OSError("the configuration is sealed with a key this process has not got yet")


@pytest.fixture
def wired(box):
    """The box with what puts the site settings into its configuration, as on a real box."""
    box.services.apply_settings = site_settings_applier(box.config_store, box.audit, box.services.wall_us)
    box.services.setup_defaults = notice_defaults_applier(box.config_store, box.audit, box.services.wall_us)
    return box


def _entries(box, action):
    return [e for e in box.audit.entries(limit=1000, action=action) if e.actor != "system"]


def _setup_cut_after_its_commit(box, patch, private_line):
    """Run the wizard with ``private_line`` private, cut after its commit."""
    client = box.client()
    form = box.setup_form(**{"line-%d-mode" % private_line: "private"})
    form["csrf_token"] = box.token_of(client, "/setup")
    # Its first call, before the keys are made, goes through; the one after the commit cuts.
    calls = [box.services.apply_settings, cut]
    patch.setattr(box.services, "apply_settings", lambda settings: calls.pop(0)(settings))
    with pytest.raises(Cut):
        client.post("/setup", data=form)


def _rules_of(box):
    return load_config(box.data_dir).policy.rules


def test_a_setup_cut_after_its_commit_still_keeps_the_private_line_and_tells_callers(wired, monkeypatch):
    box = wired
    with monkeypatch.context() as patch:
        _setup_cut_after_its_commit(box, patch, 2)
    assert box.web.site.setup_complete
    assert _rules_of(box).mode(2) == "never"  # put in before the keys were made
    assert not _entries(box, "init")  # the cut: the entry is owed
    restart_web(box)
    assert _rules_of(box).mode(2) == "never" and _rules_of(box).mode(1) != "never"
    consent = load_config(box.data_dir).policy.consent
    assert (consent.inbound, consent.outbound) == ("announcement", "tone")
    (entry,) = _entries(box, "init")
    assert entry.details["lines"][1] == {"line": 2, "name": "Line 2", "record": False}
    assert sitechange.KEY not in dict(box.web.db.query("SELECT key, value FROM site"))
    restart_web(box)
    assert len(_entries(box, "init")) == 1


def test_a_settings_change_cut_after_its_commit_reaches_the_configuration(wired, people, monkeypatch):
    box = wired
    ivan = people["ivan"]
    page = ivan.get("/settings").get_data(as_text=True)
    assert "line-2-mode" in page
    form = box.setup_form(**{"line-2-mode": "private"})
    for key in ("setup_code", "admin_name", "admin_password", "admin_confirm"):
        form.pop(key)
    form["time_zone"] = "Europe/London"
    with monkeypatch.context() as patch:
        patch.setattr(box.services, "apply_settings", cut)
        with pytest.raises(Cut):
            box.post(ivan, "/settings", form, token_from="/settings")
    assert not box.web.site.settings().line(2).record and _rules_of(box).mode(2) != "never"
    restart_web(box)
    assert _rules_of(box).mode(2) == "never"
    (entry,) = [e for e in _entries(box, "config_change") if e.target == "site"]
    assert entry.actor == "ivan" and entry.details["lines"][1]["record"] is False


def test_a_cut_before_the_entry_is_audited_once(wired, monkeypatch):
    box = wired
    real = box.audit.append

    def append(actor, action, *args, **kwargs):
        if action == "init":
            raise Cut()
        return real(actor, action, *args, **kwargs)

    client = box.client()
    form = box.setup_form()
    form["csrf_token"] = box.token_of(client, "/setup")
    with monkeypatch.context() as patch:
        patch.setattr(box.audit, "append", append)
        with pytest.raises(Cut):
            client.post("/setup", data=form)
    assert not _entries(box, "init")
    restart_web(box)
    assert len(_entries(box, "init")) == 1


def test_a_note_the_start_cannot_finish_is_finished_by_the_sweep(wired, monkeypatch):
    """A configuration sealed with a key this process has not got yet: the start logs
    it, keeps the note, and the server's sweep finishes it later."""
    box = wired
    with monkeypatch.context() as patch:
        _setup_cut_after_its_commit(box, patch, 3)
        patch.setattr(box.services, "apply_settings", _locked)
        restart_web(box)
    # (Line 3 was made private before the keys: the note owes the entry.)
    assert not _entries(box, "init") and sitechange.KEY in dict(
        box.web.db.query("SELECT key, value FROM site")
    )
    box.web.sweep()
    assert _rules_of(box).mode(3) == "never" and len(_entries(box, "init")) == 1


def test_a_setup_try_cut_after_its_keys_keeps_the_private_line_and_tells_callers(wired, monkeypatch):
    """The box records once it has keys, and the wizard makes them before its settings
    commit: a try the card cut between the two (web.db refused) left a box recording
    every line, the one chosen private too, with no notice, until someone tried again.
    The private lines and the notice reach the configuration before the keys are made."""
    import sqlite3

    box = wired
    keystore = box.services.keystore
    real = keystore.initialise

    def initialise_then_refused(name, password):
        real(name, password)
        raise sqlite3.OperationalError("disk I/O error")  # web.db's commit, refused

    monkeypatch.setattr(keystore, "initialise", initialise_then_refused)
    client = box.client()
    form = box.setup_form(**{"line-2-mode": "private"})
    form["csrf_token"] = box.token_of(client, "/setup")
    assert client.post("/setup", data=form).status_code == 503
    assert keystore.is_initialised and not box.web.site.setup_complete
    assert _rules_of(box).mode(2) == "never" and _rules_of(box).mode(1) != "never"
    consent = load_config(box.data_dir).policy.consent
    assert (consent.inbound, consent.outbound) == ("announcement", "tone")
