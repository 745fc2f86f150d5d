"""Logits and hidden states equal to fairseq's RoBERTa and to transformers' PyTorch
RobertaForSequenceClassification with the same (perturbed, random) weights, on real text."""

import numpy as np
import pytest

import references

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def preprocessor(roberta_tokenizer):
    from roberta_tf.models import RobertaTextClassifierPreprocessor

    return RobertaTextClassifierPreprocessor(
        roberta_tokenizer, sequence_length=references.MAX_POSITIONS, padding="longest"
    )


@pytest.fixture(scope="module")
def fairseq_pair():
    model, args = references.fairseq_classifier()
    return model, references.roberta_tf_from_fairseq(model, args)


def _fairseq_logits(model, token_ids):
    import torch

    with torch.inference_mode():
        logits, _ = model(torch.from_numpy(token_ids).long(), features_only=True, classification_head_name="cls")
    return logits.numpy()


def _roberta_tf(classifier, inputs):
    return classifier(inputs, training=False).numpy()


def _cases(preprocessor):
    singles = references.sst2_lines(24)
    premises, hypotheses = references.xnli_pairs(16)
    long_text = " ".join(references.sst2_lines(40))  # truncated to exactly MAX_POSITIONS tokens
    return {
        "single texts, padded batch": references.packed(preprocessor, singles),
        "pairs, padded batch": references.packed(preprocessor, (premises, hypotheses)),
        "maximum length": references.packed(preprocessor, [long_text, "short"]),
    }


def test_fairseq_logits_single_pairs_and_maximum_length(fairseq_pair, preprocessor):
    model, classifier = fairseq_pair
    for name, inputs in _cases(preprocessor).items():
        if name == "maximum length":
            assert inputs["token_ids"].shape[1] == references.MAX_POSITIONS
        assert inputs["padding_mask"].min() == 0 or name == "maximum length", name
        expected = _fairseq_logits(model, inputs["token_ids"])
        actual = _roberta_tf(classifier, inputs)
        assert np.abs(actual - expected).max() <= TOLERANCE, name


def test_fairseq_hidden_states(fairseq_pair, preprocessor):
    import torch

    model, classifier = fairseq_pair
    inputs = references.packed(preprocessor, references.sst2_lines(8))
    with torch.inference_mode():
        _, extra = model(torch.from_numpy(inputs["token_ids"]).long(), features_only=True, return_all_hiddens=True)
    expected = [state.transpose(0, 1).numpy() for state in extra["inner_states"]]  # T x B x C -> B x T x C
    actual = [h.numpy() for h in classifier.backbone.hidden_states(inputs)]
    assert len(actual) == len(expected) == references.SMALL["encoder_layers"] + 1
    mask = inputs["padding_mask"].astype(bool)
    for layer, (a, e) in enumerate(zip(actual, expected)):
        assert np.abs(a[mask] - e[mask]).max() <= TOLERANCE, f"hidden state {layer}"


@pytest.mark.parametrize(
    "variant",
    [
        {"activation_fn": "gelu_accurate"},
        {"encoder_normalize_before": True, "layernorm_embedding": False},
        {"encoder_normalize_before": True, "layernorm_embedding": True},
    ],
    ids=["gelu_accurate", "pre_ln", "pre_ln_with_embedding_ln"],
)
def test_fairseq_architecture_variants(variant, preprocessor):
    model, args = references.fairseq_classifier(**variant)
    classifier = references.roberta_tf_from_fairseq(model, args)
    inputs = references.packed(preprocessor, references.sst2_lines(12))
    expected = _fairseq_logits(model, inputs["token_ids"])
    assert np.abs(_roberta_tf(classifier, inputs) - expected).max() <= TOLERANCE


def test_transformers_logits_and_hidden_states(preprocessor):
    import torch

    model, config = references.transformers_classifier()
    classifier = references.roberta_tf_from_transformers(model, config)
    premises, hypotheses = references.xnli_pairs(12, language="de")
    for inputs in (references.packed(preprocessor, references.sst2_lines(20)),
                   references.packed(preprocessor, (premises, hypotheses))):
        with torch.inference_mode():
            output = model(
                input_ids=torch.from_numpy(inputs["token_ids"]).long(),
                attention_mask=torch.from_numpy(inputs["padding_mask"]).long(),
                output_hidden_states=True,
            )
        assert np.abs(_roberta_tf(classifier, inputs) - output.logits.numpy()).max() <= TOLERANCE
        mask = inputs["padding_mask"].astype(bool)
        final = classifier.backbone.hidden_states(inputs)[-1].numpy()
        assert np.abs(final[mask] - output.hidden_states[-1].numpy()[mask]).max() <= TOLERANCE
