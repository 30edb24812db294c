"""The site settings the setup wizard collects and the settings page edits.

A typed model, validated whole: :func:`parse_site_form` returns either
settings or a message per bad field, never half of each. Stored as JSON in
web.db's ``site`` table with the setup state.

ICO registration numbers (the UK data protection register's "registration
reference") are 8 characters: ``Z`` and 7 digits for older entries (e.g.
``Z5347709``), ``Z``, a letter and 6 digits for newer ones (``ZA123456``,
``ZB123456``). Any letter is accepted after the Z, so a new series is not
refused.
"""

import dataclasses
import datetime
import json
import re

from flask import g, has_request_context, request
from markupsafe import Markup
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from firmware import typed
from firmware.lawfulbasis import BASES, LEGITIMATE_INTERESTS
from firmware.localtime import DEFAULT_ZONE, day_words, zone_names
from firmware.policy import cards
from firmware.rights import DEFAULT_REGION, REGIONS
from firmware.typed import control_problem
from telephony import countries

ICO_NUMBER = re.compile(r"^Z[A-Z0-9][0-9]{6}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ()-]*$")
MAX_TEXT = 200
MAX_ADDRESS = 500
MAX_EMAIL = 254
MAX_PURPOSE = 2000
MAX_LINE_NAME = 40
# A line's choices in the form (line-N-mode): recorded, private (never recorded), or
# not connected (nothing plugged into its socket: no fault alarm, never recorded).
NOT_CONNECTED = "not_connected"
LINE_MODES = ("record", "private", NOT_CONNECTED)


@dataclasses.dataclass(frozen=True)
class LineSetting:
    line: int
    name: str
    record: bool


@dataclasses.dataclass(frozen=True)
class SiteSettings:
    organisation: str
    ico_number: str  # "" outside the UK
    ico_renewal: str  # ISO date, "" outside the UK
    purpose: str
    country: str
    lines: tuple  # of LineSetting
    time_zone: str = DEFAULT_ZONE  # IANA name: every time on the pages is shown in it
    # ISO date the data protection impact assessment was last reviewed, or "". Kept apart
    # from the rest (web.db's site key "dpia_reviewed"; not in a configuration export):
    # the release before reads the settings' JSON, and imports, with its own fields only.
    dpia_reviewed: str = ""
    # Where the business is (firmware.rights.REGIONS): whose bank holidays the requests'
    # deadlines count. Kept apart like the DPIA date (web.db's site key "region"), for
    # the same reason: the release before reads the settings' JSON with its fields only.
    region: str = DEFAULT_REGION
    # The lawful basis for recording (firmware.lawfulbasis.BASES; "" when none is recorded)
    # and, for legitimate interests, the ISO date of the legitimate interests assessment.
    lawful_basis: str = ""
    lia_date: str = ""
    # Who answers data protection questions (a name or a role, such as "Data Protection
    # Officer"), a postal address (lines apart with "\n"), an e-mail address and a phone
    # number: each "" when not given.
    dp_contact: str = ""
    dp_address: str = ""
    dp_email: str = ""
    dp_phone: str = ""
    # The lines with nothing plugged into their socket (a 4-line HAT at a 2-line site): no
    # line-fault alarm, never recorded, and neither recorded nor private (firmware's
    # ``BoxConfig.not_connected``). Kept apart as a JSON list under web.db's site key
    # "not_connected"; none stored (settings saved before it): every line is connected.
    not_connected: tuple = ()

    #: Fields kept apart from the settings' JSON, each under its own web.db site key
    #: (as region is): the release before reads that JSON with its own fields only.
    APART = (
        "dpia_reviewed",
        "region",
        "lawful_basis",
        "lia_date",
        "dp_contact",
        "dp_address",
        "dp_email",
        "dp_phone",
    )

    def to_json(self):
        data = dataclasses.asdict(self)
        for name in self.APART + ("not_connected",):
            del data[name]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text, known_only=False):
        """The settings from :meth:`to_json`'s text. ``known_only``: fields a later release
        added are left out (a box rolled back reads what the newer one stored)."""
        data = json.loads(text)
        if known_only:
            names = {f.name for f in dataclasses.fields(cls)}
            data = {k: v for k, v in data.items() if k in names}
        data["lines"] = tuple(LineSetting(**x) for x in data["lines"])
        data.pop("not_connected", None)  # kept apart (Site.settings)
        return cls(**data)

    def line(self, number):
        for setting in self.lines:
            if setting.line == number:
                return setting
        return LineSetting(number, "Line %d" % number, True)


