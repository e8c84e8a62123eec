"""Runtime behaviour: import cost, the disk cache, threads and worker processes.

Each test runs Python in a subprocess (fresh interpreter, bounded in time).
"""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_py(code, env=None, timeout=240, script=None):
    """Run ``code`` in a fresh interpreter (from the file ``script`` if given)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    if script is not None:  # spawned workers re-import __main__: it must be a file
        script.write_text(textwrap.dedent(code))
        args = [sys.executable, str(script)]
    else:
        args = [sys.executable, "-c", textwrap.dedent(code)]
    proc = subprocess.run(args, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_compiles_nothing_and_no_cuda():
    out = run_py("""
        import sys
        import nbops
        from nbops._ops import activation, elementwise
        assert "numba.cuda" not in sys.modules
        assert not elementwise.map_serial.overloads
        assert not elementwise.map_parallel.overloads
        assert not activation._prelu_serial.overloads
        print("ok")
    """)
    assert out.strip() == "ok"


def test_second_process_loads_from_cache(tmp_path):
    code = """
        import numpy as np, nbops
        from nbops._ops.elementwise import map_serial
        y = nbops.softplus(np.linspace(-3, 3, 11, dtype=np.float32), 2.0)
        print(sum(map_serial.stats.cache_hits.values()),
              sum(map_serial.stats.cache_misses.values()), repr(y.tobytes()))
    """
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    hits1, misses1, y1 = run_py(code, env).split(" ", 2)
    hits2, misses2, y2 = run_py(code, env).split(" ", 2)
    assert (hits1, misses1) == ("0", "1")
    assert (hits2, misses2) == ("1", "0")
    assert y1 == y2
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


def test_cache_can_be_disabled(tmp_path):
    run_py("""
        import numpy as np, nbops
        nbops.relu(np.ones(3))
    """, {"NBOPS_CACHE_DIR": str(tmp_path), "NBOPS_DISABLE_CACHE": "1"})
    assert not list(tmp_path.rglob("*.nbi"))


def test_unusable_cache_dir_falls_back(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    out = run_py("""
        import warnings
        warnings.simplefilter("error")
        import numpy as np, nbops
        print(nbops.relu(np.array([-1.0, 2.0])))
    """, {"NBOPS_CACHE_DIR": str(not_a_dir)})
    assert out.strip() == "[0. 2.]"


THREADS_CODE = """
    import threading
    import numpy as np, nbops
    x = np.linspace(-5, 5, 400_000, dtype=np.float32)
    expected = 1 / (1 + np.exp(-x.astype(np.float64)))
    errors = []
    def work():
        for _ in range(5):
            y = nbops.sigmoid(x)
            if not np.allclose(y, expected, rtol=1e-6, atol=1e-7):
                errors.append("mismatch")
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("errors", len(errors))
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_eight_threads(layer, tmp_path):
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    assert run_py(THREADS_CODE, env).strip() == "errors 0"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_worker_processes(method, tmp_path):
    out = run_py(f"""
        import multiprocessing as mp
        import numpy as np, nbops

        def work(seed):
            x = np.random.default_rng(seed).standard_normal(300_000).astype(np.float32)
            return float(np.abs(nbops.tanh(x) - np.tanh(x.astype(np.float64))).max())

        if __name__ == "__main__":
            nbops.tanh(np.ones(300_000, np.float32))  # the parent runs parallel work first
            with mp.get_context("{method}").Pool(2) as pool:
                errs = pool.map(work, range(4))
            print(max(errs) < 1e-6)
    """, script=tmp_path / "workers.py")  # the run's cache: tanh is compiled once
    assert out.strip() == "True"


def test_thread_count_does_not_change_results():
    code = """
        import hashlib
        import numpy as np, nbops
        x = np.random.default_rng(1).standard_normal(1_000_003).astype(np.float32)
        h = hashlib.sha256()
        for name in ["sigmoid", "tanh", "softplus", "logsigmoid", "elu", "relu"]:
            h.update(getattr(nbops, name)(x).tobytes())
        h.update(nbops.batch_norm(x.reshape(1000003, 1), None, None, training=True).tobytes())
        print(h.hexdigest())
    """
    # the run's cache (the kernels earlier tests compiled), not a private one
    one = run_py(code, {"NUMBA_NUM_THREADS": "1"})
    two = run_py(code, {"NUMBA_NUM_THREADS": "2"})
    assert one == two


