"""What `roberta-tf demo` prints: what the model is, one table of every artifact, example
sentences through each, and the commands that serve the SavedModel (matching
serving/docker-compose.yml, models.config and the Python client)."""

import json
import pathlib
import shlex
import textwrap

import roberta_tf.serving
from roberta_tf.contract import signatures as contract

MODEL_NAME = contract.DEFAULT_MODEL_NAME  # the clients' default = serving/models.config's model (a test holds them equal)
REST_URL = "http://localhost:8501"  # docker-compose.yml's default REST port
SERVING_DIR = pathlib.Path(roberta_tf.serving.__file__).resolve().parent
CURL_EXAMPLE = ["a gripping, beautifully acted film", "dull and far too long"]
WIDTH = 100  # prose lines wrap here; tables and commands stay whole (copy-pasteable)


def model_statement(result):
    """A plain statement of what was trained (and what it is not)."""
    record = result.training_record or {}
    trained = (f"trained from scratch on this machine on {record.get('train_size', 0):,} SST-2 train examples "
               f"in {record.get('train_seconds', 0):.0f} s")
    return (f"The model: a small RoBERTa ({result.recipe.describe()}), {trained}, with the real roberta-base "
            "tokenizer. It is NOT roberta-base (12 layers x 768, 125M parameters, pretrained on 160 GB of text; "
            "about 0.95 on SST-2 dev once fine-tuned): a few minutes of training on 2 CPU cores give about "
            f"{(record.get('dev') or {}).get('accuracy', float('nan')):.2f}. The export and serving steps are the same "
            "for any roberta_tf preset (roberta-tf convert makes one from roberta-base).")


def commands(output):
    """The commands to serve `output`'s SavedModel and call it: {name: command text}."""
    models_dir = pathlib.Path(output) / "models"
    compose = SERVING_DIR / "docker-compose.yml"
    where = (f"cd {shlex.quote(str(SERVING_DIR))}" if compose.is_file()
             else "cd serving   # docker-compose.yml and models.config are in a roberta-tf checkout's serving/")
    body = json.dumps({"instances": CURL_EXAMPLE})
    python = (f"from roberta_tf.serving.client import RestClient; "
              f"print(RestClient({REST_URL!r}).classify({CURL_EXAMPLE!r})['class_name'])")
    return {
        "serve": f"{where}\nROBERTA_TF_MODELS_DIR={shlex.quote(str(models_dir))} docker compose up -d\n"
                 "docker compose ps   # healthy once the model is loaded and warmed up",
        "curl": f"curl -s {REST_URL}/v1/models/{MODEL_NAME}:predict -d {shlex.quote(body)}",
        "python_client": _python_command(python),
        "stop": "docker compose down",
        "tflite_python": _python_command(
            f"from roberta_tf.lite import TextClassifier; "
            f"print(TextClassifier({str(pathlib.Path(output) / 'tflite' / 'sst2_dynamic.tflite')!r})"
            f".classify({CURL_EXAMPLE[:1]!r}).labels)"),
    }


def _python_command(code):
    """`python -c "code"` (readable: the code's own quotes are single) when nothing in it is
    special inside double quotes, else shell-quoted."""
    if any(c in code for c in '"$`\\!'):
        return f"python -c {shlex.quote(code)}"
    return f'python -c "{code}"'


def render(result):
    """The demo's printed report (a str ending in a newline)."""
    lines = [f"roberta-tf demo ({result.recipe.mode}): SST-2 sentiment, trained, exported and scored in {result.output}",
             "", *textwrap.wrap(model_statement(result), WIDTH)]
    if result.used_cache:
        lines += textwrap.wrap(f"Used the cached model {result.preset_cache} (roberta-tf demo --retrain trains it "
                               "again).", WIDTH)
    lines += ["", f"SST-2 dev ({result.dev_size} sentences), every artifact:", ""]
    lines += artifact_table(result)
    lines += ["", "Example sentences:"]
    lines += example_table(result)
    lines += ["", "Serve the SavedModel with TF Serving (Docker):"]
    command_texts = commands(result.output)
    lines += _indented(command_texts["serve"])
    lines += ["", "Call it with curl:"] + _indented(command_texts["curl"])
    lines += ["", "Call it with the Python client:"] + _indented(command_texts["python_client"])
    lines += ["", "Stop the server:"] + _indented(command_texts["stop"])
    lines += ["", "Run a TFLite model from Python (no TensorFlow needed):"] + _indented(command_texts["tflite_python"])
    steps = ", ".join(f"{name} {seconds:.0f} s (CPU {result.cpu_seconds[name]:.0f} s)"
                      for name, seconds in result.seconds.items())
    lines += ["", *textwrap.wrap(f"Times: {steps}.", WIDTH), f"Everything above is in {result.output / 'demo.json'}."]
    return "\n".join(lines) + "\n"


def artifact_table(result):
    """Artifact, path (relative to the output), size, accuracy, agreement, latency."""
    rows = [("artifact", "path", "MB", "accuracy", "agreement", "target", "batch-1 median ms")]
    for score in result.scores:
        target = "reference" if score.agreement_target is None else (
            f">= {score.agreement_target:.3f} {'met' if score.meets_target else 'NOT MET'}")
        agreement = "1 (itself)" if score.agreement_target is None else (
            f"{score.agreement:.4f}" + (f" ({score.disagreements} differ)" if score.disagreements else ""))
        rows.append((score.name, _relative(score.path, result.output), f"{score.size_bytes / 1e6:.1f}",
                     f"{score.accuracy:.4f}", agreement, target, f"{score.median_ms:.2f}"))
    return _table(rows, align_right={2, 3, 6})


def example_table(result):
    """Each example sentence, then one row per artifact: its label and that label's probability."""
    lines = [f"  [{i}] {text}" for i, text in enumerate(result.example_texts, start=1)]
    rows = [("artifact", *(f"[{i}]" for i in range(1, len(result.example_texts) + 1)))]
    for score in result.scores:
        rows.append((score.name, *(f"{label} {probability:.2f}" for label, probability in score.examples)))
    return lines + [""] + _table(rows)


def _table(rows, align_right=()):
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.rjust(width) if column in align_right else cell.ljust(width)
                 for column, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * width for width in widths))
    return lines


def _relative(path, root):
    try:
        return pathlib.Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _indented(text):
    return ["  " + line for line in text.splitlines()]
