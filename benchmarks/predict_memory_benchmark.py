"""`roberta-tf predict` memory benchmark: does the command's memory stay flat on a 1 GB input?

A small random classifier (2 layers, hidden 64, the real roberta-base vocabulary, seeded) is
saved as a preset and exported with `export_preset` (TF Serving's SavedModel, what batch
scoring runs) into a temporary directory; with --artifacts=saved_model,tflite also as a float32
.tflite (`export_preset_tflite`). Then `python -m roberta_tf.cli predict --model ARTIFACT` runs
as a subprocess and --gigabytes of generated text (1 GiB; --quick: 100 MiB) are written into
its stdin through a pipe as they are generated (no input file on disk). Its JSON lines are read
from its stdout and counted (one per input line; a sample of them parsed and checked).

The input, seeded and repeating in blocks of ~53 lines: SST-2 dev sentences; one long line per
block (--long_line_kb on average, 0.5x-1.5x, built from SST-2 sentences joined by spaces;
every tenth is random bytes 0x80-0xFF instead); one sentence with ~10% of its bytes replaced by
invalid UTF-8; one empty line; one line ending in "\\r\\n"; and a --huge_line_mb line of text
after the first MB, then every --huge_every_mb. Long lines hold --long_share of the bytes (the
served tokenizer reads ~8 MB/s of them; a short sentence costs a whole row of the batch), which
sets the run time.

Measured, never asserted: the subprocess's VmRSS (and RssAnon, VmHWM) from /proc/PID/status
every --sample_seconds (every 0.05 s once the input is all written, to catch the end) against
the input bytes written into the pipe so far; its peak (VmHWM) at the last sample and its CPU
time (wait4) at exit. Reported per artifact: RSS at the first output line (model loaded, first
batch classified), at 10/25/50/75/100% of the input, the peak, growth from the 10% point to the
end and the largest RSS after it (MB), the least-squares slope of RSS against input (MB per GB)
after the 10% point, throughput in MB/s and lines/s. The run fails (exit 1) only when predict
fails or writes the wrong number of lines.

Run from the repository root:

    python -m benchmarks.predict_memory_benchmark [--quick] [--gigabytes G] [--artifacts saved_model,tflite]
        [--output_dir DIR]

It prints the tables and writes predict_memory_benchmark.json and .png (RSS against GB of input)
to --output_dir. Details and measured numbers: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from benchmarks import DATA_DIR, REPO_ROOT, RESULTS_DIR, data, report  # noqa: E402

FLAGS = flags.FLAGS
SAVED_MODEL, TFLITE = "saved_model", "tflite"
PACKAGES = ["tensorflow", "tf-keras", "ai-edge-litert", "numpy", "absl-py", "matplotlib", "roberta-tf"]

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write the JSON and PNG.")
flags.DEFINE_string("data_dir", str(DATA_DIR), "Shared data: roberta-base/ (vocabulary) and sst2/dev.tsv.")
flags.DEFINE_bool("quick", False, "Smoke run: 0.1 GiB of input instead of 1 (unless --gigabytes is given).")
flags.DEFINE_float("gigabytes", None, "GiB (2^30 bytes) of input per artifact; default 1, 0.1 with --quick.")
flags.DEFINE_list("artifacts", [SAVED_MODEL], f"The exports predict runs on, in order: {SAVED_MODEL} (TF Serving's "
                  f"SavedModel), {TFLITE} (float32 .tflite, one text per interpreter call).")
flags.DEFINE_float("long_share", 0.95, "Share of the input bytes in long lines (the rest: short lines).")
flags.DEFINE_integer("long_line_kb", 100, "Mean size of the long lines, kB (each 0.5x-1.5x of it).")
flags.DEFINE_float("huge_line_mb", 1.0, "Size of the occasional huge line, MB (0: none).")
flags.DEFINE_integer("huge_every_mb", 32, "One huge line per this many MB of input.")
flags.DEFINE_integer("batch_size", 64, "predict's --batch_size (texts per call and per flush).")
flags.DEFINE_integer("sequence_length", 128, "The preset preprocessor's sequence_length (the export's truncation).")
flags.DEFINE_float("sample_seconds", 0.5, "Interval between two RSS samples.")
flags.DEFINE_integer("timeout_seconds", 3600, "Stop a predict run that takes longer than this (it is then failed).")
flags.DEFINE_integer("seed", 0, "Seed of the model weights and of the input.")

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30  # sizes in binary units; "GB" of input = GiB
PIPE_WRITE_BYTES = 64 * KB  # one os.write: the byte count the sampler sees advances this finely
WRITE_CHUNK_BYTES = 1 * MB  # generated and handed to the writer at a time
PROGRESS_POINTS = (10, 25, 50, 75, 100)
BASE_POINT = 10  # growth is measured from here: by then every kind of line has been classified
FIRST_HUGE_AFTER_BYTES = 1 * MB
END_SAMPLE_SECONDS = 0.05  # once the input is all written: sample finely to catch the end
CHECK_EVERY_LINES = 997  # output lines parsed and checked (a prime, so the sample moves through the blocks)
LABEL_NAMES = ["negative", "positive"]
BACKBONE = dict(vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=128,
                max_sequence_length=512)

# ----------------------------------------------------------------------------- the model


def build_artifacts(workdir, data_dir, seed, sequence_length, kinds):
    """The seeded small classifier as a preset and its exports of `kinds` (SAVED_MODEL, TFLITE:
    float32) under `workdir`: {artifact name: {path, export_seconds, bytes}}, in `kinds` order."""
    import tf_keras

    from roberta_tf.export.saved_model import export_preset
    from roberta_tf.models import (
        RobertaBackbone,
        RobertaTextClassifier,
        RobertaTextClassifierPreprocessor,
        RobertaTokenizer,
    )

    vocabulary_dir = Path(data_dir, "roberta-base")
    tf_keras.utils.set_random_seed(seed)
    tokenizer = RobertaTokenizer(vocabulary=str(vocabulary_dir / "vocab.json"),
                                 merges=str(vocabulary_dir / "merges.txt"))
    preprocessor = RobertaTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
    classifier = RobertaTextClassifier(RobertaBackbone(**BACKBONE), len(LABEL_NAMES), preprocessor=preprocessor,
                                       label_names=LABEL_NAMES)
    preset = Path(workdir, "preset")
    classifier.save_to_preset(preset, source={"type": "benchmarks/predict_memory_benchmark.py", "seed": seed})
    artifacts = {}
    for kind in kinds:
        start = time.perf_counter()
        if kind == SAVED_MODEL:
            exported = export_preset(preset, Path(workdir, "saved_model"), 1, warmup_requests=False)
            name, size = "SavedModel", directory_bytes(exported.path)
        else:
            from roberta_tf.export.tflite import export_preset_tflite

            exported = export_preset_tflite(preset, Path(workdir, "classifier.tflite"), inputs="utf8_bytes",
                                            quantize="none")
            name, size = "TFLite float32", Path(exported.path).stat().st_size
        artifacts[name] = {"path": str(exported.path), "export_seconds": time.perf_counter() - start, "bytes": size}
    return artifacts


def directory_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- the input


class GeneratedInput:
    """The seeded input, generated block by block as it is written (see the module docstring).
    `chunks()` yields ~1 MB pieces of whole lines until `total_bytes` are reached (the last
    block may overshoot by one block); `lines` / `bytes` / `kinds` count what was generated."""

    def __init__(self, sentences, total_bytes, long_share, long_line_bytes, huge_line_bytes, huge_every_bytes, seed):
        self.sentences = [s.encode("utf-8") for s in sentences]
        self.total_bytes = int(total_bytes)
        self.long_line_bytes = int(long_line_bytes)
        self.huge_line_bytes = int(huge_line_bytes)
        self.huge_every_bytes = int(huge_every_bytes)
        self.rng = np.random.default_rng(seed)
        mean_sentence = float(np.mean([len(s) + 1 for s in self.sentences]))
        # Short lines per block so that long lines hold `long_share` of the bytes.
        self.short_lines_per_block = max(4, round(self.long_line_bytes * (1 - long_share) / long_share / mean_sentence))
        # Long lines are slices of a text of shuffled sentences, long enough for a huge line.
        text_bytes = max(2 * self.huge_line_bytes, 3 * self.long_line_bytes, 4 * MB)
        pieces, size = [], 0
        while size < text_bytes:
            order = self.rng.permutation(len(self.sentences))
            pieces += [self.sentences[i] for i in order]
            size += sum(len(self.sentences[i]) + 1 for i in order)
        self.text = b" ".join(pieces)
        self.next_sentence = 0
        self.blocks = 0
        self.lines = 0
        self.bytes = 0
        self.kinds = {}  # kind -> {"lines", "bytes"}

    def chunks(self):
        pending, pending_bytes = [], 0
        # The first huge line comes early (after FIRST_HUGE_AFTER_BYTES), well before the 10%
        # point growth is measured from, so its batch's memory is in the baseline.
        next_huge = min(FIRST_HUGE_AFTER_BYTES, self.huge_every_bytes) if self.huge_line_bytes else None
        while self.bytes < self.total_bytes:
            lines = self.block(huge=next_huge is not None and self.bytes >= next_huge)
            if next_huge is not None and self.bytes >= next_huge:
                next_huge += self.huge_every_bytes
            for kind, line in lines:
                self.count(kind, line)
            block = b"".join(line for _, line in lines)
            pending.append(block)
            pending_bytes += len(block)
            if pending_bytes >= WRITE_CHUNK_BYTES:
                yield b"".join(pending)
                pending, pending_bytes = [], 0
        if pending:
            yield b"".join(pending)

    def count(self, kind, line):
        entry = self.kinds.setdefault(kind, {"lines": 0, "bytes": 0})
        entry["lines"] += 1
        entry["bytes"] += len(line)
        self.lines += 1
        self.bytes += len(line)

    def block(self, huge=False):
        """One block of (kind, line with its line end), shuffled."""
        lines = [("sentence", self.sentence() + b"\n") for _ in range(self.short_lines_per_block)]
        lines.append(("invalid UTF-8 sentence", self.invalid_sentence() + b"\n"))
        lines.append(("empty", b"\n"))
        lines.append(("sentence + \\r\\n", self.sentence() + b"\r\n"))
        size = int(self.long_line_bytes * self.rng.uniform(0.5, 1.5))
        if self.blocks % 10 == 9:
            lines.append(("long invalid UTF-8", self.rng.integers(0x80, 0x100, size, dtype=np.uint8).tobytes() + b"\n"))
        else:
            lines.append(("long", self.text_slice(size) + b"\n"))
        if huge:
            lines.append(("huge", self.text_slice(self.huge_line_bytes) + b"\n"))
        self.blocks += 1
        order = self.rng.permutation(len(lines))
        return [lines[i] for i in order]

    def sentence(self):
        sentence = self.sentences[self.next_sentence % len(self.sentences)]
        self.next_sentence += 1
        return sentence

    def invalid_sentence(self):
        """A sentence with ~10% of its bytes replaced by bytes 0x80-0xFF (mostly ill-formed UTF-8)."""
        array = np.frombuffer(self.sentence(), np.uint8).copy()
        positions = self.rng.random(len(array)) < 0.1
        positions[self.rng.integers(len(array))] = True  # at least one
        array[positions] = self.rng.integers(0x80, 0x100, int(positions.sum()), dtype=np.uint8)
        return array.tobytes()

    def text_slice(self, size):
        """About `size` bytes of the sentence text, from a word start to a word end."""
        start = int(self.rng.integers(0, len(self.text) - size))
        start = self.text.find(b" ", start) + 1
        end = self.text.rfind(b" ", start, start + size)
        return self.text[start:end if end > start else start + size]


# ----------------------------------------------------------------------------- the process


def proc_status(pid, keys=("VmRSS", "VmHWM", "RssAnon", "RssFile")):
    """`{key: KB}` from /proc/PID/status, or None once the process is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in keys:
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return None
    return values if "VmRSS" in values else None  # a zombie has no memory lines


