"""Summarise a py-spy `--format raw` profile: the functions with the most inclusive and self samples.

py-spy record --format raw -r 250 -o server.txt --pid PID  (while bench/cpu.py or bench/soak.py runs)
python bench/profile_top.py server.txt [--top 30] [--match app/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    """`function (path:line)` -> `function (last two path parts)`."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    file = file.split("site-packages/", 1)[1] if "site-packages/" in file else "/".join(file.split("/")[-3:])
    return f"{match['func']} ({file})"


def package(frame: str) -> str:
    """The top-level package (or our own module folder) of a shortened frame."""
    match = FRAME.match(frame)
    return match["file"].split("/")[0] if match else frame


def summarise(path: str, match: str | None) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """Inclusive and self samples per function, self samples per package, and the total (idle stacks dropped)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as lines:
        text = lines.read().splitlines()
    for line in text:
        stack, _, count = line.rpartition(" ")
        if not stack or "select (selectors.py" in stack or "_worker (concurrent" in stack:
            continue  # the event loop waiting for I/O, idle executor threads
        frames = [short(f) for f in stack.split(";")]
        n = int(count)
        total += n
        for frame in set(frames):
            if match is None or match in frame:
                inclusive[frame] += n
        own[frames[-1]] += n
        packages[package(frames[-1])] += n
    return inclusive, own, packages, total


def main() -> None:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default=None, help="Only functions whose file contains this text (inclusive)")
    args = parser.parse_args()
    inclusive, own, packages, total = summarise(args.profile, args.match)
    print(f"{total} busy samples")
    for title, table in (("self, by package", packages), ("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for frame, n in table.most_common(args.top):
            print(f"{100 * n / max(total, 1):6.1f}%  {frame}")


if __name__ == "__main__":
    main()
