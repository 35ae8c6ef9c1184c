"""The Redis backend's store classes: thin adapters from the base primitives to Lua scripts.

Key layout in `stores.redis.keys`, scripts in `stores.redis.scripts`. Reads of one key
are plain commands; everything that writes, and every page, is one script call.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from datetime import datetime

from redis.exceptions import RedisError

from memory.models import Memory, MemoryChange, Profile, Provenance
from memory.ranking import (
    MAX_PACKED_TERMS,
    Candidate,
    Posting,
    epoch_us,
    index_terms,
    rank_candidates,
    rank_postings,
    term_weights,
    unpack_fields,
)
from stores.base import ChangeNote, MemoryStore, ProfileStore, RawPage, ThreadStore, UserStore
from stores.redis.changes import RedisChangeFeed
from stores.redis.client import RedisConnection
from stores.redis.keys import NAMESPACE, POSITION_PREFIX_LENGTH, UserKeys, encode_sort_key


def _page(result: list[str | int]) -> RawPage:
    return RawPage([str(row) for row in result[1:]], bool(int(result[0])))


class RedisThreadStore(ThreadStore):
    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    async def _get_thread(self, user_id: str, thread_id: str) -> str | None:
        keys = UserKeys(user_id)
        return await self._conn.hget(keys.thread(thread_id), "meta")

    async def _put_thread(self, user_id: str, thread_id: str, sort_key: int, data: str) -> None:
        keys = UserKeys(user_id)
        await self._conn.script(
            "put_thread",
            [keys.threads, keys.thread(thread_id), keys.seq],
            [keys.prefix, thread_id, encode_sort_key(sort_key), data, self._conn.thread_ttl],
        )

    async def _page_threads(self, user_id: str, after: str | None, limit: int, descending: bool) -> RawPage:
        keys = UserKeys(user_id)
        result = await self._conn.script(
            "page_threads", [keys.threads], [keys.prefix, after or "", limit, "1" if descending else "0"]
        )
        return _page(result)

    async def _delete_thread(self, user_id: str, thread_id: str) -> list[str]:
        keys = UserKeys(user_id)
        gone = await self._conn.script(
            "delete_thread",
            [
                keys.threads,
                keys.thread(thread_id),
                keys.items(thread_id),
                keys.item_positions(thread_id),
                keys.item_data(thread_id),
                keys.thread_attachments(thread_id),
                keys.attachments,
            ],
            [keys.prefix, thread_id],
        )
        return [str(aid) for aid in gone]

    async def _get_item(self, user_id: str, thread_id: str, item_id: str) -> str | None:
        keys = UserKeys(user_id)
        return await self._conn.hget(keys.item_data(thread_id), item_id)

    async def _put_item(self, user_id: str, thread_id: str, item_id: str, sort_key: int, data: str) -> bool:
        keys = UserKeys(user_id)
        stored = await self._conn.script(
            "put_item",
            [
                keys.thread(thread_id),
                keys.items(thread_id),
                keys.item_positions(thread_id),
                keys.item_data(thread_id),
                keys.seq,
            ],
            [keys.prefix, thread_id, item_id, encode_sort_key(sort_key), data, self._conn.thread_ttl],
        )
        return bool(int(stored))

    async def _page_items(
        self, user_id: str, thread_id: str, after: str | None, limit: int, descending: bool
    ) -> RawPage:
        keys = UserKeys(user_id)
        result = await self._conn.script(
            "page_items",
            [
                keys.thread(thread_id),
                keys.items(thread_id),
                keys.item_positions(thread_id),
                keys.item_data(thread_id),
            ],
            [after or "", limit, "1" if descending else "0"],
        )
        return _page(result)

    async def _delete_item(self, user_id: str, thread_id: str, item_id: str) -> None:
        keys = UserKeys(user_id)
        await self._conn.script(
            "delete_item",
            [
                keys.thread(thread_id),
                keys.items(thread_id),
                keys.item_positions(thread_id),
                keys.item_data(thread_id),
            ],
            [keys.prefix, thread_id, item_id, self._conn.thread_ttl],
        )

    async def _get_attachment(self, user_id: str, attachment_id: str) -> str | None:
        keys = UserKeys(user_id)
        return await self._conn.hget(keys.attachment(attachment_id), "data")

    async def _put_attachment(self, user_id: str, attachment_id: str, thread_id: str | None, data: str) -> None:
        keys = UserKeys(user_id)
        await self._conn.script(
            "put_attachment",
            [keys.attachment(attachment_id), keys.attachments],
            [keys.prefix, attachment_id, thread_id or "", data, self._conn.thread_ttl],
        )

    async def _delete_attachment(self, user_id: str, attachment_id: str) -> bool:
        keys = UserKeys(user_id)
        existed = await self._conn.script(
            "delete_attachment", [keys.attachment(attachment_id), keys.attachments], [keys.prefix, attachment_id]
        )
        return bool(int(existed))

    async def _old_threads(self, created_before: int, batch: int) -> AsyncIterator[list[tuple[str, str, str]]]:
        # across users: SCAN every node for thread indexes; a member's prefix is its sort key
        bound = "(" + encode_sort_key(created_before)
        found: list[tuple[str, str, str]] = []
        async for index_key in _scan(self._conn, f"{NAMESPACE}:{{*}}:threads"):
            user_id = index_key[len(NAMESPACE) + 2 : -len("}:threads")]
            keys = UserKeys(user_id)
            members = await self._conn.run(self._conn.client.zrange(index_key, "-", bound, bylex=True))
            for member in members:
                thread_id = str(member)[POSITION_PREFIX_LENGTH:]
                data = await self._conn.hget(keys.thread(thread_id), "meta")
                if data is not None:
                    found.append((user_id, thread_id, data))
            while len(found) >= batch:
                yield found[:batch]
                found = found[batch:]
        if found:
            yield found

    async def _list_attachments(self, user_id: str) -> list[str]:
        keys = UserKeys(user_id)
        rows = await self._conn.script("list_attachments", [keys.attachments], [keys.prefix])
        return [str(row) for row in rows]


class RedisMemoryStore(MemoryStore):
    """Memories of a user in one hash, field `<category>:<key>` (a category never contains `:`).

    The search index (term postings, see `stores.redis.scripts`) changes in the same
    script as the memory it describes.
    """

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    async def _upsert(
        self,
        user_id: str,
        category: str,
        key: str,
        value: str,
        origin: Provenance,
        now: datetime,
        new_id: str,
        change: ChangeNote,
    ) -> Memory:
        keys = UserKeys(user_id)
        stored = await self._conn.script(
            "upsert_memory",
            [keys.memories, keys.memory_changes],
            [
                f"{category}:{key}",
                new_id,
                user_id,
                category,
                key,
                value,
                origin.source or "",
                origin.thread_id or "",
                origin.item_id or "",
                now.isoformat(),
                keys.prefix,
                epoch_us(now),
                _change_json(user_id, change, category, key),
                *_flat_terms(category, key, value),
            ],
        )
        return Memory.model_validate_json(stored)

    async def _stale(self, updated_before: datetime, batch: int) -> AsyncIterator[builtins.list[tuple[str, str, str]]]:
        # across users: SCAN every node for memory hashes
        found: builtins.list[tuple[str, str, str]] = []
        async for memory_key in _scan(self._conn, f"{NAMESPACE}:{{*}}:mem"):
            rows: dict[str, str] = await self._conn.hgetall(memory_key)
            for data in rows.values():
                memory = Memory.model_validate_json(data)
                if memory.updated_at < updated_before:
                    found.append((memory.user_id, memory.category, memory.key))
            while len(found) >= batch:
                yield found[:batch]
                found = found[batch:]
        if found:
            yield found

    async def _history(self, user_id: str, limit: int) -> builtins.list[MemoryChange]:
        rows = await self._conn.run(self._conn.client.lrange(UserKeys(user_id).memory_changes, 0, limit - 1))
        return [MemoryChange.model_validate_json(row) for row in rows]

    async def _replace_history(self, user_id: str, changes: builtins.list[MemoryChange]) -> None:
        keys = UserKeys(user_id)
        await self._conn.script("replace_list", [keys.memory_changes], [change.model_dump_json() for change in changes])

    async def _get(self, user_id: str, category: str, key: str) -> Memory | None:
        data = await self._conn.hget(UserKeys(user_id).memories, f"{category}:{key}")
        return None if data is None else Memory.model_validate_json(data)

    async def _list(self, user_id: str, category: str | None) -> builtins.list[Memory]:
        rows: dict[str, str] = await self._conn.hgetall(UserKeys(user_id).memories)
        prefix = None if category is None else f"{category}:"
        return [
            Memory.model_validate_json(data)
            for field, data in rows.items()
            if prefix is None or field.startswith(prefix)
        ]

    async def _delete(
        self, user_id: str, category: str, key: str, change: ChangeNote, *, updated_before: datetime | None = None
    ) -> bool:
        keys = UserKeys(user_id)
        field = f"{category}:{key}"
        expected = ""
        if updated_before is not None:
            # compare here, then delete only if the memory is still exactly this version
            expected = await self._conn.hget(keys.memories, field) or ""
            if not expected or Memory.model_validate_json(expected).updated_at >= updated_before:
                return False
        removed = await self._conn.script(
            "delete_memory",
            [keys.memories, keys.memory_changes],
            [field, keys.prefix, expected, _change_json(user_id, change, category, key)],
        )
        return bool(int(removed))

    async def _search(self, user_id: str, terms: builtins.list[str], limit: int) -> builtins.list[Memory]:
        if len(terms) > MAX_PACKED_TERMS:  # a very long query: rank from the postings themselves
            return await self._search_postings(user_id, terms, limit)
        keys = UserKeys(user_id)
        args: builtins.list[str | int] = [keys.prefix, limit, repr(_BAND), *terms]
        flat = await self._conn.script("search_candidates", [keys.memories, keys.memory_index], args)
        if not int(flat[0]):
            await self._build_index(keys)
            flat = await self._conn.script("search_candidates", [keys.memories, keys.memory_index], args)
        count = int(flat[1])
        weights = term_weights(count, {term: int(df) for term, df in zip(terms, flat[2 : 2 + len(terms)], strict=True)})
        found: dict[str, Memory] = {}
        candidates = []
        rest = flat[2 + len(terms) :]
        for index in range(0, len(rest), 4):
            field, packed, posting, data = rest[index : index + 4]
            if data is None:
                continue  # forgotten between the two reads of the script: cannot happen, scripts are atomic
            _, updated_us, memory_id = str(posting).split(":", 2)
            found[str(field)] = Memory.model_validate_json(data)
            candidates.append(Candidate(str(field), unpack_fields(int(packed), len(terms)), int(updated_us), memory_id))
        return [found[ref] for ref in rank_candidates(candidates, terms, weights, limit)]

    async def _search_postings(self, user_id: str, terms: builtins.list[str], limit: int) -> builtins.list[Memory]:
        keys = UserKeys(user_id)
        flat = await self._conn.script("search_postings", [keys.memories, keys.memory_index], [keys.prefix, *terms])
        if not int(flat[0]):
            await self._build_index(keys)
            flat = await self._conn.script("search_postings", [keys.memories, keys.memory_index], [keys.prefix, *terms])
        postings: dict[str, builtins.list[Posting[str]]] = {}
        at = 2
        for term in terms:
            count = int(flat[at])
            found = postings[term] = []
            for index in range(at + 1, at + 1 + 2 * count, 2):
                field, updated_us, memory_id = str(flat[index + 1]).split(":", 2)
                found.append(Posting(str(flat[index]), int(field), int(updated_us), memory_id))
            at += 1 + 2 * count
        refs = rank_postings(postings, int(flat[1]), limit)
        if not refs:
            return []
        rows = await self._conn.hmget(keys.memories, refs)
        return [Memory.model_validate_json(row) for row in rows if row is not None]

    async def _delete_from(self, user_id: str, thread_id: str, change: ChangeNote) -> int:
        keys = UserKeys(user_id)
        template = _change_json(user_id, change, "", "")
        return int(
            await self._conn.script(
                "delete_memories_from", [keys.memories, keys.memory_changes], [thread_id, keys.prefix, template]
            )
        )

    async def _build_index(self, keys: UserKeys) -> None:
        """Index memories stored before the index existed (once per user, on their first search)."""
        rows: dict[str, str] = await self._conn.hgetall(keys.memories)
        batch: builtins.list[str | int] = []
        entries = list(rows.items())
        for position, (field, data) in enumerate(entries):
            memory = Memory.model_validate_json(data)
            pairs = _flat_terms(memory.category, memory.key, memory.value)
            batch += [field, data, epoch_us(memory.updated_at), len(pairs) // 2, *pairs]
            if len(batch) >= _INDEX_BATCH or position == len(entries) - 1:
                last = position == len(entries) - 1
                await self._conn.script(
                    "index_memories", [keys.memories, keys.memory_index], [keys.prefix, "1" if last else "0", *batch]
                )
                batch = []
        if not entries:
            await self._conn.script("index_memories", [keys.memories, keys.memory_index], [keys.prefix, "1"])


_BAND = 1e-6  # wider than any float difference between Lua and Python, narrower than a real score gap
_INDEX_BATCH = 5000  # script arguments per call while indexing older memories


async def _scan(conn: RedisConnection, pattern: str) -> AsyncIterator[str]:
    """Every key matching `pattern` on every node (store errors, not driver errors)."""
    try:
        async for key in conn.client.scan_iter(match=pattern, count=500):
            yield str(key)
    except RedisError as exc:
        raise conn.error(exc) from exc


def _change_json(user_id: str, change: ChangeNote, category: str, key: str) -> str:
    """The audit entry; the script fills in `op` and `memory_id` (and more), which only it knows."""
    return change.entry(user_id, "remember", category, key, None).model_dump_json()


def _flat_terms(category: str, key: str, value: str) -> builtins.list[str | int]:
    """The memory's terms and field codes as flat script arguments."""
    flat: builtins.list[str | int] = []
    for term, field in index_terms(category, key, value).items():
        flat += [term, field]
    return flat


