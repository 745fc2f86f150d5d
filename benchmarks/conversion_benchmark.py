"""Checkpoint conversion benchmark: wall time and peak memory of the fairseq and Hugging Face
converters (`roberta_tf.converters`), each conversion in a fresh process.

What it measures, in one run on one machine:
  * sources (written once with random weights, torch.randn * 0.02, and cached under
    --work_dir, outside the repository):
      - `fairseq fp32 zip`: a fairseq 0.12 RoBERTa `model.pt` (roberta-base geometry; exact
        0.12 key names and shapes, `cfg["model"]` an argparse.Namespace, `encoder.lm_head.weight`
        tied to (the same storage as) `embed_tokens.weight` as fairseq saves it, a 3-class
        `sentence_classification_head`), torch.save's default zip format;
      - `fairseq fp16 zip`: the same tensors in float16;
      - `fairseq fp32 legacy`: the fp32 checkpoint in the legacy torch.save format
        (`_use_new_zipfile_serialization=False`);
      - `hf safetensors`: a transformers `RobertaForSequenceClassification` (same geometry, 3
        labels) `save_pretrained` directory (model.safetensors) with symlinks to the shared
        vocab.json / merges.txt;
      - with --large also `fairseq large fp32 zip` (roberta-large geometry, ~1.4 GB);
    fairseq tokenizer files come from ../shared/data/fairseq-gpt2-bpe (read by path);
  * per source, each in a fresh Python process (so the peak is that conversion's alone):
      - `convert`: the full conversion (`convert_checkpoint` / `convert_directory`) to a
        preset directory; --repeats runs, the median is reported;
      - `read`: only reading the weights (`torch_checkpoint.load` / `huggingface.read_state`);
        --repeats runs;
      - `profile`: one more conversion, instrumented (see below), for where the memory goes;
  * per process: wall time of the measured call, the RSS after importing tensorflow,
    tf_keras, roberta_tf, its models, converters and presets (the baseline), and the peak RSS
    of the call: the peak counter is reset after the imports (`/proc/self/clear_refs` = 5;
    importing TF peaks ~300 MB above the settled baseline) and read as VmHWM at the end.
    `getrusage(RUSAGE_SELF).ru_maxrss` is recorded too but not used: Linux carries the parent's
    RSS at fork/exec into it, and clear_refs does not reset that part; "copies" = (peak - baseline) / bytes of
    the checkpoint's tensors (x ckpt), and / bytes of the converted float32 weights (x model).

The `convert` runs time the conversion's steps by wrapping the library functions the converter
calls (module attributes: `read_checkpoint`, `named_weights`, `file_sha256`, `write_preset`,
`weights.assign`, `saver.save_preset`, `weights.write_variables`, ...); the wrappers
only read the clock and VmRSS. The `profile` run additionally resets the kernel's peak-RSS
counter (`/proc/self/clear_refs` = 5) at each step boundary, so each step gets its own peak,
and runs tracemalloc (numpy and Python buffers; TensorFlow's allocations are not traced), so
each boundary records how much of the RSS is numpy/Python arrays versus TF tensors. It also
classifies the arrays handed to `weights.assign` (views of the checkpoint's buffers versus
new arrays).

Run from the repository root:

    python benchmarks/conversion_benchmark.py [--quick] [--large] [--output_dir DIR]

It prints a table and writes conversion_benchmark.json and conversion_benchmark.png (if
matplotlib is installed) to --output_dir (default benchmarks/results/).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import functools
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from absl import app, flags, logging  # noqa: E402

import environment  # noqa: E402  (benchmarks/environment.py)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "torch", "transformers", "safetensors", "numpy", "absl-py", "matplotlib",
            "roberta-tf"]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

flags.DEFINE_string("output_dir", str(REPO_ROOT / "benchmarks" / "results"), "Where to write the JSON and PNG.")
flags.DEFINE_string("work_dir", "/tmp/roberta_tf_conversion_bench",
                    "Cache of the generated checkpoints (and scratch space for the presets); outside the repo.")
flags.DEFINE_string("data_dir", str(SHARED_DATA), "Shared data: fairseq-gpt2-bpe/ and roberta-base/ tokenizer files.")
flags.DEFINE_bool("quick", False, "Smoke test: tiny geometry (2 layers, hidden 64), one repeat.")
flags.DEFINE_bool("large", False, "Also convert a roberta-large geometry fairseq fp32 zip checkpoint (~1.4 GB).")
flags.DEFINE_integer("repeats", 2, "Fresh processes per source and measurement (the median is reported).")
flags.DEFINE_list("variants", None, "Only these sources (names as in the table, e.g. 'fairseq fp32 zip').")
flags.DEFINE_bool("profile", True, "One instrumented conversion per source (per-step peaks, tracemalloc).")
flags.DEFINE_integer("threads", 2, "TF intra-op threads in the workers (inter-op 1).")
flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
# Internal: the worker mode (a fresh process per measurement).
flags.DEFINE_enum("worker", None, ["read", "convert", "profile"], "Internal: run one measurement and exit.")
flags.DEFINE_string("worker_spec", None, "Internal: JSON spec of the worker's job.")

GEOMETRIES = {
    "base": dict(layers=12, hidden=768, ffn=3072, heads=12),
    "large": dict(layers=24, hidden=1024, ffn=4096, heads=16),
    "tiny": dict(layers=2, hidden=64, ffn=256, heads=2),
}
VOCABULARY_SIZE = 50265  # fairseq's dict.txt + <s> <pad> </s> <unk> + <mask>; the converters check it
MAX_POSITIONS = 512
NUM_CLASSES = 3
HEAD = "sentence_classification_head"
MB = 1024 * 1024


# ----------------------------------------------------------------------------- memory probes


def proc_status():
    """VmRSS, VmHWM, RssAnon, RssFile of this process, in KB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
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


