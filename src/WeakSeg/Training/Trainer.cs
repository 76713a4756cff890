using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Runtime;
using static TorchSharp.torch;
using WeakSeg.IO;

namespace WeakSeg.Training;

/// <summary>What one finished optimizer step produced (scalars only).</summary>
/// <param name="Step">optimizer updates done, 1-based (the step just finished)</param>
/// <param name="GradNorm">global L2 norm of the gradients before clipping</param>
/// <param name="Seconds">training wall time since the run began (carried over resumes)</param>
public sealed record StepReport(long Step, long TotalSteps, float Loss, IReadOnlyList<LossPart> Parts,
    double LearningRate, double GradNorm, int BatchSize, double Seconds);

/// <summary>How a <see cref="Trainer.Run"/> ended.</summary>
/// <param name="Step">optimizer updates done</param>
/// <param name="Completed">true when all steps ran; false when cancelled (a checkpoint of <paramref name="Step"/> was written)</param>
/// <param name="LastLoss">loss of the last step trained: run by this call, or, when the call ran none (a resume of a run whose
/// checkpoint is already at the final step), the loss recorded for the checkpoint's step (NaN only if nothing records it)</param>
/// <param name="LatestCheckpoint">the newest complete checkpoint</param>
/// <param name="FinalWeightsPath">run/model-final.bin when completed, else null</param>
/// <param name="Seconds">training wall time since the run began (carried over resumes)</param>
/// <param name="ImagesPerSecond">throughput of this call (0 when it ran no step)</param>
/// <param name="StepsRun">optimizer steps run by this call (0 for a resume that found the training already complete)</param>
public sealed record TrainResult(long Step, bool Completed, float LastLoss, CheckpointInfo? LatestCheckpoint,
    string? FinalWeightsPath, double Seconds, double ImagesPerSecond, long StepsRun)
{
    /// <summary>The call found every step done (it only wrote the final weights, if they were missing).</summary>
    public bool AlreadyComplete => Completed && StepsRun == 0;
}

/// <summary>
/// The training loop shared by every WSSS method: AdamW (or SGD with momentum, <see cref="TrainerOptions.Optimizer"/>) with
/// decay/no-decay groups and per-parameter learning-rate scales, precomputed warm-up + cosine (or poly) learning rate, optional global-norm gradient clipping, one dispose scope per step, NaN/Inf guard, atomic checkpoints, metrics.jsonl,
/// progress and cancellation. Exact resume on CPU: the checkpoint of step s holds weights, optimizer state (AdamW moments or SGD momentum buffers), torch's RNG state
/// and the options; batches come from <see cref="IBatchStream.Stream"/>(s); per-step managed randomness is seeded from (seed, step).
/// Run directory layout (<see cref="WeakSeg.Training.RunDirectory"/>): checkpoints/step-NNNNNNNNN/, metrics.jsonl, model-final.bin.
/// </summary>
public sealed class Trainer
{
    public Trainer(TrainerOptions options, string runDirectory)
    {
        options.EnsureValid();
        Options = options;
        Folder = new WeakSeg.Training.RunDirectory(runDirectory);
    }

    public TrainerOptions Options { get; }
    /// <summary>The run folder's layout.</summary>
    public WeakSeg.Training.RunDirectory Folder { get; }
    public string RunDirectory => Folder.Path;
    public string CheckpointDirectory => Folder.CheckpointDirectory;
    public string MetricsPath => Folder.MetricsPath;
    public string FinalWeightsPath => Folder.FinalWeightsPath;

    /// <summary>Called on the training thread after every step (after logging, before checkpointing). For benches
    /// (RSS sampling), tests and custom logging. Exceptions thrown here abort the run without a checkpoint.</summary>
    public Action<StepReport>? StepCompleted { get; init; }

    /// <summary>
    /// The ranks that train together (default: this process alone). With N &gt; 1 ranks (data-parallel training under mpirun):
    /// <see cref="TrainerOptions.BatchSize"/> is the global batch, each rank's batch source delivers its 1/N share of each global
    /// batch (<see cref="BatchLoader"/>'s rank shard), gradients are averaged over ranks before clipping and the optimizer step, the
    /// logged loss and parts are global means, and only rank 0 writes checkpoints, metrics.jsonl and model-final.bin. Every rank
    /// starts from rank 0's weights; a resume needs the same N.
    /// </summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;

