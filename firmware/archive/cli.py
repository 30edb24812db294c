"""``linekeeper archive ...``: the organisation key, the box's secret, the central index and search."""

import argparse
import contextlib
import datetime
import functools
import json
import os
import sys
import time

from ..argtypes import DATA_DIR_HELP, port, searched_number
from ..errors import LinekeeperError
from ..localtime import iso_to_us
from ..storage.audit import AuditLog


def _stopped(words):
    """The :class:`~firmware.cli.Stopped` of an archive command stopped by Ctrl-C, saying
    ``words``: what was done and what was not."""
    from ..cli import Stopped

    return Stopped(words)


def _stops_before(command, fn):
    """``fn(args)``, saying, when Ctrl-C stops it before the change it audits is begun (its
    own stops say what they left), that the account ``args.name`` is as it was."""

    @functools.wraps(fn)
    def run(args):
        from ..cli import Stopped

        try:
            return fn(args)
        except Stopped:
            raise
        except KeyboardInterrupt as exc:
            raise _stopped(
                "archive %s stopped before it changed %s's account: it is as it was" % (command, args.name)
            ) from exc

    return run


def _endpoint(text):
    """An S3 store's address for argparse, checked as the box's archive settings check it."""
    from .settings import endpoint_problem

    problem = endpoint_problem(text)
    if problem:
        raise argparse.ArgumentTypeError("%s, not %r" % (problem, text))
    return text


def _store_arguments(q):
    """The S3 store's options, the same on every command that reads the bucket."""
    q.add_argument("--endpoint", required=True, type=_endpoint, help="the S3 store, https://...")
    q.add_argument("--bucket", required=True, help="the S3 bucket the boxes archive to")
    q.add_argument("--region", default="us-east-1", help="the S3 store's region (default: us-east-1)")
    q.add_argument(
        "--no-verify-tls",
        action="store_true",
        help="do not check the S3 store's TLS certificate (test stores only)",
    )


