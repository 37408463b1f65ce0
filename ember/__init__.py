"""ember: a readable deep-learning framework on NumPy (CPU) and CuPy (GPU)."""

from . import _runtime  # noqa: F401, I001  (first: settings that must precede NumPy's import)

from . import (
    backend,
    data,
    io,
    models,
    nn,
    optim,
    train,
)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    Device,
    bool_,
    cuda_available,
    default_device,
    device,
    float16,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    manual_seed,
    set_default_device,
    set_default_dtype,
    uint8,
)
from .creation import (
    arange,
    as_tensor,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from . import functions
from .functions import *  # noqa: F403
from .tensor import Tensor

__version__ = "0.1.0"


def __getattr__(name: str):
    """``ember.profiler`` is imported on first use: ``import ember`` stays as fast as it was."""
    if name == "profiler":
        import importlib

        return importlib.import_module(".profiler", __name__)  # (``from . import`` would call back in here)
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


__all__ = [
    "arange", "as_tensor", "backend", "bool_", "cuda_available", "data", "default_device", "device", "Device",
    "empty", "enable_grad", "eye", "float16", "float32", "float64", "from_numpy", "full", "full_like", "functions",
    "get_default_dtype", "int32", "int64", "io", "is_grad_enabled", "linspace", "manual_seed", "models", "nn",
    "no_grad", "ones", "ones_like", "optim", "rand", "randint", "randn", "randperm", "set_default_device",
    "set_default_dtype", "set_grad_enabled", "Tensor", "tensor", "train", "uint8", "zeros", "zeros_like",
    *functions.__all__,
]
