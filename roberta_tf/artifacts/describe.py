"""What an artifact is, read from its files without running it (`roberta-tf inspect`).

    description = describe("models/sst2")      # a dict (JSON-serialisable)
    print(format_description(description))     # the same, as readable text

Every kind gives the same keys (None where a kind has no such thing):
    kind, path, requested, size_bytes, format
    labels, num_classes, sequence_length, truncate
    signatures        [{name, inputs: [{name, dtype, shape}], outputs: [...]}]; shapes hold
                      None for a dimension of any size
    contract          the signatures' differences from `roberta_tf.contract` ([] = they match)
    op_set            {"summary", "ok", "non_core_ops" | "non_builtin_ops", ...}
    source            preset, preset_sha256, checkpoint_sha256 and where that checkpoint came from
    tokenizer_files   {file name: SHA-256}
    versions          {"roberta_tf", "tensorflow"} that wrote it; created (ISO date)
    notes             what could not be read, in words
plus per kind: a preset's config (task, backbone, parameters, head, preprocessor, tokenizer;
a named preset's registry entry, nothing downloaded), a SavedModel's precision and the
versions of its base directory, a TFLite model's quantization and inputs.

The signatures are read from the files themselves (the SavedModel's `saved_model.pb` proto,
no variables loaded; the TFLite interpreter's signature list, no tensors allocated), and the
op sets are checked on the graphs, so a model whose metadata was copied from another still
shows what it is.
"""

import json
import pathlib

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert
from google.protobuf import message
from tensorflow.core.protobuf import saved_model_pb2

from roberta_tf.artifacts import artifact as artifact_lib
from roberta_tf.artifacts.artifact import ArtifactError
from roberta_tf.artifacts.predictors import read_saved_model_metadata
from roberta_tf.contract import signatures as contract
from roberta_tf.converters import huggingface
from roberta_tf.export import saved_model, tflite_ops
from roberta_tf.lite.metadata import read_tflite_metadata
from roberta_tf.presets import preset_format, registry
from roberta_tf.utils import files

CORE_OPS_ONLY = "core TensorFlow ops only"
BUILTIN_OPS_ONLY = "builtin ops only"
# The SavedModel's own bookkeeping entry in `signature_def`, not a servable signature.
_INTERNAL_SIGNATURE_PREFIX = "__"
_SERVE_TAG = "serve"


def describe(path_or_artifact):
    """A dict describing the artifact at `path_or_artifact` (a path, name or `Artifact`).

    Raises:
        ArtifactError (a ValueError): not an artifact, or a corrupt one; the message says
            what was expected.
    """
    artifact = path_or_artifact
    if not isinstance(artifact, artifact_lib.Artifact):
        artifact = artifact_lib.locate(path_or_artifact)
    describe_kind = {
        artifact_lib.PRESET: _describe_preset,
        artifact_lib.SAVED_MODEL: _describe_saved_model,
        artifact_lib.TFLITE: _describe_tflite,
    }[artifact.kind]
    description = {
        "kind": artifact.kind, "path": artifact.path, "requested": artifact.requested,
        "size_bytes": artifact_lib.size_bytes(artifact), "format": None,
        "labels": None, "num_classes": None, "sequence_length": None, "truncate": None,
        "signatures": [], "contract": [], "op_set": None,
        "source": None, "tokenizer_files": {}, "versions": {}, "created": None, "notes": [],
    }
    description.update(describe_kind(artifact))
    return description


# === Presets ===


