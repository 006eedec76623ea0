"""`difftool serve` under load, and what a warm server saves a shell script. Loopback only, bounded.

1. N concurrent clients x M requests each to one server (tiny model, 64 px, 2 steps), through the native API
   (`POST /v1/jobs?stream=1&images=1`, what the CLI sends): throughput, p50/p99 latency, every request got its own
   image (the seed and prompt it asked for, in the PNG's metadata), and the server's RSS after 20 and after 200
   requests (within 10%: nothing piles up per request).
2. `difftool gen` warm (the CLI finds the server through the per-user socket) vs cold (`--no-server`), beside
   `difftool --help`, interleaved; with `--sd15` also on the SD 1.5-shaped random-weight model at 256 px, 1 step.

    python bench/serve_load.py [--clients 4] [--requests 50] [--repeats 3] [--threads N] [--sd15]

`--threads N` sets DIFFTOOL_THREADS for the server and every CLI run alike. On 2 shared, busy cores torch's default
of 2 threads makes the tiny model ~50x slower per step (thread-pool contention: tests/conftest.py's
`one_torch_thread`), in the server as in a local run; `--threads 1` measures the rest.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `difftool serve` child on a free loopback port with its own runtime folder (its per-user socket)."""

    def __init__(self, models: list[Path], extra_env: dict[str, str] | None = None) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="difftool-run-"))
        self.runtime.chmod(0o700)
        self.port = free_port()
        self.env = {**common.env(), "XDG_RUNTIME_DIR": str(self.runtime), **(extra_env or {})}
        self.log = open(self.runtime / "server.log", "wb")
        self.proc = subprocess.Popen(common.difftool("serve", "--port", str(self.port), "--models",
                                                     ",".join(map(str, models)), "--queue", "64"),
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {(self.runtime / 'server.log').read_text()[-2000:]}")
            try:
                if self.health()["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not start within 600 s")

    def health(self) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/v1/health")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(30)
        finally:
            self.log.close()


def request(port: int, spec: dict) -> tuple[float, list[dict]]:
    """One job through the native API: (seconds, the records of its images, read from the PNGs themselves)."""
    import base64

    from PIL import Image

    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/v1/jobs?stream=1&images=1", body=json.dumps(spec),
                 headers={"content-type": "application/json"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    records, kind = [], None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "image":
            data = json.loads(line[6:])
            with Image.open(io.BytesIO(base64.b64decode(data["png"]))) as im:
                records.append(json.loads(im.text["difftool"]))
        elif line.startswith("data: ") and kind == "end":
            if json.loads(line[6:])["status"] != "done":
                raise RuntimeError(f"job failed: {line}")
            break
    conn.close()
    return time.perf_counter() - start, records


def load(server: Server, model: Path, clients: int, per_client: int) -> dict:
    """`clients` threads, `per_client` requests each, every one with its own seed; RSS at 20 and 200 done."""
    latencies: list[float] = []
    wrong: list[str] = []
    rss: dict[int, float] = {}
    done = 0
    lock = threading.Lock()
    marks = {20, 200, clients * per_client}

    def client(c: int) -> None:
        nonlocal done
        for r in range(per_client):
            seed, prompt = 1000 * c + r, f"a red square {c}-{r}"
            seconds, records = request(server.port, {"model": str(model), "prompt": prompt, "seed": seed,
                                                     "steps": 2})
            got = [(rec.get("seed"), rec.get("prompt")) for rec in records]
            with lock:
                latencies.append(seconds)
                if got != [(seed, prompt)]:
                    wrong.append(f"asked {seed} {prompt!r}, got {got}")
                done += 1
                if done in marks:
                    rss[done] = server.rss_mib()

    request(server.port, {"model": str(model), "prompt": "warm-up", "seed": 1, "steps": 2})
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    growth = round(rss[200] / rss[20] - 1, 4) if 20 in rss and 200 in rss else None
    return {"clients": clients, "requests": len(latencies), "seconds": round(wall, 2),
            "throughput_per_s": round(len(latencies) / wall, 2), "p50_s": round(statistics.median(ordered), 3),
            "p99_s": round(p99, 3), "wrong_images": wrong, "rss_mib": rss, "rss_growth_20_to_200": growth,
            "rss_within_10pct": growth is not None and abs(growth) <= 0.10}


def warm_cold(server: Server, model: Path, repeats: int, extra: list[str]) -> dict:
    """`difftool gen` through the server (warm) vs --no-server (cold), and `difftool --help`, interleaved."""
    work = common.workdir()
    env = {"XDG_RUNTIME_DIR": str(server.runtime), **{k: v for k, v in server.env.items() if k == "DIFFTOOL_THREADS"}}
    counter = iter(range(10**6))

    def gen(*flags: str) -> dict:
        out = work / f"{next(counter)}.png"
        r = common.run(common.difftool("gen", "a red square", "-m", str(model), "--seed", "1", *extra, "-o",
                                       str(out), "-q", *flags), extra_env=env)
        return r

    before = server.health()["jobs"]["done"]
    res = common.interleaved({"difftool --help": lambda: common.run(common.difftool("--help"), extra_env=env),
                              "difftool gen, warm (server)": gen,
                              "difftool gen, cold (--no-server)": lambda: gen("--no-server")}, repeats)
    served = server.health()["jobs"]["done"] - before
    assert served == repeats, f"{served} of {repeats} warm runs went through the server"
    return res


def main(clients: int = 4, per_client: int = 50, repeats: int = 3, sd15: bool = False,
         threads: int | None = None, tiny_runs: bool = True) -> dict:
    tiny = common.tiny_model()
    out: dict = {"threads": threads}
    extra = {"DIFFTOOL_THREADS": str(threads)} if threads else {}
    if tiny_runs:
        server = Server([tiny], extra)
        try:
            print(f"load: {clients} clients x {per_client} requests (tiny, 64 px, 2 steps)", flush=True)
            out["load"] = load(server, tiny, clients, per_client)
            print(json.dumps(out["load"], indent=1), flush=True)
            print("warm vs cold difftool gen (tiny, 64 px, 2 steps)", flush=True)
            out["tiny"] = warm_cold(server, tiny, repeats, ["--steps", "2"])
        finally:
            out["exit_code"] = server.stop()
    if sd15:
        model = common.sd15_model()
        server = Server([model], extra)
        try:
            print("warm vs cold difftool gen (SD 1.5-shaped, 256 px, 1 step)", flush=True)
            out["sd15"] = warm_cold(server, model, max(1, repeats - 1), ["--steps", "1", "-W", "256", "-H", "256"])
            out["sd15_server_rss_mib"] = server.rss_mib()
        finally:
            server.stop()
    report(out)
    common.save("serve_load" if tiny_runs else "serve_load_sd15", out)
    return out


def report(out: dict) -> None:
    ld = out.get("load")
    if ld:
        print(common.table(["clients x requests", "seconds", "requests/s", "p50 s", "p99 s", "wrong images",
                            "RSS after 20 (MiB)", "after 200", "growth"],
                           [[f"{ld['clients']} x {ld['requests'] // ld['clients']}", ld["seconds"],
                             ld["throughput_per_s"], ld["p50_s"], ld["p99_s"], len(ld["wrong_images"]),
                             ld["rss_mib"].get(20), ld["rss_mib"].get(200), ld["rss_growth_20_to_200"]]]))
    rows = []
    for key, title in (("tiny", "tiny, 64 px, 2 steps"), ("sd15", "SD 1.5-shaped, 256 px, 1 step")):
        if key not in out:
            continue
        res = out[key]
        cold = res["difftool gen, cold (--no-server)"]["seconds"]
        for name, r in res.items():
            rows.append([title, name, r["seconds"], r.get("peak_rss_mib"), common.ratio(r["seconds"], cold)])
    print(common.table(["model", "run", "median s", "client peak RSS MiB", "/ cold"], rows))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=50, help="per client (clients x requests >= 200 for the RSS check)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sd15", action="store_true", help="also warm vs cold on the SD 1.5-shaped model (~4.3 GB)")
    ap.add_argument("--threads", type=int, default=None, help="DIFFTOOL_THREADS for the server and the CLI runs")
    ap.add_argument("--sd15-only", action="store_true", help="skip the tiny model's load and warm/cold runs")
    a = ap.parse_args()
    result = main(a.clients, a.requests, a.repeats, a.sd15 or a.sd15_only, a.threads, tiny_runs=not a.sd15_only)
    sys.exit(0 if result.get("load", {"rss_within_10pct": True})["rss_within_10pct"] else 1)
