"""Known-answer fixtures for every on-card and export format (docs/FORMAT.md).

The files in tests/fixtures/format/ were made once by the code as it was
when the formats were written down, and are frozen: a change that alters any
format fails here. A deliberate change gets a new version number (and
reading of the old one), new fixtures beside the old, and docs/FORMAT.md.
The byte layouts are also parsed here by hand, as the document describes
them, so the document and the code cannot drift apart unnoticed.
"""

import base64
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware import evidence, manifest
from firmware.recording.segment import SegmentReader, SegmentWriter
from firmware.recording.store import wrap_context
from firmware.signing import Signer, derive_from_vault_key, fingerprint
from firmware.storage import crypto
from firmware.storage.audit import AuditLog, entry_hash
from firmware.storage.keystore import KeyStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "format"


@pytest.fixture(scope="module")
def ka():
    return json.loads((FIXTURES / "known_answers.json").read_text())


def test_recording_file_layout_is_frozen(ka, tmp_path):
    rec = ka["recording"]
    frozen = (FIXTURES / rec["file"]).read_bytes()
    key = bytes.fromhex(rec["data_key"])
    # By hand, as docs/FORMAT.md describes it.
    magic, version, length = struct.unpack_from(">8sBI", frozen)
    assert (magic, version) == (b"\x89LKREC\r\n", 1)
    header_bytes = frozen[: 13 + length]
    header = json.loads(header_bytes[13:])
    assert header == dict(rec["header"], recording_id=rec["recording_id"])
    assert header_bytes[13:] == json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    pos, plain = len(header_bytes), []
    aead = ChaCha20Poly1305(key)
    records = []
    while pos < len(frozen):
        n = struct.unpack_from(">I", frozen, pos)[0]
        records.append(frozen[pos + 4 : pos + 4 + n])
        pos += 4 + n
    for i, sealed in enumerate(records):
        final = i == len(records) - 1
        nonce = i.to_bytes(11, "big") + (b"\x01" if final else b"\x00")
        plain.append(aead.decrypt(nonce, sealed, header_bytes))
    assert plain == [c.encode() for c in rec["chunks"]] + [b""]
    # And by the code: it reads the fixture, and writes it again byte for byte.
    reader = SegmentReader(FIXTURES / rec["file"], key)
    assert reader.read_all() == ("".join(rec["chunks"]).encode(), True)
    writer = SegmentWriter(tmp_path / "again.lkrec", rec["recording_id"], key, rec["header"], fsync=False)
    for chunk in rec["chunks"]:
        writer.write_chunk(chunk.encode())
    writer.close()
    assert (tmp_path / "again.lkrec").read_bytes() == frozen


def test_wrapped_data_key_is_frozen(ka):
    w = ka["wrap"]
    wrapped = bytes.fromhex(w["wrapped"])
    assert wrap_context("00112233445566778899aabbccddeeff", 7, 2) == bytes.fromhex(w["context"])
    assert crypto.unwrap_data_key(
        wrapped, bytes.fromhex(w["recipient_private_key"]), bytes.fromhex(w["context"])
    ) == bytes.fromhex(w["data_key"])
    # By hand: X25519, HKDF-SHA256 (salt = ephemeral || recipient public, info = label ||
    # context), ChaCha20-Poly1305 with the 45-byte prefix as associated data.
    eph = X25519PrivateKey.from_private_bytes(bytes.fromhex(w["ephemeral_private_key"]))
    eph_pub = eph.public_key().public_bytes_raw()
    recipient = bytes.fromhex(w["recipient_public_key"])
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient))
    kek = HKDF(
        hashes.SHA256(), 32, eph_pub + recipient, b"linekeeper data key" + bytes.fromhex(w["context"])
    ).derive(shared)
    nonce = bytes.fromhex(w["nonce"])
    prefix = b"\x01" + eph_pub + nonce
    assert prefix + ChaCha20Poly1305(kek).encrypt(nonce, bytes.fromhex(w["data_key"]), prefix) == wrapped


def test_key_slot_store_is_frozen(ka, tmp_path):
    k = ka["keystore"]
    (tmp_path / "keys").mkdir(mode=0o700)
    shutil.copy(FIXTURES / k["file"], tmp_path / "keys" / "keystore.json")
    os.chmod(tmp_path / "keys" / "keystore.json", 0o600)
    store = KeyStore(tmp_path)
    with store.unlock(k["user"], k["password"]) as key:
        assert bytes(key._private).hex() == k["private_key"]
    with store.unlock_recovery(k["recovery_key"]) as key:
        assert bytes(key._private).hex() == k["private_key"]
    doc = json.loads((FIXTURES / k["file"]).read_text())
    assert (doc["format"], doc["version"]) == ("linekeeper-keystore", 1)
    assert [s["kind"] for s in doc["slots"]] == ["password", "recovery"]


