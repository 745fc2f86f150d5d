"""What every benchmark records and prints, written once: the machine record (CPU, packages,
commit, load), the CPU other processes take while measuring, tables, targets, the JSON file
and the plots."""

import dataclasses
import datetime
import importlib.metadata
import json
import operator
import os
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np

from benchmarks import REPO_ROOT

# ----------------------------------------------------------------------------- the machine


def package_versions(names):
    """`{distribution name: version or None}`."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The CPU features the engines' kernels choose between (oneDNN, XNNPACK, MLAS, MKL): vector
# width, int8 dot products (VNNI) and bfloat16 / AMX matrix units. Recorded because a number
# measured on one of these machines does not carry over to a CPU without the feature.
CPU_FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
                         "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def cpu_flags():
    """The `CPU_FLAGS_OF_INTEREST` the CPU has (from /proc/cpuinfo; None where it is missing)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]
    except OSError:
        pass
    return None


def utc_now():
    """The current time, ISO 8601 in UTC to the second (the date every record carries)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit():
    try:
        return subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def top_processes(limit=5):
    """The busiest other processes (top's second sample, 0.5 s), for the load record."""
    try:
        out = subprocess.run(["top", "-bn2", "-d", "0.5", "-o", "%CPU", "-w", "512", "-c"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.splitlines()
    headers = [i for i, line in enumerate(lines) if line.lstrip().startswith("PID")]
    if not headers:
        return None
    busy = []
    for line in lines[headers[-1] + 1:]:
        fields = line.split(None, 11)
        if len(fields) < 12 or fields[0] == str(os.getpid()):
            continue
        try:
            cpu = float(fields[8].replace(",", "."))
        except ValueError:
            continue
        if cpu > 0:
            busy.append({"pid": int(fields[0]), "cpu_percent": cpu, "command": fields[11][:160]})
    return busy[:limit]


def machine_info(packages, **extra):
    """The record of where and how a run starts (call after TF's thread settings are applied):
    CPU, platform, package versions, commit, TF threads, load average and the busiest
    processes; plus `extra` keys. `finish` adds the same load record at the end."""
    import tensorflow as tf
    from absl import logging

    info = {
        "date": utc_now(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "top_processes_at_start": top_processes(),
        "packages": package_versions(packages),
        "roberta_tf_commit": git_commit(),
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        **extra,
    }
    logging.info("Load average %.2f at start; busiest processes: %s", info["load_average_at_start"][0],
                 info["top_processes_at_start"])
    return info


def finish(info):
    """Adds the load average and the busiest processes at the end of the run to `info`."""
    info["load_average_at_end"] = os.getloadavg()
    info["top_processes_at_end"] = top_processes()
    return info


class LoadMeter:
    """CPU-seconds used by OTHER processes while measuring: busy time of the whole machine
    (/proc/stat) minus this process's CPU time (with `children=True` plus that of its finished
    child processes, for measurements run in subprocesses). Divided by the wall time: cores
    taken by others on average (None where /proc/stat is missing). Also the hypervisor's steal
    time (cores' worth of time the VM wanted to run but the host ran something else).

        with LoadMeter() as load:
            ...  # the measurement
        load.other_cores, load.steal_cores, load.own_cores, load.own_seconds, load.seconds
    """

    def __init__(self, children=False):
        self.children = children
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _stat(self):
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None, None
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        steal = values[7] if len(values) > 7 else 0
        guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
        return (sum(values) - idle - steal - guest) / self.ticks, steal / self.ticks

    def _own(self):
        own = time.process_time()
        if self.children:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            own += usage.ru_utime + usage.ru_stime
        return own

    def __enter__(self):
        self.start = (*self._stat(), self._own(), time.perf_counter())
        return self

    def __exit__(self, *exc):
        busy, steal = self._stat()
        own, wall = self._own(), time.perf_counter()
        self.seconds = max(wall - self.start[3], 1e-9)
        self.own_seconds = own - self.start[2]
        self.own_cores = self.own_seconds / self.seconds
        if busy is None or self.start[0] is None:
            self.other_cores = self.steal_cores = None
        else:
            self.other_cores = max(0.0, (busy - self.start[0]) - self.own_seconds) / self.seconds
            self.steal_cores = (steal - self.start[1]) / self.seconds


def load_summary(info, threads=None, other_loads=None):
    """One line on the machine and how quiet it was: CPUs, threads per engine, load averages
    and (given `other_loads`, LoadMeter's `other_cores` per measurement) the cores other
    processes used during the measurements."""
    line = f"{info['cpu_count']} CPUs ({info['cpu_model']}), {info['platform']}"
    if threads:
        line += f", {threads} threads per engine"
    line += (f"; load average {info['load_average_at_start'][0]:.2f} at start / "
             f"{info['load_average_at_end'][0]:.2f} at end")
    if other_loads is not None:
        loads = [load for load in other_loads if load is not None]
        line += (f"; other processes used {max(loads, default=0):.2f} cores at most during a measurement "
                 f"(mean {statistics.mean(loads) if loads else 0:.2f})")
    return line + "."


# ----------------------------------------------------------------------------- numbers and tables


def format_value(value, spec=""):
    """A table cell: `-` for a missing value."""
    return "-" if value is None else format(value, spec)


def time_passes(run, inputs, min_seconds, min_repeats, max_seconds):
    """Seconds of each timed pass of `run` over all `inputs`: repeated until `min_seconds` have
    elapsed and `min_repeats` passes ran, but no new pass starts after `max_seconds` (one always runs)."""
    times = []
    start = time.perf_counter()
    while not times or (
        time.perf_counter() - start < max_seconds
        and (len(times) < min_repeats or time.perf_counter() - start < min_seconds)
    ):
        pass_start = time.perf_counter()
        for x in inputs:
            run(x)
        times.append(time.perf_counter() - pass_start)
    return times


def id_mismatches(ids, reference_ids, texts, max_examples=3, max_ids=64):
    """(how many texts' ids differ from the reference, the first `max_examples` of them with
    their text and first `max_ids` ids)."""
    bad = [i for i, (got, want) in enumerate(zip(ids, reference_ids, strict=True)) if got != want]
    examples = [
        {"index": i, "text": texts[i][:200], "ids": ids[i][:max_ids], "reference_ids": reference_ids[i][:max_ids]}
        for i in bad[:max_examples]
    ]
    return len(bad), examples


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


@dataclasses.dataclass(frozen=True)
class Column:
    """A table column: its title and width, the cell's value (a key of the row, a tuple of keys
    into nested dicts, or a function of the row) and format spec (`-` where the value is
    None or missing); `align` "<" for text."""

    title: str
    width: int
    value: Union[str, tuple, Callable[[dict], Any]]
    spec: str = ""
    align: str = ">"

    def header(self):
        return format(self.title, f"{self.align}{self.width}")

    def cell(self, row):
        if callable(self.value):
            value = self.value(row)
        else:
            value = row
            for key in self.value if isinstance(self.value, tuple) else (self.value,):
                value = value.get(key) if isinstance(value, dict) else None
        return format(format_value(value, self.spec), f"{self.align}{self.width}")


SEPARATOR = Column("|", 1, lambda row: "|")  # a vertical rule between groups of columns


def format_table(columns, rows, keys=1, group_by=None):
    """The header, a rule and one line per row. A row whose "status" is not "ok" shows its first
    `keys` cells, then its status and reason. `group_by`: a row key; a blank line separates
    rows where its value changes."""
    header = " ".join(column.header() for column in columns)
    lines = [header, "-" * len(header)]
    previous = None
    for row in rows:
        if group_by is not None:
            if previous is not None and row[group_by] != previous:
                lines.append("")
            previous = row[group_by]
        if row.get("status", "ok") == "ok":
            lines.append(" ".join(column.cell(row) for column in columns))
        else:
            status = row["status"] + (f": {row['reason'][:90]}" if row.get("reason") else "")
            lines.append(" ".join([*(column.cell(row) for column in columns[:keys]), status]))
    return "\n".join(lines)


def markdown_table(columns, rows, keys=1):
    """`format_table`'s table in Markdown (GitHub pipes): the same columns, cells and "-" for a
    missing value; SEPARATOR columns are dropped (Markdown has no vertical rules) and a row
    whose "status" is not "ok" shows its first `keys` cells, then its status and reason."""
    columns = [column for column in columns if column is not SEPARATOR]

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [line(column.title for column in columns),
             "|" + "|".join("---:" if column.align == ">" else ":---" for column in columns) + "|"]
    for row in rows:
        if row.get("status", "ok") == "ok":
            lines.append(line(column.cell(row).strip() for column in columns))
        else:
            status = row["status"] + (f": {row['reason'][:120]}" if row.get("reason") else "")
            cells = [column.cell(row).strip() for column in columns[:keys]]
            lines.append(line(cells + [status] + [""] * (len(columns) - keys - 1)))
    return "\n".join(lines)


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def target(what, value, op, bound, **context):
    """A performance target: met when `value op bound` (None without a value). `context` says
    whose it is (engine, dataset; `binding=False` marks an informative one)."""
    met = None if value is None else bool(_OPERATORS[op](value, bound))
    return {**context, "what": what, "value": value, "target": f"{op} {bound:g}", "met": met}


def format_targets(title, targets, label_keys=("engine",), missing="n/a"):
    """`title`, then per target its label (`label_keys` of it), value, bound and MET / NOT MET
    (`missing` without a value)."""
    labels = [" ".join(str(t[key]) for key in label_keys) for t in targets]
    label_width = max(map(len, labels), default=0)
    what_width = max((len(t["what"]) for t in targets), default=0)
    lines = [title]
    for label, t in zip(labels, targets):
        verdict = {True: "MET", False: "NOT MET", None: missing}[t["met"]]
        tag = " (informative)" if t.get("binding") is False else ""
        lines.append(f"  {label:<{label_width}} {t['what']:<{what_width}} {format_value(t['value'], '.3f'):>8} "
                     f"(target {t['target']}): {verdict}{tag}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- files


def write_json(path, record):
    """Writes a benchmark's JSON result (UTF-8, indented; non-JSON values as strings)."""
    Path(path).write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def save(output_dir, name, record, plot=None):
    """Writes `record` to OUTPUT_DIR/NAME.json and, with `plot(path)`, the plot NAME.png;
    returns the "Wrote ..." line (seconds from `record["total_seconds"]`)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / f"{name}.json"
    write_json(json_path, record)
    plot_path = plot(output_dir / f"{name}.png") if plot is not None else None
    return (f"Wrote {json_path}" + (f" and {plot_path}" if plot_path else "") +
            f" in {record['total_seconds']:.0f} s.")


# ----------------------------------------------------------------------------- plots


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None (logged) when matplotlib is
    not installed: the benchmarks then skip their plot and still write the table and JSON."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from absl import logging

        logging.info("matplotlib is not installed: skipping the plot.")
        return None
    return plt


def plot(path, draw, nrows=1, ncols=1, **subplots):
    """A figure of `nrows` x `ncols` axes (`plt.subplots` arguments), drawn by `draw(fig, axes)`
    and saved to `path` (PNG, 120 dpi). Returns `path`, or None without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(nrows, ncols, **subplots)
    try:
        draw(fig, axes)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def grouped_bars(ax, groups, series, value, width=0.8, labels="%.0f", fontsize=7, ticks=None, **bar_label):
    """One bar per group and series, the series side by side around each group's tick (one
    legend entry per series). `value(group, series)` gives the height (None: 0); `labels` is
    the bar labels' format (a %-format, a function of the value, or None for no labels);
    `ticks`: keyword arguments of the group tick labels (rotation, ha, fontsize)."""
    step = width / len(series)
    for s, name in enumerate(series):
        offset = (s - (len(series) - 1) / 2) * step
        values = [value(group, name) or 0 for group in groups]
        bars = ax.bar([g + offset for g in range(len(groups))], values, step, label=name)
        if callable(labels):
            ax.bar_label(bars, [labels(v) for v in values], fontsize=fontsize, **bar_label)
        elif labels:
            ax.bar_label(bars, fmt=labels, fontsize=fontsize, **bar_label)
    ax.set_xticks(range(len(groups)), groups, **(ticks or {}))
