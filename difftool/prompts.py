"""Prompt weighting, long prompts and clip skip: prompt text -> the text kwargs of a pipeline call.

`prompt_kwargs(pipe, prompt, negative, weighting=, clip_skip=)` is the one entry point. A prompt
without weighting syntax, of at most 75 tokens and without clip skip goes to the pipeline as plain
`prompt`/`negative_prompt`, so its pixels are exactly those of the plain diffusers call. Otherwise
difftool encodes it itself and passes `prompt_embeds`/`negative_prompt_embeds` (+ the pooled ones for
SDXL):

- `a1111` (default): AUTOMATIC1111's syntax and encoding, written here from its documented behaviour:
  `(text)` x1.1, `[text]` /1.1, `(text:1.3)`, nesting multiplies, `\\(` `\\)` `\\[` `\\]` `\\\\` escapes,
  `BREAK` starts a new chunk; long prompts are cut into 75-token chunks (a chunk that fills up moves
  the words after its last comma, within 20 tokens, to the next one, as A1111 does), each chunk encoded
  as its own 77-token sequence and the results concatenated; weights scale each token's embedding and
  the chunk's mean is restored (A1111's "Original" emphasis). The pooled embedding (SDXL) is the first
  chunk's.
- `compel`: the compel library's syntax (`word+`, `word-`, `(words)1.3`, `.blend()`, `.and()`), long
  prompts not truncated.
- `off`: the text goes to the model as typed (diffusers truncates it at 77 tokens).

Clip skip (`clip_skip` = diffusers' value: 1 uses the penultimate CLIP layer) is applied to the prompt
AND the negative prompt, as A1111 and ComfyUI do; diffusers 0.42 applies it to the prompt only, and on
SD 1.x/2.x its own path fails with transformers 5 (`CLIPTextModel` lost `.text_model`), so difftool
computes the embeddings whenever clip skip is set: SD 1.x/2.x take `hidden_states[-(clip_skip + 1)]`
through the final layer norm, SDXL `hidden_states[-(clip_skip + 2)]` (no norm), exactly diffusers'
formulas. A1111's `Clip skip: N` is diffusers' N - 1 on SD 1.x (`clip_skip_from_a1111`).

Pipelines other than SD 1.x/2.x/XL (SD3, Flux, Kandinsky, ...): weighting syntax and long prompts
cannot be honoured; the prompt goes to the model as typed, with one warning on stderr.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from difftool import console
from difftool.errors import UsageError

WEIGHTINGS = ("a1111", "compel", "off")
DEFAULT_WEIGHTING = "a1111"
CHUNK_TOKENS = 75
"""Text tokens per chunk: CLIP's 77 positions less the start and end markers."""
COMMA_BACKTRACK = 20
"""A1111's default `comma_padding_backtrack`: how far back a full chunk looks for a comma to break at."""
ROUND, SQUARE = 1.1, 1 / 1.1

_warned: set[str] = set()


def check_weighting(value: str | None) -> str:
    """Validate `--weighting` before anything heavy is imported (None -> the default)."""
    if value is None:
        return DEFAULT_WEIGHTING
    if value not in WEIGHTINGS:
        raise UsageError(f"Unknown --weighting '{value}'; use {', '.join(WEIGHTINGS)}.")
    return value


def check_clip_skip(value: int | None) -> int | None:
    """`--clip-skip` 0 means none (as A1111's 1 does); negative values are refused."""
    if value is None or value == 0:
        return None
    if value < 0:
        raise UsageError(f"--clip-skip {value} is negative; use 1 for the penultimate CLIP layer, 2 for the one "
                         "before, ...")
    return value


# ---- A1111 syntax ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    """`BREAK`: the next text starts a new 75-token chunk."""


