using TorchSharp;

namespace WeakSeg.Runtime;

/// <summary>What one pass of an <see cref="ImageDirectoryJob"/> did.</summary>
/// <param name="Images">images of this pass (this process's share)</param>
/// <param name="Written">images processed by this pass</param>
/// <param name="Skipped">images whose output already existed (kept)</param>
public sealed record ImageJobSummary(int Images, int Written, int Skipped);

/// <summary>
/// The one per-image loop of every stage that writes one output per image (maps, pseudo labels, CRF, random walk, predictions):
/// for each image of <see cref="Names"/> in order, an image whose output exists (<see cref="IsDone"/>) is skipped, the others are
/// processed, each inside its own tensor dispose scope; progress is reported after every image and cancellation is checked before
/// each one. Outputs must be written atomically (<see cref="IO.AtomicFile"/>, tmp + rename), so an existing output is a complete one
/// and an interrupted job, run again, processes exactly the images it had not finished.
/// </summary>
public sealed record ImageDirectoryJob
{
    /// <summary>The images of this job, in order (already this process's shard).</summary>
    public required IReadOnlyList<string> Names { get; init; }

    /// <summary>Whether the output of an image exists (and so is complete).</summary>
    public required Func<string, bool> IsDone { get; init; }

    /// <summary>Process every image, also those whose output exists.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Images processed at the same time; 1 (for work that runs libtorch, which uses the cores itself) processes them in
    /// order on the calling thread.</summary>
    public int MaxParallelism { get; init; } = 1;

    /// <summary>Text shown with the progress (e.g. "affinity labels"), or null.</summary>
    public string? Status { get; init; }

    /// <summary>Runs <paramref name="process"/> (given the index into <see cref="Names"/>) for every image still to do.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled; finished outputs stay</exception>
    public ImageJobSummary Run(Action<int> process, IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        int written = 0, skipped = 0;
        long done = 0;
        var gate = new object();
        int count = Names.Count;
        progress?.Report(new ProgressUpdate(0, count, Status));
        void One(int i)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!Overwrite && IsDone(Names[i])) Interlocked.Increment(ref skipped);
            else
            {
                using (torch.NewDisposeScope()) process(i);
                Interlocked.Increment(ref written);
            }
            long d = Interlocked.Increment(ref done);
            if (progress != null) lock (gate) progress.Report(new ProgressUpdate(d, count, Status));
        }
        if (MaxParallelism <= 1)
            for (int i = 0; i < count; i++) One(i);
        else
            ParallelImages.For(count, MaxParallelism, () => 0, (i, local) => { One(i); return local; }, _ => { });
        return new ImageJobSummary(count, written, skipped);
    }
}
