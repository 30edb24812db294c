"""One blueprint per resource; each view declares its access (web.security)."""

from flask import request

MAX_PAGE = 1_000_000


def page_number(errors):
    """The ``page`` query argument (1 when absent); a bad one is reported in ``errors``."""
    try:
        page = int(request.args.get("page", "1"))
        if not 1 <= page <= MAX_PAGE:
            raise ValueError
    except ValueError:
        errors["page"] = "The page must be a whole number from 1."
        page = 1
    return page
