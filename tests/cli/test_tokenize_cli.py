"""`roberta-tf tokenize`: ids against Hugging Face `tokenizers`, streaming, bytes, errors.

Most tests run the subcommand in-process (`tokenize.main(argv)`, which parses its own fresh
absl FlagValues). Building a tokenizer takes seconds, so the in-process runs get the one
built by the module fixture through `load_tokenizer` (after checking the CLI resolved the
right files); the fairseq test and the subprocess test build their own.
"""

import io
import json
import os
import subprocess
import sys

import pytest

from roberta_tf.cli import command
from roberta_tf.cli import main as cli_main
from roberta_tf.cli import tokenize

from conftest import REPO
from conftest import shared_path as data_path


@pytest.fixture(scope="module")
def hf_files():
    return str(data_path("roberta-base", "vocab.json")), str(data_path("roberta-base", "merges.txt"))


@pytest.fixture(scope="module")
def tokenizer(hf_files):
    """The tokenizer the CLI builds for --vocabulary/--merges (built once)."""
    source = tokenizer_files_from_flags(["--vocabulary", hf_files[0], "--merges", hf_files[1]])
    return tokenize.load_tokenizer(source, match_special_tokens=False)


def _reference(encode_special_tokens):
    tokenizers = pytest.importorskip("tokenizers", reason="Hugging Face `tokenizers` (the reference) is not installed")
    reference = tokenizers.Tokenizer.from_file(str(data_path("roberta-base", "tokenizer.json")))
    reference.encode_special_tokens = encode_special_tokens
    return reference


@pytest.fixture(scope="module")
def hf():
    """Hugging Face tokenizers with special tokens in text as text (= match_special_tokens=False)."""
    return _reference(encode_special_tokens=True)


@pytest.fixture
def cli(tokenizer, hf_files, monkeypatch, capsys):
    """Runs `roberta-tf tokenize` in-process -> (exit code, stdout, stderr), reusing `tokenizer`
    for the Hugging Face files (after checking the CLI resolved exactly those)."""
    real_load = tokenize.load_tokenizer

    def load(source, match_special_tokens=False):
        if source.kind == "huggingface" and source.files == hf_files and not match_special_tokens:
            return tokenizer
        return real_load(source, match_special_tokens)

    monkeypatch.setattr(tokenize, "load_tokenizer", load)

    def run(*args):
        capsys.readouterr()
        code = tokenize.main(["roberta-tf tokenize", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def tokenizer_files_from_flags(args):
    flag_values = command.new_flag_values(tokenize)
    flag_values(["roberta-tf tokenize", *args])
    return tokenize.resolve_tokenizer_files(flag_values)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines()]


def first_lines(path, n):
    with open(path, "rb") as f:
        return [f.readline() for _ in range(n)]


@pytest.fixture(scope="module")
def sst2_head(tmp_path_factory):
    """The header and first 50 sentences of SST-2 dev, as a file, and the sentences."""
    lines = first_lines(data_path("sst2", "dev.tsv"), 51)
    assert lines[0].startswith(b"sentence\tlabel")
    path = tmp_path_factory.mktemp("sst2") / "dev-head.tsv"
    path.write_bytes(b"".join(lines))
    return path, [line.decode("utf-8").rstrip("\n").split("\t")[0] for line in lines[1:]]


# --- ids against Hugging Face tokenizers ---------------------------------------------------


def test_sst2_column_matches_hf(cli, hf_files, hf, sst2_head, tmp_path):
    path, sentences = sst2_head
    output = tmp_path / "ids.jsonl"
    code, out, err = cli(
        "--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--output", output,
        "--columns", "0", "--skip_header", "--batch_size", "16",
    )  # fmt: skip
    assert code == 0, err
    assert out == ""  # ids go to --output only
    assert json_lines(output.read_text()) == [hf.encode(s).ids for s in sentences]


def test_xnli_pairs_match_hf(cli, hf_files, hf, tmp_path):
    lines = first_lines(data_path("xnli-dev", "dev-en.tsv"), 20)
    assert all(line.endswith(b"\r\n") for line in lines)  # CRLF, no header
    path = tmp_path / "xnli.tsv"
    path.write_bytes(b"".join(lines))
    pairs = [line.decode("utf-8").rstrip("\r\n").split("\t")[:2] for line in lines]
    code, out, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--columns", "0,1")
    assert code == 0, err
    assert json_lines(out) == [hf.encode(a, b).ids for a, b in pairs]


def test_pair_truncation_longest_first_matches_hf(cli, hf_files, tmp_path):
    lines = first_lines(data_path("xnli-dev", "dev-en.tsv"), 20)
    path = tmp_path / "xnli.tsv"
    path.write_bytes(b"".join(lines))
    pairs = [line.decode("utf-8").rstrip("\r\n").split("\t")[:2] for line in lines]
    reference = _reference(encode_special_tokens=True)
    reference.enable_truncation(max_length=16, strategy="longest_first")
    code, out, err = cli(
        "--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--columns", "0,1",
        "--sequence_length", "16", "--truncate", "longest_first",
    )  # fmt: skip
    assert code == 0, err
    rows = json_lines(out)
    assert max(len(r) for r in rows) == 16
    assert rows == [reference.encode(a, b).ids for a, b in pairs]


def test_raw_ids_without_special_tokens(cli, hf_files, hf, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(b"Hello world!\tHow are you?\n<mask> is text\t<s>\n")
    args = ("--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--noadd_special_tokens")
    code, out, err = cli(*args, "--columns", "0")
    assert code == 0, err
    assert json_lines(out) == [
        hf.encode("Hello world!", add_special_tokens=False).ids,
        hf.encode("<mask> is text", add_special_tokens=False).ids,
    ]
    code, out, err = cli(*args, "--columns", "0,1")
    assert code == 0, err
    assert json_lines(out) == [
        [hf.encode(a, add_special_tokens=False).ids, hf.encode(b, add_special_tokens=False).ids]
        for a, b in [("Hello world!", "How are you?"), ("<mask> is text", "<s>")]
    ]


def test_fairseq_dir_gives_the_hf_ids(cli, hf_files, sst2_head, tmp_path):
    fairseq_dir = data_path("fairseq-gpt2-bpe")
    path, _ = sst2_head
    common = ("--input", path, "--columns", "0", "--skip_header")
    code, hf_out, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1], *common)
    assert code == 0, err
    code, fairseq_out, err = cli("--fairseq_dir", fairseq_dir, *common)  # builds the fairseq tokenizer
    assert code == 0, err
    assert fairseq_out == hf_out
    assert len(json_lines(fairseq_out)) == 50


