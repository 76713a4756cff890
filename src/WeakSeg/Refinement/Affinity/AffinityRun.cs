using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Runtime;
using WeakSeg.Training;

namespace WeakSeg.Refinement.Affinity;

/// <summary>
/// Everything an affinity run was trained with; written as RUN/config.json (<see cref="RunDirectory"/>) and read back by inference.
/// Format 2 records <c>"format_version": 2</c>; format 1 (written before run folders shared one reader) recorded
/// <c>"format": "weakseg-affinity-1"</c> instead, with the same fields.
/// </summary>
public sealed record AffinityRunConfig : IRunConfig<AffinityRunConfig>
{
    public static int FormatVersion => 2;
    public static string RunKind => "an affinity run directory written by `weakseg affinity train`";

    /// <summary>The format marker of format 1.</summary>
    public const string LegacyFormatKey = "format", LegacyFormat1 = "weakseg-affinity-1";

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

    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, IO.WeakSegJson.TypeInfo<AffinityRunConfig>())!.AsObject();

    /// <summary>Snake_case fields; an unknown key is an error.</summary>
    public static AffinityRunConfig FromJson(JsonObject fields, int formatVersion, string path) =>
        fields.Deserialize(IO.WeakSegJson.TypeInfo<AffinityRunConfig>()) ?? throw WeakSegException.ForFile(path, "empty configuration");

    /// <summary>Format 1: <c>"format": "weakseg-affinity-1"</c> (removed here; format 2 has no such field).</summary>
    public static int? LegacyFormatVersion(JsonObject fields)
    {
        if (fields[LegacyFormatKey] is not JsonValue marker || marker.GetValueKind() != JsonValueKind.String || marker.GetValue<string>() != LegacyFormat1)
            return null;
        fields.Remove(LegacyFormatKey);
        return 1;
    }
}

/// <summary>What `weakseg affinity train` asks for: a starting configuration and the settings given explicitly, resolved into an
/// <see cref="AffinityRunConfig"/> by <see cref="Resolve"/>.</summary>
public sealed record AffinityTrainRequest
{
    /// <summary>The ViT preset of a backbone whose shape is neither given nor read from weights.</summary>
    public const string DefaultBackbone = "small";

    public required string CamDir { get; init; }
    public required string DataRoot { get; init; }
    public string Split { get; init; } = "train";
    public required string RunDirectory { get; init; }
    /// <summary>An affinity run configuration file (as written to RUN/config.json) to start from; null: the defaults with the
    /// <see cref="DefaultBackbone"/> ViT.</summary>
    public string? ConfigFile { get; init; }
    /// <summary>A trained run whose RUN/model-final.bin initialises the backbone (its ViT shape is read from the file).</summary>
    public string? InitRun { get; init; }
    /// <summary>A weights file that initialises the backbone: TorchSharp format (shape read from it) or timm .safetensors.</summary>
    public string? InitWeights { get; init; }
    /// <summary>Attention heads of a backbone read from weights (default: width / 64).</summary>
    public int? Heads { get; init; }
    /// <summary>ViT preset (tiny, small, base) when the shape is not read from weights; null keeps the configuration file's.</summary>
    public string? Backbone { get; init; }
    /// <summary>Optimizer steps; null: 5 epochs of the split (PSA train_aff.py).</summary>
    public long? Steps { get; init; }
    public int? BatchSize { get; init; }
    public int? CropSize { get; init; }
    /// <summary>Peak learning rate of the backbone (the head uses <see cref="AffinityRunConfig.HeadLearningRateScale"/> × it).</summary>
    public double? LearningRate { get; init; }
    public AffinityLabelMode? LabelMode { get; init; }
    public float? LowAlpha { get; init; }
    public float? HighAlpha { get; init; }
    /// <summary>Alpha mode without the dense CRF.</summary>
    public bool NoCrf { get; init; }
    public float? LowThreshold { get; init; }
    public float? HighThreshold { get; init; }
    public int? Radius { get; init; }
    public long? Seed { get; init; }
    public int Threads { get; init; }
    /// <summary>Continue the run from its latest checkpoint with its own config.json (the other settings are not used).</summary>
    public bool Resume { get; init; }

