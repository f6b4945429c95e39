"""The Lua scripts in wq/store/lua, registered once per client (EVALSHA, reloaded after a
restart)."""

from importlib import resources

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

SCRIPT_NAMES = (
    "lease",
    "complete",
    "fail",
    "release",
    "renew",
    "reap",
    "seed",
    "retry_dead",
    "status",
    "window",
    "expire",
    "append",
    "seal",
    "scaling",
)


def read_script(name: str) -> str:
    return (resources.files("wq.store") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    def __init__(self, client: "redis.Redis | RedisCluster") -> None:
        loaded = {name: client.register_script(read_script(name)) for name in SCRIPT_NAMES}
        self.lease: Script = loaded["lease"]
        self.complete: Script = loaded["complete"]
        self.fail: Script = loaded["fail"]
        self.release: Script = loaded["release"]
        self.renew: Script = loaded["renew"]
        self.reap: Script = loaded["reap"]
        self.seed: Script = loaded["seed"]
        self.retry_dead: Script = loaded["retry_dead"]
        self.status: Script = loaded["status"]
        self.window: Script = loaded["window"]
        self.expire: Script = loaded["expire"]
        self.append: Script = loaded["append"]
        self.seal: Script = loaded["seal"]
        self.scaling: Script = loaded["scaling"]
