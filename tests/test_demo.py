"""``python -m nbops``: the main demo runs, without PyTorch when asked, in a subprocess."""

import re
import subprocess
import sys

import pytest

TIMEOUT = 300  # a cold cache compiles a few kernels; warm runs take seconds


def run(code_or_args, module=True):
    cmd = [sys.executable, "-m", "nbops", *code_or_args] if module else \
        [sys.executable, "-c", code_or_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_help_documents_options():
    out = run(["--help"])
    for opt in ("--seed", "--samples", "--batch", "--repeat", "--no-timing", "--no-torch",
                "--tour"):
        assert opt in out


def test_demo_without_torch():
    # run the module in a process that checks torch was never imported
    code = ("import sys, runpy; sys.argv = ['nbops', '--no-torch', '--repeat', '1', "
            "'--samples', '500']; runpy.run_module('nbops', run_name='__main__'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    out = run(code, module=False)
    assert "<All keys matched successfully>" in out
    m = re.search(r"loss (\d+\.\d+), accuracy (\d+\.\d+)%", out)
    assert m and float(m.group(1)) < 0.2 and float(m.group(2)) > 95
    for op in ("linear 1", "batch_norm", "relu", "linear 2", "cross_entropy", "whole model"):
        assert op in out
    assert "PyTorch" not in out.split("per-op time")[1].splitlines()[1]


def test_demo_default_with_torch_column():
    pytest.importorskip("torch")
    out = run(["--repeat", "1", "--samples", "300"])
    assert "max |logits difference|" in out
    header = out.split("per-op time")[1].splitlines()[1]
    assert "PyTorch" in header


def test_tour_still_available():
    out = run(["--tour", "--no-timing"])
    assert "inside @njit" in out and "softsign" in out


def test_train_from_scratch_then_evaluate(tmp_path):
    # the whole default run: must reach the shipped PyTorch-trained checkpoint's accuracy
    shipped = re.search(r"accuracy (\d+\.\d+)%", run(["--no-timing"]))
    ckpt = str(tmp_path / "mlp.npz")
    code = ("import sys, runpy; sys.argv = ['nbops', 'train', '--out', " + repr(ckpt) + "]; "
            "runpy.run_module('nbops', run_name='__main__'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    out = run(code, module=False)
    assert "epoch  30/30" in out and "samples/s" in out
    trained = re.search(r"test loss (\d+\.\d+), accuracy (\d+\.\d+)%", out)
    assert trained and float(trained.group(2)) >= float(shipped.group(1)) - 0.5
    out = run(["--checkpoint", ckpt, "--no-timing"])
    assert "<All keys matched successfully>" in out
    evaluated = re.search(r"accuracy (\d+\.\d+)%", out)
    assert abs(float(evaluated.group(1)) - float(trained.group(2))) < 0.01
