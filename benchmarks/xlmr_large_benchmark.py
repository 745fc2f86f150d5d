"""XLM-R large at full size: the SavedModel export, TF Serving's way of loading it, and every
TFLite form that fits in a .tflite file, on a classifier of xlm_roberta_large's geometry.

XLM-R's 250,002-row embedding makes xlm_roberta_large about 560M parameters, 2.24 GB in
float32: past the 2 GB a .tflite FlatBuffer can hold. This benchmark builds that model with
seeded random weights (24 layers, hidden 1024, 16 heads, intermediate 4096, 514 positions,
3 classes; every weight perturbed by N(0, 0.02) so no bias or LayerNorm keeps its initial
value) and a real SentencePiece tokenizer (the 250k unigram model trained on XNLI dev by
`benchmarks.sentencepiece_models`, cut to XLM-R's 250,000 pieces = 250,002 fairseq ids), saves
it as a preset, and measures:

  * the model: parameters, float32 weight bytes (and the embedding's share);
  * the SavedModel export (`export_preset`, what `roberta-tf export saved_model` runs) in a
    fresh process: seconds, peak RSS, directory size, and the atomic write (a watcher thread
    lists the base directory while the export runs: the version directory must appear only
    once it is complete, staging under `.tmp-export-*`);
  * the export loaded as TF Serving loads it, in a fresh process that imports TensorFlow and
    TF Serving's protos only (not roberta_tf): `tf.compat.v1.saved_model.loader.load(sess,
    ["serve"], dir)`, then every `PredictionLog` of `assets.extra/tf_serving_warmup_requests`
    replayed through its signature's tensors by name (load and warmup seconds; every record
    must answer with its batch size); then `serving_default` on the first --serving_texts XNLI
    texts, whose logits must equal the Keras model's within 1e-4;
  * TFLite (`export_preset_tflite_forms`, one fresh process per form): float32 must be
    refused at once with the error naming the limit and the forms that fit (the message is
    recorded); float16, dynamic-range and int8 (calibrated on --calibration_texts XNLI texts
    other than the measured ones) must convert: seconds, peak RSS, file size (< 2 GiB),
    builtin ops only (`tflite_ops.non_builtin_operators`, the exporter's own check), then in
    this process through `roberta_tf.lite.TextClassifier`: latency per text on the first
    --latency_texts texts and the logits / probabilities against the float32 Keras model on
    --agreement_texts XNLI texts (max |d|, argmax agreement).

`--quick` runs the same path on a small encoder (2 layers, hidden 64) with the full 250k
vocabulary (the embedding is then most of the model), in about two minutes.

Each export process is watched from here and killed past --max_rss_gb (default 14.5): a form
that needs more memory is reported "out of memory" with its last log line, and the other
forms still run.

Run from the repository root (data from ../shared/data; at full size up to --max_rss_gb of RAM
for an export, plus ~1-5 GB for this process, and ~6 GB of disk in --work_dir):

    python -m benchmarks.xlmr_large_benchmark [--quick] [--output_dir DIR] [--work_dir DIR]
    python -m benchmarks.xlmr_large_benchmark --forms float16,int8 --nosaved_model   # TFLite only

It prints the tables and targets and writes xlmr_large_benchmark.json and .png to
--output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gc  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from benchmarks import DATA_DIR, REPO_ROOT, RESULTS_DIR, report, sentencepiece_models  # noqa: E402

FLAGS = flags.FLAGS
NAME = "xlmr_large_benchmark"
PACKAGES = ["tensorflow", "tf-keras", "tensorflow-serving-api", "ai-edge-litert", "sentencepiece", "numpy",
            "absl-py", "matplotlib"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "The shared reference data folder (xnli-dev/).")
flags.DEFINE_string("cache_dir", None, "Where the 250k-piece unigram model is cached "
                    "(default: $ROBERTA_TF_CACHE/benchmarks).")
flags.DEFINE_string("work_dir", None, "Scratch space for the preset, the SavedModel and the .tflite files "
                    "(~6 GB at full size; default: a temporary directory, removed at the end).")
flags.DEFINE_bool("quick", False, "Smoke run: 2 layers x hidden 64 with the full vocabulary, 8 agreement texts, "
                  "3 latency texts, 8 calibration texts.")
flags.DEFINE_integer("threads", 2, "TF intra-op threads (inter-op 1) and TFLite interpreter threads.")
flags.DEFINE_list("forms", ["none", "float16", "dynamic", "int8"], "TFLite forms (export_tflite's quantize).")
flags.DEFINE_bool("saved_model", True, "Export the SavedModel and load it as TF Serving does (--nosaved_model: "
                  "TFLite only).")
flags.DEFINE_integer("agreement_texts", None, "XNLI texts compared with the Keras model (default 50; 8 quick).")
flags.DEFINE_integer("latency_texts", None, "The first N agreement texts timed per TFLite form (default 5; 3 quick).")
flags.DEFINE_integer("latency_repeats", 3, "Timed calls per latency text (after one untimed call); the median "
                     "counts.")
flags.DEFINE_integer("serving_texts", None, "The first N agreement texts sent to serving_default in the TF Serving "
                     "stand-in (default 8; 4 quick).")
flags.DEFINE_integer("calibration_texts", None, "int8 calibration texts (XNLI texts after the measured ones; "
                     "default 100; 8 quick).")
flags.DEFINE_integer("sequence_length", 128, "The exports' truncation limit, in tokens (XNLI texts are shorter).")
flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
flags.DEFINE_float("max_rss_gb", 14.5, "An export process whose RSS passes this is killed and reported as such "
                   "(the machine's other jobs need the rest).")
# Internal: one export in a fresh process.
flags.DEFINE_enum("worker", None, ["saved_model", "tflite"], "Internal: run one export and exit.")
flags.DEFINE_string("worker_spec", None, "Internal: JSON spec of the worker's job.")

GEOMETRIES = {
    # xlm_roberta_large (fairseq xlmr.large): 514 position rows = max_sequence_length 512 + 2.
    "large": {"num_layers": 24, "hidden_dim": 1024, "num_heads": 16, "intermediate_dim": 4096,
              "max_sequence_length": 512},
    "quick": {"num_layers": 2, "hidden_dim": 64, "num_heads": 2, "intermediate_dim": 256,
              "max_sequence_length": 512},
}
VOCABULARY_SIZE = 250_002  # xlmr's fairseq ids: 250,000 SentencePiece pieces shifted by one, + <mask>
NUM_CLASSES = 3
PERTURBATION = 0.02
FORM_NAMES = {"none": "float32", "float16": "float16", "dynamic": "dynamic", "int8": "int8"}
SERVING_TOLERANCE = 1e-4  # serving_default logits vs the Keras model's
FLATBUFFER_LIMIT = 2**31 - 1
GB = 1e9


# ----------------------------------------------------------------------------- memory


def proc_status(keys=("VmRSS", "VmHWM")):
    """`{key: bytes}` of this process's /proc status lines (RSS and peak RSS)."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in keys:
                values[key] = int(rest.split()[0]) * 1024
    return values


