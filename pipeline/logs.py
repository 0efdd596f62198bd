"""Structured logs: one JSON object per line in production, readable lines in a terminal.

Both formats carry every ``extra=`` field of a log call (topic, partition, offset, key,
reason...): without them nobody can tell which record a "record dead-lettered" was about::

    json     {"ts": "...", "level": "warning", "logger": "...", "msg": "record dead-lettered",
              "topic": "sep.intents.submitted", "partition": 3, "offset": 1041, ...}
    console  12:00:01 W pipeline.x: record dead-lettered  topic=sep.intents.submitted
              partition=3 offset=1041 reason='invalid intent: ...'

Fields often hold what a producer sent, so both formats are bounded: a console value is cut
to ``CONSOLE_VALUE_CHARS`` characters and shown with ``repr`` escapes unless it is a plain
token (so a newline or an escape sequence cannot forge a line); a JSON value is kept whole
up to ``JSON_VALUE_CHARS`` characters.  A cut value says so and how long it was.  Secrets are
never written: a field named like one (``password``, ``private_key``...) is ``***``, and the
password of any URL in a message, field or traceback is masked as ``Settings`` masks it.

faust's worker replaces the root handler with a format of its own that drops every
``extra=`` field and is never JSON; hand it ``logging_config(...)`` to keep this one.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from pipeline.config import mask_url

CONSOLE_VALUE_CHARS = 200
"""Characters of one field a console line shows: ``repr`` escapes can make the shown form
longer, at worst ten times (``\\U0010ffff``), so a field costs at most about 2 KB of a line."""
JSON_VALUE_CHARS = 2048
"""Characters of one field (of its JSON text, for a list or an object) a JSON line keeps."""
MESSAGE_CHARS = 8192
"""Characters of the message itself: a message may format an exception that quotes input."""

# Attributes every LogRecord has; anything else came from ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# The fields every JSON line has; an ``extra=`` key of the same name must not replace them.
_FIELDS = frozenset({"ts", "level", "logger", "msg", "exc"})

_SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|token|api_?key|private_?key|signing_?key|authorization|"
    r"credentials?)$",
    re.IGNORECASE,
)
"""A field whose name ends like this holds a secret (``db_password``, ``private_key``; not
``token_in``, a router's input token)."""
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_BARE = re.compile(r"[\w.:/@+,*?&%#~-]*")
"""A console value made of these is shown as it is; anything else is quoted and escaped."""
MASK = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it masked (``mask_url``)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: mask_url(match.group(0)), text)


def cut(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[cut: {len(text)} chars]"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields; one named like a standard field gets an ``extra_`` prefix."""
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD:
            continue
        name = key
        while name in _FIELDS or name in out:
            name = f"extra_{name}"
        out[name] = MASK if _SECRET_NAME.search(key) else value
    return out


def _as_text(value: Any, limit: int) -> tuple[str, str]:
    """``value`` as text of at most ``limit`` characters, and what says it was cut ("").

    Bytes (a record's key, as the consumer gives it) are UTF-8 with other bytes as ``\\xNN``,
    not "b'...'", and only what can be shown is decoded: 1 MB costs what 2 KB does.
    """
    if isinstance(value, bytes | bytearray | memoryview):
        head = bytes(value[:limit])
        rest = f"...[cut: {len(value)} bytes]" if len(value) > limit else ""
        text = redact(head.decode("utf-8", "backslashreplace"))
        return (text, rest) if len(text) <= limit else (text[:limit], rest or "...[cut]")
    text = redact(value if isinstance(value, str) else str(value))
    if len(text) <= limit:
        return text, ""
    return text[:limit], f"...[cut: {len(text)} chars]"


def _json_value(value: Any) -> Any:
    """``value`` as a JSON line holds it: itself when short and secret-free, else text."""
    if isinstance(value, str | bytes | bytearray | memoryview):
        return "".join(_as_text(value, JSON_VALUE_CHARS))
    if isinstance(value, int) and not isinstance(value, bool) and not (-(2**63) <= value < 2**64):
        return str(value)  # orjson writes 64 bits at most; a wei amount can be more
    if value is None or isinstance(value, bool | int | float):
        return value
    try:
        encoded = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an integer past 64 bits inside: as text, never broken JSON
        return cut(redact(repr(value)), JSON_VALUE_CHARS)
    if "://" not in encoded and len(encoded) <= JSON_VALUE_CHARS:
        return orjson.Fragment(encoded)  # already JSON: not encoded twice
    return cut(redact(encoded), JSON_VALUE_CHARS)


def _console_value(value: Any) -> str:
    """``value`` for ``key=value``: a plain token as it is, anything else ``repr``-quoted."""
    shown, rest = _as_text(value, CONSOLE_VALUE_CHARS)
    if not (shown and _BARE.fullmatch(shown)):
        shown = repr(shown)
    return shown + rest


def _message(record: logging.LogRecord) -> str:
    return cut(redact(record.getMessage()), MESSAGE_CHARS)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _message(record),
            **{key: _json_value(value) for key, value in _extras(record).items()},
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={_console_value(v)}" for k, v in _extras(record).items())
        line = f"{stamp} {record.levelname[0]} {record.name}: {_message(record)}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def formatter_for(fmt: str) -> type[logging.Formatter]:
    """``fmt``: json, console, or auto (console when stderr is a terminal)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    return JsonFormatter if use_json else ConsoleFormatter


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """One handler on the root logger, to stderr, in format ``fmt`` (``formatter_for``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(fmt)())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def logging_config(fmt: str = "auto", level: str = "info") -> dict[str, Any]:
    """What ``configure_logging`` sets up, as a ``logging.config.dictConfig`` dict.

    For ``faust.Worker(app, logging_config=logging_config(fmt, level))``: given none, the
    worker (mode's ``setup_logging``) clears the root handlers and installs its own format,
    ``[time] [pid] [LEVEL] message``, which drops every ``extra=`` field and is never JSON.
    Loggers that already exist keep working (``disable_existing_loggers`` is off).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sep": {"()": formatter_for(fmt)}},
        "handlers": {
            "sep": {
                "class": "logging.StreamHandler",
                "formatter": "sep",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["sep"]},
    }
