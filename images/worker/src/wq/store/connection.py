"""Redis connection settings from a URL, and calls that ride out a Redis outage.

An outage is never taken for an empty queue: a call that cannot reach Redis is retried with
backoff for a bounded time, then raises RedisUnavailable. Which Redis errors are worth
retrying is decided here, in one place (is_transient), for every caller.
"""

import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from wq.base.errors import ConfigError, RedisFull, RedisUnavailable
from wq.base.options import ConnectionConfig

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")
# What a Redis call raises when Redis errs or cannot be reached, for the callers that report it
# (redis-py's cluster client raises some that are not RedisError). Named here so that no layer
# but this one imports redis-py (wq.store hides OpenTelemetry from it as it loads).
REDIS_ERRORS: tuple[type[Exception], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
)
# What CLIENT SETINFO reports of the client. Its version named here, as redis-py would learn it
# from importlib.metadata, whose load and scan of every installed package wq spares its start
# (wq.store.DEFERRED).
DRIVER = redis.DriverInfo(lib_version=redis.__version__)
# The query parameters a Redis URL may carry: the database (how a unix:// URL names one), the
# protocol, and the TLS checks of a rediss:// URL. wq sets its own timeouts and health checks
# (RedisSettings.client), which redis-py would let the URL override; any other parameter
# would reach redis-py's connection as a keyword it refuses, or a value it trips on, at the
# first command: as a traceback, or as an outage waited out.
QUERY_PARAMETERS = {
    "db": "a database number",
    "protocol": "2 or 3",
    "ssl_check_hostname": "true or false, with rediss://",
    "ssl_cert_reqs": "none, optional or required, with rediss://",
}
_FALSE = ("0", "f", "false", "n", "no")
_TRUE = ("1", "t", "true", "y", "yes")
# Failures that pass by themselves: connection refused or reset, timeouts, a restarted server
# still loading its data (LOADING), a cluster moving slots (TRYAGAIN), a replica without its
# master (MASTERDOWN) or a former master after a failover (READONLY). And a reply that is not
# Redis at all (InvalidResponse): while a Service changes endpoints or a mesh sidecar starts,
# a new connection can briefly reach something else (seen on kind: an HTTP proxy answering
# "HTTP/1.1 400" in the moment a Redis Service got its endpoint). redis-py drops that
# connection; a URL that names no Redis at all still fails, with that reply, after the wait.
TRANSIENT = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.InvalidResponse,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError,
    redis.exceptions.ReadOnlyError,
    # Not a RedisError: a cluster client made, or calling, while no node answers.
    redis.exceptions.RedisClusterUnreachableError,
)
# A long script of someone else's (BUSY) blocks the server; it ends or is killed.
TRANSIENT_REPLY_PREFIXES = ("BUSY ",)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the call later may succeed."""
    if isinstance(exc, redis.AuthenticationError):
        return False
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(TRANSIENT_REPLY_PREFIXES)


# A plain client or a Redis Cluster client: wq uses what both offer.
Client = redis.Redis | RedisCluster


@dataclass(frozen=True)
class RedisSettings:
    url: str
    password: str | None = field(default=None, repr=False)
    ca_cert: str | None = None  # CA file for rediss://; None: the system's CAs
    cluster: bool = False  # a Redis Cluster: the URL names any one of its nodes

    @classmethod
    def from_url(
        cls,
        url: str,
        password: str | None = None,
        ca_cert: str | None = None,
        cluster: bool = False,
    ) -> "RedisSettings":
        """Validate a redis://, rediss:// or unix:// URL; the password overrides the URL's."""
        if not url:
            raise ConfigError("no Redis URL: pass --redis-url or set WQ_REDIS_URL")
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise ConfigError(f"Redis URL {redact(url)!r} is malformed: {exc}") from None
        if parts.scheme not in SCHEMES:
            raise ConfigError(
                f"Redis URL {redact(url)!r} has scheme {parts.scheme!r}; "
                "use redis://, rediss:// (TLS) or unix://"
            )
        if parts.scheme == "unix":
            if not parts.path:
                raise ConfigError(f"Redis URL {redact(url)!r} names no socket path")
        else:
            if not parts.hostname:
                raise ConfigError(f"Redis URL {redact(url)!r} names no host")
            try:
                # As the resolver will (socket.getaddrinfo): a label empty or over 63
                # characters would be a UnicodeError at the first command.
                parts.hostname.encode("idna")
            except UnicodeError:
                raise ConfigError(
                    f"Redis URL {redact(url)!r}: host {parts.hostname!r} is not a valid host name"
                ) from None
            try:
                _ = parts.port
            except ValueError:
                raise ConfigError(f"Redis URL {redact(url)!r} has a bad port") from None
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                raise ConfigError(f"Redis URL {redact(url)!r}: database {db!r} is not a number")
            if cluster and db not in ("", "0"):
                raise ConfigError(f"Redis URL {redact(url)!r}: a Redis Cluster has only database 0")
        check_query(url, parts.scheme, parts.query, cluster)
        if cluster and parts.scheme == "unix":
            raise ConfigError("a Redis Cluster is reached over TCP: use redis:// or rediss://")
        if ca_cert:
            check_ca_cert(ca_cert, url)
        return cls(url=url, password=password or None, ca_cert=ca_cert or None, cluster=cluster)

    @classmethod
    def of(cls, config: ConnectionConfig) -> "RedisSettings":
        return cls.from_url(
            config.redis_url,
            config.redis_password,
            ca_cert=config.redis_ca_cert or None,
            cluster=config.redis_cluster,
        )

    @property
    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        return redact(self.url)

    def client(
        self,
        timeout_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        retry: bool = True,
        name: str | None = None,
    ) -> Client:
        """A client. With retry=False each call is tried once: redis-py's own default retries
        a refused connection for seconds, too long for a caller that must answer at once (the
        exporter); others retry outages with Retrying. `name`: its CLIENT SETNAME."""
        kwargs: dict[str, Any] = {
            "decode_responses": True,
            # Without timeouts a half-open connection would hang a worker for ever.
            "socket_connect_timeout": connect_timeout_s,
            "socket_timeout": timeout_s,
            "health_check_interval": 15,
            "driver_info": DRIVER,
        }
        if not retry:
            kwargs["retry"] = Retry(NoBackoff(), 0)
        if name:
            kwargs["client_name"] = name
        if self.password:
            kwargs["password"] = self.password
        if self.ca_cert:
            kwargs["ssl_ca_certs"] = self.ca_cert
        if self.cluster:
            try:  # it connects now, to learn the cluster's nodes
                return RedisCluster.from_url(self.url, **kwargs)
            except redis.exceptions.RedisClusterException as exc:
                if "Cluster mode is not enabled" in str(exc):
                    raise ConfigError(
                        f"Redis at {self.display} is not a Redis Cluster node (its cluster mode "
                        "is off): drop --redis-cluster (WQ_REDIS_CLUSTER; chart: "
                        "externalRedis.cluster)"
                    ) from None
                raise
        client: redis.Redis = redis.Redis.from_url(self.url, **kwargs)
        return client


