"""Every artifact behind one API, so `predict`, `evaluate` and the demo treat them alike.

    predictor = predictors.load("models/sst2")       # or a preset, or a .tflite
    result = predictor.classify(["A warm, funny film.", b"Dull."])
    result.labels, result.class_ids, result.probabilities

How each kind runs:
  * preset: the exporter's own `ClassifierServingModule`, in process: the same tokenizer,
    truncation and probabilities as the SavedModel it would export (so "agrees with the
    in-process model" compares like with like);
  * SavedModel: its signatures (`serving_default`, `classify_pairs`, `tokenize`...), as TF
    Serving runs them;
  * TFLite: `roberta_tf.lite.TextClassifier`, one text per invocation, as an app runs it.
Texts are str (encoded as UTF-8) or bytes (taken as they are: invalid UTF-8 is allowed).
"""

import dataclasses
import json
import pathlib

import numpy as np
import tensorflow as tf

from roberta_tf.artifacts import artifact as artifact_lib
from roberta_tf.artifacts.artifact import ArtifactError
from roberta_tf.contract import signatures as contract
from roberta_tf.export import provenance, saved_model, serving_module
from roberta_tf.lite import TextClassifier

DEFAULT_BATCH_SIZE = 64


@dataclasses.dataclass
class Prediction:
    """Outputs for n texts, row i for text i."""

    logits: np.ndarray  # float32 [n, classes]
    probabilities: np.ndarray  # float32 [n, classes]
    class_ids: np.ndarray  # int64 [n]
    labels: list  # the label name of each class id

    def __len__(self):
        return len(self.labels)

    @classmethod
    def concatenate(cls, parts, num_classes):
        if not parts:
            empty = np.zeros([0, num_classes], np.float32)
            return cls(empty, empty.copy(), np.zeros([0], np.int64), [])
        return cls(
            logits=np.concatenate([p.logits for p in parts]),
            probabilities=np.concatenate([p.probabilities for p in parts]),
            class_ids=np.concatenate([p.class_ids for p in parts]),
            labels=[label for p in parts for label in p.labels],
        )


class Predictor:
    """The common API. Subclasses implement `_classify(segments)` and, where the artifact
    has a tokenizer output, `_token_ids(segments)`; `segments` is a list of 1 or 2 equally
    long lists of bytes."""

    kind = None
    has_token_ids = False

    def __init__(self, artifact, label_names, sequence_length, metadata):
        self.artifact = artifact
        self.path = artifact.path
        self.label_names = list(label_names)
        self.sequence_length = sequence_length
        self.metadata = metadata  # the export's metadata (or the preset's config), a dict

    @property
    def num_classes(self):
        return len(self.label_names)

    def classify(self, texts):
        """Texts -> `Prediction`."""
        return self._classify([_as_bytes(texts, "texts")])

    def classify_pairs(self, texts_a, texts_b):
        """Pairs (texts_a[i], texts_b[i]) -> `Prediction`."""
        return self._classify(_pair(texts_a, texts_b))

    def token_ids(self, texts, texts_b=None):
        """The packed ids of each text (or pair), without padding: a list of int lists."""
        if not self.has_token_ids:
            raise ArtifactError(f"{self.path}: a {self.kind} artifact does not output token ids "
                                "(use its preset or SavedModel)")
        segments = [_as_bytes(texts, "texts")] if texts_b is None else _pair(texts, texts_b)
        return self._token_ids(segments)

    def _classify(self, segments):
        raise NotImplementedError

    def _token_ids(self, segments):
        raise NotImplementedError


class SignaturePredictor(Predictor):
    """Runs the contract's signatures (`contract.CONTRACT`): either a SavedModel's restored
    signature functions or the in-process `ClassifierServingModule`'s methods of the same
    names. Batches of `batch_size` texts, so memory stays bounded whatever the input size."""

    has_token_ids = True

    def __init__(self, artifact, functions, label_names, sequence_length, metadata, batch_size=DEFAULT_BATCH_SIZE):
        super().__init__(artifact, label_names, sequence_length, metadata)
        self._functions = functions  # {signature name: callable(**tensors) -> {name: tensor}}
        self.batch_size = int(batch_size)

    def _run(self, classify_name_single, classify_name_pair, segments):
        name = classify_name_single if len(segments) == 1 else classify_name_pair
        inputs = contract.CONTRACT[name].inputs
        for start in range(0, len(segments[0]), self.batch_size):
            tensors = {tensor.name: tf.constant(texts[start:start + self.batch_size], tf.string)
                       for tensor, texts in zip(inputs, segments)}
            yield self._functions[name](**tensors)

    def _classify(self, segments):
        parts = []
        for outputs in self._run(contract.CLASSIFY, contract.CLASSIFY_PAIRS, segments):
            class_ids = outputs["class_id"].numpy().astype(np.int64)
            parts.append(Prediction(
                logits=outputs["logits"].numpy(),
                probabilities=outputs["probabilities"].numpy(),
                class_ids=class_ids,
                labels=[self.label_names[i] for i in class_ids],
            ))
        return Prediction.concatenate(parts, self.num_classes)

    def _token_ids(self, segments):
        rows = []
        for outputs in self._run(contract.TOKENIZE, contract.TOKENIZE_PAIRS, segments):
            token_ids, lengths = outputs["token_ids"].numpy(), outputs["padding_mask"].numpy().sum(axis=1)
            rows += [row[:length].tolist() for row, length in zip(token_ids, lengths)]
        return rows


