"""difftool: diffusion images from the shell, a thin layer over HuggingFace diffusers.

From Python: `from difftool import Engine` (see `difftool.engine`), job specs in `difftool.spec`.
"""

from typing import Any

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    """`Engine` on first use: importing difftool stays free of the engine's modules (and of torch, always)."""
    if name == "Engine":
        from difftool.engine import Engine

        return Engine
    raise AttributeError(name)
