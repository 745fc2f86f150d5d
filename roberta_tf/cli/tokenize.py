"""`roberta-tf tokenize`: lines of text -> one JSON list of RoBERTa token ids per line.

    roberta-tf tokenize --vocabulary vocab.json --merges merges.txt < in.txt > ids.jsonl
    roberta-tf tokenize --fairseq_dir gpt2_bpe/ --input dev.tsv --columns 0,1 --skip_header
    roberta-tf tokenize --sentencepiece_model sentencepiece.bpe.model < in.txt   (XLM-R)

The input is read as bytes and streamed in batches of `--batch_size` lines; each line's raw
bytes (without its "\\n" or "\\r\\n") go to the tokenizer, so text that is not valid UTF-8 is
tokenized byte by byte rather than rejected. Output is flushed after every batch.
"""

import dataclasses
import json
import os
import sys
import time

from absl import flags
from absl import logging

from roberta_tf.cli import command, textio
from roberta_tf.cli.command import CommandError, UsageError
from roberta_tf.preprocessing import options

NAME = "tokenize"
SUMMARY = "Tokenize lines of text (or TSV columns) into RoBERTa or XLM-R token ids, one JSON list per line."
DESCRIPTION = """
Reads --input line by line (bytes; "\\n" and "\\r\\n" line ends) and writes one JSON list of
token ids per input line to --output, e.g. [0, 31414, 232, 2].

Tokenizer files, exactly one source:
  --vocabulary vocab.json --merges merges.txt         (Hugging Face)
  --fairseq_dir DIR                                   (DIR/encoder.json, vocab.bpe, dict.txt)
  --encoder_json F --vocab_bpe F --dict_txt F         (fairseq, files named one by one)
  --sentencepiece_model F [--dict_txt F]              (XLM-R: SentencePiece, fairseq's ids;
                                                       dict.txt where its order is not the model's)

With --add_special_tokens (default) each line is packed as <s> A </s> (or <s> A </s></s> B </s>
for --columns a,b), truncated to --sequence_length, without padding. With
--noadd_special_tokens the raw tokenizer ids are written (no truncation); for a pair of
columns the line's output is [[ids of A], [ids of B]].

TSV input (--columns) is split on tabs, without quoting rules.
"""

FAIRSEQ_FILES = ("encoder.json", "vocab.bpe", "dict.txt")


def define_flags(fv):
    flags.DEFINE_string("input", "-", "Text file to read, one text per line; '-' reads stdin.", flag_values=fv)
    flags.DEFINE_string("output", "-", "File to write, one JSON list of ids per line; '-' writes stdout.", flag_values=fv)
    flags.DEFINE_string("vocabulary", None, "Hugging Face vocab.json (with --merges).", flag_values=fv)
    flags.DEFINE_string("merges", None, "Hugging Face merges.txt (with --vocabulary).", flag_values=fv)
    flags.DEFINE_string(
        "fairseq_dir", None, "Directory with fairseq's encoder.json, vocab.bpe and dict.txt.", flag_values=fv
    )
    flags.DEFINE_string("encoder_json", None, "fairseq/GPT-2 encoder.json (with --vocab_bpe, --dict_txt).", flag_values=fv)
    flags.DEFINE_string("vocab_bpe", None, "fairseq/GPT-2 vocab.bpe (with --encoder_json, --dict_txt).", flag_values=fv)
    flags.DEFINE_string("dict_txt", None, "fairseq dict.txt (with --encoder_json, --vocab_bpe; or with "
                        "--sentencepiece_model).", flag_values=fv)
    flags.DEFINE_string("sentencepiece_model", None, "XLM-R's sentencepiece.bpe.model (any SentencePiece "
                        "unigram or BPE model): XLM-R ids.", flag_values=fv)
    flags.DEFINE_list(
        "columns",
        [],
        "Empty: the whole line is the text. 'i' or 'i,j': the input is TSV and column i (0-based), "
        "or the pair of columns i and j, is tokenized.",
        flag_values=fv,
    )
    flags.DEFINE_bool("skip_header", False, "Skip the first input line (a TSV header).", flag_values=fv)
    flags.DEFINE_bool(
        "add_special_tokens",
        True,
        "Pack as <s> A </s> or <s> A </s></s> B </s>, truncated to --sequence_length; "
        "--noadd_special_tokens writes the raw tokenizer ids.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "sequence_length",
        512,
        "Maximum ids per line, special tokens included (with --add_special_tokens).",
        lower_bound=options.MIN_SEQUENCE_LENGTH,
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "truncate",
        options.DEFAULT_TRUNCATE,
        list(options.TRUNCATION_STRATEGIES),
        "How a pair is cut to --sequence_length: keras-hub's round_robin or Hugging Face's longest_first.",
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "match_special_tokens",
        False,
        "Map '<s>', '</s>', '<mask>'... in the text to their ids (Hugging Face's default). "
        "Off (fairseq's behaviour): they are tokenized as ordinary text.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "batch_size", 256, "Lines tokenized per batch (and written per flush).", lower_bound=1, flag_values=fv
    )


