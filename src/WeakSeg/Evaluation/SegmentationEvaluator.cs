using WeakSeg.Data;
using WeakSeg.Runtime;

namespace WeakSeg.Evaluation;

/// <summary>Options of <see cref="SegmentationEvaluator"/>.</summary>
public sealed record SegmentationEvalOptions
{
    /// <summary>Meaning of predicted 255 pixels (default: counted as not predicted).</summary>
    public PredIgnorePolicy PredIgnore { get; init; } = PredIgnorePolicy.CountAsMissed;
    public MeanIouRule MeanRule { get; init; } = MeanIouRule.ClassesWithUnion;
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>Result of scoring a directory of predicted masks against a split.</summary>
public sealed record SegmentationEvaluation(SegmentationMetrics Metrics, IReadOnlyList<string> ClassNames, int NumImages, string Split,
                                           PredIgnorePolicy PredIgnore)
{
    /// <summary>The confusion histogram the metrics come from (<see cref="ConfusionMatrix.Counts"/>): what a --shard job's partial
    /// file keeps, so shards merge by adding counts.</summary>
    public long[] Counts { get; init; } = [];
}

/// <summary>Scores predicted masks (<c>DIR/NAME.png</c>, palette or grayscale indices, 255 = no prediction) against the ground truth.</summary>
public static class SegmentationEvaluator
{
    public static string PredictionPath(string predDir, string name) => Path.Combine(predDir, name + ".png");

    /// <summary>
    /// Evaluates every image of <paramref name="split"/> of the VOC-layout dataset at <paramref name="dataRoot"/>, in parallel.
    /// Fails with a message naming the file on: a missing prediction or ground truth, a size mismatch, a label outside the classes.
    /// </summary>
    public static SegmentationEvaluation EvaluateDirectory(string predDir, string dataRoot, string split, SegmentationEvalOptions? options = null,
                                                           IProgress<ProgressUpdate>? progress = null, WorkShard? shard = null)
    {
        options ??= new SegmentationEvalOptions();
        shard ??= WorkShard.All;
        if (!Directory.Exists(predDir)) throw WeakSegException.ForFile(predDir, "prediction directory not found");
        var layout = new VocLayout(dataRoot);
        var classNames = ClassNames.ForRoot(layout.Root).All.ToArray();
        var names = shard.Select(layout.ReadSplit(split));
        var missing = names.FirstOrDefault(n => !File.Exists(PredictionPath(predDir, n)));
        if (missing != null)
            throw WeakSegException.ForFile(PredictionPath(predDir, missing), $"prediction not found for image '{missing}' of split '{split}'");
        int K = classNames.Length;
        var matrix = new ConfusionMatrix(K, options.PredIgnore);
        long done = 0;
        var progressGate = new object();
        progress?.Report(new ProgressUpdate(0, names.Count));
        ParallelImages.For(names.Count, options.MaxParallelism,
            () => new long[K * (K + 1)],
            (i, hist) =>
            {
                var name = names[i];
                var gtPath = layout.MaskPath(name)
                    ?? throw WeakSegException.ForFile(Path.Combine(layout.MasksDir, name + ".png"), $"ground-truth mask not found for image '{name}' (also looked in {layout.AugMasksDir})");
                var predPath = PredictionPath(predDir, name);
                var gt = LabelPng.Read(gtPath);
                var pred = LabelPng.Read(predPath);
                if (gt.Width != pred.Width || gt.Height != pred.Height)
                    throw new WeakSegException($"size mismatch: prediction {predPath} is {pred.Width}x{pred.Height} (WxH) but ground truth {gtPath} is {gt.Width}x{gt.Height}");
                try { ConfusionMatrix.CountInto(gt.Labels, pred.Labels, K, options.PredIgnore, hist); }
                catch (WeakSegException e) { throw new WeakSegException($"{predPath} vs {gtPath}: {e.Message}"); }
                long d = Interlocked.Increment(ref done);
                if (progress != null) lock (progressGate) progress.Report(new ProgressUpdate(d, names.Count));
                return hist;
            },
            matrix.AddCounts);
        if (shard.Group is { IsDistributed: true } group)
        {
            // MPI ranks: one confusion matrix for the job, the sum of the ranks' (on every rank).
            var counts = matrix.Counts();
            group.AllreduceSum(counts);
            Span<long> images = [names.Count];
            group.AllreduceSum(images);
            return new SegmentationEvaluation(ConfusionMatrix.FromCounts(K, options.PredIgnore, counts).ComputeMetrics(options.MeanRule), classNames,
                (int)images[0], split, options.PredIgnore) { Counts = counts };
        }
        return new SegmentationEvaluation(matrix.ComputeMetrics(options.MeanRule), classNames, names.Count, split, options.PredIgnore) { Counts = matrix.Counts() };
    }
}
