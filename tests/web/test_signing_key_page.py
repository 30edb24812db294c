"""The security page shows the box's signing key fingerprint, for copying off the box (issue 19)."""

from firmware.signing import load_signer


def test_the_security_page_shows_the_signing_fingerprint_and_where_the_key_is(box):
    page = box.client().get("/security").get_data(as_text=True)
    assert "made when the recorder first starts" in page
    signer = load_signer(box.data_dir)  # no MCU: the key is on the card
    page = box.client().get("/security").get_data(as_text=True)
    assert 'id="signing-fingerprint">%s<' % signer.fingerprint in page
    assert 'id="signing-on-card"' in page and "could sign with it too" in page
    # Issue 16: without the chip the personal data is on the card as it is, and the page says so.
    assert 'id="data-in-clear"' in page and 'id="data-sealed"' not in page
    said = " ".join(page.split('id="data-in-clear">')[1].split("</p>")[0].split())
    assert said.startswith("Without a supervisor chip, callers' numbers and names, the audit trail's")
    assert "the phonebook, notes on calls, the concerns staff raised, the numbers in the recording" in said
    # The DPO's own records are on the card as they are too, and the page names them.
    assert "the register of data subjects' requests (who asked, how to reach them, what they asked)" in said
    assert "the disclosure log (to whom copies were given, and why)" in said


def test_an_export_with_its_signed_manifest_is_one_zip(box, people):
    import io
    import zipfile

    resp = box.post(people["sam"], "/calls/1/export", {"reason": "complaint ref 1234", "format": "wav.zip"})
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert "filename=call-1.wav.zip" in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
        assert z.namelist() == ["call-1.wav", "call-1.wav.manifest.json"]
        assert z.read("call-1.wav") == box.recordings.audio[1]
        assert z.read("call-1.wav.manifest.json") == b'{"fake manifest of call-1.wav by sam"}'
    (entry,) = box.services.audit.entries(action="export")
    assert entry.details["format"] == "wav.zip"
