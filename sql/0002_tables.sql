-- Memory Agent 0002: the user-keyed tables.
--
-- Every row belongs to one user: composite primary keys are led by the user id, so two
-- users may own the same thread id. `seq` is an insertion counter that breaks ties
-- between equal `sort_key`s (created_at in microseconds) and is never updated, so an
-- upsert keeps a row's position. ChatKit bodies are stored as the exact JSON text
-- pydantic produced (`data::jsonb` to query them): jsonb would reorder keys and
-- rejects the escaped NUL character users can type.

do $$
begin
  if to_regclass('public.profiles') is not null and not exists (
    select from information_schema.columns
    where table_schema = 'public' and table_name = 'profiles' and column_name = 'visits'
  ) then
    raise exception 'a table public.profiles already exists with a different shape'
      using hint = 'rename or drop the existing public.profiles table (it is not Memory Agent''s), then apply the migrations again';
  end if;
end
$$;

-- id is the user UUID as text. No foreign key to auth.users: voice callers are
-- identified by an identity mapped to a UUIDv5 and need not be Supabase Auth users.
create table if not exists public.profiles (
  id text primary key,
  identity text,
  email text,
  is_first_login boolean not null default true,
  visits bigint not null default 0,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now()
);

create table if not exists public.memories (
  user_id text not null,
  category text not null,
  key text not null,
  id text not null,
  value text not null,
  source text,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  primary key (user_id, category, key)
);

create table if not exists public.chatkit_threads (
  user_id text not null,
  id text not null,
  seq bigint generated always as identity,
  sort_key bigint not null,
  data text not null,
  primary key (user_id, id)
);
create index if not exists chatkit_threads_keyset on public.chatkit_threads (user_id, sort_key, seq);

create table if not exists public.chatkit_items (
  user_id text not null,
  thread_id text not null,
  id text not null,
  seq bigint generated always as identity,
  sort_key bigint not null,
  data text not null,
  primary key (user_id, thread_id, id),
  foreign key (user_id, thread_id) references public.chatkit_threads (user_id, id) on delete cascade
);
create index if not exists chatkit_items_keyset on public.chatkit_items (user_id, thread_id, sort_key, seq);

create table if not exists public.chatkit_attachments (
  user_id text not null,
  id text not null,
  thread_id text,
  data text not null,
  primary key (user_id, id)
);
create index if not exists chatkit_attachments_thread
  on public.chatkit_attachments (user_id, thread_id) where thread_id is not null;