def reset_peak():
    """Resets VmHWM to the current RSS (so the next peak is the measured step's); False when
    the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_free_memory():
    """Collects garbage and hands the heap's free pages back to the system (glibc's
    malloc_trim), so the measured step starts from what is really held (after loading XLM-R
    large's preset: 5.1 -> 5.0 GB)."""
    import ctypes

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def directory_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- the model


def tokenizer_proto(data_dir, cache_dir):
    """XLM-R's tokenizer size: the cached (or trained) 250,002-piece unigram model cut to
    250,000 pieces, so the tokenizer has xlmr's 250,002 fairseq ids."""
    model, path = sentencepiece_models.unigram_model(data_dir, cache_dir)
    return sentencepiece_models.with_pieces(model, sentencepiece_models.XLMR_SPM_PIECES), path


def build_classifier(geometry, tokenizer, sequence_length, seed):
    """The seeded classifier with its preprocessor; every weight perturbed by N(0, 0.02) (one
    variable at a time, float32 noise, so the peak is one extra copy of the largest)."""
    import tensorflow as tf

    from roberta_tf.models import XLMRobertaBackbone, XLMRobertaTextClassifier, XLMRobertaTextClassifierPreprocessor

    tf.keras.utils.set_random_seed(seed)
    backbone = XLMRobertaBackbone(vocabulary_size=tokenizer.vocabulary_size(), **geometry)
    preprocessor = XLMRobertaTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    classifier = XLMRobertaTextClassifier(backbone, num_classes=NUM_CLASSES, preprocessor=preprocessor)
    rng = np.random.default_rng(seed)
    for variable in classifier.weights:
        noise = rng.standard_normal(variable.shape, dtype=np.float32)
        noise *= PERTURBATION
        variable.assign_add(noise)
        del noise
    return classifier


def model_facts(classifier):
    """Parameters and float32 bytes, in total and of the token embedding."""
    weights = classifier.weights
    parameters = int(sum(np.prod(w.shape) for w in weights))
    embedding = max(weights, key=lambda w: np.prod(w.shape))
    return {
        "parameters": parameters,
        "float32_weight_bytes": int(sum(np.prod(w.shape) * w.dtype.size for w in weights)),
        "embedding_name": embedding.name,
        "embedding_shape": list(embedding.shape),
        "embedding_parameters": int(np.prod(embedding.shape)),
        "count_params": int(classifier.count_params()),
    }


def keras_logits(classifier, texts, batch_size=8):
    """The float32 Keras model's logits, texts packed by its preprocessor and each batch cut
    to its longest row (positions follow the padding mask, so the cut changes nothing)."""
    rows = []
    for start in range(0, len(texts), batch_size):
        packed = classifier.preprocessor(texts[start:start + batch_size])
        length = int(np.asarray(packed["padding_mask"]).sum(axis=1).max())
        inputs = {name: value[:, :length] for name, value in packed.items()}
        rows.append(np.asarray(classifier(inputs, training=False), np.float32))
    return np.concatenate(rows)


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- workers


def run_worker(mode, spec):
    """One export in this fresh process (the preset loaded first, the peak counter reset
    after it): returns its record."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from roberta_tf.export import provenance, saved_model, tflite

    start = time.perf_counter()
    resolved_preset = provenance.resolve_preset(spec["preset"])
    record = {"load_seconds": time.perf_counter() - start, "load_peak_rss_bytes": proc_status()["VmHWM"]}
    record["loaded_rss_bytes"] = proc_status()["VmRSS"]
    release_free_memory()
    record["baseline_rss_bytes"] = proc_status()["VmRSS"]
    record["peak_reset"] = reset_peak()
    start = time.perf_counter()
    if mode == "saved_model":
        record.update(_saved_model_export(saved_model, resolved_preset, spec))
    else:
        record.update(_tflite_export(tflite, resolved_preset, spec))
    record["seconds"] = time.perf_counter() - start
    record["peak_rss_bytes"] = proc_status()["VmHWM"]
    return record


class DirectoryWatcher(threading.Thread):
    """Lists `base` every `interval` seconds while an export runs: which names appeared, and
    when (seconds after the start) each was first seen."""

    def __init__(self, base, interval=0.2):
        super().__init__(daemon=True)
        self.base, self.interval = Path(base), interval
        self.first_seen, self.done = {}, threading.Event()
        self.start_time = time.perf_counter()

    def run(self):
        while not self.done.is_set():
            self.look()
            self.done.wait(self.interval)

    def look(self):
        if self.base.is_dir():
            for path in self.base.iterdir():
                self.first_seen.setdefault(path.name, round(time.perf_counter() - self.start_time, 2))

    def stop(self):
        self.done.set()
        self.join()
        self.look()


def _saved_model_export(saved_model, resolved, spec):
    base = Path(spec["output"])
    base.mkdir(parents=True, exist_ok=True)
    watcher = DirectoryWatcher(base)
    watcher.start()
    result = saved_model.export_saved_model(
        resolved.classifier, resolved.tokenizer, base, sequence_length=spec["sequence_length"],
        source=resolved.source, tokenizer_files=resolved.tokenizer_files,
    )
    export_seconds = time.perf_counter() - watcher.start_time
    watcher.stop()
    version = result.path.name
    staging = sorted(name for name in watcher.first_seen if name.startswith(".tmp-export-"))
    left = sorted(p.name for p in base.iterdir())
    return {
        "path": str(result.path),
        "directory_bytes": directory_bytes(result.path),
        "variables_bytes": directory_bytes(result.path / "variables"),
        "atomic": {
            "staging_directories_seen": staging,
            "version_first_seen_seconds": watcher.first_seen.get(version),
            "export_seconds": round(export_seconds, 2),
            "left_in_base": left,
            # Atomic: the version appeared only at the end (after the staging directory) and
            # nothing else is left behind.
            "ok": bool(staging) and left == [version] and
                  (watcher.first_seen.get(version) or 0) >= max(watcher.first_seen[s] for s in staging),
        },
    }


def _tflite_export(tflite, resolved, spec):
    from roberta_tf.export import tflite_ops

    output = Path(spec["output"])
    try:
        results = tflite.export_tflite_forms(
            resolved.classifier, resolved.tokenizer, {spec["form"]: output}, sequence_length=spec["sequence_length"],
            calibration_texts=spec.get("calibration_texts"), num_threads=spec["threads"], source=resolved.source,
            tokenizer_files=resolved.tokenizer_files,
        )
    except (ValueError, RuntimeError) as e:
        return {"status": "refused" if isinstance(e, ValueError) else "failed", "error_type": type(e).__name__,
                "message": str(e), "written": output.exists()}
    result = results[spec["form"]]
    content = output.read_bytes()
    return {
        "status": "ok",
        "path": str(output),
        "size_bytes": result.size_bytes,
        "non_builtin_operators": tflite_ops.non_builtin_operators(content),
        "operators": result.metadata["operators"],
        "verification": result.metadata["verification"],
    }


def run_worker_process(mode, spec, work_dir, max_rss_bytes):
    """Runs `--worker=mode` in a fresh process; its record plus the load meanwhile and the
    peak RSS seen from outside. A worker whose RSS passes `max_rss_bytes` is killed (the
    machine's other jobs need the rest) and reported as such, with its last log lines."""
    label = f"{mode}-{spec.get('form', 'export')}"
    result_path, log_path = Path(work_dir) / f"worker-{label}.json", Path(work_dir) / f"worker-{label}.log"
    command = [sys.executable, "-m", f"benchmarks.{NAME}", f"--worker={mode}",
               "--worker_spec=" + json.dumps({**spec, "result": str(result_path)})]
    with report.LoadMeter(children=True) as load, open(log_path, "w") as log:
        # Scratch files (the exporter's 2 GB signature SavedModel) go into the work directory,
        # which is removed at the end even when a worker is killed before its own cleanup.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                   env={**os.environ, "TMPDIR": str(work_dir)})
        watched = watch_rss(process, max_rss_bytes)
    tail = _last_lines(log_path.read_text(errors="replace"))
    if watched["killed"]:
        raise MemoryLimitExceeded(
            f"killed at {watched['peak_rss_bytes'] / GB:.1f} GB RSS (limit {max_rss_bytes / GB:.1f} GB, "
            f"--max_rss_gb) after {load.seconds:.0f} s; last log line: {_last_message(tail)}", watched, load.seconds,
            tail)
    if process.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"the {mode} worker failed (exit {process.returncode}): "
                           f"{_last_lines(log_path.read_text(errors='replace'), 60)}")
    record = json.loads(result_path.read_text())
    result_path.unlink()
    record.update(process_wall_seconds=load.seconds, other_load_cores=load.other_cores,
                  observed_peak_rss_bytes=watched["peak_rss_bytes"])
    return record


class MemoryLimitExceeded(RuntimeError):
    def __init__(self, message, watched, seconds, log_tail):
        super().__init__(message)
        self.peak_rss_bytes, self.seconds, self.log_tail = watched["peak_rss_bytes"], seconds, log_tail


def _last_message(log_tail):
    """The last log line without absl's prefix (level, date, thread, file:line), on one line."""
    lines = log_tail.splitlines() or [""]
    return re.sub(r"^[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ", "", lines[-1]).strip()[:200]


def watch_rss(process, max_rss_bytes, interval=0.5):
    """Polls `process`'s RSS until it exits; kills it past `max_rss_bytes`."""
    peak, killed = 0, False
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            rss = next(int(line.split()[1]) * 1024 for line in status.read_text().splitlines()
                       if line.startswith("VmRSS"))
        except (OSError, StopIteration):
            rss = 0
        peak = max(peak, rss)
        if rss > max_rss_bytes:
            process.kill()
            process.wait()
            killed = True
            break
        time.sleep(interval)
    return {"peak_rss_bytes": peak, "killed": killed}


def _last_lines(text, count=12):
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("W0000", "I0000"))]
    return "\n".join(lines[-count:])


