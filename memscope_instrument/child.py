"""Tracking child processes of ``memscope run``.

The parent puts two things in the environment of every process it starts:

``MEMSCOPE_CHILD``
    JSON with the run's settings (mode, output folder, name, which modules to
    instrument, on-error policy).
``PYTHONPATH``
    prefixed with ``memscope_instrument/_boot``, whose ``sitecustomize`` calls
    :func:`bootstrap` at interpreter start (and then imports any other
    ``sitecustomize`` it shadows, so the user's own still runs).

:func:`bootstrap` starts tracking into a capture of the child's own
(``<name>.<pid>.memscope`` in the parent's folder) and installs the import hook with the
parent's rules. ``multiprocessing`` children started with *spawn* or *forkserver* run
the parent's main module again as ``__mp_main__``; that run is instrumented too (the
worker functions usually live there). Children made by *fork* inherit the parent's
instrumented code and tracker; the runtime switches them to their own capture at fork.
Every ``multiprocessing`` child closes its tracker when its process function returns
(such children leave through ``os._exit``, which skips ``atexit``).
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py converts to enums (~0.6 ms)
import os
import sys
import types

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from typing import Any

try:  # json's own C string encoder: the parent writes JSON without importing json
    from _json import encode_basestring_ascii as _json_str
except ImportError:  # not CPython
    from json.encoder import py_encode_basestring_ascii as _json_str

ENV = "MEMSCOPE_CHILD"
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_boot")


def child_environment(settings: dict[str, Any], env: dict[str, str] | None = None) -> None:
    """Set up ``env`` (default ``os.environ``) so Python children are tracked."""
    env = os.environ if env is None else env  # type: ignore[assignment]
    assert env is not None
    env[ENV] = to_json(settings)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOT_DIR]
    env["PYTHONPATH"] = os.pathsep.join([BOOT_DIR, *parts])


def to_json(value: Any) -> str:
    """``json.dumps(value)`` for what the settings hold (str, int, bool, None, and lists
    and str-keyed dicts of them), without importing ``json`` (~1.3 ms of ``memscope
    run``'s start-up)."""
    if isinstance(value, str):
        return _json_str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(to_json, value)) + "]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return "{" + ", ".join(f"{_json_str(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"settings hold only str, int, bool, None, lists and dicts: {value!r}")


def settings_from_env() -> dict[str, Any] | None:
    raw = os.environ.get(ENV)
    if not raw:
        return None
    import json  # imported here: only a child started by memscope run reads settings

    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def start(settings: dict[str, Any], *, init_tracker: bool = True) -> Any:
    """Start tracking and install the hook as ``settings`` say; returns the hook."""
    from memscope_instrument import hook

    if init_tracker:
        from memscope import tracker

        tracker.init(
            mode=settings.get("mode"),
            output_dir=settings.get("output_dir"),
            name=settings.get("name"),
            sampling=settings.get("sampling", True),
        )
    h = hook.install_import_hook(
        tuple(settings.get("include") or ()),
        roots=settings.get("roots") or (),
        exclude=settings.get("exclude") or (),
        mode=settings.get("mode"),
        on_error=settings.get("on_error", "fallback"),
        start=False,
        _stacklevel=3,
    )
    patch_multiprocessing(h)
    return h


_patched = False


def patch_multiprocessing(h: Any) -> None:
    """Close the tracker when a multiprocessing child's work returns, and run the
    ``__mp_main__`` of spawn/forkserver children instrumented."""
    global _patched
    if _patched:
        return
    _patched = True
    from multiprocessing import process, spawn

    orig_bootstrap = process.BaseProcess._bootstrap  # type: ignore[attr-defined]

    def _bootstrap(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_target", None) is _pool_worker():
            # A pool worker ends by Pool.terminate()'s SIGTERM, often while blocked on
            # the task queue's lock: a Python-level handler there can leave it alive
            # and the parent's join() waiting forever. So its SIGTERM stays the
            # default, as in plain Python, and its events reach the disk before each
            # task's result is sent instead.
            _default_sigterm()
            _flush_before_results(self)
        else:
            flush_on_sigterm()  # a Process child the program terminates
        try:
            return orig_bootstrap(self, *args, **kwargs)
        finally:
            try:
                from memscope import tracker

                tracker.get_global_tracker().close()
            except Exception:
                pass

    process.BaseProcess._bootstrap = _bootstrap  # type: ignore[attr-defined]
    orig_fixup = spawn._fixup_main_from_path  # type: ignore[attr-defined]

    def _fixup_main_from_path(main_path: str) -> None:
        current = sys.modules["__main__"]
        main_name = os.path.splitext(os.path.basename(main_path))[0]
        if main_name == "ipython" or getattr(current, "__file__", None) == main_path:
            return
        if not main_path.endswith(".py") or not os.path.isfile(main_path):
            orig_fixup(main_path)
            return
        spawn.old_main_modules.append(current)
        mod = types.ModuleType("__mp_main__")
        mod.__file__ = main_path
        mod.__builtins__ = __builtins__  # type: ignore[attr-defined]
        sys.modules["__main__"] = sys.modules["__mp_main__"] = mod
        from memscope_instrument import hook

        hook.run_instrumented(main_path, mod, h.rule.options, h.rule.on_error)

    spawn._fixup_main_from_path = _fixup_main_from_path  # type: ignore[attr-defined]


class _PatchOnImport:
    """A meta-path finder that patches ``multiprocessing`` right after the program first
    imports it (most programs never do: they don't pay for importing it at start-up)."""

    def __init__(self, h: Any) -> None:
        self.h = h

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "multiprocessing":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        import importlib.util

        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec
        h = self.h

        def exec_module(module: types.ModuleType) -> None:
            run(module)
            patch_multiprocessing(h)

        loader.exec_module = exec_module  # type: ignore[union-attr]  # this spec's own loader
        return spec


def patch_multiprocessing_when_imported(h: Any) -> None:
    """``patch_multiprocessing`` now if the program already imported it, else on import."""
    if "multiprocessing" in sys.modules:
        patch_multiprocessing(h)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(h))


def _pool_worker() -> Any:
    from multiprocessing import pool

    return pool.worker  # type: ignore[attr-defined]


def _default_sigterm() -> None:
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except ValueError:  # not the main thread
        pass


class _FlushingQueue:
    """A pool worker's result queue that flushes memscope's events before each put."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def put(self, obj: Any) -> None:
        try:
            from memscope import _hooks

            _hooks.flush()
        except Exception:
            pass
        self._queue.put(obj)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def _flush_before_results(proc: Any) -> None:
    """Wrap the outqueue argument of ``pool.worker(inqueue, outqueue, ...)``."""
    args = list(getattr(proc, "_args", ()))
    if len(args) >= 2:
        args[1] = _FlushingQueue(args[1])
        proc._args = tuple(args)


def _on_sigterm(signum: int, frame: Any) -> None:
    # as an interrupted run's: a full close here took a census, and waited without end
    # for the census lock when SIGTERM landed in one (the child never died)
    try:
        from memscope import tracker

        tracker.close_on_signal()
    except Exception:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def flush_on_sigterm() -> None:
    """On SIGTERM (when the program has no handler of its own) close the capture, then
    die by SIGTERM as before."""
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass


def bootstrap() -> None:
    """Called by the ``_boot/sitecustomize`` at the start of a child interpreter."""
    settings = settings_from_env()
    if settings is None or settings.get("parent_pid") == os.getpid():
        return
    start(settings)
    flush_on_sigterm()
