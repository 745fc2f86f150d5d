"""Checkpoint conversion benchmark: wall time and peak memory of the fairseq and Hugging Face
converters (`roberta_tf.converters`), each conversion in a fresh process.

Sources, written once with random weights and cached under --work_dir (outside the
repository): a fairseq 0.12 RoBERTa `model.pt` (exact key names and shapes, tied LM head, a
3-class head) in fp32 zip, fp16 zip and the legacy torch.save format, and a Hugging Face
`RobertaForSequenceClassification` safetensors directory; with --large also a roberta-large
fairseq checkpoint. Per source, each in a fresh process (`--worker`): `convert` (the converter
`fairseq.convert` / `huggingface.convert`, then `roberta_tf.cli.convert.write_preset`, as
`roberta-tf convert` runs it) and `read` (only reading the weights), --repeats times; and one
instrumented `profile` conversion. Per process: the wall time, the RSS after the imports (the
baseline) and the peak RSS of the call (VmHWM, reset after the imports), as MB and as copies of
the checkpoint's / the float32 model's weight bytes. The conversion's phases are timed by
wrapping the library functions it calls (module attributes; see `run_worker`); the profile run
also resets the peak at every phase boundary and runs tracemalloc.

Run from the repository root:

    python -m benchmarks.conversion_benchmark [--quick] [--large] [--output_dir DIR]

It prints a table, the phases and the profile and writes conversion_benchmark.json and
conversion_benchmark.png to --output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from benchmarks import DATA_DIR, REPO_ROOT, RESULTS_DIR, report  # noqa: E402
from benchmarks.reference_models import GEOMETRIES, torch_classifier  # noqa: E402

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "torch", "transformers", "safetensors", "numpy", "absl-py", "matplotlib",
            "roberta-tf"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("work_dir", "/tmp/roberta_tf_conversion_bench",
                    "Cache of the generated checkpoints (and scratch space for the presets); outside the repo.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "Shared data: fairseq-gpt2-bpe/ and roberta-base/ tokenizer files.")
flags.DEFINE_bool("quick", False, "Smoke test: tiny geometry (2 layers, hidden 128), one repeat.")
flags.DEFINE_bool("large", False, "Also convert a roberta-large geometry fairseq fp32 zip checkpoint (~1.4 GB).")
flags.DEFINE_integer("repeats", 2, "Fresh processes per source and measurement (the median is reported).")
flags.DEFINE_list("variants", None, "Only these sources (names as in the table, e.g. 'fairseq fp32 zip').")
flags.DEFINE_bool("profile", True, "One instrumented conversion per source (per-step peaks, tracemalloc).")
flags.DEFINE_integer("threads", 2, "TF intra-op threads in the workers (inter-op 1).")
flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
# Internal: the worker mode (a fresh process per measurement).
flags.DEFINE_enum("worker", None, ["read", "convert", "profile"], "Internal: run one measurement and exit.")
flags.DEFINE_string("worker_spec", None, "Internal: JSON spec of the worker's job.")

NUM_CLASSES = 3
HEAD = "sentence_classification_head"
MB = 1024 * 1024


# ----------------------------------------------------------------------------- memory probes


def proc_status(path="/proc/self/status", keys=("VmRSS", "VmHWM", "RssAnon", "RssFile")):
    """`{key: KB}` of the "Key: value kB" lines of a /proc file: by default this process's RSS
    (VmRSS), peak RSS (VmHWM) and its anonymous and file-backed parts."""
    values = {}
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in keys:
                values[key] = int(rest.split()[0])
    return values


def maxrss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux


def reset_peak():
    """Resets VmHWM (the mm part of ru_maxrss) to the current RSS; False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- sources


def geometry_of(name):
    """`reference_models.GEOMETRIES[name]` in this module's short names, with the head's classes."""
    g = GEOMETRIES[name]
    return {"layers": g["num_layers"], "hidden": g["hidden_dim"], "ffn": g["intermediate_dim"], "heads": g["num_heads"],
            "vocabulary": g["vocabulary_size"], "max_positions": g["max_sequence_length"],
            "positions": g["max_sequence_length"] + 2, "classes": NUM_CLASSES}


