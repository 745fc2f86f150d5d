"""How the encoder runs in an exported graph: float32 or bfloat16 weights and matmuls.

Measured on this project's CI machine kind (AMD EPYC, AVX512_BF16, no AMX; 2 threads; see
WORKSPACE.md "Serving"): a bfloat16 roberta-base SavedModel is 1.9x faster than float32 at batch 32
and 1.35x at batch 1 (end to end), but on a CPU without bfloat16 instructions oneDNN emulates it and the
same matmuls run about 2x *slower* than float32 (1.6-2.4x measured with
ONEDNN_MAX_CPU_ISA=AVX512_CORE; capped at AVX2, oneDNN aborted on the bfloat16 matmul).
An export cannot know the serving CPU, so float32 is the default and bfloat16 is an option
for servers known to have AVX512_BF16 or AMX.
"""

import numpy as np

PRECISIONS = ("float32", "bfloat16")
DEFAULT_PRECISION = "float32"


def classifier_with_precision(classifier, precision):
    """`classifier` itself when it already runs in `precision`, else a copy whose encoder and
    pooler store their weights in `precision` (LayerNorm, softmax and the logits layer stay
    float32: see `roberta_tf.layers.layer_norm`). The copy shares nothing with `classifier`
    and has its classes (`type(...)`), so subclasses keep theirs."""
    check_precision(precision)
    backbone = classifier.backbone
    if (backbone.dtype_policy_name or "float32") == precision:
        return classifier
    copy = type(classifier)(
        type(backbone)(**{**backbone.get_config(), "dtype": precision, "name": backbone.name}),
        classifier.num_classes,
        preprocessor=None,
        activation=classifier.activation,
        hidden_dim=classifier.hidden_dim,
        dropout=classifier.dropout,
        label_names=classifier.label_names,
        compile=False,
        name=classifier.name,
    )
    source = classifier.named_weights()
    for name, variable in copy.named_weights().items():
        variable.assign(np.asarray(source[name]).astype(variable.dtype.as_numpy_dtype))
    return copy


def check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")
    return precision
