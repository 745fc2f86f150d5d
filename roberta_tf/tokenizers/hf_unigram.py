"""A Hugging Face `tokenizer.json` for XLM-R (a Unigram model) -> the SentencePiece `ModelProto`
it stands for, so the in-graph SentencePiece and presets take it unchanged. TF-free.

What transformers writes (5.24, checked by converting trained SentencePiece models): the
Unigram vocabulary in fairseq's order (`<s>` `<pad>` `</s>` `<unk>`, the SentencePiece pieces
from id 3 on with their scores, `<mask>` last; `unk_id` 3; `byte_fallback` false even for a
byte-fallback model), the five specials as added tokens, XLM-R's `<s> A </s></s> B </s>`
template, and one of two normalizer / pre-tokenizer pairs, both HF's emulation of
SentencePiece's `add_dummy_prefix` + `remove_extra_whitespaces` + `escape_whitespaces`:

    A  Precompiled (or none) | WhitespaceSplit, Metaspace(always, split)
       `XLMRobertaTokenizer.save_pretrained`; transformers 5 also builds this pipeline when it
       loads any XLM-R tokenizer.json, whatever the file's own normalizer says
    B  Precompiled?, Strip(right), Replace(" {2,}" -> "▁") | Metaspace(always, split)
       `convert_slow_tokenizer`'s XLMRobertaConverter

The target is the ids of `tokenizers` with the file (what a model trained through HF saw).
What maps exactly onto a `ModelProto`: the vocabulary (pieces, scores, order: SentencePiece id
= HF id - 1, so fairseq's mapping gives back HF's ids), `unk_id`, `byte_fallback` (BYTE pieces
`<0xHH>` only when the file sets it; otherwise they stay NORMAL pieces, as `tokenizers` treats
them, so a byte-fallback model's ids have `<unk>` where `sentencepiece` would give bytes: 5,745
of the 10,242 texts below, and the HF ids are the ones kept), the precompiled charsmap
(the bytes SentencePiece wrote), the dummy prefix and `▁` escaping, and the space rules: both
forms collapse runs of U+0020 and drop them at the ends (`remove_extra_whitespaces`). Form A's
WhitespaceSplit also splits at every other Unicode whitespace character left after the
charsmap (tab, newline, U+0085, U+2028, ...: Rust's `char::is_whitespace`): the charsmap is
extended so each becomes U+0020 (`charsmap_writer.py`), exactly what the split does there
(without it, 1,190 of the texts below differ for an identity-normalizer model, 152 for nmt_nfkc).

Refused, with a `TokenizerJsonError` (a ValueError) naming the file and the feature, because
the ids would differ: another model type or normalizer, a Replace SentencePiece has no rule
for, Metaspace alone without Strip + Replace (older files: spaces at the edges and in runs
become `▁` tokens, which no SentencePiece setting reproduces: 2,346 of the texts below
differ), another prepend scheme or replacement, added tokens other than XLM-R's specials
(`tokenizers` matches them in the raw text), a vocabulary not in XLM-R's layout, duplicate
pieces, malformed values.

Where `tokenizers` departs from SentencePiece itself, measured on 10,242 texts (XNLI 15 x 300,
naughty strings, 3,000 fuzz strings, 2,000 UDHR lines) with form A files; no `ModelProto` can
express these, so roberta_tf keeps SentencePiece's ids there (as for `sentencepiece.bpe.model`):
- text holding a special token's spelling (`<s>`, `<mask>`, ...: 926 fuzz strings):
  `tokenizers` gives the special's id (added tokens are matched in the raw text);
- HF's normalization keeps U+0000 (SentencePiece drops it) and, with a charsmap (which
  `tokenizers` applies per grapheme cluster), drops a combining mark that follows whitespace
  (SentencePiece keeps it): 27 fuzz strings with nmt_nfkc, 5 with the identity normalizer;
  form B also strips whitespace other than U+0020 at the end of a text (29 and 93 fuzz
  strings in all);
- exact score ties between two segmentations (1 text in each set): Viterbi tie rules.
No other difference remains, and none at all on XNLI and UDHR.
"""

