"""Writes serving modules as SavedModels: TF Serving model versions `BASE/NAME/N/`, and the
shared write-and-verify step.

    export_saved_model(classifier, tokenizer, "models/roberta_classifier")  # -> .../1, .../2, ...

What a version holds:
    saved_model.pb, variables/      the `ClassifierServingModule` (the five signatures of
                                    `roberta_tf.contract.signatures`)
    assets/roberta_tf_export.json   metadata: labels, sequence length, precision, tokenizer
                                    and source hashes, roberta_tf version, the contract
                                    (`metadata_file` on the loaded object gives its path)
    assets.extra/tf_serving_warmup_requests   PredictionLog records (see `warmup.py`)

Atomic (`roberta_tf.utils.files.atomic_directory`): the version is built in a hidden staging
directory beside it (`.tmp-export-PID-*`, which TF Serving ignores: it loads only numeric
directories), reloaded from disk, checked (core TF ops only; every warmup request answers as
the in-process module does), and only then renamed to its number. Versions are immutable: an
existing one is never replaced. An interrupted export leaves no numbered directory; a killed
one leaves its staging directory, which the next export removes.
"""

import dataclasses
import pathlib
import tempfile

import numpy as np
import tensorflow as tf
from absl import logging

from roberta_tf.export import precision as precision_lib
from roberta_tf.export import provenance, serving_module, warmup
from roberta_tf.preprocessing import options
from roberta_tf.contract import signatures as contract
from roberta_tf.contract import tensors
from roberta_tf.utils import files, progress

METADATA_FILE = "roberta_tf_export.json"
STAGING_KIND = "export"  # staging directories are named `.tmp-export-PID-*`
# Outputs of the reloaded model must equal the in-process module's (same graph, same kernels).
VERIFY_TOLERANCE = 1e-5


@dataclasses.dataclass
class ExportResult:
    path: pathlib.Path
    version: int
    metadata: dict


def export_saved_model(
    classifier,
    tokenizer,
    output,
    version=None,
    *,
    sequence_length=None,
    truncate=options.DEFAULT_TRUNCATE,
    precision=precision_lib.DEFAULT_PRECISION,
    jit_compile=False,
    source=None,
    tokenizer_files=(),
    warmup_requests=True,
):
    """Writes `output/<version>/` atomically and returns an `ExportResult`.

    Args:
        classifier, tokenizer: a `RobertaTextClassifier` and its `RobertaTokenizer`.
        output: the model's base path `BASE/NAME` (created if missing). NAME is the model
            name the warmup requests carry.
        version: a positive int; default: one more than the highest existing version.
        sequence_length, truncate, precision, jit_compile: see `ClassifierServingModule`.
        source: provenance recorded in the metadata (e.g. the preset's metadata.json).
        tokenizer_files: paths whose SHA-256 the metadata records (vocab.json, merges.txt).
        warmup_requests: write `assets.extra/tf_serving_warmup_requests` (the same requests
            verify the export either way).

    Raises:
        FileExistsError: `version` exists already (versions are immutable).
        RuntimeError: the written model failed verification (nothing is left behind).
    """
    base = pathlib.Path(output).absolute()
    version = next_version(base) if version is None else _check_version(base, version)
    module = serving_module.ClassifierServingModule(
        classifier, tokenizer, sequence_length=sequence_length, truncate=truncate,
        precision=precision, jit_compile=jit_compile,
    )
    metadata = metadata_for(module, version, source, tokenizer_files)
    metadata["backbone"] = classifier.backbone.get_config()
    target = base / str(version)
    with files.atomic_directory(target, kind=STAGING_KIND) as staging:
        write_verified(module, staging, base.name, metadata, warmup_requests)
    logging.info("Exported %s (version %d, %s%s).", target, version, precision, ", XLA" if jit_compile else "")
    return ExportResult(target, version, metadata)


def export_preset(preset, output, version=None, *, sequence_length=None, **options):
    """`export_saved_model` of a preset's classifier and tokenizer (what `roberta-tf export
    saved_model` runs). The truncation limit defaults to the preset preprocessor's
    `sequence_length`; the metadata records the preset's provenance and file hashes."""
    resolved = provenance.resolve_preset(preset)
    return export_saved_model(
        resolved.classifier, resolved.tokenizer, output, version,
        sequence_length=resolved.sequence_length if sequence_length is None else sequence_length,
        source=resolved.source, tokenizer_files=resolved.tokenizer_files, **options,
    )


