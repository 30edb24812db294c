"""The central viewer's times, in the zone of the site that recorded each call.

A box writes its own zone (``time_zone``, the one its pages date in) into each call
record it archives; the viewer shows that call's times in it, with the zone's name in
force then (``BST``), and its date filters count each call's days in the same zone. A
record from before records carried a zone (or one this machine's zone database lacks) is
shown in UTC, and says so.
"""

import base64
import datetime
import json
import re
import sqlite3

import pytest

from firmware.archive import sealing, viewer
from firmware.archive.viewer import rebuild_index
from firmware.localtime import iso_to_us
from firmware.storage.keystore import Argon2Params, KeyStore
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST

from support.archive import MemoryBucket

PASSWORD = "a long enough pass 42"
LATE_JUNE = iso_to_us("2026-06-30T23:30:00Z")  # 00:30 BST on 1 Jul in London
WINTER = iso_to_us("2026-03-02T09:05:40Z")  # GMT in London
# The viewer's clock: 00:45 BST on 1 Jul in London, still 30 Jun in UTC.
NOW = iso_to_us("2026-06-30T23:45:00Z")


def _record(org_public, box, call_id, started_us, zone=None):
    sealed = sealing.seal(
        json.dumps({"call": {"number": None, "name": None}, "audit": []}).encode(),
        org_public,
        ("%s/%d" % (box, call_id)).encode(),
    )
    doc = {
        "format": 1,
        "box": box,
        "call_id": call_id,
        "line": 1,
        "direction": "in",
        "started_at": datetime.datetime.fromtimestamp(started_us / 1e6, datetime.UTC).isoformat(),
        "started_us": started_us,
        "answered": False,
        "recordings": [],
        "sealed": base64.b64encode(sealed).decode(),
    }
    if zone is not None:
        doc["time_zone"] = zone
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive-times")
    store = KeyStore(str(root / "org"), Argon2Params(memory_kib=8, iterations=1))
    store.initialise("sup", PASSWORD)
    pub = store.public_key()
    bucket = MemoryBucket(
        {
            "london/calls/0000000001.json": _record(pub, "london", 1, LATE_JUNE, "Europe/London"),
            "london/calls/0000000002.json": _record(pub, "london", 2, WINTER, "Europe/London"),
            # An archive written before records carried their box's zone.
            "oldsite/calls/0000000001.json": _record(pub, "oldsite", 1, LATE_JUNE),
            # A zone this machine does not know (or text that is none): shown in UTC too.
            "mars/calls/0000000001.json": _record(pub, "mars", 1, LATE_JUNE, "Mars/Olympus_Mons"),
        }
    )
    users = ArchiveUsers(str(root / "viewer"), CHEAP_COST)
    v = Viewer(
        str(root / "viewer"),
        str(root / "org"),
        bucket,
        users=users,
        secure_cookies=False,
        wall_us=lambda: NOW,
    )
    users.set("aud", PASSWORD, ["auditor"])
    rebuild_index(bucket, v.index_path)
    yield create_archive_app(v)
    v.close()


@pytest.fixture
def client(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"user": "aud", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    return client


def _started(page):
    """``{site/call: the Started cell}`` of a calls page."""
    rows = re.findall(
        r'<a href="/calls/([^/]+)/(\d+)">\d+</a></td>\s*<td data-label="Started">([^<]*)</td>', page
    )
    return {"%s/%s" % (box, call): started for box, call, started in rows}


def test_a_call_is_shown_in_its_site_s_zone_with_the_zone_named(client):
    page = client.get("/?box=london").get_data(as_text=True)
    assert _started(page) == {
        "london/1": "Wed 1 Jul 2026, 00:30:00 BST",
        "london/2": "Mon 2 Mar 2026, 09:05:40 GMT",
    }
    page = client.get("/calls/london/1").get_data(as_text=True)
    assert '<dd id="started">Wed 1 Jul 2026, 00:30:00 BST</dd>' in page
    assert '<dd id="time-zone">Europe/London (the site&#39;s)</dd>' in page


@pytest.mark.parametrize("box", ["oldsite", "mars"])
def test_a_call_whose_archive_says_no_zone_is_shown_in_utc_labelled(client, box):
    page = client.get("/?box=%s" % box).get_data(as_text=True)
    assert _started(page) == {"%s/1" % box: "Tue 30 Jun 2026, 23:30:00 UTC"}
    page = client.get("/calls/%s/1" % box).get_data(as_text=True)
    assert '<dd id="started">Tue 30 Jun 2026, 23:30:00 UTC</dd>' in page
    assert "UTC (the site&#39;s archive does not say its time zone)" in page


def test_a_date_filter_means_the_days_each_call_is_shown_on(client):
    """The same instant is 1 Jul in London and 30 Jun in UTC: each call is found on the
    day its row shows."""
    july_1 = _started(client.get("/?from=2026-07-01&to=2026-07-01").get_data(as_text=True))
    assert set(july_1) == {"london/1"}
    june_30 = _started(client.get("/?from=2026-06-30&to=2026-06-30").get_data(as_text=True))
    assert set(june_30) == {"oldsite/1", "mars/1"}
    # One end only: from 1 Jul is London's call alone; to 30 Jun all but it.
    assert set(_started(client.get("/?from=2026-07-01").get_data(as_text=True))) == {"london/1"}
    assert set(_started(client.get("/?to=2026-06-30").get_data(as_text=True))) == {
        "london/2",
        "oldsite/1",
        "mars/1",
    }


def test_an_index_written_before_calls_carried_a_zone_searches_days_in_utc(tmp_path):
    """Until it is rebuilt, an index without the column holds every call to UTC days."""
    path = str(tmp_path / "index.db")
    pub = KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1))
    pub.initialise("sup", PASSWORD)
    bucket = MemoryBucket(
        {"london/calls/0000000001.json": _record(pub.public_key(), "london", 1, LATE_JUNE, "Europe/London")}
    )
    rebuild_index(bucket, path)
    july_1 = datetime.date(2026, 7, 1)
    assert [c["call_id"] for c in viewer.search(path, first_day=july_1, last_day=july_1)] == [1]
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE calls DROP COLUMN time_zone")
    db.execute("DELETE FROM meta WHERE name = 'time_zones'")
    db.commit()
    db.close()
    assert viewer.search(path, first_day=july_1, last_day=july_1) == []
    (found,) = viewer.search(path, first_day=datetime.date(2026, 6, 30), last_day=datetime.date(2026, 6, 30))
    assert found["time_zone"] is None


