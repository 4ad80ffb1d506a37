"""Benchmark 7: failure modes measured over real sockets.

7a. ``tweetgen generate --timeout T --max-retries 0`` against a server that trickles one byte every
    0.5 s: the wall time of the whole command, as a ratio to T (before the bound, httpx's per-read
    timeout let it run 623 s).
7b. A degraded service (20 % random 503s) with the default settings: the share of calls that succeed
    for one caller, 50 threads of ``generate_tweet`` and a 500-row batch; next to the amplification
    of a total outage with the defaults and with the breaker and budget turned off. Real sockets
    (the sandbox), virtual waits.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import Config, Sample, Section, Table, Target

from tweetgen import TweetGenerator
from tweetgen.api import close_cached, generate_tweet
from tweetgen.batch import prepared_rows, run_batch
from tweetgen.config import load_settings
from tweetgen.errors import TweetGenError
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.resilience import RetryBudget
from tweetgen.retry import RetryPolicy
from tweetgen.sandbox import FaultScript, SandboxServer
from tweetgen.store import Store

SETTINGS = load_settings(env={}, dotenv_path=None)
TRICKLE_INTERVAL = 0.5
RATE = 0.2


class _Trickle:
    """Accepts, reads the request, promises a long body and sends one byte every
    ``TRICKLE_INTERVAL`` s."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n"
                )
                while not self.closed.wait(TRICKLE_INTERVAL):
                    conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def _generate(url: str, timeout: float) -> tuple[float, int]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "TWEETGEN_"))
    }
    env.update(GEMINI_BASE_URL=url, GEMINI_API_KEY="bench-key")
    command = [
        sys.executable,
        "-m",
        "tweetgen",
        "generate",
        "--topic",
        "AI",
        "--provider",
        "gemini",
    ]
    command += ["--timeout", f"{timeout:g}", "--max-retries", "0", "--log-file", "", "-q"]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, timeout=timeout * 10 + 60)  # noqa: S603 - our CLI
    return time.perf_counter() - started, result.returncode


def trickle(rounds: int, timeout: float) -> tuple[Sample, Sample, set[int]]:
    """Wall seconds against the trickle and against an instant sandbox (the same command), and the
    exit codes."""
    slow, fast, codes = [], [], set()
    server = _Trickle()
    try:
        with SandboxServer() as sandbox:
            for _ in range(rounds):
                seconds, code = _generate(server.url, timeout)
                slow.append(seconds)
                codes.add(code)
                fast.append(_generate(sandbox.url, timeout)[0])
    finally:
        server.close()
    return Sample(tuple(slow)), Sample(tuple(fast)), codes


class _Fake:
    """Virtual time: sleeps advance it at once."""

    def __init__(self) -> None:
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.now += seconds


def _degraded(seed: int) -> SandboxServer:
    server = SandboxServer()
    server.faults = FaultScript(error_rate=RATE, seed=seed)
    return server


def _generator(url: str, fake: _Fake, **options: Any) -> TweetGenerator:
    provider = GeminiProvider(
        api_key="k", model="m", base_url=url, name="sandbox", secret_key=False
    )
    return TweetGenerator(
        provider=provider,
        settings=SETTINGS,
        policy=RetryPolicy.from_retries(3, jitter=options.pop("jitter", "none")),
        sleep=fake.sleep,
        async_sleep=fake.asleep,
        **options,
    )


def one_caller(seed: int, calls: int = 300) -> float:
    fake, ok = _Fake(), 0
    with _degraded(seed) as server, _generator(server.url, fake) as generator:
        for i in range(calls):
            try:
                generator.generate(f"topic {i}")
                ok += 1
            except TweetGenError:
                pass
    return ok / calls


def threads(seed: int) -> float:
    fake = _Fake()

    def caller(index: int) -> int:
        done = 0
        for j in range(10):
            try:
                generate_tweet(
                    f"topic {index}-{j}", api_key="k", base_url=server.url, sleep=fake.sleep
                )
                done += 1
            except TweetGenError:
                pass
        return done

    try:
        with _degraded(seed) as server, ThreadPoolExecutor(max_workers=50) as pool:
            return sum(pool.map(caller, range(50))) / 500
    finally:
        close_cached()


