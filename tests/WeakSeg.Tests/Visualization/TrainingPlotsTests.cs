using WeakSeg.Data;
using WeakSeg.Tests.Support;
using WeakSeg.Visualization;

namespace WeakSeg.Tests.Visualization;

public sealed class TrainingPlotsTests
{
    /// <summary>Pixels whose colour differs from the top-left (background) pixel.</summary>
    static int NonBackgroundPixels(RgbImage image)
    {
        var p = image.Pixels;
        int count = 0;
        for (int i = 0; i < p.Length; i += 3)
            if (p[i] != p[0] || p[i + 1] != p[1] || p[i + 2] != p[2]) count++;
        return count;
    }

    static string WriteMetrics(TempDir dir, params string[] lines)
    {
        var path = dir.File("metrics.jsonl");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    [Fact]
    public void LossCurve_IsAPngOfTheRequestedSizeWithContent()
    {
        using var dir = TestPaths.NewTempDir();
        var lines = Enumerable.Range(1, 30).Select(i =>
            $"{{\"step\":{i * 20},\"loss\":{1.0 / i:R},\"parts\":{{\"cls\":0.5}},\"lr\":{1e-4 * Math.Min(1, i / 5.0):R},\"grad_norm\":1.0}}").ToList();
        lines.Insert(10, "");                                             // blank lines are skipped
        lines.Add("{\"step\":620,\"loss\":\"NaN\",\"lr\":1e-5}");        // non-finite losses are accepted and left out
        var metrics = WriteMetrics(dir, lines.ToArray());
        Assert.Equal(31, TrainingPlots.ReadMetrics(metrics).Count);
        Assert.Equal(0.5, TrainingPlots.ReadMetrics(metrics)[1].Loss);
        Assert.True(double.IsNaN(TrainingPlots.ReadMetrics(metrics)[30].Loss));

        var png = dir.File("plots/loss.png");
        TrainingPlots.SaveLossCurve(metrics, png, 640, 400);
        var image = ImageCodec.Load(png);
        Assert.Equal((640, 400), (image.Width, image.Height));
        Assert.InRange(NonBackgroundPixels(image), 640 * 400 / 100, 640 * 400);
        Assert.False(File.Exists(png + ".tmp"));
    }

    [Fact]
    public void ThresholdSweep_IsAPngOfTheRequestedSizeWithContent()
    {
        using var dir = TestPaths.NewTempDir();
        var png = dir.File("sweep.png");
        double[] t = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
        double[] miou = [0.2, 0.35, 0.48, 0.52, 0.47, 0.40];
        TrainingPlots.SaveThresholdSweep(t, miou, png, 500, 300);
        var image = ImageCodec.Load(png);
        Assert.Equal((500, 300), (image.Width, image.Height));
        Assert.InRange(NonBackgroundPixels(image), 500 * 300 / 100, 500 * 300);
    }

    [Fact]
    public void ThresholdSweep_WithMismatchedLengths_NamesTheCounts()
    {
        using var dir = TestPaths.NewTempDir();
        var png = dir.File("sweep.png");
        var e = Assert.Throws<WeakSegException>(() => TrainingPlots.SaveThresholdSweep([0.1, 0.2], [0.5], png));
        Assert.Contains(png, e.Message);
        Assert.Contains("2 thresholds but 1 mIoU", e.Message);
    }

    [Theory]
    [InlineData("{\"step\":40,\"loss\":0.5}", "line 2: missing \"lr\"")]
    [InlineData("{\"step\":40,\"loss\":0.5,", "line 2: not valid JSON")]
    [InlineData("{\"step\":40,\"loss\":\"low\",\"lr\":1e-4}", "line 2: \"loss\" is not a number")]
    [InlineData("[1, 2]", "line 2: is not a JSON object")]
    [InlineData("{\"step\":4.5,\"loss\":0.5,\"lr\":1e-4}", "line 2: \"step\" must be a whole number")]
    public void BadMetricsLine_NamesTheFileAndLine(string badLine, string expected)
    {
        using var dir = TestPaths.NewTempDir();
        var metrics = WriteMetrics(dir, "{\"step\":20,\"loss\":0.7,\"lr\":1e-4}", badLine, "{\"step\":60,\"loss\":0.4,\"lr\":1e-4}");
        var e = Assert.Throws<WeakSegException>(() => TrainingPlots.SaveLossCurve(metrics, dir.File("loss.png")));
        Assert.StartsWith(metrics + ":", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.False(File.Exists(dir.File("loss.png")));
    }

    [Fact]
    public void MissingOrEmptyMetricsFile_IsAnError()
    {
        using var dir = TestPaths.NewTempDir();
        var missing = dir.File("none.jsonl");
        Assert.Contains("not found", Assert.Throws<WeakSegException>(() => TrainingPlots.ReadMetrics(missing)).Message);
        var empty = WriteMetrics(dir, "");
        var e = Assert.Throws<WeakSegException>(() => TrainingPlots.ReadMetrics(empty));
        Assert.StartsWith(empty, e.Message);
        Assert.Contains("no metric lines", e.Message);
    }
}
