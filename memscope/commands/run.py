"""``memscope run``: run a script or module like ``python`` does, instrumented.

``memscope run [options] script.py [args...]`` and ``memscope run [options] -m module
[args...]`` give the program the same ``sys.argv``, ``__main__``, ``sys.path[0]``,
standard streams, exit status and uncaught-exception traceback as ``python`` would,
while the main script and the user's own code (the script's directory, or the project
holding it; the current directory for ``-m``) are instrumented by the import hook.
Standard library and site-packages code is not, unless named with ``--include``.

At exit (normal end, ``sys.exit``, an uncaught exception) the capture is closed and the
reports are written; their paths are printed on stderr. Stopped by Ctrl-C or SIGTERM, it
closes the capture at once (no end census, no report: a stop must not wait) and prints
the ``memscope report`` command that makes the reports. Python child
processes (multiprocessing with any start method, ``subprocess`` of Python,
``ProcessPoolExecutor``) are tracked into captures of their own in the same folder.

This module imports neither libcst nor click (``parse_args`` reads the command line);
``memscope_instrument`` is imported when a program is actually run.
"""

from __future__ import annotations

import _signal as signal  # the C module: signal.py converts to enums (~0.6 ms)
import atexit
import itertools
import os
import sys
import time
import types

from memscope import formats as _formats

TYPE_CHECKING = False  # typing is for the checker only: not imported when memscope runs
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

FORMATS = tuple(_formats.FORMATS)  # the one list: memscope.formats
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


class UsageError(Exception):
    """A bad ``memscope run`` command line: printed under the usage line, exit status 2."""


def project_root(start: str) -> str:
    """The nearest folder at or above ``start`` (absolute) that holds a project marker,
    else ``start`` itself. (os.path, not pathlib: this runs before the program.)"""
    d = start
    while True:
        if any(os.path.exists(os.path.join(d, m)) for m in _PROJECT_MARKERS):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return start
        d = parent


def parse_formats(text: str) -> list[str]:
    """``--format``'s value as a list (public: the pytest plugin's ``--memscope-format``)."""
    try:
        return _formats.parse(text, _formats.RUN_DEFAULT)
    except _formats.FormatError as exc:
        raise UsageError(f"Invalid value for '--format': {exc}") from None


