"""`ClassifierMethods`: the five signatures as four client methods, shared by `RestClient` and
`GrpcClient`, and the client-side padding of token ids."""

import numpy as np

from roberta_tf.contract import tensors
from roberta_tf.contract.signatures import (
    CLASSIFY,
    CLASSIFY_PAIRS,
    CLASSIFY_TOKEN_IDS,
    INPUT_DTYPES,
    OUTPUT_DTYPES,
    PAD_TOKEN_ID,
    TOKENIZE,
    TOKENIZE_PAIRS,
)


class ClassifierMethods:
    """The five signatures as four methods, shared by `RestClient` and `GrpcClient`.

    A subclass supplies `predict(signature_name, inputs, input_dtypes, output_dtypes)`, which
    returns string outputs as bytes (lossless, like `tf.make_ndarray`). These methods return a
    dict of numpy arrays keyed by output name, with string outputs (`class_name`) decoded to
    Python `str` (UTF-8, invalid bytes replaced by U+FFFD): label names are text.
    """

    def predict(self, signature_name, inputs, input_dtypes=None, output_dtypes=None):
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
        rows are padded to the longest row of the merged batch, which can be longer than this
        request's own longest row (the padding is id PAD_TOKEN_ID with mask 0, harmless to
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
        outputs = self.predict(signature_name, inputs, INPUT_DTYPES[signature_name], OUTPUT_DTYPES[signature_name])
        return {name: tensors.decode_strings(value) if value.dtype == object else value for name, value in outputs.items()}


def pad_token_ids(token_ids, padding_mask, length):
    """Pads int32 [batch, n] ids and mask on the right to [batch, length] with PAD_TOKEN_ID / 0."""
    length = int(length)
    if length < token_ids.shape[1]:
        raise ValueError(
            f"pad_to must be at least the rows' length. Received: pad_to={length}, length={token_ids.shape[1]}"
        )
    extra = ((0, 0), (0, length - token_ids.shape[1]))
    return (np.pad(token_ids, extra, constant_values=PAD_TOKEN_ID).astype(np.int32),
            np.pad(padding_mask, extra, constant_values=0).astype(np.int32))


def _pair_inputs(first, second):
    (name_a, texts_a), (name_b, texts_b) = first, second
    texts_a, texts_b = tensors.text_array(name_a, texts_a), tensors.text_array(name_b, texts_b)
    if len(texts_a) != len(texts_b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same length. Received: {len(texts_a)} and {len(texts_b)}"
        )
    return {"text_a": texts_a, "text_b": texts_b}
