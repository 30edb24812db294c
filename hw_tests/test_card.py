"""The card on a real box: the data's file system as the installer left it
(scripts/install-box, docs/appliance.md and docs/journal.md)."""

import subprocess

DATA = "/var/lib/linekeeper"


def _findmnt(column):
    out = subprocess.run(
        ["findmnt", "--noheadings", "--output", column, "--target", DATA],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_the_data_file_system_commits_every_minute():
    fstype, options = _findmnt("FSTYPE"), _findmnt("OPTIONS").split(",")
    print("%s: %s, %s" % (DATA, fstype, ",".join(options)))
    assert fstype == "ext4", "%s is on %s, not the card's ext4" % (DATA, fstype)
    commit = [int(o.split("=", 1)[1]) for o in options if o.startswith("commit=")]
    assert commit and commit[0] >= 60, (
        "the card's file system commits its journal every 5 s (no commit=60): is "
        "linekeeper-card-commit.service enabled? (systemctl status linekeeper-card-commit)"
    )