# ----------------------------------------------------------------------------- TF Serving's loader


def tf_serving_load(export_dir, texts_json, result_path):
    """Runs in a fresh `python -c` process importing TensorFlow and TF Serving's protos only:
    loads `export_dir` as TF Serving does (a v1 Session, the MetaGraph tagged "serve", signature
    tensors by name), replays every warmup record, then runs serving_default on the texts."""
    import json
    import resource
    import sys
    import time

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    def peak_bytes():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

    logs = []
    for record in tf.data.TFRecordDataset(f"{export_dir}/assets.extra/tf_serving_warmup_requests"):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    result = {"records": len(logs), "answers": []}
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        start = time.perf_counter()
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        result["load_seconds"] = time.perf_counter() - start

        def run(signature_name, arrays):
            signature = meta_graph.signature_def[signature_name]
            feed = {signature.inputs[name].name: value for name, value in arrays.items()}
            fetch = {name: tensor.name for name, tensor in signature.outputs.items()}
            return session.run(fetch, feed)

        start = time.perf_counter()
        for log in logs:
            request = log.predict_log.request
            arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            began = time.perf_counter()
            outputs = run(request.model_spec.signature_name or "serving_default", arrays)
            batch = {value.shape[0] for value in arrays.values()}
            result["answers"].append({
                "signature": request.model_spec.signature_name, "batch": sorted(batch),
                "seconds": time.perf_counter() - began,
                "answered": len(batch) == 1 and all(v.shape[:1] == (next(iter(batch)),) for v in outputs.values()),
            })
        result["warmup_seconds"] = time.perf_counter() - start
        texts = json.loads(texts_json)
        start = time.perf_counter()
        outputs = run("serving_default", {"text": [t.encode("utf-8") for t in texts]})
        result["serving_default_seconds"] = time.perf_counter() - start
        result["logits"] = outputs["logits"].tolist()
    result["peak_rss_bytes"] = peak_bytes()
    result["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # The point of this process: TF Serving has no roberta_tf; nothing of it may be needed.
    result["project_modules_imported"] = sorted({name.split(".")[0] for name in sys.modules
                                                 if name.split(".")[0] in ("roberta_tf", "benchmarks", "serving")})
    with open(result_path, "w") as f:
        json.dump(result, f)


def run_tf_serving_load(export_dir, texts, work_dir):
    result_path = Path(work_dir) / "tf_serving_load.json"
    source = inspect.getsource(tf_serving_load) + "\nimport sys\ntf_serving_load(*sys.argv[1:])\n"
    with report.LoadMeter(children=True) as load:
        completed = subprocess.run([sys.executable, "-c", source, str(export_dir), json.dumps(texts), str(result_path)],
                                   capture_output=True, text=True, cwd=work_dir)
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"the TF Serving loader failed (exit {completed.returncode}): "
                           f"{_last_lines(completed.stderr)}")
    record = json.loads(result_path.read_text())
    record.update(process_wall_seconds=load.seconds, other_load_cores=load.other_cores)
    return record


