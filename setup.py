"""The build's only code: memscope's C census walk, its ``__weakref__`` getter and its
death watch (leaks of objects without weak references), optional extensions.

Everything else about the package is in pyproject.toml. ``pip install .`` and
``pip install -e .`` compile ``memscope/_censusc.c`` when a C compiler and the Python
headers are there; without them the build goes on and memscope uses the pure-Python walk
(``memscope.census.ACCELERATED`` is False, ``memscope --version`` says which walk runs),
and full mode watches for the end only of objects whose ``__weakref__`` no one can read
(``memscope._hooks``, ``_watch``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("memscope._censusc", sources=["memscope/_censusc.c"], optional=True),
        Extension("memscope._weakhide", sources=["memscope/_weakhide.c"], optional=True),
        Extension("memscope._deathwatch", sources=["memscope/_deathwatch.c"], optional=True),
        Extension("memscope._hotpath", sources=["memscope/_hotpath.c"], optional=True),
    ],
)