def has_exited(pid):
    """True once the child has exited, without reaping it (wait4 collects its rusage later)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class PipeWriter(threading.Thread):
    """Writes the generated chunks into the child's stdin, `PIPE_WRITE_BYTES` per os.write, so
    `bytes_written` follows what the child has read (to within the pipe's 64 kB buffer)."""

    def __init__(self, stream, chunks):
        super().__init__(daemon=True)
        self.stream, self.chunks = stream, chunks
        self.bytes_written = 0
        self.error = None
        self.finished_at = None

    def run(self):
        fd = self.stream.fileno()
        try:
            for chunk in self.chunks:
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view[:PIPE_WRITE_BYTES])
                    self.bytes_written += written
                    view = view[written:]
        except OSError as e:  # BrokenPipeError: predict stopped reading (it failed: see its stderr)
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.finished_at = time.perf_counter()
            try:
                self.stream.close()
            except OSError:
                pass


class OutputCounter(threading.Thread):
    """Reads the child's stdout: counts lines, notes when the first one arrives, and parses and
    checks every `CHECK_EVERY_LINES`-th line and the last one."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines = 0
        self.bytes = 0
        self.first_line_at = None
        self.checked = 0
        self.problems = []
        self.labels = {}

    def run(self):
        fd = self.stream.fileno()
        tail = b""
        while True:
            chunk = os.read(fd, MB)
            if not chunk:
                break
            if self.first_line_at is None and b"\n" in chunk:
                self.first_line_at = time.perf_counter()
            self.bytes += len(chunk)
            buffer = tail + chunk
            complete = buffer.rfind(b"\n") + 1
            lines, tail = buffer[:complete].split(b"\n")[:-1], buffer[complete:]
            for i, line in enumerate(lines, start=self.lines + 1):
                if i % CHECK_EVERY_LINES == 1:
                    self.check(i, line)
            self.lines += len(lines)
            if lines and self.lines % CHECK_EVERY_LINES != 1:
                self.check(self.lines, lines[-1])
        if tail:
            self.problems.append(f"the output ends without a line end: {tail[:80]!r}")
        self.stream.close()

    def check(self, number, line):
        """One output line: a JSON object with a known label, its class id and probabilities summing to 1."""
        self.checked += 1
        try:
            record = json.loads(line)
            label, class_id, probabilities = record["label"], record["class_id"], record["probabilities"]
            ok = (label in LABEL_NAMES and LABEL_NAMES.index(label) == class_id and len(probabilities) == 2
                  and abs(sum(probabilities) - 1) < 1e-5)
        except (ValueError, KeyError, TypeError):
            ok = False
            label = None
        if ok:
            self.labels[label] = self.labels.get(label, 0) + 1
        elif len(self.problems) < 5:
            self.problems.append(f"output line {number} is not a prediction: {line[:120]!r}")


def run_predict(name, artifact_path, generated, batch_size, sample_seconds, timeout_seconds, log_path):
    """Runs `roberta-tf predict` on `artifact_path`, streaming `generated` into it, sampling its
    memory: the measurement record of one artifact."""
    command = [sys.executable, "-m", "roberta_tf.cli", "predict", "--model", artifact_path,
               f"--batch_size={batch_size}"]
    logging.info("%s: %s, %.2f GB of input", name, " ".join(command), generated.total_bytes / GB)
    samples = []
    with open(log_path, "wb") as log, report.LoadMeter(children=True) as load:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=REPO_ROOT)
        writer, reader = PipeWriter(process.stdin, generated.chunks()), OutputCounter(process.stdout)
        writer.start()
        reader.start()
        timed_out = False
        next_progress = time.perf_counter()
        while not has_exited(process.pid):
            now = time.perf_counter()
            if now - started > timeout_seconds:
                timed_out = True
                process.kill()
                break
            status = proc_status(process.pid)
            if status is not None:
                samples.append({"seconds": now - started, "input_bytes": writer.bytes_written,
                                "output_lines": reader.lines, **{k.lower() + "_kb": v for k, v in status.items()}})
            if now >= next_progress:
                logging.info("%s: %.0f s, %.3f GB written, %d lines out, RSS %.0f MB", name, now - started,
                             writer.bytes_written / GB, reader.lines, (status or {}).get("VmRSS", 0) / KB)
                next_progress = now + 30
            time.sleep(sample_seconds if writer.finished_at is None else min(sample_seconds, END_SAMPLE_SECONDS))
        _, wait_status, usage = os.wait4(process.pid, 0)
        ended = time.perf_counter()
        process.returncode = os.waitstatus_to_exitcode(wait_status)
    writer.join(timeout=30)
    reader.join(timeout=30)
    return {
        "artifact": name, "path": artifact_path, "command": command, "exit_code": process.returncode,
        "timed_out": timed_out, "wall_seconds": ended - started,
        "first_output_seconds": None if reader.first_line_at is None else reader.first_line_at - started,
        "input_finished_seconds": None if writer.finished_at is None else writer.finished_at - started,
        "input_bytes": writer.bytes_written, "input_lines": generated.lines, "generated_bytes": generated.bytes,
        "input_kinds": generated.kinds, "writer_error": writer.error,
        "output_lines": reader.lines, "output_bytes": reader.bytes, "output_lines_checked": reader.checked,
        "output_labels_checked": reader.labels, "output_problems": reader.problems,
        # wait4's ru_maxrss is not used: it includes this process's memory, which the child's
        # pre-exec image (fork / vfork) shared, so it reads as this process's peak, not predict's.
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "last_sample_before_exit_seconds": ended - started - samples[-1]["seconds"] if samples else None,
        "other_load_cores": load.other_cores, "steal_cores": load.steal_cores,
        "samples": samples, "log": str(log_path), "log_tail": tail_of(log_path),
    }


def tail_of(path, lines=5):
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# ----------------------------------------------------------------------------- the figures


def failure_reason(run):
    """Why a run is not a valid measurement (predict failed or lost lines), or None."""
    if run["timed_out"]:
        return f"predict took more than {FLAGS.timeout_seconds} s and was stopped"
    if run["exit_code"] != 0:
        return f"predict exited with {run['exit_code']}: {' / '.join(run['log_tail'][-2:])}"
    if run["writer_error"]:
        return f"writing the input failed: {run['writer_error']}"
    if run["input_bytes"] != run["generated_bytes"]:
        return f"{run['input_bytes']} of {run['generated_bytes']} input bytes written"
    if run["output_lines"] != run["input_lines"]:
        return f"{run['output_lines']} output lines for {run['input_lines']} input lines"
    if run["output_problems"]:
        return run["output_problems"][0]
    if not run["samples"]:
        return "no memory sample was taken"
    return None


def last_sample_before_the_end(samples, run):
    """The last sample before the last output line was read: predict still classifying, at
    most one sampling interval before the end (the last sample, if no line came out)."""
    before = [s for s in samples if s["output_lines"] < run["output_lines"]]
    return before[-1] if before else samples[-1]


def first_sample(samples, condition):
    return next((s for s in samples if condition(s)), None)


def point_row(label, sample, run):
    if sample is None:
        return {"point": label, "status": "no sample", "reason": "the run ended before it"}
    return {"point": label, "input_gb": sample["input_bytes"] / GB, "seconds": sample["seconds"],
            "output_lines": sample["output_lines"], "rss_mb": sample["vmrss_kb"] / KB,
            "rss_anon_mb": sample.get("rssanon_kb", 0) / KB, "hwm_mb": sample.get("vmhwm_kb", 0) / KB}


def summarize(run):
    """The points (RSS at the first output line, at 10..100% of the input, the peak) and the
    summary figures of one run."""
    samples, total = run["samples"], run["input_bytes"]
    after_load = first_sample(samples, lambda s: s["output_lines"] > 0)
    points = [point_row("first output line (model loaded)", after_load, run)]
    at = {}
    for percent in PROGRESS_POINTS:
        if percent == 100:  # later samples may fall in the interpreter's teardown, which frees memory
            sample = last_sample_before_the_end(samples, run)
        else:
            sample = first_sample(samples, lambda s, p=percent: s["input_bytes"] >= total * p / 100)
        at[percent] = sample
        points.append(point_row(f"{percent}% of the input" + (" (end)" if percent == 100 else ""), sample, run))
    peak_kb = max(s.get("vmhwm_kb", 0) for s in samples)
    points.append({"point": "peak (VmHWM at the last sample)", "rss_mb": peak_kb / KB})
    base, end = at[BASE_POINT], at[100]
    after_base = [s for s in samples if base is not None and base["seconds"] <= s["seconds"] <= end["seconds"]]
    streaming_seconds = (run["wall_seconds"] - run["first_output_seconds"]) if run["first_output_seconds"] else None
    summary = {
        "artifact": run["artifact"], "input_gb": total / GB, "input_lines": run["input_lines"],
        "wall_seconds": run["wall_seconds"], "first_output_seconds": run["first_output_seconds"],
        "mb_per_second": total / MB / run["wall_seconds"],
        "lines_per_second": run["input_lines"] / run["wall_seconds"],
        "streaming_mb_per_second": total / MB / streaming_seconds if streaming_seconds else None,
        "rss_first_output_mb": after_load["vmrss_kb"] / KB if after_load else None,
        "rss_base_mb": base["vmrss_kb"] / KB if base else None,
        "rss_end_mb": end["vmrss_kb"] / KB if end else None,
        "peak_rss_mb": peak_kb / KB,
        "growth_mb": (end["vmrss_kb"] - base["vmrss_kb"]) / KB if base and end else None,
        "max_growth_mb": (max(s["vmrss_kb"] for s in after_base) - base["vmrss_kb"]) / KB if after_base else None,
        "slope_mb_per_gb": slope(after_base),
        "cpu_seconds": run["cpu_seconds"], "other_load_cores": run["other_load_cores"],
        "samples": len(samples),
    }
    return points, summary


def slope(samples):
    """Least-squares slope of RSS (MB) against input (GB) over `samples` (None with < 3 or no spread)."""
    if len(samples) < 3:
        return None
    x = np.array([s["input_bytes"] / GB for s in samples])
    y = np.array([s["vmrss_kb"] / KB for s in samples])
    if np.ptp(x) == 0:
        return None
    return float(np.polyfit(x, y, 1)[0])


POINTS_TABLE = [
    report.Column("point", 34, "point", align="<"),
    report.Column("input GB", 8, "input_gb", ".3f"),
    report.Column("seconds", 8, "seconds", ".1f"),
    report.Column("lines out", 10, "output_lines", ",d"),
    report.Column("RSS MB", 7, "rss_mb", ".0f"),
    report.Column("anon MB", 7, "rss_anon_mb", ".0f"),
    report.Column("HWM MB", 7, "hwm_mb", ".0f"),
]

SUMMARY_TABLE = [
    report.Column("artifact", 14, "artifact", align="<"),
    report.Column("GB in", 6, "input_gb", ".2f"),
    report.Column("lines", 10, "input_lines", ",d"),
    report.Column("wall s", 7, "wall_seconds", ".0f"),
    report.Column("load s", 6, "first_output_seconds", ".1f"),
    report.Column("MB/s", 6, "mb_per_second", ".2f"),
    report.Column("lines/s", 8, "lines_per_second", ",.0f"),
    report.Column("RSS 10%", 7, "rss_base_mb", ".0f"),
    report.Column("RSS end", 7, "rss_end_mb", ".0f"),
    report.Column("peak", 6, "peak_rss_mb", ".0f"),
    report.Column("growth", 6, "growth_mb", "+.0f"),
    report.Column("max growth", 10, "max_growth_mb", "+.0f"),
    report.Column("MB/GB", 6, "slope_mb_per_gb", "+.1f"),
    report.Column("CPU s", 6, "cpu_seconds", ".0f"),
    report.Column("others", 6, "other_load_cores", ".2f"),
]


def write_plot(runs, path, title):
    def draw(fig, ax):
        for run in runs:
            samples = run["samples"]
            if not samples:
                continue
            x = [s["input_bytes"] / GB for s in samples]
            line, = ax.plot(x, [s["vmrss_kb"] / KB for s in samples], linewidth=1.2, label=f"{run['artifact']} RSS")
            ax.plot(x, [s.get("vmhwm_kb", 0) / KB for s in samples], linewidth=0.8, linestyle="--",
                    color=line.get_color(), label=f"{run['artifact']} peak so far (VmHWM)")
            base = first_sample(samples, lambda s, t=run["input_bytes"]: s["input_bytes"] >= t * BASE_POINT / 100)
            if base is not None:
                ax.axvline(base["input_bytes"] / GB, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("input written into predict's stdin (GiB)")
        ax.set_ylabel("predict's resident memory (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8, loc="lower right")

    return report.plot(path, draw, figsize=(10, 5))


# ----------------------------------------------------------------------------- main


def input_config():
    gigabytes = FLAGS.gigabytes if FLAGS.gigabytes is not None else (0.1 if FLAGS.quick else 1.0)
    if gigabytes <= 0:
        raise app.UsageError("--gigabytes must be positive")
    if not 0 < FLAGS.long_share < 1:
        raise app.UsageError("--long_share must be between 0 and 1")
    return {"total_bytes": int(gigabytes * GB), "long_share": FLAGS.long_share,
            "long_line_bytes": FLAGS.long_line_kb * 1000, "huge_line_bytes": int(FLAGS.huge_line_mb * 1_000_000),
            "huge_every_bytes": FLAGS.huge_every_mb * MB, "seed": FLAGS.seed}


def main(argv):
    del argv
    started = time.perf_counter()
    config = input_config()
    unknown = set(FLAGS.artifacts) - {SAVED_MODEL, TFLITE}
    if unknown or not FLAGS.artifacts:
        raise app.UsageError(f"--artifacts: choose from {SAVED_MODEL},{TFLITE} (got {','.join(FLAGS.artifacts)})")
    sentences, _ = data.load_sst2("dev", FLAGS.data_dir)
    info = report.machine_info(PACKAGES)
    runs, results = [], []
    with tempfile.TemporaryDirectory(prefix="roberta_tf_predict_memory_") as workdir:
        artifacts = build_artifacts(workdir, FLAGS.data_dir, FLAGS.seed, FLAGS.sequence_length,
                                    list(dict.fromkeys(FLAGS.artifacts)))
        for name, artifact in artifacts.items():
            generated = GeneratedInput(sentences, **config)
            run = run_predict(name, artifact["path"], generated, FLAGS.batch_size, FLAGS.sample_seconds,
                              FLAGS.timeout_seconds, Path(workdir, f"predict-{len(runs)}.log"))
            run["reason"] = failure_reason(run)
            run["status"] = "ok" if run["reason"] is None else "failed"
            points, summary = summarize(run) if run["samples"] else ([], {"artifact": name})
            summary.update(status=run["status"], reason=run["reason"])
            runs.append({**run, "points": points, "export": artifact})
            results.append(summary)
    record = {
        "machine": report.finish(info),
        "config": {**config, "quick": FLAGS.quick, "batch_size": FLAGS.batch_size,
                   "sequence_length": FLAGS.sequence_length, "backbone": BACKBONE, "label_names": LABEL_NAMES,
                   "sample_seconds": FLAGS.sample_seconds, "units": "MB = MiB (2^20 bytes), GB = GiB (2^30 bytes)",
                   "measured_not_asserted": True,
                   "growth": f"RSS at the end minus RSS at {BASE_POINT}% of the input (bytes written into the pipe)"},
        "results": results,
        "runs": runs,
        "total_seconds": time.perf_counter() - started,
    }
    title = (f"roberta-tf predict, {config['total_bytes'] / GB:g} GiB streamed through stdin, batch "
             f"{FLAGS.batch_size}; {report.cpu_model()}, {info['cpu_count']} CPUs")
    written = report.save(FLAGS.output_dir, "predict_memory_benchmark", record,
                          lambda path: write_plot(runs, path, title))

    print("\n" + report.load_summary(info, other_loads=[r["other_load_cores"] for r in runs]))
    print("Measured, not asserted: RSS of the predict process (VmRSS, /proc/PID/status every "
          f"{FLAGS.sample_seconds:g} s) against the input written into its stdin; MB = MiB, GB = GiB.")
    for run in runs:
        kinds = ", ".join(f"{k} {v['lines']:,} lines / {v['bytes'] / MB:.0f} MB" for k, v in run["input_kinds"].items())
        print(f"\n{run['artifact']} ({run['path']}): {kinds}")
        if run["points"]:
            print(report.format_table(POINTS_TABLE, run["points"]))
        if run["reason"]:
            print(f"FAILED: {run['reason']}")
        else:
            print(f"{run['output_lines']:,} output lines = input lines; {run['output_lines_checked']:,} parsed and "
                  f"checked (labels {run['output_labels_checked']}).")
    print(f"\ngrowth = RSS at the end - RSS at {BASE_POINT}%; max growth = the largest RSS after {BASE_POINT}% - RSS "
          f"at {BASE_POINT}%; MB/GB = least-squares slope of RSS over input after {BASE_POINT}%; load s = seconds to "
          "the first output line; MB/s and lines/s over the whole run (model load included).")
    print(report.format_table(SUMMARY_TABLE, results))
    print(written)
    if any(run["status"] != "ok" for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