def add_parser(sub):
    """Add the ``archive`` command and its subcommands to ``sub`` (argparse subparsers)."""
    p = sub.add_parser("archive", help="the archive across boxes (docs/archive.md)")
    asub = p.add_subparsers(dest="archive_command", required=True)

    q = asub.add_parser(
        "init-org",
        help="create the organisation archive key (on the viewer, "
        "never on a box) and print its public key for the boxes' config",
    )
    q.add_argument("--org-dir", required=True, help="where the organisation key slots live")
    q.add_argument("--password-file", required=True, help="file whose first line is --user's password")
    q.add_argument("--user", default="admin", help="the first key slot's user name (default: admin)")
    q.set_defaults(func=cmd_init_org)

    q = asub.add_parser(
        "set-secret",
        help="store the box's S3 secret access key (sealed; the data directory's, for the web UI)",
    )
    q.add_argument("--data-dir", required=True, help=DATA_DIR_HELP)
    q.add_argument("--secret-file", required=True, help="file whose first line is the secret")
    q.set_defaults(func=cmd_set_secret)

    q = asub.add_parser("index", help="rebuild the central index from the bucket alone")
    _store_arguments(q)
    q.add_argument("--index", required=True, help="the index file (SQLite) to write")
    q.add_argument(
        "--org-dir",
        help="the organisation key slots: open sealed records (numbers searchable); needs --password-file",
    )
    q.add_argument("--password-file", help="with --org-dir: file whose first line is --user's password")
    q.add_argument(
        "--user",
        default="admin",
        help="with --org-dir: whose organisation key slot opens it (default: admin)",
    )
    q.add_argument(
        "--viewer-dir",
        help="the central viewer's directory, with --org-dir: a disabled (or 90 days unused) "
        "viewer account's slot opens nothing (default: the folder of --index, when it holds "
        "the viewer's users.json)",
    )
    q.set_defaults(func=cmd_index)

    q = asub.add_parser(
        "add-user",
        help="add or replace an account of the central viewer (a supervisor also gets a "
        "slot of the organisation key)",
    )
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--org-dir", required=True, help="where the organisation key slots live")
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.add_argument("--roles", required=True, help="comma-separated: supervisor, auditor, installer")
    q.add_argument(
        "--sites",
        default="all",
        help="comma-separated box ids whose calls the account sees, plays, exports and "
        "reports on, or 'all' (the default)",
    )
    q.add_argument("--password-file", required=True, help="file whose first line is the account's password")
    q.add_argument(
        "--grantor",
        help="a supervisor whose slot opens the key (for a new supervisor's slot, or one made anew "
        "for a forgotten password)",
    )
    q.add_argument("--grantor-password-file", help="file whose first line is --grantor's password")
    q.set_defaults(func=_stops_before("add-user", cmd_add_user))

    q = asub.add_parser("edit-user", help="change the sites a central viewer account is granted")
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.add_argument("--sites", required=True, help="comma-separated box ids, or 'all'")
    q.set_defaults(func=_stops_before("edit-user", cmd_edit_user))

    q = asub.add_parser(
        "unlock-user",
        help="end the lockout of a central viewer account after 10 failed logins (once you know "
        "it is the person); audited",
    )
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.set_defaults(func=_stops_before("unlock-user", cmd_unlock_user))

    q = asub.add_parser(
        "enable-user",
        help="enable a central viewer account disabled (unused for 90 days, or by hand); audited",
    )
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.set_defaults(func=_stops_before("enable-user", cmd_enable_user))

    q = asub.add_parser(
        "disable-user",
        help="disable a central viewer account (not the last enabled installer's); audited",
    )
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.set_defaults(func=_stops_before("disable-user", cmd_disable_user))

    q = asub.add_parser(
        "remove-slot",
        help="remove a slot of the organisation key (a leaver's, or one with no supervisor's "
        "enabled viewer account); audited",
    )
    q.add_argument(
        "--viewer-dir", required=True, help="the central viewer's directory: its users, audit trail and index"
    )
    q.add_argument("--org-dir", required=True, help="where the organisation key slots live")
    q.add_argument("--name", required=True, help="the viewer account's user name")
    q.set_defaults(func=_stops_before("remove-slot", cmd_remove_slot))

    q = asub.add_parser("serve", help="the central viewer: read-only web UI over the bucket")
    q.add_argument("--viewer-dir", required=True, help="its users, audit trail and index")
    q.add_argument("--org-dir", required=True, help="where the organisation key slots live")
    _store_arguments(q)
    q.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    q.add_argument("--port", type=port, default=8444, help="port to serve on (default: 8444)")
    q.add_argument("--cert", help="TLS certificate (PEM); without it only 127.0.0.1 is served")
    q.add_argument("--key", help="its private key (PEM)")
    q.set_defaults(func=cmd_serve)

    q = asub.add_parser(
        "audit-head",
        help="the latest audit head a box sent to the archive, as SEQ:HASH for `linekeeper verify --head`",
    )
    _store_arguments(q)
    q.add_argument("--box", required=True, help="the box id (its prefix in the bucket)")
    q.set_defaults(func=cmd_audit_head)

    q = asub.add_parser("search", help="search the central index")
    q.add_argument("--index", required=True, help="the index file (SQLite) `linekeeper archive index` wrote")
    q.add_argument("--number", type=searched_number, help="the number, or its last digits (digits 0-9)")
    q.add_argument("--box", type=_search_box, help="one box's calls only (its box_id)")
    q.add_argument(
        "--from",
        dest="first_day",
        type=_search_day,
        metavar="YYYY-MM-DD",
        help="calls started from this day, as each call's site counts its days (in its time "
        "zone; UTC for a site whose archive does not say its zone), as the viewer's Calls page",
    )
    q.add_argument(
        "--to",
        dest="last_day",
        type=_search_day,
        metavar="YYYY-MM-DD",
        help="to this day (included), as --from",
    )
    q.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per call (started_local, ended_local: ISO 8601 in local_zone, the site's)",
    )
    q.set_defaults(func=cmd_search)


def _search_box(text):
    """A box of ``archive search --box`` for argparse: a box id, as the viewer's Site takes
    it (web.archive.views._site_or_403); other text matched no call, and said nothing."""
    from .settings import BOX_ID

    if not BOX_ID.fullmatch(text):
        said = "%r is not a box id (lower-case letters, digits and hyphens, up to 63)" % text[:20]
        raise argparse.ArgumentTypeError(said)
    return text


def _search_day(text):
    """A day of ``archive search --from``/``--to`` for argparse: YYYY-MM-DD only, as the
    viewer's date fields take it (web.archive.views._day)."""
    from .viewer import ISO_DAY

    try:
        if not ISO_DAY.fullmatch(text):
            raise ValueError
        return datetime.date.fromisoformat(text)
    except ValueError:
        said = "%r is not a date like 2026-03-02 (YYYY-MM-DD)" % text[:20]
        raise argparse.ArgumentTypeError(said) from None