def model_weight_count(g):
    """Parameters of the converted preset (backbone + classifier head; fairseq has no LM head in it)."""
    h, f, n = g["hidden"], g["ffn"], g["layers"]
    embeddings = g["vocabulary"] * h + g["positions"] * h + 2 * h
    layer = 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h
    head = h * h + h + h * g["classes"] + g["classes"]
    return embeddings + n * layer + head


def fairseq_state_dict(g, seed):
    """fairseq 0.12 RoBERTa state dict (exact key names and shapes), random float32 values;
    `encoder.lm_head.weight` IS `embed_tokens.weight` (untie_weights_roberta=False)."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=generator) * 0.02

    h, f, v = g["hidden"], g["ffn"], g["vocabulary"]
    e = "encoder.sentence_encoder."
    state = {e + "version": torch.Tensor([2]), e + "embed_tokens.weight": randn(v, h),
             e + "embed_positions.weight": randn(g["positions"], h),
             e + "layernorm_embedding.weight": randn(h), e + "layernorm_embedding.bias": randn(h)}
    for i in range(g["layers"]):
        layer = f"{e}layers.{i}."
        for p in ("k", "v", "q", "out"):  # fairseq's MultiheadAttention registration order
            state[f"{layer}self_attn.{p}_proj.weight"] = randn(h, h)
            state[f"{layer}self_attn.{p}_proj.bias"] = randn(h)
        state[layer + "self_attn_layer_norm.weight"] = randn(h)
        state[layer + "self_attn_layer_norm.bias"] = randn(h)
        state[layer + "fc1.weight"], state[layer + "fc1.bias"] = randn(f, h), randn(f)
        state[layer + "fc2.weight"], state[layer + "fc2.bias"] = randn(h, f), randn(h)
        state[layer + "final_layer_norm.weight"] = randn(h)
        state[layer + "final_layer_norm.bias"] = randn(h)
    state["encoder.lm_head.weight"] = state[e + "embed_tokens.weight"]  # tied, as fairseq saves it
    state["encoder.lm_head.bias"] = randn(v)
    state["encoder.lm_head.dense.weight"], state["encoder.lm_head.dense.bias"] = randn(h, h), randn(h)
    state["encoder.lm_head.layer_norm.weight"], state["encoder.lm_head.layer_norm.bias"] = randn(h), randn(h)
    c = f"classification_heads.{HEAD}."
    state[c + "dense.weight"], state[c + "dense.bias"] = randn(h, h), randn(h)
    state[c + "out_proj.weight"], state[c + "out_proj.bias"] = randn(g["classes"], h), randn(g["classes"])
    return state


def fairseq_contents(g, state, arch):
    return {
        "args": None,
        "cfg": {"model": argparse.Namespace(
            arch=arch, encoder_layers=g["layers"], encoder_embed_dim=g["hidden"],
            encoder_ffn_embed_dim=g["ffn"], encoder_attention_heads=g["heads"], max_positions=g["max_positions"],
            activation_fn="gelu", pooler_activation_fn="tanh", pooler_dropout=0.0, dropout=0.1,
            encoder_normalize_before=False, layernorm_embedding=True, untie_weights_roberta=False)},
        "model": state,
        "optimizer_history": [],
        "extra_state": {},
    }


def half(state):
    """Every float tensor in float16, ties kept (one converted tensor per storage)."""
    converted = {}
    out = {}
    for key, tensor in state.items():
        if id(tensor) not in converted:
            converted[id(tensor)] = tensor.half() if tensor.is_floating_point() else tensor
        out[key] = converted[id(tensor)]
    assert out["encoder.lm_head.weight"] is out["encoder.sentence_encoder.embed_tokens.weight"]
    return out


def unique_tensor_bytes(tensors):
    seen, total = set(), 0
    for t in tensors:
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def source_specs(geometry_name, large, data_dir):
    """The sources to convert: name -> spec (paths are filled in by `prepare_sources`)."""
    fairseq_files = {k: str(Path(data_dir) / "fairseq-gpt2-bpe" / f)
                     for k, f in (("dict_txt", "dict.txt"), ("encoder_json", "encoder.json"),
                                  ("vocab_bpe", "vocab.bpe"))}
    specs = {
        "fairseq fp32 zip": dict(kind="fairseq", geometry=geometry_name, dtype="float32", format="zip", **fairseq_files),
        "fairseq fp16 zip": dict(kind="fairseq", geometry=geometry_name, dtype="float16", format="zip", **fairseq_files),
        "fairseq fp32 legacy": dict(kind="fairseq", geometry=geometry_name, dtype="float32", format="legacy",
                                    **fairseq_files),
        "hf safetensors": dict(kind="hf", geometry=geometry_name, dtype="float32", format="safetensors"),
    }
    if large:
        specs["fairseq large fp32 zip"] = dict(kind="fairseq", geometry="large", dtype="float32", format="zip",
                                               **fairseq_files)
    return specs


def _source_dir(work_dir, spec, seed):
    g = geometry_of(spec["geometry"])
    return Path(work_dir) / (f"{spec['kind']}-{spec['geometry']}-{g['layers']}x{g['hidden']}-{spec['dtype']}-"
                             f"{spec['format']}-seed{seed}")


def missing(spec, data_dir, cached):
    """Why a source cannot be converted here (its tokenizer files, or the packages that write
    it when it is not cached yet), or None."""
    files = ([spec[k] for k in ("dict_txt", "encoder_json", "vocab_bpe")] if spec["kind"] == "fairseq" else
             [Path(data_dir, "roberta-base", name) for name in ("vocab.json", "merges.txt")])
    absent = [str(f) for f in files if not Path(f).is_file()]
    if absent:
        return f"tokenizer files not found: {', '.join(absent)}"
    packages = ["torch"] + (["transformers"] if spec["kind"] == "hf" else [])
    absent = [name for name in packages if importlib.util.find_spec(name) is None]
    if absent and not cached:
        return f"not installed: {', '.join(absent)} (needed to write the source checkpoint)"
    return None


def prepare_sources(specs, work_dir, data_dir, seed):
    """Writes (or reuses) every source; fills spec["path"], ["weight_bytes"], ["model_weights"].
    Returns {name: why} of the sources that cannot be converted here (left out of `specs`)."""
    cache_state = {}  # geometry -> fp32 fairseq state dict, shared by the fairseq variants
    skipped = {}
    for name, spec in list(specs.items()):
        directory = _source_dir(work_dir, spec, seed)
        done = directory / "complete.json"
        reason = missing(spec, data_dir, done.is_file())
        if reason:
            skipped[name] = reason
            del specs[name]
            print(f"Skipping {name}: {reason}")
            continue
        g = geometry_of(spec["geometry"])
        spec["model_weights"] = model_weight_count(g)
        if done.is_file():
            record = json.loads(done.read_text())
            spec.update(path=record["path"], weight_bytes=record["weight_bytes"], generated_seconds=None)
            logging.info("Reusing %s: %s", name, record["path"])
            continue
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        start = time.perf_counter()
        logging.info("Writing %s to %s", name, directory)
        if spec["kind"] == "fairseq":
            import torch

            if spec["geometry"] not in cache_state:
                cache_state = {spec["geometry"]: fairseq_state_dict(g, seed)}  # one geometry in memory
            state = cache_state[spec["geometry"]]
            if spec["dtype"] == "float16":
                state = half(state)
            arch = "roberta_large" if spec["geometry"] == "large" else "roberta_base"
            path = directory / "model.pt"
            partial = directory / "model.pt.partial"
            torch.save(fairseq_contents(g, state, arch), partial,
                       _use_new_zipfile_serialization=spec["format"] == "zip")
            os.replace(partial, path)
            weight_bytes = unique_tensor_bytes(state.values())
        else:
            weight_bytes = _write_hf(directory, spec["geometry"], seed, data_dir)
            path = directory
        record = {"path": str(path), "weight_bytes": weight_bytes, "spec": spec}
        done.write_text(json.dumps(record, indent=2, default=str) + "\n")
        spec.update(path=str(path), weight_bytes=weight_bytes, generated_seconds=time.perf_counter() - start)
    return skipped


def _write_hf(directory, geometry_name, seed, data_dir):
    """`reference_models.torch_classifier` (seeded HF init) with 3 classes, save_pretrained."""
    model = torch_classifier(GEOMETRIES[geometry_name], NUM_CLASSES, seed)
    model.save_pretrained(directory, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        os.symlink(Path(data_dir, "roberta-base", name).resolve(), directory / name)
    return int(sum(p.numel() * p.element_size() for p in model.state_dict().values()))


# ----------------------------------------------------------------------------- worker


class Recorder:
    """Step boundaries: time and VmRSS; in profile mode also the peak since the previous
    boundary (VmHWM, reset at each boundary) and tracemalloc's current and peak."""

    def __init__(self, profile):
        self.profile = profile
        self.marks = []
        self.start = time.perf_counter()
        self.notes = {}

    def mark(self, label):
        status = proc_status()
        entry = {"label": label, "t": time.perf_counter() - self.start, "rss_kb": status["VmRSS"],
                 "rss_anon_kb": status.get("RssAnon"), "rss_file_kb": status.get("RssFile")}
        if self.profile:
            import tracemalloc

            entry["peak_since_previous_kb"] = status["VmHWM"]
            current, peak = tracemalloc.get_traced_memory()
            entry["traced_kb"], entry["traced_peak_since_previous_kb"] = current // 1024, peak // 1024
            tracemalloc.reset_peak()
            reset_peak()
        self.marks.append(entry)

    def wrap(self, module, attribute, label, before=None):
        original = getattr(module, attribute)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if before is not None:
                before(*args, **kwargs)
            self.mark(f"{label} start")
            try:
                return original(*args, **kwargs)
            finally:
                self.mark(f"{label} end")

        setattr(module, attribute, wrapper)


