-- Memory Agent 0009: each user's document frequency per term, kept by triggers (issue 12).
--
-- The ranker weighs a query term by how many of the user's memories hold it. Counting
-- that from memory_terms on every search read every posting of a common word (about
-- half of a search's server time at 10,000 memories); this table answers it with one
-- primary-key lookup per term. Statement-level triggers on memory_terms keep it exact
-- through every write: remember (postings replaced), forget, forget_user, retention, and
-- the cascade from a deleted memory. A term's row is deleted when its count reaches 0,
-- so an erased user's words do not stay behind here. Writes of one user take turns
-- (the store's per-user advisory lock), so these upserts never deadlock.

create table if not exists public.memory_term_counts (
  user_id text not null,
  term text not null,
  df bigint not null,
  primary key (user_id, term)
);

create or replace function public.memory_term_counts_inserted() returns trigger
  language plpgsql set search_path = '' as $$
begin
  insert into public.memory_term_counts as c (user_id, term, df)
    select user_id, term, count(*) from added group by user_id, term
    on conflict (user_id, term) do update set df = c.df + excluded.df;
  return null;
end
$$;

create or replace function public.memory_term_counts_deleted() returns trigger
  language plpgsql set search_path = '' as $$
begin
  update public.memory_term_counts c set df = c.df - gone.n
    from (select user_id, term, count(*) as n from removed group by user_id, term) gone
    where c.user_id = gone.user_id and c.term = gone.term;
  delete from public.memory_term_counts c
    using (select distinct user_id, term from removed) gone
    where c.user_id = gone.user_id and c.term = gone.term and c.df <= 0;
  return null;
end
$$;

drop trigger if exists memory_terms_counted_insert on public.memory_terms;
create trigger memory_terms_counted_insert after insert on public.memory_terms
  referencing new table as added for each statement execute function public.memory_term_counts_inserted();
drop trigger if exists memory_terms_counted_delete on public.memory_terms;
create trigger memory_terms_counted_delete after delete on public.memory_terms
  referencing old table as removed for each statement execute function public.memory_term_counts_deleted();

insert into public.memory_term_counts as c (user_id, term, df)
  select user_id, term, count(*) from public.memory_terms group by user_id, term
  on conflict (user_id, term) do update set df = excluded.df;

alter table public.memory_term_counts enable row level security;

drop policy if exists memory_term_counts_owner on public.memory_term_counts;
create policy memory_term_counts_owner on public.memory_term_counts for all to authenticated
  using ((select auth.uid())::text = user_id)
  with check ((select auth.uid())::text = user_id);

revoke all on table public.memory_term_counts from anon;
grant select, insert, update, delete on table public.memory_term_counts to authenticated;
grant all on table public.memory_term_counts to service_role;
revoke truncate, references, trigger on table public.memory_term_counts from authenticated;

-- As 0004 and 0006 do: RLS forced on the owner too, with the server policy that lets it
-- through only when no user claims are set, or for the claimed user.
do $$
declare
  owner_role text;
begin
  select pg_catalog.pg_get_userbyid(c.relowner) into owner_role
    from pg_catalog.pg_class c where c.oid = 'public.memory_term_counts'::regclass;
  drop policy if exists memory_term_counts_server on public.memory_term_counts;
  execute format(
    'create policy memory_term_counts_server on public.memory_term_counts for all to %I '
    'using ((select auth.uid()) is null or (select auth.uid())::text = user_id) '
    'with check ((select auth.uid()) is null or (select auth.uid())::text = user_id)',
    owner_role);
  alter table public.memory_term_counts force row level security;
end
$$;
