"""The Redis key layout: every key of a user starts with `ma:{<user_id>}:`.

The `{<user_id>}` hash tag puts all of a user's keys in one cluster slot, so one Lua
script or MULTI/EXEC can touch any of them on Redis Cluster. User, thread, item and
attachment ids are validated (`stores.ids`) before they get here: none can contain
`:`, `{` or `}`, so no id can name a key of another user or another kind.

Ordered indexes are lexicographic sorted sets (every score 0) whose members are
`<sort key:16 hex><seq:16 hex><id>`: exact for negative and very large sort keys,
ties broken by the insertion counter `seq`, and ZRANGE BYLEX finds a cursor's
successors in O(log n + limit).
"""

from __future__ import annotations

NAMESPACE = "ma"
_SORT_OFFSET = 1 << 63
POSITION_PREFIX_LENGTH = 32  # 16 hex digits of sort key + 16 of seq; the id follows


def user_prefix(user_id: str) -> str:
    """`ma:{<user_id>}:` - the start of every key of this user."""
    return f"{NAMESPACE}:{{{user_id}}}:"


def encode_sort_key(sort_key: int) -> str:
    """Sort key (int microseconds, may be negative) as 16 hex digits that sort like the number."""
    shifted = sort_key + _SORT_OFFSET
    if not 0 <= shifted < (1 << 64):
        raise ValueError("timestamp out of the range a store can order")
    return f"{shifted:016x}"


class UserKeys:
    """Every key name of one user (the Lua scripts derive per-thread names the same way)."""

    __slots__ = ("prefix",)

    def __init__(self, user_id: str) -> None:
        self.prefix = user_prefix(user_id)

    @property
    def threads(self) -> str:
        """ZSET (lex): the user's threads in (created_at, seq) order."""
        return self.prefix + "threads"

    @property
    def seq(self) -> str:
        """STRING: insertion counter for threads and items."""
        return self.prefix + "seq"

    @property
    def attachments(self) -> str:
        """SET: ids of all the user's attachments."""
        return self.prefix + "atts"

    @property
    def memories(self) -> str:
        """HASH: `<category>:<key>` -> memory JSON."""
        return self.prefix + "mem"

    @property
    def memory_terms(self) -> str:
        """HASH: `<category>:<key>` -> the memory's search terms, space-separated."""
        return self.prefix + "mterms"

    @property
    def memory_index(self) -> str:
        """STRING: "1" once all of the user's memories are in the search index."""
        return self.prefix + "mix"

    def memory_term(self, term: str) -> str:
        """HASH: the postings of one search term, `<category>:<key>` -> `<field>:<updated_us>:<id>`."""
        return f"{self.prefix}mt:{term}"

    @property
    def memory_changes(self) -> str:
        """LIST: the memory audit trail, MemoryChange JSON, newest first."""
        return self.prefix + "memlog"

    @property
    def profile(self) -> str:
        """HASH: the profile's fields."""
        return self.prefix + "profile"

    def thread(self, thread_id: str) -> str:
        """HASH: `meta` (thread JSON) and `pos` (its member in `threads`)."""
        return f"{self.prefix}t:{thread_id}"

    def items(self, thread_id: str) -> str:
        """ZSET (lex): the thread's items in (created_at, seq) order."""
        return f"{self.prefix}t:{thread_id}:items"

    def item_positions(self, thread_id: str) -> str:
        """HASH: item id -> its member in `items`."""
        return f"{self.prefix}t:{thread_id}:ipos"

    def item_data(self, thread_id: str) -> str:
        """HASH: item id -> item JSON."""
        return f"{self.prefix}t:{thread_id}:idata"

    def thread_attachments(self, thread_id: str) -> str:
        """SET: ids of attachments bound to the thread."""
        return f"{self.prefix}t:{thread_id}:atts"

    def attachment(self, attachment_id: str) -> str:
        """HASH: `data` (attachment JSON) and `thread` (bound thread id or "")."""
        return f"{self.prefix}a:{attachment_id}"
