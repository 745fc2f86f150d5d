"""Writes the TFLite model an app ships: one builtin-only `.tflite` from a text's UTF-8 bytes
(or packed token ids) to its classification, in float32, float16, dynamic-range or int8.

    export_tflite(classifier, tokenizer, "sst2.tflite", quantize="dynamic")
    export_preset_tflite("presets/sst2", "sst2-int8.tflite", quantize="int8",
                         calibration_texts=texts)
    export_preset_tflite_forms("presets/sst2", {"none": "f32.tflite", "dynamic": "dyn.tflite"})

Quantization (`QUANTIZATIONS`):
    none      float32 weights and compute: the SavedModel's numbers (logits within 1e-4).
    float16   float16 weights, float32 compute (half the file, about float32's numbers).
    dynamic   int8 weights; activations quantized on the fly per matmul (a quarter of the
              file, the fastest on CPUs with XNNPACK's int8 kernels).
    int8      int8 weights and activations, ranges calibrated on `calibration_texts`; the ops
              in `FLOAT_OPS` stay float (see WORKSPACE.md "TFLite" for what and why).
The token ids are exact in all four forms. The byte-level BPE tokenizer is integer ops, which
quantization does not touch. The unigram SentencePiece tokenizer (XLM-R) sums float32 piece
scores: the score table is held as int32 bit patterns (a float32 table of GATHER params would
be stored as int8 by dynamic-range: 122 of 1,500 XNLI texts changed ids; float16: 4), and int8
keeps the ops under `unigram.FLOAT_SCOPE` in float (`FLOAT_TENSOR_NAMES`; quantized, they
made the model abort at run time).

Steps, all before anything is written: trace `TfliteClassifierModule` -> convert with
`TFLITE_BUILTINS` only -> verify (no Flex/custom op in any subgraph; reloaded in
`ai_edge_litert`; on `verification_texts` the outputs equal the in-process module's, within
1e-4 for float32, labels compared and their agreement recorded otherwise) -> metadata
(`tflite_metadata`, a named entry in the flatbuffer and a JSON file beside it) -> written
atomically (`atomic_file`: a staging file renamed over the target).
"""

import contextlib
import dataclasses
import pathlib
import random
import re
import tempfile
import warnings

import numpy as np
import tensorflow as tf
from absl import logging

from roberta_tf.contract import signatures as contract
from roberta_tf.export import provenance, tflite_metadata, tflite_ops, warmup
from roberta_tf.export.tflite_module import TfliteClassifierModule
from roberta_tf.preprocessing import options
from roberta_tf.tokenizers import unigram
from roberta_tf.utils import files, progress

QUANTIZATIONS = contract.TFLITE_QUANTIZATIONS
INPUTS = tuple(contract.TFLITE_SIGNATURES)
STAGING_KIND = "tflite"
FORMAT = "roberta_tf.tflite/1"
# float32 TFLite runs the SavedModel's graph with other kernels: equal within float error.
FLOAT32_TOLERANCE = 1e-4
DEFAULT_CALIBRATION_SIZE = 300


@dataclasses.dataclass
class TfliteExportResult:
    path: pathlib.Path
    metadata_path: pathlib.Path
    metadata: dict
    size_bytes: int


def metadata_path_for(path):
    """The JSON written beside a model: `model.tflite` -> `model.tflite.json`."""
    path = pathlib.Path(path)
    return path.with_name(path.name + ".json")


def export_tflite(classifier, tokenizer, output, *, quantize="none", **kwargs):
    """Converts, verifies and writes `output` (a .tflite file) and its metadata JSON: one
    form of `export_tflite_forms` (which takes the same keyword arguments).

    Raises:
        FileExistsError: `output` exists and `overwrite` is False.
        RuntimeError: the converted model failed verification (nothing is written).
    """
    return export_tflite_forms(classifier, tokenizer, {quantize: output}, **kwargs)[quantize]


