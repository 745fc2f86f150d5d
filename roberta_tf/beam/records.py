"""What a good record is, and the dead letter every other record becomes (pure Python).

A record to classify is `(id, segments)`: one text, or the two texts of a pair, as UTF-8 bytes.
A record is a dead letter, never a pipeline failure, when it is
  * `invalid_utf8`: a text (or the TSV id column) is not valid UTF-8;
  * `empty`: a text has no bytes (each text of a pair must have some);
  * `too_long`: the record has more than `max_record_bytes` bytes (default 1 MiB): the input
    line without its line end, or the texts of an element together. The bound keeps one
    pathological line from holding a worker's memory; the model reads only its first
    `sequence_length` tokens anyway;
  * `wrong_column_count`: a TSV line has fewer tab-separated columns than the text, pair and id
    columns need (more are fine), or an element is a tuple other than (id, text) /
    (id, text_a, text_b);
  * `not_text`: an element's text is neither `str` nor `bytes` (library input only).

Dead letters keep at most `DEAD_LETTER_RECORD_BYTES` of the record (an over-long line is never
held whole: `numbered_lines` reads in chunks).

The single-process `roberta-tf predict` differs on purpose: it classifies invalid UTF-8 and empty
lines as they are (the tokenizer maps every byte), and stops at a short TSV line; a corpus job
must not stop at its millionth line, so here such records are set aside with their reason.
"""

import dataclasses
from typing import Any

INVALID_UTF8 = "invalid_utf8"
EMPTY = "empty"
TOO_LONG = "too_long"
WRONG_COLUMN_COUNT = "wrong_column_count"
NOT_TEXT = "not_text"
DEAD_LETTER_REASONS = (INVALID_UTF8, EMPTY, TOO_LONG, WRONG_COLUMN_COUNT, NOT_TEXT)

DEFAULT_MAX_RECORD_BYTES = 1 << 20
DEAD_LETTER_RECORD_BYTES = 1024  # what a dead letter keeps of its record
READ_CHUNK_BYTES = 1 << 16


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A record set aside: its id, the reason (one of DEAD_LETTER_REASONS), a sentence saying
    what is wrong, and the record's bytes (at most DEAD_LETTER_RECORD_BYTES of them)."""

    id: Any
    reason: str
    detail: str
    record: bytes

    def to_json(self):
        """The dead-letter output line's object; the record's bytes shown safely (invalid UTF-8
        as backslash escapes)."""
        return {"id": self.id, "reason": self.reason, "detail": self.detail,
                "record": self.record.decode("utf-8", errors="backslashreplace")}


def dead_letter(record_id, reason, detail, record):
    return DeadLetter(record_id, reason, detail, bytes(record[:DEAD_LETTER_RECORD_BYTES]))


def check_segments(record_id, segments, max_record_bytes, record=None):
    """`(record_id, segments)` with every segment as bytes, or a DeadLetter. `segments` holds 1
    or 2 texts (str or bytes); `record` is the raw line they came from (for the dead letter)."""
    encoded = []
    for segment in segments:
        if isinstance(segment, str):
            try:
                segment = segment.encode("utf-8")
            except UnicodeEncodeError as error:  # lone surrogates
                return dead_letter(record_id, INVALID_UTF8, f"the text cannot be UTF-8 encoded ({error.reason})",
                                   segment.encode("utf-8", errors="backslashreplace"))
        elif not isinstance(segment, bytes):
            return dead_letter(record_id, NOT_TEXT, f"a text is a {type(segment).__name__}, not str or bytes",
                               repr(segment).encode("utf-8", errors="backslashreplace"))
        encoded.append(segment)
    raw = record if record is not None else b"\t".join(encoded)
    size = sum(len(segment) for segment in encoded)
    if size > max_record_bytes:
        return dead_letter(record_id, TOO_LONG, f"{size} bytes, more than the {max_record_bytes} allowed", raw)
    for segment in encoded:
        if not segment:
            return dead_letter(record_id, EMPTY, "the text is empty" if len(encoded) == 1 else
                               "a text of the pair is empty", raw)
        problem = utf8_problem(segment)
        if problem:
            return dead_letter(record_id, INVALID_UTF8, problem, raw)
    return record_id, tuple(encoded)


