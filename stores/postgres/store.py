"""The Postgres `UserStore`: threads, memories and profiles sharing one pool."""

from __future__ import annotations

import logging

from stores.base import UserStore
from stores.postgres.changes import PostgresChangeFeed
from stores.postgres.db import Database, Params, Row, lock_user
from stores.postgres.people import PostgresMemoryStore, PostgresProfileStore
from stores.postgres.threads import PostgresThreadStore

# One round trip, one transaction; items go with their threads (ON DELETE CASCADE).
_FORGET_USER = (
    "delete from public.chatkit_attachments where user_id = %s",
    "delete from public.chatkit_threads where user_id = %s",
    "delete from public.memory_terms where user_id = %s",
    "delete from public.memories where user_id = %s",
    "delete from public.memory_counts where user_id = %s",
    "delete from public.memory_term_counts where user_id = %s",
    "delete from public.memory_changes where user_id = %s",
    "delete from public.profiles where id = %s",
)
# what an erase touches: STORE_ERASE_VACUUM=true vacuums these right after it
ERASE_TABLES = (
    "public.chatkit_items",
    "public.chatkit_attachments",
    "public.chatkit_threads",
    "public.memory_terms",
    "public.memories",
    "public.memory_counts",
    "public.memory_term_counts",
    "public.memory_changes",
    "public.profiles",
)
logger = logging.getLogger(__name__)


# an item always has its thread
_LIST_USERS = """
select id from public.profiles union select user_id from public.memories
union select user_id from public.chatkit_threads union select user_id from public.chatkit_attachments
union select user_id from public.memory_changes
"""


class PostgresStore(UserStore):
    """Postgres / Supabase / Neon; one pool per store, closed once by `aclose`."""

    def __init__(
        self, db: Database, redacted_url: str, *, erase_vacuum: bool = False, url: str, connect_timeout: float = 5.0
    ) -> None:
        self._db = db
        self.url = redacted_url
        self.erase_vacuum = erase_vacuum
        self.threads = PostgresThreadStore(db)
        self.memories = PostgresMemoryStore(db)
        self.profiles = PostgresProfileStore(db)
        self._use_changes(PostgresChangeFeed(db, url, connect_timeout))

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
        await self._db.run(user_id, lock_user(user_id), *((statement, [user_id]) for statement in _FORGET_USER))
        if self.erase_vacuum:
            await self.vacuum()

    async def vacuum(self) -> bool:
        """VACUUM the tables an erase touches, so the deleted rows' dead tuples are pruned now.

        A DELETE only marks tuples dead; their bytes stay in the table files until (auto)vacuum
        prunes them. VACUUM cannot run inside a transaction, so this is its own statement
        after the erase committed, run as the connecting role (which must own the tables; a
        role that does not is skipped by Postgres with a warning). A failure is logged, not
        raised: the erase itself has already succeeded. Returns whether VACUUM ran.
        """
        try:
            await self._db.maintenance(f"vacuum {', '.join(ERASE_TABLES)}")
        except Exception as exc:
            logger.warning(
                "VACUUM after an erase failed on %s (%s); dead tuples stay until autovacuum. Run "
                "`vacuum` on the store tables as their owner, or unset STORE_ERASE_VACUUM",
                self.url,
                exc,
            )
            return False
        return True

    async def _list_users(self) -> list[str]:
        rows = await self._db.run(None, (_LIST_USERS, None))  # as the owner: it reads across users
        return [row[0] for row in rows]

    async def ping(self) -> None:
        await self._db.run(None, ("select 1", None))

    async def _close(self) -> None:
        await self._db.close()


__all__ = ["PostgresStore"]
