"""The central viewer's routes, called as anonymous and as each role: allowed or forbidden.

As tests/web/test_access_matrix.py does for the box's UI: every (method,
endpoint) of the archive app is in :data:`MATRIX`, and "forbidden" means 401,
403 or a redirect to the login page. The bucket here is an in-memory stand-in
holding one sealed call record (the access checks never reach the store; the
real store is tests/archive/test_viewer.py's).

Site grants: a supervisor and an auditor granted ``leeds`` only are refused
(403) every ``york`` route — search, a call, its audio, its export, reports —
and see only ``leeds`` in the lists; the refusals to play and export are audited.
"""

import base64
import html
import json
import os
import re
import subprocess
import sys

import pytest

from firmware import words
from firmware.archive import sealing
from firmware.archive.viewer import rebuild_index
from firmware.storage.audit import AuditLog
from firmware.storage.keystore import Argon2Params, KeyStore
from web.accounts import who_typed
from web.archive import Viewer, create_archive_app
from web.archive import views as archive_views
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST
from web.views import auth as auth_views

from support.archive import MemoryBucket

ANON, INST, SUP, AUD = "anonymous", "installer", "supervisor", "auditor"
EVERYONE = {ANON, INST, SUP, AUD}
LOGGED_IN = {INST, SUP, AUD}
PASSWORD = "a long enough pass 42"

MATRIX = {
    ("GET", "static"): EVERYONE,
    ("GET", "archive.login"): EVERYONE,
    ("POST", "archive.login"): EVERYONE,
    ("POST", "archive.logout"): LOGGED_IN,
    ("GET", "archive.password"): LOGGED_IN,
    ("POST", "archive.password"): LOGGED_IN,
    ("GET", "archive.calls"): {SUP, AUD},
    ("GET", "archive.call"): {SUP, AUD},
    ("GET", "archive.audio"): {SUP},
    ("POST", "archive.listen"): {SUP},
    ("POST", "archive.export"): {SUP},
    ("GET", "archive.reports"): {SUP, AUD},
    ("GET", "archive.sites"): LOGGED_IN,
    ("GET", "archive.help_page"): LOGGED_IN,
    ("POST", "archive.rebuild"): {SUP},
    ("GET", "archive.audit_trail"): {AUD},
}


LEEDS_SUP, LEEDS_AUD = "sup-leeds", "aud-leeds"


def _record(org_public, box="leeds", number="01632960101", withheld=False, recordings=()):
    call = {"number": number, "name": None, "tags": [], "answered_at": None, "digits_withheld": withheld}
    sealed = sealing.seal(json.dumps({"call": call, "audit": []}).encode(), org_public, box.encode() + b"/1")
    return json.dumps(
        {
            "format": 1,
            "digits_withheld": withheld,
            "box": box,
            "call_id": 1,
            "line": 1,
            "direction": "in",
            "started_at": "2026-03-02T09:00:01.000Z",
            "started_us": 1772442001000000,
            "answered": False,
            "recordings": list(recordings),
            "sealed": base64.b64encode(sealed).decode(),
        }
    ).encode()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive-viewer")
    store = KeyStore(str(root / "org"), Argon2Params(memory_kib=8, iterations=1))
    store.initialise(SUP, PASSWORD)
    bucket = MemoryBucket(
        {
            "leeds/calls/0000000001.json": _record(store.public_key()),
            # A card number keyed straight on after the number dialled: masked, the digits
            # after it withheld (docs/pci.md).
            "york/calls/0000000001.json": _record(
                store.public_key(), "york", "01632960202" + "X" * 16, withheld=True
            ),
        }
    )
    users = ArchiveUsers(str(root / "viewer"), CHEAP_COST)
    v = Viewer(str(root / "viewer"), str(root / "org"), bucket, users=users, secure_cookies=False)
    for role in (INST, SUP, AUD):
        users.set(role, PASSWORD, [role])
    users.set(LEEDS_SUP, PASSWORD, [SUP], {"leeds"})
    users.set(LEEDS_AUD, PASSWORD, [AUD], {"leeds"})
    with store.unlock(SUP, PASSWORD) as key:
        store.add_slot(LEEDS_SUP, PASSWORD, key)
        rebuild_index(bucket, v.index_path, key)
    yield v
    v.close()


@pytest.fixture(scope="module")
def app(viewer):
    return create_archive_app(viewer)


def test_every_route_is_in_the_matrix(app):
    found = {(m, r.endpoint) for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}
    assert found == set(MATRIX)


