using System.Text.Json;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Models.Weights;
using WeakSeg.Runtime;
using WeakSeg.Training;
using static TorchSharp.torch;
using WeakSeg.IO;

namespace WeakSeg.Segmentation;

/// <summary>What a retraining run was trained on; written as RUN/config.json.</summary>
public sealed record SegmentationRunInfo
{
    public int FormatVersion { get; init; } = 1;
    public SegmentationConfig Config { get; init; } = new();
    /// <summary>Dataset root (absolute).</summary>
    public string DataRoot { get; init; } = "";
    public string Split { get; init; } = "train_aug";
    /// <summary>Pseudo-label directory (absolute), or "gt" for the dataset's own masks.</summary>
    public string Labels { get; init; } = "gt";
    /// <summary>Background + K class names.</summary>
    public string[] ClassNames { get; init; } = [];
    public long Seed { get; init; }
    /// <summary>timm safetensors loaded into the encoder before training, if any.</summary>
    public string? InitWeights { get; init; }
}

/// <summary>One retraining job.</summary>
public sealed record SegmentationTrainRequest
{
    /// <summary>Dataset root in VOC layout.</summary>
    public required string DataRoot { get; init; }
    public string Split { get; init; } = "train_aug";
    /// <summary>Directory of pseudo labels NAME.png, or null to train on the dataset's ground-truth masks (full-supervision upper bound).</summary>
    public string? LabelsDirectory { get; init; }
    public required string RunDirectory { get; init; }
    /// <summary><see cref="SegmentationConfig.NumClasses"/> is replaced by the dataset's K.</summary>
    public SegmentationConfig Config { get; init; } = SegmentationConfig.Cpu;
    public long Seed { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public bool Resume { get; init; }
    /// <summary>timm-format safetensors (ViT) loaded into the encoder of a fresh run.</summary>
    public string? InitWeights { get; init; }
    public int LoaderWorkers { get; init; } = 2;

    /// <summary>The ranks training together (<see cref="ProcessGroup.World"/> under mpirun): the batch size is the global batch,
    /// split over the ranks; rank 0 writes the run directory.</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;
}

/// <summary>Retraining runs: training from a dataset + labels, and loading a trained run for inference.</summary>
public static class SegmentationRun
{
    public const string ConfigFile = "config.json", FinalWeightsFile = "model-final.bin";

    /// <summary>
    /// The training samples: the split's samples with <see cref="VocSample.MaskPath"/> pointing to <c>labelsDir/NAME.png</c>, or the
    /// dataset's own masks when <paramref name="labelsDir"/> is null. A missing label file is an error naming it.
    /// </summary>
    public static IReadOnlyList<VocSample> TrainingSamples(VocDataset dataset, string? labelsDir)
    {
        if (labelsDir is null)
        {
            var unlabelled = dataset.Samples.FirstOrDefault(s => s.MaskPath is null);
            if (unlabelled is not null)
                throw WeakSegException.ForFile(Path.Combine(dataset.Root, "SegmentationClass", unlabelled.Name + ".png"),
                    $"ground-truth mask not found for image '{unlabelled.Name}' of split '{dataset.Split}' (--labels gt needs a mask for every image)");
            return dataset.Samples;
        }
        var dir = Path.GetFullPath(labelsDir);
        if (!Directory.Exists(dir)) throw WeakSegException.ForFile(dir, "pseudo-label directory not found");
        var samples = new List<VocSample>(dataset.Samples.Count);
        foreach (var s in dataset.Samples)
        {
            var path = Path.Combine(dir, s.Name + ".png");
            if (!File.Exists(path))
                throw WeakSegException.ForFile(path, $"pseudo label not found for image '{s.Name}' of split '{dataset.Split}' (write them with `weakseg pseudo`)");
            samples.Add(s with { MaskPath = path });
        }
        return samples;
    }

    /// <summary>Augmentation for retraining: RandomScaleCrop at the crop size, flip, colour jitter (TrainTransform defaults).</summary>
    public static TrainTransform TrainTransformFor(SegmentationConfig config) => new()
    {
        CropSize = config.CropSize, Mode = CropMode.RandomScaleCrop, MinRescale = config.MinRescale, MaxRescale = config.MaxRescale,
    };

