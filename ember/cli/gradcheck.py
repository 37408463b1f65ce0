"""``ember gradcheck``: float64 numerical vs analytical gradients of every op and layer, as a table."""

from __future__ import annotations

from .common import print_json, say

# the columns say what they measure: a is the analytic gradient, n the numerical one, atol the row's
# absolute tolerance (the floor that keeps n = 0 from dividing by zero); see GradcheckResult
ABS_HEADER, REL_HEADER = "max |a-n|", "max |a-n|/(|n|+atol)"


def add_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="check every op's gradient numerically",
                       description="Compare analytic gradients with central differences in float64 for every op "
                                   "and layer; exit 1 on any failure.")
    p.add_argument("--filter", default="", help="only rows whose name contains this text")
    p.add_argument("--json", action="store_true", help="also print one JSON line per row")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..testing import LAYERS, OPS, check_layer, check_op

    rows = [("op", c.name, check_op, c) for c in OPS] + [("layer", c.name, check_layer, c) for c in LAYERS]
    rows = [r for r in rows if args.filter in r[1]]
    if not rows:
        say(f"no op or layer matches {args.filter!r}")
        return 1
    say(f"{'kind':<6} {'name':<34} {ABS_HEADER:>12} {REL_HEADER:>21}  status")
    failures = 0
    for kind, name, check, case in rows:
        try:
            result = check(case)
            status = "ok" if result.ok else "FAIL"
            abs_err, rel_err = f"{result.max_abs_error:.2e}", f"{result.max_rel_error:.2e}"
        except Exception as exc:  # an op that raises is a failure to report, not a crash
            status, abs_err, rel_err, result = f"ERROR {type(exc).__name__}: {exc}", "-", "-", None
        failures += status != "ok"
        say(f"{kind:<6} {name:<34} {abs_err:>12} {rel_err:>21}  {status}")
        if args.json:
            print_json({"kind": kind, "name": name, "ok": status == "ok",
                        "max_abs_error": result.max_abs_error if result else None,
                        "max_rel_error": result.max_rel_error if result else None})
    say(f"{len(rows) - failures}/{len(rows)} passed")
    return 1 if failures else 0
