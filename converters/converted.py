"""`ConvertedCheckpoint`: what every converter returns, in roberta_tf's terms and in memory.

It is the one hand-off from a converter to the rest of roberta_tf: `from_preset` accepts it
(and converts a Hugging Face directory through it), and `roberta-tf convert` loads it into a
model and saves that as a preset. Converters never build models or write presets themselves.
"""

import dataclasses
from typing import Optional

from roberta_tf.converters.layout import ConversionError

# Tokenizer types, as preset configs name them.
BYTE_LEVEL_BPE = "byte_level_bpe"
SENTENCEPIECE = "sentencepiece"


@dataclasses.dataclass
class ConvertedCheckpoint:
    """A checkpoint mapped onto roberta_tf's names, with what is needed to rebuild it.

    Attributes:
        backbone: `RobertaBackbone` keyword arguments.
        head: None (an encoder without a classification head) or the classifier's arguments
            `{"num_classes", "hidden_dim", "dropout", "label_names"}` (its output is logits).
        arrays: `{weight name: numpy array}` under `named_weights()` names; handed over once
            by `take_arrays()`, so a model can consume them (peak: about two copies).
        source: provenance for the preset's metadata.json (`type`, `path`, `sha256`, ...).
        tokenizer_type: "byte_level_bpe", "sentencepiece" or None (no tokenizer files).
        bpe_vocabulary: the validated `BpeVocabulary` of a byte-level BPE tokenizer (its size
            checked against the embedding), or None.
        tokenizer_files: the files it was read from (vocab.json, merges.txt; a SentencePiece
            tokenizer's model file), or () when a byte-level BPE vocabulary was built in memory
            (tokenizer.json, fairseq's remapped ids). A SentencePiece model made from an HF
            tokenizer.json's Unigram model is here as its serialized bytes (`hf_unigram.py`).
        dict_pieces: a SentencePiece tokenizer's fairseq `dict.txt` pieces in order where they
            are not XLM-R's layout (SentencePiece's order), else None.
    """

    backbone: dict
    head: Optional[dict]
    arrays: Optional[dict] = dataclasses.field(repr=False)
    source: dict
    tokenizer_type: Optional[str] = None
    bpe_vocabulary: object = dataclasses.field(default=None, repr=False)
    tokenizer_files: tuple = ()
    dict_pieces: Optional[list] = dataclasses.field(default=None, repr=False)

    def take_arrays(self):
        """The named arrays, once: later calls raise (the caller owns and may consume them)."""
        self._check_not_taken()
        arrays, self.arrays = self.arrays, None
        return arrays

    def layout(self):
        """{name: (shape, numpy dtype kind)} of the arrays, before they are taken."""
        self._check_not_taken()
        return {name: (array.shape, array.dtype.kind) for name, array in self.arrays.items()}

    def _check_not_taken(self):
        if self.arrays is None:
            raise ConversionError(
                f"The weights converted from {self.source.get('path')} were already loaded into a model; "
                "convert the checkpoint again to load it twice."
            )