    /// <summary>
    /// Trains <paramref name="trainable"/> for <see cref="TrainerOptions.Steps"/> steps on batches from <paramref name="batches"/>.
    /// Fresh run (<paramref name="resume"/> false): seeds torch with <see cref="TrainerOptions.Seed"/> (seed it yourself before
    /// constructing the model too, for a reproducible initialisation); refuses a run directory that already holds checkpoints.
    /// Resume: loads the latest checkpoint into <paramref name="trainable"/>'s model (any initialisation is overwritten),
    /// restores the optimizer and RNG, truncates metrics.jsonl after that step, and continues. Cancellation writes a
    /// checkpoint of the current step and returns with Completed = false. A non-finite loss or gradient norm throws
    /// <see cref="WeakSegException"/> naming the step and part; no checkpoint of that state is written.
    /// </summary>
    public TrainResult Run(ITrainable trainable, IBatchStream batches, bool resume = false,
        IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        var o = Options;
        var g = Group;
        var device = TorchRuntime.Initialize(o.Device, o.Threads);
        if (g.IsRoot) Directory.CreateDirectory(RunDirectory);
        var store = Folder.Checkpoints;
        if (g.IsRoot) store.RemoveIncomplete();
        var schedule = LearningRateSchedule.For(o);
        var model = trainable.Model;

        long start = 0;
        double secondsBefore = 0;
        CheckpointInfo? latest = null;
        byte[]? rngToRestore = null;
        float lossBefore = float.NaN;
        g.AllOrNone(() =>
        {
            if (g.IsDistributed && o.BatchSize % g.Size != 0)
                throw new WeakSegException($"batch size {o.BatchSize} is the global batch of the {g.Size} MPI ranks and must be divisible by {g.Size} " +
                    "(each rank trains on an equal share)");
            latest = store.Latest();
            if (resume)
            {
                if (latest is null) throw WeakSegException.ForFile(store.Directory, "no checkpoint to resume from");
                var state = CheckpointStore.ReadState(latest);
                var diffs = state.Options.ResultAffectingDifferences(o).ToList();
                if (diffs.Count > 0)
                    throw WeakSegException.ForFile(latest.StatePath, "cannot resume with different training options: " +
                        string.Join("; ", diffs.Select(d => $"{d.Field} is {d.Now} but the checkpoint used {d.Checkpoint}")) +
                        " (use the same options, or start a new run directory)");
                if (state.Step > o.Steps) throw WeakSegException.ForFile(latest.StatePath, $"checkpoint step {state.Step} is beyond Steps = {o.Steps}");
                if (state.WorldSize != g.Size)
                    throw WeakSegException.ForFile(latest.StatePath, $"this run was trained by {state.WorldSize} process{(state.WorldSize == 1 ? "" : "es")} " +
                        $"(MPI ranks) but this resume has {g.Size}; resume with the same number ({(state.WorldSize == 1 ? "without mpirun" : $"mpirun -np {state.WorldSize}")}), or start a new run directory");
                store.Verify(latest, state);
                CheckpointStore.LoadModel(latest.ModelPath, model);
                rngToRestore = CheckpointStore.ReadRngState(latest);
                start = state.Step;
                secondsBefore = state.ElapsedSeconds;
                lossBefore = state.LastLoss ?? MetricsLog.LossAt(MetricsPath, start) ?? float.NaN;     // older checkpoints do not record it
            }
            else
            {
                if (latest is not null) Folder.RefuseExistingCheckpoints();
                TorchRuntime.Seed(o.Seed);
            }
        });
        if (g.IsDistributed) DataParallel.BroadcastModel(g, model);

        var parameters = trainable.TrainableParameters().ToList();
        using var setup = ParameterGroups.Create(parameters, o, trainable.LearningRateScale);
        var optimizer = setup.Optimizer;
        using var buckets = new GradientBuckets();                            // data-parallel all-reduce buffers (none in one process)
        if (resume)
        {
            CheckpointStore.LoadOptimizer(latest!, optimizer);
            using var rng = torch.tensor(rngToRestore!, torch.uint8);
            torch.set_rng_state(rng);
        }

        using var log = !g.IsRoot ? null : resume ? MetricsLog.ResumeAfter(MetricsPath, start) : MetricsLog.Create(MetricsPath);
        model.train();
        using var stress = CollectorStress.StartIfRequested();
        var clock = Stopwatch.StartNew();
        double Seconds() => secondsBefore + clock.Elapsed.TotalSeconds;
        var rate = new StepRate(window: 20);
        long lastSaved = resume ? start : -1;
        long imagesThisCall = 0, imagesSinceLog = 0;
        double secondsAtLastLog = secondsBefore;
        float lastLoss = lossBefore;
        double ImagesPerSecond() => imagesThisCall == 0 ? 0 : imagesThisCall / Math.Max(1e-9, clock.Elapsed.TotalSeconds);

        CheckpointInfo? SaveCheckpoint(long stepsDone, double lr)
        {
            lastSaved = stepsDone;
            if (!g.IsRoot) return null;
            byte[] rngBytes;
            using (var rng = torch.get_rng_state()) rngBytes = rng.data<byte>().ToArray();
            var info = store.Save(new CheckpointState
            {
                Step = stepsDone, LearningRate = lr, ElapsedSeconds = Seconds(), WrittenUtc = DateTime.UtcNow, Options = o,
                LastLoss = float.IsFinite(lastLoss) ? lastLoss : null, WorldSize = g.Size,
            }, model, optimizer, rngBytes);
            store.Prune(o.KeepLastCheckpoints);
            latest = info;
            return info;
        }

        using var stream = batches.Stream(start).GetEnumerator();
        progress?.Report(new ProgressUpdate(start, o.Steps, resume ? $"resumed at step {start}" : null));
        for (long s = start; s < o.Steps; s++)
        {
            if (g.IsDistributed ? g.Any(cancellationToken.IsCancellationRequested) : cancellationToken.IsCancellationRequested)
            {
                if (s != lastSaved && s > 0) SaveCheckpoint(s, schedule[s - 1]);
                return new TrainResult(s, false, lastLoss, latest, null, Seconds(), ImagesPerSecond(), s - start);
            }

            var report = RunStep(s, trainable, parameters, setup, buckets, schedule, stream, device, Seconds, latest);
            lastLoss = report.Loss;
            imagesThisCall += report.BatchSize;
            imagesSinceLog += report.BatchSize;
            rate.Add(clock.Elapsed.TotalSeconds);

            if (report.Step % o.LogEvery == 0 || report.Step == o.Steps)
            {
                double now = report.Seconds;
                log?.Append(report, imagesSinceLog / Math.Max(1e-9, now - secondsAtLastLog));
                imagesSinceLog = 0;
                secondsAtLastLog = now;
            }
            progress?.Report(new ProgressUpdate(report.Step, o.Steps, string.Create(CultureInfo.InvariantCulture,
                $"loss {report.Loss:0.000} · {rate.StepsPerSecond:0.0} step/s")));
            StepCompleted?.Invoke(report);
            if (o.CollectGarbageEvery > 0 && report.Step % o.CollectGarbageEvery == 0)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }

            if (report.Step % o.CheckpointEvery == 0 && report.Step != o.Steps) SaveCheckpoint(report.Step, report.LearningRate);
        }

