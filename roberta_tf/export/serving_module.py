"""`ClassifierServingModule`: tokenizer, packer, encoder and head as one graph with string
signatures: the SavedModel that TensorFlow Serving loads (`saved_model.py` writes it).

Signatures (the contract; `tests/export/test_serving_saved_model.py` holds a restored model
to it, and `roberta_tf.serving.client` speaks it):

    serving_default     text  tf.string [batch]
    classify_pairs      text_a, text_b  tf.string [batch]
    classify_token_ids  token_ids, padding_mask  int32 [batch, length]
        -> logits         float32 [batch, classes]   the head's output before `activation`
           probabilities  float32 [batch, classes]   softmax (sigmoid for 1 class or a
                                                     sigmoid-activated, multi-label head)
           class_id       int32 [batch]              argmax of the logits
           class_name     tf.string [batch]          label name of class_id ("0", "1", ... if
                                                     the preset has none)
    tokenize            text  tf.string [batch]
    tokenize_pairs      text_a, text_b  tf.string [batch]
        -> token_ids, padding_mask  int32 [batch, length]

Every input's 0th dimension is the batch, so TF Serving's server-side batching can merge any
two requests of a signature (an optional pair input would not be batchable, and a warmup
request that cannot be batched fails the whole model load).

Rows are packed `<s> A </s>` / `<s> A </s></s> B </s>` and padded to the longest row of the
batch, truncated to `sequence_length`: no compute is spent on padding to 512. Texts are
bytes: invalid UTF-8 and NUL bytes tokenize losslessly; an empty text is `<s></s>`.

Everything is core TF (no tensorflow_text op), so the model loads in any TF Serving build and
in a process that imports only tensorflow.
"""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.export import precision as precision_lib
from roberta_tf.preprocessing import packer

SIGNATURES = ("serving_default", "classify_pairs", "tokenize", "tokenize_pairs", "classify_token_ids")
CLASSIFY_OUTPUTS = ("logits", "probabilities", "class_id", "class_name")
TOKENIZE_OUTPUTS = ("token_ids", "padding_mask")

_TEXT = tf.TensorSpec([None], tf.string, name="text")
_TEXT_A = tf.TensorSpec([None], tf.string, name="text_a")
_TEXT_B = tf.TensorSpec([None], tf.string, name="text_b")
_IDS = tf.TensorSpec([None, None], tf.int32, name="token_ids")
_MASK = tf.TensorSpec([None, None], tf.int32, name="padding_mask")


