"""Documentation a newcomer copies must work (issue 14, item 13): the quickstart runs as a script,
and every doc page our code cites exists in the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "examples" / "quickstart.py"


def test_quickstart_runs_as_a_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "favourite_colour" in result.stdout and "blue" in result.stdout
    assert (tmp_path / "data" / "memory-agent.db").is_file()  # it really used the SQLite default


def test_every_doc_page_the_edges_cite_exists() -> None:
    """`agent/` and `api/` are what a newcomer reads first; a citation there must lead somewhere."""
    cited: set[tuple[str, str]] = set()
    for package in ("agent", "api"):
        for path in (ROOT / package).rglob("*"):
            if path.suffix in {".py", ".sql"} and path.is_file():
                for match in re.findall(r"\b((?:docs|design)/[A-Za-z0-9_./-]+\.md)\b", path.read_text()):
                    cited.add((str(path.relative_to(ROOT)), match))
    missing = [(where, page) for where, page in sorted(cited) if not (ROOT / page).is_file()]
    assert not missing, f"cited but not in the repository: {missing}"
