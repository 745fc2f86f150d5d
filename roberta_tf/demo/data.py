"""GLUE SST-2 as the demo reads it: `train.tsv` (67,349 labelled phrases and sentences) and
`dev.tsv` (872 sentences), header `sentence<TAB>label`, labels 0 negative / 1 positive."""

import dataclasses
import pathlib

import numpy as np

import roberta_tf
from roberta_tf.utils import files

SPLITS = ("train", "dev")


@dataclasses.dataclass
class Split:
    texts: list  # str
    labels: np.ndarray  # int32
    path: pathlib.Path
    sha256: str


def default_data_dir():
    """`../shared/data/sst2` beside the checkout roberta_tf runs from (an editable install),
    else `../shared/data/sst2` from the working directory."""
    checkout = pathlib.Path(roberta_tf.__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout.parent / "shared" / "data" / "sst2"
    return pathlib.Path("..", "shared", "data", "sst2")


def missing_files(data_dir):
    """The SST-2 files `data_dir` lacks (empty when it has both splits)."""
    return [str(pathlib.Path(data_dir) / f"{split}.tsv") for split in SPLITS
            if not (pathlib.Path(data_dir) / f"{split}.tsv").is_file()]


def read_split(data_dir, split):
    """One split as a `Split`. Raises FileNotFoundError or ValueError (with the path) when
    the file is missing or is not SST-2."""
    path = pathlib.Path(data_dir) / f"{split}.tsv"
    with open(path, encoding="utf-8", newline="") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        raise ValueError(f"{path}: not GLUE SST-2 (the header must be 'sentence<TAB>label').")
    texts, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 2 or fields[1] not in ("0", "1"):
            raise ValueError(f"{path}, line {number}: expected 'sentence<TAB>0|1'.")
        texts.append(fields[0])
        labels.append(int(fields[1]))
    if not texts:
        raise ValueError(f"{path}: no examples.")
    return Split(texts, np.array(labels, np.int32), path, files.file_sha256(path))


def sample(split, count, seed):
    """`count` examples of `split` drawn without replacement (seeded); all when count is None."""
    if count is None or count >= len(split.texts):
        return split.texts, split.labels
    chosen = np.sort(np.random.default_rng(seed).permutation(len(split.texts))[:count])
    return [split.texts[i] for i in chosen], split.labels[chosen]
