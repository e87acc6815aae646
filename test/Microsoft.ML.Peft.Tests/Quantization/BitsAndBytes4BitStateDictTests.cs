using System.Text;
using System.Text.Json;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.Quantization;

[TestClass]
public sealed class BitsAndBytes4BitStateDictTests
{
    private const string Weight = "model.layers.0.self_attn.q_proj.weight";

    [TestMethod]
    public void PackedQuantState_IsByteIdenticalToPythonJsonDumps_ForEveryFixtureCase()
    {
        QuantFixture fixture = QuantFixture.Instance;
        foreach (JsonElement c in fixture.FourBitCases)
        {
            float[] input = fixture.Floats("input." + c.GetProperty("tensor").GetString());
            int[] shape = [.. c.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())];
            Assert.IsTrue(FourBitTypeNames.TryParse(c.GetProperty("quant_type").GetString(), out FourBitType type));
            var tensor = QuantizedTensor4Bit.Quantize(input, shape, type, c.GetProperty("blocksize").GetInt32(), c.GetProperty("double_quant").GetBoolean());
            Assert.AreEqual(c.GetProperty("quant_state_json").GetString(), BitsAndBytes4BitStateDict.QuantStateJson(tensor), c.GetProperty("key").GetString());
        }
    }

    [TestMethod]
    public void PythonFloatFormat_MatchesRepr()
    {
        // Expected strings are Python 3 repr() output.
        (double Value, string Repr)[] cases =
        [
            (0.75, "0.75"), (1.0, "1.0"), (0.0, "0.0"), (-0.0, "-0.0"), (1e-05, "1e-05"), (0.0001, "0.0001"),
            (1.5e-05, "1.5e-05"), (1e16, "1e+16"), (1234567890123456.0, "1234567890123456.0"), (123.456, "123.456"),
            (-2.5e-7, "-2.5e-07"), (0.05004651099443436, "0.05004651099443436"), (1.0350130587349531e-39, "1.0350130587349531e-39"),
            (1e100, "1e+100"), (12345.0, "12345.0"), (0.001, "0.001"),
        ];
        foreach ((double value, string repr) in cases) Assert.AreEqual(repr, PythonFloatFormat.Format(value), repr);
    }

    [TestMethod]
    public void Arrays_HaveBitsAndBytesNamesDtypesAndShapes()
    {
        var tensor = QuantizedTensor4Bit.Quantize(QuantizedTensor4BitTests.Gaussian(96 * 200, 3), [96, 200]);
        IReadOnlyList<QuantizedArray> arrays = BitsAndBytes4BitStateDict.ToArrays(tensor, Weight);
        string[] expected =
        [
            $"{Weight}|U8|9600,1", $"{Weight}.absmax|U8|300", $"{Weight}.quant_map|F32|16",
            $"{Weight}.nested_absmax|F32|2", $"{Weight}.nested_quant_map|F32|256",
        ];
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], $"{arrays[i].Name}|{arrays[i].SafeTensorsDType}|{string.Join(",", arrays[i].Shape)}");
        Assert.AreEqual($"{Weight}.quant_state.bitsandbytes__nf4", arrays[5].Name);
        StringAssert.StartsWith(Encoding.UTF8.GetString(arrays[5].Data), "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [96, 200], \"nested_blocksize\": 256");

        var plain = QuantizedTensor4Bit.Quantize(QuantizedTensor4BitTests.Gaussian(99, 3), [99], FourBitType.FP4, 128, doubleQuant: false);
        IReadOnlyList<QuantizedArray> plainArrays = BitsAndBytes4BitStateDict.ToArrays(plain);
        Assert.AreEqual("weight|U8|50,1 weight.absmax|F32|1 weight.quant_map|F32|16 weight.quant_state.bitsandbytes__fp4|U8|" + plainArrays[3].ElementCount,
            string.Join(" ", plainArrays.Select(a => $"{a.Name}|{a.SafeTensorsDType}|{string.Join(",", a.Shape)}")));
    }

    [TestMethod]
    public void RoundTrip_RestoresIdenticalValues()
    {
        foreach (bool dq in new[] { false, true })
        {
            foreach (FourBitType type in Enum.GetValues<FourBitType>())
            {
                var tensor = QuantizedTensor4Bit.Quantize(QuantizedTensor4BitTests.Gaussian(33 * 70, 5), [33, 70], type, 128, dq, "bfloat16");
                var restored = BitsAndBytes4BitStateDict.FromArrays(ToDictionary(BitsAndBytes4BitStateDict.ToArrays(tensor, Weight)), Weight);
                Assert.AreEqual(type, restored.QuantType);
                Assert.AreEqual("bfloat16", restored.SourceDType);
                CollectionAssert.AreEqual(tensor.Shape, restored.Shape);
                CollectionAssert.AreEqual(tensor.Dequantize(), restored.Dequantize(), $"{type} dq={dq}");
            }
        }
    }

    [TestMethod]
    public void CorruptedStates_FailWithTheKeyOrTensorNamed()
    {
        var tensor = QuantizedTensor4Bit.Quantize(QuantizedTensor4BitTests.Gaussian(64 * 10, 6), [10, 64]);
        string stateKey = $"{Weight}.quant_state.bitsandbytes__nf4";
        string json = BitsAndBytes4BitStateDict.QuantStateJson(tensor);

        ExpectError(WithState(tensor, "{\"quant_type\": \"nf4\", \"blocksize\": 64,"), stateKey, "not valid JSON");
        ExpectError(WithState(tensor, json.Replace("\"blocksize\": 64, ", "", StringComparison.Ordinal)), stateKey, "missing 'blocksize'");
        ExpectError(WithState(tensor, json.Replace("\"blocksize\": 64", "\"blocksize\": 48", StringComparison.Ordinal)), stateKey, "'blocksize' 48");
        ExpectError(WithState(tensor, json.Replace("\"blocksize\": 64", "\"blocksize\": \"64\"", StringComparison.Ordinal)), stateKey, "'blocksize' must be an integer");
        ExpectError(WithState(tensor, json.Replace("[10, 64]", "[10, 65]", StringComparison.Ordinal)), Weight, "holds 650 values, which needs 325");
        ExpectError(WithState(tensor, json.Replace("[10, 64]", "[10, 0]", StringComparison.Ordinal)), stateKey, "'shape' entry 1");
        ExpectError(WithState(tensor, json.Replace("\"quant_type\": \"nf4\"", "\"quant_type\": \"fp4\"", StringComparison.Ordinal)), stateKey, "disagrees with the key suffix");
        ExpectError(WithState(tensor, json.Replace(", \"nested_dtype\": \"float32\"", "", StringComparison.Ordinal)), stateKey, "missing 'nested_dtype'");
        ExpectError(WithState(tensor, json.Replace("}", ", \"extra\": 1}", StringComparison.Ordinal)), stateKey, "unknown field 'extra'");
        ExpectError(WithState(tensor, json.Replace("\"dtype\": \"float32\"", "\"dtype\": \"int8\"", StringComparison.Ordinal)), stateKey, "'dtype' is 'int8'");

        // Block size 128 in the state while the stored absmax has 64-blocks: 5 scales needed, 10 stored.
        ExpectError(WithState(tensor, json.Replace("\"blocksize\": 64", "\"blocksize\": 128", StringComparison.Ordinal)), $"{Weight}.absmax", "has 10 elements");

        var arrays = ToDictionary(BitsAndBytes4BitStateDict.ToArrays(tensor, Weight));
        arrays.Remove($"{Weight}.nested_quant_map");
        ExpectError(arrays, $"{Weight}.nested_quant_map", "missing");

        arrays = ToDictionary(BitsAndBytes4BitStateDict.ToArrays(tensor, Weight));
        float[] badMap = tensor.QuantMap.ToArray();
        badMap[3] += 0.01f;
        arrays[$"{Weight}.quant_map"] = QuantizedArray.FromFloats($"{Weight}.quant_map", badMap, [16]);
        ExpectError(arrays, $"{Weight}.quant_map[3]", "nf4 code 3");

        arrays = ToDictionary(BitsAndBytes4BitStateDict.ToArrays(tensor, Weight));
        arrays.Remove(stateKey);
        ExpectError(arrays, Weight, "no '");
    }

    private static Dictionary<string, QuantizedArray> WithState(QuantizedTensor4Bit tensor, string json)
    {
        var arrays = ToDictionary(BitsAndBytes4BitStateDict.ToArrays(tensor, Weight));
        string key = $"{Weight}.quant_state.bitsandbytes__nf4";
        byte[] bytes = Encoding.UTF8.GetBytes(json);
        arrays[key] = QuantizedArray.FromBytes(key, bytes, [bytes.Length]);
        return arrays;
    }

    private static void ExpectError(Dictionary<string, QuantizedArray> arrays, string culprit, string detail)
    {
        var error = Assert.ThrowsExactly<InvalidDataException>(() => BitsAndBytes4BitStateDict.FromArrays(arrays, Weight));
        StringAssert.StartsWith(error.Message, culprit, StringComparison.Ordinal);
        StringAssert.Contains(error.Message, detail, StringComparison.Ordinal);
    }

    private static Dictionary<string, QuantizedArray> ToDictionary(IEnumerable<QuantizedArray> arrays) =>
        arrays.ToDictionary(a => a.Name, StringComparer.Ordinal);
}
