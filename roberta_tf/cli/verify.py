"""`roberta-tf verify`: run the source model and the converted preset on the same texts and
report how far apart they are (token ids, logits, final hidden states).

    roberta-tf verify hf --preset PRESET_DIR --model_dir HF_DIR [--input texts.txt]
    roberta-tf verify fairseq --preset PRESET_DIR --checkpoint model.pt --data_dir DATA \\
        --encoder_json encoder.json --vocab_bpe vocab.bpe [--head NAME]             (RoBERTa)
    roberta-tf verify fairseq --preset PRESET_DIR --checkpoint model.pt --data_dir DATA \\
        [--sentencepiece_model sentencepiece.bpe.model] [--head NAME]                (XLM-R)

The preset's tokenizer type picks the reference: a byte-level BPE preset (RoBERTa) is held to
transformers' `RobertaModel`/`RobertaForSequenceClassification` or fairseq's `RobertaModel`
with its GPT-2 BPE; a SentencePiece preset (XLM-R) to transformers'
`XLMRobertaModel`/`XLMRobertaForSequenceClassification` with ids from the `sentencepiece`
package under fairseq's mapping (what transformers' `XLMRobertaTokenizer` does), or to
fairseq's `XLMRModel` with its own SentencePiece BPE and dictionary.

Token ids are compared text by text, exactly; the models are compared only on the texts whose
ids agree (elsewhere the inputs differ and so would any output). Reference ids are truncated
as the preset's preprocessor truncates a single text (its first `sequence_length - 2` tokens),
so long texts compare like short ones. One exception stays as it was: transformers' RoBERTa
path feeds the preset's own ids to both models (it compares the weights, not the tokenizer).

Needs the source framework (transformers + torch, plus `sentencepiece` for XLM-R, or fairseq)
installed; roberta_tf itself does not.
"""

import json
import pathlib
import sys

import numpy as np
from absl import flags

from roberta_tf.cli import command
from roberta_tf.cli.command import CommandError, UsageError

NAME = "verify"
SUMMARY = "Compare a converted preset with its source model (transformers or fairseq) on the same texts."
DESCRIPTION = """
The preset's tokenizer type picks the reference: RoBERTa (byte-level BPE) or XLM-R
(SentencePiece). Tokenizes each text with the preset's tokenizer and with the reference's
(fairseq's own GPT-2 BPE or SentencePiece BPE; for XLM-R against transformers, the
`sentencepiece` package with fairseq's id mapping; for RoBERTa against transformers, the
preset's ids feed both models), runs both models on the texts whose ids agree, and prints one
JSON object: texts, token id mismatches (and the first one), max |logits difference| and max
|final hidden state difference| (over real tokens). Exit code 1, with one line on stderr
saying why, when ids differ or a difference exceeds --tolerance.
"""

SENTENCEPIECE_MODEL_FILE = "sentencepiece.bpe.model"  # XLM-R's, in its fairseq data dir and HF directory
TOKENIZER_JSON_FILE = "tokenizer.json"  # transformers' fast tokenizer (an HF directory may have only this)
BYTE_LEVEL_BPE, SENTENCEPIECE = "byte_level_bpe", "sentencepiece"  # a preset's tokenizer types
# fairseq's Dictionary (XLM-R's ids): <s> <pad> </s> <unk> first, then SentencePiece's pieces
# shifted by one; SentencePiece's own <unk> (0) becomes 3.
BOS_ID, PAD_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
FAIRSEQ_OFFSET = 1
# transformers' model types for each tokenizer type, and the prefix of their model classes.
HF_MODEL_CLASSES = {
    BYTE_LEVEL_BPE: {"roberta": "Roberta"},
    SENTENCEPIECE: {"xlm-roberta": "XLMRoberta", "camembert": "Camembert"},
}

DEFAULT_TEXTS = [
    "The movie was a delight from start to finish.",
    "I would not recommend this to anyone.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "東京は日本の首都です。",
    "",
    "Numbers 12,345.67 and emoji 👍🏽 too!",
]