def _describe_preset(artifact):
    if not artifact.local:
        return _describe_remote_preset(artifact.path)
    if not preset_format.is_preset_dir(artifact.path):
        return _describe_huggingface_dir(artifact.path)
    config = preset_format.read_config(artifact.path)
    metadata = _preset_metadata(artifact.path)
    classifier = config.get("classifier") or {}
    preprocessor = config.get("preprocessor") or {}
    tokenizer = config.get("tokenizer") or {}
    checkpoint = metadata.get("source") or {}
    return {
        "format": f"{preset_format.FORMAT_NAME}/{config['format_version']}",
        "task": config["task"],
        "backbone": preset_format.backbone_arguments(config["backbone"]),
        "parameters": _parameters(config["backbone"]),
        "head": classifier or None,
        "preprocessor": preprocessor or None,
        "tokenizer": tokenizer or None,
        **_labels(classifier.get("label_names"), classifier.get("num_classes")),
        "sequence_length": preprocessor.get("sequence_length"),
        "truncate": preprocessor.get("truncate"),
        "tokenizer_files": _tokenizer_file_hashes(artifact.path, tokenizer, metadata),
        "source": {
            "preset": artifact.path,
            # The hash every export of this preset records, so exports can be matched to it.
            "preset_sha256": files.directory_sha256(artifact.path),
            "checkpoint_sha256": checkpoint.get("sha256"),
            "origin": checkpoint or None,
        },
        "versions": _versions(metadata.get("roberta_tf_version"), None),
        "created": metadata.get("created"),
        "notes": [] if metadata else [f"no {preset_format.METADATA_FILE}: provenance unknown"],
    }


def _preset_metadata(preset_dir):
    path = pathlib.Path(preset_dir) / preset_format.METADATA_FILE
    if not path.is_file():
        return {}
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtifactError(f"{path}: not valid JSON ({error}); expected the preset's provenance") from None
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path}: not a JSON object; expected the preset's provenance")
    return metadata


def _tokenizer_file_hashes(preset_dir, tokenizer, metadata):
    """SHA-256 of the tokenizer files config.json names, as metadata.json recorded them (or
    computed where it did not)."""
    recorded = metadata.get("files") or {}
    hashes = {}
    for key in ("vocabulary", "merges", "model", "dictionary"):  # BPE's files; SentencePiece's
        name = tokenizer.get(key)
        if name:
            path = preset_format.file_in(preset_dir, name, f"tokenizer {key} file")
            hashes[name] = recorded.get(name) or (files.file_sha256(path) if path.is_file() else None)
    return hashes


def _describe_remote_preset(name):
    """A named preset's registry entry or an hf:// handle: what is known without downloading."""
    entry = registry.PRESETS.get(name)
    if entry is None:
        return {"format": "Hugging Face Hub handle",
                "notes": [f"{name} is not downloaded; inspect a local copy for its configuration"]}
    return {
        "format": "named preset",
        "description": entry["description"],
        "hub_repository": entry["hf_repo"],
        "hub_files": list(entry["files"]),
        "tokenizer": {"type": entry["tokenizer"], "packaged_vocabulary": entry.get("vocabulary")},
        "backbone": entry["backbone"],
        "parameters": entry["params"],
        "notes": [f"weights from the Hugging Face Hub ({entry['hf_repo']}), downloaded on first load; "
                  "nothing was downloaded to describe it"],
    }


def _describe_huggingface_dir(model_dir):
    """A Hugging Face checkpoint directory (config.json), which presets convert on load."""
    try:
        config = huggingface.read_config(model_dir)
        backbone = huggingface.backbone_arguments(config)
        labels = huggingface.label_names(config)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        reason = f"no {error} entry" if isinstance(error, KeyError) else _first_line(error)
        raise ArtifactError(f"{model_dir}/config.json is neither a roberta_tf preset's nor a Hugging Face RoBERTa "
                            f"checkpoint's ({reason}); expected {artifact_lib.EXPECTED}") from None
    classifier = any(name.endswith("ForSequenceClassification") for name in config.get("architectures") or [])
    return {
        "format": f"Hugging Face checkpoint ({config.get('model_type')}), converted on load",
        "task": ", ".join(config.get("architectures") or []) or None,
        "backbone": backbone,
        "parameters": _parameters(backbone),
        # Hugging Face gives every config a two-label id2label: only a classifier's means classes.
        **(_labels(labels, len(config.get("id2label") or {}) or None) if classifier else {}),
    }


