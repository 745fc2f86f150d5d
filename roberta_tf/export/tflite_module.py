"""The TFLite model's graph: a text's UTF-8 bytes in, its classification out, in one module.

    TfliteClassifierModule   classify, classify_pairs      (--inputs utf8_bytes, the default)
                             classify_token_ids            (--inputs token_ids)

The signatures implement `roberta_tf.contract.signatures.TFLITE_CONTRACT`. One text (or pair)
per invocation, as an app classifies: the bytes are tokenized by the same integer-op
byte-level BPE the SavedModel runs (`tokenize_text_bytes`, exact ids), packed by the same
`packer.pack` with the same per-segment token budget and truncation, and encoded by the
classifier that `ClassifierServingModule` wraps, so the TFLite model answers what the
SavedModel answers for the same bytes. The row is never padded (batch 1, "longest"), so no
compute goes to padding and the attention mask is all ones.

Everything converts with `TFLITE_BUILTINS` only (WHILE, GATHER, CUMSUM, SELECT_V2, ...; the
tokenizer's ops are integer ops, which quantization leaves alone).
"""

import tensorflow as tf

from roberta_tf.contract import signatures as contract
from roberta_tf.export import serving_module
from roberta_tf.preprocessing import packer


def _tensor_spec(tensor):
    shape = [1 if dim == "1" else None for dim in tensor.shape]
    return tf.TensorSpec(shape, tf.as_dtype(tensor.dtype), name=tensor.name)


def tflite_input_signature(signature_name):
    """The TFLite contract's inputs of `signature_name` as tf.TensorSpecs."""
    return [_tensor_spec(tensor) for tensor in contract.TFLITE_CONTRACT[signature_name].inputs]


class TfliteClassifierModule(tf.Module):
    """A `RobertaTextClassifier` and its tokenizer behind the TFLite signatures.

    Args:
        classifier, tokenizer, sequence_length, truncate: as `ClassifierServingModule`
            (which this module wraps: the same checks, the same encoder).
        inputs: "utf8_bytes" (classify, classify_pairs) or "token_ids" (classify_token_ids).
    """

    def __init__(self, classifier, tokenizer, sequence_length=None, truncate="round_robin", inputs="utf8_bytes"):
        super().__init__(name="roberta_classifier_tflite")
        if inputs not in contract.TFLITE_SIGNATURES:
            raise ValueError(f"inputs must be one of {tuple(contract.TFLITE_SIGNATURES)}. Received: inputs={inputs!r}")
        self.inputs = inputs
        # The SavedModel's module: the reference these signatures must match, and its encoder.
        self.serving = serving_module.ClassifierServingModule(
            classifier, tokenizer, sequence_length=sequence_length, truncate=truncate
        )
        self.SIGNATURES = contract.TFLITE_SIGNATURES[inputs]

    @property
    def sequence_length(self):
        return self.serving.sequence_length

    @property
    def tokenizer(self):
        return self.serving.tokenizer

    def concrete_functions(self):
        """The traced signatures, in `SIGNATURES` order (what the converter takes)."""
        return [getattr(self, name).get_concrete_function() for name in self.SIGNATURES]

    # === Signatures ===

    @tf.function(input_signature=tflite_input_signature(contract.TFLITE_CLASSIFY), autograph=False)
    def classify(self, utf8_bytes):
        return self._classify_segments([utf8_bytes])

    @tf.function(input_signature=tflite_input_signature(contract.TFLITE_CLASSIFY_PAIRS), autograph=False)
    def classify_pairs(self, utf8_bytes_a, utf8_bytes_b):
        return self._classify_segments([utf8_bytes_a, utf8_bytes_b])

    @tf.function(input_signature=tflite_input_signature(contract.TFLITE_CLASSIFY_TOKEN_IDS), autograph=False)
    def classify_token_ids(self, token_ids, padding_mask):
        # No checks in the graph: TFLite has no Assert op. An id outside the vocabulary makes
        # the embedding GATHER fail the invocation; `roberta_tf.lite` checks before invoking.
        return self._outputs(token_ids, padding_mask)

    # === Parts ===

    def _classify_segments(self, segments):
        # Every segment keeps at most this many tokens whatever the truncation (as pack_texts).
        budget = self.sequence_length - (2 if len(segments) == 1 else 4)
        tokenized = []
        for utf8_bytes in segments:
            # Negative values are padding: an app can keep one fixed-size input buffer.
            text_bytes = tf.gather(utf8_bytes, tf.reshape(tf.where(utf8_bytes >= 0), [-1]))
            token_ids = self.tokenizer.tokenize_text_bytes(text_bytes, budget)[:budget]
            tokenized.append((token_ids, tf.stack([0, tf.size(token_ids)])))
        token_ids, padding_mask = packer.pack(
            tokenized,
            self.sequence_length,
            start_id=self.tokenizer.start_token_id,
            end_id=self.tokenizer.end_token_id,
            pad_id=self.tokenizer.pad_token_id,
            truncate=self.serving.truncate,
            padding="longest",
        )
        return self._outputs(token_ids, tf.cast(padding_mask, tf.int32))

    def _outputs(self, token_ids, padding_mask):
        outputs = self.serving.classification(token_ids, padding_mask)
        return {name: tf.identity(outputs[name], name=name) for name in ("logits", "probabilities", "class_id")}
