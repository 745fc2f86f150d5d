"""RobertaTextClassifier: keras-hub's examples, training on raw strings, padding invariance,
freezing, XLA and save/load round trips."""

import random

import numpy as np
import pytest
import tf_keras as keras

from conftest import shared_path
from roberta_tf.models import (
    RobertaBackbone,
    RobertaTextClassifier,
    RobertaTextClassifierPreprocessor,
    RobertaTokenizer,
)

SMALL = dict(vocabulary_size=50265, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=64)


def _classifier(preprocessor=None, num_classes=3, **kwargs):
    keras.utils.set_random_seed(0)
    return RobertaTextClassifier(RobertaBackbone(**SMALL), num_classes, preprocessor=preprocessor, **kwargs)


def _sst2(split):
    with open(shared_path("sst2", f"{split}.tsv"), encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().splitlines()[1:] if line]
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


# --- keras-hub's documented examples, with `keras_hub.models` -> `roberta_tf.models` ---------


def _custom_vocabulary_preprocessor():
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<mask>": 3}
    vocab = {**vocab, "a": 4, "\u0120quick": 5, "\u0120fox": 6}
    merges = ["\u0120 q", "u i", "c k", "ui ck", "\u0120q uick"]
    merges += ["\u0120 f", "o x", "\u0120f ox"]
    tokenizer = RobertaTokenizer(vocabulary=vocab, merges=merges)
    return RobertaTextClassifierPreprocessor(tokenizer=tokenizer, sequence_length=128)


def test_keras_hub_example_custom_backbone_and_vocabulary():
    features = ["a quick fox", "a fox quick"]
    labels = [0, 3]
    backbone = RobertaBackbone(
        vocabulary_size=20, num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=512, max_sequence_length=128
    )
    classifier = RobertaTextClassifier(backbone=backbone, preprocessor=_custom_vocabulary_preprocessor(), num_classes=4)
    history = classifier.fit(x=features, y=labels, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert classifier.predict(x=features, batch_size=2, verbose=0).shape == (2, 4)


def test_keras_hub_example_raw_strings_recompile_and_freeze(roberta_tokenizer):
    features = ["The quick brown fox jumped.", "I forgot my homework."]
    labels = [0, 3]
    classifier = _classifier(RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=16), num_classes=4)
    classifier.fit(x=features, y=labels, batch_size=2, verbose=0)
    assert classifier.predict(x=features, batch_size=2, verbose=0).shape == (2, 4)
    classifier.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(5e-5),
        jit_compile=True,
    )
    classifier.backbone.trainable = False
    frozen = [w.numpy() for w in classifier.backbone.weights]
    head = [w.numpy() for w in classifier.output_dense.weights]
    classifier.fit(x=features, y=labels, batch_size=2, verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(frozen, classifier.backbone.weights))
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(head, classifier.output_dense.weights))


def test_keras_hub_example_preprocessed_integers():
    features = {
        "token_ids": np.ones(shape=(2, 12), dtype="int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]] * 2),
    }
    labels = [0, 3]
    classifier = _classifier(num_classes=4)
    history = classifier.fit(x=features, y=labels, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_compile_defaults_follow_keras_hub():
    classifier = _classifier()
    assert isinstance(classifier.optimizer, keras.optimizers.Adam)
    assert np.isclose(float(classifier.optimizer.learning_rate.numpy()), 5e-5)
    assert classifier.loss.get_config()["from_logits"] is True
    softmax = _classifier(activation="softmax")
    assert softmax.loss.get_config()["from_logits"] is False
    probabilities = softmax.predict({"token_ids": np.ones((2, 5), "int32"), "padding_mask": np.ones((2, 5))}, verbose=0)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


# --- behaviour ------------------------------------------------------------------------------


def test_text_pairs_and_datasets(roberta_tokenizer):
    import tensorflow as tf

    classifier = _classifier(RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=32))
    premises, hypotheses = ["A man sleeps.", "Two dogs run."], ["Someone rests.", "Cats fly."]
    from_lists = classifier.predict((premises, hypotheses), verbose=0)
    dataset = tf.data.Dataset.from_tensor_slices(((premises, hypotheses), [0, 2])).batch(2)
    classifier.fit(dataset, verbose=0)
    classifier.evaluate(dataset, verbose=0)
    history = classifier.fit((premises, hypotheses), [0, 2], validation_data=((premises, hypotheses), [0, 2]), verbose=0)
    assert np.isfinite(history.history["val_loss"][0])
    assert from_lists.shape == (2, 3)
    with pytest.raises(ValueError, match="same number of texts"):
        classifier.predict((premises, hypotheses[:1]), verbose=0)
    with pytest.raises(ValueError, match="preprocessor = None"):
        classifier.predict({"token_ids": np.ones((1, 3), "int32"), "padding_mask": np.ones((1, 3))}, verbose=0)


def test_padding_invariance(roberta_tokenizer):
    """A text's logits do not depend on its batch neighbours or on the packing length."""
    texts, _ = _sst2("dev")
    texts = texts[:16]
    longest = _classifier(RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=64, padding="longest"))
    fixed = RobertaTextClassifier(
        longest.backbone, 3, preprocessor=RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=64)
    )
    fixed.set_weights(longest.get_weights())
    batch = longest.predict(texts, batch_size=16, verbose=0)
    one_by_one = np.concatenate([longest(longest.preprocessor([t])).numpy() for t in texts])
    padded_to_64 = fixed.predict(texts, batch_size=5, verbose=0)
    assert np.abs(batch - one_by_one).max() <= 1e-5
    assert np.abs(batch - padded_to_64).max() <= 1e-5


