"""The write path's counters, kept in this process (prometheus-client's default registry).

They count what this process did since it started: each daphne and qcluster process has its own, and
Prometheus adds them up across the targets it scrapes (`sum(rate(...))`). What the database knows is
read at scrape time instead (agentos_site/metrics.py), the same from every process.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SSOT_COMMITS = Counter("agentos_ssot_commits", "SSOT commits this process made through the write path.")
SSOT_WRITE_CONFLICTS = Counter(
    "agentos_ssot_write_conflicts",
    "Changes re-drafted because the SSOT head moved while they were being written (a concurrent push).",
)
SSOT_WRITES_REFUSED = Counter(
    "agentos_ssot_writes_refused",
    "Changes given up after SSOT_WRITE_RETRIES conflicts (answered 409).",
)
SSOT_BATCH_CHANGES = Histogram(
    "agentos_ssot_batch_changes",
    "Changes drafted into one SSOT commit by group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 100),
)
