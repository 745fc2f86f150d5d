"""Byte-level BPE vocabularies: loading (Hugging Face, fairseq, in-memory) and validation.

Every source ends as one `BpeVocabulary`: a token -> id map with contiguous ids and the
ranked merges. Malformed input raises `ValueError` naming the file and line, never later.
This module does not decide how text is split or merged; see `pretokenizer.py` and `bpe.py`.
"""

import dataclasses
import json
import os

from roberta_tf.tokenizers import byte_symbols

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"
# The tokens the RoBERTa packer needs; `<unk>` is optional (keras-hub's examples omit it).
REQUIRED_SPECIAL_TOKENS = (BOS, PAD, EOS, MASK)
SPECIAL_TOKENS = (BOS, PAD, EOS, UNK, MASK)
# fairseq's Dictionary puts these four first, then one id per dict.txt line, then <mask>.
FAIRSEQ_LEADING_SPECIALS = (BOS, PAD, EOS, UNK)


@dataclasses.dataclass(frozen=True)
class BpeVocabulary:
    """A validated byte-level BPE vocabulary; build it with the `from_*` functions below.

    Attributes:
        vocabulary: token string (in GPT-2 byte symbols) -> id, ids exactly 0..size-1.
        merges: ranked merge pairs; merge k joins `merges[k][0]` and `merges[k][1]`.
    """

    vocabulary: dict
    merges: tuple

    @property
    def size(self):
        return len(self.vocabulary)

    def special_token_id(self, token):
        return self.vocabulary.get(token)


def validate_vocabulary(vocabulary, source="vocabulary"):
    """Raises ValueError unless ids are unique ints forming 0..n-1 and the specials exist."""
    if not isinstance(vocabulary, dict) or not vocabulary:
        raise ValueError(f"{source} must be a non-empty dict of token -> id. Received: {type(vocabulary).__name__}")
    by_id = {}
    for token, token_id in vocabulary.items():
        if not isinstance(token, str) or isinstance(token_id, bool) or not isinstance(token_id, int):
            raise ValueError(f"{source}: entries must map str -> int. Received: {token!r}: {token_id!r}")
        if token_id in by_id:
            raise ValueError(f"{source}: id {token_id} is used by both {by_id[token_id]!r} and {token!r}.")
        by_id[token_id] = token
    missing_ids = sorted(set(range(len(vocabulary))) - set(by_id))
    if missing_ids:
        raise ValueError(
            f"{source}: ids must be exactly 0..{len(vocabulary) - 1} with no gaps; "
            f"missing {missing_ids[:5]}, largest id {max(by_id)}."
        )
    missing = [t for t in REQUIRED_SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ValueError(f"{source}: missing special tokens {missing}; RoBERTa needs {list(REQUIRED_SPECIAL_TOKENS)}.")


def validate_merges(merges, vocabulary, source="merges"):
    """Raises ValueError unless each merge is two parts, each a byte symbol, a vocabulary token
    or the result of an earlier merge (otherwise the merge could never apply: a typo)."""
    known = set(byte_symbols.byte_to_symbol().values()) | set(vocabulary)
    seen = set()
    for rank, pair in enumerate(merges):
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) and p for p in pair)):
            raise ValueError(f"{source}: merge {rank} must be two non-empty strings. Received: {pair!r}")
        for part in pair:
            if part not in known:
                raise ValueError(
                    f"{source}: merge {rank} {' '.join(pair)!r} has unknown part {part!r}: it is not a byte "
                    "symbol, not in the vocabulary and not produced by an earlier merge."
                )
        if pair in seen:
            raise ValueError(f"{source}: merge {rank} {' '.join(pair)!r} is listed twice.")
        seen.add(pair)
        known.add(pair[0] + pair[1])


def parse_merge_lines(lines, source="merges"):
    """Merge pairs from `merges.txt` / `vocab.bpe` lines (a `#version` header is skipped)."""
    merges = []
    for line_number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if line_number == 1 and line.startswith("#version"):
            continue
        if not line:
            continue  # the GPT-2 files end with an empty line
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            # The line itself is not quoted: a misnamed file (a preset naming the wrong path) must
            # not have its contents copied into an error message.
            raise ValueError(
                f"{source}:{line_number}: a merge line is two tokens separated by one space; this one has "
                f"{len(line)} characters in {len(parts)} space-separated parts."
            )
        merges.append((parts[0], parts[1]))
    return tuple(merges)


