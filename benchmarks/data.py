"""The shared data sets the benchmarks read (by path, from ../shared/data) and batching."""

from pathlib import Path

from benchmarks import DATA_DIR
from roberta_tf.demo import data as sst2


def read_lines(path):
    """The lines of a UTF-8 text file without their line ends (only \\n and \\r\\n end a line)."""
    with open(path, encoding="utf-8", newline="") as f:
        return [line.rstrip("\r\n") for line in f]


def load_sst2(split, data_dir=None):
    """`(texts, labels)` of GLUE SST-2 `split` ("train": 67,349 phrases and sentences, "dev":
    872 sentences); labels an int32 array (0 negative, 1 positive). Read by the library's own
    SST-2 reader (the one `roberta-tf demo` uses), which checks the header and every row."""
    examples = sst2.read_split(Path(data_dir or DATA_DIR) / "sst2", split)
    return examples.texts, examples.labels


def batches(items, size):
    """Consecutive slices of `size` items (the last one may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
