using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Peft.IO.Pickle;

/// <summary>
/// A restricted pickle interpreter for <c>torch.save</c> state dicts. It implements only the opcodes those files use
/// (protocols 2–5 without classes or arbitrary calls) and the handful of callables in <see cref="TorchGlobals"/>;
/// every other global is refused when the GLOBAL opcode names it, before anything could call it. Nothing from the
/// file is ever executed: "calls" are interpreted by C# code that builds plain data (dicts, tuples, tensor references).
/// </summary>
/// <remarks>
/// Each opcode consumes at least one byte and there are no jumps, so the run is linear in the input; string and
/// integer lengths are checked against the remaining input before anything is allocated.
/// </remarks>
internal sealed class PickleMachine
{
    private static readonly object Mark = new();

    private readonly byte[] _data;
    private readonly string _path;
    private readonly Func<PickleTuple, object> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private int _position;

    public PickleMachine(byte[] data, string path, Func<PickleTuple, object> persistentLoad)
    {
        _data = data;
        _path = path;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Runs to the STOP opcode and returns the top of the stack.</summary>
    public object? Run()
    {
        while (true)
        {
            int opcodeAt = _position;
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        byte version = ReadByte();
                        if (version > 5) throw Error(opcodeAt, $"pickle protocol {version} is not supported");
                        break;
                    }
                case 0x95: Skip(8); break; // FRAME: a length hint only
                case (byte)'.': // STOP
                    if (_stack.Count != 1) throw Error(opcodeAt, $"STOP with {_stack.Count} values on the stack");
                    return _stack[0];

                case (byte)'c': Push(TorchGlobals.Resolve(ReadLine(), ReadLine(), _path)); break; // GLOBAL
                case 0x93: // STACK_GLOBAL
                    {
                        string name = PopAs<string>(opcodeAt, "STACK_GLOBAL name");
                        string module = PopAs<string>(opcodeAt, "STACK_GLOBAL module");
                        Push(TorchGlobals.Resolve(module, name, _path));
                        break;
                    }

                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(ReadUInt32()); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(Recall(ReadByte(), opcodeAt)); break; // BINGET
                case (byte)'j': Push(Recall(ReadUInt32(), opcodeAt)); break; // LONG_BINGET

                case (byte)'(': _marks.Push(_stack.Count); _stack.Add(Mark); break; // MARK
                case (byte)'0': Pop(opcodeAt); break; // POP
                case (byte)'1': PopToMark(opcodeAt); break; // POP_MARK
                case (byte)'2': Push(Peek(opcodeAt)); break; // DUP

                case (byte)')': Push(new PickleTuple([])); break; // EMPTY_TUPLE
                case (byte)'t': Push(new PickleTuple(PopToMark(opcodeAt))); break; // TUPLE
                case 0x85: Push(new PickleTuple([Pop(opcodeAt)])); break; // TUPLE1
                case 0x86: { var b = Pop(opcodeAt); var a = Pop(opcodeAt); Push(new PickleTuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(opcodeAt); var b = Pop(opcodeAt); var a = Pop(opcodeAt); Push(new PickleTuple([a, b, c])); break; } // TUPLE3

                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(new List<object?>(PopToMark(opcodeAt))); break; // LIST
                case (byte)'a': { var item = Pop(opcodeAt); PeekAs<List<object?>>(opcodeAt, "APPEND target").Add(item); break; } // APPEND
                case (byte)'e': { var items = PopToMark(opcodeAt); PeekAs<List<object?>>(opcodeAt, "APPENDS target").AddRange(items); break; } // APPENDS

                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)'d': Push(BuildDict(PopToMark(opcodeAt), opcodeAt)); break; // DICT
                case (byte)'s': { var v = Pop(opcodeAt); var k = Pop(opcodeAt); PeekAs<PickleDict>(opcodeAt, "SETITEM target").Set(k, v); break; } // SETITEM
                case (byte)'u': // SETITEMS
                    {
                        var items = PopToMark(opcodeAt);
                        if (items.Length % 2 != 0) throw Error(opcodeAt, "SETITEMS with an odd number of values");
                        var dict = PeekAs<PickleDict>(opcodeAt, "SETITEMS target");
                        for (int i = 0; i < items.Length; i += 2) dict.Set(items[i], items[i + 1]);
                        break;
                    }

                case (byte)'N': Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
                case 0x8a: Push(ReadLong(ReadByte(), opcodeAt)); break; // LONG1
                case 0x8b: Push(ReadLong(ReadInt32Length(opcodeAt), opcodeAt)); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT

                case (byte)'X': Push(ReadUtf8(ReadInt32Length(opcodeAt), opcodeAt)); break; // BINUNICODE
                case 0x8c: Push(ReadUtf8(ReadByte(), opcodeAt)); break; // SHORT_BINUNICODE
                case 0x8d: Push(ReadUtf8(ReadInt64Length(opcodeAt), opcodeAt)); break; // BINUNICODE8
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(ReadByte()))); break; // SHORT_BINSTRING
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(ReadInt32Length(opcodeAt)))); break; // BINSTRING
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case (byte)'B': Push(Take(ReadInt32Length(opcodeAt)).ToArray()); break; // BINBYTES

                case (byte)'Q': // BINPERSID
                    {
                        var pid = Pop(opcodeAt) as PickleTuple ?? throw Error(opcodeAt, "persistent id is not a tuple");
                        Push(_persistentLoad(pid));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        var args = Pop(opcodeAt) as PickleTuple ?? throw Error(opcodeAt, "REDUCE arguments are not a tuple");
                        var callable = Pop(opcodeAt) as PickleGlobal ?? throw Error(opcodeAt, "REDUCE target is not an allowed global");
                        Push(TorchGlobals.Call(callable, args, _path));
                        break;
                    }
                case (byte)'b': // BUILD
                    {
                        var state = Pop(opcodeAt);
                        var target = Peek(opcodeAt);
                        TorchGlobals.Build(target, state, _path);
                        break;
                    }

                default:
                    throw Error(opcodeAt, $"opcode 0x{op:x2} ('{(op is >= 0x20 and < 0x7f ? (char)op : '?')}') is outside the torch tensor-rebuild protocol and is not supported");
            }
        }
    }

    private PickleDict BuildDict(object?[] items, int at)
    {
        var dict = new PickleDict();
        if (items.Length % 2 != 0) throw Error(at, "DICT with an odd number of values");
        for (int i = 0; i < items.Length; i += 2) dict.Set(items[i], items[i + 1]);
        return dict;
    }

    private void Push(object? value) => _stack.Add(value);

    private object? Pop(int at)
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks.Peek() == _stack.Count - 1))
            throw Error(at, "stack underflow");
        var value = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return value;
    }

    private object? Peek(int at)
    {
        if (_stack.Count == 0 || ReferenceEquals(_stack[^1], Mark)) throw Error(at, "stack underflow");
        return _stack[^1];
    }

    private T PopAs<T>(int at, string what) => Pop(at) is T value ? value : throw Error(at, $"{what} has the wrong type");

    private T PeekAs<T>(int at, string what) => Peek(at) is T value ? value : throw Error(at, $"{what} has the wrong type");

    private object?[] PopToMark(int at)
    {
        if (_marks.Count == 0) throw Error(at, "no MARK on the stack");
        int mark = _marks.Pop();
        var items = _stack.GetRange(mark + 1, _stack.Count - mark - 1).ToArray();
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private void Memoize(long index)
    {
        if (_stack.Count == 0 || ReferenceEquals(_stack[^1], Mark)) throw Error(_position, "memoizing an empty stack");
        _memo[index] = _stack[^1];
    }

    private object? Recall(long index, int at) =>
        _memo.TryGetValue(index, out var value) ? value : throw Error(at, $"memo entry {index} was never stored");

    private byte ReadByte()
    {
        if (_position >= _data.Length) throw Error(_position, "pickle ends without STOP");
        return _data[_position++];
    }

    private ReadOnlySpan<byte> Take(long count)
    {
        if (count < 0 || count > _data.Length - _position)
            throw Error(_position, $"a {count}-byte field runs past the end of the pickle");
        var span = _data.AsSpan(_position, (int)count);
        _position += (int)count;
        return span;
    }

    private void Skip(int count) => Take(count);

    private uint ReadUInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    private int ReadInt32Length(int at)
    {
        int n = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        return n >= 0 ? n : throw Error(at, $"negative length {n}");
    }

    private long ReadInt64Length(int at)
    {
        long n = BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        return n >= 0 ? n : throw Error(at, $"negative length {n}");
    }

    /// <summary>Two's-complement little-endian integer of <paramref name="length"/> bytes; at most 64 bits are accepted.</summary>
    private long ReadLong(long length, int at)
    {
        if (length > 8) throw Error(at, $"{length}-byte integer is larger than 64 bits");
        var bytes = Take(length);
        if (bytes.Length == 0) return 0;
        long value = (sbyte)bytes[^1]; // sign-extend from the most significant byte
        for (int i = bytes.Length - 2; i >= 0; i--) value = (value << 8) | bytes[i];
        return value;
    }

    private string ReadUtf8(long length, int at)
    {
        var bytes = Take(length);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Error(at, "string is not valid UTF-8");
        }
    }

    /// <summary>Reads a newline-terminated ASCII line (the GLOBAL opcode's module and name).</summary>
    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _position, Math.Min(256, _data.Length - _position));
        if (end < 0) throw Error(_position, "GLOBAL name is not terminated by a newline within 256 bytes");
        string line = Encoding.ASCII.GetString(_data, _position, end - _position);
        _position = end + 1;
        return line;
    }

    private PickleFormatException Error(int at, string detail) => new(_path, $"data.pkl at byte {at}: {detail}");
}
