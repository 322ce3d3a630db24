"""Concurrent asyncio tasks: every binding carries the task it happened in.

memscope run examples/async_demo.py
"""

import asyncio


async def fetch(name: str, size: int) -> int:
    payload = bytearray(size)
    await asyncio.sleep(0.01)
    parsed = [payload[i : i + 64] for i in range(0, size, 64)]
    await asyncio.sleep(0.01)
    return len(parsed)


async def main() -> None:
    tasks = [
        asyncio.create_task(fetch(f"job-{i}", 4096 * (i + 1)), name=f"job-{i}") for i in range(3)
    ]
    chunks = await asyncio.gather(*tasks)
    print("chunks:", chunks)


if __name__ == "__main__":
    asyncio.run(main())
