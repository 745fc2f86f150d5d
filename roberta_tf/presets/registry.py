"""Named presets: architecture and where the public weights live (Hugging Face Hub)."""

_ROBERTA_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")
_XLM_ROBERTA_FILES = ("config.json", "model.safetensors", "sentencepiece.bpe.model")


def _backbone(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim):
    return {
        "vocabulary_size": vocabulary_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
        "dropout": 0.1,
        "max_sequence_length": 512,
    }


def parameter_count(config):
    """Encoder parameters for a backbone config (token + 514 positions + LayerNorms + layers)."""
    d, f, n = config["hidden_dim"], config["intermediate_dim"], config["num_layers"]
    embeddings = (config["vocabulary_size"] + config["max_sequence_length"] + 2) * d + 2 * d
    layer = (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d) + 4 * d
    return embeddings + n * layer


PRESETS = {
    "roberta_base_en": {
        "description": "12-layer RoBERTa (fairseq roberta.base), English, cased.",
        "hf_repo": "FacebookAI/roberta-base",
        "files": _ROBERTA_FILES,
        "tokenizer": "byte_level_bpe",
        "backbone": _backbone(50265, 12, 12, 768, 3072),
    },
    "roberta_large_en": {
        "description": "24-layer RoBERTa (fairseq roberta.large), English, cased.",
        "hf_repo": "FacebookAI/roberta-large",
        "files": _ROBERTA_FILES,
        "tokenizer": "byte_level_bpe",
        "backbone": _backbone(50265, 24, 16, 1024, 4096),
    },
    "xlm_roberta_base_multi": {
        "description": "12-layer XLM-RoBERTa, 100 languages (SentencePiece vocabulary).",
        "hf_repo": "FacebookAI/xlm-roberta-base",
        "files": _XLM_ROBERTA_FILES,
        "tokenizer": "sentencepiece",
        "backbone": _backbone(250002, 12, 12, 768, 3072),
    },
    "xlm_roberta_large_multi": {
        "description": "24-layer XLM-RoBERTa, 100 languages (SentencePiece vocabulary).",
        "hf_repo": "FacebookAI/xlm-roberta-large",
        "files": _XLM_ROBERTA_FILES,
        "tokenizer": "sentencepiece",
        "backbone": _backbone(250002, 24, 16, 1024, 4096),
    },
}
for _preset in PRESETS.values():
    _preset["params"] = parameter_count(_preset["backbone"])
