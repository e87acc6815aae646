using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft.Tests.IO;

/// <summary>
/// Feeds the safetensors reader 12,000 random and mutated files. The only acceptable outcomes are a successful open
/// (after which every tensor must be readable) or a <see cref="SafeTensorsFormatException"/>; any other exception,
/// a hang or a runaway allocation fails the test.
/// </summary>
[TestClass]
public sealed class SafeTensorsFuzzTests
{
    private static readonly string[] DTypes = ["F32", "F16", "BF16", "I8", "U8", "F64", "I64", "BOOL", "F8_E4M3", "X", "", "f32"];

    private static readonly string[] Numbers =
    [
        "0", "1", "-1", "7", "8", "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "-9223372036854775808", "1e3", "1.5", "1e400", "null", "\"4\"", "[]", "{}", "true",
    ];

    [TestMethod]
    public void TwelveThousandMutatedFiles_OnlyDocumentedExceptions()
    {
        var rng = new Random(20240611);
        byte[] valid = File.ReadAllBytes(TestPaths.Fixture("io", "mixed_dtypes.safetensors"));
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        string header = Encoding.UTF8.GetString(valid, 8, headerLength);
        var clock = Stopwatch.StartNew();
        long allocatedBefore = GC.GetTotalAllocatedBytes();
        int accepted = 0, rejected = 0;

        for (int i = 0; i < 12_000; i++)
        {
            byte[] candidate = (i % 4) switch
            {
                0 => MutateBytes(valid, headerLength, rng),
                1 => WithHeader(MutateJson(header, rng), valid, headerLength, rng),
                2 => RandomHeader(rng),
                _ => Truncate(valid, rng),
            };
            try
            {
                using var file = SafeTensorsFile.FromBytes(candidate, $"fuzz-{i}");
                foreach (var t in file.Tensors)
                {
                    if (t.ElementCount < 1_000_000) t.ToFloat32Array(); // touches every byte of the tensor
                }
                accepted++;
            }
            catch (SafeTensorsFormatException e)
            {
                Assert.StartsWith($"fuzz-{i}: ", e.Message);
                rejected++;
            }
        }

        long allocatedMb = (GC.GetTotalAllocatedBytes() - allocatedBefore) >> 20;
        Console.WriteLine($"fuzz: {accepted} accepted, {rejected} rejected, {clock.ElapsedMilliseconds} ms, {allocatedMb} MB allocated");
        Assert.IsGreaterThan(1000, rejected);
        Assert.IsGreaterThan(100, accepted);
        Assert.IsLessThan(10_000, clock.ElapsedMilliseconds, "fuzzing must stay fast (no hang)");
        Assert.IsLessThan(2_000, allocatedMb, "validation must come before any large allocation");
    }

    private static byte[] MutateBytes(byte[] valid, int headerLength, Random rng)
    {
        var copy = (byte[])valid.Clone();
        int flips = rng.Next(1, 5);
        for (int f = 0; f < flips; f++)
        {
            // Mostly hit the length prefix and the header, where the validation lives.
            int at = rng.Next(3) == 0 ? rng.Next(8) : rng.Next(8, 8 + headerLength);
            copy[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)(copy[at] ^ (1 << rng.Next(8))), _ => (byte)"0123456789[]{},:\"-"[rng.Next(17)] };
        }
        return copy;
    }

    private static string MutateJson(string header, Random rng)
    {
        var sb = new StringBuilder(header.TrimEnd());
        int edits = rng.Next(1, 4);
        for (int e = 0; e < edits; e++)
        {
            string text = sb.ToString();
            int kind = rng.Next(5);
            if (kind == 0)
            {
                // Replace a number with a hostile one.
                var positions = Enumerable.Range(0, text.Length).Where(p => char.IsDigit(text[p]) && (p == 0 || !char.IsDigit(text[p - 1]))).ToArray();
                if (positions.Length == 0) continue;
                int start = positions[rng.Next(positions.Length)], end = start;
                while (end < text.Length && char.IsDigit(text[end])) end++;
                sb.Remove(start, end - start).Insert(start, Numbers[rng.Next(Numbers.Length)]);
            }
            else if (kind == 1)
            {
                int at = text.IndexOf("\"dtype\":\"", rng.Next(text.Length), StringComparison.Ordinal);
                if (at < 0) continue;
                at += 9;
                int end = text.IndexOf('"', at);
                sb.Remove(at, end - at).Insert(at, DTypes[rng.Next(DTypes.Length)]);
            }
            else if (kind == 2)
            {
                int at = rng.Next(text.Length);
                sb.Remove(at, Math.Min(rng.Next(1, 12), text.Length - at));
            }
            else if (kind == 3)
            {
                sb.Insert(rng.Next(text.Length), (string[])["[", "]", "{", "}", ",", "\"", ":", "0", "-", "\"__metadata__\":1,"] is var tokens ? tokens[rng.Next(tokens.Length)] : "");
            }
            else
            {
                sb.Replace("\"shape\":[", "\"shape\":[" + Numbers[rng.Next(Numbers.Length)] + ",", rng.Next(text.Length / 2), text.Length / 2);
            }
        }
        return sb.ToString();
    }

    private static byte[] WithHeader(string header, byte[] valid, int headerLength, Random rng)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        int data = valid.Length - 8 - headerLength + (rng.Next(4) == 0 ? rng.Next(-8, 9) : 0);
        var file = new byte[8 + h.Length + Math.Max(0, data)];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        Array.Copy(valid, 8 + headerLength, file, 8 + h.Length, Math.Max(0, Math.Min(data, valid.Length - 8 - headerLength)));
        return file;
    }

    private static byte[] RandomHeader(Random rng)
    {
        var sb = new StringBuilder("{");
        int count = rng.Next(0, 5);
        long offset = 0;
        for (int t = 0; t < count; t++)
        {
            string dtype = DTypes[rng.Next(DTypes.Length)];
            int rank = rng.Next(0, 4);
            var dims = Enumerable.Range(0, rank).Select(_ => rng.Next(4) == 0 ? Numbers[rng.Next(Numbers.Length)] : rng.Next(0, 5).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            long length = rng.Next(0, 40);
            sb.Append($"\"t{t}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", dims)}],\"data_offsets\":[{offset},{offset + length}]}},");
            offset += rng.Next(3) == 0 ? length + rng.Next(-2, 3) : length;
        }
        if (rng.Next(3) == 0) sb.Append("\"__metadata__\":{\"format\":\"pt\"},");
        if (sb[^1] == ',') sb.Length--;
        sb.Append('}');
        byte[] h = Encoding.UTF8.GetBytes(sb.ToString());
        var file = new byte[8 + h.Length + Math.Max(0, offset + rng.Next(-1, 2))];
        ulong declared = rng.Next(20) == 0 ? (ulong)rng.NextInt64() : (ulong)h.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(file, declared);
        h.CopyTo(file, 8);
        return file;
    }

    private static byte[] Truncate(byte[] valid, Random rng) => valid[..rng.Next(0, valid.Length)];
}
