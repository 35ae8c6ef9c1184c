-- Memory Agent 0003: Row Level Security.
--
-- Every per-user table allows a signed-in user (role `authenticated`, user id in the
-- JWT `sub`) to see and change only their own rows; `anon` gets nothing. The server's
-- own connection (table owner / service_role) bypasses RLS, but the application switches
-- to `authenticated` with the user's claims inside each transaction, so these policies
-- also guard the server's queries. The `(select auth.uid())` wrapper lets Postgres
-- evaluate the function once per statement instead of once per row.

alter table public.profiles enable row level security;
alter table public.memories enable row level security;
alter table public.chatkit_threads enable row level security;
alter table public.chatkit_items enable row level security;
alter table public.chatkit_attachments enable row level security;

drop policy if exists profiles_owner on public.profiles;
create policy profiles_owner on public.profiles for all to authenticated
  using ((select auth.uid())::text = id)
  with check ((select auth.uid())::text = id);

drop policy if exists memories_owner on public.memories;
create policy memories_owner on public.memories for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

drop policy if exists chatkit_threads_owner on public.chatkit_threads;
create policy chatkit_threads_owner on public.chatkit_threads for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

drop policy if exists chatkit_items_owner on public.chatkit_items;
create policy chatkit_items_owner on public.chatkit_items for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

drop policy if exists chatkit_attachments_owner on public.chatkit_attachments;
create policy chatkit_attachments_owner on public.chatkit_attachments for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

-- Supabase grants every new table in `public` to anon by default: take that back.
revoke all on table public.profiles, public.memories, public.chatkit_threads, public.chatkit_items,
  public.chatkit_attachments from anon;
grant select, insert, update, delete on table public.profiles, public.memories, public.chatkit_threads,
  public.chatkit_items, public.chatkit_attachments to authenticated;
grant all on table public.profiles, public.memories, public.chatkit_threads, public.chatkit_items,
  public.chatkit_attachments to service_role;
