"""``python -m zarrchive demo [PATH]`` runs the README's main job."""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] != "demo":
        print("usage: python -m zarrchive demo [PATH]", file=sys.stderr)
        return 2
    from .demo import main as demo_main

    return demo_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
