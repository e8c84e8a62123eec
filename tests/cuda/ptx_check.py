"""Compile every CUDA kernel of nbops to PTX for sm_90, without a GPU.

This types and lowers the kernels exactly as on hardware (the simulator runs
them as Python and checks no types), using NVVM from the ``nvidia-nvvm`` and
``nvidia-cuda-nvrtc`` wheels. Run as a script; exits non-zero on a failure.
Device discovery is stubbed (no driver here): never import this in a process
that uses a real GPU.
"""

import sys
import types as _pytypes

import numba.cuda.cudadrv.nvrtc as _nvrtc
import numba.cuda.dispatcher as _disp
from numba import cuda
from numba.cuda import types as T

_disp.get_current_device = lambda: _pytypes.SimpleNamespace(compute_capability=(9, 0))
_nvrtc.get_supported_ccs = lambda: ((7, 5), (8, 0), (9, 0))

import nbops  # noqa: E402, F401  (registers every op in the table)
from nbops._ops import margin_losses as ML  # noqa: E402  (margin_ranking_loss's cores)
from nbops._ops import nll_losses as NLL  # noqa: E402  (poisson_nll_loss's variants)
from nbops._ops import table  # noqa: E402
from nbops.cuda import _alpha_dropout as AD  # noqa: E402  (alpha_dropout, ...)
from nbops.cuda import _bilinear as BL  # noqa: E402  (bilinear)
from nbops.cuda import _class_margin as CMC  # noqa: E402  (multi_margin, multilabel_margin)
from nbops.cuda import _ctc as CTC  # noqa: E402  (ctc_loss)
from nbops.cuda import _embedding as EMB  # noqa: E402  (cosine_embedding, triplet losses)
from nbops.cuda import _gaussian as GC  # noqa: E402  (gaussian_nll_loss)
from nbops.cuda import _glu as GLU  # noqa: E402  (glu, rrelu, gumbel_softmax)
from nbops.cuda import _grad_ops as GO  # noqa: E402
from nbops.cuda import _kernels as K  # noqa: E402
from nbops.cuda import _lrn as LRN  # noqa: E402  (local_response_norm)
from nbops.cuda import _multilabel as MLC  # noqa: E402  (multilabel_soft_margin_loss)
from nbops.cuda import _norm_groups as NG  # noqa: E402  (group_norm, instance_norm)
from nbops.cuda import _norm_rows as NR  # noqa: E402  (layer_norm, rms_norm)
from nbops.cuda import _similarity as SM  # noqa: E402  (cosine_similarity, ..., cdist)
from nbops.optim import _cuda as OC  # noqa: E402  (the optimizers' kernels)
from nbops.scalar import losses as SL  # noqa: E402


def ptx(fn, sig):
    py = getattr(fn, "py_func", fn)
    cuda.compile_ptx(py, sig, cc=(9, 0))


