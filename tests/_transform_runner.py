"""Run a program plain or instrumented, the way the import hook runs it.

    python _transform_runner.py plain|inst PATH EVENTS_JSON [imports] [comprehensions] [libcst]

``libcst`` forces the libcst path (the fallback of the splice path).

Instrumented code is compiled with the line map under the ORIGINAL filename, so
tracebacks and warnings must come out identical to the plain run. Events recorded by
``memscope._hooks`` are written to EVENTS_JSON at exit.
"""

from __future__ import annotations

import atexit
import json
import sys
import types


def main() -> None:
    mode, path, out = sys.argv[1:4]
    flags = set(sys.argv[4:])
    with open(path, "rb") as f:
        data = f.read()
    if mode == "plain":
        code = compile(data, path, "exec", dont_inherit=True)
    else:
        from memscope_instrument import transform
        from memscope_instrument.linemap import compile_with_line_map
        from memscope_instrument.transform import Options, instrument_source

        if "libcst" in flags:
            transform._splice = lambda *a, **k: None  # type: ignore[assignment]

        opts = Options(imports="imports" in flags, comprehensions="comprehensions" in flags)
        res = instrument_source(data, path, "__main__", opts)
        code = compile_with_line_map(res.code, res.line_map, path, deltas=res.col_delta)

    def dump() -> None:
        from memscope import _hooks
        from memscope.events import expand_tables

        _hooks.flush()
        events = [list(e) for e in expand_tables(_hooks.get_sink().events)]
        with open(out, "w") as f:
            json.dump(events, f, default=repr)

    if mode != "plain":
        atexit.register(dump)
    mod = types.ModuleType("__main__")
    mod.__file__ = path
    mod.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = mod
    sys.argv = [path]
    del sys.path[0]
    exec(code, mod.__dict__)


if __name__ == "__main__":
    main()
