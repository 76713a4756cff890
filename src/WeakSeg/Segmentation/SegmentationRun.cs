using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Models.Weights;
using WeakSeg.Runtime;
using WeakSeg.Training;
using static TorchSharp.torch;
using WeakSeg.IO;

namespace WeakSeg.Segmentation;

/// <summary>What a retraining run was trained on; written as RUN/config.json (<see cref="RunDirectory"/>, format_version 1).</summary>
public sealed record SegmentationRunInfo : IRunConfig<SegmentationRunInfo>
{
    public static int FormatVersion => 1;
    public static string RunKind => "a segmentation run written by `weakseg seg-train`";

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

    public JsonObject ToJson() => JsonSerializer.SerializeToNode(this, IO.WeakSegJson.TypeInfo<SegmentationRunInfo>())!.AsObject();

    public static SegmentationRunInfo FromJson(JsonObject fields, int formatVersion, string path) =>
        fields.Deserialize(IO.WeakSegJson.TypeInfo<SegmentationRunInfo>()) ?? throw WeakSegException.ForFile(path, "empty run configuration");
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
    /// <summary>The segmenter; its class count is the dataset's K (<see cref="SegmentationConfig.For"/>: one that names another K is refused).</summary>
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
    /// Trains (or resumes) a retraining run through a <see cref="TrainingJob{TModel}"/>: RUN/config.json (<see cref="SegmentationRunInfo"/>),
    /// checkpoints/, metrics.jsonl, model-final.bin and loss.png. A resumed run must use the same configuration (up to its result-neutral
    /// fields), data, split, labels and seed as recorded in config.json.
    /// </summary>
    public static TrainResult Train(SegmentationTrainRequest request, IProgress<ProgressUpdate>? progress = null,
        CancellationToken cancellationToken = default, Action<StepReport>? stepCompleted = null, Action<string>? log = null)
    {
        var dataset = VocDataset.Open(request.DataRoot, request.Split);
        var config = request.Config.For(dataset);
        config.EnsureValid();
        var samples = TrainingSamples(dataset, request.LabelsDirectory);
        var info = new SegmentationRunInfo
        {
            Config = config, DataRoot = dataset.Root, Split = request.Split,
            Labels = request.LabelsDirectory is null ? "gt" : Path.GetFullPath(request.LabelsDirectory),
            ClassNames = dataset.ClassNames.All.ToArray(), Seed = request.Seed,
            InitWeights = request.InitWeights is null ? null : Path.GetFullPath(request.InitWeights),
        };
        var run = new RunDirectory(request.RunDirectory);
        var job = new TrainingJob<SegmentationNetwork>
        {
            Directory = run, Options = config.ToTrainerOptions(request.Seed, request.Device, request.Threads),
            Samples = samples, NumClasses = dataset.NumClasses, Transform = TrainTransformFor(config), LoadMasks = true,
            Workers = Math.Max(1, request.LoaderWorkers), Resume = request.Resume, Group = request.Group,
            CheckResume = d =>
            {
                var differences = Differences(d.ReadConfig<SegmentationRunInfo>(), info).ToList();
                if (differences.Count > 0)
                    throw WeakSegException.ForFile(d.ConfigPath, "cannot resume with different settings: " + string.Join("; ", differences) + " (use the same options, or a new run directory)");
            },
            WriteConfig = d => d.WriteConfig(info),
            Build = () => SegmentationNetwork.Create(config),
            InitWeights = request.InitWeights is { } init ? model =>
            {
                log?.Invoke($"encoder weights {TimmWeightImport.LoadFile(model.Encoder, init)}");
            } : null,
            Trainable = model => new SegmentationTrainable(model),
            StepCompleted = stepCompleted,
        };
        var result = job.Run(log, progress, cancellationToken);
        if (request.Group.IsRoot && result.Completed) Visualization.TrainingPlots.SaveLossCurve(run);
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

    /// <summary>Reads RUN/config.json; errors name the file.</summary>
    public static SegmentationRunInfo ReadInfo(string runDir) => new RunDirectory(runDir).ReadConfig<SegmentationRunInfo>();

    /// <summary>
    /// The trained model of a run, in eval mode on <paramref name="device"/>: RUN/model-final.bin, else the latest checkpoint
    /// (an unfinished run). Also returns which weights file was used.
    /// </summary>
    public static (SegmentationNetwork Model, SegmentationRunInfo Info, string WeightsPath) Load(string runDir, Device device)
    {
        var run = new RunDirectory(runDir);
        var info = run.ReadConfig<SegmentationRunInfo>();
        var weights = run.ResolveWeights();
        // the weights file replaces every weight, so a DeepLab trunk is not imported from the ONNX file first
        var model = SegmentationNetwork.Create(info.Config.Model == SegmentationModel.Segmenter ? info.Config
            : info.Config with { DeepLab = info.Config.ResolvedDeepLab with { Pretrained = false } });
        CheckpointStore.LoadModel(weights, model);
        model.to(device);
        model.eval();
        return (model, info, weights);
    }
}
