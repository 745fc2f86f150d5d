"""Corpus-scale prediction on Apache Beam: an exported SavedModel classifies texts on any runner.

    import apache_beam as beam
    from roberta_tf import beam as roberta_beam

    with beam.Pipeline() as pipeline:
        outputs = (pipeline
                   | beam.Create([("a", "A warm, funny film."), ("b", "Dull.", "It bored me.")])
                   | roberta_beam.ClassifyTexts("models/sst2/1", batch_size=64))
        outputs[roberta_beam.PREDICTIONS]   # {"id": "a", "label": ..., "class_id": ..., "probabilities": [...]}
        outputs[roberta_beam.DEAD_LETTERS]  # DeadLetter(id, reason, detail, record) for bad records

Parts:
  records.py        what a good record is, the dead-letter reasons, numbered lines read in
                    bounded memory (pure Python: no Beam, no TensorFlow);
  model_handler.py  `SavedModelHandler`, a RunInference `ModelHandler` over
                    `roberta_tf.artifacts.predictors` (the SavedModel's own signatures);
  transforms.py     `ClassifyTexts` (elements -> predictions + dead letters), `ClassifyFiles`
                    (a file glob -> the same, ids "<path>:<line>"), `WriteJsonLines`, `run_files`
                    (what `roberta-tf predict --runner` runs) and the counts from Beam's metrics.

Apache Beam is an optional dependency (`pip install 'roberta-tf[beam]'`); importing this package
without it fails at once with that instruction.
"""

try:
    import apache_beam  # noqa: F401
except ImportError as error:  # the extra is optional: say how to get it, not just what is missing
    raise ImportError(
        "roberta_tf.beam needs Apache Beam, an optional dependency of roberta-tf: "
        f"pip install 'roberta-tf[beam]' ({error})"
    ) from error

from roberta_tf.beam.model_handler import SavedModelHandler
from roberta_tf.beam.records import (
    DEAD_LETTER_REASONS,
    DEFAULT_MAX_RECORD_BYTES,
    EMPTY,
    INVALID_UTF8,
    NOT_TEXT,
    TOO_LONG,
    WRONG_COLUMN_COUNT,
    DeadLetter,
)
from roberta_tf.beam.transforms import (
    CLASSIFIED,
    DEAD_LETTERS,
    METRICS_NAMESPACE,
    PREDICTIONS,
    ClassifyFiles,
    ClassifyTexts,
    WriteJsonLines,
    metric_counts,
    run_files,
)

__all__ = [
    "CLASSIFIED", "DEAD_LETTERS", "DEAD_LETTER_REASONS", "DEFAULT_MAX_RECORD_BYTES", "EMPTY", "INVALID_UTF8",
    "METRICS_NAMESPACE", "NOT_TEXT", "PREDICTIONS", "TOO_LONG", "WRONG_COLUMN_COUNT", "ClassifyFiles",
    "ClassifyTexts", "DeadLetter", "SavedModelHandler", "WriteJsonLines", "metric_counts", "run_files",
]
