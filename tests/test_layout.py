"""The package root holds the product; the stand-ins, their scenarios and the demo live in `sandbox/`.

The product reaches the stand-ins only over the network, exactly as it reaches the real GoCardless and
Sage 100, so no module outside `sandbox/`, `cli/` and `bench/` (the tooling that starts stand-ins) may
import `ml_connector_dagster.sandbox` - not even under `if TYPE_CHECKING:`. These tests read each
module's imports with `ast`: nothing is imported or run, and every import statement counts, wherever it is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ml_connector_dagster

PACKAGE_DIR = Path(ml_connector_dagster.__file__).parent
SANDBOX = "ml_connector_dagster.sandbox"
MAY_IMPORT_SANDBOX = ("sandbox", "cli", "bench")  # top-level folders of the package


def module_name(path: Path) -> str:
    """`ml_connector_dagster/agent/backends.py` -> `ml_connector_dagster.agent.backends`."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The absolute names an import statement in `module` reaches: `from ..sandbox import stack` in
    `ml_connector_dagster.agent.backends` reaches `ml_connector_dagster.sandbox` and `...sandbox.stack`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        parent = package[: len(package) - (node.level - 1)]
        base = ".".join([*parent, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def sandbox_imports(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, statement) of every import in `source` that reaches the sandbox package."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        names = imported_names(node, module, is_package)
        if any(name == SANDBOX or name.startswith(SANDBOX + ".") for name in names):
            yield node.lineno, ast.get_source_segment(source, node) or ast.unparse(node)


def product_modules() -> list[Path]:
    """Every module of the package outside the folders that may import the sandbox."""
    return [
        path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if path.relative_to(PACKAGE_DIR).parts[0] not in MAY_IMPORT_SANDBOX
    ]


def offences_in(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    where = path.relative_to(PACKAGE_DIR.parent)
    return [
        f"{where}:{line}: {statement}"
        for line, statement in sandbox_imports(source, module_name(path), path.name == "__init__.py")
    ]


def test_no_product_module_imports_the_sandbox() -> None:
    offences = [offence for path in product_modules() for offence in offences_in(path)]

    assert not offences, (
        "product code must reach the stand-ins over the network, never by import; move these imports into "
        "sandbox/, cli/ or bench/ (or move the module):\n  " + "\n  ".join(offences)
    )


def test_the_check_covers_the_product_modules() -> None:
    names = {module_name(path) for path in product_modules()}

    assert {
        "ml_connector_dagster.definitions",
        "ml_connector_dagster.agent.backends",
        "ml_connector_dagster.gocardless.receiver",
        "ml_connector_dagster.defs.gocardless",
    } <= names
    assert not any(name.startswith(SANDBOX) for name in names)


def test_the_check_sees_the_cli_import_the_sandbox() -> None:
    """The same reading finds the imports the CLI does have (so a clean product is not a blind check)."""
    found = offences_in(PACKAGE_DIR / "cli" / "agent_cmd.py")

    assert any("from ..sandbox.simulated_backend import SimulatedBackend" in offence for offence in found)


def test_every_way_of_writing_a_sandbox_import_is_caught() -> None:
    source = "\n".join(
        [
            "from typing import TYPE_CHECKING",
            "if TYPE_CHECKING:",
            "    from ..sandbox.sage_company import SageCompany",  # 3
            "from .. import sandbox",  # 4
            "from ml_connector_dagster import sandbox as sb",  # 5
            "import ml_connector_dagster.sandbox.stack",  # 6
            "def later():",
            "    from ml_connector_dagster.sandbox import demo",  # 8
            "from ..sandboxed import thing",  # 9: another name, not the sandbox
            "from ..sage100 import model",  # 10
        ]
    )

    lines = [line for line, _ in sandbox_imports(source, "ml_connector_dagster.agent.backends")]

    assert sorted(lines) == [3, 4, 5, 6, 8]


def test_relative_imports_resolve_from_a_package_init() -> None:
    """In `agent/__init__.py`, `from .x import y` means `ml_connector_dagster.agent.x`."""
    assert list(sandbox_imports("from .sandbox import x", "ml_connector_dagster", is_package=True))
    assert not list(sandbox_imports("from .sandbox import x", "ml_connector_dagster.agent", is_package=True))
