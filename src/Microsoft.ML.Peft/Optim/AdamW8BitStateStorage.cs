namespace Microsoft.ML.Peft.Optim;

/// <summary>Where and how <see cref="AdamW8Bit"/> keeps its two moment estimates per parameter.</summary>
public enum AdamWStateStorage
{
    /// <summary>float32 in memory: 8 bytes per parameter, bit-identical to <see cref="AdamW"/>.</summary>
    Float32,

    /// <summary>
    /// 8-bit blockwise dynamic quantization in memory (bitsandbytes' 8-bit optimizers): about 2 bytes per parameter
    /// (+ 8 bytes per block of absmax).
    /// </summary>
    EightBit,

    /// <summary>float32 in a memory-mapped temporary file that the OS pages in and out (paged optimizer).</summary>
    PagedFloat32,

    /// <summary>8-bit blockwise states in a memory-mapped temporary file.</summary>
    PagedEightBit,
}
