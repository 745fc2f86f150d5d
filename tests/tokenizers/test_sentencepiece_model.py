"""The SentencePiece model reader and charsmap decoder, against the `sentencepiece` package.

Every field the tokenizer uses must equal what `SentencePieceProcessor` reports for the same
file (BPEmb's real model, every trained model, the 250k-piece one); malformed input of every
kind must give a ValueError naming the source (never another exception, a hang or a crash);
and the charsmap's decoded rules, applied to single characters, must reproduce
`processor.normalize`.
"""

import random
import struct

import numpy as np
import pytest

from roberta_tf.tokenizers import sentencepiece_model
from roberta_tf.tokenizers.sentencepiece_model import PieceType, charsmap_rules, read_model
from sentencepiece_models import TRAINED, all_models, bpemb_en, field, piece_record, spm, trained_model, varint, varint_field

SPACE_SYMBOL = "\u2581"


@pytest.fixture(scope="session")
def models():
    """{name: serialized ModelProto} of BPEmb, every trained model and the 250k one."""
    spm()
    return all_models()


@pytest.fixture(scope="session")
def small_model():
    spm()
    return trained_model("unigram-nmt_nfkc")


def test_fields_equal_the_processor_on_every_model(models):
    for name, proto in models.items():
        model = read_model(proto)
        processor = spm().SentencePieceProcessor(model_proto=proto)
        size = processor.get_piece_size()
        assert len(model.pieces) == size, name
        ids = range(size)
        assert list(model.pieces) == [processor.id_to_piece(i).encode("utf-8") for i in ids], name
        np.testing.assert_array_equal(model.scores, np.array([processor.get_score(i) for i in ids], np.float32), name)
        for check, piece_type in (
            (processor.is_unknown, PieceType.UNKNOWN),
            (processor.is_control, PieceType.CONTROL),
            (processor.is_unused, PieceType.UNUSED),
            (processor.is_byte, PieceType.BYTE),
        ):
            expected = np.array([check(i) for i in ids])
            np.testing.assert_array_equal(model.types == piece_type, expected, f"{name}: {piece_type.name}")
        assert (model.unk_id, model.bos_id, model.eos_id, model.pad_id) == (
            processor.unk_id(), processor.bos_id(), processor.eos_id(), processor.pad_id()
        ), name
        assert model.serialized == proto
        assert model.byte_fallback == ("byte_fallback" in name)
        assert (model.types == PieceType.BYTE).sum() == (256 if model.byte_fallback else 0), name
        arguments = TRAINED.get(name, {})
        assert model.model_type == arguments.get("model_type", "bpe" if name == "bpemb-en" else "unigram"), name
        assert model.normalizer.name == arguments.get("normalization_rule_name", "nfkc" if name == "bpemb-en" else "nmt_nfkc")
        assert model.normalizer.add_dummy_prefix == arguments.get("add_dummy_prefix", True), name
        assert model.normalizer.remove_extra_whitespaces == arguments.get("remove_extra_whitespaces", True), name
        assert model.normalizer.escape_whitespaces and not model.treat_whitespace_as_suffix, name
        assert (model.normalizer.precompiled_charsmap == b"") == (model.normalizer.name == "identity"), name
        user_defined = {p.encode() for p in arguments.get("user_defined_symbols", [])}
        assert {p for p, t in zip(model.pieces, model.types) if t == PieceType.USER_DEFINED} == user_defined, name


def test_reads_a_path_and_says_what_it_is(tmp_path, small_model):
    path = tmp_path / "m.model"
    path.write_bytes(small_model)
    model = read_model(path)
    assert model.pieces == read_model(str(path)).pieces == read_model(bytearray(small_model)).pieces
    assert "unigram" in repr(model) and "nmt_nfkc" in repr(model)
    with pytest.raises(ValueError, match="missing.model"):
        read_model(tmp_path / "missing.model")
    with pytest.raises(ValueError, match="empty"):
        read_model(b"")
    with pytest.raises(TypeError, match="path or bytes"):
        read_model(42)


