"""memscope child-process bootstrap (on PYTHONPATH only for processes started by
``memscope run``): start tracking this child, then run the ``sitecustomize`` this
file shadows, if there is one."""

import os
import sys


def _memscope_child() -> None:
    if not os.environ.get("MEMSCOPE_CHILD"):
        return
    try:
        from memscope_instrument import child
    except ImportError:  # another interpreter, without memscope: run untracked
        return
    try:
        child.bootstrap()
    except Exception as exc:  # never stop the child from starting
        sys.stderr.write(f"memscope: could not track child process {os.getpid()}: {exc}\n")


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    me = sys.modules.get("sitecustomize")
    # our folder has done its job: take it off the path so the next one is found
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.modules.pop("sitecustomize", None)
    import importlib

    try:
        importlib.import_module("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        if me is not None:
            sys.modules["sitecustomize"] = me


_memscope_child()
_chain()
