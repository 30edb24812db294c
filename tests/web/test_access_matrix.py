"""Every route, called as anonymous and as each role: allowed or forbidden.

The matrix names every (method, endpoint) of ``app.url_map``; a route added
without an entry here fails :func:`test_every_route_is_in_the_matrix`.

"Forbidden" means 401, 403, or a redirect to the login page. Anything else
(200, 400 for an empty form, 404 for a user that does not exist, a redirect
elsewhere) means the access check let the request through. Setup routes are
gone (404) for everyone once the box is set up.
"""

import re

import pytest

from firmware.signing import load_signer

from support.web import TOKEN

ANON, INST, SUP, AUD, STAFF = "anonymous", "installer", "supervisor", "auditor", "staff"
BOTH = "installer+supervisor"
EVERYONE = {ANON, INST, SUP, AUD, BOTH, STAFF}
LOGGED_IN = {INST, SUP, AUD, BOTH, STAFF}
OFFICE = {INST, SUP, AUD, BOTH}  # everyone but staff
GONE = "gone after setup"

# (method, endpoint) -> who may call it
MATRIX = {
    ("GET", "static"): EVERYONE,
    ("GET", "auth.login"): EVERYONE,
    ("POST", "auth.login"): EVERYONE,
    ("GET", "auth.security_contact"): EVERYONE,
    ("GET", "auth.security_txt"): EVERYONE,
    ("POST", "auth.logout"): LOGGED_IN,
    ("GET", "auth.password"): LOGGED_IN,
    ("POST", "auth.password"): LOGGED_IN,
    ("GET", "setup.wizard"): GONE,
    ("POST", "setup.wizard"): GONE,
    ("GET", "setup.recovery"): {SUP},
    ("POST", "setup.recovery"): {SUP},
    ("GET", "dashboard.index"): LOGGED_IN,  # staff: a redirect to their line
    ("GET", "myline.index"): {STAFF},
    ("GET", "myline.now"): {STAFF},
    ("POST", "myline.ask"): {STAFF},
    ("POST", "dashboard.pause"): {SUP},
    ("GET", "rules.index"): {INST, AUD},
    ("POST", "rules.save"): {INST},
    ("POST", "rules.save_pci"): {INST},
    ("GET", "consent.index"): {INST, AUD},
    ("POST", "consent.save"): {INST},
    ("POST", "consent.upload"): {INST},
    ("POST", "consent.use_default"): {INST},
    ("GET", "consent.listen"): {INST, AUD},
    ("POST", "consent.test_call"): {INST},
    ("GET", "retention.index"): {INST, AUD},
    ("POST", "retention.save"): {INST},
    ("POST", "retention.confirm_clock"): {INST},
    ("GET", "retention.deletions"): {INST, AUD},
    ("GET", "retention.deletions_csv"): {INST, AUD},
    ("GET", "retention.deletions_zip"): {INST, AUD},
    ("GET", "calls.index"): {SUP, AUD},
    ("GET", "calls.export_list"): {SUP, AUD},
    ("GET", "calls.detail"): {SUP, AUD},
    ("GET", "calls.audio"): {SUP},
    ("POST", "calls.export"): {SUP},
    ("POST", "calls.listen"): {SUP},
    ("POST", "calls.hold"): {SUP},
    ("POST", "calls.erase"): {SUP},
    ("POST", "calls.erase_details"): {SUP},
    ("POST", "calls.correct_name"): {SUP},
    ("POST", "calls.tags"): {SUP},
    ("POST", "calls.notes"): {SUP},
    ("GET", "audit.index"): {AUD},
    ("GET", "audit.export_csv"): {AUD},
    ("GET", "audit.breach_scope"): {AUD},
    ("GET", "audit.breach_scope_csv"): {AUD},
    ("GET", "users.index"): {INST, AUD},
    ("POST", "users.create"): {INST},
    ("POST", "users.update"): {INST},
    ("POST", "users.set_password"): {INST},
    ("POST", "users.give_box_key"): {INST},
    ("POST", "users.unlock"): {INST},
    ("POST", "users.disable"): {INST},
    ("POST", "users.enable"): {INST},
    ("POST", "users.delete"): {INST},
    ("GET", "settings.index"): {INST},
    ("POST", "settings.save"): {INST},
    ("POST", "settings.new_recovery_key"): {BOTH},
    # Only with a key that opens every line (an installer-only account is refused the copy).
    ("POST", "settings.keystore_backup"): {BOTH},
    ("GET", "reports.index"): {SUP, AUD},
    ("GET", "reports.download"): {SUP, AUD},
    ("GET", "alarms.index"): OFFICE,
    ("GET", "alarms.export_csv"): OFFICE,
    ("POST", "alarms.acknowledge"): {INST, SUP},
    ("POST", "alarms.raise_concern"): LOGGED_IN,
    ("GET", "mail.index"): {INST},
    ("POST", "mail.save"): {INST},
    ("POST", "mail.send_test"): {INST},
    ("GET", "documents.checklist_page"): {INST, AUD},
    ("GET", "documents.checklist_pdf"): {INST, AUD},
    ("GET", "documents.year_review_page"): OFFICE,
    ("GET", "documents.year_review_pdf"): OFFICE,
    ("GET", "documents.staff_notice_page"): LOGGED_IN,
    ("GET", "documents.staff_notice_pdf"): LOGGED_IN,
    ("GET", "sar.index"): {SUP},
    ("POST", "sar.release_bundle"): {SUP},
    ("GET", "sar.bundle"): {SUP},
    ("GET", "sar.bundle_status"): {SUP},
    ("GET", "sar.bundle_file"): {SUP},
    ("GET", "sar.disclosures"): {SUP, AUD},
    ("GET", "sar.disclosures_csv"): {SUP, AUD},
    ("GET", "rights.index"): {SUP, AUD},
    ("GET", "rights.export_csv"): {SUP, AUD},
    ("POST", "rights.create"): {SUP},
    ("GET", "rights.detail"): {SUP, AUD},
    ("POST", "rights.update"): {SUP},
    ("POST", "rights.follow_up"): {SUP},
    ("POST", "erasecalls.start"): {SUP},
    ("GET", "erasecalls.progress"): {SUP},
    ("GET", "api.status"): OFFICE,
    ("GET", "api.health_json"): OFFICE,
    ("GET", "api.events"): OFFICE,
    ("GET", "api.alarms_now"): OFFICE,
    ("GET", "help.index"): EVERYONE,
    ("GET", "help.topic"): EVERYONE,
    ("GET", "phonebook.index"): {SUP},
    ("POST", "phonebook.save"): {SUP},
    ("POST", "phonebook.delete"): {SUP},
    ("POST", "phonebook.import_csv"): {SUP},
    ("GET", "phonebook.export_csv"): {SUP},
    ("GET", "updates.index"): {INST},
    ("GET", "updates.state"): {INST},
    ("POST", "updates.upload"): {INST},
    ("POST", "updates.confirm"): {INST},
    ("GET", "rekey.index"): {INST, SUP},
    ("POST", "rekey.start"): {INST, SUP},
}

