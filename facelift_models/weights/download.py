"""Fetch the official FaceLift weights from Hugging Face into the models folder: only on explicit request, only the
files inference needs, pinned revision, resumable, verified before they are moved into place.

Flow per file: HEAD (size, ETag = SHA-256 for large files: a mirror serving another file is refused before any byte
is fetched) -> ``huggingface_hub.hf_hub_download`` into the staging folder ``<models>/.facelift-download`` (it
streams to an ``.incomplete`` file there and resumes it with an HTTP Range request after an interruption) -> size and
SHA-256 check -> ``os.replace`` into ``<models>/<path in the repository>``.  A file that fails the check is deleted;
nothing unverified ever sits at a final path.

``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` are read when :func:`download_weights` is called, not when
huggingface_hub was imported (huggingface_hub freezes ``HF_ENDPOINT``/``HF_HUB_OFFLINE`` at import time, so they are
passed on explicitly).

Single files with their own release URL (``store.RELEASE``: U²-Net's ``u2net.onnx`` from rembg's GitHub release,
Apache-2.0) take the same path with a plain HTTP client: staged as ``<models>/.facelift-download/<path>.incomplete``,
resumed with ``Range: bytes=N-``, size and SHA-256 checked, then ``os.replace``-d into place.

CLI: ``python -m facelift_models.download --models-dir DIR --accept-license [--components sampling reconstruction]``
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..config import ENV_MODELS_DIR, ENV_U2NET_URL
from ..errors import WeightsError
from .store import (BACKGROUND, FACE_CROP, HF, LICENCE_NAME, LICENCE_SHORT, RECONSTRUCTION, RELEASE, REPO_ID, REPO_URL,
                    REVISION, SAMPLING, VIEW_EMBEDDINGS, ModelStore, WeightFile, download_command, human_size,
                    resolve_models_dir, sha256_of)

log = logging.getLogger("facelift.download")

Progress = Callable[[int, int, str], None]
"""progress(done_bytes, total_bytes, filename): totals over the whole download; may raise Interrupted to stop."""

DEFAULT_COMPONENTS = (SAMPLING, RECONSTRUCTION, FACE_CROP, BACKGROUND)
DOWNLOADABLE = (SAMPLING, RECONSTRUCTION, FACE_CROP, BACKGROUND, VIEW_EMBEDDINGS)
DEFAULT_ENDPOINT = "https://huggingface.co"

LICENCE_REFUSAL = (
    "Downloading the FaceLift weights needs your explicit agreement to their licence. " + LICENCE_SHORT +
    f" Read it at {REPO_URL} (file LICENSE). If you agree, run the download with --accept-license (CLI) or tick "
    "the loader's download option (accept_license=True in Python)."
)


@dataclass
class DownloadResult:
    models_dir: Path
    fetched: list[str] = field(default_factory=list)  # repository paths downloaded now
    skipped: list[str] = field(default_factory=list)  # already present
    bytes_downloaded: int = 0
    licence: str = LICENCE_SHORT


def endpoint_from_env() -> str:
    """``HF_ENDPOINT`` as it is now (huggingface_hub.constants.ENDPOINT was frozen at its import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _offline_requested() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def resolve_url(repo_path: str, endpoint: str, revision: str = REVISION) -> str:
    return f"{endpoint}/{REPO_ID}/resolve/{revision}/{repo_path}"


def download_weights(models_dir: str | os.PathLike | ModelStore | None = None,
                     components: str | Iterable[str] = DEFAULT_COMPONENTS, *,
                     accept_license: bool = False,
                     progress: Progress | None = None,
                     endpoint: str | None = None,
                     token: str | None = None,
                     revision: str = REVISION,
                     comfy_folders: Sequence[str] | None = None) -> DownloadResult:
    """Bring the official files needed for ``components`` into the models folder and verify them.

    ``components``: any of "sampling", "reconstruction", "face_crop" (the MIT MTCNN weights, from the facenet-pytorch
    wheel on PyPI through :mod:`facelift_models.face.mtcnn`), "background" (U²-Net, Apache-2.0, from rembg's
    release) and "view_embeddings" (to force the text encoder). The text
    encoder + tokenizer are fetched only while the cached view embeddings are missing; the 3.7 GB GS-LRM checkpoint
    only while no converted GS-LRM file exists.  Raises :class:`WeightsError` with what failed and what to do.
    """
    if not accept_license:
        raise WeightsError(LICENCE_REFUSAL)
    store = models_dir if isinstance(models_dir, ModelStore) else ModelStore(
        resolve_models_dir(models_dir, comfy_folders))
    comps = [components] if isinstance(components, str) else list(components)
    bad = [c for c in comps if c not in DOWNLOADABLE]
    if bad:
        raise WeightsError(f"Cannot download {bad}: the components are {list(DOWNLOADABLE)}.")
    endpoint = (endpoint or endpoint_from_env()).rstrip("/")
    # HF_TOKEN as it is now; None lets huggingface_hub fall back to a token saved by `hf auth login`
    token = token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None
    result = DownloadResult(store.root)

    todo = store.files_to_fetch([c for c in comps if c not in (FACE_CROP, BACKGROUND)])
    if todo and not store.find("licence"):
        todo.insert(0, store.entry("licence"))
    result.skipped = [f.repo_path for f in store.files if f.source == HF and store.find(f.file_id)
                      and f.purpose in {*comps, "licence"}]
    want_mtcnn = FACE_CROP in comps and not store.is_ready(FACE_CROP)
    releases = release_files_to_fetch(store, comps)
    if not todo and not want_mtcnn and not releases:
        log.info("FaceLift weights for %s are already in %s; nothing to download.", ", ".join(comps), store.root)
        return result
    if not todo:
        if want_mtcnn:
            _fetch_mtcnn(store, result)
        _fetch_releases(store, releases, result, progress)
        return result
    if _offline_requested():
        raise WeightsError(_offline_message(store, todo, endpoint, "HF_HUB_OFFLINE is set, so no download is made",
                                            comps))

    from huggingface_hub import hf_hub_download  # cheap enough, but never at import of this module

    log.info("Downloading %d FaceLift file(s) from %s (revision %s) into %s. %s", len(todo), REPO_URL,
             revision[:7], store.root, LICENCE_SHORT)
    metas = {f.file_id: _head(f, endpoint, token, revision, store, todo, comps) for f in todo}
    total = sum(m[1] for m in metas.values())
    done_before = 0
    store.root.mkdir(parents=True, exist_ok=True)
    staging = store.staging_dir
    for f in todo:
        etag, size = metas[f.file_id]
        fetch = lambda f=f: hf_hub_download(REPO_ID, f.repo_path, revision=revision, local_dir=staging,  # noqa: E731
                                            endpoint=endpoint, token=token)
        try:
            staged = Path(_run_reporting(fetch, staging, etag, f.repo_path, done_before, total, progress))
        except _TransferFailed as failed:  # network, HTTP, disk: one message that says what to do
            _drop_empty_partials(staging)
            raise WeightsError(_failure_message(store, f, todo, endpoint, revision, failed.cause, comps)) \
                from failed.cause
        _verify_and_place(store, f, staged)
        done_before += size
        result.fetched.append(f.repo_path)
        result.bytes_downloaded += size
        if progress is not None:
            progress(done_before, total, f.repo_path)
    _cleanup_staging(staging)
    # First line after the download: the licence.
    log.warning("FaceLift weights downloaded to %s are licensed under the %s (non-commercial research only); "
                "see %s.", store.root, LICENCE_NAME, store.path("licence"))
    log.info("Downloaded %d file(s), %s.", len(result.fetched), human_size(result.bytes_downloaded))
    if want_mtcnn:
        _fetch_mtcnn(store, result)
    _fetch_releases(store, releases, result, progress)
    return result


# ----------------------------------------------------------------------------------------------------------------
def release_files_to_fetch(store: ModelStore, comps: Iterable[str]) -> list[WeightFile]:
    """Missing (or wrongly sized) single-URL files of the requested components."""
    return [s.file for _, bad in store.missing([c for c in comps if c == BACKGROUND]) for s in bad
            if s.file.source == RELEASE]


def release_url(f: WeightFile) -> str:
    """The file's pinned release URL, or a mirror named by ``$FACELIFT_U2NET_URL`` (same size/SHA-256 checked)."""
    return (os.environ.get(ENV_U2NET_URL) if f.file_id == "u2net" else None) or f.url or ""


def _fetch_releases(store: ModelStore, files: list[WeightFile], result: DownloadResult,
                    progress: Progress | None) -> None:
    for f in files:
        url = release_url(f)
        log.warning("Downloading %s (%s, %s) from %s into %s", f.local_path, f.licence, human_size(f.size), url,
                    store.path(f.file_id).parent)
        if _offline_requested():
            raise WeightsError(_release_failure(store, f, url, "HF_HUB_OFFLINE is set, so no download is made"))
        staged = store.staging_dir.joinpath(*f.local_path.split("/"))
        part = staged.with_name(staged.name + ".incomplete")
        try:
            _http_resume(url, part, f, progress)
        except WeightsError:
            raise
        except Exception as exc:  # network, HTTP, disk: say what to do
            if part.is_file() and part.stat().st_size == 0:
                part.unlink()
            raise WeightsError(_release_failure(store, f, url, _short_reason(exc))) from exc
        _verify_release(store, f, part, url)
        result.fetched.append(f.local_path)
        result.bytes_downloaded += int(f.size or 0)
    if files:
        _cleanup_staging(store.staging_dir)


def _http_resume(url: str, part: Path, f: WeightFile, progress: Progress | None, chunk: int = 1 << 20) -> None:
    """Stream ``url`` into ``part``, continuing an earlier partial file with an HTTP Range request."""
    import urllib.request

    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if f.size is not None and have > f.size:
        part.unlink()
        have = 0
    if f.size is not None and have == f.size:
        return
    req = urllib.request.Request(url, headers={"User-Agent": "facelift-comfy", **({"Range": f"bytes={have}-"}
                                                                                   if have else {})})
    with urllib.request.urlopen(req, timeout=60) as resp:
        if have and resp.status != 206:  # the server ignored the range: start over
            have = 0
        total = f.size or (have + int(resp.headers.get("Content-Length") or 0))
        with open(part, "ab" if have else "wb") as out:
            done = have
            while block := resp.read(chunk):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total, f.local_path)


