"""Installs come from the lock: the README's setup command gives exactly uv.lock's versions.

A fresh machine must get what was tested (a new driver release once broke CI on a
fresh clone), so setup refuses a pyproject.toml that no longer matches the lock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "memory-agent"


def locked_versions() -> dict[str, set[str]]:
    """Every locked version of each package (a few have one per Python version range)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        if package["name"] != PROJECT and "version" in package:
            versions.setdefault(normalise(package["name"]), set()).add(package["version"])
    return versions


def direct_dependencies() -> list[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [project] = [p for p in lock["package"] if p["name"] == PROJECT]
    names = [d["name"] for d in project.get("dependencies", [])]
    names += [d["name"] for d in project.get("optional-dependencies", {}).get("dev", [])]
    return names


def installed_versions(python: str) -> dict[str, str]:
    script = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"
    )
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True, timeout=60).stdout

    return dict(json.loads(out))


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def test_every_locked_package_has_hashes() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for package in lock["package"]:
        if package["name"] == PROJECT:
            continue
        files = [package["sdist"]] if "sdist" in package else []
        files += package.get("wheels", [])
        assert files and all(f.get("hash", "").startswith("sha256:") for f in files), package["name"]


def test_this_environment_is_exactly_the_lock() -> None:
    """The suite runs in what setup installed: every direct dependency at its locked version."""
    locked = locked_versions()
    installed = {normalise(k): v for k, v in installed_versions(sys.executable).items()}
    for name in map(normalise, direct_dependencies()):
        assert installed.get(name) in locked[name], f"{name}: installed {installed.get(name)}, locked {locked[name]}"
    differing = {n: (v, locked[n]) for n, v in installed.items() if n in locked and v not in locked[n]}
    assert not differing, differing


@pytest.mark.slow
def test_setup_script_installs_the_lock_and_refuses_a_stale_one(tmp_path: Path) -> None:
    """`bash scripts/setup.sh` on a fresh copy: exactly the lock; a changed pyproject.toml without a re-lock fails."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    copy = tmp_path / "repo"
    for name in tracked:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    if (ROOT / ".tools").is_dir():  # reuse the pinned uv instead of downloading it again
        (copy / ".tools").symlink_to(ROOT / ".tools")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}

    result = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=copy, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    locked = locked_versions()
    installed = {normalise(k): v for k, v in installed_versions(str(copy / ".venv/bin/python")).items()}
    assert installed.pop(PROJECT) == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert set(installed) <= set(locked), set(installed) - set(locked)
    assert {n: v for n, v in installed.items() if v not in locked[n]} == {}
    for name in map(normalise, direct_dependencies()):
        assert name in installed, f"{name} from the lock is not installed"

    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx>=0.28,<1",', '"httpx>=0.28,<1",\n    "six",'))
    result = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=copy, env=environment, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "lock" in (result.stderr + result.stdout).lower()
