"""``python -m memscope`` is the ``memscope`` command."""

from memscope.cli import main

if __name__ == "__main__":
    main()