def _verify_release(store: ModelStore, f: WeightFile, part: Path, url: str) -> None:
    size = part.stat().st_size
    problem = None
    if f.size is not None and size != f.size:
        problem = f"it has {size:,} bytes instead of {f.size:,}"
    elif f.sha256 is not None and (digest := sha256_of(part)) != f.sha256:
        problem = f"its SHA-256 is {digest} instead of {f.sha256}"
    final = store.path(f.file_id)
    if problem:
        if f.size is None or size >= f.size:  # complete but wrong: never resume from it
            part.unlink(missing_ok=True)
        raise WeightsError(
            f"The downloaded file {f.local_path} from {url} is {'incomplete' if f.size and size < f.size else 'corrupt'}"
            f": {problem}. Nothing was written to {final.parent}. Run the download again (an incomplete file "
            f"resumes); if this repeats, download {f.url} by hand into {final.parent}.")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)


def _release_failure(store: ModelStore, f: WeightFile, url: str, why: str) -> str:
    folder = store.path(f.file_id).parent
    return (f"Could not download {f.local_path} ({f.licence}): {why}. Run the same command again when the connection "
            f"is back (a partial file resumes where it stopped), or download {f.url} by hand into {folder}/ "
            f"(size {f.size:,} bytes, SHA-256 {f.sha256}); then check with `python -m facelift_models.doctor "
            f"--models-dir {store.root}`.")


