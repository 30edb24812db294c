"""`linekeeper verify-export` of a file that is not there, or one without its manifest."""

import pytest

from firmware.errors import LinekeeperError
from firmware.manifest import verify_export
from firmware.signing import Signer

FINGERPRINT = Signer(bytes(range(32)), "card").fingerprint


def test_a_missing_export_is_said_to_be_missing_not_its_manifest(tmp_path):
    """It said "no manifest missing.wav.manifest.json beside missing.wav" of a file that
    was not there at all."""
    missing = str(tmp_path / "missing.wav")
    with pytest.raises(LinekeeperError) as err:
        verify_export(missing, FINGERPRINT)
    assert str(err.value) == "%s: no such file" % missing
    (tmp_path / "missing.wav").write_bytes(b"RIFF")
    with pytest.raises(LinekeeperError) as err:
        verify_export(missing, FINGERPRINT)
    # A call page's plain Ogg or WAV download has none: the words say how to get one that has.
    assert str(err.value) == (
        "no manifest %s.manifest.json beside %s: a plain Ogg or WAV download from a call's page "
        'carries none; export the call again "with signed manifest (.zip)" and check that zip'
        % (missing, missing)
    )
