"""SentencePiece id parity, every consumer on every corpus (issue 15, "What it must show" 1):
an offline verification run, not a timing benchmark.

The test suite checks the tokenizer functions on every corpus but, within its CI time budget,
the Keras layer, the served SavedModel and the TFLite model only on samples. This run checks
all three on everything: for each SentencePiece model of tests/sentencepiece_models.py
(BPEmb's 100k BPE model, every `TRAINED` model, the 250,002-piece unigram model) and each
corpus of tests/corpora.py `all_corpora()` (SST-2, the 15 XNLI languages, UDHR, the naughty
strings, the UTF-8 demo, emoji, the 20k fuzz) plus a corpus of this run's own, invalid UTF-8
(the tests' fuzz encoded and then broken: stray continuation bytes, overlongs, encoded
surrogates, code points past U+10FFFF, truncated characters, NUL), it counts the texts whose
ids differ from the reference:

- reference: the `sentencepiece` package's `encode` of the text (its raw bytes where the text
  is bytes: the package replaces each byte that does not start a well-formed UTF-8 character
  by U+FFFD, as roberta_tf's normalizer documents), mapped to XLM-R's fairseq ids (every id + 1,
  `<unk>` -> 3);
- `keras`: `XLMRobertaTokenizer(proto=...)` called on batches (`--batch_size`) of strings;
- `saved_model`: `export_tokenizer_saved_model` (the `tokenize` signature of the classifier's
  TF Serving export), loaded and called in batches by a fresh Python process that imports only
  tensorflow and numpy; compared packed, `<s> ids </s>` (XLM-R's single-text packing),
  truncated as the signature defines it if `--sequence_length` is set (by default it is long
  enough for every text: nothing is truncated);
- `tflite`: `export_tokenizer_tflite` (builtin ops only, UTF-8 bytes in), one text per invoke
  through ai_edge_litert's signature runner, as sentencepiece_benchmark runs it.

A cell (model x corpus x consumer) with mismatches is run once more in this process and both
counts are kept (the tokenizer code may change under a long run; the JSON records the time of
each cell, the commit and a fingerprint of the roberta_tf sources read at start).

The models and corpora are the tests' own modules (tests/ on the path), so this needs the
`test` extra (pytest, sentencepiece) and ../shared/data where the tests read it. Run from the
repository root:

    python -m benchmarks.sentencepiece_parity [--quick] [--output_dir DIR]
    python -m benchmarks.sentencepiece_parity --models bpemb-en --corpora fuzz-20k --consumers tflite

It prints the cell table, the totals per model and consumer, the first mismatch of each
nonzero cell and the targets (zero mismatches everywhere), and writes sentencepiece_parity.json
to --output_dir. Details: benchmarks/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import datetime  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from benchmarks import REPO_ROOT, RESULTS_DIR, report  # noqa: E402
from benchmarks.data import batches  # noqa: E402
from roberta_tf.export import saved_model  # noqa: E402
from roberta_tf.export.saved_model_tokenizer import export_tokenizer_saved_model  # noqa: E402
from roberta_tf.export.tflite_tokenizer import export_tokenizer_tflite  # noqa: E402
from roberta_tf.models import XLMRobertaTokenizer  # noqa: E402

try:
    import pytest  # the tests' corpora and models modules need it (shared_path skips)
    import sentencepiece
except ImportError as e:  # the run says what is missing and stops
    pytest = sentencepiece = None
    _IMPORT_ERROR = str(e)

FLAGS = flags.FLAGS
PACKAGES = ["tensorflow", "tf-keras", "sentencepiece", "ai-edge-litert", "numpy", "absl-py", "pytest"]
NAME = "sentencepiece_parity"
TESTS_DIR = REPO_ROOT / "tests"
KERAS, SAVED_MODEL, TFLITE, REFERENCE = "keras", "saved_model", "tflite", "sentencepiece"
CONSUMERS = (KERAS, SAVED_MODEL, TFLITE)
INVALID_UTF8 = "fuzz-invalid-utf8"
FAIRSEQ_BOS, FAIRSEQ_EOS, FAIRSEQ_UNK = 0, 2, 3
MAX_SHOWN_IDS = 64

flags.DEFINE_string("output_dir", str(RESULTS_DIR), "Where to write sentencepiece_parity.json.")
flags.DEFINE_bool("quick", False, "Development run: --quick_texts texts of every corpus (spread over it), "
                  "every model and consumer.")
flags.DEFINE_integer("quick_texts", 16, "Texts per corpus with --quick.")
flags.DEFINE_list("models", [], "SentencePiece models (tests/sentencepiece_models.py all_models() names); "
                  "empty: all.")
flags.DEFINE_list("corpora", [], "Corpora (tests/corpora.py all_corpora() names, and fuzz-invalid-utf8); empty: all.")
flags.DEFINE_list("consumers", list(CONSUMERS), "Which of keras, saved_model, tflite to check.")
flags.DEFINE_integer("batch_size", 256, "Texts per call of the Keras layer and of the served signature.")
flags.DEFINE_integer("sequence_length", 0, "The SavedModel's truncation limit; 0: long enough for every text "
                     "of the run (longest reference + 2), so nothing is truncated.")
flags.DEFINE_integer("invalid_utf8_texts", 5000, "Texts of the invalid UTF-8 corpus.")
flags.DEFINE_integer("invalid_utf8_seed", 4321, "Seed of the invalid UTF-8 corpus (the fuzz it breaks included).")
flags.DEFINE_string("work_dir", None, "Where the SavedModels are written, one directory per model, which must not "
                    "exist yet (default: a temporary directory, removed at the end).")


# ----------------------------------------------------------------------------- models and corpora


def tests_modules():
    """The tests' `corpora` and `sentencepiece_models` modules (tests/ put on the path)."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    import corpora
    import sentencepiece_models

    return corpora, sentencepiece_models