def test_sentencepiece_model_gives_xlmr_ids(cli, tmp_path):
    """XLM-R: SentencePiece's ids + 1 (<unk> 3) packed as <s> A </s>; invalid UTF-8 as the
    package reads bytes (each bad byte is U+FFFD)."""
    from sentencepiece_models import spm, trained_model

    model = tmp_path / "sentencepiece.bpe.model"
    model.write_bytes(trained_model("unigram-nmt_nfkc"))
    processor = spm().SentencePieceProcessor(model_file=str(model))
    lines = ["Les enfants jouent dehors.", "Дети играют на улице", "", "\u5b69\u5b50\u4eec\u5728\u5916\u9762\u73a9"]
    raw = [line.encode("utf-8") for line in lines] + [b"caf\xe9 \xff!"]
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(raw) + b"\n")
    code, out, err = cli("--sentencepiece_model", model, "--input", source)
    assert code == 0, err
    expected = [[0] + [i + 1 if i else 3 for i in processor.encode(line)] + [2] for line in raw]
    assert json_lines(out) == expected
    code, _, err = cli("--sentencepiece_model", model, "--vocabulary", model, "--input", source)
    assert code == 2 and "conflicting tokenizer sources" in err


def test_fairseq_file_flags_resolve_like_fairseq_dir():
    fairseq_dir = data_path("fairseq-gpt2-bpe")
    by_dir = tokenizer_files_from_flags(["--fairseq_dir", str(fairseq_dir)])
    by_files = tokenizer_files_from_flags(
        [f"--encoder_json={fairseq_dir / 'encoder.json'}", f"--vocab_bpe={fairseq_dir / 'vocab.bpe'}",
         f"--dict_txt={fairseq_dir / 'dict.txt'}"]
    )  # fmt: skip
    assert by_dir.kind == by_files.kind == "fairseq"
    assert [os.path.realpath(f) for f in by_dir.files] == [os.path.realpath(f) for f in by_files.files]