    /// <summary>
    /// Trains (or resumes) a retraining run. Writes RUN/config.json, checkpoints/, metrics.jsonl and model-final.bin. A resumed run must
    /// use the same configuration, data, split, labels and seed as recorded in config.json.
    /// </summary>
    public static TrainResult Train(SegmentationTrainRequest request, IProgress<ProgressUpdate>? progress = null,
        CancellationToken cancellationToken = default, Action<StepReport>? stepCompleted = null, Action<string>? log = null)
    {
        var device = TorchRuntime.Initialize(request.Device, request.Threads);
        var dataset = VocDataset.Open(request.DataRoot, request.Split);
        var config = request.Config with { NumClasses = dataset.NumClasses };
        config.EnsureValid();
        var samples = TrainingSamples(dataset, request.LabelsDirectory);
        var info = new SegmentationRunInfo
        {
            Config = config, DataRoot = dataset.Root, Split = request.Split,
            Labels = request.LabelsDirectory is null ? "gt" : Path.GetFullPath(request.LabelsDirectory),
            ClassNames = dataset.ClassNames.All.ToArray(), Seed = request.Seed,
            InitWeights = request.InitWeights is null ? null : Path.GetFullPath(request.InitWeights),
        };
        var runDir = Path.GetFullPath(request.RunDirectory);
        var configPath = Path.Combine(runDir, ConfigFile);
        if (request.Resume)
        {
            var recorded = ReadInfo(runDir);
            var differences = Differences(recorded, info).ToList();
            if (differences.Count > 0)
                throw WeakSegException.ForFile(configPath, "cannot resume with different settings: " + string.Join("; ", differences) + " (use the same options, or a new run directory)");
            info = recorded with { Config = recorded.Config with { CheckpointEvery = config.CheckpointEvery, LogEvery = config.LogEvery } };
        }

        TorchRuntime.Seed(request.Seed);
        using var model = SegmentationNetwork.Create(config);
        model.to(device);
        if (!request.Resume)
        {
            if (request.InitWeights is { } init)
            {
                var report = TimmWeightImport.LoadFile(model.Encoder, init);
                log?.Invoke($"encoder weights from {init}: {report}");
            }
            if (new CheckpointStore(Path.Combine(runDir, "checkpoints")).Latest() is { } existing)
                throw WeakSegException.ForFile(Path.Combine(runDir, "checkpoints"),
                    $"already holds checkpoints (latest: step {existing.Step}); pass --resume to continue that run, or choose a new run directory");
        }
        // Every check that can refuse the run comes before config.json is written, so a refused run leaves nothing behind.
        var group = request.Group;
        var loader = new BatchLoader(samples, dataset.NumClasses, TrainTransformFor(config), config.BatchSize, request.Seed,
            workers: Math.Max(1, request.LoaderWorkers), loadMasks: true, rank: group.Rank, ranks: group.Size);
        VocDataset.CheckFiles(samples, dataset.NumClasses, masks: true);
        FolderLock? folderLock = null;
        group.OnRoot(() =>
        {
            folderLock = FolderLock.Acquire(runDir, "run directory");
            if (!request.Resume) WriteInfo(runDir, info);
        });
        using var heldLock = folderLock;
        var batches = new DelegateBatchStream(start => loader.Stream(start).Select(b =>
        {
            var (images, labels) = b.ToTensors(device);
            return new TrainBatch(images, labels, b.MasksToTensor(device));
        }));
        var options = config.ToTrainerOptions(request.Seed, request.Device, request.Threads);
        if (group.IsDistributed) log?.Invoke(DataParallel.Describe(group, options));
        var trainer = new Trainer(options, runDir) { StepCompleted = stepCompleted, Group = group };
        var result = trainer.Run(new SegmentationTrainable(model), batches, request.Resume, progress, cancellationToken);
        if (group.IsRoot && result.Completed && File.Exists(trainer.MetricsPath))
            Visualization.TrainingPlots.SaveLossCurve(trainer.MetricsPath, Path.Combine(trainer.RunDirectory, Pipelines.TrainPipeline.LossCurveFile));
        return result;
    }

    static IEnumerable<string> Differences(SegmentationRunInfo recorded, SegmentationRunInfo now)
    {
        if (recorded.Config.CanonicalForTraining().ToJson() != now.Config.CanonicalForTraining().ToJson()) yield return "the training configuration differs from config.json";
        if (recorded.DataRoot != now.DataRoot) yield return $"data is {now.DataRoot} but the run used {recorded.DataRoot}";
        if (recorded.Split != now.Split) yield return $"split is {now.Split} but the run used {recorded.Split}";
        if (recorded.Labels != now.Labels) yield return $"labels are {now.Labels} but the run used {recorded.Labels}";
        if (recorded.Seed != now.Seed) yield return $"seed is {now.Seed} but the run used {recorded.Seed}";
    }

    public static void WriteInfo(string runDir, SegmentationRunInfo info)
    {
        Directory.CreateDirectory(runDir);
        var path = Path.Combine(runDir, ConfigFile);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(info, SegmentationJsonContext.Default.SegmentationRunInfo));
    }

    /// <summary>Reads RUN/config.json; errors name the file.</summary>
    public static SegmentationRunInfo ReadInfo(string runDir)
    {
        var path = Path.Combine(Path.GetFullPath(runDir), ConfigFile);
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "not a segmentation run (config.json not found; train one with `weakseg seg-train`)");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), SegmentationJsonContext.Default.SegmentationRunInfo)
                   ?? throw WeakSegException.ForFile(path, "empty run configuration");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "bad run configuration JSON: " + e.Message); }
    }

    /// <summary>
    /// The trained model of a run, in eval mode on <paramref name="device"/>: RUN/model-final.bin, else the latest checkpoint
    /// (an unfinished run). Also returns which weights file was used.
    /// </summary>
    public static (SegmentationNetwork Model, SegmentationRunInfo Info, string WeightsPath) Load(string runDir, Device device)
    {
        var info = ReadInfo(runDir);
        var full = Path.GetFullPath(runDir);
        var weights = Path.Combine(full, FinalWeightsFile);
        if (!File.Exists(weights))
            weights = new CheckpointStore(Path.Combine(full, "checkpoints")).Latest()?.ModelPath
                      ?? throw WeakSegException.ForFile(Path.Combine(full, FinalWeightsFile), "no trained weights (neither model-final.bin nor a checkpoint)");
        // the weights file replaces every weight, so a DeepLab trunk is not imported from the ONNX file first
        var model = SegmentationNetwork.Create(info.Config.Model == SegmentationModel.Segmenter ? info.Config
            : info.Config with { DeepLab = info.Config.ResolvedDeepLab with { Pretrained = false } });
        CheckpointStore.LoadModel(weights, model);
        model.to(device);
        model.eval();
        return (model, info, weights);
    }
}
