"""The consent page: upload (bad uploads change nothing), listen, test call, notice settings."""

import html
import io
import math
import os
import re
import struct

from firmware.config import load_config
from firmware.control import ControlError

from support.web import wav_bytes


def tone_wav(seconds, amplitude=8000, rate=8000):
    n = int(seconds * rate)
    body = b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 440 * i / rate))) for i in range(n)
    )
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )


def upload(box, client, data, filename="notice.wav"):
    return client.post(
        "/consent/announcement",
        content_type="multipart/form-data",
        data={"csrf_token": box.token_of(client, "/consent"), "announcement": (io.BytesIO(data), filename)},
    )


def uploads(box):
    directory = os.path.join(box.data_dir, "announcements")
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if n.startswith("upload-"))


def test_a_good_upload_is_kept_configured_audited_and_playable(box, people):
    ivan = people["ivan"]
    data = wav_bytes(3.0)
    resp = upload(box, ivan, data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    (name,) = uploads(box)
    assert load_config(box.data_dir).policy.consent.announcement.file == name
    entry = [e for e in box.services.audit.entries(limit=20) if e.action == "config_change"][0]
    assert entry.target == "policy.consent" and entry.details["changed"]["announcement"]["file"] == name
    page = ivan.get("/consent").get_data(as_text=True)
    assert "An uploaded recording (%s), 3.0 s" % name in page
    assert 'id="announcement-player"' in page
    audio = people["audrey"].get("/consent/announcement.wav")
    assert audio.status_code == 200 and audio.mimetype == "audio/wav"
    assert audio.data[:4] == b"RIFF" and len(audio.data) == 44 + 3 * 8000 * 2


BAD_UPLOADS = {
    "empty": (b"", "the file is empty (0 bytes)"),
    "not a WAV": (b"This is a text file, not audio.\n" * 20, "not a WAV file"),
    "too long": (tone_wav(31), "at most 30 s"),
    "too quiet": (tone_wav(3, amplitude=3), "too quiet"),
    "silent": (tone_wav(3, amplitude=0), "too quiet"),
    "lying header": (tone_wav(2)[:-8000], "the WAV header says"),
    "lying data chunk": (
        tone_wav(2)[:40] + struct.pack("<I", 10**6) + tone_wav(2)[44:],
        "the WAV header says",
    ),
}


def test_bad_uploads_are_refused_with_a_message_and_change_nothing(box, people):
    ivan = people["ivan"]
    assert upload(box, ivan, wav_bytes(2.0)).status_code == 302
    before_files, before_config = uploads(box), load_config(box.data_dir)
    n_audit = len(box.services.audit)
    for what, (data, words) in BAD_UPLOADS.items():
        resp = upload(box, ivan, data)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, what
        m = re.search(r'id="error-upload" role="alert">([^<]+)<', page)
        assert m and words in m.group(1) and "Nothing was changed" in m.group(1), (what, page[-3000:])
        assert uploads(box) == before_files, what
        assert load_config(box.data_dir) == before_config, what
        assert len(box.services.audit) == n_audit, what


def test_a_huge_upload_is_refused_before_it_is_read(box, people):
    ivan = people["ivan"]
    resp = upload(box, ivan, b"RIFF" + b"\0" * (6 * 1024 * 1024))
    page = resp.get_data(as_text=True)
    assert resp.status_code == 413
    assert "larger than 5 MB" in page and "Nothing was changed" in page
    assert uploads(box) == [] and not os.path.exists(os.path.join(box.data_dir, "config.json"))
    # Other forms keep their small limit.
    resp = ivan.post("/rules", data={"csrf_token": box.token_of(ivan, "/rules"), "x": "y" * (100 * 1024)})
    assert resp.status_code == 413


def test_a_file_just_over_the_limit_but_within_the_body_limit_is_refused_too(box, people):
    resp = upload(box, people["ivan"], b"RIFF" + b"\0" * (5 * 1024 * 1024))
    assert resp.status_code == 400 and "larger than 5 MB" in resp.get_data(as_text=True)
    assert uploads(box) == []


def test_an_empty_upload_field_says_so(box, people):
    ivan = people["ivan"]
    resp = ivan.post(
        "/consent/announcement",
        content_type="multipart/form-data",
        data={"csrf_token": box.token_of(ivan, "/consent")},
    )
    assert resp.status_code == 400 and "Choose a WAV file" in resp.get_data(as_text=True)


def test_test_call_plays_the_announcement_into_the_line(box, people):
    ivan = people["ivan"]
    upload(box, ivan, wav_bytes(2.5))
    box.status.set(3, "dialling", call={"id": 7, "direction": "out", "number": None})  # a handset lifted
    resp = box.post(ivan, "/consent/test-call", {"line": "3"}, token_from="/consent")
    assert resp.status_code == 302 and "played=3" in resp.headers["Location"]
    assert box.played == [(3, 20000)]
    (played,) = box.services.audit.entries(action="consent_test")
    assert (played.actor, played.target, played.details["duration_s"]) == ("ivan", "line:3", 2.5)
    resp = box.post(ivan, "/consent/test-call", {"line": "9"}, token_from="/consent")
    assert resp.status_code == 400 and "from 1 to 4" in resp.get_data(as_text=True)
    # "٣": int() took it for line 3, and played into it.
    resp = box.post(ivan, "/consent/test-call", {"line": "\u0663"}, token_from="/consent")
    assert resp.status_code == 400 and "from 1 to 4" in resp.get_data(as_text=True)
    assert box.played == [(3, 20000)]
    box.status.set(2, "fault")
    resp = box.post(ivan, "/consent/test-call", {"line": "2"}, token_from="/consent")
    assert resp.status_code == 400 and box.played == [(3, 20000)]


def test_test_call_is_refused_into_a_call_or_an_idle_line_and_audited(box, people):
    ivan = people["ivan"]
    upload(box, ivan, wav_bytes(2.5))
    call = {"id": 8, "direction": "in", "number": "01632960123"}
    busy = {
        1: ("ringing", call),
        2: ("connected", call),
        3: ("dialling", dict(call, direction="out")),  # a number being dialled
        4: ("alerting", None),
    }
    for line, (state, live) in busy.items():
        box.status.set(line, state, call=live)
        resp = box.post(ivan, "/consent/test-call", {"line": str(line)}, token_from="/consent")
        page = resp.get_data(as_text=True)
        assert resp.status_code == 400, state
        m = re.search(r'id="error-test" role="alert">([^<]+)<', page)
        assert (
            m and m.group(1) == "Line %d is in a call: try again when it is free. Nothing was played." % line
        )
        assert "Played the announcement" not in page
    box.status.set(4, "idle")
    resp = box.post(ivan, "/consent/test-call", {"line": "4"}, token_from="/consent")
    assert resp.status_code == 400 and "Nobody is off-hook on line 4" in resp.get_data(as_text=True)
    assert box.played == []

    # The page's status is a moment old: the recorder, which has the line's state now, refuses.
    def recorder_refuses(line, samples):
        raise ControlError("line %d is in a call: try again when it is free" % line, "TestCallRefused")

    box.status.set(4, "dialling", call={"id": 9, "direction": "out", "number": None})
    box.services.consent._play = recorder_refuses
    resp = box.post(ivan, "/consent/test-call", {"line": "4"}, token_from="/consent")
    assert resp.status_code == 400 and "Line 4 is in a call" in resp.get_data(as_text=True)
    entries = box.services.audit.entries(action="consent_test")
    assert sorted(e.details["line"] for e in entries) == [1, 2, 3, 4, 4, 4]
    assert all("refused" in e.details and "duration_s" not in e.details for e in entries)


def test_test_call_while_the_recorder_is_down_says_so_not_that_the_line_is_in_a_call(box, people):
    """The recorder not answering, the lines' states are unknown: the test was refused as
    "line 2 is in a call", and the installer waited for a call that was not there."""
    from firmware.control import RecorderUnavailable
    from web.remote import RemoteStatus

    class Down:
        def call(self, name, **args):
            raise RecorderUnavailable("the recorder is not answering (timed out); it may be restarting")

    box.services.status = RemoteStatus(Down(), 4)
    resp = box.post(people["ivan"], "/consent/test-call", {"line": "2"}, token_from="/consent")
    m = re.search(r'id="error-test" role="alert">([^<]+)<', resp.get_data(as_text=True))
    assert (
        resp.status_code == 400
        and m
        and m.group(1)
        == (
            "The recorder is not answering, so the state of line 2 is not known: try again when the "
            "dashboard shows the lines. Nothing was played."
        )
    )
    assert box.played == []
    (refused,) = box.services.audit.entries(action="consent_test")
    assert refused.details["refused"].startswith("the recorder is not answering")


def test_notice_settings_are_saved_and_audited_and_use_default_drops_the_upload(box, people):
    ivan = people["ivan"]
    resp = box.post(
        ivan,
        "/consent",
        {
            "inbound": "announcement",
            "outbound": "tone",
            "text": "This call is recorded.",
            "warning_tone": "on",
        },
        token_from="/consent",
    )
    assert resp.status_code == 302
    consent = load_config(box.data_dir).policy.consent
    assert (consent.inbound, consent.outbound, consent.warning_tone.enabled) == ("announcement", "tone", True)
    assert consent.announcement.text == "This call is recorded."
    resp = box.post(
        ivan, "/consent", {"inbound": "loud", "outbound": "tone", "text": "x"}, token_from="/consent"
    )
    assert resp.status_code == 400 and "Choose the notice" in resp.get_data(as_text=True)
    for text in ("This call\x00 is recorded.", "This call is \x1b[31mrecorded."):
        resp = box.post(ivan, "/consent", {"inbound": "announcement", "outbound": "tone", "text": text},
                        token_from="/consent")  # fmt: skip
        assert resp.status_code == 400 and "Remove the control character" in resp.get_data(as_text=True)
        assert load_config(box.data_dir).policy.consent.announcement.text == "This call is recorded."
    upload(box, ivan, wav_bytes(2.0))
    assert load_config(box.data_dir).policy.consent.announcement.file is not None
    assert box.post(ivan, "/consent/default", token_from="/consent").status_code == 302
    assert load_config(box.data_dir).policy.consent.announcement.file is None
    assert [e.target for e in box.services.audit.entries(limit=10) if e.action == "config_change"][:3] == [
        "policy.consent"
    ] * 3


NOTICE_FORM = {
    "inbound": "announcement",
    "outbound": "tone",
    "text": "This call is recorded.",
    "warning_tone": "on",
}


def test_the_warning_tones_frequency_interval_and_level_are_set_checked_and_audited(box, people):
    """Only the tone's on/off was on the page: its frequency, interval and level needed
    the command line."""
    ivan = people["ivan"]
    page = ivan.get("/consent").get_data(as_text=True)
    assert (
        'id="tone_frequency_hz"' in page and 'id="tone_interval_s"' in page and 'id="tone_level_dbm0"' in page
    )
    tone = {"tone_frequency_hz": "1000", "tone_interval_s": "7.5", "tone_level_dbm0": "-20"}
    assert box.post(ivan, "/consent", dict(NOTICE_FORM, **tone), token_from="/consent").status_code == 302
    saved = load_config(box.data_dir).policy.consent.warning_tone
    assert (saved.enabled, saved.frequency_hz, saved.interval_s, saved.level_dbm0) == (True, 1000, 7.5, -20)
    entry = box.services.audit.entries(limit=1, action="config_change")[0]
    assert (entry.actor, entry.target) == ("ivan", "policy.consent")
    changed = entry.details["changed"]["warning_tone"]
    assert (changed["frequency_hz"], changed["interval_s"], changed["level_dbm0"]) == (1000, 7.5, -20)

    audited = len(box.services.audit)
    for field, value, said in [
        ("tone_frequency_hz", "5000", "frequency must be a whole number of Hz from 300 to 3400, not 5000"),
        (
            "tone_frequency_hz",
            "1000.5",
            "frequency must be a whole number of Hz from 300 to 3400, not &#39;1000.5&#39;",
        ),
        ("tone_interval_s", "2", "between warning tones must be a number of seconds from 5 to 600, not 2"),
        # float() takes "nan": it is not in digits 0-9, and is said back as typed.
        ("tone_interval_s", "nan", "must be a number of seconds from 5 to 600, not &#39;nan&#39;"),
        # int() and float() take Arabic-Indic digits: "١٠٠٠" was saved as 1000 Hz.
        ("tone_frequency_hz", "\u0661\u0660\u0660\u0660", "whole number of Hz from 300 to 3400, not &#39;"),
        ("tone_interval_s", "\u0667.\u0665", "must be a number of seconds from 5 to 600, not &#39;"),
        ("tone_level_dbm0", "loud", "level must be a number of dBm0 from -30 to -6, not &#39;loud&#39;"),
        ("tone_level_dbm0", "", "level must be a number of dBm0 from -30 to -6, not &#39;&#39;"),
    ]:
        resp = box.post(
            ivan, "/consent", dict(NOTICE_FORM, **dict(tone, **{field: value})), token_from="/consent"
        )
        body = resp.get_data(as_text=True)
        assert resp.status_code == 400 and 'id="error-%s"' % field in body and said in body, (field, value)
        assert load_config(box.data_dir).policy.consent.warning_tone == saved
        assert len(box.services.audit) == audited


def test_the_warning_tones_length_is_set_checked_and_audited(box, people):
    """The tone's length (duration_ms) was the one setting of it left to the configuration
    file: set on the page as the other three are, a bad one named beside its field."""
    ivan = people["ivan"]
    page = ivan.get("/consent").get_data(as_text=True)
    assert 'id="tone_duration_ms"' in page and 'value="500"' in page
    assert (
        box.post(
            ivan, "/consent", dict(NOTICE_FORM, tone_duration_ms="250"), token_from="/consent"
        ).status_code
        == 302
    )
    saved = load_config(box.data_dir).policy.consent.warning_tone
    assert (saved.enabled, saved.duration_ms) == (True, 250)
    entry = box.services.audit.entries(limit=1, action="config_change")[0]
    assert (entry.actor, entry.target) == ("ivan", "policy.consent")
    assert entry.details["changed"]["warning_tone"]["duration_ms"] == 250

    audited = len(box.services.audit)
    for value, said in [
        ("20", "length must be a whole number of ms from 50 to 2000, not 20"),
        ("3000", "length must be a whole number of ms from 50 to 2000, not 3000"),
        ("300.5", "length must be a whole number of ms from 50 to 2000, not &#39;300.5&#39;"),
        ("long", "length must be a whole number of ms from 50 to 2000, not &#39;long&#39;"),
    ]:
        resp = box.post(
            ivan, "/consent", dict(NOTICE_FORM, inbound="off", tone_duration_ms=value), token_from="/consent"
        )
        body = resp.get_data(as_text=True)
        assert resp.status_code == 400 and 'id="error-tone_duration_ms"' in body and said in body, value
        assert "The warning tone&#39;s length" in body
        consent = load_config(box.data_dir).policy.consent
        assert (consent.inbound, consent.warning_tone) == ("announcement", saved)
        assert len(box.services.audit) == audited


def test_a_box_waiting_for_a_notice_says_why_nothing_is_recorded_until_one_is_saved(box, people):
    """A box `linekeeper init` made records no line while no notice is set: the dashboard,
    the checklist and the Consent page say so (every call was otherwise marked not
    recorded, and nothing said why), until the Consent page sets one."""
    import dataclasses

    config = box.config_store.get()
    consent = dataclasses.replace(config.policy.consent, inbound="off", outbound="off", require_notice=True)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, consent=consent)))
    said = "No line is recorded: no consent notice is set"

    def dashboard(who):
        page = html.unescape(people[who].get("/").get_data(as_text=True))
        return page[page.index('id="alarms"') :]

    assert said in dashboard("sam") and said in dashboard("ivan")
    assert any(a.startswith(said) for a in people["sam"].get("/api/health").get_json()["alarms"])
    checklist = html.unescape(people["audrey"].get("/documents/checklist").get_data(as_text=True))
    assert "no notice is set in either direction, so the box records no line until one is" in checklist
    assert 'id="no-notice"' in people["ivan"].get("/consent").get_data(as_text=True)

    form = dict(NOTICE_FORM, inbound="off", outbound="tone")
    form.pop("warning_tone")
    assert box.post(people["ivan"], "/consent", form, token_from="/consent").status_code == 302
    assert not load_config(box.data_dir).policy.consent.waits_for_notice()
    assert said not in dashboard("sam")
    assert 'id="no-notice"' not in people["ivan"].get("/consent").get_data(as_text=True)


