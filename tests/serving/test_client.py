"""The TF Serving clients without a server: request bodies decoded the way TF Serving decodes them
(tests/serving/tf_serving_json.py, a transcription of the server's json_tensor.cc), gRPC requests
decoded with `tf.make_ndarray`, responses parsed in both REST forms, and the retry policy against
local stand-in servers (a ThreadingHTTPServer, a bare socket, an in-process grpc.server). Only
127.0.0.1 is contacted."""

import concurrent.futures
import http.server
import json
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tf_serving_json
from simulated_queue import SimulatedQueue
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from roberta_tf.contract import signatures as contract
from roberta_tf.serving.client import (
    INPUT_DTYPES,
    OUTPUT_DTYPES,
    GrpcClient,
    RestClient,
    ServingError,
    grpc_predict_request,
    parse_grpc_model_metadata,
    parse_grpc_model_status,
    parse_grpc_response,
    parse_rest_model_metadata,
    parse_rest_model_status,
    parse_rest_response,
    rest_request_body,
)
from roberta_tf.serving import batching
from roberta_tf.serving.rest_json import encode_body

# Every kind of text the model accepts: empty, NUL inside and at the end (numpy's `S` dtype would
# drop a trailing NUL), multi-byte and astral UTF-8, and bytes that are not UTF-8 at all.
TEXTS = ["Hello world!", "", "nul\x00inside", "\x00", "日本語のテキスト", "emoji 👨\u200d👩\u200d👧",
         b"\xff\xfe invalid", b"caf\xe9 (cp1252)", b"\xc3", b"trailing nul\x00", "é", "<s> typed </s>"]
TEXTS_BYTES = [text if isinstance(text, bytes) else text.encode("utf-8") for text in TEXTS]
PAIRS = TEXTS[::-1]
PAIRS_BYTES = TEXTS_BYTES[::-1]
TOKEN_IDS = np.array([[0, 999, 1001, 2, 1], [0, 1002, 2, 1, 1]], dtype=np.int32)
PADDING_MASK = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=np.int32)

# signature -> (inputs as a user passes them, inputs as the server must see them). Every input of
# every signature is batched on its 0-th dimension, so both REST forms carry every request.
REQUESTS = {
    "serving_default": ({"text": TEXTS}, {"text": TEXTS_BYTES}),
    "classify_pairs": ({"text_a": TEXTS, "text_b": PAIRS}, {"text_a": TEXTS_BYTES, "text_b": PAIRS_BYTES}),
    "tokenize": ({"text": TEXTS}, {"text": TEXTS_BYTES}),
    "tokenize_pairs": ({"text_a": TEXTS, "text_b": PAIRS}, {"text_a": TEXTS_BYTES, "text_b": PAIRS_BYTES}),
    "classify_token_ids": ({"token_ids": TOKEN_IDS.tolist(), "padding_mask": PADDING_MASK},
                           {"token_ids": TOKEN_IDS, "padding_mask": PADDING_MASK}),
}
REST_CASES = [(signature, form) for signature in REQUESTS for form in ("inputs", "instances")]
# signature -> {input: (dtype, rank)}: texts are [batch], ids and masks [batch, length].
INPUT_SPECS = {
    signature: {name: (dtype, 1 if dtype == "string" else 2) for name, dtype in dtypes.items()}
    for signature, dtypes in INPUT_DTYPES.items()
}


def test_contract_lists_the_five_signatures_the_exporter_implements():
    assert set(REQUESTS) == set(contract.SIGNATURES) == set(INPUT_DTYPES) == set(OUTPUT_DTYPES)
    assert contract.TOKENIZE_PAIRS == "tokenize_pairs"
    from roberta_tf.export import serving_module

    module = serving_module.ClassifierServingModule
    assert module.SIGNATURES == contract.SIGNATURES
    assert set(serving_module.TokenizerServingModule.SIGNATURES) == {"tokenize", "tokenize_pairs"}
    exported_specs = {
        name: {spec.name: (spec.dtype.name, spec.shape.rank) for spec in getattr(module, name).input_signature}
        for name in module.SIGNATURES
    }
    assert exported_specs == INPUT_SPECS
    for name in module.SIGNATURES:  # batchable: every input has a free 0-th (batch) dimension
        for spec in getattr(module, name).input_signature:
            assert spec.shape.rank >= 1 and spec.shape[0] is None, (name, spec)
    assert "tokenize_pairs: " in contract.describe() and "class_name" in contract.describe()


def assert_tensors_equal(actual, expected, dtypes):
    """Exact equality per input: strings as lists of bytes, numbers with the signature's dtype."""
    assert set(actual) == set(expected)
    for name, value in expected.items():
        if dtypes[name] == "string":
            assert actual[name].dtype == object, name
            assert actual[name].shape == (len(value),), name
            assert actual[name].tolist() == list(value), name
        else:
            assert actual[name].dtype == np.dtype(dtypes[name]), name
            np.testing.assert_array_equal(actual[name], value, err_msg=name)


# ---------------------------------------------------------------------------------------------
# REST request bodies, decoded as TF Serving decodes them.


@pytest.mark.parametrize("signature,form", REST_CASES)
def test_rest_body_decodes_to_the_inputs(signature, form):
    inputs, expected = REQUESTS[signature]
    body = encode_body(rest_request_body(signature, inputs, form=form, input_dtypes=INPUT_DTYPES[signature]))
    decoded_signature, decoded = tf_serving_json.decode_predict_request(body, INPUT_DTYPES[signature])
    assert decoded_signature == signature
    assert_tensors_equal(decoded, expected, INPUT_DTYPES[signature])


class RecordingRestClient(RestClient):
    """A RestClient whose transport records the body and answers as TF Serving would (no socket):
    predict requests, and GET .../metadata (a model of 2 classes, as OUTPUTS)."""

    def __init__(self, **kwargs):
        super().__init__("http://127.0.0.1:1", **kwargs)
        self.bodies = []
        self.gets = []

    def _request(self, url, body, signature_name):
        if body is None:
            self.gets.append(url)
            assert url.endswith("/metadata"), url
            return rest_metadata_body(signature_def_map(classes=2))
        payload = json.loads(body)
        self.bodies.append(payload)
        if "instances" in payload:
            count = len(payload["instances"])
        else:
            columns = payload["inputs"]
            count = len(columns if isinstance(columns, list) else next(iter(columns.values())))
        if signature_name in (contract.TOKENIZE, contract.TOKENIZE_PAIRS):
            outputs = {"token_ids": TOKEN_IDS[:1].repeat(count, 0), "padding_mask": PADDING_MASK[:1].repeat(count, 0)}
        else:
            outputs = {name: np.resize(value, (count,) + value.shape[1:]) for name, value in OUTPUTS.items()}
        return tf_serving_json.encode_predict_response(outputs, "instances")


