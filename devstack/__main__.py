"""`python -m devstack`: see the `devstack` docstring for what it does."""

from devstack.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
