"""The clients against a running TF Serving with an exported roberta_tf classifier.

Skipped unless a server is named (serving/README.md shows how to start one):
    ROBERTA_TF_SERVING_URL=http://localhost:8501   REST base URL
    ROBERTA_TF_SERVING_GRPC=localhost:8500         gRPC target
    ROBERTA_TF_SERVING_MODEL=roberta_classifier    model name (default)
    ROBERTA_TF_SERVING_BATCHING=true               whether that server batches (default true, as
                                                   docker-compose.yml and k8s/ start it)
Every check runs on each named endpoint; the REST/gRPC agreement test needs both.

The start-up tests run serving/docker-compose.yml themselves, batching on and off, on ports
18500/18501 (project names roberta-tf-live-batching-*), and need Docker:
    ROBERTA_TF_SERVING_DOCKER_MODELS=/path/to/models   a directory holding roberta_classifier/<version>/
They settle what this repository could only read in TF Serving's source (no TF Serving binary or
Docker engine where it was written): both settings start; a 1,000-row call is answered (split by
the client); an empty call is answered locally, a raw empty request hangs with batching on
(inferred) and is answered with it off; a version that is not loaded answers 404 NOT_FOUND.
"""

import os
import pathlib
import shutil
import subprocess
import time

import numpy as np
import pytest

from roberta_tf.serving import batching
from roberta_tf.serving.client import DEFAULT_MODEL_NAME, RestClient, ServingError

REST_URL = os.environ.get("ROBERTA_TF_SERVING_URL")
GRPC_TARGET = os.environ.get("ROBERTA_TF_SERVING_GRPC")
MODEL_NAME = os.environ.get("ROBERTA_TF_SERVING_MODEL", DEFAULT_MODEL_NAME)
BATCHING = os.environ.get("ROBERTA_TF_SERVING_BATCHING", "true") == "true"
DOCKER_MODELS = os.environ.get("ROBERTA_TF_SERVING_DOCKER_MODELS")
SERVING = pathlib.Path(__file__).resolve().parents[2] / "serving"
SKIP_REASON = ("no TF Serving named: set ROBERTA_TF_SERVING_URL and/or ROBERTA_TF_SERVING_GRPC "
               "(see serving/README.md, 'Testing against the server')")

# Plain sentences, then the inputs only REST's b64 path and gRPC bytes carry: NUL, invalid UTF-8.
TEXTS = ["a gripping, beautifully acted film", "dull and far too long", "", "日本語のテキスト",
         "nul\x00inside", b"caf\xe9 (cp1252 bytes)"]
PAIRS = ["the film", "a movie", "x", "テキスト", "inside", b"\xff"]
TOLERANCE = 1e-5


def endpoints():
    names = []
    if REST_URL:
        names.append("rest")
    if GRPC_TARGET:
        names.append("grpc")
    return names or [pytest.param("none", marks=pytest.mark.skip(reason=SKIP_REASON))]


def make_client(kind, url=None, **kwargs):
    kwargs = {"model_name": MODEL_NAME, "timeout": 60.0, **kwargs}
    if kind == "rest":
        return RestClient(url or REST_URL, **kwargs)
    from roberta_tf.serving.client import GrpcClient

    return GrpcClient(url or GRPC_TARGET, **kwargs)


@pytest.fixture(params=endpoints())
def client(request):
    return make_client(request.param)


def check_classification(result, count):
    logits, probabilities = result["logits"], result["probabilities"]
    assert logits.dtype == np.float32 and probabilities.dtype == np.float32
    assert result["class_id"].dtype == np.int32
    assert logits.ndim == 2 and logits.shape[0] == count and probabilities.shape == logits.shape
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=TOLERANCE)
    np.testing.assert_array_equal(result["class_id"], probabilities.argmax(axis=1))
    assert result["class_name"].shape == (count,)
    assert all(isinstance(name, str) and name for name in result["class_name"])


def test_model_is_available(client):
    states = {status["state"] for status in client.model_status()}
    assert "AVAILABLE" in states, client.model_status()


def test_classify(client):
    check_classification(client.classify(TEXTS), len(TEXTS))


def test_classify_pairs(client):
    check_classification(client.classify_pairs(TEXTS, PAIRS), len(TEXTS))


def test_tokenize_and_tokenize_pairs(client):
    single = client.tokenize(TEXTS)
    paired = client.tokenize(TEXTS, pairs=PAIRS)
    for result in (single, paired):
        ids, mask = result["token_ids"], result["padding_mask"]
        assert ids.dtype == np.int32 and mask.dtype == np.int32
        assert ids.shape == mask.shape and ids.shape[0] == len(TEXTS)
        assert set(np.unique(mask)) <= {0, 1}
        assert (mask.sum(axis=1) >= 2).all()  # at least <s> and </s>
        assert len(set(ids[:, 0])) == 1       # every row starts with <s>
    # A pair adds its tokens and separators to every row.
    assert (paired["padding_mask"].sum(axis=1) > single["padding_mask"].sum(axis=1)).all()


