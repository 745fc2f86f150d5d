"""Real fairseq checkpoints for the converter tests, written by fairseq's own training code.

`build_checkpoints(root)` sets up a fairseq `sentence_prediction` task (the real roberta-base
`dict.txt` as `input0/dict.txt`, or the `dict_txt` given, e.g. XLM-R's layout in
`xlmr_fixtures`; a 3-label `label/dict.txt`), builds a small RoBERTa with the
task (which registers "sentence_classification_head"), perturbs every parameter, and saves it
with `fairseq.trainer.Trainer.save_checkpoint` (fairseq 0.12 layout: top-level `cfg`). From
that file it derives the pre-0.10 `args` layout (`decoder.` / `emb_layer_norm` keys) and the
same in the legacy (non-zip) torch serialization.

`fairseq_hub(model_dir, ...)` loads a checkpoint with fairseq's own hub loader
(`RobertaModel.from_pretrained`) fully offline, with the GPT-2 BPE files from ../shared/data.
"""

import argparse
import contextlib
import copy
import dataclasses
import pathlib
import shutil

from conftest import shared_path

LABELS = ("contradiction", "entailment", "neutral")
HEAD = "sentence_classification_head"
SMALL = {
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
}
MAX_POSITIONS = 64
SEED = 0


@dataclasses.dataclass
class FairseqCheckpoints:
    data_dir: pathlib.Path  # input0/dict.txt (roberta-base's, or build_checkpoints' dict_txt), label/dict.txt
    zip_cfg: pathlib.Path  # Trainer.save_checkpoint output (0.12 `cfg` layout, zip serialization)
    legacy_args: pathlib.Path  # pre-0.10 `args` layout, `decoder.` keys (zip serialization)
    legacy_args_pickle: pathlib.Path  # the same, legacy (non-zip) torch serialization
    model: object  # the in-memory fairseq RobertaModel that was saved (eval mode)
    saved_keys: tuple  # top-level keys Trainer.save_checkpoint wrote
    saved_cfg_model_type: str  # type of the written cfg["model"]

    @property
    def variants(self):
        return {"zip_cfg": self.zip_cfg, "legacy_args": self.legacy_args, "legacy_args_pickle": self.legacy_args_pickle}


def safe_globals():
    """fairseq calls `torch.load` with torch's default weights_only=True (torch >= 2.6); its
    checkpoints pickle an argparse.Namespace (legacy `args`, and `cfg["model"]` when the config
    came from argparse)."""
    import torch

    if hasattr(torch.serialization, "safe_globals"):
        return torch.serialization.safe_globals([argparse.Namespace])
    return contextlib.nullcontext()


def write_data_dir(data_dir, dict_txt=None):
    """`input0/dict.txt` (a copy of `dict_txt`, default the real roberta-base one) and the
    3-label `label/dict.txt`."""
    data_dir = pathlib.Path(data_dir)
    (data_dir / "input0").mkdir(parents=True, exist_ok=True)
    (data_dir / "label").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dict_txt or shared_path("fairseq-gpt2-bpe", "dict.txt"), data_dir / "input0" / "dict.txt")
    # fairseq's `symbol count` format; the label dictionary gets <s> <pad> </s> <unk> (+<mask>)
    # around it, and the head's output i is label line i (label_fn: i + nspecial).
    (data_dir / "label" / "dict.txt").write_text(
        "".join(f"{label} {count}\n" for label, count in zip(LABELS, (3000, 2000, 1000))), encoding="utf-8"
    )
    return data_dir


def _training_cfg(data_dir, save_dir):
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    argv = [
        str(data_dir),
        "--task", "sentence_prediction",
        "--arch", "roberta_base",
        "--criterion", "sentence_prediction",
        "--num-classes", str(len(LABELS)),
        "--init-token", "0",
        "--separator-token", "2",
        "--max-positions", str(MAX_POSITIONS),
        "--encoder-layers", str(SMALL["encoder_layers"]),
        "--encoder-embed-dim", str(SMALL["encoder_embed_dim"]),
        "--encoder-ffn-embed-dim", str(SMALL["encoder_ffn_embed_dim"]),
        "--encoder-attention-heads", str(SMALL["encoder_attention_heads"]),
        "--optimizer", "adam",
        "--lr", "1e-05",
        "--lr-scheduler", "fixed",
        "--batch-size", "4",
        "--max-epoch", "1",
        "--cpu",
        "--seed", str(SEED),
        "--save-dir", str(save_dir),
        "--no-progress-bar",
    ]  # fmt: skip
    args = options.parse_args_and_arch(parser, input_args=argv)
    return convert_namespace_to_omegaconf(args)


