"""`roberta-tf convert`: fairseq or Hugging Face RoBERTa checkpoints -> a roberta_tf preset.

    roberta-tf convert fairseq --checkpoint model.pt --dict dict.txt --encoder_json encoder.json \\
        --vocab_bpe vocab.bpe [--label_dict label/dict.txt] [--head NAME] --output PRESET_DIR
    roberta-tf convert fairseq --checkpoint model.pt --data_dir DATA --encoder_json ... --output DIR
    roberta-tf convert fairseq --checkpoint model.pt --list_heads
    roberta-tf convert hf --model_dir DIR --output PRESET_DIR
"""

import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command
from roberta_tf.cli.command import UsageError

NAME = "convert"
SUMMARY = "Convert a fairseq model.pt or a Hugging Face checkpoint directory into a roberta_tf preset."
ARGS_USAGE = "fairseq|hf"
DESCRIPTION = """
fairseq: --checkpoint model.pt (released or fine-tuned; zip or legacy torch format, read
without torch by a restricted unpickler that refuses anything but tensors, dicts and
Namespaces), the dictionary (--dict, or --data_dir with input0/dict.txt), the GPT-2 BPE files
(--encoder_json, --vocab_bpe) and, for classifiers, --label_dict (or --data_dir's
label/dict.txt) for class names. --head picks a classification head (--list_heads shows
them); a checkpoint without heads gives a backbone-only preset. The LM head is not converted.

hf: --model_dir with config.json, model.safetensors (or pytorch_model.bin, read by the same
safe reader) and vocab.json + merges.txt (or tokenizer.json); RobertaModel or
RobertaForSequenceClassification (with id2label names).

The preset is written to a staging directory beside --output and renamed into place.
"""


def define_flags(fv):
    flags.DEFINE_string("output", None, "The preset directory to write.", flag_values=fv)
    flags.DEFINE_bool("overwrite", False, "Replace an existing preset directory (atomically).", flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "fairseq: the model.pt file.", flag_values=fv)
    flags.DEFINE_string("dict", None, "fairseq: dict.txt of the checkpoint's vocabulary.", flag_values=fv)
    flags.DEFINE_string("encoder_json", None, "fairseq: GPT-2 BPE encoder.json.", flag_values=fv)
    flags.DEFINE_string("vocab_bpe", None, "fairseq: GPT-2 BPE vocab.bpe.", flag_values=fv)
    flags.DEFINE_string("label_dict", None, "fairseq: label/dict.txt (class names in head order).", flag_values=fv)
    flags.DEFINE_string(
        "data_dir", None, "fairseq: a data directory (input0/dict.txt, label/dict.txt) instead of --dict/--label_dict.",
        flag_values=fv,
    )
    flags.DEFINE_string("head", None, "fairseq: the classification head to convert.", flag_values=fv)
    flags.DEFINE_bool("list_heads", False, "fairseq: print the checkpoint's classification heads and exit.", flag_values=fv)
    flags.DEFINE_string("model_dir", None, "hf: the Hugging Face checkpoint directory.", flag_values=fv)


def execute(fv, args):
    if len(args) != 1 or args[0] not in ("fairseq", "hf"):
        raise UsageError("say what to convert: `roberta-tf convert fairseq ...` or `roberta-tf convert hf ...`")
    logging.set_verbosity(logging.INFO if fv.verbosity is None else fv.verbosity)
    start = time.perf_counter()
    if args[0] == "fairseq":
        from roberta_tf.converters import fairseq

        if not fv.checkpoint:
            raise UsageError("--checkpoint is required")
        if fv.list_heads:
            print("\n".join(fairseq.list_heads(fv.checkpoint)))
            return command.EXIT_OK
        _require(fv, "output", "encoder_json", "vocab_bpe")
        if not (fv.dict or fv.data_dir):
            raise UsageError("--dict (or --data_dir) is required")
        preset = fairseq.convert_checkpoint(
            fv.checkpoint, fv.output, dict_txt=fv.dict, encoder_json=fv.encoder_json, vocab_bpe=fv.vocab_bpe,
            label_dict=fv.label_dict, data_dir=fv.data_dir, head=fv.head, overwrite=fv.overwrite,
        )
    else:
        from roberta_tf.converters import huggingface

        _require(fv, "model_dir", "output")
        preset = huggingface.convert_directory(fv.model_dir, fv.output, overwrite=fv.overwrite)
    logging.info("Wrote %s in %.1f s.", preset, time.perf_counter() - start)
    print(preset)
    return command.EXIT_OK


def _require(fv, *names):
    missing = [f"--{name}" for name in names if not getattr(fv, name)]
    if missing:
        raise UsageError(f"{', '.join(missing)} required")


def main(argv):
    """Runs `roberta-tf convert` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
