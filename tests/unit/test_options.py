"""The option table: the CLI, the environment hand-over and the README all come from it."""

from pathlib import Path

import click
import pytest

from wq.base.errors import ConfigError
from wq.base.options import ConnectionConfig, WorkerConfig, command_from_env, markdown_table
from wq.base.settings import pop_config, settings, to_env
from wq.cli import all_commands
from wq.work.command_handler import split_command_line

README = Path(__file__).resolve().parents[2] / "README.md"


def parse_work(env: dict[str, str]) -> tuple[ConnectionConfig, WorkerConfig]:
    """What `wq work` makes of an environment, through its real click command."""
    command = all_commands()["work"]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        params = dict(command.make_context("work", []).params)
    params["command"] = command_from_env(env)
    return pop_config(ConnectionConfig, params), pop_config(WorkerConfig, params)


def test_every_setting_round_trips_through_its_environment_variable() -> None:
    connection = ConnectionConfig(
        redis_url="redis://h:1/2",
        redis_password="pw",
        redis_ca_cert="/etc/wq/redis-ca/ca.crt",
        redis_cluster=True,
        redis_wait=7.5,
        run_id="r-1",
        log_level="debug",
        log_format="json",
    )
    worker = WorkerConfig(
        handler="command",
        demo_sleep=0.25,
        command=("echo", "{{ item.src }}"),
        shell=True,
        python="m:f",
        python_isolation="none",
        python_memory_limit=512,
        capture_stdout=True,
        max_output_bytes=1000,
        lease_s=12.5,
        item_timeout_s=3.0,
        max_attempts=7,
        concurrency=4,
        seed_wait_s=9.0,
        poll_s=0.3,
        fail_on_dead=True,
        results_ttl_s=60,
        termination_log="/tmp/summary",
        worker_id="w-9",
    )
    # Every setting differs from its default, so a setting to_env forgot would show.
    for config in (connection, worker):
        for f, _ in settings(type(config)):
            assert getattr(config, f.name) != f.default, f.name
    assert parse_work({**to_env(connection), **to_env(worker)}) == (connection, worker)


@pytest.mark.parametrize("name", ["work", "run"])
def test_help_shows_every_flag_with_its_variable(name: str) -> None:
    command = all_commands()[name]
    text = command.get_help(click.Context(command))
    skipped = {"seed_wait_s", "worker_id", "termination_log"} if name == "run" else set()
    for f, s in settings(WorkerConfig):
        if s.flag is not None and f.name not in skipped:
            assert s.flag.split("/")[0] in text
            assert s.env in text


def test_an_empty_termination_log_variable_turns_the_message_off() -> None:
    """click takes an empty variable for an absent one; this setting takes it as ''."""
    run = {"WQ_RUN": "r"}
    assert parse_work(run)[1].termination_log == "/dev/termination-log"
    assert parse_work({**run, "WQ_TERMINATION_LOG": ""})[1].termination_log == ""
    assert parse_work({**run, "WQ_TERMINATION_LOG": "/x"})[1].termination_log == "/x"
    assert to_env(WorkerConfig(termination_log=""))["WQ_TERMINATION_LOG"] == ""


def test_readme_has_the_generated_option_table() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8"), (
        "README's option table is stale: paste wq.base.options.markdown_table()"
    )


def test_command_line_split_keeps_templates_whole() -> None:
    assert split_command_line("curl -fsS {{ item }}") == ("curl", "-fsS", "{{ item }}")
    assert split_command_line("cp '{{ item.src }}' \"a b\"") == ("cp", "{{ item.src }}", "a b")
    with pytest.raises(ConfigError, match="cannot be split"):
        split_command_line("echo 'unclosed")


@pytest.mark.parametrize("text", ["echo hi", '{"a": 1}', '["ok", 2]'])
def test_wq_command_must_be_a_json_list_of_strings(text: str) -> None:
    with pytest.raises(ConfigError, match="WQ_COMMAND must be a JSON list"):
        command_from_env({"WQ_COMMAND": text})
