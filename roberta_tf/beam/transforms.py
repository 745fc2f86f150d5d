"""The Beam transforms: texts (or files of them) in; predictions and dead letters out.

    ClassifyTexts(model_path)   PCollection of texts / (id, text) / (id, text_a, text_b)
                                -> {PREDICTIONS: dicts, DEAD_LETTERS: DeadLetter}
    ClassifyFiles(glob, model)  PBegin -> the same, from text or TSV files (ids "<path>:<line>"
                                or a TSV column)
    WriteJsonLines(prefix)      dicts (or DeadLetters) -> PREFIX-00000-of-0000N.jsonl shards
    run_files(options, ...)     the whole `roberta-tf predict --runner` pipeline; returns the
                                counts from Beam's metrics

A prediction is the single-process `predict`'s JSON object plus the record's id first:
`{"id": ..., "label": ..., "class_id": ..., "probabilities": [...]}` (probabilities rounded to 7
decimals, as `predict` writes them); a bare text's prediction has `"text"` instead of `"id"`.

Metrics (namespace METRICS_NAMESPACE, counters): `classified`, and one `dead_letter_<reason>`
per reason (`records.DEAD_LETTER_REASONS`), counted where the record is set aside.

Parallelism: files are read one per worker (lines are numbered, which a split file cannot do),
then reshuffled, so the model's work spreads over every worker whatever the number of files.
Output order is not defined: join on the ids.
"""

import json

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference import base

from roberta_tf.beam import records
from roberta_tf.beam.model_handler import DEFAULT_BATCH_SIZE, SavedModelHandler

PREDICTIONS = "predictions"
DEAD_LETTERS = "dead_letters"
RECORDS = "records"  # the reader's main output: (id, *texts) elements
METRICS_NAMESPACE = "roberta_tf"
CLASSIFIED = "classified"
DEAD_LETTER_METRIC_PREFIX = "dead_letter_"
PROBABILITY_DECIMALS = 7  # as the single-process `predict` writes them
SHARD_SUFFIX = ".jsonl"
DEAD_LETTER_SUFFIX = "-dead_letter"


def _set_aside(dead):
    """`dead` to the dead-letter output, counted in its reason's metric."""
    Metrics.counter(METRICS_NAMESPACE, DEAD_LETTER_METRIC_PREFIX + dead.reason).inc()
    return beam.pvalue.TaggedOutput(DEAD_LETTERS, dead)


class _CheckElements(beam.DoFn):
    """Elements -> `(key, segments)` for RunInference (key: (has_id, id)) or dead letters."""

    def __init__(self, max_record_bytes):
        self.max_record_bytes = max_record_bytes

    def process(self, element):
        checked = records.check_element(element, self.max_record_bytes)
        if isinstance(checked, records.DeadLetter):
            yield _set_aside(checked)
        else:
            has_id, record_id, segments = checked
            yield (has_id, record_id), segments


def _prediction_record(keyed_result):
    """(key, PredictionResult) -> the output object, counted as classified."""
    (has_id, record_id), result = keyed_result
    Metrics.counter(METRICS_NAMESPACE, CLASSIFIED).inc()
    inference = result.inference
    head = {"id": record_id} if has_id else {"text": result.example[0].decode("utf-8")}
    return {**head, "label": inference["label"], "class_id": inference["class_id"],
            "probabilities": [round(float(p), PROBABILITY_DECIMALS) for p in inference["probabilities"]]}


class ClassifyTexts(beam.PTransform):
    """Classifies a PCollection of texts (str or UTF-8 bytes), `(id, text)` or
    `(id, text_a, text_b)` records with the SavedModel at `model_path`.

    Returns `{PREDICTIONS: PCollection of dicts, DEAD_LETTERS: PCollection of DeadLetter}`; bad
    elements (see `records`) never fail the pipeline. Ids are any picklable, JSON-writable
    values, passed through untouched.

    Args:
        model_path: a SavedModel version (or base) directory every worker can read.
        batch_size: texts per model call (Beam's batching).
        max_record_bytes: the `too_long` bound on an element's texts together.
        share_model_across_processes: one model per machine instead of one per worker process.
    """

    def __init__(self, model_path, batch_size=DEFAULT_BATCH_SIZE, max_record_bytes=records.DEFAULT_MAX_RECORD_BYTES,
                 share_model_across_processes=False):
        super().__init__()
        self.handler = SavedModelHandler(model_path, batch_size, share_model_across_processes)
        self.max_record_bytes = int(max_record_bytes)

    def expand(self, elements):
        checked = elements | "Check" >> beam.ParDo(_CheckElements(self.max_record_bytes)).with_outputs(
            DEAD_LETTERS, main=PREDICTIONS)
        predictions = (checked[PREDICTIONS]
                       | "RunInference" >> base.RunInference(base.KeyedModelHandler(self.handler))
                       | "ToRecords" >> beam.Map(_prediction_record))
        return {PREDICTIONS: predictions, DEAD_LETTERS: checked[DEAD_LETTERS]}


