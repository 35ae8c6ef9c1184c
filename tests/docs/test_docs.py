"""The README and docs/ stay true: their Python examples run as scripts and their links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_CODE = re.compile(r"```python\n(.*?)```", re.S)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def python_examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for n, block in enumerate(_CODE.findall(page.read_text())):
            if "asyncio.run(" in block:  # complete scripts; fragments are marked by not running anything
                found.append((f"{page.relative_to(ROOT)}#{n}", block))
    return found


@pytest.mark.parametrize(("where", "code"), python_examples(), ids=[w for w, _ in python_examples()])
def test_python_examples_run_as_scripts(where: str, code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{where}: {result.stderr}"
    assert "blue" in result.stdout  # the example's memory came back from search
    assert (tmp_path / "data" / "memory-agent.db").exists()


def test_the_readme_has_a_runnable_example() -> None:
    assert any(where.startswith("README.md") for where, _ in python_examples())


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    broken = [
        target
        for target in _LINK.findall(page.read_text())
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text) < 12_000, "keep the README a five-minute read; details belong in docs/"
    head = "\n".join(text.splitlines()[:6])
    assert "bash scripts/run-agent.sh dev" in head and "bash scripts/test.sh" in head
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
