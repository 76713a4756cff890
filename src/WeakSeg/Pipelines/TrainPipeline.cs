using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Methods;
using WeakSeg.Models.Weights;
using WeakSeg.Runtime;
using WeakSeg.Training;

namespace WeakSeg.Pipelines;

/// <summary>What <see cref="TrainPipeline.Run"/> trains.</summary>
public sealed record TrainRequest
{
    /// <summary>Dataset root in VOC layout.</summary>
    public required string DataRoot { get; init; }

    /// <summary>Split list to train on (image-level labels only).</summary>
    public string Split { get; init; } = "train";

    public required string RunDirectory { get; init; }

    /// <summary>Resolved recipe; its class count is replaced by the dataset's.</summary>
    public required TrainRecipe Recipe { get; init; }

    /// <summary>Name of the preset the recipe started from (recorded in config.json).</summary>
    public string Preset { get; init; } = "custom";

    /// <summary>timm safetensors weights loaded before training (ignored on resume: the checkpoint wins).</summary>
    public string? InitWeights { get; init; }

    public bool Resume { get; init; }

    /// <summary>A WeakSeg model file (<c>model-final.bin</c> or a checkpoint's <c>model.bin</c> of the same method and configuration)
    /// loaded before training (ignored on resume): a label-updating round starts from the previous round's weights.</summary>
    public string? InitModel { get; init; }

    /// <summary>Pixel labels NAME.png for every image (a label-updating round's), carried by the batches as <see cref="TrainBatch.Masks"/>;
    /// null = none (the dataset's masks are never read for training).</summary>
    public string? LabelsDirectory { get; init; }

    /// <summary>Saliency maps carried by the batches (<see cref="TrainBatch.Saliency"/>); null = none (a method that takes saliency then
    /// estimates it). Given only for methods that take saliency (<see cref="IWsssMethodFactory.UsesSaliency"/>).</summary>
    public Refinement.Saliency.SaliencySource? Saliency { get; init; }

    /// <summary>Image-decoding threads of the <see cref="BatchLoader"/> (never changes the batches).</summary>
    public int Workers { get; init; } = 2;

    /// <summary>The ranks training together (<see cref="ProcessGroup.World"/> under mpirun): the recipe's batch size is the global
    /// batch, split over the ranks; rank 0 writes the run directory.</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;
}

/// <summary>How a training run ended.</summary>
public sealed record TrainOutcome(TrainResult Result, RunConfig Config, WeightImportReport? Import);

/// <summary>
/// End-to-end training of any registered method: opens the split, writes RUN/config.json, builds the method (seeded),
/// optionally imports timm weights, streams BatchLoader batches (no masks) into the shared <see cref="Trainer"/>.
/// </summary>
public static class TrainPipeline
{
    /// <summary>The loss and learning-rate curve written beside metrics.jsonl when a run completes.</summary>
    public const string LossCurveFile = "loss.png";

