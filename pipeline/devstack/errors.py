"""Named errors of the dev stack, each carrying what a person needs to act on it."""

from __future__ import annotations

from pathlib import Path


class DevStackError(Exception):
    """Base class: something in the embedded dev stack could not be done."""


class ToolMissingError(DevStackError):
    """A program the dev stack needs (java, mvn, redis-server, ...) is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        self.hint = hint
        super().__init__(f"{tool} not found: {hint}")


class FetchError(DevStackError):
    """Fetching a service's distribution (e.g. the Kafka jars through Maven) failed."""

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"could not fetch {what}: {detail}")


class ServiceStartError(DevStackError):
    """A service exited or did not become healthy in time; the message ends with its log tail."""

    def __init__(self, service: str, reason: str, log_path: Path | None = None) -> None:
        self.service = service
        self.reason = reason
        self.log_path = log_path
        message = f"{service}: {reason}"
        if log_path is not None:
            message += f"\n--- last lines of {log_path} ---\n{_tail(log_path)}"
        super().__init__(message)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