# === SavedModels ===


def _describe_saved_model(artifact):
    proto = _read_saved_model_proto(artifact.path)
    meta_graph = _serving_meta_graph(proto, artifact.path)
    signatures = _ordered(
        [_proto_signature(name, definition) for name, definition in meta_graph.signature_def.items()
         if not name.startswith(_INTERNAL_SIGNATURE_PREFIX)],
        contract.CONTRACT,
    )
    non_core = saved_model.non_core_ops(artifact.path)
    description = {
        "format": "SavedModel",
        "signatures": signatures,
        "contract": _contract_differences(signatures, contract.CONTRACT),
        "op_set": {"summary": CORE_OPS_ONLY if not non_core else f"ops outside core TensorFlow: {', '.join(non_core)}",
                   "ok": not non_core, "non_core_ops": non_core},
        "saved_model_versions": _versions_of_base(artifact),
    }
    try:
        metadata = read_saved_model_metadata(artifact.path)
    except ArtifactError as error:
        description["notes"] = [f"no roberta_tf export metadata ({error})"]
        return description
    description.update(_export_metadata_fields(metadata))
    description.update(precision=metadata.get("precision"), jit_compile=metadata.get("jit_compile"),
                       backbone=metadata.get("backbone"),
                       parameters=_parameters(metadata["backbone"]) if metadata.get("backbone") else None)
    return description


def _read_saved_model_proto(version_dir):
    path = pathlib.Path(version_dir) / artifact_lib.SAVED_MODEL_FILE
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(path.read_bytes())
    except message.DecodeError:
        raise ArtifactError(f"{path} is not a SavedModel protobuf (corrupt or truncated); expected a "
                            "SavedModel written by tf.saved_model.save or roberta-tf export saved_model") from None
    except OSError as error:
        raise ArtifactError(f"{path}: cannot read it ({error.strerror or error})") from None
    return proto


def _serving_meta_graph(proto, version_dir):
    """The MetaGraph TF Serving loads (tag "serve"), else the first one."""
    if not proto.meta_graphs:
        raise ArtifactError(f"{version_dir}/{artifact_lib.SAVED_MODEL_FILE} holds no MetaGraph (empty or not "
                            "a SavedModel); expected a SavedModel written by roberta-tf export saved_model")
    serving = [graph for graph in proto.meta_graphs if _SERVE_TAG in graph.meta_info_def.tags]
    return (serving or proto.meta_graphs)[0]


def _proto_signature(name, definition):
    return {
        "name": name,
        "inputs": [_proto_tensor(key, info) for key, info in definition.inputs.items()],
        "outputs": [_proto_tensor(key, info) for key, info in definition.outputs.items()],
    }


def _proto_tensor(name, info):
    """A TensorInfo -> {name, dtype, shape}: TensorFlow's dtype name, None for unknown sizes."""
    shape = None if info.tensor_shape.unknown_rank else [
        None if dim.size < 0 else int(dim.size) for dim in info.tensor_shape.dim]
    return {"name": name, "dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": shape}


def _versions_of_base(artifact):
    """Which versions a base directory holds and which one is described (None for a version
    directory given directly)."""
    requested = pathlib.Path(artifact.requested).expanduser()
    if (requested / artifact_lib.SAVED_MODEL_FILE).is_file():
        return None
    numbered = saved_model.versions(requested)
    available = [v for v in numbered if (requested / str(v) / artifact_lib.SAVED_MODEL_FILE).is_file()]
    return {"base": str(requested), "available": available, "described": int(pathlib.Path(artifact.path).name),
            # Numbered like versions but not loadable: worth seeing next to the real ones.
            "without_saved_model": [v for v in numbered if v not in available]}


# === TFLite models ===