# ----------------------------------------------------------------------------- TFLite in this process


def measure_tflite(path, texts, latency_count, repeats, threads, reference_logits):
    """Latency per text (median of `repeats` calls after one untimed call, per text; then the
    median over texts) and agreement with the Keras logits, through `roberta_tf.lite`."""
    from roberta_tf.lite import TextClassifier

    start = time.perf_counter()
    classifier = TextClassifier(path, num_threads=threads)
    first = classifier.classify(texts[:1])  # builds the interpreter and runs once
    first_call_seconds = time.perf_counter() - start
    latencies = []
    with report.LoadMeter() as load:
        for text in texts[:latency_count]:
            classifier.classify([text])
            calls = []
            for _ in range(repeats):
                began = time.perf_counter()
                classifier.classify([text])
                calls.append(time.perf_counter() - began)
            latencies.append(statistics.median(calls))
    result = classifier.classify(texts)
    del classifier, first
    gc.collect()
    reference_probabilities = softmax(reference_logits)
    return {
        "first_call_seconds": first_call_seconds,
        "latency_ms": [1000 * s for s in latencies],
        "median_ms": 1000 * statistics.median(latencies),
        "max_ms": 1000 * max(latencies),
        "latency_other_load_cores": load.other_cores,
        "texts": len(texts),
        "max_abs_logit_difference": float(np.abs(result.logits - reference_logits).max()),
        "max_abs_probability_difference": float(np.abs(result.probabilities - reference_probabilities).max()),
        "argmax_agreement": float(np.mean(result.class_id == reference_logits.argmax(axis=-1))),
    }


