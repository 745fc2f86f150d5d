"""Adversarial-input benchmark (issue 11, bounded cost per served request): seconds per input.

Seeded inputs of 100 kB and 1 MB (bytes): random lowercase letters without spaces, random
digits, random mixed-case letters, one repeated CJK character, invalid UTF-8 (random bytes
0x80-0xFF), short random words separated by spaces; plus one batch of 1,000 texts of 1 kB
random lowercase letters. Engines, in one run on one machine: the served SavedModel (a tiny
classifier with the real roberta-base tokenizer exported by `export_saved_model`, sequence
length 512: its `tokenize` and `serving_default` signatures, a text = a batch of one, the
batch = one request of 1,000), the builtin-only TFLite tokenizer (`max_tokens=510`, one text
per invocation), the Keras layer (full tokenization, no truncation) and Hugging Face
`tokenizers` (one Rayon thread). Median of `--repeats` calls after one warm-up call (cases of
1 MB and more: `--large_repeats`). The ids are checked: served `tokenize` = `<s>` + the Keras
layer's first 510 ids + `</s>`, TFLite = the first 510, the Keras layer = `tokenizers` (pieces
over 4,096 bytes are merged in chunks: random digits differ, a documented bound). Targets: the
served signatures and the TFLite model answer every input within 1 s; the Keras layer within
5x of `tokenizers`.

Run from the repository root (data from ../shared/data):

    python -m benchmarks.adversarial_benchmark [--quick] [--repeats N] [--output_dir DIR]

It prints a table and the targets and writes adversarial_benchmark.json and .png to
--output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # must precede the `tokenizers` import: one thread
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import tokenizers  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from benchmarks import DATA_DIR, RESULTS_DIR, report  # noqa: E402
from roberta_tf.export.saved_model import export_saved_model  # noqa: E402
from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite  # noqa: E402
from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, RobertaTokenizer  # noqa: E402
from roberta_tf.tokenizers.byte_level_bpe import DEFAULT_MAX_WORD_BYTES  # noqa: E402

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "tokenizers", "ai-edge-litert", "numpy", "absl-py", "matplotlib"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder.")
flags.DEFINE_bool("quick", False, "Smoke run: inputs of 5 kB and 20 kB, a batch of 50 texts, 1 repeat.")
flags.DEFINE_integer("repeats", 5, "Timed calls per engine and input, after one warm-up call (median reported).")
flags.DEFINE_integer("large_repeats", 3, "Timed calls for inputs of 1 MB or more (in all).")
flags.DEFINE_list("sizes", ["100000", "1000000"], "Bytes of each single-text input.")
flags.DEFINE_integer("batch_texts", 1000, "Texts in the batch case...")
flags.DEFINE_integer("batch_text_bytes", 1000, "...of this many random lowercase letters each.")
flags.DEFINE_integer("seed", 0, "Seed of the random inputs.")
flags.DEFINE_integer("tf_threads", 0, "TF intra/inter-op threads for the TF engines (0: TF's default).")

SEQUENCE_LENGTH = 512
MAX_TOKENS = SEQUENCE_LENGTH - 2  # what the served model keeps: <s> + 510 ids + </s>
BOS_ID, EOS_ID = 0, 2
LARGE_BYTES = 1_000_000
SERVED_TARGET_SECONDS = 1.0
TARGET_VS_TOKENIZERS = 5.0
CJK_CHARACTER = "的"

TOKENIZE = "served tokenize"
SERVING_DEFAULT = "served serving_default"
TFLITE = "TFLite"
KERAS = "Keras layer"
TOKENIZERS = "tokenizers"
ENGINES = (TOKENIZE, SERVING_DEFAULT, TFLITE, KERAS, TOKENIZERS)


# ----------------------------------------------------------------------------- inputs


@dataclasses.dataclass
class Case:
    """One adversarial input: a single text or a batch of texts (bytes)."""

    kind: str
    label: str
    texts: list
    description: str
    nominal_bytes: int  # the size asked for (the repeated CJK character fills n // 3 * 3 of it)

    @property
    def num_bytes(self):
        return sum(len(t) for t in self.texts)

    @property
    def valid_utf8(self):
        try:
            for text in self.texts:
                text.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    @property
    def strings(self):
        """The texts as Python str (what `tokenizers` takes); None for invalid UTF-8."""
        return [t.decode("utf-8") for t in self.texts] if self.valid_utf8 else None


def _letters(rng, alphabet, size):
    alphabet = np.frombuffer(alphabet.encode("ascii"), np.uint8)
    return alphabet[rng.integers(0, len(alphabet), size)].tobytes()


LOWERCASE = "abcdefghijklmnopqrstuvwxyz"
GENERATORS = {
    "lowercase": ("random lowercase letters, no spaces", lambda rng, n: _letters(rng, LOWERCASE, n)),
    "digits": ("random digits", lambda rng, n: _letters(rng, "0123456789", n)),
    "mixed case": ("random mixed-case letters, no spaces",
                   lambda rng, n: _letters(rng, LOWERCASE + LOWERCASE.upper(), n)),
    "CJK repeated": (f"one CJK character ({CJK_CHARACTER}, 3 bytes) repeated: n // 3 characters",
                     lambda rng, n: (CJK_CHARACTER * (n // len(CJK_CHARACTER.encode()))).encode("utf-8")),
    "invalid UTF-8": ("random bytes 0x80-0xFF (not UTF-8)",
                      lambda rng, n: rng.integers(0x80, 0x100, n, dtype=np.uint8).tobytes()),
    "short words": ("random lowercase words of 1-8 letters separated by spaces, cut to the size",
                    lambda rng, n: _short_words(rng, n)),
}


def _short_words(rng, size):
    lengths = rng.integers(1, 9, size // 2 + 1)  # mean 4.5 letters + a space: enough words
    letters = _letters(rng, LOWERCASE, int(lengths.sum())).decode("ascii")
    ends = np.cumsum(lengths)
    words = [letters[end - length:end] for end, length in zip(ends, lengths)]
    return " ".join(words).encode("ascii")[:size]


def valid_utf8_bytes(text):
    """How many bytes of `text` belong to well-formed UTF-8 characters (random bytes 0x80-0xFF
    form a 2-4 byte character now and then: about a third of them)."""
    decoded = text.decode("utf-8", "surrogateescape")  # each ill-formed byte -> one U+DC80-U+DCFF
    return len(text) - sum(1 for ch in decoded if 0xDC80 <= ord(ch) <= 0xDCFF)


def size_label(num_bytes):
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:g} {unit}"
    return f"{num_bytes} B"


def make_cases(sizes, batch_texts, batch_text_bytes, seed):
    """Every input, deterministic for `seed` (each case has its own generator)."""
    cases = []
    for index, (kind, (description, generate)) in enumerate(GENERATORS.items()):
        for size in sizes:
            rng = np.random.default_rng([seed, index, size])
            cases.append(Case(kind, f"{kind} {size_label(size)}", [generate(rng, size)], description, size))
    rng = np.random.default_rng([seed, len(GENERATORS), batch_texts, batch_text_bytes])
    batch = [_letters(rng, LOWERCASE, batch_text_bytes) for _ in range(batch_texts)]
    cases.append(Case("batch", f"batch {batch_texts:,} x {size_label(batch_text_bytes)}", batch,
                      f"{batch_texts:,} texts of {batch_text_bytes:,} random lowercase letters, one call",
                      batch_texts * batch_text_bytes))
    return cases


# ----------------------------------------------------------------------------- engines


@dataclasses.dataclass
class Engine:
    """One way to answer a case. `prepare` turns a Case into the engine's native input
    (outside the timing; None: the engine cannot take it, see `unsupported`), `run` answers
    it, `result` turns `run`'s output into what the checks read (id lists, logits)."""

    name: str
    prepare: Callable[[Case], Any]
    run: Callable[[Any], Any]
    result: Callable[[Any], Any]
    unsupported: Callable[[Case], Optional[str]] = lambda case: None
    invocation_seconds: Optional[Callable[[Any], list]] = None  # TFLite: one time per text


