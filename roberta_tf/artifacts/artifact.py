"""What a path names: a preset, a TF Serving SavedModel or a TFLite model. TensorFlow-free, so
`roberta-tf inspect` and the commands' argument checks answer without loading it.

    locate("presets/sst2")          Artifact(kind="preset", ...)
    locate("models/sst2")           the highest version, models/sst2/3 (as TF Serving serves it)
    locate("models/sst2/1")         Artifact(kind="saved_model", ...)
    locate("sst2_int8.tflite")      Artifact(kind="tflite", ...)
    locate("roberta_base_en")       a named preset (or hf://owner/name): kind "preset"

Anything else (a missing path, a vocab.json, a directory of something else) is an
`ArtifactError` that says what was expected.
"""

import dataclasses
import os
import pathlib

from roberta_tf.presets import preset_format, registry

PRESET = "preset"
SAVED_MODEL = "saved_model"
TFLITE = "tflite"
KINDS = (PRESET, SAVED_MODEL, TFLITE)

SAVED_MODEL_FILE = "saved_model.pb"
# A TFLite model is a FlatBuffer whose file identifier (bytes 4-8) is "TFL3".
TFLITE_IDENTIFIER = b"TFL3"

EXPECTED = ("a roberta_tf preset directory (or a named preset / hf:// handle / Hugging Face checkpoint "
            "directory), a SavedModel version directory (or its base directory) or a .tflite model")


class ArtifactError(ValueError):
    """The path is not an artifact the command can use (a message for the user)."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A located artifact.

    Attributes:
        kind: "preset", "saved_model" or "tflite".
        path: the file or directory to load (for a SavedModel base directory: its highest
            version), or the name / handle of a remote preset.
        requested: what the user gave.
        local: whether `path` is on this machine (False for named presets and hf:// handles).
    """

    kind: str
    path: str
    requested: str
    local: bool = True


def locate(path):
    """`path` (str or PathLike) -> `Artifact`, or an `ArtifactError` saying why not."""
    requested = os.fspath(path)
    if requested in registry.PRESETS or requested.startswith("hf://"):
        return Artifact(PRESET, requested, requested, local=False)
    location = pathlib.Path(requested).expanduser()
    if not location.exists():
        raise ArtifactError(f"{requested}: no such file or directory; expected {EXPECTED}")
    if location.is_file():
        if _is_tflite(location):
            return Artifact(TFLITE, str(location), requested)
        raise ArtifactError(f"{requested} is not a TFLite model (no TFL3 identifier); expected {EXPECTED}")
    if (location / SAVED_MODEL_FILE).is_file():
        return Artifact(SAVED_MODEL, str(location), requested)
    if preset_format.is_preset_dir(location) or (location / preset_format.CONFIG_FILE).is_file():
        return Artifact(PRESET, str(location), requested)  # a Hugging Face directory converts in memory
    version = highest_version(location)
    if version is not None:
        return Artifact(SAVED_MODEL, str(version), requested)
    raise ArtifactError(f"{requested} is a directory with no saved_model.pb, config.json or numbered "
                        f"SavedModel versions; expected {EXPECTED}")


def highest_version(base):
    """The numbered subdirectory of `base` with the highest number that holds a SavedModel (the
    version TF Serving's default policy serves), or None."""
    versions = [p for p in pathlib.Path(base).iterdir()
                if p.name.isdigit() and (p / SAVED_MODEL_FILE).is_file()]
    return max(versions, key=lambda p: int(p.name), default=None)


def _is_tflite(path):
    try:
        with open(path, "rb") as f:
            header = f.read(8)
    except OSError as error:
        raise ArtifactError(f"{path}: cannot read it ({error.strerror or error})") from None
    return len(header) == 8 and header[4:8] == TFLITE_IDENTIFIER


def size_bytes(artifact):
    """Bytes on disk: the file, or every file under the directory (None for a remote preset)."""
    if not artifact.local:
        return None
    path = pathlib.Path(artifact.path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
