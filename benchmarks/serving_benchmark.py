"""End-to-end serving benchmark: strings -> logits, the exported roberta_tf SavedModel against
Hugging Face `tokenizers` + PyTorch / ONNX Runtime, plus the numerics of the export's encoder
modes on a trained SST-2 classifier.

Part 1, speed, with the same weights in every engine: a seeded, perturbed
`RobertaForSequenceClassification` (`reference_models.torch_classifier`, roberta-base geometry,
2 classes), moved into a roberta_tf classifier with the Hugging Face converter's mapping and
into ONNX (`reference_models.export_onnx`). Engines: `export_saved_model` in each --modes
encoder mode (float32, bfloat16, with and without XLA) called through `serving_default`;
`tokenizers` + torch; `tokenizers` + ONNX Runtime fp32 (the reference) and dynamic int8. SST-2
dev sentences at batch 1 (latency, median and p90) and batch 32 (throughput), after an untimed
warm-up pass (XLA: compiling every shape); the tokenization share of the time (the SavedModels'
`tokenize` signature timed separately); logits checked against `roberta_tf float32`; the
targets for the default float32 SavedModel printed MET / NOT MET.

Part 2: the `benchmarks.sst2_classifier` preset (or --numerics_preset) exported in float32,
bfloat16 and float32 XLA, all 872 dev sentences: max logit difference, label agreement with
float32, accuracy. Skipped, with the reason, when no current trained preset is cached.

Run from the repository root (data from ../shared/data):

    python -m benchmarks.serving_benchmark [--quick] [--output_dir DIR] [--threads 2]

It prints the tables and writes serving_benchmark.json and serving_benchmark.png to
--output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

THREADS_DEFAULT = 2
# `tokenizers` sizes its Rayon pool from this at the first parallel call; before the imports so
# that --threads (parsed later) can still override it in main().
os.environ.setdefault("RAYON_NUM_THREADS", str(THREADS_DEFAULT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import gc  # noqa: E402
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
from benchmarks.data import batches, load_sst2  # noqa: E402
from benchmarks.reference_models import (  # noqa: E402
    GEOMETRIES,
    NUM_CLASSES,
    SEED,
    export_onnx,
    hf_tokenizer,
    ort_session,
    quantize_int8,
    roberta_tf_classifier,
    roberta_tf_tokenizer,
    set_torch_threads,
    torch_classifier,
)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "tensorflow-serving-api", "tokenizers", "torch", "transformers", "onnx",
            "onnxruntime", "numpy", "absl-py", "matplotlib", "roberta-tf"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
flags.DEFINE_bool("quick", False, "Smoke test: 2-layer hidden-128 model, a few sentences and batches.")
flags.DEFINE_integer("threads", THREADS_DEFAULT, "Intra-op threads of every engine.")
flags.DEFINE_enum("geometry", None, ["base", "tiny"], "Model geometry (default: base; tiny with --quick).")
flags.DEFINE_integer("b1_sentences", 100, "Batch 1: the first N dev sentences, one per call...")
flags.DEFINE_integer("b1_passes", 2, "...timed this many times over.")
flags.DEFINE_integer("b32_batches", 8, "Batch 32: the first N consecutive batches of 32 dev sentences.")
flags.DEFINE_integer("b32_passes", 1, "Timed passes over the batch-32 batches (the fastest pass counts).")
flags.DEFINE_list("modes", ["float32", "bfloat16", "float32_xla", "bfloat16_xla"], "roberta_tf encoder modes.")
flags.DEFINE_bool("numerics", True, "Run part 2 (encoder modes on the trained SST-2 classifier).")
flags.DEFINE_string("numerics_preset", None, "Preset directory for part 2 (default: sst2_classifier.trained_preset()).")
flags.DEFINE_integer("numerics_batch", 32, "Batch size of part 2.")
flags.DEFINE_bool("train_classifier", False, "Part 2: train the SST-2 classifier if it is not cached "
                  "(sst2_classifier.trained_preset(); minutes). Default: skip part 2 when it is missing.")

BATCH = 32
PERTURBATION = 0.02
FP32_TOLERANCE = 1e-3
TARGET_B32_VS_ORT = 2.5
TARGET_TOKENIZATION_SHARE = 0.05
REFERENCE = "tokenizers + ORT fp32"
BASELINE_ENGINE = "roberta_tf float32"  # the logits every engine is checked against
MODES = {  # flag value -> (precision, jit_compile)
    "float32": ("float32", False),
    "bfloat16": ("bfloat16", False),
    "float32_xla": ("float32", True),
    "bfloat16_xla": ("bfloat16", True),
}


def mode_name(precision, jit_compile):
    return f"roberta_tf {precision}" + (" XLA" if jit_compile else "")


# ----------------------------------------------------------------------------- engines


@dataclasses.dataclass
class ServingEngine:
    """One way to go from strings to logits.

    `run(texts)` -> (logits numpy [batch, classes], tokenization seconds or None). `tokenize`,
    for engines whose tokenizer runs inside the timed graph, tokenizes the same texts alone
    (timed separately) and returns (token_ids, padding_mask); `classify_ids` runs the rest of
    the graph on those (the cross-check: end to end minus it). `load()` builds the callable(s) just before the engine is measured and
    `unload()` drops them (so only one roberta-base SavedModel is in memory at a time)."""

    name: str
    load: Callable[[], None]
    unload: Callable[[], None]
    run: Optional[Callable[[list], Any]] = None
    tokenize: Optional[Callable[[list], Any]] = None
    classify_ids: Optional[Callable[[Any], Any]] = None
    precision: str = "float32"
    info: dict = dataclasses.field(default_factory=dict)


def saved_model_engine(name, export_path, precision, jit_compile):
    engine = ServingEngine(name, load=None, unload=None, precision=precision)
    engine.info["jit_compile"] = jit_compile

    def load():
        start = time.perf_counter()
        loaded = tf.saved_model.load(str(export_path))
        engine.info["load_seconds"] = round(time.perf_counter() - start, 2)
        classify = loaded.signatures["serving_default"]
        tokenize = loaded.signatures["tokenize"]
        classify_token_ids = loaded.signatures["classify_token_ids"]
        def run(texts):
            return classify(text=tf.constant(texts))["logits"].numpy(), None

        def tokenize_only(texts):
            out = tokenize(text=tf.constant(texts))
            return out["token_ids"].numpy(), out["padding_mask"].numpy()

        def classify_ids(packed):
            token_ids, padding_mask = packed
            return classify_token_ids(token_ids=tf.constant(token_ids), padding_mask=tf.constant(padding_mask))[
                "logits"].numpy()

        engine.run, engine.tokenize, engine.classify_ids = run, tokenize_only, classify_ids
        engine._loaded = loaded  # keeps the restored variables alive

    def unload():
        engine.run = engine.tokenize = engine.classify_ids = None
        engine._loaded = None

    engine.load, engine.unload = load, unload
    engine.info["call"] = ('tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(batch))'
                           '["logits"].numpy()')
    engine.info["tokenization"] = ('signatures["tokenize"](text=...), timed separately; cross-check: '
                                   'end to end minus signatures["classify_token_ids"] on its output')
    return engine


def _encode(tokenizer, texts):
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask


def torch_engine(tokenizer, model):
    import torch

    def run(texts):
        start = time.perf_counter()
        ids, mask = _encode(tokenizer, texts)
        tokenize_seconds = time.perf_counter() - start
        with torch.inference_mode():
            logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits
        return logits.numpy(), tokenize_seconds

    engine = ServingEngine("tokenizers + torch", load=lambda: None, unload=lambda: None, run=run,
                           info={"call": "encode_batch -> int64 arrays -> model(input_ids, attention_mask).logits "
                                         "under torch.inference_mode()",
                                 "attn_implementation": getattr(model.config, "_attn_implementation", None),
                                 "torch_threads": torch.get_num_threads(),
                                 "torch_interop_threads": torch.get_num_interop_threads()})
    return engine


def ort_engine(name, tokenizer, path, threads, precision, info):
    engine = ServingEngine(name, load=None, unload=None, precision=precision, info=dict(info))

    def load():
        session = ort_session(path, threads)
        input_names = [i.name for i in session.get_inputs()]
        output_names = [session.get_outputs()[0].name]

        def run(texts):
            start = time.perf_counter()
            ids, mask = _encode(tokenizer, texts)
            tokenize_seconds = time.perf_counter() - start
            return session.run(output_names, dict(zip(input_names, (ids, mask))))[0], tokenize_seconds

        engine.run = run
        engine.info.update(intra_op_num_threads=threads, providers=session.get_providers())

    def unload():
        engine.run = None

    engine.load, engine.unload = load, unload
    engine.info["call"] = "encode_batch -> int64 arrays -> InferenceSession.run (ORT_ENABLE_ALL, sequential)"
    return engine


# ----------------------------------------------------------------------------- measuring


def time_pass(engine, inputs):
    """One pass over `inputs` (lists of texts): per call (seconds, tokenization seconds or
    None), plus the logits of the first call."""
    calls, first_logits = [], None
    for texts in inputs:
        start = time.perf_counter()
        logits, tokenize_seconds = engine.run(texts)
        calls.append((time.perf_counter() - start, tokenize_seconds))
        if first_logits is None:
            first_logits = logits
        if logits.shape != (len(texts), NUM_CLASSES) or not np.all(np.isfinite(logits)):
            raise AssertionError(f"{engine.name}: logits of shape {logits.shape} for {len(texts)} texts, "
                                 f"finite: {bool(np.all(np.isfinite(logits)))}")
    return calls, first_logits


def time_calls(function, inputs, warm_all=False):
    """Seconds per call of `function` over `inputs`, after one untimed call (or, `warm_all`,
    an untimed pass: XLA compiles each shape); and the outputs."""
    for x in inputs if warm_all else inputs[:1]:
        function(x)
    times, outputs = [], []
    for x in inputs:
        start = time.perf_counter()
        outputs.append(function(x))
        times.append(time.perf_counter() - start)
    return times, outputs


def measure(engine, inputs, passes, distinct_shapes):
    """Warm-up pass (untimed: every shape once), then `passes` timed passes, with the CPU used
    by other processes meanwhile. Tokenization: inside the calls, or the `tokenize` signature
    on the same inputs afterwards."""
    start = time.perf_counter()
    _, logits = time_pass(engine, inputs)
    warmup_seconds = time.perf_counter() - start
    timed = []
    with report.LoadMeter() as load:
        for _ in range(passes):
            calls, _ = time_pass(engine, inputs)
            timed.append(calls)
        tokenize_times = classify_ids_times = None
        if engine.tokenize is not None:
            tokenize_times, packed = time_calls(engine.tokenize, inputs)
            classify_ids_times, _ = time_calls(engine.classify_ids, packed, warm_all=engine.info.get("jit_compile"))
    pass_seconds = [sum(t for t, _ in calls) for calls in timed]
    best = min(range(passes), key=lambda i: pass_seconds[i])
    all_calls = [t for calls in timed for t, _ in calls]
    if tokenize_times is None:
        tokenize_all = [tok for calls in timed for _, tok in calls]
        tokenize_best = [tok for _, tok in timed[best]]
    else:
        tokenize_all = tokenize_best = tokenize_times
    sentences = sum(len(texts) for texts in inputs)
    best_seconds = pass_seconds[best]
    tokenize_share = sum(tokenize_best) / best_seconds
    # Cross-check for the SavedModels: the share of the end-to-end time not spent in
    # classify_token_ids on the same (pre-tokenized) batches.
    share_by_difference = 1 - sum(classify_ids_times) / best_seconds if classify_ids_times else None
    return {
        "status": "ok",
        "calls_per_pass": len(inputs), "sentences_per_pass": sentences, "passes": passes,
        "distinct_shapes": distinct_shapes,
        "warmup_pass_seconds": warmup_seconds,
        "warmup_extra_seconds": warmup_seconds - statistics.median(pass_seconds),
        "pass_seconds": pass_seconds,
        "median_ms": 1000 * statistics.median(all_calls), "p90_ms": 1000 * report.percentile(all_calls, 90),
        "mean_ms": 1000 * statistics.mean(all_calls),
        "sentences_per_s": sentences / best_seconds, "ms_per_batch": 1000 * best_seconds / len(inputs),
        "tokenize_median_ms": 1000 * statistics.median(tokenize_all),
        "tokenize_seconds": sum(tokenize_best), "tokenize_share": tokenize_share,
        "tokenize_source": "tokenize signature, separate calls" if engine.tokenize else "inside each call",
        "tokenize_share_by_difference": share_by_difference,
        "classify_token_ids_ms": [round(1000 * t, 3) for t in classify_ids_times] if classify_ids_times else None,
        "other_load_cores": load.other_cores, "steal_cores": load.steal_cores, "own_cores": load.own_cores,
        "call_ms": [[round(1000 * t, 3) for t, _ in calls] for calls in timed],
        "tokenize_ms": [round(1000 * t, 4) for t in tokenize_best],
        "first_logits": logits.tolist(),
    }


def distinct_shapes(tokenizer, inputs):
    """Distinct [batch, longest row] shapes among the inputs (= XLA compilations)."""
    return len({(len(texts), max(len(e.ids) for e in tokenizer.encode_batch(texts))) for texts in inputs})


def add_derived(results):
    """Speed-ups over `tokenizers + ORT fp32` (> 1: faster) and logit differences from
    roberta_tf float32 on the first batch of each case."""
    by_name = {r["engine"]: r for r in results}
    reference, baseline = by_name.get(REFERENCE), by_name.get(BASELINE_ENGINE)
    for r in results:
        for case in ("b1", "b32"):
            m = r.get(case)
            if not m or m.get("status") != "ok":
                continue
            ref = reference.get(case) if reference else None
            ok_ref = ref if ref and ref.get("status") == "ok" else None
            m["speedup_vs_ort_fp32"] = (ok_ref["median_ms"] / m["median_ms"] if case == "b1" else
                                        m["sentences_per_s"] / ok_ref["sentences_per_s"]) if ok_ref else None
            base = baseline.get(case) if baseline else None
            if base and base.get("status") == "ok":
                diff = float(np.max(np.abs(np.array(m["first_logits"]) - np.array(base["first_logits"]))))
                m["max_abs_diff_vs_float32"] = diff
                m["argmax_agree_vs_float32"] = int(np.sum(np.argmax(m["first_logits"], -1) ==
                                                          np.argmax(base["first_logits"], -1)))
        b32 = r.get("b32") or {}
        diff = b32.get("max_abs_diff_vs_float32")
        if r["precision"] == "float32" and diff is not None:
            r["check"] = {"max_abs_diff": diff, "tolerance": FP32_TOLERANCE, "ok": diff <= FP32_TOLERANCE}
        elif diff is not None:
            r["check"] = {"max_abs_diff": diff, "tolerance": None, "ok": None}


def check_targets(results):
    by_name = {r["engine"]: r for r in results}

    def value(engine, case, key):
        m = (by_name.get(engine) or {}).get(case) or {}
        return m.get(key) if m.get("status") == "ok" else None

    targets = []
    for engine, binding in ((mode_name("float32", False), True), (mode_name("bfloat16", False), False)):
        if engine not in by_name:
            continue
        thr = value(engine, "b32", "sentences_per_s")
        ort = value(REFERENCE, "b32", "sentences_per_s")
        int8 = value("tokenizers + ORT int8", "b32", "sentences_per_s")
        b1 = value(engine, "b1", "median_ms")
        ort_b1 = value(REFERENCE, "b1", "median_ms")
        context = {"engine": engine, "binding": binding}
        targets += [
            report.target("b32 throughput / ORT fp32's", None if thr is None or ort is None else thr / ort, ">=",
                          TARGET_B32_VS_ORT, **context),
            report.target("b32 throughput / ORT int8's", None if thr is None or int8 is None else thr / int8, ">",
                          1.0, **context),
            report.target("b1 median latency / ORT fp32's", None if b1 is None or ort_b1 is None else b1 / ort_b1,
                          "<=", 1.0, **context),
            report.target("b32 tokenization share", value(engine, "b32", "tokenize_share"), "<",
                          TARGET_TOKENIZATION_SHARE, **context),
        ]
    return targets


# ----------------------------------------------------------------------------- part 2


def _sst2_preset():
    """(preset dir, training record, None), or (None, None, why not). Trains only with
    --train_classifier: training (minutes) is sst2_classifier's job, not this benchmark's."""
    try:
        if FLAGS.train_classifier:
            path = sst2_classifier.trained_preset()
        else:
            path = sst2_classifier.default_cache_dir()
            if not sst2_classifier.is_current(path):
                return None, None, (f"no current trained SST-2 preset at {path}: run `python -m "
                                    "benchmarks.sst2_classifier` first (trains it, minutes), or pass "
                                    "--train_classifier or --numerics_preset DIR")
        return Path(path), sst2_classifier.read_training_record(path), None
    except Exception as e:  # noqa: BLE001 (part 2 must not lose part 1's results)
        return None, None, f"benchmarks.sst2_classifier: {type(e).__name__}: {str(e)[:300]}"


def numerics(data_dir, threads, quick, workdir):
    """Encoder modes of the trained SST-2 classifier on the dev set (see the module docstring)."""
    from roberta_tf.export.saved_model import export_preset

    preset, training_record = FLAGS.numerics_preset, None
    if preset is None:
        preset, training_record, reason = _sst2_preset()
        if preset is None:
            return {"status": "skipped", "reason": reason}
    if not Path(preset).is_dir():
        return {"status": "skipped", "reason": f"no preset directory: {preset}"}
    texts, labels = load_sst2("dev", data_dir)
    if quick:
        texts, labels = texts[:64], labels[:64]
    inputs = batches(texts, FLAGS.numerics_batch)
    modes = [("float32", False), ("bfloat16", False), ("float32", True)]
    if quick:
        modes = modes[:2]  # each export takes ~10 s even for the small model
    outcome = {"status": "ok", "preset": str(preset), "sentences": len(texts), "batch": FLAGS.numerics_batch,
               "preset_training": {k: (training_record or {}).get(k) for k in ("name", "recipe_version", "geometry",
                                                                              "dev", "date", "git_commit")},
               "modes": {}}
    logits = {}
    for precision, jit in modes:
        name = mode_name(precision, jit)
        try:
            start = time.perf_counter()
            result = export_preset(preset, Path(workdir, "numerics", name.replace(" ", "_")), 1,
                                   precision=precision, jit_compile=jit, warmup_requests=False)
            export_seconds = time.perf_counter() - start
            classify = tf.saved_model.load(str(result.path)).signatures["serving_default"]
            start = time.perf_counter()
            logits[name] = np.concatenate([classify(text=tf.constant(b))["logits"].numpy() for b in inputs])
            outcome["modes"][name] = {"status": "ok", "export_seconds": round(export_seconds, 2),
                                      "run_seconds": round(time.perf_counter() - start, 2),
                                      "label_names": result.metadata.get("label_names")}
            del classify
        except Exception as e:  # noqa: BLE001
            outcome["modes"][name] = {"status": "failed", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
            logging.warning("numerics %s failed: %s", name, traceback.format_exc())
        gc.collect()
    base = logits.get(mode_name("float32", False))
    for name, values in logits.items():
        m = outcome["modes"][name]
        predicted = np.argmax(values, -1)
        m["accuracy"] = float(np.mean(predicted == labels))
        if base is not None:
            agree = predicted == np.argmax(base, -1)
            m["max_abs_diff_vs_float32"] = float(np.max(np.abs(values - base)))
            m["mean_abs_diff_vs_float32"] = float(np.mean(np.abs(values - base)))
            m["label_agreement"] = float(np.mean(agree))
            m["disagreements"] = int(np.sum(~agree))
            m["disagreeing_sentences"] = [texts[i] for i in np.flatnonzero(~agree)[:5]]
        m["logit_abs_max"] = float(np.max(np.abs(values)))
    return outcome


# ----------------------------------------------------------------------------- reporting


def _share(case):
    """The tok % cell of a case: the tokenization share, the cross-check in parentheses."""
    def cell(row):
        m = row.get(case) or {}
        if "tokenize_share" not in m:
            return None
        cross = m.get("tokenize_share_by_difference")
        return f"{100 * m['tokenize_share']:.1f}" + ("" if cross is None else f" ({100 * cross:.1f})")
    return cell


def _warmup(row):
    warm = [m["warmup_extra_seconds"] for m in (row.get("b1"), row.get("b32")) if m and "warmup_extra_seconds" in m]
    return sum(warm) if warm else None


def _check(row):
    check = row.get("check")
    return check and f"{check['max_abs_diff']:.1e}" + {True: " ok", False: " FAIL", None: ""}[check["ok"]]


Column = report.Column
TABLE = [  # a case that did not run shows "-" (the reason is printed below the table)
    Column("engine", 24, "engine", align="<"), report.SEPARATOR,
    Column("b1 med ms", 9, ("b1", "median_ms"), ".2f"), Column("p90 ms", 7, ("b1", "p90_ms"), ".2f"),
    Column("tok %", 11, _share("b1")), Column("x ORT", 6, ("b1", "speedup_vs_ort_fp32"), ".2f"), report.SEPARATOR,
    Column("b32 sent/s", 10, ("b32", "sentences_per_s"), ".2f"), Column("ms/batch", 9, ("b32", "ms_per_batch"), ".1f"),
    Column("tok %", 11, _share("b32")), Column("x ORT", 6, ("b32", "speedup_vs_ort_fp32"), ".2f"), report.SEPARATOR,
    Column("warm-up +s", 10, _warmup, ".1f"), Column("max|d| f32", 10, _check),
]
NUMERICS_TABLE = [
    Column("mode", 24, "mode", align="<"), Column("max|d| vs f32", 13, "max_abs_diff_vs_float32", ".2e"),
    Column("agreement", 10, "label_agreement", ".4f"), Column("disagree", 8, "disagreements", "d"),
    Column("accuracy", 9, "accuracy", ".4f"),
]


def format_results(results):
    """The table, then why each case that did not run did not."""
    lines = [report.format_table(TABLE, results)]
    lines += [f"  {r['engine']} {case}: {r[case]['status']}: {r[case].get('reason', '')[:200]}"
              for r in results for case in ("b1", "b32") if r.get(case) and r[case].get("status") != "ok"]
    return "\n".join(lines)


def format_numerics(outcome):
    if outcome.get("status") != "ok":
        return f"Numerics of the encoder modes: skipped ({outcome.get('reason')})."
    return (f"Numerics of the encoder modes: {outcome['preset']}, {outcome['sentences']} SST-2 dev sentences, "
            f"batch {outcome['batch']}\n" +
            report.format_table(NUMERICS_TABLE, [{"mode": name, **m} for name, m in outcome["modes"].items()]))


def write_plot(results, path, title):
    """Batch-1 median latency and batch-32 throughput per engine, the tokenization share of
    the time stacked at the bottom of each bar (hatched); and the share itself per case."""
    ok = [r for r in results if (r.get("b1") or {}).get("status") == "ok" or (r.get("b32") or {}).get("status") == "ok"]
    if not ok:
        return None
    names = [r["engine"] for r in ok]
    xs = np.arange(len(ok))
    colors = ["tab:blue" if r["engine"].startswith("roberta_tf") else "tab:orange" for r in ok]

    def share(row, case):
        return (row.get(case) or {}).get("tokenize_share") or 0.0

    def draw(fig, axes):
        panels = (("b1", "median_ms", "batch 1: median ms per sentence (lower is better)"),
                  ("b32", "sentences_per_s", "batch 32: sentences/s (higher is better)"))
        for ax, (case, key, label) in zip(axes, panels):
            values = np.array([(r.get(case) or {}).get(key) or 0.0 for r in ok])
            shares = np.array([share(r, case) for r in ok])
            ax.bar(xs, values * (1 - shares), bottom=values * shares, color=colors, label="model (rest of the call)")
            ax.bar(xs, values * shares, color=colors, hatch="///", edgecolor="black", alpha=0.6,
                   label="tokenization share")
            for x, v, s in zip(xs, values, shares):
                if v:
                    ax.text(x, v, f"{v:.3g}\n{100 * s:.1f}% tok", ha="center", va="bottom", fontsize=7)
            ax.set_xticks(xs, names, rotation=30, ha="right", fontsize=8)
            ax.set_ylabel(label)
            ax.margins(y=0.18)
            ax.legend(fontsize=7, loc="upper left")
        by_name = {r["engine"]: r for r in ok}
        report.grouped_bars(axes[2], names, ["batch 1", "batch 32"],
                            lambda name, case: 100 * share(by_name[name], "b" + case.split()[1]),
                            labels="%.1f", fontsize=6, ticks=dict(rotation=30, ha="right", fontsize=8))
        axes[2].axhline(100 * TARGET_TOKENIZATION_SHARE, color="gray", linestyle="--", linewidth=0.8,
                        label=f"target at batch 32 (< {100 * TARGET_TOKENIZATION_SHARE:g}%)")
        axes[2].set_ylabel("tokenization, % of the end-to-end time")
        axes[2].legend(fontsize=7)
        fig.suptitle(title, fontsize=10)

    return report.plot(path, draw, 1, 3, figsize=(18, 5.5), gridspec_kw={"width_ratios": [3, 3, 2]})


# ----------------------------------------------------------------------------- main


def build_engines(geometry, threads, data_dir, modes, workdir):
    """Exports every SavedModel and the ONNX models; returns (engines, set-up info, hf tokenizer)."""
    import torch

    from roberta_tf.export.saved_model import export_saved_model

    setup = {}
    set_torch_threads(threads)
    start = time.perf_counter()
    torch_model = torch_classifier(geometry, perturbation=PERTURBATION)
    classifier = roberta_tf_classifier(torch_model)
    tokenizer = roberta_tf_tokenizer(data_dir)
    setup["build_models_seconds"] = round(time.perf_counter() - start, 2)
    setup["params"] = int(classifier.count_params())
    engines = []
    for mode in modes:
        precision, jit = MODES[mode]
        name = mode_name(precision, jit)
        start = time.perf_counter()
        try:
            result = export_saved_model(classifier, tokenizer, Path(workdir, "saved_model", mode), 1,
                                        precision=precision, jit_compile=jit, warmup_requests=False)
        except Exception as e:  # noqa: BLE001 (an export that fails is a row, not the end of the run)
            setup[name] = {"status": "failed", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
            logging.warning("export %s failed: %s", name, traceback.format_exc())
            continue
        engine = saved_model_engine(name, result.path, precision, jit)
        logging.info("Exported %s in %.1f s", name, time.perf_counter() - start)
        engine.info.update(export_seconds=round(time.perf_counter() - start, 2), precision=precision,
                           path=str(result.path),
                           saved_model_bytes=sum(p.stat().st_size for p in result.path.rglob("*") if p.is_file()))
        engines.append(engine)
        gc.collect()
    del classifier
    gc.collect()

    hf = hf_tokenizer(data_dir)
    torch_model.eval()
    engines.append(torch_engine(hf, torch_model))
    onnx_path = Path(workdir, "roberta_classifier.onnx")
    start = time.perf_counter()
    exporter, errors = export_onnx(torch_model, onnx_path, geometry)
    fp32_info = {"exporter": exporter, "export_errors": errors, "export_seconds": round(time.perf_counter() - start, 2),
                 "onnx_bytes": onnx_path.stat().st_size}
    engines.append(ort_engine(REFERENCE, hf, onnx_path, threads, "float32", fp32_info))
    logging.info("Exported the ONNX model in %.1f s", fp32_info["export_seconds"])
    try:
        int8_path, int8_info = quantize_int8(onnx_path, workdir)
        engines.append(ort_engine("tokenizers + ORT int8", hf, int8_path, threads, "int8", int8_info))
    except Exception as e:  # noqa: BLE001
        setup["tokenizers + ORT int8"] = {"status": "failed", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
        logging.warning("int8 quantization failed: %s", traceback.format_exc())
    setup["torch_num_threads"] = torch.get_num_threads()
    return engines, setup, hf


def main(argv):
    del argv
    threads = FLAGS.threads
    os.environ["RAYON_NUM_THREADS"] = str(threads)  # before the first encode_batch
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    unknown = set(FLAGS.modes) - set(MODES)
    if unknown:
        raise app.UsageError(f"unknown --modes {sorted(unknown)}; choose from {sorted(MODES)}")
    geometry_name = FLAGS.geometry or ("tiny" if FLAGS.quick else "base")
    modes = FLAGS.modes
    if FLAGS.quick and not FLAGS["modes"].present:
        modes = ["float32", "bfloat16_xla"]  # both precisions and XLA, in half the export time
    geometry = GEOMETRIES[geometry_name]
    if FLAGS.quick:
        config = {"b1_sentences": 6, "b1_passes": 1, "b32_batches": 2, "b32_passes": 1}
    else:
        config = {"b1_sentences": FLAGS.b1_sentences, "b1_passes": FLAGS.b1_passes,
                  "b32_batches": FLAGS.b32_batches, "b32_passes": FLAGS.b32_passes}
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, threads=threads, rayon_num_threads=os.environ.get("RAYON_NUM_THREADS"),
                               tf_onednn_opts=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"))
    texts, _ = load_sst2("dev", FLAGS.data_dir)
    b1_inputs = [[t] for t in texts[: config["b1_sentences"]]]
    b32_inputs = batches(texts, BATCH)[: config["b32_batches"]]
    b32_inputs = [b for b in b32_inputs if len(b) == BATCH]

    results = []
    with tempfile.TemporaryDirectory(prefix="serving_benchmark_") as workdir:
        start = time.perf_counter()
        engines, setup, hf = build_engines(geometry, threads, FLAGS.data_dir, modes, workdir)
        setup["seconds"] = round(time.perf_counter() - start, 2)
        logging.info("Set-up (exports, ONNX, quantization) took %.0f s", setup["seconds"])
        shapes = {"b1": distinct_shapes(hf, b1_inputs), "b32": distinct_shapes(hf, b32_inputs)}
        for name, failure in setup.items():
            if isinstance(failure, dict) and failure.get("status") == "failed":
                results.append({"engine": name, "precision": None, "info": {}, "b1": failure, "b32": failure})
        for engine in engines:
            row = {"engine": engine.name, "precision": engine.precision, "info": engine.info}
            try:
                engine.load()
            except Exception as e:  # noqa: BLE001
                failure = {"status": "failed", "reason": f"load: {type(e).__name__}: {str(e)[:300]}"}
                row.update(b1=failure, b32=failure)
                results.append(row)
                continue
            for case, inputs, passes in (("b1", b1_inputs, config["b1_passes"]),
                                         ("b32", b32_inputs, config["b32_passes"])):
                try:
                    row[case] = measure(engine, inputs, passes, shapes[case])
                    m = row[case]
                    logging.info("%-24s %s: median %.2f ms, %.2f sentences/s, tokenization %.1f%%, warm-up +%.1f s "
                                 "(others: %s cores)", engine.name, case, m["median_ms"], m["sentences_per_s"],
                                 100 * m["tokenize_share"], m["warmup_extra_seconds"],
                                 report.format_value(m["other_load_cores"], ".2f"))
                except Exception as e:  # noqa: BLE001
                    row[case] = {"status": "failed", "reason": f"{type(e).__name__}: {str(e)[:300]}"}
                    logging.warning("%s %s failed: %s", engine.name, case, traceback.format_exc())
            engine.unload()
            results.append(row)
            gc.collect()
            time.sleep(1.0)  # let the finished engine's spinning worker threads go idle
        del engines
        gc.collect()
        add_derived(results)
        targets = check_targets(results)

        numerics_report = {"status": "skipped", "reason": "--nonumerics"}
        if FLAGS.numerics:
            with report.LoadMeter() as load:
                numerics_report = numerics(FLAGS.data_dir, threads, FLAGS.quick, workdir)
            numerics_report["other_load_cores"] = load.other_cores

    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, "geometry_name": geometry_name, "geometry": geometry,
                   "num_classes": NUM_CLASSES, "weights": f"HF init (seed {SEED}) + N(0, {PERTURBATION}) noise",
                   "batch": BATCH, **config, "distinct_shapes": shapes, "modes": modes,
                   "reference_engine": REFERENCE, "baseline_engine": BASELINE_ENGINE,
                   "fp32_tolerance": FP32_TOLERANCE, "padding": "longest row of each batch, every engine",
                   "truncation": 512},
        "setup": setup,
        "results": results,
        "targets": targets,
        "numerics": numerics_report,
        "total_seconds": time.perf_counter() - started,
    }
    g = geometry
    title = (f"RoBERTa classifier end to end (strings -> logits), {g['num_layers']} layers x {g['hidden_dim']} "
             f"({geometry_name}), SST-2 dev, {threads} threads, {report.cpu_model()}")
    written = report.save(FLAGS.output_dir, "serving_benchmark", record, lambda path: write_plot(results, path, title))

    others = [m.get("other_load_cores") for r in results for m in (r.get("b1") or {}, r.get("b32") or {})]
    print("\n" + report.load_summary(info, threads, others))
    print(f"Geometry {geometry_name} ({setup.get('params')} params), SST-2 dev: batch 1 = first "
          f"{len(b1_inputs)} sentences x {config['b1_passes']} passes ({shapes['b1']} distinct lengths); batch 32 = "
          f"first {len(b32_inputs)} batches x {config['b32_passes']} passes ({shapes['b32']} distinct shapes). "
          f"x ORT = speed-up over {REFERENCE} (> 1 faster); tok % = tokenization share of the time (roberta_tf: the tokenize signature's time over "
          f"the end-to-end time; in parentheses 1 - classify_token_ids' time over it); warm-up +s = "
          f"first pass minus a timed pass (XLA: compiling every shape); max|d| f32 = max abs logit difference from "
          f"{BASELINE_ENGINE} on the first batch of 32 (float32 engines must be <= {FP32_TOLERANCE:g}).")
    print(format_results(results))
    print(report.format_targets("Targets (default float32 SavedModel; bfloat16 informative):", targets))
    print(format_numerics(numerics_report))
    print(written)


if __name__ == "__main__":
    app.run(main)
