#!/usr/bin/env python
"""GPU check for nbops' CUDA backend, for a machine with an NVIDIA GPU (< 5 minutes).

1. Runs the CUDA tests (tests/cuda/) on the hardware (no simulator).
2. Benchmarks each op at large sizes against PyTorch CUDA and CuPy where they are
   installed, and reports the achieved bandwidth as a fraction of the device's
   measured copy bandwidth.

Results go to ``--out DIR`` (default: ``$OUT``, else ``gpu_check_results/``):
``gpu_check.json`` and ``gpu_check.txt``.

    python tools/gpu_check.py [--out DIR] [--skip-tests] [--quick]

``--smoke`` runs the benchmark code at tiny sizes, also under the CUDA
simulator, with PyTorch (if installed) on the CPU: CI runs it so that the
script works the first time a GPU is available (tests/test_cuda.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tests(budget_s):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    t0 = time.time()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/cuda"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=budget_s)
        out, rc = r.stdout + r.stderr, r.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else \
            (exc.stdout or ""), "timeout"
    lines = out.strip().splitlines()
    return {"rc": rc, "seconds": round(time.time() - t0, 1),
            "summary": lines[-1] if lines else "", "tail": "\n".join(lines[-40:])}


def bench(quick, smoke=False):
    import numpy as np
    from numba import cuda

    import nbops
    from nbops._ops import table

    try:
        import torch
        torch_ok = torch.cuda.is_available() or (smoke and torch is not None)
    except Exception:
        torch_ok = False
    try:
        import cupy
    except Exception:
        cupy = None

    dev = cuda.get_current_device()
    name = getattr(dev, "name", b"CUDA simulator")
    info = {"device": name.decode() if isinstance(name, bytes) else str(name),
            "cc": list(getattr(dev, "compute_capability", ())), "torch": torch_ok,
            "cupy": cupy is not None}
    events = hasattr(cuda, "event_elapsed_time") and not smoke

    def timeit(fn, reps=1 if smoke else 5):
        if not smoke:
            fn()  # compile / warm up
            cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            if events:
                start, stop = cuda.event(), cuda.event()
                start.record()
                fn()
                stop.record()
                stop.synchronize()
                best = min(best, cuda.event_elapsed_time(start, stop) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
        return best

    def size(full, small, tiny):
        return tiny if smoke else (small if quick else full)

    n = size(10**8, 10**7, 256)
    rng = np.random.default_rng(0)
    host = rng.standard_normal(n).astype(np.float32)
    a = cuda.to_device(host)
    b = cuda.device_array_like(a)
    copy_s = timeit(lambda: b.copy_to_device(a))
    copy_bw = 2 * a.nbytes / copy_s
    info["copy_GBps"] = round(copy_bw / 1e9, 1)
    rows = []

    tdev = "cuda" if torch_ok and torch.cuda.is_available() else "cpu"

    def T(d):
        if tdev == "cpu":  # --smoke without a GPU: check the calls on the CPU
            return torch.as_tensor(d.copy_to_host())
        return torch.as_tensor(d, device="cuda")

    def record(name, size, nbytes, ours, torch_fn=None, cupy_fn=None):
        t = timeit(ours)
        row = {"op": name, "size": size, "nbops_ms": round(t * 1e3, 3),
               "bw_fraction_of_copy": round(nbytes / t / copy_bw, 3)}
        if torch_ok and torch_fn is not None:
            tt = timeit(torch_fn)
            row["torch_ms"] = round(tt * 1e3, 3)
            row["ratio_vs_torch"] = round(t / tt, 2)
        if cupy is not None and cupy_fn is not None:
            tc = timeit(cupy_fn)
            row["cupy_ms"] = round(tc * 1e3, 3)
        rows.append(row)
        print(row, flush=True)

    F = torch.nn.functional if torch_ok else None
    out = cuda.device_array_like(a)

    def torch_activation(name, args):
        ta, to = T(a), T(out)
        if name in ("sigmoid", "tanh"):
            tfn = getattr(torch, name)
            return lambda: tfn(ta, out=to)
        tfn = getattr(F, name)
        return lambda: tfn(ta, *args)

    # every elementwise op of the table (prelu per channel is below)
    for entry in table.elementwise_entries():
        name = entry.name
        if name == "prelu":
            continue
        fn = entry.function
        args = entry.required_args()
        tf = torch_activation(name, args) if torch_ok else None
        record(name, n, 2 * a.nbytes, lambda fn=fn, args=args: fn(a, *args, out=out), tf,
               (lambda: cupy.maximum(cupy.asarray(a), 0, out=cupy.asarray(out)))
               if name == "relu" and cupy is not None else None)
    # their backwards (grad_output and the residual in, the gradient out), beside
    # the aten backward kernels that torch's autograd runs (softsign's and tanhshrink's
    # are composite: their formulas in torch ops stand in)
    g = cuda.to_device(rng.standard_normal(n).astype(np.float32))
    aten = torch.ops.aten if torch_ok else None
    tg, ta = (T(g), T(a)) if torch_ok else (None, None)
    buffer = aten.log_sigmoid_forward(ta)[1] if torch_ok else None  # the CPU kernel's
    torch_backward = {
        "relu": lambda tg, tr: aten.threshold_backward(tg, tr, 0),
        "relu6": lambda tg, tr: aten.hardtanh_backward(tg, tr, 0.0, 6.0),
        "elu": lambda tg, tr: aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tr),
        "leaky_relu": lambda tg, tr: aten.leaky_relu_backward(tg, tr, 0.01, False),
        "threshold": lambda tg, tr, t, v: aten.threshold_backward(tg, tr, t),
        "hardtanh": lambda tg, tr: aten.hardtanh_backward(tg, tr, -1.0, 1.0),
        "sigmoid": lambda tg, tr: aten.sigmoid_backward(tg, tr),
        "tanh": lambda tg, tr: aten.tanh_backward(tg, tr),
        "logsigmoid": lambda tg, tr: aten.log_sigmoid_backward(tg, tr, buffer),
        "softplus": lambda tg, tr: aten.softplus_backward(tg, tr, 1.0, 20.0),
        "softshrink": lambda tg, tr: aten.softshrink_backward(tg, tr, 0.5),
        "softsign": lambda tg, tr: tg / (1 + tr.abs()).square(),
        "silu": lambda tg, tr: aten.silu_backward(tg, tr),
        "hardswish": lambda tg, tr: aten.hardswish_backward(tg, tr),
        "gelu": lambda tg, tr: aten.gelu_backward(tg, tr),
        "mish": lambda tg, tr: aten.mish_backward(tg, tr),
        "hardsigmoid": lambda tg, tr: aten.hardsigmoid_backward(tg, tr),
        "selu": lambda tg, tr: aten.elu_backward(tg, 1.6732632423543772848170429916717,
                                                 1.0507009873554804934193349852946, 1.0,
                                                 False, tr),
        "celu": lambda tg, tr: aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tr),
        "hardshrink": lambda tg, tr: aten.hardshrink_backward(tg, tr, 0.5),
        "tanhshrink": lambda tg, tr: tg - tg * (1 - tr.tanh().square())}
    for entry in table.backward_entries():
        fn, args = entry.backward_function, entry.required_args()
        tb = torch_backward.get(entry.name) if torch_ok else None
        record(f"{entry.name}_backward", n, 3 * a.nbytes,
               lambda fn=fn, args=args: fn(g, a, *args, out=out),
               (lambda tb=tb, args=args: tb(tg, ta, *args))
               if tb is not None else None)
    t2 = cuda.to_device(rng.random(n).astype(np.float32))
    for entry in table.pointwise_loss_entries():  # every pointwise loss of the table
        fn, tfn = entry.function, getattr(F, entry.name, None) if torch_ok else None
        record(f"{entry.name}(mean)", n, 2 * a.nbytes, lambda fn=fn: fn(a, t2),
               (lambda tfn=tfn: tfn(T(a), T(t2))) if tfn is not None else None)
    record("kl_div(batchmean)", n, 2 * a.nbytes,
           lambda: nbops.kl_div(a, t2, reduction="batchmean"),
           (lambda: F.kl_div(T(a), T(t2), reduction="batchmean")) if torch_ok else None)
    record("binary_cross_entropy(mean)", n, 2 * a.nbytes,
           lambda: nbops.binary_cross_entropy(t2, t2),
           (lambda: F.binary_cross_entropy(T(t2), T(t2))) if torch_ok else None)
    record("binary_cross_entropy_with_logits(mean)", n, 2 * a.nbytes,
           lambda: nbops.binary_cross_entropy_with_logits(a, t2),
           (lambda: F.binary_cross_entropy_with_logits(T(a), T(t2))) if torch_ok else None)

    # the losses' backwards ('mean', into out=) beside torch's backward alone (graph
    # retained), and the fused <loss>_with_grad beside torch's forward + backward
    def torch_vjp(tfn, arrays, diff, grad=None):
        """PyTorch's backward alone: autograd over a graph kept from one forward of
        ``tfn`` on ``arrays``, differentiated for the indices ``diff``."""
        ts = [T(a).clone().requires_grad_() if i in diff else T(a)
              for i, a in enumerate(arrays)]
        out = tfn(*ts)
        g = torch.ones_like(out) if grad is None else T(grad)
        wrt = [ts[i] for i in diff]
        return lambda: torch.autograd.grad(out, wrt, g, retain_graph=True)

    def torch_fwd_bwd(tfn, arrays, diff):
        """PyTorch's forward plus backward of the scalar ``tfn(*arrays)``."""
        base = [T(a) for a in arrays]

        def run():
            ts = [b.clone().requires_grad_() if i in diff else b for i, b in enumerate(base)]
            tfn(*ts).backward()
        return run

    def torch_loss_grad(name, xd, td):
        tx, tt, fn = T(xd).detach().requires_grad_(), T(td), getattr(F, name)
        loss = fn(tx, tt)

        def backward_alone():
            tx.grad = None
            loss.backward(retain_graph=True)

        def forward_backward():
            tx.grad = None
            fn(tx, tt).backward()

        return backward_alone, forward_backward

    for name, xd, td in ([(e.name, a, t2) for e in table.pointwise_loss_entries()]
                         + [("kl_div", a, t2), ("binary_cross_entropy", t2, t2),
                            ("binary_cross_entropy_with_logits", a, t2)]):
        bw, wg = getattr(nbops, f"{name}_backward"), getattr(nbops, f"{name}_with_grad")
        tb, tfb = torch_loss_grad(name, xd, td) if torch_ok else (None, None)
        record(f"{name}_backward(mean)", n, 3 * a.nbytes,
               lambda bw=bw, xd=xd, td=td: bw(1.0, xd, td, out=out), tb)
        record(f"{name}_with_grad(mean)", n, 3 * a.nbytes,
               lambda wg=wg, xd=xd, td=td: wg(xd, td), tfb)

    # dropout: Philox masks (the CPU's generator); torch's own generator differs
    record("dropout p=0.5 (out=)", n, 2 * a.nbytes,
           lambda: nbops.dropout(a, 0.5, rng=1, out=out),
           (lambda: F.dropout(T(a), 0.5, training=True)) if torch_ok else None)
    record("dropout p=0.5 (allocating)", n, 2 * a.nbytes, lambda: nbops.dropout(a, 0.5, rng=1),
           (lambda: F.dropout(T(a), 0.5, training=True)) if torch_ok else None)
    record("dropout_mask float32", n, a.nbytes,
           lambda: nbops.cuda.dropout_mask(n, 0.5, rng=1),
           (lambda: torch.empty(n, device=tdev).bernoulli_(0.5)) if torch_ok else None)

    R, C = size((65536, 1024), (8192, 1024), (8, 32))
    x = cuda.to_device(rng.standard_normal((R, C)).astype(np.float32))
    y = cuda.device_array_like(x)
    for name in [e.name for e in table.row_op_entries()]:  # the op table's row ops
        fn = getattr(nbops, name)
        record(f"{name} ({R},{C}) warp/row", R * C, 2 * x.nbytes, lambda fn=fn: fn(x, out=y),
               (lambda name=name: getattr(F, name)(T(x), dim=-1)) if torch_ok else None)
    # their backwards (grad_output and the output in), beside aten's backward kernels
    # (softmin's: softmax's negated, as autograd runs it)
    gx = cuda.to_device(rng.standard_normal((R, C)).astype(np.float32))
    tgx = T(gx) if torch_ok else None
    torch_row_backward = {
        "softmax": lambda ty: aten._softmax_backward_data(tgx, ty, 1, torch.float32),
        "log_softmax": lambda ty: aten._log_softmax_backward_data(tgx, ty, 1, torch.float32),
        "softmin": lambda ty: aten._softmax_backward_data(tgx, ty, 1, torch.float32).neg_()}
    for name in [e.name for e in table.row_op_entries()]:
        fn = getattr(nbops, f"{name}_backward")
        yr = getattr(nbops, name)(x)
        tb, ty = (torch_row_backward[name], T(yr)) if torch_ok else (None, None)
        record(f"{name}_backward ({R},{C})", R * C, 3 * x.nbytes,
               lambda fn=fn, yr=yr: fn(gx, yr, out=y),
               (lambda tb=tb, ty=ty: tb(ty)) if torch_ok else None)
    # short rows (a warp per row, mostly idle lanes) and long rows (a block per row)
    for rs, cs in (((4, 8), (2, 64)) if smoke else ((R * 8, C // 8), (R // 8, C * 8))):
        xs = cuda.to_device(rng.standard_normal((rs, cs)).astype(np.float32))
        ys = cuda.device_array_like(xs)
        kind = "warp/row" if cs <= 1024 else "block/row"
        record(f"softmax ({rs},{cs}) {kind}", rs * cs, 2 * xs.nbytes,
               lambda xs=xs, ys=ys: nbops.softmax(xs, out=ys),
               (lambda xs=xs: F.softmax(T(xs), dim=-1)) if torch_ok else None)
        ts = cuda.to_device(rng.integers(0, cs, rs))
        record(f"cross_entropy ({rs},{cs}) {kind}", rs * cs, xs.nbytes,
               lambda xs=xs, ts=ts: nbops.cross_entropy(xs, ts),
               (lambda xs=xs, ts=ts: F.cross_entropy(T(xs), T(ts))) if torch_ok else None)
    tgt = cuda.to_device(rng.integers(0, C, R))
    record(f"cross_entropy ({R},{C})", R * C, x.nbytes, lambda: nbops.cross_entropy(x, tgt),
           (lambda: F.cross_entropy(T(x), T(tgt))) if torch_ok else None)
    record(f"nll_loss ({R},{C})", R, R * 12, lambda: nbops.nll_loss(x, tgt),
           (lambda: F.nll_loss(T(x), T(tgt))) if torch_ok else None)
    # the gradients (nbops: logits in, gradient out; torch: the aten backward kernels
    # autograd runs, from the saved log-softmax, and forward + backward for *_with_grad)
    if torch_ok:
        tx, tt = T(x), T(tgt)
        lsm = F.log_softmax(tx, 1)
        tw = torch.tensor(float(R), device=tx.device)
        one = torch.tensor(1.0, device=tx.device)

        def torch_ce_backward():
            gl = aten.nll_loss_backward(one, lsm, tt, None, 1, -100, tw)
            return aten._log_softmax_backward_data(gl, lsm, 1, tx.dtype)

        def torch_with_grad(fn):
            def run():
                xt = tx.detach().requires_grad_(True)
                fn(xt, tt).backward()
                return xt.grad
            return run
    record(f"cross_entropy_backward ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.cross_entropy_backward(1.0, x, tgt, out=y),
           torch_ce_backward if torch_ok else None)
    record(f"cross_entropy_with_grad ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.cross_entropy_with_grad(x, tgt, out=y),
           torch_with_grad(F.cross_entropy) if torch_ok else None)
    record(f"nll_loss_backward ({R},{C})", R * C, x.nbytes,
           lambda: nbops.nll_loss_backward(1.0, x, tgt, out=y),
           (lambda: aten.nll_loss_backward(one, lsm, tt, None, 1, -100, tw))
           if torch_ok else None)
    record(f"nll_loss_with_grad ({R},{C})", R * C, x.nbytes,
           lambda: nbops.nll_loss_with_grad(x, tgt, out=y),
           torch_with_grad(F.nll_loss) if torch_ok else None)
    wp = cuda.to_device(np.full(C, 0.25, np.float32))
    record(f"prelu ({R},{C}) per channel", R * C, 2 * x.nbytes, lambda: nbops.prelu(x, wp),
           (lambda: F.prelu(T(x), T(wp))) if torch_ok else None)
    if torch_ok:  # autograd over a graph kept from one forward: the backward alone
        tpx, tpw = T(x).requires_grad_(), T(wp).requires_grad_()
        tpy = F.prelu(tpx, tpw)
    record(f"prelu_backward ({R},{C}) per channel", R * C, 3 * x.nbytes,
           lambda: nbops.prelu_backward(gx, x, wp),
           (lambda: torch.autograd.grad(tpy, (tpx, tpw), tgx, retain_graph=True))
           if torch_ok else None)

    shape = size((256, 64, 56, 56), (64, 64, 56, 56), (2, 4, 3, 3))
    xb = cuda.to_device(rng.standard_normal(shape).astype(np.float32))
    rm = cuda.to_device(np.zeros(shape[1], np.float32))
    rv = cuda.to_device(np.ones(shape[1], np.float32))
    record(f"batch_norm train {shape}", xb.size, 3 * xb.nbytes,
           lambda: nbops.batch_norm(xb, rm, rv, training=True),
           (lambda: F.batch_norm(T(xb), T(rm), T(rv), training=True)) if torch_ok else None)
    record(f"dropout2d p=0.5 {shape}", xb.size, 2 * xb.nbytes,
           lambda: nbops.dropout2d(xb, 0.5, rng=1),
           (lambda: F.dropout2d(T(xb), 0.5, training=True)) if torch_ok else None)
    # batch_norm's backward in training (the batch statistics) beside aten's kernel
    gb = cuda.to_device(rng.standard_normal(shape).astype(np.float32))
    wb = cuda.to_device(np.ones(shape[1], np.float32))
    _, bmean, binvstd = nbops.batch_norm(xb, None, None, wb, None, training=True,
                                         return_stats=True)

    def torch_bn_backward():
        args = [T(a) for a in (gb, xb, wb, bmean, binvstd)]
        tg, tx, tw, tm, ti = args
        return lambda: torch.ops.aten.native_batch_norm_backward(
            tg, tx, tw, None, None, tm, ti, True, 1e-5, [True, True, True])

    record(f"batch_norm_backward train {shape}", xb.size, 5 * xb.nbytes,
           lambda: nbops.batch_norm_backward(gb, xb, bmean, binvstd, wb, training=True),
           torch_bn_backward() if torch_ok else None)

    # layer_norm and rms_norm (forward, backward) over the last axis
    lshape = size((8192, 1024), (4096, 1024), (4, 40))
    ld = lshape[-1]
    xl = cuda.to_device(rng.standard_normal(lshape).astype(np.float32))
    gl = cuda.to_device(rng.standard_normal(lshape).astype(np.float32))
    wl = cuda.to_device(np.ones(ld, np.float32))
    bl = cuda.to_device(np.zeros(ld, np.float32))
    record(f"layer_norm {lshape}", xl.size, 2 * xl.nbytes,
           lambda: nbops.layer_norm(xl, ld, wl, bl),
           (lambda: F.layer_norm(T(xl), (ld,), T(wl), T(bl))) if torch_ok else None)
    _, lmean, lrstd = nbops.layer_norm(xl, ld, wl, bl, return_stats=True)

    def torch_ln_backward():
        tg, tx, tw, tb = (T(a) for a in (gl, xl, wl, bl))
        _, tm, tr = torch.ops.aten.native_layer_norm(tx, [ld], tw, tb, 1e-5)
        return lambda: torch.ops.aten.native_layer_norm_backward(
            tg, tx, [ld], tm, tr, tw, tb, [True, True, True])

    record(f"layer_norm_backward {lshape}", xl.size, 3 * xl.nbytes,
           lambda: nbops.layer_norm_backward(gl, xl, ld, lmean, lrstd, wl),
           torch_ln_backward() if torch_ok else None)
    record(f"rms_norm {lshape}", xl.size, 2 * xl.nbytes, lambda: nbops.rms_norm(xl, ld, wl),
           (lambda: F.rms_norm(T(xl), (ld,), T(wl))) if torch_ok else None)
    _, rrstd = nbops.rms_norm(xl, ld, wl, return_stats=True)
    if torch_ok:  # autograd over a graph kept from one forward: the backward alone
        trx, trw = T(xl).requires_grad_(), T(wl).requires_grad_()
        tr_y = F.rms_norm(trx, (ld,), trw)
    record(f"rms_norm_backward {lshape}", xl.size, 3 * xl.nbytes,
           lambda: nbops.rms_norm_backward(gl, xl, ld, rrstd, wl),
           (lambda: torch.autograd.grad(tr_y, (trx, trw), T(gl), retain_graph=True))
           if torch_ok else None)

    # group_norm (forward, backward): 32 groups
    gshape = size((64, 256, 32, 32), (32, 256, 32, 32), (2, 4, 3, 3))
    gc = gshape[1]
    ngroups = min(32, gc)
    xg = cuda.to_device(rng.standard_normal(gshape).astype(np.float32))
    gg = cuda.to_device(rng.standard_normal(gshape).astype(np.float32))
    wg = cuda.to_device(np.ones(gc, np.float32))
    bg = cuda.to_device(np.zeros(gc, np.float32))
    record(f"group_norm {ngroups} groups {gshape}", xg.size, 2 * xg.nbytes,
           lambda: nbops.group_norm(xg, ngroups, wg, bg),
           (lambda: F.group_norm(T(xg), ngroups, T(wg), T(bg))) if torch_ok else None)
    _, gmean, grstd = nbops.group_norm(xg, ngroups, wg, bg, return_stats=True)

    def torch_gn_backward():
        tg, tx, tw, tb = (T(a) for a in (gg, xg, wg, bg))
        n, hw = gshape[0], xg.size // (gshape[0] * gc)
        _, tm, tr = torch.ops.aten.native_group_norm(tx, tw, tb, n, gc, hw, ngroups, 1e-5)
        return lambda: torch.ops.aten.native_group_norm_backward(
            tg, tx, tm, tr, tw, n, gc, hw, ngroups, [True, True, True])

    record(f"group_norm_backward {ngroups} groups {gshape}", xg.size, 3 * xg.nbytes,
           lambda: nbops.group_norm_backward(gg, xg, ngroups, gmean, grstd, wg),
           torch_gn_backward() if torch_ok else None)
    _, imean, irstd = nbops.instance_norm(xg, return_stats=True)
    record(f"instance_norm {gshape}", xg.size, 2 * xg.nbytes, lambda: nbops.instance_norm(xg),
           (lambda: F.instance_norm(T(xg))) if torch_ok else None)
    record(f"instance_norm_backward {gshape}", xg.size, 3 * xg.nbytes,
           lambda: nbops.instance_norm_backward(gg, xg, imean, irstd),
           torch_vjp(F.instance_norm, (xg,), (0,), gg) if torch_ok else None)

    # ctc_loss: forward, and forward plus backward (one pass), beside torch's CUDA ctc_loss
    cT, cN, cC, cS = size((200, 64, 32, 50), (200, 64, 32, 50), (6, 2, 5, 2))
    cx = rng.standard_normal((cT, cN, cC))
    clp = cuda.to_device((cx - np.log(np.exp(cx).sum(-1, keepdims=True))).astype(np.float32))
    ctg = cuda.to_device(rng.integers(1, cC, (cN, cS)))
    cil, ctl = (cT,) * cN, (cS,) * cN
    record(f"ctc_loss T,N,C,S={(cT, cN, cC, cS)}", clp.size, clp.nbytes,
           lambda: nbops.ctc_loss(clp, ctg, cil, ctl),
           (lambda: F.ctc_loss(T(clp), T(ctg), cil, ctl)) if torch_ok else None)

    def torch_ctc_both():
        tlp, ttg = T(clp), T(ctg)

        def run():
            a = tlp.clone().requires_grad_()
            F.ctc_loss(a, ttg, cil, ctl).backward()
        return run

    if torch_ok:  # autograd over a graph kept from one forward: the backward alone
        tclp = T(clp).clone().requires_grad_()
        tc_loss = F.ctc_loss(tclp, T(ctg), cil, ctl)
    record(f"ctc_loss_backward T,N,C,S={(cT, cN, cC, cS)}", clp.size, 2 * clp.nbytes,
           lambda: nbops.ctc_loss_backward(1.0, clp, ctg, cil, ctl),
           (lambda: torch.autograd.grad(tc_loss, tclp, retain_graph=True)) if torch_ok
           else None)
    record(f"ctc_loss_with_grad T,N,C,S={(cT, cN, cC, cS)}", clp.size, 2 * clp.nbytes,
           lambda: nbops.ctc_loss_with_grad(clp, ctg, cil, ctl),
           torch_ctc_both() if torch_ok else None)

    # issue 17's hand-written losses: forward, backward, value and gradient in one pass
    LR, LC = size((65536, 128), (8192, 128), (4, 6))
    l1 = cuda.to_device(rng.standard_normal((LR, LC)).astype(np.float32))
    l2 = cuda.to_device(rng.standard_normal((LR, LC)).astype(np.float32))
    lpos = cuda.to_device(rng.uniform(0.1, 2.0, (LR, LC)).astype(np.float32))
    lsign = cuda.to_device(np.sign(rng.standard_normal((LR, LC))).astype(np.float32))
    lbits = cuda.to_device((rng.random((LR, LC)) < 0.3).astype(np.float32))
    # (a generator of its own: the rows above and below keep their data)
    lrowsign = cuda.to_device(np.sign(np.random.default_rng(17).standard_normal(LR))
                              .astype(np.float32))
    lcls = cuda.to_device(rng.integers(0, LC, LR))  # class indices (multi_margin_loss)
    llists = np.full((LR, LC), -1)  # four class indices a row, then -1 (multilabel_margin)
    llists[:, :4] = rng.integers(0, LC, (LR, 4))
    llists = cuda.to_device(llists)
    losses17 = [
        ("poisson_nll_loss", (l1, lpos), getattr(F, "poisson_nll_loss", None)),
        ("gaussian_nll_loss", (l1, l2, lpos), getattr(F, "gaussian_nll_loss", None)),
        ("margin_ranking_loss", (l1, l2, lsign), getattr(F, "margin_ranking_loss", None)),
        ("multilabel_soft_margin_loss", (l1, lbits),
         getattr(F, "multilabel_soft_margin_loss", None)),
        ("cosine_embedding_loss", (l1, l2, lrowsign), getattr(F, "cosine_embedding_loss", None)),
        ("triplet_margin_loss", (l1, l2, lpos), getattr(F, "triplet_margin_loss", None)),
        ("triplet_margin_with_distance_loss", (l1, l2, lpos),
         getattr(F, "triplet_margin_with_distance_loss", None)),
        ("multi_margin_loss", (l1, lcls), getattr(F, "multi_margin_loss", None)),
        ("multilabel_margin_loss", (l1, llists), getattr(F, "multilabel_margin_loss", None)),
    ]
    for name, args, tfn in losses17:
        fn, bw, wg = (getattr(nbops, name + s) for s in ("", "_backward", "_with_grad"))
        record(f"{name} {(LR, LC)}", l1.size, len(args) * l1.nbytes,
               lambda fn=fn, args=args: fn(*args),
               (lambda tfn=tfn, args=args: tfn(*map(T, args))) if torch_ok else None)
        diff = (0, 1) if name in ("margin_ranking_loss", "cosine_embedding_loss") else \
            (0, 1, 2) if name.startswith("triplet_margin") else \
            (0, 2) if name == "gaussian_nll_loss" else (0,)
        record(f"{name}_backward {(LR, LC)}", l1.size, (len(args) + 1) * l1.nbytes,
               lambda bw=bw, args=args: bw(1.0, *args),
               torch_vjp(tfn, args, diff) if torch_ok else None)
        record(f"{name}_with_grad {(LR, LC)}", l1.size, (len(args) + 1) * l1.nbytes,
               lambda wg=wg, args=args: wg(*args),
               torch_fwd_bwd(tfn, args, diff) if torch_ok else None)

    # dropout's backward (the mask regenerated from the seed) beside aten's kernel
    # (which reads a stored mask)
    def torch_dropout_backward(mask_shape):  # the stored mask, broadcast per channel
        tg = T(gb)
        tm = (T(xb) > 0)[tuple(slice(0, k) for k in mask_shape)]
        return lambda: torch.ops.aten.native_dropout_backward(tg, tm, 2.0)

    for name, mask_shape in (("dropout", shape), ("dropout2d", shape[:2] + (1, 1)),
                             ("dropout3d", shape[:1] + (1, 1, 1))):
        fn = getattr(nbops, f"{name}_backward")
        record(f"{name}_backward p=0.5 {shape}", xb.size, 2 * xb.nbytes,
               lambda fn=fn: fn(gb, 0.5, rng=1),
               torch_dropout_backward(mask_shape) if torch_ok else None)
    # alpha_dropout, feature_alpha_dropout and dropout1d (the same Philox masks) and
    # their backwards (torch: autograd over a kept graph)
    shape1d = (shape[0], shape[1], shape[2] * shape[3])
    for name, xa, ga in (("alpha_dropout", xb, gb), ("feature_alpha_dropout", xb, gb),
                         ("dropout1d", xb.reshape(shape1d), gb.reshape(shape1d))):
        fn, bw = getattr(nbops, name), getattr(nbops, f"{name}_backward")
        tfn = getattr(F, name) if torch_ok else None
        record(f"{name} p=0.5 {xa.shape}", xa.size, 2 * xa.nbytes,
               lambda fn=fn, xa=xa: fn(xa, 0.5, True, rng=1),
               (lambda tfn=tfn, xa=xa: tfn(T(xa), 0.5, True)) if torch_ok else None)
        record(f"{name}_backward p=0.5 {xa.shape}", xa.size, 2 * xa.nbytes,
               lambda bw=bw, ga=ga: bw(ga, 0.5, True, rng=1),
               torch_vjp(lambda t, tfn=tfn: tfn(t, 0.5, True), [xa], (0,), ga)
               if torch_ok else None)

    M, K = size((8192, 1024), (2048, 1024), (4, 16))
    xl = cuda.to_device(rng.standard_normal((M, K)).astype(np.float32))
    wl = cuda.to_device(rng.standard_normal((K, K)).astype(np.float32))
    record(f"linear ({M},{K})x({K},{K})", M * K, xl.nbytes * 2,
           lambda: nbops.linear(xl, wl), (lambda: F.linear(T(xl), T(wl))) if torch_ok else None)
    gl = cuda.to_device(rng.standard_normal((M, K)).astype(np.float32))
    bl = cuda.to_device(np.zeros(K, np.float32))

    def torch_linear_backward():  # autograd over a graph kept from one forward
        tx, tw, tb = (T(a).clone().requires_grad_() for a in (xl, wl, bl))
        ty = F.linear(tx, tw, tb)
        return lambda: torch.autograd.grad(ty, (tx, tw, tb), T(gl), retain_graph=True)

    record(f"linear_backward ({M},{K})x({K},{K})", M * K, xl.nbytes * 3,
           lambda: nbops.linear_backward(gl, xl, wl, bl),
           torch_linear_backward() if torch_ok else None)
    # bilinear (forward, backward): rows x (in1, in2) -> out
    BR, B1, B2, BO = size((4096, 64, 64, 64), (2048, 64, 64, 64), (4, 3, 2, 5))
    xb1 = cuda.to_device(rng.standard_normal((BR, B1)).astype(np.float32))
    xb2 = cuda.to_device(rng.standard_normal((BR, B2)).astype(np.float32))
    wbl = cuda.to_device(rng.standard_normal((BO, B1, B2)).astype(np.float32))
    bbl = cuda.to_device(np.zeros(BO, np.float32))
    gbl = cuda.to_device(rng.standard_normal((BR, BO)).astype(np.float32))
    record(f"bilinear ({BR},{B1})x({BR},{B2})->{BO}", BR * BO * B1 * B2, xb1.nbytes * 2,
           lambda: nbops.bilinear(xb1, xb2, wbl, bbl),
           (lambda: F.bilinear(T(xb1), T(xb2), T(wbl), T(bbl))) if torch_ok else None)
    record(f"bilinear_backward ({BR},{B1})x({BR},{B2})->{BO}", BR * BO * B1 * B2,
           xb1.nbytes * 3, lambda: nbops.bilinear_backward(gbl, xb1, xb2, wbl, bbl),
           torch_vjp(F.bilinear, (xb1, xb2, wbl, bbl), (0, 1, 2, 3), gbl)
           if torch_ok else None)
    # local_response_norm (forward, backward): AlexNet's size 5
    lrn_shape = size((32, 64, 56, 56), (16, 64, 56, 56), (2, 4, 3, 3))
    xr = cuda.to_device(rng.standard_normal(lrn_shape).astype(np.float32))
    gr = cuda.to_device(rng.standard_normal(lrn_shape).astype(np.float32))
    record(f"local_response_norm size=5 {lrn_shape}", xr.size, 2 * xr.nbytes,
           lambda: nbops.local_response_norm(xr, 5),
           (lambda: F.local_response_norm(T(xr), 5)) if torch_ok else None)
    record(f"local_response_norm_backward size=5 {lrn_shape}", xr.size, 3 * xr.nbytes,
           lambda: nbops.local_response_norm_backward(gr, xr, 5),
           torch_vjp(lambda t: F.local_response_norm(t, 5), (xr,), (0,), gr)
           if torch_ok else None)
    x2 = cuda.device_array_like(x)
    x2.copy_to_device(x)
    record(f"pairwise_distance ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.pairwise_distance(x, x2),
           (lambda: F.pairwise_distance(T(x), T(x2))) if torch_ok else None)
    gp = cuda.to_device(rng.standard_normal(R).astype(np.float32))

    def torch_pdist_backward():
        t1 = T(x).clone().requires_grad_()
        t2 = T(x2).clone().requires_grad_()
        dist = F.pairwise_distance(t1, t2)
        tg = T(gp)
        return lambda: torch.autograd.grad(dist, (t1, t2), tg, retain_graph=True)

    record(f"pairwise_distance_backward ({R},{C})", R * C, 4 * x.nbytes,
           lambda: nbops.pairwise_distance_backward(gp, x, x2),
           torch_pdist_backward() if torch_ok else None)
    record(f"cosine_similarity ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.cosine_similarity(x, x2),
           (lambda: F.cosine_similarity(T(x), T(x2))) if torch_ok else None)
    record(f"cosine_similarity_backward ({R},{C})", R * C, 4 * x.nbytes,
           lambda: nbops.cosine_similarity_backward(gp, x, x2),
           torch_vjp(F.cosine_similarity, (x, x2), (0, 1), gp) if torch_ok else None)
    record(f"normalize ({R},{C})", R * C, 2 * x.nbytes, lambda: nbops.normalize(x),
           (lambda: F.normalize(T(x))) if torch_ok else None)
    record(f"normalize_backward ({R},{C})", R * C, 3 * x.nbytes,
           lambda: nbops.normalize_backward(x2, x),
           torch_vjp(F.normalize, (x,), (0,), x2) if torch_ok else None)
    CR, CM = size((4096, 128), (4096, 128), (8, 4))  # (the simulator: a small case)
    xc = cuda.to_device(rng.standard_normal((CR, CM)).astype(np.float32))
    record(f"cdist ({CR},{CM})x({CR},{CM}) direct", CR * CR, 4 * CR * CR,
           lambda: nbops.cdist(xc, xc),
           (lambda: torch.cdist(T(xc), T(xc))) if torch_ok else None)
    gcd = cuda.to_device(rng.standard_normal((CR, CR)).astype(np.float32))
    record(f"cdist_backward ({CR},{CM})x({CR},{CM})", CR * CR, 4 * CR * CR,
           lambda: nbops.cdist_backward(gcd, xc, xc),
           torch_vjp(torch.cdist, (xc, xc), (0, 1), gcd) if torch_ok else None)
    PR, PM = size((2048, 64), (2048, 64), (8, 4))
    xpd = cuda.to_device(rng.standard_normal((PR, PM)).astype(np.float32))
    gpd = cuda.to_device(rng.standard_normal(PR * (PR - 1) // 2).astype(np.float32))
    record(f"pdist ({PR},{PM})", PR * PR // 2, 2 * PR * PR,
           lambda: nbops.pdist(xpd), (lambda: F.pdist(T(xpd))) if torch_ok else None)
    record(f"pdist_backward ({PR},{PM})", PR * PR // 2, 4 * PR * PR,
           lambda: nbops.pdist_backward(gpd, xpd),
           torch_vjp(F.pdist, (xpd,), (0,), gpd) if torch_ok else None)

    # glu, rrelu (training: the slopes regenerated from the seed), gumbel_softmax (the
    # soft sample regenerated from the seed) on the (R, C) rows, forward and backward
    gh = cuda.to_device(rng.standard_normal((R, C // 2)).astype(np.float32))
    record(f"glu ({R},{C})", R * C, 3 * x.nbytes // 2, lambda: nbops.glu(x),
           (lambda: F.glu(T(x))) if torch_ok else None)
    record(f"glu_backward ({R},{C})", R * C, 5 * x.nbytes // 2,
           lambda: nbops.glu_backward(gh, x),
           torch_vjp(F.glu, (x,), (0,), gh) if torch_ok else None)
    record(f"rrelu training ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.rrelu(x, training=True, rng=1),
           (lambda: F.rrelu(T(x), training=True)) if torch_ok else None)
    record(f"rrelu_backward training ({R},{C})", R * C, 3 * x.nbytes,
           lambda: nbops.rrelu_backward(x2, x, training=True, rng=1),
           torch_vjp(lambda t: F.rrelu(t, training=True), (x,), (0,), x2) if torch_ok else None)
    record(f"gumbel_softmax ({R},{C})", R * C, 2 * x.nbytes,
           lambda: nbops.gumbel_softmax(x, rng=1),
           (lambda: F.gumbel_softmax(T(x))) if torch_ok else None)
    record(f"gumbel_softmax_backward ({R},{C})", R * C, 4 * x.nbytes,
           lambda: nbops.gumbel_softmax_backward(x2, x, rng=1),
           torch_vjp(F.gumbel_softmax, (x,), (0,), x2) if torch_ok else None)

    # nbops.optim: one step over n float32 parameters (one array), beside torch.optim's
    # fastest (fused=True); Adam moves 7 arrays (reads p, g, m, v; writes p, m, v),
    # SGD with momentum 5 (reads p, g, buf; writes p, buf)
    from nbops._grad import get_grad, set_grad

    def optim_pair(cls, tcls, kwargs):
        p = cuda.to_device(host)
        set_grad(p, cuda.to_device(host * np.float32(1e-3)))
        opt = cls([p], **kwargs)
        if not torch_ok:
            return opt, None
        tp = T(p).clone().requires_grad_()
        tp.grad = T(get_grad(p)).clone()
        return opt, tcls([tp], fused=True, **kwargs)

    for label, cls, tcls, kwargs, arrays in (
            ("optim (Adam step)", nbops.optim.Adam, getattr(torch.optim, "Adam", None)
             if torch_ok else None, dict(lr=1e-3), 7),
            ("optim (SGD momentum step)", nbops.optim.SGD, getattr(torch.optim, "SGD", None)
             if torch_ok else None, dict(lr=1e-3, momentum=0.9), 5)):
        opt, topt = optim_pair(cls, tcls, kwargs)
        record(label, n, arrays * a.nbytes, opt.step, topt.step if topt is not None else None)
    return info, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_check_results"))
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes, also on the simulator: checks the script itself")
    args = ap.parse_args()
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    result = {}
    if not args.skip_tests:
        result["tests"] = run_tests(240)
        print("tests:", result["tests"]["summary"], flush=True)
    try:
        info, rows = bench(args.quick, args.smoke)
        result["device"], result["bench"] = info, rows
    except Exception:  # keep the test results
        import traceback
        result["bench_error"] = traceback.format_exc()
        print(result["bench_error"], flush=True)
    result["seconds"] = round(time.time() - t0, 1)
    (outdir / "gpu_check.json").write_text(json.dumps(result, indent=2))
    with open(outdir / "gpu_check.txt", "w") as f:
        f.write(f"device: {result.get('device')}\n")
        if "tests" in result:
            f.write(f"tests: rc={result['tests']['rc']} {result['tests']['summary']}\n")
        for r in result.get("bench", []):
            f.write(json.dumps(r) + "\n")
        if "bench_error" in result:
            f.write(result["bench_error"])
    print(f"results in {outdir} ({result['seconds']} s)")
    ok = result.get("tests", {}).get("rc", 0) == 0 and "bench_error" not in result
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
