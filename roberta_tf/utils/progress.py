"""Progress of long steps (training, conversion, calibration, scoring a file, benchmarks): a tqdm
bar with rate and ETA when stderr is a terminal, plain absl log lines otherwise.

    from roberta_tf.utils import progress

    for text in progress.bar(texts, description="Scoring", unit="text"):
        ...
    with progress.bar(total=steps, description="Training", unit="step") as bar:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

`bar` returns a `tqdm.tqdm` in both cases, so the whole tqdm API works (iterate, `update`,
`set_postfix`, `close`, `with`). Off a terminal (CI, a pipe, a log file) tqdm's carriage-return
redraws would make one unreadable line, so the same tqdm object writes through `_LogLines`:
every `LOG_INTERVAL_SECONDS` (and once at the start and the end) its own meter text
(`tqdm.format_meter`: count, percentage, elapsed, ETA, rate, postfix) becomes one INFO line.

No TensorFlow here (the TFLite runtime and the REST client stay TF-free); the `fit` callback is
`roberta_tf.utils.keras_progress.FitProgress`.
"""

import sys

import tqdm
from absl import logging

LOG_INTERVAL_SECONDS = 10.0
# The log-line meter: tqdm's default text without the drawn bar, which means nothing in a log.
# {desc} carries its own ": ", as `set_description` writes it (and tqdm's bar does not double).
LOG_FORMAT = "{desc}{percentage:3.0f}% {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
LOG_FORMAT_NO_TOTAL = "{desc}{n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"


def bar(iterable=None, total=None, description="", unit="it", log_interval=LOG_INTERVAL_SECONDS, disable=False):
    """A progress bar over `iterable` (or updated by hand with `.update(n)`).

    Args:
        iterable: what to iterate; None to call `.update(n)` yourself.
        total: the expected number of items (default: `len(iterable)` when it has one).
        description: the text before the meter, e.g. "Training".
        unit: what is counted ("step", "text").
        log_interval: seconds between log lines when stderr is not a terminal.
        disable: show nothing (the bar still counts), e.g. where results go to the same terminal.

    Returns:
        a `tqdm.tqdm`; use it as an iterator or as a context manager (`with ... as b: b.update()`).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    description = f"{description}: " if description else ""
    if stderr_is_terminal():
        return tqdm.tqdm(iterable, total=total, desc=description, unit=unit, file=sys.stderr, dynamic_ncols=True,
                         disable=disable)
    return tqdm.tqdm(
        iterable, total=total, desc=description, unit=unit, file=_LogLines(),
        bar_format=LOG_FORMAT if total else LOG_FORMAT_NO_TOTAL,
        mininterval=log_interval, miniters=1,  # look at the clock on every update: print every log_interval
        disable=disable,
    )


def stderr_is_terminal():
    """Whether stderr is an interactive terminal (where a redrawn bar is readable)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class _LogLines:
    """A file for tqdm that turns each redraw into one INFO log line."""

    def __init__(self):
        self._last = None

    def write(self, text):
        # tqdm writes "\r" + meter + padding spaces, and "\n" when it closes; closing redraws
        # the last meter, which is not repeated.
        line = text.strip("\r\n ")
        if line and line != self._last:
            logging.info("%s", line)
            self._last = line

    def flush(self):
        pass
