"""Blank the GPU code of a CUDA shared library for every architecture but one, so it compresses.

    python3 scripts/prune_fatbin.py LIB OUT [--keep-sm 90]

For carrying onnxruntime-gpu to the lent GPU machine (an H100 or H200: sm_90), whose transfers
hold 64 MiB with the working tree. ONNX Runtime 1.31.1's CUDA provider is 284 MB, 219 MB of it
GPU code (cubins) for sm_75, 80, 86, 89, 90 and 120, which zip barely compresses (231 MB in the
wheel). A CUDA program loads only the cubin of its own GPU's architecture (or PTX, which this
library has none of), so the others' bytes are never read: this script overwrites them with
zeros in place, leaving every container and entry header, every size and offset as it was.
Zeros compress to nothing, and xz takes the library to 52 MB. Seen working on an H200
(2026-11-27, docs/measurements/h200-2026-11-27): the CUDA provider loaded and every benchmark
and CUDA test ran.

The fatbin layout, as read from the library (not from NVIDIA's headers): a container header
(magic 0xBA55ED50, u16 version 1, u16 header size 16, u64 size of the entries), then entries,
each a header (u16 kind: 1 PTX, 2 ELF; u16 version; u32 header size; u64 padded payload size;
...; u32 SM architecture at byte 28) followed by its payload.
"""

from __future__ import annotations

import argparse
import collections
import struct
import sys
from pathlib import Path

MAGIC = struct.pack("<I", 0xBA55ED50)
PTX = 1


def prune(data: bytearray, keep_sm: int) -> collections.Counter:
    """Zero, in place, the payload of every entry for another architecture (PTX is kept);
    returns bytes blanked and kept per (kind, architecture)."""
    seen: collections.Counter = collections.Counter()
    pos = 0
    while (start := data.find(MAGIC, pos)) >= 0:
        version, header, size = struct.unpack_from("<HHQ", data, start + 4)
        if version != 1 or header != 16 or start + header + size > len(data):
            pos = start + 4  # the magic's bytes by chance, not a container
            continue
        entry, end = start + header, start + header + size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            sm = struct.unpack_from("<I", data, entry + 28)[0]
            body = entry + entry_header
            if kind != PTX and sm != keep_sm:
                data[body:body + payload] = bytes(payload)
                seen[("blanked", kind, sm)] += payload
            else:
                seen[("kept", kind, sm)] += payload
            entry = body + payload
        pos = end
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--keep-sm", type=int, default=90, help="architecture to keep (90: H100, H200)")
    args = parser.parse_args(argv)
    data = bytearray(args.lib.read_bytes())
    seen = prune(data, args.keep_sm)
    if not any(what == "kept" and kind != PTX for what, kind, _ in seen):
        print(f"no sm_{args.keep_sm} code in {args.lib}: nothing written", file=sys.stderr)
        return 1
    args.out.write_bytes(data)
    for (what, kind, sm), size in sorted(seen.items()):
        print(f"{what:8s} {'PTX' if kind == PTX else 'cubin'} sm_{sm}: {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
