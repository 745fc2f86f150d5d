"""XLM-R (SentencePiece) tokenization benchmark: roberta_tf's integer-op SentencePiece against
the `sentencepiece` package and TF-Text, on the XNLI mix.

Two SentencePiece models: BPEmb's English BPE model (100,000 pieces, from ../shared/data) and
a unigram model of XLM-R's size (250,002 pieces) trained here with `sentencepiece`'s trainer
on XNLI dev text (the recipe of tests/sentencepiece_models.py; cached). Texts: distinct XNLI
dev premises and hypotheses, the 15 languages interleaved. In one run on one machine:

- texts/s at batch 1, 32 and 256 of roberta_tf's `XLMRobertaTokenizer` (the Keras layer called
  eagerly, which runs its one traced graph, and the layer inside a `tf.function`), the
  `sentencepiece` package (`encode` of a list with num_threads=1 and 2; `encode` of one text),
  TF-Text's `SentencepieceTokenizer` and `FastSentencepieceTokenizer` (in a `tf.function`);
- per engine, the texts whose ids differ from `sentencepiece`'s mapped to fairseq's ids
  (+1, `<unk>` 0 -> 3), checked on the measured texts;
- TFLite latency per text (median, p90) of roberta_tf's builtin-only tokenizer model against
  TF-Text's FastSentencepieceTokenizer model (a TFLite custom op, registered from
  `tensorflow_text.tflite_registrar`);
- the ratio of each roberta_tf engine to `sentencepiece`'s batch encode at the same batch
  size with 1 and 2 threads, and the issue's target (batched throughput >= `sentencepiece`'s
  batch encode with as many threads as TF's intra-op pool), reported, not asserted.

Run from the repository root (data from ../shared/data):

    python -m benchmarks.sentencepiece_benchmark [--quick] [--output_dir DIR] [--tf_threads N]

It prints the tables and targets and writes sentencepiece_benchmark.json and .png to
--output_dir. Details: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, InterpreterWithCustomOps  # noqa: E402

from benchmarks import DATA_DIR, RESULTS_DIR, report  # noqa: E402
from benchmarks.data import batches  # noqa: E402
from benchmarks.sentencepiece_models import XNLI_LANGUAGES, bpemb_model, unigram_model, xnli_mix  # noqa: E402
from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite  # noqa: E402
from roberta_tf.models import XLMRobertaTokenizer  # noqa: E402

try:
    import sentencepiece
except ImportError:  # the reference: without it the benchmark says so and stops
    sentencepiece = None

_TF_TEXT_IMPORT_ERROR = None
try:
    import tensorflow_text
except ImportError as e:  # optional competitor: its rows say "not installed"
    tensorflow_text = None
    _TF_TEXT_IMPORT_ERROR = str(e)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tensorflow-text", "tf-keras", "sentencepiece", "ai-edge-litert", "numpy", "absl-py",
            "matplotlib"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
flags.DEFINE_string("cache_dir", None, "Where the trained 250k-piece unigram model is cached "
                    "(default: $ROBERTA_TF_CACHE/benchmarks).")
flags.DEFINE_bool("quick", False, "Smoke run: 256 texts, 64 TFLite texts, --min_seconds 0.2, --min_repeats 1, "
                  "--max_seconds 1.")
flags.DEFINE_integer("num_texts", 2048, "XNLI mix texts tokenized by every throughput engine.")
flags.DEFINE_integer("tflite_texts", 600, "XNLI mix texts (the first of the measured ones) for TFLite latency.")
flags.DEFINE_float("min_seconds", 2.0, "Time passes until at least this long has elapsed per measurement.")
flags.DEFINE_integer("min_repeats", 3, "At least this many timed passes per measurement...")
flags.DEFINE_float("max_seconds", 8.0, "...but no new pass starts after this long (bounds slow engines).")
flags.DEFINE_integer("tf_threads", 0, "TF intra/inter-op threads (0: TF's default, one per CPU).")
flags.DEFINE_list("models", ["bpemb-en-bpe-100k", "unigram-250k"], "Which SentencePiece models to measure.")

BATCH_SIZES = (1, 32, 256)
SPM_THREADS = (1, 2)
BPEMB = "bpemb-en-bpe-100k"
UNIGRAM = "unigram-250k"
SPM_UNK, FAIRSEQ_UNK = 0, 3
TARGET_VS_SPM = 1.0
MAX_MISMATCH_EXAMPLES = 3
OURS, SPM, TF_TEXT = "roberta_tf", "sentencepiece", "tf_text"
# TF-Text's FastSentencepiece converter (core/kernels/sentencepiece/model_converter.cc) keeps
# the pieces, scores and normalizer but not `model_type` (nor byte fallback): it always
# segments by best score, as a unigram model. On a BPE model its ids are wrong, silently.
FAST_ON_BPE_NOTE = ("FastSentencepieceTokenizer supports unigram models only: its converter drops model_type "
                    "and segments every model as unigram, so on a BPE model its ids differ (no error)")


# ----------------------------------------------------------------------------- data








# ----------------------------------------------------------------------------- models












# ----------------------------------------------------------------------------- engines


@dataclasses.dataclass
class Engine:
    """One way to tokenize. `prepare` turns a batch of str into the engine's native input
    (outside the timing), `run` tokenizes it, `to_ids` turns `run`'s output into fairseq id
    lists (outside the timing)."""

    name: str
    family: str
    batch_size: int
    threads: Any  # int, or a description ("TF 2")
    prepare: Callable[[list], Any]
    run: Callable[[Any], Any]
    to_ids: Callable[[Any], list]
    setup_seconds: float = 0.0


def fairseq_ids(spm_ids):
    """SentencePiece ids -> XLM-R's fairseq ids: every id + 1, except `<unk>` 0 -> 3."""
    return [FAIRSEQ_UNK if i == SPM_UNK else i + 1 for i in spm_ids]


