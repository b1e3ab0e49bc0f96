"""``python -m wspasync._bench.worker``: one ``--workers`` child process (see runner.py)."""

import sys

from .runner import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
