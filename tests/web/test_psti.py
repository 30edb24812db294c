"""Issue 11, UK PSTI: a vulnerability contact and a support period with an end date.

``/security`` pointed to a contact "in the documentation and on its label"
that did not exist; there was no ``/.well-known/security.txt``; the support
period had no end date.
"""

import datetime
import re

import pytest

from firmware.errors import ConfigError
from firmware.product import DEFAULT_CONTACT, ProductInfo
from web import WebConfig, create_app

from support.web import Box


def test_security_txt_follows_rfc_9116(box):
    resp = box.client().get("/.well-known/security.txt")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    fields = dict(line.split(": ", 1) for line in resp.get_data(as_text=True).splitlines())
    assert fields["Contact"] == DEFAULT_CONTACT
    assert fields["Policy"] == "https://localhost/security"
    expires = datetime.datetime.strptime(fields["Expires"], "%Y-%m-%dT%H:%M:%SZ").date()
    today = datetime.date(2026, 3, 2)  # the test box's clock
    assert today < expires <= today + datetime.timedelta(days=365)
    assert expires <= ProductInfo().support_ends


def test_the_security_page_names_the_contact_and_the_end_of_support(box):
    page = box.client().get("/security").get_data(as_text=True)
    assert 'href="%s"' % DEFAULT_CONTACT in page
    assert re.search(r'id="support-ends">31 December 2031<', page)
    assert "on its label" not in page


def test_the_build_sets_the_contact_and_the_support_period(tmp_path):
    product = ProductInfo.from_environ(
        {"LINEKEEPER_SECURITY_CONTACT": "https://acme.example/sec", "LINEKEEPER_SUPPORT_ENDS": "2027-06-30"}
    )
    assert product == ProductInfo("https://acme.example/sec", datetime.date(2027, 6, 30))
    box = Box(tmp_path)
    try:
        app = create_app(box.services, WebConfig(data_dir=str(tmp_path / "w"), product=product))
        client = app.test_client()
        text = client.get("/.well-known/security.txt").get_data(as_text=True)
        assert "Contact: https://acme.example/sec\n" in text
        # Never valid beyond the support period.
        assert "Expires: 2027-03-01T23:59:59Z" in text
        page = client.get("/security").get_data(as_text=True)
        assert "30 June 2027" in page
        app.extensions["linekeeper"].close()
    finally:
        box.close()
    assert ProductInfo.from_environ({}) == ProductInfo()


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"LINEKEEPER_SECURITY_CONTACT": "call us"}, "mailto: or https: URI"),
        ({"LINEKEEPER_SECURITY_CONTACT": "http://insecure.example/"}, "mailto: or https: URI"),
        ({"LINEKEEPER_SUPPORT_ENDS": "next year"}, "YYYY-MM-DD"),
    ],
)
def test_a_bad_build_value_is_refused(environ, message):
    with pytest.raises(ConfigError, match=message):
        ProductInfo.from_environ(environ)
