"""machine_load.py — what the benchmark drivers (vs_pytorch.py,
epoch_vs_pytorch.py) share: the thread variables every child gets, and how
they tell whether other work shares the cores.

The load average cannot tell: it still counts a benchmark's own previous
child for a minute.  So the start check measures the cores busy over a few
seconds, and each measurement the machine's busy CPU time minus the
measured child's own.
"""
import os
import resource
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Busy cores per core at the start above which a run is refused (or, with
# --allow-loaded, kept and marked invalid).
LOAD_LIMIT_PER_CORE = 0.25
# Other work during a measurement, in cores, above which the run is invalid.
FOREIGN_LIMIT_CORES = 0.25


def thread_env(th):
    """Every thread count a child can read set to th: torch.set_num_threads
    alone does not reach the system BLAS that Debian's PyTorch calls, which
    otherwise starts one thread per core of its own."""
    return {k: str(th) for k in THREAD_VARS}


def busy_seconds():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def busy_now(seconds=3.0):
    """Cores busy over the next few seconds (this process sleeps meanwhile)."""
    b0 = busy_seconds()
    time.sleep(seconds)
    b1 = busy_seconds()
    return None if b0 is None or b1 is None else (b1 - b0) / seconds


def children_seconds():
    """CPU seconds of this process's finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