def _client(app, role):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    if role != ANON:
        resp = client.post("/login", data={"user": role, "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 302
        page = client.get("/sites").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, token


def _url(app, endpoint):
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    return re.sub(r"<(\w+:)?(\w+)>", lambda m: {"box": "leeds", "call_id": "1"}.get(m.group(2), "style.css"),
                  rule.rule)  # fmt: skip


def forbidden(resp):
    if resp.status_code in (401, 403):
        return True
    where = resp.headers.get("Location", "")
    return resp.status_code == 302 and where.startswith("/login") and "out=1" not in where


@pytest.mark.parametrize("method,endpoint", sorted(MATRIX))
@pytest.mark.parametrize("role", sorted(EVERYONE))
def test_access(app, role, method, endpoint):
    client, token = _client(app, role)
    url = _url(app, endpoint)
    resp = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
    assert forbidden(resp) == (role not in MATRIX[(method, endpoint)]), (resp.status_code, resp.location)


def test_a_post_without_its_token_changes_nothing(app):
    client, _ = _client(app, SUP)
    assert client.post("/index", data={}).status_code == 400
    assert client.post("/logout", data={}).status_code == 400
    assert client.get("/sites").status_code == 200  # still logged in


def test_a_wrong_password_is_refused_and_audited(app, viewer):
    client, token = _client(app, ANON)
    resp = client.post("/login", data={"user": SUP, "password": "not it at all 7", "csrf_token": token})
    assert resp.status_code == 400 and "Wrong user name or password" in resp.get_data(as_text=True)
    last = viewer.audit_log.entries(limit=1)[0]
    assert (last.action, last.actor, last.target) == ("login_failed", "anonymous", SUP)


def test_a_failed_login_keeps_no_name_that_is_not_an_account(app, viewer):
    """A password typed in the name field is never written to the (append-only) trail."""
    client, token = _client(app, ANON)
    resp = client.post("/login", data={"user": PASSWORD, "password": "x", "csrf_token": token})
    assert resp.status_code == 400
    last = viewer.audit_log.entries(limit=1)[0]
    assert (last.action, last.target, last.details["no_account"]) == ("login_failed", None, True)
    assert PASSWORD not in repr(last.details)


def test_a_bad_search_names_the_field(app):
    client, _ = _client(app, AUD)
    resp = client.get("/?from=yesterday")
    assert resp.status_code == 400 and "from: &#39;yesterday&#39; is not a date" in resp.get_data(
        as_text=True
    )
    assert client.get("/reports?from=2026-03-05&to=2026-03-01").status_code == 400


def test_a_searched_number_longer_than_a_box_takes_is_named(app):
    """The box's own search takes a number of at most 32 digits; the viewer's took any
    length and searched the index for it. Over 32 is refused naming the field; 32 is not."""
    client, _ = _client(app, AUD)
    resp = client.get("/?number=" + "1" * 33)
    assert resp.status_code == 400
    assert "number: at most 32 digits (and + # *), not 33" in resp.get_data(as_text=True)
    assert client.get("/?number=01632 960101 " + "9" * 21).status_code == 200  # 32 digits


def _login(client, token, password, address):
    data = {"user": AUD, "password": password, "csrf_token": token}
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": address})


def test_failed_logins_are_throttled_as_on_a_box(viewer):
    """The box's throttle (web/throttle.py): after 3 wrong passwords for an account from one
    address even the right one is refused, with the wait, until it has passed; audited."""
    now_us = [1_800_000_000_000_000]
    org_dir = str(viewer.keystore.keys_dir.parent)
    v = Viewer(viewer.viewer_dir + "-throttle", org_dir, viewer.bucket, users=viewer.users,
               secure_cookies=False, wall_us=lambda: now_us[0])  # fmt: skip
    try:
        client, token = _client(create_archive_app(v), ANON)
        for _ in range(3):
            assert _login(client, token, "not it at all 7", "10.0.0.9").status_code == 400
        resp = _login(client, token, PASSWORD, "10.0.0.9")
        assert resp.status_code == 429
        assert "Too many failed attempts. Wait 1 s and try again." in resp.get_data(as_text=True)
        # The failure that began the wait says so; the attempts it refuses are not audited.
        last = v.audit_log.entries(limit=1)[0]
        assert (last.action, last.target, last.details["locked"], last.details["locked_s"]) == (
            "login_failed", AUD, ["acct"], 1,
        )  # fmt: skip
        assert len(v.audit_log.entries(action="login_failed")) == 3
        # The account's owner at their own desk is not locked out by someone else's guesses.
        desk, desk_token = _client(create_archive_app(v), ANON)
        assert _login(desk, desk_token, PASSWORD, "10.0.0.10").status_code == 302
        now_us[0] += 1_000_001
        assert _login(client, token, PASSWORD, "10.0.0.9").status_code == 302
    finally:
        v.close()


def test_ten_failures_lock_an_account_audited_once_not_at_each_refusal(viewer, tmp_path):
    """PCI DSS 8.3.4 as on a box: the 10th failure in a row, from anywhere, locks the account
    for 30 minutes; that failure's entry says so, and the attempts refused while it lasts
    (the right password too, unchecked) write nothing: one entry each let anyone who can
    reach the viewer fill its trail at request speed. ``archive unlock-user`` ends it,
    audited before; an account not locked is refused with nothing written."""
    org_dir = str(viewer.keystore.keys_dir.parent)
    (tmp_path / "viewer").mkdir()
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST)
    users.set(AUD, PASSWORD, [AUD])
    v = Viewer(str(tmp_path / "viewer"), org_dir, viewer.bucket, users=users, secure_cookies=False)
    try:
        client, token = _client(create_archive_app(v), ANON)
        for n in range(10):  # from ten addresses: only the account's own counters reach 10
            assert _login(client, token, "not it at all 7", "10.0.1.%d" % n).status_code == 400
        failed = v.audit_log.entries(action="login_failed")
        assert "lock" not in failed[1].details.get("locked", [])
        assert "lock" in failed[0].details["locked"] and failed[0].details["locked_s"] == 30 * 60
        for n in range(20):
            resp = _login(client, token, PASSWORD, "10.0.2.%d" % n)
            assert resp.status_code == 429
        page = resp.get_data(as_text=True)
        assert "This account is locked after 10 failed attempts in a row. Try again in 30 minutes" in page
        assert len(v.audit_log.entries(action="login_failed")) == 10
        status, err = _linekeeper("unlock-user", "--viewer-dir", v.viewer_dir, "--name", AUD)
        assert status == 0 and "unlocked" in err, err
        assert _login(client, token, PASSWORD, "10.0.2.99").status_code == 302
        status, err = _linekeeper("unlock-user", "--viewer-dir", v.viewer_dir, "--name", AUD)
        assert status == 2 and "auditor is not locked out: nothing to unlock" in err
        status, err = _linekeeper("unlock-user", "--viewer-dir", v.viewer_dir, "--name", "nobody")
        assert status == 2 and "no viewer account 'nobody'" in err
        unlocks = v.audit_log.entries(action="account_unlock")
        assert [(e.actor, e.target) for e in unlocks] == [("command-line", AUD)]
        assert v.audit_log.verify() == []
    finally:
        v.close()


# Every route that names or lists a site's calls, asked for york by a leeds-only account.
YORK_ROUTES = (
    ("GET", "/?box=york"),
    ("GET", "/calls/york/1"),
    ("GET", "/calls/york/1/audio"),
    ("POST", "/calls/york/1/listen"),
    ("POST", "/calls/york/1/export"),
    ("GET", "/reports?from=2026-03-02&to=2026-03-02&site=york"),
    ("GET", "/reports?from=2026-03-02&to=2026-03-02&site=york&format=json"),
)


@pytest.mark.parametrize("method,url", YORK_ROUTES)
def test_a_supervisor_of_one_site_is_refused_another_sites_call(app, method, url):
    client, token = _client(app, LEEDS_SUP)
    resp = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
    assert resp.status_code == 403, (resp.status_code, resp.get_data(as_text=True))
    assert "york is not among your sites" in resp.get_data(as_text=True)
    # The same route for a site of theirs (or a call that does not exist there) is not refused.
    own = (
        client.get(url.replace("york", "leeds"))
        if method == "GET"
        else client.post(url.replace("york", "leeds"), data={"csrf_token": token})
    )
    assert own.status_code != 403, own.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/?box=york", "/calls/york/1", "/reports?site=york"])
def test_an_auditor_of_one_site_is_refused_another_sites_calls(app, url):
    client, _ = _client(app, LEEDS_AUD)
    assert client.get(url).status_code == 403


def test_a_site_grant_limits_the_lists_and_the_report(app):
    client, _ = _client(app, LEEDS_SUP)
    page = client.get("/").get_data(as_text=True)
    assert "/calls/leeds/1" in page and "/calls/york/1" not in page
    assert "york" not in client.get("/?number=960202").get_data(as_text=True)
    sites = client.get("/sites").get_data(as_text=True)
    assert "leeds" in sites and "york" not in sites
    report = json.loads(client.get("/reports?from=2026-03-02&to=2026-03-02&format=json").data)
    assert list(report["sites"]) == ["leeds"] and report["total"]["calls"] == 1
    # An account of every site sees both.
    everyone, _ = _client(app, SUP)
    report = json.loads(everyone.get("/reports?from=2026-03-02&to=2026-03-02&format=json").data)
    assert list(report["sites"]) == ["leeds", "york"] and report["total"]["calls"] == 2


def test_the_pages_of_an_account_of_some_sites_do_not_say_every_site(app):
    """An account of leeds read "Calls of every site", "every site" in the Site list and
    "every site's archived calls" on every page, while it saw leeds alone."""
    client, _ = _client(app, LEEDS_AUD)
    for url in ("/", "/sites", "/reports"):
        page = client.get(url).get_data(as_text=True)
        assert "every site" not in page, url
        assert "Read-only: your sites' archived calls." in html.unescape(page), url
    page = client.get("/").get_data(as_text=True)
    assert "<h1>Calls of your sites</h1>" in page
    assert '<option value="">all your sites</option>' in page
    # An account of every site: as before.
    page = _client(app, SUP)[0].get("/").get_data(as_text=True)
    assert "<h1>Calls of every site</h1>" in page and '<option value="">every site</option>' in page
    assert "Read-only: every site's archived calls." in html.unescape(page)


def test_opening_a_calls_page_is_audited_once_a_session(app, viewer):
    # The page shows the caller's number and name: who looked is in the trail, as on a box.
    def viewed():
        entries = viewer.audit_log.entries(action="call_viewed")
        return [e for e in entries if "refused" not in e.details]

    before = len(viewed())  # (the app is shared by this module's tests)
    client, _ = _client(app, LEEDS_SUP)
    assert client.get("/calls/leeds/1").status_code == 200
    assert client.get("/calls/leeds/1").status_code == 200  # shown again: no second entry
    assert len(viewed()) == before + 1
    entry = viewed()[0]
    assert (entry.actor, entry.target, entry.details["box"]) == (LEEDS_SUP, "leeds/1", "leeds")
    assert client.get("/calls/york/1").status_code == 403  # not granted: not shown, not viewed,
    assert "refused" in viewer.audit_log.entries(action="call_viewed", limit=1)[0].details  # refused
    again, _ = _client(app, LEEDS_SUP)
    again.get("/calls/leeds/1")
    assert len(viewed()) == before + 2


def test_a_view_whose_entry_was_not_written_is_audited_at_the_next(app, viewer, monkeypatch):
    # The trail busy at the first view: the page is not shown, and the session did not keep
    # it as audited, so the next view writes the entry (it wrote none ever after).
    import sqlite3

    def viewed():
        return viewer.audit_log.entries(action="call_viewed")

    before = len(viewed())
    client, _ = _client(app, LEEDS_SUP)
    append = viewer.audit_log.append

    def busy(actor, action, *args, **kwargs):
        if action == "call_viewed":
            raise sqlite3.OperationalError("database is locked")
        return append(actor, action, *args, **kwargs)

    monkeypatch.setattr(viewer.audit_log, "append", busy)
    assert client.get("/calls/leeds/1").status_code == 500  # not shown
    monkeypatch.setattr(viewer.audit_log, "append", append)
    assert len(viewed()) == before
    assert client.get("/calls/leeds/1").status_code == 200
    assert len(viewed()) == before + 1


def test_refused_plays_and_exports_of_another_site_are_audited(app, viewer):
    client, token = _client(app, LEEDS_SUP)
    client.get("/calls/york/1/audio")
    last = viewer.audit_log.entries(limit=1)[0]
    assert (last.action, last.actor, last.target) == ("playback", LEEDS_SUP, "york/1")
    assert last.details["refused"] == "site york is not granted to sup-leeds"
    client.post("/calls/york/1/export", data={"csrf_token": token})
    last = viewer.audit_log.entries(limit=1)[0]
    assert (last.action, last.target, last.details["box"]) == ("export", "york/1", "york")
    assert "not granted" in last.details["refused"]


def test_a_refused_call_page_of_another_site_is_audited(app, viewer):
    """Its play and export refused were audited, the call's page refused (403) was not: an
    attempt at another site's call left no trace. Nothing of the call is shown or read."""
    client, _ = _client(app, LEEDS_SUP)
    before = len(viewer.audit_log.entries(limit=100_000))
    resp = client.get("/calls/york/1")
    assert resp.status_code == 403 and "Site york is not among your sites." in resp.get_data(as_text=True)
    entries = viewer.audit_log.entries(limit=100_000)
    assert len(entries) == before + 1
    last = entries[0]
    assert (last.action, last.actor, last.target) == ("call_viewed", LEEDS_SUP, "york/1")
    assert {k: v for k, v in last.details.items() if k != "address"} == {
        "box": "york",
        "call_id": 1,
        "refused": "site york is not granted to sup-leeds",
    }
    # Its own site's call page is a look as before, without ``refused``.
    assert client.get("/calls/leeds/1").status_code == 200
    last = viewer.audit_log.entries(limit=1)[0]
    assert (last.action, last.target, "refused" in last.details) == ("call_viewed", "leeds/1", False)


def test_a_call_that_is_not_there_is_audited_as_refused_for_a_logged_in_person(app, viewer):
    """A call of a granted site the index does not hold answered 404 with nothing written:
    an account trying call numbers left no trace. Now the look, play or export tried is
    audited as refused, "no such call", under the number asked for (cut to 20 digits past
    any call's). Without a login nothing is looked up or written: a flood from nobody adds
    nothing to the trail."""
    client, token = _client(app, LEEDS_SUP)

    def asked(action, target):
        last = viewer.audit_log.entries(limit=1)[0]
        assert (last.action, last.actor, last.target) == (action, LEEDS_SUP, target)
        return {k: v for k, v in last.details.items() if k != "address"}

    assert client.get("/calls/leeds/999").status_code == 404
    assert asked("call_viewed", "leeds/999") == {"box": "leeds", "call_id": 999, "refused": "no such call"}
    assert client.get("/calls/leeds/998/audio").status_code == 404
    assert asked("playback", "leeds/998")["refused"] == "no such call"
    assert client.post("/calls/leeds/997/export", data={"csrf_token": token}).status_code == 404
    assert asked("export", "leeds/997")["refused"] == "no such call"
    assert client.get("/calls/leeds/" + "9" * 300).status_code == 404
    assert asked("call_viewed", "leeds/" + "9" * 20 + "...")["call_id"] == "9" * 20 + "..."
    before = len(viewer.audit_log.entries(limit=100_000))
    nobody, _ = _client(app, ANON)
    assert nobody.get("/calls/leeds/999").status_code != 404  # the login first
    assert len(viewer.audit_log.entries(limit=100_000)) == before


@pytest.mark.parametrize("site", ["x" * 5000, "York", "york!", "-york", "y" * 64])
def test_a_site_that_is_no_box_id_is_not_found_and_not_audited(app, viewer, site):
    """A refusal at another site is audited with the site the address named: a supervisor
    of one site wrote whatever text they liked, at any length, into the append-only trail.
    Text that is no box id is not a site at all: 404, naming the rule, nothing written."""
    client, token = _client(app, LEEDS_SUP)
    before = len(viewer.audit_log.entries(limit=100_000))
    for method, url in YORK_ROUTES[1:]:
        url = url.replace("york", site)
        resp = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
        text = resp.get_data(as_text=True)
        assert resp.status_code == 404, (url[:80], resp.status_code)
        assert "There is no site %r" % site[:20] in html.unescape(text)
        assert len(site) <= 20 or site[:21] not in text  # the page does not repeat it whole either
    assert len(viewer.audit_log.entries(limit=100_000)) == before


def _viewer_with_one_recording(viewer, tmp_path):
    """A viewer whose bucket holds one call of leeds with a sealed recording, indexed, and
    sara (a supervisor) with her own password; the caller closes it."""
    recording = {"key": "leeds/recordings/ab.lkarc", "sha256": "ab" * 32, "state": "sealed"}
    bucket = type(viewer.bucket)({"leeds/calls/0000000001.json": b""})
    v, users = _viewer_of(tmp_path, viewer)
    v.bucket = bucket
    users.begin_change("sara", PASSWORD)  # her own now: nothing to change first
    users.finish_change("sara")
    with v.keystore.unlock("sara", PASSWORD) as key:
        bucket.objects["leeds/calls/0000000001.json"] = _record(
            v.keystore.public_key(), recordings=[recording]
        )
        rebuild_index(bucket, v.index_path, key)
    return v


def test_nobody_listens_without_saying_why(viewer, tmp_path, monkeypatch):
    """The viewer played any archived call with nothing but a click: its trail said who
    listened, never why, where a box's call page asks first. It now asks as the box does
    (the box's rule and words); the reason is in each playback entry."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    # The store's audio stands in (what the viewer plays: tests/archive/test_viewer.py).
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(archive_views.index, "play", lambda *a: (b"OggS audio", True, "audio/ogg"))
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sites").get_data(as_text=True))[
            1
        ]
        page = client.get("/calls/leeds/1").get_data(as_text=True)
        assert 'id="listen-form"' in page and "<audio" not in page
        # Why one listens or exports is kept for good: not the caller's name or number.
        for hint in ("listen-hint", "reason-hint"):
            said = re.search(r'<span class="hint" id="%s">(.*?)</span>' % hint, html.unescape(page), re.S)
            assert said and (
                "Not the caller's name or phone number: the viewer's audit trail keeps what you write "
                "here for good, even after the call is deleted." in said.group(1)
            ), hint
        assert client.get("/calls/leeds/1/audio").status_code == 403  # no reason given, no audio
        assert client.get("/calls/leeds/1/audio?p=made-up").status_code == 403

        def listen(reason):
            data = {"csrf_token": token, "listen_reason": reason}
            return client.post("/calls/leeds/1/listen", data=data, follow_redirects=True)

        # No reason, or one too short: said beside the field in the box's words, no player.
        for reason in ("", "   ", "why", "complaint \x1b ref"):
            resp = listen(reason)
            page = resp.get_data(as_text=True)
            assert resp.status_code == 400 and 'id="error-listen_reason"' in page, reason
            assert "<audio" not in page
        assert "Say why this recording is played" in listen("why").get_data(as_text=True)
        assert 'value="why"' in listen("why").get_data(as_text=True)  # given back to correct
        # Except a card number (PCI DSS: on no page, not even back in its own field).
        page = listen("card 4111 1111 1111 1111").get_data(as_text=True)
        assert "Take out the card number" in page and "4111 1111" not in page
        assert not v.audit_log.entries(action="playback")
        # With a reason: the player, and each play's entry carries it.
        page = listen("  complaint   ref 1234 ").get_data(as_text=True)
        assert 'id="listen-why"' in page and "complaint ref 1234" in page
        assert not v.audit_log.entries(action="playback")  # said why, not played yet
        src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page)[1].replace("&amp;", "&")
        audio = client.get(src)
        assert audio.status_code == 200 and audio.data == b"OggS audio"
        (entry,) = v.audit_log.entries(action="playback")
        assert (entry.actor, entry.target, entry.details["reason"]) == (
            "sara",
            "leeds/1",
            "complaint ref 1234",
        )
        # The token is this session's only: another session of the same person has none.
        other, other_token = _client(create_archive_app(v), ANON)
        assert _login_as(other, other_token, "sara").status_code == 302
        assert other.get(src).status_code == 403
    finally:
        v.close()


def _linekeeper(*args):
    done = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "archive", *args], capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stderr


@pytest.mark.parametrize("roles", ["staff", "auditor,staff"])
def test_add_user_refuses_a_role_the_viewer_does_not_have(tmp_path, roles):
    """``--roles staff`` (a box's role: it makes and plays its own calls) was taken, an
    account the viewer has no pages for, and the refusal of another role listed it."""
    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    args = ("--viewer-dir", viewer_dir, "--org-dir", org, "--password-file", str(tmp_path / "pw"))
    status, err = _linekeeper("add-user", *args, "--name", "sam", "--roles", roles)
    assert status == 2, err
    assert "roles must be some of installer, supervisor, auditor (got %s)" % roles.replace(",", ", ") in err
    assert not os.path.exists(os.path.join(viewer_dir, "users.json"))


def test_add_user_and_edit_user_grant_sites_audited(tmp_path):
    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    pw = str(tmp_path / "pw")
    common = ("--viewer-dir", viewer_dir, "--org-dir", org, "--roles", AUD, "--password-file", pw)
    status, err = _linekeeper("add-user", *common, "--name", "aud", "--sites", "leeds,York!")
    assert status == 2 and "sites: 'York!' is not a box id" in err and not os.path.exists(viewer_dir)
    status, err = _linekeeper("add-user", *common, "--name", "aud", "--sites", "leeds,york")
    assert status == 0 and "sites: leeds,york" in err, err
    assert ArchiveUsers(viewer_dir).get("aud").sites == {"leeds", "york"}
    status, err = _linekeeper("edit-user", "--viewer-dir", viewer_dir, "--name", "aud", "--sites", "all")
    assert status == 0 and ArchiveUsers(viewer_dir).get("aud").sites is None, err
    status, err = _linekeeper("edit-user", "--viewer-dir", viewer_dir, "--name", "nobody", "--sites", "x")
    assert status == 2 and "no viewer account 'nobody'" in err
    status, err = _linekeeper("edit-user", "--viewer-dir", viewer_dir, "--name", "aud", "--sites", ",")
    assert status == 2 and ArchiveUsers(viewer_dir).get("aud").sites is None
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    try:
        changes = [(e.action, e.target, e.details["change"], e.details["sites"]) for e in log.entries()]
        assert log.verify() == []
    finally:
        log.close()
    assert sorted(changes) == [
        ("config_change", "aud", "user_add", "leeds,york"),
        ("config_change", "aud", "user_update", "all"),
    ]


def test_the_pages_speak_to_people(app):
    """Every page links its help; a refusal is in people's words; the audit trail's details
    are fields, not JSON; talk time reads as time."""
    sup, _ = _client(app, SUP)
    calls = sup.get("/").get_data(as_text=True)
    assert 'id="page-help"' in calls and 'href="/help#calls"' in calls
    assert '<a href="/" aria-current="page">Calls</a>' in calls
    assert 'id="calls" class="cards"' not in calls and 'class="cards" id="calls"' in calls
    assert 'data-label="Talk time"' in calls
    help_page = sup.get("/help").get_data(as_text=True)
    for section in ("calls", "call", "reports", "sites", "audit"):
        assert 'id="%s"' % section in help_page, section
    refused = sup.get("/audit")
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    assert "Your account does not allow this" in text and "read-protected" not in text
    assert 'id="menu"' in sup.get("/no-such-page").get_data(as_text=True)  # a 404 keeps the menu
    aud, _ = _client(app, AUD)
    trail = aud.get("/audit").get_data(as_text=True)
    assert '<dl class="fields"><dt>From address</dt>' in trail and "{&#34;" not in trail and '{"' not in trail


def test_each_calls_page_shown_is_audited_with_the_calls_it_showed(app, viewer, monkeypatch):
    """The calls page shows each call's number and name, and the viewer wrote nothing of it,
    where the box's calls list writes ``list_viewed`` with the calls shown. Each page shown
    is now an entry of the same shape: the search, how many calls and which (a page's at
    most), and their sites; a number searched is said given, its digits not kept."""

    def lists():
        return viewer.audit_log.entries(limit=100_000, action="list_viewed", newest_first=False)

    before = len(lists())
    anon, _ = _client(app, ANON)
    assert anon.get("/").status_code == 302  # to the login: nothing shown, nothing written
    client, _ = _client(app, LEEDS_SUP)
    assert client.get("/").status_code == 200
    query = "/?number=01632+960101&box=leeds&from=2026-03-01&to=2026-03-02"
    assert "/calls/leeds/1" in client.get(query).get_data(as_text=True)
    assert client.get("/?number=abc").status_code == 400  # refused: no call shown, no entry
    everyone, _ = _client(app, SUP)
    monkeypatch.setattr(archive_views, "PAGE_CALLS", 1)  # two calls found, a page of one shown
    assert everyone.get("/").status_code == 200
    entries = lists()[before:]
    said = [(e.actor, e.target, e.details["filter"], e.details["rows"], e.details["calls"]) for e in entries]
    assert said == [
        (LEEDS_SUP, "calls", "all calls", 1, ["leeds/1"]),
        (
            LEEDS_SUP,
            "calls",
            {
                "box": "leeds",
                "from": "2026-03-01",
                "to": "2026-03-02",
                "number": "given (its digits not kept)",
            },
            1,
            ["leeds/1"],
        ),
        (SUP, "calls", "all calls", 1, ["york/1"]),  # the newest first
    ]
    assert [e.details["sites"] for e in entries] == [["leeds"], ["leeds"], ["york"]]
    assert not any("960101" in json.dumps(e.details) for e in entries)
    # An auditor of leeds reads the leeds pages' entries, not the york one.
    trail = _client(app, LEEDS_AUD)[0].get("/audit").get_data(as_text=True)
    assert "leeds/1" in trail and "york/1" not in trail


def test_viewing_the_viewer_s_audit_trail_is_audited_once_per_view(app, viewer):
    """PCI DSS 10.2.1.3: reading the trail is itself in the trail, one entry per page shown,
    after the entries it shows were read."""
    aud, _ = _client(app, AUD)
    before = len(viewer.audit_log.entries(limit=10_000, action="audit_view"))
    aud.get("/audit")
    trail = aud.get("/audit").get_data(as_text=True)
    views = viewer.audit_log.entries(limit=10_000, action="audit_view")
    assert len(views) == before + 2
    assert (views[0].actor, views[0].target) == (AUD, "audit") and views[0].details["rows"] > 0
    assert "Viewed the audit trail" in trail


def test_a_viewer_account_is_audited_before_it_is_written(tmp_path, monkeypatch):
    """The viewer's accounts were written, then audited: a cut between left an account
    that can see sites' calls, or a grant of more sites, that its trail never showed.
    The entry now comes first; a refusal part way adds one that says so."""
    from firmware import cli

    from support.web import Cut, cut

    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    add = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org, "--roles", AUD]
    add += ["--password-file", str(tmp_path / "pw"), "--name", "aud", "--sites", "leeds"]
    edit = ["archive", "edit-user", "--viewer-dir", viewer_dir, "--name", "aud", "--sites", "all"]

    def full(*args):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(ArchiveUsers, "set", cut)
        with pytest.raises(Cut):
            cli.main(add)
    assert cli.main(add) == 0
    with monkeypatch.context() as patch:
        patch.setattr(ArchiveUsers, "set_sites", full)
        assert cli.main(edit) == 2
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    try:
        entries = [
            (e.details["change"], e.details.get("sites"), "failed" in e.details) for e in log.entries()
        ]
    finally:
        log.close()
    assert entries == [
        ("user_update", None, True),
        ("user_update", "all", False),
        ("user_add", "leeds", False),
        ("user_add", "leeds", False),  # the one a cut stopped: its entry came first
    ]
    assert ArchiveUsers(viewer_dir).get("aud").sites == {"leeds"}


def test_an_auditor_of_one_site_reads_only_that_sites_entries(app, viewer):
    """The trail gave an auditor of leeds what was played and exported at york: its
    recording's fingerprints, lines and lengths. And the index's rebuild said how many
    calls every site holds, to a supervisor of one."""
    everyone, _ = _client(app, SUP)
    day = "/reports?from=2026-03-02&to=2026-03-02&format=json&site="
    assert everyone.get(day + "york").status_code == 200  # audited, naming york
    assert everyone.get(day + "leeds").status_code == 200
    grant = {"change": "user_add", "sites": "york"}  # an account's grant, as `archive add-user` audits it
    viewer.audit_log.append("command-line", "config_change", "aud-york", grant, int(viewer.wall_us()))
    trail = _client(app, LEEDS_AUD)[0].get("/audit").get_data(as_text=True)
    assert "<dd>leeds</dd>" in trail and "york" not in trail
    assert "<dd>york</dd>" in _client(app, AUD)[0].get("/audit").get_data(as_text=True)
    client, token = _client(app, LEEDS_SUP)
    page = client.post("/index", data={"csrf_token": token}).get_data(as_text=True)
    assert "Index rebuilt from the bucket: 1 call." in page  # leeds's one, not york's too


@pytest.mark.parametrize(
    "next_url", ["/\t/evil.example", "//evil.example", "/\\evil.example", "https://evil.example"]
)
def test_the_login_sends_nobody_off_the_viewer(app, next_url):
    client, token = _client(app, ANON)
    resp = client.post(
        "/login", data={"user": AUD, "password": PASSWORD, "csrf_token": token, "next": next_url}
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/", resp.headers["Location"]


def test_an_installer_starts_at_a_page_they_may_open(app):
    """An installer sees no calls: the login, the logo and the error page's link sent
    them to the calls list, which refused them."""
    client, token = _client(app, ANON)
    resp = client.post("/login", data={"user": INST, "password": PASSWORD, "csrf_token": token})
    assert resp.headers["Location"] == "/sites" and client.get("/sites").status_code == 200
    page = client.get("/no-such-page").get_data(as_text=True)
    assert 'class="brand" href="/sites"' in page and 'href="/sites">Back to the start page' in page


def test_a_call_number_past_what_the_index_holds_is_not_found(app):
    client, _ = _client(app, SUP)
    for url in ("/calls/leeds/99999999999999999999", "/calls/leeds/99999999999999999999/audio"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("tz", ["Europe", "x" * 300])
def test_a_time_zone_that_is_not_one_is_named_not_a_fault(app, tz):
    """'Europe' is a folder of the zone database, and 300 letters a name too long for the
    file system: both answered 500."""
    client, _ = _client(app, SUP)
    resp = client.get("/reports?from=2026-03-02&to=2026-03-02&tz=" + tz)
    assert resp.status_code == 400 and "unknown time zone" in resp.get_data(as_text=True)


def test_the_viewer_shows_words_not_codes(app):
    """Directions read 'in'/'out', the trail its actions' and details' code names
    ('call id', 'zip bytes'), a 405 was Werkzeug's own page, and with no limit the
    calls list said '(the newest ; narrow the search)'."""
    sup, _ = _client(app, SUP)
    page = sup.get("/?box=leeds").get_data(as_text=True)
    assert '<td data-label="Direction">Inbound</td>' in page and "the newest ;" not in page
    assert "Inbound (they called us)" in sup.get("/calls/leeds/1").get_data(as_text=True)
    sup.get("/reports?from=2026-03-02&to=2026-03-02&format=json&site=leeds")
    trail = _client(app, AUD)[0].get("/audit").get_data(as_text=True)
    assert "Made a report" in trail and "<dt>Sites</dt><dd>leeds</dd>" in trail
    resp = sup.get("/logout")  # a POST route
    assert resp.status_code == 405 and "That method is not allowed here." in resp.get_data(as_text=True)


def test_a_backwards_date_range_is_named(app):
    sup, _ = _client(app, SUP)
    resp = sup.get("/?from=2026-07-31&to=2026-03-01")
    assert resp.status_code == 400 and "the last day (2026-03-01) is before the first" in resp.get_data(
        as_text=True
    )


def test_a_site_with_no_call_in_the_period_has_its_column_of_zeros(app):
    """A report left out the sites with no call in its period, as if they were not there;
    and a site not in the index gave a column of zeros for 'All sites'."""
    sup, _ = _client(app, SUP)
    report = json.loads(sup.get("/reports?from=2026-03-03&to=2026-03-03&format=json").data)
    assert list(report["sites"]) == ["leeds", "york"] and report["total"]["calls"] == 0
    leeds = json.loads(
        _client(app, LEEDS_SUP)[0].get("/reports?from=2026-03-03&to=2026-03-03&format=json").data
    )
    assert list(leeds["sites"]) == ["leeds"]
    resp = sup.get("/reports?from=2026-03-02&to=2026-03-02&site=nosuch")
    assert resp.status_code == 404 and "no site nosuch" in resp.get_data(as_text=True)


def test_a_session_ends_with_a_new_password_and_after_twelve_hours(viewer, tmp_path):
    """A password set anew (``archive add-user``) left a session made under the old one
    open, with the organisation key it had unlocked; and a session polled every few
    minutes never ended. The viewer sends HSTS over HTTPS too."""
    from web.archive import app as app_module

    (tmp_path / "users").mkdir()
    users = ArchiveUsers(str(tmp_path / "users"), CHEAP_COST)
    users.set("sara", PASSWORD, [AUD])
    clock = [1000.0]
    org_dir = str(viewer.keystore.keys_dir.parent)
    v = Viewer(str(tmp_path / "viewer"), org_dir, viewer.bucket, users=users, secure_cookies=False,
               monotonic=lambda: clock[0])  # fmt: skip
    try:
        app = create_archive_app(v)
        client, token = _client(app, ANON)
        assert _login_as(client, token, "sara").status_code == 302
        assert client.get("/sites").status_code == 200
        users.set("sara", "another long pass 43", [AUD])  # reset by the administrator
        assert client.get("/sites").status_code == 302  # to the login page
        client, token = _client(app, ANON)
        assert _login_as(client, token, "sara", "another long pass 43").status_code == 302
        for _ in range(int(app_module.MAX_AGE_S // 600)):
            clock[0] += 600  # a request every ten minutes, never idle
            assert client.get("/sites").status_code == 200
        clock[0] += 600
        assert client.get("/sites").status_code == 302
        v.secure_cookies = True
        assert "Strict-Transport-Security" in client.get("/login").headers
    finally:
        v.close()


def _login_as(client, token, name, password=PASSWORD):
    return client.post("/login", data={"user": name, "password": password, "csrf_token": token})


def test_the_report_tables_headers_say_which_way_they_run(app):
    """The cross-site report's headers had no scope: a table of figures by site reads
    right only when each header says whether it heads a column (a site) or a row (a figure)."""
    client, _ = _client(app, SUP)
    page = client.get("/reports?from=2026-03-02&to=2026-03-02").get_data(as_text=True)
    table = re.search(r'<table class="report">(.*?)</table>', page, re.S).group(1)
    head, body = table.split("</thead>")
    assert len(re.findall(r"<th[ >]", head)) == head.count('<th scope="col">') == 4  # Figure, 2 sites, all
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 11 and all(r.startswith('<th scope="row">') and r.count("<th") == 1 for r in rows)


def test_a_report_of_an_index_built_without_the_key_has_its_sealed_figures_not_known(viewer, tmp_path):
    """Without the organisation key no call's policy decision, consent or pauses are read:
    the JSON's consent figures were 0 and a call answered, not recorded, counted as failed.
    They are null; the page renders, says which figures are not known, and never "None"."""
    store = KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1))
    store.initialise(SUP, PASSWORD)
    doc = json.loads(_record(store.public_key()))
    doc.update(answered=True, answered_us=doc["started_us"] + 5_000_000)
    bucket = MemoryBucket({"leeds/calls/0000000001.json": json.dumps(doc).encode()})
    (tmp_path / "viewer").mkdir()
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST)
    users.set(SUP, PASSWORD, [SUP])
    v = Viewer(str(tmp_path / "viewer"), str(tmp_path / "org"), bucket, users=users, secure_cookies=False)
    rebuild_index(bucket, v.index_path)  # no key
    try:
        client, _ = _client(create_archive_app(v), SUP)
        report = json.loads(client.get("/reports?from=2026-03-02&to=2026-03-02&format=json").data)
        assert report["coverage_and_consent_known"] is False
        for totals in (report["sites"]["leeds"], report["total"]):
            assert (totals["coverage"]["connected"], totals["coverage"]["recorded"]) == (1, 0)
            assert totals["coverage"]["failed"] is None and set(totals["consent"].values()) == {None}
        resp = client.get("/reports?from=2026-03-02&to=2026-03-02")
        page = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 200 and '<table class="report">' in page
        assert "Of recording coverage only the calls recorded are known" in page and "None" not in page
    finally:
        v.close()


def test_a_call_whose_digits_were_withheld_says_so_and_is_found_by_its_number(app):
    """The review found the viewer's index without ``digits_withheld`` and a search for the
    number dialled missing a call whose number ends in a masked card number's X's."""
    sup, _ = _client(app, SUP)
    found = sup.get("/?number=01632960202").get_data(as_text=True)
    assert "/calls/york/1" in found and "/calls/leeds/1" not in found
    page = sup.get("/calls/york/1").get_data(as_text=True)
    assert 'id="digits-withheld"' in page and "Digits withheld" in page
    assert "Digits withheld" not in sup.get("/calls/leeds/1").get_data(as_text=True)


def _viewer_of(tmp_path, viewer):
    """A viewer of its own (its accounts may change) with an organisation key whose slot
    ``sara``, a supervisor, holds; ``sara``'s password was chosen for her."""
    store = KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1))
    store.initialise("sara", PASSWORD)
    (tmp_path / "viewer").mkdir()
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST)
    users.set("sara", PASSWORD, [SUP], must_change="set_by_other")
    v = Viewer(str(tmp_path / "viewer"), str(tmp_path / "org"), viewer.bucket, users=users,
               secure_cookies=False)  # fmt: skip
    return v, users


