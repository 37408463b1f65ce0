"""Per-layer activation statistics (mean, std, fraction of zeros) collected with forward hooks.

    with ActivationStats(model) as stats:
        model(x)
    print(stats.table())

Works on any Module: hooks go on its leaf modules (or the ones named), and statistics
accumulate over every call until ``reset``. Dead ReLUs show up as a zero fraction near 1,
saturating tanh units as a std near the range.
"""

from __future__ import annotations

import numpy as np

from .module import Module


class ActivationStats:
    def __init__(self, model: Module, names: list[str] | None = None):
        self._handles = []
        self._sums: dict[str, np.ndarray] = {}
        self.order: list[str] = []
        modules = dict(model.named_modules())
        if names is None:
            names = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
            if not names:  # a single leaf module
                names = [""]
        for name in names:
            if name not in modules:
                raise KeyError(f"ActivationStats: no module named {name!r}; modules: {sorted(modules)}")
            label = name or type(model).__name__
            self.order.append(label)
            self._handles.append(modules[name].register_forward_hook(self._hook(label)))

    def _hook(self, label: str):
        def hook(module, inputs, output):
            data = output.numpy() if hasattr(output, "numpy") else np.asarray(output)
            data = data.astype(np.float64, copy=False)
            acc = self._sums.setdefault(label, np.zeros(4))
            acc += (data.size, data.sum(), (data * data).sum(), np.count_nonzero(data == 0))

        return hook

    def reset(self) -> None:
        self._sums.clear()

    def report(self) -> list[dict]:
        rows = []
        for label in self.order:
            if label not in self._sums:
                continue
            n, s, sq, zeros = self._sums[label]
            mean = s / n
            rows.append({"layer": label, "mean": float(mean), "std": float(np.sqrt(max(sq / n - mean * mean, 0.0))),
                         "zero_fraction": float(zeros / n), "values": int(n)})
        return rows

    def table(self) -> str:
        lines = [f"{'layer':<28} {'mean':>10} {'std':>10} {'zeros':>7}"]
        for r in self.report():
            lines.append(f"{r['layer']:<28} {r['mean']:>10.4g} {r['std']:>10.4g} {r['zero_fraction']:>6.1%}")
        return "\n".join(lines)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> ActivationStats:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