def _describe_tflite(artifact):
    interpreter = _tflite_interpreter(artifact.path)
    signatures = _ordered([_tflite_signature(interpreter, name) for name in interpreter.get_signature_list()],
                          contract.TFLITE_CONTRACT)
    non_builtin = tflite_ops.non_builtin_operators(pathlib.Path(artifact.path).read_bytes())
    description = {
        "format": "TFLite",
        "signatures": signatures,
        "contract": _contract_differences(signatures, contract.TFLITE_CONTRACT),
        "op_set": {"summary": BUILTIN_OPS_ONLY if not non_builtin else
                   f"needs ops outside the TFLite builtins: {', '.join(non_builtin)}",
                   "ok": not non_builtin, "non_builtin_ops": non_builtin},
    }
    try:
        metadata = read_tflite_metadata(artifact.path)
    except ValueError as error:  # the interpreter accepted the model: the entry is missing or not JSON
        description["notes"] = [f"no roberta_tf export metadata ({error})"]
        return description
    description.update(_export_metadata_fields(metadata))
    description.update(quantization=metadata.get("quantization"), inputs=metadata.get("inputs"),
                       recommended_num_threads=metadata.get("recommended_num_threads"),
                       operators=metadata.get("operators"))
    return description


def _tflite_interpreter(path):
    """The model loaded (and verified as a flatbuffer) by LiteRT, without allocating tensors or
    creating delegates."""
    try:
        return litert.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (ValueError, RuntimeError) as error:
        raise ArtifactError(f"{path} is not a valid TFLite model ({_first_line(error)}); expected a "
                            "complete .tflite file such as roberta-tf export tflite writes") from None


def _tflite_signature(interpreter, name):
    runner = interpreter.get_signature_runner(name)
    return {
        "name": name,
        "inputs": [_tflite_tensor(key, details) for key, details in runner.get_input_details().items()],
        "outputs": [_tflite_tensor(key, details) for key, details in runner.get_output_details().items()],
    }


def _tflite_tensor(name, details):
    shape = details.get("shape_signature")
    if shape is None:
        shape = details["shape"]
    dtype = np.dtype(details["dtype"])
    return {"name": name, "dtype": "string" if dtype.kind in "SOU" else dtype.name,
            "shape": [None if size < 0 else int(size) for size in shape]}


# === Shared by the kinds ===


def _export_metadata_fields(metadata):
    """The fields every roberta_tf export's metadata has (`provenance.common_metadata`)."""
    source = metadata.get("source") or {}
    preset_metadata = source.get("preset_metadata") or {}
    return {
        "format": metadata.get("format"),
        **_labels(metadata.get("label_names"), metadata.get("num_classes")),
        "multi_label": metadata.get("multi_label"),
        "sequence_length": metadata.get("sequence_length"),
        "truncate": metadata.get("truncate"),
        "tokenizer_files": metadata.get("tokenizer_files") or {},
        "source": {
            "preset": source.get("preset"),
            "preset_sha256": source.get("preset_sha256"),
            "checkpoint_sha256": source.get("checkpoint_sha256"),
            "origin": preset_metadata.get("source"),
        },
        "versions": _versions(metadata.get("roberta_tf_version"), metadata.get("tensorflow_version")),
        "created": metadata.get("created"),
    }


def _labels(label_names, num_classes):
    if num_classes is None and label_names:
        num_classes = len(label_names)
    if not label_names and num_classes:
        label_names = [str(i) for i in range(num_classes)]  # what the exports answer without names
    return {"labels": list(label_names) if label_names else None, "num_classes": num_classes}


def _versions(roberta_tf_version, tensorflow_version):
    versions = {"roberta_tf": roberta_tf_version, "tensorflow": tensorflow_version}
    return {name: version for name, version in versions.items() if version}


def _parameters(backbone):
    try:
        return registry.parameter_count(backbone)
    except (KeyError, TypeError):  # a config without the geometry (a foreign one): unknown
        return None