# ----------------------------------------------------------------------------------------------------------------
def _fetch_mtcnn(store: ModelStore, result: DownloadResult) -> None:
    """The MTCNN weights (MIT) come from the facenet-pytorch 2.6.0 wheel: facelift_models.weights.mtcnn_files fetches, checks and
    places them in ``<models>/mtcnn``."""
    from .mtcnn_files import WEIGHT_FILES, download_mtcnn_weights

    dest = store.path("mtcnn.pnet").parent
    download_mtcnn_weights(dest, log_fn=log.warning)
    result.fetched += [f"mtcnn/{n}" for n in WEIGHT_FILES]


def _head(f: WeightFile, endpoint: str, token, revision: str, store: ModelStore, todo, comps) -> tuple[str, int]:
    """(etag, size) of the file on the server; refuses a server whose file is not the one we expect."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(REPO_ID, f.repo_path, revision=revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, token=token)
    except Exception as exc:
        raise WeightsError(_failure_message(store, f, todo, endpoint, revision, exc, comps)) from exc
    etag = (meta.etag or "").strip('"')
    size = int(meta.size or 0)
    if f.size is not None and meta.size is not None and size != f.size:
        raise WeightsError(
            f"The server {endpoint} offers {f.repo_path} with {size:,} bytes, but the FaceLift release (revision "
            f"{revision[:7]}) has {f.size:,} bytes. Nothing was downloaded. If HF_ENDPOINT points to a mirror, it "
            f"serves another version of the file; unset HF_ENDPOINT or download it by hand from {REPO_URL}.")
    if f.sha256 and len(etag) == 64 and etag.lower() != f.sha256:
        raise WeightsError(
            f"The server {endpoint} offers {f.repo_path} with SHA-256 {etag}, but the FaceLift release (revision "
            f"{revision[:7]}) has {f.sha256}. Nothing was downloaded. If HF_ENDPOINT points to a mirror, it serves "
            f"another version of the file; unset HF_ENDPOINT or download it by hand from {REPO_URL}.")
    return etag, size


def _verify_and_place(store: ModelStore, f: WeightFile, staged: Path) -> None:
    """Size + SHA-256 check of the staged file, then an atomic move to its final path; a bad file is deleted."""
    final = store.path(f.file_id)
    size = staged.stat().st_size
    problem = None
    if f.size is not None and size != f.size:
        problem = f"it has {size:,} bytes instead of {f.size:,}"
    elif f.sha256 is not None:
        digest = sha256_of(staged)
        if digest != f.sha256:
            problem = f"its SHA-256 is {digest} instead of {f.sha256}"
    else:
        log.debug("No published checksum for %s: checked its size against the server only.", f.repo_path)
    if problem:
        _forget_staged(store.staging_dir, f.repo_path)
        raise WeightsError(
            f"The downloaded file {f.repo_path} is corrupt: {problem}. It was deleted, and nothing was written to "
            f"{final.parent}. Run the download again; if this repeats, the server (HF_ENDPOINT="
            f"{os.environ.get('HF_ENDPOINT') or DEFAULT_ENDPOINT}) serves a different file: download it by hand from "
            f"{REPO_URL} (revision {REVISION[:7]}) into {final.parent}.")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
    _forget_staged(store.staging_dir, f.repo_path)


def _forget_staged(staging: Path, repo_path: str) -> None:
    """Remove a staged file and huggingface_hub's bookkeeping for it (metadata, lock, partial data)."""
    (staging / repo_path).unlink(missing_ok=True)
    meta_dir = staging / ".cache" / "huggingface" / "download"
    meta = meta_dir / f"{repo_path}.metadata"
    for p in (meta, meta.with_suffix(".lock")):
        p.unlink(missing_ok=True)


