"""`roberta-tf predict`: classify lines of text (or TSV columns) with any artifact; JSON lines out.

    roberta-tf predict --model models/sst2 < texts.txt > predictions.jsonl
    roberta-tf predict --model sst2_int8.tflite --input dev.tsv --text_column 0 --skip_header
    roberta-tf predict --model preset/ --input pairs.tsv --text_column 0 --pair_column 1 --with_token_ids

Streams: lines are read one at a time and classified --batch_size at a time, and every batch
is written (and flushed) before the next is read, so memory stays flat on any input size.
"""

import json
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command, textio
from roberta_tf.cli.command import UsageError

NAME = "predict"
USES_TENSORFLOW = False  # imported in `execute` once the cheap checks pass
SUMMARY = "Classify lines of text (or TSV columns) with a preset, a SavedModel or a .tflite model; JSON lines out."
DESCRIPTION = """
--model is any artifact: a preset directory (or a named preset / Hugging Face directory), a
SavedModel version directory or its base directory (the highest version, as TF Serving serves
it), or a .tflite model from `roberta-tf export tflite` (UTF-8 byte inputs).

Each input line gives one output line, in order:
  {"label": "positive", "class_id": 1, "probabilities": [0.03, 0.97]}
(probabilities in class-id order; with --with_token_ids also "token_ids", the packed ids the
model saw: presets and SavedModels only). Lines are bytes: text that is not valid UTF-8 reaches
the model as it is (the tokenizer maps every byte). "\\n" and "\\r\\n" end lines.
"""


def define_flags(fv):
    flags.DEFINE_string("model", None, "The artifact: a preset, a SavedModel (version or base directory) or a .tflite.",
                        flag_values=fv)
    define_input_flags(fv)
    flags.DEFINE_string("output", "-", "JSON lines file to write; '-' writes stdout.", flag_values=fv)
    flags.DEFINE_bool("with_token_ids", False, "Add each text's packed token ids to its output line.", flag_values=fv)


def define_input_flags(fv):
    """The input flags `predict` and `evaluate` share."""
    flags.DEFINE_string("input", "-", "Text file to read, one text per line; '-' reads stdin.", flag_values=fv)
    flags.DEFINE_integer("text_column", None, "The input is TSV and the text is this column (0-based); "
                         "default: the whole line.", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("pair_column", None, "Classify pairs: the second text is this TSV column (with --text_column).",
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_bool("skip_header", False, "Skip the first input line (a TSV header).", flag_values=fv)
    flags.DEFINE_integer("batch_size", 64, "Texts classified per call (and written per flush).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("threads", None, "TFLite interpreter threads (default: the model's recommendation).",
                         lower_bound=1, flag_values=fv)


def text_columns(fv):
    """The TSV columns holding the text (and the pair's second text): () for whole lines."""
    if fv.pair_column is not None and fv.text_column is None:
        raise UsageError("--pair_column needs --text_column (the first text's column)")
    if fv.text_column is None:
        return ()
    if fv.pair_column is None:
        return (fv.text_column,)
    if fv.pair_column == fv.text_column:
        raise UsageError("--pair_column must differ from --text_column")
    return (fv.text_column, fv.pair_column)


def columns_flag(fv, extra=""):
    """How the chosen columns are named in messages about short lines."""
    names = [f"--{n}={fv[n].value}" for n in ("text_column", "pair_column") if fv[n].value is not None]
    return " ".join(names + ([extra] if extra else []))


def locate_model(fv):
    """--model located (TensorFlow-free: a wrong path fails fast), an ArtifactError if it is
    not an artifact."""
    from roberta_tf.artifacts import locate

    command.require(fv, "model")
    return locate(fv.model)


def load_predictor(fv, artifact):
    """`artifact` loaded behind the Predictor API (TensorFlow imported here, quietly)."""
    if not fv.verbose:
        command.import_tensorflow_quietly()
    from roberta_tf.artifacts import predictors

    started = time.perf_counter()
    predictor = predictors.load(artifact, batch_size=fv.batch_size, num_threads=fv.threads)
    logging.info("Loaded the %s %s (labels %s) in %.1f s.", predictor.kind, predictor.path,
                 predictor.label_names, time.perf_counter() - started)
    return predictor


def input_progress(fv, description):
    """A progress bar over the input's bytes (rate and ETA when --input is a file). Disabled
    when stdout is a terminal, where it would interleave with the results."""
    from roberta_tf.utils import progress

    bar = progress.bar(total=textio.input_size(fv.input), description=description, unit="B",
                       disable=fv["output"].value == "-" and textio.isatty(sys.stdout))
    bar.unit_scale = True  # 1.2MB, not 1234567 (format_meter reads it at every redraw)
    return bar


def classify_segments(predictor, segments):
    """`segments`: 1 or 2 equally long lists of bytes -> Prediction."""
    return predictor.classify(segments[0]) if len(segments) == 1 else predictor.classify_pairs(*segments)


def prediction_records(prediction, token_ids=None):
    """The output objects of one batch."""
    records = []
    for i, label in enumerate(prediction.labels):
        record = {"label": label, "class_id": int(prediction.class_ids[i]),
                  "probabilities": [round(float(p), 7) for p in prediction.probabilities[i]]}
        if token_ids is not None:
            record["token_ids"] = token_ids[i]
        records.append(record)
    return records


def predict_stream(predictor, lines, output, columns=(), skip_header=False, batch_size=64, with_token_ids=False,
                   source_name="<input>", columns_description=None):
    """Classifies binary `lines` batch by batch, writing one JSON line per input line to the text
    stream `output` (flushed after every batch). Returns the number of lines written."""
    count = 0
    records = textio.read_records(lines, columns, skip_header, source_name, columns_description)
    for batch in textio.batches(records, batch_size):
        segments = [list(texts) for texts in zip(*(segments for _, segments in batch))]
        prediction = classify_segments(predictor, segments)
        token_ids = predictor.token_ids(*segments) if with_token_ids else None
        output.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in prediction_records(prediction, token_ids)))
        output.flush()
        count += len(batch)
    return count


def execute(fv, args):
    del args  # none accepted
    command.require(fv, "model")
    columns = text_columns(fv)
    textio.check_input_output(fv.input, fv.output)
    predictor = load_predictor(fv, locate_model(fv))
    if fv.with_token_ids and not predictor.has_token_ids:
        raise UsageError(f"--with_token_ids needs a preset or a SavedModel; a {predictor.kind} model "
                         "does not output token ids")
    if fv.input == "-" and textio.isatty(sys.stdin):
        logging.info("Reading text from stdin, one text per line (end with Ctrl-D).")
    started = time.perf_counter()
    input_stream, output_stream = textio.Stream(fv.input, "rb"), textio.Stream(fv.output, "w")
    with input_stream as lines, output_stream as output, input_progress(fv, "Classifying") as bar:
        count = predict_stream(predictor, textio.counted(lines, bar), output, columns, fv.skip_header,
                               fv.batch_size, fv.with_token_ids, input_stream.name, columns_flag(fv))
    elapsed = time.perf_counter() - started
    logging.info("Classified %d lines from %s to %s in %.1f s (%.0f lines/s).", count, input_stream.name,
                 output_stream.name, elapsed, count / elapsed if elapsed else 0.0)
    return command.EXIT_OK


def main(argv):
    """Runs `roberta-tf predict` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
