"""`training.json`, the record a trained preset carries (recipe, data hashes, times, accuracy),
and the cache check on it. No TensorFlow: a cached preset is found without loading it."""

import json
import pathlib

TRAINING_FILE = "training.json"


def read_training_record(preset_dir):
    """The preset's training.json as a dict, or None when it is missing or unreadable."""
    try:
        with open(pathlib.Path(preset_dir) / TRAINING_FILE, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_matches(preset_dir, **expected):
    """Whether `preset_dir` holds a preset (config.json) whose training.json has every
    `expected` key with an equal value (e.g. recipe_version=1, recipe=RECIPE)."""
    record = read_training_record(preset_dir)
    return (
        record is not None
        and (pathlib.Path(preset_dir) / "config.json").is_file()
        and all(record.get(key) == value for key, value in expected.items())
    )
