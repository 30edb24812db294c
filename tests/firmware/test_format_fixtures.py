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
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware import evidence, manifest
from firmware.errors import NotGrantedError, TamperError
from firmware.recording.segment import SegmentReader, SegmentWriter
from firmware.recording.store import wrap_context
from firmware.signing import Signer, derive_from_vault_key, fingerprint
from firmware.storage import crypto, keystore
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


def test_key_slot_store_version_2_is_frozen(ka, tmp_path):
    """Line keys, grants and the split login key, by hand as docs/FORMAT.md says, then by the code."""
    k = ka["keystore_v2"]
    doc = json.loads((FIXTURES / k["file"]).read_text())
    assert (doc["format"], doc["version"]) == ("linekeeper-keystore", 2)
    b64 = base64.b64decode
    admin_private = bytes.fromhex(k["admin_private_key"])
    assert crypto.public_key_of(admin_private) == b64(doc["public_key"])
    # Line keys: wrapped to the admin public key under "linekeeper line key" 00 "line=N".
    for line, private_hex in k["line_private_keys"].items():
        entry = doc["lines"][line]
        opened = crypto.unwrap_data_key(
            b64(entry["wrapped"]), admin_private, b"linekeeper line key\x00line=" + line.encode()
        )
        assert opened.hex() == private_hex
        assert crypto.public_key_of(opened) == b64(entry["public_key"])
    # The supervisor's slot: Argon2id, split with HKDF into slot key || login verifier.
    slot = next(s for s in doc["slots"] if s["user"] == k["supervisor"]["user"])
    kdf = slot["kdf"]
    assert (kdf["name"], kdf["memory_kib"], kdf["iterations"], kdf["lanes"]) == ("argon2id", 8, 1, 1)
    stretched = Argon2id(salt=b64(kdf["salt"]), length=32, iterations=1, lanes=1, memory_cost=8).derive(
        k["supervisor"]["password"].encode()
    )
    split = HKDF(hashes.SHA256(), 64, None, b"linekeeper login v2: slot key || login verifier").derive(
        stretched
    )
    bound = {key: slot[key] for key in ("kdf", "kind", "public_key", "user")}
    aad = b"linekeeper key slot v1\n" + json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()
    user_private = ChaCha20Poly1305(split[:32]).decrypt(b64(slot["nonce"]), b64(slot["sealed"]), aad)
    assert crypto.public_key_of(user_private) == b64(slot["public_key"])
    grants = [g for g in doc["grants"] if g["user"] == "sam"]
    assert [g["line"] for g in grants] == k["supervisor"]["granted"]
    line1 = crypto.unwrap_data_key(
        b64(grants[0]["wrapped"]), user_private, b"linekeeper grant\x00user=sam\x00line=1"
    )
    assert line1.hex() == k["line_private_keys"]["1"]
    admin_grant = next(g for g in doc["grants"] if g["user"] == "admin")
    assert admin_grant["line"] == "all"
    # A line-2 recording: opens with line 2's key, not with anything sam's password reaches.
    rec = k["line_2_recording"]
    wrapped, context = bytes.fromhex(rec["wrapped"]), bytes.fromhex(rec["context"])
    assert context == wrap_context("00112233445566778899aabbccddeeff", 7, 2)
    assert (
        crypto.unwrap_data_key(wrapped, bytes.fromhex(k["line_private_keys"]["2"]), context).hex()
        == rec["data_key"]
    )
    for key in (user_private, line1):
        with pytest.raises(TamperError):
            crypto.unwrap_data_key(wrapped, key, context)
    # And by the code.
    (tmp_path / "keys").mkdir(mode=0o700)
    shutil.copy(FIXTURES / k["file"], tmp_path / "keys" / "keystore.json")
    store = KeyStore(tmp_path)
    with store.unlock("sam", k["supervisor"]["password"]) as sam:
        assert sam.granted == (1,) and bytes(sam.line_private(1)).hex() == k["line_private_keys"]["1"]
        with pytest.raises(NotGrantedError):
            sam.unwrap(wrapped, context, line=2)
    for opener in (
        lambda: store.unlock("admin", k["admin"]["password"]),
        lambda: store.unlock_recovery(k["recovery_key"]),
    ):
        with opener() as admin:
            assert admin.unwrap(wrapped, context, line=2).hex() == rec["data_key"]
    assert store.login("sam", k["supervisor"]["password"])[1] == split[32:]
    assert (FIXTURES / k["file"]).read_bytes() == keystore.encode_document(
        keystore.decode_document((FIXTURES / k["file"]).read_bytes())
    )


