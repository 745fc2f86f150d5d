"""Presets: a directory holding everything needed to rebuild a model, and named presets.

Format (version 1), documented in WORKSPACE.md:

    PRESET_DIR/
      config.json        what to build: backbone arguments, classifier head, preprocessor,
                         tokenizer files (see `preset_format.py`)
      model.safetensors  the weights under `named_weights()` names (no pickle, memory-mapped)
      vocab.json         tokenizer vocabulary (Hugging Face format)
      merges.txt         tokenizer merges (Hugging Face format)
      metadata.json      provenance: source, roberta_tf version, creation time, SHA-256 of files

Loading also accepts a Hugging Face checkpoint directory, an `hf://owner/name[@revision]`
handle or a named preset (`registry.PRESETS`), converted on the fly.

A named preset's tokenizer needs no download: roberta-base's vocabulary (also roberta-large's)
ships with the package, and `packaged_vocabulary(name)` gives its (vocab.json, merges.txt) paths.
"""

from roberta_tf.presets.registry import packaged_vocabulary

__all__ = ["packaged_vocabulary"]