BREAK = Break()
_SYNTAX = re.compile(r"""
    \\[\\()\[\]]                      # an escaped bracket or backslash: the character itself
  | \\                                # a lone backslash: dropped (as A1111 does)
  | \( | \[                           # open a weighted group
  | :\s*(?P<weight>[+-]?[.\d]+)\s*\)  # `:1.3)` closes a round group with that weight
  | \) | \]                           # close a group: x1.1 or /1.1
  | [^\\()\[\]:]+                     # plain text
  | :                                 # a colon that is not a weight
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_a1111(text: str) -> list[tuple[str, float] | Break]:
    """A1111 attention syntax -> [(text, weight)] with `BREAK` markers; adjacent equal weights merged.

    Unclosed groups extend to the end of the prompt; a closing bracket with no open group is kept as
    text; `(text:w)` multiplies with the enclosing groups' weights.
    """
    out: list[list[Any]] = []  # [text, weight] or [BREAK, None]
    rounds: list[int] = []
    squares: list[int] = []

    def scale(start: int, factor: float) -> None:
        for item in out[start:]:
            if item[0] is not BREAK:
                item[1] *= factor

    def add_text(piece: str) -> None:
        for index, part in enumerate(_BREAK.split(piece)):
            if index:
                out.append([BREAK, None])
            if part:
                out.append([part, 1.0])

    for match in _SYNTAX.finditer(text):
        token, weight = match.group(0), match.group("weight")
        if token.startswith("\\"):
            if len(token) > 1:
                out.append([token[1:], 1.0])
        elif token == "(":
            rounds.append(len(out))
        elif token == "[":
            squares.append(len(out))
        elif weight is not None and rounds and _number(weight) is not None:
            scale(rounds.pop(), _number(weight))  # type: ignore[arg-type]
        elif token == ")" and rounds:
            scale(rounds.pop(), ROUND)
        elif token == "]" and squares:
            scale(squares.pop(), SQUARE)
        else:
            add_text(token)
    for start in rounds:
        scale(start, ROUND)
    for start in squares:
        scale(start, SQUARE)
    merged: list[tuple[str, float] | Break] = []
    for item in out:
        if item[0] is BREAK:
            merged.append(BREAK)
        elif merged and isinstance(merged[-1], tuple) and merged[-1][1] == item[1]:
            merged[-1] = (merged[-1][0] + item[0], item[1])
        else:
            merged.append((item[0], item[1]))
    return merged or [("", 1.0)]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # `(a:1.2.3)`: not a number, so not a weight
        return None


def plain_text(parsed: Sequence[tuple[str, float] | Break]) -> str | None:
    """The text of a parse that carries no weights and no BREAK (what the model may see as is), else None."""
    parts = []
    for item in parsed:
        if isinstance(item, Break) or item[1] != 1.0:
            return None
        parts.append(item[0])
    return "".join(parts)


def chunk(parsed: Sequence[tuple[str, float] | Break], tokenize: Callable[[list[str]], list[list[int]]],
          comma: int | None, size: int = CHUNK_TOKENS, backtrack: int = COMMA_BACKTRACK,
          ) -> list[tuple[list[int], list[float]]]:
    """Token ids and weights in chunks of at most `size` (no start/end markers), as A1111 cuts them.

    Each text piece is tokenized on its own. When a chunk is full and the next token is not a comma,
    the tokens after the chunk's last comma move to the next chunk if that comma is within `backtrack`
    tokens of the end; `BREAK` closes the current chunk (even an empty one).
    """
    texts = [item[0] for item in parsed if not isinstance(item, Break)]
    token_lists = iter(tokenize(texts)) if texts else iter(())
    chunks: list[tuple[list[int], list[float]]] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal ids, weights, last_comma
        chunks.append((ids, weights))
        ids, weights, last_comma = [], [], -1

    for item in parsed:
        if isinstance(item, Break):
            close()
            continue
        weight = item[1]
        for token in next(token_lists):
            if len(ids) == size:
                if token != comma and last_comma >= 0 and size - last_comma <= backtrack:
                    cut = last_comma + 1
                    moved = (ids[cut:], weights[cut:])
                    ids, weights = ids[:cut], weights[:cut]
                    close()
                    ids, weights = moved
                else:
                    close()
            if token == comma:
                last_comma = len(ids)
            ids.append(token)
            weights.append(weight)
    if ids or not chunks:
        close()
    return chunks


# ---- which pipelines difftool encodes for ---------------------------------------------------------------

def family(pipe: Any) -> str | None:
    """"sd" (SD 1.x/2.x and pipelines built like them: one CLIP text encoder), "sdxl" (two CLIP encoders, pooled
    embeddings), or None: pipelines difftool does not encode for (SD3 and Flux have T5 too, Kandinsky no CLIP text)."""
    params = _params(pipe)
    components = getattr(pipe, "components", None) or {}
    if "prompt_embeds" not in params or any(name.endswith("_3") for name in components):
        return None
    te, te2 = getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None)
    tok, tok2 = getattr(pipe, "tokenizer", None), getattr(pipe, "tokenizer_2", None)
    encoders = [e for e in (te, te2) if e is not None]
    if not encoders or any(not type(e).__name__.startswith("CLIPTextModel") for e in encoders):
        return None
    if te2 is not None or tok2 is not None:
        return "sdxl" if te2 is not None and tok2 is not None and "pooled_prompt_embeds" in params else None
    return "sd" if tok is not None and te is not None else None


def clip_skip_from_a1111(value: int, kind: str = "sd") -> int | None:
    """A1111/Forge infotext `Clip skip: N` -> diffusers' (and difftool's) clip_skip.

    SD 1.x: N - 1 (A1111 takes hidden state -N through the final layer norm; diffusers -(k+1)).
    SDXL: N - 2 (its default already is the penultimate layer: Forge and ComfyUI read 2 as the default,
    and A1111 itself ignores the setting on SDXL and SD 2.x). `kind` is `family(pipe)`, or "sd2"/"sdxl"
    from the model name. Values <= the default give None.
    """
    if kind == "sd2":
        return None
    skip = value - (2 if kind == "sdxl" else 1)
    return skip if skip > 0 else None


def clip_skip_to_a1111(clip_skip: int | None, pipeline_class: str = "") -> int | None:
    """difftool's clip_skip -> the `Clip skip` A1111 writes (None when it would be the default)."""
    if not clip_skip:
        return None
    return clip_skip + (2 if "XL" in pipeline_class else 1)


