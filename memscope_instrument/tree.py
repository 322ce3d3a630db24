"""Walking and mirroring a source tree: plan, parallel transform, incremental cache,
atomic writes. Used by ``memscope-instrument`` (see cli.py)."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from memscope_instrument.transform import InstrumentError, Options, instrument_source

CACHE_NAME = ".memscope-instrument-cache.json"
SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".tox", ".nox", ".venv"}


@dataclass
class Item:
    src: Path
    dst: Path
    rel: str
    python: bool


@dataclass
class Outcome:
    rel: str
    status: str  # "instrumented" | "unchanged" | "cached" | "copied" | "failed"
    lines: int = 0
    sites: int = 0
    skipped: int = 0
    error: str = ""
    diff: str = ""
    data: bytes | None = None
    digest: str = ""


@dataclass
class Summary:
    files: int = 0
    lines: int = 0
    sites: int = 0
    skipped: int = 0
    failed: int = 0
    cached: int = 0
    copied: int = 0
    changed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"memscope-instrument: {self.files} files ({self.cached} cached, "
                f"{self.copied} copied), {self.lines} lines, {self.sites} sites inserted, "
                f"{self.skipped} skipped, {self.failed} failed in {self.seconds:.2f}s")


def _match(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def plan(srcs: list[Path], out: Path | None, include: list[str], exclude: list[str],
         errors: list[str]) -> list[Item]:
    """Every file to write. ``out`` None means in place. Errors are appended, located."""
    items: list[Item] = []
    for src in srcs:
        if not src.exists() and not src.is_symlink():
            errors.append(f"{src}: no such file or directory")
            continue
        base = src.name if out is not None else ""
        dst_root = (out / base) if out is not None else src
        if src.is_file():
            rel = src.name
            if out is None or not _excluded(rel, include, exclude):
                items.append(Item(src, dst_root, rel, src.suffix == ".py"))
            continue
        seen: set[str] = set()
        _walk(src, src, dst_root, include, exclude, items, errors, seen, out)
    return items


def _excluded(rel: str, include: list[str], exclude: list[str]) -> bool:
    if exclude and _match(rel, exclude):
        return True
    return bool(include) and not _match(rel, include)


def _walk(root: Path, d: Path, dst_root: Path, include: list[str], exclude: list[str],
          items: list[Item], errors: list[str], seen: set[str], out: Path | None) -> None:
    try:
        real = os.path.realpath(d, strict=True)
    except OSError as e:
        errors.append(f"{d}: {e.strerror or e} (symlink loop?)")
        return
    if real in seen:
        errors.append(f"{d}: symlink loop (already visited {real})")
        return
    seen.add(real)
    if out is not None and os.path.realpath(out) == real:
        return
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as e:
        errors.append(f"{d}: cannot list directory: {e.strerror or e}")
        return
    for ent in entries:
        p = Path(ent.path)
        rel = p.relative_to(root).as_posix()
        try:
            is_dir = ent.is_dir()  # follows symlinks
            is_file = ent.is_file()
        except OSError as err:
            errors.append(f"{p}: {err.strerror or err} (symlink loop?)")
            continue
        if is_dir:
            if ent.name in SKIP_DIRS or (exclude and _match(rel, exclude)):
                continue
            _walk(root, p, dst_root, include, exclude, items, errors, seen, out)
        elif is_file:
            if ent.name == CACHE_NAME:
                continue
            if ent.name.endswith(".py") and _excluded(rel, include, exclude):
                if out is None:
                    continue
                items.append(Item(p, dst_root / rel, f"{root.name}/{rel}", False))  # copied
                continue
            items.append(Item(p, dst_root / rel, f"{root.name}/{rel}",
                              ent.name.endswith(".py")))
        elif ent.is_symlink():
            errors.append(f"{p}: broken symlink or symlink loop")


def _work(args: tuple[str, str, str, Options, bool, str, str | None]) -> Outcome:
    src, rel, module, options, want_diff, cached_digest, dst = args
    try:
        data = Path(src).read_bytes()
    except OSError as e:
        return Outcome(rel, "failed", error=f"{src}: cannot read: {e.strerror or e}")
    digest = hashlib.sha256(data).hexdigest()
    if cached_digest == f"{digest}:{options.digest()}" and dst and os.path.exists(dst):
        return Outcome(rel, "cached", digest=cached_digest)
    try:
        res = instrument_source(data, src, module, options)
    except InstrumentError as e:
        return Outcome(rel, "failed", error=str(e), data=data)
    except Exception as e:  # a transformer bug must not stop the tree
        return Outcome(rel, "failed", error=f"{src}:1:0: internal error: {e!r}", data=data)
    if res.changed:
        bad = output_error(res.code, res.line_map, src)
        if bad:
            return Outcome(rel, "failed", error=bad, data=data)
    out = res.code.encode(res.encoding) if res.changed else data
    diff = ""
    if want_diff and res.changed:
        text = data.decode(res.encoding if res.encoding != "utf-8-sig" else "utf-8-sig")
        diff = "".join(difflib.unified_diff(
            text.splitlines(keepends=True), res.code.splitlines(keepends=True),
            f"a/{rel}", f"b/{rel}"))
    return Outcome(rel, "instrumented" if res.changed else "unchanged", len(res.line_map),
                   res.sites, res.skipped, data=out, diff=diff,
                   digest=f"{digest}:{options.digest()}")


def output_error(code: str, line_map: list[int], src: str) -> str:
    """Compile the instrumented output as Python will: a file that would not import is
    a failure (issue 17: a walrus the transformer put where Python forbids one was
    written and counted as done). One line, located in the original file; '' if it
    compiles."""
    try:
        with warnings.catch_warnings():  # the program's own SyntaxWarnings are not ours
            warnings.simplefilter("ignore")
            compile(code, src, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        out_line = getattr(e, "lineno", None) or 0
        line = line_map[out_line - 1] if 0 < out_line <= len(line_map) else 0
        msg = getattr(e, "msg", None) or str(e) or type(e).__name__
        return (f"{src}:{line}:0: instrumented output does not compile: "
                f"{type(e).__name__}: {msg} (a memscope bug: please report it)")
    return ""


def atomic_write(path: Path, data: bytes, mode_from: Path | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode_from is not None:
            try:
                os.chmod(tmp, os.stat(mode_from).st_mode & 0o7777)
            except OSError:
                pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def module_name(rel: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__main__"


def run(items: list[Item], options: Options, *, jobs: int, write: bool, want_diff: bool,
        on_error: str, cache_dir: Path | None,
        progress: Callable[[int, int], None] | None = None,
        emit: Callable[[str], None] = print) -> Summary:
    t0 = time.perf_counter()
    summary = Summary()
    cache: dict[str, str] = {}
    cache_file = cache_dir / CACHE_NAME if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            cache = {}
    py = [it for it in items if it.python]
    others = [it for it in items if not it.python]
    by_rel = {it.rel: it for it in py}
    tasks = [(os.path.abspath(it.src), it.rel, module_name(it.rel), options, want_diff,
              cache.get(it.rel, "") if write else "", str(it.dst) if write else None)
             for it in py]
    done = 0
    total = len(items)

    def handle(o: Outcome) -> None:
        nonlocal done
        it = by_rel[o.rel]
        summary.files += 1
        if o.status == "failed":
            summary.failed += 1
            summary.errors.append(o.error)
            emit(f"error: {o.error}")
            if write and on_error == "copy" and o.data is not None:
                atomic_write(it.dst, o.data, it.src)
        elif o.status == "cached":
            summary.cached += 1
        else:
            summary.lines += o.lines
            summary.sites += o.sites
            summary.skipped += o.skipped
            if o.status == "instrumented":
                summary.changed += 1
            if o.diff:
                emit(o.diff.rstrip("\n"))
            if write and o.data is not None:
                atomic_write(it.dst, o.data, it.src)
                cache[o.rel] = o.digest
        done += 1
        if progress:
            progress(done, total)

    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            for o in ex.map(_work, tasks, chunksize=max(1, len(tasks) // (jobs * 8))):
                handle(o)
    else:
        for t in tasks:
            handle(_work(t))
    for it in others:
        if write and it.src.resolve() != it.dst.resolve():
            try:
                data = it.src.read_bytes()
                if not (it.dst.exists() and it.dst.read_bytes() == data):
                    atomic_write(it.dst, data, it.src)
                summary.copied += 1
            except OSError as e:
                summary.failed += 1
                msg = f"{it.src}: cannot copy: {e.strerror or e}"
                summary.errors.append(msg)
                emit(f"error: {msg}")
        done += 1
        if progress:
            progress(done, total)
    if write and cache_file is not None:
        try:
            atomic_write(cache_file, json.dumps(cache, sort_keys=True).encode())
        except OSError:
            pass
    summary.seconds = time.perf_counter() - t0
    return summary
