"""Serial or parallel per op (nbops/_launch.py): the rule, its overrides, same bits.

No timings here: the thresholds come from ``nbops/_tuning.py`` (measured by
``tools/tune_threads.py``); the tests check the rule's invariants and that the
kernel it picks gives the serial kernel's bits.
"""

import os
import re
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import nbops
from nbops import _config, _launch, _tuning
from nbops._ops import elementwise, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELU, SIGMOID = elementwise.Op.registry["relu"], elementwise.Op.registry["sigmoid"]
F32 = np.dtype(np.float32)


def per_op_rule():
    return _config.PARALLEL_THRESHOLD == _config.PER_OP_FLOOR


needs_per_op = pytest.mark.skipif(
    not per_op_rule() or _config.pool_threads() < 2,
    reason="NBOPS_PARALLEL_THRESHOLD set, or one Numba thread")


class FakeKernel:
    """Stands in for a kernel: ``launch`` reads its name, calls its entry point."""

    def __init__(self, module, qualname):
        self.py_func = types.SimpleNamespace(__module__=module, __qualname__=qualname)


@pytest.fixture
def spy(monkeypatch):
    """(serial, parallel, key, ran): fake map kernels under ``key``; ``ran`` lists
    "serial"/"parallel" per launch. Nothing is compiled."""
    def make(op):
        serial = FakeKernel("nbops._ops.elementwise", "_map")
        parallel = FakeKernel("nbops._ops.elementwise", "_map_parallel")
        key = (op, F32)
        ran = []
        monkeypatch.setitem(_launch._entry_points, (serial, key), lambda: ran.append("serial"))
        monkeypatch.setitem(_launch._entry_points, (parallel, key),
                            lambda: ran.append("parallel"))
        return serial, parallel, key, ran
    return make


# ------------------------------------------------------------------ the rule
def test_threshold_invariants():
    floor = _config.PARALLEL_FLOOR
    costs = np.geomspace(1e-3, 1e3, 61)
    for threads in (2, 4, 16):
        limits = [_launch.threshold(c, threads) for c in costs]
        assert all(n >= floor for n in limits)
        # more work per element: parallel from as many elements or fewer
        assert all(a >= b for a, b in zip(limits, limits[1:], strict=False))
    # more threads: never later
    for c in costs:
        assert _launch.threshold(c, 4) <= _launch.threshold(c, 2)
    # the formula: serial n c vs launch + n c / (T e), at the threshold
    c, launch_ns, eff = 0.01, 5000.0, 0.9
    n = _launch.threshold(c, 2, launch_ns, eff)
    assert n * c * (1 - 1 / (2 * eff)) > launch_ns >= (n - 1) * c * (1 - 1 / (2 * eff))
    # never on one thread, nor where no speed-up is possible
    assert _launch.threshold(1e3, 1) == _launch.NEVER
    assert _launch.threshold(1e3, 2, 1000.0, 0.5) == _launch.NEVER
    assert _launch.threshold(0.0, 2) == _launch.NEVER


def test_tuning_table_is_sane():
    assert _tuning.LAUNCH_NS > 0 and 0.5 <= _tuning.EFFICIENCY <= 1
    assert _tuning.DEFAULT_COST_NS > 0
    assert set(_tuning.CROSSOVER) == set(_tuning.COST_NS)
    for label, by_dtype in _tuning.COST_NS.items():
        assert "." in label and set(by_dtype) <= {"float32", "float64"}, label
        assert all(c > 0 for c in by_dtype.values()), label
    # unlisted kernels: no earlier than the cheapest listed one
    costs = [c for d in _tuning.COST_NS.values() for c in d.values()]
    assert _tuning.DEFAULT_COST_NS <= min(costs + [np.inf])


def test_cost_labels():
    assert _launch.cost_label(elementwise.map_serial, (SIGMOID, F32)) == (
        "elementwise._map[sigmoid]", "float32")
    from nbops._ops import softmax
    from nbops.scalar import rows as R
    assert _launch.cost_label(softmax._rows_serial, (R.SOFTMAX, "d", True, False)) == (
        "softmax._rows[softmax]", "float64")


