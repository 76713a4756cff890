using WeakSeg.Runtime;
using System.Globalization;
using WeakSeg.Data;
using WeakSeg.PseudoLabels;

namespace WeakSeg.Evaluation;

/// <summary>Options of the CAM background-threshold sweep.</summary>
public sealed record CamSweepOptions
{
    /// <summary>Background thresholds tried; default 0.00, 0.05, …, 0.60 (MCTformer's evaluation script sweeps this range).</summary>
    public IReadOnlyList<double> Thresholds { get; init; } = CamThresholdSweep.Range(0.0, 0.60, 0.05);
    public MeanIouRule MeanRule { get; init; } = MeanIouRule.ClassesWithUnion;
    /// <summary>Images processed in parallel.</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>Metrics at every threshold of a sweep; the best one is the highest mIoU (the lowest threshold on ties).</summary>
public sealed class CamSweepResult
{
    public IReadOnlyList<double> Thresholds { get; }
    public IReadOnlyList<SegmentationMetrics> Metrics { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public int NumImages { get; }
    public int BestIndex { get; }
    public double BestThreshold => Thresholds[BestIndex];
    public double BestMeanIou => Metrics[BestIndex].MeanIou;
    public SegmentationMetrics Best => Metrics[BestIndex];

    public CamSweepResult(IReadOnlyList<double> thresholds, IReadOnlyList<SegmentationMetrics> metrics, IReadOnlyList<string> classNames, int numImages)
    {
        if (thresholds.Count == 0 || thresholds.Count != metrics.Count) throw new ArgumentException("one metrics entry per threshold is needed");
        Thresholds = thresholds; Metrics = metrics; ClassNames = classNames; NumImages = numImages;
        int best = 0;
        for (int i = 1; i < metrics.Count; i++)
            if (metrics[i].MeanIou > metrics[best].MeanIou || double.IsNaN(metrics[best].MeanIou) && !double.IsNaN(metrics[i].MeanIou)) best = i;
        BestIndex = best;
    }
}

/// <summary>
/// CAM evaluation protocol of MCTformer/WeakTr: for each background threshold t, label = argmax over [t; class maps]
/// (see <see cref="CamToLabel"/>), scored against the ground truth with one <see cref="ConfusionMatrix"/> per threshold.
/// Every map is read once: per pixel the maximum class score m and its class c are computed, then for each t the label is
/// (m &gt; t ? c : 0).
/// </summary>
public static class CamThresholdSweep
{
    /// <summary>start, start+step, …, up to stop inclusive (within 1e-9), rounded to 9 decimals so 0.15 is 0.15.</summary>
    public static double[] Range(double start, double stop, double step)
    {
        if (!(step > 0)) throw new WeakSegException($"threshold step {step} must be positive");
        if (stop < start) throw new WeakSegException($"threshold range {start}..{stop} is empty");
        int n = (int)Math.Floor((stop - start) / step + 1e-9) + 1;
        if (n > 10_000) throw new WeakSegException($"threshold range {start}:{stop}:{step} has {n} values; at most 10000");
        return Enumerable.Range(0, n).Select(i => Math.Round(start + i * step, 9)).ToArray();
    }

    /// <summary>Parses "START:STOP:STEP" (inclusive) or a comma list "0.3,0.4,0.5".</summary>
    public static double[] ParseThresholds(string spec)
    {
        static double Num(string s, string spec) =>
            double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
                ? v : throw new WeakSegException($"thresholds '{spec}': '{s}' is not a number");
        var parts = spec.Split(':');
        double[] values = parts.Length switch
        {
            3 => Range(Num(parts[0], spec), Num(parts[1], spec), Num(parts[2], spec)),
            1 => spec.Split(',').Select(s => Num(s, spec)).ToArray(),
            _ => throw new WeakSegException($"thresholds '{spec}' must be START:STOP:STEP or a comma list"),
        };
        if (values.Length == 0) throw new WeakSegException($"thresholds '{spec}' give no value");
        return values;
    }

