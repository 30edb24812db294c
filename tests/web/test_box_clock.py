"""One clock for what the box records: the simulated board's, not the machine's.

On the simulated board (``make run``) the box's clock is the scenario's (2 March 2026
here), months from the machine's. The audit trail was dated by the box's clock, but
accounts were made, and the card's days in service counted, by the machine's: every
account read "Last login: never" (its logins came before it was made), the breach scope
said the account was made after the period began, and the dashboard said a card set up
minutes before had been in service for months; and the settings' dates of things done
were judged by the machine's today. Here the web UI runs as ``linekeeper web``
runs it, beside a recorder on the simulated board reached over its control socket.
"""

import functools
import json
import re

import pytest

from board.sim.scenario import loads_scenario
from firmware import cardhealth
from firmware.box import open_sim_box
from firmware.calls.calllog import iso_ms
from firmware.control import ControlClient, ControlServer, RecorderUnavailable, recorder_handlers
from firmware.storage.keystore import Argon2Params, KeyStore
from tests.firmware.test_cardhealth import GB, fake_system
from web import WebConfig, create_app
from web.passwords import CHEAP_COST
from web.remote import RemoteClock, RemoteStatus, services_for_recorder

from support.web import TOKEN, setup_form

START = "2026-03-02T09:00:00Z"
START_US = 1_772_442_000_000_000  # START, µs since the epoch
ADMIN = ("owner", "box owner password 7 long")
SAM = ("sam", "sam's own password 7 long")
ANN = ("ann", "ann's own password 7 long")


class SimWeb:
    """The web UI's app beside a recorder on the simulated board, its clock at START."""

    def __init__(self, tmp_path, synth, data_dir):
        doc = {"start": START, "country": "uk", "lines": 2, "calls": []}
        self.box = open_sim_box(loads_scenario(json.dumps(doc)), data_dir, synth=synth)
        self.server = ControlServer(str(tmp_path / "recorder.sock"), recorder_handlers(self.box))
        self.server.start()
        self.client = ControlClient(str(tmp_path / "recorder.sock"))
        self.services = services_for_recorder(data_dir, self.client, 2)
        self.services.keystore = KeyStore(data_dir, Argon2Params(memory_kib=8, iterations=1))
        self.app = create_app(self.services, WebConfig(data_dir=data_dir, hash_cost=CHEAP_COST))
        self.app.testing = True
        self.data_dir = data_dir

    def close(self):
        self.app.extensions["linekeeper"].close()
        self.client.close()
        self.server.stop()
        self.box.stop()

    def browser(self):
        client = self.app.test_client()
        client.environ_base["wsgi.url_scheme"] = "https"
        client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
        return client

    def post(self, client, path, form, token_from):
        page = client.get(token_from).get_data(as_text=True)
        form = dict(form, csrf_token=TOKEN.search(page).group(1))
        return client.post(path, data=form)

    def setup_form(self, **fields):
        return setup_form(self.data_dir, lines=2, admin=ADMIN, **fields)

    def set_up(self):
        """The setup wizard completed and its recovery key confirmed: the owner's browser."""
        owner = self.browser()
        assert self.post(owner, "/setup", self.setup_form(), "/setup").status_code == 302
        page = owner.get("/setup/recovery").get_data(as_text=True)
        key = re.search(r'id="recovery-key">([^<]+)<', page).group(1)
        assert self.post(owner, "/setup/recovery", {"typed_key": key}, "/setup/recovery").status_code == 302
        return owner

    def add_user(self, owner, name, password, roles, lines=()):
        """``name``'s account, made by ``owner``, its password as if they chose it."""
        form = {"name": name, "password": password, "roles": list(roles), "lines": [str(n) for n in lines]}
        resp = self.post(owner, "/users", form, "/users")
        assert resp.status_code == 302, resp.get_data(as_text=True)
        with self.app.extensions["linekeeper"].db.tx() as conn:
            conn.execute("UPDATE users SET must_change = '' WHERE name = ?", (name,))

    def login(self, name, password):
        client = self.browser()
        resp = self.post(client, "/login", {"name": name, "password": password}, "/login")
        assert resp.status_code == 302, resp.get_data(as_text=True)
        return client


@pytest.fixture
def sim_web(tmp_path, synth, monkeypatch):
    # The data folder on a card the kernel counts (a fake /sys and /proc): a day's uptime.
    data_dir, sys_root, proc_root = fake_system(
        tmp_path, written_bytes=2 * GB, uptime_s=86_400, card_bytes=32 * GB
    )
    monkeypatch.setattr(
        cardhealth,
        "card_health",
        functools.partial(cardhealth.card_health, sys_root=sys_root, proc_root=proc_root),
    )
    web = SimWeb(tmp_path, synth, data_dir)
    yield web
    web.close()


