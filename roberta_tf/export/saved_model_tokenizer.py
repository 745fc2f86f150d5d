"""Exports the tokenizer and packer alone as a SavedModel: `tokenize` and `tokenize_pairs`,
the same two signatures (same inputs, same outputs) as the classifier's TF Serving export.

    export_tokenizer_saved_model(tokenizer, "exported/tokenizer", sequence_length=128)

Signatures (`roberta_tf.contract.signatures`; the test holds the restored model to them):
    tokenize        text  string [batch]           -> token_ids, padding_mask int32 [batch, length]
    tokenize_pairs  text_a, text_b string [batch]  -> the same, packed `<s> a </s></s> b </s>`
Rows are padded with `<pad>` to the longest row and truncated to `sequence_length`. The graph
holds no tensorflow_text op: it loads in any process that has only tensorflow. Written and
verified exactly as a classifier version (`saved_model.write_verified`), atomically.
"""

import pathlib

from roberta_tf.export import saved_model, serving_module
from roberta_tf.preprocessing import options
from roberta_tf.utils import files


def export_tokenizer_saved_model(tokenizer, export_dir, sequence_length=512, truncate=options.DEFAULT_TRUNCATE):
    """Writes the SavedModel to `export_dir` atomically and returns its path.

    Raises:
        FileExistsError: if `export_dir` exists and is not empty.
    """
    module = serving_module.TokenizerServingModule(tokenizer, sequence_length, truncate)
    export_dir = pathlib.Path(export_dir).absolute()
    metadata = saved_model.metadata_for(module, version=None, source=None, tokenizer_files=())
    with files.atomic_directory(export_dir, kind=saved_model.STAGING_KIND) as staging:
        saved_model.write_verified(module, staging, export_dir.name, metadata)
    return export_dir
