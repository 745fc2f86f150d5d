"""Tokenizer throughput and parity benchmark: roberta_tf against Hugging Face and keras-hub.

roberta-base's byte-level BPE on SST-2 dev (872 sentences) and 1,500 mixed XNLI dev premises
(15 languages), in one run on one machine: texts/s, tokens/s and ms/text of roberta_tf's graph
tokenizer (batch 1 / 32 / 256) and TFLite model (batch 1), Hugging Face `tokenizers`
(`encode_batch`, `encode`; one Rayon thread) and keras-hub's tokenizer in a tf.function
(reported as "not installed" without keras-hub); per text whether the ids equal `tokenizers`';
ratios to `tokenizers` and keras-hub, and the project's targets (TFLite <= 0.2 ms per SST-2
sentence; the batched graph >= 2x keras-hub and >= 0.5x `tokenizers` encode_batch).
Throughput is taken from the fastest timed pass after an untimed warm-up pass.

Run from the repository root (data from ../shared/data):

    python -m benchmarks.tokenizer_benchmark [--quick] [--output_dir DIR] [--tf_threads N]

It prints a table and the targets and writes tokenizer_benchmark.json and .png to
--output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # must precede the `tokenizers` import: one thread
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # keras-hub's tokenizers need TF

import dataclasses  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tokenizers  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from benchmarks import DATA_DIR, RESULTS_DIR, report  # noqa: E402
from benchmarks.data import batches, load_sst2, read_lines  # noqa: E402
from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite  # noqa: E402
from roberta_tf.models import RobertaTokenizer  # noqa: E402

_KERAS_HUB_IMPORT_ERROR = None
try:
    import keras_hub
except ImportError as e:  # optional competitor: reported as "not installed"
    keras_hub = None
    _KERAS_HUB_IMPORT_ERROR = str(e)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tensorflow-text", "tf-keras", "keras", "keras-hub", "tokenizers", "ai-edge-litert",
            "numpy", "absl-py", "matplotlib"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
flags.DEFINE_bool("quick", False, "Short timings (smoke test): --min_seconds 0.2, --min_repeats 1, --max_seconds 1.")
flags.DEFINE_float("min_seconds", 2.0, "Time passes until at least this long has elapsed per measurement.")
flags.DEFINE_integer("min_repeats", 3, "At least this many timed passes per measurement...")
flags.DEFINE_float("max_seconds", 8.0, "...but no new pass starts after this long (bounds slow engines).")
flags.DEFINE_integer("xnli_per_language", 100, "Distinct XNLI premises taken from each language.")
flags.DEFINE_integer("tf_threads", 0, "TF intra/inter-op threads for the TF engines (0: TF's default).")

XNLI_LANGUAGES = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
TOKENIZERS_REFERENCE = "tokenizers encode_batch"
KERAS_HUB_ENGINE = "keras-hub graph"
TFLITE_ENGINE = "roberta_tf TFLite"
TFLITE_FIXED_ENGINE = "roberta_tf TFLite fixed"
TFLITE_TARGET_MS = 0.2
TARGET_VS_KERAS_HUB = 2.0
TARGET_VS_TOKENIZERS = 0.5
MAX_MISMATCH_EXAMPLES = 3


# ----------------------------------------------------------------------------- data


def load_xnli(data_dir, per_language, seed=0):
    """`per_language` distinct premises from each XNLI dev language, shuffled together."""
    texts = []
    for language in XNLI_LANGUAGES:
        premises = []
        for line in read_lines(Path(data_dir, "xnli-dev", f"dev-{language}.tsv")):
            premise = line.split("\t")[0]
            if premise and premise not in premises:  # each premise has 3 hypotheses: 3 rows
                premises.append(premise)
            if len(premises) == per_language:
                break
        texts.extend(premises)
    random.Random(seed).shuffle(texts)
    return texts


# ----------------------------------------------------------------------------- engines


@dataclasses.dataclass
class Engine:
    """One way to tokenize. `prepare` turns a batch of str into the engine's native input
    (outside the timing), `run` tokenizes it, `to_ids` turns `run`'s output into id lists."""

    name: str
    batch_size: int
    prepare: Callable[[list], Any]
    run: Callable[[Any], Any]
    to_ids: Callable[[Any], list]
    setup_seconds: float = 0.0


