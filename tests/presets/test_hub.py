"""The hub download path (hf:// handles and named presets) against a local HTTP server laid out
like the Hugging Face Hub: `<root>/<owner>/<name>/resolve/<revision>/<file>`. Only 127.0.0.1
is ever contacted; the cache is always under tmp_path."""

import functools
import http.server
import json
import socket
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
from roberta_tf.models import RobertaBackbone, RobertaTextClassifier
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
    """`serve(root)` or `serve(handler=...)` -> a running ThreadingHTTPServer on 127.0.0.1."""
    servers = []

    def start(root=None, handler=None):
        requests = []
        if handler is None:
            handler = functools.partial(type("Handler", (_QuietHandler,), {"requests": requests}), directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.requests = requests
        server.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
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


def test_xlmr_like_directory_loads_without_a_preprocessor(hub_root, hf_classifier_checkpoint):
    directory = hub_root / "owner" / "xlmr" / "resolve" / "main"
    classifier = RobertaTextClassifier.from_preset(str(directory), preprocessor=None)
    assert classifier.preprocessor is None
    reference = RobertaTextClassifier.from_preset(str(hf_classifier_checkpoint[0]), preprocessor=None)
    for name, value in named_values(reference).items():
        np.testing.assert_array_equal(named_values(classifier)[name], value, err_msg=name)


def test_xlmr_like_directory_with_a_preprocessor_names_sentencepiece(hub_root):
    directory = hub_root / "owner" / "xlmr" / "resolve" / "main"
    with pytest.raises(PresetError, match="SentencePiece.*preprocessor=None"):
        RobertaTextClassifier.from_preset(str(directory))


def test_xlmr_like_hf_handle(hub, tmp_path):
    classifier = RobertaTextClassifier.from_preset("hf://owner/xlmr", preprocessor=None)
    assert classifier.num_classes == 3
    cached = _cache(tmp_path) / "hub" / "owner--xlmr" / "main"
    assert (cached / "sentencepiece.bpe.model").is_file() and not (cached / "vocab.json").exists()
    with pytest.raises(PresetError, match="SentencePiece"):
        RobertaTextClassifier.from_preset("hf://owner/xlmr")
