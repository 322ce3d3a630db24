"""The runtime keeps the hot path's contract (``memscope._contract.ModuleHandle``): a
handle has exactly the Protocol's members, each callable with the Protocol's
parameters, so a change on either side without the other fails here."""

from __future__ import annotations

import inspect

from memscope import _contract, _hooks
from memscope.events import module_table


def _handle() -> _contract.ModuleHandle:
    scopes = (("<module>", 1, 1), ("f", 3, 2))
    sites = ((10, 4, 1, "x", 1),)
    return _hooks.register(_hooks.HOOKS_VERSION, "contract.py", "contract",
                           *module_table(scopes, sites))


def _members() -> dict[str, object]:
    proto = _contract.ModuleHandle
    names = set(proto.__annotations__) | {
        n for n, v in vars(proto).items() if inspect.isfunction(v) and not n.startswith("_")}
    return {n: getattr(proto, n, None) for n in names}


def test_a_handle_is_a_module_handle() -> None:
    h = _handle()
    h.m = h.enter(0, -1)  # as the prologue sets it
    assert isinstance(h, _contract.ModuleHandle)


def test_a_handle_has_exactly_the_contracts_members() -> None:
    h = _handle()
    h.m = None
    public = {n for n in vars(h) if not n.startswith("__")}
    assert public == set(_members())


def test_every_entry_point_takes_the_contracts_parameters() -> None:
    h = _handle()
    for name, spec in _members().items():
        if not inspect.isfunction(spec):
            continue
        want = [(p.name, p.kind) for p in inspect.signature(spec).parameters.values()][1:]
        got = [(p.name, p.kind) for p in inspect.signature(getattr(h, name)).parameters.values()]
        assert got == want, name
