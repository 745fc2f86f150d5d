"""urllib with one deadline per request: connecting, sending and every read of the headers and
body share it, so a server that trickles a byte at a time is cut off when the deadline passes
(urllib's own `timeout` bounds each socket operation, so such a server is never cut off).

    deadline = Deadline(30.0, stall=10.0)
    with opener(deadline, redirect_handler).open(request, timeout=deadline.timeout()) as response:
        body = read_up_to(response, limit)

Used by the hub downloads (`presets/hub.py`) and the TF Serving REST client (`serving/`). Not
covered: the DNS lookup, and a proxy's CONNECT handshake (bounded per read only).
"""

import functools
import http.client
import io
import time
import urllib.request


class Deadline:
    """`seconds` from now (None: no deadline, blocking sockets as urllib's timeout=None); each
    socket operation also waits at most `stall` seconds when given."""

    def __init__(self, seconds, stall=None):
        self.end = None if seconds is None else time.monotonic() + seconds
        self.stall = stall

    def expired(self):
        return self.end is not None and time.monotonic() >= self.end

    def timeout(self):
        """The timeout for the next socket operation; raises TimeoutError once the deadline passed."""
        if self.end is None:
            return self.stall
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline exceeded")
        return remaining if self.stall is None else min(self.stall, remaining)


def opener(deadline, *handlers):
    """A urllib opener whose HTTP(S) connections obey `deadline`, with `handlers` (for example a
    redirect policy) added."""
    return urllib.request.build_opener(*handlers, _HTTPHandler(deadline), _HTTPSHandler(deadline))


def read_up_to(response, limit):
    """At most `limit` bytes of a body, read in pieces (never one `limit`-sized buffer)."""
    chunks, size = [], 0
    while size < limit:
        chunk = response.read(min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _Socket:
    """A connected (plain or TLS) socket whose every send and receive is bounded by the deadline."""

    def __init__(self, sock, deadline):
        self._sock = sock
        self._deadline = deadline

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data, *flags):
        self._sock.settimeout(self._deadline.timeout())
        return self._sock.sendall(data, *flags)

    def makefile(self, mode="r", *args, **kwargs):
        if mode != "rb":
            raise ValueError(f"unexpected socket file mode {mode!r}")
        # The socket's own raw file keeps the connection open while the response is read (urllib
        # closes the connection object right after the headers).
        return io.BufferedReader(_Reader(self._sock.makefile("rb", buffering=0), self._sock, self._deadline))


class _Reader(io.RawIOBase):
    def __init__(self, raw, sock, deadline):
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self):
        return True

    def readinto(self, buffer):
        self._sock.settimeout(self._deadline.timeout())
        return self._raw.readinto(buffer)

    def fileno(self):
        return self._raw.fileno()

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()


class _ConnectionMixin:
    def __init__(self, *args, deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self):
        self.timeout = self._deadline.timeout()  # TCP connect and TLS handshake
        super().connect()
        self.sock = _Socket(self.sock, self._deadline)


class _HTTPConnection(_ConnectionMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_ConnectionMixin, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, request, **kwargs):
        return super().do_open(functools.partial(_HTTPConnection, deadline=self._deadline), request, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline):
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, request, **kwargs):
        return super().do_open(functools.partial(_HTTPSConnection, deadline=self._deadline), request, **kwargs)
