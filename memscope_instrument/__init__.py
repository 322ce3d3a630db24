"""memscope_instrument: the libcst transformer, import-hook machinery and command.

PYTEST_DONT_REWRITE: pytest loads our plugin (``pytest_plugin``) from this distribution
and would rewrite its asserts; under ``memscope run -m pytest`` the package is imported
before pytest starts, and pytest would warn that it cannot. Nothing here relies on
rewritten asserts.
"""
