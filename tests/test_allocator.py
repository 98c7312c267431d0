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
