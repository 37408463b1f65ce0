"""Upsampling layers over ``F.interpolate``."""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = [
    "Upsample",
    "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
]


class Upsample(Module):
    """Resize the spatial axes with ``F.interpolate`` (no parameters).

    Args:
        size: output size (int or one per spatial axis); or
        scale_factor: multiplier (float or one per axis): output size = floor(input size · scale_factor).
        mode: 'nearest' (PyTorch's legacy index rule), 'nearest-exact', 'linear' (3-D), 'bilinear' (4-D), 'area'.
        align_corners: linear modes only (default False).
        recompute_scale_factor: sample with output/input instead of 1/scale_factor.

    Shape: (N, C, L) or (N, C, H, W) -> (N, C, *size).
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` for (N, C, H, W) inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)`` for (N, C, H, W) inputs."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
