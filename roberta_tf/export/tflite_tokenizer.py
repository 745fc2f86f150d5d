"""Exports the tokenizer as a builtin-only TFLite model: UTF-8 bytes in, token ids out.

Model contract (one text per invocation, any length; resize the input before allocating):
    input  `utf8_bytes`: int32 [num_bytes], each 0..255 (the text's raw bytes); negative
                         values are padding and ignored, so one input buffer of a fixed
                         size (tail filled with -1) serves every shorter text;
    output `token_ids`:  int32 [num_tokens], RoBERTa ids without `<s>`/`</s>`; with
                         `max_tokens`, the first `max_tokens` of them (exact), computed at a
                         cost bounded by that many tokens' worth of text, whatever its length.
Converted with `TFLITE_BUILTINS` only, so it runs on any TFLite/LiteRT runtime without Flex.
"""

import tensorflow as tf

from roberta_tf.export import tflite_ops


def tokenizer_tflite_function(tokenizer, max_tokens=None):
    """The tf.function the converter traces (also handy to compare TF with TFLite)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="utf8_bytes")], autograph=False)
    def tokenize_utf8(utf8_bytes):
        # Negative values are padding: a client can keep one fixed-size input buffer (no
        # resize and re-allocation per text) and fill the tail with -1.
        text_bytes = tf.gather(utf8_bytes, tf.reshape(tf.where(utf8_bytes >= 0), [-1]))
        token_ids = tokenizer.tokenize_text_bytes(text_bytes, max_tokens)
        if max_tokens is not None:
            token_ids = token_ids[:max_tokens]
        return {"token_ids": tf.identity(token_ids, name="token_ids")}

    return tokenize_utf8


def export_tokenizer_tflite(tokenizer, max_tokens=None):
    """Converts `tokenizer` (a `RobertaTokenizer`) and returns the .tflite bytes. `max_tokens`
    (None: every token) keeps each text's first `max_tokens` ids, as a model with a sequence
    length needs, and bounds the work on adversarial text.

    Raises:
        ValueError: if the converted model contains a Flex or custom op.
    """
    function = tokenizer_tflite_function(tokenizer, max_tokens)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], tokenizer)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    extra = tflite_ops.non_builtin_operators(model)
    if extra:
        raise ValueError(f"The tokenizer model needs non-builtin ops {extra}; it would not run without Flex.")
    return model
