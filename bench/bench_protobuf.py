#!/usr/bin/env python3
"""Protobuf request-body decoding speed (labctl.apiserver.protobuf.decode_object).

Decodes the real kubectl bodies stored in tests/unit/protobuf_fixtures.json over and over
and prints microseconds per body; ``--out FILE`` writes the figures as JSON.

    python bench/bench_protobuf.py --rounds 2000 --out bench/results/protobuf.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labctl.apiserver import protobuf  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cases = json.loads((ROOT / "tests/unit/protobuf_fixtures.json").read_text())["cases"]
    t0 = time.perf_counter()
    protobuf.schema.cache_clear()
    protobuf.schema()
    load_ms = (time.perf_counter() - t0) * 1000
    figures: dict[str, float] = {"schema_load_ms": round(load_ms, 2)}
    print(f"{'schema load (once)':32} {load_ms:8.2f} ms")
    for name, case in sorted(cases.items()):
        body = bytes.fromhex(case["body_hex"])
        start = time.perf_counter()
        for _ in range(args.rounds):
            protobuf.decode_object(body)
        per = (time.perf_counter() - start) / args.rounds * 1e6
        figures[name] = round(per, 1)
        print(f"{name:32} {per:8.1f} µs  ({len(body)} bytes)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                                        "rounds": args.rounds, "figures": figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