def model_names(models_module):
    """Every model of the tests' `all_models()`, in its order, without building any."""
    return ["bpemb-en", *models_module.TRAINED, "unigram-250k"]


def build_model(models_module, name):
    """The serialized ModelProto of one model (trained models are trained here, once)."""
    if name == "bpemb-en":
        return models_module.bpemb_en()
    if name == "unigram-250k":
        return models_module.unigram_xlmr_size()
    return models_module.trained_model(name)


# Byte sequences that are not UTF-8 (or, NUL and U+FFFD, are but matter to the normalizer).
_BAD_SEQUENCES = [
    b"\x80", b"\xbf", b"\x80\x80\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe", b"\xff", b"\xc2", b"\xe2\x96",
    b"\xf0\x9f\x98", b"\xe2\x96 ", b"\x00", b"\xef\xbf\xbd",
]


def _is_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def invalid_utf8_fuzz(fuzz, count, seed):
    """`count` byte strings, each invalid UTF-8: the tests' fuzz (`fuzz(count, seed)`, so other
    texts than the 20k corpus) encoded, then 1-3 seeded edits at random byte positions (often
    inside a multi-byte character, which breaks it too): a bad sequence inserted, one byte
    deleted, or a random byte 0x80-0xFF inserted; one 0xFF more where the edits left it valid."""
    rng = random.Random(seed)
    texts = []
    for text in fuzz(count=count, seed=seed):
        raw = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 3)):
            position, edit = rng.randint(0, len(raw)), rng.random()
            if edit < 0.6:
                raw[position:position] = rng.choice(_BAD_SEQUENCES)
            elif edit < 0.8 and raw:
                del raw[min(position, len(raw) - 1)]
            else:
                raw[position:position] = bytes([rng.randint(0x80, 0xFF)])
        if _is_utf8(bytes(raw)):
            raw[rng.randint(0, len(raw)):0] = b"\xff"
        texts.append(bytes(raw))
    return texts


def load_corpora(corpora_module, invalid_texts, seed):
    """{name: texts}: the tests' `all_corpora()` (str) and the invalid UTF-8 corpus (bytes)."""
    corpora = corpora_module.all_corpora()
    corpora[INVALID_UTF8] = invalid_utf8_fuzz(corpora_module.fuzz, invalid_texts, seed)
    return corpora


