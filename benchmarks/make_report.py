"""Builds `REPORT.md` and its plots from the benchmarks' JSON files, without running anything.

    python -m benchmarks.make_report [--output_dir benchmarks/results] [--noplots]

`roberta-tf benchmark` runs every benchmark and then this module; run alone, it rebuilds the
report from the NAME.json files already in --output_dir (a benchmark rerun on its own, a
change to the report's layout). Every number in the report is read from those files: the
timings, and the ratios to the reference engines that each benchmark computed from
measurements of the same run. Nothing is measured or recomputed here.

The report (Markdown, GitHub tables) has:
  * a header: when and how the results were made (the `roberta-tf benchmark` run record
    `benchmark_run.json` when there is one: command, duration, failed steps), per benchmark its
    date, commit, quick or full, threads, wall time and the load on the machine; the CPU model
    and the flags the kernels choose between (AVX-512, VNNI, BF16, AMX); package versions;
    every target met or missed;
  * per benchmark its main tables and targets;
  * four plots beside it (PNG; skipped, and said so, without matplotlib):
    report_latency_vs_length.png (model and TFLite benchmarks: latency per engine / artifact
    against the sequence length), report_tokenizer_throughput.png, report_accuracy_vs_size.png
    (the TFLite benchmark's forms: SST-2 accuracy against file size) and
    report_adversarial_inputs.png (the adversarial-input table as a heat map).

A benchmark that failed in the run (or whose JSON is older than the run) is reported as such,
and its old JSON is not shown as a result of that run; a verification run that `roberta-tf
benchmark` does not run (`STANDALONE`: sentencepiece_parity) is shown with its own date. A JSON
this module has no section for still gets its header row and targets.
"""

import json
import math
import statistics
from pathlib import Path

from absl import app, flags, logging

from benchmarks import RESULTS_DIR
from benchmarks import report

REPORT_FILE = "REPORT.md"
RUN_RECORD_FILE = "benchmark_run.json"  # written by `roberta-tf benchmark` (roberta_tf/cli/benchmark.py)
PLOT_FILES = {
    "latency": "report_latency_vs_length.png",
    "tokenizer": "report_tokenizer_throughput.png",
    "accuracy": "report_accuracy_vs_size.png",
    "adversarial": "report_adversarial_inputs.png",
}
# Report order; any other NAME.json follows in alphabetical order.
ORDER = ("tokenizer_benchmark", "sentencepiece_benchmark", "sentencepiece_parity", "model_benchmark",
         "conversion_benchmark", "serving_benchmark", "adversarial_benchmark", "tflite_benchmark",
         "predict_memory_benchmark", "beam_benchmark", "xlmr_large_benchmark")
# Verification runs that `roberta-tf benchmark` does not run (each alone, `python -m
# benchmarks.NAME`, when the code they verify changes): shown with their own date, never taken
# for a stale result of the last `roberta-tf benchmark` run.
STANDALONE = ("sentencepiece_parity",)
MAX_LISTED_TARGETS = 16  # more than this: the counts, then only the targets not met or without a value

Column = report.Column


# ----------------------------------------------------------------------------- reading


class ReportError(Exception):
    """A results directory the report cannot be built from (one sentence for the user)."""


def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ReportError(f"cannot read {path}: {e}") from e


def load_records(directory):
    """{benchmark name: its record} for every NAME.json in `directory` holding a benchmark's
    record (a "machine" entry), in report order; and the names of the unreadable files."""
    records, unreadable = {}, {}
    for path in sorted(Path(directory).glob("*.json")):
        if path.name == RUN_RECORD_FILE:
            continue
        try:
            record = read_json(path)
        except ReportError as e:
            unreadable[path.stem] = str(e)
            continue
        if isinstance(record, dict) and isinstance(record.get("machine"), dict):
            record["_file_date"] = _file_date(path)
            record["_standalone"] = path.stem in STANDALONE
            records[path.stem] = record
    order = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(records.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))), unreadable


def _file_date(path):
    import datetime

    seconds = path.stat().st_mtime
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def record_date(record):
    """(ISO date of the benchmark's start, whether it is only the file's modification time)."""
    date = record["machine"].get("date")
    return (date, False) if date else (record.get("_file_date"), True)


def load_run_record(directory):
    path = Path(directory) / RUN_RECORD_FILE
    return read_json(path) if path.is_file() else None


def steps_by_name(run):
    return {step["name"]: step for step in (run or {}).get("steps", [])}


def from_this_run(record, run):
    """Whether `record` was written by the run `run` describes (no run record, or a STANDALONE
    verification run's record: True)."""
    if not run or not run.get("started") or record.get("_standalone"):
        return True
    date, _ = record_date(record)
    return bool(date) and date >= run["started"]


# ----------------------------------------------------------------------------- small helpers


def other_loads(value, found=None):
    """Every `other_load_cores` value in a record (any nesting): the cores other processes took
    while something was measured."""
    found = [] if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "other_load_cores" and isinstance(item, (int, float)):
                found.append(item)
            elif key != "machine":
                other_loads(item, found)
    elif isinstance(value, list):
        for item in value:
            other_loads(item, found)
    return found


def threads_text(machine):
    if machine.get("threads"):
        text = f"{machine['threads']} per engine"
    else:
        intra = (machine.get("tf_threads") or {}).get("intra_op")
        text = f"TF {intra}" if intra else f"TF default ({machine.get('cpu_count')} CPUs)"
    if machine.get("rayon_num_threads"):
        text += f"; RAYON_NUM_THREADS {machine['rayon_num_threads']} (tokenizers)"
    return text


def load_text(machine, record):
    start = (machine.get("load_average_at_start") or [None])[0]
    end = (machine.get("load_average_at_end") or [None])[0]
    text = f"{report.format_value(start, '.2f')} -> {report.format_value(end, '.2f')}"
    loads = other_loads(record)
    if loads:
        text += f"; others {statistics.mean(loads):.2f} mean / {max(loads):.2f} max cores"
    return text


def seconds_text(seconds):
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def percent(key):
    return lambda row: None if row.get(key) is None else 100 * row[key]


def nested(*keys):
    """A cell reading nested keys; missing (or a part that is not a dict) -> "-"."""
    def cell(row):
        value = row
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value
    return cell


def table(columns, rows, keys=1):
    return report.markdown_table(columns, rows, keys=keys) if rows else "_No rows._"


# ----------------------------------------------------------------------------- targets


def target_label(target):
    context = [str(value) for key, value in target.items()
               if key not in ("what", "value", "target", "met", "binding")]
    return " ".join(context)


