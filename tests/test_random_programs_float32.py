"""The random programs in float32 against torch's float32 (tests/random_programs_float32.py says how they are
judged). The default run checks 500 first-order and 100 second-order programs; `pytest --long` 8,000 and 2,000.

    python tests/random_programs_float32.py 1234     # reproduce one
"""
import pytest

from random_programs import one_thread, parametrize_seed_batches
from random_programs_float32 import check

PROGRAMS = {False: 500, True: 100}
LONG_PROGRAMS = {False: 8_000, True: 2_000}


def pytest_generate_tests(metafunc):
    # seeds past the float64 run's, so these are new programs
    parametrize_seed_batches(metafunc, PROGRAMS, LONG_PROGRAMS, first_seed=100_000)


def _check_all(seeds, second_order):
    with one_thread():
        reports = [report for report in (check(seed, second_order) for seed in seeds) if report is not None]
    if reports:
        pytest.fail(f"{len(reports)} of {len(seeds)} float32 programs differ from torch:\n" + "\n\n".join(reports[:3]),
                    pytrace=False)


def test_random_programs_match_torch_in_float32(seeds):
    _check_all(seeds, second_order=False)


def test_random_programs_match_torch_in_float32_second_order(seeds):
    _check_all(seeds, second_order=True)
