"""Alembic migrations, shipped inside the package; `frugal migrate` (bot.infra.db.migrate) runs them."""
