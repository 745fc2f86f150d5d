"""`ClassifierMethods`: the five signatures as four client methods, shared by `RestClient` and
`GrpcClient`: large calls split into requests the server admits, empty batches answered here,
and the client-side padding of token ids."""

import numpy as np

from roberta_tf.contract import tensors
from roberta_tf.contract.signatures import (
    CLASSIFY,
    CLASSIFY_PAIRS,
    CLASSIFY_TOKEN_IDS,
    CONTRACT,
    INPUT_DTYPES,
    OUTPUT_DTYPES,
    PAD_TOKEN_ID,
    TOKENIZE,
    TOKENIZE_PAIRS,
)
from roberta_tf.serving import batching
from roberta_tf.serving.errors import ServingError

# An empty batch's packed width: the packer makes an empty "longest" batch as wide as its special
# tokens, `<s> </s>` or `<s> </s></s> </s>` (roberta_tf/preprocessing/packer.py), so the served
# model answers `tokenize` with [0, 2] and `tokenize_pairs` with [0, 4].
EMPTY_PACKED_LENGTH = {TOKENIZE: 2, TOKENIZE_PAIRS: 4}
# What the outputs padded to a request's longest row are padded with when requests are joined.
PAD_VALUES = {"token_ids": PAD_TOKEN_ID, "padding_mask": 0}


class ClassifierMethods:
    """The five signatures as four methods, shared by `RestClient` and `GrpcClient`.

    A subclass supplies `predict(signature_name, inputs, input_dtypes, output_dtypes)`, which
    returns string outputs as bytes (lossless, like `tf.make_ndarray`), and `model_metadata()`.
    These methods return a dict of numpy arrays keyed by output name, with string outputs
    (`class_name`) decoded to Python `str` (UTF-8, invalid bytes replaced by U+FFFD): label
    names are text.

    - A call of more than `max_request_rows` rows is sent as consecutive requests of at most that
      many (by default `batching.MAX_REQUEST_ROWS`, 96, the largest request this repository's
      batching parameters admit with headroom; TF Serving refuses a request that does not fit
      its queue whole, it does not split it) and answered as one, rows in order.
      `tokenize` rows are then padded to the longest row of all the requests (pad id 1, mask 0).
      Each request is retried on its own; with `version=None` the requests of one call may
      reach different versions during a version switch.
    - An empty batch is answered here, without a request: `[0, C]` logits and probabilities,
      `[0]` class ids and names, `[0, 2]` (`[0, 4]` for pairs) token ids and mask, as the
      SavedModel answers. With batching on, TF Serving could leave a 0-row request waiting
      until another request arrives (serving/README.md, "Batching"). C comes from the model's
      metadata, fetched once per client and cached.
    """

    def __init__(self, max_request_rows=batching.MAX_REQUEST_ROWS):
        if not (isinstance(max_request_rows, int) and max_request_rows > 0):
            raise ValueError(f"max_request_rows must be a positive integer. Received: {max_request_rows!r}")
        self.max_request_rows = max_request_rows
        self._metadata = None

    def predict(self, signature_name, inputs, input_dtypes=None, output_dtypes=None):
        raise NotImplementedError

    def model_metadata(self):
        raise NotImplementedError

    def classify(self, texts):
        """`serving_default`: texts (str or bytes each) -> logits, probabilities, class_id, class_name."""
        return self._run(CLASSIFY, {"text": tensors.text_array("texts", texts)})

    def classify_pairs(self, texts_a, texts_b):
        """`classify_pairs`: two equally long lists of texts, classified as `<s> a </s></s> b </s>`."""
        return self._run(CLASSIFY_PAIRS, _pair_inputs(("texts_a", texts_a), ("texts_b", texts_b)))

    def tokenize(self, texts, pairs=None):
        """-> token_ids, padding_mask int32 [batch, length], padded to the longest row.

        Without `pairs`, `tokenize` packs `<s> text </s>`; with `pairs` (as long as `texts`),
        `tokenize_pairs` packs `<s> text </s></s> pair </s>`. Under server-side batching the
        rows are padded to the longest row of the merged batch, and a call split into several
        requests to the longest row of all of them, which can be longer than the call's own
        longest row (the padding is id PAD_TOKEN_ID with mask 0, harmless to
        `classify_token_ids`).
        """
        if pairs is None:
            return self._run(TOKENIZE, {"text": tensors.text_array("texts", texts)})
        return self._run(TOKENIZE_PAIRS, _pair_inputs(("texts", texts), ("pairs", pairs)))

    def classify_token_ids(self, token_ids, padding_mask, pad_to=None):
        """`classify_token_ids`: int [batch, length] ids and 0/1 mask (as `tokenize` returns them).

        `pad_to`: if given, every row is padded to this length with token id PAD_TOKEN_ID and
        padding_mask 0 before sending (the logits do not change). With server-side batching on,
        TF Serving merges only requests of equal length (serving/README.md, "Batching"), so
        clients that send a fixed `pad_to` (at most the model's sequence length, e.g. 128 or
        512) batch together. Raises ValueError if a row is already longer than `pad_to`.
        """
        token_ids = tensors.int32_matrix("token_ids", token_ids)
        padding_mask = tensors.int32_matrix("padding_mask", padding_mask)
        if token_ids.shape != padding_mask.shape:
            raise ValueError(
                "token_ids and padding_mask must have the same shape. "
                f"Received: token_ids.shape={token_ids.shape}, padding_mask.shape={padding_mask.shape}"
            )
        if pad_to is not None:
            token_ids, padding_mask = pad_token_ids(token_ids, padding_mask, pad_to)
        return self._run(CLASSIFY_TOKEN_IDS, {"token_ids": token_ids, "padding_mask": padding_mask})

    def _run(self, signature_name, inputs):
        rows = len(next(iter(inputs.values())))
        if rows == 0:
            return self._empty_answer(signature_name)
        step = self.max_request_rows
        return join_answers([
            self._predict_decoded(signature_name, {name: value[start:start + step] for name, value in inputs.items()})
            for start in range(0, rows, step)
        ])

    def _predict_decoded(self, signature_name, inputs):
        outputs = self.predict(signature_name, inputs, INPUT_DTYPES[signature_name], OUTPUT_DTYPES[signature_name])
        return {name: tensors.decode_strings(value) if value.dtype == object else value for name, value in outputs.items()}

    def _empty_answer(self, signature_name):
        """The served model's answer to 0 rows: the contract's outputs with a 0-row batch."""
        outputs = CONTRACT[signature_name].outputs
        sizes = {"batch": 0, "length": EMPTY_PACKED_LENGTH.get(signature_name)}
        if any("classes" in output.shape for output in outputs):
            sizes["classes"] = self._class_count(signature_name)
        return {output.name: np.empty([sizes[dimension] for dimension in output.shape],
                                      dtype=object if output.dtype == "string" else output.dtype)
                for output in outputs}

    def _class_count(self, signature_name):
        if self._metadata is None:
            self._metadata = self.model_metadata()
        logits = self._metadata.get(signature_name, {}).get("outputs", {}).get("logits", {})
        shape = logits.get("shape")
        if not shape or len(shape) != 2 or shape[1] is None:
            raise ServingError(
                f"Cannot answer an empty batch: the model's metadata gives no number of classes (logits shape "
                f"{shape}). Send at least one row.", code="FAILED_PRECONDITION", model=self.model_name,
                signature=signature_name)
        return shape[1]


