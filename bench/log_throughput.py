"""Log throughput: microseconds per line for obskit against the usual Python JSON loggers.

Every contender writes the same information per call: the five SPEC §3 fields (``timestamp``, ``level``,
``service``, ``trace_id`` (null: no request is active), ``message``) plus three keys given at the call site
(``user_id=42, path="/orders", duration_ms=12.5``), one JSON line each, to the same discarding sink:
``open(os.devnull, "wb")``, flushed after every line.

Contenders:

* ``floor``: ``orjson.dumps(record, option=OPT_APPEND_NEWLINE)`` + ``write`` + ``flush``; the dict is
  built on every call with a fresh ``datetime.now(UTC).isoformat()`` timestamp, as a logger would;
* ``structlog fastest``: structlog's documented fastest configuration (docs, "Performance"):
  ``make_filtering_bound_logger(INFO)``, ``cache_logger_on_first_use=True``, processors
  ``[merge_contextvars, add_log_level, format_exc_info, TimeStamper(fmt="iso", utc=True),
  JSONRenderer(serializer=orjson.dumps)]``, ``BytesLoggerFactory(file=sink)``; ``service`` and ``trace_id``
  bound, and, as those docs advise, the logger is a local ``get_logger().bind(...)``. Its message key is
  ``event``; a second row adds ``EventRenamer("message")`` for the exact field name;
* ``structlog stdlib bridge``: structlog -> ``logging`` -> ``ProcessorFormatter`` (``JSONRenderer()`` with
  the default ``json.dumps``) on a ``logging.StreamHandler``, the way structlog's docs wire it;
* ``python-json-logger``: ``OrjsonFormatter`` and the default ``JsonFormatter`` on a root ``StreamHandler``,
  ``service``/``trace_id`` as ``static_fields``, keys through ``extra=``;
* ``loguru``: ``serialize=True`` with ``service``/``trace_id`` bound (its record is much larger: it
  always serialises file, function, line, process, thread, elapsed, ...);
* ``obskit get_logger()``: ``obskit.configure(service="bench", stream=sink)``; ``log =
  obskit.get_logger()`` used as applications use it (a structlog lazy proxy at module scope), and also
  ``obskit.get_logger().bind()`` (the local concrete logger structlog's docs recommend);
* ``obskit stdlib``: a plain ``logging.getLogger("bench")`` with ``extra={...}``, through obskit's root
  handler (its record also carries ``logger``).

The text-only APIs get the same devnull file: ``logging.StreamHandler`` through an
``io.TextIOWrapper(sink, write_through=True)`` (what ``sys.stdout`` is), loguru through a sink function that
encodes the message and writes + flushes it to the same file.

The configuration of structlog, obskit and logging is process-global, so each contender is set up afresh
right before each of its timed runs. Runs are interleaved: in every round each contender runs ``--n``
calls after a short warm-up, in a shuffled order, and the table reports the median over rounds of the
process's CPU time per line (robust to other processes on a shared machine) beside the wall-clock median. Before any
timing, each contender writes one line into a ``BytesIO`` that is parsed and checked for all eight values,
so nothing measures a no-op.

Run from the repository root::

    python bench/log_throughput.py            # prints the markdown table
    python bench/log_throughput.py --write    # also rewrites the "log throughput" section of bench/README.md
    python bench/log_throughput.py --profile obskit_proxy   # cProfile one contender, top functions
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import logging
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import orjson
from _readme import obskit_rev, write_section

X = "\N{MULTIPLICATION SIGN}"
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
COMMAND = "python bench/log_throughput.py --write"
SECTION = "## log throughput"

MESSAGE = "order placed"
KEYS: dict[str, Any] = {"user_id": 42, "path": "/orders", "duration_ms": 12.5}

# Text wrappers must outlive their use: a collected TextIOWrapper closes the file under it.
_KEEP: list[Any] = []


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    wrapper = io.TextIOWrapper(stream, encoding="utf-8", write_through=True)  # type: ignore[arg-type]
    _KEEP.append(wrapper)
    return wrapper


# The standard library's process-wide switches as the interpreter starts. A library may flip them (for
# instance ``logging._srcfile = None`` to skip ``findCaller``); every non-obskit stdlib contender gets them
# back, so such a change is charged to, or credited to, the library that makes it and no one else.
_LOGGING_SWITCHES = {
    name: getattr(logging, name)
    for name in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks")
    if hasattr(logging, name)
}


def _handler_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A named logger whose records reach ``handler`` on the root logger, as the libraries' docs wire it.

    obskit's handler sits on the root logger too, so every stdlib contender pays the same propagation.
    """
    for attr, value in _LOGGING_SWITCHES.items():
        setattr(logging, attr, value)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    lg = logging.getLogger(name)
    lg.handlers = []
    lg.setLevel(logging.NOTSET)
    lg.propagate = True
    return lg


