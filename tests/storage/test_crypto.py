import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.errors import LinekeeperError, StreamFinishedError, TamperError
from firmware.storage import crypto
from firmware.storage.crypto import (
    KEY_BYTES,
    TAG_BYTES,
    WRAPPED_KEY_BYTES,
    StreamOpener,
    StreamSealer,
    new_data_key,
    new_key_pair,
    public_key_of,
    unwrap_data_key,
    wrap_data_key,
)

HEADER = b"LKREC1 line=2 id=0001"


def seal_all(key, chunks, aad=HEADER):
    sealer = StreamSealer(key, aad)
    return [sealer.seal(c, final=(i == len(chunks) - 1)) for i, c in enumerate(chunks)]


def read_stream(key, sealed, aad=HEADER):
    """The reader protocol: every chunk but the last is not final; the last is tried
    as not final, then as final. Returns (plaintext, complete)."""
    opener = StreamOpener(key, aad)
    out = [opener.open(c, final=False) for c in sealed[:-1]]
    try:
        out.append(opener.open(sealed[-1], final=False))
        return b"".join(out), False  # the real final chunk is missing: truncated
    except TamperError:
        out.append(opener.open(sealed[-1], final=True))
        return b"".join(out), True


def bad_stream(key, sealed, aad=HEADER):
    """True when the reader cannot accept ``sealed`` as a complete stream."""
    try:
        return not read_stream(key, sealed, aad)[1]
    except TamperError:
        return True


CHUNKS = [b"hello ", b"caller, ", b"this call ", b"is recorded"]


# --- STREAM ---------------------------------------------------------------------------


def test_round_trip():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    assert [len(s) for s in sealed] == [len(c) + TAG_BYTES for c in CHUNKS]
    assert read_stream(key, sealed) == (b"".join(CHUNKS), True)


def test_empty_final_chunk_and_single_chunk_streams():
    key = new_data_key()
    sealer = StreamSealer(key, HEADER)
    sealed = [sealer.seal(b"audio"), sealer.seal(b"", final=True)]
    assert read_stream(key, sealed) == (b"audio", True)
    assert read_stream(key, seal_all(key, [b""])) == (b"", True)


def test_nonce_is_counter_then_final_flag():
    """Pin the layout another reader (or a future version) must reproduce."""
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    aead = ChaCha20Poly1305(key)
    for i, (plain, chunk) in enumerate(zip(CHUNKS, sealed, strict=False)):
        flag = b"\x01" if i == len(CHUNKS) - 1 else b"\x00"
        assert aead.decrypt(i.to_bytes(11, "big") + flag, chunk, HEADER) == plain


def test_sealer_refuses_after_final():
    sealer = StreamSealer(new_data_key())
    sealer.seal(b"last", final=True)
    assert sealer.finished and sealer.chunks_sealed == 1
    with pytest.raises(StreamFinishedError):
        sealer.seal(b"more")
    with pytest.raises(StreamFinishedError):
        sealer.seal(b"more", final=True)


def test_truncation_is_detected():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    for keep in range(1, len(sealed)):
        assert read_stream(key, sealed[:keep]) == (b"".join(CHUNKS[:keep]), False)


def test_reordered_chunks_fail():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    sealed[1], sealed[2] = sealed[2], sealed[1]
    assert bad_stream(key, sealed)


def test_duplicated_chunk_fails():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    assert bad_stream(key, sealed[:2] + sealed[1:])


def test_anything_after_the_final_chunk_fails():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    opener = StreamOpener(key, HEADER)
    for i, c in enumerate(sealed):
        opener.open(c, final=i == len(sealed) - 1)
    assert opener.finished
    with pytest.raises(TamperError):
        opener.open(sealed[-1], final=True)


def test_a_failed_open_does_not_advance_the_stream():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS[:2])
    opener = StreamOpener(key, HEADER)
    with pytest.raises(TamperError):
        opener.open(sealed[0], final=True)
    assert opener.chunks_opened == 0
    assert opener.open(sealed[0], final=False) == CHUNKS[0]


