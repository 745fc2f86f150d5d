"""Scoring exported artifacts on a labelled set through `roberta_tf.artifacts`: accuracy, label
agreement with a reference (the in-process model), batch-1 latency, size on disk.

Agreement targets (`AGREEMENT_TARGETS`, the least fraction of labels an artifact must share
with the in-process model): the TFLite issue's targets are accuracy within 0.1 (float16), 0.3
(dynamic-range) and 1.0 (int8) points of float32's (`contract.TFLITE_ACCURACY_TARGET_POINTS`,
which `benchmarks/tflite_benchmark.py` measures; README "TFLite for apps"). An artifact that disagrees on at most that
fraction of the texts meets its accuracy target whatever the labels, so the demo holds
agreement to 1 - points / 100. float32 forms (the SavedModel, float32 TFLite) compute the same
graph within 1e-4 and get float16's bound.
"""

import dataclasses
import pathlib
import statistics
import time

import numpy as np

from roberta_tf import artifacts
from roberta_tf.artifacts import predictors
from roberta_tf.contract import signatures as contract
from roberta_tf.utils import progress

# float32 forms (the SavedModel, float32 TFLite) get float16's bound.
ACCURACY_TARGET_POINTS = {"float32": contract.TFLITE_ACCURACY_TARGET_POINTS["float16"],
                          **contract.TFLITE_ACCURACY_TARGET_POINTS}
AGREEMENT_TARGETS = {form: round(1 - points / 100, 6) for form, points in ACCURACY_TARGET_POINTS.items()}
SCORING_BATCH = 64  # texts per classify call when scoring a file
LATENCY_WARMUP_CALLS = 3


@dataclasses.dataclass
class ArtifactScore:
    name: str  # what the table calls it, e.g. "TFLite int8"
    kind: str  # the predictor's kind: "preset" | "saved_model" | "tflite"
    form: str  # "float32" | "float16" | "dynamic" | "int8"
    path: pathlib.Path
    size_bytes: int
    accuracy: float
    agreement: float  # fraction of labels equal to the reference's (1.0 for the reference)
    disagreements: int
    agreement_target: float | None  # None for the reference itself
    median_ms: float  # batch-1 median over the latency texts
    class_ids: np.ndarray = dataclasses.field(repr=False)
    examples: list = dataclasses.field(default_factory=list)  # (label, probability of that label)

    @property
    def meets_target(self):
        return self.agreement_target is None or self.agreement >= self.agreement_target

    def as_json(self, root=None):
        path = self.path.relative_to(root).as_posix() if root else str(self.path)
        return {
            "name": self.name, "kind": self.kind, "form": self.form, "path": path, "size_bytes": self.size_bytes,
            "accuracy": self.accuracy, "agreement_with_in_process": self.agreement,
            "disagreements": self.disagreements, "agreement_target": self.agreement_target,
            "meets_agreement_target": self.meets_target, "batch1_median_ms": self.median_ms,
            "examples": [{"label": label, "probability": probability} for label, probability in self.examples],
        }


def score_artifact(name, form, path, texts, labels, *, latency_texts, example_texts, reference_ids=None):
    """Loads `path` with `roberta_tf.artifacts.predictors.load` and scores it.

    Args:
        name, form: the table's name and the numeric form ("float32", "int8", ...).
        texts, labels: the labelled set, classified in batches of SCORING_BATCH.
        latency_texts: texts classified one per call to time batch 1 (after a few untimed calls).
        example_texts: texts whose label and probability are shown.
        reference_ids: the reference's class ids on `texts`; None: this is the reference.
    """
    predictor = predictors.load(path)
    class_ids = classify_all(predictor, texts, f"Scoring {name}")
    agreement = 1.0 if reference_ids is None else float(np.mean(class_ids == reference_ids))
    example_result = predictor.classify(list(example_texts))
    examples = [(label, float(example_result.probabilities[i, example_result.class_ids[i]]))
                for i, label in enumerate(example_result.labels)]
    return ArtifactScore(
        name=name, kind=predictor.kind, form=form, path=pathlib.Path(path), size_bytes=artifacts.size_bytes(predictor.artifact),
        accuracy=float(np.mean(class_ids == np.asarray(labels))), agreement=agreement,
        disagreements=0 if reference_ids is None else int(np.sum(class_ids != reference_ids)),
        agreement_target=None if reference_ids is None else AGREEMENT_TARGETS[form],
        median_ms=batch1_median_ms(predictor, latency_texts), class_ids=class_ids, examples=examples,
    )


def classify_all(predictor, texts, description):
    """Class ids of every text, SCORING_BATCH texts per call, with a progress bar."""
    class_ids = []
    with progress.bar(total=len(texts), description=description, unit="text") as bar:
        for start in range(0, len(texts), SCORING_BATCH):
            batch = texts[start:start + SCORING_BATCH]
            class_ids.append(np.asarray(predictor.classify(batch).class_ids))
            bar.update(len(batch))
    return np.concatenate(class_ids).astype(np.int64)


def batch1_median_ms(predictor, texts):
    """Median milliseconds of `predictor.classify([text])` over `texts` (after
    LATENCY_WARMUP_CALLS untimed calls: first calls trace graphs and allocate tensors)."""
    for text in texts[:LATENCY_WARMUP_CALLS]:
        predictor.classify([text])
    times = []
    for text in texts:
        started = time.perf_counter()
        predictor.classify([text])
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)
