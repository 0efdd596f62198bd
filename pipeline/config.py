"""Runtime configuration from environment variables, with defaults that run on one machine.

Every variable is listed in ``.env.example``.  Secrets never appear here in logs: the
``__repr__`` of ``Settings`` masks the passwords in its URLs (``mask_url``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEPLOYMENT_FILE = Path("chain") / "deployment.json"
"""Default place of the Uniswap V3 deployment file, inside ``SEP_DATA``."""


DEFAULT_CLOCK_SKEW_TOLERANCE_MS = 5 * 60_000
"""``SEP_CLOCK_SKEW_TOLERANCE_MS`` unless set (also ingest's default when called bare)."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


KAFKA_JVM_OPTS = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1"
"""The embedded broker's JVM flags.  ``TieredStopAtLevel=1``: the JVM's quick compiler only.
A fresh broker's optimising compiler (C2) took 0.3-0.4 of a core for minutes of traffic on
two cores, more than the broker's request handling, and its code bought nothing measurable:
the Kafka floor (``sep bench pipeline --floor-only``, two pairs alternating) ran 3,683-4,123
intents/s with the quick compiler only against 2,872-3,634, its broker's request handling
0.079-0.097 ms per intent against 0.095-0.110, submit -> plan p99 at 500/s 179-222 ms against
323-368; on the whole pipeline (two pairs) throughput did not separate the two, and 500/s p99
was 472-702 ms against 1,458-1,928 (bench/RESULTS.md, session 12).  A broker of your own
(``SEP_KAFKA``) is not affected.
"""


@dataclass(frozen=True)
class Settings:
    kafka: str = field(default_factory=lambda: _env("SEP_KAFKA", "127.0.0.1:19092"))
    postgres: str = field(
        default_factory=lambda: _env("SEP_POSTGRES", "postgresql://postgres@127.0.0.1:15432/sep")
    )
    redis: str = field(default_factory=lambda: _env("SEP_REDIS", "redis://127.0.0.1:16379/0"))
    data_dir: Path = field(default_factory=lambda: Path(_env("SEP_DATA", ".sep")).resolve())
    log_format: str = field(default_factory=lambda: _env("SEP_LOG_FORMAT", "auto"))
    """``json`` (one object per line), ``console`` (readable), or ``auto`` (console on a tty)."""
    topology: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["SEP_TOPOLOGY"]) if os.environ.get("SEP_TOPOLOGY") else None
        )
    )
    """The topology file (``None``: the repository's ``topology.yaml``)."""
    load_plugins: bool = field(default_factory=lambda: not os.environ.get("SEP_NO_PLUGINS"))
    """Load installed plugins (the ``sep`` entry points); ``SEP_NO_PLUGINS=1``: built-ins only."""
    gc_threshold: int = field(default_factory=lambda: int(_env("SEP_GC_THRESHOLD", "50000")))
    """A worker's young-generation GC threshold (pipeline/runtime/gc_tuning.py)."""
    cache_dir: Path = field(
        default_factory=lambda: Path(
            _env("SEP_CACHE", str(Path.home() / ".cache" / "sep"))
        ).expanduser()
    )
    """Downloads shared by every checkout on the machine (the Kafka jars)."""
    redis_server: str = field(default_factory=lambda: _env("SEP_REDIS_SERVER", ""))
    """The ``redis-server`` binary the dev stack runs ('': found on PATH or installed)."""
    kafka_jvm_opts: str = field(default_factory=lambda: _env("SEP_KAFKA_JVM_OPTS", KAFKA_JVM_OPTS))
    """JVM flags of the dev stack's embedded broker (besides its heap)."""
    redis_prefix: str = field(default_factory=lambda: _env("SEP_REDIS_PREFIX", ""))
    """Namespace for read-model keys (tests and replays use their own)."""
    rpc: str = field(default_factory=lambda: _env("SEP_RPC", "http://127.0.0.1:18545"))
    """JSON-RPC URL of the EVM node the ``uniswap_v3`` venue trades on."""
    deployment: Path = field(
        default_factory=lambda: Path(
            _env("SEP_DEPLOYMENT", str(Path(_env("SEP_DATA", ".sep")) / DEPLOYMENT_FILE))
        ).resolve()
    )
    """Where the Uniswap V3 contracts are on that node (written by the dev stack's deployer)."""
    restart_max_crashes: int = field(
        default_factory=lambda: int(_env("SEP_RESTART_MAX_CRASHES", "5"))
    )
    """``sep up`` restarts a crashed worker (backoff 1 s doubling to 30 s) but gives up, stops
    everything and exits non-zero once one worker crashed more than this many times ..."""
    restart_window_s: float = field(
        default_factory=lambda: float(_env("SEP_RESTART_WINDOW_S", "300"))
    )
    """... within this many seconds (see pipeline/supervisor.py)."""
    plan_threads: int = field(default_factory=lambda: int(_env("SEP_PLAN_THREADS", "2")))
    """Threads the plan stage routes a batch's intents on (the router releases the GIL)."""
    decision_ttl_s: float = field(default_factory=lambda: float(_env("SEP_DECISION_TTL_S", "300")))
    """How long validate, plan and execute remember an answer against redelivery (seconds
    after a worker first saw it; see pipeline/stages/decisions.py)."""
    decisions_from: str = field(default_factory=lambda: _env("SEP_DECISIONS_FROM", "events"))
    """Where validate's, prioritise's and plan's remembered answers are recovered from after a
    restart or rebalance: ``events`` (their own events topics; no changelog records) or
    ``changelog`` (pipeline/runtime/delivery/sourced.py)."""
    strategy_max_lag_ms: int = field(
        default_factory=lambda: int(_env("SEP_STRATEGY_MAX_LAG_MS", "10000"))
    )
    """A market update older than this (record timestamp vs. the runner's clock) still feeds
    the strategies (features, intervals) but submits nothing: a runner catching up on history
    (a new group reading the market topic from its start) must not trade on the past
    (pipeline/stages/strategy_runner.py)."""

    dedupe_ttl_s: float = field(
        default_factory=lambda: float(_env("SEP_DEDUPE_TTL_S", str(7 * 24 * 3600)))
    )
    """How long a (strategyId, clientIntentId) stays claimed by its intent (seconds; a
    duplicate sent later is a new intent; see pipeline/store/dedupe.py)."""
    clock_skew_tolerance_ms: int = field(
        default_factory=lambda: int(
            _env("SEP_CLOCK_SKEW_TOLERANCE_MS", str(DEFAULT_CLOCK_SKEW_TOLERANCE_MS))
        )
    )
    """How far a record's timestamp may be from ingest's clock before it is rejected."""

    producer_linger_ms: int = field(
        default_factory=lambda: int(_env("SEP_PRODUCER_LINGER_MS", "1"))
    )
    """How long a worker's producer waits to fill a batch: each hop's latency floor."""
    fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("SEP_FETCH_MAX_WAIT_MS", "10")))
    """Fetch wait when a partition with buffered records is left out of the fetch
    (pipeline/runtime/delivery/patches.py)."""
    fetch_idle_wait_ms: int = field(
        default_factory=lambda: int(_env("SEP_FETCH_IDLE_WAIT_MS", "500"))
    )
    """Fetch wait when the fetch covers every partition: new data ends it at once."""
    fetch_gather_ms: int = field(default_factory=lambda: int(_env("SEP_FETCH_GATHER_MS", "10")))
    """While records flow, how long a fetch of a worker that runs none of the topology's nice
    stages waits for more (``placement.leaves_cores``: the execution path's processes of
    ``sep up --layout split``); 0: it returns with the first record."""
    risk_feed_wait_ms: int = field(default_factory=lambda: int(_env("SEP_RISK_FEED_WAIT_MS", "25")))
    """How long the risk feed lets the broker gather records while they flow
    (pipeline/risk/feed.py): fewer fetches (each ~1 ms of a worker's CPU), other workers'
    approvals counted up to this much later."""
    pipelined_tail: bool = field(
        default_factory=lambda: _env("SEP_PIPELINED_TAIL", "1") not in ("", "0")
    )
    """A fused chain's last stage (execute) runs each pass's plans while the next pass plans
    (pipeline/runtime/delivery/runner.py); 0: a pass waits for its executions."""
    trace_batches: bool = field(default_factory=lambda: bool(_env("SEP_TRACE_BATCHES", "")))
    """Log every batch's size and timings (for finding the slow stage)."""
    operator_token: str = field(default_factory=lambda: _env("SEP_OPERATOR_TOKEN", ""))
    """The bearer token the API's operator actions require (re-driving a dead letter); ''
    turns those actions off.  Never logged (not in ``__repr__``)."""
    mode: str = field(default_factory=lambda: _env("SEP_MODE", ""))
    """Overrides the topology's ``app.mode`` (``live`` or ``paper``) where the topology is
    loaded (``pipeline.topology.load_topology``); '' keeps the file's.  ``sep up --mode``
    sets it for every process of its stack."""
    fusion: bool = field(default_factory=lambda: _env("SEP_FUSION", "1") not in ("0", "false"))
    """Run the topology's ``fusion:`` chains as one pass (``SEP_FUSION=0``: every stage on
    its own, each reading its input topic from Kafka)."""
    fusion_feedback: bool = field(
        default_factory=lambda: _env("SEP_FUSION_FEEDBACK", "0") not in ("0", "false")
    )
    """Feed a fused chain's later outputs back to the earlier stage that reads them, in memory
    (``pipeline.topology.fusion``: execute's reports to plan's pending flow), instead of
    reading them back from Kafka.  Off by default: with two workers it raised the burst's
    slippage failures (the other worker's flow, which the reports' Kafka delay happened to
    cover; bench/RESULTS.md, Session 10)."""

    def __repr__(self) -> str:
        return (
            f"Settings(kafka={mask_url(self.kafka)!r}, postgres={mask_url(self.postgres)!r}, "
            f"redis={mask_url(self.redis)!r}, rpc={mask_url(self.rpc)!r}, "
            f"data_dir={str(self.data_dir)!r})"
        )


_QUERY_SECRET = re.compile(r"([?&](?:password|pass|passwd)=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: the one in the user info
    (``scheme://user:secret@host``, user name optional) and a ``password=`` query parameter.

    The user info ends at the last ``@`` before the query, so a password holding an unescaped
    ``@`` or ``/`` is masked whole (at worst, with part of the host or path).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, tail = rest[:end], rest[end:]
    userinfo, at, host = head.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if at and colon:
        head = f"{user}:***@{host}"
    return f"{scheme}://{head}" + _QUERY_SECRET.sub(r"\1***", tail)
