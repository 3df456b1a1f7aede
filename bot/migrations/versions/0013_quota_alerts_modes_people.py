"""Quota alerts, warn limits, downgrades and per-person defaults: limit options, the alerts fired, new PostgreSQL functions.

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.infra.db.base import UtcDateTime

revision = "0013"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The limits that apply to a request: the channel's own, the user's own, and each default (per
# channel, per person) that has no own limit of the same metric and period. `l` is quota_limits.
_APPLIES = """
    l.team_id = p_team AND (
        (l.scope = 'channel' AND l.target = p_channel)
        OR (l.scope = 'user' AND l.target = p_user)
        OR (l.scope = 'default' AND l.target = '' AND NOT EXISTS (
            SELECT 1 FROM quota_limits own
            WHERE own.team_id = p_team AND own.scope = 'channel' AND own.target = p_channel
              AND own.metric = l.metric AND own.period = l.period))
        OR (l.scope = 'default_user' AND l.target = '' AND NOT EXISTS (
            SELECT 1 FROM quota_limits own
            WHERE own.team_id = p_team AND own.scope = 'user' AND own.target = p_user
              AND own.metric = l.metric AND own.period = l.period)))
"""
_COUNTED = "CASE WHEN l.scope IN ('user', 'default_user') THEN p_user ELSE p_channel END"
_START = "CASE l.period WHEN 'day' THEN p_day WHEN 'week' THEN p_week ELSE p_month END"
# A counter's limit: defaults are set once (target '') and counted per channel or person.
_LIMIT_OF_COUNTER = """
    l.team_id = c.team_id AND l.scope = c.scope AND l.metric = c.metric AND l.period = c.period
    AND l.target = CASE WHEN c.scope IN ('default', 'default_user') THEN '' ELSE c.counted END
"""

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
      AND ((p_scope IN ('user', 'default_user') AND user_id = p_counted)
           OR (p_scope NOT IN ('user', 'default_user') AND channel_id = p_counted))
$$
"""