def define_flags(fv):
    flags.DEFINE_string("preset", None, "The converted roberta_tf preset directory.", flag_values=fv)
    flags.DEFINE_string("input", None, "Texts to compare, one per line (default: a built-in mixed sample).", flag_values=fv)
    flags.DEFINE_integer("max_texts", 64, "Compare at most this many texts.", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("tolerance", 1e-4, "Largest acceptable absolute difference.", flag_values=fv)


def define_hf_flags(fv):
    flags.DEFINE_string("model_dir", None, "The Hugging Face checkpoint directory.", flag_values=fv)
    flags.DEFINE_string(
        "sentencepiece_model", None,
        f"XLM-R only: the SentencePiece model the reference ids come from (default: --model_dir's "
        f"{SENTENCEPIECE_MODEL_FILE}).", flag_values=fv,
    )


def define_fairseq_flags(fv):
    flags.DEFINE_string("checkpoint", None, "The model.pt file.", flag_values=fv)
    flags.DEFINE_string("data_dir", None, "The data directory (input0/dict.txt, label/dict.txt).", flag_values=fv)
    flags.DEFINE_string("encoder_json", None, "RoBERTa only: GPT-2 BPE encoder.json.", flag_values=fv)
    flags.DEFINE_string("vocab_bpe", None, "RoBERTa only: GPT-2 BPE vocab.bpe.", flag_values=fv)
    flags.DEFINE_string(
        "sentencepiece_model", None,
        f"XLM-R only: the checkpoint's {SENTENCEPIECE_MODEL_FILE} (default: the one in --data_dir).", flag_values=fv,
    )
    flags.DEFINE_string("head", None, "The classification head (default: the preset's only head).", flag_values=fv)


def execute_hf(fv, args):
    del args  # none accepted
    command.require(fv, "preset", "model_dir")
    contents = _resolve(fv.preset)
    tokenizer_type = _tokenizer_type(contents)
    _hf_class_prefix(fv.model_dir, tokenizer_type, fv.preset)
    sentencepiece_model = None
    if tokenizer_type == SENTENCEPIECE:
        sentencepiece_model = _hf_sentencepiece_model(fv.sentencepiece_model, fv.model_dir, fv.preset)
    elif fv.sentencepiece_model:
        raise UsageError(_not_for_roberta("--sentencepiece_model", fv.preset))
    texts = _texts(fv.input, fv.max_texts)
    return _report(fv, "hf", verify_huggingface(contents, fv.model_dir, texts, sentencepiece_model))


def execute_fairseq(fv, args):
    del args  # none accepted
    _require_fairseq_flags(fv)
    contents = _resolve(fv.preset)
    tokenizer_type = _tokenizer_type(contents)
    sentencepiece_model = None
    if tokenizer_type == SENTENCEPIECE:
        given = [f"--{name}" for name in ("encoder_json", "vocab_bpe") if fv[name].value]
        if given:
            raise UsageError(
                f"{' and '.join(given)}: {fv.preset} is an XLM-R preset (SentencePiece); fairseq tokenizes it "
                f"with the checkpoint's {SENTENCEPIECE_MODEL_FILE} (--sentencepiece_model, or in --data_dir), "
                "not with GPT-2 BPE files"
            )
        sentencepiece_model = _existing_sentencepiece_model(fv.sentencepiece_model, fv.data_dir, "--data_dir", fv.preset)
    else:
        if fv.sentencepiece_model:
            raise UsageError(_not_for_roberta("--sentencepiece_model", fv.preset))
        command.require(fv, "encoder_json", "vocab_bpe")
    if sentencepiece_model:
        tokenizer_files = {"sentencepiece_model": sentencepiece_model}
    else:
        tokenizer_files = {"encoder_json": fv.encoder_json, "vocab_bpe": fv.vocab_bpe}
    texts = _texts(fv.input, fv.max_texts)
    return _report(fv, "fairseq", verify_fairseq(contents, fv.checkpoint, fv.data_dir, fv.head, texts, **tokenizer_files))


MODES = {
    "hf": command.Mode(
        "Against transformers' RobertaModel / RobertaForSequenceClassification, or for an XLM-R preset "
        "XLMRobertaModel / XLMRobertaForSequenceClassification with the sentencepiece package's ids (needs torch).",
        define_hf_flags, execute_hf,
    ),
    "fairseq": command.Mode(
        "Against fairseq's RobertaModel and its GPT-2 BPE, or XLMRModel and its SentencePiece BPE for an XLM-R "
        "preset (needs fairseq).",
        define_fairseq_flags, execute_fairseq,
    ),
}


# ---------------------------------------------------------------------------------------------
# Flags, files and the preset: which reference, and wrong combinations as usage errors
# ---------------------------------------------------------------------------------------------


def _require_fairseq_flags(fv):
    """The always-needed flags plus the GPT-2 BPE files unless XLM-R's SentencePiece model is
    in sight (given, or in --data_dir), as `convert fairseq` asks; the preset's type decides
    the rest once it is read."""
    names = ["preset", "checkpoint", "data_dir"]
    sentencepiece_in_sight = fv.sentencepiece_model or (
        fv.data_dir and (pathlib.Path(fv.data_dir) / SENTENCEPIECE_MODEL_FILE).is_file()
    )
    if not sentencepiece_in_sight:
        names += ["encoder_json", "vocab_bpe"]
    try:
        command.require(fv, *names)
    except UsageError as error:
        bpe_files_missing = not (fv.encoder_json and fv.vocab_bpe)
        if sentencepiece_in_sight or not bpe_files_missing:
            raise
        # XLM-R's users give neither BPE file: name what they give instead.
        raise UsageError(f"{error} (XLM-R: --sentencepiece_model, or {SENTENCEPIECE_MODEL_FILE} in --data_dir)") from None


def _resolve(preset):
    from roberta_tf.presets import loader

    return loader.resolve(preset)


def _tokenizer_type(contents):
    tokenizer_type = contents.tokenizer_type
    if tokenizer_type not in (BYTE_LEVEL_BPE, SENTENCEPIECE):
        raise CommandError(
            f"{contents.source} has no tokenizer ({tokenizer_type!r}): verify compares what both sides make of raw texts"
        )
    return tokenizer_type


def _not_for_roberta(flag, preset):
    return f"{flag}: {preset} is a RoBERTa preset (byte-level BPE); a SentencePiece model is for XLM-R presets"


def _existing_sentencepiece_model(given, directory, directory_flag, preset):
    """The reference's SentencePiece model: `given`, else `directory`'s sentencepiece.bpe.model."""
    if given:
        path = pathlib.Path(given)
        if not path.is_file():
            raise UsageError(f"--sentencepiece_model {given}: no such file")
        return path
    path = pathlib.Path(directory) / SENTENCEPIECE_MODEL_FILE
    if not path.is_file():
        raise UsageError(
            f"{preset} is an XLM-R preset (SentencePiece) but {directory_flag} {directory} has no "
            f"{SENTENCEPIECE_MODEL_FILE}: give the checkpoint's SentencePiece model with --sentencepiece_model"
        )
    return path


def _hf_sentencepiece_model(given, model_dir, preset):
    """The SentencePiece model of an XLM-R reference in transformers: `given`, else
    `model_dir`'s sentencepiece.bpe.model, else None where the directory's tokenizer is only
    tokenizer.json (what transformers' fast tokenizer saves; it is the reference then)."""
    directory = pathlib.Path(model_dir)
    if given or (directory / SENTENCEPIECE_MODEL_FILE).is_file():
        return _existing_sentencepiece_model(given, model_dir, "--model_dir", preset)
    if (directory / TOKENIZER_JSON_FILE).is_file():
        return None
    raise UsageError(
        f"{preset} is an XLM-R preset (SentencePiece) but --model_dir {model_dir} has neither "
        f"{SENTENCEPIECE_MODEL_FILE} nor {TOKENIZER_JSON_FILE}: give the checkpoint's SentencePiece model "
        "with --sentencepiece_model"
    )


def _hf_class_prefix(model_dir, tokenizer_type, preset):
    """The prefix of transformers' classes for `model_dir` ("Roberta", "XLMRoberta", ...). A
    RoBERTa preset against an XLM-R checkpoint (or the reverse) is a wrong pair of paths."""
    config_path = pathlib.Path(model_dir) / "config.json"
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError) as error:
        raise CommandError(f"{model_dir}: not a readable Hugging Face checkpoint directory ({error})") from None
    if model_type not in HF_MODEL_CLASSES[tokenizer_type]:
        kind = "an XLM-R preset (SentencePiece)" if tokenizer_type == SENTENCEPIECE else "a RoBERTa preset (byte-level BPE)"
        raise UsageError(f"{preset} is {kind} but {config_path} says model_type {model_type!r}")
    return HF_MODEL_CLASSES[tokenizer_type][model_type]