# -- contenders: setup(stream) -> run(n); all state is rebuilt by setup --------------------------------


def setup_floor(stream: IO[bytes]) -> Any:
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    now = datetime.now
    utc = UTC
    write = stream.write
    flush = stream.flush

    def run(n: int) -> None:
        for _ in range(n):
            record = {
                "timestamp": now(utc).isoformat(),
                "level": "info",
                "service": "bench",
                "trace_id": None,
                "message": MESSAGE,
                "user_id": 42,
                "path": "/orders",
                "duration_ms": 12.5,
            }
            write(dumps(record, option=opt))
            flush()

    return run


def setup_floor_const_ts(stream: IO[bytes]) -> Any:
    """Reference only: the floor without the timestamp, to show what ``datetime.now().isoformat()`` costs."""
    dumps = orjson.dumps
    opt = orjson.OPT_APPEND_NEWLINE
    ts = datetime.now(UTC).isoformat()
    write = stream.write
    flush = stream.flush

    def run(n: int) -> None:
        for _ in range(n):
            record = {
                "timestamp": ts,
                "level": "info",
                "service": "bench",
                "trace_id": None,
                "message": MESSAGE,
                "user_id": 42,
                "path": "/orders",
                "duration_ms": 12.5,
            }
            write(dumps(record, option=opt))
            flush()

    return run


def _structlog_fastest(stream: IO[bytes], *, rename: bool) -> Any:
    import structlog

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if rename:
        processors.append(structlog.processors.EventRenamer("message"))
    processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
    structlog.reset_defaults()
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=processors,
        logger_factory=structlog.BytesLoggerFactory(file=stream),
    )
    log = structlog.get_logger().bind(service="bench", trace_id=None)

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, user_id=42, path="/orders", duration_ms=12.5)

    return run


def setup_structlog_fastest(stream: IO[bytes]) -> Any:
    return _structlog_fastest(stream, rename=False)


def setup_structlog_fastest_renamed(stream: IO[bytes]) -> Any:
    return _structlog_fastest(stream, rename=True)


def setup_structlog_bridge(stream: IO[bytes]) -> Any:
    import structlog

    structlog.reset_defaults()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(_text(stream))
    handler.setFormatter(formatter)
    _handler_logger("bench_bridge", handler)  # structlog's LoggerFactory hands out this stdlib logger
    log = structlog.get_logger("bench_bridge").bind(service="bench", trace_id=None)

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, user_id=42, path="/orders", duration_ms=12.5)

    return run


def _pjl(stream: IO[bytes], name: str, formatter_cls: Any) -> Any:
    formatter = formatter_cls(
        ["levelname", "message"],
        rename_fields={"levelname": "level"},
        static_fields={"service": "bench", "trace_id": None},
        timestamp=True,
    )
    handler = logging.StreamHandler(_text(stream))
    handler.setFormatter(formatter)
    log = _handler_logger(name, handler)
    extra = {"user_id": 42, "path": "/orders", "duration_ms": 12.5}

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, extra=extra)

    return run


def setup_pjl_orjson(stream: IO[bytes]) -> Any:
    from pythonjsonlogger.orjson import OrjsonFormatter

    return _pjl(stream, "bench_pjl_orjson", OrjsonFormatter)


