"""Settings from the environment: defaults for one machine, overrides, no secrets in repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.config import Settings, mask_url

VARS = ("SEP_KAFKA", "SEP_POSTGRES", "SEP_REDIS", "SEP_DATA", "SEP_LOG_FORMAT", "SEP_REDIS_PREFIX")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults_run_on_one_machine(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = Settings()
    assert s.kafka == "127.0.0.1:19092"
    assert s.postgres == "postgresql://postgres@127.0.0.1:15432/sep"
    assert s.redis == "redis://127.0.0.1:16379/0"
    assert s.data_dir == (tmp_path / ".sep").resolve()
    assert s.data_dir.is_absolute()
    assert s.log_format == "auto"
    assert s.redis_prefix == ""


def test_environment_overrides(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("SEP_KAFKA", "broker:9092")
    clean_env.setenv("SEP_POSTGRES", "postgresql://u@db/x")
    clean_env.setenv("SEP_REDIS", "redis://cache:6379/2")
    clean_env.setenv("SEP_DATA", "rel/data")
    clean_env.setenv("SEP_LOG_FORMAT", "json")
    clean_env.setenv("SEP_REDIS_PREFIX", "t1:")
    s = Settings()
    assert (s.kafka, s.postgres, s.redis) == (
        "broker:9092",
        "postgresql://u@db/x",
        "redis://cache:6379/2",
    )
    assert s.data_dir == tmp_path / "rel" / "data"  # resolved against the working directory
    assert (s.log_format, s.redis_prefix) == ("json", "t1:")


def test_empty_variable_means_the_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SEP_KAFKA", "")
    assert Settings().kafka == "127.0.0.1:19092"


def test_environment_is_read_when_settings_are_made(clean_env: pytest.MonkeyPatch) -> None:
    before = Settings()
    clean_env.setenv("SEP_KAFKA", "later:1")
    assert Settings().kafka == "later:1"
    assert before.kafka == "127.0.0.1:19092"


def test_explicit_arguments_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SEP_KAFKA", "env:1")
    assert Settings(kafka="arg:2").kafka == "arg:2"


def test_settings_are_immutable(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(AttributeError):
        Settings().kafka = "x"  # type: ignore[misc]


def test_repr_masks_the_postgres_password(clean_env: pytest.MonkeyPatch) -> None:
    text = repr(Settings(postgres="postgresql://sep:hunter2@db.internal:5432/sep"))
    assert "hunter2" not in text
    assert "postgresql://sep:***@db.internal:5432/sep" in text


@pytest.mark.parametrize(
    "postgres",
    [
        "postgresql://:hunter2@db:5432/sep",  # password without a user name
        "postgres://sep:hunter2@db/sep?sslmode=require",
        "postgresql://sep:hun@ter2@db/sep",  # an unescaped @ in the password
        "postgresql://sep:hun/ter2@db/sep",
        "postgresql:///sep?host=/run/pg&password=hunter2&user=sep",  # libpq query parameter
    ],
)
def test_repr_masks_other_postgres_forms(clean_env: pytest.MonkeyPatch, postgres: str) -> None:
    assert "hunter2" not in repr(Settings(postgres=postgres))


@pytest.mark.parametrize(
    "redis",
    [
        "redis://:hunter2@cache:6379/0",  # requirepass
        "redis://default:hunter2@cache:6379/0",  # ACL user
        "rediss://app:hunter2@cache:6380/1",
    ],
)
def test_repr_masks_the_redis_password(clean_env: pytest.MonkeyPatch, redis: str) -> None:
    # The module promises "secrets never appear here in logs"; Redis URLs carry passwords too.
    assert "hunter2" not in repr(Settings(redis=redis))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://default:hunter2@cache:6379/0", "redis://default:***@cache:6379/0"),
        (
            "postgresql://:hunter2@db/sep?sslmode=require",
            "postgresql://:***@db/sep?sslmode=require",
        ),
        ("redis://cache:6379/0?password=hunter2", "redis://cache:6379/0?password=***"),
        ("postgresql://postgres@127.0.0.1:15432/sep", "postgresql://postgres@127.0.0.1:15432/sep"),
        ("127.0.0.1:19092", "127.0.0.1:19092"),
    ],
)
def test_mask_url_keeps_everything_but_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_settings_are_the_one_place_that_reads_the_environment() -> None:
    """Every SEP_ variable is a field of ``Settings`` (documented in .env.example), not read
    ad hoc: modules only pass the environment on to child processes."""
    root = Path(__file__).resolve().parent.parent
    reads = re.compile(r"os\.environ\.get\(|os\.environ\[|os\.getenv\(")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("pipeline", "ui")
        for path in sorted((root / folder).rglob("*.py"))
        if path != root / "pipeline" / "config.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert offenders == []
