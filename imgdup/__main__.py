"""``python -m imgdup`` and the ``imgdup`` command's entry point."""

import sys


def run() -> int:
    """Import the command and run it; Ctrl-C while its modules load (~0.15 s of start-up) ends
    it as Ctrl-C anywhere else does, with a line instead of Python's traceback."""
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:
        print("imgdup: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