def _ragged_to_ids(ragged):
    return ragged.to_list()


def roberta_tf_graph_engines(tokenizer, batch_sizes=(1, 32, 256)):
    return [
        Engine(f"roberta_tf graph b{size}", size, lambda b: tf.constant(b, tf.string), tokenizer, _ragged_to_ids)
        for size in batch_sizes
    ]


def roberta_tf_tflite_engine(tokenizer):
    runner = Interpreter(model_content=export_tokenizer_tflite(tokenizer)).get_signature_runner()
    return Engine(
        TFLITE_ENGINE,
        1,
        prepare=lambda b: np.frombuffer(b[0].encode("utf-8"), np.uint8).astype(np.int32),
        run=lambda utf8: runner(utf8_bytes=utf8)["token_ids"],
        to_ids=lambda token_ids: [token_ids.tolist()],
    )


def roberta_tf_tflite_fixed_buffer_engine(tokenizer, buffer_bytes=1024):
    """The same model called the fast way: one input buffer allocated once, each text written
    into it with the tail set to -1 (padding the model ignores), so no resize/allocate per text."""
    interpreter = Interpreter(model_content=export_tokenizer_tflite(tokenizer))
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    interpreter.resize_tensor_input(input_index, [buffer_bytes])
    interpreter.allocate_tensors()

    def prepare(batch):
        raw = np.frombuffer(batch[0].encode("utf-8"), np.uint8)
        if len(raw) > buffer_bytes:
            raise ValueError(f"text of {len(raw)} bytes does not fit the {buffer_bytes}-byte buffer")
        buffer = np.full(buffer_bytes, -1, np.int32)
        buffer[: len(raw)] = raw
        return buffer

    def run(buffer):
        interpreter.set_tensor(input_index, buffer)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return Engine(TFLITE_FIXED_ENGINE, 1, prepare=prepare, run=run, to_ids=lambda token_ids: [token_ids.tolist()])


def hf_tokenizers_engines(tokenizer_json, batch_size=256):
    hf = tokenizers.Tokenizer.from_file(str(tokenizer_json))
    hf.encode_special_tokens = True  # "<s>" in text is text, as roberta_tf's default
    hf.no_truncation()
    hf.no_padding()
    return [
        Engine(
            TOKENIZERS_REFERENCE,
            batch_size,
            prepare=list,
            run=lambda b: hf.encode_batch(b, add_special_tokens=False),
            to_ids=lambda encodings: [e.ids for e in encodings],
        ),
        Engine(
            "tokenizers encode",
            1,
            prepare=lambda b: b[0],
            run=lambda text: hf.encode(text, add_special_tokens=False),
            to_ids=lambda encoding: [encoding.ids],
        ),
    ]


def keras_hub_engine(vocab_json, merges_txt, batch_size=32):
    with open(vocab_json, encoding="utf-8") as f:
        vocabulary = json.load(f)
    merges = [line for line in read_lines(merges_txt) if line and not line.startswith("#version")]
    layer = keras_hub.models.RobertaTokenizer(vocabulary=vocabulary, merges=merges)
    graph = tf.function(lambda texts: layer(texts), input_signature=[tf.TensorSpec([None], tf.string)])
    return Engine(KERAS_HUB_ENGINE, batch_size, lambda b: tf.constant(b, tf.string), graph, _ragged_to_ids)


def build_engines(data_dir):
    """Every engine, each with the seconds its construction took (export, vocab loading)."""
    roberta_dir = Path(data_dir, "roberta-base")
    builders = [
        ("roberta_tf tokenizer", lambda: roberta_tf_graph_engines(_roberta_tf_tokenizer(roberta_dir))),
        ("roberta_tf TFLite export", lambda: [roberta_tf_tflite_engine(_roberta_tf_tokenizer(roberta_dir))]),
        ("roberta_tf TFLite export (fixed buffer)",
         lambda: [roberta_tf_tflite_fixed_buffer_engine(_roberta_tf_tokenizer(roberta_dir))]),
        ("tokenizers", lambda: hf_tokenizers_engines(roberta_dir / "tokenizer.json")),
    ]
    if keras_hub is not None:
        builders.append(
            ("keras-hub", lambda: [keras_hub_engine(roberta_dir / "vocab.json", roberta_dir / "merges.txt")])
        )
    engines = []
    for label, build in builders:
        start = time.perf_counter()
        built = build()
        seconds = time.perf_counter() - start
        logging.info("Built %s in %.2f s", label, seconds)
        for engine in built:
            engine.setup_seconds = seconds
        engines.extend(built)
    return engines


