"""`roberta-tf export`: a preset -> a TF Serving model version (SavedModel) or a TFLite model.

    roberta-tf export saved_model --preset DIR --output BASE/NAME [--version N]
        [--precision float32|bfloat16] [--jit_compile] [--sequence_length L] [--truncate ...]
    roberta-tf export tflite --preset DIR --output FILE.tflite [--inputs utf8_bytes|token_ids]
        [--quantize none|float16|dynamic|int8] [--calibration_data FILE --calibration_column N
        --calibration_size N] [--sequence_length L] [--truncate ...] [--threads N] [--overwrite]
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
SUMMARY = ("Export a preset: saved_model (a TF Serving SavedModel version, raw strings in) or tflite "
           "(one builtin-only .tflite for apps, UTF-8 bytes in).")

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


_TFLITE_DESCRIPTION = f"""Writes FILE.tflite and FILE.tflite.json (the same metadata is inside the model, in its
metadata table under "roberta_tf_export": labels, sequence length, hashes, quantization).
Builtin TFLite ops only (no Flex, no custom op): the stock LiteRT runtime on Android, iOS and
Python runs it with no tokenizer code. One text per invocation. Signatures:

{contract.describe(contract.TFLITE_CONTRACT, contract.TFLITE_CONTRACT)}

--inputs utf8_bytes (default) gives classify and classify_pairs; token_ids gives
classify_token_ids, for apps that tokenize themselves.

--quantize: none (float32: the SavedModel's logits within 1e-4), float16 (half the size),
dynamic (int8 weights, a quarter of the size, the fastest here), int8 (int8 weights and
activations, calibrated on --calibration_data: give texts of the task, e.g. its training file
and --calibration_column; default: generic English sentences). The tokenizer is exact in every
form. The model is converted, reloaded and checked against the in-process classifier
(float32: within 1e-4; quantized: the label agreement goes into the metadata) before it is
written, then renamed into place."""


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


def define_tflite_flags(fv):
    flags.DEFINE_string("output", None, "The .tflite file to write (FILE.tflite.json goes beside it).", flag_values=fv)
    flags.DEFINE_enum("inputs", "utf8_bytes", list(contract.TFLITE_SIGNATURES),
                      "What the model takes: a text's UTF-8 bytes, or packed token ids.", flag_values=fv)
    flags.DEFINE_enum("quantize", "none", list(contract.TFLITE_QUANTIZATIONS),
                      "Weights and activations: none (float32), float16 weights, dynamic (int8 weights), int8.",
                      flag_values=fv)
    flags.DEFINE_string("calibration_data", None,
                        "int8: a text file whose lines (or --calibration_column) calibrate the activation ranges.",
                        flag_values=fv)
    flags.DEFINE_integer("calibration_column", None, "int8: the 0-based tab-separated column of --calibration_data "
                         "(default: whole lines).", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer("calibration_size", 300, "int8: texts sampled (seeded) from --calibration_data.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer(
        "sequence_length", None, "Truncation limit in tokens (default: the preset's; at most the model's maximum).",
        lower_bound=options.MIN_SEQUENCE_LENGTH, flag_values=fv,
    )
    flags.DEFINE_enum("truncate", options.DEFAULT_TRUNCATE, list(options.TRUNCATION_STRATEGIES), "Pair truncation.",
                      flag_values=fv)
    flags.DEFINE_integer("threads", None, "Interpreter threads for the check (recorded in the metadata as the "
                         "recommended setting).", lower_bound=1, flag_values=fv)
    flags.DEFINE_bool("overwrite", False, "Replace an existing FILE.tflite.", flag_values=fv)


def execute_tflite(fv, args):
    del args  # none accepted
    command.require(fv, "preset", "output")
    if fv.calibration_data is not None and fv.quantize != "int8":
        raise command.CommandError("--calibration_data is for --quantize int8 only.")
    logging.set_verbosity(logging.INFO if fv.verbosity is None else fv.verbosity)
    from roberta_tf.export import tflite

    start = time.perf_counter()
    calibration_texts = None
    if fv.calibration_data is not None:
        try:
            calibration_texts = tflite.read_calibration_texts(fv.calibration_data, fv.calibration_column, fv.calibration_size)
        except (OSError, ValueError) as e:
            raise command.CommandError(f"--calibration_data: {e}") from e
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = tflite.export_preset_tflite(
            fv.preset, fv.output, inputs=fv.inputs, quantize=fv.quantize, calibration_texts=calibration_texts,
            sequence_length=fv.sequence_length, truncate=fv.truncate, num_threads=fv.threads, overwrite=fv.overwrite,
        )
    except (RuntimeError, FileExistsError, IsADirectoryError) as e:
        raise command.CommandError(str(e)) from e
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    verification = result.metadata["verification"]
    logging.info(
        "Exported %s (%s, %.1f MB) in %.1f s; label agreement with the in-process model %.0f%% on %d texts, "
        "largest logit difference %.2g.", result.path, fv.quantize, result.size_bytes / 1e6,
        time.perf_counter() - start, 100 * verification["label_agreement"], verification["texts"],
        verification["max_abs_logit_difference"],
    )
    print(result.path)
    return command.EXIT_OK


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
    "tflite": command.Mode(
        "One builtin-only .tflite for apps: a text's UTF-8 bytes in, its classification out (float32, "
        "float16, dynamic-range or int8).",
        define_tflite_flags, execute_tflite, _TFLITE_DESCRIPTION,
    ),
}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    """Runs `roberta-tf export` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
