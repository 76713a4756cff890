using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Runtime;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>Polynomial decay (Segmenter/mmseg "poly"): lr(s) = (base − min)·(1 − s/T)^power + min for step s in [0, T).</summary>
public static class PolyLearningRate
{
    public static double At(long step, long totalSteps, double baseLr, double minLr, double power) =>
        (baseLr - minLr) * Math.Pow(1.0 - (double)step / totalSteps, power) + minLr;
}

/// <summary>
/// The retraining loop: SGD with momentum (one group per (learning-rate scale, decay)), poly learning-rate decay, one dispose
/// scope per step, NaN/Inf guard, atomic checkpoints and metrics.jsonl through the shared <see cref="CheckpointStore"/> and
/// <see cref="MetricsLog"/>. Same run layout and exact-resume rules as <see cref="Trainer"/> (checkpoints/step-N/, metrics.jsonl,
/// model-final.bin). Exists because the shared trainer is AdamW + warm-up/cosine only; if it gains an SGD + poly mode,
/// <see cref="SegmentationTrainable"/> plugs into it unchanged.
/// </summary>
public sealed class SegmentationTrainer
{
    public SegmentationTrainer(SegmentationConfig config, string runDirectory, long seed = 0, string device = "cpu", int threads = 0)
    {
        config.EnsureValid();
        Config = config;
        RunDirectory = Path.GetFullPath(runDirectory);
        Seed = seed;
        Device = device;
        Threads = threads;
    }

    public SegmentationConfig Config { get; }
    public string RunDirectory { get; }
    public long Seed { get; }
    public string Device { get; }
    public int Threads { get; }
    public string CheckpointDirectory => Path.Combine(RunDirectory, "checkpoints");
    public string MetricsPath => Path.Combine(RunDirectory, "metrics.jsonl");
    public string FinalWeightsPath => Path.Combine(RunDirectory, "model-final.bin");

    /// <summary>Called after every step (tests, benches).</summary>
    public Action<StepReport>? StepCompleted { get; init; }

    /// <summary>The scheduled (unscaled) learning rate of step <paramref name="step"/>.</summary>
    public double LearningRateAt(long step) => PolyLearningRate.At(step, Config.Steps, Config.LearningRate, Config.MinLearningRate, Config.PolyPower);

    /// <summary>The options recorded in checkpoint state.json (for information; the segmentation config is compared via the run's config.json).</summary>
    TrainerOptions RecordedOptions => new()
    {
        Steps = Config.Steps, BatchSize = Config.BatchSize, BaseLr = Config.LearningRate, MinLr = Config.MinLearningRate, WarmupSteps = 0,
        WarmupStartLr = Config.MinLearningRate, WeightDecay = Config.WeightDecay, CheckpointEvery = Config.CheckpointEvery,
        LogEvery = Config.LogEvery, Seed = Seed, Device = Device, Threads = Threads,
    };

