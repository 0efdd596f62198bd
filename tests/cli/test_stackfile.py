"""The state file of a running ``sep up``: what it holds, when it is trusted, and how the
other commands merge it with their environment."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli.common import UserError
from pipeline.cli.main import main
from pipeline.cli.stackfile import (
    SECRETS_FILE,
    STATE_FILE,
    StackState,
    StaleState,
    attach,
    merge,
    read_state,
    refuse_second_stack,
    remove_state,
    settings_for_stack,
    stack_environment,
    write_state,
)
from pipeline.config import Settings

STACK_VARS = (
    "SEP_KAFKA",
    "SEP_POSTGRES",
    "SEP_REDIS",
    "SEP_RPC",
    "SEP_DEPLOYMENT",
    "SEP_REDIS_PREFIX",
    "SEP_OPERATOR_TOKEN",
)


def stack_settings(
    data_dir: Path,
    postgres: str = "postgresql://postgres@127.0.0.1:25432/sep",
) -> Settings:
    return Settings(
        kafka="127.0.0.1:29092",
        postgres=postgres,
        redis="redis://127.0.0.1:26379/0",
        rpc="http://127.0.0.1:28545",
        deployment=data_dir / "chain" / "deployment.json",
        data_dir=data_dir,
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No stack variable set (empty is unset); monkeypatch restores whatever attach adds."""
    for var in STACK_VARS:
        monkeypatch.setenv(var, "")


# ----------------------------------------------------------------------------- the file


def test_the_file_says_how_to_reach_the_stack(data_dir: Path) -> None:
    settings = stack_settings(data_dir)
    when = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    assert write_state(data_dir, settings, ui="http://127.0.0.1:8700/ui/", now=when) == []
    raw = json.loads((data_dir / STATE_FILE).read_text())
    assert raw["pid"] == os.getpid()
    assert raw["started"] == "2025-05-01T09:30:00Z"
    assert raw["ui"] == "http://127.0.0.1:8700/ui/"
    assert raw["secrets"] is None
    assert raw["environment"] == stack_environment(settings)
    assert raw["environment"]["SEP_KAFKA"] == "127.0.0.1:29092"
    assert raw["environment"]["SEP_DEPLOYMENT"] == str(data_dir / "chain" / "deployment.json")
    assert not (data_dir / SECRETS_FILE).exists()
    state = read_state(data_dir)
    assert state is not None
    assert state.environment == stack_environment(settings)
    assert (state.pid, state.ui) == (os.getpid(), "http://127.0.0.1:8700/ui/")


def test_the_operator_token_is_kept_apart_and_masked_whole(data_dir: Path) -> None:
    settings = dataclasses.replace(stack_settings(data_dir), operator_token="tok-Zq81x")
    assert write_state(data_dir, settings) == ["SEP_OPERATOR_TOKEN"]
    text = (data_dir / STATE_FILE).read_text()
    assert "tok-Zq81x" not in text
    assert json.loads(text)["environment"]["SEP_OPERATOR_TOKEN"] == "***"
    secrets = data_dir / SECRETS_FILE
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert json.loads(secrets.read_text()) == {"SEP_OPERATOR_TOKEN": "tok-Zq81x"}
    state = read_state(data_dir)
    assert state is not None
    assert state.environment["SEP_OPERATOR_TOKEN"] == "tok-Zq81x"


def test_a_password_is_kept_apart_in_a_private_file(data_dir: Path) -> None:
    dsn = "postgresql://sep:s3cret@db.internal:5432/sep"
    settings = stack_settings(data_dir, postgres=dsn)
    assert write_state(data_dir, settings) == ["SEP_POSTGRES"]
    text = (data_dir / STATE_FILE).read_text()
    assert "s3cret" not in text
    assert json.loads(text)["environment"]["SEP_POSTGRES"] == (
        "postgresql://sep:***@db.internal:5432/sep"
    )
    assert json.loads(text)["secrets"] == SECRETS_FILE
    secrets = data_dir / SECRETS_FILE
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert json.loads(secrets.read_text()) == {"SEP_POSTGRES": dsn}
    state = read_state(data_dir)
    assert state is not None
    assert state.environment["SEP_POSTGRES"] == dsn
    # Written again without a password: the old secret does not linger.
    write_state(data_dir, stack_settings(data_dir))
    assert not secrets.exists()