        if (lastSaved != o.Steps) SaveCheckpoint(o.Steps, schedule[o.Steps - 1]);
        if (g.IsRoot) AtomicFile.Commit(FinalWeightsPath, tmp => CheckpointStore.SaveModelFlushed(model, tmp));
        g.Barrier();                                                      // the weights exist for every rank's next stage
        return new TrainResult(o.Steps, true, lastLoss, latest, FinalWeightsPath, Seconds(), ImagesPerSecond(), o.Steps - start);
    }

    StepReport RunStep(long s, ITrainable trainable, List<(string Name, Parameter Parameter)> parameters, OptimizerSetup optimizer,
        GradientBuckets buckets, LearningRateSchedule schedule, IEnumerator<TrainBatch> stream, Device device, Func<double> seconds, CheckpointInfo? lastGood)
    {
        using var scope = torch.NewDisposeScope();
        if (!stream.MoveNext()) throw new WeakSegException($"the batch source ended at step {s}; it must be endless (BatchLoader.Stream).");
        var batch = stream.Current;
        if (batch.Images.device != device || batch.Labels.device != device)
            batch = batch with { Images = batch.Images.to(device), Labels = batch.Labels.to(device), Masks = batch.Masks?.to(device), Saliency = batch.Saliency?.to(device) };

        double lr = schedule[s];
        optimizer.SetLearningRate(lr);
        trainable.Model.zero_grad(true);

        var context = new TrainStepContext(s, Options.Steps, lr, StepRandom(Options.Seed, s));
        var terms = trainable.ComputeLoss(batch, context);
        if (terms.Total.numel() != 1) throw new InvalidOperationException($"ComputeLoss must return a scalar loss (got shape [{string.Join(", ", terms.Total.shape)}]).");
        float loss = terms.Total.item<float>();
        IReadOnlyList<LossPart> parts = terms.Parts.Select(p => new LossPart(p.Name, p.Value.detach().mean().item<float>())).ToList();
        long images = batch.Count;
        var group = Group;
        if (group.IsDistributed) (images, loss, parts) = DataParallel.ReduceLoss(group, batch.Count, loss, parts);      // global means, on every rank
        if (!float.IsFinite(loss) || parts.Any(p => !float.IsFinite(p.Value)))
        {
            var bad = parts.Where(p => !float.IsFinite(p.Value)).Select(p => $"{p.Name} = {F(p.Value)}").ToList();
            throw Stop(new WeakSegException($"step {s + 1}: the loss is {F(loss)}" +
                (bad.Count > 0 ? $" (non-finite part{(bad.Count > 1 ? "s" : "")}: {string.Join(", ", bad)})" : parts.Count > 0 ? " (all named parts are finite)" : "") +
                " — training stopped before updating the weights. " + LastGoodText(lastGood)));
        }

        terms.Total.backward();
        var grads = new List<(string Name, Tensor Grad)>(parameters.Count);
        foreach (var (name, p) in parameters)
            if (p.grad is { } grad) grads.Add((name, grad));
        if (group.IsDistributed) DataParallel.AverageGradients(group, buckets, grads, parameters.Count, batch.Count, images);
        double gradNorm = 0;
        if (grads.Count > 0)
        {
            // linalg.norm without an order is linalg.vector_norm with order 2 in libtorch, but takes no Scalar argument
            // (vector_norm(t) would pass a temporary Scalar 2 that a concurrent garbage collection can free mid-call).
            var norms = torch.stack(grads.Select(g => torch.linalg.norm(g.Grad)).ToArray()); // [P]
            gradNorm = torch.linalg.norm(norms).item<float>();
            if (!double.IsFinite(gradNorm))
            {
                var finite = torch.isfinite(norms).data<bool>().ToArray();
                var badNames = grads.Where((_, i) => !finite[i]).Select(g => g.Name).Take(5).ToList();
                throw Stop(new WeakSegException($"step {s + 1}: the gradient norm is {F(gradNorm)} (loss {F(loss)} is finite; non-finite gradients in: " +
                    string.Join(", ", badNames) + ") — training stopped before updating the weights. " + LastGoodText(lastGood)));
            }
            if (Options.GradClipNorm is { } maxNorm && gradNorm > maxNorm)
            {
                double coef = maxNorm / (gradNorm + 1e-6);
                using var coefScalar = coef.ToScalar();                                      // held for the calls (see StableScalars)
                foreach (var (_, g) in grads) g.mul_(coefScalar);
            }
        }
        optimizer.Optimizer.step();
        trainable.AfterOptimizerStep(context);
        return new StepReport(s + 1, Options.Steps, loss, parts, lr, gradNorm, (int)images, seconds());
    }

    /// <summary>A stop every rank reaches at the same step (global loss and averaged gradients are identical on all ranks).</summary>
    Exception Stop(WeakSegException error) => Group.IsDistributed ? ProcessGroup.Agreed(error) : error;

    static string LastGoodText(CheckpointInfo? lastGood) => lastGood is null
        ? "No checkpoint was written yet."
        : $"The last good checkpoint is {lastGood.Directory} (step {lastGood.Step}); resume from it (e.g. with a lower learning rate) or check the data.";

    static string F(double v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Managed RNG for step <paramref name="step"/>, seeded from (seed, step) only (SplitMix64 mix).</summary>
    public static Random StepRandom(long seed, long step)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)step + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return new Random(unchecked((int)z));
    }

    /// <summary>Steps per second over a sliding window of step end times.</summary>
    sealed class StepRate(int window)
    {
        readonly Queue<double> _times = new();
        public void Add(double t) { _times.Enqueue(t); while (_times.Count > window + 1) _times.Dequeue(); }
        public double StepsPerSecond => _times.Count < 2 ? 0 : (_times.Count - 1) / Math.Max(1e-9, _times.Last() - _times.Peek());
    }
}