# ---- the entry point ------------------------------------------------------------------------------------

def prompt_kwargs(pipe: Any, prompt: str, negative: str | None, *, weighting: str = DEFAULT_WEIGHTING,
                  clip_skip: int | None = None) -> dict[str, Any]:
    """The text kwargs of one pipeline call for `prompt` and `negative` (None = no negative prompt).

    Plain `prompt`/`negative_prompt` when there is nothing to do (no weighting syntax, <= 75 tokens, no
    clip skip): identical pixels to plain diffusers. Otherwise `prompt_embeds`/`negative_prompt_embeds`
    (+ `pooled_prompt_embeds`/`negative_pooled_prompt_embeds` for SDXL). `clip_skip` is diffusers' value.
    """
    weighting = check_weighting(weighting)
    clip_skip = check_clip_skip(clip_skip)
    kind = family(pipe)
    params = _params(pipe)
    if kind is None:
        return _unsupported(pipe, prompt, negative, weighting, clip_skip, params)
    if weighting == "compel":
        parsed_ok = _compel_plain(prompt) and (negative is None or _compel_plain(negative))
        if parsed_ok and clip_skip is None and _fits(pipe, [prompt] + ([negative] if negative else [])):
            return _plain(prompt, negative, params)
        return _compel_kwargs(pipe, kind, prompt, negative, clip_skip, params)
    if weighting == "off":
        pos: list[tuple[str, float] | Break] = [(prompt, 1.0)]
        neg: list[tuple[str, float] | Break] | None = [(negative, 1.0)] if negative is not None else None
        if clip_skip is None:
            return _plain(prompt, negative, params)
        return _a1111_kwargs(pipe, kind, pos, neg, clip_skip, params, truncate=True)
    pos = parse_a1111(prompt)
    neg = parse_a1111(negative) if negative is not None else None
    texts = [plain_text(pos)] + ([plain_text(neg)] if neg is not None else [])
    if clip_skip is None and all(t is not None for t in texts) and _fits(pipe, texts):  # type: ignore[arg-type]
        return _plain(texts[0], texts[1] if neg is not None else None, params)  # type: ignore[arg-type]
    return _a1111_kwargs(pipe, kind, pos, neg, clip_skip, params)


