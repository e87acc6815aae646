#!/usr/bin/env python3
"""Checks a .safetensors file the way the reference reader (huggingface/safetensors) does and loads it into torch.

Usage: /usr/bin/python3 build/reference/check_safetensors.py FILE [FILE...]
Rules checked: 8-byte LE header length <= 100 MB and inside the file, UTF-8 JSON object, __metadata__ str->str,
known dtypes, offsets sorted/contiguous from 0 to the end of the file, byte size == dtype size * prod(shape),
header padded to 8 bytes (what the reference writer produces). Every tensor is then materialised with
torch.frombuffer and its fp64 sum printed, so results can be compared with another reader.
"""
import json
import struct
import sys

import torch

DTYPES = {"F64": (torch.float64, 8), "F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2),
          "I64": (torch.int64, 8), "I32": (torch.int32, 4), "I16": (torch.int16, 2), "I8": (torch.int8, 1),
          "U8": (torch.uint8, 1), "BOOL": (torch.bool, 1)}


def check(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    assert n <= 100_000_000 and 8 + n <= len(data), "header length"
    assert n % 8 == 0, "header not padded to a multiple of 8"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    assert meta is None or all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata"
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos, body = 0, data[8 + n:]
    for name, info in entries:
        begin, end = info["data_offsets"]
        assert begin == pos and end >= begin, f"{name}: offsets not contiguous"
        dtype, size = DTYPES[info["dtype"]]
        count = 1
        for d in info["shape"]:
            count *= d
        assert end - begin == count * size, f"{name}: size"
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(info["shape"]) if count else torch.zeros(info["shape"], dtype=dtype)
        print(f"{name} {info['dtype']} {list(t.shape)} sum={t.double().sum().item()!r}")
        pos = end
    assert pos == len(body), "data area not fully covered"
    print(f"OK {path}: {len(entries)} tensors, metadata={meta}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        check(p)
