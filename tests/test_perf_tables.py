"""The docs' performance tables, without timing anything: every backward of the op
table has a case in ``asv_bench/benchmarks/every_backward.py``, ``$NBOPS_PERF_OPS``
narrows the benchmark files' cases, ``tools/perf_table.py`` replaces only the
rerun rows of a table, and the docs render the backward table."""

import csv
import importlib
import importlib.util
import os
import sys

import pytest

from nbops._ops import table

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def _benchmarks(name):
    """``asv_bench/benchmarks/<name>.py`` as asv imports it (a package module)."""
    path = os.path.join(ROOT, "asv_bench")
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(f"benchmarks.{name}")


def _file_module(name, *parts):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def unfiltered(monkeypatch):
    """The benchmark files imported with ``$NBOPS_PERF_OPS`` unset."""
    monkeypatch.delenv("NBOPS_PERF_OPS", raising=False)
    every_op = importlib.reload(_benchmarks("every_op"))
    return every_op, importlib.reload(_benchmarks("every_backward"))


def test_every_backward_and_with_grad_has_a_case(unfiltered):
    _, every_backward = unfiltered
    functions = table.backward_functions()
    assert functions  # the table lists them
    missing = sorted(set(functions) - set(every_backward.CASES))
    assert not missing, f"no case in every_backward.py for {missing}"
    for label, case in every_backward.CASES.items():
        assert case.op in table.TABLE, label
        assert label.startswith(case.op), label
        assert case.size, label
    # every label is a public function (or an option of one: batch_norm's evaluation)
    extra = set(every_backward.CASES) - set(functions)
    assert extra == {"batch_norm_backward_eval"}


def test_the_filter_keeps_the_named_ops(monkeypatch, unfiltered):
    every_op, every_backward = unfiltered
    all_forward, all_backward = set(every_op.CASES), set(every_backward.CASES)
    monkeypatch.setenv("NBOPS_PERF_OPS", "relu, cross_entropy batch_norm")
    try:
        every_op = importlib.reload(every_op)
        every_backward = importlib.reload(every_backward)
        assert set(every_op.CASES) == {"relu", "cross_entropy", "batch_norm",
                                       "batch_norm_eval"}
        assert set(every_op.ALL_CASES) == all_forward
        assert sorted(every_op.EveryOp.params[0]) == sorted(every_op.CASES)
        assert set(every_backward.CASES) == {
            "relu_backward", "cross_entropy_backward", "cross_entropy_with_grad",
            "batch_norm_backward", "batch_norm_backward_eval"}
        assert set(every_backward.ALL_CASES) == all_backward
        assert every_backward.EveryBackward.params[0] == sorted(every_backward.CASES)
        monkeypatch.setenv("NBOPS_PERF_OPS", "batch_norm_eval")  # a label
        assert set(importlib.reload(every_op).CASES) == {"batch_norm_eval"}
    finally:
        monkeypatch.delenv("NBOPS_PERF_OPS")
        importlib.reload(every_op)
        importlib.reload(every_backward)


def _rows(labels, ratio):
    torch_us = f"{2.0 / float(ratio):.2f}"
    return [[label, "1e7", dtype, "2.00", "", torch_us, ratio, ""]
            for label in labels for dtype in ("float32", "float64")]


def test_a_partial_rerun_replaces_only_its_rows(tmp_path):
    tool = _file_module("perf_table_tool", "tools", "perf_table.py")
    path = str(tmp_path / "table.csv")
    full = ["commit: aaaa, asv median times, date: d1", "machine: m", "asv options: none"]
    header, rows = tool.merge([], [], _rows(["b_backward", "a_backward"], "0.50"),
                              {"a_backward", "b_backward"}, False, full)
    tool.write_table(path, header, rows)
    old_header, old_rows = tool.read_table(path)
    assert old_header == full[:3] + ["geomean nbops/torch over 4 cells: 0.50; "
                                     "cells above 1.0: 0"]
    assert [r[0] for r in old_rows] == ["a_backward"] * 2 + ["b_backward"] * 2

    rerun = ["commit: bbbb, asv median times, date: d2", "machine: m",
             "asv options: --quick (a smoke run: one sample per cell, not a measurement)"]
    header, rows = tool.merge(old_header, old_rows, _rows(["b_backward"], "2.00"),
                              {"b_backward"}, True, rerun)
    tool.write_table(path, header, rows)
    new_header, new_rows = tool.read_table(path)
    assert new_header[:3] == full
    assert new_header[3].startswith("geomean nbops/torch over 4 cells: 1.00; cells above 1.0: 2")
    assert new_header[4].startswith("rerun of b_backward (2 rows): commit: bbbb")
    assert "smoke run" in new_header[4]
    assert new_rows == _rows(["a_backward"], "0.50") + _rows(["b_backward"], "2.00")
    with open(path, encoding="utf-8") as f:
        body = [line for line in f if not line.startswith("#")]
    assert next(csv.reader(body)) == tool.COLUMNS

    # a full run rewrites everything, the rerun lines included
    header, rows = tool.merge(new_header, new_rows, _rows(["a_backward"], "0.25"),
                              {"a_backward"}, False, full)
    assert header == full and rows == _rows(["a_backward"], "0.25")


