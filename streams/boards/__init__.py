"""Grafana boards, alert rules and provisioning as code, and the push to a Grafana server.

``queries`` (the ClickHouse query type) → ``dashboards`` and ``alerting`` (builders) →
``provisioning`` (the files docker-compose mounts) → ``files`` (render, write, drift check);
``push`` sends the same objects to a running Grafana; ``macros`` expands the datasource's macros
so tests and benchmarks run every query on the warehouse.
"""