def given_reason(field, done, example, what="this recording is"):
    """``(reason, problem)``: the form's ``field``, why ``what`` is ``done``, as the
    audit trail keeps it (5 to 500 characters, no control characters), or why not. The
    box's pages, the central viewer and the CLI ask a reason by this one rule
    (:func:`firmware.typed.given_reason`)."""
    return typed.given_reason(
        request.form.get(field),
        'Say why %s %s (for example "%s"); the reason goes in the audit trail.' % (what, done, example),
    )


def typed_back(field):
    """What the refused form's ``field`` held, to give back in it (nobody types it again),
    or "" when it holds a card number: PCI DSS, the card number on no page, not even back
    in its own field."""
    return no_card(request.form.get(field, ""))


def no_card(text):
    """``text`` (what a person typed, to give back in a refused form's field), or "" when
    it holds a card number (PCI DSS: the card number on no page). The ``no_card`` filter
    of the pages, for a field given back from anything else than the request's form."""
    if not isinstance(text, str):
        return text
    return "" if typed.card_problem(text) else text


def card_free(value):
    """``value`` as a page may show it (the Jinja environment's ``finalize``, so every
    ``{{ }}`` of every page): a card number in it masked (PCI DSS: the card number on no
    page), whether a field gives back what was typed or a message quotes it. The box's own
    text holds none (it is scrubbed as it is kept); what the request carries is read as
    typed text, so a card number typed in groups apart by dashes is masked where it is
    quoted whole. A refused field better comes back empty: :func:`typed_back`."""
    if isinstance(value, int) and not isinstance(value, bool):  # a number a form was read as
        text = cards.scrub(str(value))
        return value if text == str(value) else text
    if not isinstance(value, str):
        return value
    text = str(value)
    for typed_card in _typed_cards():
        text = text.replace(typed_card, cards.scrub_typed(typed_card))
    text = cards.scrub(text)
    if text == value:
        return value
    return Markup(text) if isinstance(value, Markup) else text


def _typed_cards():
    """Each card number, as typed, in the current request's form and query."""
    if not has_request_context():
        return ()
    if "typed_cards" not in g:
        found: set[str] = set()
        try:
            form = request.form
        except HTTPException:  # too large to read (the page says so): nothing of it is shown
            form = ImmutableMultiDict()
        for values in (request.args, form):
            for text in (t for _, texts in values.lists() for t in texts):
                found.update(text[a:b] for a, b in cards.typed_spans(text))
        g.typed_cards = sorted(found, key=len, reverse=True)
    return g.typed_cards