def build_tokenizer(data_dir):
    roberta_dir = Path(data_dir, "roberta-base")
    return RobertaTokenizer(vocabulary=str(roberta_dir / "vocab.json"), merges=str(roberta_dir / "merges.txt"))


def export_served_model(tokenizer, directory):
    """The tiny classifier with the real tokenizer, exported and reloaded: (the loaded SavedModel,
    {export_seconds, load_seconds, path})."""
    tf_keras.utils.set_random_seed(0)
    backbone = RobertaBackbone(vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128,
                               max_sequence_length=SEQUENCE_LENGTH)
    classifier = RobertaTextClassifier(backbone, num_classes=2)
    start = time.perf_counter()
    exported = export_saved_model(classifier, tokenizer, Path(directory, "m"), sequence_length=SEQUENCE_LENGTH)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    loaded = tf.saved_model.load(str(exported.path))
    return loaded, {"export_seconds": export_seconds, "load_seconds": time.perf_counter() - start,
                    "path": str(exported.path)}


def _texts_tensor(case):
    return tf.constant(case.texts, tf.string)


def _unpadded_rows(outputs):
    ids, mask = outputs["token_ids"].numpy(), outputs["padding_mask"].numpy()
    return [row[m == 1].tolist() for row, m in zip(ids, mask)]


