"""E-mail from the box: alarms and scheduled reports, through an on-disk queue.

:mod:`.settings` (the SMTP server, sender, recipients; the password sealed by
:class:`firmware.secretbox.SecretBox`), :mod:`.smtp` (one submission with
STARTTLS or implicit TLS and login), :mod:`.queue` (messages on disk, retried
with backoff until delivered), :mod:`.alarms` (one mail per alarm per rate
window) and :mod:`.schedule` (daily / weekly / monthly reports, each period
once). See docs/reports.md.
"""