def setup_pjl_json(stream: IO[bytes]) -> Any:
    from pythonjsonlogger.json import JsonFormatter

    return _pjl(stream, "bench_pjl_json", JsonFormatter)


def setup_loguru(stream: IO[bytes]) -> Any:
    from loguru import logger

    write = stream.write
    flush = stream.flush

    def sink(message: str) -> None:  # same devnull file; loguru hands text to its sinks
        write(message.encode("utf-8"))
        flush()

    logger.remove()
    logger.add(sink, serialize=True, level="INFO", format="{message}", backtrace=False, diagnose=False)
    log = logger.bind(service="bench", trace_id=None)

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, user_id=42, path="/orders", duration_ms=12.5)

    return run


def setup_obskit_proxy(stream: IO[bytes]) -> Any:
    import obskit

    obskit.configure(service="bench", stream=stream)
    log = obskit.get_logger()

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, user_id=42, path="/orders", duration_ms=12.5)

    return run


def setup_obskit_bound(stream: IO[bytes]) -> Any:
    import obskit

    obskit.configure(service="bench", stream=stream)
    log = obskit.get_logger().bind()

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, user_id=42, path="/orders", duration_ms=12.5)

    return run


def setup_obskit_stdlib(stream: IO[bytes]) -> Any:
    import obskit

    obskit.configure(service="bench", stream=stream)
    log = logging.getLogger("bench")
    log.handlers = []
    log.setLevel(logging.NOTSET)
    log.propagate = True
    extra = {"user_id": 42, "path": "/orders", "duration_ms": 12.5}

    def run(n: int) -> None:
        for _ in range(n):
            log.info(MESSAGE, extra=extra)

    return run


# key -> (label, setup)
CONTENDERS: dict[str, tuple[str, Any]] = {
    "floor": ("`orjson.dumps` + write + flush (floor)", setup_floor),
    "floor_const_ts": ("(reference) floor with a constant timestamp string", setup_floor_const_ts),
    "structlog_fastest": ("structlog, fastest documented config", setup_structlog_fastest),
    "structlog_fastest_renamed": (
        'structlog, fastest config + `EventRenamer("message")`',
        setup_structlog_fastest_renamed,
    ),
    "structlog_bridge": ("structlog via stdlib `ProcessorFormatter` (usual bridge)", setup_structlog_bridge),
    "pjl_orjson": ("python-json-logger on stdlib, orjson (`OrjsonFormatter`)", setup_pjl_orjson),
    "pjl_json": ("python-json-logger on stdlib, json (`JsonFormatter`)", setup_pjl_json),
    "loguru": ("loguru, `serialize=True`", setup_loguru),
    "obskit_proxy": ("**obskit `get_logger()`** (module-level proxy)", setup_obskit_proxy),
    "obskit_bound": ("obskit `get_logger().bind()` (local logger)", setup_obskit_bound),
    "obskit_stdlib": ("**obskit, plain `logging.getLogger()` + `extra=`**", setup_obskit_stdlib),
}


# -- verification: one real line per contender, all eight values in it ---------------------------------


