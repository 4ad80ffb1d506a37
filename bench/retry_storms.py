"""Benchmark 6: retry storms on a virtual clock (no real sleeping) with tweetgen's own backoff,
budget and breaker.

Contention: C clients each need one request to succeed and retry until it does, waiting
``tweetgen.retry.backoff_delay(RetryPolicy(jitter=...), ...)`` between attempts. Two servers:

* capacity K: a request arriving while K requests are in service is rejected at once (overload);
* Brooker's OCC row (his simulator's rules): read the row's version, write it back; the write fails
  if another client wrote in between. Network delays |N(10 ms, 2 ms)| each way, base 5 ms, cap 2 s,
  as his.

Outage: requests arrive (Poisson) at a server that fails everything; the default policy retries each
up to 3 times unless tweetgen's RetryBudget (and CircuitBreaker) say no.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass

from _common import Config, Sample, Section, Table, Target

from tweetgen.errors import CircuitOpenError
from tweetgen.resilience import CircuitBreaker, RetryBudget
from tweetgen.retry import RetryPolicy, backoff_delay

__all__ = ["run"]

JITTERS = ("none", "equal", "full", "decorrelated")
#: Brooker's rerun of his simulator, 100 clients (shared/docs/resilience-anchors.md): calls /
#: completion time
BROOKER = {
    "none": "1,853 / 62.9 s",
    "equal": "813 / 6.7 s",
    "full": "795 / 4.9 s",
    "decorrelated": "1,007 / 4.6 s",
}
CLIENTS = 100
CAPACITIES = (10, 1)
SERVICE = 0.010
NETWORK = (0.010, 0.002)
BASE, CAP = 0.005, 2.0
OUTAGE_RATE, OUTAGE_SECONDS = 10.0, 60.0


class _Clock:
    """Virtual time: the simulation sets ``now``; tweetgen's budget and breaker read it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _policy(jitter: str) -> RetryPolicy:
    """Brooker's schedule (base 5 ms, cap 2 s) with attempts enough for every client to finish."""
    return RetryPolicy(max_attempts=100_000, base_delay=BASE, max_delay=CAP, jitter=jitter)


def _network(rng: random.Random) -> Callable[[], float]:
    return lambda: abs(rng.normalvariate(*NETWORK))


def capacity_run(jitter: str, seed: int, capacity: int) -> tuple[int, float]:
    """Calls made and virtual seconds until the last client succeeded, against a server of
    ``capacity``."""
    rng, policy = random.Random(seed), _policy(jitter)
    net = _network(rng)
    arrivals: list[tuple[float, int, int, float | None]] = [
        (net(), client, 1, None) for client in range(CLIENTS)
    ]
    heapq.heapify(arrivals)
    in_service: list[float] = []
    calls, finished = 0, 0.0
    while arrivals:
        now, client, attempt, previous = heapq.heappop(arrivals)
        calls += 1
        while in_service and in_service[0] <= now:
            heapq.heappop(in_service)
        if len(in_service) < capacity:
            heapq.heappush(in_service, now + SERVICE)
            finished = max(finished, now + SERVICE + net())
            continue
        delay = backoff_delay(policy, attempt + 1, previous=previous, rng=rng)
        heapq.heappush(arrivals, (now + net() + delay + net(), client, attempt + 1, delay))
    return calls, finished


def occ_run(jitter: str, seed: int) -> tuple[int, float]:
    """Brooker's optimistic-concurrency model: writes (calls) made and virtual seconds until the
    last success."""
    rng, policy = random.Random(seed), _policy(jitter)
    net = _network(rng)
    # (time, client, is_write, attempt, previous delay, version read)
    events: list[tuple[float, int, bool, int, float | None, int]] = [
        (net(), c, False, 1, None, 0) for c in range(CLIENTS)
    ]
    heapq.heapify(events)
    version, writes, now = 0, 0, 0.0
    while events:
        now, client, is_write, attempt, previous, seen = heapq.heappop(events)
        if not is_write:
            heapq.heappush(events, (now + net() + net(), client, True, attempt, previous, version))
            continue
        writes += 1
        if seen == version:
            version += 1
            continue
        delay = backoff_delay(policy, attempt + 1, previous=previous, rng=rng)
        heapq.heappush(events, (now + net() + delay + net(), client, False, attempt + 1, delay, 0))
    return writes, now


@dataclass(frozen=True)
class Contention:
    """Calls and completion times over seeds for one server model and jitter."""

    model: str
    jitter: str
    calls: Sample
    seconds: Sample


