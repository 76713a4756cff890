using WeakSeg.Runtime;
using WeakSeg.Data;
using WeakSeg.Evaluation;

namespace WeakSeg.Refinement;

/// <summary>Scoring of class maps after the dense CRF (the "maps + CRF" column of <c>weakseg eval-cam --compare-crf</c>).</summary>
public static class CrfMapEvaluation
{
    /// <summary>
    /// mIoU of <see cref="CrfPostProcessing.RefineMaps"/> labels (background per <paramref name="options"/>, e.g. the best threshold of the
    /// raw sweep) for every image of <paramref name="split"/>, in parallel over images with single-threaded CRFs. Errors name the files.
    /// </summary>
    public static SegmentationMetrics Evaluate(string camDir, string dataRoot, string split, CrfMapOptions options, MeanIouRule meanRule = MeanIouRule.ClassesWithUnion,
                                               int maxParallelism = 0, IProgress<ProgressUpdate>? progress = null)
    {
        options.Validate();
        if (!Directory.Exists(camDir)) throw WeakSegException.ForFile(camDir, "map directory not found");
        var layout = new VocLayout(dataRoot);
        var classNames = ClassNames.ForRoot(layout.Root).All.ToArray();
        var names = layout.ReadSplit(split);
        var missing = names.FirstOrDefault(n => !CamMapFile.Exists(camDir, n));
        if (missing != null) throw WeakSegException.ForFile(CamMapFile.MapPath(camDir, missing), $"map file not found for image '{missing}' of split '{split}'");
        int K = classNames.Length;
        var crfOptions = options with { Crf = options.Crf with { MaxThreads = options.Crf.MaxThreads ?? 1 } };
        var matrix = new ConfusionMatrix(K);
        long done = 0;
        var gate = new object();
        progress?.Report(new ProgressUpdate(0, names.Count));
        ParallelImages.For(names.Count, maxParallelism > 0 ? maxParallelism : Environment.ProcessorCount, () => new long[K * (K + 1)], (i, hist) =>
        {
            var name = names[i];
            var gtPath = layout.MaskPath(name)
                ?? throw WeakSegException.ForFile(Path.Combine(layout.MasksDir, name + ".png"), $"ground-truth mask not found for image '{name}'");
            var maps = CamMapFile.Read(camDir, name, K - 1);
            var imagePath = layout.ImagePath(name);
            var gt = LabelPng.Read(gtPath);
            LabelMap pred;
            try { pred = CrfPostProcessing.RefineMaps(maps, ImageCodec.Load(imagePath), crfOptions); }
            catch (WeakSegException e) { throw new WeakSegException($"{CamMapFile.MapPath(camDir, name)} with image {imagePath}: {e.Message}"); }
            if (gt.Width != pred.Width || gt.Height != pred.Height)
                throw new WeakSegException($"size mismatch: {CamMapFile.MapPath(camDir, name)} is {pred.Width}x{pred.Height} (WxH) but ground truth {gtPath} is {gt.Width}x{gt.Height}");
            ConfusionMatrix.CountInto(gt.Labels, pred.Labels, K, PredIgnorePolicy.CountAsMissed, hist);
            long d = Interlocked.Increment(ref done);
            if (progress != null) lock (gate) progress.Report(new ProgressUpdate(d, names.Count));
            return hist;
        }, matrix.AddCounts);
        return matrix.ComputeMetrics(meanRule);
    }
}
