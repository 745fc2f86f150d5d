"""Hugging Face RoBERTa (`RobertaModel`, `RobertaForSequenceClassification`): config.json and
state dict -> roberta_tf arguments and named weights.

Hugging Face adds a token-type embedding (one row for RoBERTa) to every token; fairseq has
none. It is folded into the position table (`position + token_type[0]`), exact up to float
rounding, so the converted model has fairseq's structure.
"""

import json
import pathlib

import numpy as np

from roberta_tf.converters import layout, torch_checkpoint
from roberta_tf.converters.converted import BYTE_LEVEL_BPE, SENTENCEPIECE, ConvertedCheckpoint
from roberta_tf.converters.layout import ConversionError, fused_qkv, take
from roberta_tf.tokenizers import hf_unigram, sentencepiece_model, vocabulary as vocabulary_lib
from roberta_tf.tokenizers.sentencepiece_vocabulary import fairseq_vocabulary
from roberta_tf.utils import files

SENTENCEPIECE_MODEL_FILE = "sentencepiece.bpe.model"  # XLM-R's
TOKENIZER_JSON_FILE = "tokenizer.json"

# Hugging Face `hidden_act` -> fairseq `activation_fn` names (RobertaBackbone's).
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_accurate", "gelu_pytorch_tanh": "gelu_accurate", "relu": "relu"}
_PADDING_INDEX = 1
# roberta_tf's per-layer parts -> Hugging Face's keys under `...encoder.layer.N.`.
_LAYER_KEYS = {
    "attention.output": "attention.output.dense",
    "attention_layer_norm": "attention.output.LayerNorm",
    "feedforward.intermediate": "intermediate.dense",
    "feedforward.output": "output.dense",
    "feedforward_layer_norm": "output.LayerNorm",
}
# Checkpoints from before 2020 name LayerNorm parameters gamma/beta.
_NORM_NAMES = (("weight", "bias"), ("gamma", "beta"))


def read_config(model_dir):
    path = pathlib.Path(model_dir) / "config.json"
    if not path.is_file():
        raise ConversionError(f"{path}: not found (a Hugging Face checkpoint directory has config.json).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path}: not valid JSON ({error}).") from None


