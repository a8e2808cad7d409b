"""`make bench` = `python -m bench [--quick] [NAME ...]`: run every benchmark, each beside its baseline.

Each benchmark is a module `bench/NAME.py` that prints its own table (project vs a
baseline measured in the same run, the ratio, the target and PASS/MISS). This runner
runs them one after another in fresh processes (so one's memory does not weigh on the
next) and saves what they printed in `bench/results.txt`, which the README's tables are
copied from. Running a subset replaces only those benchmarks' sections of the file, so a
long benchmark (forgetting) need not be re-run to refresh a short one; every section
carries the date it was measured.
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

HERE = Path(__file__).resolve().parent
ORDER = ["langid", "pii", "quality", "neardup", "corpus", "tokenizer", "pack", "train", "forgetting"]
_SECTION = re.compile(r"^## bench\.(\w+)\n", re.MULTILINE)
_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+\s*\[")  # a tqdm bar (model loading, shard writing): shown, not saved


def saved_lines(lines: list[str]) -> list[str]:
    """What goes into results.txt: the output without progress bars and the blank lines they leave."""
    out: list[str] = []
    for line in lines:
        if _PROGRESS.search(line) or (not line.strip() and out and not out[-1].strip()):
            continue
        out.append(line)
    return out


def available() -> list[str]:
    present = {p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "data"}
    return [n for n in ORDER if n in present] + sorted(present - set(ORDER))


def read_sections(path: Path) -> dict[str, str]:
    """Sections of an earlier results file by benchmark name (each starts at its `## bench.NAME` line)."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    marks = list(_SECTION.finditer(text))
    return {m.group(1): text[m.start(): marks[i + 1].start() if i + 1 < len(marks) else len(text)].rstrip("\n") + "\n" for i, m in enumerate(marks)}


def write_sections(path: Path, sections: dict[str, str]) -> None:
    order = [n for n in ORDER if n in sections] + sorted(set(sections) - set(ORDER))
    body = "\n".join(sections[n] for n in order)
    path.write_text(f"# python -m bench: benchmark output ({os.cpu_count()} cores); each section dated\n\n{body}", encoding="utf-8")


def run_one(name: str, quick: bool, env: dict[str, str], extra: list[str] | None = None) -> tuple[str, int]:
    """Run `bench.NAME` in a fresh process, echoing its output; returns (section text, exit code)."""
    extra = extra or []
    cmd = [sys.executable, "-m", f"bench.{name}"] + (["--quick"] if quick else []) + extra
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    flags = (["--quick"] if quick else []) + extra
    lines = [f"## bench.{name}\n", f"({stamp}{', ' + shlex.join(flags) if flags else ''})\n"]
    print("".join(lines), end="", flush=True)
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=HERE.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    code = proc.wait()
    footer = f"(bench.{name}: exit {code}, {time.time() - start:.0f} s)\n"
    print(footer, flush=True)
    lines.append(footer)
    return "".join(saved_lines(lines)), code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "results.txt", help="where to save the combined output")
    parser.add_argument("--args", default="", help="extra arguments for the one benchmark named, e.g. --args='--jobs 2 --threads 1' (recorded in its section)")
    args = parser.parse_args(argv)
    extra = shlex.split(args.args)
    if extra and len(args.names) != 1:
        parser.error("--args applies to exactly one named benchmark")
    unknown = sorted(set(args.names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    names = args.names or available()
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    sections = read_sections(args.out)
    failed = []
    for name in names:
        sections[name], code = run_one(name, args.quick, env, extra)
        write_sections(args.out, sections)  # after each one: a long run interrupted later keeps what finished
        if code != 0:
            failed.append(name)
    print(f"results saved to {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
