"""The staff notice of a box whose announcement is an uploaded WAV says what staff need: that
callers hear a recorded announcement chosen for the business, which they hear too.

It read "Callers: an uploaded recording (upload-40a6af7da2cb98f6.wav) is played; its words
are the installer's.": a file name of the box's own making, meaningless on a printed notice,
and words that sounded like the installer's own say, for the shop's announcement."""

import io
import re

from support.web import wav_bytes


def test_the_staff_notice_of_an_uploaded_announcement_names_no_file(box, people):
    ivan = people["ivan"]
    resp = ivan.post(
        "/consent/announcement",
        content_type="multipart/form-data",
        data={
            "csrf_token": box.token_of(ivan, "/consent"),
            "announcement": (io.BytesIO(wav_bytes(3.0)), "shop.wav"),
        },
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    form = {"inbound": "announcement", "outbound": "tone", "text": "This call is recorded."}
    assert box.post(ivan, "/consent", form, token_from="/consent").status_code == 302
    page = people["sam"].get("/documents/staff-notice").get_data(as_text=True)
    said = re.search(r'<p id="caller-notice">([^<]*)</p>', page).group(1)
    assert "upload-" not in said and ".wav" not in said and "installer" not in said, said
    assert (
        "Callers: a recorded announcement chosen for this business is played as the call is "
        "answered (you hear it on the line too)"
    ) in said, said
