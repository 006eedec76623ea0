"""difftool: diffusion images from the shell, a thin layer over HuggingFace diffusers."""

__version__ = "0.1.0"
