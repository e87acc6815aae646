using System.Globalization;
using System.Security;
using System.Text;

namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Renders a <see cref="ReliabilityDiagram"/> as SVG: per bin a blue bar up to its accuracy (class "bar") and a
/// translucent red box between accuracy and mean confidence (class "gap"), the dashed diagonal of perfect
/// calibration, each bin's count above its bar, ticks, axis labels, and the ECE in the title.
/// </summary>
internal static class ReliabilityDiagramSvg
{
    private const double CanvasWidth = 480, CanvasHeight = 480;

    public static string Render(ReliabilityDiagram diagram, string title)
    {
        var frame = ReliabilityPlotFrame.For(CanvasWidth, CanvasHeight);
        var svg = new StringBuilder();
        string heading = $"{title} — ECE = {F(diagram.ExpectedCalibrationError, "0.0000")} ({diagram.Bins.Count} bins, n = {diagram.SampleCount})";
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(CanvasWidth)}\" height=\"{F(CanvasHeight)}\" viewBox=\"0 0 {F(CanvasWidth)} {F(CanvasHeight)}\" font-family=\"sans-serif\">\n");
        svg.Append(CultureInfo.InvariantCulture, $"  <title>{Escape(heading)}</title>\n");
        svg.Append("  <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"  <text class=\"title\" x=\"{F(CanvasWidth / 2)}\" y=\"{F(frame.Top / 2)}\" text-anchor=\"middle\" font-size=\"14\">{Escape(heading)}</text>\n");

        foreach (ReliabilityBin bin in diagram.Bins)
        {
            if (bin.Count == 0) continue;
            double x = frame.X(bin.Lower), width = frame.X(bin.Upper) - x;
            double barTop = frame.Y(bin.Accuracy);
            svg.Append(CultureInfo.InvariantCulture,
                $"  <rect class=\"bar\" x=\"{F(x)}\" y=\"{F(barTop)}\" width=\"{F(width)}\" height=\"{F(frame.Bottom - barTop)}\" fill=\"#1f77b4\" stroke=\"white\" data-count=\"{bin.Count}\" data-accuracy=\"{F(bin.Accuracy, "R")}\" data-confidence=\"{F(bin.MeanConfidence, "R")}\"/>\n");
            double gapTop = frame.Y(Math.Max(bin.Accuracy, bin.MeanConfidence)), gapBottom = frame.Y(Math.Min(bin.Accuracy, bin.MeanConfidence));
            svg.Append(CultureInfo.InvariantCulture,
                $"  <rect class=\"gap\" x=\"{F(x)}\" y=\"{F(gapTop)}\" width=\"{F(width)}\" height=\"{F(gapBottom - gapTop)}\" fill=\"#d62728\" fill-opacity=\"0.35\" stroke=\"#d62728\" stroke-width=\"0.5\"/>\n");
        }
        foreach (ReliabilityBin bin in diagram.Bins)
        {
            double centre = (frame.X(bin.Lower) + frame.X(bin.Upper)) / 2;
            double above = frame.Y(Math.Max(bin.Accuracy, bin.MeanConfidence)) - 3;
            svg.Append(CultureInfo.InvariantCulture,
                $"  <text class=\"count\" x=\"{F(centre)}\" y=\"{F(above)}\" font-size=\"8\" text-anchor=\"start\" transform=\"rotate(-90 {F(centre)} {F(above)})\">{bin.Count}</text>\n");
        }

        svg.Append(CultureInfo.InvariantCulture,
            $"  <line class=\"diagonal\" x1=\"{F(frame.X(0))}\" y1=\"{F(frame.Y(0))}\" x2=\"{F(frame.X(1))}\" y2=\"{F(frame.Y(1))}\" stroke=\"gray\" stroke-dasharray=\"6 4\"/>\n");
        svg.Append(CultureInfo.InvariantCulture,
            $"  <rect class=\"frame\" x=\"{F(frame.Left)}\" y=\"{F(frame.Top)}\" width=\"{F(frame.Width)}\" height=\"{F(frame.Height)}\" fill=\"none\" stroke=\"black\"/>\n");
        for (int tick = 0; tick <= 5; tick++)
        {
            double value = tick / 5.0;
            svg.Append(CultureInfo.InvariantCulture,
                $"  <text x=\"{F(frame.X(value))}\" y=\"{F(frame.Bottom + 16)}\" font-size=\"11\" text-anchor=\"middle\">{F(value, "0.0")}</text>\n");
            svg.Append(CultureInfo.InvariantCulture,
                $"  <text x=\"{F(frame.Left - 6)}\" y=\"{F(frame.Y(value) + 4)}\" font-size=\"11\" text-anchor=\"end\">{F(value, "0.0")}</text>\n");
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"  <text x=\"{F((frame.Left + frame.Right) / 2)}\" y=\"{F(frame.Bottom + 38)}\" font-size=\"12\" text-anchor=\"middle\">Confidence</text>\n");
        double labelY = (frame.Top + frame.Bottom) / 2;
        svg.Append(CultureInfo.InvariantCulture,
            $"  <text x=\"{F(frame.Left - 40)}\" y=\"{F(labelY)}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {F(frame.Left - 40)} {F(labelY)})\">Accuracy</text>\n");
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string F(double value, string format = "0.##") => value.ToString(format, CultureInfo.InvariantCulture);

    private static string Escape(string text) => SecurityElement.Escape(text);
}