def served_engines(loaded):
    tokenize = loaded.signatures["tokenize"]
    classify = loaded.signatures["serving_default"]
    return [
        Engine(TOKENIZE, _texts_tensor, lambda texts: tokenize(text=texts), _unpadded_rows),
        Engine(SERVING_DEFAULT, _texts_tensor, lambda texts: classify(text=texts),
               lambda outputs: outputs["logits"].numpy()),
    ]


def tflite_engine(tokenizer):
    runner = Interpreter(model_content=export_tokenizer_tflite(tokenizer, max_tokens=MAX_TOKENS)).get_signature_runner()

    def run(inputs):
        outputs, seconds = [], []
        for utf8 in inputs:
            start = time.perf_counter()
            outputs.append(runner(utf8_bytes=utf8)["token_ids"])
            seconds.append(time.perf_counter() - start)
        return outputs, seconds

    return Engine(
        TFLITE,
        prepare=lambda case: [np.frombuffer(t, np.uint8).astype(np.int32) for t in case.texts],
        run=run,
        result=lambda out: [ids.tolist() for ids in out[0]],
        invocation_seconds=lambda out: out[1],
    )


def keras_engine(tokenizer):
    return Engine(KERAS, _texts_tensor, tokenizer, lambda ragged: ragged.to_list())


def hf_tokenizer(data_dir):
    hf = tokenizers.Tokenizer.from_file(str(Path(data_dir, "roberta-base", "tokenizer.json")))
    hf.encode_special_tokens = True  # "<s>" in text is text, as roberta_tf's default
    hf.no_truncation()
    hf.no_padding()
    return hf


def tokenizers_engine(hf):
    def run(strings):
        if len(strings) == 1:
            return [hf.encode(strings[0], add_special_tokens=False)]
        return hf.encode_batch(strings, add_special_tokens=False)

    return Engine(
        TOKENIZERS,
        prepare=lambda case: case.strings,
        run=run,
        result=lambda encodings: [e.ids for e in encodings],
        unsupported=lambda case: None if case.valid_utf8 else
        "tokenizers takes Python str only: bytes that are not UTF-8 cannot be passed",
    )


# ----------------------------------------------------------------------------- measuring


def measure(engine, case, repeats):
    """One warm-up call (its output is checked), then `repeats` timed calls."""
    base = {"engine": engine.name, "input": case.label, "kind": case.kind}
    reason = engine.unsupported(case)
    if reason:
        return {**base, "status": "n/a", "reason": reason}, None
    x = engine.prepare(case)
    start = time.perf_counter()
    output = engine.run(x)
    warmup_seconds = time.perf_counter() - start
    result = engine.result(output)
    del output
    times, invocations = [], []
    with report.LoadMeter() as load:
        for _ in range(repeats):
            start = time.perf_counter()
            output = engine.run(x)
            times.append(time.perf_counter() - start)
            if engine.invocation_seconds is not None:
                invocations.extend(engine.invocation_seconds(output))
            del output
    measurement = {
        **base,
        "status": "ok",
        "num_texts": len(case.texts),
        "num_bytes": case.num_bytes,
        "warmup_seconds": warmup_seconds,
        "repeats": repeats,
        "seconds": [round(t, 6) for t in times],
        "median_seconds": statistics.median(times),
        "max_seconds": max(times),
        "other_load_cores": load.other_cores,
        "steal_cores": load.steal_cores,
        "peak_rss_kb_so_far": peak_rss_kb(),  # VmHWM only grows: where it jumps, this engine set it
    }
    if invocations:
        measurement["invocations"] = len(invocations)
        measurement["max_invocation_seconds"] = max(invocations)
        measurement["median_invocation_seconds"] = statistics.median(invocations)
    logging.info("%-22s %-24s %9.4f s (median of %d; warm-up %.3f s)", engine.name, case.label,
                 measurement["median_seconds"], repeats, warmup_seconds)
    return measurement, result


