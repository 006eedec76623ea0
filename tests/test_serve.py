"""`difftool serve`: a real server process on a free loopback port and a per-user socket in a temporary runtime
folder; the CLI through it (same files as --no-server), the native jobs API, the official `openai` client, the
`webuiapi` client, limits and safety, SIGTERM. Traffic goes only to 127.0.0.1 and the Unix socket."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `check` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Live:
    """The running server: its TCP port, runtime folder (the per-user socket), process and log."""

    port: int
    runtime: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket(self) -> Path:
        return self.runtime / "difftool" / "server.sock"

    def call(self, method: str, path: str, body: Any = None, token: str | None = TOKEN,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        sent = {"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {}),
                **(headers or {})}
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/jobs/{job_id}")[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd: Path, k22: Path) -> Iterator[Live]:
    """One server for the module (started once, always stopped): tiny, tiny_sd and the tiny Kandinsky 2.2."""
    runtime = tmp_path_factory.mktemp("run")
    runtime.chmod(0o700)
    hf = tmp_path_factory.mktemp("hf")
    log = runtime / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFTOOL_")}
    env.update(XDG_RUNTIME_DIR=str(runtime), DIFFTOOL_THREADS="1", DIFFTOOL_TOKEN=TOKEN, HF_HOME=str(hf),
               HF_HUB_CACHE=str(hf / "hub"), DIFFTOOL_CONFIG=str(runtime / "no-config.toml"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "difftool", "serve", "--port", str(port), "--models",
                                 f"tiny,{tiny_sd},{k22}", "--queue", "1", "--max-steps", "1000",
                                 "--max-body", "0.25"], env=env, stdout=out, stderr=subprocess.STDOUT)
    live = Live(port, runtime, proc, log)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}): {log.read_text()}")
            try:
                return live.call("GET", "/v1/health")[0] == 200
            except OSError:
                return False

        until(up, 120, "the server to answer")
        until(lambda: live.call("GET", "/v1/health")[1]["status"] == "ok", 120, "the models to load")
        yield live
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def client_env(server: Live, monkeypatch: pytest.MonkeyPatch) -> Live:
    """The CLI in this process finds the server through the per-user socket, with the server's thread count."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(server.runtime))
    monkeypatch.setenv("DIFFTOOL_THREADS", "1")
    return server


def png_record(data: bytes) -> dict[str, Any]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return json.loads(im.text["difftool"])


def done_jobs(server: Live) -> int:
    return server.call("GET", "/v1/health")[1]["jobs"]["done"]


# ---- the CLI uses the server by itself ------------------------------------------------------------------

def test_cli_through_server_writes_what_a_local_run_writes(client_env: Live, cli: Any, tiny_sd: Path,
                                                           red: Path, tmp_path: Path) -> None:
    server = client_env
    assert stat.S_IMODE(server.socket.stat().st_mode) == 0o600
    before = done_jobs(server)
    args = ["gen", "a red circle", "-m", str(tiny_sd), "--seed", "5", "--steps", "3", "-n", "2", "--scheduler",
            "euler-a", "--json"]
    remote = cli(*args, "-o", "srv/{prompt}-{seed}.png")
    assert remote.exit_code == 0, remote.stderr
    edit = cli("img2img", str(red), "a blue square", "-m", str(tiny_sd), "--seed", "2", "--steps", "4", "-o", "srv/")
    assert edit.exit_code == 0, edit.stderr
    assert done_jobs(server) == before + 2  # both went through the server
    local = cli(*args, "-o", "loc/{prompt}-{seed}.png", "--no-server")
    local_edit = cli("img2img", str(red), "a blue square", "-m", str(tiny_sd), "--seed", "2", "--steps", "4",
                     "-o", "loc/", "--no-server")
    assert local.exit_code == 0 and local_edit.exit_code == 0
    assert done_jobs(server) == before + 2
    assert edit.stdout == "srv/red-a-blue-square-2.png\n"
    names = sorted(p.name for p in (tmp_path / "srv").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "loc").iterdir()) == [
        "a-red-circle-5.png", "a-red-circle-6.png", "red-a-blue-square-2.png"]
    for name in names:  # same pixels and the same metadata (the img2img source's path and SHA-256): same bytes
        assert (tmp_path / "srv" / name).read_bytes() == (tmp_path / "loc" / name).read_bytes(), name
    lines = [json.loads(line) for line in remote.stdout.splitlines()]
    assert [line.pop("path") for line in lines] == ["srv/a-red-circle-5.png", "srv/a-red-circle-6.png"]
    assert lines == [{k: v for k, v in json.loads(line).items() if k != "path"} for line in local.stdout.splitlines()]
    assert png_record((tmp_path / "srv" / names[2]).read_bytes())["source"] == str(red.resolve())
    assert not list(tmp_path.rglob(".*.tmp"))


