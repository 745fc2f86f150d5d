"""The hub download path (hf:// handles and named presets) against a local HTTP server laid out
like the Hugging Face Hub: `<root>/<owner>/<name>/resolve/<revision>/<file>`. Only 127.0.0.1
is ever contacted; the cache is always under tmp_path."""

import functools
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from preset_helpers import (  # noqa: F401 (fixtures)
    TEXTS,
    hf_classifier_checkpoint,
    isolated_hub_environment,
    named_values,
    small_backbone,
)
from roberta_tf.models import RobertaBackbone, RobertaTextClassifier, XLMRobertaTextClassifier
from roberta_tf.presets import hub as hub_module
from roberta_tf.presets import registry
from roberta_tf.presets.preset_format import PresetError

CHECKPOINT_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")
NAMED_PRESETS = ("roberta_base_en", "roberta_large_en", "xlm_roberta_base_multi", "xlm_roberta_large_multi")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files; records the requests and their headers instead of logging to stderr."""

    requests = None  # set per server

    def do_GET(self):
        self.requests.append((self.path, dict(self.headers)))
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """`serve(root)` or `serve(handler=...)` -> a running ThreadingHTTPServer on 127.0.0.1;
    `tls=(certificate, key)` serves HTTPS."""
    servers = []

    def start(root=None, handler=None, tls=None):
        requests = []
        if handler is None:
            handler = functools.partial(type("Handler", (_QuietHandler,), {"requests": requests}), directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        server.requests = requests
        server.endpoint = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hub_root(hf_classifier_checkpoint, tmp_path_factory):
    """A hub tree: owner/name (the RoBERTa classifier), owner/name at revision v1, and owner/xlmr
    (the same weights as an XLM-R-like checkpoint with a SentencePiece model, no vocab.json)."""
    checkpoint, _ = hf_classifier_checkpoint
    root = tmp_path_factory.mktemp("hub")
    for revision in ("main", "v1"):
        files = root / "owner" / "name" / "resolve" / revision
        files.mkdir(parents=True)
        for name in CHECKPOINT_FILES:
            (files / name).symlink_to((checkpoint / name).resolve())
    xlmr = root / "owner" / "xlmr" / "resolve" / "main"
    xlmr.mkdir(parents=True)
    config = json.loads((checkpoint / "config.json").read_text())
    config["model_type"] = "xlm-roberta"
    (xlmr / "config.json").write_text(json.dumps(config))
    (xlmr / "model.safetensors").symlink_to(checkpoint / "model.safetensors")
    (xlmr / "sentencepiece.bpe.model").write_bytes(b"\x0a\x0bnot a real sentencepiece model")
    return root


@pytest.fixture
def hub(serve, hub_root, monkeypatch):
    server = serve(hub_root)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    return server


@pytest.fixture(scope="module")
def reference(hf_classifier_checkpoint):
    """(inputs, logits): TEXTS preprocessed and classified by the checkpoint directory loaded
    directly (no hub)."""
    checkpoint, _ = hf_classifier_checkpoint
    classifier = RobertaTextClassifier.from_preset(str(checkpoint))
    inputs = {k: v.numpy() for k, v in classifier.preprocessor(tf.constant(TEXTS)).items()}
    return inputs, classifier(inputs).numpy()


def _assert_same_classifier(classifier, reference):
    """Same logits on the reference ids (and, with a preprocessor, the same ids)."""
    inputs, logits = reference
    if classifier.preprocessor is not None:
        ids = classifier.preprocessor(tf.constant(TEXTS))
        np.testing.assert_array_equal(ids["token_ids"].numpy(), inputs["token_ids"])
        np.testing.assert_array_equal(ids["padding_mask"].numpy(), inputs["padding_mask"])
    assert np.max(np.abs(classifier(inputs).numpy() - logits)) == 0


@pytest.fixture
def named_preset_on_hub(monkeypatch):
    """roberta_base_en pointing at the served owner/name repository."""
    entry = {**registry.PRESETS["roberta_base_en"], "hf_repo": "owner/name", "files": CHECKPOINT_FILES}
    monkeypatch.setitem(registry.PRESETS, "roberta_base_en", entry)
    return entry


def _cache(tmp_path):
    return tmp_path / "cache"


def _cached_files(tmp_path):
    cache = _cache(tmp_path)
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# === Downloads ===


def test_hf_handle_downloads_into_the_cache(hub, hf_classifier_checkpoint, reference, tmp_path):
    checkpoint, _ = hf_classifier_checkpoint
    classifier = RobertaTextClassifier.from_preset("hf://owner/name")
    assert classifier.label_names == ["neg", "neu", "pos"]
    _assert_same_classifier(classifier, reference)
    # Optional files the repository lacks are remembered as absent (no request next time).
    assert _cached_files(tmp_path) == sorted(
        [f"hub/owner--name/main/{name}" for name in CHECKPOINT_FILES]
        + ["hub/owner--name/main/sentencepiece.bpe.model.absent", "hub/owner--name/main/tokenizer.json.absent"]
    )
    for name in CHECKPOINT_FILES:
        cached = _cache(tmp_path) / "hub" / "owner--name" / "main" / name
        assert cached.read_bytes() == (checkpoint / name).read_bytes(), name
    assert not list(_cache(tmp_path).rglob("*.part"))
    paths = [path for path, _ in hub.requests]
    assert "/owner/name/resolve/main/config.json" in paths
    assert "/owner/name/resolve/main/model.safetensors" in paths


def test_hf_handle_with_a_revision(hub, tmp_path):
    backbone = RobertaBackbone.from_preset("hf://owner/name@v1")
    assert backbone.num_layers == 2
    assert all(path.startswith("/owner/name/resolve/v1/") for path, _ in hub.requests)
    assert (_cache(tmp_path) / "hub" / "owner--name" / "v1" / "model.safetensors").is_file()


def test_cached_hf_handle_loads_with_the_server_down(hub, reference):
    RobertaTextClassifier.from_preset("hf://owner/name", preprocessor=None)
    hub.shutdown()
    hub.server_close()
    classifier = RobertaTextClassifier.from_preset("hf://owner/name")
    _assert_same_classifier(classifier, reference)


def test_cached_hf_handle_loads_offline(hub, monkeypatch):
    first = RobertaTextClassifier.from_preset("hf://owner/name", preprocessor=None)
    requests_before = len(hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    second = RobertaTextClassifier.from_preset("hf://owner/name", preprocessor=None)
    assert len(hub.requests) == requests_before
    for name, value in named_values(first).items():
        np.testing.assert_array_equal(named_values(second)[name], value, err_msg=name)


def test_named_preset_downloads_through_the_hub(hub, named_preset_on_hub, reference, tmp_path):
    classifier = RobertaTextClassifier.from_preset("roberta_base_en")
    assert classifier.label_names == ["neg", "neu", "pos"]
    _assert_same_classifier(classifier, reference)
    assert sorted(path for path, _ in hub.requests) == sorted(
        f"/owner/name/resolve/main/{name}" for name in CHECKPOINT_FILES
    )
    assert _cached_files(tmp_path) == sorted(f"hub/owner--name/main/{name}" for name in CHECKPOINT_FILES)
    hub.shutdown()
    hub.server_close()
    again = RobertaBackbone.from_preset("roberta_base_en")
    for name, value in named_values(classifier.backbone).items():
        np.testing.assert_array_equal(named_values(again)[name], value, err_msg=name)


def test_hf_token_is_sent_as_bearer_authorization(hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    RobertaBackbone.from_preset("hf://owner/name")
    assert hub.requests
    assert all(headers.get("Authorization") == "Bearer hf_test_token" for _, headers in hub.requests)


# === Failures ===


def test_offline_with_an_empty_cache_fails_quickly(named_preset_on_hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(PresetError, match="HF_HUB_OFFLINE") as error:
        RobertaTextClassifier.from_preset("roberta_base_en")
    assert time.monotonic() - start < 2
    assert "owner/name/config.json is not in the cache" in str(error.value)
    assert _cached_files(tmp_path) == []


def test_unreachable_hub_fails_quickly_without_partial_files(named_preset_on_hub, monkeypatch, tmp_path):
    port = _closed_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(PresetError, match="The model hub may be unreachable") as error:
        RobertaTextClassifier.from_preset("roberta_base_en")
    assert time.monotonic() - start < 5
    assert f"http://127.0.0.1:{port}/owner/name/resolve/main/config.json" in str(error.value)
    assert _cached_files(tmp_path) == []


def test_stalled_hub_times_out(monkeypatch, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete in the backlog; nothing ever answers
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("ROBERTA_TF_HUB_TIMEOUT", "1")
        start = time.monotonic()
        with pytest.raises(PresetError, match="may be unreachable"):
            RobertaBackbone.from_preset("hf://owner/name")
        assert time.monotonic() - start < 5
    assert _cached_files(tmp_path) == []


def test_missing_required_file_names_the_url(hub, monkeypatch, tmp_path):
    entry = {**registry.PRESETS["roberta_base_en"], "hf_repo": "owner/name", "files": ("config.json", "absent.bin")}
    monkeypatch.setitem(registry.PRESETS, "roberta_base_en", entry)
    url = f"{hub.endpoint}/owner/name/resolve/main/absent.bin"
    with pytest.raises(PresetError, match="HTTP 404") as error:
        RobertaBackbone.from_preset("roberta_base_en")
    assert url in str(error.value)
    assert not list(_cache(tmp_path).rglob("*.part"))


def test_unknown_hf_repository_names_the_url(hub):
    with pytest.raises(PresetError, match="HTTP 404") as error:
        RobertaBackbone.from_preset("hf://owner/nothing")
    assert f"{hub.endpoint}/owner/nothing/resolve/main/config.json" in str(error.value)


def test_gated_repository_suggests_hf_token(serve, monkeypatch):
    class Forbidden(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(403, "Forbidden")

        def log_message(self, *args):
            pass

    server = serve(handler=Forbidden)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    with pytest.raises(PresetError, match="HTTP 403.*set HF_TOKEN"):
        RobertaBackbone.from_preset("hf://owner/gated")


def test_truncated_download_is_an_error_and_leaves_no_partial_file(serve, monkeypatch, tmp_path):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"model_type": ')  # then the connection closes

        def log_message(self, *args):
            pass

    server = serve(handler=Truncating)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    with pytest.raises(PresetError, match=r"download truncated \(15 of 1000 bytes\)"):
        RobertaBackbone.from_preset("hf://owner/name")
    assert _cached_files(tmp_path) == []


def test_malformed_hf_handle():
    with pytest.raises(PresetError, match="hf://owner/name"):
        RobertaBackbone.from_preset("hf://no-slash")


# === Hardening (issue 11): redirects, revisions and paths, sizes, deadlines ===


class _Answering(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a small JSON body and records (path, headers)."""

    requests = None
    body = b'{"model_type": "roberta"}'

    def do_GET(self):
        self.requests.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _answering(serve, body=None):
    requests = []
    attributes = {"requests": requests} if body is None else {"requests": requests, "body": body}
    server = serve(handler=type("Answering", (_Answering,), attributes))
    server.requests = requests
    return server


