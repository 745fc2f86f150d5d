"""TF Serving's gRPC messages for the clients: response parsing, model status and metadata (pure); the
request builder itself is `roberta_tf.contract.predict_request`, shared with the exporter.

Tensors go through `tf.make_tensor_proto` / `tf.make_ndarray`: strings travel as `string_val`
bytes (any bytes, NUL and invalid UTF-8 included), numbers as packed `tensor_content`. String
outputs come back as object arrays of `bytes`. Importing this module imports TensorFlow (the
generated protos depend on it); the REST client does not.
"""

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2

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


def grpc_model_metadata_request(model_name, version=None):
    """A `GetModelMetadataRequest` for the signature defs (the one field TF Serving supports)."""
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    fill_model_spec(request.model_spec, model_name, version)
    return request


def parse_grpc_model_metadata(response):
    """A `GetModelMetadataResponse` -> dict signature -> {"inputs", "outputs"}: name -> {"dtype",
    "shape"}, as `rest_json.parse_rest_model_metadata` reads the REST form."""
    signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_def_map)
    return {
        name: {"inputs": _tensor_infos(signature.inputs), "outputs": _tensor_infos(signature.outputs)}
        for name, signature in signature_def_map.signature_def.items()
    }


def _tensor_infos(infos):
    return {
        name: {"dtype": types_pb2.DataType.Name(info.dtype),
               "shape": None if info.tensor_shape.unknown_rank
               else [dim.size if dim.size >= 0 else None for dim in info.tensor_shape.dim]}
        for name, info in infos.items()
    }


def _error_code_name(number):
    value = _ERROR_CODE_NAMES.get(number)
    return value.name if value is not None else str(number)
