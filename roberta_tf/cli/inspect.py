"""`roberta-tf inspect PATH`: what an artifact is, read from its files without running it.

    roberta-tf inspect models/sst2              # a SavedModel base directory (its highest version)
    roberta-tf inspect sst2_int8.tflite --json  # the description as one JSON object

The work is `roberta_tf.artifacts.describe` (`describe` -> dict, `format_description` -> text).
"""

import json
import sys

from absl import flags

from roberta_tf.cli import command
from roberta_tf.cli.command import UsageError

NAME = "inspect"
SUMMARY = ("Describe a preset, SavedModel or .tflite: labels, signatures with dtypes and shapes, op set, "
           "precision or quantization, size, provenance and hashes.")
ARGS_USAGE = "PATH"
USES_TENSORFLOW = False  # imported in `execute` once the path is known to be an artifact
DESCRIPTION = """
PATH is a preset directory, a named preset (e.g. roberta_base_en: its registry entry, nothing
is downloaded) or hf:// handle, a Hugging Face checkpoint directory, a SavedModel version
directory or its base directory (the highest version is described, as TF Serving serves it,
and the versions present are listed), or a .tflite model.

Printed: the kind, size, labels, sequence length and truncation; a SavedModel's precision or a
TFLite model's quantization; the op-set check (SavedModel: core TensorFlow ops only, so any TF
Serving loads it; TFLite: builtin ops only, so the stock runtime runs it); every signature's
inputs and outputs with dtypes and shapes (? = any size), read from the model files and
compared with roberta_tf's contract; a preset's encoder geometry, parameter count, head,
preprocessor and tokenizer; and the provenance the export metadata records (source preset and
its SHA-256, the checkpoint's SHA-256, the tokenizer files' SHA-256, the roberta_tf and
TensorFlow versions, the creation date). Nothing is run and no weights are loaded.

--json prints the same as one JSON object (keys: roberta_tf.artifacts.describe).
"""


def define_flags(fv):
    flags.DEFINE_bool("json", False, "Print the description as one JSON object instead of text.", flag_values=fv)


def execute(fv, args):
    if len(args) != 1 or not args[0]:
        got = "no PATH" if not args else ("an empty PATH" if len(args) == 1 else f"{len(args)} arguments")
        raise UsageError(f"give exactly one PATH to inspect (got {got})")
    from roberta_tf.artifacts import locate

    artifact = locate(args[0])  # TensorFlow-free: a wrong path fails fast
    if not fv.verbose:
        command.import_tensorflow_quietly()  # `describe` reads SavedModel protos with TensorFlow
    from roberta_tf.artifacts import describe

    description = describe.describe(artifact)
    if fv.json:
        sys.stdout.write(json.dumps(description, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(describe.format_description(description))
    sys.stdout.flush()


def main(argv):
    return command.run_subcommand(sys.modules[__name__], argv)
