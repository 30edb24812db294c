"""``linekeeper archive ...``: the organisation key, the box's secret, the central index and search."""

import json
import os
import sys

from ..errors import LinekeeperError


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
    q.add_argument("--password-file", required=True)
    q.add_argument("--user", default="admin")
    q.set_defaults(func=cmd_init_org)

    q = asub.add_parser("set-secret", help="store the box's S3 secret access key (mode 0600)")
    q.add_argument("--data-dir", required=True)
    q.add_argument("--secret-file", required=True, help="file whose first line is the secret")
    q.set_defaults(func=cmd_set_secret)

    q = asub.add_parser("index", help="rebuild the central index from the bucket alone")
    q.add_argument("--endpoint", required=True)
    q.add_argument("--bucket", required=True)
    q.add_argument("--region", default="us-east-1")
    q.add_argument("--no-verify-tls", action="store_true")
    q.add_argument("--index", required=True, help="the index file (SQLite) to write")
    q.add_argument(
        "--org-dir",
        help="the organisation key slots: open sealed records (numbers searchable); needs --password-file",
    )
    q.add_argument("--password-file")
    q.add_argument("--user", default="admin")
    q.set_defaults(func=cmd_index)

    q = asub.add_parser("search", help="search the central index")
    q.add_argument("--index", required=True)
    q.add_argument("--number", help="the number, or its last digits")
    q.add_argument("--box", help="one box's calls only")
    q.add_argument("--json", action="store_true", help="one JSON object per call")
    q.set_defaults(func=cmd_search)


def cmd_init_org(args):
    import base64

    from firmware.storage.keystore import KeyStore

    from ..cli import _read_password

    password = _read_password(args.password_file)
    os.makedirs(args.org_dir, mode=0o700, exist_ok=True)
    store = KeyStore(args.org_dir)

    def show(recovery):
        print("Recovery key of the organisation archive key (shown once; keep it safe):")
        print("    " + recovery)

    store.initialise(args.user, password, show=show)
    print("org_public_key: %s" % base64.b64encode(store.public_key()).decode())
    return 0


def cmd_set_secret(args):
    from ..cli import _data_dir, _read_password
    from .queue import write_secret

    write_secret(_data_dir(args.data_dir), _read_password(args.secret_file))
    return 0


def cmd_index(args):
    from ..cli import _read_password
    from .store import Bucket, describe, make_client
    from .viewer import rebuild_index

    key = None
    if args.org_dir:
        from firmware.storage.keystore import KeyStore

        if not args.password_file:
            raise LinekeeperError("--org-dir needs --password-file")
        key = KeyStore(args.org_dir).unlock(args.user, _read_password(args.password_file))
    # Credentials: boto3's own sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles).
    client = make_client(args.endpoint, args.region, None, None, not args.no_verify_tls)
    try:
        n, skipped = rebuild_index(Bucket(client, args.bucket), args.index, key)
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


def cmd_search(args):
    from .viewer import search

    if not os.path.exists(args.index):
        raise LinekeeperError("no index %s (run `linekeeper archive index` first)" % args.index)
    for call in search(args.index, number=args.number, box=args.box):
        if args.json:
            print(json.dumps(call))
        else:
            print(
                "%-12s %6d  line %s  %-3s  %s  %s"
                % (
                    call["box"],
                    call["call_id"],
                    call["line"],
                    call["direction"],
                    call["started_at"],
                    call["number"] or "",
                )
            )
    return 0
