"""`RestClient`: TF Serving's REST API over the standard library's urllib (no TensorFlow import).

Each call has one deadline, `timeout`, for everything: connecting, sending, every read of the
headers and body, and the retries with their backoff; a server that trickles a byte at a time is
cut off when it passes. Responses over `max_response_bytes` are refused. Redirects are never
followed (TF Serving does not send them; following one would re-send a POST as a GET, or the
request to another host): a redirect is a `ServingError` naming its target. Credentials in
`base_url` (`http://user:password@host:8501`) are sent as HTTP Basic authentication, for a proxy in
front of the server, and shown as `user:***@` in every error.
"""

import base64
import http.client
import urllib.error
import urllib.parse
import urllib.request

from roberta_tf.contract import signatures as contract
from roberta_tf.serving import batching, rest_json
from roberta_tf.serving.classifier_methods import ClassifierMethods
from roberta_tf.serving.errors import RETRYABLE_CODES, ServingError, call_with_retries, redact_credentials
from roberta_tf.utils import http_deadline

# TF Serving maps its status codes to HTTP ones (model_servers/http_server.cc, ToHTTPStatusCode);
# this maps them back so REST and gRPC errors share one vocabulary. The mapping is many-to-one:
# 400 is also FAILED_PRECONDITION and OUT_OF_RANGE, 409 also ALREADY_EXISTS, 500 also UNKNOWN and
# DATA_LOSS; the body (`{"error": message}`) does not say which, so each reads as the name here.
_HTTP_CODES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
# 64 MiB, the GrpcClient's message limit: a tokenize response for 1,024 texts of 512 tokens is about
# 4 MB of JSON, a classification of 1,024 texts into 1,000 classes about 26 MB (the methods send
# at most 96 rows per request; a raw `predict` may send more).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
_MAX_ERROR_BODY_BYTES = 2**20  # an error body is read this far at most; the rest is dropped