def _array_report(arrays):
    """The arrays given to weights.assign: bytes in views of the checkpoint's buffers (bytes,
    mmap) versus new numpy arrays, counting each underlying buffer once."""
    import numpy as np

    roots = {}
    total = 0
    for value in arrays.values():
        total += value.nbytes
        root = value
        while True:  # ndarray.base, as_strided's DummyArray.base, memoryview.obj
            parent = root.obj if isinstance(root, memoryview) else getattr(root, "base", None)
            if parent is None:
                break
            root = parent
        if id(root) not in roots:
            if isinstance(root, np.ndarray):
                size = root.nbytes
            elif isinstance(root, memoryview):
                size = root.nbytes
            else:
                size = len(root) if hasattr(root, "__len__") else 0
            roots[id(root)] = (type(root).__name__, size)
    by_type = {}
    for kind, size in roots.values():
        by_type[kind] = by_type.get(kind, 0) + size
    return {"arrays": len(arrays), "array_bytes": total, "buffer_bytes_by_type": by_type}


def _variables_bytes(variables):
    return int(sum(v.shape.num_elements() * v.dtype.size for v in variables.values()))


def run_worker(mode, spec):
    """One measurement in this (fresh) process; returns the result record."""
    import gc

    started_kb = proc_status()["VmRSS"]
    import_start = time.perf_counter()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import tf_keras  # noqa: F401

    import roberta_tf  # noqa: F401
    import roberta_tf.models  # noqa: F401
    from roberta_tf.cli import convert as convert_cli
    from roberta_tf.converters import fairseq, huggingface, torch_checkpoint
    from roberta_tf.presets import loader, saver, weights
    from roberta_tf.tokenizers import vocabulary as vocabulary_lib
    from roberta_tf.utils import files

    import_seconds = time.perf_counter() - import_start
    gc.collect()
    baseline = proc_status()
    record = {"mode": mode, "python_start_rss_kb": started_kb, "import_seconds": import_seconds,
              "baseline_rss_kb": baseline["VmRSS"], "baseline_maxrss_kb": maxrss_kb()}
    recorder = Recorder(profile=mode == "profile")
    if mode == "profile":
        import tracemalloc

        tracemalloc.start()
    # Importing TF peaks above the settled baseline; start the peak counter (VmHWM and
    # ru_maxrss) afresh so the peak is the measured call's. Without clear_refs the peak is
    # max(import peak, call peak), recorded as such.
    record["peak_reset_supported"] = reset_peak()
    if mode in ("convert", "profile"):
        # Phases, by wrapping the module attributes the conversion calls (nested marks: the
        # converter's steps inside `converter`, the model build and saving inside `write_preset`).
        wrap = recorder.wrap
        if spec["kind"] == "fairseq":
            wrap(fairseq, "convert", "converter")
            wrap(fairseq, "read_checkpoint", "read_checkpoint")
            wrap(vocabulary_lib, "from_fairseq_files", "vocabulary")
            wrap(fairseq, "named_weights", "named_weights")
        else:
            wrap(huggingface, "convert", "converter")
            wrap(huggingface, "read_state", "read_state")
            wrap(huggingface, "named_weights", "named_weights")
            wrap(huggingface, "read_tokenizer", "vocabulary")
        wrap(files, "file_sha256", "sha256")
        wrap(convert_cli, "write_preset", "write_preset")
        wrap(loader, "load_task", "load_task")
        wrap(loader, "load_backbone", "load_backbone")

        def before_assign(variables, arrays, *args, **kwargs):
            recorder.notes["assign_arrays"] = _array_report(arrays)
            recorder.notes["variables_bytes"] = _variables_bytes(variables)

        wrap(weights, "assign", "assign", before=before_assign if mode == "profile" else None)
        wrap(saver, "save_preset", "save_preset")
        wrap(weights, "write_variables", "safetensors_write")
        wrap(saver, "_write_tokenizer_files", "tokenizer_files")

    recorder.mark("begin")
    start = time.perf_counter()
    if mode == "read":
        if spec["kind"] == "fairseq":
            result = torch_checkpoint.load(spec["path"])
        else:
            result = huggingface.read_state(spec["path"])
        seconds = time.perf_counter() - start
        del result
    else:  # what `roberta-tf convert fairseq|hf` runs
        if spec["kind"] == "fairseq":
            converted = fairseq.convert(spec["path"], dict_txt=spec["dict_txt"], encoder_json=spec["encoder_json"],
                                        vocab_bpe=spec["vocab_bpe"])
        else:
            converted = huggingface.convert(spec["path"])
        convert_cli.write_preset(converted, spec["output"], overwrite=True)
        del converted
        seconds = time.perf_counter() - start
    recorder.mark("end")
    end = proc_status()
    # The peak is VmHWM (this process image's high-water RSS, reset after the imports), not
    # ru_maxrss: Linux carries the parent's RSS at fork/exec into ru_maxrss (signal->maxrss),
    # which clear_refs does not reset; ru_maxrss is recorded beside it.
    record.update(seconds=seconds, peak_rss_kb=end["VmHWM"], ru_maxrss_kb=maxrss_kb(), end_rss_kb=end["VmRSS"],
                  marks=recorder.marks, notes=recorder.notes)
    if mode == "profile":
        # ru_maxrss was reset at each step boundary: the peak is the largest per-step peak.
        record["peak_rss_kb"] = max(m["peak_since_previous_kb"] for m in recorder.marks)
        import tracemalloc

        tracemalloc.stop()
    if mode != "read":
        record["preset_bytes"] = sum(p.stat().st_size for p in Path(spec["output"]).rglob("*") if p.is_file())
    return record


