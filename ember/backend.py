"""Devices, array modules, the dtype policy and the seeded random generators.

This is the one seam between ember and its array libraries: ops receive raw arrays and
the array module (``numpy`` or ``cupy``) that owns them, and never branch on the device.
A new device is a new entry here, not a change to ops or layers.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- devices


class Device:
    """Where a tensor's data lives: ``cpu`` (NumPy) or ``cuda[:N]`` (CuPy)."""

    __slots__ = ("type", "index", "xp")

    def __init__(self, type: str, index: int | None, xp):
        self.type = type
        self.index = index
        self.xp = xp

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device('{self}')"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu", None, np)
_cuda_devices: dict[int, Device] = {}


def _import_cupy():
    """Return the cupy module with a usable GPU, or raise a RuntimeError that says what is missing."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "ember.device('cuda'): CuPy is not installed, so there is no GPU backend. "
            "Install it with `pip install 'ember[gpu]'` (cupy-cuda12x) on a machine with an NVIDIA GPU, "
            "or use device('cpu')."
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"ember.device('cuda'): CuPy is installed but CUDA is unusable: {exc}") from exc
    if count == 0:
        raise RuntimeError("ember.device('cuda'): CuPy is installed but no CUDA GPU is visible.")
    return cupy


def device(spec: str | Device = "cpu") -> Device:
    """Parse ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a Device (raises if the GPU is unavailable)."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"ember.device: expected a string such as 'cpu' or 'cuda:0', got {spec!r}")
    kind, _, idx = spec.strip().lower().partition(":")
    if kind == "cpu" and not idx:
        return CPU
    if kind == "cuda":
        index = int(idx) if idx else 0
        if index not in _cuda_devices:
            cupy = _import_cupy()
            count = cupy.cuda.runtime.getDeviceCount()
            if index >= count:
                raise RuntimeError(f"ember.device('{spec}'): only {count} CUDA device(s) are visible.")
            _cuda_devices[index] = Device("cuda", index, cupy)
        return _cuda_devices[index]
    raise ValueError(f"ember.device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")


def device_of(array) -> Device:
    """The device that holds ``array``."""
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    return device(f"cuda:{array.device.id}")


def array_module(array):
    """``numpy`` for host arrays, ``cupy`` for device arrays."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    return device_of(array).xp


def to_device(array, dev: Device):
    """Copy ``array`` onto ``dev`` (no copy when it is already there)."""
    if device_of(array) == dev:
        return array
    if dev.type == "cpu":
        return array.get()
    with dev.xp.cuda.Device(dev.index):
        return dev.xp.asarray(array)


# ----------------------------------------------------------------------------- dtypes

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)

_default_dtype = float32


def get_default_dtype() -> np.dtype:
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """Set the floating dtype for new tensors built from Python numbers (float32 or float64)."""
    global _default_dtype
    dt = np.dtype(dtype)
    if dt not in (float32, float64):
        raise TypeError(f"ember.set_default_dtype: only float32 or float64, got {dt}")
    _default_dtype = dt


def resolve_dtype(dtype) -> np.dtype | None:
    """Accept numpy dtypes, their names ('float32') or None."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"ember: unknown dtype {dtype!r}") from exc


def special(xp):
    """The scipy.special-like namespace (erf, ...) that matches the array module."""
    if xp is np:
        import scipy.special

        return scipy.special
    import cupyx.scipy.special

    return cupyx.scipy.special


# ----------------------------------------------------------------------------- random

_generators: dict[Device, object] = {}
_seed: int | None = None


def manual_seed(seed: int) -> None:
    """Seed every device's generator so that runs repeat bit for bit on the CPU."""
    global _seed
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"ember.manual_seed: seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _generators.clear()


def generator(dev: Device = CPU):
    """The device's random generator (numpy.random.Generator or cupy's), created on first use."""
    gen = _generators.get(dev)
    if gen is None:
        entropy = _seed if _seed is not None else np.random.SeedSequence().entropy
        if dev.type == "cpu":
            gen = np.random.Generator(np.random.PCG64(entropy))
        else:
            gen = dev.xp.random.Generator(dev.xp.random.XORWOW(entropy % 2**63))
        _generators[dev] = gen
    return gen


def new_generator(seed: int | None, dev: Device = CPU):
    """A private generator (for a DataLoader's shuffling, say) that the global seed does not disturb."""
    if dev.type == "cpu":
        return np.random.Generator(np.random.PCG64(seed))
    return dev.xp.random.Generator(dev.xp.random.XORWOW(seed))
