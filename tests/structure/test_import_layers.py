"""The packages form a one-way stack: a module imports only from its own package or from a
layer below it, at module level or inside a function. WORKSPACE.md draws the same stack.

Function-level imports of roberta_tf modules are allowed only in the CLI (they keep
`roberta-tf --help` from loading TensorFlow); anywhere else they would only hide a cycle.
"""

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
# Installed package -> folder (setup.py maps converters/ and serving/ the same way).
ROOTS = {"roberta_tf": "roberta_tf", "roberta_tf.converters": "converters", "roberta_tf.serving": "serving"}

# Bottom to top. Packages in one layer never import each other.
LAYERS = (
    ("roberta_tf",),  # the package root (__version__)
    ("utils", "contract"),  # helpers with no roberta_tf dependency; the exported models' contract
    ("tokenizers",),  # bytes -> ids on integer TF ops; vocabularies
    ("preprocessing",),  # packing ids into model inputs; packing options
    ("layers",),  # the encoder's Keras layers
    ("converters",),  # checkpoints -> ConvertedCheckpoint (config, named arrays, vocabulary)
    ("presets",),  # preset directories, hub downloads, resolution; loaders take the class to build
    ("models",),  # the keras-hub API classes
    ("export", "serving", "lite"),  # exporters / TF Serving clients + deployment files / TFLite runtime
    ("artifacts",),  # any exported artifact (preset, SavedModel, .tflite) found, described and run alike
    ("demo", "beam"),  # `roberta-tf demo` (library code) | Apache Beam RunInference over a SavedModel (the [beam] extra)
    ("cli",),  # the roberta-tf command
)
RANK = {package: rank for rank, names in enumerate(LAYERS) for package in names}
LAZY_IMPORTS_ALLOWED_IN = ("roberta_tf.cli",)


def module_sources():
    """{module name: source text} of every module under the three roots."""
    sources = {}
    for package, folder in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            sources[".".join([package, *parts])] = path.read_text(encoding="utf-8")
    return sources


def _is_package(module, sources):
    return any(name.startswith(module + ".") for name in sources)


def imports_of(module, source, sources):
    """(imported roberta_tf module, line, inside a function?) for every import in `source`."""
    tree = ast.parse(source)
    function_nodes = {
        id(node)
        for function in ast.walk(tree)
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(function)
    }
    package = module if _is_package(module, sources) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from roberta_tf import models` imports the subpackage roberta_tf.models.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "roberta_tf" or target.startswith("roberta_tf."):
                yield target, node.lineno, id(node) in function_nodes


def package_of(module):
    """The layer entry of a module: "roberta_tf" for the root, else its first subpackage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "roberta_tf"


def violations(sources):
    """Every upward or sideways import, and every lazy roberta_tf import outside the CLI."""
    found = []
    for module, source in sources.items():
        own = package_of(module)
        for target, line, lazy in imports_of(module, source, sources):
            other = package_of(target)
            if other != own and RANK[other] >= RANK[own]:
                found.append(f"{module}:{line} imports {target}: {own} may not import {other} (not below it)")
            if lazy and not module.startswith(LAZY_IMPORTS_ALLOWED_IN):
                found.append(f"{module}:{line} imports {target} inside a function (move the dependency down instead)")
    return found


def test_every_package_has_a_layer():
    packages = {package_of(module) for module in module_sources()}
    assert packages == set(RANK), f"place new packages in LAYERS: {sorted(packages ^ set(RANK))}"


def test_imports_only_point_down():
    found = violations(module_sources())
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "module, source",
    [
        # the cycles this stack replaced (issue 10): presets -> models, converters -> presets,
        # the exporter -> the deployment client; each as a lazy import that used to hide it
        ("roberta_tf.presets.loader_bad", "def load():\n    from roberta_tf.models import RobertaBackbone\n"),
        ("roberta_tf.converters.build_bad", "from roberta_tf.presets import saver\n"),
        ("roberta_tf.export.warmup_bad", "def write():\n    from roberta_tf.serving.client import GrpcClient\n"),
        ("roberta_tf.serving.client_bad", "import roberta_tf.export.saved_model\n"),
        ("roberta_tf.tokenizers.bad", "from roberta_tf import models\n"),
        ("roberta_tf.presets.relative_bad", "from ..models import roberta_backbone\n"),
        ("roberta_tf.utils.bad", "from roberta_tf.contract import signatures\n"),
    ],
)
def test_the_check_catches_an_upward_import(module, source):
    sources = module_sources()
    assert not violations(sources)
    sources[module] = source
    found = violations(sources)
    assert found and all(entry.startswith(module) for entry in found), found


def test_the_check_accepts_downward_imports():
    sources = module_sources()
    sources["roberta_tf.models.good"] = "from roberta_tf.presets import loader\nfrom ..layers import dense\n"
    sources["roberta_tf.cli.good"] = "def run():\n    from roberta_tf.export import saved_model\n"
    assert not violations(sources)
