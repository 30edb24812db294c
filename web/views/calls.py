"""Calls: search, detail, playback (HTTP Range), export and legal hold.

Only supervisors, and only on the lines granted to them: a call on another
line is answered 404, exactly like a call that does not exist, so ids reveal
nothing.

Every playback is audited once per *listening session*, when audio is
actually played: each time a call's page is shown it gets a fresh random
listening token, kept in the server-side session, and the ``<audio>``
element's URL carries it. The page fetches no audio by itself
(``preload="none"``; the length shown comes from the call record), so the
first audio bytes sent for a token are a play the person started: that
request writes one ``playback`` entry (claimed atomically, so the browser's
parallel first requests cannot write two); its further Range requests
(seeking, buffering, replaying) with the same token write none. Audio
requests without a token issued to this session for this call are refused,
so nobody plays a recording without an entry.
"""

import datetime
import os
import re
import secrets

from flask import (Blueprint, Response, abort, g, redirect, render_template, request,
                   url_for)

from firmware.callsearch import CallFilter, Cursor

from ..security import audit, form_errors, lk, roles, unlocked_key

bp = Blueprint("calls", __name__)

PAGE = 50
MAX_TOKENS = 64
CHUNK = 64 * 1024
EXPORT_FORMATS = ("ogg", "wav")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def call_or_404(call_id):
    """The call if it exists and is on a line granted to the user; else 404."""
    call = lk().services.calls.get(call_id)
    if call is None or call["line"] not in g.user.lines:
        abort(404)
    return call


def _day_us(text, field, errors, end=False):
    if not text:
        return None
    try:
        day = datetime.date.fromisoformat(text)
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None
    if end:
        day += datetime.timedelta(days=1)
    t = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)
    return int(t.timestamp()) * 1_000_000


def parse_filters(args, granted):
    """``(CallFilter or None, errors)`` from the search form's query string."""
    errors = {}
    since = _day_us(args.get("from", "").strip(), "from", errors)
    until = _day_us(args.get("to", "").strip(), "to", errors, end=True)
    if since is not None and until is not None and until <= since:
        errors["to"] = "The end date is before the start date."
    lines = tuple(granted)
    asked = args.getlist("line")
    if asked:
        try:
            wanted = {int(x) for x in asked}
        except ValueError:
            wanted = {-1}
        if not wanted <= set(granted):
            errors["line"] = "You can search lines %s only." % ", ".join(map(str, granted))
        lines = tuple(sorted(wanted & set(granted)))
    direction = args.get("direction") or None
    if direction not in (None, "in", "out"):
        errors["direction"] = "Choose inbound or outbound."
    number = "".join((args.get("number") or "").split()) or None
    if number is not None and not re.fullmatch(r"[0-9*#+]{1,32}", number):
        errors["number"] = "A number has only digits (and * # +), at most 32."
    match = args.get("match") or "contains"
    if match not in ("prefix", "contains"):
        errors["match"] = "Choose 'starts with' or 'contains'."
    min_duration = None
    if args.get("min_duration"):
        try:
            min_duration = int(args["min_duration"])
            if not 0 <= min_duration <= 86400:
                raise ValueError
        except ValueError:
            errors["min_duration"] = "Enter a whole number of seconds (0 to 86400)."
    recorded = {"": None, "yes": True, "no": False}.get(args.get("recorded", ""), "bad")
    if recorded == "bad":
        errors["recorded"] = "Choose recorded, not recorded, or either."
    after = None
    if args.get("after"):
        try:
            after = Cursor.decode(args["after"])
        except ValueError:
            errors["after"] = "That page link is not valid; start the search again."
    if errors:
        return None, None, errors
    flt = CallFilter(since_us=since, until_us=until, lines=lines, direction=direction,
                     number=number, number_match=match, min_duration_s=min_duration,
                     recorded=recorded)
    return flt, after, {}


@bp.route("/calls")
@roles("supervisor")
def index():
    flt, after, errors = parse_filters(request.args, g.user.lines)
    ctx = dict(args=request.args, granted=g.user.lines)
    if errors:
        return form_errors("calls.html", errors, calls=[], next_url=None, **ctx)
    calls, cursor = lk().services.calls.search(flt, after=after, limit=PAGE)
    next_url = None
    if cursor is not None:
        query = request.args.to_dict(flat=False)
        query["after"] = [cursor.encode()]
        next_url = url_for("calls.index", **query)
    return render_template("calls.html", errors={}, calls=calls, next_url=next_url, **ctx)


def _recording(call_id):
    recordings = lk().services.recordings
    return None if recordings is None else recordings.recording_info(call_id)


