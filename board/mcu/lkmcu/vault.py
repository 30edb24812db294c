"""The key vault: keys the Pi uses unattended but the SD card never holds.

Two 32-byte keys live in the MCU's own flash: the storage key (personal data
in the call log) and the audit key (the audit trail's MAC chain). They are made
at the first start from the MCU's random source. The Pi asks for one at a
time; the key stays in the register window until the Pi hides it, and once the
Pi has locked the vault nothing is shown again until the Pi restarts (the MCU
sees its 3.3 V rail drop) or the MCU resets it. So software that takes over the
Pi later in its life cannot read the keys over I2C.

``store`` is an object with ``load() -> bytes or None`` and ``save(bytes)``:
a file in the MCU's flash on the HAT (``main.py``), memory in the simulator.
"""

from . import regmap

KEY_LEN = regmap.VAULT_DATA_LEN


class Vault:
    def __init__(self, store, random_bytes):
        keys = store.load()
        if keys is None or len(keys) != 2 * KEY_LEN:
            keys = bytes(random_bytes(2 * KEY_LEN))
            store.save(keys)
        self._keys = keys
        self.locked = False

    def key(self, which):
        """``regmap.VC_SHOW_STORAGE`` or ``VC_SHOW_AUDIT``'s key, or None when locked."""
        if self.locked:
            return None
        if which == regmap.VC_SHOW_STORAGE:
            return self._keys[:KEY_LEN]
        if which == regmap.VC_SHOW_AUDIT:
            return self._keys[KEY_LEN:]
        return None

    def lock(self):
        self.locked = True

    def unlock(self):
        self.locked = False
