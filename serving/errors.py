"""`ServingError`, the one error the clients raise, and the retry loop that decides what is transient.

Retried (predict and model status are idempotent, so a repeat is safe): connection refused or
reset (a server restarting, a pod not yet listening), HTTP 503 / gRPC UNAVAILABLE (TF Serving's
answer when its batching queue is full or the model is not loaded yet) and HTTP 429 (a proxy or
gateway rate limit). Not retried: timeouts (a stalled server would cost `timeout` again on every
attempt and an overloaded one would get more load) and every other error, which repeating
would not change (bad input, unknown model or signature).
"""

import random
import time


class ServingError(Exception):
    """A request to TF Serving failed.

    Attributes:
        message: the server's error message (TF Serving's `error` field or gRPC details), or a
            description of the transport failure.
        code: canonical status name, the same vocabulary for REST and gRPC ("INVALID_ARGUMENT",
            "NOT_FOUND", "UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
        status: the HTTP status for REST errors with a response, else None.
        retryable: whether this kind of failure was worth retrying (it was, `attempts` times).
        endpoint, model, signature: what was called.
        attempts: how many attempts were made.
    """

    def __init__(self, message, *, code="UNKNOWN", status=None, retryable=False, endpoint=None, model=None,
                 signature=None, attempts=1):
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.endpoint = endpoint
        self.model = model
        self.signature = signature
        self.attempts = attempts
        super().__init__(message)

    def __str__(self):
        what = self.model or "?"
        if self.signature:
            what += f" (signature {self.signature!r})"
        where = f" at {self.endpoint}" if self.endpoint else ""
        status = f", HTTP {self.status}" if self.status is not None else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"TF Serving request to model {what}{where} failed{tries}: {self.code}{status}: {self.message}"


def call_with_retries(attempt, *, retries, backoff, sleep=time.sleep):
    """Returns `attempt()`, retrying up to `retries` times while it raises a retryable `ServingError`.

    The n-th retry waits `backoff * 2**n` seconds scaled by a random factor in [0.5, 1], so many
    clients that failed together (a server restart) do not come back in lockstep.
    """
    for retry in range(retries + 1):
        try:
            return attempt()
        except ServingError as error:
            error.attempts = retry + 1
            if not error.retryable or retry == retries:
                raise
        sleep(backoff * 2**retry * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")