def export_tflite_forms(
    classifier,
    tokenizer,
    outputs,
    *,
    inputs="utf8_bytes",
    calibration_texts=None,
    sequence_length=None,
    truncate=options.DEFAULT_TRUNCATE,
    num_threads=None,
    source=None,
    tokenizer_files=(),
    overwrite=False,
):
    """Writes one .tflite file (and its metadata JSON) per form in `outputs`, converted from
    one traced and saved graph: the forms share everything but the converter's options, so
    four forms cost about one graph save plus four conversions.

    Args:
        classifier, tokenizer: a `RobertaTextClassifier` and its `RobertaTokenizer`.
        outputs: `{quantize: .tflite path}`, quantize one of `QUANTIZATIONS`. An existing
            file is refused unless `overwrite` (all are checked before any conversion).
        inputs: "utf8_bytes" (signatures classify, classify_pairs) or "token_ids"
            (classify_token_ids).
        calibration_texts: texts (str or bytes) whose activations calibrate "int8";
            default: `default_calibration_texts()` (generic English; pass the task's own).
        sequence_length, truncate: as the SavedModel export (default: the model's maximum).
        num_threads: interpreter threads used to verify (and recorded as the recommended
            setting; default: the runtime's).
        source, tokenizer_files: provenance recorded in the metadata.

    Returns:
        `{quantize: TfliteExportResult}`.

    Raises:
        FileExistsError: an output exists and `overwrite` is False.
        RuntimeError: a converted model failed verification (that form is not written).
    """
    _check_choice("inputs", inputs, INPUTS)
    outputs = {quantize: pathlib.Path(path).absolute() for quantize, path in outputs.items()}
    for quantize, output in outputs.items():
        _check_choice("quantize", quantize, QUANTIZATIONS)
        check_fits_flatbuffer(classifier, quantize)
        if not overwrite:  # fail before minutes of conversion, not after
            for path in (output, metadata_path_for(output)):
                if path.exists():
                    raise FileExistsError(f"{path} exists; refusing to replace it (overwrite it explicitly).")
    module = TfliteClassifierModule(classifier, tokenizer, sequence_length, truncate, inputs)
    if "int8" in outputs:
        calibration_texts = list(calibration_texts or default_calibration_texts())
    provenance_fields = provenance.common_metadata(module.serving, source, tokenizer_files)
    results = {}
    with saved_signatures(module) as saved_dir:
        for quantize, output in outputs.items():
            # The converted bytes are not held here: `_verify_and_write` replaces them with the
            # model plus metadata, so one copy (1.1 GB for XLM-R large in float16) is alive, not two.
            results[quantize] = _verify_and_write(convert_saved(saved_dir, module, quantize, calibration_texts),
                                                  module, quantize, output, calibration_texts,
                                                  provenance_fields, num_threads, overwrite)
    return results


# A .tflite file is one FlatBuffer, whose 32-bit offsets cap it at 2 GiB (the converter fails
# late, after minutes, with a serialization error). Weights dominate the size.
FLATBUFFER_LIMIT_BYTES = 2**31 - 1
_HEADROOM_BYTES = 64 * 2**20  # graph, tokenizer tables, metadata
_WEIGHT_BYTES = {"none": 4, "float16": 2, "dynamic": 1, "int8": 1}  # per parameter (embedding included)


def estimated_size_bytes(classifier, quantize):
    """About how large the `quantize` form of `classifier` will be (its weights + headroom)."""
    return classifier.count_params() * _WEIGHT_BYTES[quantize] + _HEADROOM_BYTES


def check_fits_flatbuffer(classifier, quantize):
    """A ValueError naming the limit and the forms that fit when the `quantize` form cannot be
    written as one .tflite (e.g. XLM-R large, 560M parameters, in float32: about 2.2 GB)."""
    size = estimated_size_bytes(classifier, quantize)
    if size <= FLATBUFFER_LIMIT_BYTES:
        return
    fitting = [q for q in QUANTIZATIONS if estimated_size_bytes(classifier, q) <= FLATBUFFER_LIMIT_BYTES]
    raise ValueError(
        f"The {quantize!r} TFLite form of this {classifier.count_params() / 1e6:.0f}M-parameter model would be about "
        f"{size / 1e9:.1f} GB, past the 2 GB FlatBuffer limit of a .tflite file. Forms that fit: "
        f"{', '.join(repr(q) for q in fitting) or 'none'} (quantize=...); or serve it from the SavedModel."
    )