# The matrix's user for each role (see the `people` fixture); alice, who set
# the box up, is an installer and a supervisor of every line; stella is staff
# on line 4.
USERS = {INST: "ivan", SUP: "sam", AUD: "audrey", BOTH: "alice", STAFF: "stella"}


def allowed(role, expected):
    """Whether ``role`` may call a route open to ``expected``.

    An installer+supervisor may call what either role may, unless the route
    names the combination itself (it needs both).
    """
    if role == BOTH and BOTH not in expected:
        return INST in expected or SUP in expected
    return role in expected


SAMPLE_ARGS = {
    "call_id": 1,
    "name": "nobody",
    "filename": "style.css",
    "line": 1,
    "alarm_id": 1,
    "topic": "calls",
    "request_id": 1,
    "token": "nosuchbundle",
}


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def url_for_rule(rule):
    return rule.build({a: SAMPLE_ARGS[a] for a in rule.arguments})[1]


def test_every_route_is_in_the_matrix(box):
    found = {(method, rule.endpoint) for method, rule in routes(box.app)}
    missing = found - set(MATRIX)
    assert not missing, "routes without an access-matrix entry: %s" % sorted(missing)
    stale = set(MATRIX) - found
    assert not stale, "matrix entries for routes that do not exist: %s" % sorted(stale)


def forbidden(resp):
    if resp.status_code in (401, 403):
        return True
    return resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def call(box, client, method, rule, role):
    url = url_for_rule(rule)
    if rule.endpoint == "calls.audio":
        # The player is shown once the listen form said why (a role it refuses has no player).
        page = client.get("/calls/1").get_data(as_text=True)
        form = TOKEN.search(page) if 'id="listen-form"' in page else None
        if form is not None:
            data = {"csrf_token": form.group(1), "listen_reason": "complaint ref 1234"}
            page = client.post("/calls/1/listen", data=data, follow_redirects=True).get_data(as_text=True)
        m = re.search(r'src="(/calls/1/audio\?p=[^"]+)"', page)
        url = m.group(1).replace("&amp;", "&") if m else url
    if method == "GET":
        return client.get(url)
    # A valid token, so that CSRF is not what refuses the call.
    token = box.token_of(client, "/login" if role == ANON else "/security")
    return client.open(url, method=method, data={"csrf_token": token})


@pytest.mark.parametrize("role", [ANON, INST, SUP, AUD, BOTH, STAFF])
def test_matrix(box, people, role):
    box.add_user(people["alice"], "stella", ["staff"], [4])
    box.add_recordings([1])  # audio to send (and keep out of caches) to whoever may hear it
    load_signer(box.data_dir)  # the recorder's key, for the deletion log's signed copy
    for method, rule in routes(box.app):
        expected = MATRIX[(method, rule.endpoint)]
        # A fresh session for each call: logging out, or a refused call, must
        # not change what the next one sees.
        client = box.client() if role == ANON else box.login(USERS[role])
        resp = call(box, client, method, rule, role)
        where = "%s %s as %s -> %d" % (method, rule.rule, role, resp.status_code)
        check_headers(resp, rule.endpoint, where)
        if expected == GONE:
            assert resp.status_code == 404, where
        elif allowed(role, expected):
            assert not forbidden(resp), where
            assert resp.status_code < 500, where
        else:
            assert forbidden(resp), where
            if role == ANON and not rule.rule.startswith("/api/") and not rule.rule.endswith("/audio"):
                assert resp.status_code == 302, where
            elif role == ANON:
                assert resp.status_code == 401, where
            else:
                assert resp.status_code == 403, where


