"""The options of every command, part two: what `wq seed`, `wq status`, `wq exporter`,
`wq run` and `wq autoscale` take besides the connection (wq.base.options has that and the
worker's). Declared as settings (wq.base.settings), like part one.
"""

from dataclasses import dataclass
from pathlib import Path

import click

from wq.base.run_id import RunIds
from wq.base.settings import Text, count, seconds, setting

# Formats of an items file or stream (wq.seed.formats reads them).
ITEMS_FORMATS = ("lines", "jsonl", "json", "yaml")


@dataclass(frozen=True)
class ItemsOptions:
    """Where `wq seed` and `wq run` take a run's items from: exactly one of these is given."""

    items: tuple[str, ...] = ()  # plain strings from the command line (ITEM...)
    items_file: Path | None = setting(
        None,
        "--items-file",
        "WQ_ITEMS_FILE",
        "Read items from a file: one per line, or a JSON/YAML list (or the `items` list of a "
        "chart values file).",
        type=click.Path(path_type=Path, dir_okay=False),
    )
    items_url: str | None = setting(
        None,
        "--items-url",
        "WQ_ITEMS_URL",
        "Stream items from a URL: file://, http(s)://, s3:// or gs:// (credentials from the "
        "usual AWS_*/GOOGLE_* environment or workload identity); .gz and other compressions "
        "are undone. Read as it arrives, in the same memory for any size.",
    )
    items_from: str | None = setting(
        None,
        "--items-from",
        "WQ_ITEMS_FROM",
        "Stream items from standard input (-), or from a URL as --items-url.",
    )
    list_glob: str | None = setting(
        None,
        "--list",
        "WQ_ITEMS_LIST",
        "One item per object matching a glob (its URL), in sorted order: "
        "'s3://bucket/in/*.png', 'gs://b/in/**/*.json', '/data/*.csv'.",
    )
    items_format: str | None = setting(
        None,
        "--format",
        "WQ_ITEMS_FORMAT",
        "Format of --items-file, --items-url or --items-from: lines, jsonl (JSON Lines), json "
        "or yaml (a list, or a chart values file's `items`). Default: from the extension "
        "(.json, .jsonl/.ndjson, .yaml/.yml; else lines).",
        type=click.Choice(ITEMS_FORMATS),
    )
    item_range: str | None = setting(
        None,
        "--range",
        "WQ_ITEM_RANGE",
        "Items are the integers START:END[:STEP] (END excluded, as in Python's range); nothing "
        "is stored per item, so millions are cheap.",
    )
    adopt_list: str | None = setting(
        None,
        "--adopt-list",
        "WQ_ADOPT_LIST",
        "Adopt a plain Redis list filled by hand (rpush KEY a b c) as the items.",
        type=Text(),
    )
    allow_empty: bool = setting(
        False,
        "--allow-empty",
        "WQ_ALLOW_EMPTY",
        "Take a source that holds no items (an empty file or list, empty standard input, a "
        "--list that matches nothing) as an empty run, done at once; without it that is an "
        "error (exit 2), as an empty --range is. An open run (--open) may always start empty.",
        is_flag=True,
    )


