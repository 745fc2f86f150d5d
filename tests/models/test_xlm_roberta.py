"""XLM-RoBERTa end to end: the SentencePiece tokenizer layer with fairseq's ids, keras-hub's
XLMRoberta* classes, presets, the Hugging Face converter and the exports (SavedModel loaded
by a process that imports only tensorflow; builtin-only float32 TFLite), judged by the
`sentencepiece` package plus fairseq's id mapping and by transformers'
`XLMRobertaForSequenceClassification` with the same weights.

The tokenizer's corpus-wide parity is in tests/tokenizers/; here a trained unigram model
(4,000 pieces, nmt_nfkc, as XLM-R's) stands in for XLM-R's own, which is not available here.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from corpora import XNLI_LANGUAGES, fuzz, misc, xnli
from roberta_tf.models import (
    RobertaTextClassifier,
    XLMRobertaBackbone,
    XLMRobertaTextClassifier,
    XLMRobertaTextClassifierPreprocessor,
    XLMRobertaTokenizer,
)
from roberta_tf.presets.preset_format import PresetError
from xlmr_model_fixtures import (  # noqa: F401 (proto_path, processor, hf_checkpoint: fixtures)
    SEQUENCE_LENGTH,
    fairseq_ids,
    hf_checkpoint,
    packed_reference,
    processor,
    proto_path,
    torch_logits,
)

TEXTS = [xnli(language)[7] for language in XNLI_LANGUAGES] + ["", "  ", "\x00", "Ｈｅｌｌｏ ﬁne 😀 ⅻ"]
PAIRS = ([xnli(language)[0] for language in XNLI_LANGUAGES[:8]], [xnli(language)[1] for language in XNLI_LANGUAGES[7:]])


@pytest.fixture(scope="module")
def tokenizer(proto_path):
    return XLMRobertaTokenizer(proto=str(proto_path))


def test_ids_equal_sentencepiece_with_fairseq_mapping(tokenizer, processor):
    texts = [t for language in XNLI_LANGUAGES for t in xnli(language)[:60]] + misc("blns.txt") + fuzz(2000, seed=7)
    got = tokenizer(texts).to_list()
    mismatches = [(t, g) for t, g in zip(texts, got) if g != fairseq_ids(processor, t)]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, first: {mismatches[0]!r}"


def test_vocabulary_follows_fairseq(tokenizer, processor):
    size = processor.get_piece_size()
    assert tokenizer.vocabulary_size() == size + 2  # 4 specials + (size - 3) pieces + <mask>, as XLM-R's 250,002
    assert tokenizer.get_vocabulary()[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tokenizer.id_to_token(4) == processor.id_to_piece(3)
    assert tokenizer.token_to_id("<mask>") == tokenizer.mask_token_id == size + 1
    assert (tokenizer.start_token_id, tokenizer.pad_token_id, tokenizer.end_token_id) == (0, 1, 2)


def test_detokenize_gives_sentencepiece_decode(tokenizer, processor):
    texts = [xnli(language)[3] for language in XNLI_LANGUAGES] + ["汉 ⁇ b", "⁇ a", "  two  spaces ", ""]
    got = [t.decode("utf-8") for t in tokenizer.detokenize(tokenizer(texts)).numpy()]
    assert got == [processor.decode(processor.encode(t)) for t in texts]


def test_preprocessor_packs_single_texts_and_pairs_like_xlmr(tokenizer, processor):
    preprocessor = XLMRobertaTextClassifierPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
    single = preprocessor(TEXTS)["token_ids"].numpy().tolist()
    assert single == [packed_reference(processor, [t]) for t in TEXTS]
    pairs = preprocessor(PAIRS)["token_ids"].numpy().tolist()
    assert pairs == [packed_reference(processor, [a, b]) for a, b in zip(*PAIRS)]


def test_max_tokens_keeps_the_exact_first_ids(tokenizer, processor):
    long_text = " ".join(xnli("de")[:50])
    for budget in (1, 5, 37):
        assert tokenizer.tokenize([long_text], max_tokens=budget)[0][:budget].numpy().tolist() == \
            fairseq_ids(processor, long_text)[:budget]


def test_config_round_trip_with_bytes_or_path(proto_path, tokenizer):
    from_bytes = XLMRobertaTokenizer(proto=proto_path.read_bytes())
    for layer in (tokenizer, from_bytes):
        clone = XLMRobertaTokenizer.from_config(layer.get_config())
        assert clone(TEXTS).to_list() == tokenizer(TEXTS).to_list()


def test_huggingface_directory_matches_transformers(hf_checkpoint, processor):
    directory, model = hf_checkpoint
    classifier = XLMRobertaTextClassifier.from_preset(str(directory), preprocessor="auto")
    classifier.preprocessor.sequence_length = SEQUENCE_LENGTH
    assert isinstance(classifier.preprocessor.tokenizer, XLMRobertaTokenizer)
    assert classifier.label_names == ["contradiction", "entailment", "neutral"]
    np.testing.assert_allclose(classifier.predict(TEXTS, verbose=0), torch_logits(model, processor, [TEXTS]), atol=1e-5)
    np.testing.assert_allclose(classifier.predict(PAIRS, verbose=0), torch_logits(model, processor, PAIRS), atol=1e-5)


@pytest.fixture(scope="module")
def xlmr_preset(hf_checkpoint, tmp_path_factory):
    preprocessor = XLMRobertaTextClassifierPreprocessor.from_preset(str(hf_checkpoint[0]), sequence_length=SEQUENCE_LENGTH)
    classifier = XLMRobertaTextClassifier.from_preset(str(hf_checkpoint[0]), preprocessor=preprocessor)
    preset = tmp_path_factory.mktemp("xlmr-preset") / "preset"
    classifier.save_to_preset(preset)
    return preset


def test_preset_keeps_the_sentencepiece_model_and_names_the_right_classes(xlmr_preset, proto_path, hf_checkpoint, processor):
    import json

    config = json.loads((xlmr_preset / "config.json").read_text())
    assert config["tokenizer"] == {"type": "sentencepiece", "model": "sentencepiece.bpe.model"}
    assert (xlmr_preset / "sentencepiece.bpe.model").read_bytes() == proto_path.read_bytes()
    reloaded = XLMRobertaTextClassifier.from_preset(str(xlmr_preset))
    assert isinstance(reloaded.backbone, XLMRobertaBackbone)
    np.testing.assert_allclose(
        reloaded.predict(TEXTS, verbose=0), torch_logits(hf_checkpoint[1], processor, [TEXTS]), atol=1e-5
    )
    with pytest.raises(PresetError, match="XLMRobertaTextClassifier"):
        RobertaTextClassifier.from_preset(str(xlmr_preset))


FRESH_PROCESS = textwrap.dedent("""
    import sys, json
    import numpy as np
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[1])
    texts = json.loads(sys.argv[2])
    pairs = json.loads(sys.argv[3])
    single = model.signatures["serving_default"](text=tf.constant(texts))
    paired = model.signatures["classify_pairs"](text_a=tf.constant(pairs[0]), text_b=tf.constant(pairs[1]))
    corpus = [line.encode("utf-8") for line in json.loads(open(sys.argv[5]).read())]
    packed = model.signatures["tokenize"](text=tf.constant(corpus))
    leaked = sorted(m for m in ("roberta_tf", "tensorflow_text", "tf_keras") if m in sys.modules)
    print("LEAKED", leaked)
    np.save(sys.argv[4], np.concatenate([single["logits"].numpy(), paired["logits"].numpy()]))
    np.save(sys.argv[4] + ".ids.npy", packed["token_ids"].numpy())
