"""Forward-pass benchmark of the RoBERTa encoder + classification head: roberta_tf against
PyTorch, ONNX Runtime and keras-hub, float32 on CPU.

What it measures, in one run on one machine:
  * model: roberta-base geometry (vocabulary 50265, 12 layers, 12 heads, hidden 768,
    intermediate 3072, max_sequence_length 512), random weights, 2 classes; `--geometry tiny`
    (the default with --quick) is a 2-layer, hidden-128 model for smoke tests;
  * cases: batch 1 at sequence lengths 16, 64, 128 and batch 32 at 64 and 128; every token
    real (padding_mask all ones); the same token ids for every engine;
  * engines (each reported as "skipped" with the reason when its package is missing, or
    "failed" with the error when it cannot be built):
      - roberta_tf: `RobertaTextClassifier(RobertaBackbone(...), num_classes=2,
        preprocessor=None)` called through one `tf.function` with a [None, None] int32 input
        signature, once plain and once with `jit_compile=True` (XLA);
      - torch: Hugging Face `RobertaForSequenceClassification` (same geometry,
        max_position_embeddings 514), eval mode, `torch.inference_mode()`;
      - onnxruntime: an fp32 ONNX export of that same PyTorch model (dynamic batch and
        sequence axes; TorchScript exporter first, dynamo exporter as a fall-back), one
        InferenceSession with all graph optimizations (ORT_ENABLE_ALL);
      - keras-hub: `keras_hub.models.RobertaTextClassifier` (Keras 3, TensorFlow backend),
        called by `predict_on_batch` or a `tf.function` around `model(...)`, whichever is
        faster at batch 1 (both are timed at setup, the choice is recorded), plus an XLA
        (`jit_compile=True`) tf.function;
  * the float32 matmul peak of this machine: `tf.matmul` of 2048x2048 and 4096x4096 matrices
    (and `torch.mm` for reference), timed at the start and at the end of the run with the
    same thread settings; the peak is the best median rate;
  * per engine and case: median and p90 latency per call, sequences/s, achieved GFLOP/s and
    its fraction of the matmul peak, and the ratio of the median latency to ONNX Runtime's
    and to the fastest engine's.

FLOPs of one forward pass (multiply-add = 2 FLOPs): per token and layer the dense layers
(2 * (4 * hidden^2 + 2 * hidden * intermediate)), per sequence and layer the attention
score and context matmuls (2 * 2 * length^2 * hidden), and the head on the <s> vector
(2 * (hidden^2 + hidden * classes)). Embedding gathers, LayerNorm, softmax, GELU and bias
adds are not counted (they are < 1% of the FLOPs but not of the time at batch 1).

Threads: TF intra-op = --threads and inter-op = 1 (set before any TF op),
`torch.set_num_threads(--threads)` (inter-op 1), ORT intra_op_num_threads = --threads
(inter-op 1, sequential execution). The engines run one after another (all cases of one
engine, then the next), so idle thread pools of the others do not compete.

How it times: inputs are prepared in each engine's native form beforehand (tf.Tensor int32,
torch int64, numpy int64); each case is warmed up (the first call, which traces and, for
XLA, compiles, is timed separately as `first_call_seconds`; then --warmup_calls, or
--warmup_calls_batched, untimed calls), its output checked (shape
[batch, 2], all finite; outputs are NOT compared across engines, whose random weights
differ), then single calls are timed until at least --min_calls (batch 1) or
--min_calls_batched (batch > 1) calls ran and at least --min_seconds elapsed. The CPU time
used by other processes during each measurement (from /proc/stat minus this process's
CPU time) is recorded as `other_load_cores`.

Run from the repository root:

    python benchmarks/model_benchmark.py [--quick] [--output_dir DIR] [--threads 2]

It prints a table and writes model_benchmark.json (machine info, package versions, every
call time) and model_benchmark.png (if matplotlib is installed) to --output_dir.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # keras-hub (Keras 3) on TensorFlow
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import dataclasses
import gc
import importlib.util
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import environment  # noqa: E402  (benchmarks/environment.py)

# roberta_tf, tf_keras, keras_hub, torch and onnxruntime are imported inside the engine
# builders: after the thread settings, and so that a missing one only skips its engine.

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "keras", "keras-hub", "torch", "transformers", "onnx", "onnxscript",
            "onnxruntime", "numpy", "absl-py", "matplotlib", "roberta-tf"]

flags.DEFINE_string("output_dir", str(REPO_ROOT / "benchmarks" / "results"), "Where to write the JSON and PNG.")
flags.DEFINE_bool("quick", False, "Smoke test: tiny geometry (unless --geometry is given), few calls per case.")
flags.DEFINE_integer("threads", 2, "Intra-op threads of every engine (TF, torch, ORT) and of the matmul peak.")
flags.DEFINE_enum("geometry", None, ["base", "tiny"], "Model geometry (default: base; tiny with --quick).")
flags.DEFINE_list("cases", ["1x16", "1x64", "1x128", "32x64", "32x128"], "BATCHxLENGTH cases.")
flags.DEFINE_list("engines", None, "Only these engine families: roberta_tf, keras_hub, torch, onnxruntime "
                  "(default all).")
flags.DEFINE_float("min_seconds", 3.0, "Time calls until at least this long has elapsed per case...")
flags.DEFINE_integer("min_calls", 20, "...and at least this many calls ran at batch 1...")
flags.DEFINE_integer("min_calls_batched", 5, "...or this many at batch > 1.")
flags.DEFINE_integer("warmup_calls", 2, "Untimed calls per batch-1 case after the first (tracing/compiling) call...")
flags.DEFINE_integer("warmup_calls_batched", 1, "...and per batch > 1 case.")
flags.DEFINE_bool("peak", True, "Measure the tf.matmul (and torch.mm) float32 peak.")

GEOMETRIES = {
    "base": dict(vocabulary_size=50265, num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                 max_sequence_length=512),
    "tiny": dict(vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512,
                 max_sequence_length=512),
}
NUM_CLASSES = 2
REFERENCE_ENGINE = "onnxruntime"
ENGINE_FAMILIES = ["roberta_tf", "keras_hub", "torch", "onnxruntime"]  # run in this order
FAMILY_PACKAGES = {
    "roberta_tf": ["tf_keras", "roberta_tf"],
    "keras_hub": ["keras", "keras_hub"],
    "torch": ["torch", "transformers"],
    "onnxruntime": ["torch", "transformers", "onnx", "onnxruntime"],
}
PEAK_SIZES = (2048, 4096)
SEED = 0


# ----------------------------------------------------------------------------- geometry


@dataclasses.dataclass(frozen=True)
class Case:
    batch: int
    length: int

    @property
    def name(self):
        return f"b{self.batch} s{self.length}"


def parse_cases(specs):
    cases = []
    for spec in specs:
        batch, _, length = spec.lower().partition("x")
        cases.append(Case(int(batch), int(length)))
    return cases


def forward_flops(geometry, case, num_classes=NUM_CLASSES):
    """Matmul FLOPs of one forward pass (see the module docstring)."""
    h, i, n = geometry["hidden_dim"], geometry["intermediate_dim"], geometry["num_layers"]
    tokens = case.batch * case.length
    dense = 2 * (4 * h * h + 2 * h * i) * tokens * n
    attention = 2 * 2 * case.length * case.length * h * case.batch * n
    head = 2 * (h * h + h * num_classes) * case.batch
    return dense + attention + head


def make_inputs(geometry, case, seed=SEED):
    """token ids [batch, length]: <s> (0), random ids that are not special tokens, </s> (2);
    padding_mask all ones. Never id 1 (<pad>), which Hugging Face would treat as padding."""
    rng = np.random.default_rng(seed + 1000 * case.batch + case.length)
    ids = rng.integers(4, geometry["vocabulary_size"], size=(case.batch, case.length), dtype=np.int64)
    ids[:, 0] = 0
    if case.length > 1:
        ids[:, -1] = 2
    return ids, np.ones_like(ids)


# ----------------------------------------------------------------------------- engines


@dataclasses.dataclass
class Engine:
    """One way to run the model. `prepare(ids, mask)` turns int64 numpy inputs into the engine's
    native inputs (outside the timing), `run` is one forward pass, `to_numpy` its logits."""

    name: str
    family: str
    prepare: Callable[[np.ndarray, np.ndarray], Any]
    run: Callable[[Any], Any]
    to_numpy: Callable[[Any], np.ndarray]
    setup_seconds: float = 0.0
    info: dict = dataclasses.field(default_factory=dict)


class Skipped(Exception):
    """An engine family that cannot run here (its package is missing)."""


def require(family):
    missing = [name for name in FAMILY_PACKAGES[family] if importlib.util.find_spec(name) is None]
    if missing:
        raise Skipped(f"not installed: {', '.join(missing)}")


def _tf_inputs(ids, mask):
    return tf.constant(ids, tf.int32), tf.constant(mask, tf.int32)


def _graph_op_count(function, *args):
    """Nodes of the traced graph (before Grappler's rewrites)."""
    graph = function.get_concrete_function(*args).graph
    return len(graph.as_graph_def().node)


def roberta_tf_engines(geometry):
    require("roberta_tf")
    import tf_keras

    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier

    tf_keras.utils.set_random_seed(SEED)
    backbone = RobertaBackbone(**geometry)
    model = RobertaTextClassifier(backbone, num_classes=NUM_CLASSES, preprocessor=None)
    signature = [tf.TensorSpec([None, None], tf.int32)] * 2

    def call(token_ids, padding_mask):
        return model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)

    plain = tf.function(call, input_signature=signature)
    xla = tf.function(call, input_signature=signature, jit_compile=True)
    spec = tf.TensorSpec([None, None], tf.int32)
    info = {"params": int(model.count_params()), "graph_nodes": _graph_op_count(plain, spec, spec),
            "call": "tf.function(model(...)), input_signature [None, None] int32"}
    return [
        Engine("roberta_tf", "roberta_tf", _tf_inputs, lambda x: plain(*x), lambda y: y.numpy(), info=info),
        Engine("roberta_tf XLA", "roberta_tf", _tf_inputs, lambda x: xla(*x), lambda y: y.numpy(),
               info={**info, "call": info["call"] + ", jit_compile=True"}),
    ]