def spread(texts, count):
    """`count` texts spread evenly over the corpus (all of them if it has fewer)."""
    if len(texts) <= count:
        return list(texts)
    step = len(texts) / count
    return [texts[int(i * step)] for i in range(count)]


def raw_bytes(text):
    return text if isinstance(text, bytes) else text.encode("utf-8")


# ----------------------------------------------------------------------------- reference


def fairseq_ids(spm_ids, spm_unk):
    """SentencePiece ids -> XLM-R's fairseq ids: every id + 1, `<unk>` -> 3."""
    return [FAIRSEQ_UNK if i == spm_unk else i + 1 for i in spm_ids]


def packed(ids, sequence_length):
    """XLM-R's single-text packing as the `tokenize` signature defines it: `<s> ids </s>`,
    the ids cut to `sequence_length - 2` (padding is dropped before comparing)."""
    return [FAIRSEQ_BOS, *ids[: sequence_length - 2], FAIRSEQ_EOS]


def reference_ids(processor, texts):
    """fairseq ids of `sentencepiece`'s encode of every text (bytes as given)."""
    return [fairseq_ids(row, processor.unk_id()) for row in processor.encode(list(texts))]


# ----------------------------------------------------------------------------- consumers


def keras_ids(tokenizer, texts, batch_size):
    """The Keras layer on batches of strings: fairseq id lists."""
    ids = []
    for batch in batches(texts, batch_size):
        ragged = tokenizer(tf.constant(batch, tf.string))
        ids.extend(_rows(ragged.flat_values.numpy(), ragged.row_lengths().numpy()))
    return ids


def _rows(flat, lengths):
    splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return [flat[splits[i]:splits[i + 1]].tolist() for i in range(len(lengths))]


class TfliteTokenizer:
    """The builtin-only TFLite tokenizer, one text per invoke (ai_edge_litert signature runner,
    which resizes the input per text), as sentencepiece_benchmark runs it."""

    def __init__(self, tokenizer):
        self.model = export_tokenizer_tflite(tokenizer)
        self.runner = Interpreter(model_content=self.model).get_signature_runner()

    def ids(self, texts):
        inputs = [np.frombuffer(raw_bytes(t), np.uint8).astype(np.int32) for t in texts]
        return [self.runner(utf8_bytes=x)["token_ids"].tolist() for x in inputs]


# The served check: a fresh process that imports tensorflow (and numpy) only, loads the
# SavedModel, calls `tokenize` on batches of each corpus's texts and writes the unpadded rows.
SERVED_WORKER = """
import json, sys, time
import numpy as np
import tensorflow as tf

model_dir, inputs_path, outputs_path, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
tokenize = tf.saved_model.load(model_dir).signatures["tokenize"]
tokenize(text=tf.constant([b"warm up"]))  # the first call initializes the graph's tables
answer = {"load_seconds": time.perf_counter() - start, "seconds": {}}
inputs, outputs = np.load(inputs_path), {}
for key in json.loads(inputs["keys"].tobytes()):
    data, offsets = inputs[key + "_bytes"].tobytes(), inputs[key + "_offsets"]
    texts = [data[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    ids, lengths = [np.zeros([0], np.int32)], [np.zeros([0], np.int64)]
    start = time.perf_counter()
    for first in range(0, len(texts), batch_size):
        out = tokenize(text=tf.constant(texts[first:first + batch_size], tf.string))
        mask = out["padding_mask"].numpy().astype(bool)
        ids.append(out["token_ids"].numpy()[mask])
        lengths.append(mask.sum(axis=1))
    answer["seconds"][key] = time.perf_counter() - start
    outputs[key + "_ids"], outputs[key + "_lengths"] = np.concatenate(ids), np.concatenate(lengths)
np.savez(outputs_path, **outputs)
answer["leaked"] = sorted(m for m in ("roberta_tf", "tensorflow_text", "tf_keras", "keras_hub") if m in sys.modules)
print("ANSWER " + json.dumps(answer))
"""


