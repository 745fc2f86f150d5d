"""The clients against a real exported SavedModel behind stand-ins that decode requests the
way TF Serving does (REST: `tf_serving_json`, a transcription of json_tensor.cc; gRPC:
TensorProto -> tensor with `tf.make_ndarray`) and run them through the named signature.

What this shows without a TF Serving binary: the bodies and protos the clients send are ones
the server decodes into exactly the tensors the signatures take, and the answers come back
equal to the in-process classifier's.
"""

import concurrent.futures
import http.server
import json
import re
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tf_serving_json
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from roberta_tf.contract import signatures as contract
from roberta_tf.serving.client import GrpcClient, RestClient, ServingError
from served_model import (  # noqa: F401 (fixtures)
    LABELS,
    PAIRS_A,
    PAIRS_B,
    TEXTS,
    assert_outputs_equal,
    classifier,
    expected_outputs,
    exported,
    loaded,
    preset,
)

MODEL_NAME = "roberta_classifier"
STRANGE_TEXTS = [b"", b"\x00", b"nul \x00 inside", b"\xff\xfe invalid \xc3 utf-8", "Café 🙂".encode()]


def input_specs(signature):
    specs = signature.structured_input_signature[1]
    return {name: (spec.dtype.name, spec.shape.rank) for name, spec in specs.items()}


def run_signature(loaded_model, signature_name, arrays):
    signature = loaded_model.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    tensors = {name: tf.constant(value, dtype=specs[name].dtype) for name, value in arrays.items()}
    return {name: value.numpy() for name, value in signature(**tensors).items()}


def signature_def_map(saved_model_dir):
    """What TF Serving's GetModelMetadata reports: every SignatureDef of the served MetaGraph
    (servables/tensorflow/get_model_metadata_impl.cc)."""
    saved_model = saved_model_pb2.SavedModel.FromString((saved_model_dir / "saved_model.pb").read_bytes())
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in saved_model.meta_graphs[0].signature_def.items():
        signatures.signature_def[name].CopyFrom(signature_def)
    return signatures


@pytest.fixture(scope="module")
def rest_url(loaded, exported):
    """A REST stand-in for `POST /v1/models/NAME:predict` and `GET .../metadata`, answering like TF Serving."""
    route = re.compile(rf"^/v1/models/{MODEL_NAME}(/versions/\d+)?:predict$")
    metadata = tf_serving_json.encode_model_metadata(signature_def_map(exported.path), MODEL_NAME)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            assert re.match(rf"^/v1/models/{MODEL_NAME}(/versions/\d+)?/metadata$", self.path), self.path
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(metadata)))
            self.end_headers()
            self.wfile.write(metadata)

        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                if not route.match(self.path):
                    raise LookupError(f"Servable not found for request: {self.path}")
                request = json.loads(body)
                signature_name = request.get("signature_name", "serving_default")
                arrays = tf_serving_json.decode_rest_request(body, input_specs(loaded.signatures[signature_name]))
                outputs = run_signature(loaded, signature_name, arrays)
                form = "instances" if "instances" in request else "inputs"  # the answer mirrors the request
                status, payload = 200, tf_serving_json.encode_predict_response(outputs, form)
            except (ValueError, LookupError, tf.errors.InvalidArgumentError) as e:
                status = 404 if isinstance(e, LookupError) else 400
                payload = json.dumps({"error": str(getattr(e, "message", e))}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """A gRPC stand-in for `PredictionService.Predict` over the restored SavedModel."""

    def __init__(self, loaded_model, signatures):
        self.loaded = loaded_model
        self.signatures = signatures

    def GetModelMetadata(self, request, context):  # noqa: N802 (the proto's name)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.metadata["signature_def"].Pack(self.signatures)
        return response

    def Predict(self, request, context):  # noqa: N802 (the proto's name)
        if request.model_spec.name != MODEL_NAME:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec.name}")
        signature_name = request.model_spec.signature_name or "serving_default"
        arrays = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            outputs = run_signature(self.loaded, signature_name, arrays)
        except tf.errors.InvalidArgumentError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response


@pytest.fixture(scope="module")
def grpc_target(loaded, exported):
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    service = PredictionService(loaded, signature_def_map(exported.path))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def make_client(kind, rest_url, grpc_target, **kwargs):
    if kind == "grpc":
        return GrpcClient(grpc_target, model_name=MODEL_NAME, timeout=60, retries=0, **kwargs)
    return RestClient(rest_url, model_name=MODEL_NAME, timeout=60, retries=0, form=kind.split("-")[1], **kwargs)


@pytest.fixture(params=["rest-inputs", "rest-instances", "grpc"])
def client(request, rest_url, grpc_target):
    made = make_client(request.param, rest_url, grpc_target)
    yield made
    if isinstance(made, GrpcClient):
        made.close()


def as_bytes(outputs):
    """The clients return class names as str; the classifier's expectation holds bytes."""
    return {**outputs, "class_name": np.array([str(n).encode() for n in outputs["class_name"]], dtype=object)}


def test_classify_answers_like_the_classifier(client, classifier):
    assert_outputs_equal(as_bytes(client.classify(TEXTS)), expected_outputs(classifier, TEXTS))
    assert set(client.classify(TEXTS)["class_name"]) <= set(LABELS)


