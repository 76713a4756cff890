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
        int written = 0, skipped = 0;
        var clock = new Stopwatch();
        progress?.Report(new ProgressUpdate(0, samples.Count));
        for (int i = 0; i < samples.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sample = samples[i];
            var path = Path.Combine(dir, sample.Name + ".png");
            if (!options.Overwrite && File.Exists(path)) skipped++;
            else
            {
                clock.Start();
                var image = ImageCodec.Load(sample.ImagePath);
                LabelPng.Write(path, predictor.Predict(image, options));
                clock.Stop();
                written++;
            }
            progress?.Report(new ProgressUpdate(i + 1, samples.Count));
        }
        double seconds = clock.Elapsed.TotalSeconds;
        double imagesPerSecond = written / Math.Max(1e-9, seconds);
        Span<long> counts = [written, skipped];
        shard.SumOverRanks(counts);
        Span<double> rates = [imagesPerSecond];                   // the job's rate: the ranks' rates add up
        shard.Group?.AllreduceSum(rates);
        return new SegmentationInferenceSummary((int)counts[0], (int)counts[1], seconds, rates[0]);
    }
}