# ----------------------------------------------------------------------------- parent


def launch(mode, spec, work_dir):
    """Runs a worker process; returns its record plus the CPU used by other processes."""
    result_path = Path(work_dir) / f"worker-{os.getpid()}.json"
    result_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.conversion_benchmark", f"--worker={mode}",
               "--worker_spec=" + json.dumps({**spec, "result": str(result_path)})]
    with report.LoadMeter(children=True) as load:
        completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"worker {mode} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    record = json.loads(result_path.read_text())
    result_path.unlink()
    record["process_wall_seconds"] = load.seconds
    record["worker_cpu_seconds"] = load.own_seconds  # the worker's CPU time (and the parent's, ~0, while waiting)
    record["other_load_cores"], record["steal_cores"] = load.other_cores, load.steal_cores
    return record


def summarize(name, spec, runs):
    """Median row of a source from its runs."""
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    convert = [r for r in runs if r["mode"] == "convert"]
    read = [r for r in runs if r["mode"] == "read"]
    profile = next((r for r in runs if r["mode"] == "profile"), None)
    model_bytes = 4 * spec["model_weights"]

    def over(r):
        return (r["peak_rss_kb"] - r["baseline_rss_kb"]) * 1024

    row = {
        "variant": name, "kind": spec["kind"], "geometry": spec["geometry"], "dtype": spec["dtype"],
        "format": spec["format"], "checkpoint_mb": spec["weight_bytes"] / MB, "model_fp32_mb": model_bytes / MB,
        "convert_seconds": med([r["seconds"] for r in convert]),
        "convert_seconds_all": [r["seconds"] for r in convert],
        "peak_rss_mb": med([r["peak_rss_kb"] / 1024 for r in convert]),
        "baseline_rss_mb": med([r["baseline_rss_kb"] / 1024 for r in convert]),
        "over_baseline_mb": med([over(r) / MB for r in convert]),
        "over_baseline_mb_all": [over(r) / MB for r in convert],
        "read_seconds": med([r["seconds"] for r in read]),
        "read_over_baseline_mb": med([over(r) / MB for r in read]),
        "other_load_cores_max": max((r["other_load_cores"] for r in runs if r.get("other_load_cores") is not None),
                                    default=None),
        "preset_mb": med([r.get("preset_bytes", 0) / MB for r in convert]),
    }
    row["copies_of_checkpoint"] = row["over_baseline_mb"] * MB / spec["weight_bytes"]
    row["copies_of_model"] = row["over_baseline_mb"] * MB / model_bytes
    row["read_copies_of_checkpoint"] = (row["read_over_baseline_mb"] * MB / spec["weight_bytes"]
                                        if row["read_over_baseline_mb"] is not None else None)
    row["phases"] = phase_summary(convert, profile)
    if profile:
        row["profile"] = profile_segments(profile, model_bytes)
        row["profile_peak_copies_of_model"] = (profile["peak_rss_kb"] - profile["baseline_rss_kb"]) * 1024 / model_bytes
        row["profile_notes"] = profile["notes"]
    return row