    /// <summary>
    /// Trains for <see cref="SegmentationConfig.Steps"/> steps. Fresh run: seeds torch and refuses a run directory with checkpoints.
    /// Resume: loads the latest checkpoint's weights, SGD momentum buffers and RNG state, truncates metrics.jsonl, continues with
    /// batch <c>Stream(step)</c>. Cancellation checkpoints the current step.
    /// </summary>
    public TrainResult Run(SegmentationTrainable trainable, IBatchStream batches, bool resume = false,
        IProgress<ProgressUpdate>? progress = null, CancellationToken cancellationToken = default)
    {
        var device = TorchRuntime.Initialize(Device, Threads);
        Directory.CreateDirectory(RunDirectory);
        var store = new CheckpointStore(CheckpointDirectory);
        store.RemoveIncomplete();
        var model = trainable.Model;
        long total = Config.Steps;

        long start = 0;
        double secondsBefore = 0;
        var latest = store.Latest();
        byte[]? rngToRestore = null;
        if (resume)
        {
            if (latest is null) throw WeakSegException.ForFile(store.Directory, "no checkpoint to resume from");
            var state = CheckpointStore.ReadState(latest);
            if (state.Step > total) throw WeakSegException.ForFile(latest.StatePath, $"checkpoint step {state.Step} is beyond Steps = {total}");
            if (state.Options.BatchSize != Config.BatchSize || state.Options.Seed != Seed)
                throw WeakSegException.ForFile(latest.StatePath, $"cannot resume: the checkpoint used batch size {state.Options.BatchSize} and seed {state.Options.Seed}, now {Config.BatchSize} and {Seed}");
            CheckpointStore.LoadModel(latest.ModelPath, model);
            rngToRestore = CheckpointStore.ReadRngState(latest);
            start = state.Step;
            secondsBefore = state.ElapsedSeconds;
        }
        else
        {
            if (latest is not null)
                throw WeakSegException.ForFile(store.Directory,
                    $"already holds checkpoints (latest: step {latest.Step}); pass --resume to continue that run, or choose a new run directory");
            TorchRuntime.Seed(Seed);
        }

        var parameters = ((ITrainable)trainable).TrainableParameters().ToList();
        var (optimizer, scales) = CreateSgd(parameters, trainable);
        using var optimizerLifetime = optimizer;
        if (resume)
        {
            CheckpointStore.LoadOptimizer(latest!, optimizer);
            using var rng = torch.tensor(rngToRestore!, torch.uint8);
            torch.set_rng_state(rng);
        }

        using var log = resume ? MetricsLog.ResumeAfter(MetricsPath, start) : MetricsLog.Create(MetricsPath);
        model.train();
        var clock = Stopwatch.StartNew();
        double Seconds() => secondsBefore + clock.Elapsed.TotalSeconds;
        long lastSaved = resume ? start : -1;
        long imagesThisCall = 0, imagesSinceLog = 0;
        double secondsAtLastLog = secondsBefore;
        float lastLoss = float.NaN;

        CheckpointInfo Save(long stepsDone)
        {
            byte[] rngBytes;
            using (var rng = torch.get_rng_state()) rngBytes = rng.data<byte>().ToArray();
            var info = store.Save(new CheckpointState
            {
                Step = stepsDone, LearningRate = LearningRateAt(Math.Max(0, stepsDone - 1)), ElapsedSeconds = Seconds(),
                WrittenUtc = DateTime.UtcNow, Options = RecordedOptions,
            }, model, optimizer, rngBytes);
            store.Prune(3);
            lastSaved = stepsDone;
            latest = info;
            return info;
        }

        using var stream = batches.Stream(start).GetEnumerator();
        progress?.Report(new ProgressUpdate(start, total, resume ? $"resumed at step {start}" : null));
        for (long s = start; s < total; s++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                if (s != lastSaved && s > 0) Save(s);
                return new TrainResult(s, false, lastLoss, latest, null, Seconds(), imagesThisCall / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
            }
            var report = RunStep(s, trainable, parameters, optimizer, scales, stream, device, Seconds, latest);
            lastLoss = report.Loss;
            imagesThisCall += report.BatchSize;
            imagesSinceLog += report.BatchSize;
            if (report.Step % Config.LogEvery == 0 || report.Step == total)
            {
                log.Append(report, imagesSinceLog / Math.Max(1e-9, report.Seconds - secondsAtLastLog));
                imagesSinceLog = 0;
                secondsAtLastLog = report.Seconds;
            }
            progress?.Report(new ProgressUpdate(report.Step, total, string.Create(CultureInfo.InvariantCulture,
                $"loss {report.Loss:0.000} · {imagesThisCall / Math.Max(1e-9, clock.Elapsed.TotalSeconds):0.0} img/s")));
            StepCompleted?.Invoke(report);
            if (report.Step % Config.CheckpointEvery == 0 && report.Step != total) Save(report.Step);
        }

        if (lastSaved != total) Save(total);
        var tmp = FinalWeightsPath + ".tmp";
        CheckpointStore.SaveModelFlushed(model, tmp);
        File.Move(tmp, FinalWeightsPath, overwrite: true);
        return new TrainResult(total, true, lastLoss, latest, FinalWeightsPath, Seconds(), imagesThisCall / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
    }

    (SGD Optimizer, double[] Scales) CreateSgd(List<(string Name, Parameter Parameter)> parameters, ITrainable trainable)
    {
        string[] noDecay = ["pos_embed", "cls_token", "cls_emb"];
        var keys = new List<(double Scale, bool Decay)>();
        var members = new List<List<Parameter>>();
        foreach (var (name, p) in parameters)
        {
            double scale = trainable.LearningRateScale(name);
            var key = (scale, Config.WeightDecay > 0 && !ParameterGroups.IsExemptFromWeightDecay(name, p, noDecay));
            int i = keys.IndexOf(key);
            if (i < 0) { keys.Add(key); members.Add([]); i = keys.Count - 1; }
            members[i].Add(p);
        }
        if (keys.Count == 0) throw new WeakSegException("the model has no trainable parameters.");
        double lr0 = LearningRateAt(0);
        var groups = keys.Select((k, i) => new SGD.ParamGroup(members[i], lr0 * k.Scale, Config.Momentum, 0.0, k.Decay ? Config.WeightDecay : 0.0, false, false)).ToList();
        return (torch.optim.SGD(groups, lr0, Config.Momentum), keys.Select(k => k.Scale).ToArray());
    }

    StepReport RunStep(long s, ITrainable trainable, List<(string Name, Parameter Parameter)> parameters, SGD optimizer, double[] scales,
        IEnumerator<TrainBatch> stream, Device device, Func<double> seconds, CheckpointInfo? lastGood)
    {
        using var scope = torch.NewDisposeScope();
        if (!stream.MoveNext()) throw new WeakSegException($"the batch source ended at step {s}; it must be endless (BatchLoader.Stream).");
        var batch = stream.Current;
        if (batch.Images.device != device)
            batch = batch with { Images = batch.Images.to(device), Labels = batch.Labels.to(device), Masks = batch.Masks?.to(device) };
        double lr = LearningRateAt(s);
        int g = 0;
        foreach (var group in optimizer.ParamGroups) group.LearningRate = lr * scales[g++];
        trainable.Model.zero_grad(true);

        var terms = trainable.ComputeLoss(batch, new TrainStepContext(s, Config.Steps, lr, Trainer.StepRandom(Seed, s)));
        float loss = terms.Total.item<float>();
        var parts = terms.Parts.Select(p => new LossPart(p.Name, p.Value.detach().mean().item<float>())).ToList();
        string lastGoodText = lastGood is null ? "No checkpoint was written yet."
            : $"The last good checkpoint is {lastGood.Directory} (step {lastGood.Step}).";
        if (!float.IsFinite(loss))
            throw new WeakSegException($"step {s + 1}: the loss is {loss.ToString(CultureInfo.InvariantCulture)} — training stopped before updating the weights. {lastGoodText}");
        terms.Total.backward();
        var norms = parameters.Where(p => p.Parameter.grad is not null).Select(p => torch.linalg.vector_norm(p.Parameter.grad!)).ToArray();
        double gradNorm = norms.Length == 0 ? 0 : torch.linalg.vector_norm(torch.stack(norms)).item<float>();
        if (!double.IsFinite(gradNorm))
            throw new WeakSegException($"step {s + 1}: the gradient norm is {gradNorm.ToString(CultureInfo.InvariantCulture)} (loss {loss.ToString(CultureInfo.InvariantCulture)}) — training stopped before updating the weights. {lastGoodText}");
        optimizer.step();
        return new StepReport(s + 1, Config.Steps, loss, parts, lr, gradNorm, batch.Count, seconds());
    }
}
