"""Quotas: limits, per-period counters, reservations and their holds; on PostgreSQL, reserve and settle functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.infra.db.base import Money, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Up to 10^12 tokens, USD to 9 places (as bot.infra.db.quota_tables.QuotaAmount).
_AMOUNT = sa.Numeric(24, 9)

# The limits that apply to a request: the channel's own, the user's, and each default the
# channel has no own limit of the same metric and period for. `l` is quota_limits.
_APPLIES = """
    l.team_id = p_team AND (
        (l.scope = 'channel' AND l.target = p_channel)
        OR (l.scope = 'user' AND l.target = p_user)
        OR (l.scope = 'default' AND l.target = '' AND NOT EXISTS (
            SELECT 1 FROM quota_limits own
            WHERE own.team_id = p_team AND own.scope = 'channel' AND own.target = p_channel
              AND own.metric = l.metric AND own.period = l.period)))
"""
_COUNTED = "CASE WHEN l.scope = 'user' THEN p_user ELSE p_channel END"
_START = "CASE l.period WHEN 'day' THEN p_day WHEN 'week' THEN p_week ELSE p_month END"

_LEDGER_USED = """
CREATE OR REPLACE FUNCTION frugal_quota_ledger_used(
    p_team text, p_scope text, p_counted text, p_metric text, p_start timestamptz
) RETURNS numeric LANGUAGE sql STABLE AS $$
    SELECT CASE p_metric
               WHEN 'requests' THEN count(DISTINCT request_key)::numeric
               WHEN 'tokens' THEN coalesce(sum(prompt_tokens + completion_tokens), 0)::numeric
               ELSE coalesce(sum(cost_usd), 0) END
    FROM usage_ledger
    WHERE team_id = p_team AND outcome = 'ok' AND created_at >= p_start
      AND ((p_scope = 'user' AND user_id = p_counted) OR (p_scope <> 'user' AND channel_id = p_counted))
$$
"""

# One call reserves: create missing counters (from the ledger), lock the applying ones in id
# order (no deadlocks between reserves and settles), pick the largest level that fits all,
# hold it. Returns the counters as they stood (no rows: no limit applies; r_level NULL: refused).
_RESERVE = f"""
CREATE OR REPLACE FUNCTION frugal_quota_reserve(
    p_id text, p_key text, p_team text, p_channel text, p_user text,
    p_tokens bigint[], p_usd numeric[],
    p_day timestamptz, p_week timestamptz, p_month timestamptz,
    p_now timestamptz, p_expires timestamptz
) RETURNS TABLE (
    r_level int, r_scope text, r_target text, r_metric text, r_period text, r_amount numeric,
    r_start timestamptz, r_used numeric, r_reserved numeric
) LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := '{{}}';
    scopes text[] := '{{}}';
    targets text[] := '{{}}';
    metrics text[] := '{{}}';
    periods text[] := '{{}}';
    amounts numeric[] := '{{}}';
    starts timestamptz[] := '{{}}';
    useds numeric[] := '{{}}';
    reserveds numeric[] := '{{}}';
    rec record;
    lvl int;
    fits boolean;
    need numeric;
BEGIN
    INSERT INTO quota_counters (team_id, scope, counted, metric, period, period_start, used, reserved)
    SELECT l.team_id, l.scope, {_COUNTED}, l.metric, l.period, {_START},
           frugal_quota_ledger_used(p_team, l.scope, {_COUNTED}, l.metric, {_START}), 0
    FROM quota_limits l
    WHERE {_APPLIES}
      AND NOT EXISTS (
          SELECT 1 FROM quota_counters c
          WHERE c.team_id = l.team_id AND c.scope = l.scope AND c.counted = {_COUNTED}
            AND c.metric = l.metric AND c.period = l.period AND c.period_start = {_START})
    ON CONFLICT DO NOTHING;

    FOR rec IN
        SELECT c.id, l.scope, l.target, l.metric, l.period, l.amount, c.period_start, c.used, c.reserved
        FROM quota_limits l
        JOIN quota_counters c
          ON c.team_id = l.team_id AND c.scope = l.scope AND c.counted = {_COUNTED}
         AND c.metric = l.metric AND c.period = l.period AND c.period_start = {_START}
        WHERE {_APPLIES}
        ORDER BY c.id
        FOR UPDATE OF c
    LOOP
        ids := ids || rec.id;
        scopes := scopes || rec.scope::text;
        targets := targets || rec.target::text;
        metrics := metrics || rec.metric::text;
        periods := periods || rec.period::text;
        amounts := amounts || rec.amount;
        starts := starts || rec.period_start;
        useds := useds || rec.used;
        reserveds := reserveds || rec.reserved;
    END LOOP;
    IF coalesce(array_length(ids, 1), 0) = 0 THEN
        RETURN;
    END IF;

    FOR k IN REVERSE coalesce(array_length(p_tokens, 1), 0) .. 1 LOOP
        fits := true;
        FOR i IN 1 .. array_length(ids, 1) LOOP
            need := CASE metrics[i] WHEN 'requests' THEN 1 WHEN 'tokens' THEN p_tokens[k] ELSE p_usd[k] END;
            IF need IS NULL OR useds[i] + reserveds[i] + need > amounts[i] THEN
                fits := false;
                EXIT;
            END IF;
        END LOOP;
        IF fits THEN
            lvl := k;
            EXIT;
        END IF;
    END LOOP;

    IF lvl IS NOT NULL THEN
        INSERT INTO quota_reservations
            (id, request_key, team_id, channel_id, user_id, held_tokens, held_usd, created_at, expires_at)
        VALUES (p_id, p_key, p_team, p_channel, p_user, p_tokens[lvl], p_usd[lvl], p_now, p_expires);
        UPDATE quota_counters c
        SET reserved = c.reserved
            + CASE c.metric WHEN 'requests' THEN 1 WHEN 'tokens' THEN p_tokens[lvl] ELSE p_usd[lvl] END
        WHERE c.id = ANY (ids);
        INSERT INTO quota_holds (reservation_id, counter_id) SELECT p_id, unnest(ids);
    END IF;

    RETURN QUERY
    SELECT lvl - 1, unnest(scopes), unnest(targets), unnest(metrics), unnest(periods), unnest(amounts),
           unnest(starts), unnest(useds), unnest(reserveds);