@dataclass(frozen=True)
class AutoscaleOptions:
    """What `wq autoscale` sizes, and how (wq.scale.policy says what each rule does)."""

    job: str = setting(
        "",
        "--job",
        "WQ_AUTOSCALE_JOB",
        "Name of the run's worker Job, whose parallelism is set.",
        type=Text(),
        required=True,
    )
    namespace: str = setting(
        "",
        "--namespace",
        "WQ_AUTOSCALE_NAMESPACE",
        "Namespace of the Job (default: the pod's own, from its service account).",
        type=Text(),
    )
    min_pods: int = setting(
        1,
        "--min",
        "WQ_AUTOSCALE_MIN",
        "Fewest worker pods while work remains.",
        type=count(1, 10000),
        value="autoscale.min",
    )
    max_pods: int = setting(
        10,
        "--max",
        "WQ_AUTOSCALE_MAX",
        "Most worker pods.",
        type=count(1, 10000),
        value="autoscale.max",
    )
    target_s: float = setting(
        600.0,
        "--target-seconds",
        "WQ_AUTOSCALE_TARGET_SECONDS",
        "Enough pods to finish what is left in about this many seconds, at the rate each pod "
        "has been finishing items.",
        type=seconds(1),
        value="autoscale.targetSeconds",
    )
    items_per_pod: int = setting(
        0,
        "--items-per-worker",
        "WQ_AUTOSCALE_ITEMS_PER_WORKER",
        "Above 0: one pod per this many items left (pending and in flight), instead of "
        "--target-seconds.",
        type=count(0, 1_000_000_000),
        value="autoscale.itemsPerWorker",
    )
    interval_s: float = setting(
        10.0,
        "--interval",
        "WQ_AUTOSCALE_INTERVAL",
        "Seconds between steps.",
        type=seconds(1, 3600),
        value="autoscale.interval",
    )
    cooldown_s: float = setting(
        120.0,
        "--cooldown",
        "WQ_AUTOSCALE_COOLDOWN",
        "Seconds a smaller size must be wanted without a break before the Job shrinks to it "
        "(0: at once); growing never waits.",
        type=seconds(),
        value="autoscale.cooldown",
    )


@dataclass(frozen=True)
class SeedOptions:
    """How `wq seed` puts the items in, besides where they come from (ItemsOptions)."""

    progressive: bool = setting(
        False,
        "--progressive",
        "WQ_SEED_PROGRESSIVE",
        "Commit the items chunk by chunk as they are read, to a run that stays open until the "
        "source ends, then seal it: workers start on the first items while the rest is read. A "
        "retry resumes after the items already in, so each goes in once.",
        is_flag=True,
    )
    shards: int = setting(
        1,
        "--shards",
        "WQ_SHARDS",
        "Spread the run over this many sub-runs, each under a Redis Cluster hash tag of its "
        "own placed on another node, so that one run's throughput and memory grow with the "
        "cluster; workers start on a shard of their own and help the others when it runs "
        "out. A range is split in blocks, other items dealt 1024 at a time as they are read "
        "(with --open, --append and --progressive too). 1 (the default): one slot; an "
        "append to a sharded run goes to its shards.",
        type=count(1, 1024),
    )


@dataclass(frozen=True)
class StatusOptions:
    """How `wq status` shows a run."""

    interval_s: float = setting(
        2.0,
        "--interval",
        "WQ_WATCH_INTERVAL",
        "Seconds between updates with --watch.",
        type=seconds(0.1, 3600),
    )


@dataclass(frozen=True)
class ExporterOptions:
    """Where `wq exporter` serves, and which runs."""

    port: int = setting(
        9899,
        "--port",
        "WQ_EXPORTER_PORT",
        "TCP port to serve on (0: any free port; the start line names it).",
        type=count(0, 65535),
    )
    address: str = setting(
        "0.0.0.0",
        "--address",
        "WQ_EXPORTER_ADDRESS",
        "Address to listen on: 0.0.0.0 every IPv4 interface, :: every interface, "
        "127.0.0.1 this machine only.",
        type=Text(),
    )
    runs: tuple[str, ...] = setting(
        (),
        "--run",
        "WQ_EXPORTER_RUNS",
        "Export this run only; repeat for several (in the variable: comma-separated). "
        "Default: every run on the Redis, found anew at each scrape. WQ_RUN, the one run of "
        "the other commands, is not read.",
        type=RunIds(),
        multiple=True,
    )
    ui: bool = setting(
        False,
        "--ui",
        "WQ_EXPORTER_UI",
        "Also serve a read-only web page of the runs at / (progress, items/s, dead items, a "
        "search and downloads of the report), on the same port as /metrics.",
        is_flag=True,
    )


@dataclass(frozen=True)
class LocalRunOptions:
    """How many workers `wq run` starts on this machine."""

    workers: int = setting(
        2,
        "--workers",
        "WQ_WORKERS",
        "Worker processes to start.",
        type=count(1, 64),
    )