def check_query(url: str, scheme: str, query: str, cluster: bool) -> None:
    """The URL's query parameters are among QUERY_PARAMETERS, each once, with a value it takes."""
    seen: set[str] = set()
    for name, value in parse_qsl(query, keep_blank_values=True):
        where = f"Redis URL {redact(url)!r}: query parameter {name!r}"
        wanted = QUERY_PARAMETERS.get(name)
        if wanted is None:
            raise ConfigError(
                f"{where} is not one wq takes; it takes {', '.join(QUERY_PARAMETERS)} (wq sets "
                "its own timeouts)"
            )
        if name in seen:
            raise ConfigError(f"{where} is given twice")
        seen.add(name)
        if name.startswith("ssl_") and scheme != "rediss":
            raise ConfigError(f"{where} is for rediss:// (TLS) URLs")
        low = value.strip().lower()
        valid = {
            "db": value.isdigit() and (not cluster or int(value) == 0),
            "protocol": value in ("2", "3"),
            "ssl_check_hostname": low in _FALSE + _TRUE,
            "ssl_cert_reqs": value in ("none", "optional", "required"),
        }[name]
        if not valid:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise ConfigError(f"{where} is {shown!r}; it takes {wanted}")


def redact(url: str) -> str:
    """The URL with its password replaced by ***; for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:  # malformed: hide whatever stands before the last '@'
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.rsplit('@', 1)[1]}" if "@" in rest else url
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = unquote(parts.username or "")
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


class Retrying:
    """Runs Redis calls, retrying transient failures for up to `budget` seconds."""

    def __init__(
        self,
        settings: RedisSettings,
        budget: float,
        on_retry: Callable[[float, Exception], None] | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.on_retry = on_retry

    def __call__(self, fn: Callable[[], T]) -> T:
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                return fn()
            except redis.AuthenticationError as exc:
                raise ConfigError(
                    f"Redis at {self.settings.display} refused the credentials: {exc}; "
                    "check WQ_REDIS_PASSWORD"
                ) from None
            except (redis.exceptions.MovedError, redis.exceptions.AskError):
                raise ConfigError(
                    f"Redis at {self.settings.display} is a Redis Cluster node: pass "
                    "--redis-cluster (WQ_REDIS_CLUSTER=true; chart: externalRedis.cluster)"
                ) from None
            except redis.exceptions.OutOfMemoryError:
                raise RedisFull(
                    f"Redis at {self.settings.display} is full (it refused a write: OOM); "
                    "give it more memory (chart: redis.resources.limits.memory, which sets its "
                    "maxmemory), or seed fewer stored items (itemRange stores none)"
                ) from None
            except (redis.RedisError, redis.exceptions.RedisClusterUnreachableError) as exc:
                raise_if_certificate_error(exc, self.settings)  # not an outage: see below
                raise_if_no_such_database(exc, self.settings)
                if not is_transient(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= self.budget:
                    raise RedisUnavailable(
                        f"Redis at {self.settings.display} unreachable for {waited:.0f}s "
                        f"(limit {self.budget:g}s): {exc}"
                    ) from None
                if self.on_retry is not None:
                    self.on_retry(waited, exc)
                time.sleep(min(delay, max(0.0, self.budget - waited)))
                delay = min(delay * 2, 2.0)


def raise_if_no_such_database(exc: BaseException, settings: RedisSettings) -> None:
    """The URL's database is beyond the server's `databases` (its SELECT, as the connection
    starts, is refused): no retry can make it exist."""
    if isinstance(exc, redis.ResponseError) and "DB index is out of range" in str(exc):
        raise ConfigError(
            f"Redis at {settings.display} has no database {database_of(settings.url)} (the "
            "server's `databases` setting, 16 by default, numbers them from 0): use one of those"
        ) from None


def database_of(url: str) -> str:
    """The database a valid Redis URL names: its ?db=, else its path, else 0."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    db = query.get("db") or (parts.path.lstrip("/") if parts.scheme != "unix" else "") or "0"
    return str(int(db)) if db.isdigit() else db