    /// <summary>The run configuration: the file's (or the defaults), with every setting given here laid over it. Errors name the file.</summary>
    public AffinityRunConfig Resolve()
    {
        var c = new AffinityRunConfig();
        if (ConfigFile is { } file)
        {
            if (!File.Exists(file)) throw WeakSegException.ForFile(file, "configuration file not found");
            c = Training.RunDirectory.ParseConfig<AffinityRunConfig>(File.ReadAllText(file), file, unversionedIs: AffinityRunConfig.FormatVersion);
        }
        string? weights = InitWeights;
        if (InitRun is { } run)
        {
            if (weights != null) throw new WeakSegException("give either --init-run or --init-weights, not both");
            weights = new RunDirectory(run).FinalWeightsPath;
            if (!File.Exists(weights)) throw WeakSegException.ForFile(weights, "trained weights of --init-run not found");
        }
        var net = c.Net;
        if (weights != null && !weights.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            net = net with { Backbone = BackboneWeights.InferBackbone(weights, Heads) with { DropPathRate = 0.1 } };
        else if (Backbone is not null || ConfigFile is null)
            net = net with { Backbone = VitConfig.FromPreset(Backbone ?? DefaultBackbone) };
        var labels = c.Labels;
        if (LabelMode is { } mode) labels = labels with { Mode = mode };
        if (LowAlpha is { } la) labels = labels with { LowAlpha = la };
        if (HighAlpha is { } ha) labels = labels with { HighAlpha = ha };
        if (NoCrf) labels = labels with { UseCrf = false };
        if (LowThreshold is { } lt) labels = labels with { LowThreshold = lt };
        if (HighThreshold is { } ht) labels = labels with { HighThreshold = ht };
        var trainer = c.Trainer with { Threads = Threads };
        if (BatchSize is { } b) trainer = trainer with { BatchSize = b };
        if (LearningRate is { } l) trainer = trainer with { BaseLr = l, MinLr = Math.Min(trainer.MinLr, l), WarmupStartLr = Math.Min(trainer.WarmupStartLr, l) };
        if (Seed is { } s) trainer = trainer with { Seed = s };
        if (Steps is { } st) trainer = trainer with { Steps = st };
        else if (!Resume)
        {
            int images = new VocLayout(DataRoot).ReadSplit(Split).Count;
            trainer = trainer with { Steps = Math.Max(1, 5L * (images / trainer.BatchSize)) };   // PSA: 5 epochs
        }
        trainer = trainer with { WarmupSteps = Math.Min(trainer.WarmupSteps, trainer.Steps), CheckpointEvery = Math.Min(trainer.CheckpointEvery, trainer.Steps) };
        return c with
        {
            Net = net, Labels = labels, Trainer = trainer, CamDir = Path.GetFullPath(CamDir), DataRoot = Path.GetFullPath(DataRoot), Split = Split,
            InitWeights = weights is null ? null : Path.GetFullPath(weights),
            CropSize = CropSize ?? c.CropSize, Radius = Radius ?? c.Radius,
        };
    }
}

/// <summary>Result of <see cref="AffinityRun.Train(AffinityRunConfig, string, bool, IProgress{ProgressUpdate}?, CancellationToken)"/>.</summary>
public sealed record AffinityTrainSummary(TrainResult Training, int LabelImagesWritten, WeightImportReport? Init, double IgnoredPixelShare);

/// <summary>
/// An affinity run directory: the <see cref="RunDirectory"/> layout (config.json, checkpoints/, metrics.jsonl, model-final.bin,
/// loss.png) plus labels/NAME.png (affinity-label images).
/// </summary>
public static class AffinityRun
{
    public const string LabelFolder = "labels";

    public static string LabelDir(string runDir) => new RunDirectory(runDir).File(LabelFolder);

    /// <summary>The text of RUN/config.json for <paramref name="config"/> (also a file for `affinity train --config`).</summary>
    public static string ToJson(AffinityRunConfig config) => RunDirectory.ConfigText(config);

    public static AffinityRunConfig ReadConfig(string runDir) => new RunDirectory(runDir).ReadConfig<AffinityRunConfig>();