def test_accounts_are_dated_by_the_box_s_clock(sim_web):
    owner = sim_web.set_up()
    sim_web.add_user(owner, *SAM, roles=["supervisor"], lines=[1])
    sim_web.add_user(owner, *ANN, roles=["auditor"])
    sim_web.box.clock.run_until(3600 * 10**6)  # an hour on: sam logs in at 10:00
    sim_web.login(*SAM)

    users = owner.get("/users").get_data(as_text=True)
    said = re.search(r'id="last-login-sam">([^<]*)<', users).group(1)
    assert "never" not in said and "10:00" in said, said

    auditor = sim_web.login(*ANN)
    # A leaver's entry of the same name, that morning before sam's account was made.
    sim_web.services.audit.append("sam", "login", "sam", {}, 1_772_409_600_000_000)  # 00:00 UTC
    scope = auditor.get("/audit/breach-scope?account=sam&from=2026-03-02&to=2026-03-02").get_data(
        as_text=True
    )
    # Made at 09:00 that day, after the period began and the leaver's entry: said so, with the
    # box's date.
    made = re.search(r'id="earlier-account">([^<]*)<', scope).group(1)
    assert "was made on Mon 2 Mar 2026, 09:00" in made, made


def test_the_card_s_days_in_service_count_on_the_box_s_clock(sim_web):
    owner = sim_web.set_up()
    sim_web.box.clock.run_until(3 * 86_400 * 10**6)  # three days after the box was set up
    wear = re.search(r'id="card-wear">(.*?)</dd>', owner.get("/").get_data(as_text=True), re.S).group(1)
    assert "in service 3 days" in wear, wear
    assert "replace it now" not in wear


def test_a_date_after_the_box_s_today_is_refused(sim_web):
    """The day the data protection impact assessment was last reviewed may not be after the
    box's today (2 March 2026), though it is before the machine's."""
    browser = sim_web.browser()
    form = sim_web.setup_form(dpia_reviewed="2026-06-01")
    resp = sim_web.post(browser, "/setup", form, "/setup")
    assert resp.status_code == 400
    assert "The review date cannot be in the future" in resp.get_data(as_text=True)
    # The box's date is said: a demo box's March is not the installer's calendar.
    assert "today is Mon 2 Mar 2026 on the box&#39;s clock" in resp.get_data(as_text=True)
    assert sim_web.app.extensions["linekeeper"].accounts.count() == 0
    form = sim_web.setup_form(lawful_basis="legitimate_interests", lia_date="2026-06-01")
    page = sim_web.post(browser, "/setup", form, "/setup").get_data(as_text=True)
    assert (
        "The assessment date cannot be in the future (today is Mon 2 Mar 2026 on the box&#39;s "
        "clock): give the day it was made." in page
    )
    assert sim_web.app.extensions["linekeeper"].accounts.count() == 0
    form = sim_web.setup_form(dpia_reviewed="2026-03-01")
    assert sim_web.post(browser, "/setup", form, "/setup").status_code == 302


def test_the_web_ui_keeps_the_box_s_clock_while_the_recorder_is_down():
    """A recorder that stops answering: the web UI's clock goes on from the box's time (the
    machine's moved by as much as the recorder's was from it), not from the machine's."""

    class Recorder:
        up = True
        box_us = START_US

        def call(self, name):
            if not self.up:
                raise RecorderUnavailable("the recorder is not answering")
            return self.box_us

    machine = {"us": START_US + 280 * 86_400 * 10**6}
    recorder = Recorder()
    clock = RemoteClock(recorder, machine_us=lambda: machine["us"])
    assert clock.wall_us() == START_US
    recorder.up = False
    machine["us"] += 5 * 10**6
    assert clock.wall_us() == START_US + 5 * 10**6
    # The dashboard's box time while it is down, too.
    assert RemoteStatus(recorder, 2, clock.without_recorder_us).snapshot()["now"] == iso_ms(
        START_US + 5 * 10**6
    )


def test_on_a_box_the_web_ui_s_clock_while_the_recorder_is_down_is_the_machine_s():
    """On a box the recorder's clock is the machine's: the gap seen at its last answer is
    the call's own time (here 0.3 s, the machine's clock read after the answer came), or a
    step of the clock between the reads, and is none; a gap of months (a simulated box)
    is kept, measured halfway through the call."""

    class Recorder:
        up = True

        def call(self, name):
            if not self.up:
                raise RecorderUnavailable("the recorder is not answering")
            box_us = machine["us"] + self.ahead_us
            machine["us"] += 300_000  # the call took 0.3 s
            return box_us

    machine = {"us": START_US}
    recorder = Recorder()
    recorder.ahead_us = 0
    clock = RemoteClock(recorder, machine_us=lambda: machine["us"])
    clock.wall_us()
    recorder.up = False
    assert clock.wall_us() == machine["us"]  # not 0.3 s behind the machine's clock
    recorder.up, recorder.ahead_us = True, -280 * 86_400 * 10**6
    clock.wall_us()
    recorder.up = False
    assert clock.wall_us() == machine["us"] - 280 * 86_400 * 10**6 - 150_000