def contention(seeds: int) -> list[Contention]:
    """Every model and jitter over ``seeds`` seeds."""
    models: dict[str, Callable[[str, int], tuple[int, float]]] = {
        f"capacity K={k}": functools.partial(capacity_run, capacity=k) for k in CAPACITIES
    }
    models["Brooker's OCC"] = occ_run
    results = []
    for model, simulate in models.items():
        for jitter in JITTERS:
            runs = [simulate(jitter, seed) for seed in range(seeds)]
            calls = Sample(tuple(float(c) for c, _ in runs))
            results.append(Contention(model, jitter, calls, Sample(tuple(t for _, t in runs))))
    return results


@dataclass(frozen=True)
class Scenario:
    """Which of tweetgen's guards the clients use during the outage."""

    name: str
    budget: str  # "none", "shared" (one generator) or "per request" (one-shot clients)
    breaker: bool


SCENARIOS = (
    Scenario("default policy, no budget, no breaker", "none", breaker=False),
    Scenario("RetryBudget shared (one TweetGenerator)", "shared", breaker=False),
    Scenario("RetryBudget per client (one request each)", "per request", breaker=False),
    Scenario(
        "RetryBudget + CircuitBreaker shared (TweetGenerator defaults)", "shared", breaker=True
    ),
)


@dataclass(frozen=True)
class OutageRun:
    """Counts of one outage simulation."""

    requests: int
    sent: int
    denied: int
    refused: int


class _Guards:
    """The budget and breaker of a scenario, on the virtual clock."""

    def __init__(self, scenario: Scenario, clock: _Clock) -> None:
        self.scenario, self.clock = scenario, clock
        self.shared = RetryBudget(clock=clock) if scenario.budget == "shared" else None
        self.own: dict[int, RetryBudget] = {}
        self.breaker = CircuitBreaker(name="sim", clock=clock) if scenario.breaker else None

    def budget(self, request: int) -> RetryBudget | None:
        if self.scenario.budget == "per request":
            return self.own.setdefault(request, RetryBudget(clock=self.clock))
        return self.shared

    def admits(self) -> bool:
        if self.breaker is None:
            return True
        try:
            self.breaker.acquire()
        except CircuitOpenError:
            return False
        return True


def _arrivals(rng: random.Random) -> list[tuple[float, int, int, float | None]]:
    times, now = [], rng.expovariate(OUTAGE_RATE)
    while now < OUTAGE_SECONDS:
        times.append(now)
        now += rng.expovariate(OUTAGE_RATE)
    return [(t, request, 1, None) for request, t in enumerate(times)]


def outage_run(scenario: Scenario, seed: int) -> OutageRun:
    """Every attempt fails; count what reaches the server, what the budget denies, what the breaker
    refuses."""
    rng, clock, policy = random.Random(seed), _Clock(), RetryPolicy()
    guards = _Guards(scenario, clock)
    events = _arrivals(rng)
    requests, sent, denied, refused = len(events), 0, 0, 0
    heapq.heapify(events)
    while events:
        clock.now, request, attempt, previous = heapq.heappop(events)
        if not guards.admits():
            refused += 1
            continue
        budget = guards.budget(request)
        if attempt == 1 and budget is not None:
            budget.record_request()
        sent += 1
        if guards.breaker is not None:
            guards.breaker.record_failure()
        if attempt >= policy.max_attempts or (
            guards.breaker is not None and not guards.breaker.allows()
        ):
            continue
        if budget is not None and not budget.try_spend():
            denied += 1
            continue
        delay = backoff_delay(policy, attempt + 1, previous=previous, rng=rng)
        heapq.heappush(events, (clock.now + delay, request, attempt + 1, delay))
    return OutageRun(requests, sent, denied, refused)


def outage(seeds: int) -> dict[str, list[OutageRun]]:
    """Every scenario over ``seeds`` seeds."""
    return {s.name: [outage_run(s, seed) for seed in range(seeds)] for s in SCENARIOS}


def _contention_table(results: list[Contention]) -> Table:
    rows = []
    for r in results:
        brooker = BROOKER[r.jitter] if r.model == "Brooker's OCC" else ""
        rows.append(
            (
                r.model,
                r.jitter,
                r.calls.show(digits=0),
                f"{r.calls.median / CLIENTS:.2f}",
                r.seconds.show(unit=" s", digits=2),
                brooker,
            )
        )
    headers = (
        "server",
        "jitter",
        "calls: median (IQR, n)",
        "calls per client",
        "done after (virtual)",
        "Brooker's rerun: calls / time",
    )
    return Table(f"Contention: {CLIENTS} clients, one success each", headers, rows)


def _ordering(results: list[Contention], model: str) -> tuple[bool, bool, dict[str, float]]:
    calls = {r.jitter: r.calls.median for r in results if r.model == model}
    return calls["none"] == max(calls.values()), calls["full"] == min(calls.values()), calls


