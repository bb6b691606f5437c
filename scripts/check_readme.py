#!/usr/bin/env python
"""Run the commands of README.md as a newcomer would, so the README cannot rot.

Which blocks run. A fenced block runs when the line just before its opening fence
(blank lines between are allowed) is the marker

    <!-- check_readme: run -->

and the fence is ```bash (its lines run with bash) or ```python (its text is fed to
``python -`` in the same folder). Unmarked blocks are documentation only: blocks that
cannot run here (live RTSP cameras, installing from the package index, the whole test
suite, which runs this script) or that are a usage synopsis. Every block that can run
offline is marked.

Where they run. In a fresh temporary folder laid out as the README assumes::

    TMP/shared -> ../shared of this checkout (a symlink; --shared to choose another)
    TMP/mtmc/  -> a copy of the checkout's files (git's tracked and untracked, not ignored, files)

Every block runs in ``TMP/mtmc`` (the repository root is the working directory and
``../shared`` is the sibling folder), in README order, one bash process per block, so
each block sees what the earlier ones wrote (``scenes/``, ``runs/`` …) and the checkout
itself is never written to. ``python`` and ``mtmc`` are those of the interpreter running
this script (its ``bin/`` folder comes first on ``PATH``). ``OMP_WAIT_POLICY=PASSIVE`` is
set unless already set (OpenMP threads sleep while they wait: the same results, and torch
stays fast on a machine shared with other jobs).

How blocks are made short. Before a block runs, each of its commands (backslash
continuations joined) is rewritten:

* ``mtmc run …`` without ``--max-frames`` gets ``--max-frames N`` (``--max-frames``,
  default 30) right after ``mtmc run``;
* any command with ``--max-frames M`` (``mtmc run``, ``scripts/benchmark_pipeline.py``)
  gets ``min(M, N)``;
* ``mtmc live … --duration S`` gets ``min(S, --duration)`` (default 6 s);
* ``mtmc reid train … --epochs E`` and ``mtmc adapt … --epochs E`` get ``min(E, --epochs)`` (default 1);
* in a ``python`` block, ``"max_frames": M`` (a config override) gets ``min(M, N)``.

``--full`` runs the commands exactly as written (minutes, not seconds).

What it prints. Per block: its number and line in README.md, ``ok`` or ``FAILED``, the
exit code, the seconds it took, its first line, and the last ``--tail`` lines of its
output (stdout and stderr together). A block stops at its first failing command (the
command is named), and the script stops at the first failing block. Exit code 0 when
every block ran, 1 when one failed, 2 on bad arguments or a missing ``../shared``.
``--json FILE`` also writes the per-block results as JSON.

Usage::

    python scripts/check_readme.py                 # every marked block, shortened
    python scripts/check_readme.py --list          # the blocks, marked or not, without running them
    python scripts/check_readme.py --full --keep   # as written; keep the temporary folder
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MARKER = "<!-- check_readme: run -->"
"""The line before a fence that makes its block run."""

RUNNABLE_LANGS = ("bash", "python")
"""Fence languages a marked block may have."""

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)\s*$")


@dataclass
class Block:
    """One fenced block of the README.

    Attributes:
        index: 1-based position among all fenced blocks.
        line: 1-based line of its opening fence in README.md.
        lang: the fence's language (``bash``, ``python``, ``json``, ``""`` …).
        text: the lines between the fences.
        marked: preceded by :data:`MARKER`.
    """

    index: int
    line: int
    lang: str
    text: str
    marked: bool

    @property
    def first_line(self) -> str:
        """The first line that is not blank (comments included: they say what the block does)."""
        return next((ln.strip() for ln in self.text.splitlines() if ln.strip()), "")


@dataclass
class BlockResult:
    """What running one block gave."""

    index: int
    line: int
    first_line: str
    returncode: int
    seconds: float
    tail: list[str] = field(default_factory=list)
    failed_command: str | None = None
    commands: list[dict] = field(default_factory=list)
    """Per command run (bash blocks): ``command`` (as run), ``returncode``, ``seconds``."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def parse_blocks(readme_text: str) -> list[Block]:
    """Every fenced block of a Markdown text, in order, with its language and marker."""
    blocks: list[Block] = []
    lines = readme_text.splitlines()
    i = 0
    last_text = ""  # the last non-blank line outside a fence
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                last_text = lines[i].strip()
            i += 1
            continue
        fence, lang = m.group(2), m.group(3).lower()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i])
            i += 1
        blocks.append(Block(len(blocks) + 1, start + 1, lang, "\n".join(body), last_text == MARKER))
        last_text = ""
        i += 1
    return blocks


def runnable_blocks(readme_text: str) -> list[Block]:
    """The marked blocks, in order.

    Raises:
        ValueError: a marked block's language is not one of :data:`RUNNABLE_LANGS`.
    """
    out = [b for b in parse_blocks(readme_text) if b.marked]
    for b in out:
        if b.lang not in RUNNABLE_LANGS:
            raise ValueError(f"README.md line {b.line}: a marked block must be ```bash or ```python, not {b.lang!r}")
    return out


