using WeakSeg.Data;

namespace WeakSeg.Pipelines;

/// <summary>
/// Whether a split can be scored against pixel labels. The weak path of <see cref="WsssPipeline"/> and <see cref="DemoPipeline"/> (image
/// labels → model → maps → pseudo labels at the method's preset threshold) opens no mask; the metrics that read masks run only when every
/// image of the split has one. Otherwise they are skipped, and the run lists them with why (<see cref="SkippedMetricsKey"/> in
/// report.json / metrics.json), so a dataset with image labels only (labels.txt, no SegmentationClass) runs.
/// </summary>
public static class GroundTruthMasks
{
    /// <summary>The record's list of metrics not computed, each "METRICS: why".</summary>
    public const string SkippedMetricsKey = "skipped_metrics";

    /// <summary>True when every image of <paramref name="split"/> has a ground-truth mask (SegmentationClass or SegmentationClassAug).</summary>
    public static bool Complete(VocDataset split) => split.Samples.All(s => s.MaskPath is not null);

    /// <summary>The skipped-metrics line of <paramref name="metrics"/> ("cam_miou and pseudo_miou") for a split without masks;
    /// <paramref name="note"/> is appended (e.g. what is written instead).</summary>
    public static string SkippedLine(string metrics, string split, string note = "") =>
        $"{metrics}: split '{split}' has images without ground-truth masks{note}";

    /// <summary>Refuses <paramref name="option"/> (which needs the masks to choose its threshold or to compare) on a split with images
    /// without masks: one line naming the split and how many images have none.</summary>
    public static void Require(VocDataset split, string option)
    {
        if (Complete(split)) return;
        throw new WeakSegException($"{option} needs a ground-truth mask for every image of split '{split.Split}' ({split.Samples.Count(s => s.MaskPath is null)} have none)");
    }
}
