"""Resolves a preset reference to its contents and builds models from them.

A reference is a preset directory, a Hugging Face checkpoint directory (converted in memory
by `converters.huggingface.convert`, the same entry point as `roberta-tf convert hf`), an
`hf://owner/name[@revision]` handle, a named preset (`registry.PRESETS`), a
`ConvertedCheckpoint` (e.g. from `converters.fairseq.convert`) or a `PresetContents`.

A named preset's weights and config.json come from the hub; its tokenizer is the vocabulary
packaged with roberta_tf (`registry.packaged_vocabulary`), so `load_tokenizer` and
`load_preprocessor` of a named preset never download anything (`resolve(..., tokenizer_only=True)`).

The `load_*` functions take the class to build, as keras-hub's preset loaders do: a model's
`from_preset` calls down into this package with `cls`, so presets never import the model
classes. A task class names its parts `backbone_cls` and `preprocessor_cls`; a preprocessor
class names its `tokenizer_cls`.
"""

import dataclasses
import json
import os
import pathlib
from typing import Callable

from absl import logging

from roberta_tf.converters import huggingface
from roberta_tf.converters.converted import BYTE_LEVEL_BPE, SENTENCEPIECE, ConvertedCheckpoint
from roberta_tf.converters.layout import ConversionError
from roberta_tf.preprocessing import options
from roberta_tf.presets import hub, preset_format, registry, weights
from roberta_tf.presets.preset_format import PresetError
from roberta_tf.tokenizers import sentencepiece_vocabulary


@dataclasses.dataclass
class PresetContents:
    """A resolved preset.

    Attributes:
        source: where it came from (a path or a handle), for messages and provenance.
        config: the preset-format config (config.json's content).
        read_weights: returns `{name: array}`; the caller owns the dict and may consume it.
        read_layout: returns `{name: (shape, numpy dtype kind)}` without reading the weights
            (a safetensors header), to check them against the config before building a model.
        vocabulary, merges: the BPE tokenizer's files (paths) or in-memory values, or None.
        sentencepiece_model: a SentencePiece tokenizer's model (a path or the serialized
            ModelProto), or None.
        dict_pieces: with a SentencePiece model, fairseq's `dict.txt` pieces in order when
            they are not XLM-R's layout (SentencePiece's order), else None.
        metadata: the preset's metadata.json, or `{"source": provenance}` for a converted
            checkpoint ({} when there is none).
    """

    source: str
    config: dict
    read_weights: Callable[[], dict]
    read_layout: Callable[[], dict]
    vocabulary: object = None
    merges: object = None
    metadata: dict = dataclasses.field(default_factory=dict)
    sentencepiece_model: object = None
    dict_pieces: object = None

    def tokenizer_files(self):
        """The tokenizer's files on disk (their hashes go into export metadata)."""
        candidates = (self.vocabulary, self.merges, self.sentencepiece_model)
        return [p for p in candidates if isinstance(p, pathlib.Path)]

    @property
    def tokenizer_type(self):
        """"byte_level_bpe", "sentencepiece" or None (no tokenizer)."""
        return (self.config.get("tokenizer") or {}).get("type")


def resolve(preset, tokenizer_only=False):
    """Any accepted preset reference -> PresetContents.

    `tokenizer_only`: the caller builds a tokenizer or a preprocessor, nothing with weights. A
    named preset is then answered from the registry and its packaged vocabulary without any
    download (its `read_weights` refuses); every other reference resolves as usual.
    """
    if isinstance(preset, PresetContents):
        return preset
    if isinstance(preset, ConvertedCheckpoint):
        return _from_converted(preset, preset.source.get("path", "converted checkpoint"))
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
        return _from_registry(text) if tokenizer_only else _from_hub_preset(text)
    raise PresetError(
        f"Unknown preset {text!r}: not a directory, not an hf://owner/name handle and not a named preset "
        f"({', '.join(sorted(registry.PRESETS))})."
    )