def _ragged_ids(ragged):
    return ragged.to_list()


def _ragged_spm_ids(ragged):
    return [fairseq_ids(row) for row in ragged.to_list()]


def _strings(batch):
    return tf.constant(batch, tf.string)


def ours_engines(tokenizer, tf_threads):
    """The Keras layer called eagerly (its one traced graph) and inside a tf.function."""
    in_function = tf.function(lambda texts: tokenizer(texts), input_signature=[tf.TensorSpec([None], tf.string)])
    engines = []
    for size in BATCH_SIZES:
        engines.append(Engine(f"roberta_tf layer b{size}", OURS, size, tf_threads, _strings, tokenizer, _ragged_ids))
        engines.append(Engine(f"roberta_tf tf.function b{size}", OURS, size, tf_threads, _strings, in_function,
                              _ragged_ids))
    return engines


def spm_thread_counts(ours_threads):
    """1 and 2 threads, and TF's thread count where it differs (the target's reference)."""
    return sorted(set(SPM_THREADS) | {ours_threads})


def spm_engines(proto, ours_threads):
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    engines = [Engine("sentencepiece encode(text)", SPM, 1, 1, lambda b: b[0], processor.encode,
                      lambda ids: [fairseq_ids(ids)])]
    for size in BATCH_SIZES[1:]:
        for threads in spm_thread_counts(ours_threads):
            engines.append(Engine(
                f"sentencepiece encode(list) t{threads} b{size}", SPM, size, threads, list,
                lambda b, threads=threads: processor.encode(b, num_threads=threads),
                lambda rows: [fairseq_ids(row) for row in rows],
            ))
    return engines