def verdict(target):
    text = {True: "met", False: "**NOT MET**", None: "n/a (no value)"}[target.get("met")]
    return text + (" (informative)" if target.get("binding") is False else "")


TARGET_TABLE = [
    Column("whose", 0, target_label, align="<"), Column("what", 0, "what", align="<"),
    Column("value", 0, "value", ".3g"), Column("target", 0, "target", align="<"),
    Column("verdict", 0, verdict, align="<"),
]


def count_targets(targets):
    """(met, not met, without a value) among the binding targets; informative ones apart."""
    binding = [t for t in targets if t.get("binding") is not False]
    return (sum(t.get("met") is True for t in binding), sum(t.get("met") is False for t in binding),
            sum(t.get("met") is None for t in binding), len(targets) - len(binding))


def targets_block(targets):
    if not targets:
        return []
    met, missed, missing, informative = count_targets(targets)
    summary = f"Targets: {met} met, {missed} not met" + (f", {missing} without a value" if missing else "")
    summary += f" (+ {informative} informative)." if informative else "."
    if len(targets) <= MAX_LISTED_TARGETS:
        return [summary, table(TARGET_TABLE, targets)]
    listed = [t for t in targets if t.get("met") is not True]
    if not listed:
        return [summary + " Every one is met."]
    return [summary + " Those not met or without a value:", table(TARGET_TABLE, listed)]


# ----------------------------------------------------------------------------- sections


TOKENIZER_TABLE = [
    Column("engine", 0, "engine", align="<"), Column("data", 0, "dataset", align="<"),
    Column("batch", 0, "batch_size"), Column("texts/s", 0, "texts_per_s", ",.0f"),
    Column("tokens/s", 0, "tokens_per_s", ",.0f"), Column("ms/text", 0, "ms_per_text", ".3f"),
    Column("ids differ", 0, lambda r: f"{r['mismatches']}/{r['num_texts']}" if "mismatches" in r else None),
    Column("x tokenizers", 0, "x_tokenizers", ".3g"), Column("x keras-hub", 0, "x_keras_hub", ".3g"),
]


def tokenizer_section(record, plots):
    datasets = ", ".join(f"{name} ({d.get('num_texts')} texts)" for name, d in (record.get("datasets") or {}).items())
    return [
        f"Tokenizer engines on {datasets}; throughput from the best timed pass; x tokenizers / x keras-hub = "
        "texts/s over the reference engine's in the same run (> 1: faster); ids differ = texts whose ids differ "
        "from `tokenizers`'.",
        table(TOKENIZER_TABLE, record.get("measurements") or [], keys=3),
        *targets_block(record.get("targets") or []),
        plots.reference("tokenizer", "Tokenizer throughput per engine"),
    ]


SENTENCEPIECE_TABLE = [
    Column("model", 0, "model", align="<"), Column("engine", 0, "engine", align="<"),
    Column("batch", 0, "batch_size"), Column("threads", 0, "threads"), Column("texts/s", 0, "texts_per_s", ",.0f"),
    Column("tokens/s", 0, "tokens_per_s", ",.0f"),
    Column("ids differ", 0, lambda r: f"{r['mismatches']}/{r['num_texts']}" if "mismatches" in r else None),
    Column("x spm t1", 0, "x_spm_t1", ".3g"), Column("x spm t2", 0, "x_spm_t2", ".3g"),
    Column("others (cores)", 0, "other_load_cores", ".2f"),
]

SENTENCEPIECE_TFLITE_TABLE = [
    Column("model", 0, "model", align="<"), Column("engine", 0, "engine", align="<"),
    Column("median ms", 0, "median_ms", ".4f"), Column("p90 ms", 0, "p90_ms", ".4f"),
    Column("ids differ", 0, lambda r: f"{r['mismatches']}/{r['num_texts']}" if "mismatches" in r else None),
    Column("/ Fast", 0, "median_vs_tf_text_fast", ".2f"), Column("others (cores)", 0, "other_load_cores", ".2f"),
]


def sentencepiece_section(record, plots):
    dataset = record.get("dataset") or {}
    models = ", ".join(f"{name} ({notes.get('model_type')}, {notes.get('pieces'):,} pieces)"
                       for name, notes in (record.get("models") or {}).items())
    notes = sorted({r["note"] for r in (record.get("measurements") or []) + (record.get("tflite") or [])
                    if r.get("note")})
    return [
        f"XLM-R SentencePiece tokenization on the XNLI mix ({dataset.get('num_texts')} distinct texts, 15 languages) "
        f"with {models}; throughput from the best timed pass; ids differ = texts whose ids differ from "
        "`sentencepiece`'s mapped to fairseq's (+1, `<unk>` 0 -> 3); x spm tN = texts/s over `sentencepiece` "
        "encode of a list with N threads at the same batch size (batch 1: encode of one text).",
        table(SENTENCEPIECE_TABLE, record.get("measurements") or [], keys=3),
        "TFLite, one text per call: latency per text (each text's median over the passes, then the median and p90 "
        "over the texts); / Fast = median over TF-Text's FastSentencepiece TFLite model's.",
        table(SENTENCEPIECE_TFLITE_TABLE, record.get("tflite") or [], keys=2),
        *(f"Note: {note}." for note in notes),
        *targets_block(record.get("targets") or []),
    ]


def _parity_consumer_columns(consumers):
    columns = []
    for consumer in consumers:
        columns += [Column(f"{consumer} differ", 0, (consumer, "mismatches"), ","),
                    Column(f"{consumer} s", 0, (consumer, "seconds"), ",.1f")]
    return columns


def _parity_cell_line(cell):
    where = f"`{cell['model']}` / `{cell['corpus']}` / `{cell['consumer']}`"
    if cell.get("status") != "ok":
        return f"- {where}: **failed**: {cell.get('reason')}"
    first = cell.get("first_mismatch") or {}
    rerun = cell.get("rerun")
    again = f"; run again at {rerun['started_utc']}: {rerun['mismatches']}" if rerun else ""
    return (f"- {where}: {cell['mismatches']:,} of {cell['num_texts']:,} texts differ (at {cell.get('started_utc')}"
            f"{again}); first: text #{first.get('index')} `{first.get('text')}`, expected "
            f"`{first.get('expected')}`, got `{first.get('got')}` (ids from position {first.get('ids_from')})")


