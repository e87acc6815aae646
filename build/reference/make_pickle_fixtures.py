#!/usr/bin/env python3
"""Writes the checkpoint-I/O test fixtures under test/Microsoft.ML.Peft.Tests/Fixtures/io/.

Run with the interpreter that has PyTorch:  /usr/bin/python3 build/reference/make_pickle_fixtures.py

* torch_state_dict.bin (+ .json): torch.save of a state dict with every supported dtype, a scalar, an empty tensor,
  non-contiguous views (transpose, 2-D slice with storage offset, zero-stride expand), two tensors sharing one storage,
  a tied (identical) tensor, an nn.Parameter and a nested dict. The JSON lists, for every tensor name the C# reader
  should report, its safetensors dtype, shape and values in row-major order, as PyTorch itself reads them back.
* torch_protocol4.bin (+ .json): a small state dict saved with pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME, ...).
* legacy_format.bin: torch.save with the pre-1.6 (non-zip) serialization, which the reader refuses clearly.
* malicious_os_system.bin, malicious_eval_stack_global.bin, malicious_after_tensor.bin: zip files laid out like
  torch.save output whose data.pkl is hand-assembled from pickle opcodes and names a forbidden global
  (os.system / builtins.eval). They are only WRITTEN here, never unpickled.
* mixed_dtypes.safetensors (+ .json): a safetensors file written by hand from the specification (8-byte LE header
  length, compact JSON header padded with spaces to 8 bytes, contiguous data), holding F32/F16/BF16/F64/I64/I32/I16/
  I8/U8/BOOL tensors whose values come from PyTorch's own dtype conversions.
"""
import collections
import io
import json
import os
import struct
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "Microsoft.ML.Peft.Tests", "Fixtures", "io")

ST_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def describe(t):
    t = t.detach()
    values = t.reshape(-1).tolist() if t.dtype != torch.bool else [int(v) for v in t.reshape(-1).tolist()]
    if t.dtype in (torch.float16, torch.bfloat16):
        values = t.reshape(-1).float().tolist()  # exact: both widen to fp32 without rounding
    return {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape), "values": values}


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def state_dict_fixture():
    g = torch.Generator().manual_seed(1234)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, generator=g)
    sd["f16"] = torch.randn(5, generator=g).half()
    sd["bf16"] = torch.randn(2, 2, generator=g).bfloat16()
    sd["f64"] = torch.randn(3, generator=g).double()
    sd["i64"] = torch.tensor([-3, 0, 2**40, -(2**62)], dtype=torch.int64)
    sd["i32"] = torch.tensor([[-7, 8], [2**31 - 1, -(2**31)]], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767, 5], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd["transposed"] = base.t()                              # stride (1, 4): non-contiguous
    grid = torch.arange(20, dtype=torch.float32).reshape(4, 5) * 0.5
    sd["sliced"] = grid[1:, 1:4]                             # storage offset 6, stride (5, 1)
    sd["row_slice"] = grid[2:]                               # contiguous, storage offset 10
    sd["expanded"] = torch.tensor([[1.0, -2.0, 3.0]]).expand(2, 3)  # stride (0, 1)
    shared = torch.linspace(-1, 1, 10)
    sd["shared_a"] = shared[:4]                              # same storage as shared_b
    sd["shared_b"] = shared[4:].view(2, 3)
    tied = torch.randn(2, 2, generator=g)
    sd["tied_1"] = tied                                      # the same tensor object twice
    sd["tied_2"] = tied
    sd["param"] = torch.nn.Parameter(torch.tensor([0.5, -0.25]))
    sd["nested"] = {"inner.weight": torch.tensor([[1, 2]], dtype=torch.int32)}
    sd["not_a_tensor"] = 42                                  # skipped by the reader
    torch.save(sd, os.path.join(OUT, "torch_state_dict.bin"))

    expected = collections.OrderedDict()
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            expected[k] = describe(v)
        elif isinstance(v, dict):
            for k2, v2 in v.items():
                expected[k + "." + k2] = describe(v2)
    write_json("torch_state_dict.json", expected)


