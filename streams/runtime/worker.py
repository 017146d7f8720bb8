"""Entry point of one worker process (``python -m streams worker``)."""

from __future__ import annotations

import logging
import os
import shutil

from faust.worker import Worker

from streams.config import Settings
from streams.runtime.app import create_app

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Run the faust worker in the foreground until SIGTERM/SIGINT (graceful stop).

    The local RocksDB tables are a cache of the changelog topics. A worker that was killed can
    leave them ahead of the changelog (faust then refuses to start with a ConsistencyError), so
    after an unclean stop they are removed and rebuilt from the changelog.
    """
    if not settings.kafka_bootstrap:
        raise SystemExit(
            "rapport worker: RAPPORT_KAFKA_BOOTSTRAP is not set; start one with `rapport up` "
            "(embedded broker and worker), or set it to a running Kafka's host:port"
        )
    level = os.environ.get("RAPPORT_LOG_LEVEL", "WARNING").upper()
    logging.getLogger("streams").setLevel(level)
    running = settings.state_dir / "worker-running"
    if running.exists():
        log.warning("the last worker in %s did not stop cleanly: rebuilding its tables", settings.state_dir)
        shutil.rmtree(settings.state_dir, ignore_errors=True)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    running.touch()
    app = create_app(settings, idle_flush_s=float(os.environ.get("RAPPORT_IDLE_FLUSH_S", "5")))
    try:
        Worker(app, loglevel=level, quiet=True).execute_from_commandline()
    finally:
        running.unlink(missing_ok=True)
