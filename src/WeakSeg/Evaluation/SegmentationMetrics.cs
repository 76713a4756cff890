namespace WeakSeg.Evaluation;

/// <summary>
/// Metrics aggregated from a <see cref="ConfusionMatrix"/>. For class c: TP = pixels labelled c in both; GT = ground-truth pixels
/// of c (including those predicted 255 under <see cref="PredIgnorePolicy.CountAsMissed"/>); Pred = pixels predicted c.
/// IoU = TP / (GT + Pred − TP), precision = TP / Pred, recall = TP / GT; each is NaN when its denominator is 0.
/// Pixel accuracy = ΣTP / ΣGT. Means are nanmeans: <see cref="MeanIou"/> over the classes selected by <see cref="Rule"/>,
/// <see cref="MeanPrecision"/> / <see cref="MeanRecall"/> over the classes where they are defined. A mean over no class is NaN.
/// </summary>
public sealed class SegmentationMetrics
{
    public int NumClasses { get; }
    public MeanIouRule Rule { get; }
    /// <summary>Per class (index = class), NaN where undefined.</summary>
    public IReadOnlyList<double> Iou { get; }
    public IReadOnlyList<double> Precision { get; }
    public IReadOnlyList<double> Recall { get; }
    public IReadOnlyList<long> TruePositives { get; }
    public IReadOnlyList<long> GroundTruthPixels { get; }
    public IReadOnlyList<long> PredictedPixels { get; }
    public double MeanIou { get; }
    public double MeanPrecision { get; }
    public double MeanRecall { get; }
    public double PixelAccuracy { get; }
    /// <summary>Ground-truth pixels counted (ignore pixels excluded).</summary>
    public long TotalPixels { get; }

    SegmentationMetrics(int k, MeanIouRule rule, double[] iou, double[] precision, double[] recall, long[] tp, long[] gt, long[] pred,
                        double miou, double mp, double mr, double acc, long total)
    {
        NumClasses = k; Rule = rule; Iou = iou; Precision = precision; Recall = recall;
        TruePositives = tp; GroundTruthPixels = gt; PredictedPixels = pred;
        MeanIou = miou; MeanPrecision = mp; MeanRecall = mr; PixelAccuracy = acc; TotalPixels = total;
    }

    /// <summary>From a [K, K+1] count layout (see <see cref="ConfusionMatrix.CountInto"/>).</summary>
    internal static SegmentationMetrics FromCounts(long[] counts, int k, MeanIouRule rule)
    {
        int stride = k + 1;
        var tp = new long[k]; var gt = new long[k]; var pred = new long[k];
        for (int g = 0; g < k; g++)
        {
            tp[g] = counts[g * stride + g];
            for (int p = 0; p <= k; p++)
            {
                long n = counts[g * stride + p];
                gt[g] += n;
                if (p < k) pred[p] += n;
            }
        }
        var iou = new double[k]; var precision = new double[k]; var recall = new double[k];
        long tpSum = 0, total = 0;
        for (int c = 0; c < k; c++)
        {
            long union = gt[c] + pred[c] - tp[c];
            iou[c] = union > 0 ? (double)tp[c] / union : double.NaN;
            precision[c] = pred[c] > 0 ? (double)tp[c] / pred[c] : double.NaN;
            recall[c] = gt[c] > 0 ? (double)tp[c] / gt[c] : double.NaN;
            tpSum += tp[c]; total += gt[c];
        }
        var selected = Enumerable.Range(0, k).Where(c => rule == MeanIouRule.ClassesInGroundTruth ? gt[c] > 0 : !double.IsNaN(iou[c]));
        double miou = NanMean(selected.Select(c => iou[c]));
        return new SegmentationMetrics(k, rule, iou, precision, recall, tp, gt, pred, miou, NanMean(precision), NanMean(recall),
                                       total > 0 ? (double)tpSum / total : double.NaN, total);
    }

    static double NanMean(IEnumerable<double> values)
    {
        double sum = 0; int n = 0;
        foreach (var v in values) if (!double.IsNaN(v)) { sum += v; n++; }
        return n > 0 ? sum / n : double.NaN;
    }
}
