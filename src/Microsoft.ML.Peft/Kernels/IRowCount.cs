namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// A row count known to the JIT: kernels generic over it are compiled once per count with the code for absent rows
/// removed, so one source serves the full register tile and its smaller edge variants.
/// </summary>
internal interface IRowCount
{
    static abstract int Value { get; }
}

internal readonly struct Rows1 : IRowCount
{
    public static int Value => 1;
}

internal readonly struct Rows2 : IRowCount
{
    public static int Value => 2;
}

internal readonly struct Rows3 : IRowCount
{
    public static int Value => 3;
}

internal readonly struct Rows4 : IRowCount
{
    public static int Value => 4;
}

internal readonly struct Rows6 : IRowCount
{
    public static int Value => 6;
}

internal readonly struct Rows8 : IRowCount
{
    public static int Value => 8;
}

internal readonly struct Rows10 : IRowCount
{
    public static int Value => 10;
}

internal readonly struct Rows12 : IRowCount
{
    public static int Value => 12;
}

internal readonly struct Rows14 : IRowCount
{
    public static int Value => 14;
}
