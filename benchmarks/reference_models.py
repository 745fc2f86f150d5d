"""The models the benchmarks measure roberta_tf against, built the same way everywhere:
geometries, the seeded Hugging Face `RobertaForSequenceClassification` (PyTorch), its ONNX
export and ONNX Runtime sessions.

torch, transformers and onnxruntime are imported inside the functions: importing this module
costs nothing, and a benchmark can report an engine whose package is missing as skipped.
"""

import numpy as np
from absl import logging

# RobertaBackbone keyword arguments (vocabulary 50265 = fairseq's dict.txt + 4 special tokens
# + <mask>; the position table has max_sequence_length + 2 rows).
GEOMETRIES = {
    "base": dict(vocabulary_size=50265, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                 max_sequence_length=512),
    "large": dict(vocabulary_size=50265, num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096,
                  max_sequence_length=512),
    "tiny": dict(vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512,
                 max_sequence_length=512),
}
NUM_CLASSES = 2
SEED = 0


def make_inputs(geometry, batch, length, seed=SEED):
    """token ids [batch, length]: <s> (0), random ids that are not special tokens, </s> (2);
    padding_mask all ones. Never id 1 (<pad>), which Hugging Face would treat as padding."""
    rng = np.random.default_rng(seed + 1000 * batch + length)
    ids = rng.integers(4, geometry["vocabulary_size"], size=(batch, length), dtype=np.int64)
    ids[:, 0] = 0
    if length > 1:
        ids[:, -1] = 2
    return ids, np.ones_like(ids)


def hf_config(geometry, num_classes=NUM_CLASSES):
    """The `transformers.RobertaConfig` of a geometry: fairseq's RoBERTa settings (exact GELU,
    LayerNorm epsilon 1e-5, one token type, <pad> = 1, positions offset by 2)."""
    import transformers

    return transformers.RobertaConfig(
        vocab_size=geometry["vocabulary_size"],
        hidden_size=geometry["hidden_dim"],
        num_hidden_layers=geometry["num_layers"],
        num_attention_heads=geometry["num_heads"],
        intermediate_size=geometry["intermediate_dim"],
        max_position_embeddings=geometry["max_sequence_length"] + 2,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=num_classes,
    )


def torch_classifier(geometry, num_classes=NUM_CLASSES, seed=SEED, perturbation=0.0):
    """A `RobertaForSequenceClassification` of `geometry`, initialised after
    `torch.manual_seed(seed)`, in eval mode. `perturbation` > 0 adds N(0, perturbation) noise
    to every parameter, so that no LayerNorm gain/bias or linear bias keeps its initial 1 / 0
    and a mis-mapped tensor shows in the logits of every engine holding these weights."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = transformers.RobertaForSequenceClassification(hf_config(geometry, num_classes))
    if perturbation:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * perturbation)
    return model.eval()


def set_torch_threads(threads):
    """`threads` intra-op threads and one inter-op thread (the latter only settable once)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed once, before any inter-op work
        pass


def _logits_only(model):
    """The HF model as a module with two tensor inputs and one output (the logits), for export."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    return LogitsOnly().eval()


def export_onnx(model, path, geometry):
    """fp32 ONNX of a `torch_classifier` with dynamic batch and sequence axes: the TorchScript
    exporter (dynamo=False) first, the default (dynamo) exporter if that fails. Returns the
    exporter used and the errors of the ones that failed."""
    import torch

    wrapper = _logits_only(model)
    ids, mask = make_inputs(geometry, 2, 16)
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    names = dict(input_names=["input_ids", "attention_mask"], output_names=["logits"])
    dynamic_axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                    "logits": {0: "batch"}}
    errors = {}
    attempts = [
        ("torchscript (dynamo=False)",
         lambda: torch.onnx.export(wrapper, args, str(path), dynamo=False, opset_version=17,
                                   dynamic_axes=dynamic_axes, do_constant_folding=True, **names)),
        ("dynamo",
         lambda: torch.onnx.export(wrapper, args, str(path), dynamo=True, external_data=False,
                                   dynamic_shapes={"input_ids": {0: torch.export.Dim("batch"),
                                                                 1: torch.export.Dim("sequence")},
                                                   "attention_mask": {0: torch.export.Dim("batch"),
                                                                      1: torch.export.Dim("sequence")}},
                                   **names)),
    ]
    for label, export in attempts:
        try:
            with torch.no_grad():
                export()
            return label, errors
        except Exception as e:  # noqa: BLE001 (any exporter failure -> next exporter)
            errors[label] = f"{type(e).__name__}: {str(e)[:500]}"
            logging.warning("ONNX export with %s failed: %s", label, errors[label])
    raise RuntimeError(f"every ONNX exporter failed: {errors}")


def ort_session(path, threads):
    """An ONNX Runtime CPU session as every benchmark runs it: `threads` intra-op threads,
    one inter-op thread, sequential execution, all graph optimizations (ORT_ENABLE_ALL)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
