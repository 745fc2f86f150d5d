"""A fairseq XLM-R checkpoint for the converter tests, written by fairseq's own training code.

fairseq's XLM-R release (`xlmr.base`, `xlmr.large`) is `model.pt` + `sentencepiece.bpe.model`
+ `dict.txt`. The two vocabulary files are one vocabulary in two numberings: `dict.txt` lists
the SentencePiece model's pieces from id 3 on (everything after `<unk>`, `<s>`, `</s>`), one
`<piece> <count>` line each, in SentencePiece's order. fairseq's Dictionary numbers `<s>` 0,
`<pad>` 1, `</s>` 2, `<unk>` 3 and then the lines from 4 (`<mask>` after them, added by the
task), so a piece's fairseq id is its SentencePiece id + 1, SentencePiece's `<unk>` (0)
becomes 3, and fairseq's hub finds the ids by looking SentencePiece's piece *strings* up in
the dictionary (an unknown surface is not a line: `<unk>`). The counts play no part in the ids
(fairseq stores them as frequencies and never re-sorts a loaded dictionary).

`build_xlmr_checkpoint(root, proto)` writes such a `dict.txt` for a SentencePiece model,
hands it to `fairseq_fixtures.build_checkpoints` (the same `sentence_prediction` task,
small RoBERTa — XLM-R's architecture —, perturbation and `Trainer.save_checkpoint`) and puts
the model beside it as `data/sentencepiece.bpe.model`. `xlmr_hub` loads a checkpoint with
fairseq's own `XLMRModel.from_pretrained` (its SentencePiece BPE and Dictionary), offline.

For Hugging Face XLM-R directories without `sentencepiece.bpe.model`:
`transformers_tokenizer_json` writes the tokenizer.json transformers makes from a
SentencePiece model, `perturbed_hf_classifier` a small transformers classifier to save beside it.
"""

import pathlib

import fairseq_fixtures

SENTENCEPIECE_MODEL_FILE = "sentencepiece.bpe.model"
_SENTENCEPIECE_SPECIALS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2 of XLM-R's (and the trainer's) model


def xlmr_dict_pieces(processor):
    """The pieces XLM-R's dict.txt lists: the SentencePiece model's, from id 3 on, in order."""
    leading = tuple(processor.id_to_piece(i) for i in range(len(_SENTENCEPIECE_SPECIALS)))
    if leading != _SENTENCEPIECE_SPECIALS:
        raise ValueError(f"not an XLM-R-style SentencePiece model: ids 0-2 are {leading}")
    return [processor.id_to_piece(i) for i in range(len(_SENTENCEPIECE_SPECIALS), processor.get_piece_size())]


def write_dict_txt(path, pieces):
    """fairseq's `<piece> <count>` lines; the count is a placeholder (it never sets an id)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{piece} 1\n" for piece in pieces), encoding="utf-8")
    return path


def build_xlmr_checkpoint(root, proto, processor):
    """`fairseq_fixtures.FairseqCheckpoints` for a small XLM-R: `data_dir` holds
    `input0/dict.txt` (XLM-R's layout for `proto`), `label/dict.txt` and
    `sentencepiece.bpe.model` (`proto`, the serialized model `processor` was loaded from)."""
    root = pathlib.Path(root)
    dict_txt = write_dict_txt(root / "xlmr-dict.txt", xlmr_dict_pieces(processor))
    checkpoints = fairseq_fixtures.build_checkpoints(root, dict_txt=dict_txt)
    (checkpoints.data_dir / SENTENCEPIECE_MODEL_FILE).write_bytes(proto)
    return checkpoints


def xlmr_hub(checkpoint, data_dir, sentencepiece_model):
    """fairseq's XLM-R hub interface over `checkpoint` with the dictionaries of `data_dir` and
    fairseq's SentencePiece BPE over `sentencepiece_model` (a local path: nothing is fetched)."""
    from fairseq.models.roberta import XLMRModel

    checkpoint = pathlib.Path(checkpoint)
    with fairseq_fixtures.safe_globals():
        xlmr = XLMRModel.from_pretrained(
            str(checkpoint.parent),
            checkpoint_file=checkpoint.name,
            data_name_or_path=str(data_dir),
            bpe="sentencepiece",
            sentencepiece_model=str(sentencepiece_model),
        )
    return xlmr.eval()


# --- Hugging Face XLM-R directories whose tokenizer is only tokenizer.json -----------------


def perturbed_hf_classifier(vocab_size, max_position_embeddings, seed=1):
    """A transformers `XLMRobertaForSequenceClassification` with random, perturbed weights
    (the geometry of tests/models/test_xlm_roberta.py's HF checkpoint)."""
    import pytest

    torch = pytest.importorskip("torch", reason="the test extra (torch) is not installed")
    transformers = pytest.importorskip("transformers", reason="the test extra (transformers) is not installed")
    config = transformers.XLMRobertaConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=max_position_embeddings, type_vocab_size=1, layer_norm_eps=1e-5, num_labels=3,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = transformers.XLMRobertaForSequenceClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def transformers_tokenizer_json(proto, directory, writer="save_pretrained"):
    """The tokenizer.json transformers writes for XLM-R from the SentencePiece model `proto`
    (bytes), into `directory`; returns its path.

    writer: "save_pretrained" (`XLMRobertaTokenizer.from_pretrained(...).save_pretrained`, what
    a fine-tuning script saves) or "converter" (`convert_slow_tokenizer.XLMRobertaConverter`).
    sentencepiece 0.2.3's `sentencepiece_model_pb2` needs protobuf 7 and TensorFlow pins 6, so
    transformers is pointed at its own copy of the same `ModelProto` schema while it reads.
    """
    import importlib
    import types

    import pytest

    transformers = pytest.importorskip("transformers", reason="the test extra (transformers) is not installed")
    convert_slow_tokenizer = importlib.import_module("transformers.convert_slow_tokenizer")  # the module, not the function
    from transformers.utils import sentencepiece_model_pb2_new

    directory = pathlib.Path(directory)
    source = directory / "sentencepiece-source"
    source.mkdir(parents=True)
    (source / SENTENCEPIECE_MODEL_FILE).write_bytes(proto)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convert_slow_tokenizer, "import_protobuf", lambda *args, **kwargs: sentencepiece_model_pb2_new)
        if writer == "save_pretrained":
            transformers.XLMRobertaTokenizer.from_pretrained(str(source)).save_pretrained(str(directory))
        else:
            original = types.SimpleNamespace(
                vocab_file=str(source / SENTENCEPIECE_MODEL_FILE), convert_tokens_to_ids={"<s>": 0, "</s>": 2}.get
            )
            convert_slow_tokenizer.XLMRobertaConverter(original).converted().save(str(directory / "tokenizer.json"))
    for path in source.iterdir():
        path.unlink()
    source.rmdir()
    return directory / "tokenizer.json"
