"""`python -m api` serves the API; `python -m api token <identity-or-uuid>` prints a dev token."""

from __future__ import annotations

import argparse
import sys

from memory.settings import get_settings

EXIT_CONFIG = 2  # the configuration cannot work (same code as `python -m agent`)
EXIT_STORE = 3  # the store did not answer at start-up (same code as `python -m agent`)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="Memory Agent HTTP API")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the API with uvicorn (the default)")
    serve.add_argument("--host", help="listen address (default: API_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: API_PORT)")
    token = commands.add_parser("token", help="print a short-lived HS256 dev token signed with SUPABASE_JWT_SECRET")
    token.add_argument("identity", help="an email, a username or a Supabase user id (UUID)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command == "token":
        from api.devtoken import DevTokenError, mint_dev_token

        try:
            print(mint_dev_token(settings, args.identity, ttl_seconds=args.ttl))
        except (DevTokenError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    import uvicorn

    from api import create_app
    from api.auth import auth_config_problem
    from api.devlogin import DevLoginRefused, prepare_dev_login
    from stores import startup_problem

    try:  # first: with API_DEV_LOGIN on a local machine the app is its own token issuer
        settings = prepare_dev_login(settings, warn=False)  # create_app warns
    except DevLoginRefused as exc:
        print(f"memory-agent api: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    problem = auth_config_problem(settings)
    if problem is not None:
        print(f"memory-agent api: cannot start: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    problem = startup_problem(settings)
    if problem is not None:
        print(f"memory-agent api: cannot start: {problem}", file=sys.stderr)
        return EXIT_STORE

    host = getattr(args, "host", None) or settings.api_host
    port = getattr(args, "port", None) or settings.api_port
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=True, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