# ----------------------------------------------------------------------------- the run


def prepare(config, work_dir):
    """Builds the model, computes the Keras references, checks the float32 refusal and saves
    the preset; the model is freed before the exports run in their own processes."""
    import tf_keras

    from roberta_tf.export import tflite
    from roberta_tf.models import XLMRobertaTokenizer

    proto, proto_path = tokenizer_proto(config["data_dir"], config["cache_dir"])
    tokenizer = XLMRobertaTokenizer(proto=proto)
    if tokenizer.vocabulary_size() != VOCABULARY_SIZE:
        raise RuntimeError(f"the tokenizer has {tokenizer.vocabulary_size()} ids, not {VOCABULARY_SIZE}")
    texts = sentencepiece_models.xnli_mix(config["data_dir"], config["agreement_texts"] + config["calibration_texts"])
    agreement, calibration = texts[:config["agreement_texts"]], texts[config["agreement_texts"]:]
    start = time.perf_counter()
    classifier = build_classifier(GEOMETRIES[config["geometry"]], tokenizer, config["sequence_length"], config["seed"])
    build = {"seconds": time.perf_counter() - start, "peak_rss_bytes": proc_status()["VmHWM"]}
    facts = model_facts(classifier)
    start = time.perf_counter()
    reference = keras_logits(classifier, agreement)
    build["keras_reference_seconds"] = time.perf_counter() - start
    refusal = float32_refusal(tflite, classifier, tokenizer, work_dir)
    preset = Path(work_dir) / "preset"
    start = time.perf_counter()
    classifier.save_to_preset(str(preset))
    build["preset_seconds"] = time.perf_counter() - start
    build["preset_bytes"] = directory_bytes(preset)
    build["tokenizer"] = {"pieces": sentencepiece_models.XLMR_SPM_PIECES, "ids": tokenizer.vocabulary_size(),
                          "trained_model": proto_path, "sha256": hashlib.sha256(proto).hexdigest()}
    del classifier, tokenizer
    tf_keras.backend.clear_session()  # the models are tf-keras ones
    release_free_memory()
    return facts, build, refusal, preset, agreement, calibration, reference