def test_every_bit_flip_in_a_small_stream_fails():
    key = new_data_key()
    sealed = seal_all(key, [b"ab", b"cde", b""])
    for index in range(len(sealed)):
        for pos in range(len(sealed[index])):
            for bit in range(8):
                mutated = list(sealed)
                chunk = bytearray(mutated[index])
                chunk[pos] ^= 1 << bit
                mutated[index] = bytes(chunk)
                assert bad_stream(key, mutated), (index, pos, bit)


def test_wrong_key_and_wrong_header_fail():
    key = new_data_key()
    sealed = seal_all(key, CHUNKS)
    assert bad_stream(new_data_key(), sealed)
    assert bad_stream(key, sealed, aad=HEADER + b"x")
    assert bad_stream(key, sealed, aad=b"")


def test_short_chunk_fails_cleanly():
    opener = StreamOpener(new_data_key())
    with pytest.raises(TamperError):
        opener.open(b"\x00" * (TAG_BYTES - 1), final=False)


def test_bad_key_sizes_are_refused():
    for bad in (b"", b"k" * 31, b"k" * 33, "k" * 32):
        with pytest.raises(ValueError):
            StreamSealer(bad)
        with pytest.raises(ValueError):
            StreamOpener(bad)


def test_tamper_error_is_in_the_hierarchy():
    assert issubclass(TamperError, LinekeeperError) and issubclass(TamperError, ValueError)


def test_data_keys_are_random():
    assert len(new_data_key()) == KEY_BYTES
    assert len({new_data_key() for _ in range(100)}) == 100


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=8), st.binary(max_size=40))
def test_property_round_trip(chunks, aad):
    key = new_data_key()
    assert read_stream(key, seal_all(key, chunks, aad), aad) == (b"".join(chunks), True)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=32), min_size=2, max_size=6), st.data())
def test_property_any_rearrangement_fails(chunks, data):
    """Any other sequence of the sealed chunks (dropped, repeated, reordered) is refused,
    except a prefix, which reads back as truncated."""
    key = new_data_key()
    sealed = seal_all(key, chunks)
    order = data.draw(st.lists(st.integers(0, len(sealed) - 1), min_size=1, max_size=8))
    if order == list(range(len(sealed))):
        return
    mutated = [sealed[i] for i in order]
    if order == list(range(len(order))):
        assert read_stream(key, mutated)[1] is False
    else:
        assert bad_stream(key, mutated)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.binary(max_size=32), min_size=1, max_size=4), st.data())
def test_property_any_byte_change_fails(chunks, data):
    key = new_data_key()
    sealed = seal_all(key, chunks)
    index = data.draw(st.integers(0, len(sealed) - 1))
    pos = data.draw(st.integers(0, len(sealed[index]) - 1))
    delta = data.draw(st.integers(1, 255))
    chunk = bytearray(sealed[index])
    chunk[pos] ^= delta
    sealed[index] = bytes(chunk)
    assert bad_stream(key, sealed)


# --- wrapped data keys -----------------------------------------------------------------


def test_wrap_round_trip_with_bytes_or_bytearray_private_key():
    private, public = new_key_pair()
    assert public_key_of(private) == public
    data_key = new_data_key()
    wrapped = wrap_data_key(data_key, public, b"rec-0001")
    assert len(wrapped) == WRAPPED_KEY_BYTES == 93
    assert wrapped[0] == 1
    assert unwrap_data_key(wrapped, private, b"rec-0001") == data_key
    assert unwrap_data_key(wrapped, bytearray(private), b"rec-0001") == data_key


def test_wrapping_is_randomised():
    _, public = new_key_pair()
    data_key = new_data_key()
    assert wrap_data_key(data_key, public, b"r") != wrap_data_key(data_key, public, b"r")


