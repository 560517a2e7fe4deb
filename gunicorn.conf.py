"""gunicorn settings for the Procfile's `web` process (values from the environment where a PaaS sets them).

The web process verifies, stores and acknowledges; it never calls a platform, so short timeouts and
a few threads per worker keep acknowledgements fast (Wix allows 1.25 s).
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# The PaaS router terminates TLS and sets X-Forwarded-*; trust it, not the client.
forwarded_allow_ips = "*"
# Webhook headers are short; refuse oversized ones before Flask sees them.
limit_request_field_size = 8190
limit_request_fields = 100