def tf_text_engines(proto, tf_threads):
    engines = []
    for label, tokenizer in (("Sentencepiece", tensorflow_text.SentencepieceTokenizer(proto)),
                             ("FastSentencepiece", tensorflow_text.FastSentencepieceTokenizer(proto))):
        graph = tf.function(tokenizer.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
        engines.extend(Engine(f"tf_text {label} b{size}", TF_TEXT, size, tf_threads, _strings, graph,
                              _ragged_spm_ids) for size in BATCH_SIZES)
    return engines


def build_engines(proto, tokenizer, tf_threads):
    """Every throughput engine, each with the seconds its construction took."""
    builders = [("roberta_tf", lambda: ours_engines(tokenizer, tf_threads)),
                ("sentencepiece", lambda: spm_engines(proto, tf_threads))]
    if tensorflow_text is not None:
        builders.append(("tf_text", lambda: tf_text_engines(proto, tf_threads)))
    engines = []
    for label, build in builders:
        start = time.perf_counter()
        built = build()
        for engine in built:
            engine.setup_seconds = time.perf_counter() - start
        engines.extend(built)
    return engines


# ----------------------------------------------------------------------------- TFLite engines


@dataclasses.dataclass
class TfliteEngine:
    """One text per call: `prepare(text)` builds the input (outside the timing), `run` invokes,
    `to_ids` turns the outputs into a fairseq id list."""

    name: str
    prepare: Callable[[str], Any]
    run: Callable[[Any], Any]
    to_ids: Callable[[Any], list]
    setup_seconds: float = 0.0
    size_bytes: int = 0
    note: str = ""


def ours_tflite_engine(tokenizer):
    model = export_tokenizer_tflite(tokenizer)
    runner = Interpreter(model_content=model).get_signature_runner()
    return TfliteEngine(
        "roberta_tf TFLite (builtin ops)",
        prepare=lambda text: np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32),
        run=lambda utf8: runner(utf8_bytes=utf8)["token_ids"],
        to_ids=lambda token_ids: token_ids.tolist(),
        size_bytes=len(model),
        note="ai_edge_litert Interpreter, signature runner (resizes the input per text)",
    )


class _FastSentencepieceModule(tf.Module):
    """TF-Text's FastSentencepieceTokenizer as a module, so the converter keeps its signature:
    strings in, the ids and row splits out; the tokenizer is the
    `TFText>FastSentencepieceTokenize` custom op."""

    def __init__(self, proto):
        super().__init__()
        self.tokenizer = tensorflow_text.FastSentencepieceTokenizer(proto)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def tokenize(self, texts):
        ragged = self.tokenizer.tokenize(texts)
        return {"token_ids": ragged.flat_values, "row_splits": ragged.row_splits}


def tf_text_fast_tflite_model(proto):
    module = _FastSentencepieceModule(proto)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.tokenize.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True
    return converter.convert()


def tf_text_fast_tflite_engine(proto):
    model = tf_text_fast_tflite_model(proto)
    interpreter = InterpreterWithCustomOps(
        model_content=model, custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)
    runner = interpreter.get_signature_runner()
    return TfliteEngine(
        "tf_text FastSentencepiece TFLite (custom op)",
        prepare=lambda text: np.array([text.encode("utf-8")], dtype=object),
        run=lambda texts: runner(texts=texts)["token_ids"],
        to_ids=lambda token_ids: fairseq_ids(token_ids.tolist()),
        size_bytes=len(model),
        note="ai_edge_litert InterpreterWithCustomOps + tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS, "
             "signature runner",
    )


# ----------------------------------------------------------------------------- measuring






def load_fields(load):
    return {"other_load_cores": load.other_cores, "steal_cores": load.steal_cores, "own_cores": load.own_cores}


