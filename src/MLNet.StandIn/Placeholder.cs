namespace Microsoft.ML;

/// <summary>Marker so the stand-in assembly is never empty while its API is being filled in.</summary>
internal static class StandInAssembly
{
}
