"""The worker processes of a DataLoader with num_workers > 0.

Each worker holds a copy of the dataset and a fetcher. The main process sends it tasks down its
own pipe, (task number, indices); the worker answers on the shared result queue with
(task number, batch). Batches travel pickled; tensors travel as their NumPy arrays (see
_reduce_tensor), so a dataset should return CPU tensors: CUDA does not survive fork, in
PyTorch either.
"""
import os
import pickle
import random
import sys
import traceback
from multiprocessing.reduction import ForkingPickler

import numpy as np

from ...backend import get_backend
from ...random import manual_seed
from ...tensor import Tensor
from ...nn.parameter import Parameter
from .fetch import create_fetcher

STATUS_CHECK_INTERVAL = 1.0  # seconds between checks that the other side is still alive


class WorkerInfo:
    """What get_worker_info() returns inside a worker: id, num_workers, seed and the worker's dataset copy."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __setattr__(self, name, value):
        raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


_worker_info = None


def get_worker_info():
    """In a DataLoader worker process: its WorkerInfo. In the main process: None.
    An IterableDataset reads it in __iter__ to give each worker its own share of the stream."""
    return _worker_info


class WorkerDone:
    """A worker's answer when its copy of an IterableDataset has no more samples."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class ResumeIteration:
    """Sent to persistent workers at the start of an epoch: start the dataset's stream anew and say so."""


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process and raised there with the worker's traceback."""

    def __init__(self, where):
        exc_type, exc_value, _ = sys.exc_info()
        try:  # it travels pickled: an exception class defined inside a function can't, so it arrives as RuntimeError
            pickle.dumps(exc_type)
        except Exception:
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.message = "".join(traceback.format_exception(exc_type, exc_value, exc_value.__traceback__))
        self.where = where

    def reraise(self):
        message = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.message}"
        if self.exc_type is KeyError:  # KeyError would print the message as a repr, escapes and all
            message = _KeyErrorMessage(message)
        try:
            exception = self.exc_type(message)
        except Exception:  # an exception type that needs other arguments
            raise RuntimeError(message) from None
        raise exception


class _KeyErrorMessage(str):
    def __repr__(self):
        return self


# --- tensors across processes ------------------------------------------------------------------------------------
def _rebuild_tensor(array, device, requires_grad):
    backend = get_backend(device)
    return Tensor._make(backend.asarray(array), device, requires_grad=requires_grad)


def _rebuild_parameter(array, device, requires_grad):
    return Parameter(_rebuild_tensor(array, device, False), requires_grad=requires_grad)


def _reduce_tensor(tensor):
    if tensor.requires_grad and not tensor.is_leaf:
        raise RuntimeError("cannot send a tensor that requires grad and is not a leaf to another process: autograd "
                           "does not cross process boundaries; send tensor.detach() to send its values")
    rebuild = _rebuild_parameter if isinstance(tensor, Parameter) else _rebuild_tensor
    return rebuild, (tensor.backend.to_numpy(tensor.array), tensor.device, tensor.requires_grad)


# the pickler of multiprocessing's queues and of spawned processes' arguments (PyTorch registers its tensors the same way)
ForkingPickler.register(Tensor, _reduce_tensor)
ForkingPickler.register(Parameter, _reduce_tensor)


def _pickled(result, worker_id):
    """The result as bytes, pickled here rather than by the queue's feeder thread: a batch that can't be
    pickled then reaches the main process as an error, instead of being dropped while the main process waits."""
    try:
        return bytes(ForkingPickler.dumps(result))
    except Exception:
        return bytes(ForkingPickler.dumps(ExceptionWrapper(f"in DataLoader worker process {worker_id}")))


# --- the worker's loop -------------------------------------------------------------------------------------------
def _seed_worker(seed, worker_id, base_seed):
    """Seed every generator a dataset may use, differently in each worker (else all workers draw the same)."""
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def worker_loop(dataset, iterable, task_pipe, result_queue, done_event, auto_collation, collate_fn, drop_last,
                base_seed, worker_init_fn, worker_id, num_workers):
    global _worker_info
    try:
        seed = base_seed + worker_id
        _seed_worker(seed, worker_id, base_seed)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error = None
        try:
            if worker_init_fn is not None:
                worker_init_fn(worker_id)
            fetcher = create_fetcher(dataset, iterable, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")  # answers the first task
        stream_ended = False
        parent = os.getppid()
        while os.getppid() == parent:  # a worker whose main process died exits instead of waiting forever
            if not task_pipe.poll(STATUS_CHECK_INTERVAL):
                if done_event.is_set():
                    break  # the main process is shutting down (its word to stop may not come)
                continue
            try:
                task = task_pipe.recv()
            except EOFError:  # the main process closed its end
                break
            if isinstance(task, ResumeIteration):
                result_queue.put((task, None))
                stream_ended = False
                fetcher = create_fetcher(dataset, iterable, auto_collation, collate_fn, drop_last)
                continue
            if task is None:  # shut down
                break
            if done_event.is_set() or stream_ended:
                continue  # tasks sent before the main process learned the stream ended: they get no answer
            task_number, index = task
            if init_error is not None:
                result, init_error = init_error, None
            else:
                try:
                    result = fetcher.fetch(index)
                except StopIteration:
                    if not iterable:
                        result = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
                    else:
                        result, stream_ended = WorkerDone(worker_id), True
                except Exception:
                    result = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            result_queue.put((task_number, _pickled(result, worker_id)))
            del result, task, index  # don't hold the last batch's memory while waiting for the next task
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C; the worker only has to stop
    if done_event.is_set():
        # nobody will read what is still in the pipe: don't wait for it to drain on exit
        result_queue.cancel_join_thread()
        result_queue.close()