def test_fit_on_raw_sst2_strings_learns(roberta_tokenizer):
    """2,000 SST-2 training sentences, a small random backbone: the loss falls and SST-2 dev
    accuracy ends above chance (majority class: 50.9%)."""
    texts, labels = _sst2("train")
    sample = random.Random(0).sample(range(len(texts)), 2000)
    x, y = [texts[i] for i in sample], labels[sample]
    dev_x, dev_y = _sst2("dev")
    classifier = _classifier(
        RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=64, padding="longest"), num_classes=2
    )
    classifier.compile(optimizer=keras.optimizers.Adam(2e-3))
    loss_before, _ = classifier.evaluate(x, y, verbose=0)
    history = classifier.fit(x, y, batch_size=32, epochs=3, verbose=0)
    loss_after, _ = classifier.evaluate(x, y, verbose=0)
    _, dev_accuracy = classifier.evaluate(dev_x, dev_y, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert loss_after < 0.5 * loss_before
    assert dev_accuracy > 0.6, dev_accuracy


def test_keras_save_and_load_round_trip(roberta_tokenizer, tmp_path):
    classifier = _classifier(RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=16), label_names=["a", "b", "c"])
    classifier.fit(["good", "bad", "meh"], [0, 1, 2], verbose=0)
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    restored = keras.models.load_model(path)
    texts = ["A fine film.", "Dull."]
    assert np.array_equal(restored.predict(texts, verbose=0), classifier.predict(texts, verbose=0))
    assert restored.label_names == ["a", "b", "c"]
    assert restored.preprocessor.sequence_length == 16


def test_xla_predictions_equal_plain_ones():
    import tensorflow as tf

    classifier = _classifier()
    inputs = {"token_ids": np.array([[0, 100, 200, 2, 1]], "int32"), "padding_mask": np.array([[1, 1, 1, 1, 0]])}
    plain = classifier(inputs).numpy()
    xla = tf.function(lambda x: classifier(x), jit_compile=True)(inputs).numpy()
    assert np.abs(plain - xla).max() <= 1e-5


def test_bad_constructor_arguments():
    backbone = RobertaBackbone(**SMALL)
    with pytest.raises(ValueError, match="num_classes"):
        RobertaTextClassifier(backbone, 0)
    with pytest.raises(ValueError, match="label_names"):
        RobertaTextClassifier(backbone, 2, label_names=["only one"])


def test_odd_and_bad_raw_inputs(roberta_tokenizer):
    classifier = _classifier(RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=16, padding="longest"))
    odd = classifier.predict(["", "a\x00b", "x" * 100_000, "\u00ff\ufffd"], verbose=0)  # defined results
    assert odd.shape == (4, 3) and np.isfinite(odd).all()
    with pytest.raises(ValueError, match="not a single string"):
        classifier.predict("one string", verbose=0)
    with pytest.raises(TypeError, match="takes texts"):
        classifier.predict([1, 2], verbose=0)
    with pytest.raises(ValueError, match="x is None"):
        classifier.fit(None, [0], verbose=0)
