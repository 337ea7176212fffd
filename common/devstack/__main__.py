"""`python -m common.devstack`: see the `common.devstack` docstring for what it does."""

from common.devstack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
