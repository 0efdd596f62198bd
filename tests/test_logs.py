"""Structured logs: one JSON object per line with the extra fields; readable console lines."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from pipeline.logs import ConsoleFormatter, JsonFormatter, configure_logging


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("sep.test.logs")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield log, stream, handler
    finally:
        log.removeHandler(handler)
        log.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [orjson.loads(line) for line in text.splitlines()]


def test_one_parseable_object_per_record(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.info("first")
    log.warning("second %s", "arg")
    first, second = lines(stream)
    assert (first["msg"], first["level"], first["logger"]) == ("first", "info", "sep.test.logs")
    assert (second["msg"], second["level"]) == ("second arg", "warning")


def test_extra_fields_are_fields(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.info("duplicate intent dropped", extra={"dedupe_key": "s\x1fc", "original": "intent-1",
                                                "count": 3})
    (entry,) = lines(stream)
    assert entry["dedupe_key"] == "s\x1fc"
    assert entry["original"] == "intent-1"
    assert entry["count"] == 3
    # ...and nothing of LogRecord's own machinery leaks in.
    assert not {"args", "levelno", "pathname", "lineno", "msecs", "thread", "processName",
                "taskName"} & set(entry)


def test_extra_fields_cannot_replace_the_standard_ones(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("real", extra={"ts": "forged", "level": "debug", "logger": "other",
                                     "exc": "none", "extra_ts": "kept"})
    (entry,) = lines(stream)
    assert (entry["level"], entry["logger"]) == ("error", "sep.test.logs")
    assert entry["ts"] != "forged"
    assert "ValueError: boom" in str(entry["exc"])
    # Nothing is lost: the colliding keys are kept under a prefix.
    assert (entry["extra_level"], entry["extra_logger"], entry["extra_exc"]) == (
        "debug", "other", "none")
    assert {entry["extra_ts"], entry["extra_extra_ts"]} == {"forged", "kept"}


def test_values_json_cannot_hold_are_stringified(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.info("fill", extra={"amount": Decimal("1.50"), "path": Path("/tmp/x")})
    (entry,) = lines(stream)
    assert entry["amount"] == "1.50"
    assert entry["path"] == "/tmp/x"


def test_multi_line_messages_and_tracebacks_stay_on_one_line(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed\nbadly")
    (entry,) = lines(stream)  # exactly one line in the stream
    assert entry["msg"] == "failed\nbadly"
    assert entry["level"] == "error"
    assert "ValueError: boom" in str(entry["exc"])
    assert "Traceback" in str(entry["exc"])


def test_timestamp_is_iso_utc(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.info("x")
    (entry,) = lines(stream)
    stamp = datetime.fromisoformat(str(entry["ts"]))
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0


def test_console_formatter_is_one_readable_line() -> None:
    record = logging.makeLogRecord({"name": "sep.x", "levelname": "WARNING", "msg": "slow %s",
                                    "args": ("venue",), "step": "plan-1-1"})
    line = ConsoleFormatter().format(record)
    assert " W sep.x: slow venue" in line
    assert line.endswith("  step=plan-1-1")
    assert "\n" not in line


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.usefixtures("root_restored")
@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter),
                                                ("console", ConsoleFormatter)])
def test_configure_logging_installs_one_handler(fmt: str, formatter: type) -> None:
    configure_logging(fmt, "warning")
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, formatter)
    assert root.level == logging.WARNING


@pytest.mark.usefixtures("root_restored")
def test_auto_is_json_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # StringIO.isatty() is False
    configure_logging("auto")
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