def system_busy_jiffies():
    """(busy, total) CPU jiffies of the machine from /proc/stat; busy includes steal."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, sum(fields[:8])


# ----------------------------------------------------------------------------- sources


def geometry_of(name):
    g = GEOMETRIES[name]
    return {**g, "vocabulary": VOCABULARY_SIZE, "positions": MAX_POSITIONS + 2, "classes": NUM_CLASSES}


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
            encoder_ffn_embed_dim=g["ffn"], encoder_attention_heads=g["heads"], max_positions=MAX_POSITIONS,
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
    return Path(work_dir) / f"{spec['kind']}-{spec['geometry']}-{spec['dtype']}-{spec['format']}-seed{seed}"


def prepare_sources(specs, work_dir, data_dir, seed):
    """Writes (or reuses) every source; fills spec["path"], ["weight_bytes"], ["model_weights"]."""
    cache_state = {}  # geometry -> fp32 fairseq state dict, shared by the fairseq variants
    for name, spec in specs.items():
        directory = _source_dir(work_dir, spec, seed)
        done = directory / "complete.json"
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
            weight_bytes = _write_hf(directory, g, seed, data_dir)
            path = directory
        record = {"path": str(path), "weight_bytes": weight_bytes, "spec": spec}
        done.write_text(json.dumps(record, indent=2, default=str) + "\n")
        spec.update(path=str(path), weight_bytes=weight_bytes, generated_seconds=time.perf_counter() - start)
    return specs


def _write_hf(directory, g, seed, data_dir):
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.RobertaConfig(
        vocab_size=g["vocabulary"], hidden_size=g["hidden"], num_hidden_layers=g["layers"],
        num_attention_heads=g["heads"], intermediate_size=g["ffn"], max_position_embeddings=g["positions"],
        type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        num_labels=g["classes"])
    model = transformers.RobertaForSequenceClassification(config)
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
    from roberta_tf.converters import build, fairseq, huggingface, torch_checkpoint
    from roberta_tf.presets import saver, weights
    from roberta_tf.tokenizers import vocabulary as vocabulary_lib

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
        wrap = recorder.wrap
        if spec["kind"] == "fairseq":
            wrap(fairseq, "read_checkpoint", "read_checkpoint")
            wrap(vocabulary_lib, "from_fairseq_files", "vocabulary")
            wrap(fairseq, "named_weights", "named_weights")
        else:
            wrap(huggingface, "read_state", "read_state")
            wrap(huggingface, "named_weights", "named_weights")
            wrap(huggingface, "read_tokenizer", "vocabulary")
        wrap(saver, "file_sha256", "sha256")
        wrap(build, "write_preset", "write_preset")

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
    else:
        if spec["kind"] == "fairseq":
            fairseq.convert_checkpoint(spec["path"], spec["output"], dict_txt=spec["dict_txt"],
                                       encoder_json=spec["encoder_json"], vocab_bpe=spec["vocab_bpe"],
                                       overwrite=True)
        else:
            huggingface.convert_directory(spec["path"], spec["output"], overwrite=True)
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
    command = [sys.executable, str(Path(__file__).resolve()), f"--worker={mode}",
               "--worker_spec=" + json.dumps({**spec, "result": str(result_path)})]
    busy0, total0 = system_busy_jiffies()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - wall0
    busy1, total1 = system_busy_jiffies()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"worker {mode} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    record = json.loads(result_path.read_text())
    result_path.unlink()
    hz = os.sysconf("SC_CLK_TCK")
    child_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    record["process_wall_seconds"] = wall
    record["worker_cpu_seconds"] = child_cpu
    record["other_load_cores"] = max(0.0, ((busy1 - busy0) / hz - child_cpu) / wall) if wall > 0 else None
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
    row["steps"] = step_times(convert)
    if profile:
        row["profile"] = profile_segments(profile, model_bytes)
        row["profile_peak_copies_of_model"] = (profile["peak_rss_kb"] - profile["baseline_rss_kb"]) * 1024 / model_bytes
        row["profile_notes"] = profile["notes"]
    return row


def _segments(marks):
    for previous, current in zip(marks, marks[1:]):
        yield f"{previous['label']} -> {current['label']}", previous, current


def step_times(runs):
    """Median seconds per segment between step boundaries over the timed conversions."""
    if not runs:
        return []
    names = [n for n, _, _ in _segments(runs[0]["marks"])]
    out = []
    for i, name in enumerate(names):
        times = []
        for r in runs:
            segments = list(_segments(r["marks"]))
            if i < len(segments) and segments[i][0] == name:
                times.append(segments[i][2]["t"] - segments[i][1]["t"])
        out.append({"segment": name, "seconds": statistics.median(times) if times else None})
    return out


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


def _step_name(segment):
    """'x start -> x end' -> 'x'; 'x end -> y start' -> '(x .. y)'."""
    first, _, second = segment.partition(" -> ")
    a, b = first.rsplit(" ", 1)[0], second.rsplit(" ", 1)[0]
    return a if first.endswith(" start") and second.endswith(" end") and a == b else f"({a} .. {b})"


def format_table(rows):
    header = (f"{'variant':<24} {'ckpt MB':>8} {'fp32 MB':>8} {'convert s':>9} {'read s':>7} {'peak RSS MB':>11} "
              f"{'over base MB':>12} {'x ckpt':>7} {'x model':>7} {'read x ckpt':>11}")
    lines = [header, "-" * len(header)]
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for r in rows:
        lines.append(
            f"{r['variant']:<24} {r['checkpoint_mb']:>8.0f} {r['model_fp32_mb']:>8.0f} "
            f"{fmt(r['convert_seconds'], '.2f'):>9} {fmt(r['read_seconds'], '.2f'):>7} "
            f"{fmt(r['peak_rss_mb'], '.0f'):>11} {fmt(r['over_baseline_mb'], '.0f'):>12} "
            f"{fmt(r['copies_of_checkpoint'], '.2f'):>7} {fmt(r['copies_of_model'], '.2f'):>7} "
            f"{fmt(r['read_copies_of_checkpoint'], '.2f'):>11}")
    return "\n".join(lines)


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
    plt = environment.pyplot()
    if plt is None:
        return None
    names = [r["variant"] for r in rows]
    xs = range(len(rows))
    fig, axes = plt.subplots(3, 1, figsize=(11, 12))
    width = 0.38
    convert = [r["convert_seconds"] or 0 for r in rows]
    read = [r["read_seconds"] or 0 for r in rows]
    bars = axes[0].bar([x - width / 2 for x in xs], convert, width, label="full conversion")
    axes[0].bar_label(bars, fmt="%.1f", fontsize=8)
    bars = axes[0].bar([x + width / 2 for x in xs], read, width, label="reading the weights only")
    axes[0].bar_label(bars, fmt="%.1f", fontsize=8)
    axes[0].set_xticks(list(xs), names, fontsize=8)
    axes[0].set_ylabel("seconds (median)")
    axes[0].set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    model = [r["copies_of_model"] for r in rows]
    ckpt = [r["copies_of_checkpoint"] for r in rows]
    bars = axes[1].bar([x - width / 2 for x in xs], model, width, label="x fp32 model weights")
    axes[1].bar_label(bars, fmt="%.2f", fontsize=8)
    bars = axes[1].bar([x + width / 2 for x in xs], ckpt, width, label="x checkpoint tensor bytes")
    axes[1].bar_label(bars, fmt="%.2f", fontsize=8)
    axes[1].axhline(2.0, color="red", linestyle="--", linewidth=1, label="target: about two copies")
    axes[1].set_xticks(list(xs), names, fontsize=8)
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
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    info = environment.machine_info(PACKAGES, top_processes_at_start=environment.top_processes(),
                                    memory_total_kb=_meminfo().get("MemTotal"),
                                    memory_available_kb_at_start=_meminfo().get("MemAvailable"))
    logging.info("Load average %.2f at start; busiest processes: %s", info["load_average_at_start"][0],
                 info["top_processes_at_start"])
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
    prepare_sources(specs, work_dir, FLAGS.data_dir, FLAGS.seed)

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
              f"others {record['other_load_cores']:.2f} cores", flush=True)
        shutil.rmtree(spec["output"], ignore_errors=True)

    rows = [summarize(name, specs[name], runs[name]) for name in specs]
    info["load_average_at_end"] = os.getloadavg()
    info["top_processes_at_end"] = environment.top_processes()
    output_dir = Path(FLAGS.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": info,
        "config": {"quick": FLAGS.quick, "large": FLAGS.large, "geometry_name": geometry_name,
                   "geometries": {k: geometry_of(k) for k in {s["geometry"] for s in specs.values()}},
                   "repeats": repeats, "threads": FLAGS.threads, "seed": FLAGS.seed, "work_dir": str(work_dir),
                   "sources": specs,
                   "baseline": "RSS after importing tensorflow, tf_keras, roberta_tf (+ models, converters, presets)",
                   "copies": "(VmHWM at the end, reset after the imports - baseline RSS) / bytes (checkpoint tensors | fp32 model)"},
        "results": rows,
        "runs": runs,
        "total_seconds": time.perf_counter() - started,
    }
    json_path = output_dir / "conversion_benchmark.json"
    environment.write_json(json_path, report)
    title = (f"RoBERTa checkpoint -> preset conversion ({geometry_name} geometry), fresh process per run, "
             f"median of {repeats}; {environment.cpu_model()}, {info['cpu_count']} CPUs")
    plot_path = write_plot(rows, output_dir / "conversion_benchmark.png", title)

    others = [r["other_load_cores"] for rs in runs.values() for r in rs if r.get("other_load_cores") is not None]
    print(f"\n{info['cpu_count']} CPUs ({info['cpu_model']}), {info['platform']}; load average "
          f"{info['load_average_at_start'][0]:.2f} at start / {info['load_average_at_end'][0]:.2f} at end; other "
          f"processes used {max(others, default=0):.2f} cores at most during a run (mean "
          f"{statistics.mean(others) if others else 0:.2f}).")
    print(f"Geometry {geometry_name} (+ large with --large); median of {repeats} fresh processes; baseline = RSS "
          f"after importing tensorflow + tf_keras + roberta_tf ({rows[0]['baseline_rss_mb']:.0f} MB). "
          f"x ckpt / x model = (peak - baseline) / checkpoint tensor bytes / fp32 model bytes.")
    print(format_table(rows))
    print("\nSteps of the conversion (median seconds over the timed runs):")
    for r in rows:
        steps = ", ".join(f"{_step_name(s['segment'])}: {s['seconds']:.2f}"
                          for s in r["steps"] if s["seconds"] is not None and s["seconds"] >= 0.05)
        print(f"  {r['variant']}: {steps}")
    if FLAGS.profile:
        print("\nWhere the memory goes (instrumented run; MB over the baseline; numpy/py = tracemalloc):")
        for r in rows:
            if r.get("profile"):
                print(format_profile(r))
    print(f"Wrote {json_path}" + (f" and {plot_path}" if plot_path else "") +
          f" in {report['total_seconds']:.0f} s.")


def _meminfo():
    values = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


if __name__ == "__main__":
    app.run(main)
