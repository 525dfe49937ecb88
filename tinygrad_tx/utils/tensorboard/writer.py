"""SummaryWriter: training curves and distributions for TensorBoard, as torch.utils.tensorboard writes them.

    with SummaryWriter() as writer:            # runs/<Mon><day>_<hh-mm-ss>_<host>, as PyTorch
        for step in range(steps):
            writer.add_scalar("loss/train", loss, step)    # a 0-d Tensor or a number
        writer.add_histogram("weights/fc", model.fc.weight, step)

then `tensorboard --logdir runs`. Events go through tensorboard's own EventFileWriter, which queues
them and writes from a thread: up to max_queue events or flush_secs seconds may sit in memory until
flush() or close().
"""
import os
import socket
import time
from datetime import datetime

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from . import summary


class FileWriter:
    """One event file in one directory; turns summaries into timestamped events."""

    def __init__(self, log_dir, max_queue=10, flush_secs=120, filename_suffix=""):
        self.event_writer = EventFileWriter(str(log_dir), max_queue, flush_secs, filename_suffix)

    def get_logdir(self):
        return self.event_writer.get_logdir()

    def add_event(self, event, step=None, walltime=None):
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.event_writer.add_event(event)

    def add_summary(self, summary_proto, global_step=None, walltime=None):
        self.add_event(Event(summary=summary_proto), global_step, walltime)

    def flush(self):
        self.event_writer.flush()

    def close(self):
        self.event_writer.close()


class SummaryWriter:
    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120, filename_suffix=""):
        """log_dir: where the event file goes; by default runs/<date>_<host><comment>.
        purge_step: TensorBoard drops the events of an earlier run in this directory from this step on
        (for a run resumed after a crash)."""
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()

    def _new_file_writer(self, log_dir):
        return FileWriter(log_dir, self.max_queue, self.flush_secs, self.filename_suffix)

    def _get_file_writer(self):
        """The main event file, opened again if the writer was closed."""
        if self.all_writers is None:
            self.file_writer = self._new_file_writer(self.log_dir)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                self.file_writer.add_event(Event(file_version="brain.Event:2"), step=self.purge_step)
                self.file_writer.add_event(Event(session_log=SessionLog(status=SessionLog.START)),
                                           step=self.purge_step)
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False, double_precision=False):
        self._get_file_writer().add_summary(summary.scalar(tag, scalar_value, new_style, double_precision),
                                            global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several curves in one chart: each key gets its own run, the directory <log_dir>/<main_tag>_<key>,
        and all of them use the tag main_tag."""
        log_dir = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            run_dir = os.path.join(log_dir, main_tag.replace("/", "_") + "_" + tag)
            if run_dir not in self.all_writers:
                self.all_writers[run_dir] = self._new_file_writer(run_dir)
            self.all_writers[run_dir].add_summary(summary.scalar(main_tag, value), global_step, walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        self._get_file_writer().add_summary(summary.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        self._get_file_writer().add_summary(summary.text(tag, text_string), global_step, walltime)

    def add_hparams(self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None, global_step=None):
        """One run's hyperparameters and final metrics, for the HPARAMS tab, in the run <log_dir>/<run_name>
        (the current time by default); the metrics are also written there as scalars."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        summaries = summary.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        run_dir = os.path.join(self._get_file_writer().get_logdir(), run_name or str(time.time()))
        with SummaryWriter(log_dir=run_dir) as run_writer:
            for summary_proto in summaries:
                run_writer.file_writer.add_summary(summary_proto, global_step)
            for name, value in metric_dict.items():
                run_writer.add_scalar(name, value, global_step)

    def flush(self):
        """Write every queued event to disk now."""
        for writer in (self.all_writers or {}).values():
            writer.flush()

    def close(self):
        if self.all_writers is None:
            return  # closed already
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()
