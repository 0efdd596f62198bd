"""Runtime configuration from environment variables, with defaults that run on one machine.

Every variable is listed in ``.env.example``.  Secrets never appear here in logs: the
``__repr__`` of ``Settings`` masks the DSN's password.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value else default


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
    redis_prefix: str = field(default_factory=lambda: _env("SEP_REDIS_PREFIX", ""))
    """Namespace for read-model keys (tests and replays use their own)."""

    def __repr__(self) -> str:
        masked = re.sub(r"//([^:/@]+):[^@]+@", r"//\1:***@", self.postgres)
        return (
            f"Settings(kafka={self.kafka!r}, postgres={masked!r}, redis={self.redis!r}, "
            f"data_dir={str(self.data_dir)!r})"
        )