def _redirecting(serve, target, same_origin_prefix=None):
    """A server that records (path, headers) and redirects every GET to `target` + path; paths under
    `same_origin_prefix` (old, new) first go to new on this server (a renamed repository)."""
    requests = []

    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append((self.path, dict(self.headers)))
            self.send_response(302)
            if same_origin_prefix and self.path.startswith(same_origin_prefix[0]):
                self.send_header("Location", same_origin_prefix[1] + self.path[len(same_origin_prefix[0]):])
            else:
                self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return requests, Redirecting


def test_token_is_kept_on_same_origin_redirects_and_dropped_when_leaving_the_origin(serve, hub_root, monkeypatch):
    """The hub redirects LFS files to a CDN on another host: the token must not follow. A renamed
    repository redirects on the hub itself: the token must (private repositories)."""
    cdn = serve(hub_root)  # another port of 127.0.0.1: another origin
    first_requests, handler = _redirecting(serve, cdn.endpoint, same_origin_prefix=("/owner/old/", "/owner/name/"))
    first = serve(handler=handler)
    monkeypatch.setenv("HF_ENDPOINT", first.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    directory = hub_module.download("owner/old", ["config.json"])
    assert (directory / "config.json").is_file()
    assert [path for path, _ in first_requests] == ["/owner/old/resolve/main/config.json",
                                                    "/owner/name/resolve/main/config.json"]
    assert all(headers.get("Authorization") == "Bearer hf_secret_token" for _, headers in first_requests)
    assert [path for path, _ in cdn.requests] == ["/owner/name/resolve/main/config.json"]
    assert [headers.get("Authorization") for _, headers in cdn.requests] == [None]


def test_no_redirect_to_other_schemes(serve, monkeypatch, tmp_path):
    _, handler = _redirecting(serve, "ftp://127.0.0.1:9")
    monkeypatch.setenv("HF_ENDPOINT", serve(handler=handler).endpoint)
    with pytest.raises(PresetError, match="redirect"):
        hub_module.download("owner/name", ["config.json"])
    assert _cached_files(tmp_path) == []


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory):
    """(certificate, key) for 127.0.0.1, self-signed with the openssl command (skip without it)."""
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
            check=True, capture_output=True, timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot make a local TLS certificate with openssl: {error}")
    return certificate, key


