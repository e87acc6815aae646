namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Equal-width confidence bins of a classifier's top-label predictions and the expected calibration error they
/// define (Guo, Pleiss, Sun and Weinberger 2017, "On calibration of modern neural networks").
/// </summary>
/// <remarks>
/// Bin m (0-based) of M holds the rows whose top-label confidence c = max_k p_k lies in (m/M, (m+1)/M] (a confidence
/// of exactly 0, impossible for a probability vector, goes to bin 0); the boundaries are the doubles m/M. Then
/// ECE = Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|, where acc is the fraction of rows whose argmax (first on ties) equals
/// the label and conf the mean confidence. The default M = 15 is the paper's.
/// </remarks>
public sealed class ReliabilityDiagram
{
    private readonly ReliabilityBin[] _bins;

    private ReliabilityDiagram(ReliabilityBin[] bins, int sampleCount, double ece)
    {
        _bins = bins;
        SampleCount = sampleCount;
        ExpectedCalibrationError = ece;
    }

    /// <summary>The bins, lowest confidence first.</summary>
    public IReadOnlyList<ReliabilityBin> Bins => _bins;

    /// <summary>n, the number of rows.</summary>
    public int SampleCount { get; }

    /// <summary>ECE = Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|.</summary>
    public double ExpectedCalibrationError { get; }

    /// <summary>Bins n rows of class probabilities.</summary>
    /// <param name="probabilities">Row-major n×C, each row a probability vector.</param>
    /// <param name="classCount">C.</param>
    /// <param name="labels">True classes (length n).</param>
    /// <param name="binCount">M ≥ 1 (default 15).</param>
    /// <exception cref="ArgumentException">Shapes disagree, a label is out of range, or a row is not a probability vector (row named).</exception>
    public static ReliabilityDiagram Compute(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels, int binCount = 15)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(binCount, 1);
        int n = ClassificationInput.Validate(probabilities, classCount, labels);
        var counts = new int[binCount];
        var correct = new int[binCount];
        var confidenceSums = new double[binCount];
        for (int i = 0; i < n; i++)
        {
            (double confidence, int prediction) = ClassificationInput.TopLabel(probabilities.Slice(i * classCount, classCount));
            int m = BinIndex(confidence, binCount);
            counts[m]++;
            confidenceSums[m] += confidence;
            if (prediction == labels[i]) correct[m]++;
        }
        var bins = new ReliabilityBin[binCount];
        double ece = 0;
        for (int m = 0; m < binCount; m++)
        {
            double accuracy = counts[m] == 0 ? 0 : (double)correct[m] / counts[m];
            double meanConfidence = counts[m] == 0 ? 0 : confidenceSums[m] / counts[m];
            bins[m] = new ReliabilityBin((double)m / binCount, (double)(m + 1) / binCount, counts[m], accuracy, meanConfidence);
            ece += (double)counts[m] / n * bins[m].Gap;
        }
        return new ReliabilityDiagram(bins, n, ece);
    }

    /// <summary>The diagram as an SVG document: accuracy bars, calibration gaps, the diagonal, bin counts and the ECE in the title.</summary>
    public string ToSvg(string title = "Reliability diagram") => ReliabilityDiagramSvg.Render(this, title);

    /// <summary>Writes <see cref="ToSvg"/> to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public void WriteSvg(string path, string title = "Reliability diagram") =>
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(ToSvg(title)));

    /// <summary>The diagram rasterised as a PNG (no text in the pixels; the title, ECE and counts go into tEXt chunks).</summary>
    public byte[] ToPng(int width = 480, int height = 480, string title = "Reliability diagram") =>
        ReliabilityDiagramPng.Render(this, width, height, title);

    /// <summary>Writes <see cref="ToPng"/> to <paramref name="path"/> atomically.</summary>
    public void WritePng(string path, int width = 480, int height = 480, string title = "Reliability diagram") =>
        AtomicFile.WriteAllBytes(path, ToPng(width, height, title));

    /// <summary>m with confidence ∈ (m/M, (m+1)/M], computed against the double boundaries m/M themselves.</summary>
    internal static int BinIndex(double confidence, int binCount)
    {
        int m = (int)Math.Ceiling(confidence * binCount) - 1;
        m = Math.Clamp(m, 0, binCount - 1);
        // The product may round across a boundary; correct against the exact double boundaries.
        if (m > 0 && confidence <= (double)m / binCount) m--;
        else if (m < binCount - 1 && confidence > (double)(m + 1) / binCount) m++;
        return m;
    }
}
