using System.Text.Json.Nodes;
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

    /// <summary>Resolved recipe; its class count comes from the dataset (<see cref="TrainRecipe.For(VocDataset)"/>).</summary>
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

    /// <summary>Image-decoding threads of the <see cref="BatchLoader"/> unless a request says otherwise.</summary>
    public const int DefaultWorkers = 2;

    /// <summary>Image-decoding threads of the <see cref="BatchLoader"/> (never changes the batches).</summary>
    public int Workers { get; init; } = DefaultWorkers;

    /// <summary>The ranks training together (<see cref="ProcessGroup.World"/> under mpirun): the recipe's batch size is the global
    /// batch, split over the ranks; rank 0 writes the run directory.</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;
}

/// <summary>How a training run ended.</summary>
public sealed record TrainOutcome(TrainResult Result, RunConfig Config, WeightImportReport? Import);

/// <summary>
/// End-to-end training of any registered method: opens the split, takes K from it, and runs a <see cref="TrainingJob{TModel}"/>
/// that writes RUN/config.json (<see cref="RunConfig"/>), builds the method (seeded), optionally imports timm weights and streams
/// BatchLoader batches (no masks) into the shared <see cref="Trainer"/>.
/// </summary>
public static class TrainPipeline
{
    public static TrainOutcome Run(TrainRequest request, Action<string>? log = null, IProgress<ProgressUpdate>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var dataset = VocDataset.Open(request.DataRoot, request.Split);
        var recipe = request.Recipe.For(dataset);
        recipe.EnsureValid();
        if (request.InitWeights is { } init && !File.Exists(init)) throw WeakSegException.ForFile(init, "weights file not found");
        var config = new RunConfig(recipe, request.Preset, Path.GetFullPath(dataset.Root), dataset.Split, dataset.ClassNames.All,
            request.InitWeights is null ? null : Path.GetFullPath(request.InitWeights));

        if (request.Saliency is not null && !recipe.Factory.UsesSaliency)
            throw new WeakSegException($"method '{recipe.Method}' does not take saliency maps (--saliency is for methods that do)");
        if (request.InitModel is { } initModel && !File.Exists(initModel)) throw WeakSegException.ForFile(initModel, "model file not found");
        var saliency = request.Saliency?.Checked();
        // Round labels replace the samples' mask paths (the dataset's masks are never read here).
        var samples = request.LabelsDirectory is { } labelsDir ? Segmentation.SegmentationRun.TrainingSamples(dataset, labelsDir) : dataset.Samples;
        saliency?.CheckAll(samples);
        var run = new RunDirectory(request.RunDirectory);
        WeightImportReport? import = null;
        var options = recipe.Trainer;
        var job = new TrainingJob<IWsssMethod>
        {
            Directory = run, Options = options, Samples = samples, NumClasses = dataset.NumClasses,
            Transform = recipe.Augmentation.ToTransform(recipe.ImageSize), Workers = request.Workers, Resume = request.Resume, Group = request.Group,
            LoadMasks = request.LabelsDirectory is not null,
            SaliencyPlane = saliency is null ? null : saliency.Plane,
            CheckResume = d =>
            {
                if (!d.HasConfig) throw WeakSegException.ForFile(d.ConfigPath, "cannot resume: run configuration not found");
                var previous = d.ReadConfig<RunConfig>();
                foreach (var key in new[] { TrainRecipe.MethodKey, TrainRecipe.ModelKey, TrainRecipe.AugmentationKey })
                    if (!JsonNode.DeepEquals(previous.Recipe.ToJson()[key], recipe.ToJson()[key]))
                        throw WeakSegException.ForFile(d.ConfigPath, $"cannot resume: '{key}' differs from the run's configuration (use the same options or a new run directory)");
            },
            WriteConfig = d => d.WriteConfig(config),
            Build = () => recipe.Factory.Create(recipe.ModelConfig),
            InitWeights = request.InitWeights is null && request.InitModel is null ? null : method =>
            {
                if (request.InitWeights is { } weights)
                {
                    import = method.ImportTimmWeights(weights) with { Source = weights };
                    log?.Invoke($"--init {import}");
                }
                if (request.InitModel is { } startFrom)
                {
                    method.LoadWeights(startFrom);
                    log?.Invoke($"{method.Name}: starts from {startFrom}");
                }
            },
            Trainable = method => method,
            Describe = (method, loader) => $"{method.Name}: {samples.Count} images of '{dataset.Split}', {dataset.NumClasses} classes, " +
                                 $"{recipe.ImageSize}px, batch {options.BatchSize}, {options.Steps} steps ({loader.BatchesPerEpoch} per epoch)",
        };
        var result = job.Run(log, progress, cancellationToken);
        if (request.Group.IsRoot && result.Completed) Visualization.TrainingPlots.SaveLossCurve(run);
        return new TrainOutcome(result, config, import);
    }

    /// <summary>The split a trained run maps or inspects: <paramref name="dataRoot"/> (null: the run's training data); a dataset with
    /// another class count than the run's is one line naming both and the run's config.json.</summary>
    public static VocDataset OpenDataset(string runDirectory, RunConfig config, string? dataRoot, string split)
    {
        var dataset = VocDataset.Open(dataRoot ?? config.DataRoot, split);
        if (dataset.NumClasses != config.NumClasses)
            throw WeakSegException.ForFile(dataset.Root, $"has {dataset.NumClasses} classes but the run was trained with {config.NumClasses} ({new RunDirectory(runDirectory).ConfigPath})");
        return dataset;
    }

    /// <summary>Builds the run's method and loads its weights (model-final.bin or the latest checkpoint).</summary>
    public static IWsssMethod LoadTrained(string runDirectory, out RunConfig config, string? weightsPath = null)
    {
        var run = new RunDirectory(runDirectory);
        config = run.ReadConfig<RunConfig>();
        var path = weightsPath ?? run.ResolveWeights();
        var method = config.Recipe.Factory.Create(config.Recipe.ModelConfig);
        try { method.LoadWeights(path); }
        catch { method.Dispose(); throw; }
        return method;
    }
}