def load_backbone(backbone_cls, preset, load_weights=True, **kwargs):
    """`backbone_cls(**config["backbone"], **kwargs)` with the preset's weights."""
    contents = resolve(preset)
    arguments = {**preset_format.backbone_arguments(contents.config["backbone"]), **kwargs}
    if load_weights:
        _check_layout(contents, arguments)
    backbone = backbone_cls(**arguments)
    if load_weights:
        _assign(backbone.named_weights(), contents)
    return backbone


def load_task(task_cls, preset, load_weights=True, num_classes=None, preprocessor="auto", **kwargs):
    """A `task_cls` (e.g. `RobertaTextClassifier`) over the preset's backbone.

    `num_classes` different from the preset's head (or a preset without a head) gives a new,
    randomly initialized head; `preprocessor="auto"` loads the preset's tokenizer; other
    keyword arguments go to the constructor (keras-hub routes `dtype` to the backbone)."""
    if preprocessor == "auto" and _named_preset(preset) is not None:
        # A named preset's tokenizer type is known without a download: one roberta_tf cannot
        # build (XLM-RoBERTa's) fails here, before gigabytes of weights are fetched.
        _check_named_preset_tokenizer(preset, task_cls.preprocessor_cls.tokenizer_cls)
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
    backbone_kwargs = {"dtype": kwargs.pop("dtype")} if "dtype" in kwargs else {}
    head_arguments = {}
    if keep_head:
        head_arguments = {k: head[k] for k in ("activation", "hidden_dim", "dropout", "label_names")}
    task_arguments = {**head_arguments, **kwargs}
    if load_weights:  # before anything is built: a large config cannot allocate a model first
        kept = {"num_classes": num_classes, "hidden_dim": task_arguments.get("hidden_dim")} if keep_head else None
        _check_layout(contents, contents.config["backbone"], kept)
    backbone = load_backbone(task_cls.backbone_cls, contents, load_weights=False, **backbone_kwargs)
    if preprocessor == "auto":
        preprocessor = load_preprocessor(task_cls.preprocessor_cls, contents)
    task = task_cls(backbone, num_classes, preprocessor=preprocessor, **task_arguments)
    if load_weights:
        _assign(task.named_weights() if keep_head else backbone.named_weights(), contents)
    return task


def load_preprocessor(preprocessor_cls, preset, sequence_length=None, **kwargs):
    """A `preprocessor_cls` with the preset's tokenizer and packing configuration."""
    _check_named_preset_tokenizer(preset, preprocessor_cls.tokenizer_cls)
    contents = resolve(preset, tokenizer_only=True)
    config = contents.config.get("preprocessor") or {}
    maximum = contents.config["backbone"]["max_sequence_length"]
    arguments = {
        "sequence_length": sequence_length or config.get("sequence_length") or maximum,
        "truncate": config.get("truncate", "round_robin"),
        "padding": config.get("padding", "max_length"),
        **kwargs,
    }
    try:  # the backbone takes no more; a larger length would only cost memory in `predict`
        options.check_sequence_length(arguments["sequence_length"], maximum)
    except ValueError as error:
        raise PresetError(f"{contents.source}: {error}") from None
    return preprocessor_cls(load_tokenizer(preprocessor_cls.tokenizer_cls, contents), **arguments)


def load_tokenizer(tokenizer_cls, preset):
    """A `tokenizer_cls` from the preset's tokenizer files."""
    _check_named_preset_tokenizer(preset, tokenizer_cls)
    contents = resolve(preset, tokenizer_only=True)
    config = _tokenizer_config(contents, tokenizer_cls)
    if config["type"] == SENTENCEPIECE:
        return tokenizer_cls(proto=_as_argument(contents.sentencepiece_model), dict_pieces=contents.dict_pieces)
    return tokenizer_cls(
        vocabulary=_as_argument(contents.vocabulary),
        merges=_as_argument(contents.merges),
        match_special_tokens=config.get("match_special_tokens", False),
    )


# The classes to use for each tokenizer type (named in errors; presets never import models).
_CLASSES_FOR_TOKENIZER = {
    BYTE_LEVEL_BPE: "RobertaTokenizer / RobertaTextClassifierPreprocessor / RobertaTextClassifier",
    SENTENCEPIECE: "XLMRobertaTokenizer / XLMRobertaTextClassifierPreprocessor / XLMRobertaTextClassifier",
}


