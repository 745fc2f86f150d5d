"""Downloads checkpoint files from the Hugging Face Hub (or a mirror) into a local cache.

Plain HTTPS with the standard library, so no hub client is a dependency. Environment:
  HF_ENDPOINT           hub or mirror URL (default https://huggingface.co), as huggingface_hub
  HF_HUB_OFFLINE=1      never touch the network; cached files only
  HF_TOKEN              bearer token for gated or private repositories
  ROBERTA_TF_CACHE      cache root (default ~/.cache/roberta_tf)
  ROBERTA_TF_HUB_TIMEOUT  seconds a connection or a single read may stall (default 30)
  ROBERTA_TF_HUB_MAX_WEIGHTS_BYTES  size limit of a weights file, *.safetensors or *.bin
                        (default 4 GiB; xlm-roberta-large's model.safetensors is 2.24 GB)
  ROBERTA_TF_HUB_MAX_FILE_BYTES     size limit of any other file (default 32 MiB; the largest
                        expected, xlm-roberta's tokenizer.json, is 17 MB; config.json is ~1 kB)
  ROBERTA_TF_HUB_WEIGHTS_DEADLINE   seconds one weights file may take in all (default 3600)
  ROBERTA_TF_HUB_FILE_DEADLINE      seconds any other file may take in all (default 300)

Rules:
- The token goes to HF_ENDPOINT's origin (scheme, host, port) only: a redirect to another origin
  (the hub sends large files to a CDN) is followed without it, and never gets it back. A redirect
  from HTTPS to plain HTTP, or to a scheme other than HTTP(S), is refused.
- Revisions and file names are checked (`check_revision`, `check_filename`), and every path
  written is resolved and must lie inside `$ROBERTA_TF_CACHE/hub` (a symlinked cache root is fine;
  a symlink inside it that leads out is refused).
- A file larger than its limit is refused (from its Content-Length, else while streaming), and
  one download (connection, headers and body) must finish within its deadline however slowly the
  server trickles; ROBERTA_TF_HUB_TIMEOUT only bounds a single stall.
Files are written to `<name>.part` and renamed when complete, so an interrupted or refused download
is never mistaken for a cached file. An optional file the hub does not have (HTTP 404) leaves an
empty `<name>.absent` marker, so a cached checkpoint loads without asking the hub again.
"""

import collections
import http.client
import os
import pathlib
import re
import urllib.error
import urllib.parse
import urllib.request

from roberta_tf.presets.preset_format import PresetError
from roberta_tf.utils import http_deadline

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT = 30.0
WEIGHT_SUFFIXES = (".safetensors", ".bin")
DEFAULT_MAX_WEIGHTS_BYTES = 4 * 2**30
DEFAULT_MAX_FILE_BYTES = 32 * 2**20
DEFAULT_WEIGHTS_DEADLINE = 3600.0
DEFAULT_FILE_DEADLINE = 300.0

# Hugging Face's repository id rule: owner/name, ASCII letters, digits, "_", "-", ".", starting and
# ending with a letter, digit or "_", at most 96 characters each, no "--" and no "..".
_REPO_PART = r"\w(?:[\w.-]{0,94}\w)?"
_REPO_ID = re.compile(rf"^{_REPO_PART}/{_REPO_PART}$", re.ASCII)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_GIT_FORBIDDEN = frozenset(" ~^:?*[")  # git check-ref-format; "\\" and control characters: every path
_MAX_NAME = 255
_MAX_REDIRECT_BODY = 1 << 20

Limits = collections.namedtuple("Limits", "max_bytes deadline max_bytes_variable deadline_variable")


def cache_root():
    return pathlib.Path(os.environ.get("ROBERTA_TF_CACHE", pathlib.Path.home() / ".cache" / "roberta_tf"))


def offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def parse_handle(handle):
    """"hf://owner/name[@revision]" -> (repo_id, revision); the revision is checked (`check_revision`)."""
    spec = handle[len("hf://"):]
    repo_id, _, revision = spec.partition("@")
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise PresetError(f"{handle!r} is not a Hugging Face handle of the form hf://owner/name[@revision].")
    revision = revision or "main"
    check_revision(revision, repo_id)
    return repo_id, revision