def backbone_arguments(config):
    """config.json (dict) -> RobertaBackbone keyword arguments."""
    model_type = config.get("model_type")
    if model_type not in ("roberta", "xlm-roberta", "camembert"):
        raise ConversionError(f"config.json: model_type {model_type!r} is not a RoBERTa model.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"config.json: position_embedding_type {config['position_embedding_type']!r} is not supported.")
    if config.get("pad_token_id", _PADDING_INDEX) != _PADDING_INDEX:
        raise ConversionError(f"config.json: pad_token_id must be {_PADDING_INDEX} (fairseq's positions).")
    activation = config.get("hidden_act", "gelu")
    if activation not in _ACTIVATIONS:
        raise ConversionError(f"config.json: hidden_act {activation!r} is not supported ({sorted(_ACTIVATIONS)}).")
    return {
        "vocabulary_size": int(config["vocab_size"]),
        "num_layers": int(config["num_hidden_layers"]),
        "num_heads": int(config["num_attention_heads"]),
        "hidden_dim": int(config["hidden_size"]),
        "intermediate_dim": int(config["intermediate_size"]),
        "dropout": float(config.get("hidden_dropout_prob", 0.1)),
        "max_sequence_length": int(config["max_position_embeddings"]) - _PADDING_INDEX - 1,
        "activation": _ACTIVATIONS[activation],
        "layer_norm_epsilon": float(config.get("layer_norm_eps", 1e-5)),
    }


def label_names(config):
    """`id2label` as a list, or None when it holds only the default LABEL_i names."""
    id2label = config.get("id2label")
    if not id2label:
        return None
    names = [id2label.get(str(i), id2label.get(i)) for i in range(len(id2label))]
    if any(name is None for name in names) or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return [str(name) for name in names]


def expected_shapes(state, arguments):
    """HF key -> shape implied by config.json (PyTorch [out, in] layout)."""
    prefix = "roberta." if "roberta.embeddings.word_embeddings.weight" in state else ""
    d, f = arguments["hidden_dim"], arguments["intermediate_dim"]
    shapes = {
        f"{prefix}embeddings.word_embeddings.weight": (arguments["vocabulary_size"], d),
        f"{prefix}embeddings.position_embeddings.weight": (arguments["max_sequence_length"] + _PADDING_INDEX + 1, d),
    }
    shapes.update({f"{prefix}embeddings.LayerNorm.{part}": (d,) for pair in _NORM_NAMES for part in pair})
    for i in range(arguments["num_layers"]):
        layer = f"{prefix}encoder.layer.{i}."
        shapes.update(layout.layer_shapes(layer, _LAYER_KEYS, d, f, _NORM_NAMES))
        for name in ("query", "key", "value"):
            shapes.update(layout.linear_shapes(f"{layer}attention.self.{name}", d, d))
    return shapes


def has_classifier(state):
    return "classifier.out_proj.weight" in state


def named_weights(state, num_layers):
    """HF state dict (numpy) -> `{name: array}` in roberta_tf's names; the classification
    head is included when present, the pooler and LM head are ignored (RoBERTa classifiers
    do not use them)."""
    prefix = "roberta." if "roberta.embeddings.word_embeddings.weight" in state else ""
    if f"{prefix}embeddings.word_embeddings.weight" not in state:
        raise ConversionError("Not a Hugging Face RoBERTa state dict: no 'roberta.embeddings.word_embeddings.weight'.")
    embeddings = f"{prefix}embeddings."
    positions = take(state, embeddings + "position_embeddings.weight", "huggingface")
    token_type_key = embeddings + "token_type_embeddings.weight"
    if token_type_key in state:
        token_types = np.asarray(state[token_type_key])
        # RoBERTa's token_type_ids are all 0. Summed in float32, as the model adds them at run
        # time: a float16 sum would round the fused table.
        positions = positions.astype(np.float32) + token_types[0].astype(np.float32)
    out = {
        "embeddings.token_embedding": take(state, embeddings + "word_embeddings.weight", "huggingface"),
        "embeddings.position_embedding": positions,
    }
    _layer_norm(out, "embeddings.layer_norm", state, embeddings + "LayerNorm")
    for i in range(num_layers):
        layer = f"{prefix}encoder.layer.{i}."
        attention = layer + "attention.self."
        out[f"layers.{i}.attention.qkv.kernel"], out[f"layers.{i}.attention.qkv.bias"] = fused_qkv(
            *[(take(state, f"{attention}{p}.weight", "huggingface"), take(state, f"{attention}{p}.bias", "huggingface"))
              for p in ("query", "key", "value")],
            source=attention.rstrip("."),
        )
        layout.put_layer(out, i, state, layer, _LAYER_KEYS, "huggingface", norm_names=_NORM_NAMES)
    if f"{prefix}encoder.layer.{num_layers}.output.dense.weight" in state:
        raise ConversionError(f"The checkpoint has more than the {num_layers} layers config.json names.")
    if has_classifier(state):
        _linear(out, "head.pooled_dense", state, "classifier.dense")
        _linear(out, "head.logits", state, "classifier.out_proj")
    return out


def _linear(out, target, state, source):
    layout.put_linear(out, target, state, source, "huggingface")


def _layer_norm(out, target, state, source):
    layout.put_layer_norm(out, target, state, source, "huggingface", names=_NORM_NAMES)


# --- whole checkpoint directories ----------------------------------------------------------

_WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin")


def convert(model_dir):
    """A Hugging Face RoBERTa checkpoint directory -> `ConvertedCheckpoint`: the one entry
    point behind `from_preset(directory)` (in memory) and `roberta-tf convert hf` (to disk).

    Reads config.json, the weights (`model.safetensors`, sharded via its index, or
    `pytorch_model.bin` through the safe reader) and the tokenizer (`vocab.json` + `merges.txt`,
    or `tokenizer.json`; XLM-R's `sentencepiece.bpe.model`, or its `tokenizer.json` turned into
    the SentencePiece model it stands for; see `read_tokenizer`). Every tensor's shape
    is checked against config.json before mapping; a RobertaForSequenceClassification keeps its
    head and `id2label` names."""
    model_dir = pathlib.Path(model_dir)
    config = read_config(model_dir)
    arguments = backbone_arguments(config)
    state = read_state(model_dir)
    layout.check_shapes(state, expected_shapes(state, arguments), str(model_dir))
    arrays = named_weights(state, arguments["num_layers"])
    del state  # the arrays keep what they need; the rest of the checkpoint is freed
    head = head_arguments(config, arrays) if "head.logits.kernel" in arrays else None
    tokenizer_type, bpe_vocabulary, tokenizer_files = read_tokenizer(model_dir)
    tokenizer_size = _tokenizer_size(tokenizer_type, bpe_vocabulary, tokenizer_files)
    if tokenizer_size is not None and tokenizer_size != arguments["vocabulary_size"]:
        raise ConversionError(
            f"{model_dir}: the tokenizer has {tokenizer_size} ids, config.json's vocab_size is "
            f"{arguments['vocabulary_size']}."
        )
    weights_file = next(model_dir / name for name in _WEIGHT_FILES if (model_dir / name).is_file())
    source = {"type": "huggingface", "path": str(model_dir), "weights": weights_file.name,
              "sha256": files.file_sha256(weights_file)}
    return ConvertedCheckpoint(arguments, head, arrays, source, tokenizer_type, bpe_vocabulary, tokenizer_files)


def read_state(model_dir):
    """The state dict of a checkpoint directory as numpy arrays: `model.safetensors` (also
    sharded, via `model.safetensors.index.json`) or `pytorch_model.bin` (read by the safe,
    torch-free reader; nothing in it runs)."""
    model_dir = pathlib.Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(_read_safetensors(model_dir / shard))
        return state
    if (model_dir / "model.safetensors").is_file():
        return _read_safetensors(model_dir / "model.safetensors")
    if (model_dir / "pytorch_model.bin").is_file():
        return torch_checkpoint.load(model_dir / "pytorch_model.bin")
    raise ConversionError(f"{model_dir}: no model.safetensors or pytorch_model.bin.")


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ConversionError(f"{path}: not a readable safetensors file ({error}).") from None


def read_tokenizer(model_dir):
    """(tokenizer type, validated `BpeVocabulary` or None, files read) of a checkpoint
    directory, first found of:
    - byte-level BPE from `vocab.json` + `merges.txt`: (`byte_level_bpe`, vocabulary, the two paths);
    - XLM-R's `sentencepiece.bpe.model`: (`sentencepiece`, None, (its path,));
    - `tokenizer.json`: a BPE model as byte-level BPE (`byte_level_bpe`, vocabulary, ()); XLM-R's
      Unigram model as the SentencePiece model it stands for (`sentencepiece`, None,
      (serialized ModelProto bytes,)), see `roberta_tf.tokenizers.hf_unigram`; any other model
      type is refused;
    - (None, None, ()) when the directory has no tokenizer."""
    model_dir = pathlib.Path(model_dir)
    vocab_json, merges_txt = model_dir / "vocab.json", model_dir / "merges.txt"
    if vocab_json.is_file() and merges_txt.is_file():
        return BYTE_LEVEL_BPE, vocabulary_lib.from_hf_files(vocab_json, merges_txt), (vocab_json, merges_txt)
    if (model_dir / SENTENCEPIECE_MODEL_FILE).is_file():  # preferred: the model itself, not HF's rendering
        return SENTENCEPIECE, None, (model_dir / SENTENCEPIECE_MODEL_FILE,)
    tokenizer_json = model_dir / TOKENIZER_JSON_FILE
    if tokenizer_json.is_file():
        return _read_tokenizer_json(tokenizer_json)
    return None, None, ()


def _read_tokenizer_json(path):
    """A tokenizer.json's BPE or Unigram model (see `read_tokenizer`)."""
    try:
        document = hf_unigram.read_tokenizer_json(path)
    except ValueError as error:
        raise ConversionError(str(error)) from None
    model = document.get("model")
    model_type = model.get("type") if isinstance(model, dict) else None
    if model_type == "BPE":
        vocab, merges = model.get("vocab"), model.get("merges")
        if not isinstance(vocab, dict) or not isinstance(merges, list):  # never paths: from_memory would open them
            raise ConversionError(f"{path}: a BPE model needs model.vocab (an object) and model.merges (a list).")
        try:
            return BYTE_LEVEL_BPE, vocabulary_lib.from_memory(vocab, merges), ()
        except (TypeError, ValueError) as error:
            raise ConversionError(f"{path}: {error}") from None
    if model_type == "Unigram":
        try:
            return SENTENCEPIECE, None, (hf_unigram.sentencepiece_model_from_tokenizer_json(path, document),)
        except ValueError as error:
            raise ConversionError(str(error)) from None
    raise ConversionError(
        f"{path}: model.type {model_type!r} is not supported (BPE for RoBERTa, Unigram for XLM-R)."
    )


def _tokenizer_size(tokenizer_type, bpe_vocabulary, tokenizer_files):
    """The number of ids the tokenizer gives (fairseq's, for SentencePiece), or None."""
    if bpe_vocabulary is not None:
        return bpe_vocabulary.size
    if tokenizer_type == SENTENCEPIECE:
        try:
            model = sentencepiece_model.read_model(tokenizer_files[0])  # a path, or tokenizer.json's model as bytes
        except ValueError as error:
            raise ConversionError(str(error)) from None
        tokens, _ = fairseq_vocabulary(model)
        return len(tokens)
    return None


def head_arguments(config, arrays):
    """Classifier arguments from config.json and the converted head weights (whose shapes
    must agree with each other: the logits layer takes the pooler's output)."""
    pooled, logits = arrays["head.pooled_dense.kernel"], arrays["head.logits.kernel"]
    if pooled.shape[0] != arrays["embeddings.token_embedding"].shape[1] or logits.shape[0] != pooled.shape[1]:
        raise ConversionError(
            f"classifier: dense.weight {pooled.shape[::-1]} and out_proj.weight {logits.shape[::-1]} do not "
            f"chain from the hidden size {arrays['embeddings.token_embedding'].shape[1]}."
        )
    names = label_names(config)
    if names is not None and len(names) != logits.shape[1]:
        raise ConversionError(f"config.json: id2label names {len(names)} classes; the head has {logits.shape[1]}.")
    return {
        "num_classes": int(logits.shape[1]),
        "hidden_dim": int(pooled.shape[1]),
        "dropout": float(config.get("classifier_dropout") or config.get("hidden_dropout_prob", 0.1)),
        "label_names": names,
    }
