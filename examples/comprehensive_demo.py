"""A tour of what memscope sees: big buffers, many small lists, bytes, nested
containers, one object shared under three names, and an index that grows after it
is bound (bound as an empty dict; the censuses see what it grows to).

    memscope run examples/comprehensive_demo.py
"""

from collections import deque


def large_buffer() -> list[int]:
    buffer = [0xDEADBEEF] * 10_000
    return buffer


def many_small_lists() -> int:
    total = 0
    for i in range(50):
        small_vec = [i] * (i + 10)
        total += len(small_vec)
    return total


def boxed_bytes() -> bytes:
    boxed_data = b"\xff" * 1024
    return boxed_data


def nested_containers() -> dict[str, object]:
    config = {
        "servers": [{"host": f"10.0.0.{i}", "ports": list(range(8000, 8010))} for i in range(5)],
        "history": deque(range(200), maxlen=500),
        "flags": {"debug", "trace", "metrics"},
    }
    return config


def shared_object() -> int:
    shared = list(range(1000))
    alias_one = shared
    alias_two = shared
    return len(alias_one) + len(alias_two)


def build_index(n: int) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i in range(n):
        index[f"key{i}"] = [i, i * 2]
    return index


def checksum(index: dict[str, list[int]]) -> int:
    total = 0
    for key, (a, b) in index.items():
        total += len(key) + a + b
    return total


def main() -> None:
    buffer = large_buffer()
    count = many_small_lists()
    blob = boxed_bytes()
    config = nested_containers()
    n = shared_object()
    index = build_index(200_000)
    print(f"index={len(index)} checksum={checksum(index)}")
    print(
        f"buffer={len(buffer)} small={count} blob={len(blob)} servers={len(config['servers'])} "
        f"shared={n}"
    )


if __name__ == "__main__":
    main()
