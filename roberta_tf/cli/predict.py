"""`roberta-tf predict`: classify lines of text (or TSV columns) with any artifact; JSON lines out.

    roberta-tf predict --model models/sst2 < texts.txt > predictions.jsonl
    roberta-tf predict --model sst2_int8.tflite --input dev.tsv --text_column 0 --skip_header
    roberta-tf predict --model preset/ --input pairs.tsv --text_column 0 --pair_column 1 --with_token_ids

Streams: lines are read one at a time and classified --batch_size at a time, and every batch
is written (and flushed) before the next is read, so memory stays flat on any input size.

With --runner the same classification runs as an Apache Beam pipeline (`roberta_tf.beam`) over
files matching --input, on any runner; options this command does not define go to Beam:

    roberta-tf predict --model models/sst2/1 --input 'corpus/*.txt' --output out/pred --runner DirectRunner \
        --direct_running_mode=multi_processing --direct_num_workers=2
"""

import json
import logging as logging_module
import os
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command, textio
from roberta_tf.cli.command import CommandError, UsageError

NAME = "predict"
DEFAULT_MAX_RECORD_BYTES = 1 << 20  # = roberta_tf.beam.DEFAULT_MAX_RECORD_BYTES (apache_beam is imported only with --runner)
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

Apache Beam (--runner; needs `pip install 'roberta-tf[beam]'` and a SavedModel): --input is a
file glob (any Beam file system; .gz and other compressions by extension), --output a prefix:
predictions go to PREFIX-00000-of-0000N.jsonl, each line the object above with the record's
"id" first ("<file path>:<line number>", or the TSV column --id_column), in no defined order.
Bad records never stop the pipeline: invalid UTF-8, empty texts, records over
--max_record_bytes and TSV lines short of columns go to PREFIX-dead_letter-00000-of-0000N.jsonl
as {"id", "reason", "detail", "record"} and are counted; the counts are printed at the end.
Every flag this command does not define is a Beam pipeline option, passed to Beam's
PipelineOptions as given (e.g. --direct_num_workers=2, --project, --region, --temp_location,
--flink_master, --spark_master_url, --requirements_file, --sdk_container_image); options may
also follow a "--". A misspelt option that neither roberta-tf nor Beam knows is an error.
"""
ARGS_USAGE = "[BEAM_PIPELINE_OPTIONS...] (with --runner)"


def define_flags(fv):
    flags.DEFINE_string("model", None, "The artifact: a preset, a SavedModel (version or base directory) or a .tflite.",
                        flag_values=fv)
    define_input_flags(fv)
    flags.DEFINE_string("output", "-", "JSON lines file to write; '-' writes stdout.", flag_values=fv)
    flags.DEFINE_bool("with_token_ids", False, "Add each text's packed token ids to its output line.", flag_values=fv)
    define_beam_flags(fv)


def define_beam_flags(fv):
    """The flags of the Apache Beam mode (--runner)."""
    flags.DEFINE_string("runner", None, "Run as an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, "
                        "FlinkRunner, SparkRunner, ...): --input is then a file glob and --output a prefix of "
                        "sharded files. Needs a SavedModel and roberta-tf[beam].", flag_values=fv)
    flags.DEFINE_integer("num_shards", 0, "With --runner: output files per output (0: the runner decides).",
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("id_column", None, "With --runner: the TSV column holding each record's id (default: "
                         "\"<file path>:<line number>\"); needs --text_column.", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("max_record_bytes", DEFAULT_MAX_RECORD_BYTES, "With --runner: a line (without its line "
                         "end) longer than this is a dead letter (reason too_long), never read whole.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_bool("share_model_across_processes", False, "With --runner: load the model once per machine and "
                      "let every worker process call it, instead of once per worker process (for models too large "
                      "to hold once per process; slower for small ones).", flag_values=fv)


BEAM_FLAGS = ("num_shards", "id_column", "max_record_bytes", "share_model_across_processes")


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
    if fv.runner:
        return execute_beam(fv, args)
    if args:
        raise UsageError(f"unexpected argument(s): {' '.join(args)} (Beam pipeline options need --runner)")
    given = [f"--{name}" for name in BEAM_FLAGS if fv[name].present]
    if given:
        raise UsageError(f"{', '.join(given)} need(s) --runner (an Apache Beam run)")
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


# ----------------------------------------------------------------------------- Apache Beam (--runner)


def split_pipeline_options(argv):
    """With --runner in `argv`, the options this command does not define (Beam's) moved after a
    "--", where absl leaves them as arguments for `execute`; `argv` unchanged otherwise. A flag
    of ours given as "--name value" keeps its value; an unknown "--name value" keeps its value
    when the value does not start with "-"."""
    args = list(argv[1:])
    if "--" in args:
        args, after = args[:args.index("--")], args[args.index("--") + 1:]
    else:
        after = []
    if not any(arg == "--runner" or arg.startswith("--runner=") for arg in args):
        return list(argv)
    known, beam_args, i = new_known_flags(), [], 0
    ours = []
    while i < len(args):
        arg = args[i]
        name = arg.lstrip("-").split("=", 1)[0]
        takes_value = arg.startswith("-") and "=" not in arg and i + 1 < len(args)
        if not arg.startswith("-"):
            raise UsageError(f"unexpected argument: {arg}")
        flag = known.get(name)
        if flag is None and name.startswith("no") and name[2:] in known and known[name[2:]].boolean:
            flag = known[name[2:]]
        target = ours if flag is not None else beam_args
        target.append(arg)
        if takes_value and (flag is not None and not flag.boolean
                            or flag is None and not args[i + 1].startswith("-")):
            target.append(args[i + 1])
            i += 1
        i += 1
    return [argv[0], *ours, "--", *beam_args, *after]


def new_known_flags():
    """{flag name or short name: Flag} of this command (common flags included)."""
    flag_values = command.new_flag_values(sys.modules[__name__])
    return {name: flag_values[name] for name in flag_values}


def pipeline_options(runner, beam_args):
    """Beam's PipelineOptions for `runner` and the pass-through `beam_args`; UsageError naming
    any option no Beam options class defines (Beam itself would only log and drop it)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions([*beam_args, f"--runner={runner}"])
    everything = options.get_all_options(retain_unknown_options=True)
    unknown = sorted(set(everything) - set(options.get_all_options()))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join('--' + name for name in unknown)}: neither roberta-tf "
                         "predict's nor a Beam pipeline option")
    return options


