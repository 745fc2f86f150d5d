"""`roberta-tf verify`: run the source model and the converted preset on the same texts and
report how far apart they are (token ids, logits, final hidden states).

    roberta-tf verify hf --preset PRESET_DIR --model_dir HF_DIR [--input texts.txt]
    roberta-tf verify fairseq --preset PRESET_DIR --checkpoint model.pt --data_dir DATA \\
        --encoder_json encoder.json --vocab_bpe vocab.bpe [--head NAME]

Needs the source framework (transformers + torch, or fairseq) installed; roberta_tf itself
does not.
"""

import json
import sys

import numpy as np
from absl import flags

from roberta_tf.cli import command
from roberta_tf.cli.command import CommandError, UsageError

NAME = "verify"
SUMMARY = "Compare a converted preset with its source model (transformers or fairseq) on the same texts."
DESCRIPTION = """
Tokenizes each text with the preset's tokenizer (and, for fairseq, also with fairseq's own
GPT-2 BPE, counting texts whose ids differ), runs both models, and prints one JSON object:
texts, token id mismatches, max |logits difference| and max |final hidden state difference|
(over real tokens). Exit code 1 when a difference exceeds --tolerance or ids differ.
"""

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


def define_fairseq_flags(fv):
    flags.DEFINE_string("checkpoint", None, "The model.pt file.", flag_values=fv)
    flags.DEFINE_string("data_dir", None, "The data directory (input0/dict.txt, label/dict.txt).", flag_values=fv)
    flags.DEFINE_string("encoder_json", None, "GPT-2 BPE encoder.json.", flag_values=fv)
    flags.DEFINE_string("vocab_bpe", None, "GPT-2 BPE vocab.bpe.", flag_values=fv)
    flags.DEFINE_string("head", None, "The classification head (default: the preset's only head).", flag_values=fv)


def execute_hf(fv, args):
    del args  # none accepted
    command.require(fv, "preset", "model_dir")
    return _report(fv, verify_huggingface(fv.preset, fv.model_dir, _texts(fv.input, fv.max_texts)))


def execute_fairseq(fv, args):
    del args  # none accepted
    command.require(fv, "preset", "checkpoint", "data_dir", "encoder_json", "vocab_bpe")
    texts = _texts(fv.input, fv.max_texts)
    return _report(fv, verify_fairseq(fv.preset, fv.checkpoint, fv.data_dir, fv.encoder_json, fv.vocab_bpe, fv.head, texts))


MODES = {
    "hf": command.Mode("Against transformers' RobertaModel / RobertaForSequenceClassification (needs torch).",
                       define_hf_flags, execute_hf),
    "fairseq": command.Mode("Against fairseq's RobertaModel and its own GPT-2 BPE (needs fairseq).",
                            define_fairseq_flags, execute_fairseq),
}


def _report(fv, report):
    report["tolerance"] = fv.tolerance
    report["ok"] = bool(
        report["token_id_mismatches"] == 0
        and all(report[k] is None or report[k] <= fv.tolerance for k in ("max_abs_logits_diff", "max_abs_hidden_diff"))
    )
    print(json.dumps(report))
    return command.EXIT_OK if report["ok"] else command.EXIT_ERROR


def _texts(path, limit):
    if path is None:
        return DEFAULT_TEXTS[:limit]
    with open(path, encoding="utf-8") as f:
        texts = [line.rstrip("\r\n") for line in f][:limit]
    if not texts:
        raise CommandError(f"{path}: no texts")
    return texts


def _load_preset(preset):
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, RobertaTextClassifierPreprocessor
    from roberta_tf.presets import loader

    contents = loader.resolve(preset)
    preprocessor = RobertaTextClassifierPreprocessor.from_preset(contents, padding="longest")
    if contents.config.get("classifier") is not None:
        model = RobertaTextClassifier.from_preset(contents, preprocessor=preprocessor)
        return model, model.backbone, preprocessor
    return None, RobertaBackbone.from_preset(contents), preprocessor


def _import(module, extra):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise CommandError(f"verify needs {module} ({error}); install it (pip install {extra})") from None