def test_line_key_pins_are_frozen(ka, tmp_path):
    """recording-key.pin's "lines" (docs/FORMAT.md): the device key's signature of
    "linekeeper line public key v1\\n" || N || 00 || the line public key."""
    from firmware.keypin import RecordingKeyPin
    from firmware.signing import verify_signature

    signer = Signer(derive_from_vault_key(bytes.fromhex(ka["device_key"]["vault_audit_key"])), "vault")
    store_doc = json.loads((FIXTURES / ka["keystore_v2"]["file"]).read_text())
    frozen = (FIXTURES / ka["line_pin"]["file"]).read_bytes()
    doc = json.loads(frozen)
    for line in ka["line_pin"]["lines"]:
        entry = doc["lines"][str(line)]
        public = base64.b64decode(store_doc["lines"][str(line)]["public_key"])
        assert base64.b64decode(entry["public_key"]) == public
        message = b"linekeeper line public key v1\n" + str(line).encode() + b"\x00" + public
        assert verify_signature(signer.public_key, bytes.fromhex(entry["sig"]), message)
    # By the code: the admin pin, then each line pinned on its first recording.
    shutil.copy(FIXTURES / "recording-key.pin", tmp_path / "recording-key.pin")
    pin = RecordingKeyPin(tmp_path, signer)
    for line in ka["line_pin"]["lines"]:
        pin.check_line(line, base64.b64decode(store_doc["lines"][str(line)]["public_key"]))
    assert (tmp_path / "recording-key.pin").read_bytes() == frozen
    with pytest.raises(TamperError, match="line 2"):
        RecordingKeyPin(tmp_path, signer).check_line(2, os.urandom(32))


def test_a_recording_with_a_key_copy_file_is_frozen(ka, tmp_path):
    """A recording made since rekey: no wrapped key in its sealed header, the 93-byte
    wrapped data key in ID.lkkey beside it (what repair reads)."""
    from firmware.recovery import _wrapped_key_copy

    r = ka["recording_keycopy"]
    frozen = (FIXTURES / r["file"]).read_bytes()
    magic, version, length = struct.unpack_from(">8sBI", frozen)
    header = json.loads(frozen[13 : 13 + length])
    assert (magic, version) == (b"\x89LKREC\r\n", 1)
    assert "wrapped_key" not in header and header["key_copy"] == "lkkey" and header["key_context"] == 2
    copy = (FIXTURES / r["key_copy"]).read_bytes()
    assert len(copy) == crypto.WRAPPED_KEY_BYTES == 93 and copy[0] == 1
    line_private = bytes.fromhex(ka["keystore_v2"]["line_private_keys"][str(r["line"])])
    context = wrap_context(r["recording_id"], header["call_id"], header["line"], header)
    data_key = crypto.unwrap_data_key(copy, line_private, context)
    assert SegmentReader(FIXTURES / r["file"], data_key).read_all() == ("".join(r["chunks"]).encode(), True)
    writer = SegmentWriter(tmp_path / "again.lkrec", r["recording_id"], data_key, r["header"], fsync=False)
    for chunk in r["chunks"]:
        writer.write_chunk(chunk.encode())
    writer.close()
    assert (tmp_path / "again.lkrec").read_bytes() == frozen

    class Store:
        def key_copy_path(self, rid):
            return FIXTURES / r["key_copy"]

    assert _wrapped_key_copy(Store(), header, r["recording_id"], str(FIXTURES / r["file"])) == copy


def test_a_call_copy_is_frozen(tmp_path):
    """ID.lkcall: the number as the call log kept it once recording ended (what repair
    reads where the header has the digits dialled as recording began)."""
    from firmware.recording.store import RecordingStore, read_call_copy

    frozen = (FIXTURES / "call-copy-v1.lkcall").read_bytes()
    doc = json.loads(frozen)
    assert frozen == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")
    assert (doc["format"], doc["version"]) == ("linekeeper-call-copy", 1)
    header = {"recording_id": doc["recording_id"], "call_id": doc["call_id"]}
    fields = read_call_copy(FIXTURES / "call-copy-v1.lkcall", header)
    assert fields == {"number": "08081570000", "digits_withheld": False}

    class Store:
        def call_copy_path(self, rid):
            return tmp_path / (rid + ".lkcall")

    RecordingStore.write_call_copy(Store(), doc["recording_id"], doc["call_id"], fields)
    assert (tmp_path / (doc["recording_id"] + ".lkcall")).read_bytes() == frozen
    with pytest.raises(ValueError, match="another recording's"):
        read_call_copy(FIXTURES / "call-copy-v1.lkcall", dict(header, call_id=doc["call_id"] + 1))


