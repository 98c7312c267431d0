"""keep_freed_memory: freed buffers are reused instead of faulted in again (glibc)."""
import platform
import subprocess
import sys

import pytest

_LOOP = """
import resource, sys
import numpy as np
from recbole_bbq.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "on" else None
np.ones(4 << 20)  # warm-up: the first 32 MB block is faulted in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a training step's pattern: the same large buffer, allocated and freed
    np.ones(4 << 20).sum()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", _LOOP, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    applied, kept = _faults("on")
    _, default = _faults("off")
    assert applied == "True"
    # glibc's default maps and unmaps each 32 MB block, so every pass faults pages in again
    # (about 500 faults per pass here); kept, the block is reused and faults almost nothing
    assert default > 20 * 100
    assert kept < default / 20


_PEAK_AFTER_KEEPING = """
import numpy as np
from recbole_bbq.allocator import keep_freed_memory
from recbole_bbq.quick_start import _peak_rss_mb, _reset_peak_memory
keep_freed_memory()
earlier = np.ones(200 << 17); earlier[::512] += 1; del earlier  # an earlier run's 200 MB, kept
_reset_peak_memory()
before = _peak_rss_mb()
ballast = np.ones(64 << 17); ballast[::512] += 1  # this run's 64 MB
print(before, _peak_rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_a_run_peak_does_not_reuse_what_an_earlier_run_freed():
    """With freed memory kept, a run's 64 MB would come from the 200 MB an earlier run left
    and not show in its peak: the per-run reset hands the kept memory back first."""
    out = subprocess.run([sys.executable, "-c", _PEAK_AFTER_KEEPING], capture_output=True,
                         text=True, check=True).stdout.split()
    before, peak = map(float, out)
    assert peak > before + 48
