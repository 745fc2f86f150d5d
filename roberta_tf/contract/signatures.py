"""The served classifier's contract: its signatures, their inputs and outputs.

Written once, here. `roberta_tf.export.serving_module` builds its input signatures from it and
a test holds the restored SavedModel to it; `roberta-tf export --help` and the export metadata
print it (`describe()`); the clients take their dtypes from it, because the REST wire format
carries none (JSON `1` could be int32 or float32; an empty batch `[]` has no element to infer
a dtype from). Pure Python: a REST client never imports TensorFlow.

Dtypes are TensorFlow's names ("string", "int32", "float32"); shapes name their dimensions.
Every input's 0-th dimension is the batch, so TF Serving's batching can merge any two requests
of a signature and the REST row form (`instances`) can express every non-empty request.
"""

import dataclasses

DEFAULT_MODEL_NAME = "roberta_classifier"

# RoBERTa's `<pad>` id. The model is padding-invariant: extra columns of token id PAD_TOKEN_ID
# with padding_mask 0 do not change the logits (positions come from the mask, attention skips 0s).
PAD_TOKEN_ID = 1


@dataclasses.dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple  # dimension names: "batch", "length", "classes"
    description: str


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    inputs: tuple
    outputs: tuple
    description: str

    @property
    def input_dtypes(self):
        return {tensor.name: tensor.dtype for tensor in self.inputs}

    @property
    def output_dtypes(self):
        return {tensor.name: tensor.dtype for tensor in self.outputs}


_TEXT = Tensor("text", "string", ("batch",), "texts (bytes; any UTF-8, invalid UTF-8 and NUL allowed)")
_TEXT_A = Tensor("text_a", "string", ("batch",), "first segments of the pairs")
_TEXT_B = Tensor("text_b", "string", ("batch",), "second segments, as many as text_a")
_TOKEN_IDS = Tensor("token_ids", "int32", ("batch", "length"), "<s> A </s>[</s> B </s>] then <pad> (1)")
_PADDING_MASK = Tensor("padding_mask", "int32", ("batch", "length"), "1 for tokens, 0 for padding")
_PACKED = (_TOKEN_IDS, _PADDING_MASK)
_CLASSIFICATION = (
    Tensor("logits", "float32", ("batch", "classes"), "the head's output before its activation"),
    Tensor("probabilities", "float32", ("batch", "classes"),
           "softmax of the logits (sigmoid for one class or a sigmoid head)"),
    Tensor("class_id", "int32", ("batch",), "argmax of the logits"),
    Tensor("class_name", "string", ("batch",), 'label name of class_id ("0", "1", ... without names)'),
)

CLASSIFY = "serving_default"
CLASSIFY_PAIRS = "classify_pairs"
TOKENIZE = "tokenize"
TOKENIZE_PAIRS = "tokenize_pairs"
CLASSIFY_TOKEN_IDS = "classify_token_ids"

CONTRACT = {
    signature.name: signature
    for signature in (
        Signature(CLASSIFY, (_TEXT,), _CLASSIFICATION, "classify single texts"),
        Signature(CLASSIFY_PAIRS, (_TEXT_A, _TEXT_B), _CLASSIFICATION, "classify text pairs (<s> a </s></s> b </s>)"),
        Signature(TOKENIZE, (_TEXT,), _PACKED, "the model inputs of single texts, padded to the longest row"),
        Signature(TOKENIZE_PAIRS, (_TEXT_A, _TEXT_B), _PACKED, "the model inputs of text pairs"),
        Signature(CLASSIFY_TOKEN_IDS, _PACKED, _CLASSIFICATION, "classify packed ids (as tokenize returns them)"),
    )
}
SIGNATURES = tuple(CONTRACT)
# The tokenizer-only SavedModel (`export_tokenizer_saved_model`) serves these two.
TOKENIZER_SIGNATURES = (TOKENIZE, TOKENIZE_PAIRS)
INPUT_DTYPES = {name: signature.input_dtypes for name, signature in CONTRACT.items()}
OUTPUT_DTYPES = {name: signature.output_dtypes for name, signature in CONTRACT.items()}


