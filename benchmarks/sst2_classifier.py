"""A small SST-2 sentiment classifier trained from scratch with roberta_tf's own `fit`,
cached as a preset outside the repository, for benchmarks that compare numerics (bfloat16 vs
float32 label agreement, TFLite quantization accuracy).

    from sst2_classifier import trained_preset          # from another script in benchmarks/
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

The preset is written with `save_to_preset` into a temporary sibling directory, `training.json`
(recipe, seconds, train size, SST-2 dev accuracy and loss, machine, git commit, date) is added
there, the preset is reloaded from that directory and checked (`from_preset` + `predict`
must give the recorded dev accuracy), and only then is the directory renamed into place: a
reader sees a complete, checked preset or none.

Cache: `--cache_dir` / `cache_dir` is the preset directory itself; default
`$ROBERTA_TF_CACHE/benchmarks/sst2-small-v1` (`ROBERTA_TF_CACHE` defaults to
~/.cache/roberta_tf, as for hub downloads: `roberta_tf.presets.hub.cache_root`). A cached
preset is used when its training.json records the same `RECIPE_VERSION` and `RECIPE`;
otherwise it is retrained. Change the recipe -> bump RECIPE_VERSION and the directory name.

Run from the repository root:
    python benchmarks/sst2_classifier.py                 # trains if not cached; prints path + accuracy
    python benchmarks/sst2_classifier.py --retrain
    python benchmarks/sst2_classifier.py --cache_dir /tmp/sst2-preset
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import datetime  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
for _path in (REPO_ROOT, BENCHMARKS_DIR):  # `import environment` also when imported from elsewhere
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import numpy as np  # noqa: E402
from absl import logging  # noqa: E402

import environment  # noqa: E402  (benchmarks/environment.py)

NAME = "sst2-small-v1"
RECIPE_VERSION = 1
TRAINING_FILE = "training.json"
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
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
    try:
        with open(Path(preset_dir) / TRAINING_FILE, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_current(preset_dir):
    record = read_training_record(preset_dir)
    return (
        record is not None
        and (Path(preset_dir) / "config.json").is_file()
        and record.get("recipe_version") == RECIPE_VERSION
        and record.get("recipe") == RECIPE
    )


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
    if not retrain and _is_current(path):
        return path
    if path.exists() and any(path.iterdir()) and read_training_record(path) is None:
        raise ValueError(f"{path} exists and does not hold an {NAME} preset (no {TRAINING_FILE}); "
                         "not replacing it. Pick another --cache_dir or remove it.")
    if not retrain:
        logging.info("%s: no current preset (recipe version %d); training.", path, RECIPE_VERSION)
    train(path, data_dir=data_dir)
    return path


def load_sst2(split, data_dir=None):
    """`(texts, labels)` of `split` ("train", "dev") of ../shared/data/sst2."""
    path = Path(data_dir or DATA_DIR) / "sst2" / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"SST-2 {split} split not found: {path} (the shared data folder).")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if lines[0].split("\t") != ["sentence", "label"]:
        raise ValueError(f"{path}: unexpected header {lines[0]!r}.")
    rows = [line.split("\t") for line in lines[1:] if line]
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows], "int32")


def _batch_sizes(training):
    """Per bucket (len(boundaries) + 1 of them) the batch size for ~tokens_per_batch tokens.
    BPE tokens of an SST-2 word: ~1.15 (lower-case, pre-tokenized text), plus <s> and </s>."""
    uppers = training["bucket_boundaries"] + [64]
    sizes = [int(training["tokens_per_batch"] / (1.15 * u + 2)) for u in uppers]
    return [min(training["max_batch_size"], max(training["min_batch_size"], s)) for s in sizes]


def _train_dataset(texts, labels, training):
    """Batched `(texts, labels)`: shuffled every epoch, grouped by word count."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts), labels))
    dataset = dataset.shuffle(len(texts), seed=training["seed"], reshuffle_each_iteration=True)
    return dataset.bucket_by_sequence_length(
        lambda text, label: tf.size(tf.strings.split(text)),
        bucket_boundaries=training["bucket_boundaries"],
        bucket_batch_sizes=_batch_sizes(training),
    )


def build_classifier(data_dir=None):
    """The untrained classifier of the recipe (seeds set first)."""
    import tf_keras as keras

    from roberta_tf.models import (
        RobertaBackbone,
        RobertaTextClassifier,
        RobertaTextClassifierPreprocessor,
        RobertaTokenizer,
    )

    vocabulary_dir = Path(data_dir or DATA_DIR) / "roberta-base"
    keras.utils.set_random_seed(RECIPE["training"]["seed"])
    tokenizer = RobertaTokenizer(vocabulary=str(vocabulary_dir / "vocab.json"),
                                 merges=str(vocabulary_dir / "merges.txt"))
    preprocessor = RobertaTextClassifierPreprocessor(tokenizer, **RECIPE["preprocessor"])
    backbone = RobertaBackbone(**RECIPE["backbone"])
    return RobertaTextClassifier(backbone, len(LABEL_NAMES), preprocessor=preprocessor,
                                 dropout=RECIPE["head_dropout"], label_names=RECIPE["label_names"])