""")


def test_saved_model_answers_in_a_process_that_imports_only_tensorflow(xlmr_preset, hf_checkpoint, processor, tmp_path):
    import json

    from roberta_tf.export import saved_model

    result = saved_model.export_preset(str(xlmr_preset), tmp_path / "xlmr")
    assert not saved_model.non_core_ops(result.path)
    script, out, corpus_file = tmp_path / "serve.py", tmp_path / "logits.npy", tmp_path / "corpus.json"
    script.write_text(FRESH_PROCESS, encoding="utf-8")
    corpus = [t for language in XNLI_LANGUAGES for t in xnli(language)[100:140]] + misc("blns.txt")[:300] + fuzz(600, seed=3)
    corpus_file.write_text(json.dumps(corpus), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, str(script), str(result.path), json.dumps(TEXTS), json.dumps(PAIRS), str(out), str(corpus_file)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "LEAKED []" in run.stdout
    want = np.concatenate([torch_logits(hf_checkpoint[1], processor, [TEXTS]), torch_logits(hf_checkpoint[1], processor, PAIRS)])
    np.testing.assert_allclose(np.load(out), want, atol=1e-5)
    # Ids through the served graph on XNLI in 15 languages, naughty strings and fuzz (packed and
    # truncated to the export's sequence length, padded to the longest row).
    ids = np.load(str(out) + ".ids.npy")
    expected = [packed_reference(processor, [text])[: ids.shape[1]] for text in corpus]
    mismatches = [text for text, got, want in zip(corpus, ids.tolist(), expected) if got != want]
    assert not mismatches, f"{len(mismatches)} of {len(corpus)} differ, first: {mismatches[0]!r}"


def test_float32_tflite_is_builtin_only_and_matches_transformers(xlmr_preset, hf_checkpoint, processor, tmp_path):
    from roberta_tf.export import tflite
    from roberta_tf.lite import TextClassifier

    path = tmp_path / "xlmr.tflite"
    tflite.export_preset_tflite(str(xlmr_preset), path, quantize="none")  # refuses Flex/custom ops
    parameters = XLMRobertaTextClassifier.from_preset(str(xlmr_preset), preprocessor=None).count_params()
    assert 4 * parameters < path.stat().st_size <= tflite.estimated_size_bytes(_Parameters(parameters), "none")
    model = TextClassifier(str(path))
    np.testing.assert_allclose(model.classify(TEXTS).logits, torch_logits(hf_checkpoint[1], processor, [TEXTS]), atol=1e-5)
    np.testing.assert_allclose(model.classify_pairs(*PAIRS).logits, torch_logits(hf_checkpoint[1], processor, PAIRS), atol=1e-5)


class _Parameters:
    def __init__(self, count):
        self.count_params = lambda: count


def test_wrong_tokenizer_inputs_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="proto"):
        XLMRobertaTokenizer()
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x0a\xff\xff\xff")
    with pytest.raises(ValueError, match="bad.model"):
        XLMRobertaTokenizer(proto=str(bad))


def test_int8_tflite_keeps_the_token_ids(xlmr_preset):
    """The quantizers see the tokenizer's graph too. int8 must keep the unigram path sums in
    float (`unigram.FLOAT_SCOPE`): before, the converted model aborted the interpreter. (The
    float32 scores' own exactness under dynamic-range and float16, 122 and 4 of 1,500 XNLI
    texts with other ids before they became int32 bit patterns, is tests/tokenizers/test_unigram.py's.)"""
    quantize = "int8"
    import tensorflow as tf
    from ai_edge_litert import interpreter as litert

    from roberta_tf.export import tflite
    from roberta_tf.export.tflite_module import TfliteClassifierModule

    class TokenIdsOut(TfliteClassifierModule):  # the utf8_bytes graph, its packed row as an extra output
        def _outputs(self, token_ids, padding_mask):
            return {**super()._outputs(token_ids, padding_mask), "token_ids": tf.identity(token_ids)}

    preprocessor = XLMRobertaTextClassifierPreprocessor.from_preset(str(xlmr_preset), sequence_length=SEQUENCE_LENGTH)
    classifier = XLMRobertaTextClassifier.from_preset(str(xlmr_preset), preprocessor=preprocessor)
    module = TokenIdsOut(classifier, preprocessor.tokenizer, sequence_length=SEQUENCE_LENGTH)
    texts = [t for language in XNLI_LANGUAGES for t in xnli(language)[20:26]] + TEXTS + fuzz(count=10, seed=5)
    content = tflite.convert(module, quantize, texts[::9])
    classify = litert.Interpreter(model_content=content).get_signature_runner("classify")
    want = preprocessor(texts)["token_ids"].numpy()
    for text, row in zip(texts, want):
        got = classify(utf8_bytes=tflite.utf8_array(text))["token_ids"][0]  # one text: no padding
        np.testing.assert_array_equal(got, row[: len(got)], err_msg=repr(text[:60]))
        assert np.all(row[len(got):] == preprocessor.tokenizer.pad_token_id), repr(text[:60])
    logits = classify(utf8_bytes=tflite.utf8_array(texts[0]))["logits"]
    assert np.all(np.isfinite(logits))
