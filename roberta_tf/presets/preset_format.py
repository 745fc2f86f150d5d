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
