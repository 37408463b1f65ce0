"""Devices, array modules, the dtype policy and the seeded random generators.

This is the one seam between ember and its array libraries: ops receive raw arrays and
the array module (``numpy`` or ``cupy``) that owns them, and never branch on the device.
A new device is a new entry here, not a change to ops or layers.
"""

from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- devices


class Device:
    """Where a tensor's data lives: ``cpu`` (NumPy), ``cuda[:N]`` (CuPy) or a registered device.

    ``xp`` is the array module that owns the device's arrays; ``to_host``/``from_host`` copy one array
    off and onto it (``None`` on the CPU, which is the host).
    """

    __slots__ = ("type", "index", "xp", "to_host", "from_host", "new_generator")

    def __init__(self, type: str, index, xp, to_host=None, from_host=None, new_generator=None):
        self.type = type
        self.index = index
        self.xp = xp
        self.to_host = to_host
        self.from_host = from_host
        self.new_generator = new_generator

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

    def __enter__(self) -> Device:
        """``with ember.device('cuda'):`` makes new tensors (from Python or NumPy data) land here, as in PyTorch."""
        _default_stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _default_stack.pop()


CPU = Device("cpu", None, np)
_cuda_devices: dict[int, Device] = {}
_registered: dict[str, Device] = {}
_default_stack: list[Device] = [CPU]


def default_device() -> Device:
    """Where new tensors built from host data go: the CPU unless ``set_default_device`` or ``with device(...)``."""
    return _default_stack[-1]


def set_default_device(spec) -> None:
    """Make new tensors built from Python or NumPy data land on ``spec`` (``torch.set_default_device``)."""
    _default_stack[0] = device(spec)


def register_device(name: str, dev: Device) -> None:
    """Make ``device(name)`` return ``dev`` (the test double ``cpu:other`` registers itself this way)."""
    _registered[name.lower()] = dev


def is_device_name(name: str) -> bool:
    """Whether a string names a device (``to('cuda')``) rather than a dtype (``to('float64')``)."""
    name = name.strip().lower()
    return name in _registered or name.split(":")[0] in ("cpu", "cuda")


def _import_cupy():
    """Return the cupy module with a usable GPU, or raise a RuntimeError that says what is missing.

    CuPy's wheel imports on a machine without a GPU; only ``cupy.cuda.is_available()`` tells (any
    allocation then raises ``CUDARuntimeError``), so the gate is that call, not the import.
    """
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "ember.device('cuda'): CuPy is not installed, so there is no GPU backend. "
            "Install it with `pip install 'ember[gpu]'` (cupy-cuda12x) on a machine with an NVIDIA GPU, "
            "or use device('cpu')."
        ) from exc
    try:
        usable = cupy.cuda.is_available()
    except Exception as exc:  # CUDA driver missing or broken
        raise RuntimeError(f"ember.device('cuda'): CuPy is installed but CUDA is unusable: {exc}") from exc
    if not usable:
        raise RuntimeError("ember.device('cuda'): CuPy is installed but no usable CUDA GPU is visible "
                           "(cupy.cuda.is_available() is False).")
    return cupy


def cuda_available() -> bool:
    """Whether ``device('cuda')`` would work here (CuPy installed and a GPU visible); never raises."""
    try:
        _import_cupy()
    except RuntimeError:
        return False
    return True


def device(spec: str | Device = "cpu") -> Device:
    """Parse ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a Device (raises if the GPU is unavailable)."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"ember.device: expected a string such as 'cpu' or 'cuda:0', got {spec!r}")
    name = spec.strip().lower()
    if name in _registered:
        return _registered[name]
    kind, _, idx = name.partition(":")
    if kind == "cpu" and not idx:
        return CPU
    if kind == "cuda":
        if idx and not idx.isdigit():
            raise ValueError(f"ember.device: bad CUDA device {spec!r}; expected 'cuda' or 'cuda:N'")
        index = int(idx) if idx else 0
        if index not in _cuda_devices:
            cupy = _import_cupy()
            count = cupy.cuda.runtime.getDeviceCount()
            if index >= count:
                raise RuntimeError(f"ember.device('{spec}'): only {count} CUDA device(s) are visible.")
            _cuda_devices[index] = _cuda_device(cupy, index)
        return _cuda_devices[index]
    if name == "cpu:other":
        raise ValueError("ember.device('cpu:other'): the test double is registered by "
                         "`import ember.testing.device_double`")
    raise ValueError(f"ember.device: unknown device {spec!r}; expected 'cpu', 'cuda' or 'cuda:N'")


def _cuda_device(cupy, index: int) -> Device:
    def from_host(array):
        with cupy.cuda.Device(index):
            return cupy.asarray(array)

    def new_generator(seed):
        with cupy.cuda.Device(index):
            return cupy.random.Generator(cupy.random.XORWOW(seed))

    return Device("cuda", index, cupy, to_host=lambda a: a.get(), from_host=from_host, new_generator=new_generator)


def device_of(array) -> Device:
    """The device that holds ``array``."""
    if type(array) is np.ndarray or isinstance(array, np.generic):
        return CPU
    registered = getattr(type(array), "ember_device", None)
    if registered is not None:
        return registered
    if isinstance(array, np.ndarray):
        return CPU
    return device(f"cuda:{array.device.id}")


def array_module(array):
    """``numpy`` for host arrays, ``cupy`` for device arrays (the registered module for other devices)."""
    if type(array) is np.ndarray or isinstance(array, np.generic):
        return np
    return device_of(array).xp


def to_device(array, dev: Device):
    """Copy ``array`` onto ``dev`` (no copy when it is already there)."""
    source = device_of(array)
    if source == dev:
        return array
    if source.type == dev.type == "cuda":  # GPU to GPU without the host
        with dev.xp.cuda.Device(dev.index):
            return dev.xp.asarray(array)
    host = array if source is CPU else source.to_host(array)
    return host if dev is CPU else dev.from_host(host)


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
    registered = getattr(xp, "special", None)  # a registered device's own namespace (the test double's)
    if registered is not None:
        return registered
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
        gen = _generators[dev] = new_generator(entropy % 2**63, dev) if dev.type != "cpu" else \
            np.random.Generator(np.random.PCG64(entropy))
    return gen


def new_generator(seed: int | None, dev: Device = CPU):
    """A private generator (for a DataLoader's shuffling, say) that the global seed does not disturb."""
    if dev.type == "cpu":
        return np.random.Generator(np.random.PCG64(seed))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    return dev.new_generator(seed)
