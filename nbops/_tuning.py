"""Measured inputs of the serial/parallel choice (:mod:`nbops._launch`).

Placeholder until ``python tools/tune_threads.py`` writes the measured table.
"""

#: Threads of the run that measured the figures below.
THREADS = 2
#: Extra time of a parallel launch over a serial call, in ns (pool wake-up + join).
LAUNCH_NS = 5000.0
#: Parallel speed-up per thread on work well above the launch cost.
EFFICIENCY = 0.8
#: Serial cost per element (ns) of kernels not in ``COST_NS``.
DEFAULT_COST_NS = 0.2
#: Serial cost per element (ns) by kernel label and dtype.
COST_NS = {}
#: Measured crossover (elements) where the parallel kernel started to win, or
#: None where it never did up to the largest size measured (for reference).
CROSSOVER = {}
