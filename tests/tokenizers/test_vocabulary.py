"""Vocabulary loading: every source validated, errors name the file, line or token."""

import json

import pytest

from conftest import shared_path
from roberta_tf.tokenizers import vocabulary as vocabulary_lib

SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<mask>": 3}


def test_hf_and_fairseq_files_agree_with_the_documented_mapping():
    hf = vocabulary_lib.from_hf_files(shared_path("roberta-base", "vocab.json"), shared_path("roberta-base", "merges.txt"))
    fs = vocabulary_lib.from_fairseq_files(
        shared_path("fairseq-gpt2-bpe", "encoder.json"),
        shared_path("fairseq-gpt2-bpe", "vocab.bpe"),
        shared_path("fairseq-gpt2-bpe", "dict.txt"),
    )
    assert hf == fs
    v = hf.vocabulary
    assert (hf.size, len(hf.merges)) == (50265, 50000)
    assert [v["<s>"], v["<pad>"], v["</s>"], v["<unk>"], v["<mask>"]] == [0, 1, 2, 3, 50264]
    assert [v[f"madeupword000{i}"] for i in range(3)] == [50261, 50262, 50263]


def test_in_memory_keras_hub_example():
    vocab = {**SPECIALS, "a": 4, "\u0120quick": 5, "\u0120fox": 6}
    merges = ["\u0120 q", "u i", "c k", "ui ck", "\u0120q uick", "\u0120 f", "o x", "\u0120f ox"]
    bpe = vocabulary_lib.from_memory(vocab, merges)
    assert bpe.merges[4] == ("\u0120q", "uick")


@pytest.mark.parametrize(
    "vocab, merges, message",
    [
        ({**SPECIALS, "a": 4}, ["a zz"], "unknown part 'zz'"),
        ({**SPECIALS, "a": 4, "b": 4}, [], "id 4 is used by both"),
        ({**SPECIALS, "a": 7}, [], "no gaps"),
        ({"<s>": 0, "<pad>": 1, "</s>": 2, "a": 3}, [], r"missing special tokens \['<mask>'\]"),
        ({**SPECIALS, "a": "4"}, [], "str -> int"),
        ({**SPECIALS}, ["a b c"], "must be 'a b'"),
        ({**SPECIALS}, ["a b", "a b"], "listed twice"),
        ([], [], "non-empty dict"),
    ],
)
def test_malformed_in_memory_input(vocab, merges, message):
    with pytest.raises(ValueError, match=message):
        vocabulary_lib.from_memory(vocab, merges)


def test_malformed_files_name_the_file_and_line(tmp_path):
    vocab_path = tmp_path / "vocab.json"
    vocab_path.write_text(json.dumps({**SPECIALS, "a": 4}))
    merges_path = tmp_path / "merges.txt"
    merges_path.write_text("#version: 0.2\na a\nbad-line\n")
    with pytest.raises(ValueError, match=r"merges.txt:3: a merge line is two tokens"):
        vocabulary_lib.from_hf_files(vocab_path, merges_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"<s>": 0,')
    with pytest.raises(ValueError, match="Cannot read JSON vocabulary"):
        vocabulary_lib.from_hf_files(broken, merges_path)
    with pytest.raises(ValueError, match="Cannot read"):
        vocabulary_lib.from_hf_files(tmp_path / "missing.json", merges_path)


def test_malformed_fairseq_dict(tmp_path):
    encoder = tmp_path / "encoder.json"
    encoder.write_text(json.dumps({"a": 0, "b": 1}))
    bpe = tmp_path / "vocab.bpe"
    bpe.write_text("#version: 0.2\n")
    dict_txt = tmp_path / "dict.txt"
    dict_txt.write_text("0 100\n1 not-a-count\n")
    with pytest.raises(ValueError, match=r"dict.txt:2: expected '<symbol> <count>'"):
        vocabulary_lib.from_fairseq_files(encoder, bpe, dict_txt)
    dict_txt.write_text("0 100\n0 90\n")
    with pytest.raises(ValueError, match=r"dict.txt:2: symbol '0' \('a'\) appears twice"):
        vocabulary_lib.from_fairseq_files(encoder, bpe, dict_txt)
    dict_txt.write_text("0 100\n1 90\n")
    bpe_vocabulary = vocabulary_lib.from_fairseq_files(encoder, bpe, dict_txt)
    assert bpe_vocabulary.vocabulary == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "<mask>": 6}
