"""Op-table rows: convolution, transposed convolution, pooling and interpolation (and their layers).

Every option PyTorch has gets a row, with shapes chosen so it matters: rectangular kernels and
strides, padding that is asymmetric ('same' with an even kernel), strides larger than the kernel
(input positions no window reads), ceil_mode windows that run past the padding, adaptive windows
that overlap (sizes that do not divide), interpolation ratios that are not integers.
"""

from __future__ import annotations

import ember.nn as nn
import ember.nn.functional as F

from .case import LayerCase, OpCase, _twin


def _conv(name, shapes, **kw):
    """A conv2d row (inputs: x, weight and, when three shapes are given, bias)."""
    return OpCase(name, lambda *a: F.conv2d(*a, **kw), lambda T, *a: T.nn.functional.conv2d(*a, **kw), shapes)


def _conv1d(name, shapes, **kw):
    return OpCase(name, lambda *a: F.conv1d(*a, **kw), lambda T, *a: T.nn.functional.conv1d(*a, **kw), shapes)


def _conv_t(name, shapes, **kw):
    return OpCase(name, lambda *a: F.conv_transpose2d(*a, **kw),
                  lambda T, *a: T.nn.functional.conv_transpose2d(*a, **kw), shapes)


def _conv_t1d(name, shapes, **kw):
    return OpCase(name, lambda *a: F.conv_transpose1d(*a, **kw),
                  lambda T, *a: T.nn.functional.conv_transpose1d(*a, **kw), shapes)


def _unary(name, fn, shape, *args, **kw):
    """A row for F.<fn>(x, *args, **kw) against torch.nn.functional.<fn> with the same arguments."""
    return OpCase(name, lambda x: getattr(F, fn)(x, *args, **kw),
                  lambda T, x: getattr(T.nn.functional, fn)(x, *args, **kw), (shape,))


