"""The demo's two training recipes: what model `roberta-tf demo` trains, on what, and how.

Both are small RoBERTa encoders with random initial weights, trained from scratch on SST-2
train with the real roberta-base tokenizer (vocabulary packaged with roberta_tf): a few
minutes on 2 CPU cores, so the demo runs anywhere offline. They are NOT roberta-base (12
layers x 768, 125M parameters, pretrained on 160 GB of text, ~0.95 on SST-2 dev once
fine-tuned); `roberta-tf export` takes that model's preset the same way.

A trained preset is cached under `$ROBERTA_TF_CACHE/demo/<name>-v<version>` and reused while
its training.json records the same recipe and training data: change a recipe -> bump its
version.
"""

import copy
import dataclasses

from roberta_tf.presets import registry

LABEL_NAMES = ["negative", "positive"]


def _training(**overrides):
    # benchmarks/sst2_classifier.py's schedule (length buckets, AdamW, warm-up + cosine),
    # with the learning rate a 2-layer model takes (measured: 1e-3 gives 0.80 dev accuracy on
    # 30k examples where 5e-4 is slower to get there).
    training = {
        "seed": 0,
        "epochs": 1,
        "train_examples": None,  # None: all of SST-2 train; else a seeded sample of this many
        "bucket_boundaries": [3, 5, 7, 9, 11, 13, 16, 19, 23, 28, 34, 42],
        "tokens_per_batch": 1024,
        "min_batch_size": 16,
        "max_batch_size": 128,
        "optimizer": "AdamW",
        "peak_learning_rate": 1e-3,
        "warmup_fraction": 0.1,
        "final_learning_rate_fraction": 0.0,
        "weight_decay": 0.01,
        "beta_2": 0.98,
        "epsilon": 1e-6,
        "global_clipnorm": 1.0,
    }
    training.update(overrides)
    return training


def _recipe(num_layers, hidden_dim, sequence_length, training):
    return {
        "backbone": {
            "vocabulary_size": 50265,
            "num_layers": num_layers,
            "num_heads": hidden_dim // 32,
            "hidden_dim": hidden_dim,
            "intermediate_dim": 4 * hidden_dim,
            "max_sequence_length": 128,
            "dropout": 0.1,
        },
        "head_dropout": 0.1,
        "preprocessor": {"sequence_length": sequence_length, "padding": "longest"},
        "label_names": LABEL_NAMES,
        "training": training,
    }


@dataclasses.dataclass(frozen=True)
class DemoRecipe:
    mode: str  # "default" | "quick"
    name: str  # the cache directory's name, with the version
    version: int
    recipe: dict  # the `roberta_tf.demo.training` recipe (JSON-able)
    int8_calibration_texts: int  # SST-2 train sentences that calibrate the int8 TFLite model
    latency_texts: int  # dev sentences timed one at a time per artifact

    @property
    def cache_name(self):
        return f"{self.name}-v{self.version}"

    def describe(self):
        """One line: the model's geometry and parameter count."""
        backbone = self.recipe["backbone"]
        return (f"{backbone['num_layers']} layers x hidden {backbone['hidden_dim']}, {backbone['num_heads']} heads, "
                f"{parameter_count(self.recipe) / 1e6:.1f}M parameters (of which "
                f"{backbone['vocabulary_size'] * backbone['hidden_dim'] / 1e6:.1f}M token embeddings), "
                f"sequence length {self.recipe['preprocessor']['sequence_length']}")


RECIPES = {
    # Dev accuracy 0.815 (as the 4 x 256 benchmark model); the whole demo took 251 CPU-seconds
    # (training 119, the five exports 116, scoring 11) on this project's 2-core machine.
    "default": DemoRecipe("default", "sst2-demo", 1, _recipe(2, 128, 64, _training()), int8_calibration_texts=200,
                          latency_texts=100),
    # --quick: half the width, a sixth of the training set: dev accuracy 0.747, ~140 CPU-seconds,
    # most of them the exports (each TFLite form's conversion costs ~20 s whatever the model size).
    "quick": DemoRecipe("quick", "sst2-demo-quick", 1, _recipe(2, 64, 48, _training(train_examples=12000, peak_learning_rate=2e-3)),
                        int8_calibration_texts=100, latency_texts=50),
}


def get(quick):
    """The recipe of a `roberta-tf demo` run (a copy: callers may not change the registry)."""
    return copy.deepcopy(RECIPES["quick" if quick else "default"])


def parameter_count(recipe):
    """Encoder (`registry.parameter_count`: embeddings, LayerNorms, layers) plus the
    classification head (dense tanh, then the logits layer)."""
    d, classes = recipe["backbone"]["hidden_dim"], len(recipe["label_names"])
    return registry.parameter_count(recipe["backbone"]) + (d * d + d) + (d * classes + classes)
