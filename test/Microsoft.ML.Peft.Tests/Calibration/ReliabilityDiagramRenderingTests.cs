using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Xml.Linq;
using Microsoft.ML.Peft.Calibration;

namespace Microsoft.ML.Peft.Tests.Calibration;

[TestClass]
public sealed class ReliabilityDiagramRenderingTests
{
    private static ReliabilityDiagram HandDiagram() =>
        ReliabilityDiagram.Compute(CalibrationMetricsTests.Probabilities, 3, CalibrationMetricsTests.Labels);

    [TestMethod]
    public void Svg_HasOneBarPerNonEmptyBin_HeightsFollowAccuracy_AndTheEceTitle()
    {
        XDocument svg = XDocument.Parse(HandDiagram().ToSvg("SST-2 dev"));
        XNamespace ns = "http://www.w3.org/2000/svg";
        string title = svg.Root!.Element(ns + "title")!.Value;
        StringAssert.Contains(title, "SST-2 dev");
        StringAssert.Contains(title, "ECE = 0.4000");
        StringAssert.Contains(title, "15 bins, n = 4");

        var bars = svg.Descendants(ns + "rect").Where(r => (string?)r.Attribute("class") == "bar").ToList();
        Assert.AreEqual(4, bars.Count);
        double Number(XElement e, string name) => double.Parse((string)e.Attribute(name)!, CultureInfo.InvariantCulture);
        var frame = ReliabilityPlotFrame.For(480, 480);
        foreach (XElement bar in bars)
        {
            double accuracy = Number(bar, "data-accuracy");
            Assert.AreEqual(accuracy * frame.Height, Number(bar, "height"), 0.01, "bar height ∝ accuracy");
            Assert.AreEqual(frame.Width / 15, Number(bar, "width"), 0.01);
        }
        Assert.AreEqual(4, svg.Descendants(ns + "rect").Count(r => (string?)r.Attribute("class") == "gap"));
        var counts = svg.Descendants(ns + "text").Where(t => (string?)t.Attribute("class") == "count").Select(t => t.Value).ToList();
        Assert.AreEqual(15, counts.Count);
        Assert.AreEqual(4, counts.Count(c => c == "1"));
        Assert.AreEqual(1, svg.Descendants(ns + "line").Count(l => (string?)l.Attribute("class") == "diagonal"));
    }

    [TestMethod]
    public void WriteSvg_IsAtomic_OverwritesAndLeavesNoTemporaryFile()
    {
        string directory = Path.Combine(Path.GetTempPath(), "peft-calibration-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = Path.Combine(directory, "reliability.svg");
            Directory.CreateDirectory(directory);
            File.WriteAllText(path, "old");
            HandDiagram().WriteSvg(path);
            Assert.IsTrue(File.ReadAllText(path).StartsWith("<svg", StringComparison.Ordinal));
            HandDiagram().WritePng(Path.Combine(directory, "nested", "reliability.png"));
            Assert.IsTrue(File.Exists(Path.Combine(directory, "nested", "reliability.png")));
            Assert.AreEqual(0, Directory.GetFiles(directory, "*.tmp", SearchOption.AllDirectories).Length);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [TestMethod]
    public void Png_DecodesWithValidSignatureCrcsDimensionsTextAndPixels()
    {
        const int width = 300, height = 240;
        byte[] png = HandDiagram().ToPng(width, height, "dev");
        CollectionAssert.AreEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);

        var chunks = new List<(string Type, byte[] Data)>();
        for (int offset = 8; offset < png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            string type = Encoding.ASCII.GetString(png, offset + 4, 4);
            byte[] data = png[(offset + 8)..(offset + 8 + length)];
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset + 8 + length));
            Assert.AreEqual(BitwiseCrc32(png.AsSpan(offset + 4, 4 + length)), stored, $"CRC of {type}");
            chunks.Add((type, data));
            offset += 12 + length;
        }
        Assert.AreEqual("IHDR", chunks[0].Type);
        Assert.AreEqual("IEND", chunks[^1].Type);
        byte[] header = chunks[0].Data;
        Assert.AreEqual(width, BinaryPrimitives.ReadInt32BigEndian(header));
        Assert.AreEqual(height, BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4)));
        CollectionAssert.AreEqual(new byte[] { 8, 2, 0, 0, 0 }, header[8..]);

        var text = chunks.Where(c => c.Type == "tEXt").Select(c => Encoding.Latin1.GetString(c.Data)).ToList();
        CollectionAssert.Contains(text, "Title\0dev");
        string description = text.Single(t => t.StartsWith("Description\0", StringComparison.Ordinal));
        StringAssert.Contains(description, "ECE=0.4");
        StringAssert.Contains(description, "counts=0,0,0,0,0,1,0,0,1,0,1,0,0,1,0");

        byte[] compressed = chunks.Where(c => c.Type == "IDAT").SelectMany(c => c.Data).ToArray();
        using var inflater = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflater.CopyTo(raw);
        byte[] scanlines = raw.ToArray();
        Assert.AreEqual(height * (1 + 3 * width), scanlines.Length);
        (byte, byte, byte) Pixel(int x, int y)
        {
            Assert.AreEqual(0, scanlines[y * (1 + 3 * width)], "filter None");
            int i = y * (1 + 3 * width) + 1 + 3 * x;
            return (scanlines[i], scanlines[i + 1], scanlines[i + 2]);
        }

        var frame = ReliabilityPlotFrame.For(width, height);
        int Px(double v) => (int)Math.Round(v);
        Assert.AreEqual(((byte)255, (byte)255, (byte)255), Pixel(2, 2), "background");
        // Bin 10 (0.7, correct): accuracy 1, confidence 0.7 ⇒ blue below 0.7, light red between 0.7 and 1.
        int binCentre = Px(frame.X(10.5 / 15));
        Assert.AreEqual(((byte)31, (byte)119, (byte)180), Pixel(binCentre, Px(frame.Y(0.3))), "bar");
        Assert.AreEqual(((byte)240, (byte)160, (byte)160), Pixel(binCentre, Px(frame.Y(0.85))), "gap");
        // Empty bin 3: white above the diagonal's row, gray on it (±1 pixel for rasterisation).
        int x = Px(frame.X(0.25));
        Assert.AreEqual(((byte)255, (byte)255, (byte)255), Pixel(x, Px(frame.Y(0.6))), "empty bin");
        double lineY = Px(frame.Y(0)) + (x - Px(frame.X(0))) * (double)(Px(frame.Y(1)) - Px(frame.Y(0))) / (Px(frame.X(1)) - Px(frame.X(0)));
        Assert.IsTrue(Enumerable.Range(-1, 3).Any(d => Pixel(x, Px(lineY) + d) == ((byte)128, (byte)128, (byte)128)), "diagonal");
        Assert.AreEqual(((byte)0, (byte)0, (byte)0), Pixel(Px(frame.Left), Px(frame.Top)), "frame corner");
    }

    /// <summary>CRC-32 computed bit by bit (no table), independent of the library's table-driven version.</summary>
    private static uint BitwiseCrc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }
}
