"""`difftool gen`: text to image."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from difftool.commands.common import guarded
from difftool.commands.groups import GENERATION, HIRES, Flags, uses
from difftool.errors import UsageError


@guarded
@uses(GENERATION + HIRES)
def gen(
    prompts: Annotated[Optional[list[str]], typer.Argument(
        help="Prompts; `-` reads prompts from stdin, one per line (optional with --from).", show_default=False)] = None,
    *,
    flags: Flags,
) -> None:
    """Make images from text prompts (one PNG path per line on stdout)."""
    from difftool.commands.invocation import Invocation
    from difftool.outputs import DEFAULT_TEMPLATE, TEMPLATE_FIELDS

    run = Invocation("gen", flags)
    stored = run.fields.pop("prompt", None)  # --from: the image's prompt, when none is typed
    texts = run.lines(prompts, "prompts") if prompts else [stored] if stored is not None else []
    if not texts:
        raise UsageError("No prompts given (pass PROMPT..., `-` for stdin, or --from IMAGE).")
    specs = [run.spec(prompt=text) for text in texts]
    plan = run.plan(sum(s.num_images for s in specs), DEFAULT_TEMPLATE, TEMPLATE_FIELDS)
    run.execute(specs, plan)