def test_nbops_leaves_numba_settings_alone():
    out = run_py("""
        import numba, numpy as np
        before = numba.get_num_threads()
        import nbops
        nbops.relu(np.ones(500_000, np.float32))
        print(numba.get_num_threads() == before, numba.config.THREADING_LAYER)
    """)
    assert out.split()[0] == "True"


def test_warmup_then_cached(tmp_path):
    code = """
        import nbops
        from nbops._ops.elementwise import map_serial, map_parallel
        nbops.warmup(ops=["relu", "sigmoid"], dtypes=["float32"], verbose=True)
        stats = [map_serial.stats, map_parallel.stats]
        print(sum(sum(s.cache_hits.values()) for s in stats),
              sum(sum(s.cache_misses.values()) for s in stats))
    """
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    assert run_py(code, env).split() == ["0", "4"]
    assert run_py(code, env).split() == ["4", "0"]


def test_warmup_backward_prepares_the_backward_kernels(tmp_path):
    """``backward=False`` (the default) compiles no backward kernel; ``backward=True``
    compiles them, serial and parallel, so that a training step compiles nothing."""
    code = """
        import numpy as np
        from numba.core import event
        import nbops
        from nbops import _launch
        compiled = []

        class Count(event.Listener):
            def on_start(self, ev):
                f = ev.data["dispatcher"].py_func
                compiled.append(f.__module__ + "." + f.__qualname__)

            def on_end(self, ev):
                pass

        def step(n):  # the backward calls of a training step on n elements
            x = np.linspace(-2, 2, n, dtype=np.float32)
            t = np.linspace(0, 1, n, dtype=np.float32)
            loss, g = nbops.mse_loss_with_grad(nbops.relu(x), t)
            nbops.relu_backward(g, nbops.relu(x))
            nbops.mse_loss_backward(1.0, x, t)

        ops = ["relu", "mse_loss"]
        with event.install_listener("numba:compile", Count()):
            nbops.warmup(ops, dtypes=["float32"], verbose=False)
            forward_only = list(compiled)
            times = nbops.warmup(ops, dtypes=["float32"], verbose=False, backward=True)
            with_backward = compiled[len(forward_only):]
            for n in (100, _launch.everywhere_parallel_from() or 100):
                step(n)
            print(sorted(times), len(compiled) - len(forward_only) - len(with_backward))
        print(*sorted(set(forward_only)))
        print(*sorted(set(with_backward)))
    """
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    names, forward_only, with_backward = run_py(code, env, timeout=600).splitlines()
    assert names == "['mse_loss', 'relu'] 0"  # the training step compiled nothing
    assert "_map2" not in forward_only and "_grad" not in forward_only
    assert "nbops._ops.elementwise._map2" in with_backward.split()
    assert "nbops._ops.losses._grad" in with_backward.split()
    cli = run_py("""
        from nbops.warmup import main
        main(["--ops", "relu", "mse_loss", "--dtypes", "float32", "--backward"])
    """, env)
    assert cli.startswith("nbops warmup: 2 ops and their backwards ready in"), cli


def test_warmup_rejects_unknown_op():
    out = run_py("""
        import nbops
        try:
            nbops.warmup(ops=["no_such_op"])
        except ValueError as exc:
            print("ops" in str(exc))
    """)
    assert out.strip() == "True"


RELU_CODE = """
    import numpy as np, nbops
    print(nbops.relu(np.array([-1.5, 0.0, 2.5], dtype=np.float32)).tolist(),
          nbops.softplus(np.linspace(-3, 3, 5)).tobytes().hex())
"""


@pytest.mark.parametrize("damage", ["truncate_data", "garbage_index"])
def test_corrupt_cache_files_do_not_break_ops(damage, tmp_path):
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    good = run_py(RELU_CODE, env)
    suffix = ".nbc" if damage == "truncate_data" else ".nbi"
    files = [p for p in tmp_path.rglob("*" + suffix)]
    assert files
    for p in files:
        p.write_bytes(p.read_bytes()[:50] if damage == "truncate_data" else b"garbage\n")
    assert run_py(RELU_CODE, env) == good  # recompiles
    assert run_py(RELU_CODE, env) == good  # and the rewritten cache works


def test_eight_processes_on_an_empty_cache(tmp_path):
    full_env = dict(os.environ, NBOPS_CACHE_DIR=str(tmp_path),
                    PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(RELU_CODE)],
                              env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(8)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err
        outs.append(out)
    assert len(set(outs)) == 1
    assert run_py(RELU_CODE, {"NBOPS_CACHE_DIR": str(tmp_path)}) == outs[0]


