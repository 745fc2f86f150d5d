"""fairseq RoBERTa: hyper-parameters and state dict -> roberta_tf arguments and named weights.

`model.pt` is read by the torch-free, safe reader (`torch_checkpoint.py`); this module maps
what is inside and `convert` returns the whole checkpoint. Both key generations are handled: fairseq >= 0.10
(`encoder.sentence_encoder.`, `layernorm_embedding`) and older (`decoder.sentence_encoder.`,
`emb_layer_norm`), separate q/k/v projections and the fused `in_proj_weight`.
"""

import pathlib

import numpy as np
from absl import logging

from roberta_tf.converters import layout, torch_checkpoint
from roberta_tf.converters.converted import BYTE_LEVEL_BPE, SENTENCEPIECE, ConvertedCheckpoint
from roberta_tf.converters.layout import ConversionError, fused_qkv, take
from roberta_tf.tokenizers import sentencepiece_model as sentencepiece_model_lib, sentencepiece_vocabulary
from roberta_tf.tokenizers import vocabulary as vocabulary_lib
from roberta_tf.utils import files

SENTENCEPIECE_MODEL_FILE = "sentencepiece.bpe.model"  # XLM-R's, beside dict.txt
_ENCODER_PREFIXES = ("encoder.sentence_encoder.", "decoder.sentence_encoder.")
_EMBEDDING_LAYER_NORMS = ("layernorm_embedding", "emb_layer_norm")
# roberta_tf's per-layer parts -> fairseq's keys under `...layers.N.`.
_LAYER_KEYS = {
    "attention.output": "self_attn.out_proj",
    "attention_layer_norm": "self_attn_layer_norm",
    "feedforward.intermediate": "fc1",
    "feedforward.output": "fc2",
    "feedforward_layer_norm": "final_layer_norm",
}


def backbone_arguments(args):
    """fairseq model args (`cfg["model"]` or legacy `args`: a Namespace or dict) -> RobertaBackbone
    keyword arguments. Unsupported variants raise, naming the field."""
    get = _getter(args)
    activation = get("activation_fn", "gelu")
    if activation not in ("gelu", "gelu_accurate", "relu"):
        raise ConversionError(f"activation_fn={activation!r} is not supported (gelu, gelu_accurate, relu).")
    normalize_before = bool(get("encoder_normalize_before", False))
    return {
        "num_layers": int(get("encoder_layers")),
        "num_heads": int(get("encoder_attention_heads")),
        "hidden_dim": int(get("encoder_embed_dim")),
        "intermediate_dim": int(get("encoder_ffn_embed_dim")),
        "dropout": float(get("dropout", 0.1)),
        "max_sequence_length": int(get("max_positions", 512)),
        "activation": activation,
        "normalize_before": normalize_before,
        "embedding_layer_norm": bool(get("layernorm_embedding", not normalize_before)),
    }


def encoder_prefix(state):
    for prefix in _ENCODER_PREFIXES:
        if f"{prefix}embed_tokens.weight" in state:
            return prefix
    raise ConversionError(
        "Not a fairseq RoBERTa state dict: no 'encoder.sentence_encoder.embed_tokens.weight' "
        "(or the pre-0.10 'decoder.sentence_encoder.' form)."
    )


def classification_heads(state):
    """Names of the classification heads present (`classification_heads.NAME.*`)."""
    return sorted({key.split(".")[1] for key in state if key.startswith("classification_heads.")})


