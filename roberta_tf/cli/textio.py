"""Line-oriented input and output shared by the commands that stream files (`tokenize`,
`predict`, `evaluate`): '-' for stdin/stdout, lines read as bytes (so text that is not valid
UTF-8 reaches the model as it is), TSV columns, and the checks on --input/--output.

Lines are read one at a time and handed on in batches by the callers: memory does not grow
with the file.
"""

import os
import sys

from roberta_tf.cli.command import CommandError, UsageError


def check_readable(path, flag):
    """A clear error unless `path` names an existing non-directory (a file, a pipe, /dev/stdin)."""
    if not path:
        raise UsageError(f"--{flag} is empty")
    if not os.path.exists(path):
        raise CommandError(f"--{flag}: no such file: {path!r}")
    if os.path.isdir(path):
        raise CommandError(f"--{flag}: is a directory: {path!r}")


def check_input_output(input_path, output_path):
    """--input readable (unless '-'); --output's directory exists and it is not the input."""
    if input_path != "-":
        check_readable(input_path, "input")
    if output_path == "-":
        return
    directory = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(directory):
        raise CommandError(f"--output: no such directory: {directory!r}")
    if input_path != "-" and os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise UsageError("--output is the --input file (it would be truncated before it is read)")


def strip_line_end(line):
    """`line` without its trailing "\\n" and the "\\r" just before it (nothing else)."""
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def read_records(lines, columns=(), skip_header=False, source_name="<input>", columns_flag=None):
    """Yields (line_number, segments) for binary `lines`: segments is (line,) without
    `columns`, else the tab-separated fields named by `columns` (bytes). `columns_flag` names
    the flag(s) that chose the columns, for the message about a short line."""
    needed = max(columns) + 1 if columns else 0
    columns_flag = columns_flag or f"--columns={','.join(map(str, columns))}"
    for line_number, line in enumerate(lines, start=1):
        if skip_header and line_number == 1:
            continue
        line = strip_line_end(line)
        if not columns:
            yield line_number, (line,)
            continue
        fields = line.split(b"\t")
        if len(fields) < needed:
            raise CommandError(
                f"{source_name}:{line_number}: {columns_flag} needs at least {needed} tab-separated "
                f"columns; the line has {len(fields)}"
            )
        yield line_number, tuple(fields[c] for c in columns)


def batches(records, batch_size):
    """Groups (line_number, segments) records into lists of at most `batch_size`."""
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def input_size(path):
    """Bytes in the --input file (None for stdin or a pipe): the total of a progress bar."""
    if path == "-" or not os.path.isfile(path):
        return None
    return os.path.getsize(path)


def counted(lines, bar):
    """Yields `lines`, adding each line's bytes to the progress `bar` once it is read."""
    for line in lines:
        bar.update(len(line))
        yield line


def isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class Stream:
    """Opens '-' (stdin/stdout) or a path; closes only what it opened."""

    def __init__(self, path, mode):
        self.path, self.mode, self.file, self.owned = path, mode, None, False

    @property
    def name(self):
        return ("<stdin>" if "r" in self.mode else "<stdout>") if self.path == "-" else self.path

    def __enter__(self):
        if self.path == "-":
            self.file = sys.stdin.buffer if "r" in self.mode else sys.stdout
            return self.file
        flag = "--input" if "r" in self.mode else "--output"
        try:
            if "b" in self.mode:
                self.file = open(self.path, self.mode)  # noqa: SIM115
            else:
                self.file = open(self.path, self.mode, encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as e:
            raise CommandError(f"{flag}: cannot open {self.path!r}: {e.strerror or e}") from e
        self.owned = True
        return self.file

    def __exit__(self, *exc):
        if self.owned:
            self.file.close()
        return False