class Finisher:
    """Writes the capture and the reports once, whichever way the program ends (public:
    the pytest plugin finishes a ``pytest --memscope`` session with it)."""

    def __init__(self, formats: list[str], report: bool) -> None:
        self.formats = formats
        self.report = report
        self.done = False
        self.sigint = False
        self.status: int | None = None  # the program's exit status, once it has ended
        self.pid = os.getpid()
        self.started = time.time()
        # this run, apart from any other in the same folder (the pid alone is reused)
        self.run_id = f"{self.pid:x}-{time.time_ns():x}-{os.urandom(4).hex()}"

    def __call__(self) -> None:
        if self.done or os.getpid() != self.pid:
            return
        self.done = True
        try:  # after Ctrl-C, as after SIGTERM: the capture at once, no report to wait for
            self._finish(stopped="SIGINT" if self.sigint else None)
        except KeyboardInterrupt:  # Ctrl-C during the end census or the reports
            self._interrupted()
        except Exception as exc:  # never turn the program's exit into ours
            _say(f"could not finish the reports: {type(exc).__name__}: {exc}")

    def _interrupted(self) -> None:
        """Ctrl-C while the run was being finished: the capture is closed (without
        waiting), the reports are left to ``memscope report``, and the process ends by
        SIGINT (``at_exit_last``), as Python ends after an uncaught Ctrl-C."""
        from memscope import tracker as tracker_mod

        self.sigint = True
        tracker = tracker_mod.get_global_tracker()
        tracker_mod.close_on_signal()
        captures = self._captures(tracker)
        if captures and self.report and any(f != "binary" for f in self.formats):
            _say("reports: interrupted by SIGINT; make them with: "
                 + report_command(captures, tracker.output_folder, tracker.name,
                                  self.formats))
        elif captures:
            for c in captures:
                _say(f"capture: {c}")

    def _captures(self, tracker: Any) -> list[str]:
        """This run's captures (NAME.PID.memscope): the parent's and its children's,
        told from another run's in the same folder by the run id each process records
        (``Config.run_id``, given to the children in the environment)."""
        from memscope.capture import CaptureError
        from memscope.capture.writer import run_id_of

        rid = getattr(tracker.config, "run_id", "")
        out = tracker.output_folder
        captures = []
        try:
            names = sorted(os.listdir(out))
        except OSError:
            names = []
        prefix, suffix = f"{tracker.name}.", ".memscope"
        for n in names:
            if n.startswith(prefix) and n.endswith(suffix) and \
                    len(n) > len(prefix) + len(suffix):
                c = os.path.join(out, n)
                try:
                    mtime = os.stat(c).st_mtime
                except OSError:
                    continue
                recent = mtime >= self.started
                if mtime < self.started - 0.05:  # written before this run began: not its own
                    continue
                if n == f"{prefix}{os.getpid()}{suffix}":  # this process's own: no read
                    captures.append(c)
                    continue
                if not rid:  # a tracker started otherwise (the pytest plugin): by time
                    if recent:
                        captures.append(c)
                    continue
                try:
                    if run_id_of(c) == rid:
                        captures.append(c)
                except CaptureError as exc:  # perhaps this run's: named, left out
                    if recent:
                        why = str(exc) if c in str(exc) else f"{c}: {exc}"
                        _say(f"capture left out of the reports: {why}")
        return captures

    def _finish(self, stopped: str | None = None) -> None:
        """Close the capture, then write the reports; ``stopped``: the signal that
        stopped the program (this runs in its handler): the capture is closed without
        waiting long for anything, and the reports are left to ``memscope report``."""
        from memscope import tracker as tracker_mod

        tracker = tracker_mod.get_global_tracker()
        if self.status and stopped is None:  # first: not hidden behind the report lines
            _say(f"the program exited with status {self.status}")
        if stopped is None:
            tracker.close()
        elif not tracker_mod.close_on_signal():
            _say("capture: could not be closed in time; it is readable up to its last "
                 "complete chunk, as a killed process's is")
        out = tracker.output_folder
        captures = self._captures(tracker)
        if "binary" in self.formats or not self.report:
            if captures:
                for c in captures:
                    _say(f"capture: {c}")
            elif tracker.config.capture:
                _say("capture: not written (the capture writer is not available in this build)")
        if self.report and stopped is not None:
            if captures and any(f != "binary" for f in self.formats):
                _say(f"reports: not written (stopped by {stopped}); make them with: "
                     + report_command(captures, out, tracker.name, self.formats))
            return
        if not self.report:
            return
        try:
            from memscope import reporters
        except ImportError:
            _say("reports: not available in this build")
            return
        wanted = [f for f in self.formats if not (f == "binary" and captures)]
        if captures and wanted:
            # every process of this run (the parent and its children), merged; one that
            # cannot be read (a child killed before its header) is named and left out
            from memscope.capture import CaptureError, read_capture

            readable = []
            for c in captures:
                try:
                    readable.append(read_capture(c))
                except CaptureError as exc:
                    why = str(exc) if c in str(exc) else f"{c}: {exc}"
                    _say(f"capture left out of the reports: {why}")
                    continue
                if not readable[-1].header.complete:  # a child killed, say
                    _say(f"capture incomplete: {c}: {readable[-1].recovery.message}")
            from memscope.reporters._progress import Progress

            progress = Progress()
            try:
                written = reporters.report(readable, out, tracker.name, wanted,
                                           progress=progress)
            except Exception as exc:
                _say(f"reports: not written ({type(exc).__name__}: {exc})")
                return
            finally:
                progress.close()
            for fmt in wanted:
                paths = [p for p in written if _format_of(p) == fmt]
                if fmt == "json" and paths:
                    _say(f"json report: {paths[0].parent}")
                else:
                    for p in paths:
                        _say(f"{fmt} report: {p}")
            return
        for fmt in wanted:
            try:
                path = reporters.export(tracker, fmt, None)
            except Exception as exc:
                _say(f"{fmt} report: not written ({type(exc).__name__}: {exc})")
                continue
            _say(f"{fmt} report: {path}")

    def at_exit_last(self) -> None:
        """Registered first, so it runs after every other ``atexit`` function: an
        uncaught Ctrl-C ends the process by SIGINT, as Python itself does."""
        if self.sigint and os.getpid() == self.pid:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        """SIGTERM: close the capture and die by SIGTERM, as Python would have died.
        A signal handler, so it may run anywhere in the main thread, memscope's own
        code included: it takes no census, writes no report and waits for no lock
        longer than ``SIGNAL_WAIT`` (``memscope.tracker.close_on_signal``)."""
        if os.getpid() != self.pid:  # a forked child inherited this handler
            from memscope import tracker as tracker_mod

            try:
                tracker_mod.close_on_signal()
            except Exception:
                pass
        elif not self.done:
            self.done = True
            try:
                self._finish(stopped="SIGTERM")
            except Exception as exc:
                _say(f"could not close the capture: {type(exc).__name__}: {exc}")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)



