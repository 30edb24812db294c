"""The viewer's audit page says each entry in the viewer's words.

The viewer writes some of the box's actions into its own trail (a calls list shown, an
account disabled, a key slot removed); the box's words for them name what only a box
has (`linekeeper calls`, its phonebook, its installers, a recording key), which an
auditor reading the viewer's trail would take as done there.
"""

import html
import re

import pytest

from firmware.storage.keystore import Argon2Params, KeyStore
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST

from support.archive import MemoryBucket

PASSWORD = "a long enough pass 42"
NOW = 1_782_862_200_000_000


@pytest.fixture
def app(tmp_path):
    KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1)).initialise("sup", PASSWORD)
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST)
    v = Viewer(
        str(tmp_path / "viewer"),
        str(tmp_path / "org"),
        MemoryBucket({}),
        users=users,
        secure_cookies=False,
        wall_us=lambda: NOW,
    )
    users.set("aud", PASSWORD, ["auditor"])
    yield create_archive_app(v)
    v.close()


def _what(page):
    return [html.unescape(s) for s in re.findall(r'<td data-label="What">([^<]*)</td>', page)]


def test_the_audit_page_says_the_viewer_s_actions_in_its_own_words(app):
    v = app.extensions["linekeeper-archive"]
    v.audit_log.append("aud", "list_viewed", "calls", {"filter": "all calls", "rows": 0}, NOW)
    v.audit_log.append("command-line", "account_disabled", "jo", {"reason": "by hand"}, NOW)
    v.audit_log.append("command-line", "key_slot_remove", "jo", {"account": "disabled"}, NOW)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"user": "aud", "password": PASSWORD, "csrf_token": token})
    said = _what(client.get("/audit").get_data(as_text=True))
    assert "Removed a slot of the organisation key (linekeeper archive remove-slot)" in said
    assert (
        "Disabled an account (unused for 90 days, or by whoever runs the viewer): "
        "nobody logs in to it" in said
    )
    assert (
        "Viewed the calls list, which shows callers' numbers "
        "(its search, and how many calls it showed and which)" in said
    )
    for box_only in ("linekeeper calls", "phonebook", "installer", "recording key"):
        assert not [s for s in said if box_only in s], box_only
    assert "Logged in" in said  # the others keep the box's words
