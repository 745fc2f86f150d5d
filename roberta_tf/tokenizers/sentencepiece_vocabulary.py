"""fairseq's ids for a SentencePiece model (XLM-R's embedding rows); TF-free, so converters
check vocabulary sizes without TensorFlow."""

import pathlib

import numpy as np

from roberta_tf.tokenizers.sentencepiece_model import PieceType

# fairseq's Dictionary puts these first, whatever the SentencePiece model's own ids are.
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
FAIRSEQ_MASK = "<mask>"
_OVERWRITE_FLAG = " #fairseq:overwrite"


def fairseq_vocabulary(model, dict_pieces=None):
    """fairseq's tokens for a SentencePiece model, and the fairseq id of each SentencePiece id.

    fairseq's Dictionary (XLM-R's `dict.txt`) numbers `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3,
    then the pieces of `dict.txt` in its order from 4, and `<mask>` after the last. XLM-R's
    `dict.txt` lists the SentencePiece pieces from id 3 on, so every id is shifted by one
    (Hugging Face's `fairseq_offset`) and SentencePiece's `<unk>` (0) becomes 3.

    Args:
        model: a `SentencePieceModel`.
        dict_pieces: the pieces of `dict.txt` in order, or None for XLM-R's layout (every
            piece that is not a control or unknown piece, in SentencePiece's order).

    Returns:
        (tokens, id_map): `tokens[i]` is fairseq id i's token (`<mask>` last); `id_map` is
        int32 [num_pieces]. A piece missing from `dict_pieces` maps to `<unk>` (3), as
        fairseq encodes it.
    """
    if dict_pieces is None:
        dict_pieces = [
            piece.decode("utf-8", "replace")
            for piece, kind in zip(model.pieces, model.types)
            if kind not in (PieceType.CONTROL, PieceType.UNKNOWN)
        ]
    fairseq_ids = {token: index for index, token in enumerate(FAIRSEQ_SPECIALS)}
    for piece in dict_pieces:
        fairseq_ids.setdefault(piece, len(fairseq_ids))
    fairseq_ids.setdefault(FAIRSEQ_MASK, len(fairseq_ids))
    unk = fairseq_ids["<unk>"]
    id_map = np.array([fairseq_ids.get(piece.decode("utf-8", "replace"), unk) for piece in model.pieces], np.int32)
    specials = (("<s>", model.bos_id), ("</s>", model.eos_id), ("<pad>", model.pad_id), ("<unk>", model.unk_id))
    for special, sp_id in specials:
        if sp_id >= 0:
            id_map[sp_id] = fairseq_ids[special]
    return list(fairseq_ids), id_map


def read_dict_pieces(path):
    """The pieces of a fairseq `dict.txt`, in order (`<piece> <count>` lines, as fairseq's
    Dictionary reads them, with its optional `#fairseq:overwrite` flag); ValueError naming
    the line otherwise.

    Lines end at `\n`, `\r\n` or `\r` only, as fairseq's `readlines()` splits them: a piece
    may hold U+0085 or U+2028, which `str.splitlines` would also split at. A piece listed
    twice (or one of `<s>`, `<pad>`, `</s>`, `<unk>`, which the Dictionary already holds) is
    an error, as in fairseq; with `#fairseq:overwrite` fairseq would give it a second id,
    which roberta_tf does not support.
    """
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")  # universal newlines: \r\n, \r -> \n
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the fairseq dictionary ({error}).") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line
    pieces, seen = [], set(FAIRSEQ_SPECIALS)
    for number, line in enumerate(lines, 1):
        fields = line.rstrip()
        overwrite = fields.endswith(_OVERWRITE_FLAG)
        piece, _, count = fields.removesuffix(_OVERWRITE_FLAG).rpartition(" ")
        if not piece or not count.isdigit():
            raise ValueError(f"{path}:{number}: not a `<piece> <count>` line: {line[:80]!r}.")
        if piece in seen:
            reason = "gives it a second id (not supported)" if overwrite else "is refused by fairseq too"
            raise ValueError(f"{path}:{number}: {piece!r} is already in the dictionary; a repeated piece {reason}.")
        seen.add(piece)
        pieces.append(piece)
    return pieces
