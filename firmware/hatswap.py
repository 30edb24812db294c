"""Moving a box to a new HAT (its supervisor MCU was replaced).

The storage data key (docs/card-alone.md) is wrapped on the card by the HAT's
MCU vault, and the device signing key is derived from that vault: a new HAT
opens neither. ``storage.key`` also holds an *escrow copy* of the data key
(never of the signing key), wrapped to the box's recording public key, whose
private key opens only with a user's password or the recovery key
(firmware/storage/keystore.py) — never with the card alone.
:func:`move_to_new_hat`:

* opens the escrow copy with an unlocked recording key and wraps the data key
  under the new vault's storage key (the escrow copy is kept, for the next HAT);
* checks the audit trail against the signing key on record (and the handovers
  it took over, :mod:`firmware.handover`), and, when given, a fingerprint of
  it kept off the box;
* has the NEW HAT's key (derived from its vault, as on any box) sign a
  handover statement naming the old key and the last audit entry it signed,
  re-signs the recording key pin, and records the new key in ``signing.pub``;
* appends an audited ``hat_replaced`` entry, signed by the new key.

Nothing is written before every check passed. No signing key is ever read out
of a vault or the escrow: whoever holds the card and a password still cannot
sign as the box.
"""

import os

from firmware.errors import LinekeeperError
from firmware.handover import (
    append_handover,
    begun_handover,
    chain_of,
    make_handover,
    read_handovers,
    trusted_keys,
)
from firmware.keypin import repin
from firmware.signing import (
    Signer,
    derive_from_vault_key,
    fingerprint,
    normalise_fingerprint,
    read_public_record,
    write_public_record,
)
from firmware.storage.audit import AuditLog
from firmware.storage.fieldseal import FieldCipher, open_escrow, open_with, opens_with, read_escrow, rewrap


class HatMoveError(LinekeeperError):
    """The box's keys cannot be moved to this HAT; nothing was changed."""


def move_to_new_hat(data_dir, vault, unlocked, open_audit, actor, via, wall_us, old_key=None):
    """Move the storage data key to ``vault`` (the new HAT's MCU) and hand the signing over.

    :param vault: the new HAT's MCU link (``read_key("storage")``, ``read_key("audit")``), not locked yet
    :param unlocked: the box's recording key, unlocked by a password or the recovery key
    :param open_audit: ``open_audit(data_dir, signer, cipher)``, the audit trail
    :param actor: who ran it (a user name, or ``recovery-key``)
    :param via: how the recording key was opened, for the audit entry
    :param wall_us: wall-clock time of the handover and the audit entry, in µs
    :param old_key: the old key's fingerprint as kept off the box (the recovery
        sheet), or None to take the one on record in ``signing.pub``
    :returns: ``None`` when the box already runs on this HAT (nothing done), else
        ``(old fingerprint or None, new fingerprint)``
    :raises HatMoveError: no escrow copy, it does not match this box, or the
        audit trail does not hold under the old key
    :raises FieldSealError: the box seals nothing, or ``storage.key`` is damaged
    """
    try:
        wrapping = vault.read_key("storage")
        signer = Signer(derive_from_vault_key(vault.read_key("audit")), "vault")
    except OSError as exc:
        raise HatMoveError(
            "the new HAT's MCU vault did not give its keys (%s): stop the recorder "
            "and restart the box, then run this before the recorder starts" % exc
        ) from exc
    record = read_public_record(data_dir)
    handing_over = record is not None and record["public_key"] != signer.public_key
    if opens_with(data_dir, wrapping):
        if not handing_over:
            return None  # the HAT that made the keys, or one they were moved to already
        data_key = open_with(data_dir, wrapping)  # moved by an earlier firmware, key not handed over
    else:
        escrow = read_escrow(data_dir)
        if escrow is None:
            raise HatMoveError(
                "storage.key has no escrow copy (a box makes one at its first start with this "
                "firmware): the sealed data opens only with the old HAT"
            )
        data_key = open_escrow(escrow, unlocked)
    old = None
    # A move to this HAT cut short (a power cut, a card that refused a write): its
    # statement is written; the move is finished with it, never made twice.
    begun = begun_handover(data_dir, record["public_key"], signer.public_key) if handing_over else None
    if handing_over:
        # Read-only: even opening the trail for writing would change the card.
        with AuditLog(
            os.path.join(data_dir, "audit.db"), os.path.join(data_dir, "audit.head"), readonly=True
        ) as trail:
            old = _check_old_key(data_dir, record, old_key, trail, begun, signer.public_key)
            seq, digest = trail.last()
        if begun is None:
            handover = make_handover(signer, record["public_key"], seq, digest, wall_us)
        else:
            handover, seq = begun, begun["audit_seq"]
        # The pin is checked against the old key before anything is written (it is first);
        # a move cut short has already signed it with the new key.
        repin(data_dir, record["public_key"], signer)
    # Every check passed: from here on the card is written. Each write is whole, and
    # the key record comes last: until it names the new key the box does not start on
    # this HAT, and running this again finishes the move.
    with open_audit(data_dir, signer, FieldCipher(data_key)) as audit:
        if handing_over and begun is None:
            append_handover(data_dir, handover)
        if not opens_with(data_dir, wrapping):
            rewrap(data_dir, wrapping, data_key)
        if not _audited(audit, signer.fingerprint):
            details = {"via": via, "new_key": signer.fingerprint}
            if handing_over:
                details.update(old_key=old, handover_seq=seq)
            audit.append(actor, "hat_replaced", None, details, wall_us)
        if handing_over:
            write_public_record(data_dir, signer)
    return old, signer.fingerprint


def _audited(audit, new_fingerprint):
    """Whether the trail already has the move to the key ``new_fingerprint`` (a move cut
    short after its entry)."""
    return any(
        entry.details.get("new_key") == new_fingerprint
        for entry in audit.entries(limit=10_000, action="hat_replaced")
    )


def _check_old_key(data_dir, record, old_key, audit, begun=None, new_public_key=None):
    """The old key's fingerprint, once it is the pinned one and the trail holds under it.

    ``begun``: the handover statement to ``new_public_key`` of a move cut short after
    it was written: the trail holds as the old key left it, or, once the move's entry
    is on it, as it will when the move is finished (the old key up to the statement's
    entry, the new one after it).

    :raises HatMoveError: another fingerprint, or the trail (or the recording key pin) does not hold
    """
    if record["source"] != "vault":
        raise HatMoveError(
            "this box's signing key is on the card, not in a HAT's vault: nothing to hand over"
        )
    old = fingerprint(record["public_key"])
    if old_key is not None and normalise_fingerprint(old_key) != old:
        raise HatMoveError(
            "the signing key on record in signing.pub is %s, not %s: the card's key record was "
            "replaced, or this is another box's card" % (old, normalise_fingerprint(old_key))
        )
    if begun is None:
        keys, problems = trusted_keys(data_dir, record["public_key"])
    elif audit.last()[0] > begun["audit_seq"]:
        # The move's own entry, signed by the new key, is on the trail already.
        keys, problems = trusted_keys(data_dir, new_public_key)
    else:
        # The trail as the old key left it: the statement begun is not the old key's to vouch for.
        keys, problems = chain_of(record["public_key"], [h for h in read_handovers(data_dir) if h != begun])
    problems += audit.verify(public_key=keys)
    if problems:
        raise HatMoveError(
            "the audit trail does not hold under the old key %s (%s%s): the new key would vouch "
            "for it; run `linekeeper verify`" % (old, problems[0], " and more" if len(problems) > 1 else "")
        )
    return old
