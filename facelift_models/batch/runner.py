"""Run :func:`pipeline.photo_to_files` over many photos: Ray actors (one model replica per GPU or CPU worker),
a JSON-lines manifest, resume, and per-photo failure isolation.

The driver (this process) lists the photos, skips those the manifest already records, and hands one photo at a
time to each idle worker actor. Workers load the weights once (actor constructor) and write the photo's files
atomically to the output folder; only the driver appends to the manifest, one record per finished photo, so each
photo gets exactly one record even when a worker dies mid-photo (the photo then goes to a fresh worker). A photo
that fails (unreadable file, no face, any error) is recorded with its message and the run goes on.

With ``address`` the workers run on an existing Ray cluster: the input and output folders must then be on storage
every node sees at the same path (NFS, a mounted bucket), see docs/batch.md.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import FaceLiftError, InputError
from .pipeline import PHOTO_SUFFIXES, PipelineOptions, is_photo_file

MANIFEST_NAME = "manifest.jsonl"
PACKAGE_DIR = Path(__file__).resolve().parents[1]   # facelift_models/
CODE_ROOT = PACKAGE_DIR.parent                      # the folder that holds facelift_models/
RAY_MISSING = ("The FaceLift batch runner needs Ray, an optional dependency that is not installed. Install it into "
               "this Python with `python -m pip install \"ray[data]\"` (Linux/macOS/Windows, Python 3.9-3.13), or "
               "run without Ray in this process with --local.")


@dataclass
class Job:
    """One photo: ``key`` is its name in the manifest (path relative to the input folder, or as listed)."""

    key: str
    source: str
    stem: str
    attempts: int = 0


# ----------------------------------------------------------------------------------------------- inputs
def _stems(keys: list[str]) -> list[str]:
    """Output file stems: the key without its suffix, folders joined by '__'; clashes keep the suffix."""
    base = [str(Path(k).with_suffix("")).replace(os.sep, "__").replace("/", "__").lstrip(".") or "photo"
            for k in keys]
    counts = collections.Counter(base)
    return [b if counts[b] == 1 else f"{b}_{Path(k).suffix.lstrip('.').lower()}" for b, k in zip(base, keys)]


def discover(source: str | Path, limit: int | None = None, recursive: bool = True) -> list[Job]:
    """The photos of a folder (sorted, sub-folders too unless ``recursive`` is off) or of a list file (one path
    per line, relative to the list file's folder; blank lines and '#' comments ignored), at most ``limit``."""
    source = Path(source)
    if source.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in source.glob(pattern) if is_photo_file(p))
        keys = [p.relative_to(source).as_posix() for p in files]
    elif source.is_file():
        files, keys = [], []
        for line in source.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line).expanduser()
            files.append(p if p.is_absolute() else source.parent / p)
            keys.append(line)
    else:
        raise InputError(f"{source} is neither a folder of photos nor a list file. Give a folder (photos with the "
                         f"suffixes {', '.join(PHOTO_SUFFIXES)}) or a text file with one photo path per line.")
    if limit is not None and limit > 0:
        files, keys = files[:limit], keys[:limit]
    if len(set(keys)) != len(keys):
        dup = [k for k, c in collections.Counter(keys).items() if c > 1]
        raise InputError(f"The photo list names {dup[0]!r} more than once; list each photo once.")
    return [Job(k, str(Path(f).resolve()), s) for k, f, s in zip(keys, files, _stems(keys))]


# --------------------------------------------------------------------------------------------- manifest
class Manifest:
    """``out_dir/manifest.jsonl``: one JSON record per finished photo, appended (and fsynced) by the driver only.

    A line cut short by a crash is ignored on reading (its photo is done again)."""

    def __init__(self, out_dir: Path):
        self.path = Path(out_dir) / MANIFEST_NAME

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "photo" in rec:
                out.append(rec)
        return out

    def latest(self) -> dict[str, dict]:
        return {r["photo"]: r for r in self.records()}

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def is_done(record: dict | None, retry_failed: bool = False) -> bool:
    """Whether a manifest record means the photo needs no more work: ok with its files present, or a recorded
    failure (unless ``retry_failed``)."""
    if not record:
        return False
    if record.get("status") == "ok":
        return all(Path(p).is_file() for p in (record.get("outputs") or {}).values())
    return record.get("status") == "failed" and not retry_failed


def to_do(jobs: list[Job], manifest: Manifest, retry_failed: bool = False) -> list[Job]:
    latest = manifest.latest()
    return [j for j in jobs if not is_done(latest.get(j.key), retry_failed)]