def _masked_max(a, b, mask):
    return float(np.abs(np.asarray(a)[mask] - np.asarray(b)[mask]).max())


def verify_huggingface(preset, model_dir, texts):
    torch = _import("torch", "-c constraints.txt torch")
    transformers = _import("transformers", "transformers")
    classifier, backbone, preprocessor = _load_preset(preset)
    packed = preprocessor(texts)
    ids, mask = np.array(packed["token_ids"]), np.array(packed["padding_mask"]).astype(bool)
    model_class = transformers.RobertaForSequenceClassification if classifier is not None else transformers.RobertaModel
    reference = model_class.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        output = reference(
            input_ids=torch.from_numpy(ids).long(),
            attention_mask=torch.from_numpy(mask.astype(np.int64)),
            output_hidden_states=True,
        )
    inputs = {"token_ids": ids, "padding_mask": mask}
    logits_diff = None
    if classifier is not None:
        logits_diff = float(np.abs(classifier(inputs).numpy() - output.logits.numpy()).max())
    hidden_diff = _masked_max(backbone(inputs), output.hidden_states[-1].numpy(), mask)
    return {"texts": len(texts), "token_id_mismatches": 0, "max_abs_logits_diff": logits_diff,
            "max_abs_hidden_diff": hidden_diff, "note": "token ids: the preset's tokenizer feeds both models"}


def _fairseq_reference(checkpoint, data_dir, encoder_json, vocab_bpe):
    """fairseq's own hub interface for the checkpoint, with the local GPT-2 BPE files (no
    download). This runs fairseq's `torch.load` on the file: verify trusts the source it is
    asked to compare against, the converter never does."""
    import argparse
    import os

    torch = _import("torch", "-c constraints.txt torch")
    roberta = _import("fairseq.models.roberta", "-e '.[fairseq]'")
    directory, name = os.path.split(os.path.abspath(checkpoint))
    with torch.serialization.safe_globals([argparse.Namespace]):  # torch >= 2.6 loads weights_only
        hub = roberta.RobertaModel.from_pretrained(
            directory, checkpoint_file=name, data_name_or_path=os.path.abspath(data_dir), bpe="gpt2",
            gpt2_encoder_json=os.path.abspath(encoder_json), gpt2_vocab_bpe=os.path.abspath(vocab_bpe),
        )
    return hub.eval()


def verify_fairseq(preset, checkpoint, data_dir, encoder_json, vocab_bpe, head, texts):
    torch = _import("torch", "-c constraints.txt torch")
    reference = _fairseq_reference(checkpoint, data_dir, encoder_json, vocab_bpe)
    classifier, backbone, preprocessor = _load_preset(preset)
    heads = list(getattr(reference.model, "classification_heads", {}) or {})
    if classifier is not None and head is None:
        if len(heads) != 1:
            raise UsageError(f"pick the head with --head (the checkpoint has {heads})")
        head = heads[0]
    mismatches, logits_diff, hidden_diff = 0, 0.0, 0.0
    for text in texts:
        expected_ids = reference.encode(text).numpy()
        packed = preprocessor([text])
        inputs = {"token_ids": np.array(packed["token_ids"]), "padding_mask": np.array(packed["padding_mask"])}
        ids = inputs["token_ids"][0][inputs["padding_mask"][0].astype(bool)]
        if ids.tolist() != expected_ids.tolist():
            mismatches += 1
            continue
        tokens = torch.from_numpy(expected_ids).long()
        with torch.inference_mode():
            features = reference.extract_features(tokens).numpy()[0]
            if classifier is not None:
                expected = reference.predict(head, tokens, return_logits=True).numpy()
                logits_diff = max(logits_diff, float(np.abs(classifier(inputs).numpy() - expected).max()))
        hidden_diff = max(hidden_diff, float(np.abs(backbone(inputs).numpy()[0] - features).max()))
    return {"texts": len(texts), "token_id_mismatches": mismatches,
            "max_abs_logits_diff": logits_diff if classifier is not None else None,
            "max_abs_hidden_diff": hidden_diff}


def main(argv):
    """Runs `roberta-tf verify` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