def batch(seed: int, rows: int = 500) -> float:
    fake = _Fake()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.txt"
        source.write_text("".join(f"topic number {i}\n" for i in range(rows)))
        with Store(Path(tmp) / "t.db") as store, _degraded(seed) as server:
            generator = _generator(
                server.url,
                fake,
                jitter="full",
                retry_budget=RetryBudget(ratio=0.2),
                observers=[store.observer()],
            )

            async def go() -> Any:
                try:
                    keyed = prepared_rows(source, None, {"provider": "sandbox", "model": "m"})
                    return await run_batch(keyed, generator, store, batch_id="b", concurrency=50)
                finally:
                    await generator.aclose()

            return float(asyncio.run(go()).ok) / rows


def outage(guards: bool, callers: int = 50, waves: int = 4) -> float:
    """Requests the server saw per call during a total outage, callers arriving in waves of
    ``callers``."""
    fake = _Fake()
    options: dict[str, Any] = {} if guards else {"circuit_breaker": False, "retry_budget": False}
    with SandboxServer(faults="503*100000") as server:
        generator = _generator(server.url, fake, **options)

        async def go() -> None:
            try:
                for wave in range(waves):
                    calls = [generator.agenerate(f"topic {wave}-{i}") for i in range(callers)]
                    await asyncio.gather(*calls, return_exceptions=True)
            finally:
                await generator.aclose()

        asyncio.run(go())
        return len(server.requests) / (callers * waves)


def run(config: Config) -> Section:
    """Benchmark 7 as a report section."""
    rounds, timeout = (1, 1.0) if config.quick else (3, 5.0)
    slow, fast, codes = trickle(rounds, timeout)
    seeds = range(1 if config.quick else 3)
    rates = {
        "1 caller, 300 calls": Sample(tuple(one_caller(s) for s in seeds)),
        "50 threads x 10 generate_tweet": Sample(tuple(threads(s) for s in seeds)),
        "batch, 500 rows, concurrency 50": Sample(tuple(batch(s) for s in seeds)),
    }
    with_guards, without = outage(True), outage(False)
    worst = min(sample.median for sample in rates.values())
    trickle_table = Table(
        f"7a. tweetgen generate --timeout {timeout:g} --max-retries 0 against a server sending a "
        f"byte every {TRICKLE_INTERVAL:g} s",
        ("server", "wall time of the command", "ratio to --timeout"),
        [
            ("trickle", slow.show(unit=" s"), f"{slow.median / timeout:.2f}x"),
            ("instant sandbox (baseline)", fast.show(unit=" s"), f"{fast.median / timeout:.2f}x"),
        ],
    )
    rate_table = Table(
        f"7b. Default settings, max_retries=3: share of calls that succeed with {RATE:.0%} random "
        "503s, and a total outage",
        ("scenario", "succeeded", "requests per call"),
        [
            *(
                (name, sample.show(scale=100, unit=" %", digits=1), "")
                for name, sample in rates.items()
            ),
            ("total outage, 4 waves of 50, defaults", "0 %", f"{with_guards:.2f}x"),
            ("total outage, breaker and budget off", "0 %", f"{without:.2f}x"),
        ],
    )
    return Section(
        title="7. Failure modes over real sockets",
        method=(
            "7a runs the CLI in a child process against a local server that promises a "
            f"100,000-byte body and sends one byte every {TRICKLE_INTERVAL:g} s, and, interleaved, "
            f"the same command against the instant sandbox; {rounds} rounds. 7b drives the sandbox "
            f"with seeded random 503s ({len(seeds)} seeds), waits virtual; the outage rows count "
            "the sandbox's requests."
        ),
        tables=[trickle_table, rate_table],
        targets=[
            Target(
                "7a. an attempt is bounded by --timeout",
                "the command ends within timeout + 1 s against a trickle",
                f"{slow.median:.2f} s for --timeout {timeout:g} (exit codes {sorted(codes)})",
                slow.median <= timeout + 1 + fast.median,
            ),
            Target(
                "7b. degraded is not down",
                ">= 99 % succeed with 20 % random 503s; a total outage <= 1.2 requests per call",
                f"worst scenario {worst:.1%}; outage {with_guards:.2f}x with the defaults "
                f"({without:.2f}x without)",
                worst >= 0.99 and with_guards <= 1.2,
            ),
        ],
        commands=["python bench/run.py --only failures"],
    )
