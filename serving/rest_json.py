"""TF Serving's REST JSON for predict, model status and metadata: request bodies and response
parsing (pure).

Follows the REST API document (tensorflow_serving/g3doc/api_rest.md) and the server's reader and
writer (tensorflow_serving/util/json_tensor.cc):

- Row form, `"instances"`: one entry per example. With one input an entry is the bare value
  (`["a", "b"]`); with several, an object holding every input (`[{"text_a": .., "text_b": ..}]`).
  All inputs must share their 0-th dimension and the list must not be empty. Every roberta_tf
  signature batches all its inputs on the 0-th dimension, so only an empty batch needs the
  columnar form.
- Columnar form, `"inputs"`: the bare nested list with one input, else an object name -> nested
  list. It can carry any shapes, an empty batch (`[]`) included.
- Strings: JSON text is UTF-8, so bytes that are not valid UTF-8 are sent as `{"b64": base64}`
  (the server decodes such an object into the string's bytes). Valid UTF-8 is sent as a JSON
  string, including U+0000: JSON escapes it as "\\u0000" and the server reads strings with their
  length (rapidjson `GetStringLength`), so NUL bytes survive; b64 for them would only make the
  body larger and less readable.
- Responses mirror the request form: `"predictions"` (rows: objects, or bare values for one
  output) or `"outputs"` (columnar: object, or bare for one output); `{"error": message}` on
  failure. The server writes output strings raw, without checking UTF-8 (only outputs whose
  name ends in `_bytes` come back as b64), so bodies are decoded with `surrogateescape` to get
  the exact bytes back. Floats may be `NaN`/`Infinity`, which Python's json accepts.

String outputs are returned as object arrays of `bytes`, as `tf.make_ndarray` does for gRPC.
"""

import base64
import json

import numpy as np

from roberta_tf.contract import tensors
from roberta_tf.serving.errors import ServingError

FORMS = ("instances", "inputs")


def rest_request_body(signature_name, inputs, form="inputs", input_dtypes=None):
    """The JSON object (a dict) to POST to `/v1/models/NAME[/versions/N]:predict`.

    Args:
        signature_name: the SignatureDef key, e.g. "serving_default".
        inputs: dict input name -> array-like (numpy array, nested list; strings as str/bytes).
        form: "inputs" (columnar) or "instances" (row).
        input_dtypes: optional dict input name -> TF dtype name ("string", "int32", ...), needed
            only to tell an empty list's dtype apart (JSON writes `[]` either way).

    Raises:
        ValueError: for an unknown form, or a row form the inputs cannot take (different 0-th
            dimensions, a scalar, an empty batch).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}. Received: form={form!r}")
    if not inputs:
        raise ValueError("inputs must name at least one input tensor. Received: inputs={}")
    input_dtypes = input_dtypes or {}
    values = {name: tensors.as_input_array(name, value, input_dtypes.get(name)) for name, value in inputs.items()}
    body = {"signature_name": signature_name}
    if form == "inputs":
        body["inputs"] = _columns(values)
    else:
        body["instances"] = _rows(values)
    return body


def encode_body(body):
    """The request body's bytes: UTF-8 JSON (non-ASCII text kept as UTF-8, the smallest form)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def is_empty_batch(inputs, input_dtypes=None):
    """Whether some input has 0 rows: the one request of the roberta_tf contract the row form
    cannot carry (`"instances": []` is refused by the server as "No values in 'instances' array")."""
    input_dtypes = input_dtypes or {}
    values = [tensors.as_input_array(name, value, input_dtypes.get(name)) for name, value in inputs.items()]
    return any(value.ndim and value.shape[0] == 0 for value in values)


def parse_rest_response(payload, output_dtypes=None, single_output_name="output"):
    """A predict response (bytes, str or parsed dict) -> dict output name -> numpy array.

    Args:
        payload: the response body.
        output_dtypes: optional dict output name -> TF dtype name; JSON has no dtypes, so without
            it integers come back int64 and decimals float64.
        single_output_name: the key for a response with one unnamed output (bare values); when
            `output_dtypes` has exactly one entry, its name is used instead.

    Raises:
        ServingError: if the payload is an `{"error": ...}` object or has neither
            `predictions` nor `outputs`.
    """
    payload = _load(payload)
    output_dtypes = output_dtypes or {}
    if len(output_dtypes) == 1:
        single_output_name = next(iter(output_dtypes))
    if "predictions" in payload:
        named = _named_rows(payload["predictions"], output_dtypes, single_output_name)
    elif "outputs" in payload:
        named = _named_columns(payload["outputs"], single_output_name)
    else:
        raise ServingError(f"Response has neither 'predictions' nor 'outputs': {_preview(payload)}", code="INTERNAL")
    return {name: _array(value, output_dtypes.get(name)) for name, value in named.items()}