def test_a_secret_that_cannot_be_read_is_named(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir, "postgresql://sep:pw@db/sep"))
    (data_dir / SECRETS_FILE).unlink()
    with pytest.raises(
        UserError,
        match=r"keeps its passwords in .*stack\.secrets\.json.*"
        r"set SEP_POSTGRES yourself",
    ):
        read_state(data_dir)


def test_removed_on_exit_only_by_the_process_that_wrote_it(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir, "postgresql://sep:pw@db/sep"))
    remove_state(data_dir, pid=os.getpid() + 1)
    assert (data_dir / STATE_FILE).exists()
    remove_state(data_dir)
    assert not (data_dir / STATE_FILE).exists()
    assert not (data_dir / SECRETS_FILE).exists()
    remove_state(data_dir)  # nothing left: no error


def test_no_file_no_state(data_dir: Path) -> None:
    assert read_state(data_dir) is None


def test_a_file_whose_sep_up_is_gone_is_stale(data_dir: Path) -> None:
    pid = dead_pid()
    write_state(data_dir, stack_settings(data_dir), pid=pid)
    with pytest.raises(
        StaleState,
        match=rf"the `sep up` that wrote it \(pid {pid}, up since "
        r".*\) is no longer running",
    ):
        read_state(data_dir)


def test_a_pid_now_held_by_another_process_is_stale(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir))
    path = data_dir / STATE_FILE
    raw = json.loads(path.read_text())
    if raw["pidStart"] is None:
        pytest.skip("no /proc here: the pid's start time is unknown")
    path.write_text(json.dumps({**raw, "pidStart": str(int(raw["pidStart"]) + 1)}))
    with pytest.raises(StaleState, match="no longer running"):
        read_state(data_dir)


def test_a_file_that_is_not_a_state_file_is_ignored(data_dir: Path) -> None:
    (data_dir / STATE_FILE).write_text("{not json")
    with pytest.raises(StaleState, match="not a state file sep up wrote"):
        read_state(data_dir)


# ----------------------------------------------------------------------------- merging


STATE = StackState(
    pid=1,
    started="t",
    environment={
        "SEP_KAFKA": "k:1",
        "SEP_POSTGRES": "postgresql://p/sep",
        "SEP_REDIS": "redis://r/0",
        "SEP_RPC": "http://c:1",
        "SEP_DEPLOYMENT": "/d.json",
        "SEP_REDIS_PREFIX": "",
    },
)


def test_the_environment_wins_variable_by_variable() -> None:
    taken = merge({"SEP_KAFKA": "mine:9092", "SEP_REDIS": ""}, STATE)
    # SEP_KAFKA is the caller's; an empty SEP_REDIS is unset; an empty prefix is the default.
    assert taken == {
        "SEP_POSTGRES": "postgresql://p/sep",
        "SEP_REDIS": "redis://r/0",
        "SEP_RPC": "http://c:1",
        "SEP_DEPLOYMENT": "/d.json",
    }
    assert merge(dict(STATE.environment), STATE) == {}


def test_attach_completes_the_environment_and_says_from_where(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir), ui="http://127.0.0.1:8700/ui/")
    environ = {"SEP_DATA": str(data_dir), "SEP_KAFKA": "mine:9092", "SEP_REDIS": ""}
    said: list[str] = []
    state = attach(environ, said.append)
    assert state is not None
    assert environ["SEP_KAFKA"] == "mine:9092"
    assert environ["SEP_REDIS"] == "redis://127.0.0.1:26379/0"  # set empty is unset
    assert environ["SEP_POSTGRES"] == "postgresql://postgres@127.0.0.1:25432/sep"
    assert environ["SEP_RPC"] == "http://127.0.0.1:28545"
    assert "SEP_REDIS_PREFIX" not in environ
    assert said == [
        f"attached to the stack `sep up` runs (pid {os.getpid()}, up since "
        f"{state.started}, UI http://127.0.0.1:8700/ui/; {data_dir / STATE_FILE}); "
        "kept from your environment: SEP_KAFKA"
    ]