def parse_site_form(form, n_lines, today=None):
    """``(SiteSettings or None, {field: message})`` from a submitted form; ``today`` (a
    :class:`datetime.date`: the box's, in its zone; the machine's when None) is the day the
    dates of things done may not be after.

    Fields: ``organisation``, ``ico_number``, ``ico_renewal`` (YYYY-MM-DD),
    ``purpose``, ``country``, ``time_zone`` (an IANA name such as
    ``Europe/London``; empty means that), ``region`` (where the business is:
    ENG, WLS, SCT or NIR; empty means ENG), ``dpia_reviewed`` (YYYY-MM-DD or empty:
    when the data protection impact assessment was last reviewed), ``lawful_basis`` (a code
    of :data:`firmware.lawfulbasis.BASES`, or empty) with ``lia_date`` (YYYY-MM-DD: needed
    for legitimate interests, refused with another basis), the data protection contact
    ``dp_contact`` (a name or role), ``dp_address``, ``dp_email``, ``dp_phone`` (each
    optional), and ``line-N-name`` / ``line-N-mode`` ("record" or "private") for each line
    1..``n_lines``.
    """
    errors = {}
    get = lambda k: (form.get(k) or "").strip()  # noqa: E731
    organisation = get("organisation")
    if not organisation:
        errors["organisation"] = "Enter the name of the organisation that records the calls."
    elif len(organisation) > MAX_TEXT:
        errors["organisation"] = "At most %d characters." % MAX_TEXT
    elif control_problem(organisation):
        errors["organisation"] = control_problem(organisation)
    country = get("country")
    if country not in countries.box_countries():
        errors["country"] = "Choose the country the lines are in."
    ico_number = get("ico_number").upper().replace(" ", "")
    ico_renewal = get("ico_renewal")
    if country == "uk":
        if not ICO_NUMBER.match(ico_number):
            errors["ico_number"] = (
                "An ICO registration number is 8 characters starting with Z, "
                "such as ZA123456 or Z1234567 (it is on the ICO's "
                "certificate and in the public register)."
            )
        renewal = form_date(ico_renewal)
        if renewal is None:
            errors["ico_renewal"] = date_refusal("renewal date", ico_renewal)
        elif renewal.year < 2018:
            errors["ico_renewal"] = "The renewal date must be 2018 or later."
        else:
            ico_renewal = renewal.isoformat()
    else:
        ico_number = ico_renewal = ""
    time_zone = get("time_zone") or DEFAULT_ZONE
    if time_zone not in zone_names():
        # The list's names only: "localtime" is whatever the machine says (UTC on a
        # box), "posix/Europe/London" and "Etc/GMT+5" are not what an office calls its time.
        errors["time_zone"] = "Choose the time zone from the list (for example Europe/London)."
    region = get("region") or DEFAULT_REGION
    if region not in REGIONS:
        errors["region"] = "Choose where the business is: %s." % ", ".join(REGIONS.values())
    dpia_reviewed = get("dpia_reviewed")
    if dpia_reviewed:
        problem = _past_date_problem(dpia_reviewed, "review", "it was reviewed", today)
        if problem is not None:
            errors["dpia_reviewed"] = problem or date_refusal("date of the last review", dpia_reviewed) + (
                " Or leave it empty."
            )
        else:
            dpia_reviewed = _iso(dpia_reviewed)
    lawful_basis, lia_date = _parse_basis(get, errors, today)
    dp_contact, dp_address, dp_email, dp_phone = _parse_contact(get, errors)
    purpose = get("purpose")
    if len(purpose) < 10:
        errors["purpose"] = (
            'Say why calls are recorded (for example "to keep a record of '
            'orders taken by phone"); people have a right to know.'
        )
    elif len(purpose) > MAX_PURPOSE:
        errors["purpose"] = "At most %d characters." % MAX_PURPOSE
    elif control_problem(purpose, lines=True):
        errors["purpose"] = control_problem(purpose, lines=True)
    lines, not_connected = [], []
    for n in range(1, n_lines + 1):
        name = get("line-%d-name" % n)
        mode = get("line-%d-mode" % n)
        if not name:
            errors["line-%d-name" % n] = 'Give line %d a name (for example "Sales").' % n
        elif len(name) > MAX_LINE_NAME:
            errors["line-%d-name" % n] = "At most %d characters." % MAX_LINE_NAME
        elif control_problem(name):
            errors["line-%d-name" % n] = control_problem(name)
        if mode not in LINE_MODES:
            errors["line-%d-mode" % n] = (
                "Choose whether line %d is recorded, private, or not connected (nothing is plugged "
                "into its socket)." % n
            )
        if mode == NOT_CONNECTED:
            not_connected.append(n)
        lines.append(LineSetting(n, name, mode == "record"))
    if errors:
        return None, errors
    return (
        SiteSettings(
            organisation,
            ico_number,
            ico_renewal,
            purpose,
            country,
            tuple(lines),
            time_zone,
            dpia_reviewed,
            region,
            lawful_basis,
            lia_date,
            dp_contact,
            dp_address,
            dp_email,
            dp_phone,
            tuple(not_connected),
        ),
        {},
    )


# A date as a person may write it in a date field a browser does not offer as one (it is
# then a text field): said in the refusal of a date that is none, never a format to copy.
DATE_EXAMPLE = "31 March 2027"
_FORM_DATE = re.compile(r"(?:[a-z]{3,9},?\s+)?(\d{1,2})\s+([a-z]{3,9})\.?,?\s+(\d{4})", re.I)
_MONTHS = "january february march april may june july august september october november december"
# A month by its name or its first three letters ("Sept" too), lower case: its number.
_MONTH_NUMBERS = {
    **{month: n for n, month in enumerate(_MONTHS.split(), 1)},
    **{month[:3]: n for n, month in enumerate(_MONTHS.split(), 1)},
    "sept": 9,
}


