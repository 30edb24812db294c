"""Firmware updates on the installer's page: the versions, the last update's report,
the one running now, and the upload of a bundle.

Installers only. The web UI cannot install: an upload is checked (a ``.raucb``,
at most :data:`firmware.update.inbox.MAX_BUNDLE_BYTES`, a signed RAUC bundle
by its look) and put in the box's update inbox, where the root-run update
service takes it (docs/updates.md). Every upload, kept or refused, is audited
(action ``update``). The page polls ``state.json`` to show the progress.
"""

import re

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from firmware.errors import UpdateError
from firmware.typed import control_problem
from firmware.update.inbox import MAX_BUNDLE_BYTES

from ..security import audit, lk, roles

bp = Blueprint("updates", __name__)


def _inbox():
    return lk().services.updates


def _page(error=None, status=200, uploaded=None):
    inbox = _inbox()
    return (
        render_template(
            "updates.html",
            available=inbox is not None,
            state=inbox.state() if inbox is not None else None,
            error=error,
            uploaded=uploaded,
        ),
        status,
    )


@bp.route("/updates")
@roles("installer")
def index():
    # Only the name the inbox gives an upload: text from a link is never shown as the box's.
    uploaded = request.args.get("uploaded") or ""
    return _page(uploaded=uploaded if re.fullmatch(r"uploaded-[0-9a-f]{16}\.raucb", uploaded) else None)


@bp.route("/updates/state.json")
@roles("installer")
def state():
    inbox = _inbox()
    if inbox is None:
        return jsonify({"available": False}), 404
    current = inbox.state()
    return jsonify(
        {
            "available": True,
            "installed_version": current["installed_version"],
            "step": (current["progress"] or {}).get("step"),
            "waiting": current["waiting"],
            "after_install": current["after_install"],
            "held": current["held"],
            "last": current["last"],
        }
    )


@bp.route("/updates/bundle", methods=["POST"])
@roles("installer")
def upload():
    inbox = _inbox()
    if inbox is None:
        return _page("This box cannot take updates from this page.", status=400)
    bundle = request.files.get("bundle")
    if bundle is None or not bundle.filename:
        return _page("Choose a .raucb bundle to upload. Nothing was changed.", status=400)
    problem = control_problem(bundle.filename)
    if problem:
        # The name is audited: kept there with its control characters written out, not as sent
        # (an escape sequence would act on the terminal of whoever reads the trail).
        said = bundle.filename.encode("unicode_escape").decode("ascii")
        audit("update", said, event="upload_refused", reason="its file name: " + problem)
        return _page(
            "The bundle was refused: its file name cannot be kept as it is. %s Rename the file and "
            "upload it again. Nothing was changed." % problem,
            status=400,
        )

    def audited(kept):
        audit(
            "update",
            kept["name"],
            event="uploaded",
            file=bundle.filename,
            size=kept["size"],
            sha256=kept["sha256"],
        )

    try:
        kept = inbox.save(bundle.stream, bundle.filename, audited=audited)
    except UpdateError as exc:
        audit("update", bundle.filename, event="upload_refused", reason=str(exc))
        return _page("The bundle was refused: %s. Nothing was changed." % exc, status=400)
    return redirect(url_for("updates.index", uploaded=kept["name"]))


@bp.route("/updates/confirm", methods=["POST"])
@roles("installer")
def confirm():
    """Install a held bundle that is not newer than the running release, on purpose."""
    inbox = _inbox()
    if inbox is None:
        return _page("This box cannot take updates from this page.", status=400)
    name = request.form.get("bundle", "")
    from_version, to_version = request.form.get("from", ""), request.form.get("to", "")

    def audited(info):
        audit(
            "update",
            info["bundle"],
            event="downgrade_confirmed",
            from_version=info["from"],
            to_version=info["to"],
            kind=info["kind"],
            sha256=info["sha256"],
        )

    try:
        inbox.confirm_downgrade(name, from_version, to_version, audited=audited)
    except UpdateError as exc:
        return _page("Not confirmed: %s. Nothing was changed." % exc, status=409)
    return redirect(url_for("updates.index", uploaded=name))


def _too_large():
    return "The file is larger than %d MB, the most a bundle may be. Nothing was changed." % (
        MAX_BUNDLE_BYTES >> 20
    )


# Read by web/__init__.py: this view takes a bundle, and says so when it is too large.
upload.max_content_length = MAX_BUNDLE_BYTES + 64 * 1024
upload.too_large = _too_large
