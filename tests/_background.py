"""Long subprocess tests that run beside the rest of the suite.

A test marked ``@pytest.mark.background(args, env=..., timeout=...)`` runs
``python <args>`` in a subprocess (the CUDA simulator run of ``tests/cuda``, the
PTX check, the GPU-check smoke run: minutes each, nearly all of it one core
compiling or simulating). The whole suite is single-threaded too, so on a
two-core machine these subprocesses are started as soon as collection is over,
one after another on a background thread, while this process runs the other
tests; the marked tests are moved to the end of the run, and each waits for its
own subprocess. A job that has not started by the time its test is reached is
run by the test itself, and while a test waits, this process runs the queue's
last pending jobs (the background thread takes them from the front).

The test receives a ``subprocess.CompletedProcess``-like result (``returncode``,
``stdout`` with stderr merged into it, ``seconds``).

The jobs get a kernel cache folder of their own (``NBOPS_CACHE_DIR``, one for all
of them, removed at exit): Numba rewrites a function's cache index whole, so two
processes adding entries to one index at the same moment can lose one, and the
main process's cache tests (a second process must load every kernel) would fail
now and then.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    returncode: int
    stdout: str
    seconds: float


@dataclass
class Job:
    args: list
    env: dict
    timeout: float
    state: str = "pending"            # pending, running, done, cancelled
    result: Result = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self):
        environ = dict(os.environ)
        environ.pop("NUMBA_ENABLE_CUDASIM", None)
        environ["NBOPS_CACHE_DIR"] = _private_cache()
        environ.update(self.env)
        start = time.perf_counter()
        # Output to a file, not a pipe: nobody reads the pipe while the job runs.
        with tempfile.TemporaryFile("w+") as log:
            process = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env=environ,
                                       stdout=log, stderr=subprocess.STDOUT, text=True)
            with _lock:
                _running.add(process)
                if _stopped:
                    process.kill()
            try:
                code = process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -9
                print(f"\n[killed after {self.timeout} s]", file=log)
            finally:
                _running.discard(process)
            log.seek(0)
            output = log.read()
        self.result = Result(code, output, time.perf_counter() - start)
        self.state = "done"
        self.done.set()


_jobs = {}                             # test node id -> Job, in the order of the run
_lock = threading.Lock()
_running = set()                       # the subprocesses running now
_stopped = []                          # not empty once the session is over
_cache_dir = []


def _private_cache():
    with _lock:
        if not _cache_dir:
            _cache_dir.append(tempfile.mkdtemp(prefix="nbops-background-cache-"))
            atexit.register(shutil.rmtree, _cache_dir[0], ignore_errors=True)
    return _cache_dir[0]


def _claim(jobs):
    with _lock:
        for job in jobs:
            if job.state == "pending":
                job.state = "running"
                return job
    return None


def _claim_next():
    return _claim(list(_jobs.values()))


def _worker():
    while (job := _claim_next()) is not None:
        job.run()


def _runs(item):
    """Whether the item will run its job (not skipped by a ``skipif`` that holds)."""
    for mark in item.iter_markers("skipif"):
        if mark.args and mark.args[0] is True:
            return False
    return not any(True for _ in item.iter_markers("skip"))


def schedule(items):
    """Move the marked tests to the end of ``items``; return their jobs to start."""
    marked = [item for item in items if item.get_closest_marker("background")]
    for item in marked:
        items.remove(item)
        items.append(item)
        if _runs(item):
            mark = item.get_closest_marker("background")
            _jobs[item.nodeid] = Job(list(mark.args[0]), dict(mark.kwargs.get("env", {})),
                                     mark.kwargs.get("timeout", 1200))


def start():
    """Start the background thread (after collection)."""
    if _jobs:
        threading.Thread(target=_worker, name="nbops-background-tests", daemon=True).start()


def stop():
    """At the end of the session (``-x``, an interrupt): start no more jobs and kill
    the running ones, so that no subprocess outlives the run."""
    with _lock:
        _stopped.append(True)
        for job in _jobs.values():
            if job.state == "pending":
                job.state = "cancelled"
        for process in _running:
            process.kill()


def result(item):
    """The finished job of a marked test. Runs it here if nobody has started it yet;
    while the background thread runs it, runs the queue's last pending jobs here
    (the thread takes them from the front), then waits."""
    mark = item.get_closest_marker("background")
    with _lock:
        job = _jobs.setdefault(item.nodeid, Job(list(mark.args[0]),
                                                dict(mark.kwargs.get("env", {})),
                                                mark.kwargs.get("timeout", 1200)))
    while not job.done.is_set():
        other = _claim([job] + list(reversed(_jobs.values())))
        if other is None:
            job.done.wait()
        else:
            other.run()
    return job.result
