"""The background-subprocess tests' machinery (tests/_background.py)."""

import sys

import pytest


@pytest.mark.background(["-c", "import os, sys; print('cache', os.environ['NBOPS_CACHE_DIR']);"
                         " print('sim', os.environ.get('NUMBA_ENABLE_CUDASIM'));"
                         " print('oops', file=sys.stderr); sys.exit(3)"],
                        env={"NUMBA_ENABLE_CUDASIM": "1"})
def test_background_job_result(background):
    out = background.stdout.splitlines()
    assert background.returncode == 3
    assert out[0].startswith("cache ") and "nbops-background-cache-" in out[0]
    assert out[1:] == ["sim 1", "oops"]
    assert background.seconds > 0


@pytest.mark.background(["-c", "import time; time.sleep(5)"], timeout=0.5)
def test_background_job_timeout(background):
    assert background.returncode == -9
    assert "killed after 0.5 s" in background.stdout
    assert background.seconds < 4


def test_background_tests_run_last(request):
    names = [item.name for item in request.session.items]
    marked = [i for i, item in enumerate(request.session.items)
              if item.get_closest_marker("background")]
    assert marked == list(range(len(names) - len(marked), len(names))), names
    assert sys.modules["_background"]._jobs  # started at collection