def test_device_key_audit_chain_statement_and_manifest_are_frozen(ka, tmp_path):
    d = ka["device_key"]
    seed = derive_from_vault_key(bytes.fromhex(d["vault_audit_key"]))
    assert seed.hex() == d["seed"]
    signer = Signer(seed, "vault")
    assert signer.public_key.hex() == d["public_key"]
    assert fingerprint(signer.public_key) == d["fingerprint"]
    digest = hashlib.sha256(b"linekeeper signing key\x00" + signer.public_key).hexdigest()[:32]
    assert d["fingerprint"] == "lk1:" + "-".join(digest[i : i + 4] for i in range(0, 32, 4))

    log = AuditLog(tmp_path / "audit.db", tmp_path / "audit.head", signer=signer)
    for e in ka["audit"]["entries"]:
        assert (
            entry_hash(
                e["prev_hash"], e["seq"], e["wall_us"], e["actor"], e["action"], e["target"], e["details"]
            )
            == e["hash"]
        )
        got = log.append(e["actor"], e["action"], e["target"], e["details"], e["wall_us"])
        assert got.hash == e["hash"]
    sigs = [r[0] for r in log._db.execute("SELECT sig FROM audit_sig ORDER BY seq")]
    assert sigs == [e["sig"] for e in ka["audit"]["entries"]]
    assert json.loads((tmp_path / "audit.head").read_text()) == ka["audit"]["head"]
    assert log.verify(public_key=signer.public_key) == []
    log.close()

    rec, st = ka["recording"], ka["statement"]
    facts = evidence.file_facts(FIXTURES / rec["file"])
    stmt = evidence.statement(
        rec["recording_id"], "complete", facts, evidence.call_fields(facts["header"], None)
    )
    assert stmt.decode() == st["statement"]
    assert signer.sign(stmt).hex() == st["signature"]

    m = ka["manifest"]
    payload = (FIXTURES / m["file"]).read_bytes()
    row = dict(st["row"], signature=bytes.fromhex(st["signature"]))
    built = manifest.build_manifest(signer, payload, m["file"], row, stmt, "sam", 1772442002000000)
    assert built == (FIXTURES / m["manifest"]).read_bytes()
    assert manifest.verify_export(FIXTURES / m["file"], d["fingerprint"])["exported_by"] == "sam"
    assert base64.b64decode(json.loads(built)["signing_key"]) == signer.public_key


def test_recording_key_pin_is_frozen(ka, tmp_path):
    from firmware.errors import TamperError
    from firmware.keypin import TAG, RecordingKeyPin
    from firmware.signing import verify_signature

    signer = Signer(derive_from_vault_key(bytes.fromhex(ka["device_key"]["vault_audit_key"])), "vault")
    public_key = bytes.fromhex(ka["wrap"]["recipient_public_key"])
    RecordingKeyPin(tmp_path, signer).check(public_key)
    frozen = (FIXTURES / "recording-key.pin").read_bytes()
    assert (tmp_path / "recording-key.pin").read_bytes() == frozen
    doc = json.loads(frozen)
    assert verify_signature(signer.public_key, bytes.fromhex(doc["sig"]), TAG + public_key)
    with pytest.raises(TamperError, match="replaced"):
        RecordingKeyPin(tmp_path, signer).check(os.urandom(32))


def test_signing_key_handover_is_frozen(ka, tmp_path):
    from firmware.handover import HANDOVER_FILE, append_handover, make_handover, read_handovers, trusted_keys
    from firmware.signing import verify_signature

    h = ka["handover"]
    old = Signer(derive_from_vault_key(bytes.fromhex(ka["device_key"]["vault_audit_key"])), "vault")
    new = Signer(derive_from_vault_key(bytes.fromhex(h["new_vault_audit_key"])), "vault")
    assert new.public_key.hex() == h["new_public_key"]
    last = ka["audit"]["entries"][-1]
    made = make_handover(new, old.public_key, last["seq"], last["hash"], 1772442003000000)
    append_handover(tmp_path, made)
    assert json.loads((tmp_path / HANDOVER_FILE).read_text()) == h["file"]
    # The signed bytes as docs/FORMAT.md describes them, built by hand.
    stored = h["file"]["handovers"][0]
    body = {k: stored[k] for k in ("old_key", "new_key", "audit_seq", "audit_hash", "made_us")}
    by_hand = b"linekeeper signing key handover v1\n" + json.dumps(
        body, sort_keys=True, separators=(",", ":")
    ).encode("ascii")
    assert by_hand.decode("ascii") == h["statement"]
    assert verify_signature(new.public_key, bytes.fromhex(stored["signature"]), by_hand)
    assert base64.b64decode(stored["old_key"]) == old.public_key
    # Vouched for by the new key only: from the old key (or any other) there is no chain.
    keys, problems = trusted_keys(tmp_path, new.public_key)
    assert problems == [] and [o["key"] for o in keys.handed_over] == [old.public_key]
    assert keys.handed_over[0]["audit_seq"] == last["seq"]
    keys, problems = trusted_keys(tmp_path, old.public_key)
    assert keys.handed_over == [] and len(problems) == 1
    assert read_handovers(tmp_path) == h["file"]["handovers"]