class _ReadRecords(beam.DoFn):
    """A matched file -> `(id, *segments)` elements for ClassifyTexts, or dead letters holding
    the whole line (ClassifyTexts' own check then finds nothing more to set aside)."""

    def __init__(self, columns, id_column, skip_header, max_record_bytes):
        self.columns, self.id_column = tuple(columns), id_column
        self.skip_header, self.max_record_bytes = skip_header, max_record_bytes

    def process(self, readable_file):
        path = readable_file.metadata.path
        with readable_file.open(mime_type="application/octet-stream") as stream:
            for line_number, line in records.numbered_lines(stream.read, self.max_record_bytes):
                if self.skip_header and line_number == 1:
                    continue
                record_id = f"{path}:{line_number}"
                if isinstance(line, records.LongLine):
                    yield _set_aside(records.dead_letter(
                        record_id, records.TOO_LONG,
                        f"{line.size} bytes, more than the {self.max_record_bytes} allowed", line.prefix))
                    continue
                checked = records.split_line(record_id, line, self.columns, self.id_column)
                if not isinstance(checked, records.DeadLetter):  # checked here to keep the whole line
                    checked = records.check_segments(*checked, self.max_record_bytes, record=line)
                if isinstance(checked, records.DeadLetter):
                    yield _set_aside(checked)
                else:
                    yield (checked[0], *checked[1])


class ClassifyFiles(beam.PTransform):
    """Reads every file matching `file_pattern` (any Beam file system; .gz/.bz2/... by their
    extension) and classifies each line, or TSV columns of it, with ClassifyTexts.

    Args:
        columns: () for whole lines, (text_column,) or (text_column, pair_column) for TSV.
        id_column: the TSV column holding each record's id (default: "<file path>:<line>").
        skip_header: skip the first line of every file.
        The others as in ClassifyTexts.
    """

    def __init__(self, file_pattern, model_path, columns=(), id_column=None, skip_header=False,
                 batch_size=DEFAULT_BATCH_SIZE, max_record_bytes=records.DEFAULT_MAX_RECORD_BYTES,
                 share_model_across_processes=False):
        super().__init__()
        if id_column is not None and not columns:
            raise ValueError("id_column needs TSV columns (a text column)")
        self.file_pattern = file_pattern
        self.read = _ReadRecords(columns, id_column, skip_header, int(max_record_bytes))
        self.classify = ClassifyTexts(model_path, batch_size, max_record_bytes, share_model_across_processes)

    def expand(self, begin):
        read = (begin
                | "Match" >> fileio.MatchFiles(self.file_pattern)
                | "Open" >> fileio.ReadMatches()
                | "Read" >> beam.ParDo(self.read).with_outputs(DEAD_LETTERS, main=RECORDS))
        # The reader of a file is one worker; the model's work should not be.
        spread = read[RECORDS] | "Spread" >> beam.Reshuffle()
        classified = spread | "Classify" >> self.classify
        dead_letters = (read[DEAD_LETTERS], classified[DEAD_LETTERS]) | "DeadLetters" >> beam.Flatten()
        return {PREDICTIONS: classified[PREDICTIONS], DEAD_LETTERS: dead_letters}


def _json_line(item):
    return json.dumps(item.to_json() if isinstance(item, records.DeadLetter) else item, ensure_ascii=False)


class WriteJsonLines(beam.PTransform):
    """Writes dicts (or DeadLetters) as JSON lines to `prefix`-SSSSS-of-NNNNN.jsonl
    (`num_shards` 0: the runner decides)."""

    def __init__(self, prefix, num_shards=0):
        super().__init__()
        self.prefix, self.num_shards = prefix, int(num_shards)

    def expand(self, items):
        return (items
                | "ToJson" >> beam.Map(_json_line)
                | "Write" >> beam.io.WriteToText(self.prefix, file_name_suffix=SHARD_SUFFIX,
                                                 num_shards=self.num_shards, shard_name_template="-SSSSS-of-NNNNN"))


def output_patterns(prefix):
    """The glob patterns of a run's prediction and dead-letter shards."""
    return (f"{prefix}-[0-9]*-of-[0-9]*{SHARD_SUFFIX}",
            f"{prefix}{DEAD_LETTER_SUFFIX}-[0-9]*-of-[0-9]*{SHARD_SUFFIX}")


def matching_files(pattern):
    """The paths matching `pattern` on any Beam file system (sorted)."""
    result = FileSystems.match([pattern])[0]
    return sorted(metadata.path for metadata in result.metadata_list)


def run_files(options, file_pattern, output_prefix, model_path, num_shards=0, **classify_files_args):
    """Runs ClassifyFiles over `file_pattern` with the PipelineOptions `options`, writing the
    predictions to `output_prefix`-SSSSS-of-NNNNN.jsonl and the dead letters to
    `output_prefix`-dead_letter-SSSSS-of-NNNNN.jsonl; waits for the end. Returns
    `metric_counts` of the finished pipeline."""
    pipeline = beam.Pipeline(options=options)
    outputs = pipeline | "ClassifyFiles" >> ClassifyFiles(file_pattern, model_path, **classify_files_args)
    _ = outputs[PREDICTIONS] | "WritePredictions" >> WriteJsonLines(output_prefix, num_shards)
    _ = outputs[DEAD_LETTERS] | "WriteDeadLetters" >> WriteJsonLines(output_prefix + DEAD_LETTER_SUFFIX, num_shards)
    result = pipeline.run()
    result.wait_until_finish()
    return metric_counts(result)


def metric_counts(result):
    """`{"classified": n, "dead_letters": {reason: n}}` from a finished pipeline's counters
    (committed values where the runner reports them, else attempted)."""
    counts = {CLASSIFIED: 0, "dead_letters": {}}
    for counter in result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        if name == CLASSIFIED:
            counts[CLASSIFIED] += value
        elif name.startswith(DEAD_LETTER_METRIC_PREFIX):
            reason = name[len(DEAD_LETTER_METRIC_PREFIX):]
            counts["dead_letters"][reason] = counts["dead_letters"].get(reason, 0) + value
    return counts