# ----------------------------------------------------------------------------- id checks


def _first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return i
    return None if len(got) == len(want) else min(len(got), len(want))


def _compare_rows(rows, reference_rows):
    """(number of rows that differ, first differing row with its first differing position)."""
    bad = [i for i, (got, want) in enumerate(zip(rows, reference_rows, strict=True)) if got != want]
    example = None
    if bad:
        i = bad[0]
        position = _first_difference(rows[i], reference_rows[i])
        example = {"row": i, "position": position, "lengths": [len(rows[i]), len(reference_rows[i])],
                   "got": rows[i][max(0, position - 3):position + 5],
                   "want": reference_rows[i][max(0, position - 3):position + 5]}
    return len(bad), example


def chunked_reference(hf, case, chunk=DEFAULT_MAX_WORD_BYTES):
    """`tokenizers`' ids of each text cut into `chunk`-byte pieces (what the Keras layer does
    to a piece with no final boundary, such as a digit run, starting at the text's first byte);
    None unless every text is one pre-tokenizer word of ASCII (cuts then fall between characters)."""
    if not all(t.isascii() and (t.isdigit() or t.isalpha()) for t in case.texts):
        return None
    return [[i for k in range(0, len(t), chunk) for i in hf.encode(t[k:k + chunk].decode("ascii"),
                                                                  add_special_tokens=False).ids]
            for t in case.texts]


def check_ids(case, results, hf):
    """The served `tokenize` rows, the TFLite ids and `tokenizers`' ids against the Keras layer's."""
    keras = results[KERAS]
    checks = {"num_keras_tokens": sum(len(row) for row in keras)}
    if TOKENIZE in results:
        want = [[BOS_ID, *row[:MAX_TOKENS], EOS_ID] for row in keras]
        bad, example = _compare_rows(results[TOKENIZE], want)
        checks["tokenize"] = {"status": "ok" if not bad else "DIFF", "rows_differing": bad, "example": example}
    if TFLITE in results:
        bad, example = _compare_rows(results[TFLITE], [row[:MAX_TOKENS] for row in keras])
        checks["tflite"] = {"status": "ok" if not bad else "DIFF", "rows_differing": bad, "example": example}
    if SERVING_DEFAULT in results:
        logits = results[SERVING_DEFAULT]
        ok = logits.shape == (len(case.texts), 2) and bool(np.isfinite(logits).all())
        checks["serving_default"] = {"status": "ok" if ok else "BAD", "logits_shape": list(logits.shape),
                                     "finite": bool(np.isfinite(logits).all())}
    if TOKENIZERS not in results:
        checks["tokenizers"] = {"status": "n/a", "reason": "tokenizers cannot take bytes that are not UTF-8"}
        return checks
    bad, example = _compare_rows(keras, results[TOKENIZERS])
    entry = {"status": "ok" if not bad else "DIFF", "rows_differing": bad, "example": example}
    if bad:
        chunked = chunked_reference(hf, case)
        entry["equals_tokenizers_on_4096_byte_chunks"] = chunked is not None and keras == chunked
        if entry["equals_tokenizers_on_4096_byte_chunks"]:
            entry["status"] = "chunked"
            entry["reason"] = (f"no final boundary in the piece: merged in {DEFAULT_MAX_WORD_BYTES:,}-byte chunks "
                               "(documented bound); equal to tokenizers' ids of those chunks")
    checks["tokenizers"] = entry
    return checks


# ----------------------------------------------------------------------------- reporting


def add_ratios(rows):
    for row in rows:
        keras, hf = row["seconds"].get(KERAS), row["seconds"].get(TOKENIZERS)
        row["keras_vs_tokenizers"] = keras / hf if keras and hf else None