@bp.route("/calls/<int:call_id>")
@roles("supervisor")
def detail(call_id):
    call = call_or_404(call_id)
    info = _recording(call_id)
    token = None
    if info is not None and unlocked_key() is not None:
        token = secrets.token_urlsafe(16)
        playbacks = lk().sessions.mem(g.session)["playbacks"]
        playbacks[token] = {"call_id": call_id, "unaudited": True}
        while len(playbacks) > MAX_TOKENS:
            playbacks.pop(next(iter(playbacks)))
    retention = lk().services.retention
    deleted = (retention.deletions_of_call(call_id)
               if info is None and retention is not None else [])
    return render_template("call.html", call=call, info=info, token=token,
                           has_key=unlocked_key() is not None, errors={},
                           formats=EXPORT_FORMATS, deleted=deleted)


def parse_range(header, size):
    """``(start, end)`` inclusive for a single-range ``Range`` header, None for none.

    Raises ValueError for a range that cannot be satisfied (416). Several
    ranges (``a-b,c-d``) are answered with the whole file (allowed by RFC 9110).
    """
    if not header or "," in header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise ValueError("bad range")
    if m.group(1) == "":
        length = int(m.group(2))
        if length == 0:
            raise ValueError("empty suffix range")
        return max(0, size - length), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise ValueError("range outside the file")
    return start, min(end, size - 1)


@bp.route("/calls/<int:call_id>/audio")
@roles("supervisor")
def audio(call_id):
    call = call_or_404(call_id)
    web = lk()
    playback = web.sessions.mem(g.session)["playbacks"].get(request.args.get("p", ""))
    if playback is None or playback["call_id"] != call_id:
        abort(403, description="Open the call's page to play its recording.")
    key = unlocked_key()
    if key is None:
        abort(403, description="Log in again to unlock recordings for playback.")
    info = _recording(call_id)
    if info is None:
        abort(404)
    f = web.services.recordings.open_audio(call_id, key)
    try:
        size = f.seek(0, os.SEEK_END)
        byte_range = parse_range(request.headers.get("Range"), size)
    except ValueError:
        f.close()
        return Response(status=416, headers={"Content-Range": "bytes */%d" % size,
                                             "Accept-Ranges": "bytes"})
    # HEAD sends no audio. dict.pop is atomic: of two parallel first requests
    # only one gets True.
    if request.method == "GET" and playback.pop("unaudited", False):
        audit("playback", call_id, line=call["line"], duration_s=info.get("duration_s"))
    start, end = byte_range if byte_range else (0, size - 1)
    f.seek(start)

    def body(remaining=end - start + 1):
        try:
            while remaining > 0:
                data = f.read(min(CHUNK, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
        finally:
            f.close()
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1),
               "Cache-Control": "no-store"}
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
    return Response(body(), status=status, mimetype=info.get("mime_type", "audio/ogg"),
                    headers=headers, direct_passthrough=True)


@bp.route("/calls/<int:call_id>/export", methods=["POST"])
@roles("supervisor")
def export(call_id):
    call = call_or_404(call_id)
    info = _recording(call_id)
    if info is None:
        abort(404)
    reason = " ".join((request.form.get("reason") or "").split())
    fmt = request.form.get("format") or "ogg"
    errors = {}
    if len(reason) < 5:
        errors["reason"] = ("Say why this recording is exported (for example \"complaint "
                            "ref 1234\"); the reason goes in the audit trail.")
    elif len(reason) > 500:
        errors["reason"] = "At most 500 characters."
    if fmt not in EXPORT_FORMATS:
        errors["format"] = "Choose Ogg/Opus or WAV."
    key = unlocked_key()
    if key is None:
        errors["reason"] = "Log in again to unlock recordings for export."
    if errors:
        return form_errors("call.html", errors, call=call, info=info, token=None,
                           has_key=key is not None, formats=EXPORT_FORMATS)
    # Audited before the audio leaves the box: no entry, no export.
    audit("export", call_id, line=call["line"], reason=reason, format=fmt)
    try:
        result = lk().services.recordings.export(call_id, key, fmt)
    except ValueError as exc:
        return form_errors("call.html", {"format": str(exc)}, call=call, info=info, token=None,
                           has_key=True, formats=EXPORT_FORMATS)
    name = "call-%d.%s" % (call_id, fmt)
    mime = "audio/ogg" if fmt == "ogg" else "audio/wav"
    data = memoryview(bytes(result))

    def body():
        # Sent from memory in chunks: the decrypted audio is never a file on the card.
        for at in range(0, len(data), CHUNK):
            yield data[at:at + CHUNK].tobytes()
    return Response(body(), mimetype=mime, direct_passthrough=True,
                    headers={"Content-Disposition": "attachment; filename=%s" % name,
                             "Content-Length": str(len(data))})


@bp.route("/calls/<int:call_id>/hold", methods=["POST"])
@roles("supervisor")
def hold(call_id):
    call = call_or_404(call_id)
    info = _recording(call_id)
    if info is None:
        abort(404)
    on = request.form.get("on")
    if on not in ("0", "1"):
        abort(400, description="Choose to place or release the legal hold.")
    lk().services.recordings.set_legal_hold(call_id, on == "1", by=g.user.name)
    audit("legal_hold", call_id, line=call["line"], on=on == "1")
    return redirect(url_for("calls.detail", call_id=call_id))
