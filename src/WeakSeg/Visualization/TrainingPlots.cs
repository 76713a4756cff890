using System.Globalization;
using System.Text.Json;
using ScottPlot;
using WeakSeg.IO;

namespace WeakSeg.Visualization;

/// <summary>One logged point of a training run (a metrics.jsonl line).</summary>
public readonly record struct MetricsPoint(long Step, double Loss, double LearningRate);

/// <summary>PNG charts of a run with ScottPlot (rendered headless through SkiaSharp). Files are written atomically.</summary>
public static class TrainingPlots
{
    public const int DefaultWidth = 800;
    public const int DefaultHeight = 500;

    /// <summary>Writes RUN/loss.png from RUN/metrics.jsonl of a run whose training completed (nothing when it logged no step).</summary>
    public static void SaveLossCurve(Training.RunDirectory run)
    {
        if (File.Exists(run.MetricsPath)) SaveLossCurve(run.MetricsPath, run.LossCurvePath);
    }

    /// <summary>Loss (left axis) and learning rate (right axis) against the step, from a metrics.jsonl
    /// (one JSON object per line with at least "step", "loss" and "lr"; see <see cref="Training.MetricsLog"/>).
    /// Non-finite losses (logged as strings such as "NaN") are left out of the curve.</summary>
    public static void SaveLossCurve(string metricsJsonlPath, string pngPath, int width = DefaultWidth, int height = DefaultHeight)
    {
        var title = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(metricsJsonlPath))) is { Length: > 0 } run ? $"training: {run}" : "training";
        AtomicFile.WriteAllBytes(pngPath, LossCurvePng(ReadMetrics(metricsJsonlPath), title, width, height, pngPath));
    }

    /// <summary>The loss curve of <see cref="SaveLossCurve"/> as PNG bytes, with <paramref name="title"/>; <paramref name="nameForErrors"/>
    /// names the plot in errors.</summary>
    public static byte[] LossCurvePng(IReadOnlyList<MetricsPoint> points, string title, int width = DefaultWidth, int height = DefaultHeight,
        string nameForErrors = "loss curve")
    {
        var finite = points.Where(p => double.IsFinite(p.Loss)).ToList();
        using var plot = new Plot();
        var loss = plot.Add.ScatterLine(finite.Select(p => (double)p.Step).ToArray(), finite.Select(p => p.Loss).ToArray());
        loss.LegendText = "loss";
        loss.LineWidth = 2;
        loss.MarkerSize = finite.Count <= 20 ? 6 : 0;                                         // a short log (even one point) stays visible
        var lr = plot.Add.ScatterLine(points.Select(p => (double)p.Step).ToArray(), points.Select(p => p.LearningRate).ToArray());
        lr.LegendText = "learning rate";
        lr.LineWidth = 1.5f;
        lr.LinePattern = LinePattern.Dashed;
        lr.Axes.YAxis = plot.Axes.Right;
        plot.Axes.Bottom.Label.Text = "step";
        plot.Axes.Left.Label.Text = "loss";
        plot.Axes.Right.Label.Text = "learning rate";
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperRight);
        return PngBytes(plot, nameForErrors, width, height);
    }

    /// <summary>The sweep of <paramref name="sweep"/> (its defined points: a threshold whose mIoU is undefined is left out).</summary>
    public static void SaveThresholdSweep(Evaluation.CamSweepResult sweep, string pngPath)
    {
        var points = sweep.Thresholds.Select((t, i) => (T: t, M: sweep.Metrics[i].MeanIou)).Where(p => double.IsFinite(p.M)).ToList();
        SaveThresholdSweep(points.Select(p => p.T).ToList(), points.Select(p => p.M).ToList(), pngPath);
    }

    /// <summary>mIoU against the background threshold of a CAM sweep, best point marked.</summary>
    public static void SaveThresholdSweep(IReadOnlyList<double> thresholds, IReadOnlyList<double> miou, string pngPath,
        int width = DefaultWidth, int height = DefaultHeight) =>
        AtomicFile.WriteAllBytes(pngPath, ThresholdSweepPng(thresholds, miou, pngPath, width, height));

    /// <summary>The chart of <see cref="SaveThresholdSweep(IReadOnlyList{double}, IReadOnlyList{double}, string, int, int)"/> as PNG bytes;
    /// <paramref name="pngPath"/> names the plot in errors.</summary>
    public static byte[] ThresholdSweepPng(IReadOnlyList<double> thresholds, IReadOnlyList<double> miou, string pngPath,
        int width = DefaultWidth, int height = DefaultHeight)
    {
        if (thresholds.Count == 0) throw WeakSegException.ForFile(pngPath, "threshold sweep has no points to plot");
        if (thresholds.Count != miou.Count)
            throw WeakSegException.ForFile(pngPath, $"threshold sweep has {thresholds.Count} thresholds but {miou.Count} mIoU values");
        for (int i = 0; i < thresholds.Count; i++)
            if (!double.IsFinite(thresholds[i]) || !double.IsFinite(miou[i]))
                throw WeakSegException.ForFile(pngPath, $"threshold sweep point {i} is not finite (threshold {thresholds[i]}, mIoU {miou[i]})");
        int best = 0;
        for (int i = 1; i < miou.Count; i++) if (miou[i] > miou[best]) best = i;

        using var plot = new Plot();
        var curve = plot.Add.Scatter(thresholds.ToArray(), miou.ToArray());
        curve.LineWidth = 2;
        curve.MarkerSize = 6;
        var marker = plot.Add.Marker(thresholds[best], miou[best]);
        marker.MarkerSize = 14;
        marker.MarkerShape = MarkerShape.OpenCircle;
        marker.Color = Colors.Red;
        var label = plot.Add.Text(string.Create(CultureInfo.InvariantCulture, $"best {miou[best]:0.####} at {thresholds[best]:0.###}"),
            thresholds[best], miou[best]);
        label.LabelFontColor = Colors.Red;
        double position = (thresholds[best] - thresholds.Min()) / Math.Max(1e-12, thresholds.Max() - thresholds.Min());
        label.LabelAlignment = position < 0.25 ? Alignment.LowerLeft : position > 0.75 ? Alignment.LowerRight : Alignment.LowerCenter;   // stays inside the plot
        label.OffsetY = -10;
        plot.Axes.Bottom.Label.Text = "background threshold";
        plot.Axes.Left.Label.Text = "mIoU";
        plot.Axes.Margins(bottom: 0.05, top: 0.25);                                          // room for the label above the best point
        plot.Title("CAM threshold sweep");
        return PngBytes(plot, pngPath, width, height);
    }

    /// <summary>Reads a metrics.jsonl; blank lines are skipped. Errors name the file and the 1-based line.</summary>
    public static IReadOnlyList<MetricsPoint> ReadMetrics(string metricsJsonlPath)
    {
        if (!File.Exists(metricsJsonlPath)) throw WeakSegException.ForFile(metricsJsonlPath, "metrics file not found");
        var points = new List<MetricsPoint>();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(metricsJsonlPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new FormatException("is not a JSON object");
                var root = doc.RootElement;
                double step = Number(root, "step");
                if (step < 0 || step != Math.Floor(step)) throw new FormatException($"\"step\" must be a whole number ≥ 0 (got {step})");
                points.Add(new MetricsPoint((long)step, Number(root, "loss"), Number(root, "lr")));
            }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                throw WeakSegException.ForFile(metricsJsonlPath, $"line {lineNumber}: {(e is JsonException ? "not valid JSON" : e.Message)}");
            }
        }
        if (points.Count == 0) throw WeakSegException.ForFile(metricsJsonlPath, "has no metric lines to plot");
        return points;
    }

    /// <summary>A number field; non-finite values written as strings ("NaN", "Infinity") are accepted.</summary>
    static double Number(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var v)) throw new FormatException($"missing \"{name}\"");
        if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
        if (v.ValueKind == JsonValueKind.String &&
            double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && !double.IsFinite(parsed))
            return parsed;
        throw new FormatException($"\"{name}\" is not a number");
    }

    /// <summary>Grouped bars: one group per entry of <paramref name="groups"/>, one bar per series (its values by group; a null value
    /// draws no bar), values in [0, 1] on an axis from 0 to a little above the largest value, with a legend of the series.</summary>
    public static byte[] GroupedBarsPng(IReadOnlyList<string> groups, IReadOnlyList<(string Series, IReadOnlyList<double?> Values)> series,
        string title, string valueLabel, int width = DefaultWidth, int height = DefaultHeight)
    {
        using var plot = new Plot();
        int n = series.Count;
        double barWidth = 0.8 / Math.Max(1, n);
        var palette = new ScottPlot.Palettes.Category10();
        for (int s = 0; s < n; s++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Count; g++)
                if (series[s].Values[g] is { } v && double.IsFinite(v))
                    bars.Add(new Bar { Position = g + (s - (n - 1) / 2.0) * barWidth, Value = v, Size = barWidth * 0.95, FillColor = palette.GetColor(s) });
            var plotted = plot.Add.Bars(bars);
            plotted.LegendText = series[s].Series;
            plotted.Color = palette.GetColor(s);
        }
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, groups.Count).Select(g => (double)g).ToArray(), groups.ToArray());
        // up to the largest value plus room for the legend, in steps of 0.05, at most 1
        double largest = series.SelectMany(x => x.Values).OfType<double>().Where(double.IsFinite).DefaultIfEmpty(1).Max();
        double top = largest > 0 ? Math.Min(1, Math.Ceiling(largest * 1.3 / 0.05) * 0.05) : 1;
        plot.Axes.SetLimits(-0.6, groups.Count - 0.4, 0, top);
        plot.Axes.Left.Label.Text = valueLabel;
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperRight);
        return PngBytes(plot, title, width, height);
    }

    static byte[] PngBytes(Plot plot, string nameForErrors, int width, int height)
    {
        if (width < 100 || height < 100) throw WeakSegException.ForFile(nameForErrors, $"plot size {width}x{height} is too small (at least 100x100)");
        using var image = plot.GetImage(width, height);
        return image.GetImageBytes(ImageFormat.Png);
    }
}