def _drop_empty_partials(staging: Path) -> None:
    for p in staging.rglob("*.incomplete") if staging.is_dir() else ():
        if p.stat().st_size == 0:
            p.unlink(missing_ok=True)


def _cleanup_staging(staging: Path) -> None:
    """Delete the staging folder once no partial download is left in it."""
    if not staging.is_dir():
        return
    if any(staging.rglob("*.incomplete")):
        return
    if any(p.is_file() and p.suffix not in {".lock", ".metadata"} and ".cache" not in p.relative_to(staging).parts
           for p in staging.rglob("*")):
        return
    shutil.rmtree(staging, ignore_errors=True)


class _TransferFailed(Exception):
    """Wraps an error of the transfer itself (not of the progress callback, which propagates unchanged)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _incomplete_size(staging: Path, etag: str) -> int:
    """Bytes written so far to huggingface_hub's ``<hash>.<etag>.incomplete`` file in the staging folder."""
    d = staging / ".cache" / "huggingface" / "download"
    if not etag or not d.is_dir():
        return 0
    sizes = []
    for p in d.rglob(f"*.{etag}.incomplete"):
        try:
            sizes.append(p.stat().st_size)
        except FileNotFoundError:  # moved into place meanwhile
            pass
    return max(sizes, default=0)


