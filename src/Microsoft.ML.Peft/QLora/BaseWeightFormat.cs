namespace Microsoft.ML.Peft.QLora;

/// <summary>How the frozen linear weights of a base model are stored, for quality comparisons (QLoRA paper, Table 2).</summary>
public enum BaseWeightFormat
{
    /// <summary>Unchanged float32 weights.</summary>
    Float32,

    /// <summary>4-bit NormalFloat (bitsandbytes nf4) in <see cref="QuantizedLinear"/> layers.</summary>
    NF4,

    /// <summary>4-bit float E2M1 (bitsandbytes fp4) in <see cref="QuantizedLinear"/> layers.</summary>
    FP4,

    /// <summary>Symmetric 4-bit integers (k/7) in <see cref="QuantizedLinear"/> layers.</summary>
    Int4,

    /// <summary>
    /// Row-wise absmax int8 (LLM.int8() without outlier decomposition,
    /// <see cref="Quantization.Int8RowwiseMatrix"/>), kept as float32 layers holding the dequantized values: the same
    /// numbers an int8 layer that dequantizes before its GEMM computes with.
    /// </summary>
    Int8,
}
