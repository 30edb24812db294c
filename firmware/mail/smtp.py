"""One message submitted to the SMTP server: STARTTLS or implicit TLS, then login."""

import smtplib
import ssl

from ..errors import LinekeeperError
from .settings import LOGIN_IN_CLEAR


class MailError(LinekeeperError, OSError):
    """A message could not be submitted; the text says what the server or network said."""


class MailServerError(MailError):
    """No message can be submitted now, whichever it is: the server cannot be reached, or it
    refuses the connection's TLS, the login or the sender. (A :class:`MailError` alone is
    this message's refusal: its recipients or its content.)"""


class SmtpSender:
    """Submit messages with ``settings`` (:class:`~firmware.mail.settings.MailSettings`).

    :param password: the clear login password ("" for none)
    :param ssl_context: for TLS; default: the system's CAs with host name checks
    :param timeout_s: connect and each command
    """

    def __init__(self, settings, password="", ssl_context=None, timeout_s=15.0):
        self.settings = settings
        self.password = password
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.timeout_s = timeout_s

    def _connect(self):
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout_s, context=self.ssl_context)
        smtp = smtplib.SMTP(s.host, s.port, timeout=self.timeout_s)
        if s.security == "starttls":
            smtp.starttls(context=self.ssl_context)
        return smtp

    def send(self, message):
        """Submit ``message`` (an :class:`email.message.EmailMessage`) to its recipients.
        Returns the recipients the server refused while it took the others,
        ``{address: its reason}`` (empty when it took them all).

        :raises MailServerError: the server is unreachable or refuses the login,
            the sender or TLS, with its reason
        :raises MailError: it refuses this message (every recipient, its content)
        """
        s = self.settings
        where = "%s:%d" % (s.host, s.port)
        if s.login_in_clear():
            # A mail.json saved before such settings were refused: no password in clear.
            raise MailServerError("%s: not logged in, since %s" % (where, LOGIN_IN_CLEAR))
        try:
            with self._connect() as smtp:
                if s.username:
                    smtp.login(s.username, self.password)
                refused = smtp.send_message(message)
                return {addr: _said_pair(code, text) for addr, (code, text) in refused.items()}
        except smtplib.SMTPAuthenticationError as exc:
            raise MailServerError(
                "%s refused the login for %r: %s" % (where, s.username, _said(exc))
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError(
                "%s refused the recipients %s" % (where, ", ".join(sorted(exc.recipients)))
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise MailServerError("%s refused the sender %s: %s" % (where, exc.sender, _said(exc))) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise MailServerError("%s: %s (choose another security setting)" % (where, exc)) from None
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            raise MailServerError("%s refused the connection: %s" % (where, _said(exc))) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the service closing: not this message's fault
                raise MailServerError("%s is not taking mail now: %s" % (where, _said(exc))) from None
            raise MailError("%s refused the message: %s" % (where, _said(exc))) from None
        except ssl.SSLError as exc:
            raise MailServerError("TLS with %s failed: %s" % (where, exc.reason or exc)) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise MailServerError(
                "cannot reach the mail server %s: %s" % (where, getattr(exc, "strerror", None) or exc)
            ) from None


def _said_pair(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "%s %s" % (code, text)


def _said(exc):
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "%s %s" % (exc.smtp_code, text)