def phases(marks):
    """Every wrapped call's phase ("X start" ... "X end"; nested phases inside their caller):
    {label: (seconds, indices of the marks ending the segments inside it)}, in order of first
    start; a function called several times (sha256) sums its calls."""
    out, open_calls = {}, {}
    for i, mark in enumerate(marks):
        label, _, edge = mark["label"].rpartition(" ")
        if edge == "start":
            open_calls.setdefault(label, []).append(i)
            out.setdefault(label, (0.0, []))
        elif edge == "end" and open_calls.get(label):
            j = open_calls[label].pop()
            seconds, inside = out[label]
            out[label] = (seconds + mark["t"] - marks[j]["t"], inside + list(range(j + 1, i + 1)))
    return out


def phase_summary(runs, profile):
    """Per phase: median seconds over the timed conversions and, from the instrumented run, its
    peak RSS over the baseline (MB)."""
    if not runs:
        return []
    timed = [phases(r["marks"]) for r in runs]
    profiled = phases(profile["marks"]) if profile else {}
    out = []
    for label in timed[0]:
        seconds = [p[label][0] for p in timed if label in p]
        peak = None
        if profiled.get(label) and profiled[label][1]:
            peak_kb = max(profile["marks"][i]["peak_since_previous_kb"] for i in profiled[label][1])
            peak = (peak_kb - profile["baseline_rss_kb"]) / 1024
        out.append({"phase": label, "seconds": statistics.median(seconds), "peak_over_baseline_mb": peak})
    return out