def _top_level_boundaries(proto):
    """Offsets where ModelProto's top-level fields (all length-delimited) start and end."""
    boundaries, position = {0}, 0
    while position < len(proto):
        position += 1 if proto[position] < 0x80 else 2  # tags of fields 1..5 take one byte
        length, shift = 0, 0
        while True:
            byte = proto[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        position += length
        boundaries.add(position)
    return boundaries


def test_truncated_files_are_refused(small_model):
    """A cut inside any top-level field leaves a length that overruns the data (a cut at a
    field boundary is a shorter valid message, so those are skipped)."""
    rng = random.Random(0)
    for proto, cuts in ((small_model, 400), (bpemb_en(), 25)):
        boundaries = _top_level_boundaries(proto)
        chosen = list(range(1, 40)) + rng.sample(range(1, len(proto)), cuts) + [len(proto) - 1]
        for cut in chosen:
            if cut not in boundaries:
                with pytest.raises(ValueError, match=r"serialized SentencePiece model \(\d+ bytes\)"):
                    read_model(proto[:cut])


def test_random_bytes_are_refused():
    rng = random.Random(1)
    for size in [1, 2, 3, 5, 8, 13, 100, 1000, 10_000] * 20:
        with pytest.raises(ValueError):
            read_model(bytes(rng.getrandbits(8) for _ in range(size)))


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"\x0a" + varint(2**62) + b"x", "claims"),  # a hostile length
        (b"\x0a" + b"\xff" * 11, "varint longer than 10 bytes"),
        (b"\x0a\x80", "truncated varint"),
        (b"\x0b\x10\x01", "never closed"),  # an unterminated group
        (b"\x0b\x14", "mismatched end-group"),
        (b"\x0f", "invalid wire type"),
        (b"\x00\x00", "field number 0"),
        (b"\x0d\x00", "truncated fixed-size"),
        (field(1, b"\x08\x01"), "wire type varint"),  # piece text given as a varint
        (varint_field(1, 5), "wire type varint"),  # pieces given as a varint
        (field(2, b""), "no pieces"),
    ],
)
def test_malformed_input_gives_a_clear_error(blob, message):
    with pytest.raises(ValueError, match=message):
        read_model(blob)


def test_oversized_files_are_refused_before_reading(tmp_path, monkeypatch, small_model):
    path = tmp_path / "big.model"
    path.write_bytes(small_model)
    monkeypatch.setattr(sentencepiece_model, "MAX_MODEL_BYTES", len(small_model) - 1)
    with pytest.raises(ValueError, match="larger than any protobuf message"):
        read_model(path)


def test_models_sentencepiece_refuses_are_refused(small_model):
    model = read_model(small_model)
    normal = model.pieces[int(np.flatnonzero(model.types == PieceType.NORMAL)[0])]
    cases = {
        "defined twice": small_model + piece_record(normal),
        "is empty": small_model + piece_record(b""),
        "exactly one UNKNOWN": small_model + piece_record(b"<unk2>", piece_type=PieceType.UNKNOWN),
        "unknown type 9": small_model + piece_record(b"x9", piece_type=9),
        "without byte_fallback": small_model + piece_record(b"<0x41>", piece_type=PieceType.BYTE),
        "a WORD model": small_model + field(2, varint_field(3, 3)),
        "a CHAR model": small_model + field(2, varint_field(3, 4)),
        "unknown model type 7": small_model + field(2, varint_field(3, 7)),
        "only 1 of the 256": field(1, field(1, b"<unk>") + varint_field(3, 2))
        + piece_record(b"<0x00>", piece_type=PieceType.BYTE)
        + field(2, varint_field(35, 1)),
        "charsmap is broken": small_model + field(3, field(2, b"\x01\x00")),
        "exceeds its blob": small_model + field(3, field(2, struct.pack("<I", 100) + b"abc")),
    }
    for message, blob in cases.items():
        with pytest.raises(ValueError, match=message):
            read_model(blob)
    # The same string may be a NORMAL and a CONTROL piece, as in SentencePiece.
    assert read_model(small_model + piece_record(normal, piece_type=PieceType.CONTROL)).pieces[-1] == normal