def _ordering_target(results: list[Contention]) -> Target:
    verdicts, held, misses = [], [], []
    for model in dict.fromkeys(r.model for r in results):
        worst, least, calls = _ordering(results, model)
        verdicts.append(
            f"{model}: no jitter worst {'yes' if worst else 'NO'}, full least work "
            f"{'yes' if least else 'NO'}"
        )
        if worst and least:
            held.append(model)
            continue
        fewest = min(calls, key=lambda jitter: calls[jitter])
        misses.append(
            f"{model}: {fewest} jitter made the fewest calls ({calls[fewest]:.0f} vs full "
            f"{calls['full']:.0f}, no jitter {calls['none']:.0f})"
        )
    limits = ""
    if misses:
        limits = (
            "; ".join(misses)
            + f". The ordering holds in {', '.join(held) or 'no model'}: it depends on the server. "
            "When the server sheds only the excess above K, decorrelated jitter's longer first "
            "waits (U(base, 3 x base) against full jitter's U(0, base)) thin the herd sooner."
        )
    return Target(
        "6a. Brooker's ordering",
        "no jitter worst; full jitter least work (median calls)",
        "; ".join(verdicts),
        not misses,
        limits,
    )


def _counts(runs: list[OutageRun], count: Callable[[OutageRun], float]) -> Sample:
    return Sample(tuple(count(r) for r in runs))


def _outage_table(runs: dict[str, list[OutageRun]]) -> Table:
    rows = [
        (
            name,
            _counts(found, lambda r: r.requests).show(digits=0),
            _counts(found, lambda r: r.sent).show(digits=0),
            _counts(found, lambda r: r.sent / r.requests).show(unit="x", digits=2),
            f"{_counts(found, lambda r: r.denied).median:.0f}",
            f"{_counts(found, lambda r: r.refused).median:.0f}",
        )
        for name, found in runs.items()
    ]
    headers = (
        "clients use",
        "requests",
        "attempts sent",
        "amplification",
        "retries denied",
        "refused by breaker",
    )
    title = (
        f"Total outage: Poisson arrivals at {OUTAGE_RATE:g}/s for {OUTAGE_SECONDS:g} s, "
        "default policy (4 attempts)"
    )
    return Table(title, headers, rows)


def _amplification_target(runs: dict[str, list[OutageRun]]) -> Target:
    def median(name: str) -> float:
        return _counts(runs[name], lambda r: r.sent / r.requests).median

    without, shared, own = (median(s.name) for s in SCENARIOS[:3])
    return Target(
        "6b. outage amplification",
        "amplification with and without the retry budget, reported",
        f"{without:.2f}x without, {shared:.2f}x with one shared budget, {own:.2f}x with a budget "
        "per one-shot client",
        None,
    )


def run(config: Config) -> Section:
    """Benchmark 6 as a report section."""
    results = contention(config.storm_seeds)
    runs = outage(config.outage_seeds)
    return Section(
        title="6. Retry storms (simulation, virtual clock)",
        method=(
            "Discrete-event simulation, no sleeping: delays come from "
            f"tweetgen.retry.backoff_delay(RetryPolicy(base_delay={BASE}, max_delay={CAP}, "
            f"jitter=...)); {config.storm_seeds} seeds per row. Capacity model: a request arriving "
            f"while K are in service ({SERVICE * 1e3:.0f} ms each) is rejected. Brooker's OCC "
            "model follows his simulator (aws-samples/aws-arch-backoff-simulator). Network "
            f"|N({NETWORK[0] * 1e3:.0f} ms, {NETWORK[1] * 1e3:.0f} ms)| each way. Outage: "
            f"{config.outage_seeds} seeds; RetryBudget() and CircuitBreaker() with tweetgen's "
            "defaults (10 % + 3 retries per 10 s while fewer than half the attempts succeed; opens "
            "at 50 % failures over 100 calls or after 10 consecutive failures, for 30 s) on the "
            "virtual clock."
        ),
        tables=[_contention_table(results), _outage_table(runs)],
        targets=[_ordering_target(results), _amplification_target(runs)],
        notes=[
            "A retry budget only bounds the traffic it sees: clients that each make one request "
            "keep its reserve of 3 retries each, so the budget helps a process that sends many "
            "requests (a batch, a server), not a crowd of one-shot scripts.",
            "With the circuit breaker, requests during an outage fail fast with CircuitOpenError "
            "instead of reaching the server: fewer attempts than requests.",
        ],
        commands=["(in process) retry_storms.contention(seeds), retry_storms.outage(seeds)"],
    )
