"""TFLite benchmark: what each quantized form of the `roberta-tf export tflite` model costs in
accuracy, file size and batch-1 latency on a real task, against the SavedModel and Hugging Face
`tokenizers` + ONNX Runtime holding the same weights; plus the latency of the roberta-base
geometry.

Part 1, the SST-2 classifier of `benchmarks.sst2_classifier` (4 layers x 256, trained with
roberta_tf's own `fit`, sequence_length 64; --preset to use another), in one run:
  * `export_preset_tflite(preset, ..., inputs="utf8_bytes")` in every --forms form: none
    (float32), float16, dynamic (dynamic-range) and int8 (calibrated on --calibration_size SST-2
    *train* sentences, `tflite.read_calibration_texts(train.tsv, column=0)`); run by
    `roberta_tf.lite.TextClassifier(path, num_threads=--threads)`, one text per call;
  * the SavedModel of the same preset (`export_preset(..., warmup_requests=False)`),
    `signatures["serving_default"](text=tf.constant([text]))`, batch 1;
  * `tokenizers` (roberta-base tokenizer.json, truncation to the preset's sequence_length, the
    truncation the TFLite model applies) + ONNX Runtime fp32 and dynamic int8
    (`quant_pre_process` + `quantize_dynamic`) on the same weights: the classifier moved into
    a transformers `RobertaForSequenceClassification` by inverting the Hugging Face converter's
    mapping (checked: the converter maps it back to identical arrays, and the torch logits
    equal roberta_tf's within 1e-4, else the run stops), exported with
    `reference_models.export_onnx`.
Every engine classifies the SST-2 dev sentences (all 872; text in, logits out, tokenizer
included), one per call, each call timed with perf_counter after an untimed warm-up on the
first --warmup_sentences; the sentences go in --blocks consecutive blocks, each block through
every engine in turn (all engines loaded; order rotated per block; a pause before each), so
load from other processes that comes and goes falls on every engine alike. Per engine: dev
accuracy, label agreement and max abs logit difference with the
float32 TFLite model, file size (and % of float32's), median and p90 latency, and the
tokenizer's share (a coarse profile: `tokenizers`' encode timed inside each call; the
SavedModel's `tokenize` signature and a tokenizer-only TFLite model of the same tokenizer,
`export_tokenizer_tflite`, timed separately on the same sentences, their ids checked against
`tokenizers`').

Part 2, the roberta-base geometry (`reference_models.GEOMETRIES["base"]`; tiny with --quick),
random weights: `reference_models.torch_classifier(perturbation=0.02)` (serving_benchmark's
weights) moved into roberta_tf with the converter's mapping, exported with
`export_tflite(..., inputs="token_ids", sequence_length=512)` in every form (int8 calibrated on
SST-2 train sentences and concatenations of them up to ~128 tokens) and timed through the
interpreter's `classify_token_ids` signature runner at batch 1 and 16, 32 and 128 tokens
(`reference_models.make_inputs`, int32 [1, L]); ONNX Runtime fp32 and dynamic int8 of the torch
model on the same ids. Per length, after --warmup_calls untimed calls, at least --min_calls
calls and --min_seconds per engine, made in 4 rounds interleaved across the engines as in part
1; median and p90; file sizes and export seconds.

Targets (printed MET / NOT MET with the ratio, never asserted): accuracy within 0.1 (float16),
0.3 (dynamic) and 1.0 (int8) points of float32's; the dynamic and int8 files at most 27% of
float32's; batch-1 median latency on SST-2 sentences: float32 TFLite <= ORT fp32, dynamic <=
ORT dynamic int8, int8 <= 0.8x ORT dynamic int8. The same latency ratios for the roberta-base
geometry are printed as informative. Every ratio is in the JSON.

Run from the repository root (data from ../shared/data):

    python -m benchmarks.tflite_benchmark [--quick] [--output_dir DIR] [--threads 2]

It prints the tables and writes tflite_benchmark.json and tflite_benchmark.png to
--output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

THREADS_DEFAULT = 2
# `tokenizers` sizes its Rayon pool from this at the first parallel call (set before the imports).
os.environ.setdefault("RAYON_NUM_THREADS", str(THREADS_DEFAULT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from benchmarks import DATA_DIR, RESULTS_DIR, report, sst2_classifier  # noqa: E402
from benchmarks.data import load_sst2  # noqa: E402
from roberta_tf.contract import signatures as contract  # noqa: E402
from benchmarks.reference_models import (  # noqa: E402
    GEOMETRIES,
    NUM_CLASSES,
    SEED,
    export_onnx,
    hf_config,
    hf_tokenizer,
    make_inputs,
    ort_session,
    quantize_int8,
    roberta_tf_classifier,
    roberta_tf_tokenizer,
    set_torch_threads,
    torch_classifier,
)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "ai-edge-litert", "tokenizers", "torch", "transformers", "onnx",
            "onnxruntime", "numpy", "absl-py", "matplotlib", "roberta-tf"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
flags.DEFINE_bool("quick", False, "Smoke test: part 1 on the first 96 dev sentences with 50 calibration texts; "
                  "part 2 on the tiny geometry (unless --geometry), 3 calls per case.")
flags.DEFINE_integer("threads", THREADS_DEFAULT, "Threads of every engine (TFLite interpreter, TF intra-op, "
                     "ORT intra-op, tokenizers' Rayon pool).")
flags.DEFINE_list("forms", ["none", "float16", "dynamic", "int8"], "TFLite forms (export_tflite's quantize).")
flags.DEFINE_bool("part1", True, "Run part 1 (the SST-2 classifier).")
flags.DEFINE_bool("part2", True, "Run part 2 (roberta-base geometry latency).")
flags.DEFINE_string("preset", None, "Part 1's preset directory (default: the cached sst2_classifier preset; "
                    "part 1 is skipped, with the reason, when it is not cached).")
flags.DEFINE_integer("dev_sentences", None, "Part 1: the first N dev sentences (default all 872; 96 with --quick).")
flags.DEFINE_integer("warmup_sentences", 8, "Part 1: untimed calls on the first N sentences before timing.")
flags.DEFINE_integer("blocks", None, "Part 1: the dev sentences are timed in this many consecutive blocks, each "
                     "through every engine in turn (default 4; 2 with --quick).")
flags.DEFINE_integer("calibration_size", None, "int8 calibration texts from SST-2 train (default 300; 50 with "
                     "--quick).")
flags.DEFINE_enum("geometry", None, ["base", "tiny"], "Part 2 geometry (default: base; tiny with --quick).")
flags.DEFINE_list("lengths", ["16", "32", "128"], "Part 2 sequence lengths (tokens, <s> and </s> included).")
flags.DEFINE_integer("min_calls", None, "Part 2: at least this many timed calls per case (default 20; 3 with "
                     "--quick)...")
flags.DEFINE_float("min_seconds", None, "...and at least this many seconds (default 2; 0 with --quick)...")
flags.DEFINE_integer("max_calls", 500, "...but no more calls than this.")
flags.DEFINE_integer("warmup_calls", 3, "Part 2: untimed calls per case before timing.")
flags.DEFINE_integer("base_calibration_size", None, "Part 2 int8 calibration texts (default 100, half of them "
                     "concatenations of up to ~128 tokens; 20 with --quick).")

FORM_NAMES = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}
ACCURACY_TARGETS = contract.TFLITE_ACCURACY_TARGET_POINTS  # max |accuracy - float32's|, points (written once)
SIZE_TARGET = 0.27  # dynamic and int8 file size / float32's
ROUNDS = 4  # part 2: each engine's calls per length are made in this many interleaved rounds
PAUSE_SECONDS = 0.3  # before each engine's block: the previous engine's spinning worker threads go idle
FLOAT32 = "TFLite float32"  # the reference of agreement, logit differences, sizes and accuracy drops
ORT_FP32, ORT_INT8 = "tokenizers + ORT fp32", "tokenizers + ORT int8"
BASE_ORT_FP32, BASE_ORT_INT8 = "ORT fp32", "ORT int8"
PERTURBATION = 0.02  # part 2's weights: serving_benchmark's
MAPPING_TOLERANCE = 1e-4  # torch vs roberta_tf logits of the converted SST-2 classifier
CHECK_SENTENCES = 16


def tflite_name(form):
    return f"TFLite {FORM_NAMES[form]}"


def _failure(e, what=""):
    return {"status": "failed", "reason": f"{what}{type(e).__name__}: {str(e)[:400]}"}


def export_ort_pair(torch_model, geometry, workdir, name, engine_names, artifacts, outcome):
    """`torch_model` as ONNX fp32 and its dynamic int8 quantization (the two ORT engines
    `engine_names`): paths into `artifacts`, export records (or the failure) into `outcome`."""
    fp32_name, int8_name = engine_names
    onnx_path = Path(workdir, f"{name}.onnx")
    start = time.perf_counter()
    try:
        exporter, errors = export_onnx(torch_model, onnx_path, geometry)
        artifacts[fp32_name] = onnx_path
        outcome["exports"][fp32_name] = {"status": "ok", "seconds": round(time.perf_counter() - start, 2),
                                         "bytes": onnx_path.stat().st_size, "exporter": exporter,
                                         "export_errors": errors}
        start = time.perf_counter()
        int8_path, info = quantize_int8(onnx_path, workdir, name=name)
        artifacts[int8_name] = int8_path
        outcome["exports"][int8_name] = {"status": "ok", "seconds": round(time.perf_counter() - start, 2),
                                         "bytes": int8_path.stat().st_size, **info}
    except Exception as e:  # noqa: BLE001 (the other engines still run; the failure is recorded)
        for engine_name in engine_names:
            outcome["exports"].setdefault(engine_name, _failure(e))
        logging.warning("ONNX export/quantization failed: %s", traceback.format_exc())


def _bytes_of(path):
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


# ----------------------------------------------------------------------------- what a .tflite file holds


def tflite_structure(path, signature):
    """A coarse profile of a .tflite file, read from its flatbuffer: the bytes of its constant
    buffers by tensor type (int32/int64 constants are mostly the tokenizer's tables), the bytes
    stored more than once (identical buffers), the bytes of large (>= 1 MiB) constants of one
    type and shape found in several subgraphs beyond the first (one weight copied into each
    signature's subgraph, each copy quantized with its own ranges), the largest constants, and the ops of `signature`'s subgraph (count, QUANTIZE /
    DEQUANTIZE, FULLY_CONNECTED, BATCH_MATMUL)."""
    import collections
    import hashlib

    from tensorflow.lite.python import schema_py_generated as schema

    content = Path(path).read_bytes()
    model = schema.Model.GetRootAs(content, 0)
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    buffers = {}  # buffer index -> (type, bytes, digest, tensor name, shape, subgraph)
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            index = tensor.Buffer()
            if index == 0 or index in buffers:
                continue
            buffer = model.Buffers(index)
            if buffer.DataLength():
                data = buffer.DataAsNumpy()
            elif buffer.Offset() > 1:  # > 2 GB models keep buffers after the flatbuffer
                data = memoryview(content)[buffer.Offset(): buffer.Offset() + buffer.Size()]
            else:
                continue
            buffers[index] = (type_names.get(tensor.Type(), str(tensor.Type())), data.nbytes,
                              hashlib.sha1(data).digest(), tensor.Name().decode(),
                              tensor.ShapeAsNumpy().tolist() if tensor.ShapeLength() else [], g)
    by_type, seen, duplicated = collections.Counter(), set(), 0
    for dtype, size, digest, *_ in buffers.values():
        by_type[dtype] += size
        duplicated += size if (dtype, digest) in seen else 0
        seen.add((dtype, digest))
    # The same weight stored once per signature subgraph, each copy quantized with its own
    # ranges (so not identical): large constants of one type and shape in several subgraphs.
    groups = collections.defaultdict(list)
    for dtype, size, _, _, shape, g in buffers.values():
        if size >= 1 << 20:
            groups[dtype, tuple(shape)].append((g, size))
    per_subgraph_copies = sum(sum(size for _, size in members[1:]) for members in groups.values()
                              if len({g for g, _ in members}) > 1)
    largest = sorted(buffers.values(), key=lambda b: -b[1])[:6]
    subgraph_index = None
    for i in range(model.SignatureDefsLength()):
        if model.SignatureDefs(i).SignatureKey().decode() == signature:
            subgraph_index = model.SignatureDefs(i).SubgraphIndex()
    ops = collections.Counter()
    if subgraph_index is not None:
        from roberta_tf.export import tflite_ops

        ops.update(tflite_ops.operator_names(content)[subgraph_index])
    return {
        "file_bytes": len(content),
        "constant_bytes_by_type": dict(by_type.most_common()),
        "duplicated_constant_bytes": duplicated,
        "per_subgraph_copy_bytes": per_subgraph_copies,
        "largest_constants": [{"type": dtype, "bytes": size, "shape": shape, "subgraph": g, "name": name[:80]}
                              for dtype, size, _, name, shape, g in largest],
        "subgraphs": model.SubgraphsLength(),
        "signature_subgraph": subgraph_index,
        "signature_ops": sum(ops.values()),
        "signature_op_counts": {name: ops[name] for name in ("FULLY_CONNECTED", "BATCH_MATMUL", "QUANTIZE",
                                                             "DEQUANTIZE", "GATHER")},
    }


def profile_file(path, signature, inputs, threads):
    """`tflite_structure` plus `xnnpack_partitions` (None when it cannot be read)."""
    try:
        structure = tflite_structure(path, signature)
    except Exception as e:  # noqa: BLE001 (informative only)
        return _failure(e)
    structure["xnnpack_partitions"] = xnnpack_partitions(path, signature, structure["signature_subgraph"], inputs,
                                                         threads)
    return structure


def format_structures(exports, signature):
    """One line per TFLite file: its constants by type, per-subgraph copies, the signature's
    ops and XNNPACK partitions."""
    lines = [f"File profile (constant MB by type; copies of one weight in several subgraphs; {signature} ops: "
             "fully connected, batch matmul, quantize, dequantize; XNNPACK partitions after one call):"]
    for name, export in exports.items():
        structure = export.get("structure")
        if not structure or "file_bytes" not in structure:
            continue
        by_type = ", ".join(f"{dtype} {size / 1e6:.2f}" for dtype, size in structure["constant_bytes_by_type"].items()
                            if size >= 1e4)
        ops = structure["signature_op_counts"]
        lines.append(f"  {name:<15} {structure['file_bytes'] / 1e6:8.2f} MB: {by_type}; copies "
                     f"{structure['per_subgraph_copy_bytes'] / 1e6:.2f} MB; {structure['signature_ops']} ops "
                     f"({ops['FULLY_CONNECTED']} FC, {ops['BATCH_MATMUL']} BMM, {ops['QUANTIZE']} Q, "
                     f"{ops['DEQUANTIZE']} DQ); XNNPACK partitions "
                     f"{report.format_value(structure.get('xnnpack_partitions'))}")
    return "\n".join(lines)


def xnnpack_partitions(path, signature, subgraph_index, inputs, threads):
    """DELEGATE nodes in the signature's subgraph after one invocation (each a stretch of ops
    XNNPACK runs; the ops between them run on TFLite's builtin kernels). Uses the interpreter's
    private `_get_ops_details`, which sees subgraph 0 only: None for another subgraph."""
    if subgraph_index != 0:
        return None
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path), num_threads=threads)
        interpreter.get_signature_runner(signature)(**inputs)
        return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    except Exception as e:  # noqa: BLE001 (informative only)
        logging.info("xnnpack_partitions(%s): %s", path, e)
        return None


# ----------------------------------------------------------------------------- the SST-2 classifier in torch


def hf_state_dict(classifier):
    """roberta_tf's named weights -> a Hugging Face `RobertaForSequenceClassification` state
    dict (numpy): the inverse of `roberta_tf.converters.huggingface.named_weights`. Keras
    kernels [in, out] become torch weights [out, in]; the fused QKV kernel is split in q, k, v
    order; the token-type embedding is zero (the converter folds it into the positions)."""
    w = {name: np.asarray(variable.numpy()) for name, variable in classifier.named_weights().items()}
    state = {}

    def linear(target, source):
        state[f"{target}.weight"] = np.ascontiguousarray(w[f"{source}.kernel"].T)
        state[f"{target}.bias"] = w[f"{source}.bias"]

    def norm(target, source):
        state[f"{target}.weight"], state[f"{target}.bias"] = w[f"{source}.gamma"], w[f"{source}.beta"]

    hidden = w["embeddings.token_embedding"].shape[1]
    state["roberta.embeddings.word_embeddings.weight"] = w["embeddings.token_embedding"]
    state["roberta.embeddings.position_embeddings.weight"] = w["embeddings.position_embedding"]
    state["roberta.embeddings.token_type_embeddings.weight"] = np.zeros([1, hidden], np.float32)
    norm("roberta.embeddings.LayerNorm", "embeddings.layer_norm")
    num_layers = classifier.backbone.num_layers
    for i in range(num_layers):
        hf, tf_ = f"roberta.encoder.layer.{i}.", f"layers.{i}."
        kernels = np.split(w[tf_ + "attention.qkv.kernel"], 3, axis=1)
        biases = np.split(w[tf_ + "attention.qkv.bias"], 3)
        for name, kernel, bias in zip(("query", "key", "value"), kernels, biases):
            state[f"{hf}attention.self.{name}.weight"] = np.ascontiguousarray(kernel.T)
            state[f"{hf}attention.self.{name}.bias"] = bias
        linear(hf + "attention.output.dense", tf_ + "attention.output")
        norm(hf + "attention.output.LayerNorm", tf_ + "attention_layer_norm")
        linear(hf + "intermediate.dense", tf_ + "feedforward.intermediate")
        linear(hf + "output.dense", tf_ + "feedforward.output")
        norm(hf + "output.LayerNorm", tf_ + "feedforward_layer_norm")
    linear("classifier.dense", "head.pooled_dense")
    linear("classifier.out_proj", "head.logits")
    return state, w


def torch_from_preset(preset, hf, texts):
    """The preset's classifier as a transformers `RobertaForSequenceClassification` (eval
    mode) and the checks that it holds the same weights. Raises RuntimeError if the converter
    does not map it back to identical arrays or the logits differ by more than
    MAPPING_TOLERANCE on `texts` (a padded batch of `tokenizers` ids)."""
    import torch
    import transformers

    from roberta_tf.converters import huggingface
    from roberta_tf.models import RobertaTextClassifier

    classifier = RobertaTextClassifier.from_preset(str(preset), preprocessor=None)
    config = classifier.backbone.get_config()
    expected = {"activation": "gelu", "layer_norm_epsilon": 1e-5, "normalize_before": False,
                "embedding_layer_norm": True}
    if any(config[key] != value for key, value in expected.items()):
        raise RuntimeError(f"hf_config describes a post-LN exact-GELU RoBERTa; the preset has "
                           f"{ {key: config[key] for key in expected} }")
    geometry = {key: config[key] for key in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                                             "intermediate_dim", "max_sequence_length")}
    model = transformers.RobertaForSequenceClassification(hf_config(geometry, classifier.num_classes))
    state, named = hf_state_dict(classifier)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()},
                                                strict=False)
    parameters = dict(model.named_parameters())
    if unexpected or any(key in parameters for key in missing):
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    model.eval()
    # 1. The converter maps the torch model's state back to exactly the preset's arrays.
    back = huggingface.named_weights({k: v.detach().numpy() for k, v in model.state_dict().items()},
                                     config["num_layers"])
    if set(back) != set(named) or not all(np.array_equal(back[k], named[k]) for k in named):
        differ = sorted(k for k in set(back) | set(named) if k not in back or k not in named
                        or not np.array_equal(back[k], named[k]))
        raise RuntimeError(f"the converter does not map the torch weights back to the preset's: {differ[:10]}")
    # 2. Same logits on real sentences (a padded batch).
    encodings = hf.encode_batch(list(texts))
    ids = np.array([e.ids for e in encodings], np.int64)
    mask = np.array([e.attention_mask for e in encodings], np.int64)
    with torch.inference_mode():
        torch_logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    tf_logits = classifier({"token_ids": ids.astype(np.int32), "padding_mask": mask.astype(np.int32)},
                           training=False).numpy()
    difference = float(np.max(np.abs(torch_logits - tf_logits)))
    check = {"sentences": len(texts), "max_abs_logit_diff": difference, "tolerance": MAPPING_TOLERANCE,
             "roundtrip_identical": True, "padded_length": int(ids.shape[1])}
    if not difference <= MAPPING_TOLERANCE:
        raise RuntimeError(f"torch logits differ from roberta_tf's by {difference:.2e} (> {MAPPING_TOLERANCE}) "
                           "on the same ids: the weight mapping is wrong")
    return model, geometry, check


# ----------------------------------------------------------------------------- part 1 engines


@dataclasses.dataclass
class Engine:
    """One way to logits. Part 1: `run(text)` -> (logits [classes], tokenization seconds
    measured inside the call or None); `tokenize(text)` -> the ids with <s> and </s>, for
    engines whose tokenizer runs inside the model (timed separately); `close()` frees it.
    Part 2: `run(ids, mask)` -> logits [1, classes]."""

    name: str
    run: Callable[[str], Any]
    tokenize: Optional[Callable[[str], list]] = None
    close: Callable[[], None] = lambda: None
    info: dict = dataclasses.field(default_factory=dict)


def tflite_tokenizer(tokenizer, max_tokens, threads):
    """A tokenizer-only TFLite model of the classifier's tokenizer (the same integer-op BPE and
    truncation), called like TextClassifier calls its model: a power-of-two int32 buffer whose
    tail is -1. Returns (tokenize(text) -> ids with <s>/</s>, export seconds)."""
    from ai_edge_litert.interpreter import Interpreter

    from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite
    from roberta_tf.lite.text_classifier import MIN_BUFFER_BYTES, PADDING

    start = time.perf_counter()
    runner = Interpreter(model_content=export_tokenizer_tflite(tokenizer, max_tokens),
                         num_threads=threads).get_signature_runner()
    seconds = time.perf_counter() - start
    buffers = {}

    def tokenize(text):
        raw = np.frombuffer(text.encode("utf-8"), np.uint8)
        size = max(MIN_BUFFER_BYTES, 1 << int(raw.size - 1).bit_length())
        buffer = buffers.setdefault(size, np.full(size, PADDING, np.int32))
        buffer[: raw.size] = raw
        buffer[raw.size:] = PADDING
        ids = runner(utf8_bytes=buffer)["token_ids"]
        return [tokenizer.start_token_id, *ids.tolist(), tokenizer.end_token_id]

    return tokenize, seconds


def tflite_engine(name, path, threads, tokenize):
    from roberta_tf.lite.text_classifier import TextClassifier

    classifier = TextClassifier(path, num_threads=threads)

    def run(text):
        return classifier.classify([text]).logits[0], None

    return Engine(name, run, tokenize, info={"call": f"TextClassifier(path, num_threads={threads}).classify([text])"
                                                     ".logits[0]"})


def saved_model_engine(name, path):
    loaded = tf.saved_model.load(str(path))
    classify, tokenize_signature = loaded.signatures["serving_default"], loaded.signatures["tokenize"]

    def run(text):
        return classify(text=tf.constant([text]))["logits"].numpy()[0], None

    def tokenize(text):
        out = tokenize_signature(text=tf.constant([text]))
        return out["token_ids"].numpy()[0][out["padding_mask"].numpy()[0] == 1].tolist()

    engine = Engine(name, run, tokenize, info={"call": 'tf.saved_model.load(path).signatures["serving_default"]'
                                                       '(text=tf.constant([text]))["logits"]'})
    engine.close = lambda: setattr(engine, "_loaded", None)
    engine._loaded = loaded
    return engine


def ort_engine(name, hf, path, threads):
    session = ort_session(path, threads)
    input_names = [i.name for i in session.get_inputs()]
    output_names = [session.get_outputs()[0].name]

    def run(text):
        start = time.perf_counter()
        encoding = hf.encode(text)
        ids = np.array([encoding.ids], np.int64)
        mask = np.array([encoding.attention_mask], np.int64)
        tokenize_seconds = time.perf_counter() - start
        return session.run(output_names, dict(zip(input_names, (ids, mask))))[0][0], tokenize_seconds

    return Engine(name, run, info={"call": "tokenizers encode(text) -> int64 [1, L] -> InferenceSession.run "
                                           "(ORT_ENABLE_ALL, sequential)", "providers": session.get_providers()})


class LoadTotal:
    """Sums LoadMeter readings of one engine over its blocks: cores other processes used on
    average (weighted by time), steal likewise."""

    def __init__(self):
        self.seconds = self.other = self.steal = 0.0
        self.known = True

    def add(self, load):
        self.seconds += load.seconds
        if load.other_cores is None:
            self.known = False
        else:
            self.other += load.other_cores * load.seconds
            self.steal += load.steal_cores * load.seconds

    def summary(self):
        if not self.known or not self.seconds:
            return {"other_load_cores": None, "steal_cores": None}
        return {"other_load_cores": self.other / self.seconds, "steal_cores": self.steal / self.seconds}


def interleaved(engines, blocks, run_block):
    """Runs `run_block(engine, block)` for every block and engine, the engines in turn within
    each block (their order rotated from block to block) with a pause before each, so that
    load from other processes that comes and goes falls on every engine alike and no engine's
    worker threads still spin while the next one runs. An engine whose block raises is
    dropped from the later blocks. Returns {engine name: (LoadTotal, failure or None)}."""
    state = {engine.name: [LoadTotal(), None] for engine in engines}
    for b, block in enumerate(blocks):
        active = [e for e in engines if state[e.name][1] is None]
        shift = b % max(1, len(active))
        for engine in active[shift:] + active[:shift]:
            time.sleep(PAUSE_SECONDS)
            try:
                with report.LoadMeter() as load:
                    run_block(engine, block)
                state[engine.name][0].add(load)
            except Exception as e:  # noqa: BLE001 (the engine's row says why; the others go on)
                state[engine.name][1] = _failure(e)
                logging.warning("%s failed: %s", engine.name, traceback.format_exc())
    return {name: tuple(value) for name, value in state.items()}


def measure_sentences(engines, texts, warmup, blocks, reference_ids):
    """Every engine's untimed calls on the first `warmup` texts; then the texts in `blocks`
    consecutive blocks, every block through every engine (`interleaved`), one text per call,
    each call timed (each block starts with one untimed call); then, per engine with `tokenize`, one separately timed tokenization pass
    whose ids are compared with `reference_ids` (tokenizers'). Returns {name: (row, logits)}."""
    calls = {e.name: [None] * len(texts) for e in engines}
    inside = {e.name: [None] * len(texts) for e in engines}
    logits = {e.name: [None] * len(texts) for e in engines}
    failed = {}
    for engine in engines:
        try:
            for text in texts[:warmup]:
                engine.run(text)
        except Exception as e:  # noqa: BLE001
            failed[engine.name] = _failure(e, "warm-up: ")
    engines = [e for e in engines if e.name not in failed]

    def run_block(engine, indices):
        engine.run(texts[indices[0]])  # untimed: wakes the engine's threads after the pause
        for i in indices:
            start = time.perf_counter()
            values, tokenize_seconds = engine.run(texts[i])
            calls[engine.name][i] = time.perf_counter() - start
            inside[engine.name][i] = tokenize_seconds
            logits[engine.name][i] = np.asarray(values, np.float32)

    index_blocks = [list(b) for b in np.array_split(np.arange(len(texts)), blocks) if len(b)]
    outcome = interleaved(engines, index_blocks, run_block)
    results = {name: (failure, None) for name, failure in failed.items()}
    for engine in engines:
        load, failure = outcome[engine.name]
        if failure is not None:
            results[engine.name] = (failure, None)
            continue
        times, values = calls[engine.name], np.stack(logits[engine.name])
        if values.shape != (len(texts), NUM_CLASSES) or not np.all(np.isfinite(values)):
            results[engine.name] = ({"status": "failed", "reason": f"logits of shape {values.shape}, finite: "
                                                                   f"{bool(np.all(np.isfinite(values)))}"}, None)
            continue
        m = {"status": "ok", "sentences": len(texts), "blocks": len(index_blocks), "warmup_sentences": warmup,
             "median_ms": 1000 * statistics.median(times), "p90_ms": 1000 * report.percentile(times, 90),
             "mean_ms": 1000 * statistics.mean(times), "max_ms": 1000 * max(times), **load.summary(),
             "timed_seconds": load.seconds, "call_ms": [round(1000 * t, 3) for t in times]}
        if engine.tokenize is None:
            m["tokenize_source"] = "inside each call"
            tokenize_times = inside[engine.name]
        else:
            m["tokenize_source"] = "separate pass"
            for text in texts[:warmup]:
                engine.tokenize(text)
            tokenize_times, ids = [], []
            for text in texts:
                start = time.perf_counter()
                ids.append(engine.tokenize(text))
                tokenize_times.append(time.perf_counter() - start)
            mismatches = [i for i, (a, b) in enumerate(zip(ids, reference_ids)) if list(a) != list(b)]
            m["ids_differ_from_tokenizers"] = len(mismatches)
            m["ids_differ_examples"] = [texts[i] for i in mismatches[:5]]
        m["tokenize_median_ms"] = 1000 * statistics.median(tokenize_times)
        m["tokenize_share"] = sum(tokenize_times) / sum(times)
        # The rest (encoder, head, glue), estimated as the difference of the two medians.
        m["rest_median_ms"] = m["median_ms"] - m["tokenize_median_ms"]
        results[engine.name] = (m, values)
    return results


# ----------------------------------------------------------------------------- part 1


def _sst2_preset():
    """(preset dir, training record, None) or (None, None, why not)."""
    if FLAGS.preset:
        if not Path(FLAGS.preset).is_dir():
            return None, None, f"no preset directory: {FLAGS.preset}"
        return Path(FLAGS.preset), sst2_classifier.read_training_record(FLAGS.preset), None
    path = sst2_classifier.default_cache_dir()
    if not sst2_classifier.is_current(path):
        return None, None, (f"no current trained SST-2 preset at {path}: run `python -m benchmarks.sst2_classifier` "
                            "first (trains it, minutes), or pass --preset DIR")
    return Path(path), sst2_classifier.read_training_record(path), None


def part1(data_dir, threads, forms, config, workdir):
    """The SST-2 classifier in every engine (see the module docstring)."""
    from roberta_tf.export import tflite
    from roberta_tf.export.saved_model import export_preset
    from roberta_tf.models import RobertaTokenizer

    preset, training, reason = _sst2_preset()
    if preset is None:
        return {"status": "skipped", "reason": reason}
    texts, labels = load_sst2("dev", data_dir)
    texts, labels = texts[: config["dev_sentences"]], labels[: config["dev_sentences"]]
    # The truncation the exports apply (export_preset_tflite's default), given to tokenizers too.
    sequence_length = json.loads((preset / "config.json").read_text(encoding="utf-8"))["preprocessor"]["sequence_length"]
    outcome = {"status": "ok", "preset": str(preset), "sentences": len(texts), "sequence_length": sequence_length,
               "preset_training": {k: (training or {}).get(k) for k in ("name", "recipe_version", "dev", "date",
                                                                       "git_commit")},
               "exports": {}, "engines": []}
    workdir = Path(workdir, "part1")
    workdir.mkdir()
    set_torch_threads(threads)
    hf = hf_tokenizer(data_dir, max_length=sequence_length)
    reference_ids = [e.ids for e in (hf.encode(t) for t in texts)]

    # The same weights in torch, checked first: a wrong mapping stops the run before any export.
    start = time.perf_counter()
    torch_model, geometry, outcome["mapping_check"] = torch_from_preset(preset, hf, texts[:CHECK_SENTENCES])
    outcome["mapping_check"]["seconds"] = round(time.perf_counter() - start, 2)
    outcome["geometry"] = geometry
    logging.info("Torch copy of the preset: logits within %.1e of roberta_tf's", outcome["mapping_check"]
                 ["max_abs_logit_diff"])

    # Exports.
    calibration = tflite.read_calibration_texts(Path(data_dir, "sst2", "train.tsv"), column=0,
                                                size=config["calibration_size"])
    outcome["calibration"] = {"source": "SST-2 train.tsv column 0, read_calibration_texts (seeded reservoir)",
                              "texts": len(calibration),
                              "includes_header_line": b"sentence" in calibration}
    artifacts = {}  # engine name -> path
    for form in forms:
        name = tflite_name(form)
        start = time.perf_counter()
        try:
            result = tflite.export_preset_tflite(
                preset, Path(workdir, f"sst2-{form}.tflite"), inputs="utf8_bytes", quantize=form,
                calibration_texts=calibration if form == "int8" else None, num_threads=threads, overwrite=True)
        except Exception as e:  # noqa: BLE001 (a failed export is a row, not the end of the run)
            outcome["exports"][name] = _failure(e)
            logging.warning("export %s failed: %s", name, traceback.format_exc())
            continue
        artifacts[name] = result.path
        outcome["exports"][name] = {
            "status": "ok", "seconds": round(time.perf_counter() - start, 2), "bytes": result.size_bytes,
            "quantization": result.metadata.get("quantization"), "verification": result.metadata.get("verification"),
            "operators": len(result.metadata.get("operators") or []),
            "structure": profile_file(result.path, "classify", {"utf8_bytes": tflite.utf8_array(texts[0])}, threads),
        }
        logging.info("Exported %s in %.1f s (%.1f MB)", name, time.perf_counter() - start, result.size_bytes / 1e6)
        gc.collect()
    name = "SavedModel float32"
    start = time.perf_counter()
    try:
        result = export_preset(preset, Path(workdir, "saved_model"), 1, warmup_requests=False)
        artifacts[name] = result.path
        outcome["exports"][name] = {
            "status": "ok", "seconds": round(time.perf_counter() - start, 2),
            "bytes": _bytes_of(Path(result.path, "saved_model.pb")) + _bytes_of(Path(result.path, "variables")),
            "size": "saved_model.pb + variables/", "all_files_bytes": _bytes_of(result.path)}
    except Exception as e:  # noqa: BLE001
        outcome["exports"][name] = _failure(e)
        logging.warning("export %s failed: %s", name, traceback.format_exc())
    export_ort_pair(torch_model, geometry, workdir, "sst2", (ORT_FP32, ORT_INT8), artifacts, outcome)
    del torch_model
    gc.collect()

    # Tokenizer-only TFLite model: the tokenizer's share of the TFLite calls.
    tokenizer = RobertaTokenizer.from_preset(str(preset))
    try:
        tokenize_tflite, seconds = tflite_tokenizer(tokenizer, sequence_length - 2, threads)
        outcome["tflite_tokenizer_export_seconds"] = round(seconds, 2)
    except Exception as e:  # noqa: BLE001
        tokenize_tflite = None
        outcome["tflite_tokenizer"] = _failure(e)

    # Measure: every engine loaded, the dev sentences in blocks through each engine in turn.
    builders = {tflite_name(form): (lambda path, name=tflite_name(form): tflite_engine(name, path, threads,
                                                                                        tokenize_tflite))
                for form in forms}
    builders["SavedModel float32"] = lambda path: saved_model_engine("SavedModel float32", path)
    builders[ORT_FP32] = lambda path: ort_engine(ORT_FP32, hf, path, threads)
    builders[ORT_INT8] = lambda path: ort_engine(ORT_INT8, hf, path, threads)
    rows, engines = {}, []
    for name, build in builders.items():
        export = outcome["exports"].get(name) or {"status": "failed", "reason": "not exported"}
        rows[name] = {"engine": name, "export": export}
        if export.get("status") != "ok":
            rows[name].update(status="failed", reason=f"export: {export.get('reason')}")
            continue
        try:
            start = time.perf_counter()
            engines.append(build(artifacts[name]))
            rows[name].update(load_seconds=round(time.perf_counter() - start, 2), info=engines[-1].info)
        except Exception as e:  # noqa: BLE001
            rows[name].update(_failure(e, "load: "))
            logging.warning("loading %s failed: %s", name, traceback.format_exc())
    logits = {}
    for name, (m, values) in measure_sentences(engines, texts, config["warmup_sentences"], config["blocks"],
                                               reference_ids).items():
        rows[name].update(m)
        if values is not None:
            logits[name] = values
            logging.info("%-22s median %.2f ms, p90 %.2f ms, tokenizer %.2f ms (others: %s cores)", name,
                         m["median_ms"], m["p90_ms"], m["tokenize_median_ms"],
                         report.format_value(m["other_load_cores"], ".2f"))
    for engine in engines:
        engine.close()
    del engines
    gc.collect()
    outcome["engines"] = list(rows.values())

    # Accuracy, agreement and differences with float32 TFLite; sizes.
    base = logits.get(FLOAT32)
    base_bytes = (outcome["exports"].get(FLOAT32) or {}).get("bytes")
    for row in outcome["engines"]:
        if row.get("status") != "ok":
            continue
        values = logits[row["engine"]]
        predicted = np.argmax(values, -1)
        row["accuracy"] = float(np.mean(predicted == labels))
        row["bytes"] = row["export"]["bytes"]
        row["export_seconds"] = row["export"]["seconds"]
        if base_bytes:
            row["size_vs_float32"] = row["bytes"] / base_bytes
        if base is not None:
            agree = predicted == np.argmax(base, -1)
            row["label_agreement"] = float(np.mean(agree))
            row["disagreements"] = int(np.sum(~agree))
            row["disagreeing_sentences"] = [texts[i] for i in np.flatnonzero(~agree)[:10]]
            row["max_abs_logit_diff"] = float(np.max(np.abs(values - base)))
            row["mean_abs_logit_diff"] = float(np.mean(np.abs(values - base)))
        row["first_logits"] = values[:3].tolist()
    add_ratios(outcome["engines"], ORT_FP32, ORT_INT8)
    float32 = next((r for r in outcome["engines"] if r["engine"] == FLOAT32 and r.get("status") == "ok"), None)
    if float32:
        for row in outcome["engines"]:
            if row.get("status") == "ok":
                row["accuracy_minus_float32_points"] = 100 * (row["accuracy"] - float32["accuracy"])
    return outcome


def add_ratios(rows, fp32_name, int8_name, by=None):
    """Median and p90 latency over ORT fp32's, ORT int8's and float32 TFLite's (< 1: faster)."""
    def find(name):
        return next((r for r in rows if r["engine"] == name and r.get("status") == "ok"
                     and (by is None or r[by[0]] == by[1])), None)

    for row in rows:
        if row.get("status") != "ok" or (by is not None and row[by[0]] != by[1]):
            continue
        ratios = {}
        for label, ref in (("ort_fp32", find(fp32_name)), ("ort_int8", find(int8_name)),
                           ("tflite_float32", find(FLOAT32))):
            if ref is not None:
                ratios[f"median_vs_{label}"] = row["median_ms"] / ref["median_ms"]
                ratios[f"p90_vs_{label}"] = row["p90_ms"] / ref["p90_ms"]
                if row.get("rest_median_ms") and ref.get("rest_median_ms"):
                    ratios[f"rest_median_vs_{label}"] = row["rest_median_ms"] / ref["rest_median_ms"]
        row["ratios"] = ratios


# ----------------------------------------------------------------------------- part 2


def base_calibration_texts(data_dir, size, seed=SEED):
    """`size` texts for int8 calibration of the token_ids model: half SST-2 train sentences
    (`read_calibration_texts`), half concatenations of them of ~10-100 words (up to ~128
    tokens), so the calibrated ranges cover the lengths timed."""
    from roberta_tf.export import tflite

    sentences = tflite.read_calibration_texts(Path(data_dir, "sst2", "train.tsv"), column=0, size=max(size, 2))
    rng = random.Random(seed)
    short = sentences[: size - size // 2]
    long = []
    for i in range(size // 2):
        words = (10, 20, 40, 70, 100)[i % 5]
        parts = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(sentences))
        long.append(b" ".join(parts))
    return short + long


def part2(data_dir, threads, forms, geometry_name, config, workdir):
    """The roberta-base geometry's latency per form and length (see the module docstring)."""
    from roberta_tf.export import tflite

    geometry = GEOMETRIES[geometry_name]
    lengths = config["lengths"]
    outcome = {"status": "ok", "geometry_name": geometry_name, "geometry": geometry, "lengths": lengths,
               "weights": f"HF init (seed {SEED}) + N(0, {PERTURBATION}) noise", "exports": {}, "engines": []}
    workdir = Path(workdir, "part2")
    workdir.mkdir()
    set_torch_threads(threads)
    start = time.perf_counter()
    torch_model = torch_classifier(geometry, perturbation=PERTURBATION)
    classifier = roberta_tf_classifier(torch_model)
    tokenizer = roberta_tf_tokenizer(data_dir)
    outcome["build_seconds"] = round(time.perf_counter() - start, 2)
    outcome["params"] = int(classifier.count_params())
    calibration = base_calibration_texts(data_dir, config["base_calibration_size"])
    token_counts = [len(tokenizer(tf.constant([t]))[0]) for t in calibration] if calibration else []
    outcome["calibration"] = {"texts": len(calibration), "tokens_min": min(token_counts),
                              "tokens_median": statistics.median(token_counts), "tokens_max": max(token_counts)}
    artifacts = {}
    for form in forms:
        name = tflite_name(form)
        start = time.perf_counter()
        try:
            result = tflite.export_tflite(classifier, tokenizer, Path(workdir, f"base-{form}.tflite"),
                                          inputs="token_ids", quantize=form, sequence_length=512,
                                          calibration_texts=calibration if form == "int8" else None,
                                          num_threads=threads, overwrite=True)
        except Exception as e:  # noqa: BLE001
            outcome["exports"][name] = _failure(e)
            logging.warning("export %s failed: %s", name, traceback.format_exc())
            gc.collect()
            continue
        artifacts[name] = result.path
        ids, mask = make_inputs(geometry, 1, 16)
        outcome["exports"][name] = {
            "status": "ok", "seconds": round(time.perf_counter() - start, 2), "bytes": result.size_bytes,
            "verification": result.metadata.get("verification"), "quantization": result.metadata.get("quantization"),
            "structure": profile_file(result.path, "classify_token_ids", {"token_ids": ids.astype(np.int32),
                                                                          "padding_mask": mask.astype(np.int32)},
                                      threads),
        }
        logging.info("Exported base %s in %.0f s (%.0f MB)", name, time.perf_counter() - start,
                     result.size_bytes / 1e6)
        gc.collect()
    del classifier
    gc.collect()
    export_ort_pair(torch_model, geometry, workdir, "base", (BASE_ORT_FP32, BASE_ORT_INT8), artifacts, outcome)
    del torch_model
    gc.collect()

    names = [tflite_name(form) for form in forms] + [BASE_ORT_FP32, BASE_ORT_INT8]
    base_bytes = (outcome["exports"].get(FLOAT32) or {}).get("bytes")
    failures, engines = {}, []
    for name in names:
        export = outcome["exports"].get(name) or {"status": "failed", "reason": "not exported"}
        if export.get("status") != "ok":
            failures[name] = {"status": "failed", "reason": f"export: {export.get('reason')}"}
            continue
        try:
            run = (ort_runner if name.startswith("ORT") else tflite_runner)(artifacts[name], threads)
            engines.append(Engine(name, run))
        except Exception as e:  # noqa: BLE001
            failures[name] = _failure(e, "load: ")
    logits = {}
    for length in lengths:
        measured = measure_calls(engines, *make_inputs(geometry, 1, length), config)
        for name in names:
            export = outcome["exports"].get(name) or {}
            row = {"engine": name, "length": length, "bytes": export.get("bytes"),
                   "export_seconds": export.get("seconds"),
                   "size_vs_float32": export["bytes"] / base_bytes if base_bytes and export.get("bytes") else None}
            m, values = measured.get(name) or (failures[name], None)
            row.update(m)
            if values is not None:
                logits[name, length] = values
                logging.info("base %-15s %4d tokens: median %.2f ms, p90 %.2f ms over %d calls (others: %s cores)",
                             name, length, m["median_ms"], m["p90_ms"], m["calls"],
                             report.format_value(m["other_load_cores"], ".2f"))
            outcome["engines"].append(row)
    del engines
    gc.collect()
    for row in outcome["engines"]:
        if row.get("status") != "ok":
            continue
        key = (row["engine"], row["length"])
        for label, ref in (("ort_fp32", BASE_ORT_FP32), ("tflite_float32", FLOAT32)):
            if (ref, row["length"]) in logits:
                row[f"max_abs_logit_diff_vs_{label}"] = float(np.max(np.abs(logits[key] - logits[ref, row["length"]])))
    for length in lengths:
        add_ratios(outcome["engines"], BASE_ORT_FP32, BASE_ORT_INT8, by=("length", length))
    return outcome


def tflite_runner(path, threads):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner("classify_token_ids")
    return lambda ids, mask: runner(token_ids=ids.astype(np.int32), padding_mask=mask.astype(np.int32))["logits"]


def ort_runner(path, threads):
    session = ort_session(path, threads)
    input_names = [i.name for i in session.get_inputs()]
    output_names = [session.get_outputs()[0].name]
    return lambda ids, mask: session.run(output_names, dict(zip(input_names, (ids, mask))))[0]


def measure_calls(engines, ids, mask, config):
    """One input (token ids [1, L]) through every engine: `warmup_calls` untimed calls each
    (the first at a new length re-plans the interpreter), whose time sets how many calls the
    engine needs for `min_calls` and `min_seconds` (at most `max_calls`); those calls are made
    in ROUNDS rounds, every round through every engine in turn (`interleaved`), each round
    starting with one untimed call. Returns
    {name: (row, logits)}."""
    results, needed, active = {}, {}, []
    for engine in engines:
        try:
            seconds = []
            for _ in range(max(1, config["warmup_calls"])):
                start = time.perf_counter()
                logits = engine.run(ids, mask)
                seconds.append(time.perf_counter() - start)
            seconds = min(seconds)  # the first call at a new length re-plans: not a typical call
            if logits.shape != (1, NUM_CLASSES) or not np.all(np.isfinite(logits)):
                raise AssertionError(f"logits of shape {logits.shape}, finite: {bool(np.all(np.isfinite(logits)))}")
        except Exception as e:  # noqa: BLE001
            results[engine.name] = (_failure(e, "warm-up: "), None)
            continue
        calls = max(config["min_calls"], int(np.ceil(config["min_seconds"] / max(seconds, 1e-6))))
        needed[engine.name] = -(-min(calls, config["max_calls"]) // ROUNDS)  # calls per round
        results[engine.name] = (None, np.asarray(logits, np.float32))
        active.append(engine)
    times = {engine.name: [] for engine in active}

    def run_round(engine, _):
        engine.run(ids, mask)  # untimed: wakes the engine's threads after the pause
        for _ in range(needed[engine.name]):
            start = time.perf_counter()
            engine.run(ids, mask)
            times[engine.name].append(time.perf_counter() - start)

    for name, (load, failure) in interleaved(active, range(ROUNDS), run_round).items():
        if failure is not None:
            results[name] = (failure, None)
            continue
        t = times[name]
        results[name] = ({"status": "ok", "calls": len(t), "rounds": ROUNDS, "median_ms": 1000 * statistics.median(t),
                          "p90_ms": 1000 * report.percentile(t, 90), "mean_ms": 1000 * statistics.mean(t),
                          **load.summary(), "call_ms": [round(1000 * x, 3) for x in t]}, results[name][1])
    return results


# ----------------------------------------------------------------------------- targets and reporting


def check_targets(p1, p2):
    targets = []
    rows = {r["engine"]: r for r in (p1.get("engines") or []) if r.get("status") == "ok"}

    def value(name, key):
        return (rows.get(name) or {}).get(key)

    for form, bound in ACCURACY_TARGETS.items():
        name = tflite_name(form)
        drop = value(name, "accuracy_minus_float32_points")
        targets.append(report.target("|accuracy - float32's| (points)", None if drop is None else abs(drop), "<=",
                                     bound, engine=name, case="SST-2 dev"))
    for form in ("dynamic", "int8"):
        name = tflite_name(form)
        targets.append(report.target("file size / float32's", value(name, "size_vs_float32"), "<=", SIZE_TARGET,
                                     engine=name, case="SST-2 model"))
    latency = [(FLOAT32, "ort_fp32", ORT_FP32, 1.0), (tflite_name("dynamic"), "ort_int8", ORT_INT8, 1.0),
               (tflite_name("int8"), "ort_int8", ORT_INT8, 0.8)]
    for name, ref, ref_name, bound in latency:
        ratio = ((rows.get(name) or {}).get("ratios") or {}).get(f"median_vs_{ref}")
        targets.append(report.target(f"b1 median latency / {ref_name}'s", ratio, "<=", bound, engine=name,
                                     case="SST-2 dev"))
    base_rows = [r for r in (p2.get("engines") or []) if r.get("status") == "ok"]
    for length in p2.get("lengths") or []:
        by_name = {r["engine"]: r for r in base_rows if r["length"] == length}
        for name, ref, ref_name, bound in latency:
            ref_name = ref_name.replace("tokenizers + ", "")
            ratio = ((by_name.get(name) or {}).get("ratios") or {}).get(f"median_vs_{ref}")
            targets.append(report.target(f"b1 median latency / {ref_name}'s", ratio, "<=", bound, engine=name,
                                         case=f"{p2['geometry_name']} x{length}", binding=False))
    return targets


def _ratio(key):
    return lambda row: (row.get("ratios") or {}).get(key)


def _percent(key):
    return lambda row: None if row.get(key) is None else 100 * row[key]


Column = report.Column
PART1_TABLE = [
    Column("engine", 22, "engine", align="<"), report.SEPARATOR,
    Column("export s", 8, "export_seconds", ".1f"), Column("MB", 6, lambda r: r.get("bytes") and r["bytes"] / 1e6,
                                                           ".2f"),
    Column("% f32", 6, _percent("size_vs_float32"), ".1f"), report.SEPARATOR,
    Column("accuracy", 8, "accuracy", ".4f"), Column("d pts", 6, "accuracy_minus_float32_points", "+.2f"),
    Column("agree", 6, "label_agreement", ".4f"), Column("differ", 6, "disagreements", "d"),
    Column("max|d| f32", 10, "max_abs_logit_diff", ".2e"), report.SEPARATOR,
    Column("med ms", 7, "median_ms", ".2f"), Column("p90 ms", 7, "p90_ms", ".2f"),
    Column("tok ms", 6, "tokenize_median_ms", ".2f"), Column("tok %", 5, _percent("tokenize_share"), ".1f"),
    Column("rest ms", 7, "rest_median_ms", ".2f"),
    Column("/ORT f32", 8, _ratio("median_vs_ort_fp32"), ".2f"), Column("/ORT i8", 7, _ratio("median_vs_ort_int8"), ".2f"),
    Column("others", 6, "other_load_cores", ".2f"),
]
PART2_TABLE = [
    Column("tokens", 6, "length", "d"), Column("engine", 15, "engine", align="<"), report.SEPARATOR,
    Column("med ms", 8, "median_ms", ".2f"), Column("p90 ms", 8, "p90_ms", ".2f"), Column("calls", 5, "calls", "d"),
    Column("/ORT f32", 8, _ratio("median_vs_ort_fp32"), ".2f"), Column("/ORT i8", 7, _ratio("median_vs_ort_int8"), ".2f"),
    Column("/TFL f32", 8, _ratio("median_vs_tflite_float32"), ".2f"),
    Column("max|d| ORT f32", 14, "max_abs_logit_diff_vs_ort_fp32", ".2e"), Column("others", 6, "other_load_cores", ".2f"),
]
PART2_EXPORTS = [
    Column("engine", 15, "engine", align="<"), Column("export s", 8, "seconds", ".1f"),
    Column("MB", 8, lambda r: r.get("bytes") and r["bytes"] / 1e6, ".1f"),
    Column("% f32", 6, _percent("size_vs_float32"), ".1f"),
    Column("verify agree", 12, lambda r: (r.get("verification") or {}).get("label_agreement"), ".2f"),
    Column("verify max|d|", 13, lambda r: (r.get("verification") or {}).get("max_abs_logit_difference"), ".2e"),
]


def format_part1(p1):
    if p1.get("status") != "ok":
        return f"Part 1 (SST-2 classifier): {p1.get('status')} ({p1.get('reason')})."
    check = p1["mapping_check"]
    cal = p1["calibration"]
    lines = [
        f"Part 1: {p1['preset']} ({p1['geometry']['num_layers']} layers x {p1['geometry']['hidden_dim']}, sequence "
        f"length {p1['sequence_length']}), {p1['sentences']} SST-2 dev sentences one per call, text in, logits out. "
        f"int8 calibrated on {cal['texts']} SST-2 train sentences. Torch copy: logits within "
        f"{check['max_abs_logit_diff']:.1e} of roberta_tf's on {check['sentences']} sentences, the converter maps it "
        f"back to identical arrays.",
        "% f32 = file size / TFLite float32's; d pts = accuracy - float32 TFLite's (points); agree / differ / max|d| "
        "f32 = labels and logits against TFLite float32; tok = tokenization (TFLite: a tokenizer-only TFLite model, "
        "SavedModel: its tokenize signature, each timed separately; ORT: tokenizers' encode inside the call); "
        "rest = med - tok (encoder, head, glue); /ORT = median latency over that engine's (< 1 faster); "
        "others = cores other processes used meanwhile.",
        report.format_table(PART1_TABLE, p1["engines"]),
    ]
    for row in p1["engines"]:
        if row.get("ids_differ_from_tokenizers"):
            lines.append(f"  {row['engine']}: ids differ from tokenizers' on {row['ids_differ_from_tokenizers']} "
                         f"sentences, e.g. {row['ids_differ_examples'][:2]}")
    equal = [r["engine"] for r in p1["engines"] if r.get("ids_differ_from_tokenizers") == 0]
    if equal:
        lines.append(f"  Token ids equal tokenizers' (truncated to {p1['sequence_length']}) on every sentence: "
                     + ", ".join(equal) + ".")
    lines.append(format_structures(p1["exports"], "classify"))
    return "\n".join(lines)


def format_part2(p2):
    if p2.get("status") != "ok":
        return f"Part 2 (roberta-base geometry): {p2.get('status')} ({p2.get('reason')})."
    g = p2["geometry"]
    cal = p2["calibration"]
    exports = []
    base_bytes = (p2["exports"].get(FLOAT32) or {}).get("bytes")
    for name, export in p2["exports"].items():
        row = {"engine": name, **export}
        if export.get("status") == "ok" and base_bytes:
            row["size_vs_float32"] = export["bytes"] / base_bytes
        exports.append(row)
    return "\n".join([
        f"Part 2: {p2['geometry_name']} geometry ({g['num_layers']} layers x {g['hidden_dim']}, {p2['params']:,} params, "
        f"random weights), batch 1, token_ids in; TFLite via the classify_token_ids signature runner, ORT on the same "
        f"ids. int8 calibrated on {cal['texts']} texts of {cal['tokens_min']}-{cal['tokens_max']} tokens "
        f"(median {cal['tokens_median']:.0f}).",
        report.format_table(PART2_EXPORTS, exports),
        format_structures(p2["exports"], "classify_token_ids"),
        report.format_table(PART2_TABLE, sorted(p2["engines"], key=lambda r: r["length"]), keys=2, group_by="length"),
    ])


def write_plot(p1, p2, path, title):
    rows1 = [r for r in (p1.get("engines") or []) if r.get("status") == "ok"]
    rows2 = [r for r in (p2.get("engines") or []) if r.get("status") == "ok"]
    if not rows1 and not rows2:
        return None

    def draw(fig, axes):
        ax = axes[0]
        if rows1:
            names = [r["engine"] for r in rows1]
            values = [r["accuracy"] for r in rows1]
            colors = ["tab:blue" if n.startswith("TFLite") else "tab:green" if n.startswith("Saved") else "tab:orange"
                      for n in names]
            bars = ax.bar(range(len(names)), values, color=colors)
            ax.bar_label(bars, fmt="%.4f", fontsize=7)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
            ax.set_ylim(min(values) - 0.03, max(values) + 0.015)
            reference = next((r["accuracy"] for r in rows1 if r["engine"] == FLOAT32), None)
            if reference is not None:
                ax.axhline(reference, color="gray", linestyle="--", linewidth=0.8, label="TFLite float32")
                ax.axhline(reference - ACCURACY_TARGETS["int8"] / 100, color="tab:red", linestyle=":", linewidth=0.8,
                           label="float32 - 1 point (int8 target)")
                ax.legend(fontsize=7, loc="lower left")
        ax.set_ylabel(f"SST-2 dev accuracy ({p1.get('sentences')} sentences)")
        ax.set_title("(a) accuracy per variant", fontsize=9)

        ax = axes[1]
        if rows1:
            by_name = {r["engine"]: r for r in rows1}
            report.grouped_bars(ax, list(by_name), ["median", "p90"], lambda name, s: by_name[name][f"{s}_ms"],
                                labels="%.2f", fontsize=6, ticks=dict(rotation=30, ha="right", fontsize=8))
            # The tokenizer's median inside the median bar (grouped_bars puts it at -0.2, width 0.4).
            ax.bar([i - 0.2 for i in range(len(by_name))], [r["tokenize_median_ms"] for r in by_name.values()], 0.4,
                   fill=False, hatch="///", edgecolor="black", linewidth=0.5, label="tokenizer (median)")
            ax.legend(fontsize=7)
        ax.set_ylabel("ms per sentence, batch 1 (text in, logits out)")
        ax.set_title("(b) SST-2 classifier latency (lower is better)", fontsize=9)

        ax = axes[2]
        if rows2:
            engines = list(dict.fromkeys(r["engine"] for r in rows2))
            lengths = list(dict.fromkeys(r["length"] for r in rows2))
            by_key = {(r["engine"], r["length"]): r["median_ms"] for r in rows2}
            report.grouped_bars(ax, [f"{length} tokens" for length in lengths], engines,
                                lambda group, name: by_key.get((name, int(group.split()[0]))),
                                labels=lambda v: f"{v:.3g}", fontsize=5, rotation=90, padding=2)
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        ax.set_ylabel("median ms per call, batch 1 (log scale)")
        ax.set_title(f"(c) {p2.get('geometry_name', '')} geometry, random weights, token ids in", fontsize=9)
        fig.suptitle(title, fontsize=10)

    return report.plot(path, draw, 1, 3, figsize=(20, 6))


# ----------------------------------------------------------------------------- main


def main(argv):
    del argv
    threads = FLAGS.threads
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    unknown = set(FLAGS.forms) - set(FORM_NAMES)
    if unknown:
        raise app.UsageError(f"unknown --forms {sorted(unknown)}; choose from {sorted(FORM_NAMES)}")
    forms = [form for form in FORM_NAMES if form in FLAGS.forms]
    quick = FLAGS.quick

    def pick(value, full, fast):
        return value if value is not None else (fast if quick else full)

    config = {
        "quick": quick, "threads": threads, "forms": forms,
        "dev_sentences": pick(FLAGS.dev_sentences, None, 96), "warmup_sentences": FLAGS.warmup_sentences,
        "blocks": pick(FLAGS.blocks, 4, 2), "calibration_size": pick(FLAGS.calibration_size, 300, 50),
        "geometry_name": FLAGS.geometry or ("tiny" if quick else "base"), "lengths": [int(x) for x in FLAGS.lengths],
        "min_calls": pick(FLAGS.min_calls, 20, 3), "min_seconds": pick(FLAGS.min_seconds, 2.0, 0.0),
        "max_calls": FLAGS.max_calls, "warmup_calls": FLAGS.warmup_calls,
        "base_calibration_size": pick(FLAGS.base_calibration_size, 100, 20),
        "tflite_runtime": "ai_edge_litert Interpreter, default op resolver (XNNPACK delegate applied by default)",
    }
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, threads=threads, rayon_num_threads=os.environ.get("RAYON_NUM_THREADS"))
    p1, p2 = {"status": "skipped", "reason": "--nopart1"}, {"status": "skipped", "reason": "--nopart2"}
    with tempfile.TemporaryDirectory(prefix="tflite_benchmark_") as workdir:
        if FLAGS.part1:
            start = time.perf_counter()
            try:
                p1 = part1(FLAGS.data_dir, threads, forms, config, workdir)
            except Exception as e:  # noqa: BLE001 (recorded; part 2 still runs) -- the mapping check raises here
                p1 = _failure(e)
                logging.error("Part 1 failed: %s", traceback.format_exc())
            p1["seconds"] = round(time.perf_counter() - start, 1)
            print("\n" + format_part1(p1), flush=True)
        if FLAGS.part2:
            start = time.perf_counter()
            try:
                p2 = part2(FLAGS.data_dir, threads, forms, config["geometry_name"], config, workdir)
            except Exception as e:  # noqa: BLE001
                p2 = _failure(e)
                logging.error("Part 2 failed: %s", traceback.format_exc())
            p2["seconds"] = round(time.perf_counter() - start, 1)
    targets = check_targets(p1, p2)
    record = {
        "machine": report.finish(info),
        "config": config,
        "part1": p1,
        "part2": p2,
        "targets": targets,
        "total_seconds": time.perf_counter() - started,
    }
    title = (f"roberta_tf TFLite forms vs SavedModel and tokenizers + ONNX Runtime, batch 1, {threads} threads, "
             f"{report.cpu_model()}")
    written = report.save(FLAGS.output_dir, "tflite_benchmark", record, lambda path: write_plot(p1, p2, path, title))

    others = [r.get("other_load_cores") for part in (p1, p2) for r in (part.get("engines") or [])]
    print("\n" + report.load_summary(info, threads, others))
    print(format_part1(p1))
    print()
    print(format_part2(p2))
    print()
    print(report.format_targets("Targets (part 2's roberta-base latency ratios informative):", targets,
                                label_keys=("engine", "case")))
    print(written)


if __name__ == "__main__":
    app.run(main)
