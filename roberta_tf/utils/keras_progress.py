"""`FitProgress`: `roberta_tf.utils.progress` as a tf-keras callback for `fit`.

    classifier.fit(dataset, epochs=2, verbose=0, callbacks=[FitProgress(steps_per_epoch=n)])

One bar per epoch (steps, rate, ETA, the running loss as postfix), then one log line with the
epoch's metrics (validation ones included). `tqdm.keras.TqdmCallback` subclasses Keras 3's
`keras.callbacks.Callback` when Keras 3 is installed (it is, beside tf-keras, with the bench
extra), which tf-keras's `fit` does not accept; this one is a tf-keras callback. A separate
module from `progress` so that module stays free of TensorFlow.
"""

import tf_keras as keras
from absl import logging

from roberta_tf.utils import progress


class FitProgress(keras.callbacks.Callback):
    """Progress of `fit`, one bar per epoch.

    Args:
        steps_per_epoch: the bar's total when Keras does not know it (a `tf.data` pipeline of
            unknown cardinality, e.g. length-bucketed batches); ignored when it does.
        description: the text before the meter.
    """

    def __init__(self, steps_per_epoch=None, description="Training"):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.description = description
        self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        total = self.params.get("steps") or self.steps_per_epoch
        epochs = self.params.get("epochs") or 1
        self._bar = progress.bar(total=total, description=f"{self.description}, epoch {epoch + 1}/{epochs}", unit="step")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is None:
            return
        if logs and "loss" in logs:
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)
        self._bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        self._close()
        if logs:
            logging.info("Epoch %d: %s", epoch + 1, ", ".join(f"{name} {float(value):.4f}" for name, value in logs.items()))

    def on_train_end(self, logs=None):
        self._close()  # an epoch cut short (an exception, early stopping) still closes its bar

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