# --- tokenizer files -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenizerFiles:
    """Where the tokenizer comes from: kind "huggingface", "fairseq" or "sentencepiece", and its files."""

    kind: str
    files: tuple  # (vocab.json, merges.txt), (encoder.json, vocab.bpe, dict.txt) or (model[, dict.txt])
    flags: tuple  # the flag naming each file, for messages

    def describe(self):
        return ", ".join(self.files)


def resolve_tokenizer_files(fv):
    """The single tokenizer source given by the flags, its files checked to exist."""
    if fv.sentencepiece_model is not None:
        return _sentencepiece_files(fv)
    groups = {
        "huggingface": ("vocabulary", "merges"),
        "fairseq_dir": ("fairseq_dir",),
        "fairseq": ("encoder_json", "vocab_bpe", "dict_txt"),
    }
    given = {group: [n for n in names if fv[n].value is not None] for group, names in groups.items()}
    used = [group for group, names in given.items() if names]
    one_of = (
        "give exactly one of: --vocabulary and --merges (Hugging Face); --fairseq_dir; "
        "--encoder_json, --vocab_bpe and --dict_txt (fairseq); or --sentencepiece_model (XLM-R)"
    )
    if not used:
        raise UsageError(f"no tokenizer files: {one_of}")
    if len(used) > 1:
        named = ", ".join(f"--{n}" for group in used for n in given[group])
        raise UsageError(f"conflicting tokenizer sources ({named}): {one_of}")
    group = used[0]
    missing = [n for n in groups[group] if n not in given[group]]
    if missing:
        together = ", ".join(f"--{n}" for n in groups[group])
        raise UsageError(f"missing {', '.join('--' + n for n in missing)} ({together} go together)")

    if group == "fairseq_dir":
        directory = fv.fairseq_dir
        if not os.path.isdir(directory):
            raise CommandError(f"--fairseq_dir: not a directory: {directory!r}")
        files = tuple(os.path.join(directory, name) for name in FAIRSEQ_FILES)
        flag_names = ("fairseq_dir",) * 3
        for path, name in zip(files, FAIRSEQ_FILES):
            if not os.path.isfile(path):
                raise CommandError(f"--fairseq_dir: {directory!r} has no {name}")
        return TokenizerFiles("fairseq", files, flag_names)
    flag_names = groups[group]
    files = tuple(fv[n].value for n in flag_names)
    for path, name in zip(files, flag_names):
        textio.check_readable(path, name)
    return TokenizerFiles("huggingface" if group == "huggingface" else "fairseq", files, flag_names)


def _sentencepiece_files(fv):
    others = [n for n in ("vocabulary", "merges", "fairseq_dir", "encoder_json", "vocab_bpe") if fv[n].value is not None]
    if others:
        raise UsageError(f"conflicting tokenizer sources (--sentencepiece_model, --{others[0]}): give one")
    if fv.match_special_tokens:
        raise UsageError("--match_special_tokens applies to RoBERTa's BPE; XLM-R treats all text as text")
    flag_names = ("sentencepiece_model",) + (("dict_txt",) if fv.dict_txt is not None else ())
    files = tuple(fv[n].value for n in flag_names)
    for path, name in zip(files, flag_names):
        textio.check_readable(path, name)
    return TokenizerFiles("sentencepiece", files, flag_names)


def load_tokenizer(source, match_special_tokens=False):
    """A `RobertaTokenizer` or `XLMRobertaTokenizer` from `TokenizerFiles` (CommandError if the
    files are malformed)."""
    import tensorflow as tf

    from roberta_tf.models import RobertaTokenizer, XLMRobertaTokenizer

    start = time.perf_counter()
    try:
        if source.kind == "sentencepiece":
            model, *dictionary = source.files
            tokenizer = (XLMRobertaTokenizer.from_fairseq(model, *dictionary) if dictionary
                         else XLMRobertaTokenizer(proto=model))
        elif source.kind == "huggingface":
            vocabulary, merges = source.files
            tokenizer = RobertaTokenizer(vocabulary=vocabulary, merges=merges, match_special_tokens=match_special_tokens)
        else:
            tokenizer = RobertaTokenizer.from_fairseq(*source.files, match_special_tokens=match_special_tokens)
    except (ValueError, OSError, tf.errors.OpError) as e:
        raise CommandError(f"cannot load the tokenizer: {command.one_line(e)}") from e
    logging.info(
        "Loaded the %s tokenizer (%d tokens) from %s in %.1f s.",
        source.kind,
        tokenizer.vocabulary_size(),
        source.describe(),
        time.perf_counter() - start,
    )
    return tokenizer


# --- encoding ------------------------------------------------------------------------------


