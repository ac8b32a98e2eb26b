"""Gunicorn settings for the API: `gunicorn -c deploy/gunicorn.conf.py` (binds 0.0.0.0:8000; `-b` overrides).

Server-sent event streams (GET /v1/jobs/{id}/events, /v1/batches/{id}/events) stay open for the whole life of
a job, and each open stream holds one thread for that time (a blocking Redis XREAD between events).
So the API runs gunicorn's threaded worker, `gthread`: a stream costs a thread, never a whole process. The
default `sync` worker would give every open stream an entire worker process, and a handful of watchers would
stall all other requests; never run the API with it.

Capacity: workers x threads requests at once, open streams included (2 x 64 = 128 here). Raise `threads` for
more watchers (a thread waiting on Redis costs little memory and no CPU); raise `workers` for CPU-bound
request handling (uploads are decoded and validated in the API). Each open stream also holds one Redis
connection.
"""

wsgi_app = "api:create_app()"
bind = "0.0.0.0:8000"

# Threaded workers: one thread per request, and per open SSE stream for as long as it is open.
worker_class = "gthread"
# Processes: for CPU-bound work (image validation) and for fault isolation.
workers = 2
# Threads per process: the requests, open event streams included, each process serves at once.
threads = 64

# Seconds a worker may go silent before the arbiter restarts it. gthread workers report from their main loop,
# not per request, so a stream open for hours is not "silent"; this guards against a wedged process only.
timeout = 60
# Seconds to finish open requests on restart; event streams are cut, and EventSource clients reconnect with
# Last-Event-ID and lose nothing.
graceful_timeout = 30
# Seconds an idle keep-alive connection is held between requests.
keepalive = 5

accesslog = "-"
errorlog = "-"

# Prometheus multiprocess mode: each worker process writes its counters under this directory and GET /metrics
# adds them up. Set here, before any worker imports prometheus_client; emptied at each start.
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "styleforge-api-metrics")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)
os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker) -> None:
    """A worker process ended: its live gauges leave the sums (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
