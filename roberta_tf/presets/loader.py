"""Resolves a preset (directory, Hugging Face checkpoint, hf:// handle, named preset) and
builds backbones, classifiers and preprocessors from it."""

import dataclasses
import json
import os
import pathlib
from typing import Callable, Optional

from absl import logging

from roberta_tf.converters import huggingface, layout
from roberta_tf.converters.layout import ConversionError
from roberta_tf.presets import hub, preset_format, registry, weights
from roberta_tf.presets.preset_format import PresetError


@dataclasses.dataclass
class PresetContents:
    """A resolved preset: its config (preset format), a weights reader and tokenizer files."""

    source: str
    config: dict
    read_weights: Callable[[], dict]
    vocabulary: Optional[pathlib.Path] = None  # vocab.json (or an in-memory dict)
    merges: Optional[pathlib.Path] = None  # merges.txt (or an in-memory list)


def resolve(preset):
    """Any accepted preset reference -> PresetContents."""
    if isinstance(preset, PresetContents):
        return preset
    if not isinstance(preset, (str, os.PathLike)):
        raise PresetError(f"A preset is a directory, an hf:// handle or a name. Received: {preset!r}")
    text = os.fspath(preset)
    if os.path.isdir(text):
        if preset_format.is_preset_dir(text):
            return _from_preset_dir(pathlib.Path(text))
        if (pathlib.Path(text) / "config.json").is_file():
            return _from_huggingface_dir(pathlib.Path(text), source=text)
        raise PresetError(f"{text} is neither a roberta_tf preset nor a Hugging Face checkpoint directory.")
    if text.startswith("hf://"):
        repo_id, revision = hub.parse_handle(text)
        directory = hub.download(
            repo_id, ["config.json"], revision,
            optional=["model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "sentencepiece.bpe.model"],
        )
        return _from_huggingface_dir(directory, source=text)
    if text in registry.PRESETS:
        entry = registry.PRESETS[text]
        directory = hub.download(entry["hf_repo"], entry["files"])
        return _from_huggingface_dir(directory, source=f"{text} (hf://{entry['hf_repo']})")
    raise PresetError(
        f"Unknown preset {text!r}: not a directory, not an hf://owner/name handle and not a named preset "
        f"({', '.join(sorted(registry.PRESETS))})."
    )


def load_backbone(preset, load_weights=True, **kwargs):
    from roberta_tf.models.roberta_backbone import RobertaBackbone

    contents = resolve(preset)
    arguments = {**preset_format.backbone_arguments(contents.config["backbone"]), **kwargs}
    backbone = RobertaBackbone(**arguments)
    if load_weights:
        weights.assign(backbone.named_weights(), contents.read_weights(), contents.source, allow_unused=("head.",))
    return backbone


def load_classifier(preset, load_weights=True, num_classes=None, preprocessor="auto", **kwargs):
    from roberta_tf.models.roberta_text_classifier import RobertaTextClassifier

    contents = resolve(preset)
    head = contents.config.get("classifier")
    if num_classes is None:
        if head is None:
            raise PresetError(f"{contents.source} has no classification head: pass num_classes.")
        num_classes = head["num_classes"]
    keep_head = head is not None and head["num_classes"] == num_classes
    if head is not None and not keep_head:
        logging.warning(
            "%s has a %d-class head; building a new, randomly initialized %d-class head.",
            contents.source, head["num_classes"], num_classes,
        )
    # keras-hub routes task keyword arguments to the task (dropout is the head's); dtype is the backbone's.
    backbone_kwargs = {"dtype": kwargs.pop("dtype")} if "dtype" in kwargs else {}
    backbone = load_backbone(contents, load_weights=False, **backbone_kwargs)
    if preprocessor == "auto":
        preprocessor = load_preprocessor(contents)
    head_arguments = {}
    if keep_head:
        head_arguments = {k: head[k] for k in ("activation", "hidden_dim", "dropout", "label_names")}
    classifier = RobertaTextClassifier(
        backbone, num_classes, preprocessor=preprocessor, **{**head_arguments, **kwargs}
    )
    if load_weights:
        variables = classifier.named_weights() if keep_head else backbone.named_weights()
        weights.assign(variables, contents.read_weights(), contents.source, allow_unused=("head.",))
    return classifier


def load_preprocessor(preset, sequence_length=None, **kwargs):
    from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor

    contents = resolve(preset)
    config = contents.config.get("preprocessor") or {}
    arguments = {
        "sequence_length": sequence_length or config.get("sequence_length")
        or contents.config["backbone"]["max_sequence_length"],
        "truncate": config.get("truncate", "round_robin"),
        "padding": config.get("padding", "max_length"),
        **kwargs,
    }
    return RobertaTextClassifierPreprocessor(load_tokenizer(contents), **arguments)


def load_tokenizer(preset):
    from roberta_tf.models.roberta_tokenizer import RobertaTokenizer

    contents = resolve(preset)
    config = contents.config.get("tokenizer")
    if config is None:
        raise PresetError(f"{contents.source} has no tokenizer files: pass preprocessor=None and feed token ids.")
    if config["type"] != "byte_level_bpe":
        raise PresetError(
            f"{contents.source} uses a {config['type']} tokenizer, which roberta_tf does not support yet "
            "(XLM-RoBERTa's SentencePiece comes later). Load it with preprocessor=None and feed token ids."
        )
    return RobertaTokenizer(
        vocabulary=_as_argument(contents.vocabulary),
        merges=_as_argument(contents.merges),
        match_special_tokens=config.get("match_special_tokens", False),
    )


def _as_argument(value):
    return str(value) if isinstance(value, pathlib.Path) else value


def _from_preset_dir(directory):
    config = preset_format.read_config(directory)
    tokenizer = config.get("tokenizer")
    vocabulary = merges = None
    if tokenizer and tokenizer.get("type") == "byte_level_bpe":
        vocabulary, merges = directory / tokenizer["vocabulary"], directory / tokenizer["merges"]
        for path in (vocabulary, merges):
            if not path.is_file():
                raise PresetError(f"{path}: tokenizer file named in config.json is missing.")
    return PresetContents(
        source=str(directory),
        config=config,
        read_weights=lambda: weights.read(directory / preset_format.WEIGHTS_FILE),
        vocabulary=vocabulary,
        merges=merges,
    )


def _from_huggingface_dir(directory, source):
    """A Hugging Face RobertaModel / RobertaForSequenceClassification directory, converted in memory."""
    try:
        hf_config = huggingface.read_config(directory)
        backbone = huggingface.backbone_arguments(hf_config)
    except ConversionError as error:
        raise PresetError(str(error)) from None
    try:
        state = huggingface.read_state(directory)
        layout.check_shapes(state, huggingface.expected_shapes(state, backbone), str(directory))
        arrays = huggingface.named_weights(state, backbone["num_layers"])
    except ConversionError as error:
        raise PresetError(f"{directory}: {error}") from None
    del state
    classifier = huggingface.head_arguments(hf_config, arrays) if "head.logits.kernel" in arrays else None
    if classifier is not None:
        classifier["activation"] = None
    vocabulary, merges, tokenizer = _huggingface_tokenizer(directory)
    config = preset_format.new_config(backbone, classifier, None, tokenizer)
    return PresetContents(source, config, lambda: arrays, vocabulary, merges)


def _huggingface_tokenizer(directory):
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        return directory / "vocab.json", directory / "merges.txt", {"type": "byte_level_bpe"}
    if (directory / "tokenizer.json").is_file():
        model = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8")).get("model", {})
        if model.get("type") == "BPE":
            return model["vocab"], model["merges"], {"type": "byte_level_bpe"}
    if (directory / "sentencepiece.bpe.model").is_file():
        return None, None, {"type": "sentencepiece", "model": "sentencepiece.bpe.model"}
    return None, None, None