def test_classify_token_ids_equals_classify(client):
    for tokens, direct in ((client.tokenize(TEXTS), client.classify(TEXTS)),
                           (client.tokenize(TEXTS, pairs=PAIRS), client.classify_pairs(TEXTS, PAIRS))):
        via_ids = client.classify_token_ids(tokens["token_ids"], tokens["padding_mask"])
        np.testing.assert_allclose(via_ids["logits"], direct["logits"], atol=TOLERANCE)
        np.testing.assert_array_equal(via_ids["class_name"], direct["class_name"])


def test_classify_token_ids_is_padding_invariant(client):
    """`pad_to` (pad id 1, mask 0: what makes requests batchable together) leaves the logits alone."""
    tokens = client.tokenize(TEXTS, pairs=PAIRS)
    plain = client.classify_token_ids(tokens["token_ids"], tokens["padding_mask"])
    padded = client.classify_token_ids(tokens["token_ids"], tokens["padding_mask"],
                                       pad_to=tokens["token_ids"].shape[1] + 7)
    np.testing.assert_allclose(padded["logits"], plain["logits"], atol=TOLERANCE)
    np.testing.assert_array_equal(padded["class_id"], plain["class_id"])


def test_rest_row_form_matches_columnar_form():
    """Every signature in the `instances` form (which the client now uses for all of them)."""
    if not REST_URL:
        pytest.skip(SKIP_REASON)
    rows, columns = make_client("rest", form="instances"), make_client("rest", form="inputs")
    tokens = columns.tokenize(TEXTS)
    calls = (("classify", (TEXTS,), {}), ("classify_pairs", (TEXTS, PAIRS), {}), ("tokenize", (TEXTS,), {}),
             ("tokenize", (TEXTS,), {"pairs": PAIRS}),
             ("classify_token_ids", (tokens["token_ids"], tokens["padding_mask"]), {}))
    for method, args, kwargs in calls:
        from_rows, from_columns = getattr(rows, method)(*args, **kwargs), getattr(columns, method)(*args, **kwargs)
        assert from_rows.keys() == from_columns.keys(), method
        for name in from_rows:
            if from_rows[name].dtype == object:
                np.testing.assert_array_equal(from_rows[name], from_columns[name], err_msg=f"{method} {name}")
            else:
                np.testing.assert_allclose(from_rows[name], from_columns[name], atol=TOLERANCE,
                                           err_msg=f"{method} {name}")


def test_rest_and_grpc_agree():
    if not (REST_URL and GRPC_TARGET):
        pytest.skip("needs both ROBERTA_TF_SERVING_URL and ROBERTA_TF_SERVING_GRPC (serving/README.md)")
    rest, grpc_client = make_client("rest"), make_client("grpc")
    for method, args, kwargs in (("classify", (TEXTS,), {}), ("classify_pairs", (TEXTS, PAIRS), {}),
                                 ("tokenize", (TEXTS,), {}), ("tokenize", (TEXTS,), {"pairs": PAIRS})):
        from_rest, from_grpc = getattr(rest, method)(*args, **kwargs), getattr(grpc_client, method)(*args, **kwargs)
        assert from_rest.keys() == from_grpc.keys(), method
        for name in from_rest:
            if from_rest[name].dtype == object:
                np.testing.assert_array_equal(from_rest[name], from_grpc[name], err_msg=f"{method} {name}")
            else:
                np.testing.assert_allclose(from_rest[name], from_grpc[name], atol=TOLERANCE, err_msg=f"{method} {name}")


# ---------------------------------------------------------------------------------------------
# What the deployment rules promise (issue 14), on the named server and on servers started here.

MANY_TEXTS = [f"sentence {i}: " + "a fine film " * (i % 7) for i in range(1000)]


def check_large_and_empty_calls(client, batching_on):
    """A 1,000-row call (split by the client into requests of batching.MAX_REQUEST_ROWS) answers every
    row as a single call would; an empty call is answered without the server, with its shapes; a
    raw request over max_batch_size is refused at once with batching on (INVALID_ARGUMENT:
    shared_batch_scheduler.h, Queue::ValidateBatchTaskQueueCapacity) and answered with it off."""
    many = client.classify(MANY_TEXTS)
    check_classification(many, len(MANY_TEXTS))
    for i in (0, 499, 999):
        np.testing.assert_allclose(many["logits"][i], client.classify([MANY_TEXTS[i]])["logits"][0], atol=TOLERANCE)
    classes = many["logits"].shape[1]
    empty = client.classify([])
    assert empty["logits"].shape == empty["probabilities"].shape == (0, classes)
    assert empty["class_id"].shape == empty["class_name"].shape == (0,)
    assert client.tokenize([])["token_ids"].shape == (0, 2)
    oversized = {"text": MANY_TEXTS[:batching.MAX_BATCH_SIZE + 1]}
    if batching_on:
        with pytest.raises(ServingError) as caught:
            client.predict("serving_default", oversized)
        assert caught.value.code == "INVALID_ARGUMENT" and caught.value.attempts == 1
        assert "larger than maximum input batch size" in caught.value.message
    else:
        assert client.predict("serving_default", oversized)["logits"].shape == (batching.MAX_BATCH_SIZE + 1, classes)