def test_the_web_ui_start_moves_the_wait_for_a_notice_out_of_config_json(box, people):
    """A development build of this release wrote policy.consent.require_notice into config.json, which
    the release before refuses (an unknown setting): its recorder would not load the
    configuration after a rollback. The web UI's start moves it to a marker of its own."""
    import json
    import os

    config = box.config_store.get()
    doc = config.to_dict()
    doc["policy"]["consent"].update(inbound="off", outbound="off", require_notice=True)
    with open(box.config_store.path, "w") as f:
        json.dump(doc, f)
    assert box.config_store.get().policy.consent.waits_for_notice()
    box.web.settle()
    with open(box.config_store.path) as f:
        assert "require_notice" not in json.load(f)["policy"]["consent"]
    assert os.path.exists(os.path.join(box.data_dir, "waits-for-notice"))
    assert box.config_store.get().policy.consent.waits_for_notice()


def wav_of(rate=8000, channels=1, seconds=3.0):
    """A 16-bit PCM WAV of a 440 Hz tone, at ``rate`` on ``channels`` channels."""
    n = int(seconds * rate)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels for i in range(n)
    )
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(frames))
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(frames))
        + frames
    )


def test_a_refused_wav_is_told_in_sentences_that_say_what_the_box_takes(box, people):
    """An installer tried the WAVs a sound editor gives. A 0.5 s one read "is it the right
    file?. Nothing was changed."; a rate the box does not take read "1 channel(s) at 12000 Hz
    is not supported: use mono or stereo at 8000 to 48000 Hz", a file already mono, at a rate
    within that range; and a 9-channel one was told to use mono or stereo when up to 8 are
    taken."""
    ivan = people["ivan"]
    for data, words in (
        (wav_of(seconds=0.5), "at least 1 s): check it is the right file. Nothing was changed."),
        (
            wav_of(rate=12000),
            "a sample rate of 12000 Hz is not supported: save it at 8000 Hz (best), or 11025, "
            "16000, 22050, 24000, 32000, 44100 or 48000 Hz. Nothing was changed.",
        ),
        (wav_of(rate=1000), "a sample rate of 1000 Hz is not supported"),
        (
            wav_of(channels=9, seconds=1.5),
            "the WAV has 9 channels; at most 8 are taken: save it as mono. Nothing was changed.",
        ),
    ):
        resp = upload(box, ivan, data)
        assert resp.status_code == 400
        m = re.search(r'id="error-upload" role="alert">([^<]+)<', resp.get_data(as_text=True))
        assert m, resp.get_data(as_text=True)[-2000:]
        said = html.unescape(m.group(1))
        assert words in said, said
        assert "?." not in said and "channel(s)" not in said, said
    assert uploads(box) == []


