"""`RobertaTextClassifier`: the backbone plus fairseq's sentence classification head."""

import tf_keras as keras

from roberta_tf.layers import ProjectionDense
from roberta_tf.models.roberta_backbone import RobertaBackbone
from roberta_tf.models.roberta_text_classifier_preprocessor import RobertaTextClassifierPreprocessor
from roberta_tf.models.task import Task
from roberta_tf.presets import loader, registry, saver
from roberta_tf.utils.classproperty import classproperty


@keras.saving.register_keras_serializable(package="roberta_tf")
class RobertaTextClassifier(Task):
    """RoBERTa for text classification, with keras-hub's constructor and behaviour.

    The head is fairseq's `RobertaClassificationHead` (= Hugging Face's): the `<s>` vector,
    dropout, dense(hidden_dim, tanh), dropout, dense(num_classes), then `activation`.

    With a `preprocessor`, `fit`/`evaluate`/`predict` take raw strings (a list, or a tuple of
    two lists for pairs); with `preprocessor=None` they take
    `{"token_ids": int [batch, length], "padding_mask": [batch, length]}`. Calling the model
    directly always takes that dict (it is the graph that is exported).

    Args:
        backbone: a `RobertaBackbone`.
        num_classes: number of classes.
        preprocessor: a `RobertaTextClassifierPreprocessor` or None.
        activation: applied to the logits (None = logits; "softmax" = probabilities).
        hidden_dim: width of the pooler dense layer (default: the backbone's).
        dropout: dropout on the pooled vector and after the pooler (fairseq's
            `pooler_dropout`).
        label_names: optional class names (kept in presets, used by exports).

    Examples:
    >>> import numpy as np
    >>> backbone = RobertaBackbone(vocabulary_size=50265, num_layers=2, num_heads=2,
    ...                            hidden_dim=64, intermediate_dim=128, max_sequence_length=128)
    >>> classifier = RobertaTextClassifier(backbone, num_classes=3)
    >>> classifier.predict({"token_ids": np.ones((2, 8), "int32"),
    ...                     "padding_mask": np.ones((2, 8), "int32")}, verbose=0).shape
    (2, 3)
    """

    backbone_cls = RobertaBackbone
    preprocessor_cls = RobertaTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        hidden_dim=None,
        dropout=0.0,
        label_names=None,
        compile=True,  # noqa: A002 (keras-hub's argument name)
        **kwargs,
    ):
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int. Received: num_classes={num_classes!r}")
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(f"label_names has {len(label_names)} names for num_classes={num_classes}.")
        # === Layers ===
        hidden_dim = int(hidden_dim or backbone.hidden_dim)
        policy = backbone.dtype_policy_name
        pooled_dropout = keras.layers.Dropout(dropout, dtype=policy, name="pooled_dropout")
        pooled_dense = ProjectionDense(hidden_dim, activation="tanh", dtype=policy, name="pooled_dense")
        output_dropout = keras.layers.Dropout(dropout, dtype=policy, name="output_dropout")
        # Logits leave the model in float32 whatever the policy (softmax/loss precision).
        output_dense = ProjectionDense(num_classes, dtype="float32", name="logits")
        has_activation = keras.activations.get(activation) is not keras.activations.linear
        output_activation = (
            keras.layers.Activation(activation, dtype="float32", name="activation") if has_activation else None
        )

        # === Functional model ===
        inputs = backbone.input
        x = backbone(inputs)[:, backbone.start_token_index, :]
        x = output_dropout(pooled_dense(pooled_dropout(x)))
        logits = output_dense(x)
        outputs = output_activation(logits) if output_activation is not None else logits
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # `logits_model()` builds on these (exports need the logits before `activation`); a
        # tracked second model would save the weights twice, hence untracked.
        self._untracked.symbolic_logits = None if output_activation is None else (inputs, logits)
        self._untracked.logits_model = None
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooled_dropout = pooled_dropout
        self.pooled_dense = pooled_dense
        self.output_dropout = output_dropout
        self.output_dense = output_dense

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.hidden_dim = hidden_dim
        self.dropout = float(dropout)
        self.label_names = label_names
        if compile:
            self.compile()

    @property
    def label_names(self):
        """Class names (a list of num_classes strings) or None."""
        return self._untracked.label_names

    @label_names.setter
    def label_names(self, names):
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f"label_names has {len(names)} names for num_classes={self.num_classes}.")
        # Untracked: a tracked list would become a ListWrapper.
        self._untracked.label_names = [str(n) for n in names] if names is not None else None

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """keras-hub's defaults: Adam(5e-5), sparse categorical cross-entropy (from logits unless
        `activation="softmax"`) and sparse categorical accuracy. Any value overrides them;
        `jit_compile=True` compiles the train step with XLA."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            from_logits = self.activation != keras.activations.softmax
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def logits_model(self):
        """A functional model sharing this classifier's layers that returns the logits before
        `activation` (the same model when `activation` is None). Serving exports use it to
        answer with both logits and probabilities."""
        if self._untracked.symbolic_logits is None:
            return self
        if self._untracked.logits_model is None:
            inputs, logits = self._untracked.symbolic_logits
            self._untracked.logits_model = keras.Model(inputs, logits, name=f"{self.name}_logits")
        return self._untracked.logits_model

    def named_weights(self):
        """Backbone weights plus the head's, under the preset format's names."""
        names = self.backbone.named_weights()
        for prefix, layer in [("head.pooled_dense", self.pooled_dense), ("head.logits", self.output_dense)]:
            names[f"{prefix}.kernel"] = layer.kernel
            names[f"{prefix}.bias"] = layer.bias
        return names

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "preprocessor": keras.layers.serialize(self.preprocessor) if self.preprocessor is not None else None,
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "label_names": self.label_names,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        objects = {c.__name__: c for c in (cls.backbone_cls, cls.preprocessor_cls)}
        config["backbone"] = keras.layers.deserialize(config["backbone"], custom_objects=objects)
        if config.get("preprocessor") is not None:
            config["preprocessor"] = keras.layers.deserialize(config["preprocessor"], custom_objects=objects)
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A classifier from a preset directory, a Hugging Face checkpoint directory, a named
        preset (`RobertaTextClassifier.presets`), an `hf://owner/name` handle or a converted
        checkpoint. `num_classes` different from the preset's (or a backbone-only preset)
        gives a new, randomly initialized head; `preprocessor=None` skips the tokenizer;
        other keyword arguments go to the constructor."""
        return loader.load_task(cls, preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir, **kwargs):
        """Writes the classifier (weights, config, tokenizer files, labels) as a preset."""
        saver.save_preset(preset_dir, backbone=self.backbone, classifier=self, **kwargs)

    @classproperty
    def presets(cls):
        """The named presets (`roberta_tf.presets.registry.PRESETS`)."""
        return registry.PRESETS