def test_attach_ignores_a_stale_file_with_a_note(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir), pid=dead_pid())
    environ = {"SEP_DATA": str(data_dir)}
    said: list[str] = []
    assert attach(environ, said.append) is None
    assert environ == {"SEP_DATA": str(data_dir)}
    assert len(said) == 1
    assert said[0].startswith(f"ignoring {data_dir / STATE_FILE}: the `sep up` that wrote it")


def test_attach_is_silent_without_a_file_or_with_everything_set(data_dir: Path) -> None:
    said: list[str] = []
    assert attach({"SEP_DATA": str(data_dir)}, said.append) is None
    write_state(data_dir, stack_settings(data_dir))
    assert attach({"SEP_DATA": str(data_dir), **STATE.environment}, said.append) is None
    assert said == []


@pytest.mark.usefixtures("clean_env")
def test_commands_get_settings_of_the_running_stack(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(data_dir, stack_settings(data_dir, "postgresql://sep:pw@127.0.0.1:25432/sep"))
    settings = settings_for_stack()
    assert settings.kafka == "127.0.0.1:29092"
    assert settings.postgres == "postgresql://sep:pw@127.0.0.1:25432/sep"
    assert settings.rpc == "http://127.0.0.1:28545"
    assert settings.data_dir == data_dir.resolve()
    assert os.environ["SEP_RPC"] == "http://127.0.0.1:28545"  # for plugins' own Settings()
    assert "attached to the stack" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_sep_status_talks_to_the_stack_it_attached_to(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pipeline.status

    seen: list[Settings] = []

    async def collect(settings: Settings, topology: object) -> dict[str, object]:
        seen.append(settings)
        return {
            "intents": 0,
            "active": 0,
            "states": {},
            "events": {},
            "success_rate": None,
            "event_store": "postgres",
        }

    monkeypatch.setattr(pipeline.status, "collect_status", collect)
    write_state(data_dir, stack_settings(data_dir))
    assert main(["status"]) == 0
    assert [(s.kafka, s.redis) for s in seen] == [("127.0.0.1:29092", "redis://127.0.0.1:26379/0")]
    captured = capsys.readouterr()
    assert f"attached to the stack `sep up` runs (pid {os.getpid()}" in captured.err
    assert "intents: 0 (0 active)" in captured.out


# ----------------------------------------------------------------------------- sep up


def test_a_second_sep_up_on_the_same_data_is_refused(data_dir: Path) -> None:
    write_state(data_dir, stack_settings(data_dir), ui="http://127.0.0.1:8700/ui/")
    with pytest.raises(
        UserError,
        match=r"a stack is already running from .* \(pid "
        rf"{os.getpid()}, .*UI http://127.0.0.1:8700/ui/.*another SEP_DATA",
    ):
        refuse_second_stack(data_dir)


def test_sep_up_refuses_before_starting_anything(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_state(data_dir, stack_settings(data_dir))
    before = sorted(data_dir.iterdir())
    assert main(["up"]) == 2
    assert "sep up: a stack is already running from" in capsys.readouterr().err
    assert sorted(data_dir.iterdir()) == before


def test_a_stale_file_does_not_stop_sep_up(data_dir: Path) -> None:
    assert refuse_second_stack(data_dir) is None
    write_state(data_dir, stack_settings(data_dir), pid=dead_pid())
    note = refuse_second_stack(data_dir)
    assert note is not None
    assert note.endswith("is no longer running; removed it")
    assert not (data_dir / STATE_FILE).exists()
