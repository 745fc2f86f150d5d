"""`roberta_tf.demo` pieces, cheaply: the recipe machinery shared with the SST-2 benchmark, the
cache check, the recipes' stated sizes, the agreement targets and the printed report (its
serving commands against the deployment files they must match)."""

import json
import pathlib
import re

import numpy as np
import pytest

from roberta_tf.demo import recipes, report, scoring, training_record
from roberta_tf.demo.scoring import ArtifactScore

from conftest import REPO

SERVING = REPO / "serving"


def test_batch_sizes_are_the_benchmark_recipes_own():
    """benchmarks/sst2_classifier.py's cached preset was trained with these batches; the
    shared glue must keep giving them (values from the benchmark's code before the move)."""
    from benchmarks.sst2_classifier import RECIPE

    from roberta_tf.demo import training

    assert training.batch_sizes(RECIPE["training"]) == [128, 128, 101, 82, 69, 60, 50, 42, 35, 29, 24, 20, 16]


def test_the_cache_check_needs_a_preset_and_an_equal_record(tmp_path):
    recipe = recipes.get(quick=True).recipe
    assert not training_record.record_matches(tmp_path, recipe=recipe)  # nothing there
    (tmp_path / training_record.TRAINING_FILE).write_text(json.dumps({"recipe": recipe, "recipe_version": 1}))
    assert not training_record.record_matches(tmp_path, recipe=recipe)  # no config.json: no preset
    (tmp_path / "config.json").write_text("{}")
    assert training_record.record_matches(tmp_path, recipe=recipe, recipe_version=1)
    changed = json.loads(json.dumps(recipe))
    changed["training"]["epochs"] = 2
    assert not training_record.record_matches(tmp_path, recipe=changed)
    assert not training_record.record_matches(tmp_path, recipe=recipe, recipe_version=2)
    (tmp_path / training_record.TRAINING_FILE).write_text("not json")
    assert training_record.read_training_record(tmp_path) is None


@pytest.mark.parametrize("quick", [False, True])
def test_the_stated_parameter_count_is_the_models(quick):
    from roberta_tf.models import RobertaBackbone, RobertaTextClassifier

    recipe = recipes.get(quick).recipe
    classifier = RobertaTextClassifier(RobertaBackbone(**recipe["backbone"]), len(recipe["label_names"]),
                                       preprocessor=None)
    assert recipes.parameter_count(recipe) == classifier.count_params()


def test_agreement_targets_are_the_tflite_accuracy_targets():
    # benchmarks/tflite_benchmark.py ACCURACY_TARGETS (points) for float16, dynamic, int8.
    assert scoring.AGREEMENT_TARGETS == {"float32": 0.999, "float16": 0.999, "dynamic": 0.997, "int8": 0.99}


def _fake_result(tmp_path, agreement_int8=0.9977):
    def score(name, kind, form, path, agreement, target):
        return ArtifactScore(name=name, kind=kind, form=form, path=tmp_path / path, size_bytes=12_300_000,
                             accuracy=0.75, agreement=agreement, disagreements=round((1 - agreement) * 872),
                             agreement_target=target, median_ms=0.41, class_ids=np.zeros(872, np.int64),
                             examples=[("positive", 0.9), ("negative", 0.8)])

    scores = [score("in-process model (preset)", "preset", "float32", "preset", 1.0, None),
              score("SavedModel (TF Serving)", "saved_model", "float32", "models/roberta_classifier/1", 1.0, 0.999),
              score("TFLite int8", "tflite", "int8", "tflite/sst2_int8.tflite", agreement_int8, 0.99)]

    class Result:
        output = tmp_path
        recipe = recipes.get(quick=True)
        preset_cache = tmp_path / "cache"
        used_cache = True
        training_record = {"train_size": 12000, "train_seconds": 24.0, "dev": {"accuracy": 0.7466}}
        dev_size = 872
        example_texts = ("Good.", "Bad.")
        seconds = {"cached model": 0.1, "exports": 50.0, "scoring": 20.0, "total": 71.0}
        cpu_seconds = {"cached model": 0.1, "exports": 45.0, "scoring": 25.0, "total": 70.0}

    Result.scores = scores
    return Result()


def test_the_report_lists_every_artifact_says_what_the_model_is_and_flags_a_missed_target(tmp_path):
    text = report.render(_fake_result(tmp_path))
    for name, path in [("in-process model (preset)", "preset"), ("SavedModel (TF Serving)", "models/roberta_classifier/1"),
                       ("TFLite int8", "tflite/sst2_int8.tflite")]:
        assert re.search(rf"{re.escape(name)}\s+{re.escape(path)}\s+12\.3\s+0\.7500", text), name
    assert "0.9977 (2 differ)" in text and ">= 0.990 met" in text
    prose = " ".join(text.split())  # the statement wraps at report.WIDTH
    assert "NOT roberta-base" in prose and "12,000 SST-2 train examples" in prose and "Used the cached model" in prose
    assert ">= 0.990 NOT MET" in report.render(_fake_result(tmp_path, agreement_int8=0.98))


def test_the_serving_commands_match_the_deployment_files(tmp_path):
    commands = report.commands(tmp_path)
    compose = (SERVING / "docker-compose.yml").read_text()
    # compose mounts ROBERTA_TF_MODELS_DIR at /models; models.config serves /models/<MODEL_NAME>.
    assert "${ROBERTA_TF_MODELS_DIR:-./models}:/models:ro" in compose
    assert f'name: "{report.MODEL_NAME}"' in (SERVING / "models.config").read_text()
    assert f'base_path: "/models/{report.MODEL_NAME}"' in (SERVING / "models.config").read_text()
    assert '"${TF_SERVING_REST_PORT:-8501}:8501"' in compose and report.REST_URL.endswith(":8501")
    assert commands["serve"].splitlines()[0] == f"cd {SERVING.resolve()}"
    assert f"ROBERTA_TF_MODELS_DIR={tmp_path / 'models'} docker compose up -d" in commands["serve"]
    body = json.loads(commands["curl"].split(" -d ", 1)[1].strip("'"))
    assert body == {"instances": report.CURL_EXAMPLE}
    assert f"/v1/models/{report.MODEL_NAME}:predict" in commands["curl"]
    assert "from roberta_tf.serving.client import RestClient" in commands["python_client"]
    # The printed Python really runs against the client's API (constructor and classify).
    from roberta_tf.serving.client import RestClient

    assert RestClient(report.REST_URL).model_name == report.MODEL_NAME


def test_the_data_check_names_the_missing_files(tmp_path):
    from roberta_tf.demo import data

    (tmp_path / "train.tsv").write_text("sentence\tlabel\nok\t1\n")
    assert data.missing_files(tmp_path) == [str(tmp_path / "dev.tsv")]
    split = data.read_split(tmp_path, "train")
    assert split.texts == ["ok"] and split.labels.tolist() == [1]
    (tmp_path / "dev.tsv").write_text("text\tlabel\n")
    with pytest.raises(ValueError, match="not GLUE SST-2"):
        data.read_split(tmp_path, "dev")
    assert pathlib.Path(data.default_data_dir()).parts[-3:] == ("shared", "data", "sst2")
