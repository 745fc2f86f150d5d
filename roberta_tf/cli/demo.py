"""`roberta-tf demo`: a small SST-2 sentiment classifier trained, exported in every form and
scored, offline, in a few minutes (the work is `roberta_tf.demo.pipeline`).

    roberta-tf demo [--output DIR] [--data_dir DIR] [--quick] [--retrain]
"""

import importlib.util
import logging as std_logging
import signal
import sys

from absl import flags
from absl import logging

from roberta_tf.cli import command
from roberta_tf.demo import data, output

NAME = "demo"
SUMMARY = ("Train a small SST-2 sentiment classifier from scratch, export it (preset, TF Serving SavedModel, "
           "TFLite in 4 forms) and score every artifact: the tour, offline, in a few minutes.")
DESCRIPTION = """
Trains a small RoBERTa (2 layers; NOT roberta-base, which needs pretraining) with roberta_tf's
own fit on GLUE SST-2 train, with the real roberta-base tokenizer, and caches it under
$ROBERTA_TF_CACHE/demo (a second run skips training). Then writes into --output:

  preset/                         the trained preset
  models/roberta_classifier/1/    the TF Serving version (serving/docker-compose.yml serves it)
  tflite/sst2_{float32,float16,dynamic,int8}.tflite   the TFLite models for apps
  demo.json                       everything printed, as JSON

and scores every artifact on SST-2 dev (872 sentences): accuracy, agreement with the in-process
model, batch-1 median latency, size; then prints example sentences through each artifact and
the commands to serve the SavedModel and call it with curl and the Python client.

--output is replaced whole when it holds a previous demo output; any other non-empty directory
is refused. About 4 CPU-minutes on 2 cores, most of it training and the five exports (--quick:
a smaller model on part of the data, about 2.3 CPU-minutes; a cached model skips training).
"""


def define_flags(fv):
    flags.DEFINE_string("output", "roberta-tf-demo", "The output directory.", flag_values=fv)
    flags.DEFINE_string("data_dir", None, "A folder with GLUE SST-2's train.tsv and dev.tsv (default: "
                        "../shared/data/sst2 beside the roberta-tf checkout).", flag_values=fv)
    flags.DEFINE_bool("quick", False, "A smaller model (2 x 64) on 12,000 training examples.", flag_values=fv)
    flags.DEFINE_bool("retrain", False, "Train again even when the cached model is current.", flag_values=fv)


def execute(fv, args):
    del args  # none accepted
    data_dir = fv.data_dir or str(data.default_data_dir())
    try:
        output.check_inputs(fv.output, data_dir)  # before TensorFlow loads: a wrong flag answers at once
    except output.DataMissing as e:
        raise command.UsageError(f"{e}; pass --data_dir DIR, a folder with GLUE SST-2's train.tsv and dev.tsv") from e
    except output.DemoError as e:
        raise command.UsageError(str(e)) from e
    logging.set_verbosity(logging.INFO if fv.verbosity is None else fv.verbosity)
    if (fv.verbosity or 0) < 1:  # TensorFlow's own INFO lines (tracing, SavedModel writing) would bury the steps
        logging.get_absl_handler().addFilter(_WarningsOnlyFrom(("tensorflow", "tf_keras")))
    from roberta_tf.demo import pipeline, report

    # SIGTERM unwinds like Ctrl-C, so the staging directories are removed.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = pipeline.run_demo(fv.output, data_dir, quick=fv.quick, retrain=fv.retrain)
    except output.DemoError as e:
        raise command.CommandError(str(e)) from e
    except RuntimeError as e:  # a failed export check
        raise command.CommandError(str(e)) from e
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    sys.stdout.write(report.render(result))
    sys.stdout.flush()
    return command.EXIT_OK


class _WarningsOnlyFrom(std_logging.Filter):
    """Drops INFO and DEBUG records logged by code inside the named packages (TensorFlow logs
    through absl and its own logger, both ending at absl's handler)."""

    def __init__(self, packages):
        super().__init__()
        self._folders = tuple(folder for package in packages if (spec := importlib.util.find_spec(package))
                              for folder in spec.submodule_search_locations or ())

    def filter(self, record):
        return record.levelno >= std_logging.WARNING or not record.pathname.startswith(self._folders)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    """Runs `roberta-tf demo` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