def test_https_to_http_redirect_is_refused(serve, hub_root, tls_certificate, monkeypatch, tmp_path):
    """A real local TLS server (its self-signed certificate trusted through SSL_CERT_FILE)."""
    plain = serve(hub_root)
    _, handler = _redirecting(serve, plain.endpoint)
    secure = serve(handler=handler, tls=tls_certificate)
    served = serve(hub_root, tls=tls_certificate)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_certificate[0]))
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    monkeypatch.setenv("HF_ENDPOINT", served.endpoint)  # the TLS set-up itself works
    assert (hub_module.download("owner/name", ["config.json"]) / "config.json").is_file()
    monkeypatch.setenv("HF_ENDPOINT", secure.endpoint)
    with pytest.raises(PresetError, match="from HTTPS to plain HTTP") as error:
        hub_module.download("owner/name", ["config.json"], revision="v1")
    assert plain.endpoint in str(error.value)
    assert plain.requests == []
    assert not (_cache(tmp_path) / "hub" / "owner--name" / "v1" / "config.json").exists()


@pytest.mark.parametrize("handle", [
    "hf://owner/name@../../x", "hf://owner/name@/abs", "hf://owner/name@..", "hf://owner/name@.",
    "hf://owner/name@a/../b", "hf://owner/name@a/./b", "hf://owner/name@a//b", "hf://owner/name@a/",
    "hf://owner/name@.hidden", "hf://owner/name@a\\b", "hf://owner/name@..\\x", "hf://owner/name@a\x00b",
    "hf://owner/name@a\nb", "hf://owner/name@a b", "hf://owner/name@a:b", "hf://owner/name@" + "x" * 256,
    "hf://owner/..", "hf://owner/a..b", "hf://own--er/name", "hf://owner/-name",
])
def test_unsafe_handles_are_refused(handle):
    with pytest.raises(PresetError, match="Revision|hf://owner/name"):
        hub_module.parse_handle(handle)