# TLS certificates. A server certificate that does not verify is a configuration error (exit
# 2), never an outage to wait out: redis-py reports it as a ConnectionError like a refused
# connection. Kept apart from Retrying's error classes so that either can change on its own.

CA_SETTING = "--redis-ca-cert / WQ_REDIS_CA_CERT"


def check_ca_cert(ca_cert: str, url: str) -> None:
    """The CA file is for rediss:// and must hold a PEM certificate: found out now, not as a
    connection error on every retry."""
    if urlsplit(url).scheme != "rediss":
        raise ConfigError(
            f"{CA_SETTING} is only used with rediss:// URLs, and the Redis URL is {redact(url)!r}"
        )
    try:
        ssl.create_default_context(cafile=ca_cert)
    except ssl.SSLError:
        raise ConfigError(f"{CA_SETTING} {ca_cert!r} holds no PEM certificate") from None
    except OSError as exc:
        raise ConfigError(f"{CA_SETTING} {ca_cert!r} cannot be read: {exc.strerror}") from None


def raise_if_certificate_error(exc: BaseException, settings: RedisSettings) -> None:
    reason = certificate_problem(exc)
    if reason is None:
        return
    against = f"the CA in {settings.ca_cert}" if settings.ca_cert else "the system's CAs"
    raise ConfigError(
        f"Redis at {settings.display}: TLS certificate verification failed against {against} "
        f"({reason}); give the CA that signed the server's certificate with {CA_SETTING}"
    ) from None


def certificate_problem(exc: BaseException) -> str | None:
    """Why the server's certificate was refused, if that is what `exc` is about. redis-py
    raises its ConnectionError while handling ssl.SSLCertVerificationError (the error is its
    __context__, not its __cause__) and copies the text into the message: both are looked at."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or current).rstrip(".")
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    match = _VERIFY_FAILED.search(str(exc))
    return match.group(1).rstrip(".") if match else None


# The message of the ConnectionError, for when the SSL error is not chained to it.
_VERIFY_FAILED = re.compile(
    r"CERTIFICATE_VERIFY_FAILED\] certificate verify failed: (.*?)(?: \(_ssl\.c:\d+\))?\.?$"
)
