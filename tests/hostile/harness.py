"""The hostile-input harness (fixture `sandbox` in conftest.py): every case runs in a sandbox and must leave the world as it was.

`sandbox.run(*argv)` runs the command line in this process (its own cache in the test's
temporary folder, the real converted default model linked in read-only by convention) and
returns exit code, stdout and stderr. `sandbox.run_process(*argv)` does the same in a child
process, for what only a real process shows (broken pipes, kill -9, stderr noise).

Every test that takes `sandbox` is checked afterwards: the project's layout and shipped
assets, the shared surveys, the real converted model and the folders beside the test's own
must hold exactly the files they held before, with the same sizes and modification times.
A hostile input may only touch the test's temporary folder.

`assert_clear_error(result, fragment)` is the contract of a refused input: exit status 2,
exactly one `focusgroup: error:` line on stderr naming the problem, no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_SURVEYS = PROJECT_ROOT.parent / "shared" / "surveys"
SKIPPED_PARTS = {".git", ".venv", "__pycache__", ".pytest_cache", "artifacts", ".cache"}


def real_cache_root() -> Path:
    return Path(os.environ.get("FOCUSGROUP_CACHE") or Path.home() / ".cache" / "focusgroup")


def snapshot(root: Path, depth: int | None = None, skip: Path | None = None,
             names_only: bool = False) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime) of every file (folders, or everything with `names_only`:
    the name alone) under `root`, down to `depth` levels, leaving out virtual environments,
    caches and `skip`."""
    if not root.exists():
        return {}
    found = {}
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        level = len(here.relative_to(root).parts)
        subfolders[:] = [name for name in subfolders if name not in SKIPPED_PARTS and not name.endswith(".egg-info")
                         and here / name != skip and (depth is None or level < depth)]
        for name in subfolders:
            found[str((here / name).relative_to(root))] = (0, 0)
        for name in files:
            stat = (here / name).lstat()
            found[str((here / name).relative_to(root))] = (0, 0) if names_only else (stat.st_size, stat.st_mtime_ns)
    return found


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Sandbox:
    root: Path
    cache: Path
    data_dir: Path
    home: Path
    capsys: object

    def env(self) -> dict[str, str]:
        return {**os.environ, "FOCUSGROUP_CACHE": str(self.cache), "HOME": str(self.home),
                "FOCUSGROUP_DATA_DIR": str(self.data_dir), "HF_HUB_OFFLINE": "1"}

    def run(self, *argv: str) -> Result:
        from engine.cli import main

        self.capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def run_process(self, *argv: str, env: dict | None = None, timeout: float = 300, **kwargs) -> Result:
        completed = subprocess.run([sys.executable, "-m", "engine.cli", *map(str, argv)], capture_output=True,
                                   text=True, env={**self.env(), **(env or {})}, cwd=self.root, timeout=timeout,
                                   **kwargs)
        return Result(completed.returncode, completed.stdout, completed.stderr)


def assert_clear_error(result: Result, fragment: str = "") -> None:
    """Exit 2, one `focusgroup: error:` line naming the problem, nothing like a traceback."""
    assert "Traceback" not in result.err, result.err[-2000:]
    lines = [line for line in result.err.splitlines() if line.startswith("focusgroup: error:")]
    assert result.code == 2, (result.code, result.err[-2000:])
    assert len(lines) == 1, result.err[-2000:]
    assert fragment.casefold() in lines[0].casefold(), lines[0]
    assert len(lines[0]) < 600, f"the message is too long to read: {len(lines[0])} characters"