def test_every_label_in_format_md_is_the_code_s(ka):
    """docs/FORMAT.md's stated values: every domain-separation label it quotes is one the
    code uses, and its sizes and magic are the code's."""
    import re

    from firmware import handover, keypin, signing
    from firmware.recording import segment
    from firmware.storage import audit

    doc = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text()
    labels = set(re.findall(r'"(linekeeper [^"\\]*)(?:\\n)?"', doc))
    assert len(labels) >= 14, labels
    sources = b"".join(
        Path(m.__file__).read_bytes()
        for m in (crypto, keystore, keypin, signing, evidence, manifest, audit, handover)
    )
    for label in labels:
        assert label.encode() in sources, "FORMAT.md quotes %r, which no format code uses" % label
    sizes = re.search(r"## Wrapped data key, version 1 \((\d+) bytes\)", doc)
    assert int(sizes.group(1)) == crypto.WRAPPED_KEY_BYTES
    magic = re.search(r"magic\s+8\s+((?:[0-9A-F]{2} ){7}[0-9A-F]{2})", doc).group(1)
    assert bytes.fromhex(magic) == (FIXTURES / ka["recording"]["file"]).read_bytes()[:8]
    assert bytes.fromhex(magic) == segment.MAGIC
    assert f'"{keystore.FILE_FORMAT}", "version": {keystore.FILE_VERSION}' in doc
    assert "version 2: line keys and grants" in doc and keystore.FILE_VERSION == 2


JOURNAL_RECORDS = [  # (recording id, offset, data) of journal-v1.lkj: two commits
    ("00112233445566778899aabbccddeeff", 100, b"\x00\x00\x00\x05first"),
    ("ffeeddccbbaa99887766554433221100", 200, b"second line"),
    ("00112233445566778899aabbccddeeff", 109, b"third"),
]


def _write_journal(path):
    from firmware.recording.journal import Journal

    j = Journal(path, fsync=False, size_bytes=4096)
    j.deferred = True

    class Writer:
        def sync_file(self):
            pass

    writer = Writer()
    for i, (rid, offset, data) in enumerate(JOURNAL_RECORDS):
        j.append(writer, rid, offset, data)
        if i >= 1:
            j.commit()  # the first two records in one commit, the third in its own
    j.close()


def test_recording_journal_is_frozen(tmp_path):
    import zlib

    from firmware.recording.journal import read_records

    frozen = (FIXTURES / "journal-v1.lkj").read_bytes()
    # By hand, as docs/FORMAT.md describes it.
    magic, version, generation = struct.unpack_from(">8sBQ", frozen)
    assert (magic, version, generation) == (b"\x89LKJNL\r\n", 1, 1)
    assert frozen[17:512] == bytes(495)
    found, pos = [], 512
    while pos < len(frozen):
        if frozen[pos] == 0:  # a commit's padding: the next commit starts a sector
            pos = -(-pos // 512) * 512 if pos % 512 else pos + 512
            continue
        mark, length, gen, rid, offset = struct.unpack_from(">BIQ16sQ", frozen, pos)
        assert (mark, gen) == (0x4A, generation)
        crc = struct.unpack_from(">I", frozen, pos + 37)[0]
        data = frozen[pos + 41 : pos + 41 + length]
        assert crc == zlib.crc32(frozen[pos : pos + 37] + data)
        found.append((rid.hex(), offset, data))
        pos += 41 + length
    assert found == JOURNAL_RECORDS
    assert len(frozen) == 3 * 512  # header sector, then one sector per commit
    # And by the code: it reads the fixture, and writes it again byte for byte.
    assert read_records(FIXTURES / "journal-v1.lkj") == JOURNAL_RECORDS
    _write_journal(tmp_path / "again.lkj")
    assert (tmp_path / "again.lkj").read_bytes() == frozen


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