def check_element(element, max_record_bytes):
    """An element of `ClassifyTexts`' input (a text, (id, text) or (id, text_a, text_b)) ->
    `(has_id, id, segments)` or a DeadLetter (id None for a bare text)."""
    if isinstance(element, (str, bytes)):
        checked = check_segments(None, (element,), max_record_bytes)
        return checked if isinstance(checked, DeadLetter) else (False, *checked)
    if isinstance(element, tuple) and len(element) in (2, 3):
        checked = check_segments(element[0], element[1:], max_record_bytes)
        return checked if isinstance(checked, DeadLetter) else (True, *checked)
    if isinstance(element, tuple):
        return dead_letter(element[0] if element else None, WRONG_COLUMN_COUNT,
                           f"a tuple of {len(element)} items; expected (id, text) or (id, text_a, text_b)",
                           repr(element).encode("utf-8", errors="backslashreplace"))
    return dead_letter(None, NOT_TEXT, f"a {type(element).__name__}; expected a text, (id, text) or "
                       "(id, text_a, text_b)", repr(element).encode("utf-8", errors="backslashreplace"))


def utf8_problem(data):
    """None for valid UTF-8, else where and why it is not."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"invalid UTF-8 at byte {error.start} ({error.reason})"
    return None


def split_line(record_id, line, columns, id_column=None):
    """A TSV line -> `(id, segments)` (the id from `id_column`, decoded, when given), or a
    DeadLetter. Without `columns` the whole line is the text (and `id_column` is unused)."""
    if not columns:
        return record_id, (line,)
    fields = line.split(b"\t")
    needed = max(*columns, -1 if id_column is None else id_column) + 1
    if len(fields) < needed:
        return dead_letter(record_id, WRONG_COLUMN_COUNT,
                           f"needs at least {needed} tab-separated columns; the line has {len(fields)}", line)
    if id_column is not None:
        problem = utf8_problem(fields[id_column])
        if problem:
            return dead_letter(record_id, INVALID_UTF8, f"the id column: {problem}", line)
        record_id = fields[id_column].decode("utf-8")
    return record_id, tuple(fields[c] for c in columns)


@dataclasses.dataclass(frozen=True)
class LongLine:
    """A line over the limit, never held whole: its first DEAD_LETTER_RECORD_BYTES bytes and
    its size in bytes (without the line end)."""

    prefix: bytes
    size: int


def numbered_lines(read, max_record_bytes, chunk_bytes=READ_CHUNK_BYTES):
    """Yields `(line_number, line)` from the binary reader `read(n)`, lines split at b"\\n" and
    without their "\\n" or "\\r\\n" (as the single-process `predict` reads them; a last line
    without "\\n" counts, an empty end does not). `line` is bytes, or a `LongLine` for a line of
    more than `max_record_bytes` bytes: memory stays bounded by the limit whatever the input."""
    line_number, pending, size, last_byte = 1, bytearray(), 0, b""
    while True:
        chunk = read(chunk_bytes)
        if not chunk:
            break
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if piece:
                size, last_byte = size + len(piece), piece[-1:]
                pending += piece[:max_record_bytes + 1 - len(pending)]  # + 1: a "\r" before the "\n"
            if end < 0:
                break
            if last_byte == b"\r":  # "\r\n" ends the line; the "\r" is not part of it
                size -= 1
            yield line_number, _line(pending, size, max_record_bytes)
            line_number, pending, size, last_byte, start = line_number + 1, bytearray(), 0, b"", end + 1
    if size:
        yield line_number, _line(pending, size, max_record_bytes)


def _line(pending, size, max_record_bytes):
    if size > max_record_bytes:
        return LongLine(bytes(pending[:DEAD_LETTER_RECORD_BYTES]), size)
    return bytes(pending[:size])
