"""Exports the tokenizer as a builtin-only TFLite model: UTF-8 bytes in, token ids out.

Model contract (one text per invocation, any length; resize the input before allocating):
    input  `utf8_bytes`: int32 [num_bytes], each 0..255 (the text's raw bytes);
    output `token_ids`:  int32 [num_tokens], RoBERTa ids without `<s>`/`</s>`.
Converted with `TFLITE_BUILTINS` only, so it runs on any TFLite/LiteRT runtime without Flex.
"""

import tensorflow as tf

from roberta_tf.export import tflite_ops


def tokenizer_tflite_function(tokenizer):
    """The tf.function the converter traces (also handy to compare TF with TFLite)."""
    bpe = tokenizer.byte_level_bpe

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="utf8_bytes")], autograph=False)
    def tokenize_utf8(utf8_bytes):
        text_ids = tf.zeros_like(utf8_bytes)
        # One text per invocation: the non-compacting merge loop has fewer ops per pass.
        token_ids, _ = bpe.tokenize_bytes(utf8_bytes, text_ids, tf.constant(1), compact=False)
        return {"token_ids": tf.identity(token_ids, name="token_ids")}

    return tokenize_utf8


def export_tokenizer_tflite(tokenizer):
    """Converts `tokenizer` (a `RobertaTokenizer`) and returns the .tflite bytes.

    Raises:
        ValueError: if the converted model contains a Flex or custom op.
    """
    function = tokenizer_tflite_function(tokenizer)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], tokenizer)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    model = converter.convert()
    extra = tflite_ops.non_builtin_operators(model)
    if extra:
        raise ValueError(f"The tokenizer model needs non-builtin ops {extra}; it would not run without Flex.")
    return model
