"""`roberta-tf benchmark`: every benchmark of the source checkout in one go, then the report.

    roberta-tf benchmark --quick                 # ~15 min on 2 quiet cores: every benchmark, REPORT.md + plots
    roberta-tf benchmark --only tokenizer,model  # a subset (full runs)

The benchmarks are the `benchmarks/` package of the repository roberta_tf is installed from
(an editable install, `pip install -e '.[bench]'`); a wheel does not contain them. Each runs
as `python -m benchmarks.NAME [--quick] --output_dir DIR` in its own process, from the
repository root, with its output captured in DIR/logs/NAME.log; a benchmark that fails is
reported and the others still run. Then `python -m benchmarks.make_report` writes
DIR/REPORT.md and the plots from the benchmarks' JSON files. The run itself is recorded in
DIR/benchmark_run.json (command, start, duration, each step's status, exit code and log),
which the report's header reads.
"""

import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from absl import flags
from absl import logging

from roberta_tf.cli import command
from roberta_tf.cli.command import CommandError, UsageError

NAME = "benchmark"
SUMMARY = "Run every benchmark of the source checkout and write benchmarks/results/REPORT.md with plots."
DESCRIPTION = """
Runs each benchmark in benchmarks/ (`python -m benchmarks.NAME`, one process each, from the
repository root) and then builds the report: OUTPUT_DIR/REPORT.md (date, commit, CPU model
and flags, threads, package versions, load, every benchmark's tables with the ratios to the
reference engines measured in the same run, targets met and missed) and its PNG plots.
Each benchmark's output goes to OUTPUT_DIR/logs/NAME.log; a failing benchmark is reported
and the others still run (exit code 1 at the end).

Needs a source checkout installed in editable mode (`pip install -c constraints.txt -e
'.[bench]'` for the competitors: keras-hub, PyTorch, ONNX Runtime, matplotlib). The serving
and TFLite benchmarks use a small trained SST-2 classifier: the first run trains it
(`python -m benchmarks.sst2_classifier`, about 5 minutes on 2 cores) and caches it under
$ROBERTA_TF_CACHE (default ~/.cache/roberta_tf); later runs reuse it.

--quick: smoke-sized runs (tiny geometries, few calls), about 15 minutes on 2 quiet cores once
the classifier is cached (9 min 14 s measured before the beam, sentencepiece and xlmr_large
benchmarks, whose quick runs take about 1, 1 and 3.5 minutes). Without it: the full benchmarks,
about 80 minutes, of which xlmr_large_benchmark (an XLM-R-large-sized model, exports peaking
near 14.5 GB of RAM) takes 25-35.
"""

BENCHMARK_SUFFIX = "_benchmark"
RUN_RECORD_FILE = "benchmark_run.json"  # read by benchmarks/make_report.py (RUN_RECORD_FILE there)
REPORT_MODULE = "make_report"
# Preparation before the benchmarks that need it: the trained SST-2 classifier (trained once,
# ~5 min, then cached); without it they skip their accuracy parts.
PREPARE_MODULE = "sst2_classifier"
NEEDS_PREPARE = ("serving_benchmark", "tflite_benchmark", "beam_benchmark")
POLL_SECONDS = 1.0  # how often the progress display is refreshed while a step runs


def define_flags(fv):
    flags.DEFINE_bool("quick", False, "Smoke-sized runs (tiny geometries, few calls): about 15 minutes on 2 "
                      "quiet cores.", flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Where the benchmarks' JSON files, the logs, REPORT.md and the plots "
                        "go (default: benchmarks/results of the checkout).", flag_values=fv)
    flags.DEFINE_list("only", [], "Run only these benchmarks (names as in benchmarks/, with or without "
                      "'_benchmark': tokenizer,model). The report still covers every JSON in --output_dir.",
                      flag_values=fv)
    flags.DEFINE_string("data_dir", None, "The shared data folder passed to the benchmarks that read data "
                        "(default: theirs, ../shared/data beside the checkout).", flag_values=fv)
    flags.DEFINE_string("repo_dir", None, "The source checkout whose benchmarks/ to run (default: the one "
                        "roberta_tf is installed from).", flag_values=fv)


# --- the checkout and its benchmarks -------------------------------------------------------


def installed_checkout():
    """The directory above the imported roberta_tf package: the repository for an editable install."""
    import roberta_tf

    return Path(roberta_tf.__file__).resolve().parents[1]