def _segments(marks):
    for previous, current in zip(marks, marks[1:]):
        yield f"{previous['label']} -> {current['label']}", previous, current


def profile_segments(profile, model_bytes):
    """Per segment of the instrumented run: RSS at its end and its peak, over the baseline, in MB and
    in copies of the float32 model; tracemalloc (numpy/Python) current and peak."""
    base = profile["baseline_rss_kb"]
    out = []
    for name, previous, current in _segments(profile["marks"]):
        out.append({
            "segment": name,
            "seconds": current["t"] - previous["t"],
            "rss_end_over_baseline_mb": (current["rss_kb"] - base) / 1024,
            "peak_over_baseline_mb": (current["peak_since_previous_kb"] - base) / 1024,
            "peak_copies_of_model": (current["peak_since_previous_kb"] - base) * 1024 / model_bytes,
            "traced_end_mb": current["traced_kb"] / 1024,
            "traced_peak_mb": current["traced_peak_since_previous_kb"] / 1024,
            "rss_anon_end_mb": (current["rss_anon_kb"] or 0) / 1024,
            "rss_file_end_mb": (current["rss_file_kb"] or 0) / 1024,
        })
    return out


TABLE = [
    report.Column("variant", 24, "variant", align="<"),
    report.Column("ckpt MB", 8, "checkpoint_mb", ".0f"),
    report.Column("fp32 MB", 8, "model_fp32_mb", ".0f"),
    report.Column("convert s", 9, "convert_seconds", ".2f"),
    report.Column("read s", 7, "read_seconds", ".2f"),
    report.Column("peak RSS MB", 11, "peak_rss_mb", ".0f"),
    report.Column("over base MB", 12, "over_baseline_mb", ".0f"),
    report.Column("x ckpt", 7, "copies_of_checkpoint", ".2f"),
    report.Column("x model", 7, "copies_of_model", ".2f"),
    report.Column("read x ckpt", 11, "read_copies_of_checkpoint", ".2f"),
]