class PresetPredictor(SignaturePredictor):
    """A preset (directory, name or handle) in process, through the exporter's serving module."""

    kind = artifact_lib.PRESET

    def __init__(self, artifact, batch_size=DEFAULT_BATCH_SIZE):
        resolved = provenance.resolve_preset(artifact.path)
        module = serving_module.ClassifierServingModule(
            resolved.classifier, resolved.tokenizer, sequence_length=resolved.sequence_length)
        functions = {name: getattr(module, name) for name in contract.SIGNATURES}
        super().__init__(artifact, functions, module.label_names, module.sequence_length,
                         {"source": resolved.source}, batch_size)
        self.module = module


class SavedModelPredictor(SignaturePredictor):
    """A SavedModel version written by `roberta-tf export saved_model`, through its signatures."""

    kind = artifact_lib.SAVED_MODEL

    def __init__(self, artifact, batch_size=DEFAULT_BATCH_SIZE):
        metadata = read_saved_model_metadata(artifact.path)
        try:
            loaded = tf.saved_model.load(artifact.path)
        except (tf.errors.OpError, ValueError, OSError) as error:
            raise ArtifactError(f"{artifact.path}: cannot load the SavedModel ({_first_line(error)})") from None
        missing = [name for name in (contract.CLASSIFY, contract.CLASSIFY_PAIRS) if name not in loaded.signatures]
        if missing:
            raise ArtifactError(f"{artifact.path}: the SavedModel has no {' or '.join(missing)} signature "
                                "(a tokenizer-only export, or not written by roberta-tf export saved_model)")
        functions = {name: loaded.signatures[name] for name in contract.SIGNATURES if name in loaded.signatures}
        label_names = metadata.get("label_names") or [str(i) for i in range(metadata.get("num_classes", 0))]
        super().__init__(artifact, functions, label_names, metadata.get("sequence_length"), metadata, batch_size)
        self.has_token_ids = contract.TOKENIZE in functions and contract.TOKENIZE_PAIRS in functions
        self._loaded = loaded  # keeps the signatures' variables alive


class TfLitePredictor(Predictor):
    """A `roberta-tf export tflite` model with UTF-8 byte inputs, one text per invocation."""

    kind = artifact_lib.TFLITE

    def __init__(self, artifact, num_threads=None):
        try:
            classifier = TextClassifier(artifact.path, num_threads=num_threads)
        except (KeyError, ValueError) as error:
            raise ArtifactError(f"{artifact.path}: not a roberta-tf TFLite classifier ({_first_line(error)})") from None
        if classifier.inputs != "utf8_bytes":
            raise ArtifactError(f"{artifact.path}: this TFLite model takes token ids (exported with --inputs "
                                f"{classifier.inputs}), not text; export one with --inputs utf8_bytes")
        super().__init__(artifact, classifier.label_names, classifier.sequence_length, classifier.metadata)
        self.classifier = classifier

    def _classify(self, segments):
        if len(segments) == 1:
            result = self.classifier.classify(segments[0])
        else:
            result = self.classifier.classify_pairs(*segments)
        return Prediction(result.logits, result.probabilities, result.class_id.astype(np.int64), result.labels)


def load(path, batch_size=DEFAULT_BATCH_SIZE, num_threads=None):
    """A `Predictor` for `path` (see `locate`), or an `ArtifactError`.

    Args:
        batch_size: texts per call of a preset or SavedModel (TFLite runs one at a time).
        num_threads: TFLite interpreter threads (default: the model's recommendation).
    """
    artifact = path if isinstance(path, artifact_lib.Artifact) else artifact_lib.locate(path)
    if artifact.kind == artifact_lib.TFLITE:
        return TfLitePredictor(artifact, num_threads=num_threads)
    if artifact.kind == artifact_lib.SAVED_MODEL:
        return SavedModelPredictor(artifact, batch_size)
    return PresetPredictor(artifact, batch_size)


def read_saved_model_metadata(version_dir):
    """The export's metadata (assets/roberta_tf_export.json) of a SavedModel version."""
    path = pathlib.Path(version_dir) / "assets" / saved_model.METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir}: no assets/{saved_model.METADATA_FILE}; not a SavedModel "
                            "written by roberta-tf export saved_model") from None
    except (OSError, ValueError) as error:
        raise ArtifactError(f"{path}: unreadable export metadata ({_first_line(error)})") from None
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path}: the export metadata is not a JSON object")
    return metadata


def _as_bytes(texts, name):
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of texts, not a single {type(texts).__name__}")
    return [text.encode("utf-8") if isinstance(text, str) else bytes(text) for text in texts]


def _pair(texts_a, texts_b):
    texts_a, texts_b = _as_bytes(texts_a, "texts_a"), _as_bytes(texts_b, "texts_b")
    if len(texts_a) != len(texts_b):
        raise ValueError(f"texts_a and texts_b must hold as many texts: {len(texts_a)} != {len(texts_b)}")
    return [texts_a, texts_b]


def _first_line(error):
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
