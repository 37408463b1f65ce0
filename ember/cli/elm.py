"""``ember elm``: list and run the forward-only learning experiments."""

from __future__ import annotations

import sys

from .common import add_device_arg, non_negative_int, print_json, resolve_device, say


def add_parser(sub) -> None:
    p = sub.add_parser("elm", help="forward-only learning experiments",
                       description="Extreme learning machines, random and PCA features, local learning rules.")
    cmds = p.add_subparsers(dest="elm_command", metavar="ACTION", required=True)
    ls = cmds.add_parser("list", help="list the experiments")
    ls.set_defaults(run=run_list)
    r = cmds.add_parser("run", help="run one experiment")
    r.add_argument("name", help="an experiment from `ember elm list`")
    r.add_argument("--dataset", choices=("mnist", "fashion-mnist", "kmnist", "cifar10"), default="mnist")
    r.add_argument("--seed", type=non_negative_int, default=0)
    r.add_argument("--data-dir", default=None)
    r.add_argument("--no-download", action="store_true")
    r.add_argument("--json", action="store_true", help="only the final JSON line")
    add_device_arg(r)
    r.set_defaults(run=run_one)


def run_list(args) -> int:
    from ..elm.experiments import EXPERIMENTS

    say(f"{'name':<22} {'datasets':<22} notes")
    for e in EXPERIMENTS.values():
        notes = ("gradient steps, for comparison; " if e.gradient_steps else "") + ("slow; " if e.slow else "")
        say(f"{e.name:<22} {','.join(e.datasets):<22} {notes}{e.description}")
    return 0


def run_one(args) -> int:
    from ..elm import experiments
    from .common import UsageError

    try:
        exp = experiments.get(args.name)
    except KeyError as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    if args.dataset not in exp.datasets:
        raise UsageError(f"experiment {exp.name} runs on {', '.join(exp.datasets)}, not {args.dataset}")
    device = resolve_device(args.device)
    try:
        experiments.check_device(exp, device)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.json:
        say(f"{exp.name} on {args.dataset} ({device}): {exp.description}")
    result = experiments.run(exp.name, args.dataset, args.seed, args.data_dir, not args.no_download, device=device)
    if not args.json:
        say(f"train accuracy {result['train_accuracy']:.2%}  test accuracy {result['test_accuracy']:.2%}  "
            f"{result['seconds']:.1f} s  peak memory "
            + (f"{result['peak_memory_bytes'] / 2**30:.2f} GiB" if result["peak_memory_bytes"] else "n/a"))
        say("activations on 500 test images:")
        for r in result["activations"]:
            say(f"  {r['layer']:<24} mean {r['mean']:>10.4g}  std {r['std']:>10.4g}  zeros {r['zero_fraction']:.1%}")
    print_json({"event": "elm", **{k: v for k, v in result.items() if k != "activations"}})
    sys.stdout.flush()
    return 0
