namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Geometry shared by the SVG and PNG reliability diagrams: a square plot area mapping confidence (x) and accuracy
/// (y) in [0, 1] to canvas coordinates, with y growing downwards as in both formats.
/// </summary>
internal readonly record struct ReliabilityPlotFrame(double Left, double Top, double Width, double Height)
{
    /// <summary>The frame for a canvas: margins for the title (top), tick labels (left, bottom) and a little air (right).</summary>
    public static ReliabilityPlotFrame For(double canvasWidth, double canvasHeight)
    {
        double left = 0.14 * canvasWidth, right = 0.05 * canvasWidth, top = 0.12 * canvasHeight, bottom = 0.12 * canvasHeight;
        return new ReliabilityPlotFrame(left, top, canvasWidth - left - right, canvasHeight - top - bottom);
    }

    public double Right => Left + Width;

    public double Bottom => Top + Height;

    /// <summary>Canvas x of confidence c.</summary>
    public double X(double confidence) => Left + confidence * Width;

    /// <summary>Canvas y of accuracy a.</summary>
    public double Y(double accuracy) => Bottom - accuracy * Height;
}