# signature -> (client method, args, kwargs) that must call it with REQUESTS[signature]'s inputs.
METHOD_CALLS = {
    "serving_default": ("classify", (TEXTS,), {}),
    "classify_pairs": ("classify_pairs", (TEXTS, PAIRS), {}),
    "tokenize": ("tokenize", (TEXTS,), {}),
    "tokenize_pairs": ("tokenize", (TEXTS,), {"pairs": PAIRS}),
    "classify_token_ids": ("classify_token_ids", (TOKEN_IDS.tolist(), PADDING_MASK), {}),
}


@pytest.mark.parametrize("signature", contract.SIGNATURES)
def test_every_signature_round_trips_in_the_row_form(signature):
    """Each client method sends its signature in the `instances` form (no columnar fallback), and
    the body decodes, as TF Serving decodes it, to the tensors of the signature's dtypes and ranks."""
    method, args, kwargs = METHOD_CALLS[signature]
    client = RecordingRestClient(form="instances")
    result = getattr(client, method)(*args, **kwargs)
    (body,) = client.bodies
    assert body["signature_name"] == signature and "instances" in body and "inputs" not in body
    assert len(body["instances"]) == len(REQUESTS[signature][1][next(iter(INPUT_SPECS[signature]))])
    decoded = tf_serving_json.decode_rest_request(body, INPUT_SPECS[signature])
    assert_tensors_equal(decoded, REQUESTS[signature][1], INPUT_DTYPES[signature])
    assert set(result) == set(OUTPUT_DTYPES[signature])
    for name, value in decoded.items():
        assert value.ndim == INPUT_SPECS[signature][name][1], name


def test_generic_predict_sends_an_empty_batch_columnar():
    """`predict` sends what it is given; only the row form cannot carry 0 rows."""
    client = RecordingRestClient(form="instances")
    result = client.predict("serving_default", {"text": []})
    assert client.bodies[-1] == {"signature_name": "serving_default", "inputs": []}
    decoded = tf_serving_json.decode_rest_request(client.bodies[-1], INPUT_SPECS["serving_default"])
    assert decoded["text"].shape == (0,) and decoded["text"].dtype == object
    assert result["logits"].shape[0] == 0


def test_decode_rest_request_checks_ranks():
    specs = INPUT_SPECS["classify_token_ids"]
    decoded = tf_serving_json.decode_rest_request(
        {"instances": [{"token_ids": [0, 2], "padding_mask": [1, 1]}]}, specs)
    assert decoded["token_ids"].dtype == np.int32 and decoded["token_ids"].shape == (1, 2)
    with pytest.raises(tf_serving_json.JsonRequestError, match="rank 2"):
        tf_serving_json.decode_rest_request({"inputs": {"token_ids": [0, 2], "padding_mask": [1, 1]}}, specs)
    with pytest.raises(tf_serving_json.JsonRequestError, match="rank 2"):  # an empty batch of ids is `[]`: rank 1
        tf_serving_json.decode_rest_request({"inputs": {"token_ids": [], "padding_mask": []}}, specs)


def test_rest_body_uses_b64_exactly_for_bytes_that_are_not_utf8():
    body = rest_request_body("serving_default", {"text": TEXTS})
    for text, value in zip(TEXTS_BYTES, body["inputs"]):
        try:
            assert value == text.decode("utf-8")  # NUL included: JSON writes it as \u0000
        except UnicodeDecodeError:
            assert value.keys() == {"b64"}
    assert b"\\u0000" in encode_body(body)


def test_rest_body_shapes_follow_the_rest_document():
    one_input_rows = rest_request_body("serving_default", {"text": ["a", "b"]}, form="instances")
    assert one_input_rows == {"signature_name": "serving_default", "instances": ["a", "b"]}  # bare values
    one_input_columns = rest_request_body("serving_default", {"text": ["a", "b"]}, form="inputs")
    assert one_input_columns == {"signature_name": "serving_default", "inputs": ["a", "b"]}  # bare list
    two_input_rows = rest_request_body("classify_pairs", {"text_a": ["a"], "text_b": ["b"]}, form="instances")
    assert two_input_rows["instances"] == [{"text_a": "a", "text_b": "b"}]
    tokenize_rows = rest_request_body("tokenize", {"text": ["a"]}, form="instances")
    assert tokenize_rows == {"signature_name": "tokenize", "instances": ["a"]}
    empty_batch = rest_request_body("tokenize", {"text": []}, input_dtypes=INPUT_DTYPES["tokenize"])
    assert empty_batch["inputs"] == []