def _profile(fields: dict[str, str]) -> Profile:
    return Profile(
        id=fields["id"],
        identity=fields.get("identity"),
        email=fields.get("email"),
        is_first_login=fields.get("first") == "1",
        memory_enabled=fields.get("memory_enabled", "1") == "1",
        created_at=datetime.fromisoformat(fields["created_at"]),
        last_seen_at=datetime.fromisoformat(fields["last_seen_at"]),
    )


class RedisProfileStore(ProfileStore):
    """One hash per user; `ensure` is one Lua call (HSETNX decides who created it)."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn

    async def _ensure(self, user_id: str, identity: str | None, email: str | None, now: datetime) -> Profile:
        keys = UserKeys(user_id)
        flat = await self._conn.script(
            "ensure_profile",
            [keys.profile],
            [
                user_id,
                "0" if identity is None else "1",
                identity or "",
                "0" if email is None else "1",
                email or "",
                now.isoformat(),
                "1" if self.default_memory_enabled else "0",
            ],
        )
        return _profile(dict(zip(flat[::2], flat[1::2], strict=True)))

    async def _get(self, user_id: str) -> Profile | None:
        fields: dict[str, str] = await self._conn.hgetall(UserKeys(user_id).profile)
        return _profile(fields) if fields else None

    async def _set_memory_enabled(self, user_id: str, enabled: bool, now: datetime) -> Profile:
        flat = await self._conn.script(
            "set_memory_enabled", [UserKeys(user_id).profile], [user_id, "1" if enabled else "0", now.isoformat()]
        )
        return _profile(dict(zip(flat[::2], flat[1::2], strict=True)))


class RedisStore(UserStore):
    """A user-keyed store on Redis or Redis Cluster; one connection pool, closed by `aclose()`."""

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn
        self.url = conn.config.redacted
        self.threads = RedisThreadStore(conn)
        self.memories = RedisMemoryStore(conn)
        self.profiles = RedisProfileStore(conn)
        self._use_changes(RedisChangeFeed(conn))

    @property
    def thread_ttl(self) -> int | None:
        """Seconds after its last write that a thread's data expires, or None (kept forever)."""
        return self._conn.thread_ttl or None

    async def _forget_user(self, user_id: str) -> None:
        keys = UserKeys(user_id)
        await self._conn.script(
            "forget_user",
            [
                keys.threads,
                keys.attachments,
                keys.seq,
                keys.memories,
                keys.profile,
                keys.memory_terms,
                keys.memory_index,
                keys.memory_changes,
            ],
            [keys.prefix],
        )

    async def _list_users(self) -> list[str]:
        return await self._conn.scan_users()

    async def ping(self) -> None:
        await self._conn.ping()

    async def _close(self) -> None:
        await self._conn.close()