@pytest.mark.parametrize("handle,revision", [
    ("hf://owner/name", "main"), ("hf://owner/name@v1.0", "v1.0"), ("hf://owner/name@refs/pr/3", "refs/pr/3"),
    ("hf://owner/name@" + "0123456789abcdef" * 2 + "01234567", "0123456789abcdef" * 2 + "01234567"),
    ("hf://FacebookAI/xlm-roberta-large@my_branch-2", "my_branch-2"),
])
def test_revisions_that_are_commits_branches_or_tags(handle, revision):
    assert hub_module.parse_handle(handle)[1] == revision


@pytest.mark.parametrize("revision", ["../../../escaped", "ABSOLUTE"])
def test_escaping_revision_writes_nothing_outside_the_cache(serve, revision, monkeypatch, tmp_path):
    server = _answering(serve)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    outside = tmp_path / "escaped"
    if revision == "ABSOLUTE":
        revision = str(outside)  # "@/abs", kept under tmp_path in case it is not refused
    with pytest.raises(PresetError, match="(?i)revision"):
        RobertaBackbone.from_preset(f"hf://owner/name@{revision}")
    with pytest.raises(PresetError, match="(?i)revision"):
        hub_module.download("owner/name", ["config.json"], revision=revision)
    assert not outside.exists()
    assert server.requests == []
    assert _cached_files(tmp_path) == []


