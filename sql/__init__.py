"""Numbered Postgres/Supabase migrations, shipped as package data for `python -m stores migrate`.

The `.sql` files are plain SQL that also run as they are in Supabase's SQL editor
or through `supabase db push`; every file is idempotent.
"""