def keras_hub_engines(geometry, probe_case):
    require("keras_hub")
    import keras
    import keras_hub

    keras.utils.set_random_seed(SEED)
    backbone = keras_hub.models.RobertaBackbone(**geometry)
    model = keras_hub.models.RobertaTextClassifier(backbone, num_classes=NUM_CLASSES, preprocessor=None)
    signature = [tf.TensorSpec([None, None], tf.int32)] * 2

    def call(token_ids, padding_mask):
        return model({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)

    graph = tf.function(call, input_signature=signature)
    xla = tf.function(call, input_signature=signature, jit_compile=True)

    def predict(x):
        return model.predict_on_batch({"token_ids": x[0], "padding_mask": x[1]})

    # Pick the faster of predict_on_batch and the tf.function at batch 1 (the call overhead
    # is what differs; at batch 32 both run the same kernels).
    probe = make_inputs(geometry, probe_case)
    candidates = {
        "predict_on_batch": (lambda ids, mask: (ids.astype(np.int32), mask.astype(np.int32)), predict),
        "tf.function": (_tf_inputs, lambda x: graph(*x)),
    }
    probe_ms = {}
    for label, (prepare, run) in candidates.items():
        x = prepare(*probe)
        for _ in range(3):
            run(x)
        times = time_calls(run, x, min_calls=10, min_seconds=0.5)
        probe_ms[label] = 1000 * statistics.median(times)
    chosen = min(probe_ms, key=probe_ms.get)
    prepare, run = candidates[chosen]
    spec = tf.TensorSpec([None, None], tf.int32)
    info = {"params": int(model.count_params()), "graph_nodes": _graph_op_count(graph, spec, spec),
            "call": chosen, "call_probe_median_ms": probe_ms, "call_probe_case": probe_case.name}
    to_numpy = lambda y: np.asarray(y)  # noqa: E731
    return [
        Engine(f"keras-hub {chosen}", "keras_hub", prepare, run, to_numpy, info=info),
        Engine("keras-hub XLA", "keras_hub", _tf_inputs, lambda x: xla(*x), to_numpy,
               info={**info, "call": "tf.function(model(...)), jit_compile=True"}),
    ]


def _torch_model(geometry):
    import torch
    import transformers

    torch.manual_seed(SEED)
    config = transformers.RobertaConfig(
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
        num_labels=NUM_CLASSES,
    )
    return transformers.RobertaForSequenceClassification(config).eval()


def _torch_threads(threads):
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed once, before any inter-op work
        pass


def torch_engines(geometry, threads):
    require("torch")
    import torch

    _torch_threads(threads)
    model = _torch_model(geometry)

    def run(x):
        with torch.inference_mode():
            return model(input_ids=x[0], attention_mask=x[1]).logits

    info = {"params": sum(p.numel() for p in model.parameters()),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    return [Engine("torch", "torch", lambda ids, mask: (torch.from_numpy(ids), torch.from_numpy(mask)), run,
                   lambda y: y.numpy(), info=info)]


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
    """fp32 ONNX with dynamic batch and sequence axes: the TorchScript exporter
    (dynamo=False) first, the default (dynamo) exporter if that fails. Returns the exporter
    used and the errors of the ones that failed."""
    import torch

    wrapper = _logits_only(model)
    ids, mask = make_inputs(geometry, Case(2, 16))
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


def onnxruntime_engines(geometry, threads, workdir):
    require("onnxruntime")
    import onnx

    _torch_threads(threads)
    model = _torch_model(geometry)
    path = Path(workdir, "roberta_classifier.onnx")
    start = time.perf_counter()
    exporter, export_errors = export_onnx(model, path, geometry)
    export_seconds = time.perf_counter() - start
    del model
    gc.collect()
    graph = onnx.load(str(path), load_external_data=False).graph
    op_types = {}
    for node in graph.node:
        op_types[node.op_type] = op_types.get(node.op_type, 0) + 1

    session = ort_session(path, threads)
    input_names = [i.name for i in session.get_inputs()]
    output_names = [session.get_outputs()[0].name]

    def run(feed):
        return session.run(output_names, feed)[0]

    info = {"exporter": exporter, "export_errors": export_errors, "export_seconds": round(export_seconds, 2),
            "onnx_bytes": sum(f.stat().st_size for f in Path(workdir).iterdir()),
            "onnx_nodes": len(graph.node), "onnx_op_types": op_types, "intra_op_num_threads": threads,
            "graph_optimization_level": "ORT_ENABLE_ALL", "providers": session.get_providers()}
    return [Engine("onnxruntime", "onnxruntime", lambda ids, mask: dict(zip(input_names, (ids, mask))), run,
                   np.asarray, info=info)]


# ----------------------------------------------------------------------------- measuring


def time_calls(run, inputs, min_calls, min_seconds):
    """Seconds of each timed call: at least `min_calls` calls and `min_seconds` in all."""
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        call_start = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - call_start)
    return times


class LoadMeter:
    """CPU-seconds used by OTHER processes while measuring: busy time of the whole machine
    (/proc/stat) minus this process's CPU time. Divided by the wall time: cores taken by
    others on average (None where /proc/stat is missing). Also the hypervisor's steal time
    (cores' worth of time the VM wanted to run but the host ran something else)."""

    def __init__(self):
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _stat(self):
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None, None
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        steal = values[7] if len(values) > 7 else 0
        guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
        return (sum(values) - idle - steal - guest) / self.ticks, steal / self.ticks

    def __enter__(self):
        self.start = (*self._stat(), time.process_time(), time.perf_counter())
        return self

    def __exit__(self, *exc):
        busy, steal = self._stat()
        own, wall = time.process_time(), time.perf_counter()
        seconds = max(wall - self.start[3], 1e-9)
        if busy is None or self.start[0] is None:
            self.other_cores = self.steal_cores = None
        else:
            other = (busy - self.start[0]) - (own - self.start[2])
            self.other_cores = max(0.0, other) / seconds
            self.steal_cores = (steal - self.start[1]) / seconds
        self.own_cores = (own - self.start[2]) / seconds


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def check_output(engine, case, output):
    logits = np.asarray(engine.to_numpy(output))
    if logits.shape != (case.batch, NUM_CLASSES):
        raise AssertionError(f"{engine.name} {case.name}: output shape {logits.shape}, "
                             f"expected {(case.batch, NUM_CLASSES)}")
    if not np.all(np.isfinite(logits)):
        raise AssertionError(f"{engine.name} {case.name}: non-finite logits {logits}")
    return logits


def measure(engine, case, geometry, timing):
    x = engine.prepare(*make_inputs(geometry, case))
    start = time.perf_counter()
    output = engine.run(x)
    first_call = time.perf_counter() - start
    logits = check_output(engine, case, output)
    for _ in range(timing["warmup_calls"] if case.batch == 1 else timing["warmup_calls_batched"]):
        check_output(engine, case, engine.run(x))
    min_calls = timing["min_calls"] if case.batch == 1 else timing["min_calls_batched"]
    with LoadMeter() as load:
        times = time_calls(engine.run, x, min_calls, timing["min_seconds"])
    median = statistics.median(times)
    flops = forward_flops(geometry, case)
    result = {
        "engine": engine.name, "family": engine.family, "case": case.name, "batch": case.batch,
        "length": case.length, "status": "ok", "calls": len(times),
        "first_call_seconds": round(first_call, 4),
        "call_ms": [round(1000 * t, 4) for t in times],
        "median_ms": 1000 * median, "p90_ms": 1000 * percentile(times, 90), "min_ms": 1000 * min(times),
        "sequences_per_s": case.batch / median, "gflop": flops / 1e9, "gflop_per_s": flops / median / 1e9,
        "other_load_cores": load.other_cores, "steal_cores": load.steal_cores, "own_cores": load.own_cores,
        "logits_first_row": [float(v) for v in logits[0]],
    }
    logging.info("%-28s %-9s %9.2f ms median %9.2f ms p90  %3d calls  (others: %s cores, steal: %s)", engine.name,
                 case.name, result["median_ms"], result["p90_ms"], len(times),
                 environment.format_value(load.other_cores, ".2f"), environment.format_value(load.steal_cores, ".2f"))
    return result


def unavailable(name, family, case, status, reason):
    return {"engine": name, "family": family, "case": case.name, "batch": case.batch, "length": case.length,
            "status": status, "reason": reason}


def matmul_peak(threads, repeats_seconds=1.5):
    """Median GFLOP/s of float32 tf.matmul (and torch.mm when torch is installed) per size."""
    peaks = {"tf.matmul": {}, "torch.mm": {}}
    rng = np.random.default_rng(SEED)
    for n in PEAK_SIZES:
        a = tf.constant(rng.standard_normal((n, n), np.float32))
        b = tf.constant(rng.standard_normal((n, n), np.float32))
        matmul = tf.function(tf.matmul)
        matmul(a, b).numpy()
        times = time_calls(lambda x: matmul(*x).numpy(), (a, b), min_calls=3, min_seconds=repeats_seconds)
        peaks["tf.matmul"][n] = 2 * n**3 / statistics.median(times) / 1e9
    if importlib.util.find_spec("torch") is not None:
        import torch

        _torch_threads(threads)
        for n in PEAK_SIZES:
            a = torch.from_numpy(rng.standard_normal((n, n), np.float32))
            b = torch.from_numpy(rng.standard_normal((n, n), np.float32))
            torch.mm(a, b)
            times = time_calls(lambda x: torch.mm(*x), (a, b), min_calls=3, min_seconds=repeats_seconds)
            peaks["torch.mm"][n] = 2 * n**3 / statistics.median(times) / 1e9
    else:
        del peaks["torch.mm"]
    return peaks


def add_derived(results, peak):
    """% of peak, and median latency / ORT's and / the fastest engine's, per case."""
    ok = [r for r in results if r["status"] == "ok"]
    for r in ok:
        same_case = [o for o in ok if o["case"] == r["case"]]
        reference = next((o for o in same_case if o["engine"] == REFERENCE_ENGINE), None)
        fastest = min(same_case, key=lambda o: o["median_ms"])
        r["percent_of_peak"] = 100 * r["gflop_per_s"] / peak if peak else None
        r["x_onnxruntime"] = r["median_ms"] / reference["median_ms"] if reference else None
        r["x_fastest"] = r["median_ms"] / fastest["median_ms"]
        r["fastest_engine"] = fastest["engine"]


# ----------------------------------------------------------------------------- reporting


def machine_info(threads):
    return environment.machine_info(
        PACKAGES,
        top_processes_at_start=environment.top_processes(),
        threads=threads,
        tf_onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    )


def format_table(results):
    header = (f"{'case':<9} {'engine':<28} {'median ms':>10} {'p90 ms':>10} {'seq/s':>8} {'GFLOP/s':>8} "
              f"{'% peak':>7} {'x ORT':>6} {'x fastest':>9}")
    lines = [header, "-" * len(header)]
    previous_case = None
    for r in results:
        if previous_case is not None and r["case"] != previous_case:
            lines.append("")
        previous_case = r["case"]
        if r["status"] != "ok":
            lines.append(f"{r['case']:<9} {r['engine']:<28} {r['status']}: {r['reason'][:90]}")
            continue
        lines.append(
            f"{r['case']:<9} {r['engine']:<28} {r['median_ms']:>10.2f} {r['p90_ms']:>10.2f} "
            f"{r['sequences_per_s']:>8.1f} {r['gflop_per_s']:>8.1f} {environment.format_value(r['percent_of_peak'], '.1f'):>7} "
            f"{environment.format_value(r['x_onnxruntime'], '.2f'):>6} {r['x_fastest']:>9.2f}"
        )
    return "\n".join(lines)


def write_plot(results, peak, path, title):
    """Median latency (log scale) and % of the matmul peak per case and engine."""
    plt = environment.pyplot()
    if plt is None:
        return None
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return None
    engines = list(dict.fromkeys(r["engine"] for r in ok))
    cases = list(dict.fromkeys(r["case"] for r in ok))
    by_key = {(r["engine"], r["case"]): r for r in ok}
    width = 0.8 / len(engines)
    fig, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    for e, engine in enumerate(engines):
        xs = [c + e * width for c in range(len(cases))]
        latency = [by_key[(engine, case)]["median_ms"] if (engine, case) in by_key else 0 for case in cases]
        bars = axes[0].bar(xs, latency, width, label=engine)
        axes[0].bar_label(bars, [f"{v:.3g}" if v < 100 else f"{v:.0f}" for v in latency], fontsize=6, rotation=90,
                          padding=2)
        if peak:
            percent = [by_key[(engine, case)]["percent_of_peak"] if (engine, case) in by_key else 0
                       for case in cases]
            bars = axes[1].bar(xs, percent, width, label=engine)
            axes[1].bar_label(bars, fmt="%.0f", fontsize=6)
    axes[0].set_yscale("log")
    axes[0].margins(y=0.25)
    axes[0].set_ylabel("median ms per call (log scale)")
    axes[0].set_title(title)
    axes[0].legend(fontsize=8, ncol=2)
    axes[1].set_ylabel(f"% of tf.matmul peak ({peak:.0f} GFLOP/s)" if peak else "no peak measured")
    axes[1].set_xticks([c + width * (len(engines) - 1) / 2 for c in range(len(cases))], cases)
    axes[1].set_xlabel("case (batch, sequence length)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- main


def build_family(family, geometry, threads, cases, workdir):
    if family == "roberta_tf":
        return roberta_tf_engines(geometry)
    if family == "keras_hub":
        return keras_hub_engines(geometry, min(cases, key=lambda c: c.batch * c.length))
    if family == "torch":
        return torch_engines(geometry, threads)
    if family == "onnxruntime":
        return onnxruntime_engines(geometry, threads, workdir)
    raise ValueError(f"unknown engine family {family!r}")


FAMILY_ENGINE_NAMES = {  # for the rows of a family that could not be built
    "roberta_tf": ["roberta_tf", "roberta_tf XLA"],
    "keras_hub": ["keras-hub", "keras-hub XLA"],
    "torch": ["torch"],
    "onnxruntime": ["onnxruntime"],
}


def main(argv):
    del argv
    threads = FLAGS.threads
    # Before any TF op: the thread pools are created with the first one.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    geometry_name = FLAGS.geometry or ("tiny" if FLAGS.quick else "base")
    geometry = GEOMETRIES[geometry_name]
    cases = parse_cases(FLAGS.cases)
    families = FLAGS.engines or ENGINE_FAMILIES
    unknown = set(families) - set(ENGINE_FAMILIES)
    if unknown:
        raise app.UsageError(f"unknown --engines {sorted(unknown)}; choose from {ENGINE_FAMILIES}")
    if FLAGS.quick:
        timing = {"min_seconds": 0.2, "min_calls": 3, "min_calls_batched": 2, "warmup_calls": 1,
                  "warmup_calls_batched": 1}
    else:
        timing = {"min_seconds": FLAGS.min_seconds, "min_calls": FLAGS.min_calls,
                  "min_calls_batched": FLAGS.min_calls_batched, "warmup_calls": FLAGS.warmup_calls,
                  "warmup_calls_batched": FLAGS.warmup_calls_batched}
    started = time.perf_counter()
    info = machine_info(threads)
    logging.info("Load average %.2f at start; busiest processes: %s", info["load_average_at_start"][0],
                 info["top_processes_at_start"])

    peak_runs = []
    if FLAGS.peak:
        peak_runs.append(matmul_peak(threads, 0.3 if FLAGS.quick else 1.5))
        logging.info("matmul peak at start: %s", peak_runs[-1])

    results, engine_info, family_errors = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="model_benchmark_") as workdir:
        for family in ENGINE_FAMILIES:
            if family not in families:
                continue
            start = time.perf_counter()
            try:
                engines = build_family(family, geometry, threads, cases, workdir)
            except Skipped as e:
                print(f"Skipping {family}: {e}")
                family_errors[family] = str(e)
                results += [unavailable(name, family, case, "skipped", str(e))
                            for case in cases for name in FAMILY_ENGINE_NAMES[family]]
                continue
            except Exception as e:  # noqa: BLE001 (a broken engine must not stop the others)
                reason = f"{type(e).__name__}: {e}"
                print(f"Engine family {family} failed to build: {reason}")
                family_errors[family] = traceback.format_exc()
                results += [unavailable(name, family, case, "failed", reason)
                            for case in cases for name in FAMILY_ENGINE_NAMES[family]]
                continue
            setup_seconds = time.perf_counter() - start
            logging.info("Built %s in %.1f s", family, setup_seconds)
            for engine in engines:
                engine_info[engine.name] = {**engine.info, "setup_seconds_of_family": round(setup_seconds, 2)}
                for case in cases:
                    try:
                        results.append(measure(engine, case, geometry, timing))
                    except Exception as e:  # noqa: BLE001
                        reason = f"{type(e).__name__}: {str(e)[:300]}"
                        print(f"{engine.name} {case.name} failed: {reason}")
                        results.append(unavailable(engine.name, family, case, "failed", reason))
            del engines
            gc.collect()
            time.sleep(1.0)  # let the finished engine's spinning worker threads go idle

    if FLAGS.peak:
        peak_runs.append(matmul_peak(threads, 0.3 if FLAGS.quick else 1.5))
        logging.info("matmul peak at end: %s", peak_runs[-1])
    peak = max((g for run in peak_runs for g in run["tf.matmul"].values()), default=None)
    torch_peak = max((g for run in peak_runs for g in run.get("torch.mm", {}).values()), default=None)

    # Rows grouped by case, engines in run order.
    order = {case.name: i for i, case in enumerate(cases)}
    results.sort(key=lambda r: order[r["case"]])
    add_derived(results, peak)

    output_dir = Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    info["load_average_at_end"] = os.getloadavg()
    info["top_processes_at_end"] = environment.top_processes()
    report = {
        "machine": info,
        "config": {"quick": FLAGS.quick, "geometry_name": geometry_name, "geometry": geometry,
                   "num_classes": NUM_CLASSES, "cases": [c.name for c in cases], **timing,
                   "dtype": "float32", "padding_mask": "all ones", "reference_engine": REFERENCE_ENGINE,
                   "flops": "2 * (4 h^2 + 2 h i) per token and layer + 4 s^2 h per sequence and layer + head"},
        "matmul_peak_gflop_per_s": {"runs": peak_runs, "peak_tf_matmul": peak, "peak_torch_mm": torch_peak},
        "engines": engine_info,
        "family_errors": family_errors,
        "measurements": results,
        "total_seconds": time.perf_counter() - started,
    }
    json_path = output_dir / "model_benchmark.json"
    environment.write_json(json_path, report)
    g = geometry
    title = (f"RoBERTa classifier forward pass, float32, {g['num_layers']} layers x {g['hidden_dim']} "
             f"({geometry_name}), {threads} threads, {environment.cpu_model()}")
    plot_path = write_plot(results, peak, output_dir / "model_benchmark.png", title)

    print("\n" + environment.load_summary(info, threads, [r.get("other_load_cores") for r in results]))
    print(f"Geometry {geometry_name}: {g}; float32, padding_mask all ones. Median/p90 over >= "
          f"{timing['min_calls']} calls (batch 1) / {timing['min_calls_batched']} (batched) and >= "
          f"{timing['min_seconds']:g} s per case.")
    if peak:
        runs = "; ".join(", ".join(f"{k} {n}: {v:.0f}" for k, sizes in run.items() for n, v in sizes.items())
                         for run in peak_runs)
        print(f"Matmul peak (float32 GFLOP/s, median per size; start; end): {runs}. "
              f"% peak is of tf.matmul's {peak:.0f} GFLOP/s.")
    print(format_table(results))
    for name, details in engine_info.items():
        brief = {k: v for k, v in details.items() if k in ("call", "exporter", "attn_implementation", "graph_nodes",
                                                           "onnx_nodes", "params")}
        print(f"  {name}: {brief}")
    print(f"Wrote {json_path}" + (f" and {plot_path}" if plot_path else "") +
          f" in {report['total_seconds']:.0f} s.")


if __name__ == "__main__":
    app.run(main)
