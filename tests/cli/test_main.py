"""``sep``'s parser: every subcommand is registered, teaches by example, and the CLI
modules import each other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipeline.cli
from pipeline.cli.main import build_parser, main

SUBCOMMANDS = (
    "up",
    "submit",
    "demo",
    "status",
    "kill",
    "resume",
    "topology",
    "plugins",
    "worker",
    "schema",
    "bench",
    "replay",
    "backtest",
    "data",
    "record",
    "walkforward",
)
REQUIRED_ARGS = {
    "bench": ["router"],
    "backtest": ["data.jsonl"],
    "data": ["generate", "--out", "data.jsonl"],
    "record": ["--out", "data.jsonl"],
    "walkforward": ["data.jsonl", "--train", "1h", "--test", "1h"],
}
CLI_DIR = Path(pipeline.cli.__file__).parent


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        # A name as long as walkforward has its help on the next line (argparse's layout).
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_help_ends_with_examples(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sep {name}")
    examples = out.split("\nexamples:\n", 1)[1].splitlines()
    assert examples
    assert all(line.startswith("  ") for line in examples)
    assert any(
        line.strip().startswith(f"sep {name}") or f" sep {name}" in line for line in examples
    )


def test_descriptions_are_wrapped_and_examples_are_not(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--help"])
    description, examples = capsys.readouterr().out.split("\nexamples:\n")
    assert max(len(line) for line in description.splitlines()) <= 80
    assert "  SEP_POSTGRES=postgresql://sep@db:5432/sep sep up   (an existing PostgreSQL)" in (
        examples.splitlines()
    )


def test_every_subcommand_has_a_handler() -> None:
    parser = build_parser()
    for name in SUBCOMMANDS:
        args = parser.parse_args([name, *REQUIRED_ARGS.get(name, [])])
        assert callable(args.handler), name


def _cli_imports(path: Path) -> set[str]:
    """The ``pipeline.cli`` modules that ``path`` imports (at the top or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pipeline.cli":
                found.update(f"pipeline.cli.{alias.name}" for alias in node.names)
            elif node.module.startswith("pipeline.cli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline.cli."))
    return found


def test_cli_modules_import_each_other_without_a_cycle() -> None:
    graph = {f"pipeline.cli.{p.stem}": _cli_imports(p) for p in CLI_DIR.glob("*.py")}

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))

    for module in graph:
        visit(module, ())
    # The subcommands share helpers through `common`, never each other's internals.
    assert graph["pipeline.cli.common"] == set()
    assert "pipeline.cli.main" not in set().union(*graph.values())
