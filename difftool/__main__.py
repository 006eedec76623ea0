"""`python -m difftool` runs the same app as the `difftool` console script."""

from difftool.cli import main

if __name__ == "__main__":
    main()
