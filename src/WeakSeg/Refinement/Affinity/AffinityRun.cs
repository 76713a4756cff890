using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Models.Vit;
using WeakSeg.Runtime;
using WeakSeg.Training;
using WeakSeg.IO;

namespace WeakSeg.Refinement.Affinity;

/// <summary>Everything an affinity run was trained with; written as RUN/config.json and read back by inference.</summary>
public sealed record AffinityRunConfig
{
    public string Format { get; init; } = "weakseg-affinity-1";
    public AffinityNetConfig Net { get; init; } = new();
    public AffinityLabelConfig Labels { get; init; } = new();
    /// <summary>Pair radius on the feature grid during training (PSA train_aff.py: 5).</summary>
    public int Radius { get; init; } = 5;
    /// <summary>Square training crop; a multiple of the patch size (PSA: 448).</summary>
    public int CropSize { get; init; } = 448;
    /// <summary>Learning-rate multiplier of the head (PSA: 10× for from-scratch layers).</summary>
    public double HeadLearningRateScale { get; init; } = 10;
    /// <summary>Optimisation: PSA trains 5 epochs at batch 8 (train_aff.py); AdamW here, as every WeakSeg trainer.</summary>
    public TrainerOptions Trainer { get; init; } = new() { BatchSize = 8, BaseLr = 1e-4, MinLr = 1e-6, WarmupSteps = 0, WeightDecay = 5e-4 };
    public string CamDir { get; init; } = "";
    public string DataRoot { get; init; } = "";
    public string Split { get; init; } = "train";
    /// <summary>Backbone initialisation: a weights file, or null for random init.</summary>
    public string? InitWeights { get; init; }
}

/// <summary>Result of <see cref="AffinityRun.Train"/>.</summary>
public sealed record AffinityTrainSummary(TrainResult Training, int LabelImagesWritten, BackboneLoadReport? Init, double IgnoredPixelShare);

/// <summary>
/// An affinity run directory: config.json, labels/NAME.png (affinity-label images), the <see cref="Trainer"/> layout
/// (checkpoints/, metrics.jsonl) and model-final.bin.
/// </summary>
public static class AffinityRun
{
    public static string ConfigPath(string runDir) => Path.Combine(runDir, "config.json");
    public static string LabelDir(string runDir) => Path.Combine(runDir, "labels");
    public static string WeightsPath(string runDir) => Path.Combine(runDir, "model-final.bin");

    public static string ToJson(AffinityRunConfig config) => JsonSerializer.Serialize(config, AffinityJsonContext.Default.AffinityRunConfig);