def find_checkout(repo_dir=None):
    """The repository root holding benchmarks/ (a CommandError in one sentence if there is none)."""
    root = Path(repo_dir).expanduser().resolve() if repo_dir else installed_checkout()
    if not (root / "benchmarks" / "__init__.py").is_file():
        where = f"--repo_dir {repo_dir}" if repo_dir else f"{root}, where roberta_tf is installed from"
        raise CommandError(f"no benchmarks/ package in {where}: the benchmarks come with a source checkout, "
                           "so clone the repository and install it with `pip install -e '.[bench]'` "
                           "(or pass --repo_dir CHECKOUT)")
    return root


def available_benchmarks(root):
    """Every benchmarks/NAME_benchmark.py of the checkout, by module name, sorted."""
    return sorted(path.stem for path in (root / "benchmarks").glob(f"*{BENCHMARK_SUFFIX}.py"))


def select_benchmarks(available, only):
    """`available`, or the ones `--only` names (with or without the suffix); UsageError on others."""
    if not available:
        raise CommandError("the checkout's benchmarks/ has no NAME_benchmark.py module to run")
    if not only:
        return list(available)
    chosen, unknown = [], []
    for name in only:
        module = name if name.endswith(BENCHMARK_SUFFIX) else name + BENCHMARK_SUFFIX
        if module in available:
            if module not in chosen:
                chosen.append(module)
        else:
            unknown.append(name)
    if unknown:
        names = ", ".join(module[: -len(BENCHMARK_SUFFIX)] for module in available)
        raise UsageError(f"unknown --only benchmark {', '.join(map(repr, unknown))}; choose from {names}")
    return [module for module in available if module in chosen]


# --- steps -------------------------------------------------------------------------------


def plan_steps(root, benchmarks, quick, output_dir, data_dir):
    """[(step name, kind, command line)]: the preparation when a chosen benchmark needs it, the
    benchmarks, then the report."""
    python = [sys.executable, "-m"]
    data = [f"--data_dir={data_dir}", "--undefok=data_dir"] if data_dir else []  # not every benchmark reads data
    steps = []
    if (root / "benchmarks" / f"{PREPARE_MODULE}.py").is_file() and set(benchmarks) & set(NEEDS_PREPARE):
        steps.append((PREPARE_MODULE, "prepare", [*python, f"benchmarks.{PREPARE_MODULE}", *data]))
    for name in benchmarks:
        steps.append((name, "benchmark",
                      [*python, f"benchmarks.{name}", *(["--quick"] if quick else []), f"--output_dir={output_dir}",
                       *data]))
    steps.append((REPORT_MODULE, "report", [*python, f"benchmarks.{REPORT_MODULE}", f"--output_dir={output_dir}"]))
    return steps