def _texts(path, limit):
    if path is None:
        return DEFAULT_TEXTS[:limit]
    with open(path, encoding="utf-8") as f:
        texts = [line.rstrip("\r\n") for line in f][:limit]
    if not texts:
        raise CommandError(f"{path}: no texts")
    return texts


def _import(module, extra):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise CommandError(f"verify needs {module} ({error}); install it (pip install {extra})") from None


# ---------------------------------------------------------------------------------------------
# The preset's side
# ---------------------------------------------------------------------------------------------


class _PresetModels:
    """The preset loaded with the classes of its tokenizer type: classifier (None without a
    head), backbone and preprocessor (padding to the longest text)."""

    def __init__(self, contents):
        from roberta_tf import models

        classes = {  # (backbone, classifier, preprocessor) for each tokenizer type
            BYTE_LEVEL_BPE: (models.RobertaBackbone, models.RobertaTextClassifier, models.RobertaTextClassifierPreprocessor),
            SENTENCEPIECE: (
                models.XLMRobertaBackbone, models.XLMRobertaTextClassifier, models.XLMRobertaTextClassifierPreprocessor
            ),
        }
        self.source = contents.source
        self.tokenizer_type = _tokenizer_type(contents)
        backbone_cls, classifier_cls, preprocessor_cls = classes[self.tokenizer_type]
        self.preprocessor = preprocessor_cls.from_preset(contents, padding="longest")
        self.classifier = None
        if contents.config.get("classifier") is not None:
            self.classifier = classifier_cls.from_preset(contents, preprocessor=self.preprocessor)
            self.backbone = self.classifier.backbone
        else:
            self.backbone = backbone_cls.from_preset(contents)

    @property
    def max_ids(self):
        """How many ids a packed single text keeps (`<s>` and `</s>` included)."""
        return self.preprocessor.sequence_length

    def pack(self, texts):
        """`{"token_ids", "padding_mask"}` as numpy arrays, and each text's unpadded ids."""
        packed = self.preprocessor(texts)
        inputs = {"token_ids": np.asarray(packed["token_ids"]), "padding_mask": np.asarray(packed["padding_mask"])}
        mask = inputs["padding_mask"].astype(bool)
        rows = [row[keep].tolist() for row, keep in zip(inputs["token_ids"], mask)]
        return inputs, rows

    def outputs(self, inputs):
        """(logits or None, final hidden states) as numpy arrays."""
        logits = None if self.classifier is None else np.asarray(self.classifier(inputs, training=False))
        return logits, np.asarray(self.backbone(inputs, training=False))


