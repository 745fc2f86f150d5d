"""The serving graphs: strings in, packed ids or classifications out, as `tf.Module`s whose
signatures implement `roberta_tf.contract.signatures` (the one written contract; a test holds
the restored SavedModel to it). `saved_model.py` writes them.

    TokenizerServingModule   tokenize, tokenize_pairs                 (the tokenizer SavedModel)
    ClassifierServingModule  + serving_default, classify_pairs, classify_token_ids   (TF Serving)

Rows are packed `<s> A </s>` / `<s> A </s></s> B </s>` by `packer.pack_texts` (the same step
the preprocessor layer runs) and padded to the longest row of the batch, truncated to
`sequence_length`: no compute is spent on padding to 512. Texts are bytes: invalid UTF-8 and
NUL bytes tokenize losslessly; an empty text is `<s></s>`; an empty batch answers [0, ...].

Every input's 0-th dimension is the batch, so TF Serving's server-side batching can merge any
two requests of a signature (an optional pair input would not be batchable, and a warmup
request that cannot be batched fails the whole model load). Everything is core TF (no
tensorflow_text op): the model loads in any TF Serving build and in a process that imports
only tensorflow.
"""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.export import precision as precision_lib
from roberta_tf.preprocessing import options, packer
from roberta_tf.contract import signatures as contract
from roberta_tf.utils.untracked import Untracked


# Where the tokenizer and packer run in an exported graph (see `TokenizerServingModule._pack`).
TOKENIZER_DEVICE = "/device:CPU:0"


def input_signature(signature_name):
    """The contract's inputs of `signature_name` as tf.TensorSpecs (every dimension dynamic)."""
    return [
        tf.TensorSpec([None] * len(tensor.shape), tf.as_dtype(tensor.dtype), name=tensor.name)
        for tensor in contract.CONTRACT[signature_name].inputs
    ]


class TokenizerServingModule(tf.Module):
    """A `RobertaTokenizer` and the packer behind the `tokenize` and `tokenize_pairs` signatures.

    Args:
        tokenizer: the `RobertaTokenizer`.
        sequence_length: the truncation limit (at least `options.MIN_SEQUENCE_LENGTH`).
        truncate: "round_robin" (keras-hub) or "longest_first" (Hugging Face), for pairs.
    """

    SIGNATURES = contract.TOKENIZER_SIGNATURES

    def __init__(self, tokenizer, sequence_length=512, truncate=options.DEFAULT_TRUNCATE, name="roberta_tokenizer"):
        super().__init__(name=name)
        self.sequence_length = options.check_sequence_length(int(sequence_length))
        self.truncate = options.check_truncate(truncate)
        # Untracked: the tokenizer's tables are constants captured by the traced signatures
        # (tracking it as a Keras layer only earns a "not built" warning at save).
        self._untracked = Untracked(tokenizer=tokenizer)

    @tf.function(input_signature=input_signature(contract.TOKENIZE), autograph=False)
    def tokenize(self, text):
        return self._packed([text])

    @tf.function(input_signature=input_signature(contract.TOKENIZE_PAIRS), autograph=False)
    def tokenize_pairs(self, text_a, text_b):
        with tf.control_dependencies([_assert_same_batch(text_a, text_b)]):
            return self._packed([text_a, text_b])

    @property
    def tokenizer(self):
        return self._untracked.tokenizer

    def signatures(self):
        """{name: concrete function}, for `tf.saved_model.save(..., signatures=...)`."""
        return {name: getattr(self, name).get_concrete_function() for name in self.SIGNATURES}

    def _pack(self, texts):
        """1 or 2 string batches -> token_ids, padding_mask int32 [batch, longest row].

        Pinned to the CPU (`TOKENIZER_DEVICE`): the tokenizer is hundreds of small integer
        ops in a while loop, which on a GPU would each be a kernel launch, and some int32
        kernels exist only on the CPU (copies back and forth). On a GPU server only the
        encoder runs on the GPU; a CPU-only server ignores the pin (soft placement)."""
        with tf.device(TOKENIZER_DEVICE):
            token_ids, padding_mask = packer.pack_texts(
                self.tokenizer, texts, self.sequence_length, truncate=self.truncate, padding="longest"
            )
            return token_ids, tf.cast(padding_mask, tf.int32)

    def _packed(self, texts):
        token_ids, padding_mask = self._pack(texts)
        return {"token_ids": token_ids, "padding_mask": padding_mask}


