"""`linekeeper verify-export` of the zip the call page's export "with signed manifest (.zip)"
gives: checked as it is, as the Security page's `linekeeper verify-export FILE --key
FINGERPRINT` says. It said "no manifest call-7.wav.zip.manifest.json beside call-7.wav.zip",
naming a file nobody was told of, and the person holding the download had to guess to unpack it.
"""

import json
import zipfile
from pathlib import Path

from firmware import cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "format"


def _known():
    answers = json.loads((FIXTURES / "known_answers.json").read_text())
    return answers["manifest"], answers["device_key"]["fingerprint"]


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def _web_export(tmp_path, audio=None):
    """The call page's zip (web.views.calls._with_manifest): the audio and its manifest."""
    m, _ = _known()
    audio = (FIXTURES / m["file"]).read_bytes() if audio is None else audio
    manifest = (FIXTURES / m["manifest"]).read_bytes()
    return _zip(tmp_path / ("%s.zip" % m["file"]), {m["file"]: audio, m["manifest"]: manifest})


def test_the_call_pages_zip_is_checked_as_it_is(tmp_path, capsys):
    m, fp = _known()
    path = _web_export(tmp_path)
    assert cli.main(["verify-export", path, "--key", fp]) == 0
    out = capsys.readouterr().out
    assert out.startswith("%s: intact; exported from recording " % path), out
    assert "by sam, signed by %s" % fp in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [m["file"] + ".zip"]  # nothing left unpacked


def test_a_changed_recording_in_the_zip_is_named(tmp_path, capsys):
    m, fp = _known()
    audio = bytearray((FIXTURES / m["file"]).read_bytes())
    audio[-1] ^= 1
    path = _web_export(tmp_path, bytes(audio))
    assert cli.main(["verify-export", path, "--key", fp]) == 2
    err = capsys.readouterr().err
    assert err.startswith("linekeeper: in %s: %s is not the file that was exported" % (path, m["file"])), err
    assert str(tmp_path) not in err.replace(path, "")  # no unpacking folder named


def test_a_zip_without_a_manifest_says_so(tmp_path, capsys):
    _, fp = _known()
    path = _zip(tmp_path / "call-1.wav.zip", {"call-1.wav": b"RIFF"})
    assert cli.main(["verify-export", path, "--key", fp]) == 2
    err = capsys.readouterr().err
    assert err == (
        "linekeeper: %s holds no manifest (a file ending .manifest.json): it is not the zip of an "
        "export with a signed manifest\n" % path
    )


def test_a_zip_naming_a_file_outside_it_is_refused_and_nothing_written(tmp_path, capsys):
    m, fp = _known()
    inside = tmp_path / "in"
    inside.mkdir()
    path = _zip(
        inside / "call-7.wav.zip",
        {"../escaped.wav": b"RIFF", m["manifest"]: (FIXTURES / m["manifest"]).read_bytes()},
    )
    assert cli.main(["verify-export", path, "--key", fp]) == 2
    err = capsys.readouterr().err
    assert err == "linekeeper: %s holds a file in a folder ('../escaped.wav'): not an export's zip\n" % path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