def protocol4_fixture():
    sd = collections.OrderedDict()
    sd["w"] = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 3
    sd["b"] = torch.tensor([1.5, -2.5], dtype=torch.float16)
    torch.save(sd, os.path.join(OUT, "torch_protocol4.bin"), pickle_protocol=4)
    write_json("torch_protocol4.json", {k: describe(v) for k, v in sd.items()})


def legacy_fixture():
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "legacy_format.bin"), _use_new_zipfile_serialization=False)


def torch_like_zip(name, pickle_bytes, storages=None):
    """A zip with torch.save's layout (stored entries under one folder) around a hand-made data.pkl."""
    with zipfile.ZipFile(os.path.join(OUT, name), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        for key, data in (storages or {}).items():
            z.writestr("archive/data/" + key, data)
        z.writestr("archive/version", b"3\n")


def binunicode(s):
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def malicious_fixtures():
    # PROTO 2; GLOBAL os.system; 'echo pwned'; TUPLE1; REDUCE; STOP  -- would run a shell command if unpickled.
    os_system = b"\x80\x02" + b"cos\nsystem\n" + binunicode("echo pwned") + b"\x85" + b"R" + b"."
    torch_like_zip("malicious_os_system.bin", os_system)

    # Protocol 4 form: the module and name are strings on the stack, then STACK_GLOBAL.
    short = lambda s: b"\x8c" + bytes([len(s)]) + s.encode()
    eval_stack_global = b"\x80\x04" + short("builtins") + short("eval") + b"\x93" + short("1+1") + b"\x85" + b"R" + b"."
    torch_like_zip("malicious_eval_stack_global.bin", eval_stack_global)

    # A well-formed tensor entry first, then the forbidden global as the value of a second key.
    storage = struct.pack("<2f", 1.0, 2.0)
    pid = b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu") + b"K\x02" + b"t"
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n" + b"(" + pid + b"Q" + b"K\x00" + b"K\x02\x85" + b"K\x01\x85"
              + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"t" + b"R")
    evil = b"cposix\nsystem\n" + binunicode("id") + b"\x85" + b"R"
    after = b"\x80\x02" + b"}" + b"(" + binunicode("ok") + tensor + binunicode("evil") + evil + b"u" + b"."
    torch_like_zip("malicious_after_tensor.bin", after, {"0": storage})


def safetensors_by_spec(path, tensors):
    """Writes a safetensors file straight from the format description (independent of the C# writer)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        flat = t.reshape(-1).contiguous()
        raw = flat.view(torch.uint8).numpy().tobytes() if t.dtype != torch.bool else flat.to(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def mixed_dtype_safetensors_fixture():
    g = torch.Generator().manual_seed(99)
    tensors = collections.OrderedDict()
    tensors["f32"] = torch.randn(2, 3, generator=g)
    tensors["f16"] = (torch.randn(37, generator=g) * 100).half()        # 37: exercises vector body and tail
    tensors["bf16"] = (torch.randn(3, 23, generator=g) * 1e-3).bfloat16()
    tensors["f64"] = torch.randn(4, generator=g).double()
    tensors["i64"] = torch.tensor([-(2**40), 7], dtype=torch.int64)
    tensors["i32"] = torch.tensor([-5, 2**30], dtype=torch.int32)
    tensors["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    tensors["i8"] = torch.tensor([[-128, 127], [3, -4]], dtype=torch.int8)
    tensors["u8"] = torch.tensor([255, 0, 17], dtype=torch.uint8)
    tensors["bool"] = torch.tensor([False, True])
    tensors["scalar"] = torch.tensor(-0.5)
    safetensors_by_spec(os.path.join(OUT, "mixed_dtypes.safetensors"), tensors)
    write_json("mixed_dtypes.json", {k: describe(v) for k, v in tensors.items()})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    state_dict_fixture()
    protocol4_fixture()
    legacy_fixture()
    malicious_fixtures()
    mixed_dtype_safetensors_fixture()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
