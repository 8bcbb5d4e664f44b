"""The code location: the definitions of every module in `ml_connector_dagster/defs/`, merged.

This is a `dg` project (`[tool.dg]` in pyproject.toml): each module in `defs/` exposes its own
`defs = dg.Definitions(...)`, and the defs folder is loaded whole, so a new module there is picked up
without being listed here. Each module is imported once and its one `Definitions` object used as is
(nothing in it is loaded a second time from its loose assets or jobs).

The tree is built from the imported `defs` package rather than found through pyproject.toml
(`dg.load_from_defs_folder`), so the definitions load the same from a checkout and from an installed wheel,
which has no pyproject.toml. `defs` is a module-level object: `dagster`, `dg` and the tests all use it.
"""

from pathlib import Path

import dagster as dg

from . import defs as defs_package

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def load_defs_folder() -> dg.Definitions:
    """Every module of the defs folder, each module's `defs` merged into one."""
    return dg.ComponentTree.from_module(defs_module=defs_package, project_root=PROJECT_ROOT).build_defs()


defs = load_defs_folder()