def _run_reporting(fetch: Callable[[], str], staging: Path, etag: str, name: str, done_before: int, total: int,
                   progress: Progress | None, interval: float = 0.25) -> str:
    """Run ``fetch`` (one hf_hub_download) in a worker thread while this thread reports the growth of its
    ``.incomplete`` file through ``progress``.

    huggingface_hub has no per-file progress callback; watching the file works with every version and with both the
    plain HTTP and the Xet transfer, and it keeps ``progress`` on the caller's thread.  If ``progress`` raises (e.g.
    :class:`Interrupted` when the user cancels in ComfyUI) the exception propagates at once; the transfer of the
    current file then finishes in the background into the staging folder only (resumed/verified by the next run).
    """
    if progress is None:
        try:
            return fetch()
        except Exception as exc:
            raise _TransferFailed(exc) from exc
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["path"] = fetch()
        except Exception as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="facelift-download", daemon=True)
    progress(done_before, total, name)
    worker.start()
    while True:
        worker.join(interval)
        if not worker.is_alive():
            break
        progress(done_before + _incomplete_size(staging, etag), total, name)
    if "error" in box:
        raise _TransferFailed(box["error"]) from box["error"]  # type: ignore[arg-type]
    return box["path"]  # type: ignore[return-value]


def _short_reason(exc: BaseException) -> str:
    """One short line for the user (requests/urllib3 errors nest whole reprs)."""
    text = " ".join(str(exc).split())
    for marker in ("Connection refused", "Name or service not known", "Temporary failure in name resolution",
                   "timed out", "Network is unreachable", "IncompleteRead", "Connection reset", "Connection broken"):
        if marker in text:
            return f"{type(exc).__name__}: {marker}"
    return f"{type(exc).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def _manual_steps(store: ModelStore, files: list[WeightFile], endpoint: str, revision: str) -> str:
    lines = ["To install the files by hand, download each one from the repository page "
             f"{REPO_URL}/tree/{revision} and put it in the folder shown:"]
    for f in files:
        lines.append(f"  - {resolve_url(f.repo_path, DEFAULT_ENDPOINT, revision)} -> {store.path(f.file_id).parent}/")
    return "\n".join(lines)


def _offline_message(store, files, endpoint, what, comps) -> str:
    return (f"Could not download the FaceLift weights: {what}.\n" + _manual_steps(store, files, endpoint, REVISION)
            + f"\nThen check with `python -m facelift_models.doctor --models-dir {store.root}`. Online, run "
              f"`{download_command(store.root, comps)}`.")