def float32_refusal(tflite, classifier, tokenizer, work_dir):
    """The float32 export of a model past the FlatBuffer limit must fail at once (before
    converting) with the limit named: returns the message and the seconds it took. A model
    that fits (--quick) is not exported in float32: its status is "fits"."""
    estimated = tflite.estimated_size_bytes(classifier, "none")
    if estimated <= tflite.FLATBUFFER_LIMIT_BYTES:
        return {"status": "fits", "estimated_bytes": estimated, "seconds": None,
                "message": f"fits: about {estimated / GB:.2f} GB (not exported here; the refusal needs the full size)"}
    path = Path(work_dir) / "xlmr-float32.tflite"
    start = time.perf_counter()
    try:
        tflite.export_tflite_forms(classifier, tokenizer, {"none": path})
    except ValueError as e:
        return {"status": "refused", "message": str(e), "seconds": time.perf_counter() - start,
                "estimated_bytes": estimated, "written": path.exists()}
    return {"status": "written", "seconds": time.perf_counter() - start, "estimated_bytes": estimated,
            "size_bytes": path.stat().st_size}


def run_tflite_forms(config, preset, work_dir, agreement, calibration, reference):
    rows = []
    for form in [f for f in config["forms"] if f != "none"]:
        row = {"form": FORM_NAMES[form]}
        path = Path(work_dir) / f"xlmr-{form}.tflite"
        spec = {"preset": str(preset), "form": form, "output": str(path), "threads": config["threads"],
                "sequence_length": config["sequence_length"],
                "calibration_texts": calibration if form == "int8" else None}
        try:
            export = run_worker_process("tflite", spec, work_dir, config["max_rss_bytes"])
            row.update(export=export, status=export.get("status", "ok"))
            if row["status"] == "ok":
                row["measured"] = measure_tflite(path, agreement, config["latency_texts"], config["latency_repeats"],
                                                 config["threads"], reference)
            else:
                row["reason"] = export.get("message")
        except MemoryLimitExceeded as e:
            row.update(status="out of memory", reason=str(e), observed_peak_rss_bytes=e.peak_rss_bytes,
                       seconds_until_killed=e.seconds, log_tail=e.log_tail)
        except Exception as e:  # noqa: BLE001 (recorded; the other forms still run)
            logging.error("TFLite %s failed: %s", form, traceback.format_exc())
            row.update(status="failed", reason=f"{type(e).__name__}: {e}")
        if path.exists():
            path.unlink()
        print(f"TFLite {row['form']}: {row['status']}", flush=True)
        rows.append(row)
    return rows


def serving_part(config, preset, work_dir, agreement, reference):
    export = run_worker_process("saved_model", {"preset": str(preset), "output": str(Path(work_dir) / "xlmr_large"),
                                                "threads": config["threads"],
                                                "sequence_length": config["sequence_length"]}, work_dir,
                                config["max_rss_bytes"])
    texts = agreement[:config["serving_texts"]]
    loaded = run_tf_serving_load(export["path"], texts, work_dir)
    logits = np.asarray(loaded.pop("logits"), np.float32)
    difference = float(np.abs(logits - reference[:len(texts)]).max())
    loaded["serving_default"] = {"texts": len(texts), "max_abs_logit_difference": difference,
                                 "ok": difference <= SERVING_TOLERANCE}
    loaded["answered"] = sum(a["answered"] for a in loaded["answers"])
    if loaded["project_modules_imported"]:
        raise RuntimeError(f"the TF Serving stand-in imported {loaded['project_modules_imported']}")
    shutil.rmtree(Path(export["path"]).parent, ignore_errors=True)
    return export, loaded


def check_targets(model, refusal, export, loaded, forms):
    targets = []
    if refusal["status"] != "fits":
        targets.append(report.target("float32 refused before converting (1 = yes)",
                                     float(refusal["status"] == "refused"), ">=", 1, engine="TFLite float32"))
    if export:
        targets.append(report.target("atomic version write (1 = yes)", float(export["atomic"]["ok"]), ">=", 1,
                                     engine="SavedModel"))
    if loaded:
        targets += [
            report.target("warmup records answered / records", loaded["answered"] / max(loaded["records"], 1), ">=", 1,
                          engine="TF Serving loader"),
            report.target("serving_default max |logit d| vs Keras", loaded["serving_default"]["max_abs_logit_difference"],
                          "<=", SERVING_TOLERANCE, engine="TF Serving loader"),
        ]
    for row in forms:
        exported = (row.get("export") or {}) if row.get("status") == "ok" else {}
        targets.append(report.target("converted, verified and written (1 = yes)", float(row.get("status") == "ok"),
                                     ">=", 1, engine=f"TFLite {row['form']}"))
        size = exported.get("size_bytes")
        extra = exported.get("non_builtin_operators")
        targets.append(report.target("file size, GB (< 2 GiB)", None if size is None else size / GB,
                                     "<", FLATBUFFER_LIMIT / GB, engine=f"TFLite {row['form']}"))
        targets.append(report.target("non-builtin operators", None if extra is None else float(len(extra)),
                                     "<=", 0, engine=f"TFLite {row['form']}"))
    return targets


