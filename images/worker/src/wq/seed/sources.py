"""Items from where they live: a URL (file://, http(s)://, s3://, gs://) or standard input,
read as a stream through fsspec and its filesystems (s3fs, gcsfs), and object listings.

No client is written here: fsspec opens the URL, and credentials come from each SDK's usual
chain (AWS_* variables, AWS_PROFILE with a credentials file, a web identity token (IRSA),
instance metadata; GOOGLE_APPLICATION_CREDENTIALS or workload identity for gs://). An
endpoint other than AWS' is AWS_ENDPOINT_URL. Compressed files (.gz, .bz2, .xz, .zst) are
undone on the way in.

Every failure becomes one line (errors_of): what the user can fix (no such object, no
credentials, access denied, no filesystem package) is a ConfigError, exit 2; what may pass
(a server error, a dropped connection) is a SourceError, exit 1, which a retry may cure.
"""

import contextlib
import errno
import gzip
import logging
import lzma
import sys
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

from wq.base.errors import ConfigError, SourceError, WqError
from wq.seed.formats import Batches, format_for, iter_items

SCHEMES = ("file", "http", "https", "s3", "gs", "gcs")
STDIN = "-"
# Bytes an object store reads per request, and buffers: a few of these are all the memory a
# stream takes. HTTP streams the body as it comes (block size 0: no range requests).
OBJECT_BLOCK = 8 << 20
# The package each scheme needs (the image has them; `pip install 'wq[sources]'` elsewhere).
PACKAGES = {"http": "aiohttp", "https": "aiohttp", "s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs"}
# The SDKs' own loggers stay quiet (e.g. gcsfs warns when it cannot tell a bucket's type):
# what goes wrong reaches the user as one wq error line (errors_of), nothing else on stderr.
QUIET_LOGGERS = ("fsspec", "s3fs", "gcsfs", "aiobotocore", "botocore", "google", "urllib3")
# A local path no retry can open: a name too long, a loop of symbolic links.
BAD_NAME = (errno.ENAMETOOLONG, errno.ELOOP)
# Exceptions of the SDKs that say no credentials were found, by name: the SDKs are imported
# only when their scheme is used.
NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError")


def split(url: str) -> SplitResult:
    """The parts of an items URL; ConfigError for one urllib cannot split (e.g. "http://[::1")."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"items URL {_shown(url)!r} is malformed: {exc}") from None


def describe(url: str) -> str:
    """The items at `url` (or on standard input), as errors name them."""
    return "items on standard input" if url == STDIN else f"items at {_shown(url)!r}"


def scheme_of(url: str) -> str:
    """The URL's scheme ('file' for a plain path); ConfigError for one wq does not read."""
    scheme = split(url).scheme.lower() if "://" in url else "file"
    if scheme not in SCHEMES:
        raise ConfigError(
            f"items URL {_shown(url)!r}: scheme {scheme!r} is not one wq reads; use "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    return scheme


def read_items(url: str, fmt: str | None) -> Batches:
    """The items at a URL (or standard input, "-"), batch by batch as they are read."""
    if url == STDIN:
        return iter_items(sys.stdin.buffer, fmt or "lines", describe(url))
    return _read_url(url, fmt)


def _read_url(url: str, fmt: str | None) -> Batches:
    what = describe(url)
    check_names_an_object(url)
    fmt = format_for(split(url).path if "://" in url else url, fmt)
    with errors_of(url, what):
        fs, path = _filesystem(url)
        block = 0 if scheme_of(url) in ("http", "https") else OBJECT_BLOCK
        # Decompressed here rather than by fs.open(compression=...): fsspec's decompressor
        # does not close the file it reads, and an HTTP response left open when reading
        # fails is a warning of several lines on stderr as it is collected.
        with fs.open(path, "rb", block_size=block) as raw, _decompressed(raw, path) as f:
            yield from iter_items(f, fmt, what)


def _decompressed(raw: Any, path: str) -> Any:
    """The file that undoes the compression of `path`'s suffix (.gz, .bz2, .xz, .zst ...),
    reading `raw`, which it leaves open; `raw` itself if there is none."""
    from fsspec.compression import compr  # type: ignore[import-untyped]
    from fsspec.utils import infer_compression  # type: ignore[import-untyped]

    codec = infer_compression(path)
    return compr[codec](raw, mode="rb") if codec else contextlib.nullcontext(raw)


def list_objects(url_glob: str) -> list[str]:
    """The URL of every object (not directory) matching a glob, sorted: `gs://b/in/*.png`,
    `s3://b/2026-*/**.json`, `/data/*.csv`. The listing is held in memory, to sort it."""
    with errors_of(url_glob, f"listing {_shown(url_glob)!r}"):
        scheme = scheme_of(url_glob)
        if scheme in ("s3", "gs", "gcs", "http", "https") and not split(url_glob).netloc:
            raise ConfigError(f"listing {_shown(url_glob)!r}: the glob names no bucket")
        fs, path = _filesystem(url_glob)
        try:
            found = fs.glob(path, detail=True)
        except ValueError as exc:  # fsspec refuses the pattern, e.g. "a**": one line, exit 2
            raise ConfigError(f"listing {_shown(url_glob)!r}: the glob is refused: {exc}") from None
        return sorted(fs.unstrip_protocol(p) for p, info in found.items() if _is_file(info))


def check_names_an_object(url: str) -> None:
    """An object store's URL names a bucket and an object in it, an HTTP one a host: the
    SDKs meet `s3://`, `gs://bucket` or `http://` with errors that look like outages."""
    scheme, parts = scheme_of(url), split(url)
    if scheme in ("s3", "gs", "gcs", "http", "https") and not parts.netloc:
        kind = "host" if scheme.startswith("http") else "bucket"
        raise ConfigError(f"items URL {_shown(url)!r} names no {kind}")
    if scheme in ("s3", "gs", "gcs") and not parts.path.strip("/"):
        raise ConfigError(f"items URL {_shown(url)!r} names a bucket, not an object in it")


def _is_file(info: dict[str, Any]) -> bool:
    return str(info.get("type", "file")).lower() == "file"


def _filesystem(url: str) -> tuple[Any, str]:
    scheme = scheme_of(url)
    import fsspec.core  # type: ignore[import-untyped]

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)

    try:
        fs, path = fsspec.core.url_to_fs(url)
        return fs, str(path)
    except ImportError:
        package = PACKAGES.get(scheme, "fsspec")
        raise ConfigError(
            f"{scheme}:// needs the {package} package: pip install 'wq[sources]' (the wq image "
            "has it)"
        ) from None