def sentencepiece_parity_section(record, plots):
    config = record.get("config") or {}
    consumers = config.get("consumers") or []
    models = ", ".join(f"{name} ({facts.get('model_type')}, {facts.get('normalizer')}, {facts.get('pieces'):,} pieces"
                       f"{', byte fallback' if facts.get('byte_fallback') else ''})"
                       for name, facts in (record.get("models") or {}).items())
    corpora = record.get("corpora") or {}
    columns = [Column("model", 0, "model", align="<"), Column("texts", 0, ("sentencepiece", "num_texts"), ","),
               Column("sentencepiece s", 0, ("sentencepiece", "seconds"), ",.1f"),
               *_parity_consumer_columns(consumers)]
    flagged = [c for c in record.get("cells") or [] if c.get("status") != "ok" or c.get("mismatches")]
    return [
        f"Ids of every text of {len(corpora)} corpora ({config.get('texts_per_model'):,} texts per model: "
        f"{', '.join(corpora)}) against `sentencepiece` + fairseq's mapping, for {models}. Consumers: the Keras layer "
        f"(batches of {config.get('batch_size')}), the tokenizer SavedModel's `tokenize` signature in a fresh process "
        "that imports only tensorflow (packed `<s> ids </s>`), the builtin-only TFLite tokenizer (one text per "
        "invoke). differ = texts whose ids differ; s = seconds over all corpora.",
        table(columns, record.get("totals") or []),
        *(["Cells with mismatches or failures:", "\n".join(_parity_cell_line(c) for c in flagged)] if flagged else
          ["Every cell (model x corpus x consumer) has zero mismatches."]),
        *targets_block(record.get("targets") or []),
    ]


MODEL_TABLE = [
    Column("case", 0, "case", align="<"), Column("engine", 0, "engine", align="<"),
    Column("median ms", 0, "median_ms", ".3g"), Column("p90 ms", 0, "p90_ms", ".3g"),
    Column("seq/s", 0, "sequences_per_s", ",.1f"), Column("GFLOP/s", 0, "gflop_per_s", ".1f"),
    Column("% peak", 0, "percent_of_peak", ".1f"), Column("x ORT", 0, "x_onnxruntime", ".2f"),
    Column("x fastest", 0, "x_fastest", ".2f"),
]


def layers_text(geometry):
    geometry = geometry or {}
    return f"{geometry.get('num_layers', '?')} layers x {geometry.get('hidden_dim', '?')}"


def geometry_text(name, geometry):
    return f"{name} geometry ({layers_text(geometry)})"


def model_section(record, plots):
    config = record.get("config") or {}
    peak = (record.get("matmul_peak_gflop_per_s") or {}).get("peak_tf_matmul")
    lines = [
        f"Encoder + head forward pass, float32, {geometry_text(config.get('geometry_name'), config.get('geometry'))}, "
        f"random weights, every token real. x ORT = median latency over "
        f"`{config.get('reference_engine', 'onnxruntime')}`'s "
        f"in the same run (< 1: faster); % peak = matmul GFLOP/s over tf.matmul's "
        f"{report.format_value(peak, '.0f')} GFLOP/s measured in the same run.",
        table(MODEL_TABLE, record.get("measurements") or [], keys=2),
    ]
    lines += [f"- {family} failed to build: {error.strip().splitlines()[-1][:200]}"
              for family, error in (record.get("family_errors") or {}).items() if error]
    lines.append("No pass/fail targets: the ratios are the result. Latency against sequence length: "
                 "[the plot below](#latency-versus-sequence-length).")
    return lines


CONVERSION_TABLE = [
    Column("source", 0, "variant", align="<"), Column("ckpt MB", 0, "checkpoint_mb", ".0f"),
    Column("fp32 MB", 0, "model_fp32_mb", ".0f"), Column("convert s", 0, "convert_seconds", ".2f"),
    Column("read s", 0, "read_seconds", ".2f"), Column("peak RSS MB", 0, "peak_rss_mb", ".0f"),
    Column("over baseline MB", 0, "over_baseline_mb", ".0f"), Column("x ckpt", 0, "copies_of_checkpoint", ".2f"),
    Column("x model", 0, "copies_of_model", ".2f"),
]


def conversion_section(record, plots):
    config = record.get("config") or {}
    lines = [
        f"Checkpoint -> preset conversion ({config.get('geometry_name')} geometry), a fresh process per run, median "
        f"of {config.get('repeats')}; x model = (peak RSS - baseline) / float32 weight bytes, the copies of the "
        "weights held at the peak (the design aims at about two); the baseline is the RSS after importing "
        "TensorFlow and roberta_tf." + (" On the tiny geometry of a quick run the converter's fixed costs "
                                         "dominate, so x model is far above that." if config.get("geometry_name") ==
                                         "tiny" else ""),
        table(CONVERSION_TABLE, record.get("results") or []),
    ]
    lines += [f"- {name}: skipped: {reason}" for name, reason in (config.get("skipped") or {}).items()]
    return lines


def _serving_share(case):
    def cell(row):
        share = (row.get(case) or {}).get("tokenize_share")
        return None if share is None else 100 * share
    return cell


def _serving_check(row):
    check = row.get("check")
    if not check:
        return None
    return f"{check['max_abs_diff']:.1e}" + {True: " ok", False: " FAIL", None: ""}[check.get("ok")]


def _serving_status(row):
    """A row ran when either case ran; otherwise it shows b1's failure."""
    cases = [row.get(case) or {} for case in ("b1", "b32")]
    if any(case.get("status") == "ok" for case in cases):
        return {**row, "status": "ok"}
    return {**row, "status": cases[0].get("status", "failed"), "reason": cases[0].get("reason", "")}


SERVING_TABLE = [
    Column("engine", 0, "engine", align="<"),
    Column("b1 median ms", 0, nested("b1", "median_ms"), ".3g"), Column("b1 p90 ms", 0, nested("b1", "p90_ms"), ".3g"),
    Column("b1 tok %", 0, _serving_share("b1"), ".1f"),
    Column("b1 x ORT", 0, nested("b1", "speedup_vs_ort_fp32"), ".3g"),
    Column("b32 sent/s", 0, nested("b32", "sentences_per_s"), ",.1f"),
    Column("b32 tok %", 0, _serving_share("b32"), ".1f"),
    Column("b32 x ORT", 0, nested("b32", "speedup_vs_ort_fp32"), ".3g"),
    Column("max abs diff vs f32", 0, _serving_check, align="<"),
]
SERVING_NUMERICS_TABLE = [
    Column("mode", 0, "mode", align="<"), Column("accuracy", 0, "accuracy", ".4f"),
    Column("label agreement", 0, "label_agreement", ".4f"), Column("disagree", 0, "disagreements", "d"),
    Column("max abs diff vs f32", 0, "max_abs_diff_vs_float32", ".2e"),
]