def _change(client, old, new, confirm=None):
    page = client.get("/password").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    data = {"old": old, "new": new, "confirm": new if confirm is None else confirm, "csrf_token": token}
    return client.post("/password", data=data)


def test_a_password_chosen_for_someone_is_changed_first_by_the_box_s_rules(viewer, tmp_path):
    """PCI DSS 8.3.5-8.3.7 as on a box: a password set at the command line must be changed
    at the first login before any other page (audio 403); the new one follows the box's
    rules, each refusal naming the rule and changing nothing, and is none of the last four;
    a supervisor's key slot follows it; the change is audited."""
    v, users = _viewer_of(tmp_path, viewer)
    try:
        app = create_archive_app(v)
        client, token = _client(app, ANON)
        resp = _login_as(client, token, "sara")
        assert resp.status_code == 302 and resp.location.endswith("/password")
        login = v.audit_log.entries(action="login")[0]
        assert login.details["must_change"] == "set_by_other"
        # In words that fit the viewer too, where no installer sets passwords.
        assert ("Must change its password first", words.MUST_CHANGE["set_by_other"]) in words.audit_fields(
            login.details
        )
        assert "add-user" in words.MUST_CHANGE["set_by_other"] and "unlock-user" in words.LOCKOUTS["lock"]
        assert client.get("/sites").location.endswith("/password")
        assert client.get("/calls/leeds/1/audio").status_code == 403
        page = client.get("/password").get_data(as_text=True)
        assert "Whoever runs the viewer set this password for you" in page
        refusals = {
            "short 4": "at least 12 characters",
            "only letters here at all": "needs digits as well as letters",
            PASSWORD: "That is your current password",
        }
        for new, why in refusals.items():
            resp = _change(client, PASSWORD, new)
            assert resp.status_code == 400 and why in resp.get_data(as_text=True), new
        resp = _change(client, PASSWORD, "a new pass phrase 77", "a new pass phrase 78")
        assert resp.status_code == 400 and "The two new passwords differ" in resp.get_data(as_text=True)
        resp = _change(client, "not it at all 7", "a new pass phrase 77")
        assert resp.status_code == 400 and "That is not your current password" in resp.get_data(as_text=True)
        assert v.audit_log.entries(action="login_failed")[0].details["field"] == "current password"
        assert users.check("sara", PASSWORD) is not None and not v.audit_log.entries(action="password_change")
        for n, new in enumerate(("a new pass phrase 77", "a newer pass phrase 78", "the third pass 79")):
            resp = _change(client, (PASSWORD, "a new pass phrase 77", "a newer pass phrase 78")[n], new)
            assert resp.status_code == 302 and resp.location.endswith("/password?done=1")
        assert client.get("/sites").status_code == 200  # the other pages open
        # The last four (the one in force and three before it) are refused; the fifth is not.
        for old in (PASSWORD, "a new pass phrase 77", "a newer pass phrase 78"):
            resp = _change(client, "the third pass 79", old)
            assert resp.status_code == 400 and "one of your last 4 passwords" in resp.get_data(as_text=True)
        assert users.check("sara", "the third pass 79") is not None
        changes = v.audit_log.entries(action="password_change")
        assert [(e.actor, e.target, e.details["key_slot"]) for e in changes] == [("sara", "sara", True)] * 3
        with v.keystore.unlock("sara", "the third pass 79"):
            pass  # the slot follows the password
        client, token = _client(app, ANON)
        assert _login_as(client, token, "sara", "the third pass 79").status_code == 302
        assert client.get("/calls/leeds/1/audio").status_code != 403
    finally:
        v.close()