class ClassifierServingModule(tf.Module):
    """A `RobertaTextClassifier` and its tokenizer behind the four serving signatures.

    Args:
        classifier: a `RobertaTextClassifier` (its preprocessor is not used).
        tokenizer: the `RobertaTokenizer` whose ids the classifier was trained on.
        sequence_length: the truncation limit (default and maximum: the backbone's
            `max_sequence_length`).
        truncate: "round_robin" (keras-hub) or "longest_first" (Hugging Face), for pairs.
        precision: "float32" (default) or "bfloat16" (see `precision.py` for when it pays).
        jit_compile: compile the encoder with XLA (one compilation per distinct input shape).
    """

    def __init__(
        self,
        classifier,
        tokenizer,
        sequence_length=None,
        truncate="round_robin",
        precision=precision_lib.DEFAULT_PRECISION,
        jit_compile=False,
    ):
        super().__init__(name="roberta_classifier")
        maximum = classifier.backbone.max_sequence_length
        sequence_length = maximum if sequence_length is None else int(sequence_length)
        if not 5 <= sequence_length <= maximum:
            raise ValueError(f"sequence_length must be in [5, {maximum}] (the model's maximum). Received: {sequence_length}")
        if truncate not in packer.TRUNCATION_STRATEGIES:
            raise ValueError(f"truncate must be one of {packer.TRUNCATION_STRATEGIES}. Received: truncate={truncate!r}")
        if tokenizer.vocabulary_size() > classifier.backbone.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size()} ids but the model embeds only "
                f"{classifier.backbone.vocabulary_size}: they do not belong together."
            )
        self.sequence_length = sequence_length
        self.truncate = truncate
        self.precision = precision
        self.jit_compile = bool(jit_compile)
        self.num_classes = classifier.num_classes
        self.label_names = list(classifier.label_names or [str(i) for i in range(classifier.num_classes)])
        self.vocabulary_size = classifier.backbone.vocabulary_size
        self.multi_label = classifier.num_classes == 1 or classifier.activation is keras.activations.sigmoid
        # Not tracked: the tokenizer's tables are constants captured by the traced signatures
        # (tracking it as a Keras layer only earns a "not built" warning at save).
        self.__dict__["_tokenizer"] = tokenizer
        self._model = precision_lib.classifier_with_precision(classifier, precision).logits_model()
        self._encode = tf.function(self._logits, jit_compile=self.jit_compile, autograph=False)

    # === Signatures ===

    @tf.function(input_signature=[_TEXT], autograph=False)
    def serving_default(self, text):
        return self._classify(*self._pack([text]))

    @tf.function(input_signature=[_TEXT_A, _TEXT_B], autograph=False)
    def classify_pairs(self, text_a, text_b):
        with tf.control_dependencies([_assert_same_batch(text_a, text_b, "text_a", "text_b")]):
            return self._classify(*self._pack([text_a, text_b]))

    @tf.function(input_signature=[_TEXT], autograph=False)
    def tokenize(self, text):
        token_ids, padding_mask = self._pack([text])
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    @tf.function(input_signature=[_TEXT_A, _TEXT_B], autograph=False)
    def tokenize_pairs(self, text_a, text_b):
        with tf.control_dependencies([_assert_same_batch(text_a, text_b, "text_a", "text_b")]):
            token_ids, padding_mask = self._pack([text_a, text_b])
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    @tf.function(input_signature=[_IDS, _MASK], autograph=False)
    def classify_token_ids(self, token_ids, padding_mask):
        with tf.control_dependencies(self._check_ids(token_ids, padding_mask)):
            return self._classify(tf.identity(token_ids), tf.identity(padding_mask))

    def signatures(self):
        """{name: concrete function}, for `tf.saved_model.save(..., signatures=...)`."""
        return {name: getattr(self, name).get_concrete_function() for name in SIGNATURES}

    @classmethod
    def input_dtypes(cls):
        """{signature: {input name: TF dtype name}}, read off the input signatures (the client's
        `contract.INPUT_DTYPES` mirrors it; a test keeps them equal)."""
        return {
            name: {spec.name: spec.dtype.name for spec in getattr(cls, name).input_signature} for name in SIGNATURES
        }

    # === Parts ===

    def _pack(self, segments):
        """Tokenizes 1 or 2 string batches and packs them: int32 [batch, longest row]."""
        ragged = [self._tokenizer.tokenize_batch(segment) for segment in segments]
        token_ids, padding_mask = packer.pack(
            [(r.flat_values, r.row_splits) for r in ragged],
            self.sequence_length,
            start_id=self._tokenizer.start_token_id,
            end_id=self._tokenizer.end_token_id,
            pad_id=self._tokenizer.pad_token_id,
            truncate=self.truncate,
            padding="longest",
        )
        return token_ids, tf.cast(padding_mask, tf.int32)

    def _logits(self, token_ids, padding_mask):
        logits = self._model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
        return tf.cast(logits, tf.float32)

    def _classify(self, token_ids, padding_mask):
        logits = self._encode(token_ids, padding_mask)
        probabilities = tf.sigmoid(logits) if self.multi_label else tf.nn.softmax(logits, axis=-1)
        class_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        class_name = tf.gather(tf.constant(self.label_names, tf.string), class_id)
        return {"logits": logits, "probabilities": probabilities, "class_id": class_id, "class_name": class_name}

    def _check_ids(self, token_ids, padding_mask):
        """Clear errors for ids a client packed itself (else Gather's "indices not in [0, N)")."""
        return [
            tf.debugging.assert_equal(
                tf.shape(token_ids), tf.shape(padding_mask), message="token_ids and padding_mask must have the same shape"
            ),
            tf.debugging.assert_less_equal(
                tf.shape(token_ids)[1], self.sequence_length, message=f"rows are longer than the {self.sequence_length} tokens this model takes"
            ),
            tf.debugging.assert_non_negative(token_ids, message="token_ids must be >= 0"),
            tf.debugging.assert_less(token_ids, self.vocabulary_size, message=f"token_ids must be < {self.vocabulary_size}"),
            tf.debugging.Assert(
                tf.reduce_all((padding_mask == 0) | (padding_mask == 1)), ["padding_mask must hold only 0 and 1"]
            ),
        ]


def _assert_same_batch(a, b, name_a, name_b):
    return tf.debugging.assert_equal(
        tf.size(a), tf.size(b), message=f"{name_a} and {name_b} must hold the same number of texts"
    )
