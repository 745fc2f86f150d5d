"""`roberta-tf demo` end to end: train (or reuse) a small SST-2 classifier, export it in every
form, score every artifact on SST-2 dev.

    result = run_demo("roberta-tf-demo", data_dir="../shared/data/sst2", quick=False)
    print(report.render(result))

Output directory (built in a hidden staging directory beside it and renamed into place when
everything is written and scored, so it is never half-written; a previous demo output,
recognized by its demo.json, is replaced whole):

    DIR/preset/                                   the trained preset (a copy of the cached one)
    DIR/models/roberta_classifier/1/              the TF Serving version (serving/models.config
                                                  serves model "roberta_classifier", so
                                                  ROBERTA_TF_MODELS_DIR=DIR/models works as is)
    DIR/tflite/sst2_{float32,float16,dynamic,int8}.tflite (+ .tflite.json)
    DIR/demo.json                                 everything printed, as JSON

The trained preset is cached under `$ROBERTA_TF_CACHE/demo/<recipe>-v<version>` and reused
while its training.json records the same recipe and the same SST-2 train file.
"""

import contextlib
import dataclasses
import datetime
import pathlib
import shutil
import time

import numpy as np
import tensorflow as tf
from absl import logging

import roberta_tf
from roberta_tf.demo import data, recipes, report, scoring, training
from roberta_tf.demo.output import DEMO_FILE, FORMAT, DemoError, check_inputs
from roberta_tf.demo.training_record import read_training_record, record_matches
from roberta_tf.export import saved_model, tflite
from roberta_tf.presets import hub, packaged_vocabulary
from roberta_tf.utils import files

# (form name, `export_tflite` quantize argument)
TFLITE_FORMS = (("float32", "none"), ("float16", "float16"), ("dynamic", "dynamic"), ("int8", "int8"))
TFLITE_NAMES = {"float32": "TFLite float32", "float16": "TFLite float16", "dynamic": "TFLite dynamic-range",
                "int8": "TFLite int8"}
EXAMPLE_TEXTS = (
    "A warm, funny and beautifully acted film.",
    "Dull, predictable and far too long.",
    "Not bad at all.",
    "I expected more from this director.",
)


@dataclasses.dataclass
class DemoResult:
    output: pathlib.Path
    recipe: recipes.DemoRecipe
    preset_cache: pathlib.Path
    used_cache: bool
    training_record: dict
    dev_size: int
    scores: list  # scoring.ArtifactScore, the in-process model first
    example_texts: tuple
    seconds: dict  # step -> wall seconds ("total" included)
    cpu_seconds: dict  # step -> CPU seconds of this process (all threads): what contention does not inflate
    summary: dict  # demo.json's content


def run_demo(output, data_dir, quick=False, retrain=False):
    """Runs the demo into `output`; returns a `DemoResult`.

    Raises:
        DemoError: `output` is not usable, or `data_dir` lacks SST-2.
    """
    output = pathlib.Path(output).expanduser().absolute()
    check_inputs(output, data_dir)
    recipe = recipes.get(quick)
    train, dev = data.read_split(data_dir, "train"), data.read_split(data_dir, "dev")
    clock = StepClock()

    with clock.step("training"):
        preset, used_cache = trained_preset(recipe, train, dev, retrain)
    if used_cache:
        clock.rename("training", "cached model")
    with files.atomic_directory(output, kind="demo", overwrite=True) as staging:
        with clock.step("exports"):
            paths = export_all(preset, staging, recipe, train)
        with clock.step("scoring"):
            scores = score_all(paths, dev, recipe)
        clock.finish()
        result = DemoResult(
            output=output, recipe=recipe, preset_cache=preset, used_cache=used_cache,
            training_record=read_training_record(preset), dev_size=len(dev.texts), scores=scores,
            example_texts=EXAMPLE_TEXTS, seconds=clock.seconds, cpu_seconds=clock.cpu_seconds, summary={},
        )
        result.summary = summary(result, staging, data_dir)
        files.write_json(staging / DEMO_FILE, result.summary)
    for score in scores:  # the paths the user sees: in DIR, no longer in the staging directory
        score.path = output / score.path.relative_to(staging)
    return result


class StepClock:
    """Wall and CPU seconds per named step, and in total since it was made."""

    def __init__(self):
        self.seconds, self.cpu_seconds = {}, {}
        self._started = (time.perf_counter(), training.cpu_seconds())

    @contextlib.contextmanager
    def step(self, name):
        wall, cpu = time.perf_counter(), training.cpu_seconds()
        yield
        self.seconds[name] = time.perf_counter() - wall
        self.cpu_seconds[name] = training.cpu_seconds() - cpu

    def rename(self, old, new):
        self.seconds[new], self.cpu_seconds[new] = self.seconds.pop(old), self.cpu_seconds.pop(old)

    def finish(self):
        self.seconds["total"] = time.perf_counter() - self._started[0]
        self.cpu_seconds["total"] = training.cpu_seconds() - self._started[1]


# === Training (or the cache) ===


def cache_dir(recipe):
    """`$ROBERTA_TF_CACHE/demo/<recipe name>-v<version>`."""
    return hub.cache_root() / "demo" / recipe.cache_name


