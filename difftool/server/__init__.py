"""`difftool serve`: one warm engine behind HTTP (FastAPI + uvicorn), on loopback TCP and a per-user Unix socket.

- `policy`: what a request may ask for (limits, the models served, no server-side paths); no web imports, so the
  CLI's client can ask the same questions before it sends anything.
- `jobs`: the job queue and the one worker thread that owns the `Engine`.
- `app`: the FastAPI application, its guard (token, body size) and the native jobs API (`/v1/jobs`).
- `openai_api`, `a1111`: the OpenAI Images API and the AUTOMATIC1111 API subset, both turned into job specs.
- `run`: binding the sockets, signals (SIGTERM drains), and uvicorn.

The CLI side is `difftool.client`. Nothing here is imported by `difftool --help`.
"""
