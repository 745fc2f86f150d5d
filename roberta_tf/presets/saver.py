"""Writes preset directories atomically (`roberta_tf.utils.files.atomic_directory`: staged
beside the target, then renamed into place; an overwrite swaps the old one out whole)."""

import datetime
import pathlib

import roberta_tf
from roberta_tf.converters.converted import BYTE_LEVEL_BPE, SENTENCEPIECE
from roberta_tf.presets import preset_format, weights
from roberta_tf.presets.preset_format import PresetError
from roberta_tf.utils import files


def save_preset(preset_dir, backbone, classifier=None, preprocessor=None, source=None, overwrite=False,
                bpe_vocabulary=None, sentencepiece_model=None, dict_pieces=None):
    """Writes `backbone` (and `classifier`, and the tokenizer of its preprocessor) as a preset.

    Args:
        preset_dir: the directory to create.
        backbone: a RobertaBackbone.
        classifier: a RobertaTextClassifier using `backbone`, or None (backbone-only preset).
        preprocessor: defaults to `classifier.preprocessor`; its tokenizer's vocabulary and
            merges are written as vocab.json / merges.txt.
        source: provenance recorded in metadata.json (e.g. {"type": "fairseq", "path": ...}).
        overwrite: replace an existing preset directory (atomically); otherwise refuse.
        bpe_vocabulary: without a preprocessor, a `BpeVocabulary` to write as the tokenizer
            files, with a default preprocessor configuration (converters: building the
            tokenizer layer only to save its files would cost ~4 s of merge tables).
        sentencepiece_model, dict_pieces: without a preprocessor, a SentencePiece tokenizer to
            write instead (the model's path or bytes; fairseq `dict.txt` pieces or None).
    """
    target = pathlib.Path(preset_dir)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise PresetError(f"{target} exists and is not empty; pass overwrite=True to replace it.")
    if preprocessor is None and classifier is not None:
        preprocessor = classifier.preprocessor
    with files.atomic_directory(target, kind="preset", overwrite=overwrite) as staging:
        _write_contents(staging, backbone, classifier, preprocessor, source,
                        bpe_vocabulary, sentencepiece_model, dict_pieces)


def _write_contents(directory, backbone, classifier, preprocessor, source,
                    bpe_vocabulary=None, sentencepiece_model=None, dict_pieces=None):
    tokenizer_config = None
    preprocessor_config = None
    match_special_tokens = False
    if preprocessor is not None:
        tokenizer = preprocessor.tokenizer
        if tokenizer.tokenizer_type == SENTENCEPIECE:
            sentencepiece_model, dict_pieces = tokenizer.sentencepiece_model.serialized, tokenizer.dict_pieces
        else:
            bpe_vocabulary, match_special_tokens = tokenizer.bpe_vocabulary, tokenizer.match_special_tokens
        preprocessor_config = {
            "sequence_length": preprocessor.sequence_length,
            "truncate": preprocessor.truncate,
            "padding": preprocessor.padding,
        }
    elif bpe_vocabulary is not None or sentencepiece_model is not None:
        preprocessor_config = {
            "sequence_length": backbone.max_sequence_length, "truncate": "round_robin", "padding": "max_length"
        }
    if bpe_vocabulary is not None:
        _write_tokenizer_files(directory, bpe_vocabulary)
        tokenizer_config = {
            "type": BYTE_LEVEL_BPE,
            "vocabulary": preset_format.VOCABULARY_FILE,
            "merges": preset_format.MERGES_FILE,
            "match_special_tokens": match_special_tokens,
        }
    elif sentencepiece_model is not None:
        tokenizer_config = _write_sentencepiece_files(directory, sentencepiece_model, dict_pieces)
    classifier_config = None
    variables = backbone.named_weights()
    if classifier is not None:
        if classifier.backbone is not backbone:
            raise ValueError("classifier.backbone must be the backbone being saved.")
        classifier_config = {
            "num_classes": classifier.num_classes,
            "activation": _activation_name(classifier.activation),
            "hidden_dim": classifier.hidden_dim,
            "dropout": classifier.dropout,
            "label_names": classifier.label_names,
        }
        variables = classifier.named_weights()
    backbone_config = preset_format.backbone_arguments(backbone.get_config())
    config = preset_format.new_config(backbone_config, classifier_config, preprocessor_config, tokenizer_config)
    weights.write_variables(directory / preset_format.WEIGHTS_FILE, variables, metadata={"format": "pt"})
    files.write_json(directory / preset_format.CONFIG_FILE, config)
    files.write_json(directory / preset_format.METADATA_FILE, _metadata(directory, source))


def _write_tokenizer_files(directory, bpe_vocabulary):
    vocabulary = dict(sorted(bpe_vocabulary.vocabulary.items(), key=lambda item: item[1]))
    files.write_json(directory / preset_format.VOCABULARY_FILE, vocabulary)
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in bpe_vocabulary.merges]
    (directory / preset_format.MERGES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_sentencepiece_files(directory, sentencepiece_model, dict_pieces):
    """The model file as it was read (path or bytes), and dict.txt where fairseq's ids need it."""
    if not isinstance(sentencepiece_model, (bytes, bytearray)):
        sentencepiece_model = pathlib.Path(sentencepiece_model).read_bytes()
    (directory / preset_format.SENTENCEPIECE_MODEL_FILE).write_bytes(bytes(sentencepiece_model))
    config = {"type": SENTENCEPIECE, "model": preset_format.SENTENCEPIECE_MODEL_FILE}
    if dict_pieces is not None:
        # fairseq reads counts but roberta_tf only the order; 1 keeps the file fairseq-readable.
        lines = [f"{piece} 1" for piece in dict_pieces]
        (directory / preset_format.DICTIONARY_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        config["dictionary"] = preset_format.DICTIONARY_FILE
    return config


def _activation_name(activation):
    if activation is None:
        return None
    name = getattr(activation, "__name__", None)
    return None if name == "linear" else name


def _metadata(directory, source):
    written = sorted(p for p in directory.iterdir() if p.is_file())
    return {
        "roberta_tf_version": roberta_tf.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": source or {"type": "roberta_tf"},
        "files": {p.name: files.file_sha256(p) for p in written},
    }
