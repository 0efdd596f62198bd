"""The example plugin as a user gets it: ``pip install`` into this virtualenv, seen by ``sep
plugins`` and by the pipeline (a fresh process, so installed entry points load as in a worker),
then uninstalled -- always, in ``finally``.

Offline: ``--no-build-isolation --no-deps --no-index`` builds with the flit_core already in the
venv (a dev dependency).  A lock file serialises test runs sharing the venv, and a run that
finds the plugin already installed leaves it installed.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.topology.loader import DEFAULT_PATH

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "plugins" / "examples" / "denylist"
PROBE = Path(__file__).with_name("pipeline_probe.py")
DISTRIBUTION = "sep-denylist"


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        timeout=300,
    )


def installed() -> bool:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture
def plugin_installed() -> Iterator[None]:
    assert importlib.util.find_spec("flit_core") is not None, (
        "flit_core builds the example plugin: pip install -e '.[dev]'"
    )
    with open(Path(sys.prefix) / ".sep-example-plugin.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        was_installed = installed()
        try:
            pip("install", "--no-build-isolation", "--no-deps", "--no-index", str(EXAMPLE))
            yield
        finally:
            if not was_installed:
                pip("uninstall", "-y", DISTRIBUTION)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEP_NO_PLUGINS", "SEP_TOPOLOGY")}
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def sep_plugins(topology: Path) -> dict[str, Any]:
    done = run("-m", "pipeline.cli.main", "plugins", "--json", "--topology", str(topology))
    assert done.returncode == 0, done.stdout + done.stderr
    plugins: dict[str, Any] = {p["name"]: p for p in json.loads(done.stdout)["plugins"]}
    return plugins


def test_pip_install_sep_plugins_and_the_pipeline_see_it(
    plugin_installed: None, tmp_path: Path
) -> None:
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["plugins"]["venues"]["uniswap_v3"]["enabled"] = False  # no chain here
    data["plugins"]["risk_checks"] = {
        "denylist": {"config": {"strategies": ["rogue-bot"], "assets": ["WBTC"]}}
    }
    topology = tmp_path / "topology.yaml"
    topology.write_text(yaml.safe_dump(data))

    denylist = sep_plugins(topology)["denylist"]
    assert denylist["source"] == "entry point"
    assert (denylist["distribution"], denylist["version"]) == (DISTRIBUTION, "0.1.0")
    assert denylist["risk_checks"] == ["denylist"]
    assert denylist["used"] == ["risk_checks.denylist"]

    done = run(str(PROBE), str(topology), str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert outcomes["rogue-bot/WETH"]["risk.rejected"]["rule"] == "denylist"
    assert outcomes["dca/WBTC"]["risk.rejected"] == {
        "rule": "denylist",
        "message": "asset WBTC is on the denylist",
        "limit": "not listed",
        "actual": "WBTC",
    }
    assert "denylist" in outcomes["dca/WETH"]["risk.approved"]["checks"]
    assert "exec.completed" in outcomes["dca/WETH"]


def test_uninstalled_it_is_gone(tmp_path: Path) -> None:
    """After the test above (or before it): the venv is as it was, and a topology that uses
    the plugin no longer starts."""
    if installed():
        pytest.skip("sep-denylist was installed before the tests")
    data = yaml.safe_load(DEFAULT_PATH.read_text())
    data["plugins"]["risk_checks"] = {"denylist": {"config": {"strategies": ["x"]}}}
    topology = tmp_path / "topology.yaml"
    topology.write_text(yaml.safe_dump(data))
    done = run("-m", "pipeline.cli.main", "plugins", "--topology", str(topology))
    assert done.returncode == 1
    assert "plugins.risk_checks.denylist: no installed plugin provides risk check" in done.stdout