def test_rest_body_is_strict_utf8_json():
    body = encode_body(rest_request_body("serving_default", {"text": TEXTS}))
    json.loads(body.decode("utf-8"), parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


def test_row_form_refuses_what_it_cannot_carry():
    with pytest.raises(ValueError, match="form='inputs'"):
        rest_request_body("classify_pairs", {"text_a": ["a", "b"], "text_b": ["c"]}, form="instances")
    with pytest.raises(ValueError, match="empty batch"):
        rest_request_body("serving_default", {"text": []}, form="instances")
    with pytest.raises(ValueError, match="form must be one of"):
        rest_request_body("serving_default", {"text": ["a"]}, form="rows")


@pytest.mark.parametrize("body,message", [
    ({"instances": ["a"]}, "plain list"),                                              # two inputs need objects
    ({"instances": [{"text_a": "a"}]}, "keys must be equal"),                           # an input missing
    ({"inputs": {"text_a": ["a"]}}, "Missing named input"),
    ({"inputs": {"text_a": [{"b64": "YQ==", "x": 1}], "text_b": ["b"]}}, "base64"),    # b64 with extra keys
    ({"inputs": {"text_a": [1], "text_b": ["b"]}}, "expected type"),
    ({"instances": [], "signature_name": "x"}, "No values"),
    ({"inputs": {"text_a": ["a"], "text_b": ["b"]}, "instances": []}, "exactly one"),
])
def test_reference_decoder_rejects_what_tf_serving_rejects(body, message):
    with pytest.raises(tf_serving_json.JsonRequestError, match=message):
        tf_serving_json.decode_predict_request(body, INPUT_DTYPES["classify_pairs"])


def test_reference_decoder_rejects_booleans_and_ragged_rows_for_int32():
    dtypes = INPUT_DTYPES["classify_token_ids"]
    with pytest.raises(tf_serving_json.JsonRequestError, match="expected type"):
        tf_serving_json.decode_predict_request({"inputs": {"token_ids": [[True]], "padding_mask": [[1]]}}, dtypes)
    with pytest.raises(tf_serving_json.JsonRequestError, match="unexpected size"):
        tf_serving_json.decode_predict_request({"inputs": {"token_ids": [[1, 2], [3]], "padding_mask": [[1]]}}, dtypes)


# ---------------------------------------------------------------------------------------------
# gRPC requests, decoded with tf.make_ndarray.


@pytest.mark.parametrize("signature", list(REQUESTS))
def test_grpc_request_decodes_to_the_inputs(signature):
    inputs, expected = REQUESTS[signature]
    request = grpc_predict_request("roberta_classifier", signature, inputs, input_dtypes=INPUT_DTYPES[signature])
    assert request.model_spec.name == "roberta_classifier"
    assert request.model_spec.signature_name == signature
    assert not request.model_spec.HasField("version")
    decoded = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    assert_tensors_equal(decoded, expected, INPUT_DTYPES[signature])
    for name, proto in request.inputs.items():
        assert proto.dtype == tf.as_dtype(INPUT_DTYPES[signature][name]).as_datatype_enum, name


def test_grpc_request_carries_the_version_and_an_empty_batch():
    request = grpc_predict_request("m", "tokenize", {"text": []}, version=7, input_dtypes=INPUT_DTYPES["tokenize"])
    assert request.model_spec.version.value == 7
    text = request.inputs["text"]
    assert text.dtype == tf.string.as_datatype_enum  # from the contract: `[]` alone would be float
    assert [dim.size for dim in text.tensor_shape.dim] == [0]


# ---------------------------------------------------------------------------------------------
# Responses.

OUTPUTS = {
    "logits": np.array([[1.5, -2.25], [0.1, 3e-8], [-1e30, 7.0]], dtype=np.float32),
    "probabilities": np.array([[0.9706877, 0.0293122], [0.4750208, 0.5249792], [0.0, 1.0]], dtype=np.float32),
    "class_id": np.array([0, 1, 1], dtype=np.int32),
    "class_name": np.array([b"positive", b"n\xe9gatif (cp1252)", "日本".encode("utf-8")], dtype=object),
}


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_response_parses_both_forms_exactly(form):
    body = tf_serving_json.encode_predict_response(OUTPUTS, form)  # raw invalid UTF-8 in the body, as TF Serving writes it
    parsed = parse_rest_response(body, OUTPUT_DTYPES["serving_default"])
    assert set(parsed) == set(OUTPUTS)
    for name, expected in OUTPUTS.items():
        assert parsed[name].dtype == expected.dtype, name
        assert parsed[name].tolist() == expected.tolist(), name  # floats exact: 9 digits round-trip float32


def test_rest_response_single_output_bytes_suffix_and_special_floats():
    rows = tf_serving_json.encode_predict_response({"blob_bytes": np.array([b"\x00\xff", b""], dtype=object)}, "instances")
    assert json.loads(rows) == {"predictions": [{"b64": "AP8="}, {"b64": ""}]}
    assert parse_rest_response(rows, single_output_name="blob_bytes")["blob_bytes"].tolist() == [b"\x00\xff", b""]
    columns = b'{"outputs": [[NaN, Infinity], [-Infinity, 1.0]]}'
    parsed = parse_rest_response(columns, {"scores": "float32"})["scores"]
    assert parsed.dtype == np.float32 and np.isnan(parsed[0, 0]) and parsed[0, 1] == np.inf and parsed[1, 0] == -np.inf


def test_rest_response_without_dtypes_infers_them():
    parsed = parse_rest_response({"outputs": {"ids": [[1, 2]], "score": [0.5], "name": ["x"]}})
    assert parsed["ids"].dtype == np.int64 and parsed["score"].dtype == np.float64
    assert parsed["name"].tolist() == [b"x"]


def test_rest_response_error_field_raises():
    with pytest.raises(ServingError, match="Servable not found") as caught:
        parse_rest_response(b'{ "error": "Servable not found for request: Latest(nope)" }')
    assert caught.value.message == "Servable not found for request: Latest(nope)"
    with pytest.raises(ServingError, match="neither"):
        parse_rest_response({"result": []})


def test_grpc_response_parses():
    response = predict_pb2.PredictResponse()
    for name, value in OUTPUTS.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    parsed = parse_grpc_response(response)
    for name, expected in OUTPUTS.items():
        assert parsed[name].dtype == expected.dtype, name
        assert parsed[name].tolist() == expected.tolist(), name


STATUS_JSON = b"""{"model_version_status": [
  {"version": "3", "state": "LOADING", "status": {"error_code": "OK", "error_message": ""}},
  {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}"""
EXPECTED_STATUS = [{"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""},
                   {"version": 3, "state": "LOADING", "error_code": "OK", "error_message": ""}]


def status_proto():
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state in ((3, "LOADING"), (2, "AVAILABLE")):
        entry = response.model_version_status.add(version=version)
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
    return response


def test_model_status_parses_from_rest_and_grpc_alike():
    assert parse_rest_model_status(STATUS_JSON) == EXPECTED_STATUS
    assert parse_grpc_model_status(status_proto()) == EXPECTED_STATUS


# ---------------------------------------------------------------------------------------------
# RestClient against local stand-in servers.


class RecordedCalls(list):
    def __init__(self):
        super().__init__()
        self.headers = []


def _serve(servers, handler_class):
    """Starts a local HTTP server for `handler_class` (added to `servers`); returns its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_address[1]}"


def _stop(servers):
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rest_server():
    """`rest_server(respond)` -> (base_url, calls); `respond(method, path, body)` -> (status, bytes) or
    (status, bytes, headers); `calls` holds (method, path, body) and `calls.headers` each request's headers."""
    servers = []

    def start(respond):
        calls = RecordedCalls()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                calls.append((self.command, self.path, body))
                calls.headers.append(dict(self.headers))
                status, payload, *headers = respond(self.command, self.path, body)
                self.send_response(status)
                for name, value in (headers[0] if headers else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        return _serve(servers, Handler), calls

    yield start
    _stop(servers)


def classification_body(count=2, form="inputs"):
    outputs = {name: value[:count] for name, value in OUTPUTS.items()}
    return tf_serving_json.encode_predict_response(outputs, form)


def fail_then_answer(failures, status=503):
    state = {"calls": 0}

    def respond(method, path, body):
        state["calls"] += 1
        if state["calls"] <= failures:
            return status, b'{ "error": "The batch scheduling queue to which this task was submitted is full" }'
        return 200, classification_body()

    return respond


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_rest_client_retries_503_then_answers(rest_server):
    url, calls = rest_server(fail_then_answer(2))
    result = RestClient(url, retries=3, backoff=0.01).classify(["a", b"\xff"])
    assert len(calls) == 3
    assert result["class_name"].tolist() == ["positive", "n\ufffdgatif (cp1252)"]  # str, invalid bytes replaced
    assert result["class_id"].dtype == np.int32 and result["logits"].dtype == np.float32


def test_rest_client_retries_429(rest_server):
    url, calls = rest_server(fail_then_answer(1, status=429))
    RestClient(url, backoff=0.01).classify(["a", "b"])
    assert len(calls) == 2


def test_rest_client_gives_up_after_the_retries(rest_server):
    url, calls = rest_server(fail_then_answer(100))
    with pytest.raises(ServingError) as caught:
        RestClient(url, retries=2, backoff=0.01).classify(["a"])
    assert len(calls) == 3
    error = caught.value
    assert (error.code, error.status, error.attempts, error.retryable) == ("UNAVAILABLE", 503, 3, True)
    assert "after 3 attempts" in str(error) and "queue" in str(error)


def test_rest_client_does_not_retry_a_bad_request(rest_server):
    message = "Missing named input: text_b in 'inputs' object."
    url, calls = rest_server(lambda *_: (400, json.dumps({"error": message}).encode()))
    with pytest.raises(ServingError) as caught:
        RestClient(url, backoff=0.01).classify_pairs(["a"], ["b"])
    assert len(calls) == 1
    error = caught.value
    assert (error.code, error.status, error.message, error.attempts) == ("INVALID_ARGUMENT", 400, message, 1)
    for part in (url + "/v1/models/roberta_classifier:predict", "roberta_classifier", "classify_pairs", message):
        assert part in str(error)


def test_rest_client_reports_a_proxy_page_that_is_not_json(rest_server):
    url, calls = rest_server(lambda *_: (502, b"<html>Bad Gateway</html>"))
    with pytest.raises(ServingError, match="Bad Gateway") as caught:
        RestClient(url, backoff=0.01).classify(["a"])
    assert (caught.value.status, caught.value.code, len(calls)) == (502, "UNKNOWN", 1)


def test_rest_client_times_out_on_a_stalled_server():
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        start = time.monotonic()
        with pytest.raises(ServingError) as caught:
            RestClient(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.5, retries=3).classify(["a"])
        elapsed = time.monotonic() - start
    assert caught.value.code == "DEADLINE_EXCEEDED" and caught.value.attempts == 1
    assert 0.4 < elapsed < 1.5  # one timeout, not one per retry


def test_rest_client_connection_refused_retries_quickly_then_fails():
    start = time.monotonic()
    with pytest.raises(ServingError) as caught:
        RestClient(f"http://127.0.0.1:{closed_port()}", retries=2, backoff=0.01).model_status()
    assert time.monotonic() - start < 2
    assert (caught.value.code, caught.value.attempts, caught.value.retryable) == ("UNAVAILABLE", 3, True)
    assert "Connection" in caught.value.message


def test_rest_client_requests(rest_server):
    def respond(method, path, body):
        if method == "GET":
            return 200, STATUS_JSON
        signature = json.loads(body)["signature_name"]
        if signature in ("tokenize", "tokenize_pairs"):
            return 200, tf_serving_json.encode_predict_response({"token_ids": TOKEN_IDS, "padding_mask": PADDING_MASK}, "inputs")
        return 200, classification_body()

    url, calls = rest_server(respond)
    client = RestClient(url + "/", model_name="sst2", version=3, form="instances")
    assert client.model_status() == EXPECTED_STATUS
    assert calls[-1][:2] == ("GET", "/v1/models/sst2/versions/3")
    client.classify(["a", b"\xff"])
    assert calls[-1][1] == "/v1/models/sst2/versions/3:predict"
    assert json.loads(calls[-1][2]) == {"signature_name": "serving_default", "instances": ["a", {"b64": "/w=="}]}
    tokens = client.tokenize(["a", "b"])
    assert json.loads(calls[-1][2]) == {"signature_name": "tokenize", "instances": ["a", "b"]}
    np.testing.assert_array_equal(tokens["token_ids"], TOKEN_IDS)
    client.tokenize(["a", "b"], pairs=["c", "d"])
    assert json.loads(calls[-1][2]) == {"signature_name": "tokenize_pairs",
                                        "instances": [{"text_a": "a", "text_b": "c"}, {"text_a": "b", "text_b": "d"}]}
    client.classify_token_ids(TOKEN_IDS, PADDING_MASK)
    assert json.loads(calls[-1][2])["instances"][0] == {"token_ids": TOKEN_IDS[0].tolist(),
                                                        "padding_mask": PADDING_MASK[0].tolist()}
    client.classify_token_ids(TOKEN_IDS, PADDING_MASK, pad_to=8)  # pad id 1, mask 0
    assert json.loads(calls[-1][2])["instances"][1] == {"token_ids": [0, 1002, 2, 1, 1, 1, 1, 1],
                                                        "padding_mask": [1, 1, 1, 0, 0, 0, 0, 0]}


def test_client_methods_validate_arguments_before_sending():
    client = RestClient(f"http://127.0.0.1:{closed_port()}", retries=0)
    with pytest.raises(TypeError, match="wrap it in a list"):
        client.classify("one text")
    with pytest.raises(ValueError, match="same length"):
        client.classify_pairs(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="same length"):
        client.tokenize(["a", "b"], pairs=["c"])
    with pytest.raises(ValueError, match="same shape"):
        client.classify_token_ids(TOKEN_IDS, PADDING_MASK[:, :3])
    with pytest.raises(ValueError, match="pad_to must be at least"):
        client.classify_token_ids(TOKEN_IDS, PADDING_MASK, pad_to=4)
    with pytest.raises(TypeError, match="integers"):
        client.classify_token_ids(TOKEN_IDS.astype(np.float32), PADDING_MASK)
    with pytest.raises(TypeError, match="str or bytes"):
        client.classify(["a", 3])
    with pytest.raises(ValueError, match="form must be"):
        RestClient("http://localhost:8501", form="rows")


# ---------------------------------------------------------------------------------------------
# RestClient hardening (issue 11): one deadline per call, a response size limit, no redirects,
# credentials in the URL never shown.


@pytest.fixture
def raw_server():
    """`raw_server(handle)` -> base_url of a ThreadingHTTPServer whose handler calls `handle(handler)`
    for every GET and POST (after reading the request body); write errors are ignored."""
    servers = []

    def start(handle):
        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    handle(self)
                except OSError:
                    pass

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        return _serve(servers, Handler)

    yield start
    _stop(servers)


def trickle(handler, data, interval=0.1):
    for byte in data:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(interval)


def trickle_body(handler):
    body = classification_body(1)
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.flush()
    trickle(handler, body)


def trickle_headers(handler):
    handler.wfile.write(b"HTTP/1.0 200 OK\r\n")
    trickle(handler, b"X-Slow: " + b"x" * 60 + b"\r\n\r\n{}")


@pytest.mark.parametrize("handle", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_rest_client_timeout_is_one_deadline_for_the_whole_call(raw_server, handle):
    """1 byte every 0.1 s: every read returns well within the timeout, only a deadline stops it."""
    url = raw_server(handle)
    start = time.monotonic()
    with pytest.raises(ServingError) as caught:
        RestClient(url, timeout=1, retries=3).classify(["a"])
    elapsed = time.monotonic() - start
    assert caught.value.code == "DEADLINE_EXCEEDED" and caught.value.attempts == 1
    assert "1 s" in caught.value.message
    assert 0.9 < elapsed < 1.6


def test_rest_client_retries_stop_at_the_deadline(rest_server):
    url, calls = rest_server(fail_then_answer(100))
    start = time.monotonic()
    with pytest.raises(ServingError) as caught:
        RestClient(url, timeout=1, retries=3, backoff=0.5).classify(["a"])  # backoff alone: 1.75-3.5 s
    assert time.monotonic() - start < 1.3
    assert caught.value.code == "UNAVAILABLE" and caught.value.attempts == len(calls) < 4


def test_rest_client_default_response_limit_is_generous():
    assert RestClient("http://localhost:8501").max_response_bytes >= 64 * 2**20


def oversized_answer(size, content_length):
    def handle(handler):
        handler.protocol_version = "HTTP/1.0"  # without Content-Length the body ends at close
        handler.send_response(200)
        if content_length:
            handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.write(b" " * size)

    return handle


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "streamed"])
def test_rest_client_refuses_an_oversized_response(raw_server, content_length):
    url = raw_server(oversized_answer(200_000, content_length))
    with pytest.raises(ServingError) as caught:
        RestClient(url, max_response_bytes=1000, retries=3, backoff=0.01).classify(["a"])
    error = caught.value
    assert error.code == "RESOURCE_EXHAUSTED" and error.attempts == 1 and not error.retryable
    assert "1000 bytes" in error.message and "max_response_bytes" in error.message


def test_rest_client_reads_a_large_error_body_only_up_to_the_limit(raw_server):
    def handle(handler):
        handler.send_response(400)
        handler.send_header("Content-Length", str(10_000_000))
        handler.end_headers()
        handler.wfile.write(b'{"error": "' + b"x" * 9_999_980 + b'"}')

    with pytest.raises(ServingError) as caught:
        RestClient(raw_server(handle), max_response_bytes=1000).classify(["a"])
    assert caught.value.status == 400 and len(caught.value.message) < 2000


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_rest_client_does_not_follow_a_redirect(rest_server, status):
    other, other_calls = rest_server(lambda *_: (200, classification_body(1)))
    target = other + "/v1/models/roberta_classifier:predict"
    url, calls = rest_server(lambda *_: (status, b"", {"Location": target}))
    client = RestClient(url, retries=3, backoff=0.01)
    with pytest.raises(ServingError) as caught:
        client.classify(["a"])
    error = caught.value
    assert other_calls == [] and len(calls) == 1
    assert error.status == status and error.attempts == 1
    assert "redirect" in error.message and target in error.message
    with pytest.raises(ServingError, match="redirect"):
        client.model_status()
    assert other_calls == []


def assert_no_password(error, password="s3cret"):
    for text in (str(error), repr(error), error.message, error.endpoint, *map(str, error.args)):
        assert password not in text, text


def test_rest_client_redacts_url_credentials_in_errors():
    port = closed_port()
    client = RestClient(f"http://user:s3cret@127.0.0.1:{port}", retries=0)
    assert "s3cret" not in client.base_url and "s3cret" not in repr(vars(client).get("base_url"))
    with pytest.raises(ServingError) as caught:
        client.classify(["a"])
    assert_no_password(caught.value)
    assert caught.value.endpoint == f"http://user:***@127.0.0.1:{port}/v1/models/roberta_classifier:predict"
    assert caught.value.code == "UNAVAILABLE"


def test_rest_client_sends_url_credentials_as_basic_auth_and_hides_them(rest_server):
    url, calls = rest_server(lambda *_: (400, b'{"error": "bad"}'))
    secret_url = url.replace("http://", "http://user:s3cret@")
    with pytest.raises(ServingError) as caught:
        RestClient(secret_url).classify(["a"])
    assert_no_password(caught.value)
    assert "user:***@127.0.0.1" in str(caught.value)
    assert calls.headers[0]["Authorization"] == "Basic dXNlcjpzM2NyZXQ="  # base64("user:s3cret")


def test_rest_client_redacts_credentials_in_a_redirect_target(rest_server):
    url, _ = rest_server(lambda *_: (302, b"", {"Location": "http://admin:s3cret@elsewhere.invalid/x"}))
    with pytest.raises(ServingError) as caught:
        RestClient(url).classify(["a"])
    assert_no_password(caught.value)
    assert "http://admin:***@elsewhere.invalid/x" in caught.value.message


def test_serving_error_redacts_credentials_it_is_given():
    error = ServingError("failed at https://u:s3cret@h:1/x and http://tok3n@h/", endpoint="http://u:s3cret@h:1/x")
    assert error.endpoint == "http://u:***@h:1/x"
    assert "s3cret" not in str(error) and "tok3n" not in str(error) and "s3cret" not in error.message
    assert "http://***@h/" in error.message


# ---------------------------------------------------------------------------------------------
# GrpcClient against an in-process gRPC server.


@pytest.fixture
def grpc_server():
    """`grpc_server(predict=None, status=None, metadata=None)` -> (target, calls); handlers get
    (request, context)."""
    servers = []

    def start(predict=None, status=None, metadata=None):
        calls = []

        class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
            def Predict(self, request, context):
                calls.append(request)
                return predict(request, context)

            def GetModelMetadata(self, request, context):
                calls.append(request)
                return metadata(request, context)

        class Models(model_service_pb2_grpc.ModelServiceServicer):
            def GetModelStatus(self, request, context):
                calls.append(request)
                return status(request, context)

        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", calls

    yield start
    for server in servers:
        server.stop(None)


def classification_response():
    response = predict_pb2.PredictResponse()
    for name, value in OUTPUTS.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value[:2]))
    return response


