"""CLI: ``python -m facelift_models.parity FIXTURE.json [FIXTURE.json ...] [--atol X]``."""

from __future__ import annotations

import argparse
import math
import sys

from .common import NotAFixture, ParityError, run_fixture


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.6g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facelift_models.parity",
                                 description="Run FaceLift parity fixtures (fp32, CPU) and compare outputs.")
    ap.add_argument("fixtures", nargs="+", help="fixture sidecar JSON files")
    ap.add_argument("--atol", type=float, default=None, help="override every fixture's tolerance")
    args = ap.parse_args(argv)

    import torch

    torch.set_grad_enabled(False)
    overall_ok, overall_max = True, 0.0
    for path in args.fixtures:
        try:
            report = run_fixture(path, atol=args.atol)
        except NotAFixture as e:
            print(f"skip {e}")
            continue
        except ParityError as e:
            print(f"ERROR {e}")
            overall_ok, overall_max = False, math.inf
            continue
        print(f"== {path} (kind {report.fixture.kind})")
        for line in report.lines:
            status = "ok  " if line.ok else "FAIL"
            print(f"  {status} {line.key}: max_abs_diff={_fmt(line.max_abs_diff)} {line.detail}".rstrip())
        overall_ok &= report.passed
        overall_max = max(overall_max, report.max_abs_diff)
    print(f"{'PASS' if overall_ok else 'FAIL'} max_abs_diff={_fmt(overall_max)}")
    return 0 if overall_ok else 1


if __name__ == "__main__":
    sys.exit(main())