def test_classify_pairs_answers_like_the_classifier(client, classifier):
    got = client.classify_pairs(PAIRS_A, PAIRS_B)
    assert_outputs_equal(as_bytes(got), expected_outputs(classifier, (PAIRS_A, PAIRS_B)))


def test_tokenize_then_classify_token_ids_equals_classify(client, classifier):
    tokens = client.tokenize(TEXTS)
    packed = classifier.preprocessor(TEXTS)
    width = tokens["token_ids"].shape[1]
    np.testing.assert_array_equal(tokens["token_ids"], packed["token_ids"].numpy()[:, :width])
    by_ids = client.classify_token_ids(tokens["token_ids"], tokens["padding_mask"])
    assert_outputs_equal(as_bytes(by_ids), expected_outputs(classifier, TEXTS))
    # Padded by the client to a fixed length (what server-side batching needs): same answers.
    short = client.tokenize(TEXTS[:4])
    padded = client.classify_token_ids(short["token_ids"], short["padding_mask"], pad_to=40)
    assert_outputs_equal(as_bytes(padded), expected_outputs(classifier, TEXTS[:4]))
    with pytest.raises(ServingError, match="longer than the 48 tokens"):
        client.classify_token_ids(short["token_ids"], short["padding_mask"], pad_to=49)


def test_tokenize_pairs(client, classifier):
    tokens = client.tokenize(PAIRS_A, pairs=PAIRS_B)
    packed = classifier.preprocessor((PAIRS_A, PAIRS_B))
    width = tokens["token_ids"].shape[1]
    np.testing.assert_array_equal(tokens["token_ids"], packed["token_ids"].numpy()[:, :width])
    np.testing.assert_array_equal(tokens["padding_mask"], packed["padding_mask"].numpy()[:, :width].astype(np.int32))


def test_bytes_the_json_cannot_hold_as_text_arrive_intact(client, loaded):
    # Invalid UTF-8 travels as {"b64": ...} in REST and as raw bytes in gRPC; NUL stays NUL.
    got = client.classify(STRANGE_TEXTS)
    want = run_signature(loaded, "serving_default", {"text": np.array(STRANGE_TEXTS, dtype=object)})
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=0, atol=1e-6)
    tokens = client.tokenize(STRANGE_TEXTS)
    want_tokens = run_signature(loaded, "tokenize", {"text": np.array(STRANGE_TEXTS, dtype=object)})
    np.testing.assert_array_equal(tokens["token_ids"], want_tokens["token_ids"])


# signature -> an empty call of the client method for it, and the same 0-row inputs for the SavedModel.
EMPTY_IDS = np.zeros([0, 5], np.int32)
NO_TEXTS = np.array([], object)
EMPTY_CALLS = {
    "serving_default": (lambda c: c.classify([]), {"text": NO_TEXTS}),
    "classify_pairs": (lambda c: c.classify_pairs([], []), {"text_a": NO_TEXTS, "text_b": NO_TEXTS}),
    "tokenize": (lambda c: c.tokenize([]), {"text": NO_TEXTS}),
    "tokenize_pairs": (lambda c: c.tokenize([], pairs=[]), {"text_a": NO_TEXTS, "text_b": NO_TEXTS}),
    "classify_token_ids": (lambda c: c.classify_token_ids(EMPTY_IDS, EMPTY_IDS), {"token_ids": EMPTY_IDS,
                                                                                  "padding_mask": EMPTY_IDS}),
}


@pytest.mark.parametrize("signature", contract.SIGNATURES)
def test_empty_batches_are_answered_locally_as_the_saved_model_answers(client, loaded, signature):
    """The client answers 0 rows itself (serving/README.md, "Batching": with batching on, TF Serving
    may leave such a request waiting); its answer has the shapes and dtypes the SavedModel gives,
    the number of classes read from the model's metadata."""
    call, inputs = EMPTY_CALLS[signature]
    got = call(client)
    want = run_signature(loaded, signature, inputs)
    assert {name: value.shape for name, value in got.items()} == {name: value.shape for name, value in want.items()}
    for name, value in want.items():
        assert got[name].dtype == value.dtype, name  # class_name: object either way (str here, bytes there)


@pytest.mark.parametrize("kind", ["rest-instances", "grpc"])
def test_a_split_call_answers_like_one_request(kind, rest_url, grpc_target, classifier):
    """Requests of 2 rows, joined: the real model's answers and token padding, in order."""
    one = make_client(kind, rest_url, grpc_target)
    split = make_client(kind, rest_url, grpc_target, max_request_rows=2)
    assert_outputs_equal(as_bytes(split.classify(TEXTS)), expected_outputs(classifier, TEXTS))
    for call in (lambda c: c.tokenize(TEXTS), lambda c: c.tokenize(PAIRS_A, pairs=PAIRS_B)):
        whole, joined = call(one), call(split)
        for name in ("token_ids", "padding_mask"):
            np.testing.assert_array_equal(joined[name], whole[name], err_msg=name)


def test_the_model_rejection_reaches_the_caller_as_a_serving_error(client):
    with pytest.raises(ServingError, match="token_ids must be <"):
        client.classify_token_ids([[0, 60000, 2]], [[1, 1, 1]])