def report_command(captures: list[str], out: str, name: str, formats: list[str]) -> str:
    """The ``memscope report`` command line that makes this run's reports (quoted for
    a POSIX shell, as ``shlex.join`` would: no import in a signal handler)."""
    fmts = ",".join(f for f in formats if f != "binary")
    return " ".join(map(_quote, ["memscope", "report", *captures, "-o", out, "-n", name,
                                 "-f", fmts]))


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_")


def _quote(word: str) -> str:
    if word and all(c in _SAFE for c in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def _census_on_signal(signum: int, frame: Any) -> None:
    from memscope import _monitor

    _monitor.request("signal")


def _restore_sigterm_in_child(fin: Finisher) -> Any:
    def restore() -> None:
        try:
            if signal.getsignal(signal.SIGTERM) == fin.on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except (ValueError, OSError):
            pass

    return restore


def _format_of(path: Path) -> str:  # a report's path (reports import pathlib anyway)
    if path.name.endswith("_lifecycle_timeline.svg"):
        return "timeline"
    return {".html": "html", ".svg": "svg", ".json": "json", ".jsonl": "bindings",
            ".txt": "summary", ".memscope": "binary"}.get(path.suffix, path.suffix.lstrip("."))


def _say(msg: str) -> None:
    try:
        sys.stderr.write(f"memscope: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _say_if_pure_python() -> None:
    """One line when the C hot path is not built (installed with no C compiler, say):
    every event then costs several times more. Not when asked for (tests, benchmarks)."""
    from memscope import _hooks

    if not _hooks.ACCELERATED and not os.environ.get("MEMSCOPE_HOTPATH_PURE"):
        _say("the C hot path is not built (no C compiler at install?): recording in pure "
             "Python, several times slower per event; reinstall with a compiler for speed")


def _trim_traceback(tb: Any, syntax: bool = False) -> Any:
    """Drop memscope's own frames from the start of a traceback (``syntax``: a
    SyntaxError, from the hook's frames inside it too, ``_without_hook_frames``)."""
    ours = {os.path.abspath(__file__)}
    try:
        from memscope_instrument import hook

        ours.add(os.path.abspath(hook.__file__))
    except Exception:
        pass
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in ours:
        tb = tb.tb_next
    return _without_hook_frames(tb, ours) if syntax else tb


def _without_hook_frames(tb: Any, ours: set[str]) -> Any:
    """Drop the import hook's frames inside a traceback, with the run of importlib's
    frames right before each: python hides importlib's frames of an import that failed
    (a chunk of them that ends in ``_call_with_frames_removed``); the hook's
    ``get_code`` in the middle of that chunk left it shown (a module's syntax error
    came with four frames of importlib's and one of memscope's)."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    keep = [True] * len(entries)
    for i, e in enumerate(entries):
        if os.path.abspath(e.tb_frame.f_code.co_filename) in ours:
            keep[i] = False
            j = i - 1
            while j >= 0 and entries[j].tb_frame.f_code.co_filename.startswith(
                    "<frozen importlib._bootstrap"):
                keep[j] = False
                j -= 1
    kept = [e for e, k in zip(entries, keep, strict=True) if k]
    for a, b in itertools.pairwise(kept):
        a.tb_next = b
    if kept:
        kept[-1].tb_next = None
    return kept[0] if kept else None


def _run_script(path: str, args: tuple[str, ...], options: Any, on_error: str) -> None:
    from importlib.machinery import SourceFileLoader

    from memscope_instrument import hook

    full = os.path.abspath(path)
    sys.argv[:] = [path, *args]
    if os.path.isdir(full) or (not full.endswith((".py", ".pyw")) and _is_zip(full)):
        import runpy

        sys.path[0] = full
        from memscope import _depth

        _depth.as_python(_depth.depth_of_caller())  # the runner's frames: not the program's
        runpy.run_path(full, run_name="__main__")
        return
    mod = types.ModuleType("__main__")
    mod.__file__ = full
    mod.__cached__ = None  # type: ignore[attr-defined]
    mod.__loader__ = SourceFileLoader("__main__", full)
    mod.__package__ = None
    mod.__spec__ = None
    mod.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = mod
    try:
        code = hook.load_code(full, "__main__", options, on_error)
    except SyntaxError as exc:  # as python shows it: no traceback, no chained errors
        raise _ScriptSyntaxError(exc) from None
    from memscope import _depth

    _depth.as_python(_depth.depth_of_caller())  # the runner's frames: not the program's
    exec(code, mod.__dict__)


class _ScriptSyntaxError(Exception):
    """The script itself does not compile (python: the error alone, exit status 1)."""

    def __init__(self, error: SyntaxError) -> None:
        super().__init__(str(error))
        self.error = error


def _is_zip(path: str) -> bool:
    import zipfile

    return os.path.isfile(path) and zipfile.is_zipfile(path)


def _run_module(name: str, args: tuple[str, ...]) -> None:
    import runpy

    sys.argv[:] = [name, *args]
    main = types.ModuleType("__main__")
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    from memscope import _depth

    _depth.as_python(_depth.depth_of_caller())  # the runner's frames: not the program's
    # called from C (map's), as python -m calls it: on 3.10 and 3.11 a level less
    next(map(runpy._run_module_as_main, (name,), (True,)))  # type: ignore[attr-defined]


def run_program(
    *,
    script: str | None,
    module: str | None,
    args: tuple[str, ...],
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    mode: str | None = None,
    output: str | None = None,
    name: str | None = None,
    report: bool = True,
    formats: list[str] | None = None,
    on_error: str = "fallback",
    children: bool = True,
    sampling: bool | None = None,
) -> int | Any:
    """Run the program; returns what its ``SystemExit`` carried (0 after a normal end)."""
    from memscope import tracker as tracker_mod
    from memscope.config import Config

    formats = list(_formats.RUN_DEFAULT) if formats is None else formats
    if script is not None and not os.path.exists(script):
        _say_python(
            f"can't open file {os.path.abspath(script)!r}: [Errno 2] No such file or directory"
        )
        return 2
    if script is not None:
        base = os.path.dirname(os.path.abspath(script))
        run_name = os.path.splitext(os.path.basename(script))[0]
    else:
        base = os.getcwd()
        run_name = (module or "module").split(".")[-1]
    roots = sorted({base, project_root(base)})
    from memscope import _own

    _own.begin()  # everything up to the program's first line is memscope's own memory
    try:
        fin = Finisher(formats, report)
        cfg = Config.from_env().with_(mode=mode, name=name or run_name, sampling=sampling,
                                      run_id=fin.run_id)
        if output is not None:
            cfg = cfg.with_(output_dir=os.path.abspath(output))
        else:
            cfg = cfg.with_(output_dir=os.path.abspath(cfg.output_dir))
        try:
            os.makedirs(cfg.output_dir, exist_ok=True)
        except OSError as exc:  # one line, before the program starts
            sys.stderr.write(f"memscope: cannot create the output folder {cfg.output_dir}: "
                             f"{exc.strerror or exc}\n")
            return 1
        include_all = tuple(include) + ((module,) if module else ())

        if include_all:  # before tracking starts: the workers are not the program's
            from memscope_instrument import warm

            warm.before_run(include_all, cfg.mode, _say)
        atexit.register(fin.at_exit_last)  # first registered: runs last
        tracker_mod.init(config=cfg)
        _say_if_pure_python()
        atexit.register(fin)  # runs before the tracker's own close
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, fin.on_sigterm)
            # a forked child starts with plain Python's SIGTERM; multiprocessing children
            # get what memscope_instrument.child gives them
            os.register_at_fork(after_in_child=_restore_sigterm_in_child(fin))
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL:
            # ``kill -USR1 PID``: a census now (served by the monitor thread)
            signal.signal(signal.SIGUSR1, _census_on_signal)

        from memscope_instrument import child, hook

        settings = {
            "mode": cfg.mode,
            "sampling": cfg.sampling,
            "output_dir": cfg.output_dir,
            "name": cfg.name,
            "include": list(include_all),
            "exclude": list(exclude),
            "roots": roots,
            "on_error": on_error,
            "parent_pid": os.getpid(),
        }
        h = hook.install_import_hook(
            include_all,
            roots=roots,
            exclude=exclude,
            mode=cfg.mode,
            on_error=on_error,
            start=False,
        )
        if children:
            os.environ["MEMSCOPE_RUN_ID"] = fin.run_id  # the children's captures say it too
            child.child_environment(settings)
            child.patch_multiprocessing_when_imported(h)

        sys.path[0] = str(base)  # as python does: the script's folder, or cwd for -m
    finally:
        _own.end()
    try:
        if module is not None:
            _run_module(module, args)
        else:
            assert script is not None
            _run_script(script, args, h.rule.options, on_error)
    except SystemExit as exc:
        fin.status = _status_of(exc.code)
        return exc.code
    except _ScriptSyntaxError as wrapped:
        err = wrapped.error
        err.__cause__ = err.__context__ = None
        err.__suppress_context__ = True
        sys.excepthook(type(err), err.with_traceback(None), None)
        fin.status = 1
        return 1
    except BaseException as exc:
        fin.status = 1
        fin.sigint = isinstance(exc, KeyboardInterrupt)
        tb = _trim_traceback(exc.__traceback__, isinstance(exc, SyntaxError))
        exc.__traceback__ = tb
        sys.excepthook(type(exc), exc, tb)
        return 1
    return 0


def _status_of(code: Any) -> int:
    """The exit status ``SystemExit(code)`` gives, as python computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    return 1


def _say_python(msg: str) -> None:
    sys.stderr.write(f"{sys.executable}: {msg}\n")


# ---- the command line ----------------------------------------------------------------
# Parsed here, without click: importing click (and the uuid, datetime, platform and
# gettext it imports) took ~11 ms before the program's first line. The grammar is
# python's: options up to the script or ``-m MODULE``; everything after goes to the
# program verbatim. ``OPTIONS`` is the one table that the parser and ``--help`` read.

USAGE = ("[OPTIONS] SCRIPT [ARGS]...", "[OPTIONS] -m MODULE [ARGS]...")
DOC = (
    "Run SCRIPT [ARGS]... (or -m MODULE [ARGS]...) like python, tracking memory by "
    "variable name; writes the capture and reports at exit. Options go before the "
    "script or -m MODULE: everything after them is the program's."
)
SHORT_HELP = "Run a script or module like python, tracking its memory."


class Opt:
    """One option of ``memscope run``. ``kind``: ``"value"`` (the last one given wins),
    ``"multiple"`` (repeatable, collected in order) or ``"flag"`` (takes no value)."""

    __slots__ = ("choices", "default", "dest", "help", "kind", "metavar", "names")

    def __init__(
        self,
        names: tuple[str, ...],
        dest: str,
        help: str,
        *,
        kind: str = "value",
        metavar: str = "",
        choices: tuple[str, ...] = (),
        default: str | None = None,
    ) -> None:
        self.names = names
        self.dest = dest
        self.help = help
        self.kind = kind
        self.metavar = f"[{'|'.join(choices)}]" if choices else metavar
        self.choices = choices
        self.default = default


OPTIONS: tuple[Opt, ...] = (
    Opt(
        ("-m",),
        "module",
        "Run a module as a script (like python -m); the arguments after it are the module's.",
        metavar="MODULE",
    ),
    Opt(
        ("--include",),
        "include",
        "Also instrument this package (repeatable; exact or dotted prefix).",
        kind="multiple",
        metavar="PKG",
    ),
    Opt(
        ("--exclude",),
        "exclude",
        "Never instrument this package (repeatable).",
        kind="multiple",
        metavar="PKG",
    ),
    Opt(
        ("--mode",),
        "mode",
        "What to record (default: fast, or MEMSCOPE_MODE).",
        choices=("fast", "full"),
    ),
    Opt(
        ("-o", "--output"),
        "output",
        "Folder for captures and reports (default: MemoryAnalysis).",
        metavar="DIR",
    ),
    Opt(
        ("--name",),
        "name",
        "Name of the run (default: the script's or module's name).",
        metavar="NAME",
    ),
    Opt(
        ("--no-report",),
        "no_report",
        "Write the capture only; make reports later with memscope report.",
        kind="flag",
    ),
    Opt(
        ("--format",),
        "fmt",
        "Comma-separated outputs (the same list as memscope report -f): "
        + _formats.help_text() + ".",
        metavar="LIST",
        default=",".join(_formats.RUN_DEFAULT),
    ),
    Opt(
        ("--on-error",),
        "on_error",
        "If the instrumenter fails on a module: import it uninstrumented and say so "
        "on stderr (fallback), or stop (raise).",
        choices=("raise", "fallback"),
        default="fallback",
    ),
    Opt(("--no-children",), "no_children", "Do not track child Python processes.", kind="flag"),
    Opt(
        ("--no-sampling",),
        "no_sampling",
        "Record every bind (default: sites that bind only small values are sampled; "
        "MEMSCOPE_SAMPLING=0 does the same).",
        kind="flag",
    ),
    Opt(("-h", "--help"), "help", "Show this message and exit.", kind="flag"),
)
_BY_NAME = {n: o for o in OPTIONS for n in o.names}


def parse_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``(options by dest, the program's arguments)``: ``[SCRIPT, *ARGS]``, or ``ARGS``
    after ``-m MODULE``. Stops early at ``-h``/``--help`` (``options["help"]``)."""
    values: dict[str, Any] = {
        o.dest: [] if o.kind == "multiple" else (False if o.kind == "flag" else o.default)
        for o in OPTIONS
    }
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            i -= 1
            break
        if arg.startswith("--"):
            name, eq, attached = arg.partition("=")
            value: str | None = attached if eq else None
        else:  # -m MODULE, -mMODULE, -o DIR, -oDIR, -h
            name, value = arg[:2], arg[2:] or None
        opt = _BY_NAME.get(name)
        if opt is None:
            raise UsageError(_no_such_option(name))
        if opt.kind == "flag":
            if value is not None:
                raise UsageError(f"Option {name!r} does not take a value.")
            values[opt.dest] = True
            if opt.dest == "help":
                break
            continue
        if value is None:
            if i == len(argv):
                raise UsageError(f"Option {name!r} requires an argument.")
            value = argv[i]
            i += 1
        if opt.choices and value not in opt.choices:
            raise UsageError(
                f"Invalid value for {name!r}: {value!r} is not one of "
                + ", ".join(repr(c) for c in opt.choices)
                + "."
            )
        if opt.kind == "multiple":
            values[opt.dest].append(value)
        else:
            values[opt.dest] = value
        if opt.dest == "module":
            break  # python's grammar: what follows -m MODULE is the module's
    return values, argv[i:]


def _no_such_option(name: str) -> str:
    """The error for an unknown option, with the nearest option names if any."""
    import difflib  # imported lazily: only a mistyped option needs it

    near = difflib.get_close_matches(name, list(_BY_NAME), n=2)
    hint = f" Did you mean {' or '.join(near)}?" if near else ""
    return f"No such option: {name}.{hint}"


def usage(prog: str) -> str:
    """The usage lines, as ``--help`` and every command-line error begin."""
    return "".join(
        f"{'Usage:' if i == 0 else '':<6} {prog} {form}\n" for i, form in enumerate(USAGE)
    )


def help_text(prog: str) -> str:
    """``memscope run --help``, from ``OPTIONS``."""
    import textwrap  # imported lazily: memscope run's start-up

    heads = [", ".join(o.names) + (f" {o.metavar}" if o.metavar else "") for o in OPTIONS]
    col = min(max(map(len, heads)), 28) + 4  # where the help column starts
    lines = [*textwrap.wrap(DOC, 79, initial_indent="  ", subsequent_indent="  "), "", "Options:"]
    for head, o in zip(heads, OPTIONS, strict=True):
        text = o.help + (f"  [default: {o.default}]" if o.default and not o.choices else "")
        body = textwrap.wrap(text, 79 - col)
        if len(head) + 4 > col:
            lines.append(f"  {head}")
        else:
            lines.append(f"  {head:<{col - 2}}{body.pop(0)}")
        lines.extend(" " * col + b for b in body)
    return usage(prog) + "\n" + "\n".join(lines) + "\n"


def main(argv: list[str], prog: str = "memscope run") -> None:
    """``memscope run ARGV...``; always ends by ``SystemExit`` (the program's status, or
    2 for a bad command line, as click gives)."""
    try:
        values, args = parse_args(argv)
        if values["help"]:
            sys.stdout.write(help_text(prog))
            raise SystemExit(0)
        formats = parse_formats(values["fmt"])
        module: str | None = values["module"]
        script: str | None = None
        if module is None:
            if not args:
                raise UsageError("expected a script to run, or -m MODULE")
            script, args = args[0], args[1:]
    except UsageError as exc:
        sys.stderr.write(f"{usage(prog)}Try '{prog} --help' for help.\n\nError: {exc}\n")
        raise SystemExit(2) from None
    code = run_program(
        script=script,
        module=module,
        args=tuple(args),
        include=tuple(values["include"]),
        exclude=tuple(values["exclude"]),
        mode=values["mode"],
        output=values["output"],
        name=values["name"],
        report=not values["no_report"],
        formats=formats,
        on_error=values["on_error"],
        children=not values["no_children"],
        sampling=False if values["no_sampling"] else None,
    )
    raise SystemExit(code)
