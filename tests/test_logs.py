"""Structured logs: every extra field in both formats, bounded, and never a secret."""

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

from pipeline.config import Settings
from pipeline.logs import (
    CONSOLE_VALUE_CHARS,
    JSON_VALUE_CHARS,
    MESSAGE_CHARS,
    ConsoleFormatter,
    JsonFormatter,
    configure_logging,
    logging_config,
    redact,
)


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
    log.info(
        "duplicate intent dropped",
        extra={"dedupe_key": "s\x1fc", "original": "intent-1", "count": 3},
    )
    (entry,) = lines(stream)
    assert entry["dedupe_key"] == "s\x1fc"
    assert entry["original"] == "intent-1"
    assert entry["count"] == 3
    # ...and nothing of LogRecord's own machinery leaks in.
    assert not {
        "args",
        "levelno",
        "pathname",
        "lineno",
        "msecs",
        "thread",
        "processName",
        "taskName",
    } & set(entry)


def test_extra_fields_cannot_replace_the_standard_ones(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception(
            "real",
            extra={
                "ts": "forged",
                "level": "debug",
                "logger": "other",
                "exc": "none",
                "extra_ts": "kept",
            },
        )
    (entry,) = lines(stream)
    assert (entry["level"], entry["logger"]) == ("error", "sep.test.logs")
    assert entry["ts"] != "forged"
    assert "ValueError: boom" in str(entry["exc"])
    # Nothing is lost: the colliding keys are kept under a prefix.
    assert (entry["extra_level"], entry["extra_logger"], entry["extra_exc"]) == (
        "debug",
        "other",
        "none",
    )
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
    offset = datetime.fromisoformat(str(entry["ts"])).utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_console_formatter_is_one_readable_line() -> None:
    record = logging.makeLogRecord(
        {
            "name": "sep.x",
            "levelname": "WARNING",
            "msg": "slow %s",
            "args": ("venue",),
            "step": "plan-1-1",
        }
    )
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
@pytest.mark.parametrize(
    ("fmt", "formatter"), [("json", JsonFormatter), ("console", ConsoleFormatter)]
)
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


# ----------------------------------------------------------------------------- every field


RECORD_FIELDS: dict[str, object] = {
    "topic": "sep.intents.submitted",
    "partition": 3,
    "offset": 1041,
    "key": "dca",
    "reason": "invalid intent: constraints.timeWindowMs: ...",
}


def console_line(msg: str = "record dead-lettered", **extra: object) -> str:
    record = logging.makeLogRecord({"name": "sep.x", "levelname": "WARNING", "msg": msg, **extra})
    return ConsoleFormatter().format(record)


def json_entry(logger, msg: str = "record dead-lettered", **extra: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.warning(msg, extra=extra)
    (entry,) = lines(stream)
    return entry


def test_json_carries_every_field_of_the_record(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.warning("record dead-lettered", extra=RECORD_FIELDS)
    (entry,) = lines(stream)
    assert {k: entry[k] for k in RECORD_FIELDS} == RECORD_FIELDS


def test_a_record_key_in_bytes_is_text_in_both_formats(logger) -> None:  # type: ignore[no-untyped-def]
    # Delivery logs ``record.key`` as the consumer gave it: bytes, maybe not UTF-8.
    assert json_entry(logger, key=b"dca\xff")["key"] == "dca\\xff"
    assert console_line(key=b"dca").endswith("  key=dca")
    assert console_line(key=b"x" * 60_000).endswith(" bytes]")


def test_json_writes_an_integer_past_64_bits_as_text(logger) -> None:  # type: ignore[no-untyped-def]
    # orjson refuses it, which would lose the whole line; base units in wei get there.
    entry = json_entry(logger, amount_in=10**24, units=[10**24], offset=2**63 - 1)
    assert entry["amount_in"] == str(10**24)
    assert entry["units"] == f"[{10**24}]"
    assert entry["offset"] == 2**63 - 1


def test_json_keeps_lists_and_objects_as_json(logger) -> None:  # type: ignore[no-untyped-def]
    entry = json_entry(logger, stages=["ingest", "validate"], counts={"a": 1})
    assert entry["stages"] == ["ingest", "validate"]
    assert entry["counts"] == {"a": 1}


def test_console_carries_every_field_as_key_value() -> None:
    line = console_line("record dead-lettered", **RECORD_FIELDS)
    assert line.endswith(
        "  topic=sep.intents.submitted partition=3 offset=1041 key=dca "
        "reason='invalid intent: constraints.timeWindowMs: ...'"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\nb", "'a\\nb'"),  # a newline cannot start a forged line
        ("\x1b[2J", "'\\x1b[2J'"),  # nor an escape sequence clear the terminal
        ("x y=z", "'x y=z'"),  # nor a space and '=' pass for another field
        ("", "''"),
        ("plan-1-1", "plan-1-1"),
        (Decimal("1.50"), "1.50"),
    ],
)
def test_console_values_are_escaped_unless_plain(value: object, shown: str) -> None:
    line = console_line(field=value)
    assert line.endswith(f"  field={shown}")
    assert "\n" not in line
    assert "\x1b" not in line


# ----------------------------------------------------------------------------- bounded


HOSTILE = "A" * 60_000


def test_console_cuts_a_long_value_and_says_so() -> None:
    line = console_line(key=HOSTILE, reason="short")
    assert len(line) < 400
    assert f"key={'A' * CONSOLE_VALUE_CHARS}...[cut: 60000 chars] reason=short" in line


def test_console_bound_holds_for_values_that_escape_long() -> None:
    line = console_line(key="\x00" * 60_000)
    assert len(line) < 10 * CONSOLE_VALUE_CHARS + 100
    assert line.endswith("...[cut: 60000 chars]")


def test_json_keeps_a_value_whole_up_to_the_bound(logger) -> None:  # type: ignore[no-untyped-def]
    value = "B" * JSON_VALUE_CHARS
    assert json_entry(logger, key=value)["key"] == value


def test_json_cuts_a_long_value_and_says_so(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    log.warning("record dead-lettered", extra={"key": HOSTILE, "offset": 7})
    text = stream.getvalue()
    assert len(text) < JSON_VALUE_CHARS + 500
    (entry,) = lines(stream)
    assert entry["key"] == f"{'A' * JSON_VALUE_CHARS}...[cut: 60000 chars]"
    assert entry["offset"] == 7


def test_json_cuts_a_long_list_to_text(logger) -> None:  # type: ignore[no-untyped-def]
    entry = json_entry(logger, errors=["x" * 100] * 1000)
    assert isinstance(entry["errors"], str)
    assert str(entry["errors"]).endswith(" chars]")
    assert len(str(entry["errors"])) < JSON_VALUE_CHARS + 50


def test_a_long_message_is_cut_in_both_formats(logger) -> None:  # type: ignore[no-untyped-def]
    assert len(json_entry(logger, msg=HOSTILE)["msg"]) < MESSAGE_CHARS + 50  # type: ignore[arg-type]
    assert len(console_line(msg=HOSTILE)) < MESSAGE_CHARS + 100


# ----------------------------------------------------------------------------- secrets


SECRET = "hunter2"
DSN = f"postgresql://sep:{SECRET}@db.internal:5432/sep"


def test_json_never_writes_a_secret(logger) -> None:  # type: ignore[no-untyped-def]
    log, stream, _ = logger
    try:
        raise ConnectionError(f"cannot reach {DSN}")
    except ConnectionError:
        log.exception(
            "store down: %s",
            DSN,
            extra={
                "postgres": DSN,
                "db_password": SECRET,
                "private_key": "0x" + "ab" * 32,
                "settings": Settings(postgres=DSN),
                "urls": [DSN],
                "token_in": "WETH",
            },
        )
    text = stream.getvalue()
    assert SECRET not in text
    assert "ab" * 32 not in text
    (entry,) = lines(stream)
    assert entry["postgres"] == "postgresql://sep:***@db.internal:5432/sep"
    assert entry["db_password"] == entry["private_key"] == "***"
    assert "postgresql://sep:***@db.internal" in str(entry["msg"])
    assert "postgresql://sep:***@db.internal" in str(entry["exc"])
    assert entry["token_in"] == "WETH"  # a router's token is not a secret


def test_console_never_writes_a_secret() -> None:
    line = console_line(
        f"connecting to {DSN}", postgres=DSN, password=SECRET, settings=Settings(postgres=DSN)
    )
    assert SECRET not in line
    assert "postgres=postgresql://sep:***@db.internal:5432/sep" in line
    assert "password=***" in line


def test_redact_masks_every_url_in_a_text() -> None:
    text = f"primary {DSN}, replica redis://:{SECRET}@r:6379/0?password={SECRET}"
    assert SECRET not in redact(text)
    assert redact("no url here") == "no url here"


# ----------------------------------------------------------------------------- faust worker


@pytest.mark.usefixtures("root_restored")
def test_the_faust_worker_set_up_keeps_the_format_and_the_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What faust.Worker does when it starts (mode's setup_logging), given our config. Given
    # none it installs "[time] [pid] [LEVEL] message", which drops every extra field.
    from mode.utils.logging import setup_logging

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    early = logging.getLogger("sep.test.logs.early")  # exists before the worker starts
    setup_logging(loglevel="info", logging_config=logging_config("json", "info"))
    early.warning("record dead-lettered", extra=RECORD_FIELDS)
    (entry,) = lines(stream)
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
    assert entry["msg"] == "record dead-lettered"
    assert {k: entry[k] for k in RECORD_FIELDS} == RECORD_FIELDS


@pytest.mark.parametrize(
    ("fmt", "formatter"), [("json", JsonFormatter), ("console", ConsoleFormatter)]
)
def test_logging_config_names_the_same_formatter_as_configure_logging(
    fmt: str, formatter: type
) -> None:
    config = logging_config(fmt, "warning")
    assert config["formatters"]["sep"]["()"] is formatter
    assert config["root"] == {"level": "WARNING", "handlers": ["sep"]}
    assert config["disable_existing_loggers"] is False