def test_the_password_form_says_a_lockout_in_the_login_s_words(viewer, tmp_path):
    """Locked out (someone guessing at the login) while logged in, the password form refused
    the current password with "Wait 1800 s": it says, as the login does, that the account is
    locked, for how long, and who can unlock it; nothing changed, nothing audited."""
    v, users = _viewer_of(tmp_path, viewer)
    try:
        app = create_archive_app(v)
        client, token = _client(app, ANON)
        assert _login_as(client, token, "sara").status_code == 302
        # Ten failures in a row from her own desk (the test client's address), counted as the
        # login counts them without its back-off waits: from elsewhere they would not lock it here.
        for _ in range(10):
            v.throttle.failed(v.throttle.account_keys("sara", "127.0.0.1"))
        before = len(v.audit_log.entries(action="login_failed"))
        resp = _change(client, PASSWORD, "a new pass phrase 77")
        text = resp.get_data(as_text=True)
        assert resp.status_code == 429 and "1800 s" not in text
        assert "This account is locked after 10 failed attempts in a row. Try again in 30 minutes" in text
        assert "ask whoever runs the viewer to unlock it" in text
        assert len(v.audit_log.entries(action="login_failed")) == before
        assert users.check("sara", PASSWORD) is not None
    finally:
        v.close()