def _verify_and_write(content, module, quantize, output, calibration_texts, provenance_fields, num_threads, overwrite):
    """Checks `content` against the in-process `module`, adds the metadata, checks again and
    writes the model and its JSON atomically."""
    verification = verify_tflite(content, module, quantize, num_threads)
    metadata = {
        "format": FORMAT,
        "inputs": module.inputs,
        "signatures": list(module.SIGNATURES),
        "contract": contract.describe(module.SIGNATURES, contract.TFLITE_CONTRACT),
        **provenance_fields,
        "quantization": _quantization_metadata(quantize, calibration_texts),
        "recommended_num_threads": num_threads,
        "operators": sorted({name for ops in tflite_ops.operator_names(content) for name in ops}),
        "verification": verification.summary,
    }
    content = tflite_metadata.with_metadata(content, metadata)
    verification.check_unchanged(content, num_threads)
    json_path = metadata_path_for(output)
    with files.atomic_file(json_path, kind=STAGING_KIND, overwrite=overwrite) as staging_json:
        files.write_json(staging_json, metadata)
        with files.atomic_file(output, kind=STAGING_KIND, overwrite=overwrite) as staging:
            staging.write_bytes(content)
    logging.info("Wrote %s (%s, %s, %.1f MB).", output, module.inputs, quantize, len(content) / 1e6)
    return TfliteExportResult(output, json_path, metadata, len(content))


def export_preset_tflite(preset, output, *, quantize="none", **kwargs):
    """`export_tflite` of a preset's classifier and tokenizer (what `roberta-tf export tflite`
    runs); the truncation limit defaults to the preset preprocessor's `sequence_length`."""
    return export_preset_tflite_forms(preset, {quantize: output}, **kwargs)[quantize]


def export_preset_tflite_forms(preset, outputs, *, sequence_length=None, **kwargs):
    """`export_tflite_forms` of a preset's classifier and tokenizer, resolved once."""
    resolved = provenance.resolve_preset(preset)
    return export_tflite_forms(
        resolved.classifier, resolved.tokenizer, outputs,
        sequence_length=resolved.sequence_length if sequence_length is None else sequence_length,
        source=resolved.source, tokenizer_files=resolved.tokenizer_files, **kwargs,
    )


# === Conversion ===


def convert(module, quantize, calibration_texts=None):
    """The .tflite bytes of `module` (a `TfliteClassifierModule`) in form `quantize`.

    Raises:
        RuntimeError: the model needs a Flex or custom op.
    """
    with saved_signatures(module) as saved_dir:
        return convert_saved(saved_dir, module, quantize, calibration_texts)


@contextlib.contextmanager
def saved_signatures(module):
    """`module` saved, with its signatures named, to a scratch directory (removed afterwards).
    Conversion goes through a SavedModel because `from_concrete_functions` names a lone
    function "serving_default", and the contract names every signature."""
    with tempfile.TemporaryDirectory(prefix="roberta_tf_tflite_") as scratch:
        tf.saved_model.save(module, scratch, signatures=dict(zip(module.SIGNATURES, module.concrete_functions())))
        yield scratch


