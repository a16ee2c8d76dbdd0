"""Runs a benchmark command when the machine is quiet, and again if something else ran meanwhile.

    python tools/bench/when_quiet.py [--max-foreign 0.15] [--attempts 4] -- COMMAND ARGS...

On a shared machine other jobs steal cores, and a 2-thread benchmark on 2 cores is very sensitive to
that (PyTorch's OpenMP threads spin-wait, so it suffers most: a DPO step measured 74-82 s under
compiler load against 23 s quiet). This waits until the machine's busy CPU over 20 s is below
--max-foreign cores, runs the command, and measures the *foreign* CPU during the run: the machine's
busy CPU time minus the command's own (from wait4), per second of wall
time. Above --max-foreign the run is repeated (the command rewrites its own output), up to
--attempts times; the last run stands, and its foreign CPU is printed either way. Linux only.
"""

import argparse
import os
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    with open("/proc/stat") as f:
        vals = list(map(int, f.readline().split()[1:9]))
    return (sum(vals) - vals[3] - vals[4]) / HZ  # all but idle and iowait


def wait_until_quiet(max_foreign, max_wait_s):
    started = time.time()
    while time.time() - started < max_wait_s:
        before = busy_seconds()
        time.sleep(20)
        load = (busy_seconds() - before) / 20
        if load < max_foreign:
            return
        print(f"when_quiet: machine busy ({load:.2f} cores), waiting", file=sys.stderr, flush=True)
    print(f"when_quiet: still busy after {max_wait_s} s, running anyway", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-foreign", type=float, default=0.15, help="cores of other work tolerated (default 0.15)")
    ap.add_argument("--attempts", type=int, default=4)
    ap.add_argument("--max-wait", type=float, default=3600, help="seconds to wait for quiet before each attempt")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given")
    for attempt in range(1, args.attempts + 1):
        wait_until_quiet(args.max_foreign, args.max_wait)
        before, started = busy_seconds(), time.time()
        proc = subprocess.Popen(command)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it, with its CPU time (all threads)
        code = os.waitstatus_to_exitcode(status)
        wall = time.time() - started
        foreign = max(0.0, busy_seconds() - before - usage.ru_utime - usage.ru_stime) / wall
        print(f"when_quiet: attempt {attempt}: exit {code}, {wall:.0f} s, foreign CPU {foreign:.2f} cores",
              file=sys.stderr, flush=True)
        if code != 0:
            sys.exit(code)
        if foreign < args.max_foreign:
            return
    print("when_quiet: every attempt shared the machine; the timings above are not clean", file=sys.stderr)


if __name__ == "__main__":
    main()
