"""`roberta-tf export`: a preset -> a TF Serving model version (SavedModel).

    roberta-tf export saved_model --preset DIR --output BASE/NAME [--version N]
        [--precision float32|bfloat16] [--jit_compile] [--sequence_length L] [--truncate ...]
"""

import signal
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command
from roberta_tf.export import precision
from roberta_tf.preprocessing import options
from roberta_tf.contract import signatures as contract

NAME = "export"
SUMMARY = "Export a preset for serving: saved_model (a TF Serving SavedModel version, raw strings in)."

_SAVED_MODEL_DESCRIPTION = f"""Writes BASE/NAME/N/ (N = one more than the highest existing version unless
--version is given), the layout TF Serving polls. Core TensorFlow ops only: any TF Serving
version loads it. Signatures (roberta_tf.contract.signatures):

{contract.describe()}

The version is built in a hidden staging directory beside it, reloaded and checked (every
warmup request answers as the in-process model does), and only then renamed to N: a server
never sees a partial version, and an interrupted export leaves no numbered directory.

--precision bfloat16 stores the encoder's weights in bfloat16: about 1.9x faster at batch 32 on
CPUs with AVX512_BF16 or AMX, but about 2x slower on CPUs without them. Keep float32 unless you
know the serving CPU. --jit_compile compiles the encoder with XLA, once per distinct input shape."""


def define_flags(fv):
    flags.DEFINE_string("preset", None, "The preset: a directory, an hf://owner/name handle or a named preset.", flag_values=fv)


def define_saved_model_flags(fv):
    flags.DEFINE_string("output", None, "The model's base path BASE/NAME; the version goes to BASE/NAME/N.", flag_values=fv)
    flags.DEFINE_integer("version", None, "The version number (default: the next free one).", lower_bound=1, flag_values=fv)
    flags.DEFINE_enum(
        "precision", precision.DEFAULT_PRECISION, list(precision.PRECISIONS),
        "Encoder weights and matmuls (LayerNorm, softmax and logits stay float32).", flag_values=fv,
    )
    flags.DEFINE_bool("jit_compile", False, "Compile the encoder with XLA.", flag_values=fv)
    flags.DEFINE_integer(
        "sequence_length", None, "Truncation limit in tokens (default: the preset's; at most the model's maximum).",
        lower_bound=options.MIN_SEQUENCE_LENGTH, flag_values=fv,
    )
    flags.DEFINE_enum("truncate", options.DEFAULT_TRUNCATE, list(options.TRUNCATION_STRATEGIES), "Pair truncation.",
                      flag_values=fv)
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.", flag_values=fv)


def execute_saved_model(fv, args):
    del args  # none accepted
    command.require(fv, "preset", "output")
    logging.set_verbosity(logging.INFO if fv.verbosity is None else fv.verbosity)
    from roberta_tf.export import saved_model

    start = time.perf_counter()
    # SIGTERM (a supervisor, `kill`) unwinds like Ctrl-C, so the staging directory is removed.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = saved_model.export_preset(
            fv.preset, fv.output, fv.version, sequence_length=fv.sequence_length, truncate=fv.truncate,
            precision=fv.precision, jit_compile=fv.jit_compile, warmup_requests=fv.warmup,
        )
    except (RuntimeError, FileExistsError) as e:  # failed verification, or the version exists
        raise command.CommandError(str(e)) from e
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    logging.info("Exported version %d to %s in %.1f s.", result.version, result.path, time.perf_counter() - start)
    print(result.path)
    return command.EXIT_OK


MODES = {
    "saved_model": command.Mode(
        "A TF Serving model version BASE/NAME/N (SavedModel): raw strings in, classifications out.",
        define_saved_model_flags, execute_saved_model, _SAVED_MODEL_DESCRIPTION,
    ),
}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    """Runs `roberta-tf export` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
