"""Training a small text classifier from scratch with roberta_tf's own `fit`, and saving it as
a checked preset: the recipe machinery shared by `roberta-tf demo` and
`benchmarks/sst2_classifier.py`.

A recipe is a plain dict (JSON-able, so a cached preset records it and is reused only when the
recipe is unchanged):

    {"backbone": RobertaBackbone arguments, "head_dropout": float,
     "preprocessor": {"sequence_length": L, "padding": "longest"}, "label_names": [...],
     "training": {"seed", "epochs", "bucket_boundaries", "tokens_per_batch", "min_batch_size",
                  "max_batch_size", "peak_learning_rate", "warmup_fraction",
                  "final_learning_rate_fraction", "weight_decay", "beta_2", "epsilon",
                  "global_clipnorm", ...}}

What the recipe machinery does:
  * batches by length (`bucketed_dataset`): `tf.data`'s `bucket_by_sequence_length` on word
    counts, each bucket's batch holding about `tokens_per_batch` tokens, so little compute goes
    to padding (short SST-2 phrases come 128 to a batch, long sentences 16);
  * AdamW with linear warm-up and cosine decay (`optimizer`);
  * `fit` on raw strings (the preprocessor tokenizes inside the `tf.data` pipeline) with a
    progress bar (`FitProgress`), seeded with `tf.keras.utils.set_random_seed`: reruns are
    comparable, not bit-identical (TF's CPU kernels reduce in parallel);
  * `save_checked_preset`: the preset is written into the staging directory of
    `utils.files.atomic_directory`, reloaded from there and checked (its dev accuracy must be
    the trained model's), with `training.json` (the record) beside it, then renamed into place.
"""

import dataclasses
import json
import pathlib
import resource
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from roberta_tf.models import (
    RobertaBackbone,
    RobertaTextClassifier,
    RobertaTextClassifierPreprocessor,
    RobertaTokenizer,
)
from roberta_tf.demo.training_record import TRAINING_FILE
from roberta_tf.utils import files
from roberta_tf.utils.keras_progress import FitProgress

# BPE tokens per SST-2 word (lower-case, pre-tokenized text), to size each bucket's batches.
TOKENS_PER_WORD = 1.15


@dataclasses.dataclass
class TrainingResult:
    classifier: RobertaTextClassifier
    history: dict  # metric name -> one value per epoch
    steps_per_epoch: int
    batch_sizes: list  # per length bucket
    seconds: float  # wall time in `fit`
    cpu_seconds: float  # CPU time of this process in `fit` (all TF threads)


# === Building and training ===


def build_classifier(recipe, vocabulary, merges):
    """The untrained classifier of `recipe` (seeds set first) with the tokenizer of the BPE
    files `vocabulary` (vocab.json) and `merges` (merges.txt)."""
    keras.utils.set_random_seed(recipe["training"]["seed"])
    tokenizer = RobertaTokenizer(vocabulary=str(vocabulary), merges=str(merges))
    preprocessor = RobertaTextClassifierPreprocessor(tokenizer, **recipe["preprocessor"])
    backbone = RobertaBackbone(**recipe["backbone"])
    return RobertaTextClassifier(backbone, len(recipe["label_names"]), preprocessor=preprocessor,
                                 dropout=recipe["head_dropout"], label_names=recipe["label_names"])


def train(recipe, classifier, texts, labels, validation_data=None, description="Training"):
    """Compiles `classifier` with the recipe's optimizer and fits it on `texts` / `labels`
    (length-bucketed batches, a progress bar). Returns a `TrainingResult`."""
    training = recipe["training"]
    dataset = bucketed_dataset(texts, labels, training)
    steps_per_epoch = count_batches(dataset)
    classifier.compile(optimizer=optimizer(training, steps_per_epoch * training["epochs"]))
    logging.info("%s: %d examples, %d steps per epoch, %d epoch(s).", description, len(texts), steps_per_epoch,
                 training["epochs"])
    started, cpu_started = time.perf_counter(), cpu_seconds()
    history = classifier.fit(
        dataset, epochs=training["epochs"], validation_data=validation_data, verbose=0,
        callbacks=[FitProgress(steps_per_epoch, description)],
    )
    return TrainingResult(
        classifier=classifier,
        history={key: [float(v) for v in values] for key, values in history.history.items()},
        steps_per_epoch=steps_per_epoch,
        batch_sizes=batch_sizes(training),
        seconds=time.perf_counter() - started,
        cpu_seconds=cpu_seconds() - cpu_started,
    )


