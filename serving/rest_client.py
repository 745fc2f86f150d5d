"""`RestClient`: TF Serving's REST API over the standard library's urllib (no TensorFlow import)."""

import http.client
import urllib.error
import urllib.parse
import urllib.request

from roberta_tf.contract import signatures as contract
from roberta_tf.serving import rest_json
from roberta_tf.serving.classifier_methods import ClassifierMethods
from roberta_tf.serving.errors import ServingError, call_with_retries

# TF Serving maps its status codes to HTTP ones (http_rest_api_util); this maps them back so REST
# and gRPC errors share one vocabulary. 429 only comes from proxies and gateways.
_HTTP_CODES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_RETRYABLE_HTTP = frozenset({429, 503})


class RestClient(ClassifierMethods):
    """Calls a TF Serving REST endpoint (port 8501): `classify`, `classify_pairs`, `tokenize`
    (`tokenize`/`tokenize_pairs`), `classify_token_ids`, `model_status`, and the generic `predict`.

    Args:
        base_url: e.g. "http://localhost:8501".
        model_name: the served model's name.
        version: a model version number, or None for the latest loaded one.
        timeout: seconds a connection attempt or a read may stall before `ServingError`
            ("DEADLINE_EXCEEDED"); timeouts are not retried.
        retries: extra attempts after connection refused/reset, HTTP 503 or 429.
        backoff: seconds before the first retry; doubles on each further one.
        form: "inputs" (columnar, default: compact) or "instances" (row form, one entry per
            example). Every signature's inputs share the batch dimension, so the row form carries
            every request except an empty batch, which is sent columnar.

    Example:
        client = RestClient("http://localhost:8501")
        client.classify(["a great movie", b"bytes \\xff too"])["class_name"]  # array(['positive', ...])
    """

    def __init__(self, base_url, model_name=contract.DEFAULT_MODEL_NAME, version=None, timeout=10.0, retries=3,
                 backoff=0.2, form="inputs"):
        if form not in rest_json.FORMS:
            raise ValueError(f"form must be one of {rest_json.FORMS}. Received: form={form!r}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.form = form

    @property
    def model_url(self):
        """`BASE/v1/models/NAME[/versions/N]`: the status URL, and with `:predict` the predict URL."""
        url = f"{self.base_url}/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
        return url if self.version is None else f"{url}/versions/{int(self.version)}"

    def predict(self, signature_name, inputs, input_dtypes=None, output_dtypes=None):
        """POSTs one predict request; returns dict output name -> array (strings as bytes).

        `input_dtypes`/`output_dtypes` (dict name -> TF dtype name) default to the roberta_tf
        contract for its signatures; JSON itself carries no dtypes.
        """
        input_dtypes = input_dtypes or contract.INPUT_DTYPES.get(signature_name)
        output_dtypes = output_dtypes or contract.OUTPUT_DTYPES.get(signature_name)
        # The row form's `instances` list must not be empty (the server refuses `[]`), while the
        # columnar form carries an empty batch and the server answers with empty outputs; so an
        # empty batch goes columnar whatever `form` says.
        form = "inputs" if self.form == "inputs" or rest_json.is_empty_batch(inputs, input_dtypes) else "instances"
        body = rest_json.encode_body(rest_json.rest_request_body(signature_name, inputs, form, input_dtypes))
        url = self.model_url + ":predict"
        payload = self._request(url, body, signature_name)
        return self._parse(rest_json.parse_rest_response, url, signature_name, payload, output_dtypes)

    def model_status(self):
        """GET the model status: list of {"version", "state", "error_code", "error_message"}.

        A model is ready when some version has state "AVAILABLE". Raises `ServingError`
        ("NOT_FOUND") while the server knows no version of the model.
        """
        payload = self._request(self.model_url, None, None)
        return self._parse(rest_json.parse_rest_model_status, self.model_url, None, payload)

    def _request(self, url, body, signature_name):
        return call_with_retries(
            lambda: self._attempt(url, body, signature_name), retries=self.retries, backoff=self.backoff
        )

    def _attempt(self, url, body, signature_name):
        request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        error = dict(endpoint=url, model=self.model_name, signature=signature_name)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as http_error:
            with http_error:
                message = rest_json.error_message(http_error.read())
            raise ServingError(message, code=_HTTP_CODES.get(http_error.code, "UNKNOWN"), status=http_error.code,
                               retryable=http_error.code in _RETRYABLE_HTTP, **error) from None
        except urllib.error.URLError as url_error:  # raised while connecting or sending
            raise _transport_error(url_error.reason, error) from None
        except (OSError, http.client.HTTPException) as transport_error:  # raised while reading the response
            raise _transport_error(transport_error, error) from None

    def _parse(self, parser, url, signature_name, payload, *args):
        try:
            return parser(payload, *args)
        except ServingError as parse_error:
            raise ServingError(parse_error.message, code=parse_error.code, endpoint=url, model=self.model_name,
                               signature=signature_name) from None
        except ValueError as parse_error:  # not JSON
            raise ServingError(f"Unreadable response ({parse_error}): {rest_json.error_message(payload)}",
                               code="INTERNAL", endpoint=url, model=self.model_name,
                               signature=signature_name) from None


def _transport_error(reason, error):
    if isinstance(reason, TimeoutError):
        return ServingError(f"No response within the timeout ({reason})", code="DEADLINE_EXCEEDED", **error)
    retryable = isinstance(reason, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError))
    return ServingError(f"Connection failed: {reason!r}", code="UNAVAILABLE", retryable=retryable, **error)