END
$$
"""

# One call settles (or, with zeros, releases): whoever deletes the reservation row owns it, so a
# second settle, a release after a settle, or an expiry racing a settle counts nothing twice.
_SETTLE = """
CREATE OR REPLACE FUNCTION frugal_quota_settle(p_id text, p_requests bigint, p_tokens bigint, p_usd numeric)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    counter_ids bigint[];
    held_t bigint;
    held_u numeric;
BEGIN
    SELECT array_agg(counter_id ORDER BY counter_id) INTO counter_ids FROM quota_holds WHERE reservation_id = p_id;
    DELETE FROM quota_reservations WHERE id = p_id RETURNING held_tokens, held_usd INTO held_t, held_u;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM quota_counters WHERE id = ANY (counter_ids) ORDER BY id FOR UPDATE;
    UPDATE quota_counters c
    SET reserved = c.reserved - CASE c.metric WHEN 'requests' THEN 1 WHEN 'tokens' THEN held_t ELSE held_u END,
        used = c.used + CASE c.metric WHEN 'requests' THEN p_requests WHEN 'tokens' THEN p_tokens ELSE p_usd END
    WHERE c.id = ANY (counter_ids);
    RETURN true;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "quota_limits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("amount", _AMOUNT, nullable=False),
        sa.Column("set_by", sa.String(32), nullable=False),
        sa.Column("set_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_limits")),
        sa.UniqueConstraint(
            "team_id",
            "scope",
            "target",
            "metric",
            "period",
            name=op.f("uq_quota_limits_team_id_scope_target_metric_period"),
        ),
    )
    op.create_table(
        "quota_counters",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("counted", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("used", _AMOUNT, nullable=False),
        sa.Column("reserved", _AMOUNT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_counters")),
        sa.UniqueConstraint(
            "team_id",
            "scope",
            "counted",
            "metric",
            "period",
            "period_start",
            name=op.f("uq_quota_counters_team_id_scope_counted_metric_period_period_start"),
        ),
    )
    op.create_table(
        "quota_reservations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("request_key", sa.String(128), nullable=False),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("held_tokens", sa.BigInteger(), nullable=False),
        sa.Column("held_usd", Money, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_reservations")),
        sa.UniqueConstraint("request_key", name=op.f("uq_quota_reservations_request_key")),
    )
    op.create_index(op.f("ix_quota_reservations_expires_at"), "quota_reservations", ["expires_at"])
    op.create_table(
        "quota_holds",
        sa.Column("reservation_id", sa.String(36), nullable=False),
        sa.Column("counter_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["quota_reservations.id"],
            name=op.f("fk_quota_holds_reservation_id_quota_reservations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["quota_counters.id"], name=op.f("fk_quota_holds_counter_id_quota_counters")
        ),
        sa.PrimaryKeyConstraint("reservation_id", "counter_id", name=op.f("pk_quota_holds")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_LEDGER_USED)
        op.execute(_RESERVE)
        op.execute(_SETTLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS frugal_quota_settle(text, bigint, bigint, numeric)")
        op.execute(
            "DROP FUNCTION IF EXISTS frugal_quota_reserve(text, text, text, text, text, bigint[], numeric[], "
            "timestamptz, timestamptz, timestamptz, timestamptz, timestamptz)"
        )
        op.execute("DROP FUNCTION IF EXISTS frugal_quota_ledger_used(text, text, text, text, timestamptz)")
    op.drop_table("quota_holds")
    op.drop_table("quota_reservations")
    op.drop_table("quota_counters")
    op.drop_table("quota_limits")