def test_a_password_from_before_the_rules_is_changed_at_the_next_login(viewer, tmp_path):
    v, users = _viewer_of(tmp_path, viewer)
    try:
        doc = json.loads(open(users.path).read())  # written before the 12-character rule
        from web.passwords import hash_password

        doc["users"]["old"] = {"hash": hash_password("eight ch", CHEAP_COST), "roles": [AUD], "sites": "all"}
        with open(users.path, "w") as f:
            json.dump(doc, f)
        client, token = _client(create_archive_app(v), ANON)
        resp = _login_as(client, token, "old", "eight ch")
        assert resp.status_code == 302 and resp.location.endswith("/password")
        assert v.audit_log.entries(action="login")[0].details["must_change"] == "rules"
        assert "before the password rules" in client.get("/password").get_data(as_text=True)
        assert client.get("/calls/leeds/1").location.endswith("/password")
    finally:
        v.close()


@pytest.mark.parametrize("slot_changed", [True, False])
def test_a_supervisor_s_change_cut_part_way_is_settled_at_the_next_login(viewer, tmp_path, slot_changed):
    """The new hash waits in users.json until the key slot has it: a cut between the two
    leaves the password the slot opens with the one that logs in, and the login settles it."""
    v, users = _viewer_of(tmp_path, viewer)
    new = "a new pass phrase 77"
    try:
        users.begin_change("sara", new)
        if slot_changed:
            v.keystore.change_password("sara", PASSWORD, new)
        good, bad = (new, PASSWORD) if slot_changed else (PASSWORD, new)
        app = create_archive_app(v)
        client, token = _client(app, ANON)
        assert _login_as(client, token, "sara", bad).status_code == 400
        assert _login_as(client, token, "sara", good).status_code == 302
        entry = json.loads(open(users.path).read())["users"]["sara"]
        assert "pending" not in entry and users.check("sara", bad) is None
        assert users.reused("sara", PASSWORD)
    finally:
        v.close()