def form_date(text):
    """The day a date field sent, or None when ``text`` is no date. A browser's date field
    shows the day as its user's locale writes it (31/03/2027, 03/31/2027) and sends it as
    2027-03-31; where a browser has no date field, what was typed comes instead, and a
    day written with its month's name ("31 March 2027", "Wed 31 Mar 2027", as the pages
    write days) is taken too. 03/04/2027 is none: 3 April or 4 March, it does not say."""
    text = (text or "").strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            return None
    found = _FORM_DATE.fullmatch(text)
    month = _MONTH_NUMBERS.get(found.group(2).lower()) if found else None
    if found is None or month is None:
        return None
    try:
        return datetime.date(int(found.group(3)), month, int(found.group(1)))
    except ValueError:
        return None


def date_refusal(what, text):
    """What a date field that is no date (:func:`form_date`) is told: ``what`` it is
    ("renewal date"), and what was typed, never a format the browser's field does not show."""
    if not (text or "").strip():
        return "Enter the %s." % what
    return (
        'The %s "%s" is not a date the box can be sure of: pick the day in the calendar, or write it as %s.'
        % (
            what,
            text.strip()[:30],
            DATE_EXAMPLE,
        )
    )


def _iso(text):
    """The date field's ``text`` as the settings keep a date, YYYY-MM-DD (:func:`form_date`)."""
    day = form_date(text)
    return day.isoformat() if day is not None else text


def _past_date_problem(text, what, when, today=None):
    """Why ``text`` is not the date of something done (2018 or later, not after ``today``,
    the machine's date when None, with a day's grace), or None; "" when it is not a date
    at all (the caller says what to enter)."""
    day = form_date(text)
    if day is None:
        return ""
    if day.year < 2018:
        return "The %s date must be 2018 or later." % what
    today = today or datetime.date.today()
    if day > today + datetime.timedelta(days=1):
        # The box's date is said: a demo's or a wrongly set box's today is not the installer's.
        return "The %s date cannot be in the future (today is %s on the box's clock): give the day %s." % (
            what,
            day_words(today),
            when,
        )
    return None


def _parse_basis(get, errors, today=None):
    """The lawful basis and its legitimate interests assessment's date (not after
    ``today``) from the form, messages into ``errors``."""
    basis = get("lawful_basis")
    if basis and basis not in BASES:
        errors["lawful_basis"] = "Choose the lawful basis from the list: %s." % ", ".join(
            words for words, _ in BASES.values()
        )
    lia_date = get("lia_date")
    if basis == LEGITIMATE_INTERESTS:
        problem = _past_date_problem(lia_date, "assessment", "it was made", today)
        if problem is not None:
            errors["lia_date"] = problem or date_refusal(
                "date of the legitimate interests assessment", lia_date
            ) + (" Relying on legitimate interests needs one, made before recording starts.")
        else:
            lia_date = _iso(lia_date)
    elif lia_date:
        errors["lia_date"] = (
            "Leave this empty: the assessment date goes with legitimate interests only "
            "(or choose legitimate interests above)."
        )
    return basis, lia_date


def _parse_contact(get, errors):
    """Who answers data protection questions, and how to reach them, from the form
    (each optional), messages into ``errors``."""
    contact, address, email, phone = (get(k) for k in ("dp_contact", "dp_address", "dp_email", "dp_phone"))
    if len(contact) > MAX_TEXT:
        errors["dp_contact"] = "At most %d characters." % MAX_TEXT
    elif control_problem(contact):
        errors["dp_contact"] = control_problem(contact)
    if len(address) > MAX_ADDRESS:
        errors["dp_address"] = "At most %d characters." % MAX_ADDRESS
    elif control_problem(address, lines=True):
        errors["dp_address"] = control_problem(address, lines=True)
    if email and (len(email) > MAX_EMAIL or not EMAIL.match(email)):
        errors["dp_email"] = "Enter an e-mail address like dpo@example.com, or leave it empty."
    if phone and (not PHONE.match(phone) or not 7 <= sum(c.isdigit() for c in phone) <= 15):
        errors["dp_phone"] = (
            "Enter a phone number in digits, such as 01632 960123 or +44 1632 960123 "
            "(spaces, brackets, dashes and a leading + allowed), or leave it empty."
        )
    address = "\n".join(x.strip() for x in address.splitlines() if x.strip())
    return contact, address, email, phone