def logical_lines(text: str) -> list[str]:
    """Shell lines with backslash continuations joined; blank lines and whole-line comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` outside quotes that starts a word)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


@dataclass
class Shorten:
    """Limits applied to commands (see the module docstring); ``None`` = run as written."""

    max_frames: int | None = 30
    duration: float | None = 6.0
    epochs: int | None = 1


def _lower_option(command: str, option: str, limit: float | None, cast: type) -> str:
    """``option V`` → ``option min(V, limit)`` everywhere in ``command``."""
    if limit is None:
        return command

    def repl(m: re.Match[str]) -> str:
        value = cast(m.group(2))
        return f"{m.group(1)}{cast(min(value, limit))}"

    return re.sub(rf"({re.escape(option)}[ =])(\d+(?:\.\d+)?)\b", repl, command)


def shorten_command(command: str, limits: Shorten) -> str:
    """One shell command line made short under ``limits`` (unchanged when every limit is ``None``)."""
    parts = re.split(r"(\s*(?:&&|\|\||;|\|)\s*)", command)
    out = []
    for part in parts:
        if limits.max_frames is not None and re.match(r"\s*mtmc\s+run\b", part) and "--max-frames" not in part:
            part = re.sub(r"\bmtmc\s+run\b", f"mtmc run --max-frames {limits.max_frames}", part, count=1)
        part = _lower_option(part, "--max-frames", limits.max_frames, int)
        if re.match(r"\s*mtmc\s+live\b", part):
            part = _lower_option(part, "--duration", limits.duration, _number)
        if re.match(r"\s*mtmc\s+(reid\s+train|adapt)\b", part):
            part = _lower_option(part, "--epochs", limits.epochs, int)
        out.append(part)
    return "".join(out)


def shorten_python(code: str, limits: Shorten) -> str:
    """A python block with every ``"max_frames": M`` lowered to ``min(M, limits.max_frames)``."""
    if limits.max_frames is None:
        return code
    return re.sub(r'(["\']max_frames["\']\s*:\s*)(\d+)',
                  lambda m: f"{m.group(1)}{min(int(m.group(2)), limits.max_frames)}", code)


def _number(text: str) -> float | int:
    """``"6"`` → 6, ``"2.5"`` → 2.5 (so a shortened option reads as it was written)."""
    value = float(text)
    return int(value) if value.is_integer() else value


def bash_script(block: Block, limits: Shorten, times: Path | None = None) -> tuple[str, list[str]]:
    """The bash text that runs ``block``'s commands one by one, stopping at the first that fails.

    Args:
        times: a file that gets one line ``<index> <exit code> <start> <end>`` (seconds) per command run.

    Returns:
        The script and the commands as they will run (shortened).
    """
    commands = [shorten_command(strip_comment(ln), limits) for ln in logical_lines(block.text)]
    clock = "${EPOCHREALTIME:-$(date +%s.%N)}"
    lines = ["set -o pipefail"]
    for i, cmd in enumerate(commands):
        record = f"echo {i} $rc $t0 {clock} >> {shlex.quote(str(times))}; " if times else ""
        lines.append(f"t0={clock}\n{cmd}\nrc=$?; {record}if [ $rc -ne 0 ]; then "
                     f"echo \"check_readme: exit $rc from: \"{shlex.quote(cmd)} >&2; exit $rc; fi")
    return "\n".join(lines) + "\n", commands


def copy_checkout(src: Path, dst: Path) -> None:
    """Copy the checkout's files to ``dst``: what a fresh clone has, plus uncommitted work.

    In a git checkout these are the tracked files and the untracked ones git does not
    ignore; elsewhere everything but caches, virtual environments and run outputs.
    """
    try:
        listed = subprocess.run(
            ["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True,
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "__pycache__", "*.egg-info", ".venv", "venv", "runs", "out", "scenes", ".pytest_cache"))
        return
    for rel in filter(None, listed):
        s = src / rel
        if not s.is_file():  # deleted but still tracked
            continue
        d = dst / rel
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(s, d)


def run_block(block: Block, cwd: Path, env: dict[str, str], limits: Shorten, tail: int,
              timeout: float, fail_tail: int = 30) -> BlockResult:
    """Run one marked block in ``cwd``; see the module docstring.

    The result keeps the last ``tail`` lines of output, ``max(tail, fail_tail)`` when it failed.
    """
    t0 = time.perf_counter()
    failed = None
    times = Path(tempfile.mkstemp(prefix="check_readme_times_")[1])
    commands: list[str] = []
    if block.lang == "python":
        argv, stdin = [sys.executable, "-"], shorten_python(block.text, limits)
    else:
        script, commands = bash_script(block, limits, times)
        argv, stdin = ["bash", "-c", script], None
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, input=stdin, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        output = (out.decode(errors="replace") if isinstance(out, bytes) else out) + f"\ntimed out after {timeout:g} s"
        code = 124
    for ln in output.splitlines():
        if ln.startswith("check_readme: exit "):
            failed = ln.split(" from: ", 1)[-1]
    lines = [ln for ln in output.splitlines() if ln.strip()]
    keep = tail if code == 0 else max(tail, fail_tail)
    timed = []
    for rec in times.read_text().splitlines():
        i, rc, start, end = rec.split()
        timed.append({"command": commands[int(i)], "returncode": int(rc),
                      "seconds": round(float(end) - float(start), 1)})
    times.unlink()
    return BlockResult(block.index, block.line, block.first_line, code, round(time.perf_counter() - t0, 1),
                       lines[-keep:] if keep > 0 else [], failed, timed)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="check_readme.py",
        description="Run README.md's marked ```bash / ```python blocks in order in a temporary copy of the "
                    f"checkout with ../shared beside it (marker: {MARKER} on the line before the fence).",
    )
    p.add_argument("--readme", type=Path, default=REPO / "README.md", help="the README (default: the checkout's)")
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared",
                   help="the folder the README calls ../shared (default: the checkout's sibling 'shared')")
    p.add_argument("--max-frames", type=int, default=30, metavar="N",
                   help="frames per camera for mtmc run and for commands with --max-frames (default 30)")
    p.add_argument("--duration", type=float, default=6.0, metavar="S",
                   help="at most S seconds for mtmc live --duration (default 6)")
    p.add_argument("--epochs", type=int, default=1, metavar="E",
                   help="at most E epochs for mtmc reid train and mtmc adapt (default 1)")
    p.add_argument("--full", action="store_true", help="run every command exactly as written (no shortening)")
    p.add_argument("--tail", type=int, default=4, metavar="K", help="last K output lines shown per block (default 4; "
                   "30 for a failing block)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S", help="seconds allowed per block (default 900)")
    p.add_argument("--workdir", type=Path, help="run in this (new or empty) folder instead of a temporary one; kept")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the per-block results to FILE")
    p.add_argument("--list", action="store_true", help="list the README's fenced blocks and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = args.readme.read_text(encoding="utf-8")
        blocks = runnable_blocks(text)
    except (OSError, ValueError) as exc:
        print(f"check_readme: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for b in parse_blocks(text):
            mark = "run" if b.marked else "-"
            print(f"{b.index:>3}  line {b.line:>4}  {b.lang or 'text':<7} {mark:<4} {b.first_line[:90]}")
        return 0
    if not args.shared.is_dir():
        print(f"check_readme: error: {args.shared} not found: the README's commands need ../shared "
              "(the project's data and models); pass --shared DIR", file=sys.stderr)
        return 2
    limits = Shorten(None, None, None) if args.full else Shorten(args.max_frames, args.duration, args.epochs)

    if args.workdir is not None:
        root = args.workdir.resolve()
        if root.exists() and any(root.iterdir()):
            print(f"check_readme: error: --workdir {root} is not empty", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="check_readme_"))
    work = root / "mtmc"
    (root / "shared").symlink_to(args.shared.resolve(), target_is_directory=True)
    copy_checkout(REPO, work)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    # OpenMP threads sleep instead of spinning while they wait: on a shared machine (CI, other jobs)
    # torch's spinning threads made the torch ReID commands 10-20x slower; results are the same
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    shortened = "as written" if args.full else (
        f"--max-frames {args.max_frames}, live --duration {args.duration:g}, reid train --epochs {args.epochs}")
    print(f"check_readme: {len(blocks)} runnable blocks of {args.readme.name} in {work} ({shortened})", flush=True)

    results: list[BlockResult] = []
    for n, block in enumerate(blocks, 1):
        res = run_block(block, work, env, limits, args.tail, args.timeout)
        results.append(res)
        state = "ok" if res.ok else "FAILED"
        print(f"[{n}/{len(blocks)}] {state}  exit {res.returncode}  {res.seconds:.1f} s  README.md:{block.line}  "
              f"{res.first_line}", flush=True)
        if len(res.commands) > 1:
            for c in res.commands:
                print(f"    {c['seconds']:6.1f} s  exit {c['returncode']}  {c['command']}")
        if res.failed_command:
            print(f"    failing command: {res.failed_command}")
        for ln in res.tail:
            print(f"    | {ln}")
        if not res.ok:
            break
    total = sum(r.seconds for r in results)
    ran = sum(r.ok for r in results)
    print(f"check_readme: {ran} of {len(blocks)} blocks ran ({total:.1f} s)"
          + ("" if ran == len(blocks) else "; stopped at the first failing block"))
    if args.json:
        args.json.write_text(json.dumps({"workdir": str(work), "blocks": len(blocks),
                                         "results": [asdict(r) | {"ok": r.ok} for r in results]}, indent=2))
    if args.keep or args.workdir is not None:
        print(f"check_readme: kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ran == len(blocks) else 1


if __name__ == "__main__":
    sys.exit(main())