_LEDGER_USED_0003 = """
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

# As 0003's frugal_quota_reserve, and: `warn` limits are held on (so their use is counted) but never
# refuse; when a hard limit is past its downgrade share, only the cheapest model's worst case
# (p_cheap_*) is considered (r_downgraded). r_level is 0-based (0 when downgraded), NULL when refused.
_RESERVE = f"""
CREATE OR REPLACE FUNCTION frugal_quota_reserve_v2(
    p_id text, p_key text, p_team text, p_channel text, p_user text,
    p_tokens bigint[], p_usd numeric[], p_cheap_tokens bigint, p_cheap_usd numeric,
    p_day timestamptz, p_week timestamptz, p_month timestamptz,
    p_now timestamptz, p_expires timestamptz
) RETURNS TABLE (
    r_level int, r_downgraded boolean, r_counter bigint, r_counted text,
    r_scope text, r_target text, r_metric text, r_period text, r_amount numeric,
    r_mode text, r_alerts text, r_downgrade int,
    r_start timestamptz, r_used numeric, r_reserved numeric
) LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[] := '{{}}';
    counteds text[] := '{{}}';
    scopes text[] := '{{}}';
    targets text[] := '{{}}';
    metrics text[] := '{{}}';
    periods text[] := '{{}}';
    amounts numeric[] := '{{}}';
    modes text[] := '{{}}';
    alert_lists text[] := '{{}}';
    downgrades int[] := '{{}}';
    starts timestamptz[] := '{{}}';
    useds numeric[] := '{{}}';
    reserveds numeric[] := '{{}}';
    rec record;
    lvl int;
    down boolean := false;
    fits boolean;
    need numeric;
    hold_t bigint;
    hold_u numeric;
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
        SELECT c.id, c.counted, l.scope, l.target, l.metric, l.period, l.amount, l.mode, l.alerts, l.downgrade,
               c.period_start, c.used, c.reserved
        FROM quota_limits l
        JOIN quota_counters c
          ON c.team_id = l.team_id AND c.scope = l.scope AND c.counted = {_COUNTED}
         AND c.metric = l.metric AND c.period = l.period AND c.period_start = {_START}
        WHERE {_APPLIES}
        ORDER BY c.id
        FOR UPDATE OF c
    LOOP
        ids := ids || rec.id;
        counteds := counteds || rec.counted::text;
        scopes := scopes || rec.scope::text;
        targets := targets || rec.target::text;
        metrics := metrics || rec.metric::text;
        periods := periods || rec.period::text;
        amounts := amounts || rec.amount;
        modes := modes || rec.mode::text;
        alert_lists := alert_lists || rec.alerts::text;
        downgrades := array_append(downgrades, rec.downgrade);
        starts := starts || rec.period_start;
        useds := useds || rec.used;
        reserveds := reserveds || rec.reserved;
        IF rec.mode = 'hard' AND rec.downgrade IS NOT NULL
           AND (rec.used + rec.reserved) * 100 >= rec.downgrade * rec.amount THEN
            down := true;
        END IF;
    END LOOP;
    IF coalesce(array_length(ids, 1), 0) = 0 THEN
        RETURN;
    END IF;
    IF p_cheap_tokens IS NULL THEN
        down := false;
    END IF;

    IF down THEN
        fits := true;
        FOR i IN 1 .. array_length(ids, 1) LOOP
            CONTINUE WHEN modes[i] <> 'hard';
            need := CASE metrics[i] WHEN 'requests' THEN 1 WHEN 'tokens' THEN p_cheap_tokens ELSE p_cheap_usd END;
            IF need IS NULL OR useds[i] + reserveds[i] + need > amounts[i] THEN
                fits := false;
                EXIT;
            END IF;
        END LOOP;
        IF fits THEN
            lvl := 1;
            hold_t := p_cheap_tokens;
            hold_u := p_cheap_usd;
        END IF;
    ELSE
        FOR k IN REVERSE coalesce(array_length(p_tokens, 1), 0) .. 1 LOOP
            fits := true;
            FOR i IN 1 .. array_length(ids, 1) LOOP
                CONTINUE WHEN modes[i] <> 'hard';
                need := CASE metrics[i] WHEN 'requests' THEN 1 WHEN 'tokens' THEN p_tokens[k] ELSE p_usd[k] END;
                IF need IS NULL OR useds[i] + reserveds[i] + need > amounts[i] THEN
                    fits := false;
                    EXIT;
                END IF;
            END LOOP;
            IF fits THEN
                lvl := k;
                hold_t := p_tokens[k];
                hold_u := p_usd[k];
                EXIT;
            END IF;
        END LOOP;
    END IF;

    IF lvl IS NOT NULL THEN
        INSERT INTO quota_reservations
            (id, request_key, team_id, channel_id, user_id, held_tokens, held_usd, created_at, expires_at)
        VALUES (p_id, p_key, p_team, p_channel, p_user, hold_t, hold_u, p_now, p_expires);
        UPDATE quota_counters c
        SET reserved = c.reserved
            + CASE c.metric WHEN 'requests' THEN 1 WHEN 'tokens' THEN hold_t ELSE coalesce(hold_u, 0) END
        WHERE c.id = ANY (ids);
        INSERT INTO quota_holds (reservation_id, counter_id) SELECT p_id, unnest(ids);
    END IF;

    RETURN QUERY
    SELECT lvl - 1, down, unnest(ids), unnest(counteds), unnest(scopes), unnest(targets), unnest(metrics),
           unnest(periods), unnest(amounts), unnest(modes), unnest(alert_lists), unnest(downgrades),
           unnest(starts), unnest(useds), unnest(reserveds);
END
$$
"""

# As 0003's frugal_quota_settle, and in the same transaction: each alert threshold the counters
# now reach is inserted into quota_alerts unless it is there already (its unique key), and only
# the rows this call inserted are returned. One row with r_owned false: the hold was gone; one row
# with r_threshold NULL: settled, and no threshold was reached first here.
_SETTLE = f"""
CREATE OR REPLACE FUNCTION frugal_quota_settle_v2(
    p_id text, p_requests bigint, p_tokens bigint, p_usd numeric, p_now timestamptz
) RETURNS TABLE (
    r_owned boolean, r_counter bigint, r_team text, r_counted text, r_scope text, r_target text,
    r_metric text, r_period text, r_amount numeric, r_mode text, r_alerts text, r_downgrade int,
    r_start timestamptz, r_used numeric, r_threshold int
) LANGUAGE plpgsql AS $$
DECLARE
    counter_ids bigint[];
    held_t bigint;
    held_u numeric;
