"""The clients against a running TF Serving with an exported roberta_tf classifier.

Skipped unless a server is named (serving/README.md shows how to start one):
    ROBERTA_TF_SERVING_URL=http://localhost:8501   REST base URL
    ROBERTA_TF_SERVING_GRPC=localhost:8500         gRPC target
    ROBERTA_TF_SERVING_MODEL=roberta_classifier    model name (default)
Every check runs on each named endpoint; the REST/gRPC agreement test needs both.
"""

import os

import numpy as np
import pytest

from roberta_tf.serving.client import DEFAULT_MODEL_NAME, RestClient

REST_URL = os.environ.get("ROBERTA_TF_SERVING_URL")
GRPC_TARGET = os.environ.get("ROBERTA_TF_SERVING_GRPC")
MODEL_NAME = os.environ.get("ROBERTA_TF_SERVING_MODEL", DEFAULT_MODEL_NAME)
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


def make_client(kind, **kwargs):
    if kind == "rest":
        return RestClient(REST_URL, model_name=MODEL_NAME, timeout=60.0, **kwargs)
    from roberta_tf.serving.client import GrpcClient

    return GrpcClient(GRPC_TARGET, model_name=MODEL_NAME, timeout=60.0, **kwargs)


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
