"""A TF Serving `PredictRequest` for a call of one signature: what the gRPC client sends and
what the exporter logs as warmup requests (so the server replays exactly what clients send).

Tensors go through `tf.make_tensor_proto`: strings travel as `string_val` bytes (any bytes,
NUL and invalid UTF-8 included), numbers as packed `tensor_content`. Importing this module
imports TensorFlow (the generated protos depend on it).
"""

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from roberta_tf.contract import tensors


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
    fill_model_spec(request.model_spec, model_name, version)
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        dtype = input_dtypes.get(name)
        array = tensors.as_input_array(name, value, dtype)
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(array, dtype=None if dtype is None else tf.as_dtype(dtype), shape=array.shape)
        )
    return request


def fill_model_spec(model_spec, model_name, version):
    model_spec.name = model_name
    if version is not None:
        model_spec.version.value = int(version)
