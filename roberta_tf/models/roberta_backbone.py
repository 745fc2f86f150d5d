"""`RobertaBackbone`: fairseq's RoBERTa encoder in tf-keras, with keras-hub's constructor."""

import collections

import numpy as np
import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers import RobertaEmbedding, TransformerEncoderLayer, attention_bias
from roberta_tf.layers.layer_norm import LayerNorm
from roberta_tf.layers.transformer_encoder import ACTIVATIONS
from roberta_tf.presets import loader, registry, saver
from roberta_tf.utils.classproperty import classproperty


@keras.saving.register_keras_serializable(package="roberta_tf")
class RobertaBackbone(keras.Model):
    """The RoBERTa encoder: `{"token_ids", "padding_mask"}` -> sequence output [batch, length, hidden].

    Numerically fairseq's `RobertaEncoder` (and Hugging Face's `RobertaModel`): token
    embeddings plus learned positions offset by the padding index and computed from the
    padding mask; embedding LayerNorm; post-LN transformer layers with exact (erf) GELU and
    LayerNorm epsilon 1e-5. The constructor is keras-hub's `RobertaBackbone`'s; the extra
    arguments describe architecture variants found in real fairseq checkpoints.

    Args:
        vocabulary_size: rows of the token embedding (50265 for roberta-base).
        num_layers, num_heads, hidden_dim, intermediate_dim: geometry.
        dropout: dropout in the embeddings and every layer (training only).
        max_sequence_length: the longest input (512 for RoBERTa); the position table holds
            `max_sequence_length + 2` rows, as fairseq's and Hugging Face's.
        activation: "gelu" (exact, RoBERTa), "gelu_accurate" (tanh form) or "relu".
        layer_norm_epsilon: 1e-5 (fairseq, Hugging Face).
        normalize_before: pre-LN layers plus a final LayerNorm (fairseq's
            `encoder_normalize_before=True`); RoBERTa itself is post-LN.
        embedding_layer_norm: LayerNorm after the embeddings (fairseq's `layernorm_embedding`,
            True for RoBERTa).
        dtype: a dtype or tf-keras mixed-precision policy: "mixed_bfloat16" (float32
            weights, bfloat16 math: training) or "bfloat16" (weights stored in bfloat16: the
            serving-time encoder). Softmax and LayerNorm run in float32 whatever the policy.

    Call arguments:
        inputs: `{"token_ids": int [batch, length], "padding_mask": bool/int [batch, length]}`.
            Batch and length are dynamic; padding may sit anywhere (positions come from the
            mask, so results do not depend on the amount of padding).

    Examples:
    >>> import numpy as np
    >>> backbone = RobertaBackbone(vocabulary_size=50265, num_layers=2, num_heads=2,
    ...                            hidden_dim=64, intermediate_dim=128, max_sequence_length=128)
    >>> backbone({"token_ids": np.ones((1, 12), "int32"),
    ...           "padding_mask": np.array([[1] * 10 + [0] * 2], "int32")}).shape
    TensorShape([1, 12, 64])
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        normalize_before=False,
        embedding_layer_norm=True,
        dtype=None,
        **kwargs,
    ):
        _check_geometry(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, max_sequence_length)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"Unsupported activation {activation!r}: this RoBERTa supports {sorted(ACTIVATIONS)} "
                "(fairseq's activation_fn names)."
            )
        # === Layers ===
        embedding = RobertaEmbedding(
            vocabulary_size, max_sequence_length, hidden_dim, dtype=dtype, name="embeddings"
        )
        embeddings_layer_norm = (
            LayerNorm(layer_norm_epsilon, dtype, "embeddings_layer_norm")
            if embedding_layer_norm
            else None
        )
        embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        transformer_layers = [
            TransformerEncoderLayer(
                num_heads,
                hidden_dim,
                intermediate_dim,
                dropout=dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                normalize_before=normalize_before,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        final_layer_norm = (
            LayerNorm(layer_norm_epsilon, dtype, "final_layer_norm")
            if normalize_before
            else None
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        hidden_states = _encode(
            embedding, embeddings_layer_norm, embeddings_dropout, transformer_layers, final_layer_norm,
            token_ids, padding_mask,
        )
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=hidden_states[-1],
            **kwargs,
        )
        self.embedding = embedding
        self.token_embedding = embedding  # keras-hub name (the layer holding the token table)
        self.embeddings_layer_norm = embeddings_layer_norm
        self.embeddings_dropout = embeddings_dropout
        self.transformer_layers = transformer_layers
        self.final_layer_norm = final_layer_norm

        # === Config ===
        self.vocabulary_size = int(vocabulary_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.max_sequence_length = int(max_sequence_length)
        self.activation = activation
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.normalize_before = bool(normalize_before)
        self.embedding_layer_norm = bool(embedding_layer_norm)
        self.start_token_index = 0
        # The layers' policy (the functional model itself has none): a name such as "float32"
        # or "mixed_bfloat16", or None for the global policy.
        self.dtype_policy_name = keras.mixed_precision.Policy(dtype).name if dtype is not None else None

    def call(self, inputs, training=None, mask=None):
        _check_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    def hidden_states(self, inputs, training=False):
        """All hidden states: [embedding output, layer 1 output, ..., final output] (fairseq's
        `return_all_hiddens`, HF's `output_hidden_states`; pre-LN models end with the final LN)."""
        inputs = _as_model_inputs(inputs)
        return _encode(
            self.embedding, self.embeddings_layer_norm, self.embeddings_dropout, self.transformer_layers,
            self.final_layer_norm, inputs["token_ids"], inputs["padding_mask"], training=training,
        )

    def named_weights(self):
        """The encoder's variables under stable, framework-neutral names (the preset format's
        weight names; converters map fairseq and Hugging Face keys onto them)."""
        names = collections.OrderedDict()
        names["embeddings.token_embedding"] = self.embedding.token_embedding
        names["embeddings.position_embedding"] = self.embedding.position_embedding
        if self.embeddings_layer_norm is not None:
            _add_layer_norm(names, "embeddings.layer_norm", self.embeddings_layer_norm)
        for i, layer in enumerate(self.transformer_layers):
            prefix = f"layers.{i}"
            _add_dense(names, f"{prefix}.attention.qkv", layer.attention.qkv)
            _add_dense(names, f"{prefix}.attention.output", layer.attention.output_projection)
            _add_layer_norm(names, f"{prefix}.attention_layer_norm", layer.attention_layer_norm)
            _add_dense(names, f"{prefix}.feedforward.intermediate", layer.intermediate)
            _add_dense(names, f"{prefix}.feedforward.output", layer.output_dense)
            _add_layer_norm(names, f"{prefix}.feedforward_layer_norm", layer.feedforward_layer_norm)
        if self.final_layer_norm is not None:
            _add_layer_norm(names, "final_layer_norm", self.final_layer_norm)
        return names

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "normalize_before": self.normalize_before,
            "embedding_layer_norm": self.embedding_layer_norm,
            "dtype": self.dtype_policy_name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A backbone from a preset directory, a Hugging Face checkpoint directory, a named
        preset, an `hf://` handle or a converted checkpoint (`roberta_tf.presets.loader`)."""
        return loader.load_backbone(cls, preset, load_weights=load_weights, **kwargs)

    def save_to_preset(self, preset_dir, **kwargs):
        """Writes a backbone-only preset directory (see `roberta_tf.presets`)."""
        saver.save_preset(preset_dir, backbone=self, **kwargs)

    @classproperty
    def presets(cls):
        """The named presets (`roberta_tf.presets.registry.PRESETS`)."""
        return registry.PRESETS


def _encode(embedding, embeddings_layer_norm, dropout, layers, final_layer_norm, token_ids, padding_mask, training=None):
    """Every hidden state as [batch, length, hidden]. Inside, tokens stay flattened to
    [batch * length, hidden] (fewer ops per layer; one MatMul per dense layer)."""
    x = embedding(token_ids, padding_mask)
    if embeddings_layer_norm is not None:
        x = embeddings_layer_norm(x)
    x = dropout(x, training=training)
    bias = attention_bias(padding_mask)
    flat_states = [x]
    for layer in layers:
        x = layer(x, bias, training=training)
        flat_states.append(x)
    if final_layer_norm is not None:
        flat_states[-1] = final_layer_norm(x)
    shape = tf.concat([tf.shape(token_ids), [flat_states[-1].shape[-1]]], axis=0)
    return [tf.reshape(state, shape) for state in flat_states]


@tf.autograph.experimental.do_not_convert
def _check_inputs(inputs):
    """Static checks with clear messages (dtype, rank, equal known shapes). They cost nothing
    at run time and add no op to exported graphs; a dynamic shape mismatch still fails in TF."""
    if not isinstance(inputs, dict) or not {"token_ids", "padding_mask"} <= set(inputs):
        raise ValueError('RobertaBackbone takes {"token_ids": ..., "padding_mask": ...}.')
    token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
    dtype = tf.as_dtype(token_ids.dtype if hasattr(token_ids, "dtype") else np.asarray(token_ids).dtype)
    if not dtype.is_integer:
        raise TypeError(f"token_ids must be integers. Received dtype {dtype.name}.")
    shapes = [tf.TensorShape(v.shape if hasattr(v, "shape") else np.shape(v)) for v in (token_ids, padding_mask)]
    for name, shape in zip(("token_ids", "padding_mask"), shapes):
        if shape.rank is not None and shape.rank != 2:
            raise ValueError(f"{name} must be [batch, length]. Received shape {shape}.")
    if not shapes[0].is_compatible_with(shapes[1]):
        raise ValueError(f"token_ids {shapes[0]} and padding_mask {shapes[1]} must have the same shape.")


def _as_model_inputs(inputs):
    _check_inputs(inputs)
    return {
        "token_ids": tf.cast(inputs["token_ids"], tf.int32),
        "padding_mask": tf.cast(inputs["padding_mask"], tf.int32),
    }


def _check_geometry(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim, max_sequence_length):
    for name, value in [
        ("vocabulary_size", vocabulary_size),
        ("num_layers", num_layers),
        ("num_heads", num_heads),
        ("hidden_dim", hidden_dim),
        ("intermediate_dim", intermediate_dim),
        ("max_sequence_length", max_sequence_length),
    ]:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int. Received: {name}={value!r}")
    if hidden_dim % num_heads:
        raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}).")


def _add_dense(names, prefix, layer):
    names[f"{prefix}.kernel"] = layer.kernel
    names[f"{prefix}.bias"] = layer.bias


def _add_layer_norm(names, prefix, layer):
    names[f"{prefix}.gamma"] = layer.gamma
    names[f"{prefix}.beta"] = layer.beta
