"""Random multi-op programs on tinygrad_tx and on torch, from the same float64 inputs: every value, the
autograd flags, every gradient (first and second order) and whether an error is raised must agree.

tests/random_programs.py writes the programs (its docstring says what they cover); the tests here run
them in batches of seeds. A failing batch names every failing seed, with the first programs in full.
Reproduce one:

    python tests/random_programs.py 1234              # first-order program 1234, and how the runs differ
    python tests/random_programs.py --second 1234     # second-order program 1234
    python tests/random_programs.py --shrink 1234     # the lines that still fail the same way

The default run writes 2,000 first-order and 500 second-order programs; `pytest --long` 40,000 and 10,000.
"""
import pytest

from random_programs import check, one_thread, parametrize_seed_batches

PROGRAMS = {False: 2_000, True: 500}        # second_order -> how many programs
LONG_PROGRAMS = {False: 40_000, True: 10_000}
SHOWN = 3  # programs printed in full in a failure message


def pytest_generate_tests(metafunc):
    parametrize_seed_batches(metafunc, PROGRAMS, LONG_PROGRAMS)


def _check_all(seeds, second_order):
    with one_thread():
        reports = [report for report in (check(seed, second_order) for seed in seeds) if report is not None]
    if reports:
        summary = "\n".join(report.split("\n")[0][:300] for report in reports)
        programs = "\n\n".join(reports[:SHOWN])
        pytest.fail(f"{len(reports)} of {len(seeds)} programs differ from torch:\n{summary}\n\n"
                    f"The first {min(SHOWN, len(reports))} in full:\n{programs}", pytrace=False)


def test_random_programs_match_torch(seeds):
    _check_all(seeds, second_order=False)


def test_random_programs_match_torch_second_order(seeds):
    _check_all(seeds, second_order=True)
