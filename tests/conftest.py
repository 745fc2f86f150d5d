"""Shared fixtures: paths to ../shared/data and tokenizers built once per session."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
ROBERTA_BASE = SHARED_DATA / "roberta-base"
FAIRSEQ_BPE = SHARED_DATA / "fairseq-gpt2-bpe"


def shared_path(*parts):
    """A path under ../shared/data, or a skip (with the reason) where the folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(scope="session")
def roberta_tokenizer():
    from roberta_tf.models import RobertaTokenizer

    return RobertaTokenizer(
        vocabulary=str(shared_path("roberta-base", "vocab.json")),
        merges=str(shared_path("roberta-base", "merges.txt")),
    )


@pytest.fixture(scope="session")
def roberta_tokenizer_hf_specials():
    from roberta_tf.models import RobertaTokenizer

    return RobertaTokenizer(
        vocabulary=str(shared_path("roberta-base", "vocab.json")),
        merges=str(shared_path("roberta-base", "merges.txt")),
        match_special_tokens=True,
    )


@pytest.fixture(scope="session")
def hf_tokenizer():
    """Hugging Face `tokenizers` (the reference) with RoBERTa's real tokenizer.json."""
    tokenizers = pytest.importorskip("tokenizers", reason="the `test` extra (Hugging Face tokenizers) is not installed")
    return tokenizers.Tokenizer.from_file(str(shared_path("roberta-base", "tokenizer.json")))


@pytest.fixture(scope="session")
def tflite_runner_factory():
    """Builds a signature runner for .tflite bytes with ai_edge_litert's builtin-only interpreter."""
    interpreter_lib = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")

    def make(model_content):
        return interpreter_lib.Interpreter(model_content=model_content).get_signature_runner()

    return make
