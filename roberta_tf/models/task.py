"""`Task`: a tf-keras Model whose fit/evaluate/predict apply its preprocessor (keras-hub's Task).

Keras 3 tasks in keras-hub hook preprocessing into the trainer; tf-keras has no such hook,
so this class turns raw inputs into a `tf.data` pipeline that maps the preprocessor over
batches, then hands that dataset to the stock tf-keras loops. The model itself (`call`,
the exported graph) only ever sees `{"token_ids", "padding_mask"}`.
"""

import numpy as np
from absl import logging
import tensorflow as tf
import tf_keras as keras

from roberta_tf.utils import tf_keras_internals
from roberta_tf.utils.untracked import Untracked

DEFAULT_BATCH_SIZE = 32


class Task(keras.Model):
    """Base of the task models. Subclasses are functional models over the backbone's inputs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Python-side state Keras must not track: the preprocessor (not part of the model's
        # graph or weights), compile arguments, cached preprocessing functions; subclasses add theirs.
        self._untracked = Untracked(preprocessor=None, compile_arguments=None, trainable_key=None, preprocess_cache=None)

    @property
    def preprocessor(self):
        """The preprocessing layer applied in fit/evaluate/predict, or None (inputs are ids)."""
        return self._untracked.preprocessor

    @preprocessor.setter
    def preprocessor(self, value):
        self._untracked.preprocessor = value

    def fit(self, x=None, y=None, batch_size=None, validation_data=None, shuffle=True, sample_weight=None,
            validation_split=0.0, **kwargs):
        x, y, sample_weight = _arrays(x), _arrays(y), _arrays(sample_weight)
        self._drop_stale_train_function()
        if self.preprocessor is not None:
            if validation_split:
                raise ValueError(
                    "validation_split is not supported with a preprocessor; pass validation_data instead."
                )
            x = self._preprocessed(x, y, sample_weight, batch_size, shuffle=shuffle)
            y = sample_weight = batch_size = None
            if validation_data is not None:
                validation_data = self._preprocessed(*_unpack(validation_data), batch_size=None)
        return super().fit(
            x=x, y=y, batch_size=batch_size, validation_data=validation_data, shuffle=shuffle,
            sample_weight=sample_weight, validation_split=validation_split, **kwargs,
        )

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Remembered so fit() can recompile when trainability changes (below).
        self._untracked.compile_arguments = (args, kwargs)
        self._untracked.trainable_key = self._trainable_variables_key()

    def _trainable_variables_key(self):
        return tuple(id(v) for v in self.trainable_variables)

    def _drop_stale_train_function(self):
        """Recompiles (same optimizer, loss and metrics objects) when the trainable variables
        changed since compile, e.g. `model.backbone.trainable = False` as in keras-hub's
        examples: tf-keras, unlike Keras 3, would otherwise keep updating the frozen weights."""
        arguments = self._untracked.compile_arguments
        if arguments is None or self._untracked.trainable_key == self._trainable_variables_key():
            return
        args, kwargs = arguments
        if tf_keras_internals.optimizer_lacks_variables(self.optimizer, self.trainable_variables):
            # A built tf-keras optimizer cannot take new variables (unfreezing): start a fresh
            # one with the same configuration (its moment estimates restart).
            logging.info("Trainable variables grew since compile: using a fresh %s.", type(self.optimizer).__name__)
            kwargs = {**kwargs, "optimizer": type(self.optimizer).from_config(self.optimizer.get_config())}
            args = ()
        self.compile(*args, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight = _arrays(x), _arrays(y), _arrays(sample_weight)
        # fit() runs its validation through evaluate() with data fit already preprocessed.
        if self.preprocessor is not None and not tf_keras_internals.called_by_fit(kwargs):
            x = self._preprocessed(x, y, sample_weight, batch_size)
            y = sample_weight = batch_size = None
        return super().evaluate(x=x, y=y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x = _arrays(x)
        if self.preprocessor is not None:
            x = self._preprocessed(x, None, None, batch_size)
            batch_size = None
        return super().predict(x, batch_size=batch_size, **kwargs)

    def _preprocess_function(self):
        """The preprocessor as `tf.function`s, cached per preprocessor and per element arity
        (x / x, y / x, y, sample_weight). Inside `Dataset.map` a plain Python function is
        traced anew for every dataset (about 1 s for the tokenizer graph, on every
        fit/predict call); a `tf.function` is traced once and then only referenced."""
        cached = self._untracked.preprocess_cache
        if cached is None or cached[0] is not self.preprocessor:
            cached = (self.preprocessor, {})
            self._untracked.preprocess_cache = cached
        preprocessor, functions = cached

        def preprocess(*element):
            if len(element) not in functions:
                functions[len(element)] = tf.function(lambda *e: preprocessor(*e), reduce_retracing=True)
            return functions[len(element)](*element)

        return preprocess

    def _preprocessed(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """Raw inputs -> a batched dataset of preprocessed `(x[, y[, sample_weight]])`.

        A `tf.data.Dataset` must already be batched (keras-hub's rule) and yield `x`, `(x, y)`
        or `(x, y, sample_weight)`; for text pairs its `x` is a tuple `(a, b)` inside that
        outer tuple. Other inputs are sliced and batched here (`batch_size`, default 32).
        """
        preprocessor = self._preprocess_function()
        if isinstance(x, tf.data.Dataset):
            if y is not None or sample_weight is not None:
                raise ValueError("With a tf.data.Dataset, put y and sample_weight in the dataset.")
            return x.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        if x is None:
            raise ValueError("No input data (x is None).")
        elements = (_as_columns(x),)
        if y is not None:
            elements += (np.asarray(y),)
            if sample_weight is not None:
                elements += (np.asarray(sample_weight),)
        elif sample_weight is not None:
            raise ValueError("sample_weight needs y.")
        dataset = tf.data.Dataset.from_tensor_slices(elements)
        if shuffle:
            dataset = dataset.shuffle(int(dataset.cardinality()), reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size or DEFAULT_BATCH_SIZE)
        # Elements are `x`, `(x, y)` or `(x, y, sample_weight)`; `x` is a tuple for text pairs.
        return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _arrays(data):
    """Python lists (keras-hub accepts them, tf-keras does not) -> numpy arrays; lists of
    strings stay lists (they become tf.string columns), tuples (text pairs) stay tuples."""
    if isinstance(data, list) and not any(isinstance(v, (str, bytes)) for v in data):
        return np.asarray(data)
    if isinstance(data, dict):
        return {key: _arrays(value) for key, value in data.items()}
    return data


def _as_columns(x):
    """Strings -> a tf.string column; a (a, b) pair of columns stays a tuple."""
    if isinstance(x, tuple):
        if len(x) != 2:
            raise ValueError(f"Text pairs are a tuple (texts_a, texts_b). Received a tuple of {len(x)}.")
        a, b = (_as_string_column(c) for c in x)
        if len(a) != len(b):
            raise ValueError(f"Both segments need the same number of texts. Received {len(a)} and {len(b)}.")
        return (a, b)
    if isinstance(x, dict):
        raise ValueError(
            "This model has a preprocessor, so it takes raw strings. To feed token_ids and "
            "padding_mask, set `model.preprocessor = None` (or build it with preprocessor=None)."
        )
    return _as_string_column(x)


def _as_string_column(texts):
    if isinstance(texts, (str, bytes)):
        raise ValueError("Pass a list of texts, not a single string.")
    if isinstance(texts, tf.Tensor):
        return texts
    texts = list(texts)
    wrong = next((t for t in texts if not isinstance(t, (str, bytes))), None)
    if wrong is not None:
        raise TypeError(
            f"This model's preprocessor takes texts (str or bytes); found {type(wrong).__name__} {wrong!r}. "
            "For token ids, use preprocessor=None and pass {'token_ids', 'padding_mask'}."
        )
    return tf.constant([t.encode("utf-8") if isinstance(t, str) else t for t in texts], tf.string)


def _unpack(data):
    if isinstance(data, tf.data.Dataset):
        return (data,)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be (x, y), (x, y, sample_weight) or a tf.data.Dataset.")
    return tuple(data)
