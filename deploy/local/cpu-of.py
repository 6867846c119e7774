#!/usr/bin/env python3
"""Runs a command and reports the CPU time that other processes spent while it ran.

usage: cpu-of.py (--comm REGEX | --pid PID) -- COMMAND [ARGS...]

The command's output passes through; then one line on stdout: `cpu_seconds=C wall_seconds=W`,
where C is the user + system time, while the command ran, of the processes whose name matches
REGEX (all of PostgreSQL's backends: `postgres`) or of process PID and its threads (the Kafka
broker's JVM). Processes are sampled every 200 ms, so one that starts and ends between two
samples is missed (a backend of a connection held through the run is not).
"""

import os
import re
import subprocess
import sys
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(match):
    """{pid: utime + stime} of the processes `match(pid, name)` accepts."""
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # it ended meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        if match(pid, name):
            fields = text[text.rindex(")") + 2 :].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def main(argv):
    if len(argv) < 4 or argv[0] not in ("--comm", "--pid") or argv[2] != "--":
        sys.exit(__doc__.strip().splitlines()[2])
    if argv[0] == "--comm":
        pattern = re.compile(argv[1])
        match = lambda pid, name: pattern.fullmatch(name) is not None
    else:
        match = lambda pid, name: pid == argv[1]
    before = cpu_ticks(match)
    latest = dict(before)
    started = time.monotonic()
    command = subprocess.Popen(argv[3:])
    while command.poll() is None:
        latest.update(cpu_ticks(match))
        time.sleep(0.2)
    wall = time.monotonic() - started
    used = sum(latest[pid] - before.get(pid, 0) for pid in latest)
    print(f"cpu_seconds={used / CLOCK_TICKS:.2f} wall_seconds={wall:.2f}")
    return command.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
