"""Summary protobufs: one function per kind of value TensorBoard shows, each returning a summary_pb2.Summary.

The messages are tensorboard's own (tensorboard.compat.proto), the ones TensorFlow writes, so any
TensorBoard reads them. Values may be tinygrad_tx Tensors, NumPy arrays or Python numbers.
"""
import numpy as np
from tensorboard.compat.proto import struct_pb2
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2 as hparams_plugin_data_pb2
from tensorboard.plugins.text import metadata as text_metadata

from ...tensor import Tensor


def to_numpy(value):
    """A Tensor (on any device, with or without grad), an array or a number, as a NumPy array."""
    if isinstance(value, Tensor):
        return value.backend.to_numpy(value.detach().array)
    return np.asarray(value)


def scalar_value(value, name="scalar"):
    array = to_numpy(value)
    if array.size != 1:
        raise ValueError(f"{name} should be a single number (a 0-d tensor), got shape {array.shape}")
    return array.reshape(()).item()


def scalar(tag, value, new_style=False, double_precision=False):
    """A number. The classic form (simple_value) is what every TensorBoard reads; new_style writes it as a
    0-d tensor for the scalars plugin, in float64 when double_precision."""
    value = float(scalar_value(value))
    if not new_style:
        return Summary(value=[Summary.Value(tag=tag, simple_value=value)])
    tensor = (TensorProto(double_val=[value], dtype="DT_DOUBLE") if double_precision
              else TensorProto(float_val=[value], dtype="DT_FLOAT"))
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])


def tensorflow_bins():
    """TensorFlow's default bucket edges: +-1e-12 growing by 10% up to +-1e20, and 0."""
    positive = []
    edge = 1e-12
    while edge < 1e20:
        positive.append(edge)
        edge *= 1.1
    return [-e for e in reversed(positive)] + [0.0] + positive


def histogram(tag, values, bins="tensorflow", max_bins=None):
    """The distribution of `values` (any shape): counts per bucket, and min, max, sum, sum of squares.

    bins: "tensorflow" (the default edges above), or whatever np.histogram takes (a count, edges, "auto").
    max_bins: merge neighbouring buckets until there are at most this many."""
    values = to_numpy(values).reshape(-1).astype(np.float64)
    if values.size == 0:
        raise ValueError(f"add_histogram {tag!r}: the values are empty")
    counts, edges = np.histogram(values, bins=tensorflow_bins() if bins == "tensorflow" else bins)
    if max_bins is not None and len(counts) > max_bins:
        group = -(-len(counts) // max_bins)  # buckets merged into one; the last group may be short
        starts = np.arange(0, len(counts), group)
        counts = np.add.reduceat(counts, starts)
        edges = np.append(edges[starts], edges[-1])
    # TensorBoard stores each bucket's right edge only; keep the non-empty stretch and one empty bucket
    # before it, whose right edge is the left edge of the first non-empty one
    filled = np.flatnonzero(counts)
    if filled.size == 0:
        raise ValueError(f"add_histogram {tag!r}: no value falls inside the bins")
    first, last = filled[0], filled[-1]
    if first > 0:
        counts, limits = counts[first - 1:last + 1], edges[first:last + 2]
    else:
        counts, limits = np.concatenate([[0], counts[:last + 1]]), edges[:last + 2]
    return Summary(value=[Summary.Value(tag=tag, histo=HistogramProto(
        min=values.min(), max=values.max(), num=values.size, sum=values.sum(), sum_squares=values.dot(values),
        bucket_limit=limits.tolist(), bucket=counts.tolist()))])


def text(tag, text_string):
    """Markdown text for the text plugin, under the tag `tag/text_summary` as PyTorch names it."""
    metadata = text_metadata.create_summary_metadata(display_name="", description="")
    tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf-8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])


def _hparams_summary(tag, **plugin_data):
    metadata = hparams_metadata.create_summary_metadata(hparams_plugin_data_pb2.HParamsPluginData(**plugin_data))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def hparams(hparam_dict, metric_dict, hparam_domain_discrete=None):
    """The three summaries of the hparams plugin: the experiment (which hyperparameters and metrics
    there are), this run's hyperparameter values, and the run's end. Values are bool, numbers, str or
    0-d Tensors; None is left out."""
    hparam_domain_discrete = hparam_domain_discrete or {}
    start = hparams_plugin_data_pb2.SessionStartInfo()
    infos = []
    for name, value in hparam_dict.items():
        if value is None:
            continue
        if isinstance(value, Tensor):
            value = scalar_value(value, f"hparam {name!r}")
        if isinstance(value, bool):  # before int: True is an int too
            start.hparams[name].bool_value = value
            kind, field = "DATA_TYPE_BOOL", "bool_value"
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(value, str):
            start.hparams[name].string_value = value
            kind, field = "DATA_TYPE_STRING", "string_value"
        else:
            raise ValueError(f"hparam {name!r}: value should be one of int, float, str, bool, or Tensor, "
                             f"got {type(value).__name__}")
        info = api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind))
        if name in hparam_domain_discrete:
            info.domain_discrete.CopyFrom(struct_pb2.ListValue(
                values=[struct_pb2.Value(**{field: d}) for d in hparam_domain_discrete[name]]))
        infos.append(info)
    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=[
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=name)) for name in metric_dict])
    end = hparams_plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return (_hparams_summary(hparams_metadata.EXPERIMENT_TAG, experiment=experiment),
            _hparams_summary(hparams_metadata.SESSION_START_INFO_TAG, session_start_info=start),
            _hparams_summary(hparams_metadata.SESSION_END_INFO_TAG, session_end_info=end))