class BatchEncoder:
    """Token ids for batches of texts (one or two segments of raw bytes per row).

    Args:
        tokenizer: a `RobertaTokenizer`.
        add_special_tokens: pack `<s> A </s>` / `<s> A </s></s> B </s>` (truncated to
            `sequence_length`, no padding), or return the raw tokenizer ids.
        sequence_length, truncate: as `RobertaTextClassifierPreprocessor`'s.
    """

    def __init__(self, tokenizer, add_special_tokens=True, sequence_length=512, truncate=options.DEFAULT_TRUNCATE):
        from roberta_tf.models import RobertaTextClassifierPreprocessor

        self.tokenizer = tokenizer
        self.add_special_tokens = add_special_tokens
        self.preprocessor = None
        if add_special_tokens:
            self.preprocessor = RobertaTextClassifierPreprocessor(
                tokenizer, sequence_length=sequence_length, truncate=truncate, padding="longest"
            )

    def __call__(self, segments):
        """`segments`: a list of 1 or 2 equally long lists of bytes -> one id list per row
        (for raw ids of pairs: `[ids_a, ids_b]` per row)."""
        if self.add_special_tokens:
            packed = self.preprocessor(segments[0] if len(segments) == 1 else tuple(segments))
            token_ids = packed["token_ids"].numpy()
            lengths = packed["padding_mask"].numpy().sum(axis=1)  # padding only at the end of a row
            return [row[:length].tolist() for row, length in zip(token_ids, lengths)]
        rows = [self.tokenizer(list(texts)).to_list() for texts in segments]
        return rows[0] if len(rows) == 1 else [list(pair) for pair in zip(*rows)]


# --- streaming -----------------------------------------------------------------------------


def parse_columns(values):
    """--columns values ([], ["0"] or ["0", "1"]) -> a tuple of ints."""
    if len(values) > 2:
        raise UsageError(f"--columns takes one column or a pair of columns. Received: {','.join(values)!r}")
    columns = []
    for value in values:
        try:
            column = int(value)
        except ValueError:
            column = -1
        if column < 0:
            raise UsageError(f"--columns must be 0-based column numbers. Received: {value!r}")
        columns.append(column)
    return tuple(columns)


def _count_ids(row):
    return sum(map(len, row)) if row and isinstance(row[0], list) else len(row)


def tokenize_stream(encoder, lines, output, columns=(), skip_header=False, batch_size=256, source_name="<input>"):
    """Tokenizes binary `lines` batch by batch, writing one JSON line per input line to the
    text stream `output` and flushing it after each batch. Returns (lines, ids) written."""
    num_segments = max(len(columns), 1)
    num_lines = num_ids = 0
    batch = [[] for _ in range(num_segments)]

    def flush_batch():
        nonlocal num_lines, num_ids
        rows = encoder(batch)
        output.write("".join(json.dumps(row) + "\n" for row in rows))
        output.flush()
        num_lines += len(rows)
        num_ids += sum(_count_ids(row) for row in rows)
        for segment in batch:
            segment.clear()
        logging.log_every_n_seconds(logging.INFO, "%d lines tokenized.", 30, num_lines)

    for _, segments in textio.read_records(lines, columns, skip_header, source_name):
        for segment, text in zip(batch, segments):
            segment.append(text)
        if len(batch[0]) >= batch_size:
            flush_batch()
    if batch[0]:
        flush_batch()
    return num_lines, num_ids


def execute(fv, args):
    del args  # none accepted
    columns = parse_columns(fv.columns)
    source = resolve_tokenizer_files(fv)
    textio.check_input_output(fv.input, fv.output)
    if not fv.add_special_tokens and fv["sequence_length"].present:
        logging.warning("--sequence_length has no effect with --noadd_special_tokens (raw ids are not truncated).")

    import tensorflow as tf

    if fv.input == "-" and textio.isatty(sys.stdin):
        logging.info("Reading text from stdin, one text per line (end with Ctrl-D).")
    tokenizer = load_tokenizer(source, fv.match_special_tokens)
    encoder = BatchEncoder(tokenizer, fv.add_special_tokens, fv.sequence_length, fv.truncate)
    start = time.perf_counter()
    input_stream, output_stream = textio.Stream(fv.input, "rb"), textio.Stream(fv.output, "w")
    with input_stream as lines, output_stream as output:
        try:
            num_lines, num_ids = tokenize_stream(
                encoder,
                lines,
                output,
                columns=columns,
                skip_header=fv.skip_header,
                batch_size=fv.batch_size,
                source_name=input_stream.name,
            )
        except tf.errors.OpError as e:
            raise CommandError(f"tokenization failed: {command.one_line(e.message)}") from e
    elapsed = time.perf_counter() - start
    logging.info(
        "Tokenized %d lines (%d ids) from %s to %s in %.1f s.",
        num_lines,
        num_ids,
        input_stream.name,
        output_stream.name,
        elapsed,
    )
    return command.EXIT_OK


def main(argv):
    """Runs `roberta-tf tokenize` with `argv` (argv[0] = program name); returns the exit code."""
    return command.run_subcommand(sys.modules[__name__], argv)
