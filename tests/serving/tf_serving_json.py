"""TF Serving's REST JSON as the server reads and writes it, for tests without a server.

A Python transcription of tensorflow_serving/util/json_tensor.cc (FillPredictRequestFromJson,
MakeJsonFromTensors), so request bodies built by `roberta_tf.serving.rest_json` can be
checked the way the server would decode them, and responses can be produced the way it writes
them:

- `decode_predict_request(body, input_dtypes)`: bytes/str/dict -> (signature_name, {name:
  array}). Rules: exactly one of `instances`/`inputs`; `instances` a non-empty list whose first
  element decides between objects (one key per input, all keys required) and bare values (one
  input only); every row the same shape; `inputs` a bare value (one input only) or an object
  holding every input (extra keys ignored); leaves at the depth of the tensor's rank; strings
  from JSON strings (their UTF-8 bytes) or `{"b64": ...}` objects (exactly that one key);
  int32 from JSON integers in range (not booleans); floats from any number.
- `decode_rest_request(body, input_specs)`: the same decoding, then the check the server's
  session makes when it feeds the tensors to the signature (each input's rank must be the
  signature's), returning {name: array} ready to call a restored SavedModel's signature with.
- `encode_predict_response(outputs, form)`: {name: array} -> bytes, `predictions` (rows;
  objects with several outputs, bare values with one) or `outputs` (columnar). String outputs are
  written raw, with no UTF-8 check (invalid bytes reach the body as they are), except outputs
  whose name ends in `_bytes`, written as `{"b64": ...}`. Floats print with up to 9
  significant digits (exact for float32), `NaN`/`Infinity` as bare tokens.
- `encode_model_metadata(signature_def_map, model_name)`: the body of GET
  `/v1/models/NAME/metadata`, as tensorflow_serving/model_servers/http_rest_api_util.cc
  (ToJsonString(GetModelMetadataResponse)) writes it: proto field names, default values printed,
  the SignatureDefMap written on its own under `metadata.signature_def`.

Strings decode to object arrays of bytes; ints to int32/int64, floats to float32/float64 per dtype.
"""

import base64
import binascii
import json

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import model_pb2


class JsonRequestError(ValueError):
    """The server would answer 400 with this message (wording shortened from json_tensor.cc)."""


def decode_predict_request(body, input_dtypes):
    """Decodes a predict body as TF Serving does.

    Args:
        body: bytes (must be UTF-8 JSON), str, or an already parsed dict.
        input_dtypes: dict input name -> dtype of the signature's inputs: a TF dtype name
            ("string", "int32", "float32", ...), a numpy dtype, or a `tf.DType`.

    Returns:
        (signature_name or None, dict input name -> numpy array).
    """
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8")  # rapidjson reads UTF-8; our bodies must be valid
    if isinstance(body, str):
        body = json.loads(body)
    if not isinstance(body, dict):
        raise JsonRequestError("Is not object")
    dtypes = {name: _dtype_name(dtype) for name, dtype in input_dtypes.items()}
    signature_name = body.get("signature_name")
    if signature_name is not None and not isinstance(signature_name, str):
        raise JsonRequestError("'signature_name' key must be a string value.")
    if ("instances" in body) == ("inputs" in body):
        raise JsonRequestError("expecting exactly one of 'inputs' or 'instances' keys")
    if "instances" in body:
        return signature_name, _from_instances(body["instances"], dtypes)
    return signature_name, _from_inputs(body["inputs"], dtypes)


def decode_rest_request(body, input_specs):
    """Decodes a predict body as TF Serving does, into the tensors its signature would be fed.

    Args:
        body: the request body: an already parsed dict, str, or UTF-8 bytes.
        input_specs: dict input name -> (dtype, rank) of the signature's inputs: dtype a TF dtype
            name ("string", "int32", ...), numpy dtype or `tf.DType`; rank an int, or None for
            an input of unknown rank. E.g. {"token_ids": ("int32", 2), "padding_mask": ("int32", 2)}.

    Returns:
        dict input name -> numpy array (strings as object arrays of bytes, numbers with the
        spec's dtype), e.g. for `loaded.signatures[name](**{k: tf.constant(v) for k, v in ...})`.
        The body's `signature_name`, if any, is not checked: `input_specs` names the signature.

    Raises:
        JsonRequestError: where the server would answer 400, including an input whose decoded
            rank differs from the spec's (the server fails it when feeding the signature; a
            columnar empty batch `[]` of a rank-2 input is such a case).
    """
    specs = {name: tuple(spec) for name, spec in input_specs.items()}
    _, tensors = decode_predict_request(body, {name: dtype for name, (dtype, _) in specs.items()})
    for name, (_, rank) in specs.items():
        if rank is not None and tensors[name].ndim != rank:
            raise JsonRequestError(
                f"input {name!r} decodes to shape {list(tensors[name].shape)}, but the signature expects rank {rank}"
            )
    return tensors


