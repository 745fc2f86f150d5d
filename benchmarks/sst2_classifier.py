"""A small SST-2 sentiment classifier trained from scratch with roberta_tf's own `fit`,
cached as a preset outside the repository, for benchmarks that compare numerics (bfloat16 vs
float32 label agreement, TFLite quantization accuracy).

    from benchmarks.sst2_classifier import trained_preset
    path = trained_preset()                             # trains once (~5-6 min on 2 quiet cores), then cached
    classifier = RobertaTextClassifier.from_preset(path)

The recipe (`RECIPE`, version `RECIPE_VERSION`):
  * data: SST-2 `train.tsv` (67,349 labelled phrases and sentences) and `dev.tsv` (872
    sentences) from ../shared/data/sst2, read by path, never copied;
  * tokenizer: the real roberta-base vocabulary (../shared/data/roberta-base vocab.json +
    merges.txt) in a `RobertaTextClassifierPreprocessor` (sequence_length 64, padding to the
    longest text of each batch); label_names ["negative", "positive"];
  * model: a small `RobertaBackbone` with random initial weights (`RECIPE["backbone"]`),
    fairseq's classification head, dropout 0.1;
  * training: `RobertaTextClassifier.fit` on raw strings, batched by length (a `tf.data`
    `bucket_by_sequence_length` on word counts, about `tokens_per_batch` tokens per batch, so
    little compute goes to padding), AdamW with linear warm-up and cosine decay, seeded with
    `tf.keras.utils.set_random_seed` (reruns are comparable, not bit-identical: TF's CPU
    kernels reduce in parallel).

The recipe machinery (bucketed batches, the optimizer schedule, `fit` with a progress bar, the
checked atomic save) is `roberta_tf.demo.training`, shared with `roberta-tf demo`; this module
holds the recipe, the cache and the record. The preset is written with `save_to_preset` into
the staging directory of `roberta_tf.utils.files.atomic_directory` (a hidden sibling of the
target), `training.json`
(recipe, seconds, train size, SST-2 dev accuracy and loss, machine, git commit, date) is added
there, the preset is reloaded from that directory and checked (`from_preset` + `predict`
must give the recorded dev accuracy), and only then is the directory renamed into place
(replacing an older one whole): a reader sees a complete, checked preset or none.

Cache: `--cache_dir` / `cache_dir` is the preset directory itself; default
`$ROBERTA_TF_CACHE/benchmarks/sst2-small-v1` (`ROBERTA_TF_CACHE` defaults to
~/.cache/roberta_tf, as for hub downloads: `roberta_tf.presets.hub.cache_root`). A cached
preset is used when its training.json records the same `RECIPE_VERSION` and `RECIPE`;
otherwise it is retrained. Change the recipe -> bump RECIPE_VERSION and the directory name.

Run from the repository root:
    python -m benchmarks.sst2_classifier                 # trains if not cached; prints path + accuracy
    python -m benchmarks.sst2_classifier --retrain
    python -m benchmarks.sst2_classifier --cache_dir /tmp/sst2-preset
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import datetime  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks import DATA_DIR, report  # noqa: E402
from benchmarks.data import load_sst2  # noqa: E402
from roberta_tf.demo import training_record  # noqa: E402  (TF-free: the cache check loads no TensorFlow)

NAME = "sst2-small-v1"
RECIPE_VERSION = 1
TRAINING_FILE = training_record.TRAINING_FILE
LABEL_NAMES = ["negative", "positive"]
PACKAGES = ["tensorflow", "tf-keras", "numpy", "absl-py"]

RECIPE = {
    "backbone": {
        "vocabulary_size": 50265,
        "num_layers": 4,
        "num_heads": 4,
        "hidden_dim": 256,
        "intermediate_dim": 1024,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    "head_dropout": 0.1,
    "preprocessor": {"sequence_length": 64, "padding": "longest"},
    "label_names": LABEL_NAMES,
    "training": {
        "seed": 0,
        "epochs": 1,
        # Length-bucketed batches: word-count bucket boundaries; each bucket's batch size is
        # tokens_per_batch / (its longest text in BPE tokens, estimated), within [min, max].
        "bucket_boundaries": [3, 5, 7, 9, 11, 13, 16, 19, 23, 28, 34, 42],
        "tokens_per_batch": 1024,
        "min_batch_size": 16,
        "max_batch_size": 128,
        "optimizer": "AdamW",
        "peak_learning_rate": 5e-4,
        "warmup_fraction": 0.1,
        "final_learning_rate_fraction": 0.0,
        "weight_decay": 0.01,
        "beta_2": 0.98,
        "epsilon": 1e-6,
        "global_clipnorm": 1.0,
    },
}


def default_cache_dir():
    """`$ROBERTA_TF_CACHE/benchmarks/sst2-small-v1` (cache root as for hub downloads)."""
    from roberta_tf.presets import hub

    return hub.cache_root() / "benchmarks" / NAME


def read_training_record(preset_dir):
    """The preset's training.json as a dict, or None when it is missing or unreadable."""
    return training_record.read_training_record(preset_dir)


