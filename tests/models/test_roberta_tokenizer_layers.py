"""The Keras layers: same ids eagerly, in tf.function and in tf.data; configs round-trip as JSON."""

import json

import pytest
import tensorflow as tf
import tf_keras as keras

from roberta_tf.models import RobertaTextClassifierPreprocessor, RobertaTokenizer

TEXTS = ["The quick brown fox.", "", "It's 2024 — naïve café 😀", "  spaced  out  "]


def test_eager_function_and_tf_data_agree(roberta_tokenizer):
    eager = roberta_tokenizer(TEXTS).to_list()
    in_function = tf.function(lambda x: roberta_tokenizer(x))(tf.constant(TEXTS)).to_list()
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS).batch(2).map(roberta_tokenizer)
    from_data = [row for batch in dataset for row in batch.to_list()]
    per_text = [roberta_tokenizer(t).numpy().tolist() for t in TEXTS]
    assert eager == in_function == from_data == per_text


def test_vocabulary_accessors(roberta_tokenizer):
    assert roberta_tokenizer.vocabulary_size() == 50265
    assert roberta_tokenizer.id_to_token(31414) == "Hello" and roberta_tokenizer.token_to_id("\u0120world") == 232
    assert roberta_tokenizer.get_vocabulary()[50264] == "<mask>"
    with pytest.raises(ValueError, match="id must be an int"):
        roberta_tokenizer.id_to_token(50265)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        roberta_tokenizer.token_to_id("no-such-token")


def test_keras_hub_custom_vocabulary_example():
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<mask>": 3, "a": 4, "\u0120quick": 5, "\u0120fox": 6}
    merges = ["\u0120 q", "u i", "c k", "ui ck", "\u0120q uick", "\u0120 f", "o x", "\u0120f ox"]
    tokenizer = RobertaTokenizer(vocabulary=vocab, merges=merges)
    assert tokenizer("a quick fox").numpy().tolist() == [4, 5, 6]
    # A token without a vocabulary id is dropped when the vocabulary has no <unk> (as HF BPE).
    assert tokenizer("a quick box").numpy().tolist() == [4, 5]
    with_unk = RobertaTokenizer(vocabulary={**vocab, "<unk>": 7}, merges=merges)
    assert with_unk("a quick box").numpy().tolist() == [4, 5, 7, 7, 7]  # "Ġ", "b", "ox"


def test_configs_round_trip_through_json(roberta_tokenizer):
    config = json.loads(json.dumps(roberta_tokenizer.get_config()))
    restored = RobertaTokenizer.from_config(config)
    assert restored(TEXTS).to_list() == roberta_tokenizer(TEXTS).to_list()
    for key in ("vocabulary", "merges", "match_special_tokens", "max_word_bytes"):
        assert config[key] == getattr(roberta_tokenizer, key)

    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=16, truncate="longest_first", padding="longest")
    config = json.loads(json.dumps(preprocessor.get_config()))
    restored = RobertaTextClassifierPreprocessor.from_config(config)
    assert (restored.sequence_length, restored.truncate, restored.padding) == (16, "longest_first", "longest")
    assert restored(TEXTS)["token_ids"].numpy().tolist() == preprocessor(TEXTS)["token_ids"].numpy().tolist()


def test_preprocessor_matches_hugging_face_layout(roberta_tokenizer, hf_tokenizer):
    premises = ["A man plays guitar.", "", "Two dogs run."]
    hypotheses = ["Someone makes music.", "Nothing.", ""]
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=32, padding="longest")
    singles = preprocessor(premises)
    expected = [e.ids for e in hf_tokenizer.encode_batch(premises)]
    got = [[i for i, m in zip(row, mask) if m] for row, mask in zip(singles["token_ids"].numpy().tolist(), singles["padding_mask"].numpy())]
    assert got == expected
    pairs = preprocessor((premises, hypotheses))
    expected = [e.ids for e in hf_tokenizer.encode_batch(list(zip(premises, hypotheses)))]
    got = [[i for i, m in zip(row, mask) if m] for row, mask in zip(pairs["token_ids"].numpy().tolist(), pairs["padding_mask"].numpy())]
    assert got == expected


def test_preprocessor_shapes_labels_and_errors(roberta_tokenizer):
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=8)
    x = preprocessor("one text")
    assert x["token_ids"].shape == (8,) and x["padding_mask"].dtype == tf.bool
    x, y = preprocessor(["a", "b"], tf.constant([0, 1]))
    assert x["token_ids"].shape == (2, 8) and y.numpy().tolist() == [0, 1]
    with pytest.raises(ValueError, match="one or two segments"):
        preprocessor((["a"], ["b"], ["c"]))
    with pytest.raises(ValueError, match="dtype tf.string"):
        preprocessor(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="truncate must be one of"):
        RobertaTextClassifierPreprocessor(roberta_tokenizer, truncate="waterfall")
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        preprocessor((["a", "b"], ["c"]))


def test_layers_inside_a_functional_model(roberta_tokenizer):
    preprocessor = RobertaTextClassifierPreprocessor(roberta_tokenizer, sequence_length=8)
    inputs = keras.Input(shape=(), dtype=tf.string)
    outputs = preprocessor(inputs)["token_ids"]
    model = keras.Model(inputs, outputs)
    assert model(tf.constant(["hello there"])).numpy().tolist() == [[0, 42891, 89, 2, 1, 1, 1, 1]]
