"""The tasks behind the commands: each module turns validated settings into images on disk."""
