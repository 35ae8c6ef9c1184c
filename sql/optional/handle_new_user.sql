-- Memory Agent (optional): create a profile when someone signs up through Supabase Auth.
--
-- NOT applied by `python -m stores migrate`; run it yourself in the SQL editor if your
-- users sign up with Supabase Auth. The agent creates profiles on first contact anyway
-- (voice callers need not be Supabase users); this only makes the profile exist earlier.
-- A failing trigger would block sign-ups, so it is trivial and idempotent: an existing
-- profile is left alone. `visits = 0` means the agent has not met the user yet, so the
-- agent's first `profiles.ensure` still reports `is_first_login = true`.

create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.profiles (id, email)
  values (new.id::text, new.email)
  on conflict (id) do nothing;
  return new;
end;
$$;

drop trigger if exists on_auth_user_created on auth.users;
create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_user();