def convert_saved(saved_dir, module, quantize, calibration_texts=None):
    """The .tflite bytes, in form `quantize`, of `module` saved by `saved_signatures`."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_dir, signature_keys=list(module.SIGNATURES))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        content = _int8_with_float_parts(converter, list(calibration_samples(module, calibration_texts)))
    else:
        content = converter.convert()
    extra = tflite_ops.non_builtin_operators(content)
    if extra:
        raise RuntimeError(f"The TFLite model needs non-builtin ops {extra}; it would not run without Flex.")
    return content


# What the int8 model keeps in float, by op type and by the output tensor names of the
# encoder's layers (WORKSPACE.md "TFLite for apps" has the measurements):
# - attention internals (the per-head split, reshapes and transposes, both BATCH_MATMULs, the
#   score scaling, the attention-bias ADD and SOFTMAX), LayerNorm (MEAN, SQUARED_DIFFERENCE,
#   RSQRT and the affine ops), GELU and the mask-to-bias ops: in int8 these run outside
#   XNNPACK on reference kernels, 10-40x slower than in float, and are where int8 loses
#   accuracy (the softmax and the LayerNorm statistics need the range float gives them);
# - the output's SOFTMAX / LOGISTIC, so probabilities have float resolution.
# What is int8: the embeddings' GATHER, every dense layer (FULLY_CONNECTED on XNNPACK's int8
# GEMM), the residual ADDs and the pooler.
FLOAT_OPS = ("SOFTMAX", "LOGISTIC", "BATCH_MATMUL", "GELU", "RSQRT", "SQUARED_DIFFERENCE", "MEAN")
FLOAT_TENSOR_NAMES = re.compile(r"/attention/(?!qkv/|output/)|layer_norm/|/Gelu|roberta_backbone/tf\.|" + unigram.FLOAT_SCOPE)


def _int8_with_float_parts(converter, samples):
    """Full-integer quantization with the parts named above kept in float: the converter
    calibrates (`_experimental_calibrate_only`, samples of any length through
    `calibration_with_varying_shapes`), the kept-float node list comes from the calibrated
    model's tensor names, and TFLite's MLIR quantizer writes the int8 model.

    These are the calls `tf.lite.experimental.QuantizationDebugger` makes for
    `get_nondebug_quantized_model` (same arguments, same model), without the two
    instrumented debug models it builds on the way (float and int8 weights side by side,
    each loaded in an interpreter): for XLM-R large, two more models of about 2.8 GB. Even so,
    XLM-R large's int8 export passes 14.5 GB right after calibrating, before quantizing
    (benchmarks/README.md, `xlmr_large_benchmark`). Private converter API:
    `_check_quantizer_api` fails clearly if it changes.
    """
    _check_quantizer_api(converter)
    # The calibrator runs every sample through the float model once: the slow part of int8.
    converter.representative_dataset = lambda: iter(progress.bar(samples, description="int8 calibration", unit="sample"))
    converter._experimental_calibrate_only = True
    with calibration_with_varying_shapes(), _quiet_deprecated_interpreter():
        calibrated = converter.convert()
    nodes = [name for name in tflite_ops.tensor_names(calibrated) if FLOAT_TENSOR_NAMES.search(name)]
    if not nodes:
        raise RuntimeError("No encoder tensor names matched FLOAT_TENSOR_NAMES; the layer names changed.")
    from tensorflow.lite.python import convert as lite_convert

    return lite_convert.mlir_quantize(
        calibrated, disable_per_channel=converter._experimental_disable_per_channel, fully_quantize=False,
        enable_numeric_verify=False, denylisted_ops=list(FLOAT_OPS), denylisted_nodes=nodes,
    )


def _check_quantizer_api(converter):
    from tensorflow.lite.python import convert as lite_convert

    if not (hasattr(converter, "_experimental_calibrate_only") and hasattr(converter, "_experimental_disable_per_channel")
            and hasattr(lite_convert, "mlir_quantize")):
        raise RuntimeError("This TensorFlow's TFLite converter lacks the calibrate-only mode or mlir_quantize; "
                           "roberta_tf's int8 export needs updating.")


@contextlib.contextmanager
def _quiet_deprecated_interpreter():
    """The calibrator and the debugger run TF's deprecated tf.lite.Interpreter internally;
    its warning is about their code, not the caller's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        yield


def calibration_samples(module, texts):
    """(signature name, inputs) pairs for the calibrator: every text through every signature
    of `module` (pairs from consecutive texts), as the app would feed them."""
    texts = [_as_bytes(t) for t in texts]
    if not texts:
        raise ValueError("int8 quantization needs at least one calibration text.")
    for i, text in enumerate(texts):
        if module.inputs == "utf8_bytes":
            yield contract.TFLITE_CLASSIFY, {"utf8_bytes": utf8_array(text)}
            if i % 2 == 1:  # half as many pairs as texts: the encoder's ranges are the same
                yield contract.TFLITE_CLASSIFY_PAIRS, {
                    "utf8_bytes_a": utf8_array(texts[i - 1]), "utf8_bytes_b": utf8_array(text)
                }
        else:
            packed = module.serving.tokenize(tf.constant([text]))
            yield contract.TFLITE_CLASSIFY_TOKEN_IDS, {name: value.numpy() for name, value in packed.items()}


