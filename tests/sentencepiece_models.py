"""SentencePiece models for the parity tests: the real BPEmb model and models trained here.

The trained models come from `sentencepiece`'s own trainer on XNLI dev text (all 15
languages), once per test session. They cover what XLM-R-style models use and what a
tokenizer must get right beyond it: both model types, the three built-in normalizers,
byte fallback, user-defined pieces, and a unigram model with as many pieces as XLM-R's
(250,002). Each entry is the serialized `ModelProto` (bytes).
"""

import collections
import functools
import io
import math

import pytest

from conftest import shared_path
from corpora import XNLI_LANGUAGES, xnli
# The library's protobuf wire-format writers, re-exported under the short names the tests use.
from roberta_tf.tokenizers.sentencepiece_model_writer import message_field as field  # noqa: F401
from roberta_tf.tokenizers.sentencepiece_model_writer import piece_record, varint, varint_field  # noqa: F401

# name -> trainer arguments (beyond the shared ones in `_train`).
TRAINED = {
    "unigram-nmt_nfkc": dict(model_type="unigram", normalization_rule_name="nmt_nfkc"),
    "unigram-identity": dict(model_type="unigram", normalization_rule_name="identity"),
    "unigram-nfkc_cf": dict(model_type="unigram", normalization_rule_name="nfkc_cf"),
    "unigram-byte_fallback": dict(model_type="unigram", byte_fallback=True),
    "unigram-user_defined": dict(
        model_type="unigram", user_defined_symbols=["<url>", "▁@@", "2024"], remove_extra_whitespaces=False
    ),
    "bpe-nmt_nfkc": dict(model_type="bpe", normalization_rule_name="nmt_nfkc"),
    "bpe-identity": dict(model_type="bpe", normalization_rule_name="identity", add_dummy_prefix=False),
    "bpe-byte_fallback": dict(model_type="bpe", byte_fallback=True),
}
XLMR_PIECES = 250_002  # XLM-R's SentencePiece model size (before fairseq's shift and <mask>)


def spm():
    return pytest.importorskip("sentencepiece", reason="the `test` extra (sentencepiece) is not installed")


@functools.lru_cache(maxsize=1)
def xnli_training_text():
    """Every XNLI dev premise and hypothesis, the 15 languages interleaved."""
    per_language = [xnli(language) for language in XNLI_LANGUAGES]
    return [text for row in zip(*per_language) for text in row]


def _train(vocab_size=4000, **arguments):
    # Deterministic on purpose (a failure must reproduce): every 9th sentence rather than the
    # trainer's random sample, one thread (EM's sums would depend on the thread schedule).
    model = io.BytesIO()
    spm().SentencePieceTrainer.train(
        sentence_iterator=iter(xnli_training_text()[::9]),
        model_writer=model,
        vocab_size=vocab_size,
        character_coverage=0.9995,  # leaves rare characters out, so <unk> occurs
        seed_sentencepiece_size=100_000,
        num_threads=1,
        minloglevel=2,
        **arguments,
    )
    return model.getvalue()


@functools.lru_cache(maxsize=None)
def trained_model(name):
    """The serialized ModelProto of one `TRAINED` model (trained once per session)."""
    return _train(**TRAINED[name])


def bpemb_en():
    """BPEmb's English BPE model (100,000 pieces, nmt_nfkc charsmap), as published."""
    return shared_path("bpemb-en", "en.wiki.bpe.vs100000.model").read_bytes()


@functools.lru_cache(maxsize=1)
def unigram_xlmr_size():
    """A unigram model of exactly XLM-R's size (250,002 pieces), over all 15 XNLI languages.

    The trainer cannot find 250k pieces in XNLI dev (about 160k at most), so a trained
    model is extended with the corpus's most frequent substrings it lacks (2 to 12
    characters, within words), each scored by its log relative frequency below the trained
    pieces: a valid unigram model (scores are log-probabilities) of XLM-R's size. Repeated
    fields may come in any order in protobuf, so the new pieces are appended records.
    """
    trained = _train(vocab_size=60_000, hard_vocab_limit=False, model_type="unigram")
    processor = spm().SentencePieceProcessor(model_proto=trained)
    known = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    floor = min(processor.get_score(i) for i in range(processor.get_piece_size()))
    counts = collections.Counter()
    for text in xnli_training_text():
        for word in ("▁" + text.replace(" ", " ▁")).split(" "):
            for start in range(len(word)):
                for end in range(start + 2, min(len(word), start + 12) + 1):
                    counts[word[start:end]] += 1
    total = sum(counts.values())
    missing = XLMR_PIECES - len(known)
    extra = [(s, c) for s, c in counts.most_common() if s not in known][:missing]
    assert len(extra) == missing, (len(extra), missing)
    model = trained + b"".join(piece_record(s.encode("utf-8"), floor - 1.0 + math.log(c / total)) for s, c in extra)
    assert spm().SentencePieceProcessor(model_proto=model).get_piece_size() == XLMR_PIECES
    return model


def all_models():
    """`{name: serialized ModelProto}`: BPEmb, every trained model, the 250k-piece one."""
    models = {"bpemb-en": bpemb_en()}
    models.update((name, trained_model(name)) for name in TRAINED)
    models["unigram-250k"] = unigram_xlmr_size()
    return models
