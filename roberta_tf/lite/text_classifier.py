"""`TextClassifier`: a `roberta-tf export tflite` model behind a small Python API.

    classifier = TextClassifier("sst2.tflite", num_threads=2)
    result = classifier.classify(["A warm, funny film.", "Dull."])
    result.labels, result.probabilities            # ["positive", "negative"], float32 [2, 2]

The model takes one text per invocation (as an app calls it), so texts are run one after the
other. Inputs go through a fixed-size buffer whose tail is padding (-1, which the model
ignores), so the input shape changes only when a text needs a bigger buffer (sizes are powers
of two). The inner tensors still follow each text's token count (the model's shapes are
dynamic), so this saves little: measured about 3% per SST-2 sentence against resizing the
input to every text.

Threads: an interpreter must not be invoked from two threads at once, so each thread gets its
own (created on first use, all reading the same model). One `TextClassifier` can be shared by
a thread pool.
"""

import dataclasses
import os
import threading

import numpy as np

from roberta_tf.contract import signatures as contract
from roberta_tf.lite.metadata import read_tflite_metadata

MIN_BUFFER_BYTES = 64
PADDING = -1


@dataclasses.dataclass
class Classification:
    """Outputs for a batch of texts, row i for text i."""

    logits: np.ndarray  # float32 [n, classes]
    probabilities: np.ndarray  # float32 [n, classes]
    class_id: np.ndarray  # int32 [n]
    labels: list  # label names of class_id

    def __len__(self):
        return len(self.labels)


