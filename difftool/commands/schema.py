"""`difftool schema`: the JSON Schema of a job spec, what the PNG chunk, `--json` lines, the server and `batch`
all speak."""

from __future__ import annotations

import json

from difftool import console
from difftool.commands.common import guarded


@guarded
def schema() -> None:
    """Print the JSON Schema of a job spec (the `difftool` PNG chunk, --json lines, batch and server jobs)."""
    from difftool import spec

    console.result(json.dumps(spec.schema(), indent=2))