def test_unknown_fields_are_skipped_and_messages_merge(small_model):
    """Unknown fields of every wire type are skipped; a repeated singular message merges
    (protobuf semantics), exactly as the `sentencepiece` package reads the same bytes."""
    unknown = (
        varint_field(100, 2**63)
        + varint(101 << 3 | 1) + b"\x01" * 8
        + varint(102 << 3 | 5) + b"\x02" * 4
        + field(103, b"anything")
        + varint(104 << 3 | 3) + varint_field(1, 7) + varint(105 << 3 | 3) + varint(105 << 3 | 4) + varint(104 << 3 | 4)
    )
    extended = small_model + unknown + field(3, unknown + varint_field(3, 0) + varint_field(5, 0))
    model = read_model(extended)
    original = read_model(small_model)
    assert model.pieces == original.pieces and model.normalizer.name == original.normalizer.name
    assert model.normalizer.precompiled_charsmap == original.normalizer.precompiled_charsmap
    assert not model.normalizer.add_dummy_prefix and not model.normalizer.escape_whitespaces
    processor = spm().SentencePieceProcessor(model_proto=extended)
    assert processor.normalize(" a  b ") == "a b"  # no dummy prefix, spaces not escaped
    suffix = read_model(small_model + field(2, varint_field(24, 1)))
    assert suffix.treat_whitespace_as_suffix


def _one_rule_output(replacement):
    """What SentencePiece's normalizer makes of a text that is exactly one rule's input."""
    kept = replacement.lstrip(" ")  # nothing output yet: leading spaces go
    return (SPACE_SYMBOL + kept.replace(" ", SPACE_SYMBOL)).rstrip(SPACE_SYMBOL)


def test_charsmap_rules_reproduce_the_processor(models):
    """Each rule's input alone normalizes to its replacement; every other BMP character
    (no rule) is left alone, for BPEmb and the trained nmt_nfkc / nfkc_cf models."""
    bmp = [chr(c) for c in range(1, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    for name in ("bpemb-en", "unigram-nmt_nfkc", "unigram-nfkc_cf"):
        proto = models[name]
        rules = charsmap_rules(read_model(proto).normalizer.precompiled_charsmap)
        processor = spm().SentencePieceProcessor(model_proto=proto)
        assert len(rules) > 1000 and all(key and b"\0" not in key for key in rules), name
        wrong = [
            (key, value)
            for key, value in rules.items()
            if processor.normalize(key.decode("utf-8")) != _one_rule_output(value.decode("utf-8"))
        ]
        assert not wrong, (name, len(wrong), wrong[:5])
        unchanged = [c for c in bmp if c.encode() not in rules]
        changed = [c for c in unchanged if processor.normalize(c) != _one_rule_output(c)]
        assert not changed, (name, len(changed), changed[:5])
    assert read_model(models["unigram-identity"]).normalizer.precompiled_charsmap == b""


def test_charsmap_decoder_refuses_broken_arrays(models):
    blob = read_model(models["unigram-nmt_nfkc"]).normalizer.precompiled_charsmap
    trie_size = struct.unpack_from("<I", blob)[0]
    with pytest.raises(ValueError, match="broken"):
        charsmap_rules(blob[:3])
    with pytest.raises(ValueError, match="exceeds"):
        charsmap_rules(struct.pack("<I", len(blob)) + blob[4:])
    with pytest.raises(ValueError, match="past"):  # replacement strings cut away
        charsmap_rules(blob[: 4 + trie_size + 1])
    rng = np.random.default_rng(2)
    for _ in range(50):  # garbage arrays: decoded or refused, never another exception
        units = rng.integers(0, 2**32, size=int(rng.integers(1, 4000)), dtype=np.uint64).astype("<u4")
        garbage = struct.pack("<I", units.nbytes) + units.tobytes() + b"x\0" * 10
        try:
            charsmap_rules(garbage)
        except ValueError:
            pass
