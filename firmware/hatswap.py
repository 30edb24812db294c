"""Moving a box's sealed data to a new HAT (its supervisor MCU was replaced).

The storage data key (docs/card-alone.md) is wrapped on the card by the HAT's
MCU vault, and the device signing key is derived from that vault: a new HAT
opens neither. ``storage.key`` also holds an *escrow copy* of both, wrapped to
the box's recording public key, whose private key opens only with a user's
password or the recovery key (firmware/storage/keystore.py) — never with the
card alone. :func:`move_to_new_hat` opens the escrow copy with an unlocked
recording key and wraps both keys to the new vault:

* ``storage.key``: the data key, wrapped under the new vault's storage key
  (the escrow copy is kept, for the next HAT);
* ``signing.seal``: the old signing seed, wrapped the same way, so the box
  goes on signing as itself and ``verify`` still checks every old signature.

Then an audited ``hat_replaced`` entry is appended, signed and sealed with the
carried keys. Nothing is written before every check passed.
"""

from firmware.errors import LinekeeperError
from firmware.signing import Signer, carry_to_vault, read_public_record
from firmware.storage.fieldseal import FieldCipher, open_escrow, opens_with, read_escrow, rewrap


class HatMoveError(LinekeeperError):
    """The box's keys cannot be moved to this HAT; nothing was changed."""


def move_to_new_hat(data_dir, vault, unlocked, open_audit, actor, via, wall_us):
    """Wrap the box's storage data key and signing seed to ``vault`` (the new HAT's MCU).

    :param vault: the new HAT's MCU link (``read_key("storage")``), not locked yet
    :param unlocked: the box's recording key, unlocked by a password or the recovery key
    :param open_audit: ``open_audit(data_dir, signer, cipher)``, the audit trail
    :param actor: who ran it (a user name, or ``recovery`` for the recovery key)
    :param via: how the recording key was opened, for the audit entry
    :param wall_us: wall-clock time of the audit entry, in µs
    :returns: False when ``storage.key`` already opens with this vault (nothing done), else True
    :raises HatMoveError: no escrow copy, or it does not match this box's keys
    :raises FieldSealError: the box seals nothing, or ``storage.key`` is damaged
    """
    escrow = read_escrow(data_dir)
    try:
        wrapping = vault.read_key("storage")
    except OSError as exc:
        raise HatMoveError(
            "the new HAT's MCU vault did not give its storage key (%s): stop the recorder "
            "and restart the box, then run this before the recorder starts" % exc
        ) from exc
    if opens_with(data_dir, wrapping):
        return False  # the HAT that made the key, or one the keys were moved to already
    if escrow is None:
        raise HatMoveError(
            "storage.key has no escrow copy (a box makes one at its first start with this "
            "firmware): the sealed data opens only with the old HAT"
        )
    data_key, seed = open_escrow(escrow, unlocked)
    signer = Signer(seed, "vault")
    record = read_public_record(data_dir)
    if record is not None and record["public_key"] != signer.public_key:
        raise HatMoveError("the escrow copy's signing key is not the one on record in signing.pub")
    carry_to_vault(data_dir, seed, wrapping)
    rewrap(data_dir, wrapping, data_key)
    with open_audit(data_dir, signer, FieldCipher(data_key)) as audit:
        audit.append(actor, "hat_replaced", None, {"via": via}, wall_us)
    return True
