"""`roberta-tf evaluate`: accuracy, macro-F1, per-class precision/recall and the confusion matrix
of any artifact on a labelled TSV file.

    roberta-tf evaluate --model models/sst2 --input sst2/dev.tsv --text_column 0 --label_column 1 --skip_header
    roberta-tf evaluate --model sst2_int8.tflite --input dev.tsv --text_column 0 --label_column 1 \\
        --skip_header --json > report.json
"""

import json
import sys
import time

import numpy as np
from absl import flags

from roberta_tf.cli import command, predict, textio
from roberta_tf.cli.command import CommandError, UsageError

NAME = "evaluate"
USES_TENSORFLOW = False  # imported in `execute` once the cheap checks pass
SUMMARY = "Score a preset, a SavedModel or a .tflite model on a labelled TSV file (accuracy, macro-F1, per class)."
DESCRIPTION = """
Reads --input as TSV: the text in --text_column (default 0; with --pair_column, pairs), the
gold label in --label_column, as a label name of the model ("positive") or a class id ("1").
Prints a table (accuracy, macro-F1, per-class precision / recall / F1 / support, confusion
matrix with true classes as rows), or the same as JSON with --json; --output also writes the
JSON to a file.
"""


def define_flags(fv):
    flags.DEFINE_string("model", None, "The artifact: a preset, a SavedModel (version or base directory) or a .tflite.",
                        flag_values=fv)
    predict.define_input_flags(fv)
    fv.set_default("text_column", 0)
    flags.DEFINE_integer("label_column", None, "The TSV column (0-based) of the gold label: a label name or a class id.",
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_bool("json", False, "Print the report as JSON instead of a table.", flag_values=fv)
    flags.DEFINE_string("output", None, "Also write the JSON report to this file.", flag_values=fv)


def label_parser(label_names, source_name):
    """A function (line_number, label bytes) -> class id, accepting label names and class ids."""
    by_name = {name: i for i, name in enumerate(label_names)}

    def parse(line_number, value):
        text = value.decode("utf-8", errors="replace").strip()
        if text in by_name:
            return by_name[text]
        if text.isdigit() and int(text) < len(label_names):
            return int(text)
        raise CommandError(f"{source_name}:{line_number}: label {text!r} is neither a label of the model "
                           f"{label_names} nor a class id below {len(label_names)} (a header? use --skip_header)")

    return parse


def evaluate_stream(predictor, lines, columns, label_column, skip_header=False, batch_size=64,
                    source_name="<input>", columns_description=None):
    """(true ids, predicted ids) over binary TSV `lines`, classified batch by batch."""
    parse_label = label_parser(predictor.label_names, source_name)
    records = textio.read_records(lines, (*columns, label_column), skip_header, source_name, columns_description)
    true_ids, predicted_ids = [], []
    for batch in textio.batches(records, batch_size):
        true_ids += [parse_label(line_number, fields[-1]) for line_number, fields in batch]
        segments = [list(texts) for texts in zip(*(fields[:-1] for _, fields in batch))]
        predicted_ids += predict.classify_segments(predictor, segments).class_ids.tolist()
    return np.array(true_ids, np.int64), np.array(predicted_ids, np.int64)


def format_report(report):
    """The report as an aligned text table."""
    labels = report["confusion_matrix"]["labels"]
    width = max([len("class"), *map(len, labels)])
    lines = [
        f"examples  {report['examples']}",
        f"accuracy  {report['accuracy']:.4f}",
        f"macro-F1  {report['macro_f1']:.4f}",
        "",
        f"{'class':<{width}}  precision  recall      F1  support",
    ]
    for row in report["per_class"]:
        lines.append(f"{row['label']:<{width}}  {row['precision']:>9.4f}  {row['recall']:>6.4f}  "
                     f"{row['f1']:>6.4f}  {row['support']:>7d}")
    matrix = report["confusion_matrix"]["rows_true_columns_predicted"]
    cell = max([len(str(v)) for row in matrix for v in row] + [len(name) for name in labels])
    lines += ["", "confusion matrix (rows: true class, columns: predicted class)",
              f"{'':<{width}}  " + "  ".join(f"{name:>{cell}}" for name in labels)]
    for name, row in zip(labels, matrix):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def execute(fv, args):
    del args  # none accepted
    from roberta_tf.utils import metrics

    command.require(fv, "model", "label_column")
    columns = predict.text_columns(fv)
    if fv.label_column in columns:
        raise UsageError("--label_column must differ from the text columns")
    textio.check_input_output(fv.input, fv.output or "-")
    predictor = predict.load_predictor(fv, predict.locate_model(fv))
    started = time.perf_counter()
    input_stream = textio.Stream(fv.input, "rb")
    with input_stream as lines, predict.input_progress(fv, "Evaluating") as bar:
        true_ids, predicted_ids = evaluate_stream(
            predictor, textio.counted(lines, bar), columns, fv.label_column, fv.skip_header, fv.batch_size, input_stream.name,
            predict.columns_flag(fv, f"--label_column={fv.label_column}"))
    if not len(true_ids):
        raise CommandError(f"{input_stream.name}: no examples to evaluate")
    report = {"model": predictor.path, "kind": predictor.kind, "input": input_stream.name,
              **metrics.classification_report(true_ids, predicted_ids, predictor.label_names),
              "seconds": round(time.perf_counter() - started, 3)}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if fv.output:
        with textio.Stream(fv.output, "w") as output:
            output.write(text + "\n")
    print(text if fv.json else format_report(report))
    return command.EXIT_OK


def main(argv):
    """Runs `roberta-tf evaluate` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