def batch_sizes(training):
    """Per length bucket (len(bucket_boundaries) + 1 of them) the batch size that holds about
    `tokens_per_batch` tokens: the bucket's longest text in BPE tokens (estimated from its word
    count, plus <s> and </s>), within [min_batch_size, max_batch_size]."""
    uppers = training["bucket_boundaries"] + [64]
    sizes = [int(training["tokens_per_batch"] / (TOKENS_PER_WORD * upper + 2)) for upper in uppers]
    return [min(training["max_batch_size"], max(training["min_batch_size"], size)) for size in sizes]


def bucketed_dataset(texts, labels, training):
    """Batched `(texts, labels)`: shuffled every epoch (seeded), grouped by word count."""
    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(texts), np.asarray(labels)))
    dataset = dataset.shuffle(len(texts), seed=training["seed"], reshuffle_each_iteration=True)
    return dataset.bucket_by_sequence_length(
        lambda text, label: tf.size(tf.strings.split(text)),
        bucket_boundaries=training["bucket_boundaries"],
        bucket_batch_sizes=batch_sizes(training),
    )


def count_batches(dataset):
    """The number of batches of one pass (bucketing makes the cardinality unknown to tf.data;
    counting a pass over strings takes about a second for SST-2's 67k texts)."""
    return int(dataset.reduce(0, lambda count, _: count + 1))


def optimizer(training, total_steps):
    """AdamW, learning rate warmed up linearly to `peak_learning_rate` over `warmup_fraction`
    of the steps, then cosine-decayed to `final_learning_rate_fraction` of the peak."""
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


def accuracy(classifier, texts, labels, batch_size=64):
    """The fraction of `texts` whose predicted class is `labels`'."""
    return accuracy_and_loss(classifier, texts, labels, batch_size)[0]


def accuracy_and_loss(classifier, texts, labels, batch_size=64):
    """(accuracy, mean cross-entropy) of a softmax classifier on `texts`, from one `predict`."""
    logits = np.asarray(classifier.predict(texts, batch_size=batch_size, verbose=0), np.float64)
    labels = np.asarray(labels)
    log_probabilities = logits - logits.max(-1, keepdims=True)
    log_probabilities -= np.log(np.exp(log_probabilities).sum(-1, keepdims=True))
    loss = -np.mean(log_probabilities[np.arange(len(labels)), labels])
    return float(np.mean(np.argmax(logits, axis=-1) == labels)), float(loss)


def cpu_seconds():
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# === The checked preset and its record ===


def save_checked_preset(classifier, preset_dir, record, dev_texts, dev_labels, source):
    """Writes `classifier` as the preset `preset_dir` with `record` as its training.json,
    atomically (`utils.files.atomic_directory`): saved into a hidden staging directory beside
    the target, reloaded from there and checked (`from_preset` + `predict` on the dev texts
    must give `record["dev"]["accuracy"]`, within one text), then renamed into place, replacing
    an older preset whole. On any error nothing changes at `preset_dir`.

    Args:
        source: the provenance `save_to_preset` records (a dict).

    Returns:
        `preset_dir` as a `pathlib.Path`.
    """
    preset_dir = pathlib.Path(preset_dir).expanduser()
    with files.atomic_directory(preset_dir, kind="preset", overwrite=True) as staged:
        classifier.save_to_preset(staged, source=source)
        # The check: the preset, loaded as any reader will load it, gives the recorded accuracy.
        reloaded_accuracy = accuracy(RobertaTextClassifier.from_preset(str(staged)), dev_texts, dev_labels)
        if abs(reloaded_accuracy - record["dev"]["accuracy"]) > 0.5 / len(dev_labels):
            raise RuntimeError(f"The saved preset gives dev accuracy {reloaded_accuracy:.4f}, "
                               f"the trained model {record['dev']['accuracy']:.4f}.")
        record["dev"]["accuracy_from_preset_predict"] = reloaded_accuracy
        (staged / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return preset_dir
