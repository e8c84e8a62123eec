"""Alpha dropout's kernels (``alpha_dropout``, ``feature_alpha_dropout``) on device arrays.

The keep decisions are dropout's (nbops/cuda/_kernels.py: mask element ``i``
takes lane ``i % 4`` of Philox block ``i // 4`` under the CPU's key), so a seed
means the same mask here as on the CPU. A kept element becomes
``x * a + kept_shift``, a dropped one ``x * 0 + dropped_shift``: the product is
rounded before the sum, as on the CPU (``mul.rn``: CUDA would otherwise fuse
the two into one FMA and round once), so the results are the CPU's bit for bit.
The channel form reads one (multiplier, shift) pair per channel from two
channel masks drawn with the same key.
"""

import numpy as np
from numba import cuda

from ._core import SIMULATOR, TPB
from ._kernels import _LO32, _SH32, _Z32, _philox, grid

if SIMULATOR:
    def _product(a, b):
        """``a * b`` rounded to the operands' type (the simulator runs Python)."""
        return a * b
else:
    from numba.cuda import libdevice
    from numba.cuda import types as _ct
    from numba.cuda.extending import overload as _overload

    def _product(a, b):
        """``a * b`` rounded to the operands' type, never fused into an FMA."""
        raise NotImplementedError("device code only")

    @_overload(_product, target="cuda", inline="always")
    def _product_cuda(a, b):
        if a == _ct.float32:
            return lambda a, b: libdevice.fmul_rn(a, b)
        return lambda a, b: libdevice.dmul_rn(a, b)


@cuda.jit
def _alpha_dropout_kernel(x, out, k0, k1, t, scale, zero, kept_shift, dropped_shift):
    """out[i] = x[i] * a + b1 if kept(i) else x[i] * 0 + b0 (out may be x)."""
    n = out.size
    for j in range(cuda.grid(1), (n + 3) // 4, cuda.gridsize(1)):
        b = np.uint64(j)
        r0, r1, r2, r3 = _philox(b & _LO32, b >> _SH32, _Z32, _Z32, k0, k1)
        i = 4 * j
        k = r0 >= t
        out[i] = _product(x[i], scale if k else zero) + (kept_shift if k else dropped_shift)
        if i + 1 < n:
            k = r1 >= t
            out[i + 1] = (_product(x[i + 1], scale if k else zero)
                          + (kept_shift if k else dropped_shift))
        if i + 2 < n:
            k = r2 >= t
            out[i + 2] = (_product(x[i + 2], scale if k else zero)
                          + (kept_shift if k else dropped_shift))
        if i + 3 < n:
            k = r3 >= t
            out[i + 3] = (_product(x[i + 3], scale if k else zero)
                          + (kept_shift if k else dropped_shift))


@cuda.jit
def _channel_affine_kernel(x, out, mult, shift, inner):
    """out[i] = x[i] * mult[c] + shift[c] with c = i // inner (one pair per channel)."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = i // inner
        out[i] = _product(x[i], mult[c]) + shift[c]


def run_alpha_dropout(x, out, key, t, scale, zero, kept_shift, dropped_shift):
    """Elementwise alpha dropout of flat C-order ``x`` into ``out`` (may be ``x``)."""
    _alpha_dropout_kernel[grid((x.size + 3) // 4), TPB](x, out, key[0], key[1], t, scale, zero,
                                                        kept_shift, dropped_shift)


def run_channel_affine(x, out, mult, shift, inner):
    _channel_affine_kernel[grid(x.size), TPB](x, out, mult, shift, np.int64(inner))
