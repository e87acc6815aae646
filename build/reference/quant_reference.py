#!/usr/bin/python3
"""Reference values for Microsoft.ML.Peft.Quantization (4-bit NF4/FP4/Int4, double quantization, 8-bit).

This is an independent plain-PyTorch re-implementation of bitsandbytes' CPU semantics, written from the documented
algorithm (bitsandbytes is not installed here). Run with /usr/bin/python3 (PyTorch 1.13):

    /usr/bin/python3 build/reference/quant_reference.py

It writes test/Microsoft.ML.Peft.Tests/Fixtures/quant/quant_reference.{json,bin}: a JSON manifest and one blob of
little-endian arrays. Every number the C# tests compare against comes from here.

Semantics reproduced (see src/Microsoft.ML.Peft/Quantization/README.md for the C# side):
  * 4-bit (bitsandbytes `quantize_4bit`, default torch path): flatten, blocks of `blocksize` (last one partial),
    absmax = max |x| per block (fp32), scaled = clamp(x * (1 / absmax), -1, 1), code index = argmin |scaled - code|
    (first index on exact ties), an odd element count is padded with one scaled 0.0, packed high nibble first.
  * Deliberate deviations, applied identically in C#: an all-zero block encodes every element as the code of 0
    (bitsandbytes produces NaN and index 0); when 1 / absmax overflows (subnormal absmax) the block is scaled by
    division instead.
  * Double quantization: offset = mean(absmax) (computed in float64, rounded to fp32 - torch's fp32 mean depends on
    the CPU's vector width), centred = absmax - offset (fp32), then bitsandbytes' CPU `quantize_blockwise` with
    blocksize 256: normed = centred / blockmax (fp32 division), nearest code, ties to the lower index, against the
    signed dynamic map whose entry 0 the CPU kernel overwrites with -1.0 (`quantize_cpu`). Dequantization:
    absmax' = map[q] * nested_absmax + offset, value = code[q4] * absmax' (fp32, no fused multiply-add).
"""
import json
import os
import struct
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(ROOT, "test", "Microsoft.ML.Peft.Tests", "Fixtures", "quant")

F32 = np.float32

# ---------------------------------------------------------------------------------------------------------------
# Code books
# ---------------------------------------------------------------------------------------------------------------

# The NF4 table as printed in ../shared/docs/peft-reference.md section 2.1 (bitsandbytes get_4bit_type("nf4")).
NF4_DOC = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def create_normal_map(offset=0.9677083, use_extra_value=True):
    """bitsandbytes' construction, with torch.distributions.Normal.icdf (in float64) in place of scipy's norm.ppf."""
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    # bitsandbytes feeds float32 linspace probabilities to the quantile function.
    p9 = torch.linspace(offset, 0.5, 9)[:-1].double()
    p8 = torch.linspace(offset, 0.5, 8)[:-1].double()
    assert use_extra_value
    positive = normal.icdf(p9).tolist()
    negative = (-normal.icdf(p8)).tolist()
    values = torch.tensor(positive + [0.0] * (256 - 15) + negative, dtype=torch.float32)
    values = values.sort().values
    values /= values.max()
    return values


def nf4_table():
    full = create_normal_map()
    # 256 values: 241 zeros collapse to one; keep the 15 non-zero levels plus a single 0.
    nonzero = full[full != 0]
    table = torch.cat([nonzero[nonzero < 0], torch.zeros(1), nonzero[nonzero > 0]])
    assert table.numel() == 16
    assert np.allclose(table.numpy(), np.array(NF4_DOC), atol=5e-8), (table, NF4_DOC)
    assert [round(float(v), 7) for v in table] == [round(v, 7) for v in NF4_DOC]
    # bitsandbytes ships the float32 literals; use exactly those for quantization.
    return torch.tensor(NF4_DOC, dtype=torch.float32), table