class RestClient(ClassifierMethods):
    """Calls a TF Serving REST endpoint (port 8501): `classify`, `classify_pairs`, `tokenize`
    (`tokenize`/`tokenize_pairs`), `classify_token_ids`, `model_status`, `model_metadata`, and the
    generic `predict`.

    Args:
        base_url: e.g. "http://localhost:8501".
        model_name: the served model's name.
        version: a model version number, or None for the latest loaded one.
        timeout: seconds one request may take in all: connecting, sending, reading the whole
            response (however slowly the server sends it), and any retries with their backoff (a
            retry whose backoff would end past it is not made: the last error is raised). Past it,
            `ServingError` ("DEADLINE_EXCEEDED"); timeouts are not retried. A method call split
            into several requests (`max_request_rows`) gives each its own timeout.
        retries: extra attempts after connection refused/reset, HTTP 503 (UNAVAILABLE) or 429
            (RESOURCE_EXHAUSTED).
        backoff: seconds before the first retry; doubles on each further one.
        form: "inputs" (columnar, default: compact) or "instances" (row form, one entry per
            example). Every signature's inputs share the batch dimension, so the row form carries
            every request except an empty batch, which `predict` sends columnar (the methods
            answer empty calls themselves).
        max_response_bytes: a larger response body is refused with `ServingError`
            ("RESOURCE_EXHAUSTED", not retried; default 64 MiB, the gRPC client's message limit).
        max_request_rows: the most rows one request carries; the methods split larger calls
            (default `batching.MAX_REQUEST_ROWS`, what `batching_parameters.txt` admits).

    `base_url` may hold credentials (`http://user:password@host:8501`): they are sent as HTTP Basic
    authentication, removed from `base_url`, and shown as `user:***@` in errors. Redirects are not
    followed: a redirect answer is a `ServingError` naming its target.

    Example:
        client = RestClient("http://localhost:8501")
        client.classify(["a great movie", b"bytes \\xff too"])["class_name"]  # array(['positive', ...])
    """

    def __init__(self, base_url, model_name=contract.DEFAULT_MODEL_NAME, version=None, timeout=10.0, retries=3,
                 backoff=0.2, form="inputs", max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES,
                 max_request_rows=batching.MAX_REQUEST_ROWS):
        super().__init__(max_request_rows)
        if form not in rest_json.FORMS:
            raise ValueError(f"form must be one of {rest_json.FORMS}. Received: form={form!r}")
        if not max_response_bytes > 0:
            raise ValueError(f"max_response_bytes must be positive. Received: {max_response_bytes!r}")
        self.base_url, self._authorization = _split_credentials(base_url.rstrip("/"))
        self._shown_base_url = redact_credentials(base_url.rstrip("/"))
        self.max_response_bytes = max_response_bytes
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

    def model_metadata(self):
        """GET `.../metadata`: dict signature -> {"inputs", "outputs"}: name -> {"dtype", "shape"}.

        Dtypes are TF's enum names ("DT_FLOAT"), shapes lists with None for unknown dimensions.
        TF Serving answers 404 NOT_FOUND until a version is loaded.
        """
        url = self.model_url + "/metadata"
        return self._parse(rest_json.parse_rest_model_metadata, url, None, self._request(url, None, None))

    def _request(self, url, body, signature_name):
        deadline = http_deadline.Deadline(self.timeout)
        return call_with_retries(
            lambda: self._attempt(url, body, signature_name, deadline), retries=self.retries, backoff=self.backoff,
            deadline=deadline.end,
        )

    def _attempt(self, url, body, signature_name, deadline):
        request = urllib.request.Request(url, data=body, method="GET" if body is None else "POST")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self._authorization is not None:
            request.add_unredirected_header("Authorization", self._authorization)
        error = dict(endpoint=self._shown(url), model=self.model_name, signature=signature_name)
        try:
            with http_deadline.opener(deadline, _NoRedirects()).open(request, timeout=deadline.timeout()) as response:
                return self._read(response, error)
        except urllib.error.HTTPError as http_error:
            with http_error:
                if 300 <= http_error.code < 400:
                    location = http_error.headers.get("Location", "(no Location header)")
                    raise ServingError(
                        f"The server answered with a redirect (HTTP {http_error.code}) to {location}; redirects "
                        "are not followed (a POST would be re-sent as a GET, or to another server). Use the TF "
                        "Serving REST address itself as base_url.", status=http_error.code, **error) from None
                error_body = http_deadline.read_up_to(http_error, min(_MAX_ERROR_BODY_BYTES, self.max_response_bytes))
                message = rest_json.error_message(error_body)
            code = _HTTP_CODES.get(http_error.code, "UNKNOWN")
            raise ServingError(message, code=code, status=http_error.code, retryable=code in RETRYABLE_CODES,
                               **error) from None
        except urllib.error.URLError as url_error:  # raised while connecting or sending
            raise self._transport_error(url_error.reason, deadline, error) from None
        except (OSError, http.client.HTTPException) as transport_error:  # raised while reading the response
            raise self._transport_error(transport_error, deadline, error) from None

    def _read(self, response, error):
        limit = self.max_response_bytes
        length = response.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            raise self._too_large(f"its Content-Length is {int(length)} bytes", error)
        body = http_deadline.read_up_to(response, limit + 1)
        if len(body) > limit:
            raise self._too_large("more arrived", error)
        return body

    def _too_large(self, what, error):
        return ServingError(
            f"The response is larger than {self.max_response_bytes} bytes (max_response_bytes); {what}. Send "
            "smaller batches, or raise max_response_bytes.", code="RESOURCE_EXHAUSTED", **error)

    def _transport_error(self, reason, deadline, error):
        if isinstance(reason, TimeoutError) or deadline.expired():
            return ServingError(f"No complete response within the timeout of {self.timeout:g} s for the whole call "
                                f"({reason})", code="DEADLINE_EXCEEDED", **error)
        retryable = isinstance(reason, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError))
        return ServingError(f"Connection failed: {reason!r}", code="UNAVAILABLE", retryable=retryable, **error)

    def _shown(self, url):
        """`url` as errors show it: under the base URL as given, credentials redacted."""
        return self._shown_base_url + url[len(self.base_url):] if url.startswith(self.base_url) else url

    def _parse(self, parser, url, signature_name, payload, *args):
        try:
            return parser(payload, *args)
        except ServingError as parse_error:
            raise ServingError(parse_error.message, code=parse_error.code, endpoint=self._shown(url),
                               model=self.model_name, signature=signature_name) from None
        except ValueError as parse_error:  # not JSON
            raise ServingError(f"Unreadable response ({parse_error}): {rest_json.error_message(payload)}",
                               code="INTERNAL", endpoint=self._shown(url), model=self.model_name,
                               signature=signature_name) from None


def _split_credentials(url):
    """"http://user:pw@host:8501" -> ("http://host:8501", "Basic <base64 of user:pw>"); else (url, None)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    if not userinfo:
        return urllib.parse.urlunsplit(parts._replace(netloc=host)), None
    user, _, password = userinfo.partition(":")
    credentials = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode("utf-8")
    authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), authorization


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect falls through to urllib's HTTPError (handled in `_attempt`)."""

    def redirect_request(self, request, fp, code, msg, headers, newurl):
        return None