    /// <summary>
    /// The pure per-image step: adds the pixels of one image to one histogram per threshold
    /// (layout of <see cref="ConfusionMatrix.CountInto"/>). <paramref name="gt"/> must have Height·Width pixels.
    /// </summary>
    /// <exception cref="WeakSegException">a ground-truth label is neither a class index nor 255, or a map class is ≥ numClasses</exception>
    public static void CountInto(CamMaps maps, ReadOnlySpan<byte> gt, IReadOnlyList<double> thresholds, int numClasses, long[][] histograms)
    {
        if (gt.Length != maps.PlaneSize) throw new WeakSegException($"ground truth has {gt.Length} pixels, maps have {maps.PlaneSize}");
        if (histograms.Length != thresholds.Count) throw new ArgumentException("one histogram per threshold is needed", nameof(histograms));
        foreach (var c in maps.Classes)
            if (c < 1 || c >= numClasses) throw new WeakSegException($"map class {c} is outside the foreground classes 1..{numClasses - 1}");
        var (max, arg) = CamToLabel.MaxOverClasses(maps);
        int stride = numClasses + 1, T = thresholds.Count;
        // The background plane is float32, as in the reference evaluation. Sorting the thresholds turns the per-threshold labels
        // of a pixel into one number: the count k of thresholds below its score m (it is foreground exactly at those).
        var order = Enumerable.Range(0, T).OrderBy(j => thresholds[j]).ToArray();
        var sorted = order.Select(j => (float)thresholds[j]).ToArray();
        int buckets = T + 1, cells = numClasses * numClasses * buckets;
        var counts = System.Buffers.ArrayPool<long>.Shared.Rent(cells); // [gt, argmax class, k]
        try
        {
            Array.Clear(counts, 0, cells);
            for (int i = 0; i < gt.Length; i++)
            {
                int g = gt[i];
                if (g == ConfusionMatrix.Ignore) continue;
                if (g >= numClasses) throw new WeakSegException($"ground-truth label {g} at pixel {i} is outside the classes 0..{numClasses - 1} (and is not 255)");
                float m = max[i];
                int k = 0;
                while (k < T && sorted[k] < m) k++;
                counts[(g * numClasses + arg[i]) * buckets + k]++;
            }
            for (int g = 0; g < numClasses; g++)
                for (int c = 0; c < numClasses; c++)
                {
                    int cell = (g * numClasses + c) * buckets;
                    long total = 0;
                    for (int k = 0; k < buckets; k++) total += counts[cell + k];
                    if (total == 0) continue;
                    long foreground = 0; // pixels with k > s: foreground at sorted threshold s
                    for (int s = T - 1; s >= 0; s--)
                    {
                        foreground += counts[cell + s + 1];
                        var h = histograms[order[s]];
                        h[g * stride + c] += foreground;
                        h[g * stride] += total - foreground;
                    }
                }
        }
        finally { System.Buffers.ArrayPool<long>.Shared.Return(counts); }
    }

    /// <summary>Sweeps in-memory (maps, ground truth) pairs.</summary>
    public static CamSweepResult Run(IEnumerable<(CamMaps Maps, byte[] GroundTruth)> images, IReadOnlyList<string> classNames, CamSweepOptions? options = null)
    {
        options ??= new CamSweepOptions();
        var matrices = NewMatrices(options.Thresholds.Count, classNames.Count);
        var hist = NewHistograms(options.Thresholds.Count, classNames.Count);
        int count = 0;
        foreach (var (maps, gt) in images)
        {
            CountInto(maps, gt, options.Thresholds, classNames.Count, hist);
            count++;
        }
        for (int j = 0; j < hist.Length; j++) matrices[j].AddCounts(hist[j]);
        return Finish(options, matrices, classNames, count);
    }

    /// <summary>
    /// Sweeps the maps in <paramref name="camDir"/> (<see cref="CamMapFile"/> format) for every image of <paramref name="split"/> of
    /// the VOC-layout dataset at <paramref name="dataRoot"/>, in parallel over images. Errors name the files involved.
    /// </summary>
    public static CamSweepResult Evaluate(string camDir, string dataRoot, string split, CamSweepOptions? options = null,
                                          IProgress<ProgressUpdate>? progress = null) =>
        Scan(camDir, dataRoot, split, options, withArtifactRate: false, progress).Sweep;

    /// <summary>
    /// <see cref="Evaluate"/> and the maps' artifact rate (<see cref="MapArtifactRate"/>) from one reading of every map and mask. As
    /// before the two were read together, each worker sums the shares of its images and the workers' sums are added at the end (so the
    /// last digit of a rate may depend on how the images were split over the workers, as it did).
    /// </summary>
    public static (CamSweepResult Sweep, ArtifactRateResult Artifacts) EvaluateWithArtifactRate(string camDir, string dataRoot, string split,
        CamSweepOptions? options = null, IProgress<ProgressUpdate>? progress = null)
    {
        var (sweep, artifacts) = Scan(camDir, dataRoot, split, options, withArtifactRate: true, progress);
        return (sweep, artifacts!);
    }