def test_grpc_client_retries_unavailable_then_answers(grpc_server):
    state = {"calls": 0}

    def predict(request, context):
        state["calls"] += 1
        if state["calls"] <= 2:
            context.abort(grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue is full")
        return classification_response()

    target, calls = grpc_server(predict=predict)
    with GrpcClient(target, model_name="sst2", version=4, backoff=0.01) as client:
        result = client.classify(["a", b"\xff"])
    assert len(calls) == 3
    request = calls[-1]
    assert (request.model_spec.name, request.model_spec.version.value, request.model_spec.signature_name) == (
        "sst2", 4, "serving_default")
    assert tf.make_ndarray(request.inputs["text"]).tolist() == [b"a", b"\xff"]
    assert result["class_name"].tolist() == ["positive", "n\ufffdgatif (cp1252)"]
    np.testing.assert_array_equal(result["logits"], OUTPUTS["logits"][:2])


def test_grpc_client_does_not_retry_invalid_argument(grpc_server):
    message = "Expects arg[0] to be string but int32 is provided"
    target, calls = grpc_server(predict=lambda request, context: context.abort(grpc.StatusCode.INVALID_ARGUMENT, message))
    with GrpcClient(target, backoff=0.01) as client, pytest.raises(ServingError) as caught:
        client.tokenize(["a"])
    assert len(calls) == 1
    error = caught.value
    assert (error.code, error.message, error.status, error.attempts) == ("INVALID_ARGUMENT", message, None, 1)
    assert target in str(error) and "tokenize" in str(error)


def test_grpc_client_does_not_retry_an_expired_deadline(grpc_server):
    release = threading.Event()

    def stall(request, context):
        release.wait(5)
        return classification_response()

    target, calls = grpc_server(predict=stall)
    start = time.monotonic()
    try:
        with GrpcClient(target, timeout=0.3, backoff=0.01) as client, pytest.raises(ServingError) as caught:
            client.classify(["a"])
    finally:
        release.set()
    assert caught.value.code == "DEADLINE_EXCEEDED" and len(calls) == 1
    assert time.monotonic() - start < 1.5


def test_grpc_client_model_status(grpc_server):
    target, calls = grpc_server(status=lambda request, context: status_proto())
    with GrpcClient(target) as client:
        assert client.model_status() == EXPECTED_STATUS
    assert calls[-1].model_spec.name == "roberta_classifier" and not calls[-1].model_spec.HasField("version")


def test_grpc_client_connection_refused_retries_quickly_then_fails():
    start = time.monotonic()
    with GrpcClient(f"127.0.0.1:{closed_port()}", retries=2, backoff=0.01) as client:
        with pytest.raises(ServingError) as caught:
            client.classify(["a"])
    assert (caught.value.code, caught.value.attempts) == ("UNAVAILABLE", 3)
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------------------
# Model metadata: what the clients read the number of classes from.


def signature_def_map(classes):
    """The SignatureDefMap TF Serving reports for an export of the contract with `classes` classes
    (the real export's is checked in test_client_with_saved_model.py)."""
    sizes = {"batch": -1, "length": -1, "classes": classes}
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in contract.CONTRACT.items():
        signature_def = signatures.signature_def[name]
        signature_def.method_name = "tensorflow/serving/predict"
        for role, specs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            for spec in specs:
                info = getattr(signature_def, role)[spec.name]
                info.name = f"{role}_{spec.name}:0"
                info.dtype = tf.as_dtype(spec.dtype).as_datatype_enum
                for dimension in spec.shape:
                    info.tensor_shape.dim.add(size=sizes[dimension])
    return signatures


def rest_metadata_body(signatures):
    return tf_serving_json.encode_model_metadata(signatures, "roberta_classifier")


def grpc_metadata_response(signatures):
    """GetModelMetadata's answer (servables/tensorflow/get_model_metadata_impl.cc: the map packed
    into an Any under "signature_def")."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.metadata["signature_def"].Pack(signatures)
    return response


def test_model_metadata_parses_from_rest_and_grpc_alike():
    signatures = signature_def_map(classes=3)
    from_rest = parse_rest_model_metadata(rest_metadata_body(signatures))
    assert from_rest == parse_grpc_model_metadata(grpc_metadata_response(signatures))
    assert set(from_rest) == set(contract.SIGNATURES)
    assert from_rest["classify_pairs"]["outputs"]["logits"] == {"dtype": "DT_FLOAT", "shape": [None, 3]}
    assert from_rest["tokenize"]["inputs"]["text"] == {"dtype": "DT_STRING", "shape": [None]}
    assert from_rest["classify_token_ids"]["outputs"]["class_id"] == {"dtype": "DT_INT32", "shape": [None]}


# ---------------------------------------------------------------------------------------------
# Empty batches are answered by the client, never sent: with batching on, TF Serving 2.19.0 lets
# a 0-row request wait for another request (inferred from the source, not observed):
# batching_session.cc, BatchingSession::InternalRun schedules it and waits on `done` without a
# timeout; shared_batch_scheduler.h, Queue::PeekBatchPriorityImpl never makes an open batch of
# 0 rows schedulable, so only a later request of the same signature closes that batch.

# method, arguments of an empty call, and the shapes the SavedModel answers (C = 2 classes):
# packer.py makes an empty "longest" batch num_special wide.
EMPTY_CALLS = {
    "serving_default": ("classify", ([],), {"logits": (0, 2), "probabilities": (0, 2), "class_id": (0,),
                                             "class_name": (0,)}),
    "classify_pairs": ("classify_pairs", ([], []), {"logits": (0, 2), "probabilities": (0, 2), "class_id": (0,),
                                                    "class_name": (0,)}),
    "tokenize": ("tokenize", ([],), {"token_ids": (0, 2), "padding_mask": (0, 2)}),
    "tokenize_pairs": ("tokenize", ([], []), {"token_ids": (0, 4), "padding_mask": (0, 4)}),
    "classify_token_ids": ("classify_token_ids", (np.zeros([0, 7], np.int32), np.zeros([0, 7], np.int32)),
                           {"logits": (0, 2), "probabilities": (0, 2), "class_id": (0,), "class_name": (0,)}),
}


def check_empty_answers(client):
    for signature, (method, args, shapes) in EMPTY_CALLS.items():
        result = getattr(client, method)(*args)
        assert {name: value.shape for name, value in result.items()} == shapes, signature
        for name, value in result.items():
            dtype = OUTPUT_DTYPES[signature][name]
            expected = object if dtype == "string" else np.dtype(dtype)
            assert value.dtype == expected, (signature, name)


def test_rest_client_answers_empty_batches_without_a_request():
    client = RecordingRestClient(form="instances")
    check_empty_answers(client)
    check_empty_answers(client)
    assert client.bodies == []  # no predict request
    assert client.gets == [client.model_url + "/metadata"]  # read once, for the number of classes


def test_grpc_client_answers_empty_batches_without_a_request(grpc_server):
    target, calls = grpc_server(predict=lambda request, context: pytest.fail("an empty request was sent"),
                                metadata=lambda request, context: grpc_metadata_response(signature_def_map(2)))
    with GrpcClient(target, model_name="sst2", version=4) as client:
        check_empty_answers(client)
        check_empty_answers(client)
    (request,) = calls
    assert isinstance(request, get_model_metadata_pb2.GetModelMetadataRequest)
    assert (request.model_spec.name, request.model_spec.version.value, list(request.metadata_field)) == (
        "sst2", 4, ["signature_def"])


def test_an_empty_batch_needs_a_known_number_of_classes():
    client = RecordingRestClient()
    client._request = lambda url, body, signature: rest_metadata_body(signature_def_map(classes=-1))
    with pytest.raises(ServingError, match="no number of classes") as caught:
        client.classify([])
    assert caught.value.code == "FAILED_PRECONDITION"
    assert client.tokenize([])["token_ids"].shape == (0, 2)  # needs no metadata


# ---------------------------------------------------------------------------------------------
# Large calls are split into requests the server admits and answered as one.


def fake_model(signature, inputs):
    """A served model whose answers identify each row: text b"i" (or ids with i in column 1) ->
    logits [i, -i], class i % 2; tokenize -> 2 + i % 5 tokens, padded to the request's longest row."""
    first = inputs[next(iter(INPUT_DTYPES[signature]))]  # text, text_a or token_ids
    ids = first[:, 1] if first.ndim == 2 else np.array([int(text) for text in first])
    if signature in (contract.TOKENIZE, contract.TOKENIZE_PAIRS):
        lengths = 2 + ids % 5
        width = lengths.max()
        mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
        token_ids = np.where(mask == 1, 10 + ids[:, None], 1).astype(np.int32)
        token_ids[:, 0] = 0
        return {"token_ids": token_ids, "padding_mask": mask}
    logits = np.stack([ids, -ids], axis=1).astype(np.float32)
    return {"logits": logits, "probabilities": logits / 1000, "class_id": (ids % 2).astype(np.int32),
            "class_name": np.array([b"odd" if i % 2 else b"even" for i in ids], dtype=object)}


ROWS = 2 * batching.MAX_REQUEST_ROWS + 3  # three requests: 96, 96 and 3 rows
SPLIT_TEXTS = [str(i) for i in range(ROWS)]
SPLIT_IDS = np.stack([np.zeros(ROWS), np.arange(ROWS), np.full(ROWS, 2)], axis=1).astype(np.int32)
SPLIT_CALLS = {
    "serving_default": ("classify", (SPLIT_TEXTS,), {}),
    "classify_pairs": ("classify_pairs", (SPLIT_TEXTS, SPLIT_TEXTS[::-1]), {}),
    "tokenize": ("tokenize", (SPLIT_TEXTS,), {}),
    "tokenize_pairs": ("tokenize", (SPLIT_TEXTS,), {"pairs": SPLIT_TEXTS[::-1]}),
    "classify_token_ids": ("classify_token_ids", (SPLIT_IDS, np.ones_like(SPLIT_IDS)), {}),
}


def served_by_fake_model(signature, arrays, sizes):
    """Records the request's rows and whether an idle queue with the configured batching
    parameters admits it (tests/serving/simulated_queue.py), then answers like `fake_model`."""
    rows = len(next(iter(arrays.values())))
    queue = SimulatedQueue(batching.MAX_BATCH_SIZE, batching.MAX_EXECUTION_BATCH_SIZE, batching.MAX_ENQUEUED_BATCHES)
    sizes.append((rows, queue.schedule(rows)))
    return fake_model(signature, arrays)


def split_client(kind, rest_server, grpc_server, sizes):
    if kind == "grpc":
        def predict(request, context):
            arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for name, value in served_by_fake_model(request.model_spec.signature_name, arrays, sizes).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

        return GrpcClient(grpc_server(predict=predict)[0], backoff=0.01)

    def respond(method, path, body):
        request = json.loads(body)
        signature = request["signature_name"]
        arrays = tf_serving_json.decode_rest_request(request, INPUT_SPECS[signature])
        outputs = served_by_fake_model(signature, arrays, sizes)
        form = "instances" if "instances" in request else "inputs"
        return 200, tf_serving_json.encode_predict_response(outputs, form)

    return RestClient(rest_server(respond)[0], backoff=0.01, form=kind.split("-")[1])


@pytest.mark.parametrize("kind", ["rest-inputs", "rest-instances", "grpc"])
@pytest.mark.parametrize("signature", contract.SIGNATURES)
def test_large_calls_are_split_into_admitted_requests_and_joined_in_order(kind, signature, rest_server, grpc_server):
    """TF Serving refuses a request larger than the queue's free space whole (shared_batch_scheduler.h,
    Queue::ValidateBatchTaskQueueCapacity), so a client call of ROWS rows goes as consecutive
    requests of at most MAX_REQUEST_ROWS, each admitted by an idle queue, and the answers join
    into exactly the unsplit answer (tokenize rows re-padded to the longest, pad id 1, mask 0)."""
    sizes = []
    client = split_client(kind, rest_server, grpc_server, sizes)
    method, args, kwargs = SPLIT_CALLS[signature]
    result = getattr(client, method)(*args, **kwargs)
    assert sizes == [(batching.MAX_REQUEST_ROWS, "OK"), (batching.MAX_REQUEST_ROWS, "OK"), (3, "OK")]
    inputs = {name: np.asarray(value) for name, value in zip(INPUT_DTYPES[signature], args + tuple(kwargs.values()))}
    expected = fake_model(signature, {name: tensors_of(value) for name, value in inputs.items()})
    assert set(result) == set(expected)
    for name, value in expected.items():
        if value.dtype == object:
            value = np.array([item.decode() for item in value], dtype=object)
        assert result[name].dtype == value.dtype, name
        np.testing.assert_array_equal(result[name], value, err_msg=name)


def tensors_of(value):
    return np.array([item.encode() for item in value], dtype=object) if value.dtype.kind == "U" else value


def test_tokenize_chunks_of_different_widths_are_padded_to_the_widest():
    """The fake model pads each request to its own longest row: texts 4, 0, 1 (6, 2, 3 tokens) give
    width 6, then texts 2, 3, 5 (4, 5, 2 tokens) width 5; joined, every row is 6 wide."""
    client = RecordingRestClient(max_request_rows=3)
    widths = []

    def request(url, body, signature_name):
        arrays = tf_serving_json.decode_rest_request(json.loads(body), INPUT_SPECS[signature_name])
        outputs = fake_model(signature_name, arrays)
        widths.append(outputs["token_ids"].shape[1])
        return tf_serving_json.encode_predict_response(outputs, "inputs")

    client._request = request
    tokens = client.tokenize(["4", "0", "1", "2", "3", "5"])
    assert widths == [6, 5]
    assert tokens["token_ids"].shape == tokens["padding_mask"].shape == (6, 6)
    assert tokens["token_ids"][4].tolist() == [0, 13, 13, 13, 13, 1]  # text 3: 5 tokens, padded with id 1
    assert tokens["padding_mask"][4].tolist() == [1, 1, 1, 1, 1, 0]  # ... and mask 0
    assert tokens["token_ids"][5].tolist() == [0, 15, 1, 1, 1, 1]


def test_max_request_rows_is_checked_and_used():
    with pytest.raises(ValueError, match="max_request_rows"):
        RestClient("http://localhost:8501", max_request_rows=0)
    client = RecordingRestClient(max_request_rows=5)
    assert client.classify(["1"] * 12)["logits"].shape[0] == 12
    assert [len(body["inputs"]) for body in client.bodies] == [5, 5, 2]
    assert RestClient("http://localhost:8501").max_request_rows == batching.MAX_REQUEST_ROWS


# ---------------------------------------------------------------------------------------------
# Status codes and retries, per TF Serving's own mapping.

# tensorflow_serving/model_servers/http_server.cc (2.19.0), ToHTTPStatusCode: the HTTP status the
# REST API answers for each status code.
HTTP_STATUS_OF = {
    "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
    "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503,
    "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}
# Statuses several codes share come back under one name (the REST body does not carry the code).
REST_NAME_OF_SHARED_STATUS = {400: "INVALID_ARGUMENT", 409: "ABORTED", 500: "INTERNAL"}
# Worth another attempt: the queue drains (UNAVAILABLE: shared_batch_scheduler.h, "queue is full"),
# a request's run timeout passed while queued (RESOURCE_EXHAUSTED: batching_session.cc,
# ProcessBatch). Bad input (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE) and NOT_FOUND
# (unknown, or not loaded yet) answer the same again.
RETRIED = {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


@pytest.mark.parametrize("code", sorted(HTTP_STATUS_OF))
def test_rest_status_mapping_and_retries_follow_tf_serving(rest_server, code):
    status = HTTP_STATUS_OF[code]
    url, calls = rest_server(lambda *_: (status, json.dumps({"error": f"something {code}"}).encode()))
    with pytest.raises(ServingError) as caught:
        RestClient(url, retries=2, backoff=0.001).classify(["a"])
    error = caught.value
    attempts = 3 if code in RETRIED else 1
    assert (len(calls), error.attempts, error.retryable) == (attempts, attempts, code in RETRIED)
    assert (error.status, error.code, error.message) == (
        status, REST_NAME_OF_SHARED_STATUS.get(status, code), f"something {code}")


@pytest.mark.parametrize("code", [code for code in grpc.StatusCode if code != grpc.StatusCode.OK],
                         ids=lambda code: code.name)
def test_grpc_retries_follow_the_status_code(grpc_server, code):
    target, calls = grpc_server(predict=lambda request, context: context.abort(code, f"something {code.name}"))
    with GrpcClient(target, retries=2, backoff=0.001) as client, pytest.raises(ServingError) as caught:
        client.classify(["a"])
    error = caught.value
    attempts = 3 if code.name in RETRIED else 1
    assert (len(calls), error.attempts, error.retryable) == (attempts, attempts, code.name in RETRIED)
    assert (error.code, error.status, error.message) == (code.name, None, f"something {code.name}")
