"""Run the benchmark scripts and write their figures into bench/RESULTS.md.

Each script runs in its own process with its default arguments (or those given after
``--args NAME="..."``); its exit status says whether its targets held. Scripts print their
figures in their own layout; lines of the form

    FIGURE name=NAME value=V floor=F ratio=R target=T ok=yes|no [db=D] [corpus=C]

are also collected into a table. The results go between the ``make bench`` markers in
bench/RESULTS.md, one block per script, each with the date, the machine (cores, memory,
load), the exit status and the script's output; blocks of scripts not run this time are
kept as they were, and so is everything outside the markers (the hand-written notes).

    .venv/bin/python bench/run_all.py [--only coding_bench,corpus_bench] [--skip ...]
        [--args coding_bench="--db sqlite --duration 20"]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"
BLOCK = re.compile(r"<!-- bench: (\w+) -->\n(.*?)<!-- /bench: \1 -->\n", re.S)
FIGURE = re.compile(r"^FIGURE (.*)$", re.M)
FIELDS = ("name", "value", "floor", "ratio", "target", "ok", "db", "corpus")


def scripts() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*_bench.py"))


def machine() -> str:
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {memory} memory, load average {load} at the start"


def run(name: str, args: str) -> str:
    """Run one script; its block for RESULTS.md."""
    command = [sys.executable, str(BENCH / f"{name}.py"), *shlex.split(args)]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    where = machine()
    print(f"== {name} {args}".rstrip(), flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    sys.stdout.write(done.stdout)
    output = done.stdout.strip()
    if done.returncode != 0 and not FIGURE.search(output) and done.stderr.strip():
        # No figures: the script broke rather than missed a target, so show why.
        output += "\n" + "\n".join(done.stderr.strip().splitlines()[-15:])
    shown = f"bench/{name}.py {args}".rstrip()
    verdict = "all targets met" if done.returncode == 0 else f"exit {done.returncode}: missed"
    lines = [
        f"### `bench/{name}.py`",
        "",
        f"{started}; {where}; ran {seconds:.0f} s; `{shown}`; **{verdict}**.",
        "",
    ]
    figures = [dict(f.split("=", 1) for f in m.split() if "=" in f) for m in FIGURE.findall(output)]
    if figures:
        lines += ["| " + " | ".join(FIELDS) + " |", "|" + " --- |" * len(FIELDS)]
        lines += ["| " + " | ".join(f.get(k, "") for k in FIELDS) + " |" for f in figures]
        lines.append("")
    text = "\n".join(x for x in output.splitlines() if not x.startswith("FIGURE "))
    lines += ["```", text, "```", ""]
    return "\n".join(lines)


def write(blocks: dict[str, str]) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in current:
        head, rest = current.split(BEGIN, 1)
        old, tail = rest.split(END, 1)
    else:
        head, old, tail = current.rstrip() + "\n\n", "", "\n"
    kept = {m.group(1): m.group(2) for m in BLOCK.finditer(old)}
    kept.update(blocks)
    body = "".join(
        f"<!-- bench: {name} -->\n{kept[name].rstrip()}\n<!-- /bench: {name} -->\n"
        for name in sorted(kept)
    )
    intro = (
        "## Latest `make bench` output\n\n"
        "Written by `bench/run_all.py`: one block per script, each from its own last run.\n\n"
    )
    RESULTS.write_text(f"{head}{BEGIN}\n{intro}{body}{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated script names")
    parser.add_argument("--skip", default="", help="comma-separated script names")
    parser.add_argument(
        "--args", action="append", default=[], metavar='NAME="ARGS"', help="a script's arguments"
    )
    options = parser.parse_args()
    names = scripts()
    if options.only:
        names = [n for n in names if n in options.only.split(",")]
    names = [n for n in names if n not in options.skip.split(",")]
    extra = dict(a.split("=", 1) for a in options.args)
    failed = []
    for name in names:
        block = run(name, extra.get(name, ""))
        write({name: block})  # after each script, so a long run keeps what it measured
        if "**all targets met**" not in block:
            failed.append(name)
    print("\nmissed: " + ", ".join(failed) if failed else "\nall targets met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