# ----------------------------------------------------------------------------- tables


Column = report.Column
STEP_TABLE = [
    Column("step", 34, "step", align="<"), Column("seconds", 8, "seconds", ".1f"),
    Column("peak RSS GB", 11, "peak_gb", ".2f"), Column("size GB", 8, "size_gb", ".3f"),
    Column("check", 60, "check", align="<"),
]
TFLITE_TABLE = [
    Column("form", 8, "form", align="<"), Column("export s", 9, ("export", "seconds"), ".0f"),
    Column("peak RSS GB", 11, lambda r: _gb((r.get("export") or {}).get("peak_rss_bytes")), ".2f"),
    Column("size GB", 8, lambda r: _gb((r.get("export") or {}).get("size_bytes")), ".3f"),
    Column("builtin only", 12, lambda r: None if "export" not in r else
           ("yes" if not r["export"].get("non_builtin_operators") else "NO")),
    Column("ms/text", 8, ("measured", "median_ms"), ".1f"), Column("max ms", 8, ("measured", "max_ms"), ".1f"),
    Column("max|d| logits", 13, ("measured", "max_abs_logit_difference"), ".2e"),
    Column("max|d| probs", 12, ("measured", "max_abs_probability_difference"), ".2e"),
    Column("argmax agree", 12, lambda r: None if "measured" not in r else 100 * r["measured"]["argmax_agreement"],
           ".1f"),
]


def _gb(value):
    return None if value is None else value / GB


def step_rows(model, build, refusal, export, loaded):
    rows = [
        {"step": "build (seeded init + perturbation)", "seconds": build["seconds"], "peak_gb": _gb(build["peak_rss_bytes"]),
         "size_gb": model["float32_weight_bytes"] / GB,
         "check": f"{model['parameters'] / 1e6:.1f}M parameters, embedding {model['embedding_parameters'] / 1e6:.1f}M"},
        {"step": "save preset", "seconds": build["preset_seconds"], "size_gb": build["preset_bytes"] / GB, "check": ""},
        {"step": "TFLite float32", "seconds": refusal["seconds"],
         "check": {"refused": "refused: " + refusal.get("message", "")[:52], "written": "NOT refused: written",
                   "fits": refusal.get("message", "")}[refusal["status"]]},
    ]
    if export:
        atomic = export["atomic"]
        rows.append({"step": "SavedModel export (fresh process)", "seconds": export["seconds"],
                     "peak_gb": _gb(export["peak_rss_bytes"]), "size_gb": export["directory_bytes"] / GB,
                     "check": f"atomic {'ok' if atomic['ok'] else 'NOT ok'}: version seen at "
                              f"{atomic['version_first_seen_seconds']} s of {atomic['export_seconds']} s"})
    if loaded:
        rows += [
            {"step": "TF Serving loader: load", "seconds": loaded["load_seconds"], "peak_gb": _gb(loaded["peak_rss_bytes"]),
             "check": "tf.compat.v1 session, tag serve"},
            {"step": "TF Serving loader: warmup replay", "seconds": loaded["warmup_seconds"],
             "check": f"{loaded['answered']}/{loaded['records']} records answered"},
            {"step": "TF Serving loader: serving_default", "seconds": loaded["serving_default_seconds"],
             "check": f"{loaded['serving_default']['texts']} texts, max|d| "
                      f"{loaded['serving_default']['max_abs_logit_difference']:.1e} vs Keras "
                      f"({'ok' if loaded['serving_default']['ok'] else 'FAIL'})"},
        ]
    return rows


def format_tflite(rows):
    table = report.format_table(TFLITE_TABLE, rows)
    notes = [f"  {r['form']}: {r['status']}: {r.get('reason')}" for r in rows if r.get("status") != "ok"]
    return "\n".join([table, *notes])


def write_plot(rows, path, title):
    measured = [r for r in rows if r.get("status") == "ok"]
    if not measured:
        return None

    def draw(fig, axes):
        names = [r["form"] for r in measured]
        for ax, (label, value) in zip(axes, (
                ("file size, GB", lambda r: r["export"]["size_bytes"] / GB),
                ("median ms per text", lambda r: r["measured"]["median_ms"]),
                ("max |logit difference| vs Keras float32", lambda r: r["measured"]["max_abs_logit_difference"]))):
            bars = ax.bar(names, [value(r) for r in measured])
            ax.bar_label(bars, fmt="%.3g", fontsize=7)
            ax.set_title(label, fontsize=9)
        axes[0].axhline(FLATBUFFER_LIMIT / GB, color="red", linestyle="--", linewidth=1, label="2 GiB FlatBuffer limit")
        axes[0].legend(fontsize=7)
        fig.suptitle(title, fontsize=9)

    return report.plot(path, draw, 1, 3, figsize=(11, 3.6))


