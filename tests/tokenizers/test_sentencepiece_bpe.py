"""SentencePiece BPE segmentation on integer TF ops: ids equal to `sentencepiece`'s.

The segmenter's input is the normalized text (`processor.normalize(text)` as UTF-8), and its
ids must equal `processor.encode(text)`: Encode normalizes, then segments the normalized text
(checked here on every corpus, so the claim is tested rather than assumed).
"""

import io
import time

import numpy as np
import pytest
import tensorflow as tf

from corpora import all_corpora, xnli
from sentencepiece_models import bpemb_en, spm, trained_model

from roberta_tf.tokenizers.sentencepiece_bpe import SentencePieceBpe

BPE_MODELS = ["bpemb-en", "bpe-nmt_nfkc", "bpe-identity", "bpe-byte_fallback"]
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _model_arrays(processor):
    """(pieces, scores, types, unk_id) read through the processor API."""
    size = processor.get_piece_size()
    types = []
    for i in range(size):
        kind = NORMAL
        for check, value in (
            (processor.is_unknown, UNKNOWN), (processor.is_control, CONTROL),
            (processor.is_unused, UNUSED), (processor.is_byte, BYTE),
        ):
            if check(i):
                kind = value
        types.append(kind)
    pieces = [processor.id_to_piece(i).encode("utf-8") for i in range(size)]
    scores = [processor.get_score(i) for i in range(size)]
    return pieces, scores, types, processor.unk_id()


def _mark_user_defined(types, pieces, user_defined):
    """The processor API cannot tell USER_DEFINED from NORMAL; the trainer's list can."""
    wanted = {u.encode("utf-8") for u in user_defined}
    return [USER_DEFINED if p in wanted else t for p, t in zip(pieces, types)]


class _Segmenter:
    """A processor and our segmenter for one model, with one traced graph for batches."""

    def __init__(self, proto, user_defined=()):
        self.processor = spm().SentencePieceProcessor(model_proto=proto)
        pieces, scores, types, unk_id = _model_arrays(self.processor)
        types = _mark_user_defined(types, pieces, user_defined)
        self.byte_fallback = BYTE in types
        self.bpe = SentencePieceBpe(pieces, scores, types, unk_id, self.byte_fallback)
        vector = tf.TensorSpec([None], tf.int32)
        self._batch = tf.function(self.bpe.segment, input_signature=[vector, vector, tf.TensorSpec([], tf.int32)])
        self._single = tf.function(lambda b: self.bpe.segment(b, None, None)[0], input_signature=[vector])

    def normalized(self, texts):
        return [self.processor.normalize(text).encode("utf-8") for text in texts]

    def segment_batch(self, texts):
        """Our ids per text, from one graph call."""
        normalized = self.normalized(texts)
        flat = np.frombuffer(b"".join(normalized), np.uint8).astype(np.int32)
        text_ids = np.repeat(np.arange(len(texts), dtype=np.int32), [len(n) for n in normalized])
        ids, token_texts = self._batch(tf.constant(flat), tf.constant(text_ids), tf.constant(len(texts), tf.int32))
        ids, token_texts = ids.numpy(), token_texts.numpy()
        bounds = np.searchsorted(token_texts, np.arange(len(texts) + 1))
        return [ids[bounds[i] : bounds[i + 1]].tolist() for i in range(len(texts))]

    def segment_single(self, text):
        raw = self.normalized([text])[0]
        return self._single(tf.constant(np.frombuffer(raw, np.uint8).astype(np.int32))).numpy().tolist()


@pytest.fixture(scope="session")
def segmenters():
    made = {}

    def get(name):
        if name not in made:
            made[name] = _Segmenter(bpemb_en() if name == "bpemb-en" else trained_model(name))
        return made[name]

    return get


@pytest.fixture(scope="session")
def corpus_texts():
    return [text for texts in all_corpora().values() for text in texts]


@pytest.mark.parametrize("name", BPE_MODELS)
def test_every_corpus_matches_sentencepiece(segmenters, corpus_texts, name):
    segmenter = segmenters(name)
    got = segmenter.segment_batch(corpus_texts)
    want = segmenter.processor.encode(corpus_texts)
    wrong = [i for i, (w, g) in enumerate(zip(want, got)) if w != g]
    examples = [(corpus_texts[i][:60], want[i][:12], got[i][:12]) for i in wrong[:5]]
    assert not wrong, f"{len(wrong)} of {len(corpus_texts)} texts differ, e.g. {examples}"


HAND_CASES = [
    "", "a", "é", " ", "aaaaaaa", "aaaaaaaa", "▁▁▁▁", "▁▁▁▁▁", "  spaced   out  ", "x▁y",
    "unknown ☃☃☃ runs ☃ and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝔘 end☃", "☃", "☃☃", "\ufffd\ufffd", "tab\there",
    "ab" * 40, "the the the the", "Ωмега ωμέγα", "漢字漢字かなカナ", "2024年", "<s> </s> <unk>",
]


