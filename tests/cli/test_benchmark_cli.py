"""`roberta-tf benchmark` and the report builder (`benchmarks/make_report.py`), cheaply.

No real benchmark runs here. The report builder gets small synthetic results in the shape the
benchmarks write (the fields it reads); the command runs a fake checkout whose benchmarks/
holds the real report modules (copied) and two tiny benchmarks, one of which fails.
"""

import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from roberta_tf.cli import benchmark

from conftest import REPO


@pytest.fixture
def make_report(monkeypatch):
    """benchmarks/make_report.py of this checkout (benchmarks/ is not installed: it is imported
    from the repository root)."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import make_report

    return make_report


def has_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def now(offset_seconds=0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="seconds")


def machine(**extra):
    return {"date": now(), "cpu_count": 2, "cpu_model": "Test CPU 9000", "cpu_flags": ["avx2", "avx512f", "amx_tile"],
            "platform": "Linux-test", "python": "3.11.7", "load_average_at_start": [0.25, 0, 0],
            "load_average_at_end": [0.5, 0, 0], "packages": {"tensorflow": "2.21.0", "torch": None},
            "roberta_tf_commit": "abc1234", "tf_threads": {"intra_op": 0, "inter_op": 0}, **extra}


def target(what, value, op, bound, met, **context):
    return {**context, "what": what, "value": value, "target": f"{op} {bound}", "met": met}


def synthetic_results():
    """One small record per benchmark with the fields the report reads."""
    tokenizer = {
        "machine": machine(rayon_num_threads="1"), "config": {"quick": True},
        "datasets": {"sst2": {"num_texts": 10}},
        "measurements": [
            {"engine": "roberta_tf graph b32", "dataset": "sst2", "status": "ok", "batch_size": 32, "num_texts": 10,
             "mismatches": 0, "texts_per_s": 5000.0, "tokens_per_s": 90000.0, "ms_per_text": 0.2,
             "x_tokenizers": 0.625, "x_keras_hub": 2.5, "other_load_cores": 0.1},
            {"engine": "tokenizers encode_batch", "dataset": "sst2", "status": "ok", "batch_size": 256,
             "num_texts": 10, "mismatches": 0, "texts_per_s": 8000.0, "tokens_per_s": 150000.0, "ms_per_text": 0.125,
             "x_tokenizers": 1.0, "x_keras_hub": 4.0},
            {"engine": "keras-hub graph", "dataset": "sst2", "status": "not installed", "batch_size": 32,
             "reason": "No module named 'keras_hub'"},
        ],
        "targets": [target("x tokenizers encode_batch", 0.625, ">=", 0.5, True, engine="roberta_tf graph b32",
                           dataset="sst2"),
                    target("x keras-hub graph", 1.5, ">=", 2, False, engine="roberta_tf graph b32", dataset="sst2")],
        "total_seconds": 12.0,
    }
    model = {
        "machine": machine(threads=2), "config": {"quick": True, "geometry_name": "tiny",
                                                  "geometry": {"num_layers": 2, "hidden_dim": 128},
                                                  "reference_engine": "onnxruntime"},
        "matmul_peak_gflop_per_s": {"peak_tf_matmul": 400.0},
        "measurements": [
            {"engine": engine, "case": f"b1 s{length}", "batch": 1, "length": length, "status": "ok",
             "median_ms": ms * length / 16, "p90_ms": ms * length / 14, "sequences_per_s": 1000 / ms,
             "gflop_per_s": 10.0, "percent_of_peak": 2.5, "x_onnxruntime": ms / 0.5, "x_fastest": ms / 0.5}
            for length in (16, 64) for engine, ms in (("roberta_tf", 1.25), ("onnxruntime", 0.5))
        ],
        "total_seconds": 30.0,
    }
    tflite = {
        "machine": machine(threads=2), "config": {"quick": True},
        "part1": {"status": "ok", "sentences": 96, "geometry": {"num_layers": 4, "hidden_dim": 256}, "engines": [
            {"engine": "TFLite float32", "status": "ok", "bytes": 70e6, "size_vs_float32": 1.0, "accuracy": 0.8125,
             "accuracy_minus_float32_points": 0.0, "label_agreement": 1.0, "median_ms": 1.6, "p90_ms": 1.9,
             "ratios": {"median_vs_ort_fp32": 1.14}},
            {"engine": "TFLite int8", "status": "ok", "bytes": 22e6, "size_vs_float32": 0.314, "accuracy": 0.8021,
             "accuracy_minus_float32_points": -1.04, "label_agreement": 0.98, "median_ms": 0.8, "p90_ms": 0.9,
             "ratios": {"median_vs_ort_int8": 1.38}},
            {"engine": "tokenizers + ORT fp32", "status": "ok", "bytes": 68e6, "accuracy": 0.8125, "median_ms": 1.4,
             "p90_ms": 1.6, "ratios": {"median_vs_ort_fp32": 1.0}},
        ]},
        "part2": {"status": "ok", "geometry_name": "tiny", "geometry": {"num_layers": 2, "hidden_dim": 128},
                  "lengths": [16, 128], "engines": [
                      {"engine": engine, "length": length, "status": "ok", "median_ms": ms * length / 16,
                       "p90_ms": ms * length / 15, "ratios": {"median_vs_ort_fp32": ms / 0.4}}
                      for length in (16, 128) for engine, ms in (("TFLite dynamic", 0.3), ("ORT fp32", 0.4))]},
        "targets": [target("|accuracy - float32's| (points)", 1.04, "<=", 1, False, engine="TFLite int8",
                           case="SST-2 dev"),
                    target("b1 median latency / ORT fp32's", 0.75, "<=", 1, True, engine="TFLite dynamic",
                           case="tiny x16", binding=False)],
        "total_seconds": 100.0,
    }
    adversarial = {
        "machine": machine(), "config": {"quick": True},
        "rows": [{"input": "lowercase 5 kB", "num_bytes": 5000, "num_texts": 1, "not_available": [],
                  "seconds": {"served tokenize": 0.01, "tokenizers": 0.02}, "keras_vs_tokenizers": 1.9,
                  "other_load_cores": 0.0, "ids": {"tokenize": {"status": "ok"}, "tokenizers": {"status": "ok"}}},
                 {"input": "invalid UTF-8 5 kB", "num_bytes": 5000, "num_texts": 1, "not_available": ["tokenizers"],
                  "seconds": {"served tokenize": 1.5}, "keras_vs_tokenizers": None, "other_load_cores": 0.0,
                  "ids": {"tokenize": {"status": "ok"}}}],
        "targets": [target("s per request", 1.5, "<=", 1, False, engine="served tokenize",
                           input="invalid UTF-8 5 kB")],
        "total_seconds": 20.0,
    }
    return {"tokenizer_benchmark": tokenizer, "model_benchmark": model, "tflite_benchmark": tflite,
            "adversarial_benchmark": adversarial}


def write_results(directory, results):
    for name, record in results.items():
        (directory / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")


def test_report_from_synthetic_results(tmp_path, make_report):
    write_results(tmp_path, synthetic_results())
    path, plots, errors = make_report.build_report(tmp_path, plots=True)
    text = path.read_text(encoding="utf-8")

    assert errors == [] and path == tmp_path / "REPORT.md"
    assert "**Quick run**" in text
    # The header: CPU model and flags (the absent ones named), commit, threads, load, packages.
    assert "CPU Test CPU 9000, 2 logical CPUs; flags: avx2, avx512f, amx_tile (no avx512_vnni, avx512_bf16)" in text
    assert "| model_benchmark | ok |" in text and "abc1234" in text and "2 per engine" in text
    assert "0.25 -> 0.50; others 0.10 mean / 0.10 max cores" in text  # the tokenizer's load
    assert "| tensorflow | 2.21.0 |" in text and "| torch | not installed |" in text
    # Tables with the ratios the JSON holds, a row that did not run, targets met and missed.
    assert "| roberta_tf graph b32 | sst2 | 32 | 5,000 | 90,000 | 0.200 | 0/10 | 0.625 | 2.5 |" in text
    assert "| keras-hub graph | sst2 | 32 | not installed: No module named 'keras_hub' |" in text
    assert "| b1 s64 | roberta_tf | 5 | 5.71 | 800.0 | 10.0 | 2.5 | 2.50 | 2.50 |" in text
    assert "| TFLite int8 | 22.00 | 31.4 | 0.8021 | -1.04 | 0.9800 | 0.8 | 0.9 | - | - | 1.38 |" in text
    assert "| invalid UTF-8 5 kB | 5,000 | 1 | 1.5 | n/a | - | 0.00 | ok/-/- |" in text
    assert "Targets: 1 met, 1 not met." in text
    assert "Targets: 0 met, 1 not met (+ 1 informative)." in text
    assert "| roberta_tf graph b32 sst2 | x keras-hub graph | 1.5 | >= 2 | **NOT MET** |" in text
    assert "| [tflite_benchmark](#tflite_benchmark) | 0 | 1 | 0 | 1 |" in text

    if not has_matplotlib():
        assert plots.written == {}
        assert "not drawn: matplotlib is not installed" in text
        return
    for key, name in make_report.PLOT_FILES.items():
        assert f"]({name})" in text, key  # referenced with a path relative to REPORT.md
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_names_failed_steps_and_hides_stale_results(tmp_path, make_report):
    results = synthetic_results()
    results["model_benchmark"]["machine"]["date"] = now(-3600)  # from an earlier run
    write_results(tmp_path, {"model_benchmark": results["model_benchmark"],
                             "tokenizer_benchmark": results["tokenizer_benchmark"]})
    run = {"command": "roberta-tf benchmark --quick", "started": now(-60), "seconds": 61.0, "commit": "abc1234",
           "steps": [{"name": "tokenizer_benchmark", "kind": "benchmark", "status": "ok", "exit_code": 0,
                      "seconds": 12.0, "log": "logs/tokenizer_benchmark.log"},
                     {"name": "model_benchmark", "kind": "benchmark", "status": "failed", "exit_code": 1,
                      "seconds": 3.0, "log": "logs/model_benchmark.log", "error": "RuntimeError: no ONNX"}]}
    (tmp_path / make_report.RUN_RECORD_FILE).write_text(json.dumps(run), encoding="utf-8")
    path, _, errors = make_report.build_report(tmp_path, plots=False)
    text = path.read_text(encoding="utf-8")

    assert errors == []
    assert "Made by `roberta-tf benchmark --quick` (1 min 01 s" in text
    assert "| model_benchmark | **failed** (exit 1) |" in text
    assert "`model_benchmark` failed (exit 1) after 3 s: RuntimeError: no ONNX (log: `logs/model_benchmark.log`" in text
    assert "is not shown as a result of this one" in text
    assert "| b1 s16 | roberta_tf |" not in text  # the stale table is not in the report
    assert "| roberta_tf graph b32 | sst2 |" in text


def test_report_without_results_is_an_error(tmp_path, make_report):
    with pytest.raises(make_report.ReportError, match="no benchmark results"):
        make_report.build_report(tmp_path)


def test_run_record_name_is_shared(make_report):
    assert benchmark.RUN_RECORD_FILE == make_report.RUN_RECORD_FILE


# ----------------------------------------------------------------------------- the command


def entry_point():
    script = Path(sys.executable).with_name("roberta-tf")
    return str(script) if script.exists() else shutil.which("roberta-tf")


def test_help_through_the_installed_entry_point():
    script = entry_point()
    if script is None:
        pytest.skip("the roberta-tf console script is not installed")
    result = subprocess.run([script, "benchmark", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: roberta-tf benchmark [flags]")
    for flag in ("--[no]quick", "--output_dir", "--only", "--data_dir"):
        assert flag in result.stdout


def run_cli(capsys, *args):
    capsys.readouterr()
    code = benchmark.main(["roberta-tf benchmark", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_checkout_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "installed_checkout", lambda: tmp_path)  # as a wheel: no benchmarks/ beside it
    code, _, err = run_cli(capsys, "--quick")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("roberta-tf benchmark: error: no benchmarks/ package in ")
    assert "source checkout" in err


GOOD_BENCHMARK = '''
    import datetime, json, sys
    from pathlib import Path
    flags = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    print("measuring...")
    machine = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "cpu_count": 2, "cpu_model": "Fake CPU", "cpu_flags": ["avx2"], "packages": {}}
    record = {"machine": machine, "config": {"quick": "--quick" in sys.argv, "argv": sys.argv[1:]},
              "targets": [{"engine": "fake", "what": "speed", "value": 2.0, "target": ">= 1", "met": True}],
              "total_seconds": 0.1}
    Path(flags["--output_dir"], "good_benchmark.json").write_text(json.dumps(record))
'''
BROKEN_BENCHMARK = '''
    import sys
    print("starting")
    raise SystemExit("RuntimeError: the fake benchmark broke")
'''


@pytest.fixture
def fake_checkout(tmp_path):
    """A checkout whose benchmarks/ has this repository's report modules and two tiny
    benchmarks: `good` writes a result, `broken` fails."""
    root = tmp_path / "checkout"
    package = root / "benchmarks"
    package.mkdir(parents=True)
    for name in ("__init__.py", "report.py", "make_report.py"):
        shutil.copy(REPO / "benchmarks" / name, package / name)
    (package / "good_benchmark.py").write_text(textwrap.dedent(GOOD_BENCHMARK))
    (package / "broken_benchmark.py").write_text(textwrap.dedent(BROKEN_BENCHMARK))
    return root


def test_unknown_only_name_is_a_usage_error(fake_checkout, capsys):
    code, _, err = run_cli(capsys, "--repo_dir", fake_checkout, "--only", "good,nope")
    assert code == 2
    assert err.count("\n") == 1
    assert "unknown --only benchmark 'nope'; choose from broken, good" in err


def test_a_failing_benchmark_is_reported_and_exits_1(fake_checkout, tmp_path, capsys):
    output = tmp_path / "results"
    code, out, err = run_cli(capsys, "--repo_dir", fake_checkout, "--quick", "--output_dir", output)

    assert code == 1
    assert err.splitlines()[-1] == (f"roberta-tf benchmark: error: 1 of 2 step(s) failed: broken_benchmark (exit 1); "
                                    f"their logs are in {output / 'logs'} and the report says which")
    # Not a terminal: one plain line per step, the failure with its message and log.
    assert "[1/3] broken_benchmark ..." in err
    assert "broken_benchmark: FAILED (exit 1) after" in err and "RuntimeError: the fake benchmark broke" in err
    assert "[3/3] make_report: ok in" in err
    assert f"wrote {output / 'REPORT.md'}" in out
    # The good one ran with --quick and the output directory, from the checkout, despite the failure.
    good = json.loads((output / "good_benchmark.json").read_text())
    assert good["config"]["argv"] == ["--quick", f"--output_dir={output}"]
    assert "measuring..." in (output / "logs" / "good_benchmark.log").read_text()
    run = json.loads((output / benchmark.RUN_RECORD_FILE).read_text())
    assert run["command"] == f"roberta-tf benchmark --quick --output_dir={output} --repo_dir={fake_checkout}"
    assert [(s["name"], s["status"], s["exit_code"]) for s in run["steps"]] == [
        ("broken_benchmark", "failed", 1), ("good_benchmark", "ok", 0)]
    report = (output / "REPORT.md").read_text()
    assert "| broken_benchmark | **failed** (exit 1), no JSON |" in report
    assert "RuntimeError: the fake benchmark broke (log: `logs/broken_benchmark.log`" in report
    assert "| good_benchmark | ok |" in report


def test_the_classifier_is_prepared_only_for_the_benchmarks_that_use_it(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "sst2_classifier.py").write_text("")
    names = [name for name, _, _ in benchmark.plan_steps(tmp_path, ["model_benchmark"], True, tmp_path, None)]
    assert names == ["model_benchmark", "make_report"]
    steps = benchmark.plan_steps(tmp_path, ["model_benchmark", "tflite_benchmark"], False, tmp_path, "/data")
    assert [name for name, _, _ in steps] == ["sst2_classifier", "model_benchmark", "tflite_benchmark", "make_report"]
    assert steps[1][2][1:] == ["-m", "benchmarks.model_benchmark", f"--output_dir={tmp_path}", "--data_dir=/data",
                               "--undefok=data_dir"]
    assert os.path.basename(steps[0][2][0]).startswith("python")