def _params(pipe: Any) -> Any:
    return inspect.signature(pipe.__call__).parameters


def _plain(prompt: str, negative: str | None, params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"prompt": prompt}
    if negative is not None:
        out["negative_prompt"] = negative
    return out


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        console.warn(message)


def _tokenizers(pipe: Any) -> list[Any]:
    return [t for t in (getattr(pipe, "tokenizer", None), getattr(pipe, "tokenizer_2", None)) if t is not None]


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


def _fits(pipe: Any, texts: list[str]) -> bool:
    """Whether every text is at most 75 tokens for every tokenizer of the pipeline."""
    return all(_count(tok, text) <= CHUNK_TOKENS for tok in _tokenizers(pipe) for text in texts)


def _has_syntax(text: str) -> bool:
    return plain_text(parse_a1111(text)) != text


def _unsupported(pipe: Any, prompt: str, negative: str | None, weighting: str, clip_skip: int | None,
                 params: Any) -> dict[str, Any]:
    """Pipelines difftool does not encode for: the text as typed; what cannot be honoured is said once."""
    name = type(pipe).__name__
    if weighting != "off":
        texts = [prompt] + ([negative] if negative else [])
        if weighting == "a1111" and any(_has_syntax(t) for t in texts) or weighting == "compel" and \
                not all(_compel_plain(t) for t in texts):
            _warn_once(f"syntax:{name}", f"prompt weighting is not supported for {name}: the prompt goes to the "
                       "model as typed, brackets and weights included (--weighting off silences this).")
    out = _plain(prompt, negative, params)
    if clip_skip is not None:
        if "clip_skip" not in params:
            raise UsageError(f"--clip-skip is not accepted by {name}.")
        out["clip_skip"] = clip_skip  # the pipeline's own clip skip (SD3 and others): diffusers' semantics
    return out


# ---- A1111 encoding -------------------------------------------------------------------------------------

@dataclass
class _Encoder:
    tokenizer: Any
    model: Any
    pooled: bool
    """This encoder gives the pooled embedding (SDXL's second one)."""


def _encoders(pipe: Any, kind: str) -> list[_Encoder]:
    if kind == "sd":
        return [_Encoder(pipe.tokenizer, pipe.text_encoder, False)]
    pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None), False),
             (pipe.tokenizer_2, pipe.text_encoder_2, True)]
    return [_Encoder(t, m, p) for t, m, p in pairs if t is not None and m is not None]


def _hidden(encoder: Any, ids: Any, kind: str, clip_skip: int | None) -> tuple[Any, Any]:
    """(token embeddings, pooled) for one 77-token sequence, the way diffusers' encode_prompt takes them."""
    out = encoder(ids, output_hidden_states=True)
    pooled = getattr(out, "text_embeds", None)
    if kind == "sdxl":
        return out.hidden_states[-((clip_skip or 0) + 2)], pooled
    if clip_skip is None:
        return out.last_hidden_state, pooled
    norm = getattr(encoder, "final_layer_norm", None)
    if norm is None:  # transformers 4.x
        norm = encoder.text_model.final_layer_norm
    return norm(out.hidden_states[-(clip_skip + 1)]), pooled