def check_raw_empty_request(kind, url, batching_on):
    """Sent anyway (`predict` does not intercept it). Batching off: the SavedModel's [0, C]. Batching
    on: the README's inference from the source (batching_session.cc, BatchingSession::InternalRun
    waits without a timeout; shared_batch_scheduler.h never schedules a 0-row open batch) is
    that no answer comes until another request of the signature arrives."""
    client = make_client(kind, url, timeout=5.0, retries=0)
    classes = client.classify(["x"])["logits"].shape[1]
    if not batching_on:
        assert client.predict("serving_default", {"text": []})["logits"].shape == (0, classes)
        return
    with pytest.raises(ServingError) as caught:
        client.predict("serving_default", {"text": []})
    assert caught.value.code == "DEADLINE_EXCEEDED", (
        "a 0-row request was answered under batching: serving/README.md's inference is wrong")
    client.classify(["releases the waiting empty request"])


def check_version_not_loaded(kind, url):
    """A version the server has not loaded (here: none that exists) answers NOT_FOUND, HTTP 404, at once
    (server_core.cc, GetServableHandle: "Servable not found"; http_server.cc, ToHTTPStatusCode), and
    the client does not retry it. A version still loading answers the same."""
    latest = max(status["version"] for status in make_client(kind, url).model_status())
    client = make_client(kind, url, version=latest + 1000, retries=3, backoff=0.01)
    with pytest.raises(ServingError) as caught:
        client.classify(["a"])
    assert caught.value.code == "NOT_FOUND" and caught.value.attempts == 1
    assert caught.value.status == (404 if kind == "rest" else None)


def test_large_and_empty_calls(client):
    check_large_and_empty_calls(client, BATCHING)


@pytest.mark.parametrize("kind", endpoints())
def test_raw_empty_request(kind):
    check_raw_empty_request(kind, None, BATCHING)


@pytest.mark.parametrize("kind", endpoints())
def test_a_version_not_loaded_answers_404_not_found(kind):
    check_version_not_loaded(kind, None)


DOCKER_SKIP = (None if DOCKER_MODELS and shutil.which("docker") else
               "needs Docker and ROBERTA_TF_SERVING_DOCKER_MODELS (a directory holding roberta_classifier/<version>/); "
               "this repository's machines have no Docker engine")


@pytest.fixture(params=[True, False], ids=["batching-on", "batching-off"])
def compose_server(request):
    """serving/docker-compose.yml started with TF_SERVING_ENABLE_BATCHING on or off; yields
    (batching_on, REST URL, gRPC target) once the model is AVAILABLE, and stops it afterwards."""
    if DOCKER_SKIP:
        pytest.skip(DOCKER_SKIP)
    batching_on = request.param
    project = f"roberta-tf-live-batching-{'on' if batching_on else 'off'}"
    env = {**os.environ, "ROBERTA_TF_MODELS_DIR": DOCKER_MODELS, "TF_SERVING_ENABLE_BATCHING": str(batching_on).lower(),
           "TF_SERVING_REST_PORT": "18501", "TF_SERVING_GRPC_PORT": "18500"}
    compose = ["docker", "compose", "-p", project]
    subprocess.run(compose + ["up", "-d"], cwd=SERVING, env=env, check=True)
    try:
        url = "http://localhost:18501"
        deadline = time.monotonic() + 300  # first load + warmup; the ports open only then
        while True:
            try:
                if any(status["state"] == "AVAILABLE" for status in RestClient(url, model_name=MODEL_NAME).model_status()):
                    break
            except ServingError:
                pass
            if time.monotonic() > deadline:
                logs = subprocess.run(compose + ["logs", "--tail", "50"], cwd=SERVING, env=env, capture_output=True, text=True)
                pytest.fail(f"no AVAILABLE version within 300 s (did the server start?):\n{logs.stdout}{logs.stderr}")
            time.sleep(2)
        yield batching_on, url, "localhost:18500"
    finally:
        subprocess.run(compose + ["down"], cwd=SERVING, env=env, check=False)


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_compose_starts_and_answers_with_batching_on_and_off(compose_server, kind):
    """Both settings start (server.cc refuses --batching_parameters_file without batching; the
    compose file passes it only with batching on), and the deployment's promises hold."""
    batching_on, rest_url, grpc_target = compose_server
    url = rest_url if kind == "rest" else grpc_target
    client = make_client(kind, url)
    check_classification(client.classify(TEXTS), len(TEXTS))
    check_large_and_empty_calls(client, batching_on)
    check_raw_empty_request(kind, url, batching_on)
    check_version_not_loaded(kind, url)
