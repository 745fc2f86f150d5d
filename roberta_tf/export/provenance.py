"""What every export records about where it came from, written once for the SavedModel and the
TFLite exporters: the preset's classifier and tokenizer, and the metadata fields they share
(labels, sequence length, tokenizer files' and source hashes, versions, the contract)."""

import dataclasses
import datetime
import os
import pathlib

import tensorflow as tf

import roberta_tf
from roberta_tf.models import RobertaTextClassifier, tokenizer_class
from roberta_tf.presets import loader
from roberta_tf.utils import files


@dataclasses.dataclass
class PresetExport:
    """A preset, resolved for an exporter."""

    classifier: object  # RobertaTextClassifier (no preprocessor)
    tokenizer: object  # RobertaTokenizer or XLMRobertaTokenizer
    sequence_length: object  # the preset preprocessor's, or None (the model's maximum)
    source: dict  # provenance for the metadata
    tokenizer_files: list  # paths whose SHA-256 the metadata records


def resolve_preset(preset):
    """A preset reference (directory, hf:// handle, name, `PresetContents`) -> `PresetExport`."""
    contents = loader.resolve(preset)
    preset_metadata = contents.metadata or {}
    local = isinstance(contents.source, (str, os.PathLike)) and os.path.isdir(contents.source)
    source = {
        "preset": contents.source,
        # One hash over the preset directory's files, so an artifact names its exact preset.
        "preset_sha256": files.directory_sha256(contents.source) if local else None,
        # The checkpoint the preset was converted from (converters record its SHA-256).
        "checkpoint_sha256": (preset_metadata.get("source") or {}).get("sha256"),
        "preset_metadata": preset_metadata or None,
    }
    return PresetExport(
        classifier=RobertaTextClassifier.from_preset(contents, preprocessor=None),
        tokenizer=tokenizer_class(contents.tokenizer_type).from_preset(contents),
        sequence_length=(contents.config.get("preprocessor") or {}).get("sequence_length"),
        source=source,
        tokenizer_files=contents.tokenizer_files(),
    )


def common_metadata(serving, source, tokenizer_files):
    """The metadata fields every export of `serving` (a `ClassifierServingModule` or a
    `TokenizerServingModule`) records."""
    metadata = {
        "roberta_tf_version": roberta_tf.__version__,
        "tensorflow_version": tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sequence_length": serving.sequence_length,
        "truncate": serving.truncate,
        "tokenizer_files": {pathlib.Path(p).name: files.file_sha256(p) for p in tokenizer_files},
        # RoBERTa's: `max_word_bytes`, the one way ids can differ from Hugging Face `tokenizers`
        # (a piece of a word that no final boundary splits is merged in chunks of this many bytes).
        "tokenizer": {**serving.tokenizer.export_metadata(), "vocabulary_size": serving.tokenizer.vocabulary_size()},
        "source": source,
    }
    if hasattr(serving, "label_names"):  # a classifier
        metadata.update(label_names=serving.label_names, num_classes=serving.num_classes, multi_label=serving.multi_label)
    return metadata