@functools.cache  # one tokenizer for the graph engines and the TFLite export
def _roberta_tf_tokenizer(roberta_dir):
    return RobertaTokenizer(vocabulary=str(roberta_dir / "vocab.json"), merges=str(roberta_dir / "merges.txt"))


# ----------------------------------------------------------------------------- measuring






def reference_token_ids(reference, texts):
    return [row for b in batches(texts, reference.batch_size) for row in reference.to_ids(reference.run(b))]


def measure(engine, dataset, texts, reference_ids, timing):
    """One engine on one dataset: warm-up pass (collects ids), then timed passes."""
    inputs = [engine.prepare(b) for b in batches(texts, engine.batch_size)]
    warmup_start = time.perf_counter()
    ids = [row for x in inputs for row in engine.to_ids(engine.run(x))]
    warmup_seconds = time.perf_counter() - warmup_start
    num_mismatches, examples = report.id_mismatches(ids, reference_ids, texts, MAX_MISMATCH_EXAMPLES)
    times = report.time_passes(engine.run, inputs, **timing)
    best = min(times)
    num_tokens = sum(len(row) for row in ids)
    result = {
        "engine": engine.name,
        "dataset": dataset,
        "status": "ok",
        "batch_size": engine.batch_size,
        "num_texts": len(texts),
        "num_tokens": num_tokens,
        "mismatches": num_mismatches,
        "mismatch_examples": examples,
        "setup_seconds": round(engine.setup_seconds, 4),
        "warmup_pass_seconds": round(warmup_seconds, 4),
        "repeats": len(times),
        "pass_seconds": [round(t, 6) for t in times],
        "best_pass_seconds": best,
        "median_pass_seconds": statistics.median(times),
        "texts_per_s": len(texts) / best,
        "tokens_per_s": num_tokens / best,
        "ms_per_text": 1000 * best / len(texts),
        "texts_per_s_median": len(texts) / statistics.median(times),
    }
    logging.info(
        "%-24s %-5s %9.0f texts/s  %d passes, %d mismatches",
        engine.name, dataset, result["texts_per_s"], len(times), num_mismatches,
    )
    return result


def not_installed(name, dataset, batch_size, reason):
    return {"engine": name, "dataset": dataset, "status": "not installed", "batch_size": batch_size, "reason": reason}


def add_ratios(results):
    """Each measurement's texts/s divided by the reference engines' on the same dataset."""
    speed = {(r["engine"], r["dataset"]): r["texts_per_s"] for r in results if r["status"] == "ok"}
    for r in results:
        if r["status"] != "ok":
            continue
        for key, reference in (("x_tokenizers", TOKENIZERS_REFERENCE), ("x_keras_hub", KERAS_HUB_ENGINE)):
            base = speed.get((reference, r["dataset"]))
            r[key] = r["texts_per_s"] / base if base else None


def check_targets(results):
    """The project's performance targets, each with its measured value and whether it is met."""
    targets = []
    for r in results:
        if r["status"] != "ok":
            continue
        context = {"engine": r["engine"], "dataset": r["dataset"]}
        if r["engine"] in (TFLITE_ENGINE, TFLITE_FIXED_ENGINE) and r["dataset"] == "sst2":
            targets.append(report.target("ms per SST-2 sentence", r["ms_per_text"], "<=", TFLITE_TARGET_MS, **context))
        if r["engine"].startswith("roberta_tf graph") and r["batch_size"] > 1:
            targets.append(report.target("x keras-hub graph", r["x_keras_hub"], ">=", TARGET_VS_KERAS_HUB, **context))
            targets.append(report.target("x tokenizers encode_batch", r["x_tokenizers"], ">=", TARGET_VS_TOKENIZERS,
                                         **context))
    return targets


