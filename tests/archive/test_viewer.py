"""The central viewer over a real S3 server (SeaweedFS): three sites, one bucket, one UI.

Three simulated boxes each run a day into one bucket; the viewer (``linekeeper
archive serve``'s app) rebuilds its index from the bucket with a supervisor's
slot of the organisation key, finds every call of every site, plays one from
each site (audited in the viewer's own trail), and its report for the period
is the sum of the boxes' own reports.
"""

import json
import os
import re

import pytest
from conftest import archive_settings, prepare_box
from test_replication import bucket_of, drain, linekeeper

from board.sim.scenario import loads_scenario
from firmware.archive.replicator import Replicator
from firmware.box import open_sim_box
from firmware.reports.compute import build_report
from firmware.reports.period import parse_period
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST

pytestmark = pytest.mark.slow

SITES = {"leeds": ("2026-03-02", "01632960101"), "york": ("2026-03-03", "01632960202"),
         "hull": ("2026-03-04", "01632960303")}  # fmt: skip
ORG_PASSWORD = "organisation archive pass"


def day_scenario(day, number):
    """A short day at one site: two answered calls, a missed one, an outbound one."""
    calls = [
        {"line": 1, "direction": "in", "rings": 1, "talk": 3.0, "at": 1.0, "caller_id": {"number": number}},
        {
            "line": 2,
            "direction": "in",
            "rings": 3,
            "answer": False,
            "at": 2.0,
            "caller_id": {"number": number},
        },
        {"line": 1, "direction": "out", "dial": {"digits": "01632960999"}, "talk": 2.5, "at": 14.0},
        {"line": 2, "direction": "in", "rings": 1, "talk": 4.0, "at": 20.0, "caller_id": {"number": number}},
    ]
    return loads_scenario(
        json.dumps({"start": day + "T09:00:00Z", "country": "uk", "lines": 2, "calls": calls})
    )


def run_site(data, synth, day, number):
    box = open_sim_box(day_scenario(day, number), data, synth=synth)
    box.start()
    try:
        assert box.board.run()
    finally:
        box.stop()


def _rows(data, sql):
    import sqlite3

    db = sqlite3.connect(os.path.join(data, "calls.db"))
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def login(client, name, password):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/login", data={"user": name, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    page = client.get("/sites").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_three_sites_one_viewer_finds_plays_and_reports(tmp_path, synth, s3, bucket_name):
    password = tmp_path / "org-password"
    password.write_text(ORG_PASSWORD + "\n")
    org = str(tmp_path / "org")
    out = linekeeper("archive", "init-org", "--org-dir", org, "--password-file", str(password))
    import base64

    org_public = base64.b64decode(out.split("org_public_key: ")[1].strip())

    own_reports, own_calls = {}, {}
    period = parse_period("2026-03-02", "2026-03-04")
    for box_id, (day, number) in SITES.items():
        data = str(tmp_path / box_id)
        prepare_box(data, s3, bucket_name, box_id, org_public)
        run_site(data, synth, day, number)
        rep = Replicator(data, archive_settings(s3, bucket_name, box_id, org_public))
        try:
            drain(rep)
        finally:
            rep.close()
        own_calls[box_id] = _rows(data, "SELECT id, number FROM calls ORDER BY id")
        own_reports[box_id] = build_report(
            os.path.join(data, "calls.db"), period, audit_db=os.path.join(data, "audit.db"), n_lines=2
        )
        assert own_reports[box_id]["box"]["calls"] == 4

    # The viewer's accounts: the organisation key's admin as supervisor, an auditor.
    viewer_dir = str(tmp_path / "viewer")
    linekeeper("archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org, "--name", "admin",
               "--roles", "supervisor", "--password-file", str(password))  # fmt: skip
    ArchiveUsers(viewer_dir, CHEAP_COST).set("audra", "auditor's own pass 7", ["auditor"])
    viewer = Viewer(viewer_dir, org, bucket_of(s3, bucket_name), secure_cookies=False)
    try:
        app = create_archive_app(viewer)
        sup = app.test_client()
        csrf = login(sup, "admin", ORG_PASSWORD)
        page = sup.post("/index", data={"csrf_token": csrf}).get_data(as_text=True)
        assert "12 calls" in page

        # Every call of every site, numbers searchable.
        page = sup.get("/").get_data(as_text=True)
        assert sorted(re.findall(r'data-site="(\w+)"', page)) == sorted([b for b in SITES for _ in range(4)])
        for box_id, (_, number) in SITES.items():
            page = sup.get("/?number=" + number[-6:]).get_data(as_text=True)
            found = re.findall(r'<a href="/calls/(\w+)/(\d+)">', page)
            assert sorted((b, int(i)) for b, i in found) == [
                (box_id, i) for i, n in own_calls[box_id] if n == number
            ]
            assert len(found) >= 2
            # One of the site's calls plays (Ogg Opus, decrypted with the organisation key).
            link = re.search(r'href="(/calls/%s/\d+)"' % box_id, page).group(1)
            calls_with_audio = [
                c for c in re.findall(r'href="(/calls/%s/\d+)"' % box_id, page)
                if "/audio" in sup.get(c).get_data(as_text=True)
            ]  # fmt: skip
            assert calls_with_audio, link
            audio = sup.get(calls_with_audio[0] + "/audio")
            assert audio.status_code == 200 and audio.data[:4] == b"OggS" and len(audio.data) > 1000

        # The report across sites is the boxes' own, summed.
        report = json.loads(sup.get("/reports?from=2026-03-02&to=2026-03-04&format=json").data)
        assert set(report["sites"]) == set(SITES)
        for box_id in SITES:
            mine, theirs = report["sites"][box_id], own_reports[box_id]["box"]
            for k in ("calls", "in", "out", "missed", "answered_in", "connected_out", "talk_us", "hours",
                      "coverage", "consent", "answered_rate_pct", "longest_talk_us"):  # fmt: skip
                assert mine[k] == theirs[k], (box_id, k)
        total = report["total"]
        for k in ("calls", "in", "out", "missed", "answered_in", "connected_out", "talk_us", "talk_calls"):
            assert total[k] == sum(r["box"][k] for r in own_reports.values()), k
        assert total["hours"] == [sum(r["box"]["hours"][h] for r in own_reports.values()) for h in range(24)]
        assert total["coverage"]["recorded"] == sum(
            r["box"]["coverage"]["recorded"] for r in own_reports.values()
        )
        assert total["calls"] == 12

        # An auditor searches and reads the trail, but plays nothing.
        aud = app.test_client()
        login(aud, "audra", "auditor's own pass 7")
        assert aud.get(calls_with_audio[0] + "/audio").status_code == 403
        trail = viewer.audit_log.entries(limit=100, newest_first=False)
        plays = [e for e in trail if e.action == "playback" and "refused" not in e.details]
        assert sorted(e.target.split("/")[0] for e in plays) == sorted(SITES)
        assert all(e.actor == "admin" for e in plays)
        assert [e.action for e in trail].count("report") == 1
        assert viewer.audit_log.verify() is not None
    finally:
        viewer.close()
