"""What the maker publishes about the product, for the UK PSTI regime.

The Product Security and Telecommunications Infrastructure (Security
Requirements for Relevant Connectable Products) Regulations 2023 ask a
connectable product's maker to publish a point of contact for reporting
security issues and the defined support period (how long it gets security
updates, with an end date). The box shows both on its ``/security`` page and
in ``/.well-known/security.txt`` (RFC 9116), and docs/security.md says where
they come from.

They are set when the box's image is built: the defaults below, replaced by
the environment variables ``LINEKEEPER_SECURITY_CONTACT`` (a ``mailto:`` or
``https:`` URI) and ``LINEKEEPER_SUPPORT_ENDS`` (``YYYY-MM-DD``) that the image
sets for the service. A bad value stops the box at start with a message
(:class:`firmware.errors.ConfigError`), so a label cannot promise what the
box does not say.
"""

import dataclasses
import datetime
import re

from .errors import ConfigError

DEFAULT_CONTACT = "mailto:security@linekeeper.example"
DEFAULT_SUPPORT_ENDS = datetime.date(2031, 12, 31)
ACKNOWLEDGE_DAYS = 5  # working days to acknowledge a report
_URI = re.compile(r"^(mailto:[^\s@<>\"]+@[^\s@<>\"]+|https://[^\s<>\"]+)$")


@dataclasses.dataclass(frozen=True)
class ProductInfo:
    """The vulnerability contact (a URI) and the last day of security updates."""

    security_contact: str = DEFAULT_CONTACT
    support_ends: datetime.date = DEFAULT_SUPPORT_ENDS

    def __post_init__(self):
        if not isinstance(self.security_contact, str) or not _URI.match(self.security_contact):
            raise ConfigError(
                "the security contact must be a mailto: or https: URI, not %r" % (self.security_contact,)
            )
        if not isinstance(self.support_ends, datetime.date):
            raise ConfigError("the end of the support period must be a date")

    @property
    def contact_text(self):
        """The contact as people read it (the address of a ``mailto:``)."""
        return (
            self.security_contact[len("mailto:") :]
            if self.security_contact.startswith("mailto:")
            else self.security_contact
        )

    def security_txt(self, policy_url, today):
        """The text of ``/.well-known/security.txt`` (RFC 9116) as of the date ``today``.

        ``Expires`` is a year ahead (RFC 9116 §2.5.5 advises less than a year),
        and never after the support period ends: a contact nobody answers for
        must not look current.
        """
        expires = min(today + datetime.timedelta(days=364), self.support_ends)
        return "Contact: %s\nExpires: %sT23:59:59Z\nPreferred-Languages: en\nPolicy: %s\n" % (
            self.security_contact,
            expires.isoformat(),
            policy_url,
        )

    @classmethod
    def from_environ(cls, environ):
        """The build's values from ``environ`` (a mapping), else the defaults."""
        contact = environ.get("LINEKEEPER_SECURITY_CONTACT") or DEFAULT_CONTACT
        ends = environ.get("LINEKEEPER_SUPPORT_ENDS")
        if ends:
            try:
                ends = datetime.date.fromisoformat(ends)
            except ValueError:
                raise ConfigError(
                    "LINEKEEPER_SUPPORT_ENDS must be a date as YYYY-MM-DD, not %r" % ends
                ) from None
        return cls(contact, ends or DEFAULT_SUPPORT_ENDS)