# ----------------------------------------------------------------------------- reporting


TABLE = [
    report.Column("engine", 24, "engine", align="<"),
    report.Column("data", 5, "dataset", align="<"),
    report.Column("batch", 5, "batch_size"),
    report.Column("texts/s", 9, "texts_per_s", ".0f"),
    report.Column("tokens/s", 10, "tokens_per_s", ".0f"),
    report.Column("ms/text", 8, "ms_per_text", ".3f"),
    report.Column("mismatch", 9, lambda r: f"{r['mismatches']:>4}/{r['num_texts']:<4}"),
    report.Column("x tokenizers", 12, "x_tokenizers", ".3g"),
    report.Column("x keras-hub", 11, "x_keras_hub", ".3g"),
]


def write_plot(results, path):
    """Grouped bar chart of texts/s per engine and dataset (log scale); skipped without matplotlib."""
    ok = [r for r in results if r["status"] == "ok"]
    speed = {(r["engine"], r["dataset"]): r["texts_per_s"] for r in ok}

    def draw(fig, ax):
        report.grouped_bars(ax, list(dict.fromkeys(r["engine"] for r in ok)),
                            list(dict.fromkeys(r["dataset"] for r in ok)), lambda e, d: speed.get((e, d)),
                            ticks=dict(rotation=20, ha="right"))
        ax.set_yscale("log")
        ax.set_ylabel("texts/s (best pass, log scale)")
        ax.set_title(f"roberta-base tokenizers on {os.cpu_count()} CPU cores")
        ax.legend()

    return report.plot(path, draw, figsize=(11, 5))


# ----------------------------------------------------------------------------- main


def main(argv):
    del argv
    if FLAGS.tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.tf_threads)
    if FLAGS.quick:
        timing = {"min_seconds": 0.2, "min_repeats": 1, "max_seconds": 1.0}
    else:
        timing = {"min_seconds": FLAGS.min_seconds, "min_repeats": FLAGS.min_repeats, "max_seconds": FLAGS.max_seconds}
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, rayon_num_threads=os.environ.get("RAYON_NUM_THREADS"))
    datasets = {"sst2": load_sst2("dev", FLAGS.data_dir)[0],
                "xnli": load_xnli(FLAGS.data_dir, FLAGS.xnli_per_language)}
    engines = build_engines(FLAGS.data_dir)
    reference = next(e for e in engines if e.name == TOKENIZERS_REFERENCE)

    results = []
    for dataset, texts in datasets.items():
        reference_ids = reference_token_ids(reference, texts)
        for engine in engines:
            results.append(measure(engine, dataset, texts, reference_ids, timing))
        if keras_hub is None:
            results.append(not_installed(KERAS_HUB_ENGINE, dataset, 32, _KERAS_HUB_IMPORT_ERROR))
    add_ratios(results)
    targets = check_targets(results)

    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, **timing, "xnli_per_language": FLAGS.xnli_per_language,
                   "throughput_from": "best pass"},
        "datasets": {name: {"num_texts": len(texts), "num_bytes": sum(len(t.encode("utf-8")) for t in texts)}
                     for name, texts in datasets.items()},
        "measurements": results,
        "targets": targets,
        "total_seconds": time.perf_counter() - started,
    }
    written = report.save(FLAGS.output_dir, "tokenizer_benchmark", record, lambda path: write_plot(results, path))

    print("\n" + report.load_summary(info))
    print(f"Throughput from the best timed pass (>= {timing['min_repeats']} passes and >= "
          f"{timing['min_seconds']:g} s unless a pass outlasts {timing['max_seconds']:g} s); mismatch: texts "
          "whose ids differ from tokenizers'.")
    print(report.format_table(TABLE, results, keys=3))
    print(report.format_targets("Targets:", targets, ("engine", "dataset"), missing="n/a (keras-hub not installed)"))
    print(written)


if __name__ == "__main__":
    app.run(main)
