"""What `wq seed` does with its flags: seed once (staged and committed in one step), seed an
open run, append to one, or seed progressively (committed chunk by chunk as it is read)."""

from wq.base.errors import ConfigError
from wq.base.logs import EventLog
from wq.seed import open_runs
from wq.seed.items_source import ItemRange, ItemsSource
from wq.seed.seeder import seed_from
from wq.seed.sharding import seed_listed_sharded, seed_range_sharded
from wq.store.queue import RunQueue


def seed_run(
    queue: RunQueue,
    source: ItemsSource,
    log: EventLog,
    keep_open: bool = False,
    append: bool = False,
    progressive: bool = False,
    shards: int = 1,
) -> None:
    """Seed the run as the flags say, and log what was done (event seed.done or append.done)."""
    if shards > 1 and source.adopt_list:
        raise ConfigError("--shards takes --range or listed items, not --adopt-list")
    if progressive:
        _seed_progressively(queue, source, log, keep_open or append, shards)
    elif append:
        source.check()
        if source.item_range or source.adopt_list:
            raise ConfigError("--append takes listed items, not --range or --adopt-list")
        added = open_runs.append(queue, source.batches(), shards)
        log.info(
            "append.done",
            run=queue.run,
            appended=added.appended,
            total=added.total,
            digest=added.digest,
        )
    else:
        if shards > 1 and keep_open:
            source.check(none_ok=True)
            if source.given():
                raise ConfigError(
                    "a sharded open run starts empty: seed it with --open --shards alone, then "
                    "add its items with --append"
                )
            result = open_runs.open_sharded_run(queue, shards)
        elif shards > 1:
            source.check()
            if source.item_range:
                result = seed_range_sharded(queue, ItemRange.parse(source.item_range), shards)
            else:
                result = seed_listed_sharded(queue, source.batches(), shards)
        else:
            result = seed_from(queue, source, open_run=keep_open)
        log.info(
            "seed.done",
            run=queue.run,
            outcome="seeded" if result.seeded_now else "already_seeded",
            total=result.total,
            **({"open": True} if keep_open else {"digest": result.digest}),
            **({"shards": shards} if shards > 1 else {}),
        )


def _seed_progressively(
    queue: RunQueue, source: ItemsSource, log: EventLog, other_mode: bool, shards: int
) -> None:
    source.check()
    if other_mode or source.item_range or source.adopt_list:
        raise ConfigError(
            "--progressive takes listed items (--items-url, --items-from, --list, --items-file "
            "or ITEMS), without --open, --append, --range or --adopt-list"
        )
    result = open_runs.seed_progressively(queue, source.batches(), shards)
    log.info(
        "seed.done",
        run=queue.run,
        outcome="seeded" if result.appended or result.seal.sealed_now else "already_seeded",
        total=result.seal.total,
        appended=result.appended,
        resumed_after=result.resumed_after,
        digest=result.seal.digest,
    )