def named_weights(state, num_layers, head=None):
    """fairseq state dict (numpy) -> `{name: array}` in roberta_tf's preset names.

    Args:
        state: the checkpoint's `model` mapping, tensors as numpy arrays.
        num_layers: encoder depth (from `backbone_arguments`).
        head: a classification head name to include as `head.*`, or None.
    """
    prefix = encoder_prefix(state)
    out = {
        "embeddings.token_embedding": take(state, f"{prefix}embed_tokens.weight", "fairseq"),
        "embeddings.position_embedding": take(state, f"{prefix}embed_positions.weight", "fairseq"),
    }
    for norm in _EMBEDDING_LAYER_NORMS:
        if f"{prefix}{norm}.weight" in state:
            _layer_norm(out, "embeddings.layer_norm", state, f"{prefix}{norm}")
    for i in range(num_layers):
        layer = f"{prefix}layers.{i}."
        out[f"layers.{i}.attention.qkv.kernel"], out[f"layers.{i}.attention.qkv.bias"] = _qkv(state, layer + "self_attn.")
        layout.put_layer(out, i, state, layer, _LAYER_KEYS, "fairseq")
    if f"{prefix}layer_norm.weight" in state:
        _layer_norm(out, "final_layer_norm", state, f"{prefix}layer_norm")
    if f"{prefix}layers.{num_layers}.fc1.weight" in state:
        raise ConversionError(f"The checkpoint has more than the {num_layers} layers its config names.")
    if head is not None:
        if head not in classification_heads(state):
            raise ConversionError(
                f"No classification head {head!r}; the checkpoint has {classification_heads(state) or 'none'}."
            )
        _linear(out, "head.pooled_dense", state, f"classification_heads.{head}.dense")
        _linear(out, "head.logits", state, f"classification_heads.{head}.out_proj")
    return out


def _qkv(state, attention):
    if f"{attention}in_proj_weight" in state:  # older checkpoints: one fused [3d, d] projection
        weight = take(state, f"{attention}in_proj_weight", "fairseq")
        bias = take(state, f"{attention}in_proj_bias", "fairseq")
        return np.ascontiguousarray(weight.T), bias
    return fused_qkv(
        *[
            (take(state, f"{attention}{p}_proj.weight", "fairseq"), take(state, f"{attention}{p}_proj.bias", "fairseq"))
            for p in "qkv"
        ],
        source=attention.rstrip("."),
    )


def _linear(out, target, state, source):
    layout.put_linear(out, target, state, source, "fairseq")


def _layer_norm(out, target, state, source):
    layout.put_layer_norm(out, target, state, source, "fairseq")


# --- whole checkpoints -------------------------------------------------------------

HEAD_ACTIVATION = "tanh"  # RoBERTa's pooler_activation_fn; the head roberta_tf builds


def read_checkpoint(checkpoint):
    """`model.pt` -> (model args, state dict), read by the safe, torch-free reader.

    fairseq >= 0.10 stores the args as `cfg["model"]`; older checkpoints (the 2019 releases)
    as a top-level `args` Namespace.
    """
    logging.info("Reading %s.", checkpoint)
    contents = torch_checkpoint.load(checkpoint)
    if not isinstance(contents, dict) or not isinstance(contents.get("model"), dict):
        raise ConversionError(f"{checkpoint}: not a fairseq checkpoint (no 'model' state dict).")
    cfg = contents.get("cfg")
    args = cfg.get("model") if isinstance(cfg, dict) else None
    if args is None:
        args = contents.get("args")
    if args is None:
        raise ConversionError(f"{checkpoint}: no model configuration (neither cfg['model'] nor args).")
    return args, contents["model"]


def list_heads(checkpoint):
    """The classification heads a checkpoint carries."""
    return classification_heads(read_checkpoint(checkpoint)[1])


