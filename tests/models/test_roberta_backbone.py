"""RobertaBackbone: structure, fairseq positions, padding invariance, variants and bad input."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from roberta_tf.layers.embedding import position_ids
from roberta_tf.models import RobertaBackbone

GEOMETRY = dict(vocabulary_size=300, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=20)


def _backbone(**overrides):
    keras.utils.set_random_seed(0)
    return RobertaBackbone(**{**GEOMETRY, **overrides})


def _inputs(rows, width):
    """Right-padded token_ids / padding_mask from lists of ids."""
    token_ids = np.ones((len(rows), width), np.int32)
    padding_mask = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        token_ids[i, : len(row)] = row
        padding_mask[i, : len(row)] = 1
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def test_positions_follow_fairseq_make_positions():
    mask = tf.constant([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]])
    assert position_ids(mask).numpy().tolist() == [[2, 3, 4, 1, 1], [2, 3, 4, 5, 6], [1, 1, 2, 3, 1]]


def test_output_shape_and_dynamic_batch_and_length():
    backbone = _backbone()
    for batch, length in [(1, 1), (3, 7), (2, 20)]:
        out = backbone(_inputs([[0, 5, 2]] * batch, max(length, 3)))
        assert out.shape == (batch, max(length, 3), 16)


def test_real_tokens_do_not_depend_on_padding_amount_or_batch_neighbours():
    backbone = _backbone()
    text = [0, 17, 42, 99, 2]
    alone = backbone(_inputs([text], 5)).numpy()[0]
    padded = backbone(_inputs([text], 20)).numpy()[0, :5]
    in_batch = backbone(_inputs([[0, 3, 2], text, list(range(4, 20))], 18)).numpy()[1, :5]
    assert np.abs(alone - padded).max() <= 1e-5
    assert np.abs(alone - in_batch).max() <= 1e-5


def test_pad_token_inside_text_is_a_token_when_the_mask_says_so():
    """keras-hub's example feeds all-ones token_ids: positions come from the mask, not from id 1."""
    backbone = _backbone()
    ones = {"token_ids": np.ones((1, 6), np.int32), "padding_mask": np.ones((1, 6), np.int32)}
    out = backbone(ones).numpy()[0]
    assert np.abs(out[0] - out[1]).max() > 1e-3  # different positions -> different vectors


def test_bool_and_int_padding_masks_agree():
    backbone = _backbone()
    inputs = _inputs([[0, 5, 6, 2], [0, 9, 2]], 4)
    as_bool = {**inputs, "padding_mask": inputs["padding_mask"].astype(bool)}
    assert np.array_equal(backbone(inputs).numpy(), backbone(as_bool).numpy())


def test_hidden_states_end_with_the_output():
    backbone = _backbone()
    inputs = _inputs([[0, 5, 6, 2]], 6)
    states = backbone.hidden_states(inputs)
    assert len(states) == GEOMETRY["num_layers"] + 1
    assert np.array_equal(states[-1].numpy(), backbone(inputs).numpy())


def test_pre_ln_variant_has_a_final_layer_norm():
    backbone = _backbone(normalize_before=True, embedding_layer_norm=False)
    names = backbone.named_weights()
    assert "final_layer_norm.gamma" in names and "embeddings.layer_norm.gamma" not in names
    assert backbone(_inputs([[0, 5, 2]], 3)).shape == (1, 3, 16)


def test_named_weights_cover_every_variable_once():
    backbone = _backbone()
    named = backbone.named_weights()
    assert len({id(v) for v in named.values()}) == len(backbone.weights) == len(named)
    assert named["embeddings.position_embedding"].shape == (GEOMETRY["max_sequence_length"] + 2, 16)
    assert named["layers.0.attention.qkv.kernel"].shape == (16, 48)


def test_weights_are_not_identical_across_layers():
    """An unseeded Keras initializer instance returns the same values on every call."""
    named = _backbone().named_weights()
    assert not np.array_equal(named["layers.0.attention.qkv.kernel"].numpy(), named["layers.1.attention.qkv.kernel"].numpy())


def test_config_round_trip():
    backbone = _backbone(activation="gelu_accurate", dropout=0.2)
    clone = RobertaBackbone.from_config(backbone.get_config())
    assert clone.get_config() == backbone.get_config()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"activation": "swish"}, "Unsupported activation"),
        ({"hidden_dim": 15}, "divisible"),
        ({"num_layers": 0}, "num_layers"),
        ({"max_sequence_length": 2.5}, "max_sequence_length"),
    ],
)
def test_unsupported_configurations_fail_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        RobertaBackbone(**{**GEOMETRY, **overrides})


def test_sequence_longer_than_the_position_table_is_an_error():
    backbone = _backbone()
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in"):
        backbone(_inputs([list(range(3, 25))], 22))


def test_out_of_vocabulary_id_is_an_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in"):
        _backbone()(_inputs([[0, 300, 2]], 3))


def test_float_token_ids_are_refused():
    backbone = _backbone()
    bad = {"token_ids": np.array([[0, 5.7, 2]], np.float32), "padding_mask": np.ones((1, 3))}
    for call in (backbone, backbone.hidden_states):
        with pytest.raises(TypeError, match="integers"):
            call(bad)


@pytest.mark.parametrize(
    "token_ids, padding_mask, message",
    [
        (np.zeros((3,), np.int32), np.ones((3,)), r"\[batch, length\]"),
        (np.zeros((1, 3), np.int32), np.ones((1, 4)), "same shape"),
    ],
)
def test_wrong_shapes_are_refused(token_ids, padding_mask, message):
    with pytest.raises(ValueError, match=message):
        _backbone()({"token_ids": token_ids, "padding_mask": padding_mask})


def test_mixed_bfloat16_policy_keeps_float32_logits_and_round_trips():
    from roberta_tf.models import RobertaTextClassifier

    backbone = _backbone(dtype="mixed_bfloat16")
    classifier = RobertaTextClassifier(backbone, 3, compile=False)
    reference = RobertaTextClassifier(_backbone(), 3, compile=False)
    reference.set_weights(classifier.get_weights())
    inputs = _inputs([[0, 5, 6, 7, 2]], 6)
    assert backbone(inputs).dtype == tf.bfloat16 and classifier(inputs).dtype == tf.float32
    assert backbone.embedding.token_embedding.dtype == tf.float32  # variables stay float32
    assert np.abs(classifier(inputs).numpy() - reference(inputs).numpy()).max() < 1e-2
    assert RobertaBackbone.from_config(backbone.get_config()).get_config()["dtype"] == "mixed_bfloat16"
