"""Memory outside the Python heap: numpy arrays, views that keep a base alive, ctypes.

memscope run --mode full examples/numpy_demo.py     (needs numpy)
"""

import ctypes
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("numpy_demo needs numpy: pip install numpy")


def main() -> None:
    matrix = np.zeros((512, 512), dtype=np.float64)  # 2 MiB outside the Python heap
    row_view = matrix[10]  # a view: no copy, keeps matrix's buffer alive
    copy = matrix[:64].copy()
    c_buffer = (ctypes.c_uint8 * 65536)()
    print(
        f"matrix {matrix.nbytes} B, view {row_view.nbytes} B (base shared: "
        f"{row_view.base is matrix}), copy {copy.nbytes} B, ctypes {ctypes.sizeof(c_buffer)} B"
    )


if __name__ == "__main__":
    main()