def serving_section(record, plots):
    config = record.get("config") or {}
    results = [_serving_status(r) for r in record.get("results") or []]
    geometry = geometry_text(config.get("geometry_name"), config.get("geometry"))
    lines = [
        f"The exported SavedModel end to end (strings -> logits), {geometry}, "
        f"SST-2 dev sentences: batch 1 (first {config.get('b1_sentences')} sentences) and batch "
        f"{config.get('batch', 32)} (first {config.get('b32_batches')} batches). x ORT = speed-up over "
        f"`{config.get('reference_engine')}` in the same run (> 1: faster); tok % = tokenization's share of the time. "
        "The sentences have mixed lengths, so this benchmark is a table, not a line in the latency plot.",
        table(SERVING_TABLE, results),
    ]
    for r in record.get("results") or []:
        for case in ("b1", "b32"):
            m = r.get(case) or {}
            if m.get("status") not in (None, "ok"):
                lines.append(f"- {r['engine']} {case}: {m['status']}: {m.get('reason', '')[:200]}")
    numerics = record.get("numerics") or {}
    if numerics.get("status") == "ok":
        lines += [f"Encoder modes on the trained SST-2 classifier ({numerics.get('sentences')} dev sentences):",
                  table(SERVING_NUMERICS_TABLE, [{"mode": name, **m} for name, m in numerics["modes"].items()])]
    else:
        lines.append(f"Encoder-mode numerics: {numerics.get('status', 'not run')} ({numerics.get('reason')}).")
    lines += targets_block(record.get("targets") or [])
    return lines


def _adversarial_engines(rows):
    engines = []
    for row in rows:
        for engine in [*row.get("seconds", {}), *row.get("not_available", [])]:
            if engine not in engines:
                engines.append(engine)
    return engines


def _adversarial_seconds(engine):
    def cell(row):
        if engine in row.get("not_available", []):
            return "n/a"
        value = row.get("seconds", {}).get(engine)
        return None if value is None else f"{value:.3g}"
    return cell


def _adversarial_ids(row):
    checks = row.get("ids") or {}
    return "/".join(checks.get(key, {}).get("status", "-") for key in ("tokenize", "tflite", "tokenizers"))


def adversarial_section(record, plots):
    rows = record.get("rows") or []
    columns = [Column("input", 0, "input", align="<"), Column("bytes", 0, "num_bytes", ","),
               Column("texts", 0, "num_texts", ",")]
    columns += [Column(f"{engine} s", 0, _adversarial_seconds(engine)) for engine in _adversarial_engines(rows)]
    columns += [Column("Keras / tokenizers", 0, "keras_vs_tokenizers", ".2f"),
                Column("others (cores)", 0, "other_load_cores", ".2f"),
                Column("ids: tokenize/TFLite/tokenizers", 0, _adversarial_ids, align="<")]
    return [
        "Seconds per adversarial input (median of the timed calls; one request or one text per TFLite invocation), "
        "with the token ids checked against each other ('chunked': a piece without a final boundary merged in "
        "chunks, as documented; n/a: `tokenizers` cannot take bytes that are not UTF-8). Keras / tokenizers is the "
        "ratio to the reference in the same run.",
        table(columns, rows),
        *targets_block(record.get("targets") or []),
        plots.reference("adversarial", "Adversarial inputs: seconds per input and engine"),
    ]


TFLITE_PART1_TABLE = [
    Column("engine", 0, "engine", align="<"), Column("MB", 0, lambda r: r.get("bytes") and r["bytes"] / 1e6, ".2f"),
    Column("% of f32", 0, percent("size_vs_float32"), ".1f"), Column("accuracy", 0, "accuracy", ".4f"),
    Column("d points", 0, "accuracy_minus_float32_points", "+.2f"), Column("agree", 0, "label_agreement", ".4f"),
    Column("median ms", 0, "median_ms", ".3g"), Column("p90 ms", 0, "p90_ms", ".3g"),
    Column("tok ms", 0, "tokenize_median_ms", ".3g"),
    Column("/ ORT fp32", 0, nested("ratios", "median_vs_ort_fp32"), ".2f"),
    Column("/ ORT int8", 0, nested("ratios", "median_vs_ort_int8"), ".2f"),
]
TFLITE_PART2_TABLE = [
    Column("tokens", 0, "length", "d"), Column("engine", 0, "engine", align="<"),
    Column("MB", 0, lambda r: r.get("bytes") and r["bytes"] / 1e6, ".1f"),
    Column("median ms", 0, "median_ms", ".3g"), Column("p90 ms", 0, "p90_ms", ".3g"),
    Column("/ ORT fp32", 0, nested("ratios", "median_vs_ort_fp32"), ".2f"),
    Column("/ ORT int8", 0, nested("ratios", "median_vs_ort_int8"), ".2f"),
    Column("/ TFLite f32", 0, nested("ratios", "median_vs_tflite_float32"), ".2f"),
]


def tflite_section(record, plots):
    p1, p2 = record.get("part1") or {}, record.get("part2") or {}
    lines = []
    if p1.get("status") == "ok":
        lines += [
            f"Part 1: the trained SST-2 classifier ({layers_text(p1.get('geometry'))}), "
            f"{p1.get('sentences')} dev sentences one per call, text in, logits out. d points = accuracy - TFLite "
            "float32's; agree = labels equal TFLite float32's; / ORT = median latency over that engine's in the "
            "same run (< 1: faster).",
            table(TFLITE_PART1_TABLE, p1.get("engines") or []),
            plots.reference("accuracy", "SST-2 accuracy against file size per quantization"),
        ]
    else:
        lines.append(f"Part 1 (SST-2 classifier): {p1.get('status', 'not run')} ({p1.get('reason')}).")
    if p2.get("status") == "ok":
        lines += [
            f"Part 2: {geometry_text(p2.get('geometry_name'), p2.get('geometry'))}, random weights, token ids in, "
            "batch 1 (latency against the sequence length: [the plot below](#latency-versus-sequence-length)).",
            table(TFLITE_PART2_TABLE, sorted(p2.get("engines") or [], key=lambda r: r.get("length", 0)), keys=2),
        ]
    else:
        lines.append(f"Part 2 (roberta-base geometry): {p2.get('status', 'not run')} ({p2.get('reason')}).")
    lines += targets_block(record.get("targets") or [])
    return lines