def _recorded_launches(monkeypatch):
    """Replace ``launch`` in every nbops module by a recorder that runs the serial
    kernel (as tools/tune_threads.py does): the (serial, key) of each launch."""
    calls = []

    def record(serial, parallel, key, n, *args):
        calls.append((serial, key))
        _launch.entry_point(serial, key, args)(*args)

    for name, mod in list(sys.modules.items()):
        if (name.startswith("nbops.") and mod is not _launch
                and getattr(mod, "launch", None) is _launch.launch):
            monkeypatch.setattr(mod, "launch", record)
    return calls


def test_backward_kernels_have_cost_labels(monkeypatch):
    """Every kernel that the backward sample calls (op table) launch has a cost label,
    under which tools/tune_threads.py measures it, and the rule takes the tuning
    table's figure for that label, or ``DEFAULT_COST_NS`` (the cheapest measured
    cost: parallel no earlier than relu) where the table does not list it."""
    calls = _recorded_launches(monkeypatch)
    d = table.sample_arrays(np.float32, 64)
    ops_of_label = {}
    for e in table.entries():
        if e.backward_samples is None:
            continue
        del calls[:]
        for function, args, kwargs in e.backward_samples(d):
            function(*args, **kwargs)
        assert calls, e.name  # each backward runs a launched kernel
        for serial, key in calls:
            label, dtype = _launch.cost_label(serial, key)
            assert re.fullmatch(r"\w+\.\w+(\[[\w.,]+\])?", label) and dtype == "float32", label
            ops_of_label.setdefault(label, set()).add(e.name)
            listed = _tuning.COST_NS.get(label, {})
            assert _launch.cost_ns(serial, key) == listed.get(dtype, _tuning.DEFAULT_COST_NS)
    # the shared backward kernels' labels name the op (its Op): a figure per op
    shared = {label: ops for label, ops in ops_of_label.items()
              if label.startswith(("elementwise._map2[", "losses._grad["))}
    assert len(shared) >= 20
    assert all(len(ops) == 1 for ops in shared.values()), shared


@needs_per_op
def test_expensive_ops_go_parallel_no_later_than_cheap_ones():
    relu = _launch.parallel_from(elementwise.map_serial, (RELU, F32))
    assert _launch.parallel_from(elementwise.map_serial, (SIGMOID, F32)) <= relu
    for label in _tuning.COST_NS:
        if label.startswith("elementwise._map[") and "float32" in _tuning.COST_NS[label]:
            op = elementwise.Op.registry[label[len("elementwise._map["):-1]]
            assert _launch.parallel_from(elementwise.map_serial, (op, F32)) >= \
                _config.PARALLEL_FLOOR
    if "softmax._rows[softmax]" in _tuning.COST_NS:
        from nbops._ops import softmax
        from nbops.scalar import rows as R
        assert _launch.parallel_from(softmax._rows_serial, (R.SOFTMAX, "f", True, False)) \
            <= relu


@needs_per_op
def test_a_measured_crossover_below_the_rule_is_used(monkeypatch):
    """The tuning's measured crossover replaces the rule's threshold where the
    parallel twin was measured to win earlier (never below the floor, never on
    one thread); a later crossover leaves the rule's threshold."""
    key = (RELU, F32)
    label, dtype = _launch.cost_label(elementwise.map_serial, key)
    rule = _launch.threshold(_launch.cost_ns(elementwise.map_serial, key))
    for measured, expected in [(rule // 2, rule // 2), (2 * rule, rule),
                               (1, _config.PARALLEL_FLOOR), (None, rule)]:
        monkeypatch.setitem(_tuning.CROSSOVER, label, {dtype: measured})
        monkeypatch.setattr(_launch, "_parallel_from", {})
        assert _launch.parallel_from(elementwise.map_serial, key) == expected, measured


@needs_per_op
@pytest.mark.parametrize("op", [RELU, SIGMOID], ids=["relu", "sigmoid"])
def test_launch_is_monotone_in_size(spy, op):
    serial, parallel, key, ran = spy(op)
    limit = _launch.parallel_from(serial, key)
    rule = _launch.threshold(_launch.cost_ns(serial, key))
    measured = _launch.measured_crossover(serial, key)
    assert limit == (rule if measured is None else max(min(rule, measured),
                                                       _config.PARALLEL_FLOOR))
    sizes = sorted({1, 1000, _config.PARALLEL_FLOOR - 1, _config.PARALLEL_FLOOR, limit - 1,
                    limit, limit + 1, 2 * limit, 10**9})
    for n in sizes:
        _launch.launch(serial, parallel, key, n)
    picked = dict(zip(sizes, ran, strict=True))
    assert [n for n in sizes if picked[n] == "parallel"] == [n for n in sizes if n >= limit]
    assert _launch.serial_below(serial, key) == limit


@needs_per_op
def test_one_thread_now_means_serial(spy, monkeypatch):
    serial, parallel, key, ran = spy(SIGMOID)
    monkeypatch.setattr(_config, "threads_now", lambda: 1)  # numba.set_num_threads(1)
    _launch.launch(serial, parallel, key, 10**9)
    assert ran == ["serial"]


def test_assigned_threshold_is_one_rule_for_all(spy, monkeypatch):
    """Tests force a path by assigning _config.PARALLEL_THRESHOLD."""
    serial, parallel, key, ran = spy(RELU)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)
    _launch.launch(serial, parallel, key, 2)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)
    _launch.launch(serial, parallel, key, 10**9)
    assert ran == ["parallel", "serial"]