def last_message(log_path):
    """The last non-empty line of a log (a failed Python program's exception), shortened."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            lines = [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def run_step(argv, cwd, log_path, on_tick):
    """Runs `argv` with stdout and stderr into `log_path`; calls `on_tick()` every POLL_SECONDS.
    Returns the exit code. An interrupt stops the step's process before it propagates."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the log fills as the step goes (`tail -f` works)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write(f"$ cd {shlex.quote(str(cwd))} && {shlex.join(argv)}\n")
        log.flush()
        process = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env)
        try:
            while True:
                try:
                    return process.wait(timeout=POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    on_tick()
        finally:
            if process.poll() is None:  # interrupted: do not leave a benchmark running
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


# --- progress ----------------------------------------------------------------------------


class Progress:
    """One step per benchmark through `roberta_tf.utils.progress`: on a terminal its tqdm bar
    (steps done, rate, ETA) with the running step and its seconds, and a line per finished
    step above it; otherwise plain lines when a step starts and ends (and the bar's own log
    lines with rate and ETA)."""

    def __init__(self, total):
        from roberta_tf.utils import progress

        self.terminal = progress.stderr_is_terminal()
        self.total, self.done = total, 0
        self.started = self.step_started = time.perf_counter()
        self.bar = progress.bar(total=total, description="benchmark", unit="step")

    def start(self, name):
        self.step_started = time.perf_counter()
        self.bar.set_description(name, refresh=self.terminal)
        if not self.terminal:
            self._line(f"[{self.done + 1}/{self.total}] {name} ...")

    def tick(self):
        if self.terminal:  # off a terminal a redraw is a log line: only at the end of a step
            self.bar.set_postfix_str(f"{time.perf_counter() - self.step_started:.0f} s")

    def finish(self, message):
        self.done += 1
        if self.terminal:
            self.bar.write(message, file=sys.stderr)
        else:
            self._line(f"[{self.done}/{self.total}] {message} (elapsed {time.perf_counter() - self.started:.0f} s)")
        self.bar.update(1)

    def close(self):
        self.bar.close()

    @staticmethod
    def _line(text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


# --- the run -----------------------------------------------------------------------------


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit(root):
    try:
        return subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_run_record(path, record):
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


def command_text(flag_values):
    """The command line as given (for the run record), from the flags that were set."""
    parts = [command.PROG, NAME]
    for name in ("quick", "only", "output_dir", "data_dir", "repo_dir"):
        flag = flag_values[name]
        if flag.present:
            parts.append(f"--{name}" if flag.value is True else f"--no{name}" if flag.value is False else
                         f"--{name}={','.join(flag.value) if isinstance(flag.value, list) else flag.value}")
    return shlex.join(parts)


def run_steps(steps, root, output_dir, record, clock):
    """Runs every step in order, recording each in `record["steps"]` (`clock`: the run's start,
    perf_counter); writes the run record before the report step; returns the failed steps."""
    logs = output_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(steps))
    failed = []
    try:
        for name, kind, argv in steps:
            if kind == "report":  # the report reads the run record: write it first
                record.update(finished=utc_now(), seconds=round(time.perf_counter() - clock, 1),
                              load_average_at_end=list(os.getloadavg()))
                write_run_record(output_dir / RUN_RECORD_FILE, record)
            log_path = logs / f"{name}.log"
            progress.start(name)
            start = time.perf_counter()
            code = run_step(argv, root, log_path, progress.tick)
            seconds = time.perf_counter() - start
            step = {"name": name, "kind": kind, "status": "ok" if code == 0 else "failed", "exit_code": code,
                    "seconds": round(seconds, 1), "log": str(log_path.relative_to(output_dir)),
                    "error": None if code == 0 else last_message(log_path)}
            if kind != "report":
                record["steps"].append(step)
            if code == 0:
                progress.finish(f"{name}: ok in {seconds:.0f} s")
            else:
                failed.append(step)
                progress.finish(f"{name}: FAILED (exit {code}) after {seconds:.0f} s: {step['error']} "
                                f"(log: {log_path})")
    finally:
        progress.close()
    return failed


def execute(flag_values, args):
    del args
    root = find_checkout(flag_values["repo_dir"].value)
    benchmarks = select_benchmarks(available_benchmarks(root), flag_values["only"].value)
    output_dir = Path(flag_values["output_dir"].value or root / "benchmarks" / "results").expanduser().resolve()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CommandError(f"cannot create --output_dir {output_dir}: {e.strerror or e}") from e
    data_dir = flag_values["data_dir"].value
    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise UsageError(f"--data_dir {data_dir!r} is not a directory")
    quick = flag_values["quick"].value
    steps = plan_steps(root, benchmarks, quick, output_dir,
                       str(Path(data_dir).expanduser().resolve()) if data_dir else None)
    logging.info("Running %d benchmark(s) from %s into %s: %s", len(benchmarks), root, output_dir,
                 ", ".join(benchmarks))
    clock = time.perf_counter()
    record = {"command": command_text(flag_values), "quick": quick, "repository": str(root), "commit": git_commit(root),
              "python": sys.executable, "started": utc_now(), "load_average_at_start": list(os.getloadavg()),
              "steps": []}
    failed = run_steps(steps, root, output_dir, record, clock)

    report_failed = [step for step in failed if step["kind"] == "report"]
    failed_runs = [step for step in failed if step["kind"] != "report"]
    seconds = time.perf_counter() - clock
    report_path = output_dir / "REPORT.md"
    if report_failed:
        raise CommandError(f"the report could not be built: {report_failed[0]['error']} "
                           f"(log: {output_dir / report_failed[0]['log']})")
    sys.stdout.write(f"Ran {len(benchmarks)} benchmark(s) in {seconds / 60:.1f} min; wrote {report_path}.\n")
    sys.stdout.flush()
    if failed_runs:
        names = ", ".join(f"{step['name']} (exit {step['exit_code']})" for step in failed_runs)
        raise CommandError(f"{len(failed_runs)} of {len(steps) - 1} step(s) failed: {names}; their logs are in "
                           f"{output_dir / 'logs'} and the report says which")
    return command.EXIT_OK


def main(argv):
    return command.run_subcommand(sys.modules[__name__], argv)