def _normalize_merges(merges, source="merges"):
    """Accepts keras-hub's list of "a b" strings or a list of (a, b) pairs."""
    pairs = []
    for rank, merge in enumerate(merges):
        if isinstance(merge, str):
            parts = merge.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{source}: merge {rank} must be 'a b'. Received: {merge!r}")
            merge = parts
        pairs.append(tuple(merge))
    return tuple(pairs)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read JSON vocabulary {path!r}: {e}") from e


def _read_lines(path):
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read {path!r}: {e}") from e


def from_hf_files(vocab_json, merges_txt):
    """Hugging Face `vocab.json` + `merges.txt`."""
    vocabulary = _read_json(vocab_json)
    validate_vocabulary(vocabulary, source=str(vocab_json))
    merges = parse_merge_lines(_read_lines(merges_txt), source=str(merges_txt))
    validate_merges(merges, vocabulary, source=str(merges_txt))
    return BpeVocabulary(vocabulary, merges)


def from_memory(vocabulary, merges):
    """keras-hub style: a token -> id dict and merges as "a b" strings or pairs (or paths)."""
    if isinstance(vocabulary, (str, os.PathLike)) and isinstance(merges, (str, os.PathLike)):
        return from_hf_files(vocabulary, merges)
    if isinstance(vocabulary, (str, os.PathLike)):
        vocabulary = _read_json(vocabulary)
    if isinstance(merges, (str, os.PathLike)):
        merges = parse_merge_lines(_read_lines(merges), source=str(merges))
    vocabulary, merges = dict(vocabulary), _normalize_merges(merges)
    validate_vocabulary(vocabulary)
    validate_merges(merges, vocabulary)
    return BpeVocabulary(vocabulary, merges)


def fairseq_vocabulary(encoder, dict_lines, source="dict.txt"):
    """RoBERTa token -> model id from GPT-2's `encoder.json` and fairseq's `dict.txt`.

    fairseq's GPT-2 BPE emits GPT-2 ids as decimal strings; its Dictionary gives `<s>`=0,
    `<pad>`=1, `</s>`=2, `<unk>`=3, the symbol on line i of dict.txt id 4 + i, and appends
    `<mask>` last. A GPT-2 token whose id is not in dict.txt is dropped here, so the
    tokenizer maps it to `<unk>`, as fairseq's `Dictionary.encode_line` does.
    """
    gpt2_token = {}
    for token, gpt2_id in encoder.items():
        if isinstance(gpt2_id, bool) or not isinstance(gpt2_id, int):
            raise ValueError(f"encoder.json: {token!r} maps to {gpt2_id!r}, not an int.")
        gpt2_token[str(gpt2_id)] = token
    vocabulary = {token: i for i, token in enumerate(FAIRSEQ_LEADING_SPECIALS)}
    for line_number, line in enumerate(dict_lines, start=1):
        line = line.rstrip("\r\n")
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) < 2 or not parts[1].lstrip("-").isdigit():
            raise ValueError(
                f"{source}:{line_number}: expected '<symbol> <count>'; this line has {len(parts)} space-separated "
                "parts and does not end in a count."
            )
        symbol = parts[0]
        # fairseq's placeholders (madeupword0000...) keep their literal text as the token.
        token = gpt2_token.get(symbol, symbol)
        if token in vocabulary:
            raise ValueError(f"{source}:{line_number}: symbol {symbol!r} ({token!r}) appears twice.")
        vocabulary[token] = len(vocabulary)
    vocabulary.setdefault(MASK, len(vocabulary))
    return vocabulary


def from_fairseq_files(encoder_json, vocab_bpe, dict_txt):
    """fairseq's `encoder.json` + `vocab.bpe` + `dict.txt`, with ids remapped as fairseq does."""
    encoder = _read_json(encoder_json)
    if not isinstance(encoder, dict):
        raise ValueError(f"{encoder_json}: expected a JSON object of token -> GPT-2 id.")
    vocabulary = fairseq_vocabulary(encoder, _read_lines(dict_txt), source=str(dict_txt))
    validate_vocabulary(vocabulary, source=str(dict_txt))
    merges = parse_merge_lines(_read_lines(vocab_bpe), source=str(vocab_bpe))
    validate_merges(merges, vocabulary, source=str(vocab_bpe))
    return BpeVocabulary(vocabulary, merges)