# ------------------------------------------------------- in a fresh process
def run_py(code, env):
    full_env = dict(os.environ)
    full_env.pop("NBOPS_PARALLEL_THRESHOLD", None)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.split()


SPY = """
    import numpy as np, numba, nbops
    from nbops import _config, _launch
    used = []
    _entry_point = _launch.entry_point

    def entry_point(kernel, key, args):
        used.append(kernel.py_func.__name__)
        return _entry_point(kernel, key, args)

    _launch.entry_point = entry_point
"""


def test_env_threshold_is_the_old_rule():
    out = run_py(SPY + """
    x = np.linspace(-1, 1, 3000, dtype=np.float32).reshape(2, 1500)
    nbops.relu(x)
    nbops.relu(x[:1, :900])
    print(_config.PARALLEL_THRESHOLD, _config.PER_OP_FLOOR, *used)
    """, {"NBOPS_PARALLEL_THRESHOLD": "1000"})
    assert out == ["1000", "None", "_map_parallel", "_map"]


def test_one_numba_thread_never_launches_parallel():
    out = run_py(SPY + """
    from nbops._ops import elementwise
    x = np.linspace(-3, 3, 1 << 21, dtype=np.float32)
    nbops.sigmoid(x); nbops.relu(x); nbops.softmax(x.reshape(-1, 64))
    nbops.mse_loss(x, x[::-1].copy())
    print(numba.get_num_threads(), len(used), *sorted(set(used)))
    """, {"NUMBA_NUM_THREADS": "1"})
    assert out[0] == "1" and int(out[1]) >= 4
    assert not [name for name in out[2:] if name.endswith("_parallel")], out


@needs_per_op
def test_set_num_threads_one_at_run_time():
    out = run_py(SPY + """
    x = np.linspace(-3, 3, 1 << 21, dtype=np.float32)
    nbops.sigmoid(x)
    numba.set_num_threads(1)
    nbops.sigmoid(x)
    print(*used)
    """, {})
    assert out == ["_map_parallel", "_map"]


# ------------------------------------------------- same bits on either side
def _launches(monkeypatch):
    """The (kernel name, key) of every launch from now on."""
    used = []
    real = _launch.entry_point

    def entry_point(kernel, key, args):
        used.append((kernel.py_func.__name__, key))
        return real(kernel, key, args)

    monkeypatch.setattr(_launch, "entry_point", entry_point)
    return used


CALLS = {  # a call on n float32 elements (n a multiple of 16)
    "sigmoid": lambda x: nbops.sigmoid(x.reshape(-1, 16)),
    "relu": lambda x: nbops.relu(x.reshape(-1, 16)),
    "softmax": lambda x: nbops.softmax(x.reshape(-1, 16), axis=1),
    "mse_loss": lambda x: nbops.mse_loss(x, x[::-1].copy(), reduction="none"),
}


@needs_per_op
@pytest.mark.parametrize("name", sorted(CALLS))
def test_same_bits_around_the_threshold(name, monkeypatch):
    call = CALLS[name]
    rng = np.random.default_rng(5)
    used = _launches(monkeypatch)
    call(np.ones(_config.PARALLEL_FLOOR, np.float32))  # consults the per-op rule
    key = used[-1][1]
    limit = min(n for (_, k), n in _launch._parallel_from.items() if k == key)
    if limit > 1 << 21:
        pytest.skip(f"{name} runs parallel only from {limit} elements here")
    n = -(-limit // 16) * 16  # at or just above the threshold
    x = rng.standard_normal(n).astype(np.float32)
    picked, below = call(x), call(x[:n - 16])
    assert [name.endswith("_parallel") for name, _ in used[-2:]] == [True, False]
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)  # the serial kernel
    np.testing.assert_array_equal(call(x), picked)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)  # the parallel kernel
    np.testing.assert_array_equal(call(x[:n - 16]), below)
    assert [name.endswith("_parallel") for name, _ in used[-2:]] == [False, True]