SERVICE_CODE = """
    import sys
    import numpy as np
    from numba.core import event
    import nbops
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8)
    labels = np.arange(8) % 8
    w = np.ones((4, 8), np.float32)
    compiled = []

    class Count(event.Listener):
        def on_start(self, ev):
            compiled.append(ev.data["dispatcher"].py_func.__qualname__)

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Count()):
        res = [nbops.relu(x), nbops.softmax(x), nbops.cross_entropy(x, labels),
               nbops.batch_norm(x, None, None, training=True), nbops.linear(x, w, w[0, :4])]
    print(repr(b"".join(np.asarray(r).tobytes() for r in res)))
    print(sorted(set(compiled)))
    print("numba.np.arraymath" in sys.modules)
"""


def test_warm_cache_first_calls_compile_nothing(tmp_path):
    """A warm process loads every kernel: nothing compiles, and Numba's lowering
    registries (0.25 s of imports, needed only to compile) are never loaded."""
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    first = run_py(SERVICE_CODE, env).splitlines()
    assert first[1] != "[]"  # the first process compiled
    second = run_py(SERVICE_CODE, env).splitlines()
    assert second[0] == first[0]  # bit-identical results
    assert second[1] == "[]", second[1]
    assert second[2] == "False"


def test_compiling_after_loading_from_cache(tmp_path):
    """Kernels loaded without Numba's context refresh; later compilations (a new
    dtype, a user's @njit function calling nbops) still work."""
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    code = """
        import numpy as np
        from numba import njit
        import nbops
        x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
        a = nbops.softmax(x)
        b = nbops.softmax(x.astype(np.float64))

        @njit
        def user(v):
            return nbops.relu(v) + nbops.softmax(v)

        c = user(x)
        ref = np.exp(x - x.max(1, keepdims=True))
        ref /= ref.sum(1, keepdims=True)
        assert np.allclose(a, ref, rtol=1e-6) and np.allclose(b, ref, rtol=1e-6)
        assert np.allclose(c, np.maximum(x, 0) + ref, rtol=1e-6)
        print("ok")
    """
    assert run_py(code, env).strip() == "ok"
    assert run_py(code, env).strip() == "ok"  # now softmax comes from the cache


# Root may write anywhere, so for root the read-only folders are simulated: a
# sitecustomize makes every attempt to create or write a file or folder under
# them fail with PermissionError (what a real read-only folder does).
READONLY_SITECUSTOMIZE = """
import builtins, errno, os
_roots = [r for r in os.environ.get("NBOPS_TEST_READONLY", "").split(os.pathsep) if r]
def _ro(path):
    try:
        p = os.path.abspath(os.fsdecode(path))
    except TypeError:
        return False
    return any(p == r or p.startswith(r + os.sep) for r in _roots)
def _deny(path):
    raise PermissionError(errno.EACCES, "Permission denied (simulated)", path)
_open, _os_open, _mkdir = builtins.open, os.open, os.mkdir
def open(file, mode="r", *a, **k):
    if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") \\
            and _ro(file):
        _deny(file)
    return _open(file, mode, *a, **k)
def os_open(path, flags, *a, **k):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _ro(path):
        _deny(path)
    return _os_open(path, flags, *a, **k)
def mkdir(path, *a, **k):
    if _ro(path):
        _deny(path)
    return _mkdir(path, *a, **k)
builtins.open, os.open, os.mkdir = open, os_open, mkdir
"""


