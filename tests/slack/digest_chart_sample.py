"""The sample chart in docs/digest-chart.png, rendered from a generated ledger by the real digest code.

python -m tests.slack.digest_chart_sample docs/digest-chart.png
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.catalog import Catalog
from bot.infra.db.digest_queries import SqlDigestQueries
from bot.infra.db.engine import make_engine, make_sessionmaker
from bot.infra.db.migrate import upgrade
from bot.ports.digest_store import Frequency
from bot.services.digest import Digest, DigestBuilder, DigestPeriod
from bot.slack.digest_chart import daily_cost_chart
from tests.infra.db.digest_seed import row, seed

TZ = ZoneInfo("Europe/Paris")
TEAM, CHANNEL = "T1", "C1"
# A Thursday afternoon: `/frugal digest now` in a daily channel draws the last 7 days, today so far.
NOW = datetime(2026, 12, 3, 13, 30, tzinfo=timezone.utc)
PER_REQUEST = {"gpt-4.1-nano": Decimal("0.00042"), "gpt-4o-mini": Decimal("0.0016")}


def sample_rows(now: datetime = NOW, seed_value: int = 2026) -> list[dict]:
    """A week of a busy channel: about 1,500 answered requests a working day, a few fallbacks."""
    rng = random.Random(seed_value)
    today = now.astimezone(TZ).date()
    rows = []
    for back in range(6, -1, -1):
        day = today - timedelta(days=back)
        start = datetime(day.year, day.month, day.day, 8, tzinfo=TZ).astimezone(timezone.utc)
        busy = 0.25 if day.weekday() >= 5 else 1.0
        for model, per_day in (("gpt-4.1-nano", 1500), ("gpt-4o-mini", 90)):
            for _ in range(int(per_day * busy * rng.uniform(0.7, 1.2))):
                at = start + timedelta(seconds=rng.uniform(0, 10 * 3600))
                if at >= now:
                    continue
                rows.append(
                    row(
                        at,
                        model=model,
                        user=f"U{rng.randint(1, 12)}",
                        team=TEAM,
                        channel=CHANNEL,
                        tokens=(600, 100, 80),
                        cost=str(PER_REQUEST[model]),
                        baseline="0.004",
                    )
                )
    return rows


async def sample_digest(database_url: str, now: datetime = NOW) -> Digest:
    """Seed a migrated database with the sample week and build today's digest so far from it."""
    engine = make_engine(database_url)
    try:
        await seed(engine, sample_rows(now))
        builder = DigestBuilder(
            SqlDigestQueries(make_sessionmaker(engine)),
            Catalog.load(),
            primary_model="gpt-4.1-nano",
            baseline_model="gpt-4o",
            tz=TZ,
        )
        return await builder.build(TEAM, CHANNEL, DigestPeriod.to_date(Frequency.DAILY, now, TZ), now)
    finally:
        await engine.dispose()


async def _main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/sample.db"
        await upgrade(url)
        png = daily_cost_chart(await sample_digest(url))
    assert png is not None
    out.write_bytes(png)
    print(f"wrote {out} ({len(png):,} bytes)")


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/digest-chart.png")))
