"""`roberta-tf export`: a preset -> a TF Serving model version (SavedModel).

    roberta-tf export saved_model --preset DIR --output BASE/NAME [--version N]
        [--precision float32|bfloat16] [--jit_compile] [--sequence_length L]
"""

import signal
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command
from roberta_tf.cli.command import UsageError

NAME = "export"
SUMMARY = "Export a preset as a TF Serving SavedModel version (raw strings in, classifications out)."
ARGS_USAGE = "saved_model"
DESCRIPTION = """
saved_model: writes BASE/NAME/N/ (N = one more than the highest existing version unless
--version is given), the layout TF Serving polls. Signatures: serving_default (text),
classify_pairs (text_a, text_b), tokenize (text, text_pair) and classify_token_ids
(token_ids, padding_mask), each answering logits, probabilities, class_id and class_name
(tokenize: token_ids, padding_mask). Core TensorFlow ops only: any TF Serving version loads it.

The version is built in a hidden staging directory beside it, reloaded and checked (every
warmup request answers as the in-process model does), and only then renamed to N: a server
never sees a partial version, and an interrupted export leaves no numbered directory.

--precision bfloat16 stores the encoder's weights in bfloat16: about 1.9x faster at batch 32 on CPUs with
AVX512_BF16 or AMX, but about 2x slower on CPUs without them. Keep float32 unless you know the
serving CPU. --jit_compile compiles the encoder with XLA, once per distinct input shape.
"""


def define_flags(fv):
    from roberta_tf.export import precision

    flags.DEFINE_string("preset", None, "The preset: a directory, an hf://owner/name handle or a named preset.", flag_values=fv)
    flags.DEFINE_string("output", None, "The model's base path BASE/NAME; the version goes to BASE/NAME/N.", flag_values=fv)
    flags.DEFINE_integer("version", None, "The version number (default: the next free one).", lower_bound=1, flag_values=fv)
    flags.DEFINE_enum(
        "precision", precision.DEFAULT_PRECISION, list(precision.PRECISIONS),
        "Encoder weights and matmuls (LayerNorm, softmax and logits stay float32).", flag_values=fv,
    )
    flags.DEFINE_bool("jit_compile", False, "Compile the encoder with XLA.", flag_values=fv)
    flags.DEFINE_integer(
        "sequence_length", None, "Truncation limit in tokens (default: the preset's; at most the model's maximum).",
        lower_bound=5, flag_values=fv,
    )
    flags.DEFINE_enum("truncate", "round_robin", ["round_robin", "longest_first"], "Pair truncation.", flag_values=fv)
    flags.DEFINE_bool("warmup", True, "Write assets.extra/tf_serving_warmup_requests.", flag_values=fv)


def execute(fv, args):
    if args != ["saved_model"]:
        raise UsageError("say what to export: `roberta-tf export saved_model --preset DIR --output BASE/NAME`")
    missing = [f"--{name}" for name in ("preset", "output") if not getattr(fv, name)]
    if missing:
        raise UsageError(f"{', '.join(missing)} required")
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


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    """Runs `roberta-tf export` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