import base64
import binascii
import json
import math
import os

from roberta_tf.tokenizers import charsmap_writer, sentencepiece_model
from roberta_tf.tokenizers.sentencepiece_model_writer import message_field, piece_record, varint_field

XLMR_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # HF ids 0-3, fairseq's Dictionary order
MASK = "<mask>"  # the last HF id
WORD_BOUNDARY = "\u2581"
MAX_TOKENIZER_JSON_BYTES = 64 * 2**20  # XLM-R's is 17 MB
_UNK_ID = 3
# SentencePiece's own specials at ids 0-2 (XLM-R's model: <unk>, <s>, </s>).
_SENTENCEPIECE_SPECIALS = (("<unk>", sentencepiece_model.PieceType.UNKNOWN),
                           ("<s>", sentencepiece_model.PieceType.CONTROL),
                           ("</s>", sentencepiece_model.PieceType.CONTROL))
_SPACE_RUNS = " {2,}"  # the Replace pattern SpmConverter writes for remove_extra_whitespaces
_FLOAT32_MAX = 3.4028234663852886e38
_KIND_NAMES = {int: "an integer", float: "a number", bool: "a boolean", str: "a string", list: "a list",
               dict: "an object"}


class TokenizerJsonError(ValueError):
    """A tokenizer.json that is malformed or holds a feature SentencePiece cannot express."""


def sentencepiece_model_from_tokenizer_json(path, document=None):
    """The serialized SentencePiece `ModelProto` equivalent to an XLM-R `tokenizer.json`.

    Args:
        path: the tokenizer.json file (read unless `document` is given; named in errors).
        document: the file's parsed JSON, where the caller has already read it.

    Returns:
        bytes: a `ModelProto` that `sentencepiece_model.read_model` (and `sentencepiece`)
        accept; with fairseq's mapping its ids are the file's (see the module docstring).

    Raises:
        TokenizerJsonError: unreadable, malformed, or not representable (the message names
            the file and the feature).
    """
    source = os.fspath(path)
    if document is None:
        document = read_tokenizer_json(source)
    elif not isinstance(document, dict):
        _fail(source, f"the top level is {_json_kind(document)}, not an object")
    model = _field(document, "model", dict, source)
    if model.get("type") != "Unigram":
        _fail(source, f"model.type is {model.get('type')!r}; only a Unigram model maps onto SentencePiece here")
    pieces, scores = _vocabulary(model, source)
    byte_fallback = _optional(model, "byte_fallback", bool, False, source, "model.")
    _check_added_tokens(document.get("added_tokens"), pieces, source)
    _check_post_processor(document.get("post_processor"), source)
    splits_on_whitespace = _pre_tokenizer(document.get("pre_tokenizer"), source)
    charsmap, collapses_spaces = _normalizer(document.get("normalizer"), source)
    if not (splits_on_whitespace or collapses_spaces):
        _fail(source, "Metaspace without WhitespaceSplit or Strip + Replace(' {2,}') keeps every space as a '▁': "
                      "spaces would tokenize differently from any SentencePiece model (add the directory's "
                      "sentencepiece.bpe.model instead)")
    if splits_on_whitespace:
        try:
            charsmap = charsmap_writer.with_whitespace_as_space(charsmap, "normalizer Precompiled")
            sentencepiece_model.decode_charsmap(charsmap, "normalizer Precompiled (extended)")
        except ValueError as error:
            _fail(source, str(error).rstrip("."))
    normalizer = _normalizer_spec(
        name="hf_precompiled" if charsmap else "identity", charsmap=charsmap, remove_extra_whitespaces=True
    )
    serialized = _model_proto(pieces, scores, byte_fallback, normalizer)
    try:
        sentencepiece_model.read_model(serialized)  # SentencePiece's own load checks, once
    except ValueError as error:
        _fail(source, str(error).split(": ", 1)[-1].rstrip("."))
    return serialized