    /// <summary>Writes affinity-label images for every sample that has maps (resumable, parallel over images).</summary>
    public static (int Written, long Ignored, long Total) WriteLabelImages(VocDataset dataset, string camDir, string labelDir, AffinityLabelConfig labels,
                                                                         IProgress<ProgressUpdate>? progress = null)
    {
        Directory.CreateDirectory(labelDir);
        var samples = dataset.Samples;
        var missing = samples.FirstOrDefault(s => !CamMapFile.Exists(camDir, s.Name));
        if (missing != null) throw WeakSegException.ForFile(CamMapFile.MapPath(camDir, missing.Name), $"map file not found for image '{missing.Name}' of split '{dataset.Split}'");
        long ignored = 0, total = 0;
        var crf = labels with { Crf = labels.Crf with { MaxThreads = labels.Crf.MaxThreads ?? 1 } };
        var job = new ImageDirectoryJob
        {
            Names = samples.Select(s => s.Name).ToList(), IsDone = name => File.Exists(Path.Combine(labelDir, name + ".png")),
            MaxParallelism = Environment.ProcessorCount, Status = "affinity labels",
        };
        var summary = job.Run(i =>
        {
            var s = samples[i];
            var maps = CamMapFile.Read(camDir, s.Name, dataset.NumClasses);
            var image = ImageCodec.Load(s.ImagePath);
            LabelMap label;
            try { label = AffinityLabels.FromMaps(maps, image, crf); }
            catch (WeakSegException e) { throw new WeakSegException($"{CamMapFile.MapPath(camDir, s.Name)} with image {s.ImagePath}: {e.Message}"); }
            LabelPng.Write(Path.Combine(labelDir, s.Name + ".png"), label);
            Interlocked.Add(ref ignored, label.Labels.LongCount(v => v == LabelMap.Ignore));
            Interlocked.Add(ref total, label.Labels.Length);
        }, progress);
        int written = summary.Written;
        return (written, ignored, total);
    }

    /// <summary>Resolves <paramref name="request"/> (<see cref="AffinityTrainRequest.Resolve"/>) and trains it.</summary>
    public static AffinityTrainSummary Train(AffinityTrainRequest request, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default) =>
        Train(request.Resolve(), request.RunDirectory, request.Resume, progress, cancellationToken);

    /// <summary>
    /// Trains an affinity network (<see cref="TrainingJob{TModel}"/>): writes config.json (fresh run), affinity-label images from the
    /// maps, then trains on random scale-crops (PSA: crop, flip, colour jitter 0.3) with the label images as masks. With
    /// <paramref name="resume"/> the stored config.json is used and training continues from the latest checkpoint.
    /// </summary>
    public static AffinityTrainSummary Train(AffinityRunConfig config, string runDir, bool resume = false, IProgress<ProgressUpdate>? progress = null,
                                             CancellationToken cancellationToken = default)
    {
        var run = new RunDirectory(runDir);
        if (resume) config = run.ReadConfig<AffinityRunConfig>();
        config.Net.Validate();
        config.Labels.Validate();
        if (config.CropSize % config.Net.Backbone.PatchSize != 0)
            throw new WeakSegException($"crop size {config.CropSize} must be a multiple of the patch size {config.Net.Backbone.PatchSize}");
        if (config.Radius < 2) throw new WeakSegException($"affinity radius must be ≥ 2 (got {config.Radius})");
        var dataset = VocDataset.Open(config.DataRoot, config.Split);
        var labelDir = run.File(LabelFolder);
        (int Written, long Ignored, long Total) labels = default;
        WeightImportReport? init = null;
        var job = new TrainingJob<AffinityNet>
        {
            Directory = run, Options = config.Trainer, NumClasses = dataset.NumClasses, LoadMasks = true, Resume = resume,
            Samples = dataset.Samples.Select(s => s with { MaskPath = Path.Combine(labelDir, s.Name + ".png") }).ToList(),
            Transform = new TrainTransform { CropSize = config.CropSize, Mode = CropMode.RandomScaleCrop, Brightness = 0.3, Contrast = 0.3, Saturation = 0.3 },
            WriteConfig = d => d.WriteConfig(config),
            Prepare = p => labels = WriteLabelImages(dataset, config.CamDir, labelDir, config.Labels, p),
            Build = () => new AffinityNet(config.Net),
            InitWeights = config.InitWeights is { } weights ? net => init = BackboneWeights.Load(net.Backbone, weights) : null,
            Trainable = net => new AffinityTrainable(net, dataset.NumClasses, config.Radius, config.HeadLearningRateScale),
        };
        var result = job.Run(progress: progress, cancellationToken: cancellationToken);
        return new AffinityTrainSummary(result, labels.Written, init, labels.Total > 0 ? (double)labels.Ignored / labels.Total : double.NaN);
    }

    /// <summary>The trained network of a run (config.json + model-final.bin), on <paramref name="device"/>.</summary>
    public static (AffinityNet Net, AffinityRunConfig Config) Load(string runDir, string device = "cpu")
    {
        var run = new RunDirectory(runDir);
        var config = run.ReadConfig<AffinityRunConfig>();
        if (!run.IsFinished) throw WeakSegException.ForFile(run.FinalWeightsPath, "trained weights not found (has the affinity run finished?)");
        var dev = TorchRuntime.Initialize(device);
        var net = new AffinityNet(config.Net);
        CheckpointStore.LoadModel(run.FinalWeightsPath, net);
        net.to(dev);
        net.eval();
        return (net, config);
    }
}