# ----------------------------------------------------------------------------------------------- worker
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def process_job(models, job: Job, out_dir: str, options: PipelineOptions, worker: dict) -> dict:
    """One photo through the pipeline, as a manifest record; never raises for a bad photo."""
    from .pipeline import photo_to_files

    t0 = time.perf_counter()
    record: dict[str, Any] = {"photo": job.key, "source": job.source, "attempts": job.attempts + 1,
                              "worker": worker}
    try:
        result = photo_to_files(models, job.source, out_dir, job.stem, options)
        record.update(status="ok", error=None, error_type=None, **result)
    except FaceLiftError as e:
        record.update(status="failed", error=str(e), error_type=type(e).__name__, outputs={},
                      timings={"total_s": round(time.perf_counter() - t0, 4)})
    except Exception as e:  # noqa: BLE001 - a bad photo must never stop the run; the record keeps the details
        record.update(status="failed", error=f"{type(e).__name__}: {e}", error_type=type(e).__name__, outputs={},
                      timings={"total_s": round(time.perf_counter() - t0, 4)},
                      traceback=traceback.format_exc(limit=8))
    record["finished"] = _now()
    return record


class PhotoWorker:
    """Holds one model replica; Ray runs it as an actor (see :func:`run_ray`), :func:`run_local` in-process."""

    def __init__(self, models_dir: str, out_dir: str, options: dict, device: str = "auto",
                 precision: str = "auto", threads: int | None = None):
        import torch

        from .pipeline import load_models

        if threads:
            torch.set_num_threads(int(threads))
        t0 = time.perf_counter()
        self.options = PipelineOptions(**options)
        self.out_dir = out_dir
        self.models = load_models(models_dir, device=device, precision=precision, background=self.options.background)
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "device": str(self.models.device),
                     "load_s": round(time.perf_counter() - t0, 3)}

    def describe(self) -> dict:
        return dict(self.info)

    def process(self, job: Job) -> dict:
        return process_job(self.models, job, self.out_dir, self.options, self.describe())


# ----------------------------------------------------------------------------------------------- driver
@dataclass
class RunSummary:
    total: int
    skipped: int
    ok: int = 0
    failed: int = 0
    worker_restarts: int = 0
    seconds: float = 0.0
    workers: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _printer(stream=sys.stderr) -> Callable[[str], None]:
    def say(msg: str) -> None:
        print(msg, file=stream, flush=True)

    return say


def _report(say, n_done: int, n_total: int, rec: dict) -> None:
    t = (rec.get("timings") or {}).get("total_s")
    extra = f"{t:.1f} s" if isinstance(t, (int, float)) else ""
    if rec["status"] != "ok":
        extra = f"{rec.get('error_type')}: {str(rec.get('error'))[:160]}"
    say(f"[{n_done}/{n_total}] {rec['status']:6} {rec['photo']}  {extra}")


def prepare(source, out_dir, options: PipelineOptions, limit=None, retry_failed=False):
    options.validate()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = discover(source, limit)
    manifest = Manifest(out_dir)
    return jobs, to_do(jobs, manifest, retry_failed), manifest, out_dir


def run_local(source, out_dir, models_dir, options: PipelineOptions, *, device="auto", precision="auto",
              limit=None, retry_failed=False, say=None) -> RunSummary:
    """The same loop in this process, without Ray (one model replica)."""
    say = say or _printer()
    t0 = time.perf_counter()
    jobs, todo, manifest, out_dir = prepare(source, out_dir, options, limit, retry_failed)
    summary = RunSummary(total=len(jobs), skipped=len(jobs) - len(todo), workers=1)
    say(f"{len(jobs)} photos, {summary.skipped} already done, {len(todo)} to do (in this process)")
    if todo:
        worker = PhotoWorker(str(models_dir), str(out_dir), options.to_dict(), device, precision)
        for i, job in enumerate(todo, 1):
            rec = worker.process(job)
            manifest.append(rec)
            _count(summary, rec)
            _report(say, i, len(todo), rec)
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _count(summary: RunSummary, rec: dict) -> None:
    if rec["status"] == "ok":
        summary.ok += 1
    else:
        summary.failed += 1


def require_ray():
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def _actor_errors(ray) -> tuple:
    names = ("RayActorError", "ActorDiedError", "ActorUnavailableError", "WorkerCrashedError", "NodeDiedError")
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n))


def init_ray(address: str | None = None, local_cpus: int | None = None, local_gpus: int | None = None,
             ship_code: bool | None = None):
    """Connect to ``address`` (an existing cluster) or start a local Ray instance on this machine's devices.

    Workers must import this package: locally through PYTHONPATH, on a cluster by shipping the package with the
    job (Ray ``py_modules``) unless ``ship_code`` is False (the pack is installed on every node)."""
    ray = require_ray()
    ship = bool(address) if ship_code is None else ship_code
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        [str(CODE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}}
    if ship:
        env = {"py_modules": [str(PACKAGE_DIR)]}
    kwargs: dict[str, Any] = {"runtime_env": env, "log_to_driver": True}
    if address:
        kwargs["address"] = address
    else:
        kwargs["include_dashboard"] = False
        if local_cpus:
            kwargs["num_cpus"] = int(local_cpus)
        if local_gpus is not None:
            kwargs["num_gpus"] = int(local_gpus)
    ray.init(**kwargs)
    return ray


