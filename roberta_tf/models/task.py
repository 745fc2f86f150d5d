"""`Task`: a tf-keras Model whose fit/evaluate/predict apply its preprocessor (keras-hub's Task).

Keras 3 tasks in keras-hub hook preprocessing into the trainer; tf-keras has no such hook,
so this class turns raw inputs into a `tf.data` pipeline that maps the preprocessor over
batches, then hands that dataset to the stock tf-keras loops. The model itself (`call`,
the exported graph) only ever sees `{"token_ids", "padding_mask"}`.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras

DEFAULT_BATCH_SIZE = 32


class Task(keras.Model):
    """Base of the task models. Subclasses are functional models over the backbone's inputs."""

    @property
    def preprocessor(self):
        """The preprocessing layer applied in fit/evaluate/predict, or None (inputs are ids)."""
        return getattr(self, "_preprocessor", None)

    @preprocessor.setter
    def preprocessor(self, value):
        # Kept out of Keras tracking: it is not part of the model's graph or weights.
        self.__dict__["_preprocessor"] = value

    def fit(self, x=None, y=None, batch_size=None, validation_data=None, shuffle=True, sample_weight=None,
            validation_split=0.0, **kwargs):
        x, y, sample_weight = _arrays(x), _arrays(y), _arrays(sample_weight)
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

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight = _arrays(x), _arrays(y), _arrays(sample_weight)
        if self.preprocessor is not None:
            x = self._preprocessed(x, y, sample_weight, batch_size)
            y = sample_weight = batch_size = None
        return super().evaluate(x=x, y=y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x = _arrays(x)
        if self.preprocessor is not None:
            x = self._preprocessed(x, None, None, batch_size)
            batch_size = None
        return super().predict(x, batch_size=batch_size, **kwargs)

    def _preprocessed(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """Raw inputs -> a batched dataset of preprocessed `(x[, y[, sample_weight]])`.

        A `tf.data.Dataset` must already be batched (keras-hub's rule) and yield `x`, `(x, y)`
        or `(x, y, sample_weight)`; for text pairs its `x` is a tuple `(a, b)` inside that
        outer tuple. Other inputs are sliced and batched here (`batch_size`, default 32).
        """
        preprocessor = self.preprocessor
        if isinstance(x, tf.data.Dataset):
            if y is not None or sample_weight is not None:
                raise ValueError("With a tf.data.Dataset, put y and sample_weight in the dataset.")
            return x.map(_apply(preprocessor), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
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
        return dataset.map(_apply(preprocessor), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _arrays(data):
    """Python lists (keras-hub accepts them, tf-keras does not) -> numpy arrays; lists of
    strings stay lists (they become tf.string columns), tuples (text pairs) stay tuples."""
    if isinstance(data, list) and not any(isinstance(v, (str, bytes)) for v in data):
        return np.asarray(data)
    if isinstance(data, dict):
        return {key: _arrays(value) for key, value in data.items()}
    return data


def _apply(preprocessor):
    # Elements are `x`, `(x, y)` or `(x, y, sample_weight)`; `x` is a tuple for text pairs.
    return lambda *element: preprocessor(*element)


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
    return tf.constant([t.encode("utf-8") if isinstance(t, str) else t for t in texts], tf.string)


def _unpack(data):
    if isinstance(data, tf.data.Dataset):
        return (data,)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be (x, y), (x, y, sample_weight) or a tf.data.Dataset.")
    return tuple(data)