def test_add_user_marks_the_password_it_sets_as_one_to_change(tmp_path):
    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    pw = str(tmp_path / "pw")
    common = ("--viewer-dir", viewer_dir, "--org-dir", org, "--roles", AUD, "--password-file", pw)
    status, err = _linekeeper("add-user", *common, "--name", "aud")
    assert status == 0, err
    assert ArchiveUsers(viewer_dir).get("aud").must_change == "set_by_other"


def test_a_forgotten_viewer_password_is_set_anew_at_the_command_line(tmp_path, capsys):
    """A supervisor's forgotten password was refused at ``add-user`` (it does not open
    their slot), with no way to set another: now a grantor's slot makes theirs anew,
    audited, and the person changes it at their first login. As on a box, none of
    the account's last four is taken."""
    from firmware import cli

    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    KeyStore(org, Argon2Params(memory_kib=8, iterations=1)).initialise("boss", PASSWORD)
    files = {}
    for name, password in (
        ("boss", PASSWORD),
        ("first", "jos first pass 11"),
        ("second", "jos second pass 22"),
    ):
        (tmp_path / name).write_text(password + "\n")
        files[name] = str(tmp_path / name)
        os.chmod(files[name], 0o600)
    add = [
        "archive",
        "add-user",
        "--viewer-dir",
        viewer_dir,
        "--org-dir",
        org,
        "--roles",
        SUP,
        "--name",
        "jo",
    ]
    # init-org's boss gets a viewer account first: a slot with none is no grantor.
    assert cli.main(add[:-1] + ["boss", "--password-file", files["boss"]]) == 0
    grant = ["--grantor", "boss", "--grantor-password-file", files["boss"]]
    assert cli.main(add + ["--password-file", files["first"]] + grant) == 0
    users = ArchiveUsers(viewer_dir)
    # Without a grantor, a password that does not open jo's slot is refused, naming the way.
    before = open(users.path).read()
    capsys.readouterr()
    assert cli.main(add + ["--password-file", files["second"]]) == 2
    assert "for a forgotten one" in capsys.readouterr().err
    assert open(users.path).read() == before
    # With one, jo's slot and account take the new password, for jo to change first.
    assert cli.main(add + ["--password-file", files["second"]] + grant) == 0
    KeyStore(org).unlock("jo", "jos second pass 22").forget()
    assert users.check("jo", "jos second pass 22").must_change == "set_by_other"
    assert users.check("jo", "jos first pass 11") is None
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    try:
        last = log.entries(limit=1)[0]
    finally:
        log.close()
    assert (last.actor, last.target, last.details["granted_by"]) == ("command-line", "jo", "boss")
    assert last.details["key_slot_reset"] is True
    # Back to the one jo had before: one of their last four, refused before anything is done.
    before = open(users.path).read()
    capsys.readouterr()
    assert cli.main(add + ["--password-file", files["first"]] + grant) == 2
    assert "one of jo's last 4 passwords" in capsys.readouterr().err
    assert open(users.path).read() == before
    KeyStore(org).unlock("jo", "jos second pass 22").forget()


def test_the_viewer_and_the_box_keep_a_typed_name_by_one_rule():
    """The viewer had its own copy of the rule that keeps a name that is no account out of
    the trail: one function now (web.accounts.who_typed), whatever holds the accounts."""
    accounts = {AUD: object()}
    assert who_typed(AUD, accounts.get) == {"target": AUD}
    assert who_typed(PASSWORD, accounts.get) == {"target": None, "no_account": True}
    assert who_typed("", accounts.get, "slot") == {"slot": None, "no_account": True}
    assert archive_views.who_typed is who_typed is auth_views.who_typed


def test_a_disabled_viewer_account_grants_no_slot_at_the_command_line(tmp_path, capsys):
    """``add-user --grantor`` opened the grantor's slot of the organisation key with their
    password whether or not their viewer account was disabled: a leaver's disabled account
    still gave new accounts a slot. Refused, before anything is made, as the box's command
    line refuses a disabled account's key slot."""
    from firmware import cli

    viewer_dir, org = str(tmp_path / "viewer"), str(tmp_path / "org")
    KeyStore(org, Argon2Params(memory_kib=8, iterations=1)).initialise("boss", PASSWORD)
    files = {}
    for name, password in (("boss", PASSWORD), ("jo", "jos first pass 11")):
        (tmp_path / name).write_text(password + "\n")
        files[name] = str(tmp_path / name)
        os.chmod(files[name], 0o600)
    common = ["archive", "add-user", "--viewer-dir", viewer_dir, "--org-dir", org, "--roles", SUP]
    assert cli.main(common + ["--name", "boss", "--password-file", files["boss"]]) == 0
    ArchiveUsers(viewer_dir).disable("boss")
    before = (open(ArchiveUsers(viewer_dir).path).read(), KeyStore(org).slots())
    grant = ["--grantor", "boss", "--grantor-password-file", files["boss"]]
    capsys.readouterr()
    assert cli.main(common + ["--name", "jo", "--password-file", files["jo"]] + grant) == 2
    err = capsys.readouterr().err
    assert "grantor boss's viewer account is disabled (by whoever runs the viewer)" in err, err
    assert (open(ArchiveUsers(viewer_dir).path).read(), KeyStore(org).slots()) == before
    ArchiveUsers(viewer_dir).enable("boss")
    assert cli.main(common + ["--name", "jo", "--password-file", files["jo"]] + grant) == 0


@pytest.mark.parametrize("path", ["", "/audio"])
def test_a_call_number_not_in_digits_0_to_9_is_named_not_another_call(app, viewer, path):
    """The URL's <int:> took other scripts' digits: /calls/leeds/١ opened call 1, and its
    look was audited as one at leeds/1."""
    client, _ = _client(app, SUP)
    before = len(viewer.audit_log.entries(action="call_viewed"))
    resp = client.get("/calls/leeds/%D9%A1" + path)  # Arabic-Indic "١"
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "call number" in page and "digits 0-9" in page, page
    assert len(viewer.audit_log.entries(action="call_viewed")) == before


@pytest.mark.parametrize("number", ["%D9%A9%D9%A6%D9%A0%D9%A1%D9%A0%D9%A1", "96010%C2%B9"])
def test_a_searched_number_not_in_digits_0_to_9_is_named(app, number):
    """isdigit() took Arabic-Indic "٩٦٠١٠١" and a superscript "¹": the search ran on them
    and said no call matched, where leeds has 01632960101."""
    client, _ = _client(app, AUD)
    resp = client.get("/?number=" + number)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "number: only digits" in page, page
    assert "/calls/leeds/1" not in page


def test_an_account_granted_no_site_reports_on_none(viewer, tmp_path):
    """An entry of users.json granting no site ("sites": [], written by hand: the command line
    refuses it) found no call, but its report held every site's: central_report read an
    empty list of sites as no limit."""
    import shutil

    v, users = _viewer_of(tmp_path, viewer)
    users.begin_change("sara", PASSWORD)  # her own now: nothing to change first
    users.finish_change("sara")
    with open(users.path) as f:
        doc = json.load(f)
    doc["users"]["sara"]["sites"] = []
    with open(users.path, "w") as f:
        json.dump(doc, f)
    shutil.copy(viewer.index_path, v.index_path)  # leeds and york
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        assert "/calls/leeds/1" not in client.get("/").get_data(as_text=True)
        report = json.loads(client.get("/reports?from=2026-03-02&to=2026-03-02&format=json").data)
        assert report["sites"] == {} and report["total"]["calls"] == 0
    finally:
        v.close()


@pytest.mark.parametrize("fmt", ["csv", "JSON", "json "])
def test_a_report_format_that_is_not_one_is_named_not_the_page_instead(app, viewer, fmt):
    """Any format but "json" answered the report's page, as if asked for no download: a
    script asking for "csv" was handed HTML with a 200."""
    client, _ = _client(app, SUP)
    before = len(viewer.audit_log.entries(action="report"))
    resp = client.get("/reports?from=2026-03-02&to=2026-03-02&format=" + fmt)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "format:" in page and '<table class="report">' not in page, page
    assert len(viewer.audit_log.entries(action="report")) == before


