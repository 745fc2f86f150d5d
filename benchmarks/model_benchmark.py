"""Forward-pass benchmark of the RoBERTa encoder + classification head: roberta_tf against
PyTorch, ONNX Runtime and keras-hub, float32 on CPU.

roberta-base geometry (`--geometry tiny`, the default with --quick: 2 layers x 128), random
weights, 2 classes; cases BATCHxLENGTH (default 1x16, 1x64, 1x128, 32x64, 32x128), every token
real, the same ids for every engine. Engines: roberta_tf in a tf.function (plain and XLA),
keras-hub (Keras 3; the faster of predict_on_batch and a tf.function, plus XLA), PyTorch
(`reference_models.torch_classifier`) and ONNX Runtime on its fp32 export (the reference); an
engine whose package is missing is "skipped", one that fails to build "failed". Per engine and
case: median and p90 ms per call, sequences/s, matmul GFLOP/s and its share of this machine's
float32 `tf.matmul` peak (measured at the start and the end), and the ratio to ONNX Runtime's
and to the fastest engine's latency; the CPU other processes used while timing is recorded.
Every engine uses --threads intra-op threads and one inter-op thread, one engine at a time.

Run from the repository root:

    python -m benchmarks.model_benchmark [--quick] [--output_dir DIR] [--threads 2]

It prints a table and writes model_benchmark.json (every call time) and model_benchmark.png to
--output_dir. FLOP counting, timing rules and measured numbers: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # keras-hub (Keras 3) on TensorFlow
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import dataclasses  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from benchmarks import RESULTS_DIR, report  # noqa: E402
from benchmarks.reference_models import (  # noqa: E402
    GEOMETRIES,
    NUM_CLASSES,
    SEED,
    export_onnx,
    make_inputs,
    ort_session,
    set_torch_threads,
    torch_classifier,
)

# roberta_tf, tf_keras, keras_hub, torch and onnxruntime are imported inside the engine
# builders: after the thread settings, and so that a missing one only skips its engine.

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "keras", "keras-hub", "torch", "transformers", "onnx", "onnxscript",
            "onnxruntime", "numpy", "absl-py", "matplotlib", "roberta-tf"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
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

REFERENCE_ENGINE = "onnxruntime"
ENGINE_FAMILIES = ["roberta_tf", "keras_hub", "torch", "onnxruntime"]  # run in this order
FAMILY_PACKAGES = {
    "roberta_tf": ["tf_keras", "roberta_tf"],
    "keras_hub": ["keras", "keras_hub"],
    "torch": ["torch", "transformers"],
    "onnxruntime": ["torch", "transformers", "onnx", "onnxruntime"],
}
PEAK_SIZES = (2048, 4096)


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
    probe = make_inputs(geometry, probe_case.batch, probe_case.length)
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


def torch_engines(geometry, threads):
    require("torch")
    import torch

    set_torch_threads(threads)
    model = torch_classifier(geometry)

    def run(x):
        with torch.inference_mode():
            return model(input_ids=x[0], attention_mask=x[1]).logits

    info = {"params": sum(p.numel() for p in model.parameters()),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    return [Engine("torch", "torch", lambda ids, mask: (torch.from_numpy(ids), torch.from_numpy(mask)), run,
                   lambda y: y.numpy(), info=info)]


def onnxruntime_engines(geometry, threads, workdir):
    require("onnxruntime")
    import onnx

    set_torch_threads(threads)
    model = torch_classifier(geometry)
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


def check_output(engine, case, output):
    logits = np.asarray(engine.to_numpy(output))
    if logits.shape != (case.batch, NUM_CLASSES):
        raise AssertionError(f"{engine.name} {case.name}: output shape {logits.shape}, "
                             f"expected {(case.batch, NUM_CLASSES)}")
    if not np.all(np.isfinite(logits)):
        raise AssertionError(f"{engine.name} {case.name}: non-finite logits {logits}")
    return logits


def measure(engine, case, geometry, timing):
    x = engine.prepare(*make_inputs(geometry, case.batch, case.length))
    start = time.perf_counter()
    output = engine.run(x)
    first_call = time.perf_counter() - start
    logits = check_output(engine, case, output)
    for _ in range(timing["warmup_calls"] if case.batch == 1 else timing["warmup_calls_batched"]):
        check_output(engine, case, engine.run(x))
    min_calls = timing["min_calls"] if case.batch == 1 else timing["min_calls_batched"]
    with report.LoadMeter() as load:
        times = time_calls(engine.run, x, min_calls, timing["min_seconds"])
    median = statistics.median(times)
    flops = forward_flops(geometry, case)
    result = {
        "engine": engine.name, "family": engine.family, "case": case.name, "batch": case.batch,
        "length": case.length, "status": "ok", "calls": len(times),
        "first_call_seconds": round(first_call, 4),
        "call_ms": [round(1000 * t, 4) for t in times],
        "median_ms": 1000 * median, "p90_ms": 1000 * report.percentile(times, 90), "min_ms": 1000 * min(times),
        "sequences_per_s": case.batch / median, "gflop": flops / 1e9, "gflop_per_s": flops / median / 1e9,
        "other_load_cores": load.other_cores, "steal_cores": load.steal_cores, "own_cores": load.own_cores,
        "logits_first_row": [float(v) for v in logits[0]],
    }
    logging.info("%-28s %-9s %9.2f ms median %9.2f ms p90  %3d calls  (others: %s cores, steal: %s)", engine.name,
                 case.name, result["median_ms"], result["p90_ms"], len(times),
                 report.format_value(load.other_cores, ".2f"), report.format_value(load.steal_cores, ".2f"))
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

        set_torch_threads(threads)
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


TABLE = [
    report.Column("case", 9, "case", align="<"),
    report.Column("engine", 28, "engine", align="<"),
    report.Column("median ms", 10, "median_ms", ".2f"),
    report.Column("p90 ms", 10, "p90_ms", ".2f"),
    report.Column("seq/s", 8, "sequences_per_s", ".1f"),
    report.Column("GFLOP/s", 8, "gflop_per_s", ".1f"),
    report.Column("% peak", 7, "percent_of_peak", ".1f"),
    report.Column("x ORT", 6, "x_onnxruntime", ".2f"),
    report.Column("x fastest", 9, "x_fastest", ".2f"),
]


def write_plot(results, peak, path, title):
    """Median latency (log scale) and % of the matmul peak per case and engine."""
    ok = [r for r in results if r["status"] == "ok"]
    if not ok:
        return None
    engines = list(dict.fromkeys(r["engine"] for r in ok))
    cases = list(dict.fromkeys(r["case"] for r in ok))
    by_key = {(r["engine"], r["case"]): r for r in ok}

    def value(key):
        return lambda case, engine: by_key[(engine, case)][key] if (engine, case) in by_key else None

    def draw(fig, axes):
        report.grouped_bars(axes[0], cases, engines, value("median_ms"), fontsize=6, rotation=90, padding=2,
                            labels=lambda v: f"{v:.3g}" if v < 100 else f"{v:.0f}")
        axes[0].set_yscale("log")
        axes[0].margins(y=0.25)
        axes[0].set_ylabel("median ms per call (log scale)")
        axes[0].set_title(title)
        axes[0].legend(fontsize=8, ncol=2)
        if peak:
            report.grouped_bars(axes[1], cases, engines, value("percent_of_peak"), fontsize=6)
        else:
            axes[1].set_xticks(range(len(cases)), cases)
        axes[1].set_ylabel(f"% of tf.matmul peak ({peak:.0f} GFLOP/s)" if peak else "no peak measured")
        axes[1].set_xlabel("case (batch, sequence length)")

    return report.plot(path, draw, 2, 1, figsize=(12, 8), sharex=True)


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
    info = report.machine_info(PACKAGES, threads=threads,
                               tf_onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"))

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

    record = {
        "machine": report.finish(info),
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
    g = geometry
    title = (f"RoBERTa classifier forward pass, float32, {g['num_layers']} layers x {g['hidden_dim']} "
             f"({geometry_name}), {threads} threads, {report.cpu_model()}")
    written = report.save(FLAGS.output_dir, "model_benchmark", record,
                          lambda path: write_plot(results, peak, path, title))

    print("\n" + report.load_summary(info, threads, [r.get("other_load_cores") for r in results]))
    print(f"Geometry {geometry_name}: {g}; float32, padding_mask all ones. Median/p90 over >= "
          f"{timing['min_calls']} calls (batch 1) / {timing['min_calls_batched']} (batched) and >= "
          f"{timing['min_seconds']:g} s per case.")
    if peak:
        runs = "; ".join(", ".join(f"{k} {n}: {v:.0f}" for k, sizes in run.items() for n, v in sizes.items())
                         for run in peak_runs)
        print(f"Matmul peak (float32 GFLOP/s, median per size; start; end): {runs}. "
              f"% peak is of tf.matmul's {peak:.0f} GFLOP/s.")
    print(report.format_table(TABLE, results, keys=2, group_by="case"))
    for name, details in engine_info.items():
        brief = {k: v for k, v in details.items() if k in ("call", "exporter", "attn_implementation", "graph_nodes",
                                                           "onnx_nodes", "params")}
        print(f"  {name}: {brief}")
    print(written)


if __name__ == "__main__":
    app.run(main)