def _report(client, query):
    return json.loads(client.get("/reports?from=2026-07-01&to=2026-07-01&format=json&" + query).data)


def test_a_report_counts_days_in_the_zone_its_sites_share_else_utc(client):
    """A report of London alone counts 1 Jul as London does (its call at 00:30 BST in it);
    sites of different zones, or none said, are counted in UTC unless a zone is typed,
    and the report says which."""
    london = _report(client, "site=london")
    assert london["period"]["tz"] == "Europe/London" and london["total"]["calls"] == 1
    assert 'name="tz" value="Europe/London"' in client.get("/reports?site=london").get_data(as_text=True)
    old = _report(client, "site=oldsite")
    assert old["period"]["tz"] == "UTC" and old["total"]["calls"] == 0
    every = _report(client, "")
    assert every["period"]["tz"] == "UTC" and every["sites"]["london"]["calls"] == 0
    # A zone typed counts every site's days in it: the three calls of 23:30 UTC on 30 Jun.
    typed = _report(client, "tz=Europe/London")
    assert typed["period"]["tz"] == "Europe/London" and typed["total"]["calls"] == 3


def _defaults(page):
    """``(from, to, tz)`` the Reports form shows."""
    return tuple(
        re.search(r'name="%s"[^>]* value="([^"]*)"' % name, page).group(1) for name in ("from", "to", "tz")
    )


def test_a_report_s_days_default_to_today_in_the_report_s_zone(client):
    """At 00:45 BST on 1 Jul (23:45 UTC on 30 Jun) a London report opens on 1 Jul, its
    call of 00:30 BST in it; a report counted in UTC on 30 Jun; a zone typed, its today."""
    page = client.get("/reports?site=london").get_data(as_text=True)
    assert _defaults(page) == ("2026-07-01", "2026-07-01", "Europe/London")
    london = json.loads(client.get("/reports?site=london&format=json").data)
    assert (london["period"]["from"], london["period"]["to"]) == ("2026-07-01", "2026-07-01")
    assert london["total"]["calls"] == 1
    page = client.get("/reports?site=oldsite").get_data(as_text=True)
    assert _defaults(page) == ("2026-06-30", "2026-06-30", "UTC")
    page = client.get("/reports?site=oldsite&tz=Asia/Tokyo").get_data(as_text=True)
    assert _defaults(page) == ("2026-07-01", "2026-07-01", "Asia/Tokyo")
    # A day typed is kept; only the one left empty is today.
    page = client.get("/reports?site=london&from=2026-06-01").get_data(as_text=True)
    assert _defaults(page) == ("2026-06-01", "2026-07-01", "Europe/London")
    # A zone that is none: refused naming it, the form's days UTC's today.
    resp = client.get("/reports?tz=Nowhere/Else")
    assert resp.status_code == 400 and "Nowhere/Else" in resp.get_data(as_text=True)
    assert _defaults(resp.get_data(as_text=True)) == ("2026-06-30", "2026-06-30", "Nowhere/Else")


def test_the_viewer_s_trail_says_a_report_s_zone_and_its_times_in_utc(app, client):
    """A report's entry names the zone its days are in (the same dates are other instants
    elsewhere); a time an entry holds (enable-user's ``was_disabled_us``) is written as the
    trail's other times, in UTC and saying so, not as a count of µs."""
    v = app.extensions["linekeeper-archive"]
    v.audit_log.append("command-line", "account_enabled", "aud", {"was_disabled_us": LATE_JUNE}, NOW)
    client.get("/reports?site=london&format=json")
    (entry,) = v.audit_log.entries(limit=1, action="report")
    assert (entry.details["period"], entry.details["time_zone"]) == ("2026-07-01", "Europe/London")
    page = client.get("/audit").get_data(as_text=True)
    assert "<dt>Was disabled</dt><dd>Tue 30 Jun 2026, 23:30:00 UTC</dd>" in page
    assert str(LATE_JUNE) not in page
    assert "<dt>Time zone</dt><dd>Europe/London</dd>" in page
    assert '<td data-label="When">Tue 30 Jun 2026, 23:45:00 UTC</td>' in page
