"""Worker threads each building their own data: memscope shows a lane per thread.

memscope run examples/threads_demo.py
"""

import threading


def worker(index: int, results: list[int]) -> None:
    chunk = [index] * (1000 * (index + 1))
    squares = [x * x for x in chunk]
    results[index] = sum(squares)


def main() -> None:
    results = [0] * 4
    threads = [
        threading.Thread(target=worker, args=(i, results), name=f"worker-{i}") for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("sums:", results)


if __name__ == "__main__":
    main()