PREDICT_MEMORY_TABLE = [
    Column("artifact", 0, "artifact", align="<"), Column("GB in", 0, "input_gb", ".2f"),
    Column("lines", 0, "input_lines", ",d"), Column("wall s", 0, "wall_seconds", ".0f"),
    Column("MB/s", 0, "mb_per_second", ".2f"), Column("lines/s", 0, "lines_per_second", ",.0f"),
    Column("RSS at 10% MB", 0, "rss_base_mb", ".0f"), Column("RSS at end MB", 0, "rss_end_mb", ".0f"),
    Column("peak MB", 0, "peak_rss_mb", ".0f"), Column("growth MB", 0, "growth_mb", "+.0f"),
    Column("MB per GB", 0, "slope_mb_per_gb", "+.1f"), Column("others (cores)", 0, "other_load_cores", ".2f"),
]


def predict_memory_section(record, plots):
    config = record.get("config") or {}
    gigabytes = (config.get("total_bytes") or 0) / 2**30
    return [
        f"`roberta-tf predict` on {gigabytes:.2f} GB of generated text through a pipe: resident memory of the "
        "process against the input written so far (growth = RSS at the end minus RSS at 10% of the input; MB per "
        "GB = the least-squares slope after 10%). Measured, not asserted.",
        table(PREDICT_MEMORY_TABLE, record.get("results") or []),
    ]


BEAM_TABLE = [
    Column("engine", 0, "engine", align="<"), Column("seconds", 0, "seconds", ".1f"),
    Column("texts/s", 0, "texts_per_second", ",.0f"), Column("ms/text", 0, "ms_per_text", ".3f"),
    Column("+ms/text vs loop", 0, "overhead_ms_per_text", ".3f"),
    Column("marginal +ms/text", 0, "marginal_overhead_ms_per_text", ".3f"),
    Column("start-up s", 0, "startup_seconds", ".1f"), Column("others (cores)", 0, "other_load_cores", ".2f"),
]


def beam_section(record, plots):
    if record.get("status") == "skipped":
        return [f"Skipped: {record.get('reason')}."]
    config = record.get("config") or {}
    return [
        f"The exported SST-2 classifier on {config.get('texts', 0):,} SST-2 train sentences, batch "
        f"{config.get('batch_size')}: a plain loop over the SavedModel's `serving_default`, the single-process "
        "`predict`, and the Beam pipeline of `roberta-tf predict --runner DirectRunner` in memory and with 1 and 2 "
        "worker processes. +ms/text vs loop includes the start-up (workers, TensorFlow import, model load); "
        f"marginal +ms/text is from the difference with a {config.get('small_texts')}-text run.",
        table(BEAM_TABLE, record.get("rows") or []),
        *([f"Wrong outputs from: {', '.join(record['failures'])}."] if record.get("failures") else []),
    ]


XLMR_STEP_TABLE = [
    Column("step", 0, "step", align="<"), Column("seconds", 0, "seconds", ".1f"),
    Column("peak RSS GB", 0, "peak_gb", ".2f"), Column("size GB", 0, "size_gb", ".3f"),
    Column("check", 0, "check", align="<"),
]


def _xlmr_gb(*keys):
    cell = nested(*keys)
    return lambda row: None if cell(row) is None else cell(row) / 1e9


XLMR_TFLITE_TABLE = [
    Column("form", 0, "form", align="<"), Column("export s", 0, nested("export", "seconds"), ".0f"),
    Column("peak RSS GB", 0, _xlmr_gb("export", "peak_rss_bytes"), ".2f"),
    Column("size GB", 0, _xlmr_gb("export", "size_bytes"), ".3f"),
    Column("builtin only", 0, lambda r: None if "export" not in r else
           ("yes" if not r["export"].get("non_builtin_operators") else "NO"), align="<"),
    Column("ms/text", 0, nested("measured", "median_ms"), ".1f"),
    Column("max|d| logits", 0, nested("measured", "max_abs_logit_difference"), ".2e"),
    Column("max|d| probs", 0, nested("measured", "max_abs_probability_difference"), ".2e"),
    Column("argmax agree %", 0, lambda r: None if "measured" not in r else 100 * r["measured"]["argmax_agreement"],
           ".1f"),
]


def xlmr_large_section(record, plots):
    config, model = record.get("config") or {}, record.get("model") or {}
    geometry = config.get("geometry_arguments") or {}
    refusal = record.get("tflite_float32") or {}
    serving = record.get("saved_model") or {}
    return [
        f"XLM-R classifier of {layers_text(geometry)} ({model.get('parameters', 0) / 1e6:.1f}M parameters, "
        f"{(model.get('float32_weight_bytes') or 0) / 1e9:.2f} GB in float32, vocabulary "
        f"{geometry.get('vocabulary_size', 0):,}), seeded random weights, the 250k SentencePiece unigram tokenizer; "
        f"exports in fresh processes (peak RSS = VmHWM after loading the preset); the TF Serving stand-in is "
        f"`tf.compat.v1.saved_model.loader.load` in a process without roberta_tf, replaying the warmup records.",
        table(XLMR_STEP_TABLE, record.get("steps") or []),
        *([f"SavedModel part {serving.get('status')}: {serving.get('reason')}."]
          if serving.get("status") in ("failed", "skipped") else []),
        f"TFLite float32: {refusal.get('status')} — {refusal.get('message', '')}",
        f"TFLite forms, one text per call through `roberta_tf.lite.TextClassifier` ({config.get('threads')} threads); "
        f"ms/text = median over {config.get('latency_texts')} XNLI texts; differences and argmax agreement against "
        f"the float32 Keras model on {config.get('agreement_texts')} XNLI texts.",
        table(XLMR_TFLITE_TABLE, [{**row, "reason": " ".join(str(row.get("reason") or "").split())}
                                  for row in record.get("tflite") or []]),
        *targets_block(record.get("targets") or []),
    ]


def generic_section(record, plots):
    return ["This report has no table for this benchmark; its JSON has every measurement.",
            *targets_block(record.get("targets") or [])]


SECTIONS = {
    "tokenizer_benchmark": tokenizer_section,
    "sentencepiece_benchmark": sentencepiece_section,
    "sentencepiece_parity": sentencepiece_parity_section,
    "model_benchmark": model_section,
    "conversion_benchmark": conversion_section,
    "serving_benchmark": serving_section,
    "adversarial_benchmark": adversarial_section,
    "tflite_benchmark": tflite_section,
    "predict_memory_benchmark": predict_memory_section,
    "beam_benchmark": beam_section,
    "xlmr_large_benchmark": xlmr_large_section,
}


# ----------------------------------------------------------------------------- plots


def _log2_lengths(ax, lengths):
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(length) for length in lengths])
    ax.minorticks_off()


def _plain_log_labels(axis):
    """Tick labels of a log axis as plain numbers (0.2, 1, 50), at 1, 2 and 5 times a power of ten."""
    import matplotlib.ticker

    def label(value, _):
        leading = f"{value:.0e}"[0]
        return f"{value:g}" if leading in "125" else ""

    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(label))
    axis.set_minor_formatter(matplotlib.ticker.FuncFormatter(label))


