"""The instrumented bytecode cache: where it lives, when it is reused, when it is not."""

from __future__ import annotations

import importlib
import os
import stat
import sys
from pathlib import Path

import pytest

import memscope
from memscope_instrument import cache, hook
from tests.hook_helpers import hook_sandbox, unique, write_tree

__all__ = ["hook_sandbox"]

SRC = "def f():\n    value = [1, 2, 3]\n    return value\n"


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every call of the transformer."""
    from memscope_instrument import transform

    calls: list[str] = []
    real = transform.instrument_source

    def spy(source, filename, module="__main__", options=None):  # type: ignore[no-untyped-def]
        calls.append(module)
        return real(source, filename, module, options)

    monkeypatch.setattr(transform, "instrument_source", spy)
    return calls


def _opts(**kw: object) -> object:
    return hook.make_options(**kw)  # type: ignore[arg-type]


def test_cache_name_beside_normal_bytecode(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(SRC)
    digest = hook.cache_digest(_opts(), "m")
    path = cache.cache_path(str(src), digest)
    assert path is not None
    p = Path(path)
    assert p.parent == tmp_path / "__pycache__"
    assert p.name.startswith(f"m.{sys.implementation.cache_tag}.memscope-{memscope.__version__}-")
    assert digest[:16] in p.name and p.name.endswith(".pyc")
    other = hook.cache_digest(_opts(comprehensions=True), "m")
    assert other != digest  # settings that change the output change the name
    assert hook.cache_digest(_opts(), "other") != digest


def test_written_once_then_reused(hook_sandbox: Path, counting: list[str]) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": SRC})
    code1 = hook.load_code(str(hook_sandbox / f"{name}.py"), name, _opts())
    files = list((hook_sandbox / "__pycache__").glob(f"{name}.*.memscope-*.pyc"))
    assert len(files) == 1
    assert not list((hook_sandbox / "__pycache__").glob("*.tmp"))  # atomic: no leftovers
    code2 = hook.load_code(str(hook_sandbox / f"{name}.py"), name, _opts())
    assert counting == [name]  # second load came from the cache
    ns1: dict[str, object] = {}
    ns2: dict[str, object] = {}
    exec(code1, ns1)
    exec(code2, ns2)
    assert ns1["f"]() == ns2["f"]() == [1, 2, 3]  # type: ignore[operator]
    assert code2.co_filename == str(hook_sandbox / f"{name}.py")


def test_import_through_hook_uses_cache(hook_sandbox: Path, counting: list[str]) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    write_tree(hook_sandbox, {f"{name}.py": SRC})
    with hook.install_import_hook([name], start=False):
        importlib.import_module(name)
        del sys.modules[name]
        m = importlib.import_module(name)
    assert counting == [name]
    assert m.f() == [1, 2, 3]
    assert hasattr(m, "_memscope_")


def test_source_change_invalidates(hook_sandbox: Path, counting: list[str]) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    src.write_text(SRC.replace("[1, 2, 3]", "[4, 5]"))  # size changes
    code = hook.load_code(str(src), name, _opts())
    ns: dict[str, object] = {}
    exec(code, ns)
    assert ns["f"]() == [4, 5]  # type: ignore[operator]
    st = src.stat()
    src.write_text(SRC.replace("[1, 2, 3]", "[7, 8]"))  # same size, new mtime
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000))
    code = hook.load_code(str(src), name, _opts())
    exec(code, ns)
    assert ns["f"]() == [7, 8]  # type: ignore[operator]
    assert len(counting) == 3


def test_settings_change_uses_another_file(hook_sandbox: Path, counting: list[str]) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    hook.load_code(str(src), name, _opts(comprehensions=True))
    hook.load_code(str(src), name, _opts())
    hook.load_code(str(src), name, _opts(comprehensions=True))
    assert len(counting) == 2
    assert len(list((hook_sandbox / "__pycache__").glob(f"{name}.*.memscope-*.pyc"))) == 2


def test_memscope_or_python_change_invalidates(
    hook_sandbox: Path, counting: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    monkeypatch.setattr(cache, "_fingerprint", b"x" * 16)  # another memscope build
    hook.load_code(str(src), name, _opts())
    assert len(counting) == 2
    monkeypatch.setattr(cache, "MAGIC_NUMBER", b"\x00\x00\r\n")  # another Python
    assert cache.read(str(src), hook.cache_digest(_opts(), name)) is None


def test_corrupt_cache_is_ignored(hook_sandbox: Path, counting: list[str]) -> None:
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    (f,) = (hook_sandbox / "__pycache__").glob(f"{name}.*.memscope-*.pyc")
    f.write_bytes(f.read_bytes()[:40] + b"garbage")
    code = hook.load_code(str(src), name, _opts())
    ns: dict[str, object] = {}
    exec(code, ns)
    assert ns["f"]() == [1, 2, 3]  # type: ignore[operator]
    assert len(counting) == 2


def test_dont_write_bytecode_is_respected(hook_sandbox: Path) -> None:
    sys.dont_write_bytecode = True
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    assert not (hook_sandbox / "__pycache__").exists()


def test_pycache_prefix_is_respected(
    hook_sandbox: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.dont_write_bytecode = False
    prefix = tmp_path_factory.mktemp("prefix")
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    hook.load_code(str(src), name, _opts())
    assert not (hook_sandbox / "__pycache__").exists()
    found = list(prefix.rglob(f"{name}.*.memscope-*.pyc"))
    assert len(found) == 1
    assert str(found[0]).startswith(str(prefix) + os.sep + str(hook_sandbox).lstrip(os.sep))


def test_read_only_location_is_skipped_silently(
    hook_sandbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing the cache file is refused (read-only folder): the import just works."""
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    (hook_sandbox / "__pycache__").mkdir()
    (hook_sandbox / "__pycache__").chmod(stat.S_IRUSR | stat.S_IXUSR)
    real_open = open

    def deny(path: str, mode: str = "r", *a: object, **k: object) -> object:
        if "w" in mode:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, mode, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(cache, "open", deny, raising=False)
    try:
        code = hook.load_code(str(src), name, _opts())
    finally:
        (hook_sandbox / "__pycache__").chmod(stat.S_IRWXU)
    ns: dict[str, object] = {}
    exec(code, ns)
    assert ns["f"]() == [1, 2, 3]  # type: ignore[operator]
    assert not list((hook_sandbox / "__pycache__").iterdir())


