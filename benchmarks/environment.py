"""What every benchmark records about where it ran: machine, packages, commit, TF threads."""

import importlib.metadata
import json
import os
import pathlib
import platform
import statistics
import subprocess

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


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


def git_commit():
    try:
        return subprocess.run(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info(packages, **extra):
    """The common record (call after TF's thread settings are applied), plus `extra` keys."""
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "packages": package_versions(packages),
        "roberta_tf_commit": git_commit(),
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        **extra,
    }


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


def format_value(value, spec):
    """A table cell: `-` for a missing value."""
    return "-" if value is None else format(value, spec)


def write_json(path, report):
    """Writes a benchmark's JSON result (UTF-8, indented; non-JSON values as strings)."""
    pathlib.Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def load_summary(info, threads, other_loads):
    """One line on the machine and how quiet it was: CPUs, threads per engine, load averages
    and the cores other processes used during the measurements (`other_loads`)."""
    other_loads = [load for load in other_loads if load is not None]
    return (
        f"{info['cpu_count']} CPUs ({info['cpu_model']}), {threads} threads per engine; load average "
        f"{info['load_average_at_start'][0]:.2f} at start / {info['load_average_at_end'][0]:.2f} at end; other "
        f"processes used {max(other_loads, default=0):.2f} cores at most during a measurement "
        f"(mean {statistics.mean(other_loads) if other_loads else 0:.2f})."
    )
