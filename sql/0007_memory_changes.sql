-- Memory Agent 0007 (issue 10): the per-user memory audit trail, and indexes for retention sweeps.
--
-- One row per memory change (remember / update / forget), written in the same
-- transaction as the change itself; values are not recorded. The store keeps the newest
-- 1,000 rows per user and `forget_user` deletes them with everything else.

create table if not exists public.memory_changes (
  seq bigint generated always as identity primary key,
  user_id text not null,
  id text not null,
  at timestamptz not null,
  op text not null check (op in ('remember', 'update', 'forget')),
  category text not null,
  key text not null,
  memory_id text,
  source text,
  thread_id text,
  item_id text
);
create index if not exists memory_changes_user on public.memory_changes (user_id, seq);

-- retention: stale memories and old threads are found across users without a full scan
create index if not exists memories_updated on public.memories (updated_at);
create index if not exists chatkit_threads_age on public.chatkit_threads (sort_key, seq);

-- Row Level Security as for every store table: a user's transaction sees only their own
-- rows (0003's owner policy for `authenticated`), forced with a policy for the table
-- owner as 0004 does (the owner passes when no user claims are set, and is scoped to the
-- claimed user when they are).
alter table public.memory_changes enable row level security;

drop policy if exists memory_changes_owner on public.memory_changes;
create policy memory_changes_owner on public.memory_changes for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

do $$
declare
  owner_role text;
begin
  select pg_catalog.pg_get_userbyid(c.relowner) into owner_role
    from pg_catalog.pg_class c where c.oid = 'public.memory_changes'::regclass;
  drop policy if exists memory_changes_server on public.memory_changes;
  execute format(
    'create policy memory_changes_server on public.memory_changes for all to %I '
    'using ((select auth.uid()) is null or (select auth.uid())::text = user_id) '
    'with check ((select auth.uid()) is null or (select auth.uid())::text = user_id)',
    owner_role);
end
$$;
alter table public.memory_changes force row level security;

revoke all on table public.memory_changes from anon;
grant select, insert, update, delete on table public.memory_changes to authenticated;
revoke truncate, references, trigger on table public.memory_changes from authenticated;
grant all on table public.memory_changes to service_role;
