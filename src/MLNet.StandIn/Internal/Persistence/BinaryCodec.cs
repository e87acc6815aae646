using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// Binary encoding of column types, primitive/vector values and schemas (with annotations) for the stand-in's private
/// model format. Every read validates what it decodes and fails with <see cref="InvalidDataException"/>.
/// </summary>
internal static class BinaryCodec
{
    private enum TypeTag : byte
    {
        Text = 1,
        Boolean = 2,
        Number = 3,
        Key = 4,
        Vector = 5,
        RowId = 6,
        DateTime = 7,
        DateTimeOffset = 8,
        TimeSpan = 9,
    }

    private static readonly Type[] NumberTypes =
    {
        typeof(sbyte), typeof(byte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long), typeof(ulong), typeof(float), typeof(double),
    };

    public static void WriteType(BinaryWriter writer, DataViewType type)
    {
        switch (type)
        {
            case TextDataViewType:
                writer.Write((byte)TypeTag.Text);
                break;
            case BooleanDataViewType:
                writer.Write((byte)TypeTag.Boolean);
                break;
            case NumberDataViewType:
                writer.Write((byte)TypeTag.Number);
                writer.Write((byte)Array.IndexOf(NumberTypes, type.RawType));
                break;
            case KeyDataViewType key:
                writer.Write((byte)TypeTag.Key);
                writer.Write((byte)Array.IndexOf(NumberTypes, key.RawType));
                writer.Write(key.Count);
                break;
            case VectorDataViewType vector:
                writer.Write((byte)TypeTag.Vector);
                WriteType(writer, vector.ItemType);
                writer.Write(vector.Dimensions.Length);
                foreach (int d in vector.Dimensions)
                    writer.Write(d);
                break;
            case RowIdDataViewType:
                writer.Write((byte)TypeTag.RowId);
                break;
            case DateTimeDataViewType:
                writer.Write((byte)TypeTag.DateTime);
                break;
            case DateTimeOffsetDataViewType:
                writer.Write((byte)TypeTag.DateTimeOffset);
                break;
            case TimeSpanDataViewType:
                writer.Write((byte)TypeTag.TimeSpan);
                break;
            default:
                throw new NotSupportedException($"Column type {type} cannot be saved by the stand-in model format.");
        }
    }

    public static DataViewType ReadType(BinaryReader reader)
    {
        var tag = (TypeTag)reader.ReadByte();
        switch (tag)
        {
            case TypeTag.Text: return TextDataViewType.Instance;
            case TypeTag.Boolean: return BooleanDataViewType.Instance;
            case TypeTag.Number: return NumberDataViewType.FromRawType(ReadNumberType(reader))!;
            case TypeTag.Key:
                var raw = ReadNumberType(reader);
                ulong count = reader.ReadUInt64();
                if (!KeyDataViewType.IsValidDataType(raw) || count == 0)
                    throw new InvalidDataException($"Invalid key type in model: {raw.Name} with count {count}.");
                return new KeyDataViewType(raw, count);
            case TypeTag.Vector:
                if (ReadType(reader) is not PrimitiveDataViewType item)
                    throw new InvalidDataException("Invalid vector item type in model.");
                int rank = reader.ReadInt32();
                if (rank < 0 || rank > 8)
                    throw new InvalidDataException($"Invalid vector rank {rank} in model.");
                var dims = new int[rank];
                for (int i = 0; i < rank; i++)
                {
                    dims[i] = reader.ReadInt32();
                    if (dims[i] < 0)
                        throw new InvalidDataException($"Invalid vector dimension {dims[i]} in model.");
                }
                return rank == 0 ? new VectorDataViewType(item) : new VectorDataViewType(item, dims);
            case TypeTag.RowId: return RowIdDataViewType.Instance;
            case TypeTag.DateTime: return DateTimeDataViewType.Instance;
            case TypeTag.DateTimeOffset: return DateTimeOffsetDataViewType.Instance;
            case TypeTag.TimeSpan: return TimeSpanDataViewType.Instance;
            default: throw new InvalidDataException($"Unknown column type tag {(byte)tag} in model.");
        }
    }

