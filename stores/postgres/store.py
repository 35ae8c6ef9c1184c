"""The Postgres `UserStore`: threads, memories and profiles sharing one pool."""

from __future__ import annotations

from stores.base import UserStore
from stores.postgres.db import Database, Params, Row
from stores.postgres.people import PostgresMemoryStore, PostgresProfileStore
from stores.postgres.threads import PostgresThreadStore

# One round trip, one transaction; items go with their threads (ON DELETE CASCADE).
_FORGET_USER = (
    "delete from public.chatkit_attachments where user_id = %s",
    "delete from public.chatkit_threads where user_id = %s",
    "delete from public.memories where user_id = %s",
    "delete from public.profiles where id = %s",
)


class PostgresStore(UserStore):
    """Postgres / Supabase / Neon; one pool per store, closed once by `aclose`."""

    def __init__(self, db: Database, redacted_url: str) -> None:
        self._db = db
        self.url = redacted_url
        self.threads = PostgresThreadStore(db)
        self.memories = PostgresMemoryStore(db)
        self.profiles = PostgresProfileStore(db)

    @property
    def rls(self) -> bool:
        """Whether store transactions run as `authenticated` with the user's claims."""
        return self._db.rls

    async def run_as(self, user_id: str, query: str, params: Params = None) -> list[Row]:
        """Run one statement exactly the way store calls run theirs, bound to `user_id`.

        For operators and tests checking what a user's transaction can see.
        """
        return await self._db.run(user_id, (query, params))

    async def _forget_user(self, user_id: str) -> None:
        await self._db.run(user_id, *((statement, [user_id]) for statement in _FORGET_USER))

    async def ping(self) -> None:
        await self._db.run(None, ("select 1", None))

    async def _close(self) -> None:
        await self._db.close()


__all__ = ["PostgresStore"]