def _optimizer(training, total_steps):
    import tf_keras as keras

    peak = training["peak_learning_rate"]
    warmup = max(1, int(training["warmup_fraction"] * total_steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total_steps - warmup),
        alpha=training["final_learning_rate_fraction"], warmup_target=peak, warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=training["weight_decay"], beta_2=training["beta_2"],
        epsilon=training["epsilon"], global_clipnorm=training["global_clipnorm"],
    )


def train(preset_dir, data_dir=None):
    """Trains the recipe and writes the checked preset (with training.json) to `preset_dir`."""
    import tensorflow as tf

    from roberta_tf.models import RobertaTextClassifier
    from roberta_tf.presets import saver

    started = time.perf_counter()
    info = environment.machine_info(PACKAGES, top_processes_at_start=environment.top_processes())
    training = RECIPE["training"]
    train_x, train_y = load_sst2("train", data_dir)
    dev_x, dev_y = load_sst2("dev", data_dir)

    classifier = build_classifier(data_dir)
    dataset = _train_dataset(train_x, train_y, training)
    steps_per_epoch = int(dataset.reduce(0, lambda count, _: count + 1))  # strings only: ~1 s
    classifier.compile(optimizer=_optimizer(training, steps_per_epoch * training["epochs"]))
    logging.info("Training %s: %d examples, ~%d steps per epoch, %d epochs.", NAME, len(train_x),
                 steps_per_epoch, training["epochs"])

    fit_started, fit_cpu_started = time.perf_counter(), _cpu_seconds()
    history = classifier.fit(dataset, epochs=training["epochs"], validation_data=(dev_x, dev_y), verbose=2)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - fit_started, _cpu_seconds() - fit_cpu_started
    dev_loss, dev_accuracy = classifier.evaluate(dev_x, dev_y, verbose=0)

    preset_dir = Path(preset_dir).expanduser()
    preset_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{preset_dir.name}-", dir=preset_dir.parent))
    try:
        staged = staging / "preset"
        classifier.save_to_preset(staged, source={"type": "benchmarks/sst2_classifier.py", "name": NAME,
                                                  "recipe_version": RECIPE_VERSION})
        os.chmod(staged, 0o755)  # the saver stages in a mkdtemp directory (0700)
        # The check: the preset as any benchmark will load it gives the recorded accuracy.
        reloaded = RobertaTextClassifier.from_preset(str(staged))
        reloaded_predictions = np.argmax(reloaded.predict(dev_x, verbose=0), axis=-1)
        reloaded_accuracy = float(np.mean(reloaded_predictions == dev_y))
        if abs(reloaded_accuracy - dev_accuracy) > 0.5 / len(dev_y):
            raise RuntimeError(f"The saved preset gives dev accuracy {reloaded_accuracy:.4f}, "
                               f"the trained model {dev_accuracy:.4f}.")
        info["load_average_at_end"] = os.getloadavg()
        info["top_processes_at_end"] = environment.top_processes()
        record = {
            "name": NAME,
            "recipe_version": RECIPE_VERSION,
            "recipe": RECIPE,
            "geometry": RECIPE["backbone"],
            "epochs": training["epochs"],
            "steps_per_epoch_estimate": steps_per_epoch,
            "batch_sizes_per_bucket": _batch_sizes(training),
            "train_size": len(train_x),
            "train_seconds": fit_seconds,
            # CPU time of this process in fit (all TF threads): with other jobs on the machine
            # the wall time grows, this hardly does (a quiet 2-core run: about half of it).
            "train_cpu_seconds": fit_cpu_seconds,
            "total_seconds": time.perf_counter() - started,
            "history": {key: [float(v) for v in values] for key, values in history.history.items()},
            "dev": {
                "size": len(dev_x),
                "accuracy": float(dev_accuracy),
                "loss": float(dev_loss),
                "accuracy_from_preset_predict": reloaded_accuracy,
                "majority_class_accuracy": float(max(np.mean(dev_y), 1 - np.mean(dev_y))),
            },
            "data": {split: {"path": str(Path(data_dir or DATA_DIR) / "sst2" / f"{split}.tsv"),
                             "sha256": saver.file_sha256(Path(data_dir or DATA_DIR) / "sst2" / f"{split}.tsv")}
                     for split in ("train", "dev")},
            "git_commit": environment.git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": info,
            "tf_version": tf.__version__,
        }
        (staged / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _replace_dir(staged, preset_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return preset_dir


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _replace_dir(source, target):
    """Renames `source` to `target`; an existing `target` is moved aside first and removed
    after (as roberta_tf.presets.saver does), so readers see the old preset or the new one."""
    if not target.exists():
        os.replace(source, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".old-{target.name}-", dir=target.parent))
    os.replace(target, old / "preset")
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


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