def cmd_init_org(args):
    import base64

    from firmware.storage.keystore import KeyStore

    from ..cli import _read_password

    password = _read_password(args.password_file)
    store = KeyStore(args.org_dir)

    def show(recovery):
        print("Recovery key of the organisation archive key (shown once; keep it safe):")
        print("    " + recovery)

    try:
        # initialise makes the folder (0700), once the user name and password pass: a
        # refused one leaves nothing behind.
        store.initialise(args.user, password, show=show)
    except KeyboardInterrupt as exc:
        if not KeyStore(args.org_dir).is_initialised:
            raise _stopped(
                "archive init-org stopped before the organisation key was made: %s has none (a "
                "recovery key shown above opens nothing); run it again" % args.org_dir,
            ) from exc
        raise _stopped(
            "archive init-org stopped once the organisation key was made in %s, with its recovery "
            "key shown above; its org_public_key, for the boxes' config: %s"
            % (args.org_dir, base64.b64encode(KeyStore(args.org_dir).public_key()).decode()),
        ) from exc
    print("org_public_key: %s" % base64.b64encode(store.public_key()).decode())
    return 0


def _secret_run_dir():
    """``(the run directory where set-secret looks for the recorder's copy of the storage
    key (:func:`firmware.signing.run_dir`), why it has none there, in words, or None)``."""
    from .. import signing
    from ..storage.fieldseal import RUN_KEY_FILE

    found = signing.run_dir()
    if found is not None and os.path.exists(os.path.join(found, RUN_KEY_FILE)):
        return found, None
    return found, (
        "%s: start the recorder (systemctl start linekeeper-recorder), or set LINEKEEPER_RUN_DIR "
        "to the recorder's run directory, and run this again" % signing.run_dir_words(found)
    )


def cmd_set_secret(args):
    from ..cli import _data_dir, _read_password
    from ..secretbox import PREFIX, SecretBox
    from ..storage.fieldseal import KEY_FILE, LazyFieldCipher
    from .queue import SECRET_FILE, write_secret

    data_dir = _data_dir(args.data_dir)
    secret = _read_password(args.secret_file, "secret file")
    before = _file_state(os.path.join(data_dir, SECRET_FILE))
    run_dir, missing = _secret_run_dir()
    try:
        write_secret(data_dir, secret, SecretBox(data_dir, cipher=LazyFieldCipher(data_dir, run_dir)))
    except KeyboardInterrupt as exc:
        raise _stopped(_set_secret_stopped(data_dir, before)) from exc
    with open(os.path.join(data_dir, SECRET_FILE), encoding="utf-8") as f:
        stored = f.readline()
    if stored.startswith(PREFIX) and os.path.exists(os.path.join(data_dir, KEY_FILE)):
        # A box that seals, and no copy of its storage key here (docs/card-alone.md).
        print(
            "linekeeper: the secret is sealed without the storage key (%s); the web UI seals it "
            "again with the key, but the card may keep this copy, which the board's serial alone "
            "opens" % (missing or "an update is on trial: its rollback's release opens only this kind"),
            file=sys.stderr,
        )
    return 0


def _file_state(path):
    """``(inode, bytes)`` of the file at ``path``, or None: whether a write replaced it."""
    try:
        with open(path, "rb") as f:
            return os.fstat(f.fileno()).st_ino, f.read()
    except OSError:
        return None


def _set_secret_stopped(data_dir, before):
    """What ``archive set-secret`` stopped by Ctrl-C left: the file it writes whole (renamed
    into place), or as it was, and, run as root, handed to the data directory's owner or not."""
    from .queue import SECRET_FILE

    path = os.path.join(data_dir, SECRET_FILE)
    if _file_state(path) == before:
        return "archive set-secret stopped before the secret was stored: %s is as it was; run it again" % path
    if os.stat(path).st_uid != os.stat(data_dir).st_uid:
        return (
            "archive set-secret stopped once the secret was stored in %s, before the file was handed "
            "to the data directory's owner: the web UI cannot read it yet; run it again" % path
        )
    return "archive set-secret stopped once the secret was stored in %s (whole)" % path


def cmd_index(args):
    from ..cli import _read_password
    from .store import Bucket, describe, make_client
    from .viewer import rebuild_index

    folder = os.path.dirname(os.path.abspath(args.index))
    if not os.path.isdir(folder):
        raise LinekeeperError(
            "--index %s: there is no folder %s to write it in; nothing was read or written"
            % (args.index, folder)
        )
    key = None
    if args.org_dir:
        from firmware.storage.keystore import KeyStore

        if not args.password_file:
            raise LinekeeperError("--org-dir needs --password-file")
        viewer_dir = args.viewer_dir or _viewer_dir_of_index(args.index, args.user)
        if not os.path.isdir(viewer_dir):
            raise LinekeeperError("--viewer-dir %s is not a directory" % viewer_dir)
        _enabled_viewer_account(viewer_dir, args.user, "", "give another --user")
        key = KeyStore(args.org_dir).unlock(args.user, _read_password(args.password_file))
    # Credentials: boto3's own sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles).
    client = make_client(args.endpoint, args.region, None, None, not args.no_verify_tls)
    try:
        n, skipped = rebuild_index(Bucket(client, args.bucket), args.index, key)
    except KeyboardInterrupt as exc:
        # The new index replaces the old one whole (renamed into place), or not at all.
        raise _stopped(
            "archive index stopped; %s is the old index as it was, or the whole new one, never "
            "part of one (the bucket is only read); run it again for a new one" % args.index,
        ) from exc
    except LinekeeperError:
        raise
    except Exception as exc:
        raise LinekeeperError("cannot index the bucket %s: %s" % (args.bucket, describe(exc)[0])) from None
    finally:
        if key is not None:
            key.forget()
    print(
        "linekeeper: %d calls indexed%s"
        % (n, ", %d unreadable records skipped" % skipped if skipped else ""),
        file=sys.stderr,
    )
    return 0