def _truncated(ids, max_ids):
    """A reference's `<s> ... </s>` cut as the preset's packer cuts a single text."""
    if len(ids) <= max_ids:
        return list(ids)
    return list(ids[: max_ids - 1]) + [ids[-1]]


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------


def compare_ids(texts, preset_rows, reference_rows):
    """(indices of the texts whose ids agree exactly, the first disagreement or None).

    The disagreement names the text (`number` counts from 1, as lines of --input), the first
    position where the ids differ and both id lists."""
    agreeing, first = [], None
    for index, (text, got, want) in enumerate(zip(texts, preset_rows, reference_rows)):
        if got == want:
            agreeing.append(index)
        elif first is None:
            position = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            first = {"number": index + 1, "text": text, "position": position, "preset_ids": got, "reference_ids": want}
    return agreeing, first


def _masked_max(a, b, mask):
    """max |a - b| over the real tokens of `mask`, or None when there are none."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    return float(np.abs(np.asarray(a)[mask] - np.asarray(b)[mask]).max())


def _result(texts, agreeing, first_mismatch, logits_diff, hidden_diff, reference):
    return {
        "texts": len(texts),
        "token_id_mismatches": len(texts) - len(agreeing),
        "first_token_id_mismatch": first_mismatch,
        "max_abs_logits_diff": logits_diff,
        "max_abs_hidden_diff": hidden_diff,
        "reference": reference,
    }


def _report(fv, mode, report):
    """Prints the JSON report; on a failure also one line on stderr saying why. The exit code."""
    report["tolerance"] = fv.tolerance
    failures = failure_reasons(report, fv.tolerance)
    report["ok"] = not failures
    print(json.dumps(report, ensure_ascii=False))
    if failures:
        command.error(f"{command.PROG} {NAME} {mode}", "; ".join(failures))
        return command.EXIT_ERROR
    return command.EXIT_OK


def failure_reasons(report, tolerance):
    """Why `report` fails (id mismatches, differences above `tolerance`); [] when it passes."""
    reasons = []
    if report["token_id_mismatches"]:
        first = report["first_token_id_mismatch"]
        position = first["position"]
        reasons.append(
            f"token ids differ on {report['token_id_mismatches']} of {report['texts']} texts; first: text "
            f"{first['number']} {_shorten(first['text'])} at position {position}: preset "
            f"{_id_at(first['preset_ids'], position)}, reference {_id_at(first['reference_ids'], position)}"
        )
    for key, what in (("max_abs_logits_diff", "logits"), ("max_abs_hidden_diff", "final hidden states")):
        if report[key] is not None and not report[key] <= tolerance:  # NaN fails too
            reasons.append(f"max |{what} difference| {report[key]:.3g} > tolerance {tolerance:g}")
    return reasons


def _shorten(text, limit=40):
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _id_at(ids, position):
    return ids[position] if position < len(ids) else f"(end, {len(ids)} ids)"


# ---------------------------------------------------------------------------------------------
# transformers
# ---------------------------------------------------------------------------------------------


def xlmr_reference_ids(texts, max_ids, sentencepiece_model=None, model_dir=None):
    """(XLM-R's reference ids for `texts`, what made them): the `sentencepiece` package over
    `sentencepiece_model`, else `tokenizers` over `model_dir`'s tokenizer.json."""
    if sentencepiece_model is not None:
        rows = sentencepiece_reference_ids(sentencepiece_model, texts, max_ids)
        return rows, f"sentencepiece ({sentencepiece_model}) with fairseq's ids"
    tokenizer_json = pathlib.Path(model_dir) / TOKENIZER_JSON_FILE
    if not tokenizer_json.is_file():
        raise UsageError(
            f"{model_dir} has neither {SENTENCEPIECE_MODEL_FILE} nor {TOKENIZER_JSON_FILE}: give the "
            "checkpoint's SentencePiece model with --sentencepiece_model"
        )
    return tokenizer_json_reference_ids(tokenizer_json, texts, max_ids), f"tokenizers ({tokenizer_json})"


def tokenizer_json_reference_ids(path, texts, max_ids):
    """The ids transformers' fast tokenizer gives (its tokenizer.json, special tokens added,
    no truncation or padding of its own), cut to `max_ids` as the preset's packer cuts."""
    tokenizers = _import("tokenizers", "tokenizers")
    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - tokenizers raises a bare Exception for a bad file
        raise CommandError(f"{path}: not a readable tokenizer.json ({command.one_line(error)})") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return [_truncated(encoding.ids, max_ids) for encoding in tokenizer.encode_batch(list(texts))]


def sentencepiece_reference_ids(model_path, texts, max_ids):
    """XLM-R's ids as transformers' `XLMRobertaTokenizer` makes them: the `sentencepiece`
    package's pieces shifted by fairseq's offset (its `<unk>` to 3) inside `<s> ... </s>`,
    cut to `max_ids` as the preset's packer cuts."""
    spm = _import("sentencepiece", "sentencepiece")
    try:
        processor = spm.SentencePieceProcessor(model_file=str(model_path))
    except (OSError, RuntimeError) as error:
        raise CommandError(f"{model_path}: not a SentencePiece model ({command.one_line(error)})") from None
    rows = []
    for pieces in processor.encode(list(texts)):
        ids = [BOS_ID] + [piece + FAIRSEQ_OFFSET if piece else UNK_ID for piece in pieces] + [EOS_ID]
        rows.append(_truncated(ids, max_ids))
    return rows


def _padded(rows, pad_id=PAD_ID):
    """Rows of ids -> (ids padded with `pad_id`, mask of the real tokens), by each row's length."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    return ids, mask


def _run_transformers(model_dir, prefix, with_head, ids, mask):
    """transformers' `{prefix}Model` (or `...ForSequenceClassification`) on padded ids:
    (logits or None, final hidden states as numpy, the class name)."""
    torch = _import("torch", "-c constraints.txt torch")
    transformers = _import("transformers", "transformers")
    model_class = getattr(transformers, prefix + ("ForSequenceClassification" if with_head else "Model"))
    reference = model_class.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        output = reference(
            input_ids=torch.from_numpy(np.asarray(ids)).long(),
            attention_mask=torch.from_numpy(np.asarray(mask).astype(np.int64)),
            output_hidden_states=True,
        )
    return (output.logits.numpy() if with_head else None), output.hidden_states[-1].numpy(), model_class.__name__


def verify_huggingface(preset, model_dir, texts, sentencepiece_model=None):
    """Compares `preset` with transformers' model in `model_dir` on `texts`; the report.

    An XLM-R preset's reference ids come from `sentencepiece_model`, else from `model_dir`'s
    tokenizer.json; a RoBERTa preset feeds its own ids to both models."""
    models = _PresetModels(_resolve(preset))
    prefix = _hf_class_prefix(model_dir, models.tokenizer_type, models.source)
    inputs, rows = models.pack(texts)
    if models.tokenizer_type == SENTENCEPIECE:
        reference_rows, tokenizer_name = xlmr_reference_ids(texts, models.max_ids, sentencepiece_model, model_dir)
    else:
        reference_rows = rows
        tokenizer_name = "the preset's tokenizer feeds both models"
    agreeing, first_mismatch = compare_ids(texts, rows, reference_rows)
    logits_diff = hidden_diff = None
    if agreeing:
        ids, mask = _padded([reference_rows[i] for i in agreeing])
        want_logits, want_hidden, model_name = _run_transformers(
            model_dir, prefix, models.classifier is not None, ids, mask
        )
        got_logits, got_hidden = models.outputs({k: v[agreeing] for k, v in inputs.items()})
        if got_logits is not None:
            logits_diff = float(np.abs(got_logits - want_logits).max())
        hidden_diff = _masked_max(got_hidden[:, : ids.shape[1]], want_hidden, mask)
    else:
        model_name = "not run: no text's ids agree"
    return _result(texts, agreeing, first_mismatch, logits_diff, hidden_diff,
                   {"model": f"transformers {model_name}", "tokenizer": tokenizer_name})


# ---------------------------------------------------------------------------------------------
# fairseq
# ---------------------------------------------------------------------------------------------


def _fairseq_reference(checkpoint, data_dir, encoder_json=None, vocab_bpe=None, sentencepiece_model=None):
    """fairseq's own hub interface for the checkpoint, with local tokenizer files (no
    download): `RobertaModel` with the GPT-2 BPE, or `XLMRModel` with the SentencePiece BPE.
    This runs fairseq's `torch.load` on the file: verify trusts the source it is asked to
    compare against, the converter never does."""
    import argparse
    import os

    torch = _import("torch", "-c constraints.txt torch")
    roberta = _import("fairseq.models.roberta", "-e '.[fairseq]'")
    directory, name = os.path.split(os.path.abspath(checkpoint))
    common = dict(checkpoint_file=name, data_name_or_path=os.path.abspath(data_dir))
    with torch.serialization.safe_globals([argparse.Namespace]):  # torch >= 2.6 loads weights_only
        if sentencepiece_model is not None:
            hub = roberta.XLMRModel.from_pretrained(
                directory, bpe="sentencepiece", sentencepiece_model=os.path.abspath(sentencepiece_model), **common
            )
        else:
            hub = roberta.RobertaModel.from_pretrained(
                directory, bpe="gpt2", gpt2_encoder_json=os.path.abspath(encoder_json),
                gpt2_vocab_bpe=os.path.abspath(vocab_bpe), **common,
            )
    return hub.eval()


def _choose_head(reference, head, with_head):
    if not with_head:
        return None
    heads = list(getattr(reference.model, "classification_heads", {}) or {})
    if head is None:
        if len(heads) != 1:
            raise UsageError(f"pick the head with --head (the checkpoint has {heads})")
        return heads[0]
    if head not in heads:
        raise UsageError(f"--head {head}: the checkpoint's heads are {heads}")
    return head


def verify_fairseq(preset, checkpoint, data_dir, head, texts, encoder_json=None, vocab_bpe=None, sentencepiece_model=None):
    """Compares `preset` with fairseq's hub model of `checkpoint` on `texts`; the report.
    Give the GPT-2 BPE files for a RoBERTa preset, `sentencepiece_model` for an XLM-R one."""
    torch = _import("torch", "-c constraints.txt torch")
    reference = _fairseq_reference(checkpoint, data_dir, encoder_json, vocab_bpe, sentencepiece_model)
    models = _PresetModels(_resolve(preset))
    head = _choose_head(reference, head, models.classifier is not None)
    inputs, rows = models.pack(texts)
    reference_rows = [_truncated(reference.encode(text).tolist(), models.max_ids) for text in texts]
    agreeing, first_mismatch = compare_ids(texts, rows, reference_rows)
    logits_diff = hidden_diff = None
    if agreeing:
        # One padded batch: fairseq masks its dictionary's pad id itself (positions too).
        ids, mask = _padded([reference_rows[i] for i in agreeing], reference.task.source_dictionary.pad())
        tokens = torch.from_numpy(ids).long()
        with torch.inference_mode():
            want_hidden = reference.extract_features(tokens).numpy()
            want_logits = reference.predict(head, tokens, return_logits=True).numpy() if head is not None else None
        got_logits, got_hidden = models.outputs({k: v[agreeing] for k, v in inputs.items()})
        if head is not None:
            logits_diff = float(np.abs(got_logits - want_logits).max())
        hidden_diff = _masked_max(got_hidden[:, : ids.shape[1]], want_hidden, mask)
    hub_name = "XLMRModel" if sentencepiece_model is not None else "RobertaModel"
    tokenizer_name = f"fairseq's sentencepiece BPE ({sentencepiece_model})" if sentencepiece_model else "fairseq's GPT-2 BPE"
    return _result(texts, agreeing, first_mismatch, logits_diff, hidden_diff,
                   {"model": f"fairseq {hub_name}" + (f", head {head}" if head else ""), "tokenizer": tokenizer_name})


def main(argv):
    """Runs `roberta-tf verify` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