def _encode(pipe: Any, enc: _Encoder, chunks: list[tuple[list[int], list[float]]], kind: str,
            clip_skip: int | None) -> tuple[Any, Any]:
    """Every chunk as [start] + ids + [end] + padding (77 tokens), encoded, weighted, concatenated."""
    import torch

    tok = enc.tokenizer
    device = pipe._execution_device
    start, end = tok.bos_token_id, tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else end
    parts, pooled = [], None
    for ids, weights in chunks:
        padding = CHUNK_TOKENS - len(ids)
        full = [start, *ids, end] + [pad] * padding
        z, pool = _hidden(enc.model, torch.tensor([full], device=device), kind, clip_skip)
        if pooled is None:
            pooled = pool
        if any(w != 1.0 for w in weights):  # A1111 "Original" emphasis: scale, then restore the mean
            scales = torch.tensor([1.0, *weights, 1.0] + [1.0] * padding, dtype=z.dtype, device=z.device)
            mean = z.mean()
            z = z * scales[None, :, None]
            if mean.abs() > 1e-4 * z.abs().mean():  # an all-zero mean (random test encoders) cannot be restored
                z = z * (mean / z.mean())
        parts.append(z)
    return torch.cat(parts, dim=1), pooled


def _a1111_kwargs(pipe: Any, kind: str, pos: list[tuple[str, float] | Break], neg: list[tuple[str, float] | Break] | None,
                  clip_skip: int | None, params: Any, truncate: bool = False) -> dict[str, Any]:
    import torch

    wants_negative = "negative_prompt_embeds" in params
    zero_negative = neg is None and kind == "sdxl" and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    if neg is None:
        neg = [("", 1.0)]
    encoders = _encoders(pipe, kind)
    embeds: dict[str, list[Any]] = {"pos": [], "neg": []}
    pooled: dict[str, Any] = {}
    with torch.no_grad():
        for enc in encoders:
            tok = enc.tokenizer
            comma = tok.get_vocab().get(",</w>")

            def tokenize(texts: list[str], tok: Any = tok) -> list[list[int]]:
                return [list(x) for x in tok(texts, add_special_tokens=False, truncation=False)["input_ids"]]

            def cut(parsed: list[tuple[str, float] | Break], tokenize: Any = tokenize, comma: Any = comma) -> Any:
                if truncate:  # --weighting off: the text as typed, 75 tokens at most, as diffusers truncates it
                    ids = tokenize([item[0] for item in parsed if not isinstance(item, Break)])[0][:CHUNK_TOKENS]
                    return [(ids, [1.0] * len(ids))]
                return chunk(parsed, tokenize, comma)

            sides = {"pos": cut(pos)}
            if wants_negative and not zero_negative:
                sides["neg"] = cut(neg)
            longest = max(len(c) for c in sides.values())
            for side, chunks in sides.items():
                # the shorter side is padded with empty chunks (A1111's "pad prompt/negative prompt" option),
                # since diffusers concatenates both for classifier-free guidance
                chunks = chunks + [([], [])] * (longest - len(chunks))
                z, pool = _encode(pipe, enc, chunks, kind, clip_skip)
                embeds[side].append(z)
                if enc.pooled:
                    pooled[side] = pool
    dtype = encoders[-1].model.dtype
    device = pipe._execution_device
    out: dict[str, Any] = {"prompt_embeds": torch.cat(embeds["pos"], dim=-1).to(dtype=dtype, device=device)}
    if kind == "sdxl":
        out["pooled_prompt_embeds"] = pooled["pos"].to(dtype=dtype, device=device)
    if wants_negative:
        if zero_negative:  # diffusers' SDXL with no negative prompt (force_zeros_for_empty_prompt)
            out["negative_prompt_embeds"] = torch.zeros_like(out["prompt_embeds"])
            out["negative_pooled_prompt_embeds"] = torch.zeros_like(out["pooled_prompt_embeds"])
        else:
            out["negative_prompt_embeds"] = torch.cat(embeds["neg"], dim=-1).to(dtype=dtype, device=device)
            if kind == "sdxl":
                out["negative_pooled_prompt_embeds"] = pooled["neg"].to(dtype=dtype, device=device)
    return out


# ---- compel ---------------------------------------------------------------------------------------------

def _compel_module() -> Any:
    try:
        import compel
    except ImportError:
        raise UsageError("--weighting compel needs the compel package: pip install 'difftool[compel]' "
                         "(or use --weighting a1111).") from None
    return compel


