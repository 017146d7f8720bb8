"""Entry point of one worker process (``python -m streams worker``)."""

from __future__ import annotations

import logging
import os

from faust.worker import Worker

from streams.config import Settings
from streams.runtime.app import create_app


def run_worker(settings: Settings) -> None:
    """Run the faust worker in the foreground until SIGTERM/SIGINT (graceful stop)."""
    if not settings.kafka_bootstrap:
        raise SystemExit(
            "rapport worker: RAPPORT_KAFKA_BOOTSTRAP is not set; start one with `rapport up` "
            "(embedded broker and worker), or set it to a running Kafka's host:port"
        )
    level = os.environ.get("RAPPORT_LOG_LEVEL", "WARNING").upper()
    app = create_app(settings, idle_flush_s=float(os.environ.get("RAPPORT_IDLE_FLUSH_S", "5")))
    logging.getLogger("streams").setLevel(level)
    Worker(app, loglevel=level, quiet=True).execute_from_commandline()
