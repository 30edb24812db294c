"""The security page shows the box's signing key fingerprint, for copying off the box (issue 19)."""

from firmware.signing import load_signer


def test_the_security_page_shows_the_signing_fingerprint_and_where_the_key_is(box):
    page = box.client().get("/security").get_data(as_text=True)
    assert "made when the recorder first starts" in page
    signer = load_signer(box.data_dir)          # no MCU: the key is on the card
    page = box.client().get("/security").get_data(as_text=True)
    assert 'id="signing-fingerprint">%s<' % signer.fingerprint in page
    assert 'id="signing-on-card"' in page and "could sign with it too" in page