@contextlib.contextmanager
def calibration_with_varying_shapes():
    """Lets the int8 calibrator take samples of different lengths.

    TensorFlow's calibrator (`tensorflow/lite/python/optimize/calibrator.py`, `_feed_tensors`)
    resizes a signature's inputs for its first sample only; a later sample of another length
    then fails inside the model ("Given shapes, [16,768] and [8,768], are not broadcastable").
    Texts have different lengths by nature, so each sample is fed after `Prepare(shapes)` for
    its own shapes, which re-allocates the tensors and keeps the ranges gathered so far. That
    is private API: if its names change, this raises rather than calibrating wrongly (a test
    converts samples of several lengths).
    """
    from tensorflow.lite.python.optimize import calibrator

    original = getattr(calibrator.Calibrator, "_feed_tensors", None)
    if original is None:
        raise RuntimeError("This TensorFlow's TFLite calibrator has no _feed_tensors; roberta_tf's int8 export needs updating.")

    def feed_tensors(self, dataset_gen, resize_input):
        for sample in dataset_gen():
            if not (isinstance(sample, tuple) and len(sample) == 2 and isinstance(sample[1], dict)):
                raise ValueError(f"Calibration samples are (signature name, inputs). Received: {type(sample)}")
            if self._interpreter is None:
                self._interpreter = calibrator.Interpreter(model_content=self._model_content)
            signature_name, inputs = sample
            arrays = self._create_input_array_from_dict(signature_name, inputs)
            self._calibrator.Prepare([list(array.shape) for array in arrays], signature_name)
            self._calibrator.FeedTensor(arrays, signature_name)

    calibrator.Calibrator._feed_tensors = feed_tensors
    try:
        yield
    finally:
        calibrator.Calibrator._feed_tensors = original


def default_calibration_texts(count=DEFAULT_CALIBRATION_SIZE, seed=0):
    """`count` generic English review-like texts of 1 to ~60 words (recombined from
    `warmup.SENTENCES`): enough to calibrate ranges when no task texts are given; the task's
    own texts (`--calibration_data`) calibrate better."""
    rng = random.Random(seed)
    words = " ".join(warmup.SENTENCES).split()
    texts = list(warmup.SENTENCES)
    while len(texts) < count:
        length = rng.choice((1, 2, 4, 8, 12, 20, 30, 45, 60))
        start = rng.randrange(len(words))
        texts.append(" ".join(words[(start + i) % len(words)] for i in range(length)))
    return texts[:count]


def read_calibration_texts(path, column=None, size=DEFAULT_CALIBRATION_SIZE, seed=0):
    """`size` texts sampled uniformly (reservoir sampling, seeded) from a text file: whole
    lines, or the 0-based tab-separated `column`. Bytes, so any encoding works."""
    reservoir = []
    rng = random.Random(seed)
    seen = 0
    with open(path, "rb") as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if column is not None:
                fields = line.split(b"\t")
                if column >= len(fields):
                    continue
                line = fields[column]
            seen += 1
            if len(reservoir) < size:
                reservoir.append(line)
            else:
                slot = rng.randrange(seen)
                if slot < size:
                    reservoir[slot] = line
    if not reservoir:
        raise ValueError(f"{path} holds no calibration texts" + (f" in column {column}" if column is not None else ""))
    return reservoir


# === Verification ===


def verification_texts(sequence_length):
    """The fixed texts every export is checked on: real sentences, an empty text, invalid
    UTF-8, NUL bytes, non-Latin scripts and a text past the length limit."""
    return [
        *(s.encode() for s in warmup.SENTENCES),
        b"",
        b"\xff\xfe caf\xc3 invalid \x80 UTF-8",
        b"NUL\x00bytes\x00inside",
        "Ünïcödé — 日本語の文章です。 Привет! 🙂👍🏽".encode(),
        warmup.long_text(sequence_length).encode(),
    ]


def verification_pairs(sequence_length):
    texts = verification_texts(sequence_length)
    return [(texts[i], texts[-1 - i]) for i in range(len(texts))]


@dataclasses.dataclass
class Verification:
    outputs: list  # the checked outputs per call, to confirm the final bytes give them too
    calls: list
    summary: dict

    def check_unchanged(self, content, num_threads):
        """The model with metadata added answers exactly as the verified one did."""
        for (signature_name, _), expected, got in zip(self.calls, self.outputs, run_calls(content, self.calls, num_threads)):
            for name, value in expected.items():
                if not np.array_equal(got[name], value):
                    raise RuntimeError(f"Adding the metadata changed {signature_name}/{name}.")