def plan_workers(ray, workers: int | None, device: str, cpus_per_worker: float,
                 gpus_per_worker: float) -> tuple[int, dict]:
    """(number of workers, Ray resources of each): one per GPU when the cluster has GPUs (and the device is not
    forced to cpu), else one per ``cpus_per_worker`` CPUs."""
    res = ray.cluster_resources()
    gpus = float(res.get("GPU", 0))
    cpus = float(res.get("CPU", 1))
    if device != "cpu" and gpus >= gpus_per_worker > 0:
        n = workers or max(1, int(gpus // gpus_per_worker))
        return n, {"num_gpus": gpus_per_worker, "num_cpus": min(cpus_per_worker, max(cpus / n, 0.1))}
    if device.startswith("cuda"):
        raise InputError(f"--device {device} was asked for but the Ray cluster has no GPUs; use --device auto or cpu.")
    n = workers or max(1, int(cpus // cpus_per_worker))
    return n, {"num_cpus": cpus_per_worker}


def run_ray(source, out_dir, models_dir, options: PipelineOptions, *, workers: int | None = None,
            address: str | None = None, device: str = "auto", precision: str = "auto", limit=None,
            retry_failed=False, cpus_per_worker: float = 1.0, gpus_per_worker: float = 1.0,
            local_cpus: int | None = None, max_attempts: int = 3, ship_code: bool | None = None,
            say=None, on_record: Callable[[dict], None] | None = None) -> RunSummary:
    """Process every photo not yet done on Ray worker actors (see the module docstring)."""
    say = say or _printer()
    t0 = time.perf_counter()
    jobs, todo, manifest, out_dir = prepare(source, out_dir, options, limit, retry_failed)
    summary = RunSummary(total=len(jobs), skipped=len(jobs) - len(todo))
    if not todo:
        say(f"{len(jobs)} photos, all already done: nothing to do ({manifest.path})")
        summary.seconds = round(time.perf_counter() - t0, 3)
        return summary
    ray = init_ray(address, local_cpus, ship_code=ship_code)
    try:
        n, resources = plan_workers(ray, workers, device, cpus_per_worker, gpus_per_worker)
        n = min(n, len(todo))
        summary.workers = n
        worker_device = "cpu" if "num_gpus" not in resources else ("cuda" if device == "auto" else device)
        threads = max(1, int(resources.get("num_cpus", 1)))
        actor_cls = ray.remote(**resources)(PhotoWorker)
        args = (str(Path(models_dir).resolve()), str(out_dir), options.to_dict(), worker_device, precision, threads)
        say(f"{len(jobs)} photos, {summary.skipped} already done, {len(todo)} to do on {n} Ray worker(s) "
            f"({resources})")
        pool = [actor_cls.remote(*args) for _ in range(n)]
        _drive(ray, pool, lambda: actor_cls.remote(*args), todo, manifest, summary, max_attempts, say, on_record)
    finally:
        ray.shutdown()
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _drive(ray, pool: list, new_actor, todo: Iterable[Job], manifest: Manifest, summary: RunSummary,
           max_attempts: int, say, on_record) -> None:
    """Keep every worker busy with one photo until all are recorded; replace workers that die."""
    dead_errors = _actor_errors(ray)
    pending = collections.deque(todo)
    total = len(pending)
    idle = list(pool)
    inflight: dict = {}
    done = 0
    max_replacements = 3 * len(pool) + max_attempts * total
    while pending or inflight:
        while idle and pending:
            actor = idle.pop()
            job = pending.popleft()
            inflight[actor.process.remote(job)] = (actor, job)
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            actor, job = inflight.pop(ref)
            try:
                rec = ray.get(ref)
            except dead_errors as e:
                # The worker process died (killed, out of memory, node lost): start a fresh one and retry the
                # photo there, up to max_attempts; then record the photo as failed and go on.
                summary.worker_restarts += 1
                if summary.worker_restarts > max_replacements:
                    raise FaceLiftError(f"Ray workers keep dying ({summary.worker_restarts} so far; last: "
                                        f"{type(e).__name__}). Check the worker logs (ray logs) for out-of-memory "
                                        "or driver errors.") from None
                say(f"worker died while processing {job.key} ({type(e).__name__}); starting a new worker")
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
                actor = new_actor()
                job.attempts += 1
                if job.attempts < max_attempts:
                    pending.appendleft(job)
                    idle.append(actor)
                    continue
                rec = {"photo": job.key, "source": job.source, "status": "failed", "attempts": job.attempts,
                       "error": f"The worker process died {job.attempts} times while processing this photo "
                                f"(last: {type(e).__name__}: {str(e)[:300]}).",
                       "error_type": type(e).__name__, "outputs": {}, "timings": {}, "finished": _now()}
            manifest.append(rec)
            _count(summary, rec)
            done += 1
            _report(say, done, total, rec)
            if on_record is not None:
                on_record(rec)
            idle.append(actor)
