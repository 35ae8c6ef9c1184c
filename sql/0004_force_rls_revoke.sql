-- Memory Agent 0004: force Row Level Security and take back privileges the app never uses.
--
-- 1. FORCE RLS: without it the table owner (the role the server connects as) skips
--    every policy, so a transaction that does not switch to `authenticated`
--    (STORE_RLS=off, or `auto` with ids that are not UUIDs) relied on the query filters
--    alone. With it, the owner needs a policy of its own: `<table>_server` lets the
--    owner through when no user claims are set (the application filters by user_id),
--    and scopes it to the claimed user when `request.jwt.claims` is set. A role that
--    later takes over a table gets no policy here and sees nothing (fail closed):
--    re-run this file's loop for it. Superusers and BYPASSRLS roles skip RLS anyway.
-- 2. Supabase projects run `alter default privileges ... grant all on tables to anon,
--    authenticated, service_role`, so new tables also grant TRUNCATE, TRIGGER and
--    REFERENCES, which RLS does not govern (TRUNCATE empties every user's rows). The app
--    needs only select/insert/update/delete as `authenticated`; the migrations table
--    is the runner's alone. Safe to run more than once.

do $$
declare
  t text;
  owner_role text;
  col text;
begin
  foreach t in array array['profiles', 'memories', 'chatkit_threads', 'chatkit_items', 'chatkit_attachments'] loop
    select pg_catalog.pg_get_userbyid(c.relowner) into owner_role
      from pg_catalog.pg_class c where c.oid = format('public.%I', t)::regclass;
    col := case when t = 'profiles' then 'id' else 'user_id' end;
    execute format('drop policy if exists %I on public.%I', t || '_server', t);
    execute format(
      'create policy %I on public.%I for all to %I '
      'using ((select auth.uid()) is null or (select auth.uid())::text = %I) '
      'with check ((select auth.uid()) is null or (select auth.uid())::text = %I)',
      t || '_server', t, owner_role, col, col);
    execute format('alter table public.%I force row level security', t);
  end loop;

  select pg_catalog.pg_get_userbyid(c.relowner) into owner_role
    from pg_catalog.pg_class c where c.oid = 'public.memory_agent_migrations'::regclass;
  drop policy if exists memory_agent_migrations_runner on public.memory_agent_migrations;
  execute format(
    'create policy memory_agent_migrations_runner on public.memory_agent_migrations for all to %I '
    'using (true) with check (true)', owner_role);
  alter table public.memory_agent_migrations enable row level security;
  alter table public.memory_agent_migrations force row level security;
end
$$;

revoke truncate, references, trigger on table public.profiles, public.memories, public.chatkit_threads,
  public.chatkit_items, public.chatkit_attachments from authenticated;
revoke all on table public.profiles, public.memories, public.chatkit_threads, public.chatkit_items,
  public.chatkit_attachments from anon;
revoke all on table public.memory_agent_migrations from anon, authenticated;