def _viewer_dir_of_index(index_path, user):
    """The viewer's directory when ``--index`` is written into it (the viewer keeps its own
    index there, ``VIEWER_DIR/index.db``): the folder holding the viewer's ``users.json``.
    Its accounts say whether ``user``'s slot may open the organisation key, so without it
    nothing is opened.

    :raises LinekeeperError: ``--index``'s folder is no viewer's directory (naming
        ``--viewer-dir`` and why it is needed)"""
    from web.archive.users import USERS_FILE

    folder = os.path.dirname(os.path.abspath(index_path))
    if os.path.isfile(os.path.join(folder, USERS_FILE)):
        print("linekeeper: the viewer's accounts are %s's (the folder of --index)" % folder, file=sys.stderr)
        return folder
    raise LinekeeperError(
        "--org-dir needs --viewer-dir (the central viewer's directory): its accounts say "
        "whether %s's slot may open the key, and the folder of --index, %s, holds no viewer's "
        "%s to take it from; nothing was read or written" % (user, folder, USERS_FILE)
    )


def cmd_add_user(args):
    from firmware.errors import WrongPasswordError
    from firmware.storage.keystore import KeyStore
    from web import passwords
    from web.accounts import HISTORY
    from web.archive.users import ArchiveUser, ArchiveUsers, parse_sites

    from ..cli import _read_password

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    sites = parse_sites(args.sites)  # checked before any key slot is made
    password = _read_password(args.password_file)
    ArchiveUsers.check_account(args.name, password, roles, sites, rules=False)  # and before the entry
    store = KeyStore(args.org_dir)
    new_slot = "supervisor" in roles and args.name not in store.slots()
    opens_own = False  # the password already opens the supervisor's own slot: it is theirs
    if "supervisor" in roles and not new_slot:
        try:
            with store.unlock(args.name, password):
                opens_own = True
        except WrongPasswordError:
            pass
    # A slot's own password from before the viewer's rules (init-org asks less of it) makes
    # its owner's account, marked to be changed at the first login, as the viewer's login
    # takes such a password once: a slot opens the key here only with an account now, and
    # its owner had no other way to one. Any other password meets the rules.
    rules_broken = opens_own and passwords.password_problem(password, args.name) is not None
    if not opens_own:
        ArchiveUsers.check_account(args.name, password, roles, sites)
    if args.grantor:
        # A disabled account's slot opens nothing, here as on a box's command line: a
        # leaver's disabled account gave new accounts a slot of the organisation key.
        _enabled_viewer_account(args.viewer_dir, args.grantor, "grantor ", "give another supervisor")
    # The account's password must stay the one that opens its slot: a new password changes
    # the slot too, from a grantor's key (a forgotten password: the slot made anew), or it is
    # refused.
    reset_slot = "supervisor" in roles and not new_slot and not opens_own
    if reset_slot and not (args.grantor and args.grantor_password_file):
        raise LinekeeperError(
            "%s already has a slot of the organisation key, which this password does not "
            "open: give their own password, or, for a forgotten one, a new password with "
            "--grantor and --grantor-password-file (another supervisor with a slot), "
            "which sets their slot anew" % args.name
        )
    if new_slot and not (args.grantor and args.grantor_password_file):
        raise LinekeeperError(
            "a supervisor needs a slot of the organisation key: give --grantor and "
            "--grantor-password-file (a supervisor who has one)"
        )
    users = ArchiveUsers(args.viewer_dir)
    granted = ArchiveUser(args.name, frozenset(roles), sites).sites_text()
    os.makedirs(args.viewer_dir, mode=0o700, exist_ok=True)
    # The check and the write are one step under the file's lock: the person's own change
    # of password in the viewer meanwhile made the one checked here one of their last four.
    with users.held():
        if users.get(args.name) is not None and users.check(args.name, password) is None:
            # A password set anew (a forgotten one): none of the account's last four, as on a
            # box's Users page (PCI DSS 8.3.7); the one in force is how roles are changed.
            if users.reused(args.name, password):
                raise LinekeeperError(
                    "that is one of %s's last %d passwords: choose one they have not used here"
                    % (args.name, HISTORY)
                )
        # Audited before the slot and the account: a cut part way leaves the entry, never an
        # account the viewer's trail does not show; a refusal part way adds one that says so.
        reset = {"key_slot_reset": True, "granted_by": args.grantor} if reset_slot else {}
        steps = ["the account saved"]
        if new_slot or reset_slot:
            slot = "%s's slot of the organisation key %s" % (args.name, "made" if new_slot else "set anew")
            steps.insert(0, slot)
        with _viewer_change(
            args.viewer_dir,
            args.name,
            "add-user",
            steps,
            change="user_add",
            roles=sorted(roles),
            sites=granted,
            **reset,
        ) as made:
            if new_slot or reset_slot:
                with store.unlock(args.grantor, _read_password(args.grantor_password_file)) as key:
                    if new_slot:
                        store.add_slot(args.name, password, key)
                    else:
                        store.reset_password(args.name, password, key)
                made()
            # A password chosen for them is changed at their first login (PCI DSS 8.3.5); one
            # that already opens their own slot (init-org's user, say) is theirs.
            theirs = "supervisor" in roles and not new_slot and not reset_slot
            mark = "rules" if rules_broken else "" if theirs else "set_by_other"
            users.set(args.name, password, roles, sites, must_change=mark, held=True, rules=not rules_broken)
            made()
    print(
        "linekeeper: viewer account %s (%s; sites: %s)" % (args.name, ", ".join(roles), granted),
        file=sys.stderr,
    )
    return 0


