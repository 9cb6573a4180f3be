"""gc.summary: TF1's summaries, written as TensorBoard event files.

`scalar(name, t)` and `histogram(name, t)` return a Summary: a value that session.run can fetch
like a tensor. Its tensors are computed in the same compiled program as everything else the run
fetches (a training step and its summaries are one run), and the run returns the Summary
protocol buffer serialized, as TF1's string summary tensors do; `FileWriter.add_summary` writes
it. Summaries go to the graph's `summaries` collection, which `merge_all()` merges.

The event-file format (protobuf records with CRC framing) is written by tensorboardX, a
well-kept package that TensorBoard reads; it is an optional dependency (`pip install
graphc[summary]`): building summaries works without it, writing needs it. `FileWriter` also
writes the graph (op names and types, edges, output shapes) for TensorBoard's Graphs tab.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .api.convert import convert_to_tensor
from .errors import GraphcError
from .ir.graph import Graph, get_default_graph
from .ir.tensor import Tensor

SUMMARIES = "summaries"


def _tensorboardx() -> Any:
    try:
        import tensorboardX
        import tensorboardX.proto.summary_pb2
    except ImportError:
        raise GraphcError("writing TensorBoard summaries needs the tensorboardX package",
                          hint='pip install "graphc[summary]" (or pip install tensorboardX)') from None
    return tensorboardX


class Summary:
    """Summaries to fetch with session.run: each a (tag, kind, tensor); the run returns them as
    one serialized Summary protocol buffer (bytes) for FileWriter.add_summary."""

    def __init__(self, entries: Sequence[tuple[str, str, Tensor]]) -> None:
        self.entries = list(entries)

    def _graphc_fetch_parts(self) -> list[Tensor]:
        return [t for _, _, t in self.entries]

    def _graphc_fetch_result(self, values: Sequence[Any]) -> bytes:
        return encode(self.entries, values)

    @property
    def graph(self) -> Graph:
        return self.entries[0][2].graph

    def eval(self, feed_dict: dict | None = None, session: Any = None) -> bytes:
        from .ir.context import get_default_session

        session = session or get_default_session()
        if session is None:
            raise GraphcError("Summary.eval() needs a session: pass session= or use one as default")
        return session.run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<gc.summary.Summary {[tag for tag, _, _ in self.entries]}>"


def encode(entries: Sequence[tuple[str, str, Tensor]], values: Sequence[Any]) -> bytes:
    """The serialized Summary proto of these entries' values (scalars, histograms)."""
    _tensorboardx()
    from tensorboardX.proto.summary_pb2 import Summary as SummaryProto

    out = SummaryProto()
    for (tag, kind, _), value in zip(entries, values):
        if kind == "scalar":
            out.value.append(SummaryProto.Value(tag=tag, simple_value=float(np.asarray(value).reshape(()))))
        else:
            out.value.append(histogram_value(tag, value))
    return out.SerializeToString()


HISTOGRAM_BINS = 30   # TensorBoard's default bucket count


def histogram_value(tag: str, values: Any) -> Any:
    """A Summary.Value with the histogram of `values` (tensorboardX's buckets, numpy counts)."""
    tbx = _tensorboardx()
    from tensorboardX.proto.summary_pb2 import HistogramProto
    from tensorboardX.proto.summary_pb2 import Summary as SummaryProto

    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return SummaryProto.Value(tag=tag, histo=HistogramProto())
    if not np.all(np.isfinite(flat)):
        bad = int(np.count_nonzero(~np.isfinite(flat)))
        raise GraphcError(f"histogram summary {tag!r}: {bad} of its {flat.size} values are NaN or infinite",
                          hint="a histogram needs finite values; gc.check_numerics finds where they arise")
    return SummaryProto.Value(tag=tag, histo=tbx.summary.make_histogram(flat, HISTOGRAM_BINS))


def _entry(kind: str, name: str, tensor: Any, collections: Sequence[str] | None, family: str | None) -> Summary:
    t = convert_to_tensor(tensor)
    graph = t.graph
    if not isinstance(name, str) or not name:
        raise GraphcError(f"a summary's name must be a non-empty string, got {name!r}")
    if kind == "scalar" and t.shape is not None and tuple(t.shape) not in ((), (1,)):
        raise GraphcError(f"gc.summary.scalar({name!r}) needs a scalar, got a tensor of shape {t.shape}",
                          hint="reduce it first (gc.reduce_mean), or use gc.summary.histogram")
    if t.dtype.name == "bool":
        raise GraphcError(f"gc.summary.{kind}({name!r}) needs numbers, got a bool tensor", hint="cast it first")
    tag = f"{graph.current_scope}{family + '/' if family else ''}{name}"
    summary = Summary([(tag, kind, t)])
    for key in collections if collections is not None else [SUMMARIES]:
        graph.add_to_collection(key, summary)
    return summary


