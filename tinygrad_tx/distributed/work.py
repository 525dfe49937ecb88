"""Work: a collective in flight, as torch.distributed's (what `async_op=True` returns).

A collective starts at once and returns; `wait()` blocks until it has finished and its results are in
place, `is_completed()` asks without blocking. Waiting polls rather than blocks inside the library, so
that it can give up: when a rank has died (the watchdog noticed) or when the group's timeout has passed,
it raises an error that says so instead of waiting forever. Polling also drives MPI's progress: MPICH
moves a non-blocking collective forward only while some MPI call is running.
"""
import time

from .errors import DistBackendError, RankFailure


class Work:
    def __init__(self, op_name, group, poll, finish=None):
        self.op_name = op_name
        self._group = group
        self._poll = poll  # () -> True once the transfer is done
        self._finish = finish  # () -> the result: copies it into place, once
        self._done = False
        self.result = None

    def is_completed(self):
        if not self._done and self._poll():
            self._complete()
        return self._done

    def wait(self, timeout=None):
        """Block until the collective has finished; raise if a rank died or the timeout passed."""
        if self._done:
            return True
        timeout_s = self._group.timeout_s if timeout is None else _seconds(timeout)
        deadline = time.monotonic() + timeout_s
        pause = 1e-5
        while not self._poll():
            try:
                self._group.watchdog.check(self.op_name)
            except RankFailure as failure:
                self._group.abort(str(failure))
                raise
            if time.monotonic() > deadline:
                message = (f"{self.op_name} on rank {self._group.rank} did not finish within {timeout_s:g} s: "
                           f"another of the {self._group.world_size} ranks is stuck, or slower than the timeout "
                           "(raise it with init_process_group(timeout=...))")
                self._group.abort(message)
                raise DistBackendError(message)
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)  # a fast collective is noticed fast; a long one costs little CPU
        self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self.result = self._finish()

    def get_future(self):
        raise NotImplementedError("Work.get_future: futures are not supported; call wait()")


def completed(op_name, group, result=None):
    """A Work with nothing left to do (a collective over one rank)."""
    work = Work(op_name, group, lambda: True)
    work._done, work.result = True, result
    return work


def _seconds(timeout):
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