# --- reading and checking the file ----------------------------------------------------------


def _fail(source, message):
    raise TokenizerJsonError(f"{source}: {message}.")


def read_tokenizer_json(path):
    """The parsed JSON object of a tokenizer.json (at most `MAX_TOKENIZER_JSON_BYTES`; NaN
    and Infinity refused); TokenizerJsonError naming the file otherwise."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_TOKENIZER_JSON_BYTES + 1)
    except OSError as error:
        _fail(source, f"cannot read it ({error.strerror or error})")
    if len(data) > MAX_TOKENIZER_JSON_BYTES:
        _fail(source, f"larger than {MAX_TOKENIZER_JSON_BYTES} bytes, not a tokenizer.json")
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        _fail(source, f"not valid JSON ({str(error)[:120]})")
    if not isinstance(document, dict):
        _fail(source, f"the top level is {_json_kind(document)}, not an object")
    return document


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _field(container, key, kind, source, prefix=""):
    if key not in container:
        _fail(source, f"{prefix}{key} is missing")
    value = container[key]
    if not _is(value, kind):
        _fail(source, f"{prefix}{key} is {_json_kind(value)}, not {_KIND_NAMES[kind]}")
    return value


def _json_kind(value):
    return "null" if value is None else _KIND_NAMES.get(type(value), type(value).__name__)


def _optional(container, key, kind, default, source, prefix=""):
    return default if container.get(key) is None else _field(container, key, kind, source, prefix)


def _is(value, kind):
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _vocabulary(model, source):
    """(pieces, scores) of `model.vocab`, checked: [piece, score] pairs, unique non-empty
    pieces, finite float32 scores, XLM-R's layout, `unk_id` 3."""
    vocab = _field(model, "vocab", list, source, "model.")
    if len(vocab) < len(XLMR_SPECIALS) + 1:
        _fail(source, f"model.vocab has {len(vocab)} entries; XLM-R's layout needs at least {len(XLMR_SPECIALS) + 1}")
    pieces, scores, seen = [], [], {}
    for index, entry in enumerate(vocab):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and _is(entry[1], float)):
            _fail(source, f"model.vocab[{index}] is not a [piece, score] pair")
        piece, score = entry
        if not piece:
            _fail(source, f"model.vocab[{index}] is an empty piece")
        if piece in seen:
            _fail(source, f"model.vocab has the piece {piece[:40]!r} twice (ids {seen[piece]} and {index})")
        if not _is_utf8(piece):
            _fail(source, f"model.vocab[{index}] is not valid Unicode (a lone surrogate)")
        if not math.isfinite(score) or abs(score) > _FLOAT32_MAX:
            _fail(source, f"model.vocab[{index}] has the score {score!r}, not a finite float32")
        seen[piece] = index
        pieces.append(piece)
        scores.append(float(score))
    unk_id = _field(model, "unk_id", int, source, "model.")
    if not 0 <= unk_id < len(pieces):
        _fail(source, f"model.unk_id {unk_id} is outside the vocabulary (0-{len(pieces) - 1})")
    layout = tuple(pieces[: len(XLMR_SPECIALS)]), pieces[-1], unk_id
    if layout != (XLMR_SPECIALS, MASK, _UNK_ID):
        _fail(source, f"the vocabulary is not in XLM-R's layout ({', '.join(XLMR_SPECIALS)} at ids 0-3, "
                      f"{MASK} last, unk_id 3): found {list(layout[0])}, {layout[1]!r} last, unk_id {unk_id}")
    return pieces, scores


