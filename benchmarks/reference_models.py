"""The models the benchmarks measure roberta_tf against, built the same way everywhere:
geometries, the seeded Hugging Face `RobertaForSequenceClassification` (PyTorch), the same
weights in a roberta_tf classifier, its ONNX export, ONNX Runtime's dynamic int8 quantization
and sessions, and the two tokenizers (roberta_tf's, Hugging Face `tokenizers`).

torch, transformers and onnxruntime are imported inside the functions: importing this module
costs nothing, and a benchmark can report an engine whose package is missing as skipped.
"""

import time
from pathlib import Path

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


def roberta_tf_classifier(torch_model, num_classes=NUM_CLASSES):
    """The same weights in a roberta_tf `RobertaTextClassifier` (the HF converter's mapping)."""
    from roberta_tf.converters import huggingface
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier
    from roberta_tf.presets import weights

    arguments = huggingface.backbone_arguments(torch_model.config.to_dict())
    state = {key: value.detach().cpu().numpy() for key, value in torch_model.state_dict().items()}
    classifier = RobertaTextClassifier(RobertaBackbone(**arguments), num_classes, compile=False)
    weights.assign(classifier.named_weights(), huggingface.named_weights(state, arguments["num_layers"]), "torch model")
    return classifier


def roberta_tf_tokenizer(data_dir):
    """roberta_tf's `RobertaTokenizer` on the shared roberta-base vocab.json + merges.txt."""
    from roberta_tf.models import RobertaTokenizer

    return RobertaTokenizer(vocabulary=str(Path(data_dir, "roberta-base", "vocab.json")),
                            merges=str(Path(data_dir, "roberta-base", "merges.txt")))


def hf_tokenizer(data_dir, max_length=512):
    """Hugging Face `tokenizers` for roberta-base: `<s> A </s>`, padded with `<pad>` (id 1) to
    the longest row of each batch, truncated to `max_length` tokens."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(Path(data_dir, "roberta-base", "tokenizer.json")))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=1, pad_token="<pad>")
    return tokenizer


def quantize_int8(fp32_path, workdir, name="roberta_classifier"):
    """ORT dynamic quantization (QInt8 weights, activations quantized at run time), after ORT's
    recommended pre-processing (`quant_pre_process`: symbolic shape inference and graph
    optimization). Writes WORKDIR/NAME.pre.onnx and NAME.int8.onnx; returns (path, info)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    info = {"weight_type": "QInt8", "per_channel": False, "reduce_range": False}
    source = Path(fp32_path)
    start = time.perf_counter()
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prepared = Path(workdir, f"{name}.pre.onnx")
        quant_pre_process(str(source), str(prepared))
        source = prepared
        info["pre_process"] = "quant_pre_process (symbolic shape inference + ORT basic optimization)"
    except Exception as e:  # noqa: BLE001 (quantize the plain export instead; recorded)
        info["pre_process"] = f"failed, quantized the plain export: {type(e).__name__}: {str(e)[:300]}"
        logging.warning("quant_pre_process failed: %s", info["pre_process"])
    info["pre_process_seconds"] = round(time.perf_counter() - start, 2)
    output = Path(workdir, f"{name}.int8.onnx")
    start = time.perf_counter()
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)  # the quantizer logs one INFO line per tensor
    try:
        quantize_dynamic(str(source), str(output), weight_type=QuantType.QInt8)
    finally:
        logging.set_verbosity(verbosity)
    info["quantize_seconds"] = round(time.perf_counter() - start, 2)
    info["onnx_bytes"] = output.stat().st_size
    return output, info
