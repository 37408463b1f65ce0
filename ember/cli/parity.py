"""``ember parity``: every op, layer, max-pool argmax and one training step per model, on the CPU and on a
device from the same inputs and weights; the largest differences against the documented tolerances."""

from __future__ import annotations

import time

from .common import UsageError, print_json, say

DTYPES = {"both": ("float64", "float32"), "float64": ("float64",), "float32": ("float32",)}


def add_parser(sub) -> None:
    p = sub.add_parser("parity", help="compare the GPU's results with the CPU's",
                       description="Run every op and layer, max pooling's argmax and one training step of the MLP, "
                                   "LeNet-5, a KAN and a small GPT on the CPU and on the device from the same inputs; "
                                   "report the largest absolute and norm-relative differences (float64 <= 1e-10, "
                                   "float32 <= 1e-5 per op, <= 1e-4 per step; argmax identical). Exit 1 on any "
                                   "failure; exit 0 with 'skipped' when the device is absent.")
    p.add_argument("--device", default="cuda",
                   help="the device to compare with the CPU: cuda (default), cuda:N, or cpu:other (the GPU-free "
                        "test double)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="both")
    p.add_argument("--only", default="ops,layers,pooling,steps",
                   help="comma-separated sections among ops, layers, pooling, steps (default: all)")
    p.add_argument("--filter", default="", help="only rows whose name contains this text")
    p.add_argument("--all-rows", action="store_true", help="print every row, not only the worst per section")
    p.add_argument("--json", action="store_true", help="also print one JSON line per compared quantity")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import backend
    from ..testing import parity

    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(sections) - set(parity.SECTIONS))
    if unknown or not sections:
        raise UsageError(f"--only: unknown section(s) {unknown or sections}; choose among {', '.join(parity.SECTIONS)}")
    if args.device.strip().lower().split(":")[0] == "cuda" and not backend.cuda_available():
        say(f"ember parity: skipped: device '{args.device}' is not available here ({_why_no_cuda()})")
        return 0
    try:
        dev = backend.device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"--device: {exc}") from exc
    if dev == backend.CPU:
        raise UsageError("--device: compare the CPU with another device (cuda, cuda:N or cpu:other), not with itself")

    start = time.perf_counter()
    rows: dict[tuple, list] = {}
    for check in parity.run(dev, DTYPES[args.dtype], sections):
        if args.filter and args.filter not in check.name:
            continue
        rows.setdefault((check.section, check.name, check.dtype), []).append(check)
        if args.json:
            print_json(check.as_dict())
    failures = _report(rows, args.all_rows)
    say(f"{len(rows) - failures}/{len(rows)} rows within tolerance on {dev} "
        f"({sum(len(v) for v in rows.values())} quantities, {time.perf_counter() - start:.1f} s)")
    return 1 if failures else 0


def _report(rows: dict, all_rows: bool) -> int:
    """Print failing rows (and every row with --all-rows), then the worst row per section and dtype."""
    say(f"{'section':<8} {'row':<44} {'dtype':<8} {'worst quantity':<34} {'max abs':>9} {'max rel':>9} "
        f"{'tol':>7}  status")
    failures = 0
    worst: dict[tuple, tuple] = {}
    for (section, _, dtype), checks in rows.items():
        bad = [c for c in checks if not c.ok]
        top = max(bad or checks, key=lambda c: (not c.ok, c.max_rel))
        failures += bool(bad)
        if bad or all_rows:
            _line(top, "FAIL" if bad else "ok")
        key = (section, dtype)
        if key not in worst or top.max_rel > worst[key].max_rel:
            worst[key] = top
    say("worst row per section:")
    for top in worst.values():
        _line(top, "ok" if top.ok else "FAIL")
    return failures


def _line(c, status: str) -> None:
    note = f"  ({c.note})" if c.note else ""
    say(f"{c.section:<8} {c.name[:44]:<44} {c.dtype:<8} {c.quantity[:34]:<34} {c.max_abs:>9.2e} {c.max_rel:>9.2e} "
        f"{c.tolerance:>7.0e}  {status}{note}")


def _why_no_cuda() -> str:
    try:
        from .. import backend

        backend.device("cuda")
    except RuntimeError as exc:
        return str(exc)
    return "unknown"