def write_verified(module, directory, model_name, metadata, warmup_requests=True):
    """Saves `module` (a serving module) into the empty `directory` with its metadata asset
    and warmup file, then reloads and verifies it (`verify_saved_model`)."""
    # The warmup requests also verify the export (every signature, several shapes), so they
    # are built and replayed even when no warmup file is written.
    requests = warmup.warmup_inputs(module)
    with tempfile.TemporaryDirectory() as scratch:
        metadata_path = pathlib.Path(scratch) / METADATA_FILE
        files.write_json(metadata_path, metadata)
        # A tracked Asset is copied into assets/ and restored as `loaded.metadata_file`.
        module.metadata_file = tf.saved_model.Asset(str(metadata_path))
        tf.saved_model.save(module, str(directory), signatures=module.signatures())
    if warmup_requests:
        (directory / warmup.WARMUP_DIR).mkdir()
        warmup.write_warmup_file(directory / warmup.WARMUP_DIR / warmup.WARMUP_FILE, model_name, requests)
    verify_saved_model(directory, module, requests)


def next_version(base):
    """One more than the highest numeric subdirectory of `base` (1 if there is none)."""
    return max(versions(base), default=0) + 1


def versions(base):
    """The model versions (numeric subdirectories) under `base`, as TF Serving sees them."""
    base = pathlib.Path(base)
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def saved_model_op_types(export_dir):
    """Every op type in the SavedModel's graph and function library."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((pathlib.Path(export_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def non_core_ops(export_dir):
    """Op types that core TensorFlow does not define (tensorflow_text's, custom ops): a
    server without their op library cannot load the model. Should be empty."""
    return sorted(op for op in saved_model_op_types(export_dir) if not hasattr(tf.raw_ops, op))


def verify_saved_model(export_dir, module, requests):
    """Reloads `export_dir` and checks it: core ops only; each request answers on the named
    signature as the in-process `module` does (within VERIFY_TOLERANCE)."""
    extra = non_core_ops(export_dir)
    if extra:
        raise RuntimeError(f"The exported graph uses ops outside core TensorFlow: {extra}")
    loaded = tf.saved_model.load(str(export_dir))
    missing = set(module.SIGNATURES) - set(loaded.signatures)
    if missing:
        raise RuntimeError(f"The exported model lacks signatures {sorted(missing)}")
    for signature_name, inputs in progress.bar(requests, description="Verifying the SavedModel", unit="request"):
        dtypes = contract.INPUT_DTYPES[signature_name]
        arrays = {name: tensors.as_input_array(name, value, dtypes[name]) for name, value in inputs.items()}
        got = loaded.signatures[signature_name](**arrays)
        want = getattr(module, signature_name)(**arrays)
        for name, value in want.items():
            _check_equal(signature_name, name, value.numpy(), got[name].numpy())


def _check_equal(signature_name, name, want, got):
    if want.shape != got.shape:
        raise RuntimeError(f"{signature_name}/{name}: the reloaded model gives shape {got.shape}, expected {want.shape}")
    if want.dtype.kind == "f":
        close = np.allclose(got, want, rtol=0, atol=VERIFY_TOLERANCE)
    else:
        close = np.array_equal(got, want)
    if not close:
        raise RuntimeError(f"{signature_name}/{name}: the reloaded model's output differs from the in-process model's")


def metadata_for(module, version, source, tokenizer_files):
    """The metadata asset of an export of `module` (a serving module)."""
    metadata = {
        "format": "roberta_tf.saved_model/1",
        "version": version,
        "signatures": list(module.SIGNATURES),
        "contract": contract.describe(module.SIGNATURES),
        **provenance.common_metadata(module, source, tokenizer_files),
    }
    if isinstance(module, serving_module.ClassifierServingModule):
        metadata.update(precision=module.precision, jit_compile=module.jit_compile)
    return metadata


def _check_version(base, version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive int. Received: {version!r}")
    if (base / str(version)).exists():
        raise FileExistsError(f"{base / str(version)} exists; TF Serving versions are immutable: choose another.")
    return version
