"""`roberta-tf convert`: fairseq or Hugging Face RoBERTa checkpoints -> a roberta_tf preset.

    roberta-tf convert fairseq --checkpoint model.pt --dict dict.txt --encoder_json encoder.json \\
        --vocab_bpe vocab.bpe [--label_dict label/dict.txt] [--head NAME] --output PRESET_DIR
    roberta-tf convert fairseq --checkpoint model.pt --data_dir DATA --encoder_json ... --output DIR
    roberta-tf convert fairseq --checkpoint model.pt --data_dir DATA [--sentencepiece_model M] --output DIR  (XLM-R)
    roberta-tf convert fairseq --checkpoint model.pt --list_heads
    roberta-tf convert hf --model_dir DIR --output PRESET_DIR

Both modes go through the converters' one entry point (`fairseq.convert`,
`huggingface.convert`, which `from_preset` also uses), load the result into a model and save
that as a preset: exactly `Model.from_preset(converted).save_to_preset(output)`.
"""

import pathlib
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command

NAME = "convert"
SUMMARY = "Convert a fairseq model.pt or a Hugging Face checkpoint directory into a roberta_tf preset."
DESCRIPTION = """
Checkpoints are read without torch, by a restricted unpickler that refuses anything but
tensors, dicts and Namespaces: no code from a checkpoint runs. The preset is written to a
staging directory beside --output and renamed into place.
"""


def define_flags(fv):
    flags.DEFINE_string("output", None, "The preset directory to write.", flag_values=fv)
    flags.DEFINE_bool("overwrite", False, "Replace an existing preset directory (atomically).", flag_values=fv)


def define_fairseq_flags(fv):
    flags.DEFINE_string("checkpoint", None, "The model.pt file (released or fine-tuned; zip or legacy format).",
                        flag_values=fv)
    flags.DEFINE_string("dict", None, "dict.txt of the checkpoint's vocabulary.", flag_values=fv)
    flags.DEFINE_string("encoder_json", None, "GPT-2 BPE encoder.json.", flag_values=fv)
    flags.DEFINE_string("vocab_bpe", None, "GPT-2 BPE vocab.bpe.", flag_values=fv)
    flags.DEFINE_string(
        "sentencepiece_model", None,
        "XLM-R: the checkpoint's sentencepiece.bpe.model (instead of --encoder_json/--vocab_bpe; also found "
        "in --data_dir).", flag_values=fv,
    )
    flags.DEFINE_string("label_dict", None, "label/dict.txt (class names in head order).", flag_values=fv)
    flags.DEFINE_string(
        "data_dir", None, "A data directory (input0/dict.txt, label/dict.txt) instead of --dict/--label_dict.",
        flag_values=fv,
    )
    flags.DEFINE_string("head", None, "The classification head to convert (default: the only one).", flag_values=fv)
    flags.DEFINE_bool("list_heads", False, "Print the checkpoint's classification heads and exit.", flag_values=fv)


def define_hf_flags(fv):
    flags.DEFINE_string(
        "model_dir", None,
        "The checkpoint directory: config.json, model.safetensors (or pytorch_model.bin) and vocab.json + "
        "merges.txt (or tokenizer.json) or XLM-R's sentencepiece.bpe.model (or a tokenizer.json with a Unigram "
        "model); RobertaModel, "
        "RobertaForSequenceClassification, XLMRobertaModel or XLMRobertaForSequenceClassification (id2label names kept).",
        flag_values=fv,
    )


def execute_fairseq(fv, args):
    del args  # none accepted
    from roberta_tf.converters import fairseq

    command.require(fv, "checkpoint")
    if fv.list_heads:
        print("\n".join(fairseq.list_heads(fv.checkpoint)))
        return command.EXIT_OK
    command.require(fv, "output")
    sentencepiece_in_data_dir = fv.data_dir and (pathlib.Path(fv.data_dir) / fairseq.SENTENCEPIECE_MODEL_FILE).is_file()
    if not (fv.sentencepiece_model or sentencepiece_in_data_dir):
        try:
            command.require(fv, "encoder_json", "vocab_bpe")
        except command.UsageError as error:  # name XLM-R's file too: its users give neither BPE file
            raise command.UsageError(
                f"{error} (XLM-R: --sentencepiece_model, or {fairseq.SENTENCEPIECE_MODEL_FILE} in --data_dir)"
            ) from None
    if not (fv.dict or fv.data_dir):
        raise command.UsageError("--dict (or --data_dir) required")
    return _write(fv, lambda: fairseq.convert(
        fv.checkpoint, dict_txt=fv.dict, encoder_json=fv.encoder_json, vocab_bpe=fv.vocab_bpe,
        label_dict=fv.label_dict, data_dir=fv.data_dir, head=fv.head, sentencepiece_model=fv.sentencepiece_model,
    ))


def execute_hf(fv, args):
    del args  # none accepted
    from roberta_tf.converters import huggingface

    command.require(fv, "model_dir", "output")
    return _write(fv, lambda: huggingface.convert(fv.model_dir))


MODES = {
    "fairseq": command.Mode(
        "A fairseq RoBERTa model.pt, its dictionary (--dict or --data_dir) and the GPT-2 BPE files (XLM-R: "
        "--sentencepiece_model); "
        "--head picks a classification head (--list_heads shows them); without heads, a backbone-only preset.",
        define_fairseq_flags, execute_fairseq,
    ),
    "hf": command.Mode(
        "A Hugging Face RoBERTa or XLM-RoBERTa checkpoint directory (safetensors or pytorch_model.bin).",
        define_hf_flags, execute_hf,
    ),
}


def _write(fv, convert):
    logging.set_verbosity(logging.INFO if fv.verbosity is None else fv.verbosity)
    start = time.perf_counter()
    preset = write_preset(convert(), fv.output, overwrite=fv.overwrite)
    logging.info("Wrote %s in %.1f s.", preset, time.perf_counter() - start)
    print(preset)
    return command.EXIT_OK


def write_preset(converted, output, overwrite=False):
    """A `ConvertedCheckpoint` -> a preset directory at `output`: the checkpoint loaded into
    its model (a classifier when it has a head, else a backbone) and saved with its
    provenance. The tokenizer files are written from the converted vocabulary, without
    building the tokenizer layer. Returns `output` as a pathlib.Path."""
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier

    # XLM-R's classes are RoBERTa's with another tokenizer; the preset records which.
    if converted.head is not None:
        model = RobertaTextClassifier.from_preset(converted, preprocessor=None)
    else:
        model = RobertaBackbone.from_preset(converted)
    tokenizer = {"bpe_vocabulary": converted.bpe_vocabulary}
    if converted.tokenizer_type == "sentencepiece":
        tokenizer = {"sentencepiece_model": converted.tokenizer_files[0], "dict_pieces": converted.dict_pieces}
    model.save_to_preset(output, overwrite=overwrite, source=converted.source, **tokenizer)
    return pathlib.Path(output)


def main(argv):
    """Runs `roberta-tf convert` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