# --- bytes, line ends, streaming -----------------------------------------------------------


def test_invalid_utf8_empty_lines_and_stdin(cli, hf_files, tokenizer, hf, monkeypatch):
    data = b"caf\xe9\n\nplain text\r\n\r\n\xff\xfe\x80 bytes\nlast line without newline"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1])  # --input - / --output -
    assert code == 0, err
    rows = json_lines(out)
    assert len(rows) == 6
    raw = tokenizer([b"caf\xe9", b"\xff\xfe\x80 bytes"]).to_list()
    assert rows[0] == [0, *raw[0], 2] and len(raw[0]) >= 2  # "caf" + the byte 0xE9, no U+FFFD
    assert rows[1] == [0, 2]  # empty line
    assert rows[2] == hf.encode("plain text").ids  # "\r\n" stripped
    assert rows[3] == [0, 2]  # empty CRLF line
    assert rows[4] == [0, *raw[1], 2]
    assert rows[5] == hf.encode("last line without newline").ids


def test_only_the_line_end_is_stripped(cli, hf_files, hf, tmp_path):
    path = tmp_path / "spaces.txt"
    path.write_bytes(b"  padded \t \r\nx\r\r\n")
    code, out, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path)
    assert code == 0, err
    assert json_lines(out) == [hf.encode("  padded \t ").ids, hf.encode("x\r").ids]


def test_streams_and_flushes_per_batch(tokenizer):
    consumed = []

    def lines():
        for i in range(5):
            consumed.append(i)
            yield f"line {i}\n".encode()

    class Output(io.StringIO):
        def __init__(self):
            super().__init__()
            self.flushed_after = []

        def flush(self):
            self.flushed_after.append((len(consumed), self.getvalue().count("\n")))
            super().flush()

    output = Output()
    encoder = tokenize.BatchEncoder(tokenizer)
    assert tokenize.tokenize_stream(encoder, lines(), output, batch_size=2) == (5, sum(
        len(r) for r in json_lines(output.getvalue())
    ))  # fmt: skip
    # Each batch is written and flushed before the next lines are read.
    assert output.flushed_after == [(2, 2), (4, 4), (5, 5)]


# --- errors --------------------------------------------------------------------------------


def test_tsv_line_with_too_few_columns(cli, hf_files, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"premise\thypothesis\n" + b"a\tb\n" * 3 + b"only one column\n" + b"c\td\n")
    code, out, err = cli(
        "--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--columns", "0,1", "--skip_header"
    )
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}:5:" in err and "needs at least 2 tab-separated columns" in err


def test_missing_vocabulary_file(cli, hf_files, tmp_path):
    missing = tmp_path / "nope" / "vocab.json"
    code, out, err = cli("--vocabulary", missing, "--merges", hf_files[1])
    assert code == 1
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "--vocabulary" in err and str(missing) in err


def test_input_and_output_errors(cli, hf_files, tmp_path):
    flags = ("--vocabulary", hf_files[0], "--merges", hf_files[1])
    code, out, err = cli(*flags, "--input", tmp_path / "missing.txt")
    assert code == 1 and err.count("\n") == 1 and "--input: no such file" in err
    code, out, err = cli(*flags, "--input", tmp_path)
    assert code == 1 and "--input: is a directory" in err
    code, out, err = cli(*flags, "--output", tmp_path / "no" / "dir.jsonl")
    assert code == 1 and "--output: no such directory" in err
    same = tmp_path / "same.txt"
    same.write_bytes(b"keep me\n")
    code, out, err = cli(*flags, "--input", same, "--output", same)
    assert code == 2 and "--output is the --input file" in err
    assert same.read_bytes() == b"keep me\n"