def _write_inputs(path, corpora):
    """The texts as raw bytes, concatenated per corpus with offsets: bytes (invalid UTF-8, NUL)
    reach the worker unchanged. Keys are c0, c1, ... (corpus names need not be file names)."""
    arrays = {"keys": np.frombuffer(json.dumps([f"c{i}" for i in range(len(corpora))]).encode(), np.uint8)}
    for i, texts in enumerate(corpora.values()):
        raws = [raw_bytes(t) for t in texts]
        arrays[f"c{i}_bytes"] = np.frombuffer(b"".join(raws), np.uint8)
        arrays[f"c{i}_offsets"] = np.concatenate([[0], np.cumsum([len(r) for r in raws])]).astype(np.int64)
    np.savez(path, **arrays)


def served_ids(model_dir, corpora, batch_size, work_dir):
    """Runs SERVED_WORKER on {name: texts}: ({name: packed id lists}, {name: seconds}, the
    worker's load seconds and the modules it had loaded besides tensorflow)."""
    inputs, outputs = Path(work_dir, "served_inputs.npz"), Path(work_dir, "served_outputs.npz")
    _write_inputs(inputs, corpora)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", SERVED_WORKER, str(model_dir), str(inputs), str(outputs),
                          str(batch_size)], capture_output=True, text=True, cwd=work_dir, env=env)
    answers = [line for line in run.stdout.splitlines() if line.startswith("ANSWER ")]
    if run.returncode != 0 or not answers:
        raise RuntimeError(f"the served-model process failed (exit {run.returncode}): {run.stderr.strip()[-2000:]}")
    answer = json.loads(answers[-1][len("ANSWER "):])
    got = np.load(outputs)
    ids, seconds = {}, {}
    for i, name in enumerate(corpora):
        ids[name] = _rows(got[f"c{i}_ids"], got[f"c{i}_lengths"])
        seconds[name] = answer["seconds"][f"c{i}"]
    return ids, seconds, answer["load_seconds"], answer["leaked"]


# ----------------------------------------------------------------------------- cells


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def first_difference(got, want):
    return next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))


def compare(texts, got, want):
    """(number of texts whose ids differ, the first one: text repr, expected, got)."""
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    if not bad:
        return 0, None
    i = bad[0]
    at = first_difference(got[i], want[i])
    window = slice(max(0, at - 8), at + MAX_SHOWN_IDS - 8)
    return len(bad), {"index": i, "text": repr(texts[i])[:400], "first_difference_at": at,
                      "expected_length": len(want[i]), "got_length": len(got[i]),
                      "expected": want[i][window], "got": got[i][window], "ids_from": window.start}


def cell(model, corpus, consumer, texts, got, want, seconds, started):
    mismatches, example = compare(texts, got, want)
    return {"model": model, "corpus": corpus, "consumer": consumer, "status": "ok", "num_texts": len(texts),
            "num_tokens": sum(len(row) for row in got), "mismatches": mismatches, "first_mismatch": example,
            "seconds": seconds, "started_utc": started}


def failed_cell(model, corpus, consumer, reason, num_texts):
    return {"model": model, "corpus": corpus, "consumer": consumer, "status": "failed", "reason": reason,
            "num_texts": num_texts, "mismatches": None, "started_utc": utc_now()}


def timed(function, *args):
    start, started = time.perf_counter(), utc_now()
    value = function(*args)
    return value, time.perf_counter() - start, started


def _error(e):
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:500]