@needs_per_op
def test_small_1d_fast_path_follows_the_threshold(monkeypatch):
    """1-D elementwise calls skip ``launch`` below the op's threshold only."""
    limit = _launch.parallel_from(elementwise.map_serial, (SIGMOID, F32))
    if limit > 1 << 21:
        pytest.skip(f"sigmoid runs parallel only from {limit} elements here")
    x = np.linspace(-3, 3, limit, dtype=np.float32)
    monkeypatch.delitem(elementwise._small_1d, (SIGMOID, F32), raising=False)
    nbops.sigmoid(x[:100])  # sets up the fast path
    used = _launches(monkeypatch)
    nbops.sigmoid(x[:limit - 1])
    nbops.sigmoid(x)
    assert [name for name, _ in used] == ["_map_parallel"]


@needs_per_op
@pytest.mark.parametrize("name, params", [("sigmoid", ()), ("leaky_relu", (0.1,))])
def test_large_1d_fast_path_runs_the_remembered_parallel_kernel(name, params, monkeypatch):
    """From the op's threshold, 1-D calls run the parallel kernel's entry point
    remembered after its first launch (without ``launch``'s look-ups), with the
    serial kernel's bits, allocating and into ``out=``; on one thread now, or
    where ``acquire_parallel`` refuses, ``launch`` decides (serial)."""
    op, fn = elementwise.Op.registry[name], getattr(nbops, name)
    key = (op, F32)
    limit = _launch.parallel_from(elementwise.map_serial, key)
    if limit > 1 << 21:
        pytest.skip(f"{name} runs parallel only from {limit} elements here")
    x = np.linspace(-3, 3, limit + 3, dtype=np.float32)
    monkeypatch.delitem(elementwise._small_1d, key, raising=False)
    fn(x[:100], *params)  # sets up the fast path
    fn(x, *params)  # launches the parallel twin: its entry point is remembered
    parallel = _launch.remembered_entry_point(elementwise.map_parallel, key)
    assert parallel is not None and elementwise._small_1d[key][2] is parallel
    used = _launches(monkeypatch)
    out = np.empty_like(x)
    got, got_out = fn(x, *params), fn(x, *params, out=out)
    assert used == [] and got_out is out  # the remembered entry point, not launch()
    monkeypatch.setattr(_config, "threads_now", lambda: 1)  # numba.set_num_threads(1)
    one = fn(x, *params)
    assert [k for k, _ in used] == ["_map"]
    monkeypatch.undo()
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)  # the serial kernel
    used = _launches(monkeypatch)
    ref = fn(x, *params)
    assert [k for k, _ in used] == ["_map"]
    for res in (got, got_out, one):
        np.testing.assert_array_equal(res, ref)


def test_tune_threads_stops_ops_past_max_bytes():
    """tools/tune_threads.py does not run an op at larger sizes once its recorded
    launches hold more than ``max_bytes`` of arrays (pdist's and cdist's samples
    grow with the square of the size: 11+ GB at 2**19 float32 elements)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import tune_threads
    finally:
        sys.path.pop(0)
    relu = next(e for e in table.entries() if e.name == "relu")
    sizes = [4096, 8192]
    held = []

    def measure(max_bytes):
        points = tune_threads.measure_ops([relu], ["float32"], sizes, 1e-4, held.append,
                                          backward=False, max_bytes=max_bytes)
        return sorted({n for pts in points.values() for n, _, _ in pts})

    assert measure(1 << 30) == sizes
    assert held and not any("not run at larger sizes" in m for m in held)
    # relu's launch holds its input and output: 2 * 4096 * 4 bytes at the first size
    assert measure(2 * 4096 * 4 - 1) == [4096]
    assert any("relu's launches hold" in m for m in held)
    assert measure(2 * 4096 * 4) == sizes
    x = np.ones(10, np.float32)
    assert tune_threads.args_bytes([(None, None, None, 10, (x, x, x[2:], 3))]) == 40 + 32