def test_a_head_of_the_audio_plays_nothing_and_is_no_playback_entry(viewer, tmp_path, monkeypatch):
    """A HEAD of the audio (a player or a link checker asking its size) decrypted the
    recording and wrote a playback entry, with the reason, though nothing was played."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    played = []
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(
        archive_views.index, "play", lambda *a: played.append(1) or (b"OggS audio", True, "audio/ogg")
    )
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        sites = client.get("/sites").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]
        data = {"csrf_token": token, "listen_reason": "complaint ref 1234"}
        page = client.post("/calls/leeds/1/listen", data=data, follow_redirects=True).get_data(as_text=True)
        src = re.search(r'<audio id="player"[^>]* src="([^"]+)"', page)[1].replace("&amp;", "&")
        assert client.head(src).status_code == 200
        assert (played, v.audit_log.entries(action="playback")) == ([], [])
        assert client.get(src).data == b"OggS audio"
        assert len(v.audit_log.entries(action="playback")) == 1
    finally:
        v.close()


def test_the_viewers_listen_form_answers_with_a_redirect_as_a_boxs(viewer, tmp_path, monkeypatch):
    """The viewer's Listen form answered its POST with the page, as a box's did: a reload
    asked to send the form again. A redirect now, to the page with that listen's player,
    shown again on a reload without a second entry once played."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(archive_views.index, "play", lambda *a: (b"OggS audio", True, "audio/ogg"))
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        sites = client.get("/sites").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]
        data = {"csrf_token": token, "listen_reason": "complaint ref 1234"}
        resp = client.post("/calls/leeds/1/listen", data=data)
        assert resp.status_code == 303
        assert re.fullmatch(r"/calls/leeds/1\?listen=[\w-]+#player", resp.headers["Location"])
        pages = [client.get(resp.headers["Location"]).get_data(as_text=True) for _ in range(2)]
        srcs = [re.search(r'<audio id="player"[^>]* src="([^"]+)"', p)[1] for p in pages]
        assert srcs[0] == srcs[1] and all("complaint ref 1234" in p for p in pages)
        assert not v.audit_log.entries(action="playback")
        for _ in range(2):
            assert client.get(srcs[0].replace("&amp;", "&")).status_code == 200
        assert len(v.audit_log.entries(action="playback")) == 1
        page = client.get("/calls/leeds/1?listen=made-up").get_data(as_text=True)
        assert 'id="listen-form"' in page and "<audio" not in page
    finally:
        v.close()


def test_a_play_is_one_playback_entry_however_many_requests_its_player_makes(viewer, tmp_path, monkeypatch):
    """A browser fetches a recording's audio several times for one play (buffering, seeking
    with a Range, playing again): each GET wrote another playback entry, so the trail read as
    several plays. One entry per listening token now, as on a box; a new listen form sent is
    a new play, audited again."""
    import sqlite3

    v = _viewer_with_one_recording(viewer, tmp_path)
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(archive_views.index, "play", lambda *a: (b"OggS audio", True, "audio/ogg"))
    append = v.audit_log.append
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        sites = client.get("/sites").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]

        def listen(reason):
            data = {"csrf_token": token, "listen_reason": reason}
            resp = client.post("/calls/leeds/1/listen", data=data, follow_redirects=True)
            page = resp.get_data(as_text=True)
            return re.search(r'<audio id="player"[^>]* src="([^"]+)"', page)[1].replace("&amp;", "&")

        def plays():
            return [e.details["reason"] for e in v.audit_log.entries(action="playback")][::-1]

        src = listen("complaint ref 1234")

        # The trail busy at the first request: nothing sent, and the next request is audited.
        def busy(actor, action, *args, **kwargs):
            if action == "playback":
                raise sqlite3.OperationalError("database is locked")
            return append(actor, action, *args, **kwargs)

        monkeypatch.setattr(v.audit_log, "append", busy)
        assert client.get(src).status_code == 500
        monkeypatch.setattr(v.audit_log, "append", append)
        assert plays() == []
        for headers in ({}, {"Range": "bytes=0-"}, {"Range": "bytes=4-"}, {}):
            resp = client.get(src, headers=headers)
            assert resp.status_code in (200, 206) and resp.data, headers
        assert plays() == ["complaint ref 1234"]
        # Played again from the call's page: a new listen form, a new play.
        assert client.get(listen("complaint ref 5678")).status_code == 200
        assert plays() == ["complaint ref 1234", "complaint ref 5678"]
    finally:
        v.close()


def test_nobody_exports_without_saying_why(viewer, tmp_path, monkeypatch):
    """The viewer's export asked no reason, where every other taking of a recording (the
    box's export, the viewer's own Listen) asks one: its trail said who took the recording
    away, never why. It now asks as the box's export does (its field, rule and words); no
    reason, or a bad one, is said beside the field, with nothing read and nothing audited.
    The zip is made with the reason, so that its manifest says why as the entry does."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    # The store's export stands in (the real one: tests/archive/test_viewer.py).
    made = []
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(
        archive_views,
        "export_call",
        lambda *a, reason: made.append(reason) or (b"PK zip", {"zip_sha256": "cd" * 32}),
    )
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "sara").status_code == 302
        sites = client.get("/sites").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]
        page = client.get("/calls/leeds/1").get_data(as_text=True)
        assert 'id="export-form"' in page and 'name="reason"' in page

        def export(**reason):
            return client.post("/calls/leeds/1/export", data={"csrf_token": token, **reason})

        for reason in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "why"}, {"reason": "x" * 501}):
            resp = export(**reason)
            page = resp.get_data(as_text=True)
            assert resp.status_code == 400 and 'id="error-reason"' in page, reason
            assert resp.mimetype == "text/html"
        assert "Say why this recording is exported" in export().get_data(as_text=True)
        assert "At most 500 characters." in export(reason="x" * 501).get_data(as_text=True)
        assert (made, v.audit_log.entries(action="export")) == ([], [])
        # With a reason: the zip, made with it (its manifest says why: tests/archive/test_export.py),
        # and its entry carries it.
        resp = export(reason="  court order   ref 77 ")
        assert resp.status_code == 200 and resp.data == b"PK zip" and made == ["court order ref 77"]
        (entry,) = v.audit_log.entries(action="export")
        said = (entry.actor, entry.target, entry.details["reason"])
        assert said == ("sara", "leeds/1", "court order ref 77")
    finally:
        v.close()


ZIP = b"PK" + bytes(range(100))  # the export's zip (the real one: tests/archive/test_export.py)


def _export_streamed(viewer, tmp_path, monkeypatch):
    """``(viewer, export)``: a viewer of one recorded call whose zip is :data:`ZIP`, sent 3
    bytes a chunk, and ``export()`` posting sara's export unbuffered (the body as the server
    reads it); the caller closes the viewer."""
    v = _viewer_with_one_recording(viewer, tmp_path)
    monkeypatch.setattr(archive_views.index, "read_record", lambda body, key: {})
    monkeypatch.setattr(archive_views, "export_call", lambda *a, reason: (ZIP, {"zip_sha256": "cd" * 32}))
    monkeypatch.setattr(archive_views, "CHUNK", 3)
    client, token = _client(create_archive_app(v), ANON)
    assert _login_as(client, token, "sara").status_code == 302
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sites").get_data(as_text=True))[1]
    form = {"csrf_token": token, "reason": "court order ref 77"}
    return v, lambda: client.post("/calls/leeds/1/export", data=form, buffered=False)


def _copies_taken(v):
    """The viewer's export entries, oldest first, and those of them a failure entry cancels
    (:func:`firmware.breachscope.failed_copies`, as the box's breach scope pairs them)."""
    from firmware.breachscope import failed_copies

    entries = v.audit_log.entries(action="export", newest_first=False)
    cancelled = failed_copies((e.seq, e.target, e.details) for e in entries)
    return entries, [e.seq for e in entries if "failed" not in e.details and e.seq not in cancelled]


@pytest.mark.parametrize("read, sent", [(2, 3), (0, 0)])
def test_an_export_the_browser_drops_part_way_is_audited_as_failed(viewer, tmp_path, monkeypatch, read, sent):
    """The viewer sent its zip as one block: a download the browser dropped part way stayed
    in its trail as the recording taken. It now streams it as the box's export does
    (web.download): the body closed before its last byte writes a second ``export`` entry
    with the first's details and ``failed``, which cancels it as a copy taken."""
    v, export = _export_streamed(viewer, tmp_path, monkeypatch)
    try:
        resp = export()
        assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(ZIP))
        body = iter(resp.response)
        assert b"".join(next(body) for _ in range(read)) == ZIP[: 3 * read]
        resp.close()  # the browser went: the server closes the body part way
        (made, failed), taken = _copies_taken(v)
        assert "failed" not in made.details and made.details["reason"] == "court order ref 77"
        said = "the download stopped after %d of its %d bytes (the connection closed)" % (sent, len(ZIP))
        assert failed.details == dict(made.details, failed=said)
        assert (failed.actor, failed.target) == (made.actor, made.target) == ("sara", "leeds/1")
        assert taken == []
    finally:
        v.close()


def test_an_export_read_to_its_last_byte_is_one_copy_taken(viewer, tmp_path, monkeypatch):
    v, export = _export_streamed(viewer, tmp_path, monkeypatch)
    try:
        resp = export()
        assert b"".join(resp.response) == ZIP
        resp.close()
        (made,), taken = _copies_taken(v)
        assert "failed" not in made.details and taken == [made.seq]
    finally:
        v.close()


@pytest.mark.parametrize("day", ["20260302", "2026-W10-1", "2026W101", "2026-061", "２０２６-03-02"])
def test_a_date_in_another_iso_form_is_named_not_taken(app, day):
    """date.fromisoformat takes 20260302 and week dates (2026-W10-1): the search and the
    report took them as days. Only YYYY-MM-DD is a date of the form; anything else is
    refused naming the field, with no call and no report shown."""
    client, _ = _client(app, SUP)
    for url, field in (
        ("/?from=%s" % day, "from"),
        ("/?to=%s" % day, "to"),
        ("/reports?from=%s&to=2026-03-02" % day, "from"),
        ("/reports?from=2026-03-02&to=%s" % day, "to"),
        ("/reports?from=%s&to=2026-03-02&format=json" % day, "from"),
    ):
        resp = client.get(url)
        text = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 400, (url, resp.status_code)
        assert "%s: %r is not a date like 2026-03-02 (YYYY-MM-DD)" % (field, day) in text, url
        assert "/calls/leeds/1" not in text and '<table class="report">' not in text
    # The form's own form is taken.
    assert client.get("/?from=2026-03-02&to=2026-03-02").status_code == 200
    assert client.get("/reports?from=2026-03-02&to=2026-03-02").status_code == 200