def in_process_cells(model, consumer, run, corpora, want, facts):
    """One consumer run in this process (`run(texts)` -> id lists) on every corpus, after one
    untimed warm-up call (tracing, table initialization: `facts[consumer + "_warmup_seconds"]`);
    a cell with mismatches is run once more and keeps both counts."""
    _, facts[f"{consumer}_warmup_seconds"], _ = timed(run, ["warm up"])
    cells = []
    for corpus, texts in corpora.items():
        try:
            got, seconds, started = timed(run, texts)
            result = cell(model, corpus, consumer, texts, got, want[corpus], seconds, started)
            if result["mismatches"]:
                again, seconds, started = timed(run, texts)
                result["rerun"] = {"mismatches": compare(texts, again, want[corpus])[0], "seconds": seconds,
                                   "started_utc": started}
        except Exception as e:  # noqa: BLE001 (a failing cell is reported, the run goes on)
            logging.exception("%s %s %s failed", model, corpus, consumer)
            result = failed_cell(model, corpus, consumer, _error(e), len(texts))
        log_cell(result)
        cells.append(result)
    return cells


def served_cells(model, model_dir, corpora, packed_want, batch_size, work_dir):
    """The SavedModel in a fresh process on every corpus; corpora with mismatches are sent to a
    second fresh process once. Returns (cells, worker facts)."""
    started = utc_now()
    ids, seconds, load_seconds, leaked = served_ids(model_dir, corpora, batch_size, work_dir)
    cells = [cell(model, corpus, SAVED_MODEL, texts, ids[corpus], packed_want[corpus], seconds[corpus], started)
             for corpus, texts in corpora.items()]
    again = {c["corpus"]: corpora[c["corpus"]] for c in cells if c["mismatches"]}
    if again:
        rerun_started = utc_now()
        ids, seconds, _, _ = served_ids(model_dir, again, batch_size, work_dir)
        for c in cells:
            if c["corpus"] in again:
                c["rerun"] = {"mismatches": compare(again[c["corpus"]], ids[c["corpus"]],
                                                    packed_want[c["corpus"]])[0],
                              "seconds": seconds[c["corpus"]], "started_utc": rerun_started}
    for c in cells:
        log_cell(c)
    return cells, {"load_seconds": load_seconds, "leaked_modules": leaked}


def log_cell(c):
    if c["status"] != "ok":
        logging.warning("%-22s %-20s %-11s %s", c["model"], c["corpus"], c["consumer"], c["reason"])
        return
    rerun = f" (rerun: {c['rerun']['mismatches']})" if "rerun" in c else ""
    logging.info("%-22s %-20s %-11s %6d texts %5d mismatches%s %8.2f s", c["model"], c["corpus"], c["consumer"],
                 c["num_texts"], c["mismatches"], rerun, c["seconds"])


# ----------------------------------------------------------------------------- one model


def check_model(name, proto, corpora, consumers, batch_size, sequence_length, work_dir):
    """Every consumer on every corpus for one SentencePiece model: (cells, model facts)."""
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
    cells, want = [], {}
    for corpus, texts in corpora.items():
        want[corpus], seconds, started = timed(reference_ids, processor, texts)
        cells.append({"model": name, "corpus": corpus, "consumer": REFERENCE, "status": "ok",
                      "num_texts": len(texts), "num_tokens": sum(map(len, want[corpus])), "seconds": seconds,
                      "started_utc": started})
    longest = max((len(row) for rows in want.values() for row in rows), default=0)
    length = sequence_length or max(longest + 2, 5)
    tokenizer, build_seconds, _ = timed(lambda: XLMRobertaTokenizer(proto=proto))
    model = tokenizer.sentencepiece_model
    facts = {"model_type": model.model_type, "pieces": processor.get_piece_size(),
             "normalizer": model.normalizer.name, "byte_fallback": model.byte_fallback,
             "proto_sha256": hashlib.sha256(proto).hexdigest(), "longest_reference_ids": longest,
             "sequence_length": length, "truncating": length < longest + 2,
             "keras_build_seconds": build_seconds}
    logging.info("%s: %s, %d pieces; layer built in %.1f s", name, model.model_type, facts["pieces"], build_seconds)
    with report.LoadMeter(children=True) as load:
        if KERAS in consumers:
            cells += in_process_cells(name, KERAS, lambda texts: keras_ids(tokenizer, texts, batch_size),
                                      corpora, want, facts)
        if SAVED_MODEL in consumers:
            cells += served_consumer(name, tokenizer, corpora, want, length, batch_size, work_dir, facts)
        if TFLITE in consumers:
            cells += tflite_consumer(name, tokenizer, corpora, want, facts)
    facts.update(other_load_cores=load.other_cores, own_cores=load.own_cores, seconds=load.seconds)
    return cells, facts


