"""A call's page in the central viewer says why it shows no number.

"(sealed or withheld)" was said of every call without a number, also in an index built
with the organisation key, where nothing is sealed: a supervisor holding the key read that
the number was kept from them. Now the page says which: none in the call's record (withheld
or not sent by the caller's line, or erased on the box), or not known, the index having
been built without the key.
"""

import base64
import json
import re

import pytest

from firmware.archive import sealing
from firmware.archive.viewer import rebuild_index
from firmware.storage.keystore import Argon2Params, KeyStore
from web.archive import Viewer, create_archive_app
from web.archive.users import ArchiveUsers
from web.passwords import CHEAP_COST

from support.archive import MemoryBucket

PASSWORD = "a long enough pass 42"


def _record(org_public, call_id, number):
    call = {"number": number, "name": None, "tags": []}
    context = ("leeds/%d" % call_id).encode()
    sealed = sealing.seal(json.dumps({"call": call, "audit": []}).encode(), org_public, context)
    doc = {
        "format": 1,
        "box": "leeds",
        "call_id": call_id,
        "line": 1,
        "direction": "in",
        "started_at": "2026-03-02T09:00:01.000Z",
        "started_us": 1772442001000000 + call_id,
        "answered": False,
        "recordings": [],
        "sealed": base64.b64encode(sealed).decode(),
    }
    return json.dumps(doc).encode()


@pytest.fixture
def viewer(tmp_path):
    store = KeyStore(str(tmp_path / "org"), Argon2Params(memory_kib=8, iterations=1))
    store.initialise("sup", PASSWORD)
    bucket = MemoryBucket(
        {
            "leeds/calls/0000000001.json": _record(store.public_key(), 1, "01632960101"),
            "leeds/calls/0000000002.json": _record(store.public_key(), 2, None),
        }
    )
    users = ArchiveUsers(str(tmp_path / "viewer"), CHEAP_COST)
    v = Viewer(str(tmp_path / "viewer"), str(tmp_path / "org"), bucket, users=users, secure_cookies=False)
    users.set("aud", PASSWORD, ["auditor"])
    v.test_store, v.test_bucket = store, bucket
    yield v
    v.close()


def _number(viewer, call_id):
    client = create_archive_app(viewer).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/login", data={"user": "aud", "password": PASSWORD, "csrf_token": token})
    page = client.get("/calls/leeds/%d" % call_id).get_data(as_text=True)
    return re.search(r"<dt>Number</dt><dd>([^<]*)</dd>", page).group(1)


def test_a_call_without_a_number_says_why_in_an_index_built_with_the_key(viewer):
    with viewer.test_store.unlock("sup", PASSWORD) as key:
        rebuild_index(viewer.test_bucket, viewer.index_path, key)
    assert _number(viewer, 1) == "01632960101"
    assert _number(viewer, 2) == "none in the call&#39;s record (withheld or not sent, or erased on the box)"


def test_a_call_without_a_number_in_clear_says_it_is_not_known_without_the_key(viewer):
    rebuild_index(viewer.test_bucket, viewer.index_path)
    for call_id in (1, 2):
        assert _number(viewer, call_id) == (
            "not known here: the index was built without the organisation key "
            "(a supervisor rebuilds it on the Sites page)"
        )
