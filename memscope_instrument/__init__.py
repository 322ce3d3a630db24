"""memscope_instrument: the libcst transformer, import-hook machinery and command."""
