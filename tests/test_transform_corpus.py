"""Table-driven corpus: every fixture runs plain and instrumented with identical
stdout, stderr and exit status, and the recorded events match the ``# expect:``
comments in the fixture (``KIND NAME@SCOPE`` per binding; ``unbind NAME@SCOPE``;
``none`` = no site on that line; ``KIND! NAME@SCOPE``: and every such bind carries a
scope instance token, not 0). A ``# flags: comprehensions imports`` line sets options."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from memscope.events import BIND, ENTER, EXIT, SCOPE, SITE, UNBIND, BindKind

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "instrument"
RUNNER = Path(__file__).with_name("_transform_runner.py")
FIXTURES = sorted(p.name for p in CORPUS.glob("*.py"))
REQUIRES = re.compile(r"^#\s*requires:\s*3\.(\d+)\s*$", re.M)


def _param(name: str) -> Any:
    """A fixture whose ``# requires: 3.N`` line names a newer Python than this one (new
    syntax) is skipped here; CI runs it on that version (noxfile.py)."""
    m = REQUIRES.search((CORPUS / name.split(":")[0]).read_text())
    need = (3, int(m.group(1))) if m else (3, 0)
    return pytest.param(name, marks=pytest.mark.skipif(
        sys.version_info < need, reason=f"syntax of Python {need[0]}.{need[1]}"))
EXPECT = re.compile(r"#\s*expect:\s*(.*)$")
FLAGS = re.compile(r"^#\s*flags:\s*(.*)$", re.M)
# fixtures whose scope exits are incomplete by design (uncaught exception / sys.exit)
NO_EXIT_CHECK = {"raises.py", "exits.py"}


def run(mode: str, path: Path, tmp: Path, *flags: str) -> tuple[Any, ...]:
    events = tmp / f"{mode}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    p = subprocess.run(
        [sys.executable, str(RUNNER), mode, str(path), str(events), *flags],
        capture_output=True, text=True, env=env, cwd=str(tmp), timeout=120,
    )
    ev = json.loads(events.read_text()) if events.exists() else []
    return p.returncode, p.stdout, p.stderr, ev


class Events:
    def __init__(self, events: list[list[Any]]) -> None:
        self.scopes = {e[1]: e for e in events if e[0] == SCOPE}
        self.sites = {e[1]: e for e in events if e[0] == SITE}
        self.events = events
        self.tok_scope = {e[3]: e[2] for e in events if e[0] == ENTER}
        self.binds: dict[int, set[str]] = defaultdict(set)  # line -> "kind name@scope"
        self.site_lines = {s[3] for s in self.sites.values()}
        zero: set[tuple[int, str]] = set()  # (line, "kind name@scope") bound with tok 0
        for e in events:
            if e[0] in (BIND, UNBIND):
                site = self.sites[e[2]]
                qual = self.scopes[site[2]][4]
                kind = "unbind" if e[0] == UNBIND else BindKind(site[6]).name.lower()
                self.binds[site[3]].add(f"{kind} {site[5]}@{qual}")
                if e[3] == 0:
                    zero.add((site[3], f"{kind} {site[5]}@{qual}"))
        for line, got in list(self.binds.items()):
            self.binds[line] = got | {w.replace(" ", "! ", 1) for w in got
                                      if (line, w) not in zero}


def expectations(path: Path) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for no, line in enumerate(path.read_text().splitlines(), 1):
        m = EXPECT.search(line)
        if m:
            out[no] = [x.strip() for x in m.group(1).split(",") if x.strip()]
    return out


# fixtures also run through the libcst path (the splice path's fallback)
LIBCST = ["comprehensions.py", "nonlocal.py", "scopes.py", "walrus.py", "lambdas.py", "runs.py",
          "locals_fn.py", "nesting.py"]
# fixtures also run with more options than their own `# flags:` line (name:flag:flag)
EXTRA = ["nesting.py:comprehensions", "nesting.py:comprehensions:libcst", "pep701.py:libcst",
         "pep701.py:comprehensions"]


@pytest.mark.parametrize("name", [_param(n) for n in
                                  (*FIXTURES, *(f"{n}:libcst" for n in LIBCST), *EXTRA)])
def test_fixture(name: str, tmp_path: Path) -> None:
    name, *path_flags = name.split(":")
    path = CORPUS / name
    m = FLAGS.search(path.read_text())
    flags = [*(m.group(1).split() if m else []), *path_flags]
    plain = run("plain", path, tmp_path)
    inst = run("inst", path, tmp_path, *flags)
    assert inst[:3] == plain[:3], f"{name}: instrumented run differs"
    ev = Events(inst[3])
    for line, wants in expectations(path).items():
        for want in wants:
            if want == "none":
                assert line not in ev.site_lines, f"{name}:{line} has a site"
            else:
                got = ev.binds[line]
                assert want in got, f"{name}:{line}: {want!r} not in {got}"
    # every bind/unbind with a token belongs to an instance of the site's own scope
    for e in ev.events:
        if e[0] in (BIND, UNBIND) and e[3] != 0:
            site = ev.sites[e[2]]
            assert ev.tok_scope[e[3]] == site[2], (name, site)
    exits = {e[2] for e in ev.events if e[0] == EXIT}
    module_toks = {t for t, s in ev.tok_scope.items() if ev.scopes[s][5] == 1}
    assert not exits & module_toks, f"{name}: a module instance exited"
    if name not in NO_EXIT_CHECK:
        open_ = set(ev.tok_scope) - exits - module_toks
        never = [ev.scopes[ev.tok_scope[t]] for t in open_]
        assert not open_, f"{name}: scopes never exited: {never}"


def test_skip_file_records_nothing(tmp_path: Path) -> None:
    rc, _out, _err, events = run("inst", CORPUS / "skipfile.py", tmp_path)
    assert rc == 0
    assert not [e for e in events if e[0] in (SITE, BIND)]


def test_imports_option(tmp_path: Path) -> None:
    src = tmp_path / "imp.py"
    src.write_text("import os.path\nimport json as j\nfrom math import pi, tau as t\n"
                   "print(j.dumps(pi))\n")
    plain = run("plain", src, tmp_path)
    inst = run("inst", src, tmp_path, "imports")
    assert inst[:3] == plain[:3]
    ev = Events(inst[3])
    assert "import os@<module>" in ev.binds[1]
    assert "import j@<module>" in ev.binds[2]
    assert {"import pi@<module>", "import t@<module>"} <= ev.binds[3]
    off = Events(run("inst", src, tmp_path)[3])
    assert not off.binds




def test_comprehensions_option(tmp_path: Path) -> None:
    src = tmp_path / "comp.py"
    src.write_text(
        "data = [x * y for x in range(3) for y in (1, 2) if x]\n"
        "print(data, {k: v for k, v in {'a': 1}.items()}, sum(z for z in range(4)))\n"
        "g = (u for u in range(5))\n"
        "print('made'); print(next(g)); del g\n"
    )
    plain = run("plain", src, tmp_path)
    for path_flag in ((), ("libcst",)):
        inst = run("inst", src, tmp_path, "comprehensions", *path_flag)
        assert inst[:3] == plain[:3]
        ev = Events(inst[3])
        assert {"for! x@<listcomp>", "for! y@<listcomp>"} <= ev.binds[1]
        want = {"for! k@<dictcomp>", "for! v@<dictcomp>", "for! z@<genexpr>"}
        assert want <= ev.binds[2]
        assert "for! u@<genexpr>" in ev.binds[3]
        # one instance per comprehension evaluation, COMPREHENSION kind, enter before
        # its binds, exit after them
        comp = {s for s, e in ev.scopes.items() if e[5] == 9}
        assert len(comp) == 4
        order = [e for e in ev.events if e[0] in (ENTER, EXIT, BIND)]
        for tok, scope in ev.tok_scope.items():
            if scope not in comp:
                continue
            at = [k for k, e in enumerate(order) if (e[0] == ENTER and e[3] == tok)
                  or (e[0] == EXIT and e[2] == tok) or (e[0] == BIND and e[3] == tok)]
            assert order[at[0]][0] == ENTER and order[at[-1]][0] == EXIT, ev.scopes[scope]
        # the generator expression enters at its first step, not when created
        g_scope = next(s for s in comp if ev.scopes[s][6] == 3)
        g_tok = next(t for t, s in ev.tok_scope.items() if s == g_scope)
        g_site = next(s for s, e in ev.sites.items() if e[5] == "g")
        k_enter = next(k for k, e in enumerate(ev.events) if e[0] == ENTER and e[3] == g_tok)
        k_bind = next(k for k, e in enumerate(ev.events) if e[0] == BIND and e[2] == g_site)
        assert k_bind < k_enter
    off = Events(run("inst", src, tmp_path)[3])
    assert not [s for s in off.scopes.values() if s[5] == 9]
    assert not off.binds[1] - {"assign data@<module>", "assign! data@<module>"}


@pytest.mark.parametrize("package", ["jinja2", "rich", "click"])
def test_library_modules_instrument_to_code_that_compiles(package: str) -> None:
    """Every module of real libraries instruments to code Python compiles, with and
    without comprehension scopes (issue 17: jinja2's lexer nests a lambda in a
    comprehension's iterable, which was written with a ':=' Python rejects there)."""
    import importlib

    from memscope_instrument.transform import Options, instrument_source

    root = Path(importlib.import_module(package).__file__ or "").parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 5
    for path in files:
        src = path.read_bytes()
        for options in (Options(), Options(comprehensions=True, imports=True)):
            res = instrument_source(src, str(path), package, options)
            compile(res.code, str(path), "exec", dont_inherit=True)


def test_memscope_run_include_jinja2(tmp_path: Path) -> None:
    """``memscope run --include jinja2 --on-error raise`` renders a template exactly as
    plain Python does (issue 17: it ended the program with an InstrumentationError)."""
    prog = tmp_path / "render.py"
    prog.write_text(
        "import jinja2\n"
        "env = jinja2.Environment(loader=jinja2.DictLoader({'t': '{% for x in xs %}"
        "{{ x|upper }}{% if not loop.last %}, {% endif %}{% endfor %} = {{ n * 2 }}'}))\n"
        "print(env.get_template('t').render(xs=['a', 'b'], n=21))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    plain = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True,
                           env=env, cwd=str(tmp_path), timeout=120)
    assert plain.stdout == "A, B = 42\n", plain.stderr
    run_ = subprocess.run(
        [sys.executable, "-m", "memscope", "run", "--include", "jinja2", "--on-error", "raise",
         "--format", "json", str(prog)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert run_.returncode == 0, run_.stderr
    assert run_.stdout == plain.stdout
    assert "could not instrument" not in run_.stderr