def _enabled_viewer_account(viewer_dir, name, role, instead):
    """Refuse to open ``name``'s slot of the organisation key unless their viewer account is
    there, a supervisor's and enabled, as the viewer's login opens a slot only for such an
    account. An account unused for 90 days is disabled first, by the box's rule and code
    (:meth:`web.archive.users.ArchiveUsers.disable_unused`: audited in the viewer's trail,
    the last enabled installer kept, none while the host's clock is not synchronised),
    before the password is read.

    A slot with no account (init-org's own before add-user made it one, or a leaver's
    whose entry was taken out of users.json) opened the key here to anyone with its
    password, the viewer's checks bypassed: it is refused, naming how its owner gets an
    account (add-user with the slot's own password, which needs no grantor) or how the slot
    is removed (remove-slot).

    :raises LinekeeperError: no such account, not a supervisor's, or disabled (``role`` is
        put before the name, "grantor " or ""; what to do ``instead``)"""
    from firmware import clock
    from web.archive.users import USERS_FILE, ArchiveUsers

    users = ArchiveUsers(viewer_dir)
    user = users.get(name)
    if user is None:
        raise LinekeeperError(
            "%s%s has a slot of the organisation key but no account in %s's %s, so the slot opens "
            "nothing here: %s; or make their account first (add-user --name %s --roles supervisor "
            "with the password their slot opens with, no --grantor); or, for someone who has left, "
            "remove the slot (remove-slot --name %s)"
            % (role, name, viewer_dir, USERS_FILE, instead, name, name)
        )
    if not user.has("supervisor"):
        raise LinekeeperError(
            "%s%s's viewer account is not a supervisor's (%s), so their slot of the organisation "
            "key opens nothing here, as at the viewer's login: %s; or make them a supervisor with "
            "add-user, or remove the slot (remove-slot --name %s)"
            % (role, name, ", ".join(sorted(user.roles)) or "no roles", instead, name)
        )
    if user.disabled_us is None and clock.kernel_clock_synchronised():
        log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
        try:
            if users.disable_unused(log):
                user = users.get(name)
        finally:
            log.close()
    if user.disabled_us is not None:
        raise LinekeeperError(
            "%s%s's viewer account is disabled (%s): %s, or enable it with enable-user"
            % (role, name, user.disabled_why, instead)
        )


def cmd_edit_user(args):
    """Grant a viewer account exactly ``--sites``; audited in the viewer's trail."""
    from web.archive.users import ArchiveUser, ArchiveUsers, parse_sites

    users = ArchiveUsers(args.viewer_dir)
    before = users.get(args.name)
    if before is None:
        raise LinekeeperError("no viewer account %r in %s" % (args.name, args.viewer_dir))
    sites = parse_sites(args.sites)
    granted = ArchiveUser(args.name, before.roles, sites).sites_text()
    with _viewer_change(
        args.viewer_dir,
        args.name,
        "edit-user",
        ["its sites saved (%s)" % granted],
        change="user_update",
        sites=granted,
        sites_before=before.sites_text(),
    ) as made:
        users.set_sites(args.name, sites)
        made()
    print("linekeeper: viewer account %s (sites: %s)" % (args.name, granted), file=sys.stderr)
    return 0