def measure(engine, model_name, texts, reference_ids, timing):
    """One engine: an untimed pass (collects the ids, warms up), then timed passes."""
    inputs = [engine.prepare(b) for b in batches(texts, engine.batch_size)]
    warmup_start = time.perf_counter()
    ids = [row for x in inputs for row in engine.to_ids(engine.run(x))]
    warmup_seconds = time.perf_counter() - warmup_start
    num_mismatches, examples = report.id_mismatches(ids, reference_ids, texts, MAX_MISMATCH_EXAMPLES, 48)
    with report.LoadMeter() as load:
        times = report.time_passes(engine.run, inputs, **timing)
    best = min(times)
    num_tokens = sum(len(row) for row in ids)
    result = {
        "model": model_name, "engine": engine.name, "family": engine.family, "status": "ok",
        "batch_size": engine.batch_size, "threads": engine.threads, "num_texts": len(texts),
        "num_tokens": num_tokens, "mismatches": num_mismatches, "mismatch_examples": examples,
        "setup_seconds": round(engine.setup_seconds, 4), "warmup_pass_seconds": round(warmup_seconds, 4),
        "repeats": len(times), "pass_seconds": [round(t, 6) for t in times], "best_pass_seconds": best,
        "median_pass_seconds": statistics.median(times), "texts_per_s": len(texts) / best,
        "tokens_per_s": num_tokens / best, "ms_per_text": 1000 * best / len(texts),
        "texts_per_s_median": len(texts) / statistics.median(times), **load_fields(load),
    }
    logging.info("%-14s %-38s %9.0f texts/s  %d passes, %d mismatches, others %.2f cores", model_name, engine.name,
                 result["texts_per_s"], len(times), num_mismatches, load.other_cores or 0)
    return result


def per_text_latencies(engine, inputs, timing):
    """Seconds per call for each input, over passes timed like `time_passes`: [passes][texts]."""
    passes = []
    start = time.perf_counter()
    while not passes or (
        time.perf_counter() - start < timing["max_seconds"]
        and (len(passes) < timing["min_repeats"] or time.perf_counter() - start < timing["min_seconds"])
    ):
        latencies = []
        for x in inputs:
            call_start = time.perf_counter()
            engine.run(x)
            latencies.append(time.perf_counter() - call_start)
        passes.append(latencies)
    return passes


def measure_tflite(engine, model_name, texts, reference_ids, timing):
    """Latency per text: each text's median over the timed passes, then the median and p90 of
    those over the texts."""
    inputs = [engine.prepare(text) for text in texts]
    ids = [engine.to_ids(engine.run(x)) for x in inputs]
    num_mismatches, examples = report.id_mismatches(ids, reference_ids, texts, MAX_MISMATCH_EXAMPLES, 48)
    with report.LoadMeter() as load:
        passes = per_text_latencies(engine, inputs, timing)
    per_text = np.median(np.asarray(passes), axis=0) * 1000
    result = {
        "model": model_name, "engine": engine.name, "status": "ok", "num_texts": len(texts),
        "num_tokens": sum(len(row) for row in ids), "mismatches": num_mismatches, "mismatch_examples": examples,
        "setup_seconds": round(engine.setup_seconds, 3), "model_bytes": engine.size_bytes, "how": engine.note,
        "repeats": len(passes), "median_ms": float(np.median(per_text)), "p90_ms": report.percentile(per_text, 90),
        "mean_ms": float(per_text.mean()), "max_ms": float(per_text.max()),
        "texts_per_s": len(texts) / min(sum(p) for p in passes), **load_fields(load),
    }
    logging.info("%-14s %-44s median %.3f ms, p90 %.3f ms, %d mismatches", model_name, engine.name,
                 result["median_ms"], result["p90_ms"], num_mismatches)
    return result


def failed(model_name, engine_name, status, reason, **extra):
    return {"model": model_name, "engine": engine_name, "status": status, "reason": reason, **extra}


def built_timed(build):
    """`build()` and the seconds it took."""
    start = time.perf_counter()
    value = build()
    return value, time.perf_counter() - start


# ----------------------------------------------------------------------------- ratios and targets


def spm_reference(results, model_name, batch_size, threads):
    """texts/s of sentencepiece at `batch_size` with `threads` (batch 1: encode of one text)."""
    for r in results:
        if r["status"] == "ok" and r["model"] == model_name and r["family"] == SPM and r["batch_size"] == batch_size:
            if batch_size == 1 or r["threads"] == threads:
                return r["texts_per_s"]
    return None


def add_ratios(results):
    """Each measurement's texts/s over sentencepiece's at the same batch size, 1 and 2 threads."""
    for r in results:
        if r["status"] != "ok":
            continue
        for threads in SPM_THREADS:
            base = spm_reference(results, r["model"], r["batch_size"], threads)
            r[f"x_spm_t{threads}"] = r["texts_per_s"] / base if base else None