def _tokenizer_config(contents, tokenizer_cls):
    """The preset's tokenizer config, or a PresetError unless `tokenizer_cls` reads its type."""
    config = contents.config.get("tokenizer")
    if config is None:
        raise PresetError(f"{contents.source} has no tokenizer files: pass preprocessor=None and feed token ids.")
    _check_tokenizer_type(config["type"], contents.source, tokenizer_cls)
    return config


def _check_named_preset_tokenizer(preset, tokenizer_cls):
    """A named preset's tokenizer type is known without a download: a class that cannot read
    it fails before anything (XLM-R's SentencePiece model, gigabytes of weights) is fetched."""
    name = _named_preset(preset)
    if name is not None:
        _check_tokenizer_type(registry.PRESETS[name]["tokenizer"], name, tokenizer_cls)


def _check_tokenizer_type(tokenizer_type, source, tokenizer_cls):
    if tokenizer_type not in _CLASSES_FOR_TOKENIZER:
        raise PresetError(f"{source} uses a {tokenizer_type!r} tokenizer, which roberta_tf does not know.")
    if tokenizer_type != tokenizer_cls.tokenizer_type:
        raise PresetError(
            f"{source} has a {tokenizer_type} tokenizer, which {tokenizer_cls.__name__} does not read; "
            f"load it with {_CLASSES_FOR_TOKENIZER[tokenizer_type]}."
        )


def _check_layout(contents, backbone_config, head_config=None):
    expected = preset_format.expected_weight_shapes(backbone_config, head_config)
    weights.check_layout(expected, contents.read_layout(), contents.source, allow_unused=("head.",))


def _assign(variables, contents):
    # The arrays are this call's own (a fresh read, or a converted checkpoint's arrays handed
    # over once), so each is freed as soon as its variable holds it.
    weights.assign(variables, contents.read_weights(), contents.source, allow_unused=("head.",), consume=True)


def _as_argument(value):
    return str(value) if isinstance(value, pathlib.Path) else value


def _from_preset_dir(directory):
    config = preset_format.read_config(directory)
    tokenizer = config.get("tokenizer")
    vocabulary = merges = None
    if tokenizer and tokenizer.get("type") == BYTE_LEVEL_BPE:
        vocabulary = preset_format.file_in(directory, tokenizer.get("vocabulary"), "tokenizer vocabulary")
        merges = preset_format.file_in(directory, tokenizer.get("merges"), "tokenizer merges")
    sentencepiece_model = dict_pieces = None
    if tokenizer and tokenizer.get("type") == SENTENCEPIECE:
        sentencepiece_model = preset_format.file_in(directory, tokenizer.get("model"), "SentencePiece model")
        if tokenizer.get("dictionary") is not None:
            dictionary = preset_format.file_in(directory, tokenizer["dictionary"], "fairseq dictionary")
            try:
                dict_pieces = sentencepiece_vocabulary.read_dict_pieces(dictionary)
            except ValueError as error:
                raise PresetError(str(error)) from None
    for path in (vocabulary, merges, sentencepiece_model):
        if path is not None and not path.is_file():
            raise PresetError(f"{path}: tokenizer file named in config.json is missing.")
    return PresetContents(
        source=str(directory),
        config=config,
        read_weights=lambda: weights.read(directory / preset_format.WEIGHTS_FILE),
        read_layout=lambda: weights.read_layout(directory / preset_format.WEIGHTS_FILE),
        vocabulary=vocabulary,
        merges=merges,
        metadata=_read_metadata(directory),
        sentencepiece_model=sentencepiece_model,
        dict_pieces=dict_pieces,
    )


def _named_preset(preset):
    """The registry name `preset` refers to, or None: exactly when `resolve` would take it as a
    named preset (a directory of the same name wins)."""
    if not isinstance(preset, (str, os.PathLike)):
        return None
    text = os.fspath(preset)
    if text in registry.PRESETS and not os.path.isdir(text):
        return text
    return None


