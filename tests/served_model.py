"""A small classifier (real roberta-base tokenizer) exported as a TF Serving SavedModel, once
per test session: shared by tests/export/test_serving_saved_model.py and the client tests in
tests/serving/. Import the fixtures by name (`from served_model import exported, ...`)."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import shared_path
from roberta_tf.export import saved_model

LABELS = ["négatif", "neutral", "positive 🙂"]
SEQUENCE_LENGTH = 48
TEXTS = [
    "The movie was wonderful, I loved every minute of it!",
    "Terrible.",
    "An okay film: not great, not bad. Some scenes dragged on   far too long...",
    "Café déjà vu — naïve résumé 🙂",
    "",
    "word " * 80,  # past the truncation limit
]
PAIRS_A = ["A man is playing a guitar.", "Il pleut.", ""]
PAIRS_B = ["Someone makes music.", "It is sunny, and very long " * 20, "x"]


def sst2_sentences(count):
    with open(shared_path("sst2", "dev.tsv"), encoding="utf-8") as f:
        sentences = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    return [sentences[i % len(sentences)] for i in range(count)]


@pytest.fixture(scope="session")
def classifier(roberta_tokenizer):
    import tf_keras

    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, RobertaTextClassifierPreprocessor

    tf_keras.utils.set_random_seed(5)
    backbone = RobertaBackbone(
        vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64
    )
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=SEQUENCE_LENGTH)
    model = RobertaTextClassifier(backbone, num_classes=3, preprocessor=preprocessor, label_names=LABELS)
    # A random model gives every text nearly the same logits; spread them and centre them
    # per class so the answers differ between texts (class ids, names and probabilities).
    for variable in (model.output_dense.kernel, model.pooled_dense.kernel):
        variable.assign(variable * 20.0)
    logits = model.predict(TEXTS + sst2_sentences(64), verbose=0)
    model.output_dense.bias.assign(model.output_dense.bias - logits.mean(0))
    return model


@pytest.fixture(scope="session")
def preset(classifier, tmp_path_factory):
    path = tmp_path_factory.mktemp("preset") / "classifier"
    classifier.save_to_preset(path)
    return path


@pytest.fixture(scope="session")
def exported(preset, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "roberta_classifier"
    return saved_model.export_preset(preset, base)


@pytest.fixture(scope="session")
def tflite_model(preset, tmp_path_factory):
    """The preset as a float32 `utf8_bytes` TFLite model (its path), exported once per session."""
    from roberta_tf.export import tflite

    return tflite.export_preset_tflite(preset, tmp_path_factory.mktemp("tflite") / "model.tflite").path


@pytest.fixture(scope="session")
def loaded(exported):
    return tf.saved_model.load(str(exported.path))


def expected_outputs(classifier, segments):
    """The in-process classifier's answer (the preprocessor pads to SEQUENCE_LENGTH; the
    served model pads to the longest row: equal within float error by padding invariance)."""
    logits = classifier.predict(segments, verbose=0)
    probabilities = tf.nn.softmax(logits).numpy()
    class_id = logits.argmax(-1)
    return {
        "logits": logits,
        "probabilities": probabilities,
        "class_id": class_id,
        "class_name": np.array([LABELS[i].encode() for i in class_id], dtype=object),
    }


def assert_outputs_equal(got, want, atol=1e-5):
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=0, atol=atol)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=0, atol=atol)
    np.testing.assert_array_equal(got["class_id"], want["class_id"])
    np.testing.assert_array_equal(got["class_name"], want["class_name"])


def as_numpy(outputs):
    return {name: value.numpy() for name, value in outputs.items()}