def latency_panels(records):
    """(title, {series: [(length, median ms)]}) per panel: the model benchmark per batch size,
    the TFLite benchmark's part 2."""
    panels = []
    model = records.get("model_benchmark")
    if model:
        config = model.get("config") or {}
        ok = [m for m in model.get("measurements") or [] if m.get("status") == "ok"]
        for batch in sorted({m["batch"] for m in ok}):
            series = {}
            for m in ok:
                if m["batch"] == batch:
                    series.setdefault(m["engine"], []).append((m["length"], m["median_ms"]))
            panels.append((f"model_benchmark: encoder + head, batch {batch}\n"
                           f"{geometry_text(config.get('geometry_name'), config.get('geometry'))}", series))
    tflite = (records.get("tflite_benchmark") or {}).get("part2") or {}
    if tflite.get("status") == "ok":
        series = {}
        for row in tflite.get("engines") or []:
            if row.get("status") == "ok":
                series.setdefault(row["engine"], []).append((row["length"], row["median_ms"]))
        panels.append((f"tflite_benchmark: artifacts, token ids in, batch 1\n"
                       f"{geometry_text(tflite.get('geometry_name'), tflite.get('geometry'))}", series))
    return [(title, series) for title, series in panels if series]


def plot_latency(records, path):
    panels = latency_panels(records)
    if not panels:
        return None

    def draw(fig, axes):
        for ax, (title, series) in zip(axes if len(panels) > 1 else [axes], panels):
            lengths = sorted({length for points in series.values() for length, _ in points})
            for name, points in series.items():
                points = sorted(points)
                ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=name, linewidth=1.2, markersize=4)
            _log2_lengths(ax, lengths)
            ax.set_yscale("log")
            _plain_log_labels(ax.yaxis)
            ax.set_xlabel("sequence length (tokens)")
            ax.set_ylabel("median ms per call (log scale)")
            ax.set_title(title, fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle("Latency against sequence length per engine and artifact (lower is better)", fontsize=10)

    return report.plot(path, draw, 1, len(panels), figsize=(6 * len(panels), 5))


def _vs_tokenizers(ratio):
    if ratio is None:
        return "no reference"
    return "the reference" if ratio == 1 else f"x{ratio:.2g} the reference"


def plot_tokenizer(records, path):
    record = records.get("tokenizer_benchmark")
    ok = [m for m in (record or {}).get("measurements") or [] if m.get("status") == "ok"]
    if not ok:
        return None
    datasets = list(dict.fromkeys(m["dataset"] for m in ok))

    def draw(fig, axes):
        for ax, dataset in zip(axes if len(datasets) > 1 else [axes], datasets):
            rows = sorted((m for m in ok if m["dataset"] == dataset), key=lambda m: m["texts_per_s"])
            colors = ["tab:blue" if m["engine"].startswith("roberta_tf") else "tab:orange" for m in rows]
            bars = ax.barh(range(len(rows)), [m["texts_per_s"] for m in rows], color=colors)
            labels = [f"{m['texts_per_s']:,.0f}  ({_vs_tokenizers(m.get('x_tokenizers'))})" for m in rows]
            ax.bar_label(bars, labels, fontsize=7, padding=2)
            ax.set_yticks(range(len(rows)), [m["engine"] for m in rows], fontsize=8)
            ax.set_xscale("log")
            ax.margins(x=0.35)
            ax.set_xlabel("texts/s (best pass, log scale; higher is better)")
            num_texts = rows[0].get("num_texts")
            ax.set_title(f"{dataset} ({num_texts} texts)", fontsize=9)
        fig.suptitle("Tokenizer throughput per engine (blue: roberta_tf; orange: other libraries; "
                     "the reference: tokenizers encode_batch)", fontsize=10)

    return report.plot(path, draw, 1, len(datasets), figsize=(7 * len(datasets), 4.5))


def _family(engine):
    if engine.startswith("TFLite"):
        return "TFLite", "tab:blue"
    if engine.startswith("SavedModel"):
        return "SavedModel", "tab:green"
    return "ONNX Runtime", "tab:orange"


def plot_accuracy(records, path):
    p1 = (records.get("tflite_benchmark") or {}).get("part1") or {}
    rows = [r for r in p1.get("engines") or [] if r.get("status") == "ok" and r.get("bytes") and
            r.get("accuracy") is not None]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r["bytes"])

    def draw(fig, ax):
        import math as m

        sizes = [r["bytes"] / 1e6 for r in rows]
        middle = m.sqrt(min(sizes) * max(sizes))  # the log axis' centre: labels left of it start there
        seen = set()
        for i, (r, size) in enumerate(zip(rows, sizes)):
            family, color = _family(r["engine"])
            ax.scatter(size, r["accuracy"], color=color, s=40, zorder=3, label=None if family in seen else family)
            seen.add(family)
            # Equal accuracies are common (few sentences, quantization that changes no label), so the
            # labels get rows of their own, joined to their points by a thin line.
            ax.annotate(f"{r['engine']}: {r['accuracy']:.4f}, {size:.1f} MB", (size, r["accuracy"]),
                        xytext=(size, 0.95 - 0.5 * i / max(len(rows) - 1, 1)), textcoords=("data", "axes fraction"),
                        fontsize=7, ha="left" if size <= middle else "right", va="center",
                        arrowprops=dict(arrowstyle="-", color="gray", linewidth=0.5))
        reference = next((r["accuracy"] for r in rows if r["engine"] == "TFLite float32"), None)
        if reference is not None:
            ax.axhline(reference, color="gray", linestyle="--", linewidth=0.8, label="TFLite float32")
            ax.axhline(reference - 0.01, color="tab:red", linestyle=":", linewidth=0.8, label="float32 - 1 point")
        accuracies = [r["accuracy"] for r in rows] + ([reference - 0.01] if reference is not None else [])
        spread = max(accuracies) - min(accuracies) or 0.01
        ax.set_ylim(min(accuracies) - 0.15 * spread, max(accuracies) + 1.3 * spread)  # room for the labels
        ax.set_xscale("log")
        _plain_log_labels(ax.xaxis)
        ax.margins(x=0.3)
        ax.set_xlabel("file size, MB (log scale)")
        ax.set_ylabel(f"SST-2 dev accuracy ({p1.get('sentences')} sentences)")
        ax.set_title("Accuracy against model size per quantization (trained SST-2 classifier, batch 1, text in)",
                     fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")

    return report.plot(path, draw, figsize=(9, 6))


def plot_adversarial(records, path):
    record = records.get("adversarial_benchmark") or {}
    rows = record.get("rows") or []
    engines = _adversarial_engines(rows)
    if not rows or not engines:
        return None
    missed = {(t.get("engine"), t.get("input")) for t in record.get("targets") or [] if t.get("met") is False}

    def draw(fig, ax):
        import matplotlib.colors
        import matplotlib.patches
        import numpy as np

        # One column per engine (colour: seconds, log scale) and a last, uncoloured one with the id checks.
        values = np.array([[row.get("seconds", {}).get(engine, np.nan) for engine in engines] + [np.nan]
                           for row in rows], dtype=float)
        image = ax.imshow(values, cmap="RdYlGn_r", aspect="auto", norm=matplotlib.colors.LogNorm(vmin=1e-3, vmax=10))
        for i, row in enumerate(rows):
            for j, engine in enumerate(engines):
                value = values[i, j]
                text = "n/a" if engine in row.get("not_available", []) else "-" if math.isnan(value) else f"{value:.3g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7)
                if (engine, row["input"]) in missed:
                    ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                                              edgecolor="black", linewidth=2))
            ax.text(len(engines), i, _adversarial_ids(row), ha="center", va="center", fontsize=7)
        ax.xaxis.tick_top()
        ax.set_xticks(range(len(engines) + 1), [*engines, "ids: tokenize /\nTFLite / tokenizers"], fontsize=8)
        ax.set_yticks(range(len(rows)), [f"{row['input']} ({row.get('num_texts', 1)} text"
                                         f"{'s' if row.get('num_texts', 1) != 1 else ''})" for row in rows], fontsize=8)
        fig.colorbar(image, ax=ax, label="seconds (median, log)", shrink=0.9)
        ax.set_title("Adversarial inputs: seconds per input and engine (black box: a target not met; n/a: tokenizers "
                     "cannot take bytes that are not UTF-8)", fontsize=9, pad=30)

    return report.plot(path, draw, figsize=(4 + 1.7 * (len(engines) + 1), 1.8 + 0.4 * len(rows)))


