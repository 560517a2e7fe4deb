"""gunicorn settings for the Procfile's `web` process (values from the environment where a PaaS sets them).

The web process verifies, stores and acknowledges; it never calls a platform, so short timeouts and
a few threads per worker keep acknowledgements fast (Wix allows 1.25 s).
"""

import glob
import os
import shutil
import tempfile

from app.config import DEFAULT_WEB_THREADS as _DEFAULT_WEB_THREADS
from app.config import forwarded_allow_ips as _trusted_proxies
from app.config import log_format as _log_format

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# An event loop reads each request whole before one of `threads` threads runs the app: a client that
# trickles its headers or body holds a coroutine, never a thread (app/web/front.py says why).
worker_class = "app.web.front.Worker"
# The app reads WEB_THREADS too (app/config.py): each worker's database pool is sized by it.
threads = int(os.environ.get("WEB_THREADS") or _DEFAULT_WEB_THREADS)
# Open connections per worker, slow ones included; past this a worker stops accepting until one closes.
worker_connections = 1000
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# With LOG_FORMAT=json gunicorn's own lines (start-up, workers, each request) are JSON like the app's,
# so that a log drain parses every line; text keeps gunicorn's own formats.
if _log_format(os.environ.get("LOG_FORMAT")) == "json":
    logger_class = "app.web.gunicorn_logs.JsonLogger"
# X-Forwarded-Proto counts only from the proxies FORWARDED_ALLOW_IPS names (app/config.py reads it,
# and the app's own TrustedProxies uses the same list for X-Forwarded-For): a client cannot claim https.
forwarded_allow_ips = ",".join(_trusted_proxies(os.environ.get("FORWARDED_ALLOW_IPS")))
# Webhook headers are short; refuse oversized ones before Flask sees them.
limit_request_field_size = 8190
limit_request_fields = 100

# Prometheus multiprocess mode: each worker process writes its counters to files in one folder, and
# /metrics, whichever worker answers it, sums them all (app/core/metrics.py). prometheus_client
# chooses where counters live when it is first imported, so the variable is set here, in the master,
# before any worker imports the app. Without an operator's choice, a fresh folder of this master's.
_made_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_metrics_dir = tempfile.mkdtemp(prefix="reviewbridge-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_metrics_dir


def on_starting(server):
    # A previous run's files would be summed with this run's, and their counts never reset.
    folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(folder, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    # A dead worker's counters stay in the sum (a counter must not go back); what it alone reported
    # as live is dropped, as prometheus_client's documentation asks of every multiprocess server.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir is not None:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