def parse_rest_model_status(payload):
    """A model status response -> list of {"version", "state", "error_code", "error_message"}.

    The body is the JSON form of GetModelStatusResponse; versions (int64) arrive as strings.
    """
    payload = _load(payload)
    statuses = [
        {
            "version": int(entry.get("version", 0)),
            "state": entry.get("state", "UNKNOWN"),
            "error_code": entry.get("status", {}).get("error_code", "OK"),
            "error_message": entry.get("status", {}).get("error_message", ""),
        }
        for entry in payload.get("model_version_status", [])
    ]
    return sorted(statuses, key=lambda status: status["version"])


def parse_rest_model_metadata(payload):
    """A model metadata response -> dict signature -> {"inputs", "outputs"}: name -> {"dtype", "shape"}.

    The body is `{"model_spec": ..., "metadata": {"signature_def": <SignatureDefMap as JSON>}}`
    with proto field names (TF Serving's http_rest_api_util.cc, ToJsonString); int64 dimension
    sizes arrive as strings, -1 for unknown (None here).
    """
    payload = _load(payload)
    signatures = payload.get("metadata", {}).get("signature_def", {}).get("signature_def", {})
    return {
        name: {role: {tensor: _tensor_info(info) for tensor, info in signature.get(role, {}).items()}
               for role in ("inputs", "outputs")}
        for name, signature in signatures.items()
    }


def _tensor_info(info):
    shape = info.get("tensor_shape", {})
    dims = None if shape.get("unknown_rank") else [int(dim.get("size", -1)) for dim in shape.get("dim", [])]
    return {"dtype": info.get("dtype", "DT_INVALID"),
            "shape": None if dims is None else [size if size >= 0 else None for size in dims]}


def error_message(body):
    """TF Serving's `error` field from an error response body, or the body itself (shortened)."""
    try:
        text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return _clean(payload["error"])
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return _preview(text.strip() or "(empty response body)")


def _columns(values):
    if len(values) == 1:
        return _json_value(next(iter(values.values())))
    return {name: _json_value(value) for name, value in values.items()}


def _rows(values):
    sizes = {name: (value.shape[0] if value.ndim else None) for name, value in values.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(
            "The row ('instances') form needs every input to have the same 0-th dimension; "
            f"use form='inputs'. Received sizes: {sizes}"
        )
    if next(iter(sizes.values())) == 0:
        raise ValueError("The row ('instances') form cannot carry an empty batch; use form='inputs'.")
    columns = {name: _json_value(value) for name, value in values.items()}
    if len(columns) == 1:
        return next(iter(columns.values()))
    count = next(iter(sizes.values()))
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]


def _json_value(array):
    if array.dtype == object:
        array = tensors.map_objects(array, _json_string)
    return array.tolist()


def _json_string(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode("ascii")}


def _load(payload):
    if isinstance(payload, (bytes, bytearray)):
        payload = bytes(payload).decode("utf-8", "surrogateescape")
    if isinstance(payload, str):
        payload = json.loads(payload)
    if not isinstance(payload, dict):
        raise ServingError(f"Expected a JSON object. Received: {_preview(payload)}", code="INTERNAL")
    if "error" in payload:
        raise ServingError(_clean(str(payload["error"])))
    return payload


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _named_rows(rows, output_dtypes, single_output_name):
    if not isinstance(rows, list):
        raise ServingError(f"'predictions' must be a list. Received: {_preview(rows)}", code="INTERNAL")
    if not rows:
        return {name: [] for name in output_dtypes}
    if isinstance(rows[0], dict) and not _is_b64(rows[0]):
        return {name: [row[name] for row in rows] for name in rows[0]}
    return {single_output_name: rows}


def _named_columns(outputs, single_output_name):
    if isinstance(outputs, dict) and not _is_b64(outputs):
        return outputs
    return {single_output_name: outputs}


def _array(value, dtype):
    value = _decode_leaves(value)
    if dtype == "string" or (dtype is None and _has_bytes(value)):
        return np.array(value, dtype=object)
    return np.array(value, dtype=None if dtype is None else np.dtype(dtype))


def _decode_leaves(value):
    if isinstance(value, list):
        return [_decode_leaves(item) for item in value]
    if _is_b64(value):
        return base64.b64decode(value["b64"])
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return value


def _has_bytes(value):
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, bytes)


def _clean(text):
    """Raw bytes the server wrote into a message (surrogate-escaped here) -> printable text."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _preview(value, limit=300):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
