"""Index maps of a 2-D convolution's windows, shared by the direct loops (library_nn.py) and
the GEMM form (conv_gemm.py): where a tap of an output position reads the input, which output
position reads an input at a tap (the transposed map of the input gradient), and the logical
(n, h, w, c) order of either data format.
"""
from __future__ import annotations

from ..ops.conv import window_output
from . import index as iexpr


def layout(fmt: str, n, h, w, c) -> tuple:
    """A logical (n, h, w, c) index in the tensor's data format."""
    return (n, h, w, c) if fmt == "NHWC" else (n, c, h, w)


def hwc(shape: tuple, fmt: str) -> tuple[int, int, int, int]:
    return (shape[0], shape[1], shape[2], shape[3]) if fmt == "NHWC" else (shape[0], shape[2], shape[3], shape[1])


def pads(attrs: dict, hw: tuple[int, int], khw: tuple[int, int]) -> list[int]:
    """(pad_top, pad_left) for an input of spatial size hw and a kernel of size khw."""
    pad = attrs["padding"]
    dil = attrs.get("dilations") or (1, 1)
    return [window_output(hw[i], khw[i], attrs["strides"][i], dil[i], pad if isinstance(pad, str) else pad[i])[1][0]
            for i in range(2)]


def forward_tap(o, k, stride: int, dilation: int, pad: int, size: int):
    """Input position read by output o at tap k, and whether it is inside the input."""
    pos = iexpr.add(iexpr.add(iexpr.mul(o, stride), iexpr.mul(k, dilation)), -pad)
    return pos, iexpr.in_range(pos, 0, size)


def backward_tap(i, k, stride: int, dilation: int, pad: int, out_size: int):
    """Output position that reads input i at tap k (if any), and whether it exists."""
    num = iexpr.add(iexpr.add(i, pad), iexpr.mul(k, -dilation))
    o = iexpr.floordiv(num, stride)
    ok = iexpr.logical_and(iexpr.greater_equal(num, 0), iexpr.less(o, out_size),
                       iexpr.equal(iexpr.mod(num, stride), 0) if stride > 1 else None)
    return o, ok