def _failure_message(store, f: WeightFile, todo, endpoint, revision, exc: Exception, comps) -> str:
    url = resolve_url(f.repo_path, endpoint, revision)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (401, 403):
        why = (f"the server refused access ({status}) to {url}; if you use a token, check HF_TOKEN "
               "(it needs read access)")
    elif status == 404:
        why = (f"{url} was not found (404); check HF_ENDPOINT ({endpoint}) and the pinned revision {revision[:7]}")
    elif status is not None:
        why = f"the server answered {status} for {url}"
    elif isinstance(exc, OSError) and getattr(exc, "errno", None) == errno.ENOSPC:
        why = f"the disk holding {store.root} is full while downloading {url}; free some space and run it again"
    else:
        why = (f"downloading {url} failed ({_short_reason(exc)}); you may be offline, behind a proxy/firewall, or the "
               "download was interrupted. Run the same command again when the connection is back: a partial file "
               "resumes where it stopped")
    return _offline_message(store, todo, endpoint, why, comps)


# ----------------------------------------------------------------------------------------------------------------
class _PrintProgress:
    """CLI progress: one line per file and a percentage at most every 2 s."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream, self.last_name, self.last_t = stream, None, 0.0

    def __call__(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if name != self.last_name:
            self.last_name, self.last_t = name, now
            print(f"  {name}", file=self.stream, flush=True)
        elif now - self.last_t >= 2.0 or done >= total:
            self.last_t = now
            pct = 100.0 * done / total if total else 100.0
            print(f"    {human_size(done)} / {human_size(total)} ({pct:.0f}%)", file=self.stream, flush=True)


def _open_store(models_dir: str | None) -> ModelStore:
    return ModelStore(resolve_models_dir(models_dir))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m facelift_models.download",
        description=f"Download the official FaceLift weights ({REPO_URL}, revision {REVISION[:7]}) into the models "
                    f"folder. {LICENCE_SHORT}")
    ap.add_argument("--models-dir", help=f"models folder (default: ${ENV_MODELS_DIR} or ComfyUI/models/facelift)")
    ap.add_argument("--components", nargs="+", choices=DOWNLOADABLE, default=list(DEFAULT_COMPONENTS),
                    help="what to fetch (default: sampling reconstruction face_crop background; face_crop = the "
                         "MIT MTCNN weights from the facenet-pytorch wheel on PyPI; background = U²-Net "
                         "u2net.onnx, Apache-2.0, from rembg's GitHub release)")
    ap.add_argument("--accept-license", action="store_true",
                    help=f"agree to the {LICENCE_NAME} (non-commercial research only); required")
    ap.add_argument("--endpoint", help="Hub endpoint or mirror (default: $HF_ENDPOINT or https://huggingface.co)")
    ap.add_argument("--dry-run", action="store_true", help="list what would be downloaded and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        store = _open_store(args.models_dir)
        if args.dry_run:
            todo = store.files_to_fetch([c for c in args.components if c != FACE_CROP])
            for f in todo:
                print(f"{f.repo_path}\t{human_size(f.size)}\t-> {store.path(f.file_id).parent}")
            if FACE_CROP in args.components and not store.is_ready(FACE_CROP):
                print("mtcnn/{pnet,rnet,onet}.pt\t~2 MB (facenet-pytorch 2.6.0 wheel, MIT)\t-> "
                      f"{store.path('mtcnn.pnet').parent}")
            for f in release_files_to_fetch(store, args.components):
                print(f"{f.local_path}\t{human_size(f.size)} ({f.licence}, {release_url(f)})\t-> "
                      f"{store.path(f.file_id).parent}")
            print(f"{len(todo)} file(s) from {REPO_URL} to download into {store.root}")
            return 0
        download_weights(store, args.components, accept_license=args.accept_license, progress=_PrintProgress(),
                         endpoint=args.endpoint)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
