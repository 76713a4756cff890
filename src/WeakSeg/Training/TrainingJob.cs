using TorchSharp;
using WeakSeg.Data;
using WeakSeg.IO;
using WeakSeg.Runtime;

namespace WeakSeg.Training;

/// <summary>
/// One training run, the template every kind of run follows (CAM methods, segmentation, affinity): the caller opens the dataset,
/// takes the class count K from it and resolves and validates its configuration; <see cref="Run"/> then, on resume, compares that
/// configuration with RUN/config.json (<see cref="CheckResume"/>), checks the device, the loader and the files, takes the run folder's lock, refuses a fresh run over
/// existing checkpoints, writes RUN/config.json, prepares what the samples need (<see cref="Prepare"/>), seeds torch, builds the
/// model, initialises its weights (fresh runs only), and hands a <see cref="BatchLoader"/> stream to <see cref="Trainer.Run"/>.
/// A kind of run supplies only its configuration writer, model factory, weight initialisation and trainable. Every check that can
/// refuse the run comes before config.json is written, so a refused run leaves nothing behind.
/// </summary>
/// <typeparam name="TModel">what <see cref="Build"/> makes (disposed when the run ends)</typeparam>
public sealed record TrainingJob<TModel> where TModel : IDisposable
{
    public required RunDirectory Directory { get; init; }

    public required TrainerOptions Options { get; init; }

    /// <summary>The samples to train on; with <see cref="LoadMasks"/> their <see cref="VocSample.MaskPath"/> is the per-pixel target.</summary>
    public required IReadOnlyList<VocSample> Samples { get; init; }

    /// <summary>Foreground classes K, from the dataset.</summary>
    public required int NumClasses { get; init; }

    public required TrainTransform Transform { get; init; }

    /// <summary>The batches carry masks (segmentation and affinity targets); false: image-level labels only.</summary>
    public bool LoadMasks { get; init; }

    /// <summary>Saliency maps carried by the batches (<see cref="TrainBatch.Saliency"/>): gives a sample's map as a byte plane
    /// (0–254, the image's size), cropped and flipped with the image; null = none.</summary>
    public Func<VocSample, RgbImage, LabelMap>? SaliencyPlane { get; init; }

    /// <summary>Image-decoding threads of the <see cref="BatchLoader"/> (never changes the batches).</summary>
    public int Workers { get; init; } = 2;

    public bool Resume { get; init; }

    /// <summary>The ranks training together; the batch size is the global batch, split over the ranks; rank 0 writes the run folder.</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;

    /// <summary>On resume: compares the run's configuration with RUN/config.json and throws, naming what differs, when the run would not
    /// continue the recorded one.</summary>
    public Action<RunDirectory>? CheckResume { get; init; }

    /// <summary>Writes RUN/config.json of a fresh run (rank 0, after every check that can refuse the run).</summary>
    public required Action<RunDirectory> WriteConfig { get; init; }

    /// <summary>Makes files the samples need, after config.json (the affinity run's label images); the mask files are checked after it.</summary>
    public Action<IProgress<ProgressUpdate>?>? Prepare { get; init; }

    /// <summary>Builds the model (torch is seeded with <see cref="TrainerOptions.Seed"/> just before).</summary>
    public required Func<TModel> Build { get; init; }

    /// <summary>Initial weights of a fresh run (e.g. an import of pretrained weights), after the model is on its device; a resume
    /// takes every weight from the checkpoint instead.</summary>
    public Action<TModel>? InitWeights { get; init; }

    /// <summary>What the trainer optimises.</summary>
    public required Func<TModel, ITrainable> Trainable { get; init; }

    /// <summary>A line describing the run (logged once the model is built).</summary>
    public Func<TModel, BatchLoader, string>? Describe { get; init; }

    /// <summary>See <see cref="Trainer.StepCompleted"/>.</summary>
    public Action<StepReport>? StepCompleted { get; init; }

    public TrainResult Run(Action<string>? log = null, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        if (Resume) CheckResume?.Invoke(Directory);
        var options = Options;
        var group = Group;
        var device = TorchRuntime.Initialize(options.Device, options.Threads);
        var loader = new BatchLoader(Samples, NumClasses, Transform, options.BatchSize, options.Seed, workers: Workers,
            loadMasks: LoadMasks, rank: group.Rank, ranks: group.Size, saliency: SaliencyPlane);
        VocDataset.CheckFiles(Samples, NumClasses, masks: LoadMasks && Prepare is null);
        FolderLock? folderLock = null;
        group.OnRoot(() =>
        {
            folderLock = FolderLock.Acquire(Directory.Path, "run directory");
            try
            {
                if (!Resume)
                {
                    Directory.RefuseExistingCheckpoints();
                    WriteConfig(Directory);
                }
            }
            catch
            {
                folderLock.Dispose();                                           // a refused run does not keep the folder locked
                throw;
            }
        });
        using var heldLock = folderLock;
        if (Prepare is { } prepare)
        {
            prepare(progress);
            if (LoadMasks) VocDataset.CheckFiles(Samples, NumClasses, masks: true);
        }

        TorchRuntime.Seed(options.Seed);
        using var model = Build();
        var trainable = Trainable(model);
        trainable.Model.to(device);
        if (!Resume) InitWeights?.Invoke(model);

        var batches = new DelegateBatchStream(start => loader.Stream(start).Select(b =>
        {
            var (images, labels) = b.ToTensors(device);
            return new TrainBatch(images, labels, LoadMasks ? b.MasksToTensor(device) : null,
                b.Saliency is null ? null : b.SaliencyToTensor(device));
        }));
        if (Describe is { } describe) log?.Invoke(describe(model, loader));
        if (group.IsDistributed) log?.Invoke(DataParallel.Describe(group, options));
        var trainer = new Trainer(options, Directory.Path) { StepCompleted = StepCompleted, Group = group };
        return trainer.Run(trainable, batches, Resume, progress, cancellationToken);
    }
}
