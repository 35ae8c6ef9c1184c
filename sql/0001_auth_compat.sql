-- Memory Agent 0001: Supabase compatibility for plain (self-hosted) Postgres.
--
-- Creates the schema `auth`, the functions `auth.uid()` / `auth.jwt()` and the roles
-- `anon`, `authenticated`, `service_role` ONLY where they are missing. On Supabase all
-- of them exist already and this file changes nothing. Safe to run more than once.

do $$
begin
  if not exists (select from pg_catalog.pg_namespace where nspname = 'auth') then
    create schema auth;
  end if;
end
$$;

do $$
declare
  role_name text;
begin
  foreach role_name in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = role_name) then
      begin
        execute format('create role %I nologin noinherit', role_name);
      exception
        -- roles are cluster-wide: another database may have created it a moment ago
        when duplicate_object or unique_violation then null;
        when insufficient_privilege then
          raise exception 'cannot create role %', role_name
            using hint = 'apply sql/0001_auth_compat.sql once as a superuser (or a role with CREATEROLE)';
      end;
    end if;
  end loop;
end
$$;

-- Supabase's service_role bypasses RLS; only a superuser may grant that attribute.
do $$
begin
  if (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     and not (select rolbypassrls from pg_catalog.pg_roles where rolname = 'service_role') then
    alter role service_role bypassrls;
  end if;
end
$$;

-- The same definitions as Supabase: the user id / claims of the current request,
-- read from the transaction-local setting `request.jwt.claims` (what PostgREST sets).
do $$
begin
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
      language sql stable
      as $fn$
        select coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
        )::uuid
      $fn$;
  end if;
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
      language sql stable
      as $fn$
        select coalesce(
          nullif(current_setting('request.jwt.claim', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')
        )::jsonb
      $fn$;
  end if;
end
$$;

do $$
begin
  if (select nspowner = (select oid from pg_catalog.pg_roles where rolname = current_user)
      from pg_catalog.pg_namespace where nspname = 'auth') then
    grant usage on schema auth to anon, authenticated, service_role;
  end if;
end
$$;

-- The application switches to `authenticated` inside its own transactions (defence in
-- depth, see 0003_rls.sql); a non-superuser connecting role must be a member to do so.
do $$
begin
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     and not pg_has_role(current_user, 'authenticated', 'MEMBER') then
    begin
      execute format('grant authenticated to %I', current_user);
    exception
      when insufficient_privilege then
        raise warning 'could not grant role authenticated to %: the store will run without the RLS defence '
          'unless an admin runs: grant authenticated to %', current_user, current_user;
    end;
  end if;
end
$$;