@contextlib.contextmanager
def errors_of(url: str, what: str) -> Iterator[None]:
    """Turn what fsspec and the SDKs raise while reading `url` into one-line wq errors."""
    try:
        yield
    except WqError:
        raise
    except Exception as exc:  # every SDK error: classified below, never a traceback
        raise classify(exc, url, what) from None


def classify(exc: BaseException, url: str, what: str) -> WqError:
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    scheme = scheme_of(url)
    if names & set(NO_CREDENTIALS):
        return ConfigError(f"{what}: no credentials found: {_credentials_hint(scheme)}")
    corrupt = next((e for e in chain if _is_corrupt_data(e)), None)
    if corrupt is not None:
        return ConfigError(
            f"{what} cannot be decompressed ({_reason(corrupt)}): the data is corrupt, or not "
            "in the compression its name says; a retry cannot help"
        )
    status = next((code for code in map(_http_status, chain) if code), 0)
    if status in (401, 403) or (status == 0 and any(isinstance(e, PermissionError) for e in chain)):
        return ConfigError(
            f"{what}: access denied ({_reason(exc)}): check the credentials and their "
            f"permissions ({_credentials_hint(scheme)})"
        )
    if status in (404, 410) or (status == 0 and _not_found(chain)):
        return ConfigError(f"{what} does not exist")
    if status == 0 and isinstance(chain[0], IsADirectoryError):
        return ConfigError(f"{what} is a directory, not a file")
    if status == 0 and isinstance(chain[0], OSError) and chain[0].errno in BAD_NAME:
        return ConfigError(f"{what} cannot be opened: {chain[0].strerror}")
    if 400 <= status < 500 and status not in (408, 429):
        return ConfigError(f"{what}: the server refused the request (HTTP {status})")
    return SourceError(f"{what}: reading failed: {_reason(exc)}")


def _is_corrupt_data(exc: BaseException) -> bool:
    """Whether a decompressor refused the bytes it read (what the source read it got
    whole): gzip's header and CRC checks, zlib's and lzma's streams, bz2's (a plain OSError
    with no errno), zstandard's; EOFError: the compressed stream ends before its end marker."""
    return (
        isinstance(exc, gzip.BadGzipFile | zlib.error | lzma.LZMAError | EOFError)
        or type(exc).__name__ == "ZstdError"
        or (type(exc) is OSError and not exc.errno and str(exc) == "Invalid data stream")
    )


def _http_status(exc: BaseException) -> int:
    """The HTTP status an SDK error carries: aiohttp's `status` of a response, gcsfs' `code`,
    or the words gcsfs puts in a plain OSError ("Forbidden: ..."); 0 if none. (Not any `code`:
    aiohttp's errors of a broken body carry a `code` of 400 that no server sent.)"""
    name = "code" if type(exc).__module__.startswith("gcsfs") else "status"
    code = getattr(exc, name, None)
    if isinstance(code, int) and 100 <= code <= 599:
        return code
    if isinstance(exc, OSError) and not exc.errno:
        words = str(exc).split(":", 1)[0].strip().lower()
        return {"forbidden": 403, "unauthorized": 401, "access denied": 403}.get(words, 0)
    return 0


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _not_found(chain: list[BaseException]) -> bool:
    """A FileNotFoundError that is not a connection failure in disguise (fsspec's HTTP
    filesystem raises one for a server it cannot reach)."""
    return isinstance(chain[0], FileNotFoundError | NotADirectoryError) and not any(
        isinstance(e, ConnectionError | TimeoutError) or "Connect" in type(e).__name__
        for e in chain[1:]
    )


def _reason(exc: BaseException) -> str:
    for e in _chain(exc):
        text = " ".join(str(e).split())
        if text:
            return f"{type(e).__name__}: {text[:200]}"
    return type(exc).__name__


def _credentials_hint(scheme: str) -> str:
    if scheme == "s3":
        return (
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (from a Secret), AWS_PROFILE with "
            "a mounted credentials file, or a workload identity (IRSA)"
        )
    if scheme in ("gs", "gcs"):
        return "set GOOGLE_APPLICATION_CREDENTIALS to a mounted key file, or use workload identity"
    return "the URL needs none of wq's: a server that wants them is not supported"


def _shown(url: str) -> str:
    """A URL as errors show it: without a query string (a signed URL's signature stays out
    of logs) and cut to 200 characters."""
    head, _, query = url.partition("?")  # not urlsplit, which refuses some URLs
    shown = head + ("?..." if query else "")
    return shown if len(shown) <= 200 else shown[:197] + "..."
