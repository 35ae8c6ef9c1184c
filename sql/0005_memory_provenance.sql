-- Memory Agent 0005: memory provenance and the per-user memory consent switch (issue 9).
--
-- Every memory records the conversation (ChatKit thread) and turn (item) its current
-- value was learned from, next to `source` (voice/chat/api), so one conversation's
-- facts can be forgotten together. Memories stored before this migration have no
-- known thread/item (NULL). `profiles.memory_enabled` is the user's consent: existing
-- profiles keep memory on, as they had it before. Idempotent.

alter table public.memories add column if not exists thread_id text;
alter table public.memories add column if not exists item_id text;
create index if not exists memories_thread on public.memories (user_id, thread_id) where thread_id is not null;

alter table public.profiles add column if not exists memory_enabled boolean not null default true;
