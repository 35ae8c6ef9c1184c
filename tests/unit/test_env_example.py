"""`.env.example` documents real settings: copied to `.env` as it is, it loads, and names nothing unknown."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from memory.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_loads_with_every_variable_known() -> None:
    class FromExample(Settings):
        model_config = SettingsConfigDict(env_file=EXAMPLE, extra="forbid", env_ignore_empty=True)

    settings = FromExample()
    assert settings.store_url == "sqlite:///./data/memory-agent.db"


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", EXAMPLE.read_text(), flags=re.MULTILINE))
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"add these to .env.example: {sorted(missing)}"
