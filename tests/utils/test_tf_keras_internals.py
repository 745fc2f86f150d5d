"""Pins the private tf-keras behaviour `roberta_tf.utils.tf_keras_internals` relies on.

If a tf-keras upgrade changes any of it, these tests fail and say which workaround in
`models/task.py` to revisit, instead of fit() silently training the wrong variables.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from roberta_tf.utils import tf_keras_internals


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))


def _step(optimizer, variables):
    optimizer.apply_gradients([(tf.ones_like(v), v) for v in variables])


def test_a_built_optimizer_refuses_variables_it_was_not_built_for():
    model = _model()
    hidden, out = model.get_layer("hidden"), model.get_layer("out")
    optimizer = keras.optimizers.Adam()
    assert not tf_keras_internals.optimizer_lacks_variables(optimizer, model.trainable_variables)  # unbuilt
    _step(optimizer, out.trainable_variables)
    assert not tf_keras_internals.optimizer_lacks_variables(optimizer, out.trainable_variables)
    assert tf_keras_internals.optimizer_lacks_variables(optimizer, model.trainable_variables)
    # The behaviour that makes task.py start a fresh optimizer when variables are unfrozen:
    with pytest.raises(KeyError, match="cannot recognize variable"):
        _step(optimizer, hidden.trainable_variables)


def test_fit_runs_validation_through_evaluate_with_the_private_keyword():
    seen = []

    class Recording(keras.Model):
        def evaluate(self, *args, **kwargs):
            seen.append(tf_keras_internals.called_by_fit(kwargs))
            return super().evaluate(*args, **kwargs)

    inputs = keras.Input(shape=(3,))
    model = Recording(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert seen == [True, False]  # fit's validation pass, then a user's call


def test_fit_keeps_training_a_layer_frozen_after_compile():
    """tf-keras (unlike Keras 3) keeps its compiled train function when `trainable` changes:
    the reason Task.fit recompiles. If this starts failing, tf-keras fixed it."""
    model = _model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    model.fit(x, y, epochs=1, verbose=0)  # builds the train function with every variable
    hidden = model.get_layer("hidden")
    hidden.trainable = False
    before = hidden.kernel.numpy()
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before, hidden.kernel.numpy())
