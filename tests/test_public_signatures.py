"""memscope's public entry points show their real keywords (issue 18: they were
``**kwargs: Any``), the same as the hook's they call, and a warning they give points at
the caller's line."""

from __future__ import annotations

import inspect
import warnings

import memscope
from memscope_instrument import hook


def _public(func: object) -> dict[str, inspect.Parameter]:
    params = inspect.signature(func).parameters  # type: ignore[arg-type]
    return {n: p for n, p in params.items() if not n.startswith("_")}


def test_no_public_entry_point_hides_its_keywords() -> None:
    for func in (memscope.install_import_hook, memscope.instrument_all,
                 memscope.instrument_this_package):
        kinds = {p.kind for p in inspect.signature(func).parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, func.__name__


def test_the_wrappers_take_the_hooks_own_keywords_and_defaults() -> None:
    want = _public(hook.install_import_hook)
    got = _public(memscope.install_import_hook)
    assert list(got) == list(want)
    assert {n: p.default for n, p in got.items()} == {n: p.default for n, p in want.items()}
    every = _public(memscope.instrument_all)
    assert set(every) == set(want) - {"packages"}
    this = _public(memscope.instrument_this_package)
    assert set(this) == set(want) - {"packages", "roots"}


def test_the_already_imported_warning_points_at_the_callers_line() -> None:
    hook._warned_imported.discard("json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = memscope.install_import_hook(["json"], start=False)  # json: already imported
    h.uninstall()
    assert caught and "already imported" in str(caught[0].message)
    assert caught[0].filename == __file__