OPS: list[OpCase] = [
    # -- conv2d
    OpCase("conv2d", lambda x, w, b: F.conv2d(x, w, b), lambda T, x, w, b: T.nn.functional.conv2d(x, w, b),
           ((2, 2, 5, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_stride_pad", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
           lambda T, x, w, b: T.nn.functional.conv2d(x, w, b, stride=2, padding=1),
           ((2, 2, 6, 5), (3, 2, 3, 3), (3,))),
    OpCase("conv2d_nobias_k1", lambda x, w: F.conv2d(x, w), lambda T, x, w: T.nn.functional.conv2d(x, w),
           ((2, 3, 4, 4), (2, 3, 1, 1))),
    _conv("conv2d_rect_kernel", ((2, 2, 6, 5), (3, 2, 3, 2), (3,))),
    _conv("conv2d_tuples", ((2, 2, 7, 6), (3, 2, 3, 2), (3,)), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
    _conv("conv2d_dilation", ((1, 2, 7, 6), (2, 2, 3, 3)), padding=2, dilation=2),
    _conv("conv2d_stride_over_kernel", ((1, 2, 7, 8), (2, 2, 2, 2), (2,)), stride=3),
    _conv("conv2d_groups2", ((2, 4, 5, 5), (6, 2, 3, 3), (6,)), padding=1, groups=2),
    _conv("conv2d_depthwise", ((2, 3, 5, 4), (3, 1, 3, 3), (3,)), stride=2, padding=1, groups=3),
    _conv("conv2d_depthwise_multiplier", ((1, 3, 4, 5), (6, 1, 2, 3)), groups=3, dilation=(2, 1)),
    _conv("conv2d_same", ((2, 3, 5, 4), (2, 3, 3, 3), (2,)), padding="same"),
    _conv("conv2d_same_asymmetric", ((2, 3, 6, 5), (2, 3, 4, 3)), padding="same", dilation=(1, 2)),
    _conv("conv2d_valid", ((1, 2, 5, 6), (2, 2, 2, 3)), padding="valid"),
    _conv("conv2d_unbatched", ((3, 5, 5), (2, 3, 3, 2), (2,)), padding=(0, 1)),
    # -- conv1d
    _conv1d("conv1d", ((2, 3, 9), (4, 3, 3), (4,))),
    _conv1d("conv1d_stride_pad_dilation", ((2, 3, 11), (4, 3, 3), (4,)), stride=2, padding=2, dilation=2),
    _conv1d("conv1d_groups_same", ((2, 6, 7), (6, 2, 4)), padding="same", groups=3),
    _conv1d("conv1d_unbatched", ((3, 7), (2, 3, 2), (2,)), stride=(2,)),
    # -- conv_transpose2d
    _conv_t("conv_transpose2d", ((2, 3, 4, 5), (3, 2, 3, 3), (2,))),
    _conv_t("conv_transpose2d_stride_pad_outpad", ((2, 3, 3, 4), (3, 2, 3, 3), (2,)), stride=2, padding=1,
            output_padding=1),
    _conv_t("conv_transpose2d_tuples", ((1, 2, 3, 4), (2, 3, 3, 2), (3,)), stride=(2, 3), padding=(1, 0),
            output_padding=(1, 2), dilation=(1, 2)),
    _conv_t("conv_transpose2d_groups", ((2, 4, 3, 3), (4, 3, 3, 3), (6,)), groups=2, stride=2),
    _conv_t("conv_transpose2d_depthwise", ((1, 3, 3, 4), (3, 1, 2, 2)), groups=3, padding=(0, 1)),
    _conv_t("conv_transpose2d_dilation_outpad", ((1, 2, 3, 4), (2, 2, 2, 3)), dilation=3, output_padding=2,
            padding=1),
    _conv_t("conv_transpose2d_outpad_over_pad", ((1, 2, 3, 3), (2, 2, 2, 2)), stride=3, output_padding=2),
    _conv_t("conv_transpose2d_unbatched", ((3, 3, 4), (3, 2, 2, 3), (2,)), stride=(1, 2)),
    _conv_t1d("conv_transpose1d", ((2, 3, 5), (3, 4, 3), (4,)), stride=2, padding=1, output_padding=1),
    _conv_t1d("conv_transpose1d_groups", ((2, 4, 4), (4, 1, 3)), groups=2, dilation=2),
    # -- max pooling
    OpCase("max_pool2d", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("max_pool2d_overlap_pad", lambda x: F.max_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.max_pool2d(x, 3, stride=2, padding=1), ((2, 2, 5, 5),)),
    OpCase("max_pool2d_odd", lambda x: F.max_pool2d(x, 2), lambda T, x: T.nn.functional.max_pool2d(x, 2),
           ((1, 2, 5, 5),)),
    _unary("max_pool2d_tiled_rect", "max_pool2d", (2, 2, 5, 7), (2, 3)),
    _unary("max_pool2d_rect_tuples", "max_pool2d", (2, 2, 5, 7), (2, 3), stride=(1, 2), padding=(1, 1)),
    _unary("max_pool2d_dilation", "max_pool2d", (1, 2, 7, 7), 3, stride=2, padding=1, dilation=2),
    _unary("max_pool2d_dilation_rect", "max_pool2d", (1, 2, 6, 7), (2, 3), stride=1, dilation=(2, 1)),
    _unary("max_pool2d_ceil", "max_pool2d", (1, 2, 6, 8), 3, stride=2, ceil_mode=True),
    _unary("max_pool2d_ceil_pad", "max_pool2d", (1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True),
    _unary("max_pool2d_stride_over_kernel", "max_pool2d", (1, 2, 7, 8), 2, stride=3),
    _unary("max_pool2d_unbatched", "max_pool2d", (2, 5, 4), 2, stride=1),
    _unary("max_pool1d", "max_pool1d", (2, 3, 8), 3, stride=2, padding=1, ceil_mode=True),
    _unary("max_pool1d_tiled", "max_pool1d", (2, 3, 9), 2),
    _unary("max_pool1d_dilation", "max_pool1d", (2, 2, 9), 2, dilation=3, padding=1),
    # -- average pooling
    OpCase("avg_pool2d", lambda x: F.avg_pool2d(x, 2), lambda T, x: T.nn.functional.avg_pool2d(x, 2),
           ((2, 3, 4, 6),)),
    OpCase("avg_pool2d_pad", lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
           lambda T, x: T.nn.functional.avg_pool2d(x, 3, stride=2, padding=1), ((1, 2, 5, 5),)),
    _unary("avg_pool2d_rect_tuples", "avg_pool2d", (2, 2, 5, 7), (2, 3), stride=(1, 2), padding=(1, 1)),
    _unary("avg_pool2d_exclude_pad", "avg_pool2d", (1, 2, 5, 6), 3, stride=2, padding=1, count_include_pad=False),
    _unary("avg_pool2d_ceil", "avg_pool2d", (1, 2, 6, 8), 3, stride=2, ceil_mode=True),
    _unary("avg_pool2d_ceil_pad", "avg_pool2d", (1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True),
    _unary("avg_pool2d_ceil_exclude_pad", "avg_pool2d", (1, 2, 6, 7), 3, stride=2, padding=1, ceil_mode=True,
           count_include_pad=False),
    _unary("avg_pool2d_divisor_override", "avg_pool2d", (1, 2, 5, 6), 2, stride=1, padding=1, divisor_override=3),
    _unary("avg_pool2d_unbatched", "avg_pool2d", (2, 5, 4), (3, 2), stride=1),
    _unary("avg_pool1d", "avg_pool1d", (2, 3, 8), 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    _unary("avg_pool1d_default_stride", "avg_pool1d", (2, 3, 7), 2),
    # -- adaptive pooling (windows overlap when the sizes do not divide)
    _unary("adaptive_avg_pool2d", "adaptive_avg_pool2d", (2, 2, 7, 10), (3, 4)),
    _unary("adaptive_avg_pool2d_larger", "adaptive_avg_pool2d", (1, 2, 5, 3), (7, None)),
    _unary("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", (2, 3, 4, 5), 1),
    _unary("adaptive_avg_pool2d_unbatched", "adaptive_avg_pool2d", (2, 5, 7), 3),
    _unary("adaptive_avg_pool1d", "adaptive_avg_pool1d", (2, 3, 7), 3),
    _unary("adaptive_max_pool2d", "adaptive_max_pool2d", (2, 2, 7, 10), (3, 4)),
    _unary("adaptive_max_pool2d_larger", "adaptive_max_pool2d", (1, 2, 5, 3), (7, None)),
    _unary("adaptive_max_pool2d_unbatched", "adaptive_max_pool2d", (2, 5, 7), (2, 3)),
    _unary("adaptive_max_pool1d", "adaptive_max_pool1d", (2, 3, 7), 3),
    # -- interpolation
    _unary("interpolate_nearest_size", "interpolate", (2, 2, 4, 5), size=(7, 9)),
    _unary("interpolate_nearest_scale2", "interpolate", (1, 2, 3, 4), scale_factor=2),
    _unary("interpolate_nearest_scale_factor", "interpolate", (1, 2, 4, 5), scale_factor=1.7),
    _unary("interpolate_nearest_down", "interpolate", (1, 2, 5, 7), size=(3, 2)),
    _unary("interpolate_nearest_exact", "interpolate", (1, 2, 4, 5), size=(7, 3), mode="nearest-exact"),
    _unary("interpolate_nearest_1d", "interpolate", (2, 3, 5), size=8),
    _unary("interpolate_bilinear", "interpolate", (2, 2, 4, 5), size=(7, 9), mode="bilinear"),
    _unary("interpolate_bilinear_align", "interpolate", (2, 2, 4, 5), size=(7, 9), mode="bilinear",
           align_corners=True),
    _unary("interpolate_bilinear_down_align", "interpolate", (1, 2, 6, 7), size=(3, 2), mode="bilinear",
           align_corners=True),
    _unary("interpolate_bilinear_down", "interpolate", (1, 2, 6, 7), size=(4, 3), mode="bilinear"),
    _unary("interpolate_bilinear_scale_factor", "interpolate", (1, 2, 4, 5), scale_factor=(2.0, 0.6), mode="bilinear"),
    _unary("interpolate_bilinear_recompute", "interpolate", (1, 2, 4, 5), scale_factor=1.7, mode="bilinear",
           recompute_scale_factor=True),
    _unary("interpolate_bilinear_to_one", "interpolate", (1, 2, 4, 5), size=(1, 3), mode="bilinear",
           align_corners=True),
    _unary("interpolate_linear", "interpolate", (2, 3, 5), scale_factor=2.5, mode="linear"),
    _unary("interpolate_linear_align", "interpolate", (2, 3, 5), size=8, mode="linear", align_corners=True),
    _unary("interpolate_area", "interpolate", (1, 2, 7, 5), size=(3, 2), mode="area"),
]

LAYERS: list[LayerCase] = [
    LayerCase("Conv2d_tuples_groups", lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1),
                                                        dilation=(1, 2), groups=2),
              _twin(lambda T: T.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), groups=2)),
              (2, 4, 6, 5)),
    LayerCase("Conv2d_same_nobias", lambda: nn.Conv2d(2, 3, 4, padding="same", bias=False),
              _twin(lambda T: T.nn.Conv2d(2, 3, 4, padding="same", bias=False)), (2, 2, 5, 5)),
    LayerCase("Conv2d_depthwise", lambda: nn.Conv2d(3, 6, 3, groups=3, padding=1),
              _twin(lambda T: T.nn.Conv2d(3, 6, 3, groups=3, padding=1)), (1, 3, 4, 5)),
    LayerCase("Conv2d_unbatched", lambda: nn.Conv2d(2, 2, 2), _twin(lambda T: T.nn.Conv2d(2, 2, 2)), (2, 4, 3)),
    LayerCase("Conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1),
              _twin(lambda T: T.nn.Conv1d(3, 4, 3, stride=2, padding=1)), (2, 3, 8)),
    LayerCase("Conv1d_same_groups", lambda: nn.Conv1d(2, 4, 3, padding="same", dilation=2, groups=2),
              _twin(lambda T: T.nn.Conv1d(2, 4, 3, padding="same", dilation=2, groups=2)), (2, 2, 7)),
    LayerCase("ConvTranspose2d", lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
              _twin(lambda T: T.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)), (2, 3, 3, 4)),
    LayerCase("ConvTranspose2d_groups_dilation",
              lambda: nn.ConvTranspose2d(4, 6, (2, 3), groups=2, dilation=(2, 1), bias=False),
              _twin(lambda T: T.nn.ConvTranspose2d(4, 6, (2, 3), groups=2, dilation=(2, 1), bias=False)),
              (1, 4, 3, 3)),
    LayerCase("ConvTranspose1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=2),
              _twin(lambda T: T.nn.ConvTranspose1d(3, 2, 3, stride=2)), (2, 3, 4)),
    LayerCase("MaxPool2d_ceil_dilation", lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
              _twin(lambda T: T.nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True)), (1, 2, 8, 7)),
    LayerCase("MaxPool1d", lambda: nn.MaxPool1d(3, 2), _twin(lambda T: T.nn.MaxPool1d(3, 2)), (2, 3, 8)),
    LayerCase("AvgPool2d_options", lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
              _twin(lambda T: T.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)), (1, 2, 6, 7)),
    LayerCase("AvgPool2d_divisor", lambda: nn.AvgPool2d((2, 3), divisor_override=4),
              _twin(lambda T: T.nn.AvgPool2d((2, 3), divisor_override=4)), (1, 2, 4, 6)),
    LayerCase("AvgPool1d", lambda: nn.AvgPool1d(3, 2, 1), _twin(lambda T: T.nn.AvgPool1d(3, 2, 1)), (2, 3, 8)),
    LayerCase("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((3, None)),
              _twin(lambda T: T.nn.AdaptiveAvgPool2d((3, None))), (2, 2, 7, 4)),
    LayerCase("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(4), _twin(lambda T: T.nn.AdaptiveAvgPool1d(4)),
              (2, 3, 7)),
    LayerCase("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d((2, 3)),
              _twin(lambda T: T.nn.AdaptiveMaxPool2d((2, 3))), (2, 2, 5, 7)),
    LayerCase("AdaptiveMaxPool1d", lambda: nn.AdaptiveMaxPool1d(3), _twin(lambda T: T.nn.AdaptiveMaxPool1d(3)),
              (2, 3, 7)),
    LayerCase("Upsample_nearest", lambda: nn.Upsample(scale_factor=2), _twin(lambda T: T.nn.Upsample(scale_factor=2)),
              (2, 2, 3, 4)),
    LayerCase("Upsample_bilinear", lambda: nn.Upsample(size=(5, 7), mode="bilinear"),
              _twin(lambda T: T.nn.Upsample(size=(5, 7), mode="bilinear")), (2, 2, 3, 4)),
    LayerCase("Upsample_linear_align", lambda: nn.Upsample(scale_factor=1.5, mode="linear", align_corners=True),
              _twin(lambda T: T.nn.Upsample(scale_factor=1.5, mode="linear", align_corners=True)), (2, 3, 5)),
    LayerCase("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(size=(5, 3)),
              _twin(lambda T: T.nn.UpsamplingNearest2d(size=(5, 3))), (1, 2, 3, 4)),
    LayerCase("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2),
              _twin(lambda T: T.nn.UpsamplingBilinear2d(scale_factor=2)), (1, 2, 3, 4)),
]