def test_cli_passes_over_a_server_it_cannot_use(client_env: Live, cli: Any, tiny_sd: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    other = shutil.copytree(tiny_sd, tmp_path / "other-model")  # not among the server's --models
    r = cli("gen", "a cat", "-m", str(other), "--seed", "1", "--steps", "2", "-o", "a.png")
    assert r.exit_code == 0 and (tmp_path / "a.png").is_file()
    assert r.stderr.count("not using the difftool server") == 1 and "not served here" in r.stderr

    monkeypatch.setenv("DIFFTOOL_SERVER", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    r = cli("gen", "a cat", "-m", str(tiny_sd), "--seed", "1", "--steps", "2", "-o", "b.png")
    assert r.exit_code == 0 and (tmp_path / "b.png").is_file()
    assert r.stderr.count("not using the difftool server") == 1 and "does not answer" in r.stderr

    class Foreign(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps({"difftool": "0.0.1", "api": 1, "status": "ok"}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    foreign = ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DIFFTOOL_SERVER", f"http://127.0.0.1:{foreign.server_address[1]}")
        r = cli("gen", "a cat", "-m", str(tiny_sd), "--seed", "1", "--steps", "2", "-o", "c.png")
    finally:
        foreign.shutdown()
        foreign.server_close()
    assert r.exit_code == 0 and (tmp_path / "c.png").is_file()
    assert r.stderr.count("not using the difftool server") == 1 and "is difftool 0.0.1" in r.stderr
    assert (tmp_path / "b.png").read_bytes() == (tmp_path / "c.png").read_bytes()


def test_cli_errors_from_the_server_keep_their_exit_codes(client_env: Live, cli: Any, tiny_sd: Path) -> None:
    failed = client_env.call("GET", "/v1/health")[1]["jobs"]["failed"]
    r = cli("gen", "a cat", "-m", str(tiny_sd), "--guidance", "3", "--prior-steps", "2", "--steps", "2")
    assert r.exit_code == 2  # the pipeline takes no prior steps: refused by the engine on the server
    assert r.stdout == "" and r.stderr.strip().splitlines()[-1].startswith("error: --prior-steps is not accepted")
    assert client_env.call("GET", "/v1/health")[1]["jobs"]["failed"] == failed + 1


# ---- the native jobs API ----------------------------------------------------------------------------------

def test_jobs_api_refuses_bad_requests_and_keeps_serving(server: Live) -> None:
    cases = [({"prompt": "x", "steps": 0}, 400, "steps"),
             ({"prompt": "x", "task": "img2img", "source": "/etc/passwd"}, 400, "source"),
             ({"prompt": "x", "lora": [{"ref": "/tmp/x.safetensors"}]}, 400, "lora"),
             ({"prompt": "x", "model": "sd15"}, 404, "model"),
             ({"prompt": "x", "width": 4096, "height": 4096}, 400, "width"),
             ({"prompt": "x", "num_images": 9}, 400, "num_images"),
             ({"prompt": "x", "colour": "red"}, 400, "colour")]
    for body, status, param in cases:
        got, answer = server.call("POST", "/v1/jobs", {"model": "tiny", **body})
        assert (got, answer["error"]["param"]) == (status, param), answer
        assert answer["error"]["message"]
    got, answer = server.call("POST", "/v1/jobs", b"{" + b" " * 300_000 + b"}")
    assert got == 413 and "limit" in answer["error"]["message"]
    assert server.call("GET", "/v1/health", token=None)[0] == 401
    assert server.call("GET", "/v1/health", token="wrong-token-123")[0] == 401
    basic = base64.b64encode(f"user:{TOKEN}".encode()).decode()  # A1111 clients send basic auth
    assert server.call("GET", "/v1/health", token=None, headers={"authorization": f"Basic {basic}"})[0] == 200
    assert TOKEN not in server.log.read_text()
    assert server.proc.poll() is None


def test_jobs_progress_cancel_queue_and_disconnect(server: Live) -> None:
    long = {"model": "tiny", "prompt": "a long one", "steps": 1000, "seed": 1}
    status, running = server.call("POST", "/v1/jobs", long)
    assert status == 202 and running["status"] in ("queued", "running")
    job = until(lambda: (lambda j: j if j["status"] == "running" and j["step"] >= 2 else None)(server.job(running["id"])),
                60, "the job to run")
    assert job["total"] == 1000
    status, queued = server.call("POST", "/v1/jobs", {**long, "seed": 2})
    assert status == 202 and queued["position"] == 0
    status, full = server.call("POST", "/v1/jobs", {**long, "seed": 3})
    assert status == 429 and full["error"]["type"] == "rate_limit_error"
    assert server.call("DELETE", f"/v1/jobs/{queued['id']}")[1]["status"] == "cancelled"

    # a client that disconnects cancels its queued job (submitted with ?stream=1: the response is its events)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/v1/jobs?stream=1", body=json.dumps({**long, "seed": 4}),
                 headers={"authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    assert response.status == 200
    first = b""
    while not first.startswith(b"data:"):
        first = response.readline()
    assert json.loads(first[5:]) == {"status": "queued"}
    listed = server.call("GET", "/v1/jobs")[1]["jobs"]
    streamed = next(j for j in listed if j["status"] == "queued")
    conn.close()
    until(lambda: server.job(streamed["id"])["status"] == "cancelled", 30, "the abandoned job to be cancelled")

    server.call("DELETE", f"/v1/jobs/{running['id']}")
    final = until(lambda: (lambda j: j if j["status"] == "cancelled" else None)(server.job(running["id"])), 30,
                  "the running job to stop")
    assert final["step"] < 1000 and final["error"]["code"] == 130

    status, small = server.call("POST", "/v1/jobs", {"model": "tiny", "prompt": "a red circle", "steps": 3, "seed": 7})
    until(lambda: server.job(small["id"])["status"] == "done", 60, "a small job")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/v1/jobs/{small['id']}/events", headers={"authorization": f"Bearer {TOKEN}"})
    text = conn.getresponse().read().decode()
    conn.close()
    kinds = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert kinds[:2] == ["state", "state"] and kinds.count("progress") == 4 and kinds[-3:] == ["image", "state", "end"]
    status, png = server.call("GET", f"/v1/jobs/{small['id']}/images/0.png")
    assert status == 200 and png_record(png)["seed"] == 7


# ---- the OpenAI Images API, with the official client -----------------------------------------------------

def test_openai_client(server: Live, tiny_sd: Path, k22: Path, red: Path, tmp_path: Path) -> None:
    import openai
    from PIL import Image

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["tiny", str(tiny_sd), str(k22)]
    made = client.images.generate(prompt="a red circle", model=str(tiny_sd), n=2, size="64x64",
                                  response_format="b64_json", extra_body={"seed": 5, "steps": 3, "negative_prompt": "blue"})
    records = [png_record(base64.b64decode(d.b64_json)) for d in made.data]
    assert [r["seed"] for r in records] == [5, 6] and records[0]["negative"] == "blue"
    from difftool.engine import Engine

    local = next(iter(Engine(threads=1).run({"model": str(tiny_sd), "prompt": "a red circle", "negative": "blue",
                                             "num_images": 2, "width": 64, "height": 64, "seed": 5, "steps": 3})))
    assert base64.b64decode(made.data[0].b64_json) == local.png()  # the CLI's PNG: pixels and both chunks

    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # OpenAI's convention: transparent = repaint
    mask.save(tmp_path / "mask.png")
    with open(red, "rb") as image, open(tmp_path / "mask.png", "rb") as mask_file:
        inpainted = client.images.edit(image=image, mask=mask_file, prompt="a blue square", model=str(tiny_sd),
                                       extra_body={"seed": 2, "steps": 4})
    with open(red, "rb") as image:
        edited = client.images.edit(image=image, prompt="a blue square", model=str(tiny_sd),
                                    extra_body={"seed": 2, "steps": 4, "strength": 0.5})
    assert png_record(base64.b64decode(inpainted.data[0].b64_json))["task"] == "inpaint"
    assert png_record(base64.b64decode(edited.data[0].b64_json))["strength"] == 0.5
    with open(red, "rb") as image:
        varied = client.images.create_variation(image=image, n=1, size="64x64", extra_body={"seed": 3, "steps": 2, "prior_steps": 2})
    record = png_record(base64.b64decode(varied.data[0].b64_json))
    assert (record["task"], record["model"], record["seed"]) == ("variation", str(k22), 3)
    with pytest.raises(openai.BadRequestError, match="limit of 8"):
        client.images.generate(prompt="x", model="tiny", n=9)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-the-token", max_retries=0).models.list()


# ---- the AUTOMATIC1111 API, with webuiapi ----------------------------------------------------------------

def test_a1111_client_matches_the_cli(server: Live, client_env: Live, cli: Any, tiny_sd: Path, k22: Path, red: Path,
                                      tmp_path: Path) -> None:
    import numpy as np
    import webuiapi
    from PIL import Image

    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port)
    api.session.headers["authorization"] = f"Bearer {TOKEN}"
    assert [m["title"] for m in api.get_sd_models()] == ["tiny", str(tiny_sd), str(k22)]
    assert {"Euler a", "DPM++ 2M", "DDIM"} <= {s["name"] for s in api.get_samplers()}
    checkpoint = {"sd_model_checkpoint": str(tiny_sd)}
    made = api.txt2img(prompt="a red circle", seed=5, steps=3, cfg_scale=7.5, width=64, height=64,
                       sampler_name="DPM++ 2M", scheduler="Karras", override_settings=checkpoint)
    assert made.info["all_seeds"] == [5] and made.info["sampler_name"] == "DPM++ 2M Karras"
    r = cli("gen", "a red circle", "-m", str(tiny_sd), "--seed", "5", "--steps", "3", "--guidance", "7.5", "-W", "64",
            "-H", "64", "--scheduler", "dpm++2m-karras", "-o", "cli.png", "--no-server")
    assert r.exit_code == 0
    with Image.open(tmp_path / "cli.png") as im:
        assert np.array_equal(np.asarray(made.images[0].convert("RGB")), np.asarray(im.convert("RGB")))
    status, png_info = server.call("POST", "/sdapi/v1/png-info",  # the bytes as made (webuiapi re-encodes them)
                                   {"image": base64.b64encode((tmp_path / "cli.png").read_bytes()).decode()})
    assert status == 200 and png_info["parameters"]["Seed"] == "5"
    assert png_info["parameters"]["Sampler"] == "DPM++ 2M Karras" and png_info["info"].startswith("a red circle")
    edited = api.img2img(images=[Image.open(red)], prompt="a blue square", seed=2, steps=4, denoising_strength=0.5,
                         width=64, height=64, override_settings=checkpoint)
    assert edited.info["denoising_strength"] == 0.5 and edited.images[0].size == (64, 64)
    with pytest.raises(RuntimeError, match="restore_faces"):
        api.txt2img(prompt="x", restore_faces=True, override_settings=checkpoint)

    _, job = server.call("POST", "/v1/jobs", {"model": "tiny", "prompt": "a long one", "steps": 1000, "seed": 1})
    until(lambda: api.get_progress()["state"]["sampling_step"] >= 2, 60, "progress")
    progress = api.get_progress()
    assert progress["state"]["sampling_steps"] == 1000 and 0 < progress["progress"] < 1 and progress["eta_relative"] > 0
    api.interrupt()
    until(lambda: server.job(job["id"])["status"] == "cancelled", 30, "the interrupt")


# ---- safety and lifecycle --------------------------------------------------------------------------------

def test_non_loopback_without_token_refuses_to_start(cli: Any) -> None:
    r = cli("serve", "--host", "0.0.0.0", "--port", "0")
    assert r.exit_code == 2 and "--token" in r.stderr


def test_warm_engine_restores_the_model_scheduler(tiny_sd: Path) -> None:
    """A job after one that swapped the scheduler makes what a fresh process makes."""
    import numpy as np

    from difftool.engine import Engine

    def image(engine: Engine, **fields: Any) -> Any:
        spec = {"model": str(tiny_sd), "prompt": "a cat", "seed": 3, "steps": 3, **fields}
        return np.asarray(next(iter(engine.run(spec))).image)

    warm = Engine(threads=1)
    image(warm, scheduler="euler-karras")
    assert np.array_equal(image(warm), image(Engine(threads=1)))
    assert np.array_equal(image(warm, scheduler="euler"), image(Engine(threads=1), scheduler="euler"))


def test_worker_runs_jobs_in_order_and_unloads_when_idle() -> None:
    """The queue's worker, with a stand-in engine: one job at a time in submission order, failures kept to their
    job, and `--idle-unload` calling engine.unload() once no job came for that long."""
    from types import SimpleNamespace

    from difftool.errors import UsageError
    from difftool.server.jobs import Jobs, Refused

    class Engine:
        def __init__(self) -> None:
            self.ran: list[str] = []
            self.unloads = 0

        def run(self, spec: Any, cancel: Any = None, reporter: Any = None) -> Iterator[Any]:
            self.ran.append(spec.prompt)
            if spec.prompt == "bad":
                raise UsageError("--steps is not accepted.")
            yield SimpleNamespace(record={"seed": 1, "prompt": spec.prompt}, name_fields={}, png=lambda: b"png")

        def loaded(self) -> list[str]:
            return ["model"] if self.unloads == 0 else []

        def unload(self) -> int:
            self.unloads += 1
            return 1

    engine = Engine()
    jobs = Jobs(engine, queue=3, idle_unload=0.3, log=lambda _: None)

    def spec(prompt: str) -> Any:
        return SimpleNamespace(prompt=prompt, task="gen", frames=None, num_images=1)

    queued = [jobs.submit(spec(p)) for p in ("a", "bad", "c")]
    with pytest.raises(Refused):
        jobs.submit(spec("d"))
    jobs.start()
    try:
        until(lambda: all(j.over for j in queued), 10, "the jobs")
        assert engine.ran == ["a", "bad", "c"]
        assert [j.status for j in queued] == ["done", "failed", "done"] and queued[1].error["code"] == 2
        until(lambda: engine.unloads == 1, 10, "the idle unload")
    finally:
        jobs.stop()


def test_sigterm_finishes_the_running_job_then_exits_0(server: Live) -> None:
    """Last test of the module: it stops the server."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/v1/jobs?stream=1&images=1", body=json.dumps(
        {"model": "tiny", "prompt": "the last one", "steps": 150, "seed": 9}), headers={"authorization": f"Bearer {TOKEN}"})
    response = conn.getresponse()
    while b"progress" not in response.readline():
        pass
    server.proc.send_signal(signal.SIGTERM)
    until(lambda: server.call("GET", "/v1/health")[1]["status"] == "draining", 30, "draining")
    assert server.call("POST", "/v1/jobs", {"model": "tiny", "prompt": "too late"})[0] == 503
    events = response.read().decode()
    conn.close()
    assert '"status": "done"' in events and '"png": "' in events
    assert server.proc.wait(60) == 0
    assert not server.socket.exists()
