-- Memory Agent 0006: the memory search index (issue 12).
--
-- `memory_terms` holds one row per (memory, search term) with the best field the term
-- appears in (3 key, 2 category, 1 value) and the memory's id and updated_at in
-- microseconds; `memory_counts` holds how many memories each user has. That is all
-- memory.ranking.rank needs, so a search reads the postings of its query terms instead of
-- every memory. The store writes a memory's postings in the same transaction as the
-- memory (terms come from the Python tokeniser); deleting a memory by any path drops its
-- postings by the cascade, and the counts follow every insert and delete by trigger.
-- Memories that exist when this file is applied are indexed by the migration runner
-- right after it, in the same transaction (stores/postgres/search_index.py).

create table if not exists public.memory_terms (
  user_id text not null,
  term text not null,
  category text not null,
  key text not null,
  field smallint not null,
  updated_us bigint not null,
  id text not null,
  -- INCLUDE: a search reads a term's postings from the index alone (index-only scans)
  primary key (user_id, term, category, key) include (field, updated_us, id),
  foreign key (user_id, category, key) references public.memories (user_id, category, key) on delete cascade
);
create index if not exists memory_terms_memory on public.memory_terms (user_id, category, key);

create table if not exists public.memory_counts (
  user_id text primary key,
  n bigint not null
);

create or replace function public.memory_counts_inserted() returns trigger
  language plpgsql set search_path = '' as $$
begin
  insert into public.memory_counts as c (user_id, n)
    select user_id, count(*) from added group by user_id
    on conflict (user_id) do update set n = c.n + excluded.n;
  return null;
end
$$;

create or replace function public.memory_counts_deleted() returns trigger
  language plpgsql set search_path = '' as $$
begin
  update public.memory_counts c set n = c.n - g.n
    from (select user_id, count(*) as n from removed group by user_id) g
    where c.user_id = g.user_id;
  return null;
end
$$;

drop trigger if exists memories_counted_insert on public.memories;
create trigger memories_counted_insert after insert on public.memories
  referencing new table as added for each statement execute function public.memory_counts_inserted();
drop trigger if exists memories_counted_delete on public.memories;
create trigger memories_counted_delete after delete on public.memories
  referencing old table as removed for each statement execute function public.memory_counts_deleted();

insert into public.memory_counts (user_id, n)
  select user_id, count(*) from public.memories group by user_id
  on conflict (user_id) do update set n = excluded.n;

alter table public.memory_terms enable row level security;
alter table public.memory_counts enable row level security;

drop policy if exists memory_terms_owner on public.memory_terms;
create policy memory_terms_owner on public.memory_terms for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

drop policy if exists memory_counts_owner on public.memory_counts;
create policy memory_counts_owner on public.memory_counts for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

revoke all on table public.memory_terms, public.memory_counts from anon;
grant select, insert, update, delete on table public.memory_terms, public.memory_counts to authenticated;
grant all on table public.memory_terms, public.memory_counts to service_role;

-- As 0004 does for the other tables: RLS forced on the owner too (with the server policy
-- that lets it through only when no user claims are set, or for the claimed user), and
-- no TRUNCATE/REFERENCES/TRIGGER for `authenticated`.
do $$
declare
  t text;
  owner_role text;
begin
  foreach t in array array['memory_terms', 'memory_counts'] loop
    select pg_catalog.pg_get_userbyid(c.relowner) into owner_role
      from pg_catalog.pg_class c where c.oid = format('public.%I', t)::regclass;
    execute format('drop policy if exists %I on public.%I', t || '_server', t);
    execute format(
      'create policy %I on public.%I for all to %I '
      'using ((select auth.uid()) is null or (select auth.uid())::text = user_id) '
      'with check ((select auth.uid()) is null or (select auth.uid())::text = user_id)',
      t || '_server', t, owner_role);
    execute format('alter table public.%I force row level security', t);
  end loop;
end
$$;

revoke truncate, references, trigger on table public.memory_terms, public.memory_counts from authenticated;