def _is_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_added_tokens(added_tokens, pieces, source):
    """Only XLM-R's five specials, at their vocabulary ids: any other added token is matched
    in the raw text by `tokenizers`, which SentencePiece has no equivalent for."""
    if added_tokens is None:
        return
    if not isinstance(added_tokens, list):
        _fail(source, f"added_tokens is {_json_kind(added_tokens)}, not a list")
    allowed = {index: pieces[index] for index in range(len(XLMR_SPECIALS))}
    allowed[len(pieces) - 1] = MASK
    for position, token in enumerate(added_tokens):
        where = f"added_tokens[{position}]"
        if not isinstance(token, dict):
            _fail(source, f"{where} is not an object")
        token_id = _field(token, "id", int, source, f"{where}.")
        content = _field(token, "content", str, source, f"{where}.")
        if allowed.get(token_id) != content:
            _fail(source, f"{where} adds {content[:40]!r} as id {token_id}; only XLM-R's specials "
                          f"({', '.join(XLMR_SPECIALS)}, {MASK}) at their vocabulary ids can be represented")


def _check_post_processor(processor, source):
    """XLM-R's packing (`<s> A </s>`, `<s> A </s></s> B </s>`), which roberta_tf's packer
    does; None (no template) is accepted, the packer then still packs as XLM-R."""
    if processor is None:
        return
    kind = processor.get("type") if isinstance(processor, dict) else None
    if kind == "RobertaProcessing":
        if processor.get("cls") == ["<s>", 0] and processor.get("sep") == ["</s>", 2]:
            return
    elif kind == "TemplateProcessing":
        single = [_template_item(item) for item in processor.get("single") or []]
        pair = [_template_item(item) for item in processor.get("pair") or []]
        specials = processor.get("special_tokens") or {}
        ids = {name: (specials.get(name) or {}).get("ids") for name in ("<s>", "</s>")}
        if (single == ["<s>", "$A", "</s>"] and pair == ["<s>", "$A", "</s>", "</s>", "$B", "</s>"]
                and ids == {"<s>": [0], "</s>": [2]}):
            return
    _fail(source, f"post_processor ({kind or type(processor).__name__}) is not XLM-R's <s> A </s></s> B </s> "
                  "template; roberta_tf packs only that way")


def _template_item(item):
    if isinstance(item, dict) and isinstance(item.get("SpecialToken"), dict):
        return item["SpecialToken"].get("id")
    if isinstance(item, dict) and isinstance(item.get("Sequence"), dict):
        return "$" + str(item["Sequence"].get("id"))
    return None


def _pre_tokenizer(pre_tokenizer, source):
    """Whether it splits on whitespace first: Metaspace with SentencePiece's dummy prefix,
    alone or after WhitespaceSplit (see the module docstring)."""
    if pre_tokenizer is None:
        _fail(source, "pre_tokenizer is missing (SentencePiece's needs Metaspace)")
    steps = [pre_tokenizer]
    if isinstance(pre_tokenizer, dict) and pre_tokenizer.get("type") == "Sequence":
        steps = pre_tokenizer.get("pretokenizers")
        if not isinstance(steps, list):
            _fail(source, "pre_tokenizer.pretokenizers is not a list")
    types = [step.get("type") if isinstance(step, dict) else type(step).__name__ for step in steps]
    if types not in (["Metaspace"], ["WhitespaceSplit", "Metaspace"]):
        _fail(source, f"pre_tokenizer {types} is not SentencePiece's (Metaspace, optionally after WhitespaceSplit)")
    metaspace = steps[-1]
    if metaspace.get("replacement") != WORD_BOUNDARY:
        _fail(source, f"pre_tokenizer Metaspace replaces spaces with {metaspace.get('replacement')!r}, not '▁'")
    scheme = metaspace.get("prepend_scheme")
    if scheme is None:  # files from before tokenizers 0.14 spell it add_prefix_space
        scheme = "always" if metaspace.get("add_prefix_space", True) is True else "never"
    if scheme != "always":
        _fail(source, f"pre_tokenizer Metaspace prepend_scheme {scheme!r}: only 'always' is "
                      "SentencePiece's dummy prefix")
    if metaspace.get("split", True) is not True:
        _fail(source, "pre_tokenizer Metaspace with split false is not SentencePiece's word rule")
    return types[0] == "WhitespaceSplit"


