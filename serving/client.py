"""Python clients for a roberta_tf classifier served by TensorFlow Serving.

    from roberta_tf.serving.client import RestClient, GrpcClient, ServingError

    RestClient("http://localhost:8501").classify(["a great movie"])
    GrpcClient("localhost:8500").classify(["a great movie"])

Both return dicts of numpy arrays keyed by the signature's output names and raise
`ServingError`. The pure request builders and response parsers (`rest_request_body`,
`parse_rest_response`, `grpc_predict_request`, `parse_grpc_response`) work without a server.

`GrpcClient` and the gRPC helpers import TensorFlow and grpcio, so they load on first use:
a process that only talks REST never imports TensorFlow.
"""

from roberta_tf.contract.signatures import DEFAULT_MODEL_NAME, INPUT_DTYPES, OUTPUT_DTYPES
from roberta_tf.serving.errors import ServingError
from roberta_tf.serving.rest_client import RestClient
from roberta_tf.serving.rest_json import (
    parse_rest_model_metadata,
    parse_rest_model_status,
    parse_rest_response,
    rest_request_body,
)

_GRPC_NAMES = {
    "GrpcClient": "roberta_tf.serving.grpc_client",
    "grpc_predict_request": "roberta_tf.contract.predict_request",
    "parse_grpc_response": "roberta_tf.serving.grpc_proto",
    "parse_grpc_model_status": "roberta_tf.serving.grpc_proto",
    "parse_grpc_model_metadata": "roberta_tf.serving.grpc_proto",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "INPUT_DTYPES",
    "OUTPUT_DTYPES",
    "GrpcClient",
    "RestClient",
    "ServingError",
    "grpc_predict_request",
    "parse_grpc_model_metadata",
    "parse_grpc_model_status",
    "parse_grpc_response",
    "parse_rest_model_metadata",
    "parse_rest_model_status",
    "parse_rest_response",
    "rest_request_body",
]


def __getattr__(name):
    """Imports the gRPC names on first access (PEP 562), keeping TensorFlow out of REST-only processes."""
    if name not in _GRPC_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_GRPC_NAMES[name]), name)
