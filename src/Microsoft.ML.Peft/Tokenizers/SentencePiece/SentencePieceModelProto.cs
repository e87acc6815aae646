using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>SentencePiece piece types (ModelProto.SentencePiece.Type).</summary>
internal enum SentencePieceType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One vocabulary entry of a SentencePiece model.</summary>
internal readonly record struct SentencePieceEntry(string Piece, float Score, SentencePieceType Type);

/// <summary>
/// The parts of a SentencePiece <c>ModelProto</c> (tokenizer.model) that encoding and decoding need, parsed from the
/// protobuf wire format without a protobuf library. Field numbers follow sentencepiece_model.proto; absent fields keep
/// the proto defaults. A message field that occurs twice is merged, as protobuf specifies.
/// </summary>
internal sealed class SentencePieceModelProto
{
    public const int ModelTypeUnigram = 1;
    public const int ModelTypeBpe = 2;

    public List<SentencePieceEntry> Pieces { get; } = new();

    // TrainerSpec
    public int ModelType { get; private set; } = ModelTypeUnigram;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public string UnknownSurface { get; private set; } = " \u2047 ";
    public string UnknownPiece { get; private set; } = "<unk>";
    public string BeginningOfSentencePiece { get; private set; } = "<s>";
    public string EndOfSentencePiece { get; private set; } = "</s>";
    public string PaddingPiece { get; private set; } = "<pad>";

    // NormalizerSpec
    public string NormalizerName { get; private set; } = string.Empty;
    public byte[] PrecompiledCharsMap { get; private set; } = [];
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    public static SentencePieceModelProto Parse(ReadOnlySpan<byte> data, string sourceName)
    {
        var model = new SentencePieceModelProto();
        var reader = new ProtoReader(data, sourceName, "ModelProto");
        while (reader.TryReadTag(out int field, out int wire))
        {
            switch (field)
            {
                case 1:
                    reader.Expect(field, wire, ProtoReader.LengthDelimited);
                    model.Pieces.Add(ParsePiece(reader.ReadBytes(), sourceName, $"ModelProto.pieces[{model.Pieces.Count}]"));
                    break;
                case 2:
                    reader.Expect(field, wire, ProtoReader.LengthDelimited);
                    model.ParseTrainerSpec(reader.ReadBytes(), sourceName);
                    break;
                case 3:
                    reader.Expect(field, wire, ProtoReader.LengthDelimited);
                    model.ParseNormalizerSpec(reader.ReadBytes(), sourceName);
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
        return model;
    }

    private static SentencePieceEntry ParsePiece(ReadOnlySpan<byte> data, string sourceName, string path)
    {
        var reader = new ProtoReader(data, sourceName, path);
        string piece = string.Empty;
        float score = 0;
        int type = (int)SentencePieceType.Normal;
        while (reader.TryReadTag(out int field, out int wire))
        {
            switch (field)
            {
                case 1: reader.Expect(field, wire, ProtoReader.LengthDelimited); piece = Utf8(reader.ReadBytes(), sourceName, path + ".piece"); break;
                case 2: reader.Expect(field, wire, ProtoReader.Fixed32); score = reader.ReadFloat(); break;
                case 3: reader.Expect(field, wire, ProtoReader.Varint); type = (int)reader.ReadVarint(); break;
                default: reader.Skip(wire); break;
            }
        }
        if (type is < 1 or > 6) throw new TokenizerFormatException(sourceName, path + ".type", $"unknown piece type {type}");
        return new SentencePieceEntry(piece, score, (SentencePieceType)type);
    }

    private void ParseTrainerSpec(ReadOnlySpan<byte> data, string sourceName)
    {
        const string path = "ModelProto.trainer_spec";
        var reader = new ProtoReader(data, sourceName, path);
        while (reader.TryReadTag(out int field, out int wire))
        {
            switch (field)
            {
                case 3: reader.Expect(field, wire, ProtoReader.Varint); ModelType = (int)reader.ReadVarint(); break;
                case 24: reader.Expect(field, wire, ProtoReader.Varint); TreatWhitespaceAsSuffix = reader.ReadVarint() != 0; break;
                case 35: reader.Expect(field, wire, ProtoReader.Varint); ByteFallback = reader.ReadVarint() != 0; break;
                case 44: reader.Expect(field, wire, ProtoReader.LengthDelimited); UnknownSurface = Utf8(reader.ReadBytes(), sourceName, path + ".unk_surface"); break;
                case 45: reader.Expect(field, wire, ProtoReader.LengthDelimited); UnknownPiece = Utf8(reader.ReadBytes(), sourceName, path + ".unk_piece"); break;
                case 46: reader.Expect(field, wire, ProtoReader.LengthDelimited); BeginningOfSentencePiece = Utf8(reader.ReadBytes(), sourceName, path + ".bos_piece"); break;
                case 47: reader.Expect(field, wire, ProtoReader.LengthDelimited); EndOfSentencePiece = Utf8(reader.ReadBytes(), sourceName, path + ".eos_piece"); break;
                case 48: reader.Expect(field, wire, ProtoReader.LengthDelimited); PaddingPiece = Utf8(reader.ReadBytes(), sourceName, path + ".pad_piece"); break;
                default: reader.Skip(wire); break;
            }
        }
    }

    private void ParseNormalizerSpec(ReadOnlySpan<byte> data, string sourceName)
    {
        const string path = "ModelProto.normalizer_spec";
        var reader = new ProtoReader(data, sourceName, path);
        while (reader.TryReadTag(out int field, out int wire))
        {
            switch (field)
            {
                case 1: reader.Expect(field, wire, ProtoReader.LengthDelimited); NormalizerName = Utf8(reader.ReadBytes(), sourceName, path + ".name"); break;
                case 2: reader.Expect(field, wire, ProtoReader.LengthDelimited); PrecompiledCharsMap = reader.ReadBytes().ToArray(); break;
                case 3: reader.Expect(field, wire, ProtoReader.Varint); AddDummyPrefix = reader.ReadVarint() != 0; break;
                case 4: reader.Expect(field, wire, ProtoReader.Varint); RemoveExtraWhitespaces = reader.ReadVarint() != 0; break;
                case 5: reader.Expect(field, wire, ProtoReader.Varint); EscapeWhitespaces = reader.ReadVarint() != 0; break;
                default: reader.Skip(wire); break;
            }
        }
    }

    private static readonly UTF8Encoding s_strictUtf8 = new(false, throwOnInvalidBytes: true);

    private static string Utf8(ReadOnlySpan<byte> bytes, string sourceName, string path)
    {
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new TokenizerFormatException(sourceName, path, "invalid UTF-8", e);
        }
    }
}