def _ordered(signatures, table):
    """The contract's signatures in its order, then any others by name; their tensors likewise."""
    rank = {name: i for i, name in enumerate(table)}
    signatures = sorted(signatures, key=lambda s: (rank.get(s["name"], len(rank)), s["name"]))
    for signature in signatures:
        known = table.get(signature["name"])
        for role in ("inputs", "outputs"):
            order = {tensor.name: i for i, tensor in enumerate(getattr(known, role, ()))}
            signature[role].sort(key=lambda t: (order.get(t["name"], len(order)), t["name"]))
    return signatures


def _contract_differences(signatures, table):
    """How the signatures differ from `table` (roberta_tf.contract): a list of sentences, empty
    when each signature the model has matches the contract's in names and dtypes."""
    differences = []
    for signature in signatures:
        known = table.get(signature["name"])
        if known is None:
            differences.append(f"{signature['name']}: not a roberta_tf signature")
            continue
        for role in ("inputs", "outputs"):
            want = {tensor.name: tensor.dtype for tensor in getattr(known, role)}
            got = {tensor["name"]: tensor["dtype"] for tensor in signature[role]}
            if got != want:
                differences.append(f"{signature['name']} {role}: {_dtypes_text(got)}, the contract says {_dtypes_text(want)}")
    return differences


def _dtypes_text(tensors):
    return "(" + ", ".join(f"{name} {dtype}" for name, dtype in tensors.items()) + ")"


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# === Text ===

_KIND_NAMES = {artifact_lib.PRESET: "preset", artifact_lib.SAVED_MODEL: "SavedModel", artifact_lib.TFLITE: "TFLite model"}


def format_description(description):
    """`describe`'s dict as text: what it is first, then the model, its signatures, where it
    came from and anything that could not be read."""
    sections = [
        (description["path"], _summary_rows(description)),
        ("model", _model_rows(description)),
        ("signatures", _signature_rows(description["signatures"])),
        ("provenance", _provenance_rows(description)),
        ("notes", [(f"- {note}",) for note in description.get("notes") or []]),
    ]
    blocks = [_block(title, rows) for title, rows in sections if rows]
    return "\n\n".join(blocks) + "\n"


