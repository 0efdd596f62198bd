"""The dev chain's npm packages, installed once into a cache, and the artifacts they hold.

``deployment/chain/package.json`` and its lock file pin the anvil binary
(``@foundry-rs/anvil``), the real Uniswap V3 artifacts (``@uniswap/v3-core@1.0.1``,
``@uniswap/v3-periphery@1.4.4``), WETH9 (``@uniswap/v2-periphery``) and ``solc``, which
compiles the test ERC20 offline. ``npm install`` installs the lock file's versions into
``<cache>/npm/<hash of manifest and lock>/``; npm's configured registry is used and
nothing here names a host. The lock file carries no ``resolved`` URLs for that reason
(``npm install --package-lock-only --omit-lockfile-registry-resolved`` regenerates it).

Like the Kafka jars (``kafka_dist``), a file lock serialises concurrent installs and a
marker file says the install completed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from pipeline.devstack.errors import FetchError, ToolMissingError
from pipeline.devstack.kafka_dist import cache_root

log = logging.getLogger(__name__)

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "deployment" / "chain"
_MANIFEST_FILES = ("package.json", "package-lock.json")
TEST_ERC20_SOURCE = MANIFEST_DIR / "contracts" / "TestERC20.sol"

# npm package -> directory of the anvil binary for this platform (an optional dependency of
# @foundry-rs/anvil, so only the matching one is installed).
_ANVIL_PLATFORMS = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
}

Artifact = dict[str, Any]
"""A compiled contract: at least ``abi`` (list) and ``bytecode`` (0x hex)."""


def _digest() -> str:
    sha = hashlib.sha256()
    for name in _MANIFEST_FILES:
        sha.update((MANIFEST_DIR / name).read_bytes())
    return sha.hexdigest()


def npm_home() -> Path:
    """Where this manifest's packages are (or will be) installed."""
    return cache_root() / "npm" / _digest()[:16]


@functools.cache
def ensure_chain_packages() -> Path:
    """The ``node_modules`` directory with the pinned packages, installing them if needed.

    Safe to call from several processes at once. Cached per process: the manifest does not
    change under a running program.
    """
    home = npm_home()
    home.mkdir(parents=True, exist_ok=True)
    modules, marker = home / "node_modules", home / "installed.sha256"
    digest = _digest()
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if modules.is_dir() and marker.is_file() and marker.read_text().strip() == digest:
            return modules
        _install(home)
        marker.write_text(digest + "\n")
    return modules


def _install(home: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ToolMissingError("npm", "install Node.js 18+ with npm (Debian: apt-get install npm)")
    for name in _MANIFEST_FILES:
        shutil.copyfile(MANIFEST_DIR / name, home / name)
    log.info("installing the dev chain's npm packages into %s", home)
    started = time.monotonic()
    # `npm install` with the lock file, not `npm ci`: npm writes only this platform's anvil
    # package into a lock file (the other platforms' optional packages are left out), and
    # `npm ci` then refuses the lock as out of sync. `install` keeps every locked version.
    # --ignore-scripts: anvil's postinstall only checks the platform package, which npm
    # already picked; no package here needs a build step.
    cmd = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    result = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise FetchError(
            "the dev chain npm packages", "\n".join(output[-30:]) or f"npm exit {result.returncode}"
        )
    log.info("installed the dev chain's npm packages in %.1fs", time.monotonic() - started)


def anvil_binary() -> Path:
    """The anvil executable shipped in the npm package (run directly, without node)."""
    key = (platform.system(), platform.machine())
    package = _ANVIL_PLATFORMS.get(key)
    if package is None:
        raise ToolMissingError("anvil", f"@foundry-rs/anvil ships no binary for {key}")
    binary = ensure_chain_packages() / "@foundry-rs" / package / "bin" / "anvil"
    if not binary.is_file():
        raise FetchError("anvil", f"npm installed @foundry-rs/anvil but {binary} is missing")
    return binary


@functools.cache
def artifact(package: str, relative: str) -> Artifact:
    """A JSON artifact from an installed package, e.g. ``("@uniswap/v3-core",
    "artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json")``."""
    path = ensure_chain_packages() / package / relative
    data: Artifact = json.loads(path.read_text())
    return data


def uniswap_artifact(name: str) -> Artifact:
    """A Uniswap V3 contract (or WETH9) by name, from the pinned npm packages."""
    where = {
        "UniswapV3Factory": ("@uniswap/v3-core", "artifacts/contracts/UniswapV3Factory.sol"),
        "UniswapV3Pool": ("@uniswap/v3-core", "artifacts/contracts/UniswapV3Pool.sol"),
        "NonfungiblePositionManager": (
            "@uniswap/v3-periphery",
            "artifacts/contracts/NonfungiblePositionManager.sol",
        ),
        "SwapRouter": ("@uniswap/v3-periphery", "artifacts/contracts/SwapRouter.sol"),
        "QuoterV2": ("@uniswap/v3-periphery", "artifacts/contracts/lens/QuoterV2.sol"),
    }
    if name == "WETH9":
        weth = artifact("@uniswap/v2-periphery", "build/WETH9.json")
        # This older (waffle) artifact has its bytecode without the 0x prefix.
        bytecode = str(weth["bytecode"])
        return {
            "abi": weth["abi"],
            "bytecode": bytecode if bytecode.startswith("0x") else "0x" + bytecode,
        }
    package, folder = where[name]
    return artifact(package, f"{folder}/{name}.json")


@functools.cache
def test_erc20() -> Artifact:
    """The test ERC20 compiled with the pinned solc; cached by source hash (solc takes ~3 s)."""
    modules = ensure_chain_packages()
    source = TEST_ERC20_SOURCE.read_bytes()
    script = MANIFEST_DIR / "compile.cjs"
    key = hashlib.sha256(source + script.read_bytes()).hexdigest()[:16]
    out = npm_home() / f"TestERC20.{key}.json"
    if out.is_file():
        cached: Artifact = json.loads(out.read_text())
        return cached
    node = shutil.which("node")
    if node is None:
        raise ToolMissingError("node", "install Node.js 18+ (Debian: apt-get install nodejs)")
    result = subprocess.run(
        [node, str(script), str(modules), str(TEST_ERC20_SOURCE), "TestERC20"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FetchError("the compiled test ERC20", result.stderr.strip()[-2000:])
    compiled: Artifact = json.loads(result.stdout)
    partial = out.with_suffix(".partial")
    partial.write_text(result.stdout)
    partial.rename(out)  # atomic: a concurrent reader sees the whole file or none
    return compiled
