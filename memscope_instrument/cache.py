"""The bytecode cache of instrumented modules.

Instrumented code is cached beside the normal bytecode, in the same ``__pycache__``
(or under ``sys.pycache_prefix`` when that is set), as::

    <module>.<cache_tag>.memscope-<version>-<digest>.pyc

``version`` is memscope's version and ``digest`` names every setting that changes the
output (``Options.digest()``, which covers the transformer version). The file holds::

    MAGIC (4 bytes: importlib's magic number, so a Python change invalidates it)
    b"MSC1"
    toolchain fingerprint (16 bytes: memscope version, hot-path contract version,
                           the transformer's and hook's own source files)
    source mtime in ns (8 bytes) and source size (8 bytes)
    marshalled code object

so the cached code is never served when the source, the settings, memscope or Python
changed. Writes go to a temporary file that is renamed into place (atomic on POSIX and
Windows); ``sys.dont_write_bytecode`` turns writing off (reading still works, as with
normal bytecode); a location that cannot be written is skipped silently.
"""

from __future__ import annotations

import marshal
import os
import struct
import sys
from _blake2 import blake2b  # hashlib's own; importing hashlib loads OpenSSL (~6 ms)

# importlib.util's own names, without importlib.util (it imports contextlib: ~1.4 ms)
from importlib._bootstrap_external import MAGIC_NUMBER, cache_from_source
from types import CodeType

from memscope._swap import source_stamp  # one stamp for the cache and the swap's check

_TAG = b"MSC1"
_HEADER = struct.Struct("<4s4s16sQQ")
_fingerprint: bytes | None = None


def toolchain_fingerprint() -> bytes:
    """16 bytes naming the code that produced the cache (computed once per process)."""
    global _fingerprint
    if _fingerprint is None:
        import memscope
        from memscope import _hooks

        h = blake2b(digest_size=16)
        h.update(memscope.__version__.encode())
        h.update(str(_hooks.HOOKS_VERSION).encode())
        h.update(sys.version.encode())
        for path in fingerprint_files():
            name = os.path.basename(path)
            try:
                st = os.stat(path)
                h.update(f"{name}:{st.st_mtime_ns}:{st.st_size}".encode())
            except OSError:
                h.update(name.encode())
        _fingerprint = h.digest()
    return _fingerprint


def fingerprint_files() -> list[str]:
    """Every module of this package: whatever shapes the instrumented code (the
    transformer, the splice path, the line map, the site table, the options) is in it,
    including a module added later."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        names = sorted(n for n in os.listdir(here) if n.endswith(".py"))
    except OSError:
        names = []
    return [os.path.join(here, n) for n in names]


def cache_path(source_path: str, digest: str) -> str | None:
    """Where the instrumented bytecode of ``source_path`` lives (None: no cache here)."""
    try:
        normal = cache_from_source(source_path)
    except (NotImplementedError, ValueError):
        return None  # no cache_tag (sys.implementation.cache_tag is None)
    import memscope

    base = normal[: -len(".pyc")] if normal.endswith(".pyc") else normal
    return f"{base}.memscope-{memscope.__version__}-{digest[:16]}.pyc"


def read(source_path: str, digest: str) -> tuple[CodeType, tuple[int, int]] | None:
    """The cached instrumented code of ``source_path`` if it is current, with the
    source's (mtime_ns, size) it was checked against; else None."""
    got = _checked(source_path, digest, -1)
    if got is None:
        return None
    data, stamp = got
    try:
        code = marshal.loads(memoryview(data)[_HEADER.size :])  # no copy of the payload
    except (EOFError, ValueError, TypeError):
        return None
    return (code, stamp) if isinstance(code, CodeType) else None


def current(source_path: str, digest: str) -> bool:
    """Whether the cache holds current instrumented code for ``source_path`` (its header
    alone is read: for planning, as ``memscope warm`` and ``memscope run`` do)."""
    return _checked(source_path, digest, _HEADER.size) is not None


def _checked(source_path: str, digest: str, size: int) -> tuple[bytes, tuple[int, int]] | None:
    """The cache file's first ``size`` bytes (-1: all) and the source's stamp, if its
    header is this toolchain's, for the source as it is now; else None."""
    path = cache_path(source_path, digest)
    stamp = source_stamp(source_path)
    if path is None or stamp is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(size)
    except OSError:
        return None
    if len(data) < _HEADER.size:
        return None
    magic, tag, fp, mtime, length = _HEADER.unpack_from(data)
    if (magic == MAGIC_NUMBER and tag == _TAG and fp == toolchain_fingerprint()
            and (mtime, length) == stamp):
        return data, stamp
    return None


def write(source_path: str, digest: str, code: CodeType, stamp: tuple[int, int] | None) -> bool:
    """Store ``code`` for ``source_path`` (stamp: the source's mtime_ns and size as read).

    Returns whether it was written; never raises for an unwritable location.
    """
    if sys.dont_write_bytecode or stamp is None:
        return False
    path = cache_path(source_path, digest)
    if path is None:
        return False
    header = _HEADER.pack(
        MAGIC_NUMBER, _TAG, toolchain_fingerprint(), stamp[0], stamp[1]
    )
    try:
        payload = header + marshal.dumps(code)
    except ValueError:
        return False
    tmp = f"{path}.{os.getpid()}.{id(code):x}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


