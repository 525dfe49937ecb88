import numpy as np
import pytest

from tinygrad_tx import openblas


def thread_count():
    return openblas._thread_controls()[1]()


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
