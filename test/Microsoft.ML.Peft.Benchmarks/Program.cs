namespace Microsoft.ML.Peft.Benchmarks;

internal static class Program
{
    private static int Main(string[] args)
    {
        Console.Error.WriteLine("usage: dotnet run -c Release --project test/Microsoft.ML.Peft.Benchmarks -- <gemm|layer|...>");
        return args.Length == 0 ? 1 : 0;
    }
}
