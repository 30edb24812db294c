"""The SMTP settings, kept in ``DATA_DIR/mail.json`` (0600), the password sealed."""

import contextlib
import dataclasses
import email.utils
import ipaddress
import json
import logging
import os
import re
import unicodedata
import urllib.parse

from firmware.errors import TamperError
from firmware.storage.fsutil import atomic_write, file_lock

from ..errors import ConfigError

SECURITY = ("starttls", "tls", "none")
EVERY = ("daily", "weekly", "monthly")
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def _is_host(text):
    """Whether ``text`` is a host name, an IPv4 address or an IPv6 one (in brackets or not).
    An address is checked as one: "abc.de:25" (hex letters, a dot and a colon) passed a
    pattern of those characters as an IPv6 address."""
    if _HOST_NAME.match(text):
        return True
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        return False
    return True


log = logging.getLogger(__name__)
PASSWORD_FIELD = "mail.password"
LOGIN_IN_CLEAR = (
    'security "none" would send the user name and password over the network in clear: '
    "choose starttls or tls, or leave the user name empty to send without logging in"
)


# Far beyond any provider's password or app password; a longer one is a paste gone wrong.
PASSWORD_MAX_CHARS = 1024


def password_problem(password):
    """Why ``password`` (text) cannot be the SMTP login's password, as a sentence; None if it can.

    A control character is refused: a newline or NUL in it would break the AUTH exchange
    with the server (or cut the password short), so every e-mail would fail to log in."""
    if any(unicodedata.category(c) == "Cc" for c in password):
        return (
            "The password has a control character (a NUL, tab, newline or the like): the mail "
            "server's login would break on it. Type the password again."
        )
    if len(password) > PASSWORD_MAX_CHARS:
        return "The password can have at most %d characters (it has %d)." % (
            PASSWORD_MAX_CHARS,
            len(password),
        )
    return None


BOX_URL_MAX_CHARS = 200
_BOX_URL_EXAMPLE = "like https://recorder.example.com/ or http://192.168.1.20/"


def check_box_url(url, field="mail.box_url"):
    """``url``, the address people use to reach the box's pages, or :class:`ConfigError`
    naming ``field`` and what is wrong: an http or https address of a host, with no user
    name or password in it, no spaces, at most :data:`BOX_URL_MAX_CHARS` characters."""
    shown = str(url)[:80]
    if len(url) > BOX_URL_MAX_CHARS:
        raise ConfigError(
            "The box's address can have at most %d characters (it has %d)." % (BOX_URL_MAX_CHARS, len(url)),
            field=field,
        )
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigError(
            '"%s" is not a web address %s: it has a space or a character a link cannot hold'
            % (shown, _BOX_URL_EXAMPLE),
            field=field,
        )
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (a port out of range raises here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            '"%s" is not a web address %s (starting http:// or https://)' % (shown, _BOX_URL_EXAMPLE),
            field=field,
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            '"%s" holds a user name or password: every alarm recipient would read it. Write the '
            "address without it, %s" % (shown, _BOX_URL_EXAMPLE),
            field=field,
        )
    return url


def check_address(address, field):
    """``address`` stripped, or :class:`ConfigError` naming ``field``."""
    text = (address or "").strip()
    if not text:  # '"" is not an e-mail address' told no one what to do
        raise ConfigError("An e-mail address is needed here, like name@example.com.", field=field)
    if not _ADDRESS.match(text):
        shown = str(address)[:80]
        raise ConfigError('"%s" is not an e-mail address like name@example.com' % shown, field=field)
    return text


def check_sender(sender, field):
    """``sender`` stripped: an address alone, or with a display name as RFC 5322 writes one
    ("Harbour Box <recorder@harbour.example>"), which the mails' From shows; the server is
    given the address alone (smtplib takes it from From). Else :class:`ConfigError` naming
    ``field`` and what is wrong."""
    text = (sender or "").strip()
    if "<" not in text and ">" not in text:
        return check_address(text, field)
    shown = str(sender)[:80]
    parsed = email.utils.getaddresses([text])
    inside = text[text.rfind("<") + 1 : -1] if text.endswith(">") else None
    if (
        any(unicodedata.category(c) == "Cc" for c in text)
        or len(parsed) != 1
        or not parsed[0][0]
        or parsed[0][1] != inside
        or not _ADDRESS.match(parsed[0][1])
    ):
        raise ConfigError(
            '"%s" is not a sender address: write the address alone, like recorder@example.com, '
            "or with a name before it, like Harbour Box <recorder@example.com>" % shown,
            field=field,
        )
    return text