def check_beam_flags(fv, args):
    """The usage checks of --runner: (columns, SavedModel path). TensorFlow-free."""
    from roberta_tf.artifacts import artifact as artifact_lib

    command.require(fv, "model")
    for flag in ("input", "output"):
        if fv[flag].value == "-":
            raise UsageError(f"--runner needs --{flag} ({'a file glob' if flag == 'input' else 'a prefix of the output files'}); "
                             "a pipeline does not read stdin or write stdout")
    if fv.with_token_ids:
        raise UsageError("--with_token_ids is not available with --runner")
    columns = text_columns(fv)
    if fv.id_column is not None and not columns:
        raise UsageError("--id_column needs --text_column (the line is then TSV)")
    if fv.id_column is not None and fv.id_column in columns:
        raise UsageError("--id_column must differ from --text_column and --pair_column")
    artifact = locate_model(fv)
    if artifact.kind != artifact_lib.SAVED_MODEL:
        raise UsageError(f"--runner runs a SavedModel, and {fv.model} is a {artifact.kind}: export it first "
                         "(roberta-tf export saved_model --preset PRESET --output DIR)")
    return columns, artifact.path


def import_beam():
    try:
        from roberta_tf import beam
    except ImportError as error:
        raise CommandError(command.one_line(error)) from None
    return beam


def check_beam_output(beam, prefix):
    """The prefix's directory exists (local paths) and no shards of an earlier run would mix
    with this run's."""
    if "://" not in prefix and not os.path.isdir(os.path.dirname(os.path.abspath(prefix))):
        raise CommandError(f"--output: no such directory: {os.path.dirname(os.path.abspath(prefix))!r}")
    existing = [path for pattern in beam.transforms.output_patterns(prefix) for path in beam.transforms.matching_files(pattern)]
    if existing:
        raise CommandError(f"--output: {len(existing)} file(s) of an earlier run exist (e.g. {existing[0]}); "
                           "remove them or choose another prefix")


def execute_beam(fv, args):
    columns, model_path = check_beam_flags(fv, args)
    options = pipeline_options(fv.runner, args)
    if not fv.verbose:
        command.import_tensorflow_quietly()
    beam = import_beam()
    if fv.verbosity is None or fv.verbosity < 1:
        logging_module.getLogger("apache_beam").setLevel(logging_module.WARNING)
    if not beam.transforms.matching_files(fv.input):
        raise CommandError(f"--input: no file matches {fv.input!r}")
    check_beam_output(beam, fv.output)
    started = time.perf_counter()
    counts = beam.run_files(options, fv.input, fv.output, model_path, num_shards=fv.num_shards, columns=columns,
                            id_column=fv.id_column, skip_header=fv.skip_header, batch_size=fv.batch_size,
                            max_record_bytes=fv.max_record_bytes,
                            share_model_across_processes=fv.share_model_across_processes)
    patterns = beam.transforms.output_patterns(fv.output)
    print(beam_summary(counts, patterns, time.perf_counter() - started, fv.runner))
    return command.EXIT_OK


def beam_summary(counts, patterns, seconds, runner):
    """The lines printed after a Beam run: counts from its metrics and where the outputs are."""
    dead = counts["dead_letters"]
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(dead.items()) if count)
    predictions, dead_letters = (pattern.replace("[0-9]*", "*") for pattern in patterns)
    return (f"classified {counts['classified']} records in {seconds:.1f} s on {runner}: {predictions}\n"
            f"dead letters {sum(dead.values())}{f' ({reasons})' if reasons else ''}: {dead_letters}")


def main(argv):
    """Runs `roberta-tf predict` with `argv` (argv[0] = program name); returns the exit code."""
    argv = list(argv) if argv else [f"{command.PROG} {NAME}"]
    try:
        argv = split_pipeline_options(argv)
    except UsageError as error:
        command.error(f"{command.PROG} {NAME}", error, hint=True)
        return command.EXIT_USAGE
    return command.run_subcommand(sys.modules[__name__], argv)
