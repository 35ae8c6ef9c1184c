"""The README's "ten lines of Python" as a script: `python docs/examples/quickstart.py`.

Top-level `await` only works in a REPL or notebook; a script needs `asyncio.run`.
"""

import asyncio

from memory import identity_to_uuid
from stores import open_store


async def main() -> None:
    async with await open_store("sqlite:///./data/memory-agent.db") as store:  # or any STORE_URL
        user_id = identity_to_uuid("alice@example.com")  # uuid5(NAMESPACE_DNS, identity)
        await store.memories.remember(user_id, "preference", "favourite colour", "blue")
        print(await store.memories.search(user_id, "what colour do I like"))


if __name__ == "__main__":
    asyncio.run(main())
