"""The XLM-R fixtures shared by tests/models/test_xlm_roberta.py and tests/cli/test_verify_xlmr.py:
a trained SentencePiece unigram model standing in for XLM-R's (4,000 pieces, nmt_nfkc), its
`sentencepiece` processor (the reference, with fairseq's id mapping) and a perturbed
transformers XLMRobertaForSequenceClassification saved as an HF directory beside it.
Importing the fixtures into a test module registers them there (module scope)."""

import pytest

from sentencepiece_models import spm, trained_model

MODEL = "unigram-nmt_nfkc"
SEQUENCE_LENGTH = 24


def fairseq_ids(processor, text):
    """The reference: SentencePiece's ids with fairseq's (XLM-R's) mapping, `<unk>` 0 -> 3."""
    return [piece_id + 1 if piece_id else 3 for piece_id in processor.encode(text)]


def packed_reference(processor, segments, length=SEQUENCE_LENGTH):
    """`<s> A </s>` / `<s> A </s></s> B </s>`, round-robin truncation, padded with 1."""
    ids = [fairseq_ids(processor, s) for s in segments]
    budget = length - (2 if len(ids) == 1 else 4)
    if len(ids) == 1:
        kept = [ids[0][:budget]]
    else:  # round robin: one token from each segment in turn, while it has any left
        a = b = 0
        while a + b < budget and (a < len(ids[0]) or b < len(ids[1])):
            if a < len(ids[0]) and (a <= b or b >= len(ids[1])):
                a += 1
            else:
                b += 1
        kept = [ids[0][:a], ids[1][:b]]
    row = [0] + kept[0] + [2] + ([2] + kept[1] + [2] if len(kept) == 2 else [])
    return row + [1] * (length - len(row))


@pytest.fixture(scope="module")
def proto_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlmr") / "sentencepiece.bpe.model"
    path.write_bytes(trained_model(MODEL))
    return path


@pytest.fixture(scope="module")
def processor(proto_path):
    return spm().SentencePieceProcessor(model_file=str(proto_path))


@pytest.fixture(scope="module")
def hf_checkpoint(proto_path, processor, tmp_path_factory):
    """A perturbed transformers XLMRobertaForSequenceClassification saved as an HF directory
    with the SentencePiece model, and the model itself."""
    torch = pytest.importorskip("torch", reason="the test extra (torch) is not installed")
    transformers = pytest.importorskip("transformers", reason="the test extra (transformers) is not installed")
    config = transformers.XLMRobertaConfig(
        vocab_size=processor.get_piece_size() + 2, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=SEQUENCE_LENGTH + 2, type_vocab_size=1,
        layer_norm_eps=1e-5, num_labels=3, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
        label2id={"contradiction": 0, "entailment": 1, "neutral": 2},
    )
    torch.manual_seed(1)
    model = transformers.XLMRobertaForSequenceClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    directory = tmp_path_factory.mktemp("hf-xlmr")
    model.save_pretrained(directory)
    (directory / "sentencepiece.bpe.model").write_bytes(proto_path.read_bytes())
    return directory, model


def torch_logits(model, processor, segments):
    import torch

    rows = [packed_reference(processor, list(s)) for s in zip(*segments)]
    ids = torch.tensor(rows)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=(ids != 1).long()).logits.numpy()