def verify_tflite(content, module, quantize, num_threads=None):
    """Runs `content` in `ai_edge_litert` on the verification texts and compares it with the
    in-process `module`. float32 must match within FLOAT32_TOLERANCE (else RuntimeError);
    quantized forms record their label agreement and largest logit difference."""
    calls = list(_verification_calls(module))
    form = "float32" if quantize == "none" else quantize
    outputs = run_calls(content, [(name, inputs) for name, inputs, _ in calls], num_threads,
                        description=f"Verifying the {form} TFLite model")
    differences, agreements = [], []
    for (signature_name, inputs, reference), got in zip(calls, outputs):
        for name in ("logits", "probabilities", "class_id"):
            if got[name].shape != reference[name].shape:
                raise RuntimeError(f"{signature_name}/{name}: TFLite gives shape {got[name].shape}, expected {reference[name].shape}")
        differences.append(float(np.abs(got["logits"] - reference["logits"]).max()))
        agreements.append(bool(np.array_equal(got["class_id"], reference["class_id"])))
    worst = max(differences)
    if quantize == "none" and (worst > FLOAT32_TOLERANCE or not all(agreements)):
        raise RuntimeError(
            f"The float32 TFLite model differs from the in-process model by {worst:.2e} in the logits "
            f"(tolerance {FLOAT32_TOLERANCE}); it was not written."
        )
    agreement = sum(agreements) / len(agreements)
    if agreement < 0.9:
        logging.warning("The %s model agrees with float on only %.0f%% of the verification texts.", quantize, 100 * agreement)
    summary = {
        "texts": len(calls),
        "label_agreement": agreement,
        "max_abs_logit_difference": worst,
        "reference": "the in-process classifier (the SavedModel's graph) on roberta_tf.export.tflite.verification_texts",
    }
    return Verification(outputs, [(name, inputs) for name, inputs, _ in calls], summary)


def _verification_calls(module):
    """(signature name, TFLite inputs, in-process reference outputs as numpy)."""
    texts = verification_texts(module.sequence_length)
    pairs = verification_pairs(module.sequence_length)
    serving = module.serving
    if module.inputs == "utf8_bytes":
        for text in texts:
            yield contract.TFLITE_CLASSIFY, {"utf8_bytes": utf8_array(text)}, _numpy(serving.serving_default(tf.constant([text])))
        for a, b in pairs:
            inputs = {"utf8_bytes_a": utf8_array(a), "utf8_bytes_b": utf8_array(b)}
            yield contract.TFLITE_CLASSIFY_PAIRS, inputs, _numpy(serving.classify_pairs(tf.constant([a]), tf.constant([b])))
    else:
        for text in texts:
            packed = {name: value.numpy() for name, value in serving.tokenize(tf.constant([text])).items()}
            yield contract.TFLITE_CLASSIFY_TOKEN_IDS, packed, _numpy(serving.classify_token_ids(**packed))


def run_calls(content, calls, num_threads=None, description=None):
    """The outputs of `calls` ([(signature name, inputs)]), in order, run in `ai_edge_litert`
    one signature at a time, each in an interpreter of its own that is released before the
    next. Each signature is a subgraph holding its own working copy of the weights (float16:
    dequantized to float32, then packed by XNNPACK): with every signature allocated at once,
    verifying XLM-R large's float16 model took the export past 14.5 GB; one at a time it
    peaked at 13.3 GB (benchmarks/xlmr_large_benchmark.py)."""
    from ai_edge_litert import interpreter as litert

    outputs = [None] * len(calls)
    with progress.bar(total=len(calls), description=description, unit="call", disable=not description) as meter:
        for signature_name in dict.fromkeys(name for name, _ in calls):
            runner = litert.Interpreter(model_content=content, num_threads=num_threads).get_signature_runner(signature_name)
            for i, (name, inputs) in enumerate(calls):
                if name == signature_name:
                    outputs[i] = runner(**inputs)
                    meter.update()
            del runner  # the interpreter and its subgraph's working memory go with it
    return outputs


# === Helpers ===


def utf8_array(text):
    """A text (str or bytes) as the `utf8_bytes` input: int32 [num_bytes], each 0..255."""
    return np.frombuffer(_as_bytes(text), np.uint8).astype(np.int32)


def _as_bytes(text):
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)


def _numpy(outputs):
    return {name: value.numpy() for name, value in outputs.items() if name != "class_name"}


def _quantization_metadata(quantize, calibration_texts):
    metadata = {"mode": quantize}
    if quantize == "int8":
        metadata["calibration_texts"] = len(calibration_texts)
        metadata["kept_float"] = {"ops": list(FLOAT_OPS), "tensor_names_matching": FLOAT_TENSOR_NAMES.pattern}
    return metadata


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}. Received: {name}={value!r}")