def test_check_ops_names_the_unknown_ones():
    tool = _file_module("perf_table_tool", "tools", "perf_table.py")
    tool.check_ops(["relu", "batch_norm_eval"], {"relu": "relu", "batch_norm_eval": "batch_norm"})
    with pytest.raises(SystemExit, match="no case of nope"):
        tool.check_ops(["relu", "nope"], {"relu": "relu"})


def test_the_docs_render_the_backward_table(tmp_path):
    plots = _file_module("nbops_plots_for_test", "docs", "_ext", "nbops_plots.py")
    source, out = tmp_path / "t.csv", tmp_path / "t.rst"
    source.write_text("# commit: abc\n" + ",".join(
        ["op", "size", "dtype", "nbops_us", "nbops_out_us", "torch_us", "ratio",
         "ratio_out"]) + "\n"
        "relu_backward,1e7,float32,1,0.5,2,0.50,0.25\n"
        "relu_backward,1e7,float64,1,,2,0.50,\n"
        'linear_backward,"(65536, 128) x (128, 128)",float32,1,,1,1.00,\n',
        encoding="utf-8")
    plots.perf_table(str(source), str(out), columns=("dtype",))
    text = out.read_text(encoding="utf-8")
    assert "* commit: abc" in text
    assert "   * - op\n     - size\n     - float32\n     - float64\n" in text
    assert ("   * - ``relu_backward``\n     - 1e7\n     - 0.50 / 0.25\n     - 0.50\n"
            in text)
    assert ("   * - ``linear_backward``\n     - (65536, 128) x (128, 128)\n     - 1.00\n"
            "     - n/a\n" in text)


def test_built_once_builds_once_per_parameter_set_and_batches_calls():
    common = _benchmarks("_common")
    built = []

    @common.built_once
    class Case:
        def setup(self, size, dtype):
            built.append((size, dtype))
            self.calls = 0

            def fn():
                self.calls += 1
            self.fn = fn

        def time_op(self, size, dtype):
            self.fn()

    case = Case()
    case.setup("small", "float32")
    first_fn, number = case.fn, case.number
    assert built == [("small", "float32")]
    assert number > 100  # a call of nothing: many calls make a 10 ms sample
    case.setup("small", "float32")  # asv's setup before the next sample: nothing to do
    assert built == [("small", "float32")] and case.fn is first_fn
    case.setup("large", "float32")  # the next parameter set: built again
    assert built == [("small", "float32"), ("large", "float32")]
    assert case.fn is not first_fn and case.calls > 0  # called before timing (compile)

    @common.built_once
    class Skipped:
        def setup(self, size):
            raise NotImplementedError("no such case")  # asv: skipped

    skipped = Skipped()
    with pytest.raises(NotImplementedError):
        skipped.setup("small")
    with pytest.raises(NotImplementedError):  # not taken for built on the next try
        skipped.setup("small")


def test_calls_per_sample_scales_with_the_call_time():
    common = _benchmarks("_common")
    import time
    assert common.calls_per_sample(lambda: time.sleep(0.02)) == 1
    fast = common.calls_per_sample(lambda: None)
    slow = common.calls_per_sample(lambda: time.sleep(0.0002))
    assert fast > 10 * slow >= 10


def test_measure_case_times_every_library_of_a_cell_in_one_process(monkeypatch, unfiltered):
    every_op, _ = unfiltered
    tool = _file_module("perf_table_tool", "tools", "perf_table.py")
    libraries = ["nbops", "nbops_out", "torch"]
    monkeypatch.setattr(every_op.EveryOp, "params", (["relu", "glu"], ["small"], ["float32"],
                                                      libraries))
    values = tool.measure_case("forward", "relu", rounds=2, pause=0.0)
    expected = {("relu", "small", "float32", lib) for lib in libraries}
    if every_op.torch is None:  # the PyTorch cell is skipped, and with it the ratios
        expected.discard(("relu", "small", "float32", "torch"))
    else:  # the ratios paired round by round
        expected |= {("relu", "small", "float32", r) for r in ("ratio", "ratio_out")}
    assert set(values) == expected
    times = {k: v for k, v in values.items() if not k[3].startswith("ratio")}
    assert all(0 < seconds < 1e-3 for seconds in times.values())  # per call, not per sample
    ratios = [v for k, v in values.items() if k[3].startswith("ratio")]
    assert all(0.01 < r < 100 for r in ratios)


def test_median_of_passes_takes_each_value_from_its_passes():
    tool = _file_module("perf_table_tool", "tools", "perf_table.py")
    runs = [{("relu", "small", "float32", "nbops"): 3.0, ("relu", "ratio"): 0.9},
            {("relu", "small", "float32", "nbops"): 1.0, ("relu", "ratio"): 2.5},
            {("relu", "small", "float32", "nbops"): 2.0, ("relu", "ratio"): 1.1,
             ("gelu", "ratio"): 0.4}]
    combined = tool.median_of_passes(runs)
    # each key its own median (the ratio's pass need not be the time's); a key
    # that only one pass measured keeps that pass's value
    assert combined == {("relu", "small", "float32", "nbops"): 2.0, ("relu", "ratio"): 1.1,
                        ("gelu", "ratio"): 0.4}
