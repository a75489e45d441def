"""``python -m stellate run MODULE:ATTR``: the ``stellate`` command without its script."""

from stellate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m stellate"))