def scalar(name: str, tensor: Any, collections: Sequence[str] | None = None, family: str | None = None) -> Summary:
    """A scalar summary (a loss, a learning rate) tagged `name` under the current name scope."""
    return _entry("scalar", name, tensor, collections, family)


def histogram(name: str, values: Any, collections: Sequence[str] | None = None, family: str | None = None) -> Summary:
    """A histogram of every element of `values` (TensorBoard's exponential buckets)."""
    return _entry("histogram", name, values, collections, family)


def merge(inputs: Sequence[Summary], collections: Sequence[str] | None = None, name: str | None = None) -> Summary:
    """One Summary holding all of `inputs`' values."""
    inputs = list(inputs)
    if not inputs or not all(isinstance(s, Summary) for s in inputs):
        raise GraphcError("gc.summary.merge takes a non-empty list of summaries (gc.summary.scalar / histogram)")
    merged = Summary([e for s in inputs for e in s.entries])
    for key in collections or []:
        merged.graph.add_to_collection(key, merged)
    return merged


def merge_all(key: str = SUMMARIES, scope: str | None = None, graph: Graph | None = None) -> Summary | None:
    """Every summary in the graph's collection `key` (whose tags start with `scope`), merged;
    None when there is none, as in TF1."""
    graph = graph or get_default_graph()
    found = [s for s in graph.get_collection(key) if isinstance(s, Summary)]
    entries = [e for s in found for e in s.entries if scope is None or e[0].startswith(scope)]
    return Summary(entries) if entries else None


class FileWriter:
    """TF1's FileWriter: an `events.out.tfevents.*` file in `logdir` that TensorBoard reads.
    `add_summary(summary, global_step)` takes what session.run returned for a Summary (or a
    Summary proto); `graph` (or add_graph) writes the graph for the Graphs tab."""

    def __init__(self, logdir: str | os.PathLike, graph: Graph | None = None, max_queue: int = 10,
                 flush_secs: int = 120, filename_suffix: str = "") -> None:
        tbx = _tensorboardx()
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self._writer = tbx.writer.FileWriter(self.logdir, max_queue=max_queue, flush_secs=flush_secs,
                                             filename_suffix=filename_suffix)
        if graph is not None:
            self.add_graph(graph)

    def get_logdir(self) -> str:
        return self.logdir

    def add_summary(self, summary: Any, global_step: int | None = None) -> None:
        from tensorboardX.proto.summary_pb2 import Summary as SummaryProto

        if isinstance(summary, Summary):
            raise GraphcError("add_summary takes the value session.run returned for a summary, not the summary itself",
                              hint="value = sess.run(merged); writer.add_summary(value, step)")
        if isinstance(summary, (bytes, bytearray)):
            proto = SummaryProto()
            from google.protobuf.message import DecodeError

            try:
                proto.ParseFromString(bytes(summary))
            except DecodeError as err:
                raise GraphcError(f"add_summary got bytes that are not a serialized Summary: {err}") from None
            summary = proto
        if not isinstance(summary, SummaryProto):
            raise GraphcError(f"add_summary takes a serialized Summary (what session.run returns for a summary), "
                              f"got {type(summary).__name__}")
        self._writer.add_summary(summary, None if global_step is None else int(global_step), time.time())

    def add_scalars(self, values: dict[str, float], global_step: int | None = None) -> None:
        """Scalars computed outside a graph (a Keras callback's epoch logs)."""
        from tensorboardX.proto.summary_pb2 import Summary as SummaryProto

        proto = SummaryProto(value=[SummaryProto.Value(tag=k, simple_value=float(v)) for k, v in values.items()])
        self.add_summary(proto, global_step)

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None) -> None:
        from tensorboardX.proto.summary_pb2 import Summary as SummaryProto

        self.add_summary(SummaryProto(value=[histogram_value(tag, values)]), global_step)

    def add_graph(self, graph: Graph) -> None:
        from tensorboardX.proto.event_pb2 import Event

        from .summary_graph import graph_def

        self._writer.add_event(Event(graph_def=graph_def(graph).SerializeToString()), None, time.time())

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> FileWriter:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["FileWriter", "Summary", "histogram", "merge", "merge_all", "scalar"]