def trained_preset(recipe, train, dev, retrain=False):
    """(preset directory, whether it came from the cache): the cached preset when its record
    matches the recipe and the training file, else a freshly trained one (cached)."""
    path = cache_dir(recipe)
    expected = {"recipe_version": recipe.version, "recipe": recipe.recipe, "train_sha256": train.sha256}
    if not retrain and record_matches(path, **expected):
        logging.info("Using the cached model %s (trained %s; --retrain trains again).", path,
                     read_training_record(path).get("date"))
        return path, True
    if path.exists() and any(path.iterdir()) and read_training_record(path) is None:
        raise DemoError(f"{path} exists and does not hold a demo preset (no training.json); remove it")
    train_and_save(recipe, train, dev, path, expected)
    return path, False


def train_and_save(recipe, train, dev, path, expected):
    """Trains `recipe` on `train`, evaluates on `dev` and saves the checked preset to `path`."""
    vocabulary, merges = packaged_vocabulary("roberta_base_en")  # roberta-base's, shipped with roberta_tf
    texts, labels = data.sample(train, recipe.recipe["training"]["train_examples"], recipe.recipe["training"]["seed"])
    logging.info("Training %s (%s) from scratch on %d SST-2 train examples.", recipe.cache_name, recipe.describe(),
                 len(texts))
    classifier = training.build_classifier(recipe.recipe, vocabulary, merges)
    result = training.train(recipe.recipe, classifier, texts, labels, description=f"Training {recipe.cache_name}")
    dev_accuracy, dev_loss = training.accuracy_and_loss(classifier, dev.texts, dev.labels)
    record = {
        **expected,
        "name": recipe.cache_name,
        "description": recipe.describe(),
        "parameters": recipes.parameter_count(recipe.recipe),
        "train_size": len(texts),
        "steps_per_epoch": result.steps_per_epoch,
        "batch_sizes_per_bucket": result.batch_sizes,
        "train_seconds": result.seconds,
        "train_cpu_seconds": result.cpu_seconds,
        "history": result.history,
        "dev": {"size": len(dev.texts), "accuracy": dev_accuracy, "loss": dev_loss,
                "majority_class_accuracy": float(max(np.mean(dev.labels), 1 - np.mean(dev.labels)))},
        "data": {"train": {"path": str(train.path), "sha256": train.sha256},
                 "dev": {"path": str(dev.path), "sha256": dev.sha256}},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "roberta_tf_version": roberta_tf.__version__,
        "tf_version": tf.__version__,
    }
    logging.info("Trained in %.0f s; SST-2 dev accuracy %.4f. Saving %s.", result.seconds, record["dev"]["accuracy"], path)
    training.save_checked_preset(classifier, path, record, dev.texts, dev.labels,
                                 source={"type": "roberta-tf demo", "name": recipe.cache_name,
                                         "recipe_version": recipe.version})


# === Exports and scoring ===


def export_all(preset, staging, recipe, train):
    """Copies the preset and writes the SavedModel version and every TFLite form under
    `staging`; returns [(name, form, path)], the in-process model (the preset) first."""
    preset_copy = staging / "preset"
    shutil.copytree(preset, preset_copy)
    logging.info("Exporting the TF Serving SavedModel.")
    version = saved_model.export_preset(str(preset), staging / "models" / report.MODEL_NAME, version=1).path
    paths = [("in-process model (preset)", "float32", preset_copy), ("SavedModel (TF Serving)", "float32", version)]
    # int8 is calibrated on SST-2 train sentences (never dev, which scores it).
    calibration = data.sample(train, recipe.int8_calibration_texts, seed=1)[0]
    logging.info("Exporting the TFLite models: %s.", ", ".join(TFLITE_NAMES[form] for form, _ in TFLITE_FORMS))
    outputs = {quantize: staging / "tflite" / f"sst2_{form}.tflite" for form, quantize in TFLITE_FORMS}
    tflite.export_preset_tflite_forms(str(preset), outputs, calibration_texts=calibration)  # one graph, four forms
    paths += [(TFLITE_NAMES[form], form, outputs[quantize]) for form, quantize in TFLITE_FORMS]
    return paths


def score_all(paths, dev, recipe):
    """Scores every artifact on SST-2 dev against the first (the in-process model)."""
    latency_texts = dev.texts[:recipe.latency_texts]
    scores = []
    for name, form, path in paths:
        scores.append(scoring.score_artifact(
            name, form, path, dev.texts, dev.labels, latency_texts=latency_texts, example_texts=EXAMPLE_TEXTS,
            reference_ids=scores[0].class_ids if scores else None,
        ))
    return scores


def summary(result, staging, data_dir):
    """demo.json: the recipe, the training record's essentials, every artifact's scores, the
    examples and the serving commands."""
    record = result.training_record
    return {
        "format": FORMAT,
        "recipe": {"name": result.recipe.cache_name, "mode": result.recipe.mode,
                   "description": result.recipe.describe(), **result.recipe.recipe},
        "model_statement": report.model_statement(result),
        "preset_cache": str(result.preset_cache),
        "used_cache": result.used_cache,
        "training": {key: record.get(key) for key in ("train_size", "train_seconds", "train_cpu_seconds", "dev", "date")},
        "data_dir": str(pathlib.Path(data_dir).absolute()),
        "dev_size": result.dev_size,
        "agreement_targets": scoring.AGREEMENT_TARGETS,
        "artifacts": [score.as_json(root=staging) for score in result.scores],
        "example_texts": list(result.example_texts),
        "commands": report.commands(result.output),
        "seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
    }