def fp4_table():
    data = torch.tensor([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                        dtype=torch.float32)
    return data / data.abs().max()


def int4_table():
    data = torch.tensor([7, 6, 5, 4, 3, 2, 1, 0, -0.0, -1, -2, -3, -4, -5, -6, -7], dtype=torch.float32)
    return data / data.abs().max()


def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    """bitsandbytes.functional.create_dynamic_map, computed with torch's float32 linspace as bitsandbytes does."""
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1 if signed
                             else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    assert additional_items == 0
    data.append(0)
    data.append(1.0)
    assert len(data) == 2 ** total_bits
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# Quantizers
# ---------------------------------------------------------------------------------------------------------------

def nearest_index(values, code):
    """argmin over |values - code| in float32; torch.argmin returns the first index among exact ties."""
    return torch.argmin(torch.abs(values.reshape(-1, 1) - code.reshape(1, -1)), dim=1)


def zero_code_index(code):
    return int(nearest_index(torch.zeros(1), code)[0])


def quantize_4bit(a, blocksize, code):
    flat = a.reshape(-1).float()
    n = flat.numel()
    blocks = (n + blocksize - 1) // blocksize
    absmax = torch.zeros(blocks, dtype=torch.float32)
    scaled = torch.zeros(n, dtype=torch.float32)
    for b in range(blocks):
        x = flat[b * blocksize:(b + 1) * blocksize]
        m = x.abs().max()
        absmax[b] = m
        if m == 0:
            continue  # scaled stays 0 -> code of zero
        inv = 1.0 / m  # float32 reciprocal, as bitsandbytes' `A * (1 / absmax)`
        if torch.isinf(inv):
            s = x / m
        else:
            s = x * inv
        scaled[b * blocksize:(b + 1) * blocksize] = torch.clamp(s, -1, 1)
    if n % 2:
        scaled = torch.cat([scaled, torch.zeros(1)])
    q = nearest_index(scaled, code).to(torch.uint8)
    packed = (q[0::2] << 4) | q[1::2]
    return packed, absmax


def unpack_4bit(packed, n):
    q = torch.empty(packed.numel() * 2, dtype=torch.long)
    q[0::2] = (packed >> 4).long()
    q[1::2] = (packed & 0xF).long()
    return q[:n]


def dequantize_4bit(packed, absmax, blocksize, code, n):
    q = unpack_4bit(packed, n)
    scale = absmax.repeat_interleave(blocksize)[:n]
    return code[q] * scale


def quantize_blockwise_cpu(a, code, blocksize):
    """bitsandbytes' C++ CPU kernel (quantize_block): normed = x / absmax, nearest code, ties to the lower index."""
    flat = a.reshape(-1).float()
    n = flat.numel()
    blocks = (n + blocksize - 1) // blocksize
    absmax = torch.zeros(blocks, dtype=torch.float32)
    normed = torch.zeros(n, dtype=torch.float32)
    for b in range(blocks):
        x = flat[b * blocksize:(b + 1) * blocksize]
        m = x.abs().max()
        absmax[b] = m
        if m != 0:
            normed[b * blocksize:(b + 1) * blocksize] = x / m
    q = nearest_index(normed, code).to(torch.uint8)
    return q, absmax


def dequantize_blockwise(q, absmax, code, blocksize):
    n = q.numel()
    return code[q.long()] * absmax.repeat_interleave(blocksize)[:n]


def cpu_signed_map():
    m = create_dynamic_map(signed=True).clone()
    m[0] = -1.0  # what bitsandbytes' quantize_cpu does to the map it is given, in place
    return m


def double_quantize(absmax):
    offset = F32(np.float64(absmax.double().sum().item()) / absmax.numel())
    torch_mean = absmax.mean().item()
    centred = absmax - torch.tensor(offset, dtype=torch.float32)
    q, nested_absmax = quantize_blockwise_cpu(centred, cpu_signed_map(), 256)
    return q, nested_absmax, offset, torch_mean


def dequantize_double(q, nested_absmax, offset):
    return dequantize_blockwise(q, nested_absmax, cpu_signed_map(), 256) + torch.tensor(offset, dtype=torch.float32)


def quant_state_json(quant_type, blocksize, shape, dq, offset):
    d = {"quant_type": quant_type, "blocksize": blocksize, "dtype": "float32", "shape": list(shape)}
    if dq:
        d.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": float(offset)})
    return json.dumps(d)


def int8_rowwise(a):
    stats = a.abs().max(dim=1).values.float()
    safe = torch.where(stats == 0, torch.ones_like(stats), stats)
    q = torch.round(a * (127.0 / safe.unsqueeze(-1))).to(torch.int8)
    q[stats == 0] = 0
    deq = (q.float() * stats.view(-1, 1)) * 7.874015718698502e-3
    return q, stats, deq


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------

def special_tensor(nf4, fp4, int4):
    """Hand-made blocks of 64: all zeros, then values on and next to every code midpoint of each type."""
    blocks = [np.zeros(64, dtype=F32)]
    for code in (nf4, fp4, int4):
        levels = sorted(set(float(v) for v in code.tolist()))
        vals = [1.0, -1.0]
        for lo, hi in zip(levels[:-1], levels[1:]):
            mid = F32((F32(lo) + F32(hi)) / F32(2))
            vals += [mid, np.nextafter(mid, F32(2)), np.nextafter(mid, F32(-2))]
        while len(vals) < 64:
            vals.append(-0.0 if len(vals) % 2 else 0.0)
        blocks.append(np.array(vals[:64], dtype=F32))
    return torch.from_numpy(np.concatenate(blocks).reshape(4, 64))


def inputs(nf4, fp4, int4):
    g = torch.Generator().manual_seed(20240917)
    t = {}
    t["normal_1000"] = torch.randn(1000, generator=g) * 0.02
    t["normal_4097"] = torch.randn(4097, generator=g) * 0.05
    torch.manual_seed(7)
    t["student_t3_48x80"] = torch.distributions.StudentT(3.0).sample((48, 80)) * 0.01
    t["normal_272x64"] = torch.randn(272, 64, generator=g) * 0.03
    t["special_4x64"] = special_tensor(nf4, fp4, int4)
    t["subnormal_70"] = torch.from_numpy((np.arange(70, dtype=F32) - 35) * F32(3e-41))
    return t


# (tensor, quant types, block sizes, double quantization off/on) combinations written to the fixture.
BOTH = (False, True)
PLAN = [
    ("special_4x64", ["nf4", "fp4", "int4"], [64, 128], BOTH),
    ("subnormal_70", ["nf4"], [64], BOTH),
    ("normal_1000", ["nf4", "fp4", "int4"], [64, 128, 4096], BOTH),
    ("normal_4097", ["nf4", "fp4", "int4"], [64], BOTH),
    ("normal_4097", ["nf4"], [4096], BOTH),
    ("student_t3_48x80", ["nf4", "fp4", "int4"], [64], BOTH),
    ("student_t3_48x80", ["nf4"], [128], (True,)),
    ("normal_272x64", ["nf4"], [64], (True,)),  # 272 absmax values: two nested blocks, the second partial
]


# ---------------------------------------------------------------------------------------------------------------
# Fixture writer
# ---------------------------------------------------------------------------------------------------------------

class Blob:
    def __init__(self):
        self.data = bytearray()
        self.arrays = {}

    def add(self, name, array, dtype):
        arr = np.ascontiguousarray(np.asarray(array).astype({"f32": "<f4", "u8": "u1", "i8": "i1"}[dtype]))
        while len(self.data) % 4:
            self.data.append(0)
        self.arrays[name] = {"dtype": dtype, "offset": len(self.data), "count": int(arr.size),
                             "shape": list(arr.shape)}
        self.data += arr.tobytes()
        return name


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", float(x)))[0]


def main():
    nf4, nf4_constructed = nf4_table()
    codes = {"nf4": nf4, "fp4": fp4_table(), "int4": int4_table()}
    blob = Blob()
    manifest = {"generator": "build/reference/quant_reference.py", "torch": torch.__version__, "arrays": blob.arrays}

    blob.add("code.nf4", nf4, "f32")
    blob.add("code.nf4_constructed", nf4_constructed, "f32")
    blob.add("code.fp4", codes["fp4"], "f32")
    blob.add("code.int4", codes["int4"], "f32")
    blob.add("dynamic.signed", create_dynamic_map(True), "f32")
    blob.add("dynamic.unsigned", create_dynamic_map(False), "f32")

    tensors = inputs(nf4, codes["fp4"], codes["int4"])
    for name, t in tensors.items():
        blob.add("input." + name, t, "f32")
    manifest["inputs"] = {name: list(t.shape) for name, t in tensors.items()}

    cases = []
    for tname, types, sizes, dq_options in PLAN:
        t = tensors[tname]
        n = t.numel()
        for qt in types:
            code = codes[qt]
            for bs in sizes:
                packed, absmax = quantize_4bit(t, bs, code)
                for dq in dq_options:
                    key = f"{tname}.{qt}.{bs}.{'dq' if dq else 'raw'}"
                    case = {"key": key, "tensor": tname, "shape": list(t.shape), "quant_type": qt, "blocksize": bs,
                            "double_quant": dq, "packed": blob.add(key + ".packed", packed, "u8")}
                    if dq:
                        q, nested, offset, torch_mean = double_quantize(absmax)
                        scales = dequantize_double(q, nested, offset)
                        case["absmax"] = blob.add(key + ".absmax", q, "u8")
                        case["nested_absmax"] = blob.add(key + ".nested_absmax", nested, "f32")
                        case["offset_bits"] = f32_bits(offset)
                        case["offset"] = float(offset)
                        case["torch_fp32_mean"] = torch_mean
                    else:
                        scales = absmax
                        case["absmax"] = blob.add(key + ".absmax", absmax, "f32")
                        offset = None
                    deq = dequantize_4bit(packed, scales, bs, code, n)
                    case["dequantized"] = blob.add(key + ".dequantized", deq, "f32")
                    case["quant_state_json"] = quant_state_json(qt, bs, t.shape, dq, offset)
                    cases.append(case)
    manifest["cases"] = cases

    # 8-bit blockwise dynamic quantization, as 8-bit optimizers keep their moments.
    g = torch.Generator().manual_seed(99)
    m1 = torch.randn(5000, generator=g) * 1e-3
    m2 = (torch.randn(5000, generator=g) * 1e-3) ** 2
    m2[100:400] = 0.0  # a zero run spanning a whole 256-block
    blob.add("input.moment1_5000", m1, "f32")
    blob.add("input.moment2_5000", m2, "f32")
    blockwise = []
    for label, x, qmap, map_name in (("signed", m1, cpu_signed_map(), "signed_cpu"),
                                     ("unsigned", m2, create_dynamic_map(False), "unsigned")):
        for bs in (256, 2048):
            q, am = quantize_blockwise_cpu(x, qmap, bs)
            key = f"blockwise8.{label}.{bs}"
            blockwise.append({"key": key, "input": "input." + ("moment1_5000" if label == "signed" else "moment2_5000"),
                              "map": map_name, "blocksize": bs,
                              "codes": blob.add(key + ".codes", q, "u8"),
                              "absmax": blob.add(key + ".absmax", am, "f32"),
                              "dequantized": blob.add(key + ".dequantized", dequantize_blockwise(q, am, qmap, bs), "f32")})
    manifest["blockwise8"] = blockwise

    w = torch.randn(24, 40, generator=g) * 0.05
    w[5] = 0.0
    w[7, 3] = 0.5  # an outlier dominates one row's scale
    q, stats, deq = int8_rowwise(w)
    blob.add("input.int8_24x40", w, "f32")
    manifest["int8_rowwise"] = {"input": "input.int8_24x40", "codes": blob.add("int8.codes", q, "i8"),
                                "stats": blob.add("int8.stats", stats, "f32"),
                                "dequantized": blob.add("int8.dequantized", deq, "f32")}

    # Quantization error on Gaussian data, reported for comparison with the C# test's printout.
    x = torch.randn(1 << 16, generator=g)
    mse = {}
    for qt, code in codes.items():
        packed, absmax = quantize_4bit(x, 64, code)
        mse[qt] = float(((dequantize_4bit(packed, absmax, 64, code, x.numel()) - x) ** 2).mean())
    manifest["gaussian_mse_block64"] = mse
    print("MSE on N(0,1), block 64:", mse, file=sys.stderr)

    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "quant_reference.bin"), "wb") as f:
        f.write(bytes(blob.data))
    with open(os.path.join(OUT_DIR, "quant_reference.json"), "w") as f:
        json.dump(manifest, f, indent=None, separators=(",", ":"))
    print(f"wrote {len(cases)} 4-bit cases, {len(blob.data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
