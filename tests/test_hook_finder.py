"""The import hook's finder: which modules it instruments, install/uninstall, warnings."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from memscope import _hooks
from memscope_instrument import hook
from tests.hook_helpers import hook_sandbox, loader_name, unique, write_tree

__all__ = ["hook_sandbox"]

MOD = """
def work(n):
    data = list(range(n))
    return sum(data)
"""


def _site_names() -> set[str]:
    _hooks.flush()
    return {row[5] for row in _hooks.tables() if row[0] == 2}


def test_named_package_and_submodules_are_instrumented(hook_sandbox: Path) -> None:
    pkg = unique()
    write_tree(hook_sandbox, {f"{pkg}/__init__.py": "", f"{pkg}/sub/__init__.py": "",
                              f"{pkg}/sub/mod.py": MOD, f"{pkg}x/__init__.py": MOD})
    with hook.install_import_hook([pkg], start=False) as h:
        mod = importlib.import_module(f"{pkg}.sub.mod")
        other = importlib.import_module(f"{pkg}x")  # a.bc is not under a.b
    assert mod.work(4) == 6
    assert loader_name(mod) == "InstrumentingLoader"
    assert loader_name(other) == "SourceFileLoader"
    assert f"{pkg}.sub.mod" in h.instrumented
    assert hasattr(mod, "_memscope_")
    assert not hasattr(other, "_memscope_")


def test_dotted_prefix_matches_only_that_subpackage(hook_sandbox: Path) -> None:
    pkg = unique()
    write_tree(hook_sandbox, {f"{pkg}/__init__.py": "", f"{pkg}/a/__init__.py": "",
                              f"{pkg}/a/m.py": MOD, f"{pkg}/b.py": MOD})
    with hook.install_import_hook(f"{pkg}.a", start=False):
        m = importlib.import_module(f"{pkg}.a.m")
        b = importlib.import_module(f"{pkg}.b")
    assert loader_name(m) == "InstrumentingLoader"
    assert loader_name(b) == "SourceFileLoader"


def test_name_matching_rules() -> None:
    assert hook.name_matches("a.b", ["a.b"])
    assert hook.name_matches("a.b.c", ["a.b"])
    assert not hook.name_matches("a.bc", ["a.b"])
    assert not hook.name_matches("a", ["a.b"])
    rule = hook.Rule(packages=("memscope", "pytest", "json"))
    assert rule.wants_name("memscope.tracker") is False  # never memscope itself
    assert rule.wants_name("memscope_instrument.hook") is False
    assert rule.wants_name("json.decoder") is True  # stdlib when named
    everything = hook.Rule(packages=None)
    assert everything.wants_name("anything") is None  # the file decides
    assert everything.wants_file("json", importlib.util.find_spec("json").origin) is False
    assert everything.wants_file("click", importlib.util.find_spec("click").origin) is False


def test_uninstall_and_context_manager(hook_sandbox: Path) -> None:
    pkg = unique()
    write_tree(hook_sandbox, {f"{pkg}/__init__.py": "", f"{pkg}/one.py": MOD,
                              f"{pkg}/two.py": MOD})
    h = hook.install_import_hook([pkg], start=False)
    assert h.installed and hook._finder in sys.meta_path
    one = importlib.import_module(f"{pkg}.one")
    h.uninstall()
    assert not h.installed and hook._finder not in sys.meta_path
    two = importlib.import_module(f"{pkg}.two")
    assert loader_name(one) == "InstrumentingLoader"
    assert loader_name(two) == "SourceFileLoader"
    h.uninstall()  # twice is fine


def test_two_hooks_share_one_finder(hook_sandbox: Path) -> None:
    a, b = unique(), unique()
    write_tree(hook_sandbox, {f"{a}.py": MOD, f"{b}.py": MOD})
    h1 = hook.install_import_hook([a], start=False)
    h2 = hook.install_import_hook([b], start=False, mode="full")
    assert sys.meta_path.count(hook._finder) == 1
    h1.uninstall()
    assert hook._finder in sys.meta_path
    mb = importlib.import_module(b)
    ma = importlib.import_module(a)
    assert loader_name(mb) == "InstrumentingLoader" and loader_name(ma) == "SourceFileLoader"
    assert mb.__spec__.loader.rule.options.mode == "full"
    h2.uninstall()
    assert hook._finder not in sys.meta_path


def test_thread_safe_install(hook_sandbox: Path) -> None:
    handles: list[Any] = []
    names = [unique() for _ in range(16)]
    barrier = threading.Barrier(len(names))

    def go(n: str) -> None:
        barrier.wait()
        handles.append(hook.install_import_hook([n], start=False))

    threads = [threading.Thread(target=go, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.meta_path.count(hook._finder) == 1
    assert sorted(r.packages[0] for r in hook._finder.rules) == sorted(names)
    for h in handles:
        h.uninstall()
    assert not hook._finder.rules and hook._finder not in sys.meta_path


def test_delegates_to_later_finders(hook_sandbox: Path, tmp_path: Path) -> None:
    """A custom finder after ours (like an editable install's redirect) still resolves."""
    pkg = unique()
    elsewhere = tmp_path / "elsewhere"
    write_tree(elsewhere, {f"{pkg}/__init__.py": "", f"{pkg}/core.py": MOD})

    class Redirect(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name == pkg or name.startswith(pkg + "."):
                search = [str(elsewhere)] if name == pkg else path
                return importlib.machinery.PathFinder.find_spec(name, search)
            return None

    redirect = Redirect()
    sys.meta_path.append(redirect)
    try:
        with hook.install_import_hook([pkg], start=False):
            core = importlib.import_module(f"{pkg}.core")
        assert core.__file__.startswith(str(elsewhere))
        assert loader_name(core) == "InstrumentingLoader"
    finally:
        sys.meta_path.remove(redirect)


def test_namespace_package_still_resolves(hook_sandbox: Path) -> None:
    ns = unique()
    write_tree(hook_sandbox, {f"{ns}/part.py": MOD})  # no __init__: a namespace package
    with hook.install_import_hook([ns], start=False):
        part = importlib.import_module(f"{ns}.part")
    assert loader_name(part) == "InstrumentingLoader"
    assert part.work(3) == 3


def test_zip_and_sourceless_modules_load_as_usual(hook_sandbox: Path) -> None:
    zname, bname = unique(), unique()
    zpath = hook_sandbox / "lib.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr(f"{zname}.py", MOD)
    sys.path.insert(0, str(zpath))
    src = hook_sandbox / f"{bname}.py"
    src.write_text(MOD)
    import py_compile

    py_compile.compile(str(src), cfile=str(hook_sandbox / f"{bname}.pyc"))
    src.unlink()
    with hook.install_import_hook([zname, bname], start=False):
        zm = importlib.import_module(zname)
        bm = importlib.import_module(bname)
    assert type(zm.__loader__).__name__ == "zipimporter"
    assert loader_name(bm) == "SourcelessFileLoader"
    assert zm.work(3) == bm.work(3) == 3


def test_extension_and_stdlib_modules_untouched(hook_sandbox: Path) -> None:
    for m in ("_csv", "csv", "colorsys"):
        sys.modules.pop(m, None)
    with hook.install_import_hook(None, start=False):  # instrument_all-like
        colorsys = importlib.import_module("colorsys")
        csvmod = importlib.import_module("_csv")
    assert loader_name(colorsys) == "SourceFileLoader"
    assert type(csvmod.__loader__).__name__ in ("ExtensionFileLoader", "BuiltinImporter", "type")


def test_instrument_all_takes_user_code_not_site_packages(hook_sandbox: Path) -> None:
    mine = unique()
    write_tree(hook_sandbox, {f"{mine}.py": MOD})
    for m in [m for m in sys.modules if m == "colorlog" or m.startswith("colorlog.")]:
        del sys.modules[m]
    with hook.instrument_all(start=False):
        m = importlib.import_module(mine)
        try:
            third = importlib.import_module("colorlog")
        except ImportError:
            third = None
    assert loader_name(m) == "InstrumentingLoader"
    if third is not None:
        assert loader_name(third) == "SourceFileLoader"


def test_site_packages_instrumented_only_when_named(hook_sandbox: Path) -> None:
    for m in [m for m in sys.modules if m == "humanize" or m.startswith("humanize.")]:
        del sys.modules[m]
    with hook.install_import_hook(["humanize"], start=False):
        humanize = importlib.import_module("humanize")
    assert "site-packages" in humanize.__file__
    assert loader_name(humanize) == "InstrumentingLoader"
    assert humanize.naturalsize(3000) == "3.0 kB"


def test_excluded_package_is_not_instrumented(hook_sandbox: Path) -> None:
    pkg = unique()
    write_tree(hook_sandbox, {f"{pkg}/__init__.py": "", f"{pkg}/keep.py": MOD,
                              f"{pkg}/skip.py": MOD})
    with hook.install_import_hook([pkg], exclude=[f"{pkg}.skip"], start=False):
        keep = importlib.import_module(f"{pkg}.keep")
        skip = importlib.import_module(f"{pkg}.skip")
    assert loader_name(keep) == "InstrumentingLoader"
    assert loader_name(skip) == "SourceFileLoader"


def test_warns_once_for_already_imported_package(hook_sandbox: Path) -> None:
    pkg = unique()
    write_tree(hook_sandbox, {f"{pkg}/__init__.py": "", f"{pkg}/later.py": MOD})
    importlib.import_module(pkg)
    with pytest.warns(UserWarning, match=f"'{pkg}' was already imported") as rec:
        h1 = hook.install_import_hook([pkg], start=False)
    assert rec[0].filename == __file__  # points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h2 = hook.install_import_hook([pkg], start=False)  # not again
    later = importlib.import_module(f"{pkg}.later")
    assert loader_name(later) == "InstrumentingLoader"
    h1.uninstall()
    h2.uninstall()


def test_instrument_this_package_from_a_script_is_a_helpful_error(tmp_path: Path) -> None:
    from tests.hook_helpers import PY, clean_env, run

    script = tmp_path / "script.py"
    script.write_text("import memscope\nmemscope.instrument_this_package()\n")
    res = run([PY, str(script)], tmp_path, env=clean_env(MEMSCOPE_CAPTURE="0"))
    assert res.returncode == 1
    assert "RuntimeError: instrument_this_package() was called from" in res.stderr
    assert "not part of a package" in res.stderr and "memscope run" in res.stderr


def test_instrument_this_package_from_a_package(tmp_path: Path) -> None:
    from tests.hook_helpers import PY, clean_env, run

    pkg = unique()
    write_tree(tmp_path, {
        f"{pkg}/__init__.py": "import memscope\n_h = memscope.instrument_this_package()\n"
                              "from . import inner\n",
        f"{pkg}/inner.py": MOD,
    })
    code = (f"import warnings; warnings.simplefilter('error'); import {pkg}\n"
            f"print(type({pkg}.inner.__loader__).__name__, {pkg}._h.packages)")
    res = run([PY, "-c", code], tmp_path, env=clean_env(MEMSCOPE_CAPTURE="0"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["InstrumentingLoader", f"('{pkg}',)"]


def test_records_sites_of_instrumented_module(hook_sandbox: Path) -> None:
    name = unique()
    src = "def f():\n    zebra_var = [1] * 10\n    return zebra_var\n"
    write_tree(hook_sandbox, {f"{name}.py": src})
    with hook.install_import_hook([name], start=False):
        m = importlib.import_module(name)
    assert m.f() == [1] * 10
    assert "zebra_var" in _site_names()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="on_error"):
        hook.install_import_hook(["x"], on_error="ignore", start=False)
    with pytest.raises(ValueError, match="mode"):
        hook.install_import_hook(["x"], mode="turbo", start=False)
    with pytest.raises(ValueError, match="non-empty"):
        hook.install_import_hook([""], start=False)
