import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_tx import openblas


def thread_count():
    return openblas._thread_controls()[1]()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_controls = pytest.mark.skipif(not openblas.can_limit_threads(), reason="NumPy's BLAS here is not OpenBLAS")


@needs_controls
def test_one_thread_holds_openblas_to_one_thread_and_restores_its_count():
    before = thread_count()
    with openblas.one_thread():
        assert thread_count() == 1
        a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
        np.testing.assert_allclose(a @ a.T, a.astype(np.float64) @ a.T.astype(np.float64), rtol=1e-6)
    assert thread_count() == before


@needs_controls
def test_one_thread_restores_the_count_after_an_error():
    before = thread_count()
    with pytest.raises(RuntimeError, match="inside"):
        with openblas.one_thread():
            raise RuntimeError("inside")
    assert thread_count() == before


def test_one_thread_without_openblas_changes_nothing(monkeypatch):
    monkeypatch.setattr(openblas, "_controls", [None])
    assert not openblas.can_limit_threads()
    with openblas.one_thread():
        pass


CPU_WHILE_IDLE = """
import time
import numpy as np
import tinygrad_tx  # after NumPy, as most scripts import them
from tinygrad_tx import openblas
a = np.ones((512, 512), dtype=np.float32)
a @ a  # OpenBLAS's threads start, with the timeout they read
a @ a
began = time.process_time()
time.sleep(0.3)  # spinning threads would burn about 0.1 s of CPU here
print(openblas.threads_sleep(), time.process_time() - began)
"""


@needs_controls
def test_threads_sleep_after_a_product_where_numpy_was_imported_first():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", CPU_WHILE_IDLE], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stdout.split()
    assert out[0] == "True"
    assert float(out[1]) < 0.03
