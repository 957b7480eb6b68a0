"""Celery app for the benchmark: one no-op task, Redis as broker and result backend.

The broker URL comes from BENCH_REDIS_URL (scripts/bench starts a private redis-server).
"""

import os

from celery import Celery

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6399/0")
app = Celery("noop_tasks", broker=url, backend=url)
app.conf.update(
    task_acks_late=False,
    worker_prefetch_multiplier=4,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task
def noop():
    return None
