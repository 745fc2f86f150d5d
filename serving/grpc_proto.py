"""TF Serving's gRPC messages for predict and model status: request building and response parsing (pure).

Tensors go through `tf.make_tensor_proto` / `tf.make_ndarray`: strings travel as `string_val`
bytes (any bytes, NUL and invalid UTF-8 included), numbers as packed `tensor_content`. String
outputs come back as object arrays of `bytes`. Importing this module imports TensorFlow (the
generated protos depend on it); the REST client does not.
"""

import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2, status_pb2

from roberta_tf.serving import arrays

_ERROR_CODE_NAMES = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_number


def grpc_predict_request(model_name, signature_name, inputs, version=None, input_dtypes=None):
    """A `PredictRequest` for `PredictionService.Predict`.

    Args:
        model_name: the served model's name (its `models.config` entry).
        signature_name: the SignatureDef key, e.g. "serving_default".
        inputs: dict input name -> array-like (numpy array, nested list; strings as str/bytes).
        version: a model version number, or None for the latest loaded one.
        input_dtypes: optional dict input name -> TF dtype name ("string", "int32", ...); required
            for inputs whose dtype cannot be inferred (an empty list).
    """
    input_dtypes = input_dtypes or {}
    request = predict_pb2.PredictRequest()
    _fill_model_spec(request.model_spec, model_name, version)
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        dtype = input_dtypes.get(name)
        array = arrays.as_input_array(name, value, dtype)
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(array, dtype=None if dtype is None else tf.as_dtype(dtype), shape=array.shape)
        )
    return request


def parse_grpc_response(response):
    """A `PredictResponse` -> dict output name -> numpy array (strings as object arrays of bytes)."""
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def grpc_model_status_request(model_name, version=None):
    """A `GetModelStatusRequest` for `ModelService.GetModelStatus` (all versions when `version` is None)."""
    request = get_model_status_pb2.GetModelStatusRequest()
    _fill_model_spec(request.model_spec, model_name, version)
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


def _fill_model_spec(model_spec, model_name, version):
    model_spec.name = model_name
    if version is not None:
        model_spec.version.value = int(version)
