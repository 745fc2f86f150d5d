"""Apache Beam benchmark: what does running the SavedModel as a Beam pipeline cost per text?

The model: the trained SST-2 classifier of `benchmarks.sst2_classifier` (4 layers x 256, cached;
`--preset` for another) exported with `export_preset` (TF Serving's SavedModel, what a corpus
job ships to its workers) into a temporary directory. The input: --texts SST-2 train sentences
(20,000; --quick 2,000) in one text file, one per line. Measured in one run, each engine on the
same file and model, batch --batch_size:

  * `signature loop`: `tf.saved_model.load` + `serving_default(text=...)` per batch of
    already-read Python strings; nothing else (the floor);
  * `predict`: `roberta_tf.cli.predict.predict_stream`, the single-process `roberta-tf predict`'s
    library function: lines read from the file, JSON lines written (to memory);
  * `beam in_memory`, `beam 1 process`, `beam 2 processes`: `roberta_tf.beam.run_files` (what
    `roberta-tf predict --runner DirectRunner` runs) with --direct_running_mode=in_memory, and
    multi_processing with --direct_num_workers=1 and 2: files matched and read, records checked,
    reshuffled, batched, classified, written as sharded JSON lines; the worker processes start,
    import TensorFlow and load the model inside the timed run.

Each Beam configuration runs twice, on --small_texts (200) and on all texts: the difference
gives the marginal cost per text with the fixed start-up (pipeline construction, worker start,
model load) removed. Reported per engine: wall seconds, texts/s, ms/text, and for Beam the
overhead per text against `signature loop` (total, and marginal without start-up) and the
start-up seconds. Each Beam run's output is checked: every text classified, labels equal to
`predict`'s. TensorFlow uses its default threads in every process (the machine has
`os.cpu_count()` cores; two worker processes share them).

Run from the repository root (needs `pip install -e '.[beam]'`; without apache-beam the run
records itself as skipped and exits 0):

    python -m benchmarks.beam_benchmark [--quick] [--texts N] [--batch_size B] [--output_dir DIR]

It prints the table and writes beam_benchmark.json (no plot: one table says it) to --output_dir.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import glob  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging as std_logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from benchmarks import DATA_DIR, RESULTS_DIR, data, report, sst2_classifier  # noqa: E402

FLAGS = flags.FLAGS
NAME = "beam_benchmark"
PACKAGES = ["tensorflow", "tf-keras", "apache-beam", "numpy", "protobuf", "absl-py", "roberta-tf"]
LOOP, PREDICT = "signature loop", "predict"
BEAM_CONFIGS = {  # engine name -> DirectRunner options
    "beam in_memory": ["--direct_running_mode=in_memory"],
    "beam 1 process": ["--direct_running_mode=multi_processing", "--direct_num_workers=1"],
    "beam 2 processes": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "Shared data: sst2/train.tsv.")
flags.DEFINE_bool("quick", False, "Smoke run: 2,000 texts (unless --texts is given).")
flags.DEFINE_integer("texts", None, "SST-2 train sentences classified per engine; default 20,000, 2,000 with --quick.")
flags.DEFINE_integer("small_texts", 200, "Texts of the second, small Beam run per configuration (start-up estimate).")
flags.DEFINE_integer("batch_size", 64, "Texts per model call, every engine.")
flags.DEFINE_string("preset", None, "The classifier preset to export (default: the cached sst2_classifier preset).")


def model_preset():
    """(preset path, its training record or None), or a SystemExit naming what to run."""
    if FLAGS.preset:
        return Path(FLAGS.preset), sst2_classifier.read_training_record(FLAGS.preset)
    path = sst2_classifier.default_cache_dir()
    if not sst2_classifier.is_current(path):
        raise SystemExit(f"no current trained SST-2 preset at {path}: run `python -m benchmarks.sst2_classifier` "
                         "first (about 5 minutes on 2 cores), or pass --preset")
    return Path(path), sst2_classifier.read_training_record(path)


def timed(function):
    """(result, seconds, other processes' cores meanwhile)."""
    with report.LoadMeter(children=True) as load:
        result = function()
    return result, load.seconds, load.other_cores


def signature_loop(model_path, texts, batch_size):
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_path)).signatures["serving_default"]
    signature(text=tf.constant(texts[:batch_size]))  # traced and warm, as in a long-running process

    def run():
        labels = []
        for batch in data.batches(texts, batch_size):
            labels += signature(text=tf.constant(batch))["class_id"].numpy().tolist()
        return labels

    return timed(run)


def single_process_predict(model_path, input_path, batch_size):
    from roberta_tf.artifacts import predictors
    from roberta_tf.cli import predict

    predictor = predictors.load(model_path, batch_size=batch_size)
    predictor.classify(["warm up"])

    def run():
        output = io.StringIO()
        with open(input_path, "rb") as lines:
            predict.predict_stream(predictor, lines, output, batch_size=batch_size)
        return [json.loads(line)["class_id"] for line in output.getvalue().splitlines()]

    return timed(run)