@pytest.mark.parametrize("filename", ["../../../escaped.json", "/abs.json", "a/../../b.json", "a\\b.json", ""])
def test_file_names_cannot_leave_the_cache(serve, filename, monkeypatch, tmp_path):
    server = _answering(serve)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    if filename == "/abs.json":
        filename = str(tmp_path / "abs.json")
    with pytest.raises(PresetError, match="(?i)file name"):
        hub_module.download("owner/name", [filename])
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "abs.json").exists()
    assert server.requests == []


def test_a_symlink_in_the_cache_that_leaves_it_is_refused(serve, monkeypatch, tmp_path):
    server = _answering(serve)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    outside = tmp_path / "outside"
    outside.mkdir()
    repository = _cache(tmp_path) / "hub" / "owner--name"
    repository.mkdir(parents=True)
    (repository / "main").symlink_to(outside)
    with pytest.raises(PresetError, match="outside the cache"):
        hub_module.download("owner/name", ["config.json"])
    assert list(outside.iterdir()) == []


def test_the_cache_root_itself_may_be_a_symlink(serve, monkeypatch, tmp_path):
    server = _answering(serve)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    (tmp_path / "disk").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "disk")
    monkeypatch.setenv("ROBERTA_TF_CACHE", str(tmp_path / "linked"))
    hub_module.download("owner/name", ["config.json"], revision="refs/pr/3")
    assert (tmp_path / "disk" / "hub" / "owner--name" / "refs" / "pr" / "3" / "config.json").is_file()
    assert server.requests[0][0] == "/owner/name/resolve/refs%2Fpr%2F3/config.json"


def test_default_size_limits_fit_real_checkpoints():
    weights = hub_module.download_limits("model.safetensors")
    assert weights.max_bytes >= 3 * 10**9  # xlm-roberta-large: 2.24 GB; roberta-large 1.42 GB
    assert hub_module.download_limits("pytorch_model.bin").max_bytes == weights.max_bytes
    for name in ("config.json", "vocab.json", "merges.txt", "tokenizer.json", "sentencepiece.bpe.model"):
        limits = hub_module.download_limits(name)
        assert 20 * 10**6 < limits.max_bytes < 40 * 10**6, name  # xlm-roberta's tokenizer.json: 17 MB
        assert limits.deadline < weights.deadline, name


