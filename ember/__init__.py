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
    device,
    float16,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    manual_seed,
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
from .functions import (
    abs,
    argmax,
    cat,
    clip,
    concat,
    cos,
    exp,
    is_tensor,
    log,
    matmul,
    maximum,
    minimum,
    pad,
    sigmoid,
    sin,
    split,
    sqrt,
    stack,
    tanh,
    where,
)
from .tensor import Tensor

__version__ = "0.1.0"

__all__ = [
    "abs", "arange", "argmax", "as_tensor", "backend", "bool_", "cat", "clip", "concat", "cos", "data", "device",
    "Device", "empty", "enable_grad", "exp", "eye", "float16", "float32", "float64", "from_numpy", "full",
    "full_like", "get_default_dtype", "int32", "int64", "io", "is_grad_enabled", "is_tensor", "linspace", "log",
    "manual_seed", "matmul", "maximum", "minimum", "models", "nn", "no_grad", "ones", "ones_like", "optim", "pad",
    "rand", "randint", "randn", "randperm", "set_default_dtype", "set_grad_enabled", "sigmoid", "sin", "split",
    "sqrt", "stack", "tanh", "Tensor", "tensor", "train", "uint8", "where", "zeros", "zeros_like",
]