def join_answers(answers):
    """Answers to consecutive requests -> one answer, rows in order. Outputs padded to each
    request's longest row (`token_ids`, `padding_mask`) are padded again to the widest."""
    if len(answers) == 1:
        return answers[0]
    joined = {}
    for name in answers[0]:
        parts = [answer[name] for answer in answers]
        widths = {part.shape[1:] for part in parts}
        if len(widths) > 1:
            if name not in PAD_VALUES:
                raise ServingError(
                    f"The requests of one call answered {name!r} with different shapes {sorted(widths)}; did the "
                    "model version change in between? Pin `version` for a consistent answer.", code="ABORTED")
            width = max(part.shape[1] for part in parts)
            parts = [pad_columns(part, width, PAD_VALUES[name]) for part in parts]
        joined[name] = np.concatenate(parts)
    return joined


def pad_columns(array, width, value):
    """A [batch, n] array padded on the right to [batch, width] with `value`, dtype kept."""
    return np.pad(array, ((0, 0), (0, width - array.shape[1])), constant_values=value)


def pad_token_ids(token_ids, padding_mask, length):
    """Pads int32 [batch, n] ids and mask on the right to [batch, length] with PAD_TOKEN_ID / 0."""
    length = int(length)
    if length < token_ids.shape[1]:
        raise ValueError(
            f"pad_to must be at least the rows' length. Received: pad_to={length}, length={token_ids.shape[1]}"
        )
    return (pad_columns(token_ids, length, PAD_VALUES["token_ids"]).astype(np.int32),
            pad_columns(padding_mask, length, PAD_VALUES["padding_mask"]).astype(np.int32))


def _pair_inputs(first, second):
    (name_a, texts_a), (name_b, texts_b) = first, second
    texts_a, texts_b = tensors.text_array(name_a, texts_a), tensors.text_array(name_b, texts_b)
    if len(texts_a) != len(texts_b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same length. Received: {len(texts_a)} and {len(texts_b)}"
        )
    return {"text_a": texts_a, "text_b": texts_b}