# ----------------------------------------------------------------------------- main


def run_config():
    quick = FLAGS.quick

    def pick(value, full, fast):
        return value if value is not None else (fast if quick else full)

    unknown = set(FLAGS.forms) - set(FORM_NAMES)
    if unknown:
        raise app.UsageError(f"unknown --forms {sorted(unknown)}; choose from {sorted(FORM_NAMES)}")
    config = {
        "quick": quick, "geometry": "quick" if quick else "large", "threads": FLAGS.threads,
        "forms": [form for form in FORM_NAMES if form in FLAGS.forms], "data_dir": FLAGS.data_dir,
        "cache_dir": FLAGS.cache_dir, "sequence_length": FLAGS.sequence_length, "seed": FLAGS.seed,
        "agreement_texts": pick(FLAGS.agreement_texts, 50, 8), "latency_texts": pick(FLAGS.latency_texts, 5, 3),
        "latency_repeats": FLAGS.latency_repeats, "serving_texts": pick(FLAGS.serving_texts, 8, 4),
        "calibration_texts": pick(FLAGS.calibration_texts, 100, 8), "max_rss_bytes": int(FLAGS.max_rss_gb * GB),
        "saved_model": FLAGS.saved_model,
    }
    config["geometry_arguments"] = {**GEOMETRIES[config["geometry"]], "vocabulary_size": VOCABULARY_SIZE,
                                    "num_classes": NUM_CLASSES}
    if config["latency_texts"] > config["agreement_texts"] or config["serving_texts"] > config["agreement_texts"]:
        raise app.UsageError("--latency_texts and --serving_texts take the first of the --agreement_texts.")
    return config


def main(argv):
    del argv
    if FLAGS.worker:
        spec = json.loads(FLAGS.worker_spec)
        record = run_worker(FLAGS.worker, spec)
        Path(spec["result"]).write_text(json.dumps(record, default=str))
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = run_config()
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, threads=FLAGS.threads)
    if FLAGS.work_dir:
        Path(FLAGS.work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xlmr_large_", dir=FLAGS.work_dir) as work_dir:
        model, build, refusal, preset, agreement, calibration, reference = prepare(config, work_dir)
        print(f"Model: {model['parameters']:,} parameters, {model['float32_weight_bytes'] / GB:.2f} GB in float32; "
              f"float32 TFLite: {refusal['status']}", flush=True)
        export = loaded = None
        serving = {"status": "ok"}
        if not FLAGS.saved_model:
            serving = {"status": "skipped", "reason": "--nosaved_model"}
        try:
            if FLAGS.saved_model:
                export, loaded = serving_part(config, preset, work_dir, agreement, reference)
        except Exception as e:  # noqa: BLE001 (recorded; TFLite still runs)
            logging.error("SavedModel part failed: %s", traceback.format_exc())
            serving = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        forms = run_tflite_forms(config, preset, work_dir, agreement, calibration, reference)
    targets = check_targets(model, refusal, export, loaded, forms)
    steps = step_rows(model, build, refusal, export, loaded)
    record = {
        "machine": report.finish(info),
        "config": config,
        "model": model,
        "build": build,
        "tflite_float32": refusal,
        "saved_model": {**serving, "export": export, "tf_serving_loader": loaded},
        "steps": steps,
        "tflite": forms,
        "targets": targets,
        "total_seconds": time.perf_counter() - started,
    }
    geometry = config["geometry_arguments"]
    title = (f"XLM-R {geometry['num_layers']} layers x {geometry['hidden_dim']}, {model['parameters'] / 1e6:.0f}M "
             f"parameters: TFLite forms, batch 1, {FLAGS.threads} threads, {report.cpu_model()}")
    written = report.save(FLAGS.output_dir, NAME, record, lambda path: write_plot(forms, path, title))
    others = [r.get("other_load_cores") for r in [export or {}, loaded or {}, *(f.get("export") or {} for f in forms)]]
    print("\n" + report.load_summary(info, FLAGS.threads, others))
    print(title)
    print(report.format_table(STEP_TABLE, steps))
    if serving["status"] != "ok":
        print(f"SavedModel part {serving['status']}: {serving['reason']}")
    print()
    print(format_tflite(forms))
    print()
    print(report.format_targets("Targets:", targets))
    print(written)


if __name__ == "__main__":
    app.run(main)
