"""SentencePiece normalization on integer TF ops equals `processor.normalize`, byte for byte.

Reference: the `sentencepiece` package (its Python API takes bytes too, so malformed UTF-8
is compared directly). Each corpus set goes through one graph call per model; the option
variants (no escaping, no whitespace removal, whitespace as suffix) are the trained model's
bytes with a NormalizerSpec / TrainerSpec field appended, which protobuf merges, so the
package and our reader see the same model.
"""

import time

import numpy as np
import pytest
import tensorflow as tf

import corpora
from roberta_tf.export.tflite_ops import non_builtin_operators
from roberta_tf.tokenizers.sentencepiece_model import PieceType, charsmap_rules, read_model
from roberta_tf.tokenizers.sentencepiece_normalizer import SentencePieceNormalizer
from sentencepiece_models import bpemb_en, field, spm, trained_model

pytestmark = pytest.mark.slow


def _variant(proto, normalizer=b"", trainer=b""):
    return proto + (field(3, normalizer) if normalizer else b"") + (field(2, trainer) if trainer else b"")


VARIANTS = {  # name -> (base model, NormalizerSpec fields, TrainerSpec fields)
    "nmt_nfkc-no-escape": ("unigram-nmt_nfkc", b"\x28\x00", b""),
    "nmt_nfkc-keep-spaces": ("unigram-nmt_nfkc", b"\x20\x00", b""),
    "nmt_nfkc-suffix": ("unigram-nmt_nfkc", b"", b"\xc0\x01\x01"),
    "nmt_nfkc-suffix-keep-spaces-no-escape": ("unigram-nmt_nfkc", b"\x20\x00\x28\x00", b"\xc0\x01\x01"),
    "nmt_nfkc-no-dummy": ("unigram-nmt_nfkc", b"\x18\x00", b""),
}


def _proto(name):
    if name == "bpemb-en":
        return bpemb_en()
    if name in VARIANTS:
        base, normalizer, trainer = VARIANTS[name]
        return _variant(trained_model(base), normalizer, trainer)
    return trained_model(name)


class Normalizers:
    """Per model name, built once: (processor, our normalizer, its tf.function)."""

    def __init__(self):
        self._cache = {}

    def __getitem__(self, name):
        if name not in self._cache:
            proto = _proto(name)
            model = read_model(proto)
            user_defined = [p for p, t in zip(model.pieces, model.types) if t == PieceType.USER_DEFINED]
            normalizer = SentencePieceNormalizer(model.normalizer, user_defined, model.treat_whitespace_as_suffix)
            function = tf.function(normalizer.normalize_bytes)
            self._cache[name] = (spm().SentencePieceProcessor(model_proto=proto), normalizer, function)
        return self._cache[name]


@pytest.fixture(scope="session")
def normalizers():
    spm()
    return Normalizers()


def normalize_batch(function, texts):
    """Our outputs (bytes) for a list of str/bytes texts, in one graph call."""
    raw = [t.encode("utf-8") if isinstance(t, str) else t for t in texts]
    flat = np.frombuffer(b"".join(raw), np.uint8).astype(np.int32)
    text_ids = np.repeat(np.arange(len(raw)), [len(r) for r in raw]).astype(np.int32)
    out, out_ids = function(tf.constant(flat), tf.constant(text_ids), tf.constant(len(raw)))
    out, out_ids = out.numpy().astype(np.uint8), out_ids.numpy()
    ends = np.cumsum(np.bincount(out_ids, minlength=len(raw)))
    starts = np.r_[0, ends[:-1]]
    return [out[s:e].tobytes() for s, e in zip(starts, ends)]


def assert_same(processor, texts, got):
    raw = [t.encode("utf-8") if isinstance(t, str) else t for t in texts]
    expected = [processor.normalize(r) for r in raw]
    bad = [(r, e, g) for r, e, g in zip(raw, expected, got) if e != g]
    assert not bad, f"{len(bad)} of {len(raw)} differ from sentencepiece, e.g. (text, expected, got): {bad[:3]}"


@pytest.fixture(scope="module")
def every_text():
    return [t for texts in corpora.all_corpora().values() for t in texts]


@pytest.fixture(scope="module")
def sample_texts(every_text):
    """Every 16th text of every corpus (about 0.7 MB), the fuzz among them."""
    return every_text[::16]


@pytest.mark.parametrize("name", ["bpemb-en", "unigram-nmt_nfkc"])
def test_every_corpus(normalizers, every_text, name):
    processor, _, function = normalizers[name]
    assert_same(processor, every_text, normalize_batch(function, every_text))


@pytest.mark.parametrize(
    "name", ["unigram-identity", "unigram-nfkc_cf", "unigram-user_defined", "bpe-identity", *VARIANTS]
)
def test_corpus_sample(normalizers, sample_texts, name):
    processor, _, function = normalizers[name]
    assert_same(processor, sample_texts, normalize_batch(function, sample_texts))