def _normalizer(normalizer, source):
    """(precompiled charsmap bytes, collapses runs of spaces) of the accepted normalizers:
    none, Precompiled, or SpmConverter's Sequence [Precompiled?, Strip(right), Replace(" {2,}")]."""
    if normalizer is None:
        return b"", False
    steps = [normalizer]
    if isinstance(normalizer, dict) and normalizer.get("type") == "Sequence":
        steps = normalizer.get("normalizers")
        if not isinstance(steps, list):
            _fail(source, "normalizer.normalizers is not a list")
    charsmap, kinds = b"", []
    for position, step in enumerate(steps):
        kind = step.get("type") if isinstance(step, dict) else None
        if kind == "Precompiled" and not kinds:
            charsmap = _precompiled_charsmap(step, source)
        elif kind == "Strip" and step.get("strip_left") is False and step.get("strip_right") is True:
            pass
        elif kind == "Replace" and step.get("pattern") == {"Regex": _SPACE_RUNS} and step.get("content") in (
                " ", WORD_BOUNDARY):
            pass
        else:
            _fail(source, f"normalizer step {position} ({_describe(step)}) has no SentencePiece equivalent")
        kinds.append(kind)
    collapsing = [k for k in kinds if k != "Precompiled"]
    if collapsing not in ([], ["Strip", "Replace"]):
        _fail(source, f"normalizer {kinds}: only Precompiled, then Strip(right) and Replace(' {{2,}}') together, "
                      "match SentencePiece's whitespace rule")
    return charsmap, bool(collapsing)


def _describe(step):
    if not isinstance(step, dict):
        return type(step).__name__
    details = {k: v for k, v in step.items() if k != "type" and k != "precompiled_charsmap"}
    return f"{step.get('type')} {json.dumps(details, ensure_ascii=False)[:80]}"


def _precompiled_charsmap(step, source):
    text = step.get("precompiled_charsmap")
    if text is None or text == "":
        return b""
    if not isinstance(text, str):
        _fail(source, "normalizer Precompiled.precompiled_charsmap is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        _fail(source, "normalizer Precompiled.precompiled_charsmap is not valid base64")


# --- the ModelProto (protobuf wire format; field numbers as sentencepiece_model.py reads) ------


def _normalizer_spec(name, charsmap, remove_extra_whitespaces):
    return (message_field(1, name.encode("ascii")) + message_field(2, charsmap) + varint_field(3, 1)
            + varint_field(4, int(remove_extra_whitespaces)) + varint_field(5, 1))


def _model_proto(pieces, scores, byte_fallback, normalizer_spec):
    """pieces: HF's vocabulary (XLM-R's layout). SentencePiece's model has `<unk>` `<s>` `</s>`
    at 0-2 and HF's pieces 4..n-2 after them: SentencePiece id = HF id - 1."""
    records = [piece_record(piece.encode("utf-8"), 0.0, kind) for piece, kind in _SENTENCEPIECE_SPECIALS]
    for piece, score in zip(pieces[len(XLMR_SPECIALS) : -1], scores[len(XLMR_SPECIALS) : -1]):
        kind = sentencepiece_model.PieceType.NORMAL
        if byte_fallback and _is_byte_piece(piece):
            kind = sentencepiece_model.PieceType.BYTE
        records.append(piece_record(piece.encode("utf-8"), score, kind))
    trainer_spec = varint_field(3, 1) + varint_field(35, int(byte_fallback))  # model_type UNIGRAM
    return b"".join(records) + message_field(2, trainer_spec) + message_field(3, normalizer_spec)


def _is_byte_piece(piece):
    return len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">") and all(
        c in "0123456789ABCDEF" for c in piece[3:5])
