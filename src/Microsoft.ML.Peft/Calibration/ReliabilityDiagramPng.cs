using System.Globalization;

namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Rasterises a <see cref="ReliabilityDiagram"/> with the SVG's geometry: white background, blue accuracy bars, light
/// red calibration gaps, the gray diagonal and a black frame. There is no font rasteriser, so the title, ECE and bin
/// counts are stored as PNG tEXt chunks ("Title", "Description") instead of pixels.
/// </summary>
internal static class ReliabilityDiagramPng
{
    internal static readonly (byte R, byte G, byte B) Background = (255, 255, 255);
    internal static readonly (byte R, byte G, byte B) Bar = (31, 119, 180);
    internal static readonly (byte R, byte G, byte B) Gap = (240, 160, 160);
    internal static readonly (byte R, byte G, byte B) Diagonal = (128, 128, 128);
    internal static readonly (byte R, byte G, byte B) Frame = (0, 0, 0);

    public static byte[] Render(ReliabilityDiagram diagram, int width, int height, string title)
    {
        if (width < 50 || height < 50) throw new ArgumentOutOfRangeException(nameof(width), $"A {width}×{height} image is too small for a diagram (≥ 50×50).");
        var image = new RgbImage(width, height, Background);
        var frame = ReliabilityPlotFrame.For(width, height);
        foreach (ReliabilityBin bin in diagram.Bins)
        {
            if (bin.Count == 0) continue;
            int x0 = Px(frame.X(bin.Lower)), x1 = Px(frame.X(bin.Upper));
            image.FillRectangle(x0, Px(frame.Y(bin.Accuracy)), x1, Px(frame.Bottom), Bar);
            image.FillRectangle(x0, Px(frame.Y(Math.Max(bin.Accuracy, bin.MeanConfidence))), x1, Px(frame.Y(Math.Min(bin.Accuracy, bin.MeanConfidence))), Gap);
            image.DrawLine(x0, Px(frame.Y(bin.Accuracy)), x0, Px(frame.Bottom) - 1, Background); // white separator like the SVG stroke
        }
        image.DrawLine(Px(frame.X(0)), Px(frame.Y(0)), Px(frame.X(1)), Px(frame.Y(1)), Diagonal);
        int left = Px(frame.Left), top = Px(frame.Top), right = Px(frame.Right), bottom = Px(frame.Bottom);
        image.DrawLine(left, top, right, top, Frame);
        image.DrawLine(right, top, right, bottom, Frame);
        image.DrawLine(right, bottom, left, bottom, Frame);
        image.DrawLine(left, bottom, left, top, Frame);

        string counts = string.Join(",", diagram.Bins.Select(b => b.Count.ToString(CultureInfo.InvariantCulture)));
        string description = string.Create(CultureInfo.InvariantCulture,
            $"ECE={diagram.ExpectedCalibrationError:R}; bins={diagram.Bins.Count}; n={diagram.SampleCount}; counts={counts}");
        return PngEncoder.Encode(image, [new("Title", title), new("Description", description)]);
    }

    private static int Px(double coordinate) => (int)Math.Round(coordinate);
}
