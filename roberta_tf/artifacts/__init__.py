"""Artifacts by path: a preset, a TF Serving SavedModel version or a TFLite model, found
(`locate`) and run behind one API (`predictors.load` -> `Predictor`), so the commands that
take "any model" (`predict`, `evaluate`, `inspect`, the demo) treat them alike.

    artifact.py     path -> Artifact(kind, path): which kind, which SavedModel version; sizes.
                    TensorFlow-free (this package's __init__ imports only it), so a command
                    rejects a wrong path in a fraction of a second.
    predictors.py   Artifact -> Predictor: classify(texts), classify_pairs(a, b), token_ids(...)

    from roberta_tf.artifacts import predictors
    predictor = predictors.load("models/sst2")
"""

from roberta_tf.artifacts.artifact import KINDS, PRESET, SAVED_MODEL, TFLITE, Artifact, ArtifactError, locate, size_bytes

__all__ = ["KINDS", "PRESET", "SAVED_MODEL", "TFLITE", "Artifact", "ArtifactError", "locate", "size_bytes"]