# === The TFLite model's contract (`roberta-tf export tflite`) ===
# One text (or pair) per invocation, as apps classify: batch 1, the interpreter resized to the
# text's byte count (or a fixed buffer whose tail is padding). No string tensors: an app passes
# the text's UTF-8 bytes and reads label names from the model's metadata.

_UTF8_BYTES = Tensor("utf8_bytes", "int32", ("bytes",),
                     "the text's UTF-8 bytes, each 0..255; negative values are padding and ignored")
_UTF8_BYTES_A = Tensor("utf8_bytes_a", "int32", ("bytes_a",), "the first segment's bytes, as utf8_bytes")
_UTF8_BYTES_B = Tensor("utf8_bytes_b", "int32", ("bytes_b",), "the second segment's bytes, as utf8_bytes")
_ONE_ROW_PACKED = (
    Tensor("token_ids", "int32", ("1", "length"), "<s> A </s>[</s> B </s>] then <pad> (1)"),
    Tensor("padding_mask", "int32", ("1", "length"), "1 for tokens, 0 for padding"),
)
_ONE_CLASSIFICATION = (
    Tensor("logits", "float32", ("1", "classes"), "the head's output before its activation"),
    Tensor("probabilities", "float32", ("1", "classes"),
           "softmax of the logits (sigmoid for one class or a sigmoid head)"),
    Tensor("class_id", "int32", ("1",), "argmax of the logits (names: the metadata's label_names)"),
)

TFLITE_CLASSIFY = "classify"
TFLITE_CLASSIFY_PAIRS = "classify_pairs"
TFLITE_CLASSIFY_TOKEN_IDS = "classify_token_ids"

TFLITE_CONTRACT = {
    signature.name: signature
    for signature in (
        Signature(TFLITE_CLASSIFY, (_UTF8_BYTES,), _ONE_CLASSIFICATION, "classify one text given as UTF-8 bytes"),
        Signature(TFLITE_CLASSIFY_PAIRS, (_UTF8_BYTES_A, _UTF8_BYTES_B), _ONE_CLASSIFICATION,
                  "classify one pair (<s> a </s></s> b </s>)"),
        Signature(TFLITE_CLASSIFY_TOKEN_IDS, _ONE_ROW_PACKED, _ONE_CLASSIFICATION,
                  "classify one packed row (for apps that tokenize themselves)"),
    )
}
# The signatures of each kind of TFLite model (`--inputs`).
TFLITE_SIGNATURES = {
    "utf8_bytes": (TFLITE_CLASSIFY, TFLITE_CLASSIFY_PAIRS),
    "token_ids": (TFLITE_CLASSIFY_TOKEN_IDS,),
}

# The name of the model's metadata entry (its JSON: labels, sequence length, hashes, ...).
TFLITE_METADATA_NAME = "roberta_tf_export"
# The forms of the TFLite model (`--quantize`); roberta_tf.export.tflite says what each means.
TFLITE_QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
# What each quantized form may cost in SST-2-style accuracy against float32, in points: the
# project's targets, measured by benchmarks/tflite_benchmark.py and held by `roberta-tf demo`.
TFLITE_ACCURACY_TARGET_POINTS = {"float16": 0.1, "dynamic": 0.3, "int8": 1.0}


def describe(signatures=SIGNATURES, table=None):
    """The contract as text (one block per signature), for help texts and docs. `table`:
    CONTRACT (default) or TFLITE_CONTRACT."""
    table = CONTRACT if table is None else table
    lines = []
    for name in signatures:
        signature = table[name]
        lines.append(f"{name}: {signature.description}")
        for role, tensors in (("in ", signature.inputs), ("out", signature.outputs)):
            for tensor in tensors:
                lines.append(f"  {role} {tensor.name:<14}{tensor.dtype:<8}[{', '.join(tensor.shape)}]  {tensor.description}")
    return "\n".join(lines)