def beam_run(model_path, input_path, prefix, options, batch_size):
    """(class id by line number, seconds, other cores) of one `run_files` pipeline."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from roberta_tf import beam

    def run():
        counts = beam.run_files(PipelineOptions(["--runner=DirectRunner", *options]), str(input_path), str(prefix),
                                str(model_path), batch_size=batch_size)
        by_line = {}
        for path in glob.glob(f"{prefix}-*-of-*.jsonl"):
            for line in open(path, encoding="utf-8"):
                record = json.loads(line)
                by_line[int(record["id"].rsplit(":", 1)[1])] = record["class_id"]
        return counts, [by_line.get(n) for n in range(1, len(by_line) + 1)]

    return timed(run)


def write_lines(path, texts):
    Path(path).write_bytes(b"".join(text.encode("utf-8") + b"\n" for text in texts))


def measure(model_path, texts, small_texts, batch_size, workdir):
    """The rows of the table (one per engine)."""
    big, small = Path(workdir, "texts.txt"), Path(workdir, "small.txt")
    write_lines(big, texts)
    write_lines(small, texts[:small_texts])
    rows = []
    loop_labels, seconds, other = signature_loop(model_path, texts, batch_size)
    rows.append({"engine": LOOP, "seconds": seconds, "other_load_cores": other})
    predict_labels, seconds, other = single_process_predict(model_path, big, batch_size)
    rows.append({"engine": PREDICT, "seconds": seconds, "other_load_cores": other,
                 "labels_equal_loop": predict_labels == loop_labels})
    for n, (engine, options) in enumerate(BEAM_CONFIGS.items()):
        logging.info("%s: %d texts, then %d", engine, small_texts, len(texts))
        _, small_seconds, _ = beam_run(model_path, small, Path(workdir, f"small-{n}", "out"), options, batch_size)
        (counts, labels), seconds, other = beam_run(model_path, big, Path(workdir, f"big-{n}", "out"), options,
                                                    batch_size)
        rows.append({"engine": engine, "options": options, "seconds": seconds, "small_seconds": small_seconds,
                     "other_load_cores": other, "counts": counts, "labels_equal_predict": labels == predict_labels})
    return rows


def add_rates(rows, count, small_count):
    loop_ms = rows[0]["seconds"] * 1e3 / count
    for row in rows:
        row["texts_per_second"] = count / row["seconds"]
        row["ms_per_text"] = row["seconds"] * 1e3 / count
        row["overhead_ms_per_text"] = row["ms_per_text"] - loop_ms
        if "small_seconds" in row:
            marginal = (row["seconds"] - row["small_seconds"]) * 1e3 / (count - small_count)
            row["marginal_ms_per_text"] = marginal
            row["marginal_overhead_ms_per_text"] = marginal - loop_ms
            row["startup_seconds"] = row["seconds"] - marginal * count / 1e3
    return rows


COLUMNS = [
    report.Column("engine", 17, "engine", align="<"),
    report.Column("seconds", 8, "seconds", ".1f"),
    report.Column("texts/s", 8, "texts_per_second", ".0f"),
    report.Column("ms/text", 8, "ms_per_text", ".3f"),
    report.Column("+ms/text vs loop", 16, "overhead_ms_per_text", ".3f"),
    report.Column("marginal +ms/text", 17, "marginal_overhead_ms_per_text", ".3f"),
    report.Column("start-up s", 10, "startup_seconds", ".1f"),
    report.Column("others' cores", 13, "other_load_cores", ".2f"),
]


def skipped_record(reason, started):
    return {"status": "skipped", "reason": reason, "machine": report.finish(report.machine_info(PACKAGES)),
            "rows": [], "total_seconds": time.perf_counter() - started}


def main(argv):
    del argv
    started = time.perf_counter()
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        reason = "apache-beam is not installed (pip install -c constraints.txt -e '.[beam]')"
        print(f"{NAME}: skipped: {reason}")
        print(report.save(FLAGS.output_dir, NAME, skipped_record(reason, started)))
        return
    std_logging.getLogger("apache_beam").setLevel(std_logging.WARNING)
    count = FLAGS.texts or (2000 if FLAGS.quick else 20000)
    sentences, _ = data.load_sst2("train", FLAGS.data_dir)
    texts = [sentences[i % len(sentences)] for i in range(count)]
    preset, training = model_preset()
    info = report.machine_info(PACKAGES)
    from roberta_tf.export.saved_model import export_preset

    with tempfile.TemporaryDirectory(prefix="roberta_tf_beam_benchmark_") as workdir:
        exported = export_preset(preset, Path(workdir, "saved_model"), 1, warmup_requests=False)
        rows = add_rates(measure(exported.path, texts, FLAGS.small_texts, FLAGS.batch_size, workdir), count,
                         FLAGS.small_texts)
    failures = [row["engine"] for row in rows if row.get("labels_equal_predict") is False
                or row.get("labels_equal_loop") is False or row.get("counts", {}).get("classified", count) != count]
    beam_rows = [row for row in rows if row["engine"] in BEAM_CONFIGS]
    record = {
        "status": "ok" if not failures else "failed",
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, "texts": count, "small_texts": FLAGS.small_texts,
                   "batch_size": FLAGS.batch_size, "data": "SST-2 train sentences, in file order",
                   "preset": str(preset), "training": training, "runner": "DirectRunner"},
        "rows": rows,
        "overhead_ms_per_text": {row["engine"]: row["overhead_ms_per_text"] for row in beam_rows},
        "marginal_overhead_ms_per_text": {row["engine"]: row["marginal_overhead_ms_per_text"] for row in beam_rows},
        "failures": failures,
        "total_seconds": time.perf_counter() - started,
    }
    written = report.save(FLAGS.output_dir, NAME, record)
    print(f"\nroberta-tf SavedModel on {count} SST-2 train sentences, batch {FLAGS.batch_size}, DirectRunner; "
          f"{report.cpu_model()}, {info['cpu_count']} CPUs\n")
    print(report.format_table(COLUMNS, rows))
    print("\n+ms/text vs loop: (engine seconds - signature loop seconds) / texts, start-up included; marginal: "
          f"from the difference between the {count}-text and the {FLAGS.small_texts}-text run (start-up removed).")
    print(report.load_summary(info, other_loads=[row["other_load_cores"] for row in rows]))
    print(written)
    if failures:
        raise SystemExit(f"wrong outputs from: {', '.join(failures)}")


if __name__ == "__main__":
    app.run(main)