def check_revision(revision, repo_id="the repository"):
    """Raises `PresetError` unless `revision` is a commit hash or a branch or tag name.

    The rule: a 40-digit hex commit hash, or a git ref name such as `main`, `v1.0` or `refs/pr/3`:
    at most 255 characters; `/`-separated components, none empty and none starting with "."
    (so no "." or ".." component and no hidden directory); no leading "/" (no absolute path); no
    backslash, whitespace, control character, or any of `~^:?*[`. The revision names a directory
    of the cache, so this is what keeps a download inside it.
    """
    if isinstance(revision, str) and _COMMIT.match(revision):
        return
    problem = _path_problem(revision)
    if problem is None:
        if any(character in _GIT_FORBIDDEN or character.isspace() for character in revision):
            problem = "it contains whitespace or one of ~^:?*[ (not allowed in git branch or tag names)"
        elif any(part.startswith(".") for part in revision.split("/")):
            problem = "a component starts with '.'"
    if problem is not None:
        raise PresetError(
            f"Revision {revision!r} of {repo_id} is not a commit hash, branch or tag name: {problem}. "
            "Use a branch or tag (hf://owner/name@v1.0, @refs/pr/3) or a 40-character commit hash."
        )


def check_filename(filename, repo_id="the repository"):
    """Raises `PresetError` unless `filename` is a relative path inside a repository: not empty, at
    most 255 characters, no leading "/", no empty, "." or ".." component, no backslash or control
    character."""
    problem = _path_problem(filename)
    if problem is not None:
        raise PresetError(f"File name {filename!r} of {repo_id} cannot be downloaded into the cache: {problem}.")


def _path_problem(text):
    if not isinstance(text, str) or not text:
        return "it is empty"
    if len(text) > _MAX_NAME:
        return f"it is longer than {_MAX_NAME} characters"
    if not text.isprintable():
        return "it contains a control or non-printable character"
    if "\\" in text:
        return "it contains a backslash"
    if text.startswith("/"):
        return "it is an absolute path"
    if any(part in ("", ".", "..") for part in text.split("/")):
        return "it has an empty, '.' or '..' path component"
    return None


def download_limits(filename):
    """(max_bytes, deadline, and the variables that set them) for one file: weights files
    (`*.safetensors`, `*.bin`) get the large limits, every other file the small ones."""
    if filename.endswith(WEIGHT_SUFFIXES):
        size_variable, size_default = "ROBERTA_TF_HUB_MAX_WEIGHTS_BYTES", DEFAULT_MAX_WEIGHTS_BYTES
        time_variable, time_default = "ROBERTA_TF_HUB_WEIGHTS_DEADLINE", DEFAULT_WEIGHTS_DEADLINE
    else:
        size_variable, size_default = "ROBERTA_TF_HUB_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES
        time_variable, time_default = "ROBERTA_TF_HUB_FILE_DEADLINE", DEFAULT_FILE_DEADLINE
    max_bytes = _setting(size_variable, size_default, int, "bytes")
    deadline = _setting(time_variable, time_default, float, "seconds")
    return Limits(max_bytes, deadline, size_variable, time_variable)


def _setting(variable, default, kind, unit):
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise PresetError(
            f"{variable}={raw!r} is not a positive number of {unit}; unset it for the default ({default:g})."
        )
    return value


def download(repo_id, filenames, revision="main", optional=()):
    """Fetches `filenames` (and, where they exist, `optional` ones) of a hub repository.

    Returns the local directory holding them. Cached files are reused without any request. The
    revision and file names are checked first (`check_revision`, `check_filename`).
    """
    check_revision(revision, repo_id)
    for filename in (*filenames, *optional):
        check_filename(filename, repo_id)
    root = (cache_root() / "hub").resolve()  # a symlinked cache root is the user's choice
    directory = root / repo_id.replace("/", "--") / revision
    _check_inside(root, directory)
    directory.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        _fetch(repo_id, revision, filename, root, directory / filename, required=True)
    for filename in optional:
        _fetch(repo_id, revision, filename, root, directory / filename, required=False)
    return directory


def _check_inside(root, *paths):
    for path in paths:
        resolved = path.resolve()
        if resolved != root and root not in resolved.parents:
            raise PresetError(
                f"{path} leads outside the cache ({root}) to {resolved}: refused. Remove the symbolic link "
                "that leads out of the cache, or point ROBERTA_TF_CACHE elsewhere."
            )