def _oversized(serve, size, content_length):
    class Oversized(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # without Content-Length the body ends when the connection closes

        def do_GET(self):
            self.send_response(200)
            if content_length:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                self.wfile.write(b" " * size)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    return serve(handler=Oversized)


@pytest.mark.parametrize("content_length", [True, False], ids=["content-length", "streamed"])
def test_oversized_file_is_refused_without_a_partial_file(serve, content_length, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", _oversized(serve, 200_000, content_length).endpoint)
    monkeypatch.setenv("ROBERTA_TF_HUB_MAX_FILE_BYTES", "1000")
    with pytest.raises(PresetError, match="ROBERTA_TF_HUB_MAX_FILE_BYTES") as error:
        RobertaBackbone.from_preset("hf://owner/name")
    assert "config.json" in str(error.value) and "1000 bytes" in str(error.value)
    assert _cached_files(tmp_path) == []


def test_weights_have_their_own_size_limit(serve, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", _oversized(serve, 5000, True).endpoint)
    monkeypatch.setenv("ROBERTA_TF_HUB_MAX_WEIGHTS_BYTES", "4000")
    directory = hub_module.download("owner/name", ["config.json"])  # 5000 bytes: under the small-file limit
    assert (directory / "config.json").stat().st_size == 5000
    with pytest.raises(PresetError, match="ROBERTA_TF_HUB_MAX_WEIGHTS_BYTES"):
        hub_module.download("owner/name", ["model.safetensors"])
    assert _cached_files(tmp_path) == ["hub/owner--name/main/config.json"]


@pytest.mark.parametrize("name,value", [("ROBERTA_TF_HUB_MAX_FILE_BYTES", "lots"),
                                        ("ROBERTA_TF_HUB_FILE_DEADLINE", "-1"),
                                        ("ROBERTA_TF_HUB_TIMEOUT", "soon")])
def test_invalid_limit_variables_are_named(name, value, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(PresetError, match=name):
        hub_module.download("owner/name", ["config.json"])


def _trickling(serve, where):
    """Sends 1 byte every 0.1 s: of the body (`where="body"`) or of the headers (`"headers"`)."""

    class Trickling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                if where == "headers":
                    self.wfile.write(b"HTTP/1.0 200 OK\r\n")
                    for byte in b"X-Slow: " + b"x" * 40:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                self.send_response(200)
                self.send_header("Content-Length", "40")
                self.end_headers()
                self.wfile.flush()
                for _ in range(40):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    return serve(handler=Trickling)


@pytest.mark.parametrize("where", ["body", "headers"])
def test_trickling_hub_hits_the_overall_deadline(serve, where, monkeypatch, tmp_path):
    """Each read returns within ROBERTA_TF_HUB_TIMEOUT (5 s here); only an overall deadline stops it."""
    monkeypatch.setenv("HF_ENDPOINT", _trickling(serve, where).endpoint)
    monkeypatch.setenv("ROBERTA_TF_HUB_FILE_DEADLINE", "1")
    start = time.monotonic()
    with pytest.raises(PresetError, match="ROBERTA_TF_HUB_FILE_DEADLINE") as error:
        hub_module.download("owner/name", ["config.json"])
    assert time.monotonic() - start < 2
    assert "/owner/name/resolve/main/config.json" in str(error.value)
    assert _cached_files(tmp_path) == []


# === The registry ===


def test_presets_lists_the_named_presets():
    presets = RobertaTextClassifier.presets
    assert sorted(presets) == sorted(NAMED_PRESETS)
    assert RobertaBackbone.presets is presets
    base = presets["roberta_base_en"]["backbone"]
    assert (base["num_layers"], base["hidden_dim"], base["num_heads"], base["intermediate_dim"]) == (12, 768, 12, 3072)
    assert base["vocabulary_size"] == 50265 and base["max_sequence_length"] == 512
    large = presets["roberta_large_en"]["backbone"]
    geometry = (large["num_layers"], large["hidden_dim"], large["num_heads"], large["intermediate_dim"])
    assert geometry == (24, 1024, 16, 4096)
    assert presets["xlm_roberta_base_multi"]["backbone"]["vocabulary_size"] == 250002
    assert presets["xlm_roberta_large_multi"]["backbone"]["vocabulary_size"] == 250002
    assert {name: presets[name]["hf_repo"] for name in NAMED_PRESETS} == {
        "roberta_base_en": "FacebookAI/roberta-base",
        "roberta_large_en": "FacebookAI/roberta-large",
        "xlm_roberta_base_multi": "FacebookAI/xlm-roberta-base",
        "xlm_roberta_large_multi": "FacebookAI/xlm-roberta-large",
    }
    for name in NAMED_PRESETS:
        assert "config.json" in presets[name]["files"] and "model.safetensors" in presets[name]["files"]
    assert presets["roberta_base_en"]["tokenizer"] == "byte_level_bpe"
    assert presets["xlm_roberta_base_multi"]["tokenizer"] == "sentencepiece"


def test_preset_parameter_counts():
    # Hugging Face roberta-base has 124,645,632 parameters; without its pooler (768 * 768 + 768)
    # and token-type row (768), which roberta_tf does not have, 124,054,272 remain.
    assert registry.PRESETS["roberta_base_en"]["params"] == 124_645_632 - 590_592 - 768
    backbone = small_backbone()
    assert registry.parameter_count(backbone.get_config()) == backbone.count_params()


# === XLM-RoBERTa-like checkpoints (SentencePiece tokenizer) ===


def test_xlmr_like_directory_with_a_broken_sentencepiece_model_names_it(hub_root):
    directory = hub_root / "owner" / "xlmr" / "resolve" / "main"
    for preprocessor in (None, "auto"):  # the converter checks the tokenizer against the embedding either way
        with pytest.raises(PresetError, match="sentencepiece.bpe.model: not a valid SentencePiece model"):
            XLMRobertaTextClassifier.from_preset(str(directory), preprocessor=preprocessor)


def test_xlmr_like_hf_handle_downloads_the_sentencepiece_model(hub, tmp_path):
    with pytest.raises(PresetError, match="not a valid SentencePiece model"):
        XLMRobertaTextClassifier.from_preset("hf://owner/xlmr", preprocessor=None)
    cached = _cache(tmp_path) / "hub" / "owner--xlmr" / "main"
    assert (cached / "sentencepiece.bpe.model").is_file() and not (cached / "vocab.json").exists()


