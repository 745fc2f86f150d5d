"""`ServingError`, the one error the clients raise, and the retry loop that decides what is transient.

Retried (predict, metadata and model status are idempotent, so a repeat is safe), with backoff:
- UNAVAILABLE (HTTP 503): TF Serving's batching queue is full (shared_batch_scheduler.h; it
  drains), the server is shutting down or, on gRPC, unreachable;
- RESOURCE_EXHAUSTED (HTTP 429, TF Serving's mapping in model_servers/http_server.cc,
  ToHTTPStatusCode): e.g. a request that waited in the batching queue past its timeout
  (batching_session.cc, ProcessBatch), or a proxy's rate limit;
- connection refused or reset (a server restarting; at first start TF Serving opens its ports only
  once the model is loaded).
Not retried: timeouts (a stalled server would cost `timeout` again on every attempt and an
overloaded one would get more load) and every other status, which repeating would not change:
INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE (all HTTP 400: bad input, or
`classify_token_ids` rows of different lengths merged under batching), NOT_FOUND (HTTP 404: an
unknown model, signature or version, or one not loaded yet), and the rest. With a `deadline` (the
REST client's one deadline per request), no retry starts whose backoff would end past it.

Credentials in URLs (`http://user:password@host`) never reach a message: `ServingError` redacts
them (`http://user:***@host`) in its message and endpoint, whatever produced the text.
"""

import random
import re
import time

# The canonical status names (gRPC's, and REST's mapped back) worth another attempt.
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED"})

# scheme://userinfo@ ; the userinfo runs to the last "@" before the host's end, as urllib splits it.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s]*)@")


def redact_credentials(text):
    """`text` with every URL's userinfo hidden: `user:password@` -> `user:***@`, `token@` -> `***@`."""
    if not isinstance(text, str):
        return text

    def hide(match):
        user, colon, _ = match.group(2).partition(":")
        return f"{match.group(1)}{user}:***@" if colon else f"{match.group(1)}***@"

    return _URL_USERINFO.sub(hide, text)


class ServingError(Exception):
    """A request to TF Serving failed.

    Attributes:
        message: the server's error message (TF Serving's `error` field or gRPC details), or a
            description of the transport failure. URL credentials are redacted, here and in `endpoint`.
        code: canonical status name, the same vocabulary for REST and gRPC ("INVALID_ARGUMENT",
            "NOT_FOUND", "UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
        status: the HTTP status for REST errors with a response, else None.
        retryable: whether this kind of failure was worth retrying (it was, `attempts` times).
        endpoint, model, signature: what was called.
        attempts: how many attempts were made.
    """

    def __init__(self, message, *, code="UNKNOWN", status=None, retryable=False, endpoint=None, model=None,
                 signature=None, attempts=1):
        self.message = redact_credentials(message)
        self.code = code
        self.status = status
        self.retryable = retryable
        self.endpoint = redact_credentials(endpoint)
        self.model = model
        self.signature = signature
        self.attempts = attempts
        super().__init__(self.message)

    def __str__(self):
        what = self.model or "?"
        if self.signature:
            what += f" (signature {self.signature!r})"
        where = f" at {self.endpoint}" if self.endpoint else ""
        status = f", HTTP {self.status}" if self.status is not None else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"TF Serving request to model {what}{where} failed{tries}: {self.code}{status}: {self.message}"


def call_with_retries(attempt, *, retries, backoff, sleep=time.sleep, deadline=None, clock=time.monotonic):
    """Returns `attempt()`, retrying up to `retries` times while it raises a retryable `ServingError`.

    The n-th retry waits `backoff * 2**n` seconds scaled by a random factor in [0.5, 1], so many
    clients that failed together (a server restart) do not come back in lockstep. With a
    `deadline` (a `clock()` time), the last error is raised instead of a wait that would reach it.
    """
    for retry in range(retries + 1):
        try:
            return attempt()
        except ServingError as error:
            error.attempts = retry + 1
            if not error.retryable or retry == retries:
                raise
            pause = backoff * 2**retry * random.uniform(0.5, 1.0)
            if deadline is not None and clock() + pause >= deadline:
                raise
        sleep(pause)
    raise AssertionError("unreachable")