def add_tflite_ratios(rows):
    fast = {r["model"]: r["median_ms"] for r in rows if r["status"] == "ok" and r["engine"].startswith("tf_text")}
    for r in rows:
        if r["status"] == "ok":
            base = fast.get(r["model"])
            r["median_vs_tf_text_fast"] = r["median_ms"] / base if base else None


def check_targets(results, ours_threads):
    """The issue's target: roberta_tf's batched throughput >= sentencepiece's batch encode with
    the same number of threads (TF's intra-op pool); plus the parity of every roberta_tf engine."""
    targets = []
    for r in results:
        if r["status"] != "ok" or r["family"] != OURS:
            continue
        context = {"model": r["model"], "engine": r["engine"]}
        targets.append(report.target("texts whose ids differ from sentencepiece", r["mismatches"], "<=", 0, **context))
        if r["batch_size"] > 1:
            base = spm_reference(results, r["model"], r["batch_size"], ours_threads)
            targets.append(report.target(f"x sentencepiece encode(list) t{ours_threads}",
                                         r["texts_per_s"] / base if base else None, ">=", TARGET_VS_SPM, **context))
    return targets


# ----------------------------------------------------------------------------- reporting


TABLE = [
    report.Column("model", 17, "model", align="<"),
    report.Column("engine", 38, "engine", align="<"),
    report.Column("batch", 5, "batch_size"),
    report.Column("thr", 4, "threads"),
    report.Column("texts/s", 9, "texts_per_s", ".0f"),
    report.Column("tokens/s", 10, "tokens_per_s", ".0f"),
    report.Column("ms/text", 8, "ms_per_text", ".4f"),
    report.Column("ids differ", 10, lambda r: f"{r['mismatches']:>4}/{r['num_texts']:<5}"),
    report.Column("x spm t1", 8, "x_spm_t1", ".3g"),
    report.Column("x spm t2", 8, "x_spm_t2", ".3g"),
    report.Column("cores", 5, "own_cores", ".2f"),
    report.Column("others", 6, "other_load_cores", ".2f"),
]

TFLITE_TABLE = [
    report.Column("model", 17, "model", align="<"),
    report.Column("engine", 44, "engine", align="<"),
    report.Column("median ms", 9, "median_ms", ".4f"),
    report.Column("p90 ms", 8, "p90_ms", ".4f"),
    report.Column("texts/s", 8, "texts_per_s", ".0f"),
    report.Column("ids differ", 10, lambda r: f"{r['mismatches']:>4}/{r['num_texts']:<5}"),
    report.Column("/ Fast", 6, "median_vs_tf_text_fast", ".2f"),
    report.Column("MB", 6, lambda r: r["model_bytes"] / 1e6, ".1f"),
    report.Column("others", 6, "other_load_cores", ".2f"),
]


def _thousands(value):
    return f"{value / 1000:.0f}k" if value >= 10_000 else f"{value:.0f}"


def write_plot(results, tflite_rows, path):
    """texts/s per engine and model (log scale), and TFLite latency per text."""
    ok = [r for r in results if r["status"] == "ok"]
    speed = {(r["engine"], r["model"]): r["texts_per_s"] for r in ok}
    lite = [r for r in tflite_rows if r["status"] == "ok"]

    def draw(fig, axes):
        ax = axes[0]
        report.grouped_bars(ax, list(dict.fromkeys(r["engine"] for r in ok)),
                            list(dict.fromkeys(r["model"] for r in ok)),
                            lambda e, m: speed.get((e, m)), labels=_thousands, fontsize=6,
                            ticks=dict(rotation=35, ha="right", fontsize=7))
        ax.set_yscale("log")
        ax.set_ylabel("texts/s (best pass, log scale)")
        ax.set_title(f"XLM-R SentencePiece tokenization, XNLI mix, {os.cpu_count()} CPU cores")
        ax.legend()
        ax = axes[1]
        latency = {(r["engine"], r["model"]): r["median_ms"] for r in lite}
        report.grouped_bars(ax, list(dict.fromkeys(r["engine"] for r in lite)),
                            list(dict.fromkeys(r["model"] for r in lite)), lambda e, m: latency.get((e, m)),
                            labels="%.4f")
        ax.set_yscale("log")
        ax.set_ylabel("median ms per text (log scale)")
        ax.set_title("TFLite, one text per call")
        ax.legend()

    return report.plot(path, draw, nrows=2, ncols=1, figsize=(12, 10), gridspec_kw={"height_ratios": [2, 1]})


