"""One module per command (or group of commands); `cli.py` registers them all in one place.

Command functions only parse and validate options (cheaply, before torch is imported) and call a
task module in `difftool.tasks`.
"""
