"""``python -m wspasync._bench bench|doctor ...``: the same commands as ``wspasync bench``."""

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