def _block(title, rows):
    """`title` and its rows, each row's cells left-aligned in columns (a cell may hold several
    lines: the later ones start under its column)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i].split("\n")[0]) for row in rows if len(row) > i) for i in range(max(map(len, rows)))]
    lines = [title]
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        line = "  " + "  ".join(cells)
        indent = " " * (len(line) - len(cells[-1]))
        lines.append(line.rstrip().replace("\n", "\n" + indent))
    return "\n".join(lines)


def _summary_rows(d):
    kind = _KIND_NAMES[d["kind"]] + (f" ({d['format']})" if d.get("format") else "")
    if d.get("size_bytes") is not None:
        kind += f", {_size_text(d['size_bytes'])}"
    rows = [("kind", kind)]
    versions = d.get("saved_model_versions")
    if versions:
        text = f"{', '.join(map(str, versions['available']))} in {versions['base']}; described: {versions['described']} (the highest)"
        if versions["without_saved_model"]:
            text += f"; no saved_model.pb in {', '.join(map(str, versions['without_saved_model']))}"
        rows.append(("versions", text))
    if d.get("description"):
        rows.append(("description", d["description"]))
    if d.get("labels"):
        rows.append(("labels", f"{', '.join(d['labels'])} ({d['num_classes']} classes"
                               f"{', multi-label' if d.get('multi_label') else ''})"))
    if d.get("sequence_length"):
        rows.append(("sequence length", f"{d['sequence_length']} tokens"
                                        + (f", truncate {d['truncate']}" if d.get("truncate") else "")))
    if d.get("precision"):
        rows.append(("precision", d["precision"] + (", XLA" if d.get("jit_compile") else "")))
    if d.get("quantization"):
        rows.append(("quantization", _quantization_text(d["quantization"])))
    if d.get("inputs"):
        rows.append(("inputs", d["inputs"]))
    if d.get("op_set"):
        rows.append(("op set", d["op_set"]["summary"]))
    if d.get("signatures"):
        rows.append(("contract", "matches roberta_tf.contract" if not d["contract"] else "; ".join(d["contract"])))
    return rows


_ENCODER_FIELDS = (
    ("num_layers", "{} layers"), ("num_heads", "{} heads"), ("hidden_dim", "hidden {}"),
    ("intermediate_dim", "feed-forward {}"), ("vocabulary_size", "vocabulary {:,}"),
    ("max_sequence_length", "up to {} tokens"), ("dtype", "dtype policy {}"),
)


def _model_rows(d):
    rows = []
    if d.get("task"):
        rows.append(("task", d["task"]))
    backbone = d.get("backbone") or {}
    encoder = [text.format(backbone[key]) for key, text in _ENCODER_FIELDS if backbone.get(key) is not None]
    if encoder:
        rows.append(("encoder", ", ".join(encoder)))
    if d.get("parameters"):
        rows.append(("parameters", f"{d['parameters']:,} (encoder)"))
    head = d.get("head")
    if head:
        rows.append(("head", f"{head.get('num_classes')} classes, hidden {head.get('hidden_dim')}, "
                             f"activation {head.get('activation') or 'none (logits)'}"))
    preprocessor = d.get("preprocessor")
    if preprocessor:
        rows.append(("preprocessor", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in preprocessor.items())))
    tokenizer = d.get("tokenizer")
    if tokenizer:
        rows.append(("tokenizer", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in tokenizer.items())))
    if d.get("hub_repository"):
        rows.append(("hub", f"{d['hub_repository']} ({', '.join(d['hub_files'])})"))
    return rows


def _signature_rows(signatures):
    rows = []
    for signature in signatures:
        name = signature["name"]
        for role in ("inputs", "outputs"):
            for tensor in signature[role]:
                rows.append((name, "in" if role == "inputs" else "out", tensor["name"], tensor["dtype"],
                             _shape_text(tensor["shape"])))
                name = ""
    return rows


def _provenance_rows(d):
    rows = []
    source = d.get("source") or {}
    for key, label in (("preset", "preset"), ("preset_sha256", "preset sha256"), ("checkpoint_sha256", "checkpoint sha256")):
        if source.get(key):
            rows.append((label, source[key]))
    converted = source.get("origin")
    if converted:
        origin = converted.get("type", "?") + (f" {converted['path']}" if converted.get("path") else "")
        rows.append(("origin", origin))
    if d.get("tokenizer_files"):
        rows.append(("tokenizer files", "\n".join(f"{name}  {digest or '?'}" for name, digest in d["tokenizer_files"].items())))
    written = ", ".join(f"{'TensorFlow' if name == 'tensorflow' else name} {version}"
                        for name, version in (d.get("versions") or {}).items())
    if written or d.get("created"):
        rows.append(("written", " ".join(part for part in (d.get("created"), written and f"by {written}") if part)))
    return rows


def _quantization_text(quantization):
    mode = quantization.get("mode", "?")
    text = {"none": "none (float32 weights)", "float16": "float16 weights", "dynamic": "dynamic range (int8 weights, "
            "float activations)", "int8": "int8 weights and activations"}.get(mode, mode)
    if quantization.get("calibration_texts"):
        text += f", calibrated on {quantization['calibration_texts']} texts"
    if quantization.get("kept_float"):
        text += f"; kept float: {', '.join(quantization['kept_float'].get('ops', []))}"
    return text


def _shape_text(shape):
    if shape is None:
        return "unknown rank"
    return "[" + ", ".join("?" if size is None else str(size) for size in shape) + "]"


def _size_text(size):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size:,} bytes)"
    return f"{size:,} bytes"