class Site:
    """Site settings and setup state in web.db's ``site`` table."""

    def __init__(self, db):
        self._db = db

    def _get(self, key):
        row = self._db.one("SELECT value FROM site WHERE key = ?", (key,))
        return None if row is None else row[0]

    @staticmethod
    def _put(conn, key, value):
        conn.execute("INSERT OR REPLACE INTO site (key, value) VALUES (?, ?)", (key, value))

    def settings(self):
        text = self._get("settings")
        if text is None:
            return None
        settings = SiteSettings.from_json(text, known_only=True)
        # Each kept-apart field under its own key; none stored: the field's default.
        return dataclasses.replace(
            settings,
            not_connected=_line_list(self._get("not_connected")),
            **{name: self._get(name) or getattr(settings, name) for name in SiteSettings.APART},
        )

    def save(self, conn, settings):
        self._put(conn, "settings", settings.to_json())
        for name in SiteSettings.APART:
            self._put(conn, name, getattr(settings, name))
        self._put(conn, "not_connected", json.dumps(sorted(settings.not_connected)))
        if has_request_context():
            g.pop("lk_local_time", None)  # the zone may have changed (web.LinekeeperWeb.local_time)

    @property
    def setup_complete(self):
        return self._get("setup_complete") == "true"

    def mark_setup_complete(self, conn):
        self._put(conn, "setup_complete", "true")

    @property
    def keys_pending(self):
        """Whether the wizard was about to make the recording keys and its settings and
        account never followed (a cut, a card that refused web.db): keys found on the
        card then are that try's, and its recovery key was never shown."""
        return self._get("keys_pending") == "true"

    def set_keys_pending(self, conn, pending):
        self._put(conn, "keys_pending", "true" if pending else "false")

    @property
    def recovery_confirmed(self):
        return self._get("recovery_confirmed") == "true"

    def set_recovery_confirmed(self, confirmed):
        with self._db.tx() as conn:
            self._put(conn, "recovery_confirmed", "true" if confirmed else "false")


def _line_list(text):
    """The line numbers web.db's "not_connected" key holds: () when none is stored (settings
    saved before there was a choice: every line connected) or it is not a list of them."""
    try:
        lines = json.loads(text) if text else []
    except ValueError:
        return ()
    if not isinstance(lines, list):
        return ()
    return tuple(sorted({n for n in lines if isinstance(n, int) and not isinstance(n, bool) and n > 0}))


def form_values(settings, n_lines, private=None, undecided=()):
    """The form fields (as :func:`parse_site_form` reads them) for ``settings`` or defaults
    (the setup wizard's: no line recorded or private until the installer chooses).

    ``private``: the lines the box will not record (the rules' mode "never"), which
    the form shows as private whatever ``settings`` last said. ``undecided``: the lines
    nobody chose as recorded or private (``web.documents.undecided_lines``), which the
    form shows as not chosen, as the wizard does, not as "Record calls"."""
    values = {"country": "uk", "time_zone": DEFAULT_ZONE, "region": DEFAULT_REGION}
    if settings is not None:
        values.update(
            organisation=settings.organisation,
            ico_number=settings.ico_number,
            ico_renewal=settings.ico_renewal,
            purpose=settings.purpose,
            country=settings.country,
            time_zone=settings.time_zone,
            dpia_reviewed=settings.dpia_reviewed,
            region=settings.region,
            lawful_basis=settings.lawful_basis,
            lia_date=settings.lia_date,
            dp_contact=settings.dp_contact,
            dp_address=settings.dp_address,
            dp_email=settings.dp_email,
            dp_phone=settings.dp_phone,
        )
    for n in range(1, n_lines + 1):
        if settings is None and private is None:
            # The setup wizard: each line recorded or private by the installer's own choice,
            # none recorded by default (a private line left at "record" was recorded).
            values["line-%d-name" % n] = "Line %d" % n
            values["line-%d-mode" % n] = ""
            continue
        line = settings.line(n) if settings is not None else LineSetting(n, "Line %d" % n, True)
        values["line-%d-name" % n] = line.name
        if settings is not None and n in settings.not_connected:
            values["line-%d-mode" % n] = NOT_CONNECTED
            continue
        if n in undecided:
            values["line-%d-mode" % n] = ""
            continue
        recorded = line.record if private is None else n not in private
        values["line-%d-mode" % n] = "record" if recorded else "private"
    return values