def _walk(obj: Any, out: dict[str, list[Any]]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.setdefault(k, []).append(v)
            _walk(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, out)


def verify(key: str) -> str:
    """One call into a BytesIO; returns the line, raises if anything of the record is missing."""
    buf = io.BytesIO()
    run = CONTENDERS[key][1](buf)
    run(1)
    data = buf.getvalue()
    if data.count(b"\n") != 1 or not data.endswith(b"\n"):
        raise SystemExit(f"{key}: expected exactly one line, got {data!r}")
    record = orjson.loads(data)
    found: dict[str, list[Any]] = {}
    _walk(record, found)

    def has(names: tuple[str, ...], check: Any) -> bool:
        return any(check(v) for n in names for v in found.get(n, ()))

    problems = [
        label
        for label, ok in [
            ("message", has(("message", "event", "text"), lambda v: isinstance(v, str) and MESSAGE in v)),
            ("timestamp", has(("timestamp", "time"), bool)),
            ("level", has(("level", "name"), lambda v: isinstance(v, str) and v.lower() == "info")),
            ("service", has(("service",), lambda v: v == "bench")),
            ("trace_id", "trace_id" in found),
            *[(k, has((k,), lambda v, want=want: v == want)) for k, want in KEYS.items()],
        ]
        if not ok
    ]
    if problems:
        raise SystemExit(f"{key}: line lacks {', '.join(problems)}: {data!r}")
    return data.decode()


# -- timing ------------------------------------------------------------------------------------------------


def measure(
    keys: list[str], rounds: int, n: int, warmup: int, seed: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """µs per line for each run: (CPU time of this process, wall clock)."""
    sink = open(os.devnull, "wb")  # noqa: PTH123, SIM115 - lives for the whole run, shared by every contender
    rng = random.Random(seed)
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    wall: dict[str, list[float]] = {k: [] for k in keys}
    for k in keys:  # first-use costs (imports, caches) outside the rounds
        CONTENDERS[k][1](sink)(warmup * 4)
    for r in range(rounds):
        order = keys[:]
        rng.shuffle(order)
        for k in order:
            run = CONTENDERS[k][1](sink)
            run(warmup)
            gc.collect()
            c0 = time.process_time_ns()
            t0 = time.perf_counter_ns()
            run(n)
            t1 = time.perf_counter_ns()
            c1 = time.process_time_ns()
            cpu[k].append((c1 - c0) / n / 1000)
            wall[k].append((t1 - t0) / n / 1000)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return cpu, wall


def _versions() -> str:
    out = []
    for dist in ("structlog", "orjson", "python-json-logger", "loguru"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{dist} {metadata.version(dist)}")
    return ", ".join(out)


def report(
    samples: dict[str, list[float]], wall: dict[str, list[float]], rounds: int, n: int, elapsed: float
) -> tuple[str, list[str]]:
    med = {k: statistics.median(v) for k, v in samples.items()}
    wmed = {k: statistics.median(v) for k, v in wall.items()}
    floor = med["floor"]
    lines = [
        f"| contender | median CPU µs/line | {X} floor | min | IQR | median wall µs/line | wall {X} floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k, v in sorted(samples.items(), key=lambda kv: med[kv[0]]):
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0], v[0], v[0]]
        lines.append(
            f"| {CONTENDERS[k][0]} | {med[k]:.2f} | {med[k] / floor:.1f}{X} | {min(v):.2f} | {q[2] - q[0]:.2f} "
            f"| {wmed[k]:.2f} | {wmed[k] / wmed['floor']:.1f}{X} |"
        )
    table = "\n".join(lines)

    def paired(a: str, b: str, limit: float) -> str:
        wins = sum(x <= limit * y for x, y in zip(samples[a], samples[b], strict=True))
        per_round = statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))
        return f"median of per-round ratios {per_round:.2f}, within the target in {wins}/{len(samples[a])} rounds"

    verdicts = []
    targets = [
        ("obskit_proxy", "structlog_fastest", 1.2, f"obskit `get_logger()` ≤ 1.2{X} structlog fastest"),
        ("obskit_bound", "structlog_fastest", 1.2, f"obskit `get_logger().bind()` ≤ 1.2{X} structlog fastest"),
        ("obskit_stdlib", "pjl_orjson", 1.0, "obskit stdlib path ≤ python-json-logger with orjson"),
    ]
    for a, b, limit, text in targets:
        if a in med and b in med:
            ratio = med[a] / med[b]
            verdict = "**met**" if ratio <= limit else "**missed**"
            verdicts.append(
                f"- {text}: {ratio:.2f}{X} on CPU time ({med[a]:.2f} vs {med[b]:.2f} µs; {paired(a, b, limit)}; "
                f"wall clock {wmed[a] / wmed[b]:.2f}{X}) → {verdict}"
            )
    note = (
        f"{rounds} rounds {X} {n:,} calls per contender, interleaved in a shuffled order each round; "
        f"total {elapsed:.0f} s."
    )
    return table, [note, *verdicts]