@pytest.mark.parametrize("name", ["bpemb-en", "bpe-byte_fallback"])
def test_hand_cases_batched_and_single(segmenters, name):
    segmenter = segmenters(name)
    got = segmenter.segment_batch(HAND_CASES)
    for text, ours in zip(HAND_CASES, got):
        want = segmenter.processor.encode(text)
        assert ours == want, (text, want, ours)
    for text in HAND_CASES[:12]:  # the one-text (TFLite) path gives the same ids
        assert segmenter.segment_single(text) == segmenter.processor.encode(text), text


def test_unknown_runs_are_one_unk_without_byte_fallback(segmenters):
    segmenter = segmenters("bpe-nmt_nfkc")
    ids = segmenter.segment_batch(["a☃☃☃b"])[0]
    unk = segmenter.processor.unk_id()
    assert ids.count(unk) == 1 and ids == segmenter.processor.encode("a☃☃☃b")


def test_unknown_characters_become_bytes_with_byte_fallback(segmenters):
    segmenter = segmenters("bpe-byte_fallback")
    ids = segmenter.segment_batch(["a☃☃b"])[0]
    byte_pieces = [segmenter.processor.id_to_piece(i) for i in ids if segmenter.processor.is_byte(i)]
    assert byte_pieces == ["<0xE2>", "<0x98>", "<0x83>"] * 2
    assert ids == segmenter.processor.encode("a☃☃b")


def test_long_text_is_exact_and_bounded(segmenters):
    segmenter = segmenters("bpemb-en")
    long_text = " ".join(xnli("en"))[:300_000] + " " + "a" * 20_000 + "☃" * 5_000
    start = time.perf_counter()
    ours = segmenter.segment_batch([long_text])[0]
    elapsed = time.perf_counter() - start
    assert ours == segmenter.processor.encode(long_text)
    assert elapsed < 30, f"{elapsed:.1f} s for {len(long_text):,} characters"


def test_user_defined_pieces_are_matched_whole_and_frozen():
    user_defined = ["<url>", "▁@@", "2024", "ab", "abc"]
    texts = xnli("en")[:3000] + xnli("de")[:3000]
    model = io.BytesIO()
    spm().SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=600, model_type="bpe",
        user_defined_symbols=user_defined, remove_extra_whitespaces=False, minloglevel=2, num_threads=1,
    )
    segmenter = _Segmenter(model.getvalue(), user_defined)
    cases = [
        "see <url> and <url><url> in 2024, 20242024 @@ x @@@@", "abcab abab abcabc aab", "<ur <url", "",
        "2024" * 50,
    ] + texts[:500]
    got = segmenter.segment_batch(cases)
    for text, ours in zip(cases, got):
        assert ours == segmenter.processor.encode(text), text
    assert segmenter.segment_single(cases[0]) == segmenter.processor.encode(cases[0])


def test_unused_pieces_that_merges_make_are_rejected():
    pieces = [b"<unk>", b"a", b"b", b"ab"]
    with pytest.raises(ValueError, match="UNUSED"):
        SentencePieceBpe(pieces, [0.0, -1.0, -2.0, -0.5], [UNKNOWN, NORMAL, NORMAL, UNUSED], 0, False)
    with pytest.raises(ValueError, match="unk_id"):
        SentencePieceBpe(pieces, [0.0, -1.0, -2.0, -0.5], [NORMAL, NORMAL, NORMAL, NORMAL], 0, False)
    with pytest.raises(ValueError, match="byte"):
        SentencePieceBpe(pieces, [0.0, -1.0, -2.0, -0.5], [UNKNOWN, NORMAL, NORMAL, NORMAL], 0, True)


def test_builtin_only_tflite_segmenter(segmenters, tflite_runner_factory):
    from roberta_tf.export import tflite_ops

    segmenter = segmenters("bpe-byte_fallback")

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="utf8_bytes")])
        def segment(self, utf8_bytes):
            return {"piece_ids": segmenter.bpe.segment(utf8_bytes, None, None)[0]}

    module = Module()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.segment.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    assert tflite_ops.non_builtin_operators(model) == []
    runner = tflite_runner_factory(model)
    for text in ["", "a", "aaaaaaa", "▁▁▁▁", "a☃☃b", "The quick brown fox jumps over the lazy dog."] + xnli("fr")[:20]:
        raw = np.frombuffer(segmenter.normalized([text])[0], np.uint8).astype(np.int32)
        assert runner(utf8_bytes=raw)["piece_ids"].tolist() == segmenter.processor.encode(text), text