def format_profile(row):
    lines = [f"  {row['variant']}: instrumented run, peak {row['profile_peak_copies_of_model']:.2f} copies of the "
             f"fp32 model ({row['model_fp32_mb']:.0f} MB) over the baseline",
             f"    {'step (boundary -> boundary)':<52} {'s':>6} {'peak MB':>8} {'x model':>7} {'end MB':>7} "
             f"{'numpy/py MB':>11} {'np peak MB':>10}"]
    for s in row["profile"]:
        lines.append(f"    {s['segment']:<52} {s['seconds']:>6.2f} {s['peak_over_baseline_mb']:>8.0f} "
                     f"{s['peak_copies_of_model']:>7.2f} {s['rss_end_over_baseline_mb']:>7.0f} "
                     f"{s['traced_end_mb']:>11.0f} {s['traced_peak_mb']:>10.0f}")
    notes = row.get("profile_notes") or {}
    if "assign_arrays" in notes:
        a = notes["assign_arrays"]
        lines.append(f"    at weights.assign: {a['arrays']} arrays, {a['array_bytes'] / MB:.0f} MB; underlying buffers "
                     f"{ {k: round(v / MB) for k, v in a['buffer_bytes_by_type'].items()} } MB; model variables "
                     f"{notes.get('variables_bytes', 0) / MB:.0f} MB")
    return "\n".join(lines)