def readme_section(table: str, notes: list[str]) -> str:
    cpus = os.cpu_count()
    return f"""{SECTION}

Command, from the repository root: `{COMMAND}`
(`--rounds`/`--n` change the size, `--only KEY...` runs a subset, `--profile KEY` cProfiles one contender).

Machine: `nproc` = {cpus}, Python {platform.python_version()} ({platform.python_implementation()}, {platform.machine()});
{_versions()}; obskit at {obskit_rev()}.

Every contender writes the same information as one JSON line: `timestamp`, `level`, `service`,
`trace_id` (null, no request active), `message` plus `user_id=42, path="/orders", duration_ms=12.5` given at
the call site, to the same sink, `open(os.devnull, "wb")`, flushed per line. `logging.StreamHandler`s reach
it through `io.TextIOWrapper(sink, write_through=True)`; loguru through a sink function that encodes and
writes + flushes to it. The floor builds the record dict on every call with a fresh
`datetime.now(UTC).isoformat()` and writes `orjson.dumps(record, option=OPT_APPEND_NEWLINE)`; on this
machine that timestamp alone is a large share of the floor (compare the reference row with a constant
timestamp), which makes every ratio smaller than on a machine with a cheaper clock. Before
timing, one line of each contender is captured into a `BytesIO`, parsed, and checked for all eight values.
structlog's fastest config is the one of its docs' "Performance" page (`make_filtering_bound_logger`,
`cache_logger_on_first_use`, `BytesLoggerFactory`, `JSONRenderer(serializer=orjson.dumps)`) with `service`
and `trace_id` bound; its message key is `event` (the `EventRenamer` row gives the exact name).
Every standard-library contender logs through a named logger that propagates to its handler on the root
logger, where obskit's handler is too. python-json-logger has `service`/`trace_id` as `static_fields` (no
per-line lookup at all). loguru's serialized record is larger than everyone else's (it always adds file,
line, process, thread, elapsed...).
obskit additionally redacts every key, looks up the trace context and bounds value sizes; its stdlib
record also carries `logger`.

{table}

{chr(10).join(notes)}

Targets (issue 2): obskit `get_logger()` costs at most 1.2{X} structlog's fastest documented configuration
per line; obskit's standard-library path costs no more than python-json-logger with orjson.

The machine has 2 cores shared with other engineers' test runs, so absolute numbers wobble. Three things
keep the comparison fair: the contenders are interleaved round by round in a shuffled order, so load
falls on all of them alike; medians over rounds are reported; and the primary figure is this process's CPU
time (`time.process_time_ns()`, user + system, so the `write`/`flush` syscalls count) rather than wall
clock, so time spent descheduled while another process runs is not charged to whichever contender was
on (steal by the VM's host still is). Wall-clock medians are shown beside it. Compare ratios within one run, not absolute µs across runs.
"""


def profile(key: str, n: int) -> None:
    import cProfile
    import pstats

    sink = open(os.devnull, "wb")  # noqa: PTH123, SIM115
    run = CONTENDERS[key][1](sink)
    run(2000)
    prof = cProfile.Profile()
    prof.enable()
    run(n)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=20_000, help="calls per contender per round")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed calls before each timed run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(CONTENDERS), help="a subset (floor always runs)")
    parser.add_argument("--write", action="store_true", help=f"rewrite '{SECTION}' in bench/README.md")
    parser.add_argument("--profile", choices=list(CONTENDERS), help="cProfile one contender instead")
    args = parser.parse_args()

    if args.profile:
        profile(args.profile, args.n)
        return
    keys = list(CONTENDERS) if not args.only else ["floor", *[k for k in args.only if k != "floor"]]
    for k in keys:
        line = verify(k)
        print(f"verified {k}: {line.strip()[:160]}", file=sys.stderr)
    start = time.perf_counter()
    cpu, wall = measure(keys, args.rounds, args.n, args.warmup, args.seed)
    table, notes = report(cpu, wall, args.rounds, args.n, time.perf_counter() - start)
    print(table)
    print()
    print("\n".join(notes))
    if args.write:
        write_section(SECTION, readme_section(table, notes))
        print(f"\nwrote {README.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