    static (CamSweepResult Sweep, ArtifactRateResult? Artifacts) Scan(string camDir, string dataRoot, string split, CamSweepOptions? options,
        bool withArtifactRate, IProgress<ProgressUpdate>? progress)
    {
        options ??= new CamSweepOptions();
        if (options.Thresholds.Count == 0) throw new WeakSegException("no background threshold to sweep");
        if (!Directory.Exists(camDir)) throw WeakSegException.ForFile(camDir, "map directory not found");
        var layout = new VocLayout(dataRoot);
        var classNames = ClassNames.ForRoot(layout.Root).All.ToArray();
        var names = layout.ReadSplit(split);
        int K = classNames.Length, T = options.Thresholds.Count;
        var missing = names.FirstOrDefault(n => !CamMapFile.Exists(camDir, n));
        if (missing != null)
            throw WeakSegException.ForFile(CamMapFile.MapPath(camDir, missing), $"map file not found for image '{missing}' of split '{split}'");
        var matrices = NewMatrices(T, K);
        var artifacts = withArtifactRate ? new MapArtifactRate.Accumulator(K) : null;
        long done = 0;
        var progressGate = new object();
        progress?.Report(new ProgressUpdate(0, names.Count));
        ParallelImages.For(names.Count, options.MaxParallelism,
            () => (Histograms: NewHistograms(T, K), Artifacts: withArtifactRate ? new MapArtifactRate.Accumulator(K) : null),
            (i, local) =>
            {
                var name = names[i];
                var (maps, gt, gtPath) = ReadImage(layout, camDir, name, K);
                try { CountInto(maps, gt.Labels, options.Thresholds, K, local.Histograms); }
                catch (WeakSegException e) { throw new WeakSegException($"{gtPath} vs {CamMapFile.MapPath(camDir, name)}: {e.Message}"); }
                local.Artifacts?.Add(MapArtifactRate.ImageShares(maps, gt.Labels));
                long d = Interlocked.Increment(ref done);
                if (progress != null) lock (progressGate) progress.Report(new ProgressUpdate(d, names.Count));
                return local;
            },
            local =>
            {
                for (int j = 0; j < T; j++) matrices[j].AddCounts(local.Histograms[j]);
                if (local.Artifacts is not null) lock (artifacts!) artifacts.Merge(local.Artifacts);
            });
        return (Finish(options, matrices, classNames, names.Count), artifacts?.Result());
    }

    /// <summary>One image's maps and ground-truth mask (and the mask's path), of the same size; errors name the files.</summary>
    internal static (CamMaps Maps, LabelMap GroundTruth, string GroundTruthPath) ReadImage(VocLayout layout, string camDir, string name, int numClasses)
    {
        var gtPath = layout.MaskPath(name)
            ?? throw WeakSegException.ForFile(Path.Combine(layout.MasksDir, name + ".png"), $"ground-truth mask not found for image '{name}' (also looked in {layout.AugMasksDir})");
        var maps = CamMapFile.Read(camDir, name, numClasses - 1);
        var gt = LabelPng.Read(gtPath);
        if (gt.Width != maps.Width || gt.Height != maps.Height)
            throw new WeakSegException($"size mismatch: {CamMapFile.MapPath(camDir, name)} is {maps.Width}x{maps.Height} (WxH) but ground truth {gtPath} is {gt.Width}x{gt.Height}");
        return (maps, gt, gtPath);
    }

    static ConfusionMatrix[] NewMatrices(int t, int k) => Enumerable.Range(0, t).Select(_ => new ConfusionMatrix(k)).ToArray();
    static long[][] NewHistograms(int t, int k) => Enumerable.Range(0, t).Select(_ => new long[k * (k + 1)]).ToArray();

    static CamSweepResult Finish(CamSweepOptions options, ConfusionMatrix[] matrices, IReadOnlyList<string> classNames, int count) =>
        new(options.Thresholds.ToArray(), matrices.Select(m => m.ComputeMetrics(options.MeanRule)).ToArray(), classNames, count);
}