def write_plot(rows, path, title):
    names = [r["variant"] for r in rows]
    by_name = {r["variant"]: r for r in rows}
    series = {"full conversion": "convert_seconds", "reading the weights only": "read_seconds",
              "x fp32 model weights": "copies_of_model", "x checkpoint tensor bytes": "copies_of_checkpoint"}

    def value(name, label):
        return by_name[name][series[label]]

    def draw(fig, axes):
        report.grouped_bars(axes[0], names, ["full conversion", "reading the weights only"], value, width=0.76,
                            labels="%.1f", fontsize=8, ticks=dict(fontsize=8))
        axes[0].set_ylabel("seconds (median)")
        axes[0].set_title(title, fontsize=9)
        axes[0].legend(fontsize=8)
        report.grouped_bars(axes[1], names, ["x fp32 model weights", "x checkpoint tensor bytes"], value, width=0.76,
                            labels="%.2f", fontsize=8, ticks=dict(fontsize=8))
        axes[1].axhline(2.0, color="red", linestyle="--", linewidth=1, label="target: about two copies")
        axes[1].set_ylabel("(peak RSS - baseline) / weight bytes")
        axes[1].legend(fontsize=8)
        for r in rows:
            if not r.get("profile"):
                continue
            ts, rss = [0.0], [0.0]
            elapsed = 0.0
            for s in r["profile"]:
                elapsed += s["seconds"]
                ts += [elapsed, elapsed]
                rss += [s["peak_copies_of_model"], s["rss_end_over_baseline_mb"] * MB / (r["model_fp32_mb"] * MB)]
            axes[2].plot(ts, rss, label=r["variant"], linewidth=1)
        axes[2].axhline(2.0, color="red", linestyle="--", linewidth=1)
        axes[2].set_xlabel("seconds into the conversion (instrumented run: tracemalloc on)")
        axes[2].set_ylabel("RSS over baseline / fp32 model bytes\n(each step's peak, then its end)")
        if any(r.get("profile") for r in rows):
            axes[2].legend(fontsize=8)

    return report.plot(path, draw, 3, 1, figsize=(11, 12))


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
    started = time.perf_counter()
    memory = proc_status("/proc/meminfo", ("MemTotal", "MemAvailable"))
    info = report.machine_info(PACKAGES, memory_total_kb=memory["MemTotal"],
                               memory_available_kb_at_start=memory["MemAvailable"])
    geometry_name = "tiny" if FLAGS.quick else "base"
    repeats = 1 if FLAGS.quick else FLAGS.repeats
    work_dir = Path(FLAGS.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    specs = source_specs(geometry_name, FLAGS.large, FLAGS.data_dir)
    if FLAGS.variants:
        unknown = set(FLAGS.variants) - set(specs)
        if unknown:
            raise app.UsageError(f"unknown --variants {sorted(unknown)}; choose from {sorted(specs)}")
        specs = {k: v for k, v in specs.items() if k in FLAGS.variants}
    skipped = prepare_sources(specs, work_dir, FLAGS.data_dir, FLAGS.seed)

    runs = {name: [] for name in specs}
    outputs = work_dir / "presets"
    plan = [(mode, name) for _ in range(repeats) for name in specs for mode in ("read", "convert")]
    if FLAGS.profile:
        plan += [("profile", name) for name in specs]
    for i, (mode, name) in enumerate(plan):
        spec = {**specs[name], "threads": FLAGS.threads, "output": str(outputs / name.replace(" ", "-"))}
        record = launch(mode, spec, work_dir)
        record["variant"] = name
        runs[name].append(record)
        print(f"[{i + 1}/{len(plan)}] {name:<24} {mode:<8} {record['seconds']:7.2f} s  peak "
              f"{record['peak_rss_kb'] / 1024:7.0f} MB (baseline {record['baseline_rss_kb'] / 1024:.0f} MB)  "
              f"others {report.format_value(record['other_load_cores'], '.2f')} cores", flush=True)
        shutil.rmtree(spec["output"], ignore_errors=True)

    rows = [summarize(name, specs[name], runs[name]) for name in specs]
    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, "large": FLAGS.large, "geometry_name": geometry_name,
                   "geometries": {k: geometry_of(k) for k in {s["geometry"] for s in specs.values()}},
                   "repeats": repeats, "threads": FLAGS.threads, "seed": FLAGS.seed, "work_dir": str(work_dir),
                   "sources": specs, "skipped": skipped,
                   "baseline": "RSS after importing tensorflow, tf_keras, roberta_tf (+ models, converters, presets)",
                   "copies": "(VmHWM at the end, reset after the imports - baseline RSS) / bytes (checkpoint tensors | fp32 model)"},
        "results": rows,
        "runs": runs,
        "total_seconds": time.perf_counter() - started,
    }
    title = (f"RoBERTa checkpoint -> preset conversion ({geometry_name} geometry), fresh process per run, "
             f"median of {repeats}; {report.cpu_model()}, {info['cpu_count']} CPUs")
    written = report.save(FLAGS.output_dir, "conversion_benchmark", record,
                          (lambda path: write_plot(rows, path, title)) if rows else None)

    print("\n" + report.load_summary(info, other_loads=[r.get("other_load_cores") for rs in runs.values() for r in rs]))
    baseline = f" ({rows[0]['baseline_rss_mb']:.0f} MB)" if rows else ""
    print(f"Geometry {geometry_name} (+ large with --large); median of {repeats} fresh processes; baseline = RSS "
          f"after importing tensorflow + tf_keras + roberta_tf{baseline}. "
          f"x ckpt / x model = (peak - baseline) / checkpoint tensor bytes / fp32 model bytes.")
    print(report.format_table(TABLE, rows))
    for name, reason in skipped.items():
        print(f"  {name}: skipped: {reason}")
    print("\nPhases of the conversion (median seconds over the timed runs; peak MB over the baseline in the "
          "instrumented run; nested: the converter's steps, then write_preset's):")
    for r in rows:
        print(f"  {r['variant']}: " + ", ".join(
            f"{p['phase']} {p['seconds']:.2f} s" + ("" if p["peak_over_baseline_mb"] is None else
                                                   f" / {p['peak_over_baseline_mb']:.0f} MB")
            for p in r["phases"]))
    if FLAGS.profile:
        print("\nWhere the memory goes (instrumented run; MB over the baseline; numpy/py = tracemalloc):")
        for r in rows:
            if r.get("profile"):
                print(format_profile(r))
    print(written)


if __name__ == "__main__":
    app.run(main)
