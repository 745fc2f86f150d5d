"""Named presets: architecture, where the public weights live (Hugging Face Hub) and the
tokenizer vocabulary shipped inside the package.

A named preset's byte-level BPE tokenizer always comes from the packaged vocabulary
(`packaged_vocabulary`), so tokenizers and preprocessors load without a download and a
model's tokenizer is the same file whichever way it was loaded; only the weights (and their
config.json) come from the hub.
"""

import pathlib

from roberta_tf.presets.preset_format import MERGES_FILE, SENTENCEPIECE_MODEL_FILE, VOCABULARY_FILE, PresetError

# Package data (pyproject.toml [tool.setuptools.package-data]): one folder per vocabulary,
# holding vocab.json, merges.txt and a NOTICE (origin, licence, SHA-256 of both files).
VOCABULARIES_DIR = pathlib.Path(__file__).resolve().parent / "vocabularies"

# roberta-base's vocab.json + merges.txt: GPT-2's byte-level BPE, ids renumbered through
# fairseq's RoBERTa dictionary. roberta-large uses the very same files: keras-nlp's v1
# roberta_base_en and roberta_large_en presets list identical MD5s for both (vocab.json
# be4d3c6f..., merges.txt 75a37753..., also those of the packaged copies), and both models
# have 50,265 ids.
ROBERTA_VOCABULARY = "roberta-base"

# Hub files of a model load; the tokenizer files are not among them (see the docstring).
_ROBERTA_FILES = ("config.json", "model.safetensors")
_XLM_ROBERTA_FILES = ("config.json", "model.safetensors", SENTENCEPIECE_MODEL_FILE)


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
        "vocabulary": ROBERTA_VOCABULARY,
        "backbone": _backbone(50265, 12, 12, 768, 3072),
    },
    "roberta_large_en": {
        "description": "24-layer RoBERTa (fairseq roberta.large), English, cased.",
        "hf_repo": "FacebookAI/roberta-large",
        "files": _ROBERTA_FILES,
        "tokenizer": "byte_level_bpe",
        "vocabulary": ROBERTA_VOCABULARY,
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


def packaged_vocabulary(name):
    """(vocab.json, merges.txt): the paths of the vocabulary shipped for the named preset
    `name` (e.g. "roberta_base_en"); reading them needs no network.

    Raises `PresetError` for an unknown name, for a preset without a packaged vocabulary
    (XLM-RoBERTa's SentencePiece model is not shipped) and for an installation missing the files.
    """
    entry = PRESETS.get(name)
    if entry is None:
        raise PresetError(f"Unknown named preset {name!r}; the named presets are {', '.join(sorted(PRESETS))}.")
    if "vocabulary" not in entry:
        raise PresetError(
            f"{name} has a {entry['tokenizer']} tokenizer, which roberta_tf neither ships nor supports yet; "
            "load the model with preprocessor=None and feed token ids."
        )
    folder = VOCABULARIES_DIR / entry["vocabulary"]
    paths = folder / VOCABULARY_FILE, folder / MERGES_FILE
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise PresetError(
            f"The vocabulary packaged for {name} is missing ({', '.join(missing)}): this roberta_tf installation "
            "is incomplete; reinstall roberta-tf."
        )
    return paths
