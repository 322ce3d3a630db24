"""Where the standard library and installed packages live, without ``sysconfig``.

``sysconfig`` loads the interpreter's build-time variables (~1 ms), and both
``memscope run``'s capture writer and its import hook need these directories at
start-up. They are the directories of ``sysconfig``'s default scheme: the standard
library (``stdlib``, ``platstdlib``) and site-packages (``purelib``, ``platlib``, as
:func:`site.getsitepackages` lists them for the running prefixes).
"""

from __future__ import annotations

import os
import sys


def library_dirs() -> list[str]:
    """The standard library and the site-packages directories, as given (not resolved)."""
    dirs = [os.path.dirname(os.__file__)]  # stdlib (os.py is pure Python, never frozen)
    if os.name == "posix":  # platstdlib, when the platform library dir is another
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        dirs.append(os.path.join(sys.exec_prefix, sys.platlibdir, ver))
    try:
        import site

        dirs.extend(site.getsitepackages())
    except Exception:
        pass
    return list(dict.fromkeys(dirs))