def test_malformed_vocabulary(cli, hf_files, tmp_path):
    vocabulary = tmp_path / "vocab.json"
    vocabulary.write_text('{"a": 0, "b": 1}')  # no <s>, <pad>, </s>, <mask>: the library's ValueError
    code, out, err = cli("--vocabulary", vocabulary, "--merges", hf_files[1])
    assert code == 1
    assert err.count("\n") == 1 and "cannot load the tokenizer" in err and "missing special tokens" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vocabulary", "v.json", "--merges", "m.txt", "--fairseq_dir", "d"], "conflicting tokenizer sources"),
        (["--fairseq_dir", "d", "--dict_txt", "dict.txt"], "conflicting tokenizer sources"),
        ([], "no tokenizer files"),
        (["--vocabulary", "v.json"], "missing --merges"),
        (["--encoder_json", "e.json", "--vocab_bpe", "v.bpe"], "missing --dict_txt"),
        (["--fairseq_dir", "d", "--columns", "0,1,2"], "one column or a pair"),
        (["--fairseq_dir", "d", "--columns", "-1"], "0-based column numbers"),
        (["--fairseq_dir", "d", "--batch_size", "0"], "--batch_size"),
        (["--fairseq_dir", "d", "--sequence_length", "4"], "--sequence_length"),
        (["--fairseq_dir", "d", "--truncate", "middle"], "--truncate"),
        (["--fairseq_dir", "d", "--no_such_flag"], "no_such_flag"),
        (["--fairseq_dir", "d", "stray"], "unexpected argument"),
    ],
)
def test_usage_errors(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("roberta-tf tokenize: error: ") and message in err


def test_help_lists_the_flags(cli):
    code, out, err = cli("--help")
    assert code == 0
    for flag in ("--input", "--output", "--vocabulary", "--fairseq_dir", "--columns", "--[no]skip_header",
                 "--[no]add_special_tokens", "--sequence_length", "--truncate", "--batch_size"):  # fmt: skip
        assert flag in out


def test_flags_are_not_global(cli, hf_files, tmp_path):
    """A second in-process run starts from the defaults, not from the previous run's flags."""
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\tb\n")
    code, first, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path, "--columns", "1")
    assert code == 0, err
    code, second, err = cli("--vocabulary", hf_files[0], "--merges", hf_files[1], "--input", path)
    assert code == 0, err
    assert json_lines(first) != json_lines(second)  # "b" vs the whole line "a\tb"


# --- the `roberta-tf` dispatcher -----------------------------------------------------------


def test_dispatcher_help_and_unknown_subcommand(capsys):
    assert cli_main.main(["roberta-tf", "--help"]) == 0
    out = capsys.readouterr().out
    assert "tokenize" in out and tokenize.SUMMARY in out
    assert cli_main.main(["roberta-tf", "help"]) == 0
    assert "tokenize" in capsys.readouterr().out
    assert cli_main.main(["roberta-tf", "help", "tokenize"]) == 0
    assert "--fairseq_dir" in capsys.readouterr().out
    assert cli_main.main(["roberta-tf", "tokenise"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown subcommand 'tokenise'" in err and "tokenize" in err
    assert cli_main.main(["roberta-tf"]) == 2
    assert "missing SUBCOMMAND" in capsys.readouterr().err


# --- real processes ------------------------------------------------------------------------


def run_module(args, stdin=b""):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "roberta_tf.cli", *map(str, args)],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_subprocess_tokenize_stdin_to_stdout(hf_files, sst2_head):
    """`python -m roberta_tf.cli tokenize` end to end, with --match_special_tokens (Hugging Face's
    default behaviour) so a line with special tokens is compared to tokenizers' defaults."""
    path, sentences = sst2_head
    special = "Hello <mask> world</s> <s>!"
    stdin = path.read_bytes() + special.encode() + b"\t1\n"
    result = run_module(
        ["tokenize", "--vocabulary", hf_files[0], "--merges", hf_files[1], "--columns", "0", "--skip_header",
         "--match_special_tokens", "--batch_size", "8"],
        stdin=stdin,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    reference = _reference(encode_special_tokens=False)
    rows = json_lines(result.stdout.decode("ascii"))
    assert rows == [reference.encode(s).ids for s in [*sentences, special]]
    assert 50264 in rows[-1]  # <mask> matched
    assert b"Tokenized 51 lines" in result.stderr  # absl info logging goes to stderr


def test_subprocess_errors_exit_codes():
    result = run_module(["no-such-subcommand"])
    assert result.returncode == 2
    assert b"unknown subcommand 'no-such-subcommand'" in result.stderr and result.stdout == b""
    result = run_module(["tokenize", "--vocabulary", "/nonexistent/vocab.json", "--merges", "/nonexistent/m.txt"])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        b"roberta-tf tokenize: error: --vocabulary: no such file: '/nonexistent/vocab.json'"
    ]
    result = run_module(["--help"])
    assert result.returncode == 0 and b"tokenize" in result.stdout
