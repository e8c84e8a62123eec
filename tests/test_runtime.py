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
        from nbops import _elementwise, activations
        assert "numba.cuda" not in sys.modules
        assert not _elementwise.map_serial.overloads
        assert not _elementwise.map_parallel.overloads
        assert not activations._prelu_serial.overloads
        print("ok")
    """)
    assert out.strip() == "ok"


def test_second_process_loads_from_cache(tmp_path):
    code = """
        import numpy as np, nbops
        from nbops._elementwise import map_serial
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
    """, {"NBOPS_CACHE_DIR": str(tmp_path)}, script=tmp_path / "workers.py")
    assert out.strip() == "True"


def test_thread_count_does_not_change_results(tmp_path):
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
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    one = run_py(code, dict(env, NUMBA_NUM_THREADS="1"))
    two = run_py(code, dict(env, NUMBA_NUM_THREADS="2"))
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
        from nbops._elementwise import map_serial, map_parallel
        nbops.warmup(ops=["relu", "sigmoid"], dtypes=["float32"], verbose=True)
        stats = [map_serial.stats, map_parallel.stats]
        print(sum(sum(s.cache_hits.values()) for s in stats),
              sum(sum(s.cache_misses.values()) for s in stats))
    """
    env = {"NBOPS_CACHE_DIR": str(tmp_path)}
    assert run_py(code, env).split() == ["0", "4"]
    assert run_py(code, env).split() == ["4", "0"]


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
