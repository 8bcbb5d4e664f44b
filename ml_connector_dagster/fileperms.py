"""Data private to the service user: folders 0700 and files 0600, when they are created and at start-up.

ML_CONNECTOR_HOME holds payment data and credentials (the operational store, the warehouse, the encrypted
secrets, the agent's ledger, Dagster's storage in dev) that no other local user should read. New files are
created with their final mode, so they are never open for a moment; what an older version (or a copy) left
open is tightened at start-up; `config check` names whatever is still reachable by group or others.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077  # for a child process (dagster dev) that creates files of its own
OPEN_BITS = 0o077  # any permission for group or others
ENTER_BITS = 0o011  # group or others may enter a folder (and so reach what is inside)
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
# What the connector keeps directly under ML_CONNECTOR_HOME; closing a folder closes everything inside it.
HOME_ENTRIES = (
    "ops.sqlite",
    *(f"ops.sqlite{s}" for s in SQLITE_SIDECARS),
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
    "secrets.json",
    "agent",
    "dagster",
    "sandbox",
    "sage",
    "dev.env",
)


def private_folder(path: Path) -> Path:
    """Create `path` and its missing parents as 0700 folders. An existing folder keeps its mode: it may be
    shared (a sqlite file in /var/lib), so only the home folder is tightened, by `secure_home`."""
    missing, parent = [], Path(path)
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        with suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=PRIVATE_FOLDER)
            os.chmod(folder, PRIVATE_FOLDER)  # mkdir's mode passes through the umask
    return Path(path)


def private_file(path: Path, sidecars: Iterable[str] = ()) -> Path:
    """Make `path` exist as a 0600 file in a private folder, created so (never open for a moment); an
    existing one, and its `sidecars` (path + suffix, e.g. SQLite's -wal), are tightened."""
    path = Path(path)
    private_folder(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    tighten(path, *(path.with_name(path.name + suffix) for suffix in sidecars))
    return path


def tighten(*paths: Path) -> None:
    """Take group's and others' permissions off each existing path of ours (symlinks are not followed).
    Best effort: what cannot be changed (read-only mount) is left for `config check` to report."""
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid == os.geteuid() and not stat.S_ISLNK(st.st_mode) and st.st_mode & OPEN_BITS:
            with suppress(OSError):
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~OPEN_BITS)


def secure_home(home: Path) -> None:
    """At start-up: close the home folder and the connector's entries in it to group and others.

    A home that is not ours, is sticky (/tmp) or is a mount point is not the connector's own folder and is
    left alone (its entries are still tightened); `config check` reports it.
    """
    home = Path(home)
    if not home.is_dir():
        return
    if _own_folder(home):
        tighten(home.resolve())
    tighten(*(home / name for name in HOME_ENTRIES))


def _own_folder(folder: Path) -> bool:
    try:
        real = folder.resolve()
        st = os.stat(real)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & stat.S_ISVTX and not os.path.ismount(real)


def exposed(home: Path, limit: int = 20) -> list[tuple[Path, int]]:
    """Paths under `home` (and `home` itself) that group or others can reach, with their modes: an open
    file or folder inside a folder they may enter. At most `limit`."""
    found: list[tuple[Path, int]] = []
    home = Path(home)
    if home.is_dir():
        _visit(home, found, limit)
    return found


def _visit(folder: Path, found: list[tuple[Path, int]], limit: int) -> None:
    mode = stat.S_IMODE(os.stat(folder).st_mode)
    if mode & OPEN_BITS:
        found.append((folder, mode))
    if not mode & ENTER_BITS:
        return  # nobody else can enter: what is inside is out of their reach
    with suppress(OSError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if len(found) >= limit:
                return
            if entry.is_symlink():
                continue
            if entry.is_dir():
                _visit(Path(entry.path), found, limit)
            elif entry.stat().st_mode & OPEN_BITS:
                found.append((Path(entry.path), stat.S_IMODE(entry.stat().st_mode)))
