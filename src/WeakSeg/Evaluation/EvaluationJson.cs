using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;

namespace WeakSeg.Evaluation;

/// <summary>
/// JSON reports of evaluations, written atomically. Metrics are fractions in [0, 1]; undefined values (NaN) are written as null.
/// <code>
/// eval:     { "split", "num_images", "num_classes", "miou", "pixel_accuracy", "mean_precision", "mean_recall", "miou_rule",
///             "pred_ignore", "per_class": { NAME: { "iou", "precision", "recall", "gt_pixels", "pred_pixels" } } }
/// eval-cam: { "split", "num_images", "num_classes", "best_miou", "best_threshold", "miou_rule",
///             "miou_by_threshold": { "0.00": miou, ... }, "pixel_accuracy" (at best), "per_class" (at best, as above) }
/// </code>
/// </summary>
public static class EvaluationJson
{
    public static void Write(string path, SegmentationEvaluation evaluation) => WriteAtomically(path, w =>
    {
        var m = evaluation.Metrics;
        w.WriteString("split", evaluation.Split);
        w.WriteNumber("num_images", evaluation.NumImages);
        w.WriteNumber("num_classes", m.NumClasses);
        Number(w, "miou", m.MeanIou);
        Number(w, "pixel_accuracy", m.PixelAccuracy);
        Number(w, "mean_precision", m.MeanPrecision);
        Number(w, "mean_recall", m.MeanRecall);
        w.WriteString("miou_rule", RuleName(m.Rule));
        w.WriteString("pred_ignore", PolicyName(evaluation.PredIgnore));
        PerClass(w, m, evaluation.ClassNames);
    });

    /// <summary>The sweep file; with <paramref name="artifacts"/> also "artifact_rate" and "artifact_rate_by_class" (<see cref="MapArtifactRate"/>).</summary>
    public static void Write(string path, CamSweepResult result, string split, ArtifactRateResult? artifacts = null) => WriteAtomically(path, w =>
    {
        w.WriteString("split", split);
        w.WriteNumber("num_images", result.NumImages);
        w.WriteNumber("num_classes", result.ClassNames.Count);
        Number(w, "best_miou", result.BestMeanIou);
        w.WriteNumber("best_threshold", result.BestThreshold);
        w.WriteString("miou_rule", RuleName(result.Best.Rule));
        w.WriteStartObject("miou_by_threshold");
        for (int i = 0; i < result.Thresholds.Count; i++) Number(w, FormatThreshold(result.Thresholds[i]), result.Metrics[i].MeanIou);
        w.WriteEndObject();
        Number(w, "pixel_accuracy", result.Best.PixelAccuracy);
        PerClass(w, result.Best, result.ClassNames);
        if (artifacts is not null)
        {
            Number(w, "artifact_rate", artifacts.Rate);
            w.WriteStartObject("artifact_rate_by_class");
            for (int c = 1; c < Math.Min(artifacts.ByClass.Count, result.ClassNames.Count); c++) Number(w, result.ClassNames[c], artifacts.ByClass[c]);
            w.WriteEndObject();
        }
    });

    /// <summary>{ "0.00": miou, ... } of a sweep, as in the eval-cam file (NaN as null).</summary>
    public static JsonObject MeanIouByThreshold(CamSweepResult result)
    {
        var json = new JsonObject();
        for (int i = 0; i < result.Thresholds.Count; i++) json[FormatThreshold(result.Thresholds[i])] = NumberOrNull(result.Metrics[i].MeanIou);
        return json;
    }

    /// <summary>A metric as a JSON number, or null when it is undefined (NaN or infinite: JSON has no such numbers).</summary>
    public static JsonNode? NumberOrNull(double value) => double.IsFinite(value) ? JsonValue.Create(value) : null;

    /// <summary>"0.00", "0.05", "0.125": at least two decimals, more only when needed.</summary>
    public static string FormatThreshold(double t) => t.ToString("0.00#######", CultureInfo.InvariantCulture);

    static string PolicyName(PredIgnorePolicy p) => p == PredIgnorePolicy.SkipPixel ? "skip_pixel" : "count_as_missed";
    static string RuleName(MeanIouRule r) => r == MeanIouRule.ClassesInGroundTruth ? "classes_in_ground_truth" : "classes_with_union";

    static void PerClass(Utf8JsonWriter w, SegmentationMetrics m, IReadOnlyList<string> names)
    {
        w.WriteStartObject("per_class");
        for (int c = 0; c < m.NumClasses; c++)
        {
            w.WriteStartObject(c < names.Count ? names[c] : "class" + c);
            Number(w, "iou", m.Iou[c]);
            Number(w, "precision", m.Precision[c]);
            Number(w, "recall", m.Recall[c]);
            w.WriteNumber("gt_pixels", m.GroundTruthPixels[c]);
            w.WriteNumber("pred_pixels", m.PredictedPixels[c]);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v); else w.WriteNull(name);
    }

    static void WriteAtomically(string path, Action<Utf8JsonWriter> body)
    {
        AtomicFile.Write(path, fs =>
        {
            using var w = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        });
    }
}
