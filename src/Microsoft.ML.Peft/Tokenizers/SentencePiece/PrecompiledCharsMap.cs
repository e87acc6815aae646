using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// SentencePiece's compiled normalisation rules (<c>normalizer_spec.precompiled_charsmap</c>, e.g. nmt_nfkc): a
/// little-endian uint32 trie size, a Darts-clone double-array trie over UTF-8 byte strings, then a pool of
/// NUL-terminated replacement strings that the trie's leaf values point into. <see cref="LongestMatch"/> finds the
/// longest rule that prefixes the input, as SentencePiece's NormalizePrefix does.
/// </summary>
/// <remarks>
/// Every array access is bounds-checked; a corrupt trie just stops matching instead of reading out of range. Decoded
/// replacement strings are cached by pool offset, so a rule is turned into UTF-16 once.
/// </remarks>
internal sealed class PrecompiledCharsMap
{
    private readonly uint[] _units;
    private readonly byte[] _pool;
    private readonly ConcurrentDictionary<int, string> _replacements = new();

    private PrecompiledCharsMap(uint[] units, byte[] pool)
    {
        _units = units;
        _pool = pool;
    }

    public static PrecompiledCharsMap Parse(byte[] blob, string sourceName)
    {
        const string field = "ModelProto.normalizer_spec.precompiled_charsmap";
        if (blob.Length <= 4) throw new TokenizerFormatException(sourceName, field, "blob too short");
        uint trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize >= (uint)blob.Length - 4 || trieSize % 4 != 0)
        {
            throw new TokenizerFormatException(sourceName, field, $"trie size {trieSize} does not fit the {blob.Length}-byte blob");
        }
        var units = new uint[trieSize / 4];
        for (int i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + 4 * i));
        return new PrecompiledCharsMap(units, blob[(4 + (int)trieSize)..]);
    }

    /// <summary>
    /// The longest rule matching a prefix of <paramref name="utf8"/> that ends where <paramref name="charEnds"/> is not
    /// negative (a character boundary): its length in bytes (0 when none) and its replacement text.
    /// </summary>
    public int LongestMatch(ReadOnlySpan<byte> utf8, out string replacement, ReadOnlySpan<int> charEnds)
    {
        replacement = string.Empty;
        if (_units.Length == 0) return 0;
        int bestLength = 0, bestValue = 0;
        uint node = Offset(_units[0]);
        for (int i = 0; i < utf8.Length; i++)
        {
            node ^= utf8[i];
            if (node >= (uint)_units.Length) break;
            uint unit = _units[node];
            if ((unit & 0x800000FFu) != utf8[i]) break;  // label mismatch
            node ^= Offset(unit);
            if (((unit >> 8) & 1) != 0 && charEnds[i + 1] >= 0)
            {
                if (node >= (uint)_units.Length) break;
                bestLength = i + 1;
                bestValue = (int)(_units[node] & 0x7FFFFFFFu);
            }
        }
        if (bestLength == 0 || bestValue >= _pool.Length) return 0;
        replacement = _replacements.GetOrAdd(bestValue, DecodeReplacement);
        return bestLength;
    }

    private string DecodeReplacement(int offset)
    {
        var bytes = _pool.AsSpan(offset);
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? bytes : bytes[..end]);
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