class TextClassifier:
    """Classifies texts with a TFLite model written by `roberta-tf export tflite`.

    Args:
        model: the .tflite path (or its bytes).
        num_threads: interpreter threads per invocation (default: the model metadata's
            recommendation, else the runtime's default).
    """

    def __init__(self, model, num_threads=None):
        if isinstance(model, (str, os.PathLike)):
            self._model_path, self._model_content = os.fspath(model), None
        else:
            self._model_path, self._model_content = None, bytes(model)
        self.metadata = read_tflite_metadata(self._model_path or self._model_content)
        self.num_threads = num_threads or self.metadata.get("recommended_num_threads")
        self.inputs = self.metadata.get("inputs", "utf8_bytes")
        self.signatures = tuple(contract.TFLITE_SIGNATURES[self.inputs])
        self.num_classes = int(self.metadata["num_classes"])
        self.label_names = list(self.metadata.get("label_names") or [str(i) for i in range(self.num_classes)])
        self.vocabulary_size = int(self.metadata["tokenizer"]["vocabulary_size"])
        self.sequence_length = int(self.metadata["sequence_length"])
        self._local = threading.local()

    # === The three signatures ===

    def classify(self, texts):
        """Texts (str, encoded as UTF-8, or bytes, taken as they are) -> `Classification`."""
        self._require(contract.TFLITE_CLASSIFY)
        return self._run_all(contract.TFLITE_CLASSIFY, [(_utf8(text),) for text in _as_list(texts, "texts")])

    def classify_pairs(self, texts_a, texts_b):
        """Pairs (text_a[i], text_b[i]) -> `Classification` (`<s> a </s></s> b </s>`)."""
        self._require(contract.TFLITE_CLASSIFY_PAIRS)
        texts_a, texts_b = _as_list(texts_a, "texts_a"), _as_list(texts_b, "texts_b")
        if len(texts_a) != len(texts_b):
            raise ValueError(f"texts_a and texts_b must hold as many texts: {len(texts_a)} != {len(texts_b)}")
        rows = [(_utf8(a), _utf8(b)) for a, b in zip(texts_a, texts_b)]
        return self._run_all(contract.TFLITE_CLASSIFY_PAIRS, rows)

    def classify_token_ids(self, token_ids, padding_mask):
        """Packed rows (int [n, length] each, as the `tokenize` signature returns them) ->
        `Classification`. Checked here, since TFLite has no assertions."""
        self._require(contract.TFLITE_CLASSIFY_TOKEN_IDS)
        token_ids, padding_mask = np.asarray(token_ids), np.asarray(padding_mask)
        if token_ids.ndim != 2 or token_ids.shape != padding_mask.shape:
            raise ValueError(f"token_ids and padding_mask must be [n, length] of one shape: {token_ids.shape}, {padding_mask.shape}")
        if token_ids.shape[1] > self.sequence_length:
            raise ValueError(f"rows are longer than the {self.sequence_length} tokens this model takes")
        if token_ids.size and not (np.issubdtype(token_ids.dtype, np.integer) and np.issubdtype(padding_mask.dtype, np.integer)):
            # Casting 5.5 to int32 would silently classify another token.
            raise TypeError(f"token_ids and padding_mask must be integers, not {token_ids.dtype} / {padding_mask.dtype}")
        if token_ids.size and (token_ids.min() < 0 or token_ids.max() >= self.vocabulary_size):
            raise ValueError(f"token_ids must be in [0, {self.vocabulary_size})")
        if not np.isin(padding_mask, (0, 1)).all():
            raise ValueError("padding_mask must hold only 0 and 1")
        rows = [(ids[np.newaxis].astype(np.int32), mask[np.newaxis].astype(np.int32)) for ids, mask in zip(token_ids, padding_mask)]
        return self._run_all(contract.TFLITE_CLASSIFY_TOKEN_IDS, rows)

    # === Running ===

    def _run_all(self, signature_name, rows):
        outputs = [self._run(signature_name, row) for row in rows]
        if not outputs:
            empty = np.zeros([0, self.num_classes], np.float32)
            return Classification(empty, empty.copy(), np.zeros([0], np.int32), [])
        class_id = np.concatenate([o["class_id"] for o in outputs]).astype(np.int32)
        return Classification(
            logits=np.concatenate([o["logits"] for o in outputs]),
            probabilities=np.concatenate([o["probabilities"] for o in outputs]),
            class_id=class_id,
            labels=[self.label_names[i] for i in class_id],
        )

    def _run(self, signature_name, row):
        runner = self._runner(signature_name)
        input_names = [tensor.name for tensor in contract.TFLITE_CONTRACT[signature_name].inputs]
        if signature_name == contract.TFLITE_CLASSIFY_TOKEN_IDS:
            return runner(**dict(zip(input_names, row)))
        return runner(**{name: self._padded(signature_name, name, values) for name, values in zip(input_names, row)})

    def _padded(self, signature_name, input_name, values):
        """`values` in the thread's buffer for this input, grown (to a power of two) when too
        small; the tail is padding."""
        buffers = self._local.buffers
        key = (signature_name, input_name)
        buffer = buffers.get(key)
        if buffer is None or buffer.size < values.size:
            buffer = buffers[key] = np.full(max(MIN_BUFFER_BYTES, 1 << int(values.size - 1).bit_length()), PADDING, np.int32)
        buffer[: values.size] = values
        buffer[values.size:] = PADDING
        return buffer

    def _runner(self, signature_name):
        """This thread's runner of `signature_name` (its interpreter is made on first use)."""
        if not hasattr(self._local, "runners"):
            from ai_edge_litert import interpreter as litert

            interpreter = litert.Interpreter(
                model_path=self._model_path, model_content=self._model_content, num_threads=self.num_threads
            )
            self._local.runners = {name: interpreter.get_signature_runner(name) for name in self.signatures}
            self._local.buffers = {}
        return self._local.runners[signature_name]

    def _require(self, signature_name):
        if signature_name not in self.signatures:
            raise ValueError(
                f"This model ({self.inputs} inputs) has no {signature_name} signature; it has {list(self.signatures)}."
            )


def _as_list(texts, name):
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of texts, not one text; wrap it: [{name}]")
    return list(texts)


def _utf8(text):
    if isinstance(text, str):
        return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    if isinstance(text, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(text), np.uint8).astype(np.int32)
    raise TypeError(f"A text is a str or bytes. Received: {type(text).__name__}")
