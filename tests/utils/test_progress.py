"""`roberta_tf.utils.progress`: a tqdm bar on a terminal, tqdm's own meter as log lines
elsewhere; `FitProgress`, the tf-keras `fit` callback built on it."""

import io
import time

import numpy as np
import pytest
import tqdm

from roberta_tf.utils import progress


@pytest.fixture
def log_lines(monkeypatch):
    """The INFO lines progress writes (stderr is not a terminal under pytest's capture)."""
    lines = []
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: False)
    monkeypatch.setattr(progress.logging, "info", lambda fmt, *args: lines.append(fmt % args))
    return lines


def test_off_a_terminal_the_meter_becomes_log_lines_with_rate_and_eta(log_lines):
    for _ in progress.bar(range(6), description="Scoring", unit="text", log_interval=0):
        time.sleep(0.002)
    assert log_lines[0].startswith("Scoring:   0% 0/6 text [00:00<?")
    assert log_lines[-1].startswith("Scoring: 100% 6/6 text [")
    assert all("text/s" in line for line in log_lines), log_lines  # the rate
    assert all("<" in line for line in log_lines)  # elapsed<remaining: the ETA
    assert len(log_lines) == len(set(log_lines)), "the closing redraw repeated a line"
    assert not any("\r" in line or "|" in line for line in log_lines)  # no redraws, no drawn bar


def test_log_lines_come_every_log_interval_not_every_update(log_lines):
    with progress.bar(total=1000, description="Training", unit="step", log_interval=3600) as bar:
        for _ in range(1000):
            bar.update(1)
    assert len(log_lines) == 2  # the start and the end
    assert "1000/1000" in log_lines[-1]


def test_without_a_total_the_count_and_rate_are_logged(log_lines):
    with progress.bar(description="Reading", unit="line", log_interval=0) as bar:
        bar.update(5)
        bar.set_postfix(loss="0.5", refresh=False)
        bar.update(5)
    assert log_lines[-1].startswith("Reading: 10 line [") and "line/s" in log_lines[-1] and "loss=0.5" in log_lines[-1]


def test_on_a_terminal_it_is_a_plain_tqdm_bar_on_stderr(monkeypatch):
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    fake_stderr = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", fake_stderr)
    bar = progress.bar([1, 2, 3], description="Exporting")
    assert isinstance(bar, tqdm.tqdm) and bar.total == 3
    assert list(bar) == [1, 2, 3]
    assert "Exporting: 100%" in fake_stderr.getvalue() and "3/3" in fake_stderr.getvalue()


def test_fit_progress_shows_each_epoch_and_its_metrics(log_lines):
    import tf_keras as keras

    from roberta_tf.utils import keras_progress

    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.zeros([12, 3], np.float32), np.zeros([12], np.int32)
    callback = keras_progress.FitProgress(description="Training")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    finished = [line for line in log_lines if "3/3 step" in line]
    assert [line.split(":")[0] for line in finished] == ["Training, epoch 1/2", "Training, epoch 2/2"]
    assert all("loss=" in line for line in finished)
    # (progress and keras_progress log through the same absl module, so one list has both)
    assert [line.split(":")[0] for line in log_lines if line.startswith("Epoch")] == ["Epoch 1", "Epoch 2"]
    assert callback._bar is None  # closed