# ----------------------------------------------------------------------------- main


def tflite_measurements(model_name, proto, tokenizer, texts, reference_ids, timing):
    """Latency rows of roberta_tf's builtin-only model and TF-Text's Fast custom-op model; an
    engine that cannot be built here (conversion error, missing package) is a row saying why."""
    fast_name = "tf_text FastSentencepiece TFLite (custom op)"
    builders = [("roberta_tf TFLite (builtin ops)", lambda: ours_tflite_engine(tokenizer))]
    rows = []
    if tensorflow_text is not None:
        builders.append((fast_name, lambda: tf_text_fast_tflite_engine(proto)))
    else:
        rows.append(failed(model_name, fast_name, "not installed", _TF_TEXT_IMPORT_ERROR))
    for name, build in builders:
        try:
            engine, seconds = built_timed(build)
        except Exception as e:  # noqa: BLE001 (an engine that cannot run here is reported, not fatal)
            logging.exception("%s: %s failed to build", model_name, name)
            message = str(e).strip()
            rows.append(failed(model_name, name, "failed", f"{type(e).__name__}: {message.splitlines()[0]}",
                               detail=message[:4000]))
            continue
        engine.setup_seconds = seconds
        rows.append(measure_tflite(engine, model_name, texts, reference_ids, timing))
    return rows


def measure_model(model_name, proto, texts, tflite_texts, timing, tf_threads):
    """Every engine on one SentencePiece model: (throughput rows, TFLite rows, notes)."""
    reference = sentencepiece.SentencePieceProcessor(model_proto=proto)
    reference_ids = [fairseq_ids(row) for row in reference.encode(texts)]
    tokenizer, build_seconds = built_timed(lambda: XLMRobertaTokenizer(proto=proto))
    logging.info("%s: roberta_tf tokenizer built in %.1f s", model_name, build_seconds)
    engines = build_engines(proto, tokenizer, tf_threads)
    for engine in engines:
        if engine.family == OURS:
            engine.setup_seconds += build_seconds
    results = [measure(engine, model_name, texts, reference_ids, timing) for engine in engines]
    if tensorflow_text is None:
        results.append(failed(model_name, "tf_text", "not installed", _TF_TEXT_IMPORT_ERROR))

    tflite_rows = tflite_measurements(model_name, proto, tokenizer, tflite_texts,
                                      reference_ids[: len(tflite_texts)], timing)
    if tokenizer.sentencepiece_model.model_type == "bpe":
        for row in results + tflite_rows:
            if "FastSentencepiece" in row["engine"]:
                row["note"] = FAST_ON_BPE_NOTE
    return results, tflite_rows, {"roberta_tf_build_seconds": build_seconds,
                                  "model_type": tokenizer.sentencepiece_model.model_type,
                                  "pieces": reference.get_piece_size()}