def _address_of(sender):
    """The address of ``sender`` (as :func:`check_sender` takes it): itself for an address
    alone, what is between the angle brackets of one with a display name."""
    if isinstance(sender, str) and sender.endswith(">") and "<" in sender:
        return sender[sender.rfind("<") + 1 : -1]
    return sender


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A report mailed ``every`` day / week / month to ``to``, as ``fmt`` (pdf or csv)."""

    every: str
    to: tuple
    fmt: str = "pdf"

    @property
    def id(self):
        return "%s-%s" % (self.every, self.fmt)


@dataclasses.dataclass(frozen=True)
class MailSettings:
    """``host``/``port``/``security`` of the submission server; ``username`` and the
    sealed ``password`` (see :class:`firmware.secretbox.SecretBox`) for login;
    ``sender``; ``alarm_to`` the alarm recipients; ``alarm_accounts`` ``((address,
    account), ...)``: the recipients tied to a web account, who get the alarms of the
    lines that account sees and the whole box's (an address tied to no account gets
    every alarm, and a line's alarm that no recipient's account sees goes to every
    recipient: :func:`firmware.mail.alarms.recipients_for`); ``rate_window_s`` at most one
    mail per alarm (kind and line) in this long; ``schedules`` of reports;
    ``syslog`` "host" or "host:port" (UDP, port 514 by default) that also gets
    every alarm raised, or "" for none; ``box_url`` the address people use to reach
    the box's pages (http or https), which alarm mails link to, or "" (they give none:
    the recorder that writes them does not know it)."""

    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    sender: str = ""
    alarm_to: tuple = ()
    alarm_accounts: tuple = ()
    rate_window_s: int = 900
    schedules: tuple = ()
    syslog: str = ""
    box_url: str = ""

    @property
    def recipients(self):
        """Every address the E-mail page lists now (the alarm recipients and each report's),
        in lower case: a mail still waiting goes to none other (:meth:`MailQueue.flush`)."""
        listed = list(self.alarm_to) + [a for s in self.schedules for a in s.to]
        return frozenset(a.lower() for a in listed)

    @property
    def configured(self):
        return bool(self.host and self.sender)

    @property
    def missing(self):
        """What is not set that sending needs, in words: ("mail server", "sender address")
        or part of it; () once :attr:`configured`."""
        return tuple(
            what for what, value in (("mail server", self.host), ("sender address", self.sender)) if not value
        )

    def login_in_clear(self):
        """Whether logging in would send the user name and password over the network in
        clear: security "none" with a user name (the sender logs in whenever one is set)."""
        return self.security == "none" and bool(self.username)

    def check_login(self):
        """Raise :class:`ConfigError` (field ``mail.security``) when :meth:`login_in_clear`.

        Not part of :meth:`check`: a ``mail.json`` saved so before this was refused still
        loads (the E-mail page says so) and its sender refuses to log in (firmware/mail/smtp.py).
        """
        if self.login_in_clear():
            raise ConfigError(LOGIN_IN_CLEAR, field="mail.security")
        return self

    def check(self):
        """Raise :class:`ConfigError` naming the first bad field."""
        if self.host and not _is_host(self.host):
            name, _, port = self.host.rpartition(":")
            if name and _is_host(name) and port.isascii() and port.isdigit():
                # As a mail provider's help writes it, "smtp.example.com:587".
                raise ConfigError(
                    "%r is not a host name or address: write the server without its port, and "
                    "the port (%s) in the Port field" % (self.host, port),
                    field="mail.host",
                )
            raise ConfigError("%r is not a host name or address" % self.host, field="mail.host")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ConfigError("the port is a number from 1 to 65535", field="mail.port")
        if self.security not in SECURITY:
            raise ConfigError("security is one of %s" % ", ".join(SECURITY), field="mail.security")
        if len(self.username) > 256 or any(unicodedata.category(c) == "Cc" for c in self.username):
            raise ConfigError(
                "the user name is at most 256 characters, with no control characters (no line breaks)",
                field="mail.username",
            )
        if self.sender:
            check_sender(self.sender, "mail.sender")
        for i, a in enumerate(self.alarm_to):
            check_address(a, "mail.alarm_to[%d]" % i)
        if len(set(self.alarm_to)) != len(self.alarm_to):
            twice = next(a for a in self.alarm_to if self.alarm_to.count(a) > 1)
            raise ConfigError("%s is listed twice among the alarm recipients" % twice, field="mail.alarm_to")
        for i, pair in enumerate(self.alarm_accounts):
            field = "mail.alarm_accounts[%d]" % i
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise ConfigError("a recipient's account is an address and an account name", field=field)
            address, account = pair
            if address not in self.alarm_to:
                raise ConfigError(
                    "%s is tied to an account but is not an alarm recipient" % address, field=field
                )
            if not 0 < len(account) <= 64 or any(unicodedata.category(c) == "Cc" for c in account):
                raise ConfigError(
                    "an account name is 1 to 64 characters, with no control characters", field=field
                )
        if len({a for a, _ in self.alarm_accounts}) != len(self.alarm_accounts):
            raise ConfigError("a recipient is tied to one account at most", field="mail.alarm_accounts")
        if not isinstance(self.rate_window_s, int) or not 60 <= self.rate_window_s <= 86400:
            raise ConfigError("the rate window is 60 to 86400 seconds", field="mail.rate_window_s")
        if self.syslog:
            host, _, port = self.syslog.rpartition(":") if ":" in self.syslog else (self.syslog, "", "514")
            # ASCII digits only: "²" passes isdigit() but not int().
            digits = port.isascii() and port.isdigit()
            if not _is_host(host) or not digits or not 1 <= int(port) <= 65535:
                raise ConfigError("%r is not a host or host:port" % self.syslog, field="mail.syslog")
        if not isinstance(self.box_url, str):
            raise ConfigError("the box's address is text", field="mail.box_url")
        if self.box_url:
            check_box_url(self.box_url)
        for i, s in enumerate(self.schedules):
            if s.every not in EVERY:
                raise ConfigError(
                    "every is one of %s" % ", ".join(EVERY), field="mail.schedules[%d].every" % i
                )
            if s.fmt not in ("pdf", "csv"):
                raise ConfigError("the format is pdf or csv", field="mail.schedules[%d].fmt" % i)
            if not s.to:
                raise ConfigError("a schedule needs a recipient", field="mail.schedules[%d].to" % i)
            for j, a in enumerate(s.to):
                check_address(a, "mail.schedules[%d].to[%d]" % (i, j))
        return self

    def to_dict(self):
        """Every setting (the audit entry of a change names them all); ``alarm_accounts``
        ``{address: account}``, left out when none is tied. :class:`MailSettingsStore`
        keeps it in a file of its own, not in ``mail.json``."""
        d = dataclasses.asdict(self)
        d["alarm_to"] = list(self.alarm_to)
        d["alarm_accounts"] = dict(self.alarm_accounts)
        if not self.alarm_accounts:
            del d["alarm_accounts"]
        if not self.box_url:
            del d["box_url"]
        d["schedules"] = [{"every": s.every, "to": list(s.to), "fmt": s.fmt} for s in self.schedules]
        return d

    @classmethod
    def from_dict(cls, d):
        try:
            d = dict(d)
            # Once each: a release before took an address twice and wrote it so; refused
            # here, that mail.json stopped every alarm mail (a new list is still refused).
            d["alarm_to"] = tuple(dict.fromkeys(d.get("alarm_to", ())))
            d["alarm_accounts"] = tuple(dict(d.get("alarm_accounts", {})).items())
            d["schedules"] = tuple(
                Schedule(s["every"], tuple(s["to"]), s.get("fmt", "pdf")) for s in d.get("schedules", ())
            )
            return cls(**d).check()
        except (TypeError, KeyError, ValueError) as exc:
            raise ConfigError("mail.json is not valid: %s" % exc, field="mail") from None


# The alarm recipients' accounts (MailSettings.alarm_accounts, ``{address: account}``),
# beside mail.json and not in it: a release before recipients had accounts refuses a
# mail.json with a key it does not know (MailSettings(**d)), and would then mail no alarm
# at all after an update rolled back before it was marked good. That release never
# reads this file, and mails every alarm to every recipient, as it always did.
ACCOUNTS_FILE = "mail-accounts.json"
_TIES_FIELD = "mail.alarm_accounts"
# The box's address (MailSettings.box_url), beside mail.json for the same reason:
# ``{"box_url": "https://..."}``, removed when there is none.
BOX_URL_FILE = "mail-box-url.json"
# A sender with a display name ("Harbour Box <recorder@harbour.example>"), for the same
# reason: the release before takes only an address as the sender and refuses mail.json
# whole otherwise. mail.json keeps the address alone, which that release takes, and this
# file the sender as written, ``{"sender": "Harbour Box <recorder@harbour.example>"}``,
# which counts while mail.json's sender is its address (removed for an address alone).
SENDER_FILE = "mail-sender.json"


class MailSettingsStore:
    """Read and write ``DATA_DIR/mail.json`` and the recipients' accounts beside it
    (:data:`ACCOUNTS_FILE`); the password goes through ``secrets``."""

    def __init__(self, data_dir, secrets):
        self.path = os.path.join(os.fspath(data_dir), "mail.json")
        self.accounts_path = os.path.join(os.fspath(data_dir), ACCOUNTS_FILE)
        self.box_url_path = os.path.join(os.fspath(data_dir), BOX_URL_FILE)
        self.sender_path = os.path.join(os.fspath(data_dir), SENDER_FILE)
        self.secrets = secrets

    def _read(self):
        """``(mail.json's dict or None, the accounts file's dict or None)``, as stored."""
        try:
            with open(self.path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            d = None
        except ValueError as exc:
            raise ConfigError("mail.json is not valid JSON: %s" % exc, field="mail") from None
        try:
            with open(self.accounts_path, encoding="utf-8") as f:
                ties = json.load(f)
        except FileNotFoundError:
            ties = None
        except ValueError as exc:
            raise ConfigError(
                "%s is not valid JSON: %s" % (ACCOUNTS_FILE, exc), field="mail.alarm_accounts"
            ) from None
        if ties is not None and not isinstance(ties, dict):
            raise ConfigError(
                "%s is not an object {address: account}" % ACCOUNTS_FILE, field="mail.alarm_accounts"
            )
        return d, ties

    def get(self):
        d, ties = self._read()
        if d is None:
            return MailSettings()
        if not isinstance(d, dict):
            raise ConfigError("mail.json is not valid: not an object", field="mail")
        if ties is not None and "alarm_accounts" not in d:
            # The file's ties of addresses still among the recipients (a release before
            # may have saved mail.json since, without one of them). Ties in mail.json, as
            # a development build of this release kept them, were saved after the file (this release
            # never writes them there): those count until :meth:`migrate` moves them.
            d = dict(d)
            recipients = set(d.get("alarm_to", ()) or ())
            d["alarm_accounts"] = {a: n for a, n in ties.items() if a in recipients}
        box_url = self._box_url()
        if box_url and "box_url" not in d:
            d = dict(d, box_url=box_url)
        named = self._named_sender()
        if named and d.get("sender") == _address_of(named):
            # (Another address in mail.json: a release before saved it since, or a cut came
            # between the two files. The name was that other address's.)
            d = dict(d, sender=named)
        return MailSettings.from_dict(d)

    def _named_sender(self):
        """The sender with its display name as :data:`SENDER_FILE` keeps it, or ""."""
        return _kept_text(self.sender_path, SENDER_FILE, "sender")

    def _box_url(self):
        """The box's address as :data:`BOX_URL_FILE` keeps it, or ""."""
        return _kept_text(self.box_url_path, BOX_URL_FILE, "box_url")

    def save(self, settings, new_password=None):
        """Validate and store ``settings``; ``new_password`` (text) replaces the sealed one.

        The recipients' accounts first, then ``mail.json``: a cut between leaves the
        settings as they were but for ties, which count only for the addresses that
        ``mail.json`` names."""
        if new_password:
            problem = password_problem(new_password)
            if problem:
                raise ConfigError(problem, field=PASSWORD_FIELD)
            settings = dataclasses.replace(settings, password=self.secrets.seal(PASSWORD_FIELD, new_password))
        settings.check().check_login()
        with self._lock():
            self._write(settings.to_dict(), box_url=settings.box_url)
        return settings

    def _lock(self, required=False):
        # The web UI saves the settings while its mail thread may re-seal the password.
        return file_lock(self.path + ".lock", "mail.json", required=required)

    def _write(self, d, box_url=None):
        """Write ``d`` (as :meth:`MailSettings.to_dict` gives it) to ``mail.json`` and the
        files beside it; ``box_url``: the box's address to keep ("": none), or None to leave
        :data:`BOX_URL_FILE` as it is (and :data:`SENDER_FILE`, unless ``d``'s sender has a
        display name)."""
        d = dict(d)
        ties = d.pop("alarm_accounts", {})
        d.pop("box_url", None)
        sender = d.get("sender") or ""
        d["sender"] = _address_of(sender)
        # The box's data mode: the web UI saves them, the recorder reads them to mail alarms
        # (the password in mail.json is sealed, firmware.secretbox).
        atomic_write(self.accounts_path, (json.dumps(ties, indent=2) + "\n").encode())
        # Before mail.json, as the ties: a cut between leaves the settings as they were but
        # for the box's address.
        if box_url:
            atomic_write(self.box_url_path, (json.dumps({"box_url": box_url}, indent=2) + "\n").encode())
        elif box_url is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.box_url_path)
        if sender != d["sender"]:
            atomic_write(self.sender_path, (json.dumps({"sender": sender}, indent=2) + "\n").encode())
        elif box_url is not None:  # a save: its sender is an address alone
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.sender_path)
        atomic_write(self.path, (json.dumps(d, indent=2) + "\n").encode())

    def migrate(self):
        """Move recipients' accounts that a development build of this release kept in ``mail.json``
        (``alarm_accounts``) to :data:`ACCOUNTS_FILE`, and a sender's display name kept there
        to :data:`SENDER_FILE` (its address stays), so that a release before reads
        ``mail.json`` again; True when it did. Run by the web UI, the process that writes
        these files, at its start (the recorder only reads them: :meth:`get` takes both)."""
        with self._lock():
            d, ties = self._read()
            if not isinstance(d, dict):
                return False
            # A sender with a display name, as this release kept it there before SENDER_FILE.
            named = isinstance(d.get("sender"), str) and d["sender"] != _address_of(d["sender"])
            if "alarm_accounts" not in d and not named:
                return False
            if "alarm_accounts" not in d:
                # Rewritten as get() takes them: those of addresses still recipients.
                recipients = set(d.get("alarm_to", ()) or ())
                d = dict(d, alarm_accounts={a: n for a, n in (ties or {}).items() if a in recipients})
            MailSettings.from_dict(d)  # (refused as get() refuses it: nothing moved)
            self._write(d)
        return True

    def reseal(self):
        """Seal the stored password again with the storage data key, when it was sealed
        without (before this release, or before the recorder had handed the key over) and
        this process has the key now (:meth:`firmware.secretbox.SecretBox.reseal`); True
        when it did. Only ``mail.json`` is rewritten (atomically: a cut leaves the old
        value, which opens as before, and the next call does it again). A password that
        does not open is left for :meth:`password` to say so.

        :raises OSError: the lock file cannot be opened (nothing is rewritten without it:
            the file as read here would go back over a save made meanwhile)
        """
        with self._lock(required=True):
            d, _ties = self._read()
            sealed = d.get("password") if isinstance(d, dict) else None
            if not isinstance(sealed, str) or not sealed:
                return False
            try:
                resealed = self.secrets.reseal(PASSWORD_FIELD, sealed)
            except TamperError:
                return False
            if resealed is None:
                return False
            atomic_write(self.path, (json.dumps(dict(d, password=resealed), indent=2) + "\n").encode())
        log.info("the e-mail password in %s is now sealed with the storage key too", self.path)
        return True

    def password_weaker(self, settings):
        """True when ``settings``' password is sealed without the storage data key on a box
        whose HAT has the vault (:meth:`firmware.secretbox.SecretBox.weaker`): saved before
        the recorder had started since boot, or while an update was on trial, and not yet
        sealed again by :meth:`reseal`."""
        return bool(settings.password) and self.secrets.weaker(settings.password)

    def password(self, settings):
        """The clear password (for login), or "" when none is set."""
        return self.secrets.open(PASSWORD_FIELD, settings.password) if settings.password else ""


def _kept_text(path, name, key):
    """The text ``key`` of the small JSON file at ``path`` (:data:`SENDER_FILE`,
    :data:`BOX_URL_FILE`, kept beside ``mail.json``), or "" without the file.

    :raises ConfigError: the file is not JSON, or not an object whose ``key`` is text
        (field ``mail.KEY``)"""
    try:
        with open(path, encoding="utf-8") as f:
            kept = json.load(f)
    except FileNotFoundError:
        return ""
    except ValueError as exc:
        raise ConfigError("%s is not valid JSON: %s" % (name, exc), field="mail." + key) from None
    if not isinstance(kept, dict) or not isinstance(kept.get(key, ""), str):
        raise ConfigError('%s is not an object {"%s": ...}' % (name, key), field="mail." + key)
    return kept.get(key, "")