def _fetch(repo_id, revision, filename, root, destination, required):
    absent = destination.with_name(destination.name + ".absent")
    partial = destination.with_name(destination.name + ".part")
    _check_inside(root, destination.parent, destination, absent, partial)
    if destination.is_file() or (not required and absent.is_file()):
        return
    url = _url(repo_id, revision, filename)
    if offline():
        if not required:
            return
        raise PresetError(
            f"{repo_id}/{filename} is not in the cache ({destination}) and HF_HUB_OFFLINE is set. "
            "Download the checkpoint elsewhere and pass its directory to from_preset()."
        )
    limits = download_limits(filename)
    stall = _setting("ROBERTA_TF_HUB_TIMEOUT", DEFAULT_TIMEOUT, float, "seconds")
    deadline = http_deadline.Deadline(limits.deadline, stall)
    destination.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(root, destination.parent)
    request = urllib.request.Request(url, headers=_headers())
    try:
        with http_deadline.opener(deadline, _HubRedirects()).open(request, timeout=stall) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected is not None and expected.strip().isdigit() else None
            if expected is not None and expected > limits.max_bytes:
                raise _too_large(url, filename, limits, f"its Content-Length is {expected} bytes")
            size = 0
            with open(partial, "wb") as out:
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > limits.max_bytes:
                        raise _too_large(url, filename, limits, "it sent more")
                    out.write(chunk)
        if expected is not None and size != expected:
            raise PresetError(f"{url}: download truncated ({size} of {expected} bytes).")
        os.replace(partial, destination)
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        error.close()
        if error.code == 404 and not required:
            absent.touch()
            return
        if 300 <= error.code < 400:
            target = _shown(error.headers.get("Location", "(no Location header)"))
            raise PresetError(f"{url}: HTTP {error.code} redirect to {target} not followed (not an HTTP(S) URL).") \
                from None
        hint = " (gated or private: set HF_TOKEN)" if error.code in (401, 403) else ""
        raise PresetError(f"{url}: HTTP {error.code} {error.reason}{hint}.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:  # timeouts, refused connections
        partial.unlink(missing_ok=True)
        if deadline.expired():
            raise PresetError(
                f"Downloading {url} did not finish within {limits.deadline:g} s ({limits.deadline_variable}): the "
                f"hub or mirror is too slow or stalled. On a slow connection raise {limits.deadline_variable}; or "
                "download the checkpoint directory elsewhere and pass its path to from_preset()."
            ) from None
        reason = getattr(error, "reason", error)
        stalled = f" (no data for {stall:g} s, ROBERTA_TF_HUB_TIMEOUT)" if isinstance(reason, TimeoutError) else ""
        raise PresetError(
            f"Could not download {url}: {reason}{stalled}. The model hub may be unreachable from this machine: "
            "download the checkpoint directory elsewhere and pass its path to from_preset(), or set "
            "HF_ENDPOINT to a reachable mirror."
        ) from None
    except BaseException:  # too large, truncated, a refused redirect, an interrupt: no partial file stays
        partial.unlink(missing_ok=True)
        raise


def _too_large(url, filename, limits, what):
    return PresetError(
        f"{url}: {filename} is larger than {limits.max_bytes} bytes, the limit for this file "
        f"({limits.max_bytes_variable}); {what}. If the repository really holds a file this large, raise "
        f"{limits.max_bytes_variable}; otherwise check that HF_ENDPOINT points at the hub or a trusted mirror."
    )


def _url(repo_id, revision, filename):
    endpoint = os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in (revision, filename))
    return f"{endpoint}/{repo_id}/resolve/{quoted}"


def _headers():
    headers = {"User-Agent": "roberta-tf"}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _origin(parts):
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or default_port


def _shown(url):
    """A URL for messages: without credentials, query or fragment (a CDN's signed query is a secret)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class _HubRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, dropping `Authorization` once one leaves the original origin (it is not
    put back if a later one returns); refuses HTTPS -> HTTP and schemes other than HTTP(S)."""

    def redirect_request(self, request, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(request.full_url), urllib.parse.urlsplit(newurl)
        refusal = None
        if new.scheme not in ("http", "https"):
            refusal = "to a scheme other than HTTP(S)"
        elif old.scheme == "https" and new.scheme == "http":
            refusal = "from HTTPS to plain HTTP"
        if refusal is None and fp.read(_MAX_REDIRECT_BODY + 1)[_MAX_REDIRECT_BODY:]:
            refusal = f"with a body larger than {_MAX_REDIRECT_BODY} bytes"
        if refusal is not None:
            fp.close()
            raise PresetError(
                f"{_shown(request.full_url)} redirected (HTTP {code}) to {_shown(newurl)}, {refusal}: refused. "
                "Check HF_ENDPOINT; a hub or mirror must not redirect downloads that way."
            )
        redirected = super().redirect_request(request, fp, code, msg, headers, newurl)
        if redirected is not None and _origin(new) != _origin(old):
            redirected.remove_header("Authorization")
        return redirected
