"""The preset directory's file names and config.json schema (one place for both)."""

import json
import pathlib

FORMAT_NAME = "roberta_tf.preset"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
VOCABULARY_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
SENTENCEPIECE_MODEL_FILE = "sentencepiece.bpe.model"  # XLM-R's name for it
DICTIONARY_FILE = "dict.txt"  # fairseq's pieces, only where they are not in SentencePiece's order

TASK_BACKBONE = "RobertaBackbone"
TASK_CLASSIFIER = "RobertaTextClassifier"


class PresetError(ValueError):
    """A preset that cannot be read or resolved; the message names the file or handle."""


def is_preset_dir(path):
    config = pathlib.Path(path) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT_NAME
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def read_config(preset_dir):
    """config.json of a preset directory, validated."""
    path = pathlib.Path(preset_dir) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"{path}: not found; is {preset_dir} a preset directory?") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(f"{path}: not valid JSON ({error}).") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise PresetError(f"{path}: not a roberta_tf preset (no \"format\": \"{FORMAT_NAME}\").")
    if config.get("format_version") != FORMAT_VERSION:
        raise PresetError(
            f"{path}: format_version {config.get('format_version')!r}; this roberta_tf reads version {FORMAT_VERSION}."
        )
    if config.get("task") not in (TASK_BACKBONE, TASK_CLASSIFIER):
        raise PresetError(f"{path}: unknown task {config.get('task')!r}.")
    if not isinstance(config.get("backbone"), dict):
        raise PresetError(f"{path}: missing the \"backbone\" section.")
    return config


def file_in(directory, name, what):
    """`directory / name` for a file name that config.json gives: a plain name inside the preset
    directory (no path separator, no "." or ".."), so a config cannot make a loader read files
    outside it. A symbolic link placed in the directory by its owner is followed."""
    if (not isinstance(name, str) or not name or name in (".", "..") or len(name) > 255
            or any(c in name for c in "/\\\0") or not name.isprintable()):
        raise PresetError(
            f"{pathlib.Path(directory) / CONFIG_FILE}: the {what} must be a file name inside the preset directory "
            f"(no path); config.json gives {str(name)[:80]!r}."
        )
    return pathlib.Path(directory) / name


def expected_weight_shapes(backbone, classifier=None):
    """{weight name: shape} that `RobertaBackbone(**backbone)` (and a `RobertaTextClassifier`
    head of `classifier`'s config) will hold: the names of `named_weights()`, known before any
    model is built, so a weights file can be checked against its config without allocating
    the model (`tests/presets` holds it equal to the built models' `named_weights()`)."""
    d, f = backbone["hidden_dim"], backbone["intermediate_dim"]
    shapes = {
        "embeddings.token_embedding": (backbone["vocabulary_size"], d),
        "embeddings.position_embedding": (backbone["max_sequence_length"] + 2, d),
    }
    norms = ["embeddings.layer_norm"] if backbone.get("embedding_layer_norm", True) else []
    for i in range(backbone["num_layers"]):
        for name, (fan_in, fan_out) in {"attention.qkv": (d, 3 * d), "attention.output": (d, d),
                                        "feedforward.intermediate": (d, f), "feedforward.output": (f, d)}.items():
            shapes.update({f"layers.{i}.{name}.kernel": (fan_in, fan_out), f"layers.{i}.{name}.bias": (fan_out,)})
        norms += [f"layers.{i}.attention_layer_norm", f"layers.{i}.feedforward_layer_norm"]
    if backbone.get("normalize_before", False):
        norms.append("final_layer_norm")
    shapes.update({f"{norm}.{part}": (d,) for norm in norms for part in ("gamma", "beta")})
    if classifier is not None:
        hidden = classifier.get("hidden_dim") or d
        for name, (fan_in, fan_out) in {"head.pooled_dense": (d, hidden),
                                        "head.logits": (hidden, classifier["num_classes"])}.items():
            shapes.update({f"{name}.kernel": (fan_in, fan_out), f"{name}.bias": (fan_out,)})
    return shapes


def new_config(backbone_config, classifier_config=None, preprocessor_config=None, tokenizer_config=None):
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "task": TASK_CLASSIFIER if classifier_config is not None else TASK_BACKBONE,
        "backbone": backbone_config,
        "classifier": classifier_config,
        "preprocessor": preprocessor_config,
        "tokenizer": tokenizer_config,
    }


def backbone_arguments(backbone_config):
    """A RobertaBackbone config without the Keras-only keys (name, trainable)."""
    return {k: v for k, v in backbone_config.items() if k not in ("name", "trainable")}