HAND_CASES = [
    "", " ", "   ", "\t", "\n", " \t\n\r\x0b\x0c ", "a", " a", "a ", "  a  b  ", "a\tb\nc\r\nd",
    "\x00", "a\x00b", " \x00 ", "\x00\x00", "▁", "a ▁", "▁ a ▁▁", " ▁ ", "\u3000x\u3000", "a\u00a0\u00a0b",
    "a ¨", "¨", " ¨ ¨", "\ufdfa", "x\ufdfa y", "ｈｅｌｌｏ　ｗｏｒｌｄ", "\u200b", "x\u200b", "\u200b x \u200b",
    "한국어", "\u1100\u1161\u11a8", "e\u0301", "<url> x ▁@@ 2024 <url><url>", " <url> ", "2024", "▁@@",
    b"\xff", b"a\xffb", b"\x80\x80\x80", b"\xc0\x80", b"\xc2", b"\xe2\x96", b"\xe2\x96 ", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf0\x9f\x98", b"\xef\xbf\xbd", b" \xff \xfe ", b"\xe1\x84\x80\x00\xe1\x85\xa1",
]
HAND_MODELS = ["bpemb-en", "unigram-nmt_nfkc", "unigram-identity", "unigram-nfkc_cf", "unigram-user_defined",
               "bpe-identity", *VARIANTS]


@pytest.mark.parametrize("name", HAND_MODELS)
def test_hand_cases(normalizers, name):
    """Empty and whitespace-only texts, NUL, malformed UTF-8 (each bad byte one U+FFFD, as
    the package gives for bytes input), rules with spaces or several characters."""
    processor, normalizer, function = normalizers[name]
    assert_same(processor, HAND_CASES, normalize_batch(function, HAND_CASES))
    # The one-text path (TFLite's) equals the batch path.
    for text in HAND_CASES[:: 3 if name in VARIANTS else 1]:
        raw = text.encode() if isinstance(text, str) else text
        out, text_ids = normalizer.normalize_bytes(tf.constant(list(raw), tf.int32), None, 1)
        assert text_ids is None
        assert bytes(out.numpy().astype(np.uint8).tolist()) == processor.normalize(raw), (name, raw)


def test_documented_odd_input(normalizers):
    processor, _, function = normalizers["unigram-nmt_nfkc"]
    texts = [b"a\xffb", b"\xe2\x96", "a\x00b", "\t x \n"]
    assert normalize_batch(function, texts) == ["▁a\ufffdb".encode(), "▁\ufffd\ufffd".encode(), "▁a\x00b".encode(), "▁x".encode()]
    _, _, bpemb_function = normalizers["bpemb-en"]
    assert normalize_batch(bpemb_function, ["\t x \n"]) == ["▁\t▁x▁\n".encode()]  # BPEmb's nfkc keeps controls


def test_nul_inside_rule_keys(normalizers):
    """A NUL between the characters of a multi-character rule breaks the match, as in
    SentencePiece (its double array never continues through a NUL)."""
    for name in ("bpemb-en", "unigram-nmt_nfkc"):
        processor, normalizer, function = normalizers[name]
        rules = charsmap_rules(normalizer.spec.precompiled_charsmap)
        keys = [k for k in rules if len(k.decode()) >= 2][::50]
        texts = []
        for key in keys:
            chars = key.decode()
            texts.append((chars[0] + "\x00" + chars[1:]).encode())
            texts.append(key[:1] + b"\x00" + key[1:])  # inside a character: malformed bytes too
        assert len(texts) > 100
        assert_same(processor, texts, normalize_batch(function, texts))


def test_a_megabyte_text_in_bounded_time(normalizers):
    """1 MB in one text: rules everywhere (Hangul jamo triples are 9-byte rules that overlap
    the next syllable's start), spaces, malformed bytes."""
    processor, _, function = normalizers["unigram-nmt_nfkc"]
    unit = ("\u1100\u1161\u11a8\u1100\u1161 a  ¨ ｈ\ufdfa" * 3).encode() + b"\xff\x00 \xe2\x96"
    text = unit * (2**20 // len(unit))
    start = time.perf_counter()
    got = normalize_batch(function, [text, b"", text[:1000]])
    elapsed = time.perf_counter() - start
    assert_same(processor, [text, b"", text[:1000]], got)
    assert elapsed < 60, f"{elapsed:.1f} s for 1 MB"


def test_converts_to_tflite_builtins(normalizers, tmp_path):
    processor, normalizer, _ = normalizers["unigram-user_defined"]

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def normalize(self, byte_values):
            return normalizer.normalize_bytes(byte_values, None, 1)[0]

    module = Module()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.normalize.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    assert non_builtin_operators(content) == []
    interpreter = tf.lite.Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    for text in [t for t in HAND_CASES if t] + ["Ｔｈｅ  ｑｕｉｃｋ ¨ <url>   fox ﷺ "]:
        raw = text.encode() if isinstance(text, str) else text
        out = runner(byte_values=np.frombuffer(raw, np.uint8).astype(np.int32))
        (values,) = out.values()
        assert bytes(values.astype(np.uint8).tolist()) == processor.normalize(raw), raw
