"""`wq seed`, `wq seal` and `wq digest`: parse, then call the seed layer."""

from typing import Any

import click

from wq.base.command_options import ItemsOptions, SeedOptions
from wq.base.settings import Text, click_options
from wq.cli.common import EPILOG, connect, connection_options, items_options
from wq.seed import open_runs
from wq.seed.items_source import ItemsSource
from wq.seed.modes import seed_run
from wq.seed.seeder import digest_of


@click.command(epilog=EPILOG)
@connection_options
@items_options
@click.option(
    "--open",
    "keep_open",
    is_flag=True,
    help="Seed an open run: `wq seed --append` adds items while workers process it, until "
    "`wq seal`. Workers wait on a drained open run. The items are optional.",
)
@click.option(
    "--append",
    is_flag=True,
    help="Add the items to an open run, a chunk at a time, each chunk seen by workers whole; "
    "a run not seeded yet is seeded open first. Not idempotent: a retry appends again.",
)
@click_options(SeedOptions)
def seed(keep_open: bool, append: bool, progressive: bool, shards: int, **opts: Any) -> int:
    """Put a run's items into Redis, once.

    Items come from exactly one of: ITEMS on the command line, --items-file, --items-url,
    --items-from, --list, --range or --adopt-list. Seeding is atomic and idempotent: running
    it again for the same run with the same items does nothing, so a retried seeding Job
    never seeds twice; with other items it is an error (exit 2). A source that fails half-way
    seeds nothing. The run records a digest of its items (see `wq status`). With
    --progressive, workers see the items as they are read instead, a chunk at a time.

    \b
    Examples:
      wq seed --run r1 --items-url s3://bucket/items.jsonl
      wq seed --run r1 --items-url s3://bucket/10M-items.txt.gz --progressive
      wq seed --run r1 --list 'gs://bucket/photos/*.jpg'
      generate-items | wq seed --run r1 --items-from -
      wq seed --run r2 --open; wq seed --run r2 --append a b; wq seal --run r2
      wq seed --run r3 --range 0:30000000 --shards 3
    """
    queue, log = connect(opts)
    seed_run(queue, ItemsSource(**opts), log, keep_open, append, progressive, shards)
    return 0


@click.command(epilog=EPILOG)
@connection_options
def seal(**conn: Any) -> int:
    """Close an open run to appends: once its items are all processed its workers exit 0.

    Records the digest of all its items (read back from Redis), shown by `wq status`. Sealing
    a sealed run changes nothing.
    """
    queue, _ = connect(conn)
    click.echo(open_runs.seal(queue).describe(queue.run))
    return 0


@click.command(epilog=EPILOG)
@click.argument("items", nargs=-1, type=Text())
@click_options(ItemsOptions, skip=("adopt_list",))
def digest(**opts: Any) -> int:
    """Print the digest of items, as `wq seed` records it for a run.

    Computed here, without Redis. `wq status` shows the digest a run was seeded with: equal
    digests mean the run holds exactly these items, in this order.

    \b
    Examples:
      wq digest --items-file items.txt
      wq digest --items-file values.yaml    # the `items` of a chart values file
      wq digest --range 0:1000000
      wq digest --items-url s3://bucket/items.jsonl
    """
    click.echo(digest_of(ItemsSource(**opts)))
    return 0
