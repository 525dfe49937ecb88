"""DataLoader: batches from a dataset, in the main process or in worker processes, with PyTorch's semantics.

The pieces, in the order a batch meets them:
  sampler        the order of a map-style dataset's indices (SequentialSampler, or RandomSampler for
                 shuffle=True); an IterableDataset has none, its own iteration is the order
  batch_sampler  groups the indices into lists of batch_size (BatchSampler); batch_size=None turns
                 batching off and the loader yields single samples
  fetcher        reads the samples of one list of indices and calls collate_fn on them
  collate_fn     default_collate stacks them into tensors (default_convert when batching is off)

With num_workers > 0 the fetching runs in that many worker processes (multiprocessing, the platform's
default start method unless multiprocessing_context says otherwise). Batches are handed out round-robin
and come back in the sampler's order; each worker keeps prefetch_factor batches in flight. With an
IterableDataset every worker iterates its own copy, so the batches of worker 0, 1, 0, 1... interleave.

pin_memory=True copies batches to page-locked memory when a CUDA device is present; without one it
warns and loads normally (see pin_memory.py).
"""
import itertools
import math
import multiprocessing
import pickle
import queue
import time

from ...generator import random_seed
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .fetch import create_fetcher
from .pin_memory import pin_memory, pinning_available
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from .worker import (STATUS_CHECK_INTERVAL, ExceptionWrapper, ResumeIteration, WorkerDone, get_worker_info,
                     worker_loop)

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]