def test_unwritable_location_is_skipped_silently(hook_sandbox: Path) -> None:
    """A cache path that cannot be created (a file where the folder should be)."""
    sys.dont_write_bytecode = False
    name = unique()
    src = hook_sandbox / f"{name}.py"
    src.write_text(SRC)
    (hook_sandbox / "__pycache__").write_text("not a folder")
    code = hook.load_code(str(src), name, _opts())
    ns: dict[str, object] = {}
    exec(code, ns)
    assert ns["f"]() == [1, 2, 3]  # type: ignore[operator]
    assert cache.write(str(src), "d" * 16, code, cache.source_stamp(str(src))) is False


def test_cache_key_covers_every_module_that_shapes_the_output() -> None:
    """Editing any transformer module (splice.py was once left out) must invalidate."""
    import memscope_instrument
    from memscope_instrument import cache, transform

    transform.instrument_source("x = 1\n", "k.py")  # loads the splice path too
    covered = {os.path.realpath(p) for p in cache.fingerprint_files()}
    pkg = os.path.dirname(os.path.realpath(memscope_instrument.__file__))
    loaded = {os.path.realpath(m.__file__) for n, m in list(sys.modules.items())
              if n.startswith("memscope_instrument.") and getattr(m, "__file__", None)
              and os.path.dirname(os.path.realpath(m.__file__)) == pkg}
    assert {"transform.py", "splice.py", "linemap.py", "sites.py", "options.py"} <= {
        os.path.basename(p) for p in loaded}
    assert loaded <= covered


def test_instrumenting_without_a_cache_leaves_libcst_unloaded(tmp_path: Path) -> None:
    """A cold instrumentation (no cache: a first run, or ``PYTHONDONTWRITEBYTECODE``)
    goes the splice path, which does not need libcst: importing it anyway left about
    11 MB resident in the program's process, counted in its memory figures. The
    fallback still finds libcst when a layout needs it."""
    import subprocess

    code = (
        "import sys\n"
        "from memscope_instrument.transform import instrument_source\n"
        "src = 'def f(xs):\\n    total = sum(x for x in xs)\\n    return total\\n'\n"
        "assert instrument_source(src, 'm.py', 'm').changed\n"
        "print('libcst' in sys.modules)\n"
        "from memscope_instrument import cst_exprs\n"
        "print('libcst' in sys.modules, cst_exprs.ExprRewriter.__mro__[1].__name__)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "True", "CSTTransformer"]
