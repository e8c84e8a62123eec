"""Time first writes to freshly allocated memory, back to back and after pauses.

On some virtual machines the large allocating calls of the performance table
(1e7 float32 outputs, 40 MB) swing between about 3 ms and 45 ms while their
``out=`` form stays at 1.5 to 2 ms. This script isolates the allocation: it
times ``np.empty(n, dtype).fill(1)`` (one pass of fresh writes, as a kernel's
output) in rounds separated by pauses, with NumPy's transparent-huge-page
advice on (its default from 4 MiB up) and off, and prints what the machine
says about its memory balloon::

    python tools/measure_fresh_memory.py
    python tools/measure_fresh_memory.py --elements 1e7 --pauses 0 0.5 3 --rounds 8

Reading the output: if the times grow with the pause only when huge pages are
on, freed 2 MiB blocks are being handed back to the host between calls
(virtio-balloon "free page reporting" reports free blocks of 2 MiB and up
about two seconds after they are freed) and each reuse faults them in from
the host again. PyTorch's allocator asks for no huge pages and pays 4 KiB
page faults on every call instead. The figures and what they mean for the
table are in docs/guides/performance.rst ("Reading the table").
"""

import argparse
import os
import time

import numpy as np


def _balloon_features():
    """Return the feature bits of the virtio balloon device, or None."""
    root = "/sys/bus/virtio/devices"
    if not os.path.isdir(root):
        return None
    for name in sorted(os.listdir(root)):
        try:
            with open(os.path.join(root, name, "device")) as f:
                if f.read().strip() != "0x0005":  # virtio device id 5: balloon
                    continue
            with open(os.path.join(root, name, "features")) as f:
                bits = f.read().strip()
        except OSError:
            continue
        return [i for i, c in enumerate(bits) if c == "1"]
    return None


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _set_huge_pages(enabled):
    """Switch NumPy's huge-page advice (process-wide; for this experiment only)."""
    from numpy._core.multiarray import _set_madvise_hugepage

    return _set_madvise_hugepage(enabled)


def time_fresh_writes(n, dtype, pause, rounds):
    """Milliseconds of ``np.empty(n).fill(1)`` per round, each after ``pause`` seconds."""
    times = []
    for _ in range(rounds):
        time.sleep(pause)
        start = time.perf_counter()
        a = np.empty(n, dtype)
        a.fill(1)
        times.append((time.perf_counter() - start) * 1e3)
        del a
    return times


def time_torch_fresh_writes(n, dtype, pause, rounds):
    """The same for ``torch.empty(n).fill_(1)`` (PyTorch's allocator), in ms."""
    import torch

    tdtype = getattr(torch, np.dtype(dtype).name)
    times = []
    for _ in range(rounds):
        time.sleep(pause)
        start = time.perf_counter()
        a = torch.empty(n, dtype=tdtype)
        a.fill_(1)
        times.append((time.perf_counter() - start) * 1e3)
        del a
    return times


def _row(label, t):
    return (f"{label}: median {np.median(t):6.1f}  min {min(t):6.1f}  max {max(t):6.1f}   "
            + " ".join(f"{v:.1f}" for v in t))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=float, default=1e7)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--pauses", type=float, nargs="+", default=[0.0, 0.5, 3.0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    n = int(args.elements)
    dtype = np.dtype(args.dtype)

    features = _balloon_features()
    if features is None:
        print("virtio balloon: none found")
    else:
        # Feature bit 5 is VIRTIO_BALLOON_F_REPORTING (free page reporting).
        print(f"virtio balloon feature bits {features}; free page reporting: "
              f"{'yes' if 5 in features else 'no'}")
    thp = "/sys/kernel/mm/transparent_hugepage"
    print(f"THP enabled: {_read(thp + '/enabled')}; defrag: {_read(thp + '/defrag')}")
    print(f"load average: {os.getloadavg()}")
    print(f"{n} x {dtype} = {n * dtype.itemsize / 2**20:.0f} MiB; ms per np.empty().fill(1)")

    for huge in (True, False):
        before = _set_huge_pages(huge)
        for pause in args.pauses:
            time_fresh_writes(n, dtype, 0.0, 2)  # settle after the previous setting
            t = time_fresh_writes(n, dtype, pause, args.rounds)
            print(_row(f"numpy, huge pages {'on ' if huge else 'off'}, pause {pause:4.1f} s", t))
        _set_huge_pages(before)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
    for pause in args.pauses:
        time_torch_fresh_writes(n, dtype, 0.0, 2)
        t = time_torch_fresh_writes(n, dtype, pause, args.rounds)
        print(_row(f"torch (1 thread),          pause {pause:4.1f} s", t))


if __name__ == "__main__":
    main()