    public static TrainOutcome Run(TrainRequest request, Action<string>? log = null, IProgress<ProgressUpdate>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var dataset = VocDataset.Open(request.DataRoot, request.Split);
        var recipe = request.Recipe.WithNumClasses(dataset.NumClasses);
        recipe.EnsureValid();
        if (request.InitWeights is { } init && !File.Exists(init)) throw WeakSegException.ForFile(init, "weights file not found");
        var config = new RunConfig(recipe, request.Preset, Path.GetFullPath(dataset.Root), dataset.Split, dataset.ClassNames.All,
            request.InitWeights is null ? null : Path.GetFullPath(request.InitWeights));

        var configPath = RunConfig.PathIn(request.RunDirectory);
        if (request.Resume)
        {
            if (!File.Exists(configPath)) throw WeakSegException.ForFile(configPath, "cannot resume: run configuration not found");
            var previous = RunConfig.Load(request.RunDirectory);
            foreach (var key in new[] { TrainRecipe.MethodKey, TrainRecipe.ModelKey, TrainRecipe.AugmentationKey })
                if (!JsonNode.DeepEquals(previous.Recipe.ToJson()[key], recipe.ToJson()[key]))
                    throw WeakSegException.ForFile(configPath, $"cannot resume: '{key}' differs from the run's configuration (use the same options or a new run directory)");
        }

        // Every check that can refuse the run comes before config.json is written, so a refused run leaves nothing behind.
        var options = recipe.Trainer;
        var device = TorchRuntime.Initialize(options.Device, options.Threads);
        var group = request.Group;
        if (request.Saliency is not null && !recipe.Factory.UsesSaliency)
            throw new WeakSegException($"method '{recipe.Method}' does not take saliency maps (--saliency is for methods that do)");
        if (request.InitModel is { } initModel && !File.Exists(initModel)) throw WeakSegException.ForFile(initModel, "model file not found");
        var saliency = request.Saliency?.Checked();
        // Round labels replace the samples' mask paths (the dataset's masks are never read here).
        var samples = request.LabelsDirectory is { } labelsDir ? Segmentation.SegmentationRun.TrainingSamples(dataset, labelsDir) : dataset.Samples;
        var loader = new BatchLoader(samples, dataset.NumClasses, recipe.Augmentation.ToTransform(recipe.ImageSize),
            options.BatchSize, options.Seed, workers: request.Workers, loadMasks: request.LabelsDirectory is not null, rank: group.Rank, ranks: group.Size,
            saliency: saliency is null ? null : saliency.Plane);
        VocDataset.CheckFiles(samples, dataset.NumClasses, masks: request.LabelsDirectory is not null);
        saliency?.CheckAll(samples);
        IO.FolderLock? folderLock = null;
        group.OnRoot(() =>
        {
            folderLock = IO.FolderLock.Acquire(request.RunDirectory, "run directory");
            if (!request.Resume && new CheckpointStore(Path.Combine(request.RunDirectory, "checkpoints")).Latest() is { } existing)
                throw WeakSegException.ForFile(Path.Combine(Path.GetFullPath(request.RunDirectory), "checkpoints"),
                    $"already holds checkpoints (latest: step {existing.Step}); pass --resume to continue that run, or choose a new run directory");
            if (!request.Resume) config.Save(request.RunDirectory);
        });
        using var heldLock = folderLock;

        TorchRuntime.Seed(options.Seed);
        using var method = recipe.Factory.Create(recipe.ModelConfig);
        method.Model.to(device);

        WeightImportReport? import = null;
        if (request.InitWeights is { } weights && !request.Resume)
        {
            import = method.ImportTimmWeights(weights);
            log?.Invoke($"--init {weights}: {import}");
        }
        if (request.InitModel is { } startFrom && !request.Resume)
        {
            method.LoadWeights(startFrom);
            log?.Invoke($"{method.Name}: starts from {startFrom}");
        }

        var batches = new DelegateBatchStream(start => loader.Stream(start).Select(b =>
        {
            var (images, labels) = b.ToTensors(device);
            return new TrainBatch(images, labels, b.Masks is null ? null : b.MasksToTensor(device),
                b.Saliency is null ? null : Refinement.Saliency.SaliencyMaps.FromPlanes(b.Saliency, b.Count, b.Height, b.Width, device));
        }));
        log?.Invoke($"{method.Name}: {dataset.Samples.Count} images of '{dataset.Split}', {dataset.NumClasses} classes, " +
                    $"{recipe.ImageSize}px, batch {options.BatchSize}, {options.Steps} steps ({loader.BatchesPerEpoch} per epoch)");
        if (group.IsDistributed) log?.Invoke(DataParallel.Describe(group, options));
        var trainer = new Trainer(options, request.RunDirectory) { Group = group };
        var result = trainer.Run(method, batches, request.Resume, progress, cancellationToken);
        if (group.IsRoot && result.Completed && File.Exists(trainer.MetricsPath))
            Visualization.TrainingPlots.SaveLossCurve(trainer.MetricsPath, Path.Combine(trainer.RunDirectory, LossCurveFile));
        return new TrainOutcome(result, config, import);
    }

    /// <summary>The weights a finished or interrupted run offers: model-final.bin, else the latest checkpoint. Errors name the run.</summary>
    public static string WeightsOf(string runDirectory)
    {
        var final = Path.Combine(runDirectory, "model-final.bin");
        if (File.Exists(final)) return final;
        var latest = new CheckpointStore(Path.Combine(runDirectory, "checkpoints")).Latest();
        if (latest is not null) return latest.ModelPath;
        throw WeakSegException.ForFile(final, "no trained weights in the run (neither model-final.bin nor a checkpoint)");
    }

    /// <summary>Builds the run's method and loads its weights (model-final.bin or the latest checkpoint).</summary>
    public static IWsssMethod LoadTrained(string runDirectory, out RunConfig config, string? weightsPath = null)
    {
        config = RunConfig.Load(runDirectory);
        var path = weightsPath ?? WeightsOf(runDirectory);
        var method = config.Recipe.Factory.Create(config.Recipe.ModelConfig);
        try { method.LoadWeights(path); }
        catch { method.Dispose(); throw; }
        return method;
    }
}