PLOTTERS = {"latency": plot_latency, "tokenizer": plot_tokenizer, "accuracy": plot_accuracy,
            "adversarial": plot_adversarial}


class Plots:
    """Draws the report's plots into the results directory (or not: --noplots, no matplotlib)
    and gives the Markdown that shows each one (with a relative path) or says why it is missing."""

    def __init__(self, directory, records, enabled=True):
        self.written, self.missing = {}, {}
        if not enabled:
            self.missing = {key: "plots not requested (--noplots)" for key in PLOTTERS}
            return
        if report.pyplot() is None:
            self.missing = {key: "matplotlib is not installed" for key in PLOTTERS}
            return
        for key, plot in PLOTTERS.items():
            path = plot(records, Path(directory) / PLOT_FILES[key])
            if path is None:
                self.missing[key] = "no data for it in these results"
            else:
                self.written[key] = Path(path)

    def reference(self, key, title):
        if key in self.written:
            return f"![{title}]({self.written[key].name})"
        return f"_Plot `{PLOT_FILES[key]}` not drawn: {self.missing.get(key, 'unknown')}._"


# ----------------------------------------------------------------------------- the report


def header(records, run):
    lines = ["# Benchmark report", ""]
    quick = sorted({bool((r.get("config") or {}).get("quick")) for r in records.values()})
    source = "`python -m benchmarks.make_report` from the JSON files in this directory"
    if run:
        commit = f" at commit {run['commit']}" if run.get("commit") else ""
        source = (f"`{run.get('command', 'roberta-tf benchmark')}` ({seconds_text(run.get('seconds'))}, started "
                  f"{run.get('started')}{commit}), then {source}")
    lines.append(f"Made by {source}. Each benchmark's JSON beside this file holds every measurement.")
    commits = sorted({str(r["machine"].get("roberta_tf_commit")) for r in records.values()})
    if len(commits) > 1:
        lines += ["", f"**The benchmarks ran at different commits** ({', '.join(commits)}): the checkout changed "
                  "between them; each one's commit is in the table below."]
    if True in quick:
        lines += ["", "**Quick run** (`--quick`): tiny geometries, few calls, short timings. It shows that every "
                  "benchmark runs and roughly where each engine stands; the ratios are smoke-test numbers, not the "
                  "measured results that benchmarks/README.md quotes from full runs on a quiet machine."]
    return lines


def runs_table(records, run):
    steps = steps_by_name(run)
    rows = []
    for name, record in records.items():
        machine = record["machine"]
        date, is_file_time = record_date(record)
        step = steps.get(name)
        if step is None and record.get("_standalone"):
            status = f"ok (verification run, `python -m benchmarks.{name}`)"
        elif step is None:
            status = "not in the last `roberta-tf benchmark` run" if run else "ok"
        elif step.get("status") != "ok":
            status = f"**{step.get('status')}** (exit {step.get('exit_code')})"
        elif not from_this_run(record, run):
            status = "**stale** (JSON older than the run)"
        else:
            status = "ok"
        rows.append({"benchmark": name, "state": status,
                     "date": (date or "-") + (" (file time)" if is_file_time else ""),
                     "commit": machine.get("roberta_tf_commit") or "-",
                     "mode": "quick" if (record.get("config") or {}).get("quick") else "full",
                     "threads": threads_text(machine), "seconds": seconds_text(record.get("total_seconds")),
                     "load": load_text(machine, record)})
    for name, step in steps.items():
        if name not in records and step.get("kind", "benchmark") == "benchmark":
            state = ("**ok but wrote no JSON**" if step.get("status") == "ok" else
                     f"**{step.get('status')}** (exit {step.get('exit_code')}), no JSON")
            rows.append({"benchmark": name, "state": state})
    columns = [Column("benchmark", 0, "benchmark", align="<"), Column("state", 0, "state", align="<"),
               Column("started (UTC)", 0, "date", align="<"), Column("commit", 0, "commit", align="<"),
               Column("mode", 0, "mode", align="<"), Column("threads", 0, "threads", align="<"),
               Column("wall", 0, "seconds"),
               Column("load avg start -> end; cores other processes took while measuring", 0, "load", align="<")]
    return ["## Runs", "", table(columns, rows)]


def failed_steps(run):
    lines = []
    for step in (run or {}).get("steps", []):
        if step.get("status") != "ok":
            lines.append(f"- `{step['name']}` {step.get('status')} (exit {step.get('exit_code')}) after "
                         f"{seconds_text(step.get('seconds'))}: {step.get('error') or 'no message'} "
                         f"(log: `{step.get('log')}`, not committed).")
    return ["", "Failed steps:", *lines] if lines else []


