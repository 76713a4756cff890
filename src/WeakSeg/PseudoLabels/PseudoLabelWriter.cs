using WeakSeg.Runtime;
using WeakSeg.Data;
using System.Text.Json.Nodes;
using WeakSeg.Evaluation;
using WeakSeg.IO;

namespace WeakSeg.PseudoLabels;

/// <summary>Settings of pseudo-label generation from saved maps.</summary>
public sealed record PseudoLabelConfig
{
    /// <summary>Background threshold (see <see cref="CamToLabel.DefaultThreshold"/>).</summary>
    public float Threshold { get; init; } = CamToLabel.DefaultThreshold;
    /// <summary>Optional band of maximum class scores labelled 255; e.g. ToCo's low/high thresholds 0.25/0.7.</summary>
    public UncertainBand? Uncertain { get; init; }
    /// <summary>Foreground classes K of the maps' dataset; null = the K recorded beside the maps by `weakseg cam`, if any.</summary>
    public int? NumClasses { get; init; }
    /// <summary>Rewrite labels that already exist (default: skip them, so an interrupted run resumes).</summary>
    public bool Overwrite { get; init; }
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    public void Validate()
    {
        if (!(Threshold >= 0 && Threshold <= 1)) throw new WeakSegException($"threshold {Threshold} must be in [0, 1]");
        Uncertain?.Validate();
    }
}

/// <summary>Counts of a pseudo-label run.</summary>
public sealed record PseudoLabelSummary(int Written, int Skipped, long IgnorePixels, long TotalPixels);

/// <summary>
/// A refinement applied while writing pseudo labels (dense CRF, random walk): turns one image's maps into its label map in place of
/// <see cref="CamToLabel.Convert"/>. Implementations must be safe to call from several threads up to <see cref="MaxParallelism"/>.
/// </summary>
public interface IPseudoLabelRefiner
{
    /// <summary>Short description for messages, e.g. "dense CRF (psa)".</summary>
    string Description { get; }

    /// <summary>Images labelled at the same time (1 for refiners that run libtorch, which uses the cores itself).</summary>
    int MaxParallelism { get; }

    /// <summary>The label map of <paramref name="maps"/> under <paramref name="config"/> (threshold, uncertain band).</summary>
    LabelMap Label(CamMaps maps, PseudoLabelConfig config);
}

/// <summary>Writes <c>OUT/NAME.png</c> (VOC palette, 255 = uncertain) for every map pair <c>CAMS/NAME.npy</c>, atomically.</summary>
public static class PseudoLabelWriter
{
    /// <param name="refiner">optional refinement (CRF, random walk); null = plain <see cref="CamToLabel.Convert"/></param>
    public static PseudoLabelSummary Run(string camDir, string outDir, PseudoLabelConfig? config = null, IProgress<ProgressUpdate>? progress = null,
                                         IPseudoLabelRefiner? refiner = null, WorkShard? shard = null,
                                         CancellationToken cancellationToken = default)
    {
        config ??= new PseudoLabelConfig();
        config.Validate();
        shard ??= WorkShard.All;
        var allNames = CamMapFile.ListNames(camDir);
        if (allNames.Count == 0) throw WeakSegException.ForFile(camDir, "contains no map files (NAME.npy)");
        var names = shard.Select(allNames);
        // The class count of the maps' dataset (recorded by `weakseg cam`, or given): every image's classes are checked before any
        // label is written, so a class index outside the dataset never reaches a PNG.
        var camSettings = OutputSettings.Read(camDir);
        int? numClasses = config.NumClasses ?? camSettings?["num_classes"]?.GetValue<int>();
        if (numClasses is { } k)
            foreach (var name in names)
            {
                var classesPath = CamMapFile.ClassesPath(camDir, name);
                if (!File.Exists(classesPath)) continue;                                    // reported by CamMapFile.Read, with the map
                var outside = Interop.Npy.Read(classesPath).ToInt64().Where(c => c < 1 || c > k).Select(c => (long?)c).FirstOrDefault();
                if (outside is { } bad)
                    throw WeakSegException.ForFile(classesPath, $"class index {bad} is outside the foreground classes 1..{k} of the maps' dataset");
            }
        using var folderLock = ShardedOutputs.Claim(shard, outDir, () => OutputSettings.Claim(outDir, "pseudo labels", new JsonObject
        {
            ["outputs"] = "pseudo-labels",
            ["cams"] = Path.GetFullPath(camDir),
            ["maps"] = camSettings?.DeepClone(),
            ["threshold"] = config.Threshold,
            ["uncertain"] = config.Uncertain is { } band ? new JsonArray(band.Low, band.High) : null,
            ["refiner"] = refiner?.Description,
        }, allNames.Count(name => File.Exists(LabelPath(outDir, name))), replace: config.Overwrite));
        long ignore = 0, total = 0;
        int parallelism = refiner is null ? config.MaxParallelism : Math.Min(config.MaxParallelism, refiner.MaxParallelism);
        var job = new ImageDirectoryJob
        {
            Names = names, IsDone = name => File.Exists(LabelPath(outDir, name)), Overwrite = config.Overwrite, MaxParallelism = parallelism,
        };
        var summary = job.Run(i =>
        {
            var maps = CamMapFile.Read(camDir, names[i], numClasses);
            var label = refiner is null ? CamToLabel.Convert(maps, config.Threshold, config.Uncertain) : refiner.Label(maps, config);
            LabelPng.Write(LabelPath(outDir, names[i]), label);
            Interlocked.Add(ref ignore, label.Labels.LongCount(v => v == LabelMap.Ignore));
            Interlocked.Add(ref total, label.Labels.Length);
        }, progress, cancellationToken);
        Span<long> counts = [summary.Written, summary.Skipped, ignore, total];
        shard.SumOverRanks(counts);
        return new PseudoLabelSummary((int)counts[0], (int)counts[1], counts[2], counts[3]);
    }

    /// <summary>The label file of image <paramref name="name"/>: <c>DIR/NAME.png</c>.</summary>
    public static string LabelPath(string dir, string name) => Path.Combine(dir, name + ".png");
}