    public static AffinityRunConfig ReadConfig(string runDir)
    {
        var path = ConfigPath(runDir);
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "affinity run configuration not found (is this an affinity run directory?)");
        return ParseConfig(File.ReadAllText(path), path);
    }

    /// <summary>Parses an affinity run configuration (snake_case JSON; unknown keys are errors naming <paramref name="sourcePath"/>).</summary>
    public static AffinityRunConfig ParseConfig(string json, string sourcePath)
    {
        IO.JsonFiles.Parse(json, sourcePath);                                   // a duplicate key is an error, not the last value winning
        try { return JsonSerializer.Deserialize(json, AffinityJsonContext.Default.AffinityRunConfig) ?? throw WeakSegException.ForFile(sourcePath, "empty configuration"); }
        catch (JsonException e) { throw WeakSegException.ForFile(sourcePath, "bad affinity run configuration: " + e.Message); }
    }

    /// <summary>Writes affinity-label images for every sample that has maps (resumable, parallel over images).</summary>
    public static (int Written, long Ignored, long Total) WriteLabelImages(VocDataset dataset, string camDir, string labelDir, AffinityLabelConfig labels,
                                                                         IProgress<ProgressUpdate>? progress = null)
    {
        Directory.CreateDirectory(labelDir);
        var samples = dataset.Samples;
        var missing = samples.FirstOrDefault(s => !CamMapFile.Exists(camDir, s.Name));
        if (missing != null) throw WeakSegException.ForFile(CamMapFile.MapPath(camDir, missing.Name), $"map file not found for image '{missing.Name}' of split '{dataset.Split}'");
        int written = 0;
        long ignored = 0, total = 0, done = 0;
        var gate = new object();
        var crf = labels with { Crf = labels.Crf with { MaxThreads = labels.Crf.MaxThreads ?? 1 } };
        progress?.Report(new ProgressUpdate(0, samples.Count, "affinity labels"));
        ParallelImages.For(samples.Count, Environment.ProcessorCount, () => 0, (i, _) =>
        {
            var s = samples[i];
            var path = Path.Combine(labelDir, s.Name + ".png");
            if (!File.Exists(path))
            {
                var maps = CamMapFile.Read(camDir, s.Name, dataset.NumClasses);
                var image = ImageCodec.Load(s.ImagePath);
                LabelMap label;
                try { label = AffinityLabels.FromMaps(maps, image, crf); }
                catch (WeakSegException e) { throw new WeakSegException($"{CamMapFile.MapPath(camDir, s.Name)} with image {s.ImagePath}: {e.Message}"); }
                LabelPng.Write(path, label);
                Interlocked.Increment(ref written);
                Interlocked.Add(ref ignored, label.Labels.LongCount(v => v == LabelMap.Ignore));
                Interlocked.Add(ref total, label.Labels.Length);
            }
            long d = Interlocked.Increment(ref done);
            if (progress != null) lock (gate) progress.Report(new ProgressUpdate(d, samples.Count, "affinity labels"));
            return 0;
        }, _ => { });
        return (written, ignored, total);
    }

    /// <summary>
    /// Trains an affinity network: writes config.json (fresh run), affinity-label images from the maps, then runs the <see cref="Trainer"/>
    /// on random scale-crops (PSA: crop, flip, colour jitter 0.3) with the label images as masks. With <paramref name="resume"/> the
    /// stored config.json is used and training continues from the latest checkpoint.
    /// </summary>
    public static AffinityTrainSummary Train(AffinityRunConfig config, string runDir, bool resume = false, IProgress<ProgressUpdate>? progress = null,
                                             CancellationToken cancellationToken = default)
    {
        if (resume) config = ReadConfig(runDir);
        config.Net.Validate();
        config.Labels.Validate();
        if (config.CropSize % config.Net.Backbone.PatchSize != 0)
            throw new WeakSegException($"crop size {config.CropSize} must be a multiple of the patch size {config.Net.Backbone.PatchSize}");
        if (config.Radius < 2) throw new WeakSegException($"affinity radius must be ≥ 2 (got {config.Radius})");
        var dataset = VocDataset.Open(config.DataRoot, config.Split);
        Directory.CreateDirectory(runDir);
        if (!resume)
        {
            if (Directory.Exists(Path.Combine(runDir, "checkpoints")) && Directory.EnumerateFileSystemEntries(Path.Combine(runDir, "checkpoints")).Any())
                throw WeakSegException.ForFile(runDir, "already holds a training run; pass --resume to continue it, or choose a new run directory");
            AtomicFile.WriteAllText(ConfigPath(runDir), ToJson(config));
        }
        var (written, ignored, total) = WriteLabelImages(dataset, config.CamDir, LabelDir(runDir), config.Labels, progress);

        var device = TorchRuntime.Initialize(config.Trainer.Device, config.Trainer.Threads);
        TorchRuntime.Seed(config.Trainer.Seed);
        var net = new AffinityNet(config.Net);
        BackboneLoadReport? init = null;
        if (!resume && config.InitWeights is { } weights) init = BackboneWeights.Load(net.Backbone, weights);
        net.to(device);
        var samples = dataset.Samples.Select(s => s with { MaskPath = Path.Combine(LabelDir(runDir), s.Name + ".png") }).ToList();
        var transform = new TrainTransform
        {
            CropSize = config.CropSize, Mode = CropMode.RandomScaleCrop, Brightness = 0.3, Contrast = 0.3, Saturation = 0.3,
        };
        var loader = new BatchLoader(samples, dataset.NumClasses, transform, config.Trainer.BatchSize, config.Trainer.Seed, loadMasks: true);
        var stream = new DelegateBatchStream(start => loader.Stream(start).Select(b =>
        {
            var (images, labels) = b.ToTensors(device);
            return new TrainBatch(images, labels, b.MasksToTensor(device));
        }));
        var trainable = new AffinityTrainable(net, dataset.NumClasses, config.Radius, config.HeadLearningRateScale);
        var result = new Trainer(config.Trainer, runDir).Run(trainable, stream, resume, progress, cancellationToken);
        return new AffinityTrainSummary(result, written, init, total > 0 ? (double)ignored / total : double.NaN);
    }

    /// <summary>The trained network of a run (config.json + model-final.bin), on <paramref name="device"/>.</summary>
    public static (AffinityNet Net, AffinityRunConfig Config) Load(string runDir, string device = "cpu")
    {
        var config = ReadConfig(runDir);
        var weights = WeightsPath(runDir);
        if (!File.Exists(weights)) throw WeakSegException.ForFile(weights, "trained weights not found (has the affinity run finished?)");
        var dev = TorchRuntime.Initialize(device);
        var net = new AffinityNet(config.Net);
        CheckpointStore.LoadModel(weights, net);
        net.to(dev);
        net.eval();
        return (net, config);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true, IgnoreReadOnlyProperties = true,
    UseStringEnumConverter = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(AffinityRunConfig))]
internal sealed partial class AffinityJsonContext : JsonSerializerContext;