def test_wrap_construction_matches_its_description():
    """version || eph_pub || nonce || ct, HKDF-SHA256(salt=eph_pub||recipient_pub,
    info="linekeeper data key"||context), ChaCha20-Poly1305."""
    private, public = new_key_pair()
    data_key = new_data_key()
    wrapped = wrap_data_key(data_key, public, b"rec-42")
    eph_pub, nonce, ct = wrapped[1:33], wrapped[33:45], wrapped[45:]
    shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(eph_pub))
    kek = HKDF(hashes.SHA256(), 32, salt=eph_pub + public, info=b"linekeeper data key" + b"rec-42").derive(
        shared
    )
    assert ChaCha20Poly1305(kek).decrypt(nonce, ct, wrapped[:45]) == data_key


def test_wrapped_key_is_bound_to_its_context_and_recipient():
    private, public = new_key_pair()
    other_private, _ = new_key_pair()
    wrapped = wrap_data_key(new_data_key(), public, b"rec-0001")
    with pytest.raises(TamperError):
        unwrap_data_key(wrapped, private, b"rec-0002")
    with pytest.raises(TamperError):
        unwrap_data_key(wrapped, private, b"")
    with pytest.raises(TamperError):
        unwrap_data_key(wrapped, other_private, b"rec-0001")


def test_every_byte_of_a_wrapped_key_is_protected():
    private, public = new_key_pair()
    wrapped = wrap_data_key(new_data_key(), public, b"rec")
    for pos in range(len(wrapped)):
        mutated = bytearray(wrapped)
        mutated[pos] ^= 0x01
        with pytest.raises(TamperError):
            unwrap_data_key(bytes(mutated), private, b"rec")
    for bad in (wrapped[:-1], wrapped + b"\x00", b""):
        with pytest.raises(TamperError):
            unwrap_data_key(bad, private, b"rec")


def test_low_order_points_are_refused():
    private, public = new_key_pair()
    with pytest.raises(ValueError):
        wrap_data_key(new_data_key(), bytes(32), b"rec")
    wrapped = bytearray(wrap_data_key(new_data_key(), public, b"rec"))
    wrapped[1:33] = bytes(32)
    with pytest.raises(TamperError):
        unwrap_data_key(bytes(wrapped), private, b"rec")


def test_wrap_refuses_bad_key_sizes():
    private, public = new_key_pair()
    with pytest.raises(ValueError):
        wrap_data_key(b"short", public, b"rec")
    with pytest.raises(ValueError):
        wrap_data_key(new_data_key(), public[:31], b"rec")
    with pytest.raises(ValueError):
        unwrap_data_key(b"\x01" * WRAPPED_KEY_BYTES, private[:31], b"rec")


def test_context_must_be_bytes():
    private, public = new_key_pair()
    for context in ("rec-1", 7, None):
        with pytest.raises(TypeError, match="context must be bytes"):
            wrap_data_key(new_data_key(), public, context)
    wrapped = wrap_data_key(new_data_key(), public, b"rec-1")
    with pytest.raises(TypeError):
        unwrap_data_key(wrapped, private, "rec-1")


def test_recorder_needs_only_the_public_key():
    """Sealing a recording uses no secret of the box: only its public key."""
    private, public = new_key_pair()
    data_key = new_data_key()
    wrapped = wrap_data_key(data_key, public, b"rec-7")
    sealed = seal_all(data_key, CHUNKS)
    del data_key
    assert read_stream(unwrap_data_key(wrapped, private, b"rec-7"), sealed)[0] == b"".join(CHUNKS)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=64), st.binary(max_size=64))
def test_property_wrap_round_trip_and_context_binding(data_key, context, other):
    private, public = new_key_pair()
    wrapped = wrap_data_key(data_key, public, context)
    assert unwrap_data_key(wrapped, private, context) == data_key
    if other != context:
        with pytest.raises(TamperError):
            unwrap_data_key(wrapped, private, other)


def test_module_constants():
    assert crypto.KEY_BYTES == 32 and crypto.TAG_BYTES == 16 and crypto.NONCE_BYTES == 12