def _readonly_run(code, env, readonly, base):
    """Run ``code`` with the folders ``readonly`` unwritable (really, or simulated
    for root) and HOME, NUMBA_CACHE_DIR, NBOPS_CACHE_DIR unset."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("HOME", "NUMBA_CACHE_DIR", "NBOPS_CACHE_DIR", "XDG_CACHE_HOME")}
    full_env.update(env)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        hook = os.path.join(base, "hook")
        os.makedirs(hook, exist_ok=True)
        with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
            f.write(READONLY_SITECUSTOMIZE)
        full_env["PYTHONPATH"] = hook + os.pathsep + full_env["PYTHONPATH"]
        full_env["NBOPS_TEST_READONLY"] = os.pathsep.join(readonly + ["/root"])
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          capture_output=True, text=True, timeout=300, cwd=base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_unwritable_install_and_no_home(tmp_path):
    """nbops installed read-only, HOME unset: kernels are cached in the temporary
    directory; if that is read-only too, ops still work (a warning, no cache)."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(os.path.join(ROOT, "nbops"), site / "nbops",
                    ignore=shutil.ignore_patterns("__pycache__"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for folder, _dirs, files in os.walk(site):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)
    code = f"""
        import warnings
        warnings.simplefilter("always")
        import numpy as np, nbops
        assert nbops.__file__.startswith({str(site)!r}), nbops.__file__
        with warnings.catch_warnings(record=True) as caught:
            y = nbops.relu(np.array([-1.0, 2.0], np.float32))
            s = nbops.softmax(np.zeros((2, 2), np.float32))
        print(y.tolist(), s.tolist(), len(caught))
    """
    try:
        out = _readonly_run(code, {"PYTHONPATH": str(site), "TMPDIR": str(tmp)},
                            [str(site)], str(tmp_path))
        assert out.stdout.split() == "[0.0, 2.0] [[0.5, 0.5], [0.5, 0.5]] 0".split()
        cached = [f for _, _, files in os.walk(tmp) for f in files if f.endswith(".nbi")]
        assert cached  # in the per-user folder of the temporary directory
        assert not [f for _, _, files in os.walk(site) for f in files if f.endswith(".nbi")]

        ro_tmp = tmp_path / "ro-tmp"
        ro_tmp.mkdir()
        os.chmod(ro_tmp, 0o555)
        # (simulated for root: then /tmp and the other fallbacks of tempfile too)
        out = _readonly_run(code, {"PYTHONPATH": str(site), "TMPDIR": str(ro_tmp)},
                            [str(site), str(ro_tmp), "/tmp", "/var/tmp", "/usr/tmp"],
                            str(tmp_path))
        assert out.stdout.split()[:-1] == "[0.0, 2.0] [[0.5, 0.5], [0.5, 0.5]]".split()
        # tempfile falls back to the (writable) working directory: not a cache place
        assert not [d for d in os.listdir(tmp_path) if d.startswith("nbops-cache")]
        if os.geteuid() == 0:
            assert "not cached on disk" in out.stderr
    finally:
        for folder, _dirs, _files in os.walk(tmp_path):
            os.chmod(folder, 0o755)


def test_every_kernel_loads_from_the_cache():
    """Warm-up of every op (serial and parallel kernels) plus the other layouts
    and options; a second process compiles nothing at all.

    Both processes use the test run's own cache (the environment's): the kernels
    that earlier tests compiled are loaded, not compiled a second time in a
    private folder (that cost minutes), and whatever is missing is compiled and
    saved by the first process. A user function compiled in each process shows
    that the listener sees compilations, so the second process's 0 means
    something.
    """
    code = """
        import numpy as np
        from numba import njit
        from numba.core import event
        import nbops
        compiled = []

        class Count(event.Listener):
            def on_start(self, ev):
                f = ev.data["dispatcher"].py_func
                compiled.append(f.__module__ + "." + f.__qualname__)

            def on_end(self, ev):
                pass

        @njit
        def probe(v):  # never cached: compiled in every process
            return v + 1

        x = np.linspace(-2, 2, 2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
        p = np.full((2, 3, 5), 0.2, np.float32)
        t = np.array([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0]])
        w = np.array([0.5, 1.0, 2.0], np.float32)
        with event.install_listener("numba:compile", Count()):
            probe(1.0)
            nbops.warmup(dtypes=["float32"], verbose=False)
            nbops.softmax(x, axis=1)
            nbops.log_softmax(x, axis=0)
            nbops.cross_entropy(x, t, weight=w, label_smoothing=0.1)
            nbops.cross_entropy(x, p)
            nbops.cross_entropy(x[0].T, t[0], label_smoothing=0.2)
            nbops.nll_loss(x, t, weight=w, reduction="sum")
            nbops.mse_loss(x, p, weight=p + 1)
            nbops.binary_cross_entropy(p, p, weight=w[None, :, None])
            nbops.binary_cross_entropy_with_logits(x, p, pos_weight=np.ones(5, np.float32))
            y = x.copy()
            nbops.dropout(y, 0.5, rng=1, inplace=True)
            nbops.dropout_mask((3, 4), 0.5, rng=1)
            nbops.dropout2d(x[..., None], 0.5, rng=1)
            nbops.batch_norm(x, np.zeros(3), np.ones(3), training=True, momentum=0.2)
        ours = [c for c in compiled if c.startswith("nbops")]
        print(len(ours), "__main__.probe" in compiled, sorted(set(ours))[:5])
    """
    first = run_py(code, timeout=900)
    assert first.split()[1] == "True", first  # the listener sees compilations
    second = run_py(code, timeout=300)
    assert second.split()[:2] == ["0", "True"], second