def served_consumer(name, tokenizer, corpora, want, length, batch_size, work_dir, facts):
    directory = Path(work_dir, name)
    try:
        _, facts["saved_model_export_seconds"], _ = timed(
            export_tokenizer_saved_model, tokenizer, directory, length)
        facts["saved_model_non_core_ops"] = saved_model.non_core_ops(directory)
        packed_want = {c: [packed(row, length) for row in rows] for c, rows in want.items()}
        cells, worker = served_cells(name, directory, corpora, packed_want, batch_size, work_dir)
        facts.update({f"saved_model_{k}": v for k, v in worker.items()})
        return cells
    except Exception as e:  # noqa: BLE001 (export or worker failure: every cell says why)
        logging.exception("%s: the SavedModel check failed", name)
        return [failed_cell(name, c, SAVED_MODEL, _error(e), len(t)) for c, t in corpora.items()]


def tflite_consumer(name, tokenizer, corpora, want, facts):
    try:
        lite, facts["tflite_export_seconds"], _ = timed(TfliteTokenizer, tokenizer)
    except Exception as e:  # noqa: BLE001
        logging.exception("%s: the TFLite export failed", name)
        return [failed_cell(name, c, TFLITE, _error(e), len(t)) for c, t in corpora.items()]
    facts["tflite_bytes"] = len(lite.model)
    return in_process_cells(name, TFLITE, lite.ids, corpora, want, facts)


# ----------------------------------------------------------------------------- summaries and targets


def totals(cells, models, consumers):
    """Per model and consumer: texts, mismatching texts (after the rerun: both), seconds."""
    rows = []
    for model in models:
        row = {"model": model}
        for consumer in (REFERENCE, *consumers):
            mine = [c for c in cells if c["model"] == model and c["consumer"] == consumer]
            ok = [c for c in mine if c["status"] == "ok"]
            row[consumer] = {
                "num_texts": sum(c["num_texts"] for c in ok), "failed_cells": len(mine) - len(ok),
                "seconds": sum(c["seconds"] for c in ok),
                "mismatches": None if len(ok) < len(mine) else sum(c.get("mismatches") or 0 for c in ok),
                "mismatches_rerun": sum(c["rerun"]["mismatches"] if "rerun" in c else 0 for c in ok),
                "nonzero_cells": sum(bool(c.get("mismatches")) for c in ok),
            }
        rows.append(row)
    return rows


def check_targets(total_rows, consumers, model_facts):
    """Zero mismatching texts for every model and consumer (a failed cell: no value); and the
    SavedModel served by tensorflow alone: no non-core op in its graph, no roberta_tf,
    tensorflow_text, tf_keras or keras_hub module in the process that answered."""
    targets = [report.target("texts whose ids differ from sentencepiece + fairseq", row[consumer]["mismatches"],
                             "<=", 0, model=row["model"], consumer=consumer)
               for row in total_rows for consumer in consumers]
    if SAVED_MODEL in consumers:
        for model, facts in model_facts.items():
            found = None
            if "saved_model_leaked_modules" in facts:
                found = len(facts["saved_model_non_core_ops"]) + len(facts["saved_model_leaked_modules"])
            targets.append(report.target("non-core ops + modules besides tensorflow serving it", found, "<=", 0,
                                         model=model, consumer=SAVED_MODEL))
    return targets