@pytest.mark.parametrize("site", ["x" * 5000, "York", "york!", "-york", "y" * 64])
@pytest.mark.parametrize("role", [LEEDS_SUP, LEEDS_AUD, SUP])
def test_a_searched_site_that_is_no_box_id_is_not_found(app, viewer, role, site):
    """``/?box=`` with text that is no box id answered 403 "not among your sites" to an
    account of some sites (and an empty search to one of every site), where the same text
    in an address is not found: it is no site at all. Now 404 naming the rule, nothing
    written, as the addresses answer."""
    client, _ = _client(app, role)
    before = len(viewer.audit_log.entries(limit=100_000))
    resp = client.get("/", query_string={"box": site})
    assert resp.status_code == 404, resp.status_code
    assert "There is no site %r" % site[:20] in html.unescape(resp.get_data(as_text=True))
    assert len(viewer.audit_log.entries(limit=100_000)) == before
    # A site id not granted is still refused, and a granted one searched.
    assert client.get("/?box=york").status_code == (200 if role == SUP else 403)
    assert client.get("/?box=leeds").status_code == 200


def test_a_searched_site_not_in_the_index_is_said_so(app, viewer):
    """``/?box=`` with a box id the index holds no call of (a site id mistyped in a saved
    address) showed "0 calls" under "every site", as if no site had a call; the report's
    Site field said "There is no site ... in the index". Now the calls page says the same
    (404), shows no call and writes nothing."""
    client, _ = _client(app, SUP)
    before = len(viewer.audit_log.entries(limit=100_000))
    resp = client.get("/", query_string={"box": "leds"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 404, resp.status_code
    assert "There is no site leds in the index." in text
    assert 'class="call-row"' not in text
    assert len(viewer.audit_log.entries(limit=100_000)) == before


def test_a_rebuild_counts_only_the_granted_sites_skipped_records(viewer, tmp_path):
    """The Sites page's rebuild said how many unreadable records it skipped in the whole
    bucket, so a supervisor of leeds learnt of york's records. It now counts those of the
    sites the person is granted, as it counts their calls."""
    v, users = _viewer_of(tmp_path, viewer)
    users.begin_change("sara", PASSWORD)  # her own now: nothing to change first
    users.finish_change("sara")
    users.set("lee", PASSWORD, [SUP], {"leeds"})
    users.begin_change("lee", PASSWORD)
    users.finish_change("lee")
    with v.keystore.unlock("sara", PASSWORD) as key:
        v.keystore.add_slot("lee", PASSWORD, key)
    v.bucket = type(viewer.bucket)(
        {
            "leeds/calls/0000000001.json": _record(v.keystore.public_key()),
            "york/calls/0000000001.json": b"not a record",
            "york/calls/0000000002.json": b"{}",
        }
    )
    try:
        app = create_archive_app(v)

        def rebuilt(name):
            client, token = _client(app, ANON)
            assert _login_as(client, token, name).status_code == 302
            sites = client.get("/sites").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]
            page = client.post("/index", data={"csrf_token": token}).get_data(as_text=True)
            return re.search(r"Index rebuilt from the bucket: [^<]*", page)[0]

        assert rebuilt("lee") == "Index rebuilt from the bucket: 1 call."
        assert rebuilt("sara") == "Index rebuilt from the bucket: 1 call, 2 unreadable records skipped."
    finally:
        v.close()


def test_an_auditor_of_one_site_pages_back_to_that_sites_older_entries(viewer, tmp_path, monkeypatch):
    """The audit page read the newest 500 entries, then kept those of the auditor's sites:
    a leeds entry with 500 of york's after it never showed, on any page. The page now
    filters as it reads and goes back a page at a time ("Older", ``?before=SEQ``), each
    page reading a bounded number of entries."""
    v, users = _viewer_of(tmp_path, viewer)
    users.set("lena", PASSWORD, [AUD], {"leeds"})
    users.begin_change("lena", PASSWORD)
    users.finish_change("lena")
    # Smaller pages and reads than the viewer's, so that a few hundred entries show it.
    monkeypatch.setattr(archive_views, "AUDIT_PAGE", 20, raising=False)
    monkeypatch.setattr(archive_views, "AUDIT_READ_MAX", 300, raising=False)
    log, now = v.audit_log, int(v.wall_us())
    leeds = {"box": "leeds", "call_id": 7, "reason": "old leeds one"}
    old = log.append("sara", "export", "leeds/7", leeds, now)
    for n in range(1, 700):  # more than the 500 the page read
        log.append("sara", "playback", "york/%d" % n, {"box": "york", "call_id": n}, now)
    log.append("sara", "export", "leeds/8", {"box": "leeds", "call_id": 8, "reason": "new leeds one"}, now)
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "lena").status_code == 302
        page = client.get("/audit").get_data(as_text=True)
        assert "new leeds one" in page and "old leeds one" not in page and "york" not in page
        pages = 1
        while "old leeds one" not in page:
            older = re.search(r'<a href="(/audit\?before=\d+)">Older entries</a>', page)
            assert older, page[-2000:]
            page = client.get(html.unescape(older[1])).get_data(as_text=True)
            assert "york" not in page
            pages += 1
        # Each page read at most 300 entries: 700 of york's took three pages.
        assert pages == 3
        assert 'id="older"' not in page  # nothing older than the first entry of all
        assert '<td data-label="#">%d</td>' % old.seq in page
        # Every page shown is itself audited.
        assert len(log.entries(action="audit_view", actor="lena")) == pages
        # An entry number that is not one is named, not a page from the newest.
        for bad in ("x", "-1", "0", "١٢"):
            resp = client.get("/audit", query_string={"before": bad})
            assert resp.status_code == 400 and "before: " in html.unescape(resp.get_data(as_text=True)), bad
    finally:
        v.close()


def test_the_audit_page_of_every_site_pages_back_a_page_at_a_time(viewer, tmp_path, monkeypatch):
    """An auditor of every site reads every entry, a page at a time, newest first."""
    monkeypatch.setattr(archive_views, "AUDIT_PAGE", 20, raising=False)
    v, users = _viewer_of(tmp_path, viewer)
    users.set("ann", PASSWORD, [AUD])
    users.begin_change("ann", PASSWORD)
    users.finish_change("ann")
    for n in range(50):
        v.audit_log.append("sara", "playback", "york/%d" % n, {"box": "york", "call_id": n}, int(v.wall_us()))
    try:
        client, token = _client(create_archive_app(v), ANON)
        assert _login_as(client, token, "ann").status_code == 302
        every = [e.seq for e in v.audit_log.entries(limit=100_000)]  # before the pages' own entries
        seen, url = [], "/audit"
        while url:
            page = client.get(url).get_data(as_text=True)
            seqs = [int(s) for s in re.findall(r'<td data-label="#">(\d+)</td>', page)]
            # A whole page, or the last (no "Older").
            assert len(seqs) == 20 if 'id="older"' in page else 0 < len(seqs) <= 20
            seen += seqs
            older = re.search(r'href="(/audit\?before=\d+)"', page)
            url = older and older[1]
        # Every entry once, in order: the pages' own audit_view entries are newer than any.
        assert seen == every and len(every) > 2 * 20
    finally:
        v.close()


def test_a_key_that_opens_no_record_is_said_with_the_granted_sites_count(viewer, tmp_path):
    """A rebuild with a key that opens none of the records said how many the whole bucket
    held, so a supervisor of leeds learnt how many york had. It now says their sites'."""
    v, users = _viewer_of(tmp_path, viewer)
    users.begin_change("sara", PASSWORD)
    users.finish_change("sara")
    users.set("lee", PASSWORD, [SUP], {"leeds"})
    users.begin_change("lee", PASSWORD)
    users.finish_change("lee")
    with v.keystore.unlock("sara", PASSWORD) as key:
        v.keystore.add_slot("lee", PASSWORD, key)
    other = KeyStore(str(tmp_path / "other-org"), Argon2Params(memory_kib=8, iterations=1))
    other.initialise("x", PASSWORD)  # another organisation's records: this key opens none
    v.bucket = type(viewer.bucket)(
        {
            "leeds/calls/0000000001.json": _record(other.public_key()),
            "york/calls/0000000001.json": _record(other.public_key(), "york"),
            "york/calls/0000000002.json": b"not a record",
        }
    )
    try:
        app = create_archive_app(v)

        def refused(name):
            client, token = _client(app, ANON)
            assert _login_as(client, token, name).status_code == 302
            sites = client.get("/sites").get_data(as_text=True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', sites)[1]
            resp = client.post("/index", data={"csrf_token": token})
            assert resp.status_code == 502
            return re.search(r"opens none of [^:]*", resp.get_data(as_text=True))[0]

        assert refused("lee") == "opens none of the 1 call record of your sites"
        assert refused("sara") == "opens none of the 3 call records"
    finally:
        v.close()


def test_a_disabled_accounts_login_from_a_logged_in_browser_is_not_said_anonymous(viewer, tmp_path):
    """The login form posted from a browser someone is logged in on, with a disabled
    account's right password: the entry was the logged-in person's, with a detail "actor:
    anonymous" beside it, which the trail showed as a field of the entry (as on a box,
    web.security.audit, the actor asked for is never a detail)."""
    v, users = _viewer_of(tmp_path, viewer)
    try:
        users.set(AUD, PASSWORD, [AUD])
        users.set("leaver", PASSWORD, [AUD])
        users.disable("leaver")
        client, token = _client(create_archive_app(v), AUD)
        resp = client.post("/login", data={"user": "leaver", "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 403
        last = v.audit_log.entries(limit=1)[0]
        assert (last.action, last.actor, last.target) == ("login_failed", AUD, "leaver")
        assert "actor" not in last.details, last.details
    finally:
        v.close()