BEGIN
    SELECT array_agg(counter_id ORDER BY counter_id) INTO counter_ids FROM quota_holds WHERE reservation_id = p_id;
    DELETE FROM quota_reservations WHERE id = p_id RETURNING held_tokens, held_usd INTO held_t, held_u;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::numeric, NULL::text, NULL::text, NULL::int, NULL::timestamptz, NULL::numeric, NULL::int;
        RETURN;
    END IF;
    PERFORM 1 FROM quota_counters WHERE id = ANY (counter_ids) ORDER BY id FOR UPDATE;
    UPDATE quota_counters c
    SET reserved = c.reserved
            - CASE c.metric WHEN 'requests' THEN 1 WHEN 'tokens' THEN held_t ELSE coalesce(held_u, 0) END,
        used = c.used + CASE c.metric WHEN 'requests' THEN p_requests WHEN 'tokens' THEN p_tokens ELSE p_usd END
    WHERE c.id = ANY (counter_ids);

    RETURN QUERY
    WITH fired AS (
        INSERT INTO quota_alerts (counter_id, threshold, amount, used, fired_at)
        SELECT c.id, t.pct, l.amount, c.used, p_now
        FROM quota_counters c
        JOIN quota_limits l ON {_LIMIT_OF_COUNTER}
        CROSS JOIN LATERAL unnest(string_to_array(nullif(l.alerts, ''), ',')::int[]) AS t(pct)
        WHERE c.id = ANY (counter_ids) AND c.used * 100 >= t.pct * l.amount
        ON CONFLICT DO NOTHING
        RETURNING counter_id, threshold, used
    )
    SELECT true, c.id, c.team_id::text, c.counted::text, l.scope::text, l.target::text, l.metric::text,
           l.period::text, l.amount, l.mode::text, l.alerts::text, l.downgrade, c.period_start, f.used, f.threshold
    FROM fired f
    JOIN quota_counters c ON c.id = f.counter_id
    JOIN quota_limits l ON {_LIMIT_OF_COUNTER};
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, NULL::numeric, NULL::text, NULL::text, NULL::int, NULL::timestamptz, NULL::numeric, NULL::int;
    END IF;
END
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # As bot.infra.db.quota_tables.QuotaAmount: exact decimal text on SQLite (see 0009).
    amount = sa.Numeric(24, 9) if postgres else sa.String(40)
    with op.batch_alter_table("quota_limits") as batch:
        batch.add_column(sa.Column("mode", sa.String(8), server_default=sa.text("'hard'"), nullable=False))
        batch.add_column(sa.Column("alerts", sa.String(64), server_default=sa.text("'80,100'"), nullable=False))
        batch.add_column(sa.Column("downgrade", sa.Integer(), nullable=True))
    op.create_table(
        "quota_alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("counter_id", _ID, nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("amount", amount, nullable=False),
        sa.Column("used", amount, nullable=False),
        sa.Column("fired_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_alerts")),
        sa.ForeignKeyConstraint(
            ["counter_id"],
            ["quota_counters.id"],
            name=op.f("fk_quota_alerts_counter_id_quota_counters"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "counter_id", "threshold", "amount", name=op.f("uq_quota_alerts_counter_id_threshold_amount")
        ),
    )
    if postgres:
        op.execute(_LEDGER_USED)
        op.execute(_RESERVE)
        op.execute(_SETTLE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS frugal_quota_settle_v2(text, bigint, bigint, numeric, timestamptz)")
        op.execute(
            "DROP FUNCTION IF EXISTS frugal_quota_reserve_v2(text, text, text, text, text, bigint[], numeric[], "
            "bigint, numeric, timestamptz, timestamptz, timestamptz, timestamptz, timestamptz)"
        )
        op.execute(_LEDGER_USED_0003)
    op.drop_table("quota_alerts")
    # The per-person defaults mean nothing to the code before this revision.
    op.execute(sa.text("DELETE FROM quota_limits WHERE scope = 'default_user'"))
    with op.batch_alter_table("quota_limits") as batch:
        batch.drop_column("downgrade")
        batch.drop_column("alerts")
        batch.drop_column("mode")
