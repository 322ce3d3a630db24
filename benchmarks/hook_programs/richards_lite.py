"""Object-heavy task scheduling (a small richards-like workload)."""
import os
import sys


class Task:
    def __init__(self, ident, priority, work):
        self.ident = ident
        self.priority = priority
        self.work = work
        self.done = 0

    def step(self, queue):
        amount = min(self.work - self.done, 3)
        self.done += amount
        if self.done < self.work:
            queue.append(self)
        return amount


def schedule(n):
    queue = [Task(i, i % 7, 10 + i % 13) for i in range(n)]
    total = 0
    steps = 0
    while queue:
        task = queue.pop(0) if steps % 5 == 0 else queue.pop()
        total += task.step(queue)
        steps += 1
    return total, steps


if __name__ == "__main__":
    for _ in range(int(os.environ.get("BENCH_LOOPS", "1"))):  # pyperformance-style loops
        print(schedule(int(sys.argv[1]) if len(sys.argv) > 1 else 40000))
