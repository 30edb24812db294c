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

ANON, INST, SUP, AUD = "anonymous", "installer", "supervisor", "auditor"
EVERYONE = {ANON, INST, SUP, AUD}
LOGGED_IN = {INST, SUP, AUD}
GONE = "gone after setup"

# (method, endpoint) -> who may call it
MATRIX = {
    ("GET", "static"): EVERYONE,
    ("GET", "auth.login"): EVERYONE,
    ("POST", "auth.login"): EVERYONE,
    ("GET", "auth.security_contact"): EVERYONE,
    ("POST", "auth.logout"): LOGGED_IN,
    ("GET", "auth.password"): LOGGED_IN,
    ("POST", "auth.password"): LOGGED_IN,
    ("GET", "setup.wizard"): GONE,
    ("POST", "setup.wizard"): GONE,
    ("GET", "setup.recovery"): {INST},
    ("POST", "setup.recovery"): {INST},
    ("GET", "dashboard.index"): LOGGED_IN,
    ("POST", "dashboard.pause"): {SUP},
    ("GET", "rules.index"): {INST, AUD},
    ("POST", "rules.save"): {INST},
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
    ("GET", "calls.index"): {SUP},
    ("GET", "calls.detail"): {SUP},
    ("GET", "calls.audio"): {SUP},
    ("POST", "calls.export"): {SUP},
    ("POST", "calls.hold"): {SUP},
    ("GET", "audit.index"): {AUD},
    ("GET", "users.index"): {INST},
    ("POST", "users.create"): {INST},
    ("POST", "users.update"): {INST},
    ("POST", "users.set_password"): {INST},
    ("POST", "users.delete"): {INST},
    ("GET", "settings.index"): {INST},
    ("POST", "settings.save"): {INST},
    ("POST", "settings.new_recovery_key"): {INST},
    ("GET", "reports.index"): {SUP, AUD},
    ("GET", "reports.download"): {SUP, AUD},
    ("GET", "alarms.index"): LOGGED_IN,
    ("POST", "alarms.acknowledge"): {INST, SUP},
    ("POST", "alarms.raise_concern"): LOGGED_IN,
    ("GET", "mail.index"): {INST},
    ("POST", "mail.save"): {INST},
    ("POST", "mail.send_test"): {INST},
    ("GET", "documents.checklist_page"): {INST, AUD},
    ("GET", "documents.checklist_pdf"): {INST, AUD},
    ("GET", "documents.staff_notice_page"): LOGGED_IN,
    ("GET", "documents.staff_notice_pdf"): LOGGED_IN,
    ("GET", "sar.index"): {SUP},
    ("POST", "sar.release_bundle"): {SUP},
    ("GET", "sar.disclosures"): {SUP, AUD},
    ("GET", "api.status"): LOGGED_IN,
    ("GET", "api.health_json"): LOGGED_IN,
    ("GET", "api.events"): LOGGED_IN,
}

# The matrix's user for each role (see the `people` fixture).
USERS = {INST: "ivan", SUP: "sam", AUD: "audrey"}
SAMPLE_ARGS = {"call_id": 1, "name": "nobody", "filename": "style.css", "line": 1,
               "alarm_id": 1}


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
        page = client.get("/calls/1").get_data(as_text=True)
        m = re.search(r'src="(/calls/1/audio\?p=[^"]+)"', page)
        url = m.group(1).replace("&amp;", "&") if m else url
    if method == "GET":
        return client.get(url)
    # A valid token, so that CSRF is not what refuses the call.
    token = box.token_of(client, "/login" if role == ANON else "/security")
    return client.open(url, method=method, data={"csrf_token": token})


@pytest.mark.parametrize("role", [ANON, INST, SUP, AUD])
def test_matrix(box, people, role):
    for method, rule in routes(box.app):
        expected = MATRIX[(method, rule.endpoint)]
        # A fresh session for each call: logging out, or a refused call, must
        # not change what the next one sees.
        client = box.client() if role == ANON else box.login(USERS[role])
        resp = call(box, client, method, rule, role)
        where = "%s %s as %s -> %d" % (method, rule.rule, role, resp.status_code)
        if expected == GONE:
            assert resp.status_code == 404, where
        elif role in expected:
            assert not forbidden(resp), where
            assert resp.status_code < 500, where
        else:
            assert forbidden(resp), where
            if role == ANON and not rule.rule.startswith("/api/") \
                    and not rule.rule.endswith("/audio"):
                assert resp.status_code == 302, where
            elif role == ANON:
                assert resp.status_code == 401, where
            else:
                assert resp.status_code == 403, where


def test_before_setup_everything_leads_to_the_wizard(box):
    client = box.client()
    for method, rule in routes(box.app):
        access = MATRIX[(method, rule.endpoint)]
        if access in (GONE, EVERYONE) or method != "GET":
            continue
        resp = client.get(url_for_rule(rule))
        assert resp.status_code == 302, rule.rule
        assert resp.headers["Location"] == "/setup", rule.rule