def _from_hub_preset(name):
    """A named preset for a model: config.json and weights downloaded, the tokenizer packaged."""
    entry = registry.PRESETS[name]
    directory = hub.download(entry["hf_repo"], entry["files"])
    contents = _from_huggingface_dir(directory, source=f"{name} (hf://{entry['hf_repo']})")
    if "vocabulary" not in entry:  # XLM-RoBERTa: whatever tokenizer the checkpoint has
        return contents
    expected, found = entry["backbone"]["vocabulary_size"], contents.config["backbone"]["vocabulary_size"]
    if found != expected:
        raise PresetError(
            f"{contents.source}: the downloaded config.json has vocab_size {found}, but {name}'s packaged "
            f"vocabulary has {expected} ids; the repository no longer holds {name}'s checkpoint."
        )
    vocabulary, merges = registry.packaged_vocabulary(name)
    config = {**contents.config, "tokenizer": {"type": BYTE_LEVEL_BPE}}
    return dataclasses.replace(contents, config=config, vocabulary=vocabulary, merges=merges)


def _from_registry(name):
    """A named preset for a tokenizer or preprocessor: the registry's architecture (sequence
    length bounds) and the packaged vocabulary; no weights and no download."""
    entry = registry.PRESETS[name]
    vocabulary = merges = sentencepiece_model = None
    if "vocabulary" in entry:
        vocabulary, merges = registry.packaged_vocabulary(name)
        tokenizer = {"type": BYTE_LEVEL_BPE}
    else:  # XLM-RoBERTa: its SentencePiece model (about 5 MB) is not shipped; only it is fetched
        tokenizer = {"type": entry["tokenizer"], "model": preset_format.SENTENCEPIECE_MODEL_FILE}
        directory = hub.download(entry["hf_repo"], [preset_format.SENTENCEPIECE_MODEL_FILE])
        sentencepiece_model = directory / preset_format.SENTENCEPIECE_MODEL_FILE

    def no_weights():
        raise PresetError(f"{name} was resolved for its tokenizer only (no weights downloaded); resolve it again "
                          "without tokenizer_only to load a model.")

    return PresetContents(
        source=name,
        config=preset_format.new_config(dict(entry["backbone"]), None, None, tokenizer),
        read_weights=no_weights,
        read_layout=no_weights,
        vocabulary=vocabulary,
        merges=merges,
        sentencepiece_model=sentencepiece_model,
    )


def _read_metadata(directory):
    """metadata.json (provenance, file hashes), or {} where it is missing or unreadable."""
    try:
        metadata = json.loads((directory / preset_format.METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def _from_huggingface_dir(directory, source):
    try:
        converted = huggingface.convert(directory)
    except ConversionError as error:
        raise PresetError(str(error)) from None
    return _from_converted(converted, source)


def _from_converted(converted, source):
    tokenizer = None
    if converted.tokenizer_type == BYTE_LEVEL_BPE:
        tokenizer = {"type": BYTE_LEVEL_BPE}
    elif converted.tokenizer_type == SENTENCEPIECE:
        tokenizer = {"type": SENTENCEPIECE, "model": preset_format.SENTENCEPIECE_MODEL_FILE}
    head = None if converted.head is None else {"activation": None, **converted.head}
    config = preset_format.new_config(converted.backbone, head, None, tokenizer)
    vocabulary = merges = sentencepiece_model = None
    if converted.tokenizer_type == SENTENCEPIECE:  # a path, or bytes built in memory (HF tokenizer.json)
        sentencepiece_model = converted.tokenizer_files[0]
        if not isinstance(sentencepiece_model, bytes):
            sentencepiece_model = pathlib.Path(sentencepiece_model)
    elif converted.tokenizer_files:
        vocabulary, merges = (pathlib.Path(p) for p in converted.tokenizer_files)
    elif converted.bpe_vocabulary is not None:
        vocabulary, merges = converted.bpe_vocabulary.vocabulary, list(converted.bpe_vocabulary.merges)
    return PresetContents(
        source=str(source),
        config=config,
        read_weights=converted.take_arrays,
        read_layout=converted.layout,
        vocabulary=vocabulary,
        merges=merges,
        metadata={"source": converted.source},
        sentencepiece_model=sentencepiece_model,
        dict_pieces=converted.dict_pieces,
    )