def test_a_wav_too_large_is_told_how_to_make_it_smaller(box, people):
    """30 s of 48 kHz stereo, as a sound editor saves it, is 5.8 MB: a 29 s file was refused
    with "an announcement is at most 30 seconds", which it was. The page now says how to
    save it smaller; nothing is kept."""
    ivan = people["ivan"]
    for data in (b"RIFF" + b"\0" * (6 * 1024 * 1024), b"RIFF" + b"\0" * (5 * 1024 * 1024)):
        resp = upload(box, ivan, data)
        said = html.unescape(resp.get_data(as_text=True))
        assert resp.status_code in (400, 413)
        assert "at most 30 seconds" not in said
        assert (
            "The file is larger than 5 MB: save the announcement as mono at 8000 Hz (30 s of it "
            "is under 0.5 MB). Nothing was changed."
        ) in said
    assert uploads(box) == []


def test_a_private_line_is_not_offered_for_a_test_call_and_is_refused(box, people):
    """A private line is never recorded, so no notice is played on it: the test-call list
    offered it all the same, and played the announcement into it."""
    import dataclasses

    from firmware.policy.settings import LineMode

    ivan = people["ivan"]
    upload(box, ivan, wav_bytes(2.5))
    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=(LineMode(line=2, mode="never"),))
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    page = ivan.get("/consent").get_data(as_text=True)
    select = re.search(r'<select id="line" name="line">(.*?)</select>', page).group(1)
    assert re.findall(r'<option value="(\d+)">', select) == ["1", "3", "4"]
    assert "Line 2 is private and not listed: a private line is never recorded" in page
    box.status.set(2, "dialling", call={"id": 7, "direction": "out", "number": None})  # a handset lifted
    resp = box.post(ivan, "/consent/test-call", {"line": "2"}, token_from="/consent")
    m = re.search(r'id="error-test" role="alert">([^<]+)<', resp.get_data(as_text=True))
    assert resp.status_code == 400 and m
    assert m.group(1) == (
        "Line 2 is private: it is never recorded, so no notice is played on it and there is "
        "nothing to test. Nothing was played."
    )
    assert box.played == [] and box.services.audit.entries(action="consent_test") == []
    every = tuple(LineMode(line=n, mode="never") for n in range(1, 5))
    config = box.config_store.get()
    rules = dataclasses.replace(config.policy.rules, lines=every)
    box.config_store.save(config.replace(policy=dataclasses.replace(config.policy, rules=rules)))
    page = ivan.get("/consent").get_data(as_text=True)
    assert 'id="test-form"' not in page and "Every line is private: none is recorded" in page