def main():
    failures = []
    b = T.boolean
    i8 = T.int64
    u32 = T.uint32
    for ft in (T.float32, T.float64):
        v = ft[::1]
        v2 = ft[:, ::1]
        d = T.float64
        jobs = []
        # the op table's (one Op per choice where a choice picks the core: gelu's)
        for op in [op for e in table.elementwise_entries() for op in e.all_ops()]:
            k = K._make_map(op.core, op.nparams)
            jobs.append((op.name, k, (v, v) + (ft,) * op.nparams))
        for op in [op for e in table.backward_entries()
                   for op in e.all_backward_ops()]:  # and their backwards
            k = K._make_map2(op.core, op.nparams)
            jobs.append((op.name, k, (v, v, v) + (ft,) * op.nparams))
        jobs.append(("prelu_kernel", K._prelu_kernel, (v, v, v, i8, i8)))
        jobs += [("grad_add_into", GO._add_into_kernel, (v, v)),  # the gradient store's
                 ("grad_scale", GO._scale_kernel, (v, ft))]
        if ft == T.float32:  # no float argument
            jobs.append(("increment_kernel", K._increment_kernel, (i8[::1],)))
        pointwise = [(e.core, K.LOSS_XT_PARAM if e.params else K.LOSS_XT)
                     for e in table.pointwise_loss_entries()]  # the op table's
        pointwise += [(pv.core, K.LOSS_XT_PARAM) for pv in NLL._POISSON.values()]
        pointwise.append((ML._RANK_CUDA.core, K.LOSS_XT_PARAM))
        for core, operands in [*pointwise, (SL.kl_div, K.LOSS_XT),
                               (SL.kl_div_log_target, K.LOSS_XT),
                               (SL.binary_cross_entropy, K.LOSS_XT),
                               (SL.binary_cross_entropy_with_logits, K.LOSS_XT),
                               (SL.binary_cross_entropy_with_logits_pos_weight,
                                K.LOSS_XT_AUX)]:
            kn, ks = K._make_loss(core, operands)
            jobs.append((core.__name__ + ".none", kn, (v, v, v, v, b, ft, v)))
            jobs.append((core.__name__ + ".sum", ks, (v, v, v, v, b, ft, d[::1])))
        grads = [(e.core, e.backward, K.LOSS_XT_PARAM if e.params else K.LOSS_XT)
                 for e in table.pointwise_loss_entries() if e.backward is not None]
        grads += [(pv.core, pv.backward, K.LOSS_XT_PARAM) for pv in NLL._POISSON.values()]
        grads.append((ML._RANK_CUDA.core, ML._RANK_CUDA.backward, K.LOSS_XT_PARAM))
        jobs.append(("multilabel_soft_margin_rows", MLC._rows_kernel(),
                     (v, v, v, i8, v, i8, ft, v, v, b, i8)))
        jobs.append(("cosine_embedding_rows", EMB._cosine_kernel,
                     (v, v, v, i8, i8, d, v, i8, d, v, v, v, b)))
        jobs.append(("triplet_hinge_rows", EMB._hinge_kernel,
                     (v, v, v, b, ft, v, i8, ft, v, v, v, v, b)))
        jobs.append(("multi_margin_rows", CMC._mm_kernel(),
                     (v, i8[::1], v, b, b, ft, v, i8, ft, i8, T.int32[::1], v, v, b)))
        jobs.append(("multilabel_margin_rows", CMC._mlm_kernel(),
                     (v, i8[::1], ft, v, i8, ft, i8, T.int8[::1], T.int32[::1], v, v, b)))
        for full in (False, True):  # gaussian_nll_loss's element kernels
            jobs.append((f"gaussian_elements_{full}", GC._elements(full),
                         (v, v, v, i8, i8, ft, v, b, ft, v, v, v, b)))
            jobs.append((f"gaussian_elements_axis_{full}", GC._elements_axis(full),
                         (v, v, v, i8, i8, ft, v, b, ft, v, v, v, b)))
        jobs.append(("gaussian_sum_axis", GC._sum_axis, (v, i8, i8, v)))
        for core, gcore, operands in [
                *grads, (SL.kl_div, SL.kl_div_backward, K.LOSS_XT),
                (SL.kl_div_log_target, SL.kl_div_log_target_backward, K.LOSS_XT),
                (SL.binary_cross_entropy, SL.binary_cross_entropy_backward, K.LOSS_XT),
                (SL.binary_cross_entropy_with_logits,
                 SL.binary_cross_entropy_with_logits_backward, K.LOSS_XT),
                (SL.binary_cross_entropy_with_logits_pos_weight,
                 SL.binary_cross_entropy_with_logits_pos_weight_backward, K.LOSS_XT_AUX)]:
            kg, kgs = K._make_loss_grad(core, gcore, operands)  # the losses' backwards
            jobs.append((gcore.__name__, kg, (v, v, v, v, b, v, b, ft, ft, v)))
            jobs.append((gcore.__name__ + ".sum", kgs, (v, v, v, v, b, ft, ft, v, d[::1])))
        for core in {e.core.name: e.core for e in table.row_op_entries()}.values():
            ks = K.row_kernels(core)  # the op table's row cores (softmin shares softmax's)
            jobs += [(f"{core.name}_rows", ks.rows, (v, v, i8, ft)),
                     (f"{core.name}_warp", ks.warp, (v, v, i8, i8, ft)),
                     (f"{core.name}_cols", ks.cols, (v, v, i8, i8, i8, ft))]
            ks = K.row_grad_kernels(core)  # and their backwards
            jobs += [(f"{core.name}_grad_rows", ks.rows, (v, v, v, i8, ft)),
                     (f"{core.name}_grad_warp", ks.warp, (v, v, v, i8, i8, ft)),
                     (f"{core.name}_grad_cols", ks.cols, (v, v, v, i8, i8, i8, ft))]
        jobs += [("prelu_grad", K._prelu_grad_kernel, (v, v, v, v, d[::1], i8, i8, i8)),
                 ("prelu_grad_finish", K._prelu_grad_finish, (d[::1], i8, v))]
        jobs += [
            ("finish", K._finish_kernel, (d[::1], d[::1], v, d, b)),
            ("sum", K._sum_kernel, (v, d[::1])),
            ("outside_unit", K._outside_unit_kernel, (v, T.int32[::1])),
            ("ce_rows", K._ce_rows, (v, T.int64[::1], v, b, i8, i8, d, b, T.int32[::1], v, v)),
            ("ce_rows_i32", K._ce_rows, (v, T.int32[::1], v, b, i8, i8, d, b, T.int32[::1],
                                          v, v)),
            ("ce_warp", K._ce_warp, (v, T.int64[::1], v, b, i8, i8, i8, d, b, T.int32[::1], v,
                                     v)),
            ("ce_warp_u8", K._ce_warp, (v, T.uint8[::1], v, b, i8, i8, i8, d, b, T.int32[::1],
                                        v, v)),
            ("ce_cols", K._ce_cols, (v, T.int64[::1], v, b, i8, i8, i8, i8, d, b,
                                     T.int32[::1], v, v)),
            ("ce_prob_cols", K._ce_prob_cols, (v, v, v, b, i8, i8, i8, d, b, v)),
            ("ce_prob_warp", K._ce_prob_warp, (v, v, v, b, i8, i8, d, b, v)),
            ("ce_grad_cols", K._ce_grad_cols, (v, T.int64[::1], v, b, v, i8, d[::1], i8, i8, i8,
                                               i8, d, d, b, v)),
            ("ce_prob_grad_cols", K._ce_prob_grad_cols, (v, v, v, b, v, i8, d[::1], i8, i8, i8,
                                                         d, v)),
            ("ce_grad_warp", K._ce_grad_warp, (v, T.int64[::1], v, b, v, i8, d[::1], i8, i8, i8,
                                               d, d, b, v)),
            ("ce_prob_grad_warp", K._ce_prob_grad_warp, (v, v, v, b, v, i8, d[::1], i8, i8, d,
                                                         v)),
            ("bn_partials", K._bn_partials, (v, i8, i8, i8, d[:, ::1], d[:, ::1])),
            ("bn_combine", K._bn_combine, (v, i8, d, d[:, ::1], d[:, ::1], b, v, v, b, v, b,
                                           v, b, d, d, d[::1], d[::1], d[::1], v, v)),
            ("bn_grad_partials", K._bn_grad_partials, (v, v, i8, i8, i8, v, d[:, ::1],
                                                       d[:, ::1])),
            ("bn_grad_combine", K._bn_grad_combine, (d[:, ::1], d[:, ::1], v, v, v, b, d, b,
                                                     v2, v, v)),
            ("bn_grad_apply", K._bn_grad_apply, (v, v, i8, i8, v2, b, v)),
            ("bn_apply", K._bn_apply, (v, i8, i8, d[::1], d[::1], d[::1], v)),
            ("norm_rows", NR._norm_rows, (v, i8, b, v, b, v, b, d, v, v, v)),
            ("norm_grad_rows", NR._norm_grad_rows, (v, v, i8, b, v, b, v, v, v)),
            ("norm_grad_col_parts", NR._norm_grad_col_parts, (v, v, i8, b, v, v, i8,
                                                             d[:, ::1], d[:, ::1])),
            ("norm_grad_col_finish", NR._norm_grad_col_finish, (d[:, ::1], d[:, ::1], v, v)),
            ("group_rows", NG._group_rows, (v, i8, i8, i8, v, b, v, b, d, v, v, v)),
            ("group_grad_rows", NG._group_grad_rows, (v, v, i8, i8, i8, v, b, v, v, v)),
            ("group_channel_parts", NG._channel_parts, (v, v, i8, i8, i8, v, v, d[::1],
                                                        d[::1])),
            ("group_channel_finish", NG._channel_finish, (d[::1], d[::1], i8, v, v)),
            ("instance_running", NG._update_running, (v, v, d, i8, i8, d, v, b, v, b)),
            ("ctc", CTC._ctc_kernel, (ft[:, :, ::1], i8[::1], i8[::1], i8[::1], i8[::1], i8,
                                      d[::1], b, b, i8[:, ::1], b[:, ::1], d[:, :, ::1],
                                      i8[:, :, ::1], d[:, :, ::1], i8[:, :, ::1], d[:, ::1],
                                      i8[:, ::1], d[:, ::1], i8[:, ::1], d[:, ::1], i8[:, ::1],
                                      d[::1], ft[:, :, ::1])),
            ("ctc_reduce", CTC._reduce_kernel, (d[::1], i8[::1], i8, b, v)),
            ("matmul_nt", K._matmul_nt, (v2, v2, v, b, v2)),
            ("matmul_nt_any", K._matmul_nt, (ft[:, :], ft[:, :], ft[:], b, v2)),  # linear_backward
            ("column_sums", K._column_sums, (v2, v)),
            ("pdist", K._pdist_rows, (v, v, i8, d, ft, i8, v)),
            ("pdist_grad", K._pdist_grad_rows, (v, v, i8, ft, ft, i8, v, v, v, v)),
            ("dropout", K._dropout_kernel, (v, v, u32, u32, u32, ft, ft)),
            ("dropout_mask", K._mask_kernel, (v, u32, u32, u32, ft, ft)),
            ("dropout_channel", K._channel_kernel, (v, v, v, i8)),
            ("alpha_dropout", AD._alpha_dropout_kernel, (v, v, u32, u32, u32, ft, ft, ft, ft)),
            ("alpha_dropout_channel", AD._channel_affine_kernel, (v, v, v, v, i8)),
            ("scale", K._scale_kernel, (v, v, ft)),
            ("fill", K._fill_kernel, (v, ft)),
        ]
        jobs += [  # cosine_similarity, normalize, pdist, cdist
            ("cos_rows", SM._cos_kernel, (v, v, i8, i8, i8, d, v, v, v, v, b)),
            ("normalize_rows", SM._normalize_kernel, (v, i8, i8, i8, d, i8, d, v, v, b)),
            ("cdist", SM._cdist_kernel, (v, v, i8, i8, i8, i8, d, i8, v)),
            ("cdist_grad", SM._cdist_grad_kernel, (v, v, i8, i8, i8, i8, d, i8, v, v, v, b)),
            ("pdist_pairs", SM._pdist_kernel, (v, i8, i8, d, i8, v)),
            ("pdist_pairs_grad", SM._pdist_grad_kernel, (v, i8, i8, d, i8, v, v, v)),
        ]
        jobs += [  # local_response_norm
            ("lrn_forward", LRN._lrn_forward, (v, i8, i8, i8, i8, d, d, d, v)),
            ("lrn_backward_terms", LRN._lrn_backward_terms, (v, v, i8, i8, i8, i8, d, d, d,
                                                             d[::1], d[::1])),
            ("lrn_backward", LRN._lrn_backward, (v, v, d[::1], d[::1], i8, i8, i8, i8, d, v)),
        ]
        jobs += [  # bilinear
            ("bilinear", BL._bilinear_kernel, (v, v, v, v, b, i8, i8, i8, i8, v)),
            ("bilinear_grad_input", BL._grad_input_kernel, (v, v, v, i8, i8, i8, i8, b, v)),
            ("bilinear_grad_weight", BL._grad_weight_kernel, (v, v, v, i8, i8, i8, i8, v)),
            ("bilinear_grad_bias", BL._grad_bias_kernel, (v, i8, i8, v)),
        ]
        jobs += [  # glu, rrelu, gumbel_softmax
            ("glu", GLU._glu_kernel, (v, v, i8)),
            ("glu_grad", GLU._glu_grad_kernel, (v, v, v, i8)),
            ("rrelu", GLU._rrelu_kernel, (v, v, v, b, u32, u32, d, d)),
            ("gumbel_noise", GLU._gumbel_kernel, (v, v, u32, u32, d)),
            ("gumbel_div", GLU._div_kernel, (v, ft)),
            ("gumbel_hard", GLU._hard_kernel, (v, v, i8, i8, i8, ft)),
        ]
        jobs += [  # nbops.optim
            ("sgd_step", OC._sgd_kernel, (v, v, v, b, b, b, ft, b, ft, ft, b, ft)),
            ("adam_step", OC._adam_kernel, (v, v, v, v, v, b, b, ft, b, ft, b, ft, ft, ft, ft,
                                            b, ft, ft, ft)),
            ("optim_zero", OC._zero_kernel, (v,)),
        ]
        if ft is T.float32:  # the bool keep-mask (no float type involved)
            jobs += [("dropout_mask_bool", K._mask_kernel, (b[::1], u32, u32, u32, b, b)),
                     ("fill_bool", K._fill_kernel, (b[::1], b))]
        for name, k, sig in jobs:
            try:
                ptx(k, sig)
            except Exception as exc:  # report all
                failures.append(f"{name} [{ft}]: {type(exc).__name__}: {str(exc)[:400]}")
        print(f"{ft}: {len(jobs)} kernels compiled to PTX")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
