"""Shared parts of the parity runner: fixture loading, comparisons with the sidecar's tolerances, reporting."""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# kind -> module of this package that runs it
KIND_MODULES = {
    "gslrm": "gslrm",
    "gaussian_filters": "gaussian_filters",
    "mv_unet": "mv_unet",
    "mv_pipeline": "mv_pipeline",
    "face_crop": "face_crop",
    "render": "render",
}


class ParityError(RuntimeError):
    """A fixture that cannot be run (bad sidecar, missing file, unknown kind)."""


class NotAFixture(ParityError):
    """A JSON file of the reference folder that is not a parity fixture (a full-size state-dict manifest)."""


class Fixture:
    """A sidecar plus lazy access to its safetensors file."""

    def __init__(self, sidecar_path: str | Path):
        self.path = Path(sidecar_path).resolve()
        try:
            self.meta: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise ParityError(f"{self.path}: no such fixture sidecar.") from None
        except json.JSONDecodeError as e:
            raise ParityError(f"{self.path}: not a JSON sidecar ({e}).") from None
        if "kind" not in self.meta and "state_dict" in self.meta:
            raise NotAFixture(f"{self.path}: a state-dict manifest, not a parity fixture (the test suite checks it).")
        if "kind" not in self.meta or "tensors" not in self.meta:
            raise ParityError(f"{self.path}: sidecar lacks the 'kind' or 'tensors' field.")
        self.kind: str = self.meta["kind"]
        self.check: dict[str, Any] = self.meta.get("check", {})
        self.tensor_path = self.path.parent / self.meta["tensors"]
        self._file = None

    def _open(self):
        if self._file is None:
            from safetensors import safe_open

            if not self.tensor_path.exists():
                raise ParityError(f"{self.path}: tensors file {self.tensor_path} is missing.")
            self._file = safe_open(str(self.tensor_path), framework="pt", device="cpu")
        return self._file

    def keys(self) -> list[str]:
        return list(self._open().keys())

    def has(self, key: str) -> bool:
        return key in self._open().keys()

    def tensor(self, key: str):
        f = self._open()
        if key not in f.keys():
            raise ParityError(f"{self.tensor_path.name}: tensor '{key}' not found.")
        return f.get_tensor(key)

    def with_prefix(self, prefix: str, strip: bool = True) -> dict:
        """Every tensor whose key starts with ``prefix`` (e.g. the ``weights.`` state dict)."""
        return {
            (k[len(prefix):] if strip else k): self.tensor(k) for k in self.keys() if k.startswith(prefix)
        }

    def sibling(self, name: str) -> Path:
        """A file named by the sidecar, relative to the sidecar's folder."""
        return self.path.parent / name