def perturb(module, seed=SEED):
    """Adds noise to every parameter so no weight keeps its initial value (LayerNorm gamma=1,
    beta=0, zero biases) and any mis-mapped tensor shows in the outputs."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)


def legacy_state(state):
    """fairseq >= 0.10 RoBERTa keys -> the pre-0.10 form (`decoder.`, `emb_layer_norm`)."""
    out = type(state)()
    for key, value in state.items():
        if key.startswith("encoder."):
            key = "decoder." + key[len("encoder.") :]
        out[key.replace(".layernorm_embedding.", ".emb_layer_norm.")] = value
    return out


def legacy_args(model_cfg, num_classes):
    """The 0.12 model config as the flat argparse.Namespace pre-0.10 checkpoints stored."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(model_cfg):
        fields = OmegaConf.to_container(model_cfg, resolve=True)
    else:
        fields = dict(vars(model_cfg))
    fields.update(arch="roberta_base", task="sentence_prediction", num_classes=num_classes, criterion="sentence_prediction")
    fields.pop("_name", None)
    return argparse.Namespace(**fields)


def build_checkpoints(root, dict_txt=None):
    """The checkpoints, for a model over `dict_txt` (default roberta-base's; see write_data_dir)."""
    import torch
    from fairseq import tasks
    from fairseq.trainer import Trainer

    root = pathlib.Path(root)
    data_dir = write_data_dir(root / "data", dict_txt)
    torch.manual_seed(SEED)
    cfg = _training_cfg(data_dir, root / "save")
    task = tasks.setup_task(cfg.task)
    model = task.build_model(cfg.model)
    assert HEAD in model.classification_heads, list(model.classification_heads)
    perturb(model)
    criterion = task.build_criterion(cfg.criterion)
    trainer = Trainer(cfg, task, model, criterion)

    zip_dir = root / "zip_cfg"
    zip_dir.mkdir()
    # as fairseq's checkpoint_utils.save_checkpoint does before Trainer.save_checkpoint
    trainer.consolidate_optimizer()
    zip_cfg = pathlib.Path(trainer.save_checkpoint(str(zip_dir / "model.pt"), {"epoch": 1, "note": "fixture"}))

    written = torch.load(zip_cfg, map_location="cpu", weights_only=False)
    saved_keys = tuple(written)
    saved_cfg_model_type = type(written["cfg"]["model"]).__name__

    legacy = {
        "args": legacy_args(written["cfg"]["model"], len(LABELS)),
        "model": legacy_state(written["model"]),
        "optimizer_history": copy.deepcopy(written.get("optimizer_history", [])),
        "extra_state": copy.deepcopy(written.get("extra_state", {})),
        "last_optimizer_state": None,
    }
    paths = {}
    for name, zip_format in (("legacy_args", True), ("legacy_args_pickle", False)):
        directory = root / name
        directory.mkdir()
        paths[name] = directory / "model.pt"
        torch.save(legacy, paths[name], _use_new_zipfile_serialization=zip_format)

    return FairseqCheckpoints(
        data_dir=data_dir,
        zip_cfg=zip_cfg,
        legacy_args=paths["legacy_args"],
        legacy_args_pickle=paths["legacy_args_pickle"],
        model=model.eval(),
        saved_keys=saved_keys,
        saved_cfg_model_type=saved_cfg_model_type,
    )


def fairseq_hub(checkpoint, data_dir):
    """fairseq's hub interface over `checkpoint`, offline: the GPT-2 BPE files are passed as
    local paths (fairseq's defaults are URLs)."""
    from fairseq.models.roberta import RobertaModel

    checkpoint = pathlib.Path(checkpoint)
    with safe_globals():
        roberta = RobertaModel.from_pretrained(
            str(checkpoint.parent),
            checkpoint_file=checkpoint.name,
            data_name_or_path=str(data_dir),
            bpe="gpt2",
            gpt2_encoder_json=str(shared_path("fairseq-gpt2-bpe", "encoder.json")),
            gpt2_vocab_bpe=str(shared_path("fairseq-gpt2-bpe", "vocab.bpe")),
        )
    return roberta.eval()
