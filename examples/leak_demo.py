"""Three classic leaks; run in full mode to have them found and their holders named.

memscope run --mode full examples/leak_demo.py
"""

_CACHE: dict[int, "Report"] = {}
_listeners: list[object] = []


class Report:
    def __init__(self, key: int) -> None:
        self.key = key
        self.rows = [bytes(256) for _ in range(16)]

    def on_change(self) -> None:
        pass


def build_report(key: int) -> int:
    report = Report(key)
    _CACHE[key] = report  # leak 1: a module-level cache that never evicts
    return len(report.rows)


def subscribe() -> None:
    listener = Report(-1)
    _listeners.append(listener.on_change)  # leak 2: a bound method keeps its object


def remember(item: object, seen: list[object] = []) -> None:  # noqa: B006
    seen.append(item)  # leak 3: the mutable default argument


def main() -> None:
    for key in range(5):
        build_report(key)
    subscribe()
    for i in range(3):
        remember(bytearray(1024 * (i + 1)))
    print(f"cached {len(_CACHE)} reports, {len(_listeners)} listeners")


if __name__ == "__main__":
    main()
