using System.Buffers.Binary;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A minimal protocol-buffers wire-format reader (varint, fixed32, fixed64, length-delimited) over a byte span. Every
/// read is bounds-checked and a malformed message is a <see cref="TokenizerFormatException"/> naming the file and the
/// message being read, so hostile bytes cannot make it read out of range or loop.
/// </summary>
internal ref struct ProtoReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _sourceName;
    private readonly string _message;
    private int _position;

    public ProtoReader(ReadOnlySpan<byte> data, string sourceName, string message)
    {
        _data = data;
        _sourceName = sourceName;
        _message = message;
        _position = 0;
    }

    public const int Varint = 0;
    public const int Fixed64 = 1;
    public const int LengthDelimited = 2;
    public const int Fixed32 = 5;

    /// <summary>Reads the next field key; false at the end of the message.</summary>
    public bool TryReadTag(out int field, out int wireType)
    {
        field = wireType = 0;
        if (_position >= _data.Length) return false;
        ulong key = ReadVarint();
        wireType = (int)(key & 7);
        ulong number = key >> 3;
        if (number == 0 || number > int.MaxValue) throw Error($"invalid field number {number}");
        field = (int)number;
        return true;
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_position >= _data.Length) throw Error("truncated varint");
            byte b = _data[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw Error("varint longer than 10 bytes");
    }

    public float ReadFloat()
    {
        if (_data.Length - _position < 4) throw Error("truncated fixed32");
        float value = BinaryPrimitives.ReadSingleLittleEndian(_data[_position..]);
        _position += 4;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _position)) throw Error($"length-delimited field of {length} bytes runs past the end");
        var bytes = _data.Slice(_position, (int)length);
        _position += (int)length;
        return bytes;
    }

    /// <summary>Skips a field of an unknown number; groups (wire types 3 and 4) and types 6, 7 are errors.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadBytes(); break;
            case Fixed32: Advance(4); break;
            default: throw Error($"unsupported wire type {wireType}");
        }
    }

    /// <summary>Throws unless a known field arrived with the wire type its declaration implies.</summary>
    public readonly void Expect(int field, int wireType, int expected)
    {
        if (wireType != expected) throw Error($"field {field} has wire type {wireType}, expected {expected}");
    }

    public readonly TokenizerFormatException Error(string problem) =>
        new(_sourceName, _message, $"{problem} (at byte {_position} of the message)");

    private void Advance(int count)
    {
        if (_data.Length - _position < count) throw Error("truncated fixed-width field");
        _position += count;
    }
}