def _compel_plain(text: str) -> bool:
    """Whether compel reads `text` as itself with weight 1 (then the plain call is identical)."""
    _compel_module()
    from compel import Compel
    from compel.prompt_parser import FlattenedPrompt

    try:
        parsed = Compel.parse_prompt_string(text)
    except Exception:  # compel's parser rejects it: let compel report it when encoding
        return False
    if len(parsed.prompts) != 1 or not isinstance(parsed.prompts[0], FlattenedPrompt):
        return False
    fragments = parsed.prompts[0].children
    if any(getattr(f, "weight", 1.0) != 1.0 or not hasattr(f, "text") for f in fragments):
        return False
    return " ".join(f.text for f in fragments).strip() == text.strip()


def _skipped(encoder: Any, kind: str, clip_skip: int) -> Any:
    """A text encoder whose output hides the last `clip_skip` layers the way compel reads it."""
    import torch

    class ClipSkipped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = encoder

        @property
        def device(self) -> Any:
            return self.inner.device

        @property
        def dtype(self) -> Any:
            return self.inner.dtype

        def forward(self, input_ids: Any, attention_mask: Any = None, output_hidden_states: Any = None,
                    return_dict: bool = True) -> Any:
            out = self.inner(input_ids, attention_mask=attention_mask, output_hidden_states=True, return_dict=True)
            states = out.hidden_states
            if kind == "sdxl":  # compel takes hidden_states[-2]: drop the skipped layers from the end
                out.hidden_states = states[:len(states) - clip_skip]
            else:
                norm = getattr(self.inner, "final_layer_norm", None) or self.inner.text_model.final_layer_norm
                out.last_hidden_state = norm(states[-(clip_skip + 1)])
            return out

    return ClipSkipped()


def _compel_kwargs(pipe: Any, kind: str, prompt: str, negative: str | None, clip_skip: int | None,
                   params: Any) -> dict[str, Any]:
    _compel_module()
    from types import SimpleNamespace

    import torch
    from compel import CompelForSD, CompelForSDXL

    def wrap(encoder: Any) -> Any:
        return _skipped(encoder, kind, clip_skip) if clip_skip and encoder is not None else encoder

    shim = SimpleNamespace(tokenizer=pipe.tokenizer, text_encoder=wrap(pipe.text_encoder),
                           tokenizer_2=getattr(pipe, "tokenizer_2", None),
                           text_encoder_2=wrap(getattr(pipe, "text_encoder_2", None)))
    wants_negative = "negative_prompt_embeds" in params
    zero_negative = negative is None and kind == "sdxl" and bool(getattr(pipe.config, "force_zeros_for_empty_prompt",
                                                                         False))
    neg_text = None if not wants_negative or zero_negative else (negative or "")
    device = str(pipe._execution_device)
    with torch.no_grad():
        if kind == "sdxl":
            if shim.text_encoder is None:
                raise UsageError(f"--weighting compel needs both SDXL text encoders; {type(pipe).__name__} has one.")
            cond = CompelForSDXL(shim, device=device)(prompt, negative_prompt=neg_text)
        else:
            cond = CompelForSD(shim, device=device)(prompt, negative_prompt=neg_text)
    dtype = (getattr(pipe, "text_encoder_2", None) or pipe.text_encoder).dtype
    out: dict[str, Any] = {"prompt_embeds": cond.embeds.to(dtype)}
    if kind == "sdxl":
        out["pooled_prompt_embeds"] = cond.pooled_embeds.to(dtype)
    if wants_negative:
        if zero_negative:
            out["negative_prompt_embeds"] = torch.zeros_like(out["prompt_embeds"])
            out["negative_pooled_prompt_embeds"] = torch.zeros_like(out["pooled_prompt_embeds"])
        else:
            out["negative_prompt_embeds"] = cond.negative_embeds.to(dtype)
            if kind == "sdxl":
                out["negative_pooled_prompt_embeds"] = cond.negative_pooled_embeds.to(dtype)
    return out
