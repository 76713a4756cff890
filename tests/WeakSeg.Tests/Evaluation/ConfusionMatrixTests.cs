using WeakSeg.Evaluation;

namespace WeakSeg.Tests.Evaluation;

public class ConfusionMatrixTests
{
    // K = 4 (bg, 1, 2, 3); class 3 appears nowhere. Pixel 5 is ignored in GT; pixel 7 is predicted 255.
    static readonly byte[] Gt   = [0, 0, 1, 1, 1, 255, 2, 0];
    static readonly byte[] Pred = [0, 1, 1, 1, 0, 2,   2, 255];

    [Fact]
    public void Hand_computed_metrics_with_ignore_pixels_and_an_absent_class()
    {
        var cm = new ConfusionMatrix(4);
        cm.Add(Gt, Pred);
        Assert.Equal(1, cm[0, 0]); Assert.Equal(1, cm[0, 1]); Assert.Equal(1, cm[0, 255]);
        Assert.Equal(2, cm[1, 1]); Assert.Equal(1, cm[1, 0]); Assert.Equal(1, cm[2, 2]);
        var m = cm.ComputeMetrics();
        // class 0: TP 1, GT 3 (incl. the missed pixel), Pred 2 → IoU 1/4, precision 1/2, recall 1/3
        Assert.Equal(0.25, m.Iou[0], 12); Assert.Equal(0.5, m.Precision[0], 12); Assert.Equal(1.0 / 3, m.Recall[0], 12);
        // class 1: TP 2, GT 3, Pred 3 → IoU 2/4
        Assert.Equal(0.5, m.Iou[1], 12); Assert.Equal(2.0 / 3, m.Precision[1], 12); Assert.Equal(2.0 / 3, m.Recall[1], 12);
        Assert.Equal(1.0, m.Iou[2], 12);
        Assert.True(double.IsNaN(m.Iou[3])); Assert.True(double.IsNaN(m.Precision[3])); Assert.True(double.IsNaN(m.Recall[3]));
        Assert.Equal((0.25 + 0.5 + 1.0) / 3, m.MeanIou, 12); // class 3 (no union) excluded
        Assert.Equal(4.0 / 7, m.PixelAccuracy, 12);
        Assert.Equal(7, m.TotalPixels);
        Assert.Equal((0.5 + 2.0 / 3 + 1) / 3, m.MeanPrecision, 12);
    }

    [Fact]
    public void Skip_policy_drops_pixels_predicted_255()
    {
        var cm = new ConfusionMatrix(4, PredIgnorePolicy.SkipPixel);
        cm.Add(Gt, Pred);
        var m = cm.ComputeMetrics();
        Assert.Equal(0, cm[0, 255]);
        Assert.Equal(1.0 / 3, m.Iou[0], 12); // TP 1, GT 2, Pred 2
        Assert.Equal(0.5, m.Recall[0], 12);
        Assert.Equal((1.0 / 3 + 0.5 + 1.0) / 3, m.MeanIou, 12);
        Assert.Equal(4.0 / 6, m.PixelAccuracy, 12);
    }

    [Fact]
    public void Class_present_only_in_the_prediction_counts_under_the_union_rule_only()
    {
        var cm = new ConfusionMatrix(3);
        cm.Add([0, 0, 1, 1], [0, 2, 1, 1]);
        var union = cm.ComputeMetrics(MeanIouRule.ClassesWithUnion);
        Assert.Equal(0.0, union.Iou[2]);
        Assert.Equal(0.0, union.Precision[2]);
        Assert.True(double.IsNaN(union.Recall[2]));
        Assert.Equal((0.5 + 1.0 + 0.0) / 3, union.MeanIou, 12);
        var gtOnly = cm.ComputeMetrics(MeanIouRule.ClassesInGroundTruth);
        Assert.Equal((0.5 + 1.0) / 2, gtOnly.MeanIou, 12);
    }

    [Fact]
    public void Out_of_range_labels_and_length_mismatch_are_rejected_with_value_and_pixel()
    {
        var cm = new ConfusionMatrix(4);
        var e = Assert.Throws<WeakSegException>(() => cm.Add([0, 1, 2], [0, 4, 1]));
        Assert.Contains("predicted label 4 at pixel 1", e.Message);
        e = Assert.Throws<WeakSegException>(() => cm.Add([0, 7, 2], [0, 1, 1]));
        Assert.Contains("ground-truth label 7 at pixel 1", e.Message);
        e = Assert.Throws<WeakSegException>(() => cm.Add([0, 1], [0, 1, 1]));
        Assert.Contains("2 pixels", e.Message);
        Assert.Equal(0, cm.ComputeMetrics().TotalPixels); // failed images add nothing
    }

    [Fact]
    public void Parallel_adds_and_merge_equal_a_brute_force_count()
    {
        const int K = 5;
        var rng = new Random(7);
        var images = Enumerable.Range(0, 40).Select(_ =>
        {
            var g = new byte[300]; var p = new byte[300];
            for (int i = 0; i < g.Length; i++)
            {
                g[i] = rng.Next(10) == 0 ? (byte)255 : (byte)rng.Next(K);
                p[i] = rng.Next(12) == 0 ? (byte)255 : (byte)rng.Next(K);
            }
            return (g, p);
        }).ToArray();
        var brute = new long[K, K + 1];
        foreach (var (g, p) in images)
            for (int i = 0; i < g.Length; i++)
                if (g[i] != 255) brute[g[i], p[i] == 255 ? K : p[i]]++;

        var parallel = new ConfusionMatrix(K);
        Parallel.ForEach(images, im => parallel.Add(im.g, im.p));
        Assert.Equal(brute, parallel.ToArray());

        var first = new ConfusionMatrix(K); var second = new ConfusionMatrix(K);
        for (int i = 0; i < images.Length; i++) (i % 2 == 0 ? first : second).Add(images[i].g, images[i].p);
        first.Merge(second);
        Assert.Equal(brute, first.ToArray());
        Assert.Throws<ArgumentException>(() => first.Merge(new ConfusionMatrix(K, PredIgnorePolicy.SkipPixel)));
    }
}
