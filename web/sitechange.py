"""Site settings that reach the box's configuration even when a cut comes between.

The setup wizard and the settings page save the site settings in web.db, then
put what they say into ``config.json`` (a line marked not to be recorded gets
the rule ``never``; the wizard also turns the consent notice on), then audit
the person's change. A power cut after web.db's commit used to leave the rest
undone for good: the settings page said a private line was not recorded while
the box went on recording it, a box set up with the wizard recorded without
telling callers, and the change was never audited.

So the settings' transaction also notes the steps that follow (``site_change``
in the ``site`` table), and the note goes once they are done. A note found at
the web UI's start, or by its periodic sweep, is a change cut short: the steps
are taken again from the settings as saved (each is idempotent: putting the
settings into the configuration changes only what differs, the consent
default only a notice still off) and the entries owed are written once.
"""

import logging

from . import intent

log = logging.getLogger(__name__)
KEY = "site_change"


def begin(web, conn, kind, actor, entries):
    """Note, inside the transaction ``conn`` that saves the settings, the steps that
    follow: ``kind`` "setup" or "settings"; ``entries`` ``[(action, target, details)]``
    by ``actor``. Returns the note (for :func:`finish`)."""
    note = {"id": intent.new_id(), "kind": kind, "actor": actor, "entries": [list(e) for e in entries]}
    intent.put(web, conn, KEY, note)
    return note


def configure_before_keys(web, settings):
    """The wizard's ``settings`` into the configuration (the private lines, the consent
    notice) before it makes the recording keys, for :func:`finish` to find done: a box
    records as soon as it has keys, and a try cut after they were made (web.db refused,
    the power) left every line recorded, its private ones too, with no notice, until
    another try. Nothing is undone if the try then fails: no line is recorded without
    keys, and the next try puts its own choices in."""
    services = web.services
    if services.apply_settings is not None:
        services.apply_settings(settings)
    if services.setup_defaults is not None:
        services.setup_defaults()


def finish(web, note):
    """The steps after the settings' commit: the configuration, the consent default
    (setup), the entries; then the note goes."""
    services = web.services
    if services.apply_settings is not None:
        settings = web.site.settings()
        if settings is not None:
            services.apply_settings(settings)
    if note["kind"] == "setup" and services.setup_defaults is not None:
        services.setup_defaults()
    intent.audit_once(services, note["actor"], note["entries"], note["id"])
    intent.drop(web.db, KEY)


def settle(web):
    """Finish a change a cut left (module doc). Returns whether there was one. An error
    (a configuration sealed with a key this process has not got yet) goes up, and the
    note stays for the next try (:meth:`web.Web.settle`)."""
    note = intent.get(web, KEY)
    if note is None:
        return False
    finish(web, note)
    log.warning("the site settings' change cut short by a restart was finished")
    return True