def encode_predict_response(outputs, form):
    """Writes outputs (dict name -> array) as the body of a predict response in `form`."""
    if form == "instances":
        count = {np.asarray(value).shape[0] for value in outputs.values()}
        if len(count) != 1:
            raise ValueError(f"outputs have different batch sizes: {count}")
        columns = {name: _to_json(np.asarray(value), name) for name, value in outputs.items()}
        if len(columns) == 1:
            payload = {"predictions": next(iter(columns.values()))}
        else:
            payload = {"predictions": [{name: column[i] for name, column in columns.items()}
                                       for i in range(count.pop())]}
    elif form == "inputs":
        columns = {name: _to_json(np.asarray(value), name) for name, value in outputs.items()}
        payload = {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    else:
        raise ValueError(f"form must be 'instances' or 'inputs'. Received: {form!r}")
    # Raw strings were decoded with surrogateescape; encoding back writes their bytes unchanged.
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogateescape")


def encode_model_metadata(signature_def_map, model_name):
    """A `SignatureDefMap` -> the REST metadata response body (bytes), as TF Serving writes it."""
    options = dict(preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    model_spec = json_format.MessageToJson(model_pb2.ModelSpec(name=model_name), **options)
    signature_defs = json_format.MessageToJson(signature_def_map, **options)
    return f'{{\n"model_spec":{model_spec},\n"metadata": {{"signature_def": {signature_defs}}}\n}}\n'.encode()


def _dtype_name(dtype):
    if isinstance(dtype, str):
        return dtype
    if hasattr(dtype, "as_numpy_dtype"):  # tf.DType
        return dtype.name
    dtype = np.dtype(dtype)
    return "string" if dtype.kind in "OSU" else dtype.name


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named_object(value):
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances, dtypes):
    if not isinstance(instances, list):
        raise JsonRequestError("Excepting 'instances' to be an list/array")
    if not instances:
        raise JsonRequestError("No values in 'instances' array")
    if not _is_named_object(instances[0]) and len(dtypes) > 1:
        raise JsonRequestError("instances is a plain list, but expecting list of objects as multiple input tensors")
    named = _is_named_object(instances[0])
    rows = {name: [] for name in dtypes} if named else {next(iter(dtypes)): []}
    for index, element in enumerate(instances):
        if named != _is_named_object(element):
            raise JsonRequestError(f"Expecting {'object' if named else 'value/list'} at item {index} of input list")
        items = element if named else {next(iter(dtypes)): element}
        if set(items) != set(dtypes):
            raise JsonRequestError(f"Failed to process element: {index}; keys must be equal to: {sorted(dtypes)}")
        for name, value in items.items():
            rows[name].append(_tensor(value, dtypes[name]))
    result = {}
    for name, tensors in rows.items():
        shapes = {tensor.shape for tensor in tensors}
        if len(shapes) != 1:
            raise JsonRequestError(f"Expecting shape {tensors[0].shape} for every element of {name}; got {shapes}")
        result[name] = np.stack(tensors) if tensors[0].dtype != object else _stack_objects(tensors)
    return result


def _from_inputs(inputs, dtypes):
    if not _is_named_object(inputs):
        if len(dtypes) > 1:
            raise JsonRequestError("inputs is a plain value/list, but expecting an object as multiple input tensors")
        name = next(iter(dtypes))
        return {name: _tensor(inputs, dtypes[name])}
    result = {}
    for name, dtype in dtypes.items():
        if name not in inputs:
            raise JsonRequestError(f"Missing named input: {name} in 'inputs' object.")
        result[name] = _tensor(inputs[name], dtype)
    return result


def _tensor(value, dtype):
    """GetDenseTensorShape (shape from the first element at each level) + FillTensorProto."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    leaves = []
    _fill(value, 0, shape, dtype, leaves)
    if dtype == "string":
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
        return array.reshape(shape)
    return np.array(leaves, dtype=np.dtype(dtype)).reshape(shape)


def _fill(value, level, shape, dtype, leaves):
    if not isinstance(value, list):
        if level != len(shape):
            raise JsonRequestError(f"JSON Value: {value!r} found at incorrect level: {level + 1}; expected {len(shape)}")
        leaves.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise JsonRequestError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise JsonRequestError(f"Encountered list at unexpected size: {len(value)} at level: {level}")
    for item in value:
        _fill(item, level + 1, shape, dtype, leaves)


def _leaf(value, dtype):
    if dtype == "string":
        if isinstance(value, dict):
            if not _is_b64(value):
                raise JsonRequestError(f"JSON Value: {value!r} not formatted correctly for base64 data")
            try:
                return base64.b64decode(value["b64"], validate=True)
            except binascii.Error:
                raise JsonRequestError("Unable to base64 decode") from None
        if not isinstance(value, str):
            raise JsonRequestError(f"JSON Value: {value!r} is not of expected type: string")
        return value.encode("utf-8")
    if isinstance(value, (bool, dict)) and dtype != "bool":
        raise JsonRequestError(f"JSON Value: {value!r} is not of expected type: {dtype}")
    if dtype in ("int8", "int16", "int32", "uint8", "int64"):
        # json_tensor.cc checks IsInt() (int32 range) for the narrow types and IsInt64() for int64.
        bounds = np.iinfo("int64" if dtype == "int64" else "int32")
        if not isinstance(value, int) or not bounds.min <= value <= bounds.max:
            raise JsonRequestError(f"JSON Value: {value!r} is not of expected type: {dtype}")
        return value
    if dtype in ("float32", "float64"):
        if not isinstance(value, (int, float)):
            raise JsonRequestError(f"JSON Value: {value!r} is not of expected type: {dtype}")
        max_int = 2**24 - 1 if dtype == "float32" else 2**53 - 1  # IsLosslessDecimal
        if isinstance(value, int) and abs(value) > max_int:
            raise JsonRequestError(f"Cannot convert JSON value: {value} to {dtype} without loss of precision.")
        return value
    if dtype == "bool":
        if not isinstance(value, bool):
            raise JsonRequestError(f"JSON Value: {value!r} is not of expected type: bool")
        return value
    raise JsonRequestError(f"Conversion of JSON Value: {value!r} to type: {dtype} is not implemented here")


def _stack_objects(tensors):
    result = np.empty((len(tensors),) + tensors[0].shape, dtype=object)
    for index, tensor in enumerate(tensors):
        result[index, ...] = tensor
    return result


def _to_json(array, name):
    """AddTensorValues: nested lists; strings raw (surrogateescape) or b64 for `*_bytes` names."""
    if array.dtype == object or array.dtype.kind in "SU":
        as_bytes = name.endswith("_bytes")
        converted = np.empty(array.shape, dtype=object)
        for index, item in np.ndenumerate(array):
            item = item if isinstance(item, bytes) else str(item).encode("utf-8")
            converted[index] = ({"b64": base64.b64encode(item).decode("ascii")} if as_bytes
                                else item.decode("utf-8", "surrogateescape"))
        return converted.tolist()
    if array.dtype.kind == "f":
        return _float_lists(array)
    return array.tolist()


def _float_lists(array):
    if array.ndim == 0:
        return _float(array.item(), array.dtype)
    return [_float_lists(item) for item in array]


def _float(value, dtype):
    # WriteDecimal: shortest form that round-trips in the tensor's own precision (<= 9 digits for float32).
    if value != value or value in (float("inf"), float("-inf")):
        return value  # json.dumps writes NaN / Infinity / -Infinity, as the server does
    digits = 9 if dtype == np.float32 else 17
    for precision in range(6, digits + 1):
        text = f"{value:.{precision}g}"
        if np.array(float(text), dtype=dtype) == np.array(value, dtype=dtype):
            return float(text)
    return float(value)