class _InfiniteConstantSampler(Sampler):
    """The 'indices' of an IterableDataset: placeholders, as many as asked for (the stream decides when to end)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    _FIXED_AFTER_INIT = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")
    _initialized = False

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            # a stream has no indices to shuffle or sample
            for name, value in (("shuffle", shuffle if shuffle not in (False, None) else None), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):
                if value is not None:
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                     f"but got {name}={value}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")

        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterator = None  # the live iterator, kept across epochs when persistent_workers
        self._initialized = True

    def __setattr__(self, name, value):
        if self._initialized and name in self._FIXED_AFTER_INIT:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        """What the iterator walks: lists of indices when batching, single indices otherwise."""
        return self.batch_sampler if self._auto_collation else self.sampler

    @property
    def multiprocessing_context(self):
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context):
        if isinstance(context, str):
            context = multiprocessing.get_context(context)
        self._multiprocessing_context = context

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIterator(self)
        if not self.persistent_workers:
            return _MultiProcessIterator(self)
        if self._iterator is None:
            self._iterator = _MultiProcessIterator(self)
        else:
            self._iterator._reset(self)
        return self._iterator

    def __len__(self):
        if not self._iterable:
            return len(self._index_sampler)
        length = len(self.dataset)  # a stream's length is what its __len__ says, if it has one
        if self.batch_size is not None:
            length = length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return length


class _BaseIterator:
    def __init__(self, loader):
        self._dataset = loader.dataset
        self._iterable = loader._iterable
        self._auto_collation = loader._auto_collation
        self._drop_last = loader.drop_last
        self._index_sampler = loader._index_sampler
        self._collate_fn = loader.collate_fn
        self._pin_memory = pinning_available(loader.pin_memory)
        self._reset(loader)

    def _reset(self, loader):
        self._sampler_iter = iter(self._index_sampler)
        # drawn every epoch, with or without workers, so that the shuffled order doesn't depend on num_workers
        self._base_seed = random_seed(loader.generator)

    def __iter__(self):
        return self

    def __next__(self):
        data = self._next_data()
        return pin_memory(data) if self._pin_memory else data

    def __len__(self):
        return len(self._index_sampler)


class _SingleProcessIterator(_BaseIterator):
    def __init__(self, loader):
        super().__init__(loader)
        self._fetcher = create_fetcher(self._dataset, self._iterable, self._auto_collation, self._collate_fn,
                                       self._drop_last)

    def _next_data(self):
        return self._fetcher.fetch(next(self._sampler_iter))  # either one raises StopIteration at the end


class _MultiProcessIterator(_BaseIterator):
    """Keeps prefetch_factor * num_workers tasks in flight and hands out their batches in task order.

    _task_info maps each task number sent but not yet handed out to (worker_id,), or to
    (worker_id, batch) once the batch arrived ahead of its turn."""

    def __init__(self, loader):
        self._shutdown = True  # nothing to shut down until the workers exist
        super().__init__(loader)
        self._num_workers = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._in_order = loader.in_order
        self._persistent = loader.persistent_workers
        context = loader.multiprocessing_context or multiprocessing.get_context()
        self._result_queue = context.Queue()
        self._done_event = context.Event()
        # tasks go down a pipe per worker, written synchronously: a Queue's feeder thread may already be
        # gone when a garbage-collected iterator sends its workers the word to stop
        self._task_pipes, self._workers = [], []
        self._shutdown = False
        for worker_id in range(self._num_workers):
            task_reader, task_writer = context.Pipe(duplex=False)
            worker = context.Process(
                target=worker_loop, daemon=True,
                args=(self._dataset, self._iterable, task_reader, self._result_queue, self._done_event,
                      self._auto_collation, self._collate_fn, self._drop_last, self._base_seed,
                      loader.worker_init_fn, worker_id, self._num_workers))
            worker.start()
            task_reader.close()  # the worker's end
            self._task_pipes.append(task_writer)
            self._workers.append(worker)
        self._start_epoch(first=True)

    def _reset(self, loader):
        super()._reset(loader)
        if hasattr(self, "_workers"):  # a persistent iterator starting its next epoch
            self._start_epoch(first=False)

    def _start_epoch(self, first):
        self._send_index = 0  # the next task number to send
        self._receive_index = 0  # the next task number to hand out
        self._task_info = {}
        self._worker_active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first:
            # results of the last epoch's unfinished tasks arrive before each worker's acknowledgement: drop them
            for pipe in self._task_pipes:
                pipe.send(ResumeIteration())
            resumed = 0
            while resumed < self._num_workers:
                task_number, _ = self._get_data()
                resumed += isinstance(task_number, ResumeIteration)
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_put_index(self):
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):  # the next worker, round-robin, whose stream has not ended
            worker_id = next(self._worker_cycle)
            if self._worker_active[worker_id]:
                break
        else:
            return
        try:
            self._task_pipes[worker_id].send((self._send_index, index))
        except OSError:  # the worker died; _get_data reports it
            pass
        self._task_info[self._send_index] = (worker_id,)
        self._send_index += 1

    def _get_data(self):
        """The next (task number, result) from any worker; raises if a worker died or the timeout passed."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = STATUS_CHECK_INTERVAL if deadline is None else min(STATUS_CHECK_INTERVAL, deadline - time.monotonic())
            try:
                return self._result_queue.get(timeout=max(wait, 0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
                dead = [str(w.pid) for w, active in zip(self._workers, self._worker_active)
                        if active and not w.is_alive()]
                if dead:
                    self._shutdown_workers()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(dead)}) exited unexpectedly") from None

    def _next_data(self):
        while True:
            # skip the tasks that will never be answered: those sent to a worker whose stream ended
            while self._receive_index < self._send_index:
                info = self._task_info.get(self._receive_index)
                if info is not None and (len(info) == 2 or self._worker_active[info[0]]):
                    break
                self._task_info.pop(self._receive_index, None)
                self._receive_index += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            if len(self._task_info[self._receive_index]) == 2:  # it arrived earlier, out of turn
                return self._hand_out(self._task_info.pop(self._receive_index)[1])

            task_number, payload = self._get_data()
            # a batch from our own worker process (what multiprocessing's pipes carry anyway), never a file
            result = pickle.loads(payload)
            if isinstance(result, WorkerDone):
                self._worker_active[result.worker_id] = False
                if not self._persistent:
                    self._task_pipes[result.worker_id].send(None)  # this worker has nothing more to do
                self._try_put_index()
                continue
            if task_number == self._receive_index:
                del self._task_info[task_number]
                return self._hand_out(result)
            if not self._in_order:  # hand it out now; the loop above skips its number when its turn comes
                del self._task_info[task_number]
                self._try_put_index()
                return self._raise_or_return(result)
            self._task_info[task_number] += (result,)  # early: keep it until its turn

    def _hand_out(self, result):
        self._receive_index += 1
        self._try_put_index()
        return self._raise_or_return(result)

    @staticmethod
    def _raise_or_return(result):
        if isinstance(result, ExceptionWrapper):
            result.reraise()
        return result

    def _shutdown_workers(self):
        if self._shutdown:
            return
        self._shutdown = True
        try:
            self._done_event.set()
            for pipe in self._task_pipes:
                try:
                    pipe.send(None)
                except OSError:  # that worker is gone already
                    pass
            for worker in self._workers:
                worker.join(timeout=5 * STATUS_CHECK_INTERVAL)
            for pipe in self._task_pipes:
                pipe.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()
        finally:
            for worker in self._workers:
                if worker.is_alive():  # stuck in a dataset's __getitem__: it won't finish on its own
                    worker.terminate()

    def __del__(self):
        self._shutdown_workers()