def source_fingerprint():
    """SHA-256 over roberta_tf's Python sources as read now, and the ones git reports changed
    since the commit: what code this run checked when the checkout is being edited."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "roberta_tf").rglob("*.py")):
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    try:
        status = subprocess.run(["git", "status", "--porcelain", "--", "roberta_tf"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        status = []
    return {"roberta_tf_sha256": digest.hexdigest(), "uncommitted": [s.strip() for s in status if s.strip()]}


# ----------------------------------------------------------------------------- printing


def _mismatch_cell(consumer):
    def value(row):
        c = row.get(consumer)
        if c is None:
            return None
        if c["status"] != "ok":
            return "failed"
        rerun = f" ({c['rerun']['mismatches']})" if "rerun" in c else ""
        return f"{c['mismatches']}{rerun}"
    return value


def _seconds_cell(consumer):
    return lambda row: (row.get(consumer) or {}).get("seconds")


def cell_rows(cells):
    """One row per model x corpus, the consumers' cells side by side."""
    rows = {}
    for c in cells:
        row = rows.setdefault((c["model"], c["corpus"]), {"model": c["model"], "corpus": c["corpus"]})
        row[c["consumer"]] = c
        if c["consumer"] == REFERENCE:
            row["num_texts"] = c["num_texts"]
    return list(rows.values())


def cell_columns(consumers):
    columns = [report.Column("model", 22, "model", align="<"), report.Column("corpus", 18, "corpus", align="<"),
               report.Column("texts", 6, "num_texts"), report.Column("spm s", 6, _seconds_cell(REFERENCE), ".2f")]
    for consumer in consumers:
        columns += [report.SEPARATOR, report.Column(f"{consumer} diff", max(9, len(consumer) + 5),
                                                    _mismatch_cell(consumer)),
                    report.Column("s", 7, _seconds_cell(consumer), ".2f")]
    return columns


def total_columns(consumers):
    columns = [report.Column("model", 22, "model", align="<"),
               report.Column("texts", 7, (REFERENCE, "num_texts")),
               report.Column("spm s", 7, (REFERENCE, "seconds"), ".1f")]
    for consumer in consumers:
        columns += [report.SEPARATOR, report.Column(f"{consumer} diff", max(9, len(consumer) + 5),
                                                    (consumer, "mismatches")),
                    report.Column("s", 7, (consumer, "seconds"), ".1f")]
    return columns


def first_mismatch_lines(cells):
    lines = []
    for c in cells:
        if c.get("first_mismatch"):
            m = c["first_mismatch"]
            rerun = f"; rerun at {c['rerun']['started_utc']}: {c['rerun']['mismatches']}" if "rerun" in c else ""
            lines += [f"  {c['model']} / {c['corpus']} / {c['consumer']}: {c['mismatches']} of {c['num_texts']} texts "
                      f"(at {c['started_utc']}{rerun}); first, text #{m['index']}: {m['text']}",
                      f"    ids from position {m['ids_from']} (first difference at {m['first_difference_at']}; "
                      f"lengths {m['expected_length']} expected, {m['got_length']} got)",
                      f"    expected {m['expected']}", f"    got      {m['got']}"]
    return lines


def print_tables(record, info):
    config, cells = record["config"], record["cells"]
    print("\n" + report.load_summary(info, other_loads=[m.get("other_load_cores") for m in record["models"].values()]))
    print(f"Ids of every text against sentencepiece + fairseq's mapping ({'quick: ' if config['quick'] else ''}"
          f"{config['texts_per_model']} texts per model). diff: texts whose ids differ (in parentheses: the same cell "
          "run once more); s: seconds for the whole corpus (keras: batches of "
          f"{config['batch_size']}; saved_model: batches of {config['batch_size']} in a fresh tensorflow-only process; "
          "tflite: one text per invoke).")
    print(report.format_table(cell_columns(config["consumers"]), cell_rows(cells), keys=2, group_by="model"))
    print("\nTotals per model:")
    print(report.format_table(total_columns(config["consumers"]), record["totals"]))
    lines = first_mismatch_lines(cells)
    failed = [c for c in cells if c["status"] != "ok"]
    print("\nFirst mismatch of each nonzero cell:" if lines else "\nNo mismatches.")
    print("\n".join(lines))
    if failed:
        print(f"\n{len(failed)} cells failed, e.g. {failed[0]['model']} / {failed[0]['corpus']} / "
              f"{failed[0]['consumer']}: {failed[0]['reason']}")
    print_targets(record["targets"])