def check_targets(rows, measurements):
    """The issue's targets per input, each with its measured value and whether it is met."""
    by_key = {(m["engine"], m["input"]): m for m in measurements if m["status"] == "ok"}
    targets = []
    for row in rows:
        for engine in (TOKENIZE, SERVING_DEFAULT, TFLITE):
            m = by_key.get((engine, row["input"]))
            if m is None:
                continue
            # TFLite answers one text per invocation: in the batch the slowest invocation counts.
            per_text = engine == TFLITE and m["num_texts"] > 1
            value = m["max_invocation_seconds"] if per_text else m["median_seconds"]
            what = "s per text (slowest)" if per_text else "s per request"
            targets.append(report.target(what, value, "<=", SERVED_TARGET_SECONDS, engine=engine, input=row["input"]))
        targets.append(report.target("Keras s / tokenizers s", row["keras_vs_tokenizers"], "<=", TARGET_VS_TOKENIZERS,
                                     engine=KERAS, input=row["input"]))
    return targets


def _seconds_cell(engine):
    def cell(row):
        if engine in row["not_available"]:
            return "n/a"
        value = row["seconds"].get(engine)
        return "-" if value is None else f"{value:.3g}"
    return cell


def _ids_cell(row):
    checks = row["ids"]
    parts = [checks.get(key, {}).get("status", "-") for key in ("tokenize", "tflite", "tokenizers")]
    return "/".join(parts)


TABLE = [
    report.Column("input", 24, "input", align="<"),
    report.Column("bytes", 9, "num_bytes", ","),
    report.Column("ids", 7, lambda r: r["ids"]["num_keras_tokens"], ","),
    report.SEPARATOR,
    report.Column("tokenize s", 10, _seconds_cell(TOKENIZE)),
    report.Column("serving s", 9, _seconds_cell(SERVING_DEFAULT)),
    report.Column("TFLite s", 8, _seconds_cell(TFLITE)),
    report.Column("Keras s", 8, _seconds_cell(KERAS)),
    report.Column("tokenizers s", 12, _seconds_cell(TOKENIZERS)),
    report.Column("Keras/tok", 9, "keras_vs_tokenizers", ".2f"),
    report.Column("others", 6, "other_load_cores", ".2f"),
    report.SEPARATOR,
    report.Column("ids: tokenize/TFLite/tok", 24, _ids_cell, align="<"),
]


