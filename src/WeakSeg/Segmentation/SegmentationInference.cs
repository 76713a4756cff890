using WeakSeg.Runtime;
using System.Diagnostics;
using WeakSeg.Data;

namespace WeakSeg.Segmentation;

/// <summary>What <see cref="SegmentationInference.Run"/> did.</summary>
/// <param name="Written">predictions written by this call</param>
/// <param name="Skipped">predictions that already existed (kept)</param>
/// <param name="ImagesPerSecond">throughput over the written images</param>
public sealed record SegmentationInferenceSummary(int Written, int Skipped, double Seconds, double ImagesPerSecond);

/// <summary>Predicts a split and writes VOC-palette label PNGs <c>OUT/NAME.png</c> (atomic writes; existing files are skipped unless Overwrite).</summary>
public static class SegmentationInference
{
    public static SegmentationInferenceSummary Run(ILabelPredictor predictor, IReadOnlyList<VocSample> samples, string outDir,
        SegmentationInferenceOptions options, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default,
        WorkShard? shard = null)
    {
        shard ??= WorkShard.All;
        samples = shard.Select(samples, s => s.Name);
        var dir = Path.GetFullPath(outDir);
        if (File.Exists(dir)) throw WeakSegException.ForFile(dir, "output path is a file, expected a directory");
        Directory.CreateDirectory(dir);
        var clock = new Stopwatch();
        var job = new ImageDirectoryJob { Names = samples.Select(s => s.Name).ToList(), IsDone = name => File.Exists(Path.Combine(dir, name + ".png")), Overwrite = options.Overwrite };
        var summary = job.Run(i =>
        {
            clock.Start();
            var image = ImageCodec.Load(samples[i].ImagePath);
            LabelPng.Write(Path.Combine(dir, samples[i].Name + ".png"), predictor.Predict(image, options));
            clock.Stop();
        }, progress, cancellationToken);
        int written = summary.Written;
        double seconds = clock.Elapsed.TotalSeconds;
        double imagesPerSecond = written / Math.Max(1e-9, seconds);
        Span<long> counts = [summary.Written, summary.Skipped];
        shard.SumOverRanks(counts);
        Span<double> rates = [imagesPerSecond];                   // the job's rate: the ranks' rates add up
        shard.Group?.AllreduceSum(rates);
        return new SegmentationInferenceSummary((int)counts[0], (int)counts[1], seconds, rates[0]);
    }
}