def print_targets(targets, listed=16):
    """Every target when there are few; else the counts and those not met (or without a value)."""
    met = sum(t["met"] is True for t in targets)
    title = f"\nTargets: {met} of {len(targets)} met"
    shown = targets if len(targets) <= listed else [t for t in targets if t["met"] is not True]
    if not shown:
        print(title + " (zero mismatches for every model and consumer; the served SavedModel needs tensorflow only).")
        return
    print(report.format_targets(title + (":" if shown is targets else "; not met:"), shown, ("model", "consumer")))


# ----------------------------------------------------------------------------- main


def selected(requested, available, flag):
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise app.UsageError(f"--{flag}: unknown {unknown}; choose from {', '.join(available)}.")
    return [name for name in available if not requested or name in requested]


def load_inputs(corpora_module, models_module):
    """(selected model names, {corpus: texts}) from the flags; a UsageError if the shared data
    the tests read is missing."""
    skip = pytest.skip.Exception
    try:
        models = selected(FLAGS.models, model_names(models_module), "models")
        corpora = load_corpora(corpora_module, FLAGS.invalid_utf8_texts, FLAGS.invalid_utf8_seed)
    except skip as e:
        raise app.UsageError(f"the tests' data is missing: {e}") from None
    names = selected(FLAGS.corpora, list(corpora), "corpora")
    corpora = {name: corpora[name] for name in names}
    if FLAGS.quick:
        corpora = {name: spread(texts, FLAGS.quick_texts) for name, texts in corpora.items()}
    return models, corpora


def main(argv):
    del argv
    if sentencepiece is None:
        raise app.UsageError(f"needs the `test` extra (pytest, sentencepiece): {_IMPORT_ERROR}")
    consumers = selected(FLAGS.consumers, list(CONSUMERS), "consumers")
    corpora_module, models_module = tests_modules()
    models, corpora = load_inputs(corpora_module, models_module)
    started = time.perf_counter()
    info = report.machine_info(PACKAGES, source=source_fingerprint())
    cells, model_facts = [], {}
    with tempfile.TemporaryDirectory(prefix="sp_parity_") as temporary:
        work_dir = Path(FLAGS.work_dir or temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        for name in models:
            try:
                proto, seconds, _ = timed(build_model, models_module, name)
            except pytest.skip.Exception as e:
                raise app.UsageError(f"model {name}: the tests' data is missing: {e}") from None
            rows, facts = check_model(name, proto, corpora, consumers, FLAGS.batch_size, FLAGS.sequence_length,
                                      work_dir)
            model_facts[name] = {"build_seconds": seconds, **facts}
            cells += rows
    total_rows = totals(cells, models, consumers)
    record = {
        "machine": report.finish(info),
        "config": {"quick": FLAGS.quick, "models": models, "consumers": consumers, "batch_size": FLAGS.batch_size,
                   "sequence_length": FLAGS.sequence_length or "longest reference + 2 per model",
                   "texts_per_model": sum(len(t) for t in corpora.values()),
                   "invalid_utf8": {"texts": FLAGS.invalid_utf8_texts, "seed": FLAGS.invalid_utf8_seed},
                   "reference": "sentencepiece encode (bytes as given), every id + 1, <unk> -> 3 (fairseq, XLM-R); "
                                "saved_model: <s> ids </s> cut to the sequence length"},
        "corpora": {name: {"num_texts": len(texts), "num_bytes": sum(len(raw_bytes(t)) for t in texts),
                           "invalid_utf8": sum(isinstance(t, bytes) and not _is_utf8(t) for t in texts)}
                    for name, texts in corpora.items()},
        "models": model_facts,
        "cells": cells,
        "totals": total_rows,
        "targets": check_targets(total_rows, consumers, model_facts),
        "total_seconds": time.perf_counter() - started,
    }
    written = report.save(FLAGS.output_dir, NAME, record)
    print_tables(record, info)
    print(written)


if __name__ == "__main__":
    app.run(main)
