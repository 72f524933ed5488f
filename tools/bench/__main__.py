"""tools/bench/run's command line (python3 -m bench, with tools/ on the module path)."""
from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from . import __doc__ as DESCRIPTION
from .config import ALL_ROWS, ROOT
from .runner import Bench


def main() -> int:
    p = argparse.ArgumentParser(prog="tools/bench/run", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few iterations, one run (CI smoke)")
    p.add_argument("--json", action="store_true", help="also print one JSON object per row")
    p.add_argument("--no-write", action="store_true", help="do not rewrite docs/")
    p.add_argument("--runs", type=int, help="runs per figure (default 5, --quick 1)")
    p.add_argument("--rows", help="comma-separated subset of " + ",".join(ALL_ROWS))
    p.add_argument("--linux", action="store_true",
                   help="add rows 5 and 6: Linux's boot and fio/iperf3 (tools/linux-boot, "
                        "--io-bench) in the emulated-SVM L1 (minutes per run)")
    p.add_argument("--blk-engines",
                   help="comma-separated aio= engines (libaio,io_uring,sync): the blk row once "
                        "more per engine, side by side in the same run")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument("--callgrind", action="store_true",
                   help="instead: user-space instructions per operation under valgrind")
    args = p.parse_args()
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    bench = Bench(args)
    shown = [a for a in sys.argv[1:]]
    # The command as a user types it: the wrapper's default build directory is not shown.
    i = shown.index("--build-dir") if "--build-dir" in shown else -1
    if i >= 0 and Path(shown[i + 1]).resolve() == (ROOT / "build-bench").resolve():
        del shown[i:i + 2]
    bench.command = " ".join(["tools/bench/run"] + shown)
    bench.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return bench.run()


if __name__ == "__main__":
    sys.exit(main())