def print_tables(record, info):
    """The load line, the throughput and TFLite tables, the notes and the targets."""
    config, results, tflite_rows = record["config"], record["measurements"], record["tflite"]
    loads = [r.get("other_load_cores") for r in results + tflite_rows]
    print("\n" + report.load_summary(info, threads=f"TF {config['ours_threads']}", other_loads=loads))
    print(f"XNLI mix: {config['num_texts']} distinct texts, 15 languages interleaved. Throughput from the best timed "
          f"pass (>= {config['min_repeats']} passes and >= {config['min_seconds']:g} s unless a pass outlasts "
          f"{config['max_seconds']:g} s); ids differ: texts whose ids differ from sentencepiece's (+1, unk 0->3); "
          "x spm tN: texts/s over sentencepiece encode(list) with N threads at the same batch (batch 1: encode(text)); "
          "cores: CPU this process used while timing; others: cores other processes took meanwhile.")
    print(report.format_table(TABLE, results, keys=2, group_by="model"))
    print(f"\nTFLite, one text per call, the first {config['tflite_texts']} texts: latency per text (each text's "
          "median over the passes); / Fast: median over tf_text FastSentencepiece TFLite's.")
    print(report.format_table(TFLITE_TABLE, tflite_rows, keys=2, group_by="model"))
    if any(r.get("note") == FAST_ON_BPE_NOTE for r in results):
        print(f"Note: {FAST_ON_BPE_NOTE}.")
    print(report.format_targets("Targets (reported, not asserted):", record["targets"], ("model", "engine")))


def main(argv):
    del argv
    if sentencepiece is None:
        raise app.UsageError("the `sentencepiece` package is not installed (pip install sentencepiece): it is the "
                             "reference every engine is compared with.")
    unknown = set(FLAGS.models) - {BPEMB, UNIGRAM}
    if unknown:
        raise app.UsageError(f"--models: unknown {sorted(unknown)}; choose from {BPEMB}, {UNIGRAM}.")
    if FLAGS.tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.tf_threads)
    ours_threads = FLAGS.tf_threads or os.cpu_count()
    if FLAGS.quick:
        timing = {"min_seconds": 0.2, "min_repeats": 1, "max_seconds": 1.0}
        num_texts, num_tflite = 256, 64
    else:
        timing = {"min_seconds": FLAGS.min_seconds, "min_repeats": FLAGS.min_repeats, "max_seconds": FLAGS.max_seconds}
        num_texts, num_tflite = FLAGS.num_texts, min(FLAGS.tflite_texts, FLAGS.num_texts)
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, ours_threads=ours_threads)
    try:
        texts = xnli_mix(FLAGS.data_dir, num_texts)
    except ValueError as error:
        raise app.UsageError(f"--num_texts: {error}") from None
    models = {}
    if BPEMB in FLAGS.models:
        models[BPEMB] = bpemb_model(FLAGS.data_dir)
    if UNIGRAM in FLAGS.models:
        models[UNIGRAM] = unigram_model(FLAGS.data_dir, FLAGS.cache_dir)

    results, tflite_rows, model_notes = [], [], {}
    for name, (proto, source) in models.items():
        rows, lite, notes = measure_model(name, proto, texts, texts[:num_tflite], timing, ours_threads)
        results += rows
        tflite_rows += lite
        model_notes[name] = {"source": source, **notes}
    add_ratios(results)
    add_tflite_ratios(tflite_rows)
    targets = check_targets(results, ours_threads)

    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, **timing, "num_texts": num_texts, "tflite_texts": num_tflite,
                   "batch_sizes": list(BATCH_SIZES), "spm_threads": spm_thread_counts(ours_threads),
                   "ours_threads": ours_threads,
                   "throughput_from": "best pass", "tflite_latency": "per text: median over passes; then median / "
                   "p90 over texts", "id_mapping": "sentencepiece id + 1, <unk> 0 -> 3 (fairseq, XLM-R)"},
        "dataset": {"name": "xnli mix", "languages": XNLI_LANGUAGES, "num_texts": num_texts,
                    "num_bytes": sum(len(t.encode("utf-8")) for t in texts)},
        "models": model_notes,
        "measurements": results,
        "tflite": tflite_rows,
        "targets": targets,
        "total_seconds": time.perf_counter() - started,
    }
    written = report.save(FLAGS.output_dir, "sentencepiece_benchmark", record,
                          lambda path: write_plot(results, tflite_rows, path))

    print_tables(record, info)
    print(written)


if __name__ == "__main__":
    app.run(main)