def is_current(preset_dir):
    """Whether `preset_dir` holds this preset trained with the current recipe."""
    return training_record.record_matches(preset_dir, recipe_version=RECIPE_VERSION, recipe=RECIPE)


def trained_preset(cache_dir=None, retrain=False, data_dir=None):
    """The path (a `pathlib.Path`) of a preset directory holding the SST-2 classifier.

    Args:
        cache_dir: the preset directory (default: `default_cache_dir()`). An existing
            directory is only replaced when it is empty or holds an earlier version of
            this preset (a training.json), never some other folder.
        retrain: train and replace the cached preset even when it is current.
        data_dir: the shared data folder (default ../shared/data beside the repository).

    A cached preset recording the same recipe is returned without loading TensorFlow.
    """
    path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    if not retrain and is_current(path):
        return path
    if path.exists() and any(path.iterdir()) and read_training_record(path) is None:
        raise ValueError(f"{path} exists and does not hold an {NAME} preset (no {TRAINING_FILE}); "
                         "not replacing it. Pick another --cache_dir or remove it.")
    if not retrain:
        logging.info("%s: no current preset (recipe version %d); training.", path, RECIPE_VERSION)
    train(path, data_dir=data_dir)
    return path


def build_classifier(data_dir=None):
    """The untrained classifier of the recipe (seeds set first)."""
    from roberta_tf.demo import training

    vocabulary_dir = Path(data_dir or DATA_DIR) / "roberta-base"
    return training.build_classifier(RECIPE, vocabulary_dir / "vocab.json", vocabulary_dir / "merges.txt")


def train(preset_dir, data_dir=None):
    """Trains the recipe and writes the checked preset (with training.json) to `preset_dir`."""
    import tensorflow as tf

    from roberta_tf.demo import training
    from roberta_tf.utils import files

    started = time.perf_counter()
    info = report.machine_info(PACKAGES)
    train_x, train_y = load_sst2("train", data_dir)
    dev_x, dev_y = load_sst2("dev", data_dir)

    result = training.train(RECIPE, build_classifier(data_dir), train_x, train_y, validation_data=(dev_x, dev_y),
                            description=f"Training {NAME}")
    classifier = result.classifier
    dev_loss, dev_accuracy = classifier.evaluate(dev_x, dev_y, verbose=0)

    data = Path(data_dir or DATA_DIR) / "sst2"
    record = {
        "name": NAME,
        "recipe_version": RECIPE_VERSION,
        "recipe": RECIPE,
        "geometry": RECIPE["backbone"],
        "epochs": RECIPE["training"]["epochs"],
        "steps_per_epoch_estimate": result.steps_per_epoch,
        "batch_sizes_per_bucket": result.batch_sizes,
        "train_size": len(train_x),
        "train_seconds": result.seconds,
        # CPU time of this process in fit (all TF threads): with other jobs on the machine
        # the wall time grows, this hardly does (a quiet 2-core run: about half of it).
        "train_cpu_seconds": result.cpu_seconds,
        "total_seconds": time.perf_counter() - started,
        "history": result.history,
        "dev": {
            "size": len(dev_x),
            "accuracy": float(dev_accuracy),
            "loss": float(dev_loss),
            "majority_class_accuracy": float(max(np.mean(dev_y), 1 - np.mean(dev_y))),
        },
        "data": {split: {"path": str(data / f"{split}.tsv"), "sha256": files.file_sha256(data / f"{split}.tsv")}
                 for split in ("train", "dev")},
        "git_commit": report.git_commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": report.finish(info),
        "tf_version": tf.__version__,
    }
    return save_checked_preset(classifier, preset_dir, record, dev_x, dev_y)


def save_checked_preset(classifier, preset_dir, record, dev_x, dev_y):
    """`roberta_tf.demo.training.save_checked_preset` with this preset's provenance: written
    atomically, reloaded and checked (the recorded dev accuracy), then renamed into place."""
    from roberta_tf.demo import training

    return training.save_checked_preset(
        classifier, preset_dir, record, dev_x, dev_y,
        source={"type": "benchmarks/sst2_classifier.py", "name": NAME, "recipe_version": record["recipe_version"]},
    )


def main(argv):
    del argv
    from absl import flags

    path = trained_preset(cache_dir=flags.FLAGS.cache_dir, retrain=flags.FLAGS.retrain,
                          data_dir=flags.FLAGS.data_dir)
    record = read_training_record(path)
    print(f"preset: {path}")
    print(f"SST-2 dev accuracy: {record['dev']['accuracy']:.4f} (loss {record['dev']['loss']:.4f}, "
          f"{record['dev']['size']} sentences); trained {record['train_seconds']:.0f} s on "
          f"{record['date']} at commit {record['git_commit']}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_bool("retrain", False, "Train and replace the cached preset even when it is current.")
    flags.DEFINE_string("cache_dir", None, f"The preset directory (default $ROBERTA_TF_CACHE/benchmarks/{NAME}, "
                                           "ROBERTA_TF_CACHE defaulting to ~/.cache/roberta_tf).")
    flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
    app.run(main)