def machine_block(records):
    machines, cpu_flags = {}, {}
    for name, record in records.items():
        m = record["machine"]
        key = (m.get("cpu_model"), m.get("cpu_count"), m.get("platform"), m.get("python"))
        machines.setdefault(key, []).append(name)
        if m.get("cpu_flags") is not None:  # older JSONs lack them: the others' record holds for the machine
            cpu_flags.setdefault(key, m["cpu_flags"])
    lines = ["## Machine", ""]
    if not machines:
        lines.append("_No benchmark results._")
    for key, names in machines.items():
        model, count, platform, python = key
        flags_ = cpu_flags.get(key)
        if flags_ is None:
            flag_text = "not recorded (JSON from before CPU flags were recorded)"
        else:
            absent = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f not in flags_]
            flag_text = ", ".join(flags_) or "none of those the kernels choose between"
            if absent:
                flag_text += f" (no {', '.join(absent)})"
        prefix = f"{', '.join(names)}: " if len(machines) > 1 else ""
        lines.append(f"- {prefix}CPU {model}, {count} logical CPUs; flags: {flag_text}; {platform}; Python {python}.")
    if len(machines) > 1:
        lines.append("- **The results come from more than one machine**: compare engines only within one benchmark.")
    return lines


def packages_block(records):
    versions = {}
    for name, record in records.items():
        for package, version in (record["machine"].get("packages") or {}).items():
            versions.setdefault(package, {}).setdefault(version, []).append(name)
    rows = []
    for package in sorted(versions, key=str.lower):
        found = {v: names for v, names in versions[package].items() if v is not None}
        if not found:
            text = "not installed"
        elif len(found) == 1:
            text = next(iter(found))
        else:
            text = "; ".join(f"{v} ({', '.join(names)})" for v, names in found.items())
        rows.append({"package": package, "version": text})
    return ["## Package versions", "",
            table([Column("package", 0, "package", align="<"), Column("version", 0, "version", align="<")], rows)]


def targets_summary(records, run):
    rows = []
    for name, record in records.items():
        if not from_this_run(record, run) or not record.get("targets"):
            continue
        met, missed, missing, informative = count_targets(record["targets"])
        rows.append({"benchmark": f"[{name}](#{name})", "met": met, "not met": missed, "no value": missing,
                     "informative": informative})
    if not rows:
        return []
    columns = [Column("benchmark", 0, "benchmark", align="<"), Column("met", 0, "met", "d"),
               Column("not met", 0, "not met", "d"), Column("no value", 0, "no value", "d"),
               Column("informative", 0, "informative", "d")]
    return ["## Targets", "", "Binding targets per benchmark (each section lists them; informative ones are "
            "reported, not judged):", "", table(columns, rows)]


def benchmark_sections(records, run, plots):
    lines, errors = [], []
    steps = steps_by_name(run)
    for name, record in records.items():
        lines += ["", f"## {name}", ""]
        step = steps.get(name)
        if (step is not None and step.get("status") != "ok") or not from_this_run(record, run):
            date, _ = record_date(record)
            lines.append(f"Not run successfully in this run: the `{name}.json` here is from {date}, an earlier run, "
                         "and is not shown as a result of this one.")
            continue
        section = SECTIONS.get(name, generic_section)
        try:
            blocks = section(record, plots)
        except Exception as e:  # noqa: BLE001 (one odd JSON must not lose the rest of the report)
            logging.exception("Section %s failed", name)
            errors.append(f"{name}: {type(e).__name__}: {e}")
            blocks = [f"**This section could not be built from {name}.json** ({type(e).__name__}: {e})."]
        for block in blocks:
            lines += [block, ""]
        if name == "model_benchmark" or (name == "tflite_benchmark" and "model_benchmark" not in records):
            lines += latency_section(plots)
    return lines, errors


def latency_section(plots):
    return ["## Latency versus sequence length", "",
            "Median latency per call against the number of tokens: the model benchmark's engines (each batch size "
            "a panel) and the TFLite benchmark's artifacts (part 2). The serving benchmark's SST-2 sentences have "
            "mixed lengths and are in its table instead.", "",
            plots.reference("latency", "Latency against sequence length per engine and artifact"), ""]


def build_report(directory, plots=True):
    """Writes DIRECTORY/REPORT.md and the plots; returns (report path, Plots, section errors).
    Raises ReportError when there is nothing to report."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReportError(f"no results directory {directory}: run `roberta-tf benchmark` first")
    records, unreadable = load_records(directory)
    run = load_run_record(directory)
    if not records and not (run or {}).get("steps"):
        raise ReportError(f"no benchmark results (NAME.json) in {directory}: run `roberta-tf benchmark` "
                          "or `python -m benchmarks.NAME` first")
    drawn = Plots(directory, {name: r for name, r in records.items() if from_this_run(r, run)}, plots)
    sections, errors = benchmark_sections(records, run, drawn)
    errors += [f"{name}.json: {reason}" for name, reason in unreadable.items()]
    lines = [*header(records, run), "", *runs_table(records, run), *failed_steps(run)]
    lines += [f"- `{name}.json` could not be read: {reason}" for name, reason in unreadable.items()]
    lines += ["", *machine_block(records), "", *packages_block(records), ""]
    summary = targets_summary(records, run)
    lines += [*summary, ""] if summary else []
    lines += sections
    text = "\n".join(lines).rstrip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    path = directory / REPORT_FILE
    path.write_text(text, encoding="utf-8")
    return path, drawn, errors


# ----------------------------------------------------------------------------- main


def define_flags():
    flags.DEFINE_string("output_dir", str(RESULTS_DIR), "The results directory: reads its NAME.json files, writes "
                                                        f"{REPORT_FILE} and the report's plots there.")
    flags.DEFINE_bool("plots", True, "Draw the plots (needs matplotlib; without it the report says they are missing).")


def main(argv):
    del argv
    try:
        path, drawn, errors = build_report(flags.FLAGS.output_dir, flags.FLAGS.plots)
    except ReportError as e:
        raise SystemExit(f"make_report: error: {e}") from None  # one line, exit code 1
    print(f"Wrote {path} and {len(drawn.written)} plot(s)"
          + (f"; plots missing: {', '.join(sorted(set(drawn.missing.values())))}" if drawn.missing else "") + ".")
    if errors:
        raise SystemExit(f"make_report: error: {len(errors)} part(s) of the report could not be built: "
                         + "; ".join(errors))


if __name__ == "__main__":
    define_flags()
    app.run(main)
