"""Smoke test of an installed (non-editable) roberta-tf wheel, run by `.ci/run` in a fresh venv
from outside the repository, so nothing can come from the source tree.

    python .ci/wheel_smoke.py VOCAB_JSON MERGES_TXT

Checks: roberta_tf is imported from site-packages; every module of every subpackage imports
(roberta_tf.beam only where apache-beam, the optional [beam] extra, is installed; else its import
must fail naming the extra);
`roberta-tf tokenize` (the console script) tokenizes two lines exactly; the model classes
build, expose `presets` (a class property); the named preset's tokenizer loads from the
vocabulary packaged in the wheel with the hub switched off; a tiny classifier exports as a TF
Serving SavedModel that answers. Prints one line per check; exits non-zero on the first failure.
"""

import importlib
import importlib.util
import json
import os
import pathlib
import pkgutil
import subprocess
import sys
import sysconfig
import tempfile

# roberta-base ids of "Hello world!" and "The quick brown fox." (Hugging Face `tokenizers`).
EXPECTED_IDS = [[0, 31414, 232, 328, 2], [0, 133, 2119, 6219, 23602, 4, 2]]


def check(name, condition, detail=""):
    if not condition:
        sys.exit(f"wheel smoke: FAILED {name} {detail}")
    print(f"wheel smoke: ok {name}")


def main(vocab_json, merges_txt):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import roberta_tf

    site_packages = pathlib.Path(sysconfig.get_paths()["purelib"]).resolve()
    location = pathlib.Path(roberta_tf.__file__).resolve()
    check("installed from site-packages", site_packages in location.parents, str(location))

    # roberta_tf.beam needs the optional [beam] extra (apache-beam), which the bare wheel does not
    # install: without it, the package must fail to import with the install instruction instead.
    has_beam = importlib.util.find_spec("apache_beam") is not None
    optional = () if has_beam else ("roberta_tf.beam",)
    all_modules = sorted(info.name for info in pkgutil.walk_packages(roberta_tf.__path__, "roberta_tf.",
                                                                     onerror=lambda name: None))
    modules = [m for m in all_modules if not any(m == o or m.startswith(o + ".") for o in optional)]
    for module in modules:
        importlib.import_module(module)
    for module in optional:
        try:
            importlib.import_module(module)
            failure = "imported without apache-beam"
        except ImportError as error:
            failure = None if "pip install 'roberta-tf[beam]'" in str(error) else f"unclear message: {error}"
        check(f"{module} skipped (apache-beam not installed): its import names the [beam] extra", failure is None,
              str(failure))
    packages = sorted(info.name for info in pkgutil.walk_packages(roberta_tf.__path__, "roberta_tf.") if info.ispkg)
    check(f"imported {len(modules)} modules of {len(packages)} subpackages", len(packages) >= 10, str(packages))

    script = pathlib.Path(sys.executable).parent / "roberta-tf"
    result = subprocess.run(
        [str(script), "tokenize", "--vocabulary", vocab_json, "--merges", merges_txt],
        input=b"Hello world!\nThe quick brown fox.\n", capture_output=True, timeout=600,
    )
    ids = [json.loads(line) for line in result.stdout.decode().splitlines()]
    check("roberta-tf tokenize on two lines", result.returncode == 0 and ids == EXPECTED_IDS,
          f"rc={result.returncode} ids={ids} stderr={result.stderr.decode()[-500:]}")

    import numpy as np
    import tensorflow as tf

    from roberta_tf.export.saved_model import export_saved_model
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, RobertaTokenizer

    check("RobertaTextClassifier.presets", "roberta_base_en" in RobertaTextClassifier.presets)
    os.environ["HF_HUB_OFFLINE"] = "1"  # any download attempt now fails instead of reaching the network
    named_ids = RobertaTokenizer.from_preset("roberta_base_en")("Hello world").numpy().tolist()
    check("RobertaTokenizer.from_preset('roberta_base_en') offline, packaged vocabulary", named_ids == [31414, 232],
          str(named_ids))
    tokenizer = RobertaTokenizer(vocabulary=vocab_json, merges=merges_txt)
    backbone = RobertaBackbone(vocabulary_size=50265, num_layers=1, num_heads=2, hidden_dim=16,
                               intermediate_dim=32, max_sequence_length=32)
    classifier = RobertaTextClassifier(backbone, num_classes=2, label_names=["neg", "pos"])
    with tempfile.TemporaryDirectory() as directory:
        result = export_saved_model(classifier, tokenizer, pathlib.Path(directory) / "m", warmup_requests=False)
        loaded = tf.saved_model.load(str(result.path))
        answer = loaded.signatures["serving_default"](text=tf.constant(["great", "awful"]))
    check("tiny classifier exported and served", answer["probabilities"].shape == (2, 2)
          and set(answer["class_name"].numpy().tolist()) <= {b"neg", b"pos"})

    # The LiteRT runtime the TFLite export and roberta_tf.lite need (a wheel per Python): a
    # trivial model converted and run (the full export is tested by the test suite).
    from ai_edge_litert.interpreter import Interpreter

    double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.int32)])
    content = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()]).convert()
    interpreter = Interpreter(model_content=content)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [2])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([1, 2], np.int32))
    interpreter.invoke()
    doubled = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).tolist()
    check("ai_edge_litert runs a converted model", doubled == [2, 4], str(doubled))


if __name__ == "__main__":
    main(*sys.argv[1:])
