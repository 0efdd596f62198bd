"""The package surface: pipeline.ops re-exports the compiled module, the stub documents all of
it, and the twin mirrors it name for name and field for field."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

import pipeline
import pipeline._rust_ops as compiled
import pipeline.ops as ops
from pipeline.ops import twin

STUB = Path(pipeline.__file__).parent / "_rust_ops.pyi"


def public_names(module: object) -> set[str]:
    return {n for n in dir(module) if not n.startswith("_")}


def test_ops_re_exports_the_compiled_module_only() -> None:
    assert set(ops.__all__) == public_names(compiled)
    for name in ops.__all__:
        # The very same objects: no Python fallback hides behind the package.
        assert getattr(ops, name) is getattr(compiled, name)
    assert compiled.__file__ is not None
    assert compiled.__file__.endswith(".so") or compiled.__file__.endswith(".pyd")


def test_twin_mirrors_every_name() -> None:
    assert set(twin.__all__) == set(ops.__all__)
    assert (twin.FEE_DENOMINATOR, twin.MAX_HOPS) == (ops.FEE_DENOMINATOR, ops.MAX_HOPS)
    # The twin raises the compiled module's classes, so one `except` catches both.
    for name in ("RustOpsError", "PoolMathError", "InvalidPoolError", "RouteQueryError"):
        assert getattr(twin, name) is getattr(ops, name)


@pytest.mark.parametrize("cls", ["Pool", "GraphLeg", "GraphPath", "GraphRoute", "V3SwapResult"])
def test_twin_dataclasses_have_the_rust_fields(cls: str) -> None:
    fields = [f.name for f in dataclasses.fields(getattr(twin, cls))]
    rust_cls = getattr(ops, cls)
    for name in fields:
        assert isinstance(inspect.getattr_static(rust_cls, name), type(ops.Pool.fee)), name
    rust_props = {n for n in public_names(rust_cls) if not callable(getattr(rust_cls, n, None))}
    assert rust_props == set(fields)


def test_error_hierarchy() -> None:
    for name in ("PoolMathError", "InvalidPoolError", "RouteQueryError"):
        cls = getattr(ops, name)
        assert issubclass(cls, ops.RustOpsError)
        assert cls.__module__ == "pipeline._rust_ops"
    assert issubclass(ops.RustOpsError, Exception)


def test_stub_documents_everything() -> None:
    tree = ast.parse(STUB.read_text())
    documented: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            documented[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            documented[node.target.id] = node
    assert set(documented) == public_names(compiled)
    for name, node in documented.items():
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            assert ast.get_docstring(node), f"{name} has no docstring in the stub"
        if isinstance(node, ast.ClassDef):
            stub_members = {
                m.name
                for m in node.body
                if isinstance(m, ast.FunctionDef) and not m.name.startswith("_")
            }
            runtime = public_names(getattr(compiled, name)) - public_names(Exception)
            assert stub_members | {"code", "pool_id"} >= runtime, name
            assert stub_members <= runtime, name
