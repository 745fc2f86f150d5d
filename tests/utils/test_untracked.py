"""State in `Untracked` stays invisible to tf-keras and tf.Module tracking."""

import tensorflow as tf
import tf_keras as keras

from roberta_tf.utils.untracked import Untracked


def test_keras_neither_wraps_nor_tracks_what_it_holds():
    layer = keras.layers.Dense(2)
    inner = keras.layers.Dense(3)
    inner.build((None, 2))
    layer._untracked = Untracked(names=["a", "b"], model=inner)
    layer.build((None, 2))
    assert type(layer._untracked.names) is list  # not a ListWrapper
    assert len(layer.weights) == 2  # inner's kernel and bias are not the layer's weights
    assert inner not in layer._flatten_layers(include_self=False)


def test_tf_module_does_not_save_what_it_holds(tmp_path):
    module = tf.Module()
    module.kept = tf.Variable(1.0)
    module._untracked = Untracked(hidden=tf.Variable(2.0))
    assert [v.numpy() for v in module.variables] == [1.0]
    tf.saved_model.save(module, str(tmp_path))
    loaded = tf.saved_model.load(str(tmp_path))
    assert loaded.kept.numpy() == 1.0 and not hasattr(loaded, "_untracked")
