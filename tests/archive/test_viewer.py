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
ORG_PASSWORD = "organisation archive pass 7"


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


def play(client, csrf, call_path, reason="complaint ref 1234"):
    """The call's audio, once its page's listen form said why (the reason asked before the
    player is shown, as on a box)."""
    data = {"csrf_token": csrf, "listen_reason": reason}
    page = client.post(call_path + "/listen", data=data, follow_redirects=True).get_data(as_text=True)
    src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page).group(1).replace("&amp;", "&")
    return client.get(src)


def verify_export(folder, fingerprint):
    """``linekeeper verify-export`` on an unpacked export: (exit status, its output)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "verify-export", str(folder / "recording.lkrec"),
         "--key", fingerprint],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def flip_byte(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def export_and_verify(client, csrf, call_path, tmp_path):
    """Export ``call_path``'s recording from the viewer; it verifies with the box's
    fingerprint (kept off the box), and one changed byte anywhere that matters fails it."""
    import io
    import shutil
    import zipfile

    resp = client.post(call_path + "/export", data={"csrf_token": csrf, "reason": "court order ref 77"})
    assert resp.status_code == 200 and resp.mimetype == "application/zip", resp.get_data(as_text=True)
    box_id = call_path.split("/")[2]
    fingerprint = linekeeper("keys", "--data-dir", str(tmp_path / box_id), "--fingerprint").strip()
    folder = tmp_path / "export"
    zipfile.ZipFile(io.BytesIO(resp.data)).extractall(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "audio.ogg", "call.json", "recording.lkrec", "recording.lkrec.manifest.json"
    ]  # fmt: skip
    assert (folder / "audio.ogg").read_bytes()[:4] == b"OggS"
    # Whoever is handed the zip reads who took it and why (the reason typed in the form).
    manifest = json.loads((folder / "recording.lkrec.manifest.json").read_bytes())
    assert (manifest["exported_by"], manifest["reason"]) == ("admin", "court order ref 77")
    status, out = verify_export(folder, fingerprint)
    assert status == 0 and "intact" in out and "as sealed by " + fingerprint in out, out
    # Another box's key is not this box's.
    other = linekeeper("keys", "--data-dir", str(tmp_path / "leeds"), "--fingerprint").strip()
    status, out = verify_export(folder, other)
    assert status == 2 and "not by the box" in out, out
    size = (folder / "recording.lkrec").stat().st_size
    spoils = (
        ("recording.lkrec", size // 2, "is not the recording the box sealed"),
        ("recording.lkrec", size - 1, "is not the recording the box sealed"),
        ("audio.ogg", 200, "audio.ogg is not the audio the sealed recording holds"),
        ("call.json", 0, "call.json is damaged"),
    )
    for name, at, why in spoils:
        spoilt = tmp_path / "spoilt"
        shutil.copytree(folder, spoilt)
        flip_byte(spoilt / name, at)
        status, out = verify_export(spoilt, fingerprint)
        assert status == 2 and why in out and "intact" not in out, (name, at, out)
        shutil.rmtree(spoilt)
    shutil.rmtree(folder)


def archived_sites(tmp_path, synth, s3, bucket_name, sites):
    """The organisation key (made with ``linekeeper archive init-org``) and ``sites``'
    days, each run on its own box and replicated into the bucket: ``(org dir, password
    file)``."""
    import base64

    password = tmp_path / "org-password"
    password.write_text(ORG_PASSWORD + "\n")
    org = str(tmp_path / "org")
    out = linekeeper("archive", "init-org", "--org-dir", org, "--password-file", str(password))
    org_public = base64.b64decode(out.split("org_public_key: ")[1].strip())
    for box_id, (day, number) in sites.items():
        data = str(tmp_path / box_id)
        prepare_box(data, s3, bucket_name, box_id, org_public)
        run_site(data, synth, day, number)
        rep = Replicator(data, archive_settings(s3, bucket_name, box_id, org_public))
        try:
            drain(rep)
        finally:
            rep.close()
    return org, password


def test_three_sites_one_viewer_finds_plays_and_reports(tmp_path, synth, s3, bucket_name):
    org, password = archived_sites(tmp_path, synth, s3, bucket_name, SITES)
    own_reports, own_calls = {}, {}
    period = parse_period("2026-03-02", "2026-03-04")
    for box_id in SITES:
        data = str(tmp_path / box_id)
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
                if 'id="listen-form"' in sup.get(c).get_data(as_text=True)
            ]  # fmt: skip
            assert calls_with_audio, link
            audio = play(sup, csrf, calls_with_audio[0])
            assert audio.status_code == 200 and audio.data[:4] == b"OggS" and len(audio.data) > 1000

        # An export of the last site's call checks offline with that box's key alone.
        export_and_verify(sup, csrf, calls_with_audio[0], tmp_path)

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
        page = sup.get("/reports?from=2026-03-02&to=2026-03-04").get_data(as_text=True)
        talk = re.search(r"<th scope=\"row\">Talk time \(h:mm:ss\)</th>(.*?)</tr>", page).group(1)
        assert re.findall(r">([^<]*)</td>", talk) == [
            "0:%02d:%02d" % divmod(round(r["talk_s"]), 60) for r in (*report["sites"].values(), total)
        ]

        # An auditor searches and reads the trail, but plays nothing.
        aud = app.test_client()
        login(aud, "audra", "auditor's own pass 7")
        assert aud.get(calls_with_audio[0] + "/audio").status_code == 403
        aud_csrf = re.search(r'name="csrf_token" value="([^"]+)"', aud.get("/sites").get_data(as_text=True))
        resp = aud.post(calls_with_audio[0] + "/export", data={"csrf_token": aud_csrf.group(1)})
        assert resp.status_code == 403
        trail = viewer.audit_log.entries(limit=100, newest_first=False)
        plays = [e for e in trail if e.action == "playback" and "refused" not in e.details]
        assert sorted(e.target.split("/")[0] for e in plays) == sorted(SITES)
        assert all(e.actor == "admin" and e.details["reason"] == "complaint ref 1234" for e in plays)
        assert [e.action for e in trail].count("report") == 1
        exports = [e for e in trail if e.action == "export"]
        assert [(e.actor, e.target) for e in exports] == [("admin", calls_with_audio[0][len("/calls/") :])]
        assert len(exports[0].details["zip_sha256"]) == 64
        assert exports[0].details["reason"] == "court order ref 77"
        assert viewer.audit_log.verify() is not None
    finally:
        viewer.close()


def test_the_index_stands_against_copied_malformed_and_missing_objects_and_a_wrong_key(
    tmp_path, synth, s3, bucket_name
):
    """A record copied over another site's call hid that call; one malformed record stopped
    the whole rebuild; another organisation's key emptied a good index; a recording removed
    from the bucket answered 500 unaudited; '+44 1632 960101' found nothing; and a second
    add-user for a supervisor locked them out."""
    import subprocess
    import sys

    from firmware.archive.viewer import rebuild_index
    from firmware.errors import LinekeeperError
    from firmware.storage.keystore import Argon2Params, KeyStore

    sites = {b: SITES[b] for b in ("leeds", "york")}
    org, password = archived_sites(tmp_path, synth, s3, bucket_name, sites)
    bucket = bucket_of(s3, bucket_name)
    viewer_dir = str(tmp_path / "viewer")
    linekeeper("archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org, "--name", "admin",
               "--roles", "supervisor", "--password-file", str(password))  # fmt: skip
    other = tmp_path / "other-password"
    other.write_text("another pass of ours 9\n")
    run = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir",
         org, "--name", "admin", "--roles", "supervisor", "--password-file", str(other)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2 and "which this password does not open" in run.stderr, run.stderr

    # York's call 2 overwritten with Leeds's record; an unknown site's record of the wrong kind.
    bucket.put("york/calls/0000000002.json", bucket.get("leeds/calls/0000000002.json"))
    bad = json.loads(bucket.get("leeds/calls/0000000001.json"))
    bucket.put("ghost/calls/0000000001.json", json.dumps(dict(bad, box="ghost", call_id="1")).encode())
    viewer = Viewer(viewer_dir, org, bucket, secure_cookies=False)
    try:
        app = create_archive_app(viewer)
        sup = app.test_client()
        csrf = login(sup, "admin", ORG_PASSWORD)  # the first password still opens the account
        page = sup.post("/index", data={"csrf_token": csrf}).get_data(as_text=True)
        assert "7 calls" in page, page
        found = re.findall(r'<a href="/calls/(\w+)/(\d+)">', sup.get("/").get_data(as_text=True))
        assert ("york", "2") not in found and found.count(("leeds", "2")) == 1 and len(found) == 7

        # Any form of the number finds the same calls.
        number = sites["leeds"][1]
        same = None
        for typed in (number[-6:], "+44 1632 960101", "0044 1632 960101", "441632960101", "01632 960101"):
            page = sup.get("/?number=" + typed.replace("+", "%2B")).get_data(as_text=True)
            calls = sorted(re.findall(r'<a href="/calls/(\w+)/(\d+)">', page))
            assert calls and (same is None or calls == same), (typed, calls)
            same = calls

        # A recording removed from the bucket: a message, and the refusal in the trail.
        box_id, call_id = next(
            (b, c) for b, c in found
            if 'id="listen-form"' in sup.get("/calls/%s/%s" % (b, c)).get_data(as_text=True)
        )  # fmt: skip
        record = json.loads(bucket.get("%s/calls/%010d.json" % (box_id, int(call_id))))
        bucket.client.delete_object(Bucket=bucket.name, Key=record["recordings"][-1]["key"])
        resp = play(sup, csrf, "/calls/%s/%s" % (box_id, call_id))
        assert resp.status_code == 404 and "is not in the bucket" in resp.get_data(as_text=True)
        refused = [e for e in viewer.audit_log.entries(limit=20) if e.action == "playback"]
        assert "is not in the bucket" in refused[0].details["refused"]
    finally:
        viewer.close()

    # Another organisation's key opens none of the records: refused, the index kept.
    index_path = os.path.join(viewer_dir, "index.db")
    before = open(index_path, "rb").read()
    org2 = KeyStore(str(tmp_path / "org2"), kdf_params=Argon2Params(memory_kib=8, iterations=1))
    org2.initialise("admin", "another organisation pass 7")
    with org2.unlock("admin", "another organisation pass 7") as key:
        with pytest.raises(LinekeeperError, match="opens none of the"):
            rebuild_index(bucket, index_path, key)
    assert open(index_path, "rb").read() == before
