"""The phonebook page: names for numbers, added one by one or from a CSV file.

Supervisors only (the names of callers are personal data). Every change is
audited (action ``phonebook``: what was added, renamed, removed or
imported); the CSV export too, as ``export_list`` of ``phonebook``; and each
time the page shows the entries, as ``list_viewed`` of ``phonebook`` with how
many it showed, never the names or numbers. The page has no search: it shows
every entry. A form refused shows its message and the form, not the entries
again, and writes nothing: a refusal changes nothing, and the person saw the
entries on the page they sent it from (a look already audited).
"""

import re

from flask import Blueprint, Response, redirect, render_template, request, url_for

from .. import intent
from ..phonebook import PhonebookError
from ..security import audit, form_errors, lk, roles

bp = Blueprint("phonebook", __name__, url_prefix="/phonebook")

MAX_UPLOAD = 1024 * 1024


def _country():
    site = lk().site.settings()
    return site.country if site is not None else "uk"


def _page(errors=None, status=200, **extra):
    if errors:  # the form again with its message, no entries: nothing shown, nothing audited
        return form_errors("phonebook.html", errors, status, entries=None, form=request.form, **extra)
    entries = lk().phonebook.entries()
    # Every entry's name and number shown: a look at personal data, as a page of the calls
    # list is (the breach scope counts it), one entry per page shown.
    audit("list_viewed", "phonebook", rows=len(entries))
    return render_template("phonebook.html", errors={}, entries=entries, form={}, **extra), status


@bp.route("", methods=["GET"])
@roles("supervisor")
def index():
    # Only the page's own messages: text from a link is never shown as the box's.
    done = request.args.get("done") or ""
    return _page(done=done if re.fullmatch(r"saved|removed|imported \d{1,7}", done) else None)


@bp.route("", methods=["POST"])
@roles("supervisor")
def save():
    web = lk()
    try:
        web.phonebook.put(
            request.form.get("number"),
            request.form.get("name"),
            _country(),
            audited=lambda number, name: intent.audited_tx(
                web, [("phonebook", number, {"change": "set", "name": name})]
            ),
        )
    except PhonebookError as exc:
        return _page({"entry": str(exc)[:1].upper() + str(exc)[1:] + "."}, 400)
    return redirect(url_for("phonebook.index", done="saved"))


@bp.route("/delete", methods=["POST"])
@roles("supervisor")
def delete():
    web = lk()
    given = request.form.get("number")
    try:
        removed = web.phonebook.remove(
            given,
            _country(),
            audited=lambda number: intent.audited_tx(web, [("phonebook", given, {"change": "remove"})]),
        )
    except PhonebookError as exc:
        return _page({"entry": str(exc)}, 400)
    return redirect(url_for("phonebook.index", done="removed" if removed else None))


def _upload_too_large():
    return "A phonebook file is at most 1 MB."


@bp.route("/import", methods=["POST"])
@roles("supervisor")
def import_csv():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page({"file": "Choose a CSV file to import."}, 400)
    try:
        text = upload.read(MAX_UPLOAD + 1).decode("utf-8-sig")
        if len(text) > MAX_UPLOAD:
            raise PhonebookError("a phonebook file is at most 1 MB")
        web = lk()
        n = web.phonebook.import_csv(
            text,
            _country(),
            audited=lambda n: intent.audited_tx(
                web, [("phonebook", "import", {"change": "import", "rows": n})]
            ),
        )
    except UnicodeDecodeError:
        return _page({"file": "The file is not text in UTF-8: save it as CSV (UTF-8)."}, 400)
    except PhonebookError as exc:
        return _page({"file": "Nothing was imported: %s." % exc}, 400)
    return redirect(url_for("phonebook.index", done="imported %d" % n))


import_csv.max_content_length = MAX_UPLOAD + 64 * 1024
import_csv.too_large = _upload_too_large


@bp.route("/phonebook.csv", methods=["GET"])
@roles("supervisor")
def export_csv():
    data = lk().phonebook.export_csv()
    audit("export_list", "phonebook", rows=lk().phonebook.count())
    return Response(
        data, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=phonebook.csv"}
    )
