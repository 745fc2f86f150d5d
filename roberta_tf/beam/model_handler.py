"""`SavedModelHandler`: Beam RunInference's `ModelHandler` for a `roberta-tf export saved_model` version.

The payload is the SavedModel itself: raw strings in, core TensorFlow ops only, no tokenizer
package on the workers. It runs through `roberta_tf.artifacts.predictors` (the signatures
`serving_default` / `classify_pairs`, as TF Serving runs them), so a worker answers exactly what
the single-process `roberta-tf predict` answers on the same model.

    handler = SavedModelHandler("models/sst2/1", batch_size=64)
    texts | RunInference(handler)          # examples: (text,) or (text_a, text_b), as bytes
    records | RunInference(KeyedModelHandler(handler))   # (id, example) pairs, ids kept

Each `PredictionResult.inference` is one row of the signature's outputs:
`{"label", "class_id", "probabilities", "logits"}` (`label` is the output `class_name`, decoded).

Models per machine: by default RunInference loads the model once per worker process through
Beam's `shared.Shared` handle, and the threads of that process share it (a SavedModel's
signatures are safe to call from several threads). `share_model_across_processes=True` loads
it once per machine in a process of its own that every worker process calls through
`multi_process_shared` (for a model too large to hold once per process; each batch then crosses
a process boundary, which costs more than a small model's inference).
"""

from apache_beam.ml.inference import base

from roberta_tf.artifacts import artifact as artifact_lib
from roberta_tf.artifacts import predictors

DEFAULT_BATCH_SIZE = predictors.DEFAULT_BATCH_SIZE


class SavedModelHandler(base.ModelHandler):
    """Loads the SavedModel version at `model_path` (or the highest version of a base directory)
    and classifies batches of examples, each a tuple of one text or of a pair's two texts
    (bytes or str). A batch may mix texts and pairs.

    Args:
        model_path: the SavedModel version directory (or base directory), readable by every
            worker at this path.
        batch_size: examples per signature call; Beam's `BatchElements` forms batches of exactly
            this many (fewer at the end of a bundle).
        share_model_across_processes: one model per machine instead of one per worker process
            (see the module docstring).
    """

    def __init__(self, model_path, batch_size=DEFAULT_BATCH_SIZE, share_model_across_processes=False):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        super().__init__(min_batch_size=int(batch_size), max_batch_size=int(batch_size),
                         large_model=bool(share_model_across_processes))
        self.model_path = str(model_path)
        self.batch_size = int(batch_size)

    def load_model(self):
        artifact = artifact_lib.locate(self.model_path)
        if artifact.kind != artifact_lib.SAVED_MODEL:
            raise artifact_lib.ArtifactError(f"{self.model_path}: a {artifact.kind}, not a SavedModel; export one "
                                             "with `roberta-tf export saved_model`")
        return predictors.SavedModelPredictor(artifact, batch_size=self.batch_size)

    def run_inference(self, batch, model, inference_args=None):
        """One `PredictionResult` per example, in order: texts and pairs are classified by
        their own signature, then put back in the batch's order."""
        results = [None] * len(batch)
        for arity in (1, 2):
            rows = [i for i, example in enumerate(batch) if len(example) == arity]
            if not rows:
                continue
            segments = [[batch[i][k] for i in rows] for k in range(arity)]
            prediction = model.classify(segments[0]) if arity == 1 else model.classify_pairs(*segments)
            for j, i in enumerate(rows):
                results[i] = base.PredictionResult(batch[i], {
                    "label": prediction.labels[j],
                    "class_id": int(prediction.class_ids[j]),
                    "probabilities": prediction.probabilities[j],
                    "logits": prediction.logits[j],
                }, model_id=self.model_path)
        unknown = [len(example) for example, result in zip(batch, results) if result is None]
        if unknown:
            raise ValueError(f"an example holds one text or a pair, not {unknown[0]} texts")
        return results

    def get_num_bytes(self, batch):
        return sum(len(text) for example in batch for text in example)

    def get_metrics_namespace(self):
        return "roberta_tf.RunInference"
