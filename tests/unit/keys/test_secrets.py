"""API key format: 256 random bits, a checksum that catches typos, never the same key twice."""

from __future__ import annotations

from gpucloud.keys import digest, generate_key, well_formed


def test_generated_keys_are_well_formed_and_unique() -> None:
    keys = {generate_key() for _ in range(2000)}
    assert len(keys) == 2000
    for key in list(keys)[:50]:
        assert key.startswith("gc_")
        assert len(key) == 52
        assert well_formed(key)


def test_checksum_catches_any_single_character_change() -> None:
    key = generate_key()
    for pos in range(3, len(key)):
        replacement = "a" if key[pos] != "a" else "b"
        assert not well_formed(key[:pos] + replacement + key[pos + 1 :])


def test_foreign_strings_are_not_well_formed() -> None:
    for text in ("", "gc_", "sk-abc", "gc_" + "!" * 49, generate_key() + "x"):
        assert not well_formed(text)


def test_digest_is_sha256_hex() -> None:
    # FIPS 180-2 test vector
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
