using WeakSeg.Data;
using WeakSeg.Evaluation;

namespace WeakSeg.PseudoLabels;

/// <summary>Settings of pseudo-label generation from saved maps.</summary>
public sealed record PseudoLabelConfig
{
    /// <summary>Background threshold (see <see cref="CamToLabel.DefaultThreshold"/>).</summary>
    public float Threshold { get; init; } = CamToLabel.DefaultThreshold;
    /// <summary>Optional band of maximum class scores labelled 255; e.g. ToCo's low/high thresholds 0.25/0.7.</summary>
    public UncertainBand? Uncertain { get; init; }
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

/// <summary>Writes <c>OUT/NAME.png</c> (VOC palette, 255 = uncertain) for every map pair <c>CAMS/NAME.npy</c>, atomically.</summary>
public static class PseudoLabelWriter
{
    public static PseudoLabelSummary Run(string camDir, string outDir, PseudoLabelConfig? config = null, IProgress<ProgressUpdate>? progress = null)
    {
        config ??= new PseudoLabelConfig();
        config.Validate();
        var names = CamMapFile.ListNames(camDir);
        if (names.Count == 0) throw WeakSegException.ForFile(camDir, "contains no map files (NAME.npy)");
        Directory.CreateDirectory(outDir);
        int written = 0, skipped = 0;
        long ignore = 0, total = 0, done = 0;
        var gate = new object();
        progress?.Report(new ProgressUpdate(0, names.Count));
        ParallelImages.For(names.Count, config.MaxParallelism, () => 0,
            (i, _) =>
            {
                var name = names[i];
                var path = Path.Combine(outDir, name + ".png");
                if (!config.Overwrite && File.Exists(path)) Interlocked.Increment(ref skipped);
                else
                {
                    var label = CamToLabel.Convert(CamMapFile.Read(camDir, name), config.Threshold, config.Uncertain);
                    LabelPng.Write(path, label);
                    long ign = label.Labels.LongCount(v => v == LabelMap.Ignore);
                    Interlocked.Add(ref ignore, ign);
                    Interlocked.Add(ref total, label.Labels.Length);
                    Interlocked.Increment(ref written);
                }
                long d = Interlocked.Increment(ref done);
                if (progress != null) lock (gate) progress.Report(new ProgressUpdate(d, names.Count));
                return 0;
            },
            _ => { });
        return new PseudoLabelSummary(written, skipped, ignore, total);
    }
}
