"""TF Serving's gRPC messages for the clients: response parsing and model status (pure); the
request builder itself is `roberta_tf.contract.predict_request`, shared with the exporter.

Tensors go through `tf.make_tensor_proto` / `tf.make_ndarray`: strings travel as `string_val`
bytes (any bytes, NUL and invalid UTF-8 included), numbers as packed `tensor_content`. String
outputs come back as object arrays of `bytes`. Importing this module imports TensorFlow (the
generated protos depend on it); the REST client does not.
"""

import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, status_pb2

from roberta_tf.contract.predict_request import fill_model_spec

_ERROR_CODE_NAMES = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_number


def parse_grpc_response(response):
    """A `PredictResponse` -> dict output name -> numpy array (strings as object arrays of bytes)."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def grpc_model_status_request(model_name, version=None):
    """A `GetModelStatusRequest` for `ModelService.GetModelStatus` (all versions when `version` is None)."""
    request = get_model_status_pb2.GetModelStatusRequest()
    fill_model_spec(request.model_spec, model_name, version)
    return request


def parse_grpc_model_status(response):
    """A `GetModelStatusResponse` -> list of {"version", "state", "error_code", "error_message"}."""
    statuses = [
        {
            "version": entry.version,
            "state": get_model_status_pb2.ModelVersionStatus.State.Name(entry.state),
            "error_code": _error_code_name(entry.status.error_code),
            "error_message": entry.status.error_message,
        }
        for entry in response.model_version_status
    ]
    return sorted(statuses, key=lambda status: status["version"])


def _error_code_name(number):
    value = _ERROR_CODE_NAMES.get(number)
    return value.name if value is not None else str(number)
