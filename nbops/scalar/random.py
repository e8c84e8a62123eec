"""Counter-based random numbers: Philox4x32-10, and the dropout keep decision.

Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy
as 1, 2, 3", SC'11; the Random123 library) maps a 128-bit counter and a 64-bit
key to 128 random bits with ten rounds of 32x32->64-bit multiplications and
XORs. It passes TestU01's BigCrush for every key, and distinct counters (or
keys) give independent outputs, so element ``i`` of a random mask can be
computed from ``(key, i)`` alone, by any thread, in any order, on the CPU or a
GPU: the mask does not depend on how the work is split.

Everything here is plain integer arithmetic on ``uint64`` values that hold
32-bit words (the only NumPy names used are the scalar types, as casts and
constants). :func:`philox4x32_10`, :func:`lane` and :func:`splitmix64` call
no other function, so the same Python functions compile with ``numba.njit``
(inlined, see :func:`nbops._config.core`) and with
``numba.cuda.jit(device=True)``: use ``philox4x32_10.py_func`` there.
:func:`keep` composes them (CPU).

Verified against Random123's known-answer vectors (``kat_vectors``) in
``tests/test_dropout.py``.

How nbops uses it (dropout)
---------------------------
* **Seed**: every ``rng=`` form becomes a 64-bit seed ``s``: an int seed is
  taken as it is (``0 <= s < 2**64``); a ``numpy.random.Generator`` gives
  ``s = rng.integers(2**64, dtype=np.uint64)`` (one draw, which advances it);
  ``None`` takes 8 bytes from ``os.urandom`` (fresh entropy, different in
  forked workers).
* **Key**: ``key = splitmix64(s)`` (:func:`splitmix64`: the first output of
  Steele, Lea and Flood's SplitMix64 generator seeded with ``s``, a bijection
  of 64-bit words, so distinct seeds give distinct keys); ``k0`` is its low 32
  bits, ``k1`` its high 32 bits.
* **Counter**: element (or, for dropout2d/3d, channel) ``i`` of the mask, in
  C order, uses the Philox block ``j = i // 4``: counter
  ``(j mod 2**32, j // 2**32, 0, 0)``; the block's four outputs
  ``r0..r3`` serve elements ``4j .. 4j+3``, so element ``i`` gets
  ``r[i % 4]``.
* **Decision**: element ``i`` is kept iff ``r[i % 4] >= t`` with
  ``t = min(round(p * 2**32), 2**32 - 1)`` (:func:`drop_threshold`), i.e.
  with probability ``1 - t / 2**32`` (``p`` to within 2**-33).
"""

import math

import numpy as np

from .._config import core

__all__ = ["philox4x32_10", "splitmix64", "lane", "keep", "drop_threshold"]

_U64 = np.uint64
_U32 = np.uint32
_MASK32 = _U64(0xFFFFFFFF)
_SH32 = _U64(32)
# Philox4x32 multipliers and Weyl key increments (Random123, philox.h)
_M0 = _U64(0xD2511F53)
_M1 = _U64(0xCD9E8D57)
_W0 = _U64(0x9E3779B9)
_W1 = _U64(0xBB67AE85)


def _philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    ``c0`` and ``k0`` are the least significant words, as in Random123.

    Parameters
    ----------
    c0, c1, c2, c3 : unsigned integer
        The 128-bit counter, as four 32-bit words (any unsigned integer type
        holding a value below 2**32).
    k0, k1 : unsigned integer
        The 64-bit key, as two 32-bit words.

    Returns
    -------
    tuple of four uint32
        The 128 random bits.
    """
    x0 = _U64(c0)
    x1 = _U64(c1)
    x2 = _U64(c2)
    x3 = _U64(c3)
    a = _U64(k0)
    b = _U64(k1)
    for _ in range(10):
        p0 = _M0 * x0  # < 2**64: exact
        p1 = _M1 * x2
        y0 = ((p1 >> _SH32) ^ x1) ^ a
        y1 = p1 & _MASK32
        y2 = ((p0 >> _SH32) ^ x3) ^ b
        y3 = p0 & _MASK32
        x0, x1, x2, x3 = y0, y1, y2, y3
        a = (a + _W0) & _MASK32  # the bump after the 10th round is unused
        b = (b + _W1) & _MASK32
    return _U32(x0), _U32(x1), _U32(x2), _U32(x3)


def _splitmix64(s):
    """The first output of SplitMix64 seeded with the ``uint64`` ``s`` (a bijection)."""
    z = _U64(s) + _U64(0x9E3779B97F4A7C15)  # wraps modulo 2**64
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _lane(r0, r1, r2, r3, lane):
    """``(r0, r1, r2, r3)[lane]`` for ``lane`` in 0..3, without indexing a tuple."""
    r = r0
    if lane == 1:
        r = r1
    if lane == 2:
        r = r2
    if lane == 3:
        r = r3
    return r


def _keep(i, k0, k1, t):
    """Keep decision of mask element ``i`` (a non-negative integer): ``r[i % 4] >= t``.

    One Philox call per element; loops over whole blocks of 4 call
    :func:`philox4x32_10` once per block instead (same result). A composition of
    the two self-contained cores (a CUDA kernel composes their device versions).
    """
    j = _U64(i) >> _U64(2)
    r0, r1, r2, r3 = philox4x32_10(j & _MASK32, j >> _SH32, 0, 0, k0, k1)
    return lane(r0, r1, r2, r3, _U64(i) & _U64(3)) >= _U32(t)


# Compiled inline into every caller (``numba.njit``); ``.py_func`` for ``cuda.jit``. (A
# plain comment: a ``#:`` one would replace philox4x32_10's docstring in the docs.)
philox4x32_10 = core(_philox4x32_10)
splitmix64 = core(_splitmix64)
lane = core(_lane)
keep = core(_keep)


# ------------------------------------------------------------ Python-side helpers
_M64 = (1 << 64) - 1


def splitmix64_int(s):
    """:func:`splitmix64` on a Python int (no NumPy overflow warnings)."""
    z = (s + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def drop_threshold(p):
    """The ``uint32`` threshold ``t`` for drop probability ``p`` in [0, 1): drop iff ``r < t``."""
    return min(int(math.floor(p * 4294967296.0 + 0.5)), 0xFFFFFFFF)


def philox4x32_10_int(c, k):
    """Reference Philox4x32-10 in pure Python ints (for tests): ``c`` 4 words, ``k`` 2."""
    x0, x1, x2, x3 = c
    a, b = k
    for _ in range(10):
        p0 = 0xD2511F53 * x0
        p1 = 0xCD9E8D57 * x2
        x0, x1, x2, x3 = ((p1 >> 32) ^ x1 ^ a, p1 & 0xFFFFFFFF,
                          (p0 >> 32) ^ x3 ^ b, p0 & 0xFFFFFFFF)
        a = (a + 0x9E3779B9) & 0xFFFFFFFF
        b = (b + 0xBB67AE85) & 0xFFFFFFFF
    return x0, x1, x2, x3