@dataclass
class Line:
    key: str
    max_abs_diff: float
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """Collects one line per compared key; the fixture passes iff every line is ok."""

    fixture: Fixture
    atol_override: float | None = None
    lines: list[Line] = field(default_factory=list)

    # -------------------------------------------------------------- tolerances
    def atol(self, key: str) -> float:
        if self.atol_override is not None:
            return self.atol_override
        per_key = self.fixture.check.get("atol_per_key") or {}
        if key in per_key:
            return float(per_key[key])
        return float(self.fixture.check.get("atol", 1e-4))

    # ------------------------------------------------------------ comparisons
    def compare(self, key: str, actual, expected=None, atol: float | None = None,
                mean_atol: float | None = None) -> Line:
        """Tolerance comparison (max |diff| <= atol, and mean |diff| <= mean_atol when given)."""
        import torch

        if expected is None:
            expected = self.fixture.tensor(key)
        tol = self.atol(key) if atol is None else atol
        if mean_atol is None and self.atol_override is None:
            mean_atol = self.fixture.check.get("mean_atol")
        actual = torch.as_tensor(actual).detach().cpu()
        if tuple(actual.shape) != tuple(expected.shape):
            return self._add(Line(key, math.inf, False,
                                  f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"))
        diff = (actual.double() - expected.double()).abs()
        if diff.numel() == 0:
            return self._add(Line(key, 0.0, True, "empty"))
        if not torch.isfinite(diff).all():
            return self._add(Line(key, math.inf, False, "non-finite difference"))
        mx, mean = float(diff.max()), float(diff.mean())
        ok = mx <= tol
        detail = f"atol={tol:g} mean={mean:.3g}"
        if mean_atol is not None:
            ok = ok and mean <= float(mean_atol)
            detail += f" mean_atol={float(mean_atol):g}"
        return self._add(Line(key, mx, ok, detail))

    def exact(self, key: str, actual, expected=None) -> Line:
        """Bit-for-bit comparison: same dtype, shape and values."""
        import torch

        if expected is None:
            expected = self.fixture.tensor(key)
        actual = torch.as_tensor(actual).detach().cpu()
        if actual.dtype != expected.dtype or tuple(actual.shape) != tuple(expected.shape):
            return self._add(Line(key, math.inf, False,
                                  f"dtype/shape {actual.dtype}{tuple(actual.shape)} != "
                                  f"{expected.dtype}{tuple(expected.shape)}"))
        same = torch.equal(actual, expected)
        if same:
            mx = 0.0
        elif actual.is_floating_point() or actual.dtype in (torch.uint8, torch.int32, torch.int64, torch.bool):
            mx = float((actual.double() - expected.double()).abs().max())
        else:
            mx = math.inf
        return self._add(Line(key, mx, same, "exact"))

    def value(self, key: str, actual, expected, ok: bool | None = None) -> Line:
        """A scalar or text check (counts, headers, hashes); max |diff| is 0 or inf."""
        same = (actual == expected) if ok is None else ok
        diff = 0.0
        if not same:
            try:
                diff = abs(float(actual) - float(expected))
            except (TypeError, ValueError):
                diff = math.inf
        return self._add(Line(key, diff, bool(same), f"got {actual!r}" if not same else "exact"))

    def negative_controls(self, first_actual) -> None:
        """The output must differ from each control key by more than its min_max_abs_diff."""
        import torch

        for ctl in self.fixture.check.get("negative_controls") or []:
            ref = self.fixture.tensor(ctl["key"])
            d = float((torch.as_tensor(first_actual).double() - ref.double()).abs().max())
            need = float(ctl["min_max_abs_diff"])
            self._add(Line(f"negative_control:{ctl['key']}", d, d > need, f"must differ by > {need:g}"),
                      counts_for_max=False)

    # ----------------------------------------------------------------- output
    _max_exclusions: set = field(default_factory=set)

    def _add(self, line: Line, counts_for_max: bool = True) -> Line:
        self.lines.append(line)
        if not counts_for_max:
            self._max_exclusions.add(id(line))
        return line

    @property
    def passed(self) -> bool:
        return bool(self.lines) and all(l.ok for l in self.lines)

    @property
    def max_abs_diff(self) -> float:
        vals = [l.max_abs_diff for l in self.lines if id(l) not in self._max_exclusions]
        return max(vals) if vals else math.inf


def run_fixture(path: str | Path, atol: float | None = None) -> Report:
    """Run one fixture and return its report (raises ParityError for an unusable fixture)."""
    fixture = Fixture(path)
    module_name = KIND_MODULES.get(fixture.kind)
    if module_name is None:
        raise ParityError(f"{fixture.path}: unknown fixture kind '{fixture.kind}' "
                          f"(known: {', '.join(sorted(KIND_MODULES))}).")
    module = importlib.import_module(f"{__package__}.{module_name}")
    report = Report(fixture, atol_override=atol)
    module.run(fixture, report)
    if not report.lines:
        raise ParityError(f"{fixture.path}: the '{fixture.kind}' runner compared nothing.")
    return report