class ClassifierServingModule(TokenizerServingModule):
    """A `RobertaTextClassifier` and its tokenizer behind all five signatures of the contract.

    Args:
        classifier: a `RobertaTextClassifier` (its preprocessor is not used).
        tokenizer: the `RobertaTokenizer` whose ids the classifier was trained on.
        sequence_length: the truncation limit (default and maximum: the backbone's
            `max_sequence_length`).
        truncate: "round_robin" (keras-hub) or "longest_first" (Hugging Face), for pairs.
        precision: "float32" (default) or "bfloat16" (see `precision.py` for when it pays).
        jit_compile: compile the encoder with XLA (one compilation per distinct input shape).
    """

    SIGNATURES = contract.SIGNATURES

    def __init__(
        self,
        classifier,
        tokenizer,
        sequence_length=None,
        truncate=options.DEFAULT_TRUNCATE,
        precision=precision_lib.DEFAULT_PRECISION,
        jit_compile=False,
    ):
        maximum = classifier.backbone.max_sequence_length
        sequence_length = maximum if sequence_length is None else int(sequence_length)
        options.check_sequence_length(sequence_length, maximum)
        super().__init__(tokenizer, sequence_length, truncate, name="roberta_classifier")
        if tokenizer.vocabulary_size() > classifier.backbone.vocabulary_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocabulary_size()} ids but the model embeds only "
                f"{classifier.backbone.vocabulary_size}: they do not belong together."
            )
        self.precision = precision
        self.jit_compile = bool(jit_compile)
        self.num_classes = classifier.num_classes
        self.label_names = list(classifier.label_names or [str(i) for i in range(classifier.num_classes)])
        self.vocabulary_size = classifier.backbone.vocabulary_size
        self.multi_label = classifier.num_classes == 1 or classifier.activation is keras.activations.sigmoid
        self._model = precision_lib.classifier_with_precision(classifier, precision).logits_model()
        self._encode = tf.function(self._logits, jit_compile=self.jit_compile, autograph=False)

    # === Signatures (tokenize, tokenize_pairs: inherited) ===

    @tf.function(input_signature=input_signature(contract.CLASSIFY), autograph=False)
    def serving_default(self, text):
        return self._classify(*self._pack([text]))

    @tf.function(input_signature=input_signature(contract.CLASSIFY_PAIRS), autograph=False)
    def classify_pairs(self, text_a, text_b):
        with tf.control_dependencies([_assert_same_batch(text_a, text_b)]):
            return self._classify(*self._pack([text_a, text_b]))

    @tf.function(input_signature=input_signature(contract.CLASSIFY_TOKEN_IDS), autograph=False)
    def classify_token_ids(self, token_ids, padding_mask):
        with tf.control_dependencies(self._check_ids(token_ids, padding_mask)):
            return self._classify(tf.identity(token_ids), tf.identity(padding_mask))

    # === Parts ===

    def _logits(self, token_ids, padding_mask):
        logits = self._model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
        return tf.cast(logits, tf.float32)

    def classification(self, token_ids, padding_mask):
        """The numeric outputs (logits, probabilities, class_id) of packed rows; the TFLite
        model's signatures return these."""
        logits = self._encode(token_ids, padding_mask)
        probabilities = tf.sigmoid(logits) if self.multi_label else tf.nn.softmax(logits, axis=-1)
        class_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": probabilities, "class_id": class_id}

    def _classify(self, token_ids, padding_mask):
        outputs = self.classification(token_ids, padding_mask)
        outputs["class_name"] = tf.gather(tf.constant(self.label_names, tf.string), outputs["class_id"])
        return outputs

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


def _assert_same_batch(text_a, text_b):
    return tf.debugging.assert_equal(
        tf.size(text_a), tf.size(text_b), message="text_a and text_b must hold the same number of texts"
    )
