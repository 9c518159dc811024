"""Prometheus metrics of one courtscribe process (the in-process server, or one gateway replica).

Court IT watches the same names on a laptop and on a cluster: per-stage latency, queue depths,
live streams, real-time factor. Engine replicas on Ray are also watched through Ray Serve's own
metrics (``ray_serve_*``: queued requests, replicas, processing latency); ``deploy/grafana.json``
shows both. Counts and timings only: no text, no hearing ids (metrics leave the court's hands more
easily than records do).
"""
from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0)

STAGE_SECONDS = Histogram("courtscribe_stage_seconds", "Time per pipeline stage call (queue wait included)",
                          ["stage"], buckets=_LATENCY_BUCKETS)
RTF = Histogram("courtscribe_realtime_factor", "Decode time over audio duration, per final batch",
                buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0))
AUDIO_SECONDS = Counter("courtscribe_audio_seconds_total", "Seconds of live audio received")
FINALS = Counter("courtscribe_finals_total", "Final lines decoded")
RETRIES = Counter("courtscribe_engine_retries_total", "Engine calls retried after a replica was lost", ["stage"])
IN_FLIGHT = Gauge("courtscribe_engine_calls_in_flight", "Calls waiting on engine replicas (cluster)", ["stage"])
PARTIAL_WAIT = Histogram("courtscribe_partial_wait_seconds", "From a stream wanting a partial to its decode "
                         "(queue wait included)", buckets=_LATENCY_BUCKETS)
PARTIAL_BATCH = Histogram("courtscribe_partial_batch_streams", "Streams advanced by one online engine call",
                          buckets=(1, 2, 4, 8, 16, 32, 64))
PARTIALS_LATE = Counter("courtscribe_partials_late_total", "Partials decoded past their deadline (the box is "
                        "behind: a stream's chunks merge into fewer partials; no audio is skipped)")
DECODE_LOAD = Gauge("courtscribe_decode_load", "Share of the last 5 s the decode worker spent decoding (near 1: "
                    "the box is behind; finals go strictly first)")
QUEUE_DEPTH = Gauge("courtscribe_queue_depth", "Jobs waiting for the decode worker", ["queue"])
READ_AHEAD = Gauge("courtscribe_stream_read_ahead_bytes", "Audio received on live sockets and not yet taken by "
                   "the decoder (a source replayed faster than it decodes, or a box behind)")
ACTIVE_STREAMS = Gauge("courtscribe_active_streams", "Live audio streams admitted")
STORE_UP = Gauge("courtscribe_store_up", "1 while the record store answers, 0 while it is away")
SPOOL_PENDING = Gauge("courtscribe_spool_pending", "Live lines waiting for the record store (on disk, or in "
                      "memory on a full disk): more than 0 for long, and court IT must look")
DATA_FREE = Gauge("courtscribe_data_free_bytes", "Free space where court data (records, recordings) is written")


def watch(queues: dict[str, Callable[[], int]], streams: Callable[[], int]) -> None:
    """Read queue depths and live streams from their owner when scraped (the newest owner wins:
    a process serves one app; tests build several)."""
    for name, fn in queues.items():
        QUEUE_DEPTH.labels(name).set_function(fn)
    ACTIVE_STREAMS.set_function(streams)


def watch_store(up: Callable[[], bool], pending: Callable[[], int], free: Callable[[], int]) -> None:
    """Read the record store's state, the spool's depth and the data folder's free space when scraped."""
    STORE_UP.set_function(lambda: float(up()))
    SPOOL_PENDING.set_function(pending)
    DATA_FREE.set_function(free)


def exposition(snapshots: dict[str, str] | None = None) -> tuple[bytes, str]:
    """This process's metrics; with ``snapshots`` (gateway replica → its exposition, this one's
    included), all gateways' as one scrape, each sample labelled with its ``gateway``: Serve's proxy
    sends a scrape to one replica, and Prometheus must still see every one."""
    if snapshots is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(snapshots))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Merged:
    def __init__(self, snapshots: dict[str, str]):
        self.snapshots = snapshots

    def collect(self):
        families: dict[str, Metric] = {}
        for gateway, text in sorted(self.snapshots.items()):
            for family in text_string_to_metric_families(text):
                out = families.setdefault(family.name, Metric(family.name, family.documentation, family.type,
                                                              family.unit))
                for sample in family.samples:
                    out.add_sample(sample.name, {**sample.labels, "gateway": gateway}, sample.value, sample.timestamp)
        yield from families.values()
