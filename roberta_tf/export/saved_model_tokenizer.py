"""Exports the tokenizer (and packer) as a SavedModel with string signatures, core TF ops only.

Signatures (the contract; `tests/export/test_saved_model_tokenizer.py` holds the restored
model to it):
    `tokenize`:   text tf.string [batch] -> token_ids int32 [total_tokens] (ragged values,
                  no `<s>`/`</s>`), row_splits int64 [batch + 1].
    `preprocess`: text tf.string [batch] -> token_ids int32 [batch, width], padding_mask
                  int32 [batch, width]; `<s> A </s>` padded with `<pad>` to the longest row,
                  truncated to `sequence_length`.
The graph holds no tensorflow_text op: it loads in any process that has only tensorflow.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from roberta_tf.preprocessing import packer


class TokenizerModule(tf.Module):
    """A `tf.Module` serving a `RobertaTokenizer` through string signatures."""

    def __init__(self, tokenizer, sequence_length=512):
        super().__init__(name="roberta_tokenizer")
        self._tokenizer = tokenizer
        self._sequence_length = sequence_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def tokenize(self, text):
        ids = self._tokenizer.tokenize_batch(text)
        return {"token_ids": ids.flat_values, "row_splits": ids.row_splits}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def preprocess(self, text):
        ids = self._tokenizer.tokenize_batch(text)
        token_ids, padding_mask = packer.pack(
            [(ids.flat_values, ids.row_splits)],
            self._sequence_length,
            start_id=self._tokenizer.start_token_id,
            end_id=self._tokenizer.end_token_id,
            pad_id=self._tokenizer.pad_token_id,
            padding="longest",
        )
        return {"token_ids": token_ids, "padding_mask": tf.cast(padding_mask, tf.int32)}


def export_tokenizer_saved_model(tokenizer, export_dir, sequence_length=512):
    """Writes the SavedModel to `export_dir` atomically (built beside it, then renamed).

    Raises:
        FileExistsError: if `export_dir` exists.
    """
    export_dir = os.path.abspath(export_dir)
    if os.path.exists(export_dir):
        raise FileExistsError(f"Refusing to overwrite {export_dir!r}; choose a new directory.")
    parent = os.path.dirname(export_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    try:
        module = TokenizerModule(tokenizer, sequence_length)
        tf.saved_model.save(
            module,
            staging,
            signatures={
                "tokenize": module.tokenize.get_concrete_function(),
                "preprocess": module.preprocess.get_concrete_function(),
            },
        )
        os.replace(staging, export_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return export_dir