def write_plot(rows, path):
    """Grouped bars of seconds per input and engine (log scale) with the 1 s line."""
    def draw(fig, ax):
        report.grouped_bars(ax, [r["input"] for r in rows], list(ENGINES), lambda label, engine: next(
            r["seconds"].get(engine) for r in rows if r["input"] == label), labels=lambda v: f"{v:.2g}" if v else "",
            fontsize=5, rotation=90, padding=2, ticks=dict(rotation=30, ha="right", fontsize=8))
        step = 0.8 / len(ENGINES)  # grouped_bars' default width: mark the bars that cannot exist
        for g, row in enumerate(rows):
            for engine in row["not_available"]:
                x = g + (ENGINES.index(engine) - (len(ENGINES) - 1) / 2) * step
                ax.annotate("n/a", (x, 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                            textcoords="offset points", ha="center", fontsize=6, rotation=90)
        ax.axhline(SERVED_TARGET_SECONDS, color="black", linestyle="--", linewidth=0.8,
                   label="1 s target (served: per request; TFLite: per text)")
        ax.set_yscale("log")
        ax.set_ylabel("seconds per input (median, log scale)")
        ax.set_title(f"roberta-base tokenizer on adversarial inputs, {os.cpu_count()} CPU cores "
                     "(n/a: tokenizers cannot take invalid UTF-8)")
        ax.legend(fontsize=8)

    return report.plot(path, draw, figsize=(14, 6))


def peak_rss_kb():
    """This process's peak resident memory (VmHWM), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------- main


def main(argv):
    del argv
    if FLAGS.tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.tf_threads)
    if FLAGS.quick:
        sizes, batch_texts, repeats, large_repeats = [5_000, 20_000], 50, 1, 1
    else:
        sizes, batch_texts = [int(s) for s in FLAGS.sizes], FLAGS.batch_texts
        repeats, large_repeats = FLAGS.repeats, FLAGS.large_repeats
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, rayon_num_threads=os.environ.get("RAYON_NUM_THREADS"))
    cases = make_cases(sizes, batch_texts, FLAGS.batch_text_bytes, FLAGS.seed)

    tokenizer = build_tokenizer(FLAGS.data_dir)
    hf = hf_tokenizer(FLAGS.data_dir)
    setup = {}
    with tempfile.TemporaryDirectory(prefix="adversarial-benchmark-") as directory:
        loaded, setup["saved_model"] = export_served_model(tokenizer, directory)
        start = time.perf_counter()
        engines = [*served_engines(loaded), tflite_engine(tokenizer), keras_engine(tokenizer), tokenizers_engine(hf)]
        setup["tflite_export_seconds"] = time.perf_counter() - start
        logging.info("Setup: %s", setup)

        measurements, rows = [], []
        for case in cases:
            case_repeats = large_repeats if case.nominal_bytes >= LARGE_BYTES else repeats
            results, row = {}, {"input": case.label, "kind": case.kind, "num_bytes": case.num_bytes,
                                "num_texts": len(case.texts), "repeats": case_repeats, "seconds": {},
                                "not_available": []}
            with report.LoadMeter() as load:  # the whole input: long enough for /proc/stat's ticks
                for engine in engines:
                    measurement, result = measure(engine, case, case_repeats)
                    measurements.append(measurement)
                    if measurement["status"] == "ok":
                        results[engine.name] = result
                        row["seconds"][engine.name] = measurement["median_seconds"]
                    else:
                        row["not_available"].append(engine.name)
            row["other_load_cores"], row["steal_cores"], row["wall_seconds"] = (load.other_cores, load.steal_cores,
                                                                                load.seconds)
            row["ids"] = check_ids(case, results, hf)
            rows.append(row)
        del loaded
    add_ratios(rows)
    targets = check_targets(rows, measurements)

    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, "sizes": sizes, "batch_texts": batch_texts,
                   "batch_text_bytes": FLAGS.batch_text_bytes, "seed": FLAGS.seed, "repeats": repeats,
                   "large_repeats": large_repeats, "large_bytes": LARGE_BYTES, "sequence_length": SEQUENCE_LENGTH,
                   "tflite_max_tokens": MAX_TOKENS, "max_word_bytes": DEFAULT_MAX_WORD_BYTES,
                   "seconds_from": "median of the timed calls after one warm-up call"},
        "inputs": [{"input": c.label, "kind": c.kind, "description": c.description, "num_texts": len(c.texts),
                    "num_bytes": c.num_bytes, "nominal_bytes": c.nominal_bytes, "valid_utf8": c.valid_utf8,
                    "bytes_in_valid_utf8_characters": sum(map(valid_utf8_bytes, c.texts)),
                    "space_separated_words": sum(len(t.split()) for t in c.texts)}
                   for c in cases],
        "setup": setup,
        "measurements": measurements,
        "rows": rows,
        "targets": targets,
        "peak_rss_kb": peak_rss_kb(),
        "total_seconds": time.perf_counter() - started,
    }
    written = report.save(FLAGS.output_dir, "adversarial_benchmark", record, lambda path: write_plot(rows, path))

    print("\n" + report.load_summary(info, other_loads=[row["other_load_cores"] for row in rows]))
    print(f"Seconds per input: median of {repeats} calls ({large_repeats} for inputs of >= 1 MB) after one warm-up "
          f"call. Served SavedModel: sequence length {SEQUENCE_LENGTH}, one request per input; TFLite: max_tokens "
          f"{MAX_TOKENS}, one text per invocation; Keras layer: every id; tokenizers: 1 thread.")
    print(report.format_table(TABLE, rows))
    print("others: cores other processes used on average while the row's input ran through every engine.")
    print("ids: served tokenize = <s> + Keras[:510] + </s>; TFLite = Keras[:510]; Keras = tokenizers ('chunked': "
          f"a piece with no final boundary is merged in {DEFAULT_MAX_WORD_BYTES:,}-byte chunks, documented, and equals "
          "tokenizers on those chunks; n/a: tokenizers cannot take bytes that are not UTF-8).")
    print(report.format_targets("Targets:", targets, ("engine", "input"),
                                missing="n/a (tokenizers cannot take invalid UTF-8)"))
    if record["peak_rss_kb"]:
        print(f"Peak resident memory of the run: {record['peak_rss_kb'] / 1024:,.0f} MB.")
    print(written)


if __name__ == "__main__":
    app.run(main)
