"""Shared: the XNLI dev texts and the XLM-R-sized SentencePiece unigram model the XLM-R
benchmarks use (trained here once with `sentencepiece`'s trainer, then cached).

    texts = xnli_mix(data_dir, 2048)                       # distinct premises and hypotheses, 15 languages
    model, path = unigram_model(data_dir, cache_dir)       # 250,002 pieces, the recipe of the tests
    model = with_pieces(model, XLMR_SPM_PIECES)            # XLM-R's own 250,000 pieces -> 250,002 fairseq ids

The recipe is tests/sentencepiece_models.py's `unigram_xlmr_size()` (the benchmarks do not
import tests/: that module needs the test suite's conftest). The cached file name is the one
sentencepiece_benchmark has always used, so both find the same trained model.
"""

import collections
import io
import math
import time
from pathlib import Path

from absl import logging

from benchmarks.data import read_lines
from roberta_tf.presets import hub
from roberta_tf.tokenizers.sentencepiece_model_writer import piece_record
from roberta_tf.utils.files import atomic_file

XNLI_LANGUAGES = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
UNIGRAM_PIECES = 250_002  # the tests' "XLM-R size" unigram model (before fairseq's shift and <mask>)
# XLM-R's sentencepiece.bpe.model has 250,000 pieces; fairseq's dictionary shifts them by one
# and adds <mask>: 250,002 ids, the rows of xlmr.base's and xlmr.large's embedding.
XLMR_SPM_PIECES = 250_000
UNIGRAM_CACHE_NAME = "sentencepiece-unigram-250k-v1.model"  # bump the version when the recipe changes


# ----------------------------------------------------------------------------- XNLI


def xnli_language(data_dir, language):
    """Premises and hypotheses of one XNLI dev language, in file order."""
    texts = []
    for line in read_lines(Path(data_dir, "xnli-dev", f"dev-{language}.tsv")):
        fields = line.split("\t")
        if len(fields) >= 2:
            texts.extend(fields[:2])
    return texts


def xnli_interleaved(data_dir):
    """Every XNLI dev premise and hypothesis, the 15 languages interleaved (row by row), as the
    tests train their SentencePiece models on."""
    per_language = [xnli_language(data_dir, language) for language in XNLI_LANGUAGES]
    return [text for row in zip(*per_language) for text in row]


def xnli_mix(data_dir, num_texts):
    """The first `num_texts` distinct texts of the interleaved XNLI text (each premise comes
    with three hypotheses: repeats would flatter an engine with a cache). ValueError when
    there are fewer."""
    texts = list(dict.fromkeys(xnli_interleaved(data_dir)))
    if num_texts > len(texts):
        raise ValueError(f"{num_texts} texts asked for: XNLI dev has {len(texts)} distinct texts.")
    return texts[:num_texts]


# ----------------------------------------------------------------------------- the models


def bpemb_model(data_dir):
    """BPEmb's English BPE model (100,000 pieces, nmt_nfkc charsmap), as published: (bytes, path)."""
    path = Path(data_dir, "bpemb-en", "en.wiki.bpe.vs100000.model")
    return path.read_bytes(), str(path)


def _read_varint(data, position):
    value, shift = 0, 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def train_unigram_xlmr_size(training_text):
    """A unigram model of `UNIGRAM_PIECES` pieces, as tests/sentencepiece_models.py builds it.

    The trainer finds at most ~160k pieces in XNLI dev, so a 60k-piece model trained on every
    9th sentence (deterministic: one thread, no random sample) is extended with the corpus's
    most frequent in-word substrings (2-12 characters) it lacks, scored by log relative
    frequency below its own pieces: a valid unigram model with 250,002 pieces.
    """
    import sentencepiece

    trained = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(training_text[::9]), model_writer=trained, vocab_size=60_000,
        hard_vocab_limit=False, model_type="unigram", character_coverage=0.9995, seed_sentencepiece_size=100_000,
        num_threads=1, minloglevel=2,
    )
    trained = trained.getvalue()
    processor = sentencepiece.SentencePieceProcessor(model_proto=trained)
    known = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    floor = min(processor.get_score(i) for i in range(processor.get_piece_size()))
    counts = collections.Counter()
    for text in training_text:
        for word in ("▁" + text.replace(" ", " ▁")).split(" "):
            for start in range(len(word)):
                for end in range(start + 2, min(len(word), start + 12) + 1):
                    counts[word[start:end]] += 1
    total = sum(counts.values())
    extra = [(s, c) for s, c in counts.most_common() if s not in known][: UNIGRAM_PIECES - len(known)]
    model = trained + b"".join(piece_record(s.encode("utf-8"), floor - 1.0 + math.log(c / total)) for s, c in extra)
    size = sentencepiece.SentencePieceProcessor(model_proto=model).get_piece_size()
    if size != UNIGRAM_PIECES:
        raise RuntimeError(f"the extended unigram model has {size} pieces, not {UNIGRAM_PIECES}")
    return model


def unigram_model(data_dir, cache_dir=None):
    """The 250,002-piece unigram model `(bytes, path)`, from the cache or trained (~15 s; needs
    the `sentencepiece` package) and cached under CACHE_DIR (default
    $ROBERTA_TF_CACHE/benchmarks)."""
    path = Path(cache_dir or hub.cache_root() / "benchmarks", UNIGRAM_CACHE_NAME)
    if path.is_file():
        logging.info("Unigram model from the cache: %s", path)
        return path.read_bytes(), str(path)
    start = time.perf_counter()
    model = train_unigram_xlmr_size(xnli_interleaved(data_dir))
    with atomic_file(path, kind="spm", overwrite=True) as staging:
        staging.write_bytes(model)
    logging.info("Trained the unigram model in %.1f s, cached at %s", time.perf_counter() - start, path)
    return model, str(path)


def with_pieces(model, count):
    """`model` (serialized ModelProto bytes) keeping only its first `count` pieces.

    `ModelProto.pieces` is field 1; the trained pieces come first and the appended ones
    (lowest scored) last, so dropping the last records keeps a valid model whose ids are
    the original's below `count`. Other fields are kept as they are. ValueError when the
    model has fewer pieces.
    """
    kept, pieces, position = [], 0, 0
    while position < len(model):
        start = position
        key, position = _read_varint(model, position)
        wire_type = key & 7
        if wire_type == 0:
            _, position = _read_varint(model, position)
        elif wire_type == 2:
            length, position = _read_varint(model, position)
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} at byte {start}")
        if key >> 3 == 1:
            pieces += 1
            if pieces > count:
                continue
        kept.append(model[start:position])
    if pieces < count:
        raise ValueError(f"the model has {pieces} pieces; {count} asked for")
    return b"".join(kept)
