"""`python -m agent dev|start|console|connect|download-files`: check the configuration, then run the worker.

LiveKit's own CLI logs a missing `LIVEKIT_URL` and still exits 0, and the OpenAI
plugin only fails once a call arrives; this checks both up front and exits non-zero
with a message naming exactly what to set.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
import warnings
from collections.abc import Sequence

from pydantic import SecretStr, ValidationError

from memory.settings import Settings, get_settings
from stores import startup_problem

USAGE = """usage: python -m agent <command> [options]

commands:
  dev              run the worker against LiveKit in development mode (no auto-reload:
                   for hot reload use the LiveKit CLI, `lk agent dev`)
  start            run the worker in production mode
  connect          connect the worker to one room (--room NAME)
  console          talk to the agent in this terminal (no LiveKit server needed;
                   needs PortAudio: apt-get install libportaudio2)
  download-files   download model files the plugins need (run once at build time)

options LiveKit's CLI takes are passed on, e.g. --url, --api-key, --api-secret
(they override LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET), --log-level.

environment (or .env, then .env.local, which `lk app env -w` writes and which wins):
LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, OPENAI_API_KEY (or OPENAI_BASE_URL),
STORE_URL, AGENT_NAME; see .env.example"""

# LiveKit CLI flags that stand in for settings (`--url X` or `--url=X`)
LIVEKIT_FLAGS = {"--url": "livekit_url", "--api-key": "livekit_api_key", "--api-secret": "livekit_api_secret"}

LIVEKIT_MODES = frozenset({"dev", "start", "connect"})
MODEL_MODES = frozenset({"dev", "start", "connect", "console"})
MODES = LIVEKIT_MODES | MODEL_MODES | {"download-files"}
EXIT_CONFIG = 2
EXIT_STORE = 3  # the store did not answer at start-up


def configuration_problems(mode: str, settings: Settings) -> list[str]:
    """Everything missing or wrong for `mode`, each naming what to set (empty when ready)."""
    from agent.models import model_credentials_problem

    problems: list[str] = []
    if mode in LIVEKIT_MODES:
        missing = [
            name
            for name, value in (
                ("LIVEKIT_URL", settings.livekit_url),
                ("LIVEKIT_API_KEY", settings.livekit_api_key),
                ("LIVEKIT_API_SECRET", settings.livekit_api_secret),
            )
            if not value or (hasattr(value, "get_secret_value") and not value.get_secret_value())
        ]
        if missing:
            problems.append(
                f"{', '.join(missing)} not set: use your LiveKit Cloud project's URL and API key/secret "
                "(cloud.livekit.io -> Settings -> API keys) or those of your self-hosted server"
            )
        elif not str(settings.livekit_url).startswith(("ws://", "wss://", "http://", "https://")):
            problems.append(
                "LIVEKIT_URL must start with wss:// (or ws://, https://), e.g. wss://my-project.livekit.cloud"
            )
    if mode in MODEL_MODES:
        problem = model_credentials_problem(settings)
        if problem:
            problems.append(problem)
    if mode in MODEL_MODES:
        from stores.registry import backend_module

        try:
            backend_module(settings.store_url)
        except ValueError as exc:
            problems.append(str(exc))
        except ImportError as exc:
            problems.append(f"the backend for STORE_URL cannot be loaded ({exc}); install its driver")
    if mode == "console" and ctypes.util.find_library("portaudio") is None:
        problems.append(
            "console mode needs the PortAudio library: install it (Debian/Ubuntu: apt-get install libportaudio2)"
        )
    return problems


def livekit_flag_values(args: Sequence[str]) -> dict[str, str | SecretStr]:
    """The settings LiveKit's own `--url/--api-key/--api-secret` flags give (last one wins)."""
    values: dict[str, str | SecretStr] = {}
    for index, arg in enumerate(args):
        name, _, inline = arg.partition("=")
        if name in LIVEKIT_FLAGS:
            value = inline if inline else (args[index + 1] if index + 1 < len(args) else "")
            if value and not value.startswith("--"):
                values[LIVEKIT_FLAGS[name]] = SecretStr(value) if name == "--api-secret" else value
    return values


def _export_for_livekit(settings: Settings) -> None:
    """LiveKit's CLI reads os.environ only; pass on values that came from `.env`."""
    values = {
        "LIVEKIT_URL": settings.livekit_url,
        "LIVEKIT_API_KEY": settings.livekit_api_key,
        "LIVEKIT_API_SECRET": settings.livekit_api_secret.get_secret_value() if settings.livekit_api_secret else None,
    }
    for name, value in values.items():
        if value:
            os.environ.setdefault(name, value)


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the configuration for the chosen mode and hand over to LiveKit's CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return EXIT_CONFIG
    if args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    mode = args[0] if args[0] in MODES else next((a for a in args if not a.startswith("-")), "")
    if mode not in MODES:
        print(f"memory-agent: unknown command {mode!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_CONFIG
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except ValidationError as exc:
        lines = [f"  - {'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()]
        print("memory-agent: invalid settings:\n" + "\n".join(lines), file=sys.stderr)
        return EXIT_CONFIG
    flags = livekit_flag_values(args)
    if flags:
        settings = settings.model_copy(update=flags)
    wants_help = "--help" in args or "-h" in args
    problems = [] if wants_help else configuration_problems(mode, settings)
    if problems:
        print(f"memory-agent: cannot run `{mode}`:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    store_problem = None if wants_help or mode not in MODEL_MODES else startup_problem(settings)
    if store_problem:
        print(f"memory-agent: cannot run `{mode}`: {store_problem}", file=sys.stderr)
        return EXIT_STORE
    if mode == "download-files" and not wants_help:
        from livekit.agents.__main__ import main as livekit_main

        return livekit_main(["download-files"])
    _export_for_livekit(settings)
    # LiveKit deprecates running agents through this built-in CLI in favour of `lk agent ...`;
    # show that notice once (Python hides DeprecationWarnings raised outside __main__ by default)
    warnings.filterwarnings("default", message="the built-in Python CLI is deprecated", category=DeprecationWarning)
    from livekit.agents import cli

    from agent.worker import server

    sys.argv = [sys.argv[0] if sys.argv else "agent", *args]
    cli.run_app(server)
    return 0
