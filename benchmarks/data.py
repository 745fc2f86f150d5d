"""The shared data sets the benchmarks read (by path, from ../shared/data) and batching."""

from pathlib import Path

import numpy as np

from benchmarks import DATA_DIR


def read_lines(path):
    """The lines of a UTF-8 text file without their line ends (only \\n and \\r\\n end a line)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [line.rstrip("\r\n") for line in f]


def load_sst2(split, data_dir=None):
    """`(texts, labels)` of GLUE SST-2 `split` ("train": 67,349 phrases and sentences, "dev":
    872 sentences); labels an int32 array (0 negative, 1 positive)."""
    path = Path(data_dir or DATA_DIR) / "sst2" / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"SST-2 {split} split not found: {path} (the shared data folder).")
    lines = read_lines(path)
    if lines[0].split("\t") != ["sentence", "label"]:
        raise ValueError(f"{path}: unexpected header {lines[0]!r}.")
    rows = [line.split("\t") for line in lines[1:] if line]
    return [row[0] for row in rows], np.array([int(row[1]) for row in rows], "int32")


def batches(items, size):
    """Consecutive slices of `size` items (the last one may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
