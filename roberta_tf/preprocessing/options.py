"""Packing options: truncation and padding names, the sequence-length bounds, their checks.

The one definition that the packer, the preprocessor layer, the serving exports and the CLI
flags use. No TensorFlow here, so `roberta-tf --help` can list the choices without loading it.
"""

# keras-hub's `RoundRobinTrimmer` default, and Hugging Face's `longest_first`.
TRUNCATION_STRATEGIES = ("round_robin", "longest_first")
DEFAULT_TRUNCATE = "round_robin"
# keras-hub pads every row to `sequence_length`; a server wants the longest row of the batch.
PADDING_STRATEGIES = ("max_length", "longest")
DEFAULT_PADDING = "max_length"
# A pair needs `<s> A </s></s> B </s>`: four special tokens and at least one text token.
MIN_SEQUENCE_LENGTH = 5


def check_truncate(truncate):
    if truncate not in TRUNCATION_STRATEGIES:
        raise ValueError(f"truncate must be one of {TRUNCATION_STRATEGIES}. Received: truncate={truncate!r}")
    return truncate


def check_padding(padding):
    if padding not in PADDING_STRATEGIES:
        raise ValueError(f"padding must be one of {PADDING_STRATEGIES}. Received: padding={padding!r}")
    return padding


def check_sequence_length(sequence_length, maximum=None):
    """`sequence_length` as an int in [MIN_SEQUENCE_LENGTH, maximum] (maximum: the model's
    `max_sequence_length`, when known), or a ValueError saying what was received."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int):
        raise ValueError(f"sequence_length must be an int. Received: sequence_length={sequence_length!r}")
    if sequence_length < MIN_SEQUENCE_LENGTH:
        raise ValueError(
            f"sequence_length must be at least {MIN_SEQUENCE_LENGTH} (a pair's four special tokens and one "
            f"token). Received: sequence_length={sequence_length}"
        )
    if maximum is not None and sequence_length > maximum:
        raise ValueError(
            f"sequence_length must be at most {maximum} (the model's max_sequence_length). "
            f"Received: sequence_length={sequence_length}"
        )
    return sequence_length