def cmd_unlock_user(args):
    """End a viewer account's lockout (PCI DSS 8.3.4) sooner than its 30 minutes, with the
    box's throttle (web/throttle.py); audited (``account_unlock``) before it is done."""
    from web.archive.app import THROTTLE_FILE
    from web.archive.users import ArchiveUsers
    from web.db import WebDb
    from web.throttle import Throttle

    if ArchiveUsers(args.viewer_dir).get(args.name) is None:
        raise LinekeeperError("no viewer account %r in %s" % (args.name, args.viewer_dir))
    db = WebDb(os.path.join(args.viewer_dir, THROTTLE_FILE))
    try:
        throttle = Throttle(db, lambda: time.time_ns() // 1000)
        if not throttle.locked_s(args.name):
            raise LinekeeperError("%s is not locked out: nothing to unlock" % args.name)
        _viewer_audited(
            args.viewer_dir,
            "account_unlock",
            args.name,
            {},
            lambda: throttle.unlock(args.name),
            "unlock-user",
            "its lockout ended",
        )
    finally:
        db.close()
    print("linekeeper: viewer account %s unlocked: they can log in now" % args.name, file=sys.stderr)
    return 0


def cmd_enable_user(args):
    """Enable a disabled viewer account (web/inactive.py's rule disabled it after 90 days
    unused, or disable-user did): its unused days count from now. Audited
    (``account_enabled``, by ``command-line``) before it is done."""
    from web.archive.users import ArchiveUsers

    users = ArchiveUsers(args.viewer_dir)
    user = users.get(args.name)
    if user is None:
        raise LinekeeperError("no viewer account %r in %s" % (args.name, args.viewer_dir))
    if user.disabled_us is None:
        raise LinekeeperError("%s is not disabled: nothing to enable" % args.name)
    entry = {"was_disabled_us": user.disabled_us, "reason": user.disabled_why}
    _viewer_audited(
        args.viewer_dir,
        "account_enabled",
        args.name,
        entry,
        lambda: users.enable(args.name),
        "enable-user",
        "the account enabled",
    )
    print("linekeeper: viewer account %s enabled: they can log in now" % args.name, file=sys.stderr)
    return 0


def cmd_disable_user(args):
    """Disable a viewer account by hand (not the last enabled installer's): nobody logs in
    to it until enable-user. Audited (``account_disabled``, by ``command-line``) before."""
    from web.archive.users import BY_HAND, ArchiveUsers

    users = ArchiveUsers(args.viewer_dir)
    user = users.get(args.name)
    if user is None:
        raise LinekeeperError("no viewer account %r in %s" % (args.name, args.viewer_dir))
    if user.disabled_us is not None:
        raise LinekeeperError("%s is disabled already: nothing to disable" % args.name)
    if user.has("installer") and not any(
        u.has("installer") and u.disabled_us is None and u.name != args.name for u in users.all()
    ):
        raise LinekeeperError(
            "%s is the viewer's last enabled installer: enable or add another installer first" % args.name
        )
    _viewer_audited(
        args.viewer_dir,
        "account_disabled",
        args.name,
        {"reason": BY_HAND},
        lambda: users.disable(args.name),
        "disable-user",
        "the account disabled",
    )
    print(
        "linekeeper: viewer account %s disabled: its sessions end at their next request" % args.name,
        file=sys.stderr,
    )
    return 0


def cmd_remove_slot(args):
    """Remove ``--name``'s slot of the organisation key, so that its password opens nothing
    from this organisation directory: a leaver's, whose account was disabled or taken out
    of ``users.json``. Refused for an enabled supervisor's account (their login opens the
    slot: disable it first) and for the last slot. Audited (``key_slot_remove``, by
    ``command-line``) in the viewer's trail before it is removed."""
    from firmware.storage.keystore import KeyStore
    from web.archive.users import ArchiveUsers

    store = KeyStore(args.org_dir)
    if not store.is_initialised:
        raise LinekeeperError("%s holds no organisation key: nothing to remove" % args.org_dir)
    slots = store.slots()
    if args.name not in slots:
        raise LinekeeperError(
            "%s has no slot of the organisation key in %s: nothing to remove" % (args.name, args.org_dir)
        )
    if slots == [args.name]:
        raise LinekeeperError(
            "%s's is the organisation key's last slot: add another supervisor's (add-user --grantor "
            "%s) before removing it; nothing was changed" % (args.name, args.name)
        )
    user = ArchiveUsers(args.viewer_dir).get(args.name)
    if user is not None and user.has("supervisor") and user.disabled_us is None:
        raise LinekeeperError(
            "%s's viewer account is an enabled supervisor's, whose login opens that slot: disable "
            "it first (disable-user), or take the supervisor role away (add-user); nothing was "
            "changed" % args.name
        )
    account = "none" if user is None else "disabled" if user.disabled_us is not None else "not a supervisor's"
    _viewer_audited(
        args.viewer_dir,
        "key_slot_remove",
        args.name,
        {"account": account},
        lambda: store.remove_slot(args.name),
        "remove-slot",
        "the slot removed",
    )
    print(
        "linekeeper: %s's slot of the organisation key removed: its password opens nothing in %s "
        "(a copy of the key file taken before still does)" % (args.name, args.org_dir),
        file=sys.stderr,
    )
    return 0


def _viewer_audited(viewer_dir, action, name, details, change, command, step):
    """``change()`` of account ``name``, audited as ``action`` in the viewer's own trail
    before it is made; an error while it is made adds an entry saying so, and so does a
    stop (Ctrl-C), raised as :class:`~firmware.cli.Stopped` saying whether ``step`` (what
    the change is, in words) was made (``command``: the archive command's name)."""
    with _viewer_stops(viewer_dir, name, action, details, command, [step]) as made:
        change()
        made()


@contextlib.contextmanager
def _viewer_change(viewer_dir, name, command, steps, **details):
    """A change of account ``name``, audited (``config_change``) in the viewer's own trail
    before it is made; an error while it is made adds an entry saying so. ``steps``: what
    the change makes, in words and in order; the body calls the function it is given as
    each is made, so that a stop (Ctrl-C) is audited and says which were made and which
    not (:class:`~firmware.cli.Stopped`; ``command``: the archive command's name)."""
    with _viewer_stops(viewer_dir, name, "config_change", details, command, steps) as made:
        yield made


@contextlib.contextmanager
def _viewer_stops(viewer_dir, name, action, details, command, steps):
    """What :func:`_viewer_change` and :func:`_viewer_audited` share: the entry ``action``
    with ``details`` first, then the body, its error or stop audited and a stop said."""
    log = AuditLog(os.path.join(viewer_dir, "audit.db"), os.path.join(viewer_dir, "audit.head"))
    done = []
    try:
        log.append("command-line", action, name, details, time.time_ns() // 1000)

        def failed(why):
            said = {"change": details["change"]} if "change" in details else dict(details)
            log.append("command-line", action, name, dict(said, failed=why), time.time_ns() // 1000)

        try:
            yield lambda: done.append(steps[len(done)])
        except KeyboardInterrupt as exc:
            if len(done) == len(steps):
                raise _stopped(
                    "archive %s stopped once %s's change was made whole (%s)"
                    % (command, name, "; ".join(done))
                ) from exc
            failed("stopped")
            said = ["made: %s" % "; ".join(done)] if done else []
            said.append("stopped during: %s (made whole or not at all)" % steps[len(done)])
            if steps[len(done) + 1 :]:
                said.append("not begun: %s" % "; ".join(steps[len(done) + 1 :]))
            raise _stopped(
                "archive %s stopped part way through %s's change: %s. The viewer's audit trail shows "
                "the change and its stop; run it again" % (command, name, "; ".join(said))
            ) from exc
        except Exception as exc:
            failed(str(exc))
            raise
    finally:
        log.close()


def _tls_adapter(cert, key):
    """cheroot's TLS adapter of ``archive serve``'s ``--cert`` and ``--key``, both given
    (one alone served plain HTTP without a word).

    :raises LinekeeperError: one not given, a file not read, or not a certificate and its key
    """
    import ssl

    from cheroot.ssl.builtin import BuiltinSSLAdapter

    if not cert or not key:
        given, missing = ("--cert", "--key") if cert else ("--key", "--cert")
        said = "%s needs %s: HTTPS takes both (the certificate and its private key)"
        raise LinekeeperError(said % (given, missing))
    for option, path in (("--cert", cert), ("--key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise LinekeeperError("%s %s: %s" % (option, path, exc.strerror or exc)) from None
    try:
        return BuiltinSSLAdapter(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise LinekeeperError(
            "--cert %s and --key %s are not a certificate and its private key (PEM): %s" % (cert, key, exc)
        ) from None


def cmd_serve(args):
    """Serve the central viewer until stopped (cheroot; TLS with --cert/--key)."""
    import threading

    from cheroot import wsgi

    from firmware.storage.keystore import KeyStore
    from web.archive import Viewer, create_archive_app

    from ..cli import _on_signals
    from .store import Bucket, make_client

    tls = bool(args.cert or args.key)
    if not tls and args.host not in ("127.0.0.1", "::1", "localhost"):
        raise LinekeeperError("serving on %s needs --cert and --key (HTTPS)" % args.host)
    adapter = _tls_adapter(args.cert, args.key) if tls else None
    if not KeyStore(args.org_dir).is_initialised:
        # A mistyped --org-dir: the viewer would start, make its folder and open no call.
        raise LinekeeperError(
            "%s holds no organisation key (`linekeeper archive init-org` makes one): the viewer "
            "was not started" % args.org_dir
        )
    client = make_client(args.endpoint, args.region, None, None, not args.no_verify_tls)
    viewer = Viewer(args.viewer_dir, args.org_dir, Bucket(client, args.bucket), secure_cookies=tls)
    server = wsgi.Server((args.host, args.port), create_archive_app(viewer))
    server.ssl_adapter = adapter
    try:
        # Bound here, not in the thread: a port in use was a traceback there, after "archive
        # viewer on ..." had been said, and the command went on running, serving nothing.
        server.prepare()
    except OSError as exc:
        viewer.close()
        raise LinekeeperError(
            "cannot serve the viewer on %s port %d: it is in use by another program, or not this "
            "machine's (%s)" % (args.host, args.port, exc)
        ) from None
    stop = _on_signals(lambda: None)  # SIGTERM (and SIGINT) stop the server
    thread = threading.Thread(target=server.serve, name="linekeeper-archive-web", daemon=True)
    thread.start()
    print(
        "linekeeper: archive viewer on %s://%s:%d/" % ("https" if tls else "http", args.host, args.port),
        file=sys.stderr,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        viewer.close()
    return 0


def cmd_audit_head(args):
    from .store import Bucket, describe, make_client
    from .viewer import latest_audit_head

    client = make_client(args.endpoint, args.region, None, None, not args.no_verify_tls)
    try:
        head = latest_audit_head(Bucket(client, args.bucket), args.box)
    except Exception as exc:
        raise LinekeeperError("cannot read the bucket %s: %s" % (args.bucket, describe(exc)[0])) from None
    if head is None:
        raise LinekeeperError(
            "box %s has sent no audit head to %s that can be read" % (args.box, args.bucket)
        )
    print("%d:%s" % (head["seq"], head["hash"]))
    return 0


def _search_none(args):
    """What ``archive search`` says when it found no call: the search, as given."""
    given = [
        (option, value)
        for option, value in (
            ("--number", args.number),
            ("--box", args.box),
            ("--from", args.first_day),
            ("--to", args.last_day),
        )
        if value
    ]
    if not given:
        return "the index holds no calls"
    return "no calls match %s" % " ".join("%s %s" % pair for pair in given)


SEARCH_MAX = 1000  # calls archive search prints (the index's search took as many, unsaid)


def cmd_search(args):
    """Print the indexed calls ``--number``, ``--box`` and ``--from``/``--to`` select, oldest
    first, each time in its site's zone with the zone named, as the viewer's pages show it
    (UTC, said so, for a record that carries no zone)."""
    from .viewer import local_iso, local_time, search, zone_unsaid

    if args.first_day and args.last_day and args.last_day < args.first_day:
        raise LinekeeperError(
            "--to: the last day (%s) is before the first (%s)" % (args.last_day, args.first_day)
        )
    if not os.path.exists(args.index):
        raise LinekeeperError("no index %s (run `linekeeper archive index` first)" % args.index)
    found = search(
        args.index,
        number=args.number,
        box=args.box,
        first_day=args.first_day,
        last_day=args.last_day,
        limit=SEARCH_MAX + 1,
    )
    for call in found[:SEARCH_MAX]:
        zone = call["time_zone"]
        if args.json:
            # started_at/ended_at stay as the box wrote them (UTC, ``Z``), as every JSON and CSV
            # of the box keeps them; beside them the same instants in the site's zone.
            call["local_zone"] = local_time(zone).zone_name
            call["started_local"] = local_iso(call["started_us"], zone)
            call["ended_local"] = local_iso(iso_to_us(call["ended_at"]), zone)
            print(json.dumps(call))
        else:
            said = "the site's archive does not say its zone" if zone_unsaid(zone) else zone
            print(
                "%-12s %6d  line %s  %-3s  %s (%s)  %s"
                % (
                    call["box"],
                    call["call_id"],
                    call["line"],
                    call["direction"],
                    local_time(zone).when(call["started_us"]),
                    said,
                    call["number"] or "",
                )
            )
    if not found:  # said on stderr, as `linekeeper calls` says it: stdout stays a list
        print("linekeeper: %s" % _search_none(args), file=sys.stderr)
    if len(found) > SEARCH_MAX:
        # Cut without a word, the list looked like every call the search selects.
        print(
            "linekeeper: more than %d calls match: these are the oldest %d; narrow the search "
            "(--from/--to, --box, --number)" % (SEARCH_MAX, SEARCH_MAX),
            file=sys.stderr,
        )
    return 0
