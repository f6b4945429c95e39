"""arq's side of the start-up comparison in throughput.py: the settings of an arq worker whose
one job writes the Redis clock's time to a key, and (run as a script) the enqueueing of that
job. It runs in arq's own environment (bench/requirements-arq.txt, a venv of its own: arq pins
a redis-py older than wq's), so it imports nothing of wq.

    python bench/arq_worker.py REDIS_URL KEY     # enqueue one job that writes TIME to KEY
    arq --burst arq_worker.WorkerSettings        # with ARQ_REDIS_URL set, bench/ on the path
"""

import asyncio
import os
import sys
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings


async def first_job(ctx: dict[str, Any], key: str) -> None:
    # By the server's clock, as throughput.py reads wq's first lease: no two clocks to compare.
    seconds, micros = await ctx["redis"].time()
    await ctx["redis"].set(key, f"{seconds}.{micros:06d}")


class WorkerSettings:
    functions = [first_job]  # noqa: RUF012 (arq reads class attributes)
    redis_settings = RedisSettings.from_dsn(os.environ.get("ARQ_REDIS_URL", "redis://localhost"))
    burst = True


async def enqueue(url: str, key: str) -> None:
    pool = await create_pool(RedisSettings.from_dsn(url))
    await pool.enqueue_job("first_job", key)
    await pool.aclose()


if __name__ == "__main__":
    asyncio.run(enqueue(sys.argv[1], sys.argv[2]))
