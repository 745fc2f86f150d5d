"""Token ids equal Hugging Face `tokenizers` (the reference) on every line of the shared corpora.

The same texts go through roberta_tf in TF graph mode (batched) and through the builtin-only
TFLite model (one text per invocation); both must give zero mismatches.
"""

import numpy as np
import pytest

import corpora

pytestmark = pytest.mark.slow


def reference_ids(hf_tokenizer, texts, encode_special_tokens=True):
    hf_tokenizer.encode_special_tokens = encode_special_tokens
    try:
        return [e.ids for e in hf_tokenizer.encode_batch(texts, add_special_tokens=False)]
    finally:
        hf_tokenizer.encode_special_tokens = False


def graph_ids(tokenizer, texts, batch_size=512):
    ids = []
    for start in range(0, len(texts), batch_size):
        ids.extend(tokenizer(texts[start : start + batch_size]).to_list())
    return ids


def mismatches(texts, got, expected, limit=3):
    bad = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e]
    return len(bad), bad[:limit]


@pytest.fixture(scope="module")
def all_corpora():
    return corpora.all_corpora()


@pytest.fixture(scope="module")
def tflite_tokenize(roberta_tokenizer, tflite_runner_factory):
    from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite

    runner = tflite_runner_factory(export_tokenizer_tflite(roberta_tokenizer))

    def tokenize(text):
        utf8 = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
        return runner(utf8_bytes=utf8)["token_ids"].tolist()

    return tokenize


def test_corpora_are_large(all_corpora):
    sizes = {name: len(texts) for name, texts in all_corpora.items()}
    assert sizes["sst2-dev"] == 872 and sizes["sst2-train-10k"] == 10_000 and sizes["fuzz-20k"] == 20_000
    assert all(sizes[f"xnli-{lang}"] == 2 * 2490 for lang in corpora.XNLI_LANGUAGES), sizes
    assert sum(sizes.values()) > 100_000


def test_graph_mode_matches_tokenizers(roberta_tokenizer, hf_tokenizer, all_corpora):
    report = {}
    for name, texts in all_corpora.items():
        report[name] = mismatches(texts, graph_ids(roberta_tokenizer, texts), reference_ids(hf_tokenizer, texts))
    assert all(count == 0 for count, _ in report.values()), {k: v for k, v in report.items() if v[0]}


def test_tflite_matches_tokenizers(tflite_tokenize, hf_tokenizer, all_corpora):
    report = {}
    for name, texts in all_corpora.items():
        report[name] = mismatches(texts, [tflite_tokenize(t) for t in texts], reference_ids(hf_tokenizer, texts))
    assert all(count == 0 for count, _ in report.values()), {k: v for k, v in report.items() if v[0]}


def test_hugging_face_special_token_mode(roberta_tokenizer_hf_specials, hf_tokenizer, all_corpora):
    """`match_special_tokens=True` equals tokenizers' default added-token matching."""
    texts = all_corpora["fuzz-20k"] + all_corpora["sst2-dev"] + all_corpora["blns"]
    texts += ["a <mask> b", "x  \t<mask>", "<s></s><pad><unk>", "</s>'s", "<mask>  ", "<<s>>", "<s", "</s"]
    got = graph_ids(roberta_tokenizer_hf_specials, texts)
    count, examples = mismatches(texts, got, reference_ids(hf_tokenizer, texts, encode_special_tokens=False))
    assert count == 0, examples


def test_fairseq_files_give_the_same_ids(roberta_tokenizer, all_corpora):
    from conftest import shared_path
    from roberta_tf.models import RobertaTokenizer

    fairseq = RobertaTokenizer.from_fairseq(
        shared_path("fairseq-gpt2-bpe", "encoder.json"),
        shared_path("fairseq-gpt2-bpe", "vocab.bpe"),
        shared_path("fairseq-gpt2-bpe", "dict.txt"),
    )
    assert fairseq.bpe_vocabulary == roberta_tokenizer.bpe_vocabulary
    texts = all_corpora["sst2-dev"] + all_corpora["xnli-zh"][:500] + all_corpora["fuzz-20k"][:2000]
    assert graph_ids(fairseq, texts) == graph_ids(roberta_tokenizer, texts)
