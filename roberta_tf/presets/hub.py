"""Downloads checkpoint files from the Hugging Face Hub (or a mirror) into a local cache.

Plain HTTPS with the standard library, so no hub client is a dependency. Environment:
  HF_ENDPOINT           hub or mirror URL (default https://huggingface.co), as huggingface_hub
  HF_HUB_OFFLINE=1      never touch the network; cached files only
  HF_TOKEN              bearer token for gated or private repositories
  ROBERTA_TF_CACHE      cache root (default ~/.cache/roberta_tf)
  ROBERTA_TF_HUB_TIMEOUT  seconds before a stalled connection or read fails (default 30)
Files are written to `<name>.part` and renamed when complete, so an interrupted download is
never mistaken for a cached file. An optional file the hub does not have (HTTP 404) leaves an
empty `<name>.absent` marker, so a cached checkpoint loads without asking the hub again.
"""

import os
import pathlib
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request

from roberta_tf.presets.preset_format import PresetError

DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def cache_root():
    return pathlib.Path(os.environ.get("ROBERTA_TF_CACHE", pathlib.Path.home() / ".cache" / "roberta_tf"))


def offline():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def parse_handle(handle):
    """"hf://owner/name[@revision]" -> (repo_id, revision)."""
    spec = handle[len("hf://"):]
    repo_id, _, revision = spec.partition("@")
    if not _REPO_ID.match(repo_id):
        raise PresetError(f"{handle!r} is not a Hugging Face handle of the form hf://owner/name[@revision].")
    return repo_id, revision or "main"


def download(repo_id, filenames, revision="main", optional=()):
    """Fetches `filenames` (and, where they exist, `optional` ones) of a hub repository.

    Returns the local directory holding them. Cached files are reused without any request.
    """
    directory = cache_root() / "hub" / repo_id.replace("/", "--") / revision
    directory.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        _fetch(repo_id, revision, filename, directory / filename, required=True)
    for filename in optional:
        _fetch(repo_id, revision, filename, directory / filename, required=False)
    return directory


def _fetch(repo_id, revision, filename, destination, required):
    absent = destination.with_name(destination.name + ".absent")
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
    request = urllib.request.Request(url, headers=_headers())
    timeout = float(os.environ.get("ROBERTA_TF_HUB_TIMEOUT", "30"))
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
            expected = response.headers.get("Content-Length")
        if expected is not None and partial.stat().st_size != int(expected):
            raise PresetError(f"{url}: download truncated ({partial.stat().st_size} of {expected} bytes).")
        os.replace(partial, destination)
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        if error.code == 404 and not required:
            absent.touch()
            return
        hint = " (gated or private: set HF_TOKEN)" if error.code in (401, 403) else ""
        raise PresetError(f"{url}: HTTP {error.code} {error.reason}{hint}.") from None
    except (urllib.error.URLError, OSError) as error:  # includes timeouts and refused connections
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise PresetError(
            f"Could not download {url}: {reason}. The model hub may be unreachable from this machine: "
            "download the checkpoint directory elsewhere and pass its path to from_preset(), or set "
            "HF_ENDPOINT to a reachable mirror."
        ) from None
    except BaseException:  # a truncated download, an interrupt: no partial file stays behind
        partial.unlink(missing_ok=True)
        raise


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