def read_label_names(label_dict):
    """fairseq's label dictionary (`label/dict.txt`, `label count` lines): head output i is
    line i (the Dictionary's 4 special symbols come first and are not outputs)."""
    names = []
    with open(label_dict, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\r\n").split(" ")
            if not fields[0]:
                continue
            if len(fields) < 2:
                raise ConversionError(f"{label_dict}:{number}: expected '<label> <count>' (the line is not quoted).")
            names.append(fields[0])
    return names


def convert(
    checkpoint,
    dict_txt=None,
    encoder_json=None,
    vocab_bpe=None,
    label_dict=None,
    data_dir=None,
    head=None,
    sentencepiece_model=None,
):
    """fairseq `model.pt` (+ dictionary and GPT-2 BPE files, or XLM-R's SentencePiece model)
    -> `ConvertedCheckpoint`.

    Args:
        checkpoint: the fairseq checkpoint (zip or legacy torch format; never unpickled with
            torch: see `torch_checkpoint`).
        dict_txt, encoder_json, vocab_bpe: fairseq's `dict.txt` and the GPT-2 BPE files; the
            tokenizer's ids are remapped through dict.txt as fairseq's Dictionary does.
        label_dict: the label dictionary (`label/dict.txt`), for class names.
        data_dir: a fairseq data directory; supplies `input0/dict.txt` (or `dict.txt`) and
            `label/dict.txt` where the explicit paths are not given.
        head: the classification head to convert; None picks the only one (several: error
            listing them). A checkpoint without heads gives an encoder without a head. The LM
            head is not converted.
        sentencepiece_model: XLM-R's `sentencepiece.bpe.model` (instead of the GPT-2 BPE files;
            found in `data_dir` too): the tokenizer is SentencePiece, its ids fairseq's through
            dict.txt.
    """
    if sentencepiece_model is not None and (encoder_json is not None or vocab_bpe is not None):
        raise ConversionError("Give the GPT-2 BPE files (RoBERTa) or a SentencePiece model (XLM-R), not both.")
    dict_txt, label_dict = _data_dir_files(data_dir, dict_txt, label_dict)
    if sentencepiece_model is None and data_dir is not None and encoder_json is None:
        found = pathlib.Path(data_dir) / SENTENCEPIECE_MODEL_FILE
        sentencepiece_model = found if found.is_file() else None
    tokenizer_files = [("dict.txt", dict_txt)]
    if sentencepiece_model is None:
        tokenizer_files += [("encoder.json", encoder_json), ("vocab.bpe", vocab_bpe)]
    for name, path in tokenizer_files:
        if path is None:
            raise ConversionError(f"The {name} file is needed (pass it, or data_dir for the dictionaries).")
    args, state = read_checkpoint(checkpoint)
    arguments = backbone_arguments(args)
    # The shape only: a reference to the array would keep its checkpoint buffer alive.
    arguments["vocabulary_size"] = int(take(state, encoder_prefix(state) + "embed_tokens.weight", str(checkpoint)).shape[0])
    if sentencepiece_model is None:
        bpe_vocabulary = vocabulary_lib.from_fairseq_files(encoder_json, vocab_bpe, dict_txt)
        tokenizer = dict(tokenizer_type=BYTE_LEVEL_BPE, bpe_vocabulary=bpe_vocabulary)
        size = bpe_vocabulary.size
    else:
        tokenizer, size = _sentencepiece_tokenizer(sentencepiece_model, dict_txt)
    if size != arguments["vocabulary_size"]:
        raise ConversionError(
            f"{dict_txt} gives {size} ids (with <s>, <pad>, </s>, <unk> and <mask>) but the "
            f"checkpoint's embedding has {arguments['vocabulary_size']} rows: not the dictionary it was trained with."
        )
    layout.check_shapes(state, expected_shapes(state, arguments), str(checkpoint))
    head = _choose_head(state, head, checkpoint)
    head_arguments = None
    if head is not None:
        head_arguments = _head_arguments(state, head, args, label_dict)
    arrays = named_weights(state, arguments["num_layers"], head=head)
    del state  # frees the checkpoint's storages not shared with `arrays`: about one copy stays
    source = {
        "type": "fairseq",
        "path": str(checkpoint),
        "sha256": files.file_sha256(checkpoint),
        "head": head,
        "dict": str(dict_txt),
        "label_dict": str(label_dict) if label_dict else None,
    }
    if sentencepiece_model is not None:
        source["sentencepiece_model"] = str(sentencepiece_model)
    # A BPE vocabulary exists only in memory (fairseq's ids, not GPT-2's).
    return ConvertedCheckpoint(arguments, head_arguments, arrays, source, **tokenizer)


def _sentencepiece_tokenizer(model_path, dict_txt):
    """(ConvertedCheckpoint tokenizer fields, number of ids) for XLM-R's SentencePiece model
    with fairseq's dict.txt. The dictionary is kept only where its order is not
    SentencePiece's (XLM-R's own dict.txt is), so a preset of XLM-R needs just the model."""
    try:
        model = sentencepiece_model_lib.read_model(model_path)
        dict_pieces = sentencepiece_vocabulary.read_dict_pieces(dict_txt)
    except ValueError as error:
        raise ConversionError(str(error)) from None
    tokens, _ = sentencepiece_vocabulary.fairseq_vocabulary(model, dict_pieces)
    default_tokens, _ = sentencepiece_vocabulary.fairseq_vocabulary(model)
    tokenizer = dict(
        tokenizer_type=SENTENCEPIECE,
        tokenizer_files=(pathlib.Path(model_path),),
        dict_pieces=None if tokens == default_tokens else dict_pieces,
    )
    return tokenizer, len(tokens)


def expected_shapes(state, arguments):
    """fairseq key -> shape implied by the backbone arguments (PyTorch [out, in] layout)."""
    prefix = encoder_prefix(state)
    d, f = arguments["hidden_dim"], arguments["intermediate_dim"]
    shapes = {
        f"{prefix}embed_tokens.weight": (arguments["vocabulary_size"], d),
        f"{prefix}embed_positions.weight": (arguments["max_sequence_length"] + 2, d),
    }
    for norm in ("layernorm_embedding", "emb_layer_norm", "layer_norm"):
        shapes.update({f"{prefix}{norm}.weight": (d,), f"{prefix}{norm}.bias": (d,)})
    for i in range(arguments["num_layers"]):
        layer = f"{prefix}layers.{i}."
        shapes.update(layout.layer_shapes(layer, _LAYER_KEYS, d, f))
        for name in ("q_proj", "k_proj", "v_proj"):
            shapes.update(layout.linear_shapes(f"{layer}self_attn.{name}", d, d))
        shapes.update({f"{layer}self_attn.in_proj_weight": (3 * d, d), f"{layer}self_attn.in_proj_bias": (3 * d,)})
    for head in classification_heads(state):
        inner = np.shape(state.get(f"classification_heads.{head}.dense.weight", ((),)))[0]
        shapes[f"classification_heads.{head}.dense.weight"] = (inner, d)
        shapes[f"classification_heads.{head}.out_proj.weight"] = (
            np.shape(state.get(f"classification_heads.{head}.out_proj.weight", ((),)))[0], inner)
    return shapes


def _data_dir_files(data_dir, dict_txt, label_dict):
    if data_dir is None:
        return dict_txt, label_dict
    data_dir = pathlib.Path(data_dir)
    if dict_txt is None:
        dict_txt = next((p for p in (data_dir / "input0" / "dict.txt", data_dir / "dict.txt") if p.is_file()), None)
        if dict_txt is None:
            raise ConversionError(f"{data_dir}: no input0/dict.txt or dict.txt.")
    if label_dict is None and (data_dir / "label" / "dict.txt").is_file():
        label_dict = data_dir / "label" / "dict.txt"
    return dict_txt, label_dict


def _choose_head(state, head, checkpoint):
    heads = classification_heads(state)
    if head is not None:
        if head not in heads:
            raise ConversionError(f"{checkpoint}: no classification head {head!r}; it has {heads or 'none'}.")
        return head
    if len(heads) > 1:
        raise ConversionError(f"{checkpoint} has several classification heads {heads}: pick one with head=.")
    return heads[0] if heads else None


def _head_arguments(state, head, args, label_dict):
    get = _getter(args)
    activation = get("pooler_activation_fn", HEAD_ACTIVATION)
    if activation != HEAD_ACTIVATION:
        raise ConversionError(f"pooler_activation_fn={activation!r} is not supported (RoBERTa's head uses tanh).")
    dense = take(state, f"classification_heads.{head}.dense.weight", "fairseq")
    out = take(state, f"classification_heads.{head}.out_proj.weight", "fairseq")
    num_classes = int(out.shape[0])
    label_names = read_label_names(label_dict) if label_dict else None
    if label_names is not None and len(label_names) != num_classes:
        raise ConversionError(
            f"{label_dict} names {len(label_names)} labels; head {head!r} has {num_classes} outputs."
        )
    return {
        "num_classes": num_classes,
        "hidden_dim": int(dense.shape[0]),
        "dropout": float(get("pooler_dropout", 0.0) or 0.0),
        "label_names": label_names,
    }


def _getter(args):
    """`get(key, default)` over fairseq's model args: a Namespace (legacy `args`, or
    `cfg["model"]`) or a dict."""
    if isinstance(args, dict):
        return lambda key, default=None: args.get(key, default)
    return lambda key, default=None: getattr(args, key, default)