# Answers that hold nothing personal and may be kept by a browser.
CACHED = {"static", "auth.security_txt"}


def check_headers(resp, endpoint, where):
    """Every answer, allowed or refused, carries the security headers; every one but
    :data:`CACHED` is kept out of caches and history (calls, audio, downloads)."""
    headers = resp.headers
    assert headers.get("X-Frame-Options") == "DENY", where
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") == "no-referrer", where
    if endpoint not in CACHED:
        assert headers.get("Cache-Control") == "no-store", where


@pytest.mark.parametrize("token", [None, "wrong"])
def test_every_post_needs_its_token(box, people, token):
    """Every route that changes something refuses a form without the session's token
    (alice may call each but the auditor's and staff's, which have none): 400 with the
    message, nothing audited, and the session still alive."""
    alice = people["alice"]
    before = box.services.audit.head()
    for method, rule in routes(box.app):
        if method == "GET" or MATRIX[(method, rule.endpoint)] == GONE:
            continue
        form = {} if token is None else {"csrf_token": token}
        resp = alice.open(url_for_rule(rule), method=method, data=form)
        where = "%s %s -> %d" % (method, rule.rule, resp.status_code)
        assert resp.status_code == 400 and "security token" in resp.get_data(as_text=True), where
    assert box.services.audit.head() == before
    assert alice.get("/").status_code == 200


def test_before_setup_everything_leads_to_the_wizard(box):
    client = box.client()
    for method, rule in routes(box.app):
        access = MATRIX[(method, rule.endpoint)]
        if access in (GONE, EVERYONE) or method != "GET":
            continue
        resp = client.get(url_for_rule(rule))
        assert resp.status_code == 302, rule.rule
        assert resp.headers["Location"] == "/setup", rule.rule


# The command line's export, by the same rules: (user, call) -> allowed. Call 1
# is on line 1, call 3 on line 3 (see conftest.make_calls_db).
CLI_EXPORT = {
    ("alice", 1): True,
    ("alice", 3): True,  # installer+supervisor, every line
    ("sam", 1): True,
    ("sam", 3): False,  # supervisor of lines 1-2
    ("sue", 1): False,
    ("sue", 3): True,  # supervisor of line 3
    ("ivan", 1): False,
    ("audrey", 1): False,  # installer only, auditor
}
REFUSALS = ("is not a supervisor", "has no recording", "has no account", "wrong user name or password")


def test_cli_export_matrix(box, people, tmp_path, capsys):
    from firmware.cli import main

    box.add_recordings([1, 3])
    for (name, call_id), ok in CLI_EXPORT.items():
        pw = tmp_path / ("pw-" + name)
        pw.write_text(box.PASSWORDS[name] + "\n")
        pw.chmod(0o600)
        out = tmp_path / ("%s-%d.wav" % (name, call_id))
        status = main(
            [
                "export",
                str(call_id),
                "--data-dir",
                box.data_dir,
                "--password-file",
                str(pw),
                "--user",
                name,
                "--reason",
                "a test export of the call",
                "--out",
                str(out),
            ]
        )
        err = capsys.readouterr().err
        where = "export of call %d as %s: %s" % (call_id, name, err)
        # The recordings are random bytes: an allowed export gets as far as
        # their check, which refuses them as damaged.
        assert status == 2 and not out.exists(), where
        if ok:
            assert "altered or damaged" in err, where
        else:
            assert any(r in err for r in REFUSALS), where


def test_line_grants_for_a_supervisor_of_some_lines(box, people):
    """sam holds lines 1-2, sue line 3: every call route and the pause follow the grants.

    A call on a line not granted is answered 404, like a call that does not
    exist; the pause on such a line is 403.
    """
    box.services.live = _Live()
    for method, rule in routes(box.app):
        if "call_id" not in rule.arguments and "line" not in rule.arguments:
            continue
        for name, granted in (("sam", True), ("sue", False), ("alice", True)):
            client = box.login(name)
            resp = call(box, client, method, rule, SUP)
            where = "%s %s as %s -> %d" % (method, rule.rule, name, resp.status_code)
            if granted:
                assert not forbidden(resp) and resp.status_code not in (404, 500), where
            elif "line" in rule.arguments:
                assert resp.status_code == 403, where
            else:
                assert resp.status_code == 404, where


class _Live:
    """A live-call control with a recording on every line (see test_pause.FakeLive)."""

    def pause(self, line, actor, address=None):
        pass

    def resume(self, line, actor, address=None):
        pass

    def paused_lines(self):
        return []

    def recording_lines(self):
        return [1, 2, 3, 4]

    def pausable_lines(self):
        return [1, 2, 3, 4]
