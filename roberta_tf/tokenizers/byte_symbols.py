"""GPT-2's byte <-> symbol table: each of the 256 byte values is drawn as one printable character.

Byte-level BPE vocabularies spell tokens in these characters (`Ġ` is the space byte 0x20), so
any byte string, valid UTF-8 or not, has a spelling and decodes back to itself exactly.
"""

import functools


@functools.lru_cache(maxsize=1)
def byte_to_symbol():
    """The 256-entry map from byte value to its one-character symbol (GPT-2 `bytes_to_unicode`)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    # Bytes without a printable Latin-1 glyph (controls, space, 0x7F-0xA0, 0xAD) are moved
    # above U+00FF in byte order: 0x00 -> U+0100, ..., 0x20 (space) -> U+0120 `Ġ`.
    shifted = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + shifted)
            shifted += 1
    return mapping


@functools.lru_cache(maxsize=1)
def symbol_to_byte():
    """The inverse of `byte_to_symbol`."""
    return {symbol: b for b, symbol in byte_to_symbol().items()}


def token_to_bytes(token):
    """The raw bytes a vocabulary token spells, or None if it is not made of byte symbols."""
    table = symbol_to_byte()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:
        return None