    private static Type ReadNumberType(BinaryReader reader)
    {
        int code = reader.ReadByte();
        if (code >= NumberTypes.Length)
            throw new InvalidDataException($"Unknown number type code {code} in model.");
        return NumberTypes[code];
    }

    /// <summary>Writes a value of <paramref name="type"/> given as its raw type (boxed).</summary>
    public static void WriteValue(BinaryWriter writer, DataViewType type, object value)
    {
        if (type is VectorDataViewType vector)
        {
            var method = typeof(BinaryCodec).GetMethod(nameof(WriteVector), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(vector.ItemType.RawType);
            method.Invoke(null, new[] { writer, value });
            return;
        }
        WriteScalar(writer, value);
    }

    /// <summary>Reads a value of <paramref name="type"/> as its raw type (boxed).</summary>
    public static object ReadValue(BinaryReader reader, DataViewType type)
    {
        if (type is VectorDataViewType vector)
        {
            var method = typeof(BinaryCodec).GetMethod(nameof(ReadVector), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(vector.ItemType.RawType);
            try
            {
                return method.Invoke(null, new object[] { reader })!;
            }
            catch (TargetInvocationException ex) when (ex.InnerException is InvalidDataException or EndOfStreamException)
            {
                throw ex.InnerException;
            }
        }
        return ReadScalar(reader, type.RawType);
    }

    private static void WriteVector<T>(BinaryWriter writer, VBuffer<T> value)
    {
        writer.Write(value.Length);
        var values = value.GetValues();
        var indices = value.GetIndices();
        writer.Write(values.Length);
        for (int i = 0; i < values.Length; i++)
            WriteScalar(writer, values[i]!);
        if (!value.IsDense)
        {
            foreach (int index in indices)
                writer.Write(index);
        }
    }

    private static VBuffer<T> ReadVector<T>(BinaryReader reader)
    {
        int length = reader.ReadInt32();
        int count = reader.ReadInt32();
        if (length < 0 || count < 0 || count > length || length > 1 << 28)
            throw new InvalidDataException($"Invalid vector of length {length} with {count} values in model.");
        var values = new T[count];
        for (int i = 0; i < count; i++)
            values[i] = (T)ReadScalar(reader, typeof(T));
        if (count == length)
            return new VBuffer<T>(length, values);
        var indices = new int[count];
        for (int i = 0; i < count; i++)
            indices[i] = reader.ReadInt32();
        try
        {
            return new VBuffer<T>(length, count, values, indices);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException("Invalid sparse vector in model: " + ex.Message, ex);
        }
    }

    private static void WriteScalar(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case ReadOnlyMemory<char> text: writer.Write(text.ToString()); break;
            case bool b: writer.Write(b); break;
            case sbyte v: writer.Write(v); break;
            case byte v: writer.Write(v); break;
            case short v: writer.Write(v); break;
            case ushort v: writer.Write(v); break;
            case int v: writer.Write(v); break;
            case uint v: writer.Write(v); break;
            case long v: writer.Write(v); break;
            case ulong v: writer.Write(v); break;
            case float v: writer.Write(v); break;
            case double v: writer.Write(v); break;
            case DataViewRowId id: writer.Write(id.Low); writer.Write(id.High); break;
            case DateTime dt: writer.Write(dt.ToBinary()); break;
            case DateTimeOffset dto: writer.Write(dto.UtcTicks); writer.Write((short)dto.Offset.TotalMinutes); break;
            case TimeSpan ts: writer.Write(ts.Ticks); break;
            default: throw new NotSupportedException($"Values of type {value.GetType()} cannot be saved by the stand-in model format.");
        }
    }

    private static object ReadScalar(BinaryReader reader, Type type)
    {
        if (type == typeof(ReadOnlyMemory<char>)) return reader.ReadString().AsMemory();
        if (type == typeof(bool)) return reader.ReadBoolean();
        if (type == typeof(sbyte)) return reader.ReadSByte();
        if (type == typeof(byte)) return reader.ReadByte();
        if (type == typeof(short)) return reader.ReadInt16();
        if (type == typeof(ushort)) return reader.ReadUInt16();
        if (type == typeof(int)) return reader.ReadInt32();
        if (type == typeof(uint)) return reader.ReadUInt32();
        if (type == typeof(long)) return reader.ReadInt64();
        if (type == typeof(ulong)) return reader.ReadUInt64();
        if (type == typeof(float)) return reader.ReadSingle();
        if (type == typeof(double)) return reader.ReadDouble();
        if (type == typeof(DataViewRowId)) return new DataViewRowId(reader.ReadUInt64(), reader.ReadUInt64());
        if (type == typeof(DateTime)) return DateTime.FromBinary(reader.ReadInt64());
        if (type == typeof(DateTimeOffset))
        {
            long utcTicks = reader.ReadInt64();
            var offset = TimeSpan.FromMinutes(reader.ReadInt16());
            return new DateTimeOffset(utcTicks + offset.Ticks, offset);
        }
        if (type == typeof(TimeSpan)) return TimeSpan.FromTicks(reader.ReadInt64());
        throw new InvalidDataException($"Values of type {type} cannot be read from the stand-in model format.");
    }

    /// <summary>Writes names, types and annotations (with their values) of every column.</summary>
    public static void WriteSchema(BinaryWriter writer, DataViewSchema schema)
    {
        writer.Write(schema.Count);
        foreach (var column in schema)
        {
            writer.Write(column.Name);
            WriteType(writer, column.Type);
            WriteAnnotations(writer, column.Annotations);
        }
    }

    public static DataViewSchema ReadSchema(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count < 0 || count > 1 << 20)
            throw new InvalidDataException($"Invalid column count {count} in model schema.");
        var builder = new DataViewSchema.Builder();
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var type = ReadType(reader);
            builder.AddColumn(name, type, ReadAnnotations(reader));
        }
        return builder.ToSchema();
    }

    public static void WriteAnnotations(BinaryWriter writer, DataViewSchema.Annotations annotations)
    {
        var supported = annotations.Schema.Where(c => !c.IsHidden && IsSupported(c.Type)).ToArray();
        writer.Write(supported.Length);
        foreach (var column in supported)
        {
            writer.Write(column.Name);
            WriteType(writer, column.Type);
            WriteValue(writer, column.Type, AnnotationValue(annotations, column));
        }
    }

    public static DataViewSchema.Annotations ReadAnnotations(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count < 0 || count > 1 << 16)
            throw new InvalidDataException($"Invalid annotation count {count} in model.");
        var builder = new DataViewSchema.Annotations.Builder();
        for (int i = 0; i < count; i++)
        {
            string kind = reader.ReadString();
            var type = ReadType(reader);
            object value = ReadValue(reader, type);
            builder.Add(kind, type, ConstantGetter(type.RawType, value));
        }
        return builder.ToAnnotations();
    }

    private static bool IsSupported(DataViewType type) => type is PrimitiveDataViewType || type is VectorDataViewType;

    /// <summary>Reads one annotation value (boxed raw type).</summary>
    public static object AnnotationValue(DataViewSchema.Annotations annotations, DataViewSchema.Column column)
    {
        var method = typeof(BinaryCodec).GetMethod(nameof(ReadAnnotationTyped), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(column.Type.RawType);
        return method.Invoke(null, new object[] { annotations, column })!;
    }

    private static object ReadAnnotationTyped<T>(DataViewSchema.Annotations annotations, DataViewSchema.Column column)
    {
        T value = default!;
        annotations.GetGetter<T>(column)(ref value);
        return ValueCopier<T>.Clone(in value)!;
    }

    /// <summary>A <c>ValueGetter&lt;T&gt;</c> that always returns a copy of <paramref name="value"/>.</summary>
    public static Delegate ConstantGetter(Type rawType, object value)
    {
        var method = typeof(BinaryCodec).GetMethod(nameof(ConstantGetterTyped), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(rawType);
        return (Delegate)method.Invoke(null, new[] { value })!;
    }

    private static ValueGetter<T> ConstantGetterTyped<T>(T value)
    {
        var copy = ValueCopier<T>.Copy;
        return (ref T dst) => copy(in value, ref dst);
    }
}
