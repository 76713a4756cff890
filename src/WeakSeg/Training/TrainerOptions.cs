using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace WeakSeg.Training;

/// <summary>Which optimizer <see cref="Trainer"/> builds.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<OptimizerKind>))]
public enum OptimizerKind
{
    /// <summary>AdamW with decoupled weight decay (DeiT/MCTformer/WeakTr CAM training). Default.</summary>
    AdamW,
    /// <summary>SGD with (heavy-ball) momentum and coupled L2 weight decay, PyTorch semantics (Segmenter/WeakTr retraining).</summary>
    Sgd,
}

/// <summary>Which learning-rate schedule <see cref="Trainer"/> follows (see <see cref="LearningRateSchedule"/>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ScheduleKind>))]
public enum ScheduleKind
{
    /// <summary>Linear warm-up, then cosine decay to <see cref="TrainerOptions.MinLr"/>. Default.</summary>
    WarmupCosine,
    /// <summary>Linear warm-up (if any), then polynomial decay (base − min)·(1 − t)^power + min (mmseg/Segmenter "poly").</summary>
    Poly,
    /// <summary>Linear warm-up (if any), then (base − min)·(1 − s/T)^power + min with s counted from step 0, not from the end of
    /// the warm-up, so the rate drops to base·(1 − W/T)^power when the warm-up ends (ToCo/MoRe PolyWarmupAdamW).</summary>
    PolyFromStart,
}

/// <summary>
/// Optimisation and bookkeeping settings shared by every WSSS training job (AdamW + warm-up + cosine schedule by
/// default, or SGD with momentum and/or a poly schedule; checkpoints, metrics log). Defaults follow the DeiT/MCTformer recipe (DeiT main.py defaults as used by MCTformer;
/// values marked "unverified" are defaults to expose as options, not certainties). Method configs override them.
/// Steps are optimizer updates (one batch each); epoch-based recipes convert with steps = epochs × batches per epoch.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Total optimizer steps. Default ≈ 60 epochs × 165 batches of 64 (VOC train_aug 10 582 images; MCTformer 60 epochs, unverified).</summary>
    public long Steps { get; init; } = 10_000;

    /// <summary>Images per batch (the batch source must deliver this; used for the loader and for throughput). MCTformer/WeakTr: 64.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Peak learning rate after warm-up. DeiT lr 5e-4 scaled by batch/512 → 5e-4 × 64/512 = 6.25e-5 (MCTformer linear scaling, unverified).</summary>
    public double BaseLr { get; init; } = 6.25e-5;

    /// <summary>Learning rate the cosine decay ends at. DeiT --min-lr 1e-5.</summary>
    public double MinLr { get; init; } = 1e-5;

    /// <summary>Learning rate at step 0; warm-up rises linearly from it to <see cref="BaseLr"/>. DeiT --warmup-lr 1e-6.</summary>
    public double WarmupStartLr { get; init; } = 1e-6;

    /// <summary>Linear warm-up length in steps. DeiT/MCTformer/WeakTr: 5 epochs ≈ 5 × 165 steps at batch 64 on VOC train_aug.</summary>
    public long WarmupSteps { get; init; } = 825;

    /// <summary>Decoupled (AdamW) weight decay for weight matrices. MCTformer/WeakTr: 0.05 (WeakTr paper §4.1).</summary>
    public double WeightDecay { get; init; } = 0.05;

    /// <summary>Parameter names (last dotted segment) kept out of weight decay besides biases and 1-D tensors. timm ViT no_weight_decay().</summary>
    public string[] NoWeightDecayNames { get; init; } = ["pos_embed", "cls_token", "dist_token"];

    /// <summary>Decay every parameter, biases and norm weights included (ToCo/MoRe's optimiser groups); false = the usual exemptions.</summary>
    public bool DecayAllParameters { get; init; }

    /// <summary>AdamW β1 (PyTorch default 0.9).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW β2 (PyTorch default 0.999).</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>AdamW ε (DeiT --opt-eps 1e-8).</summary>
    public double Eps { get; init; } = 1e-8;

    /// <summary>Optimizer: AdamW (default) or SGD with momentum.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;

    /// <summary>SGD momentum (used only with <see cref="OptimizerKind.Sgd"/>). 0.9 (WeakTr retraining appendix).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Learning-rate schedule: warm-up + cosine (default) or poly.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.WarmupCosine;

    /// <summary>Exponent of the poly schedule (used only with <see cref="ScheduleKind.Poly"/>). 0.9 (mmseg/Segmenter default).</summary>
    public double PolyPower { get; init; } = 0.9;

    /// <summary>Clip the global L2 gradient norm to this value; null = no clipping (DeiT default: none).</summary>
    public double? GradClipNorm { get; init; }

    /// <summary>Write a checkpoint every N steps (and always at the end and on cancellation).</summary>
    [ResultNeutral] public long CheckpointEvery { get; init; } = 500;

    /// <summary>Keep only the newest K checkpoints.</summary>
    [ResultNeutral] public int KeepLastCheckpoints { get; init; } = 3;

    /// <summary>Append a metrics.jsonl line every N steps (and at the last step).</summary>
    [ResultNeutral] public long LogEvery { get; init; } = 20;

    /// <summary>
    /// Run a full .NET garbage collection every N steps (0 = never). TorchSharp's optimizers leave per-step native temporaries
    /// (about 2× the parameter size for AdamW) that only a collection frees; without it RSS climbs by that much per step until
    /// the runtime happens to collect (measured: 1.8 GB before the first collection vs 253 MiB flat with one per step, 2.7 M params).
    /// Does not change results.
    /// </summary>
    [ResultNeutral] public int CollectGarbageEvery { get; init; } = 1;

    /// <summary>Seed for torch's CPU generator (and the per-step managed RNG). DeiT --seed 0.</summary>
    public long Seed { get; init; }

    /// <summary>"cpu" or "cuda[:N]".</summary>
    [ResultNeutral] public string Device { get; init; } = "cpu";

    /// <summary>Intra-op threads for libtorch; 0 leaves the current setting.</summary>
    [ResultNeutral] public int Threads { get; init; }

    /// <summary>The warm-up of a run shortened to <paramref name="steps"/>: at most a tenth of them (<see cref="WithSteps"/>, and the
    /// segmenter's <c>SegmentationConfig.WithSteps</c>).</summary>
    public static long ShortenedWarmup(long warmupSteps, long steps) => Math.Min(warmupSteps, steps / 10);

    /// <summary>The options with <paramref name="steps"/> optimizer steps and a warm-up of at most a tenth of them (<c>pipeline
    /// --cam-steps</c>, <c>demo --steps</c>).</summary>
    public TrainerOptions WithSteps(long steps) => this with { Steps = steps, WarmupSteps = ShortenedWarmup(WarmupSteps, steps) };

    /// <summary>The options with a warm-up no longer than the run: a warm-up of more than <see cref="Steps"/> steps becomes a tenth of
    /// them (<c>train --steps</c> shorter than the preset's warm-up); otherwise these options.</summary>
    public TrainerOptions WithWarmupWithinSteps() => WarmupSteps > Steps && Steps >= 1 ? this with { WarmupSteps = Steps / 10 } : this;

    /// <summary>Errors that name the offending field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var e = new List<string>();
        if (Steps < 1) e.Add($"{nameof(Steps)} must be ≥ 1 (got {Steps}).");
        if (BatchSize < 1) e.Add($"{nameof(BatchSize)} must be ≥ 1 (got {BatchSize}).");
        if (!(BaseLr > 0) || double.IsInfinity(BaseLr)) e.Add($"{nameof(BaseLr)} must be a positive number (got {BaseLr}).");
        if (!(MinLr >= 0) || MinLr > BaseLr) e.Add($"{nameof(MinLr)} must be in [0, {nameof(BaseLr)}] (got {MinLr}).");
        if (!(WarmupStartLr >= 0) || WarmupStartLr > BaseLr) e.Add($"{nameof(WarmupStartLr)} must be in [0, {nameof(BaseLr)}] (got {WarmupStartLr}).");
        if (WarmupSteps < 0 || WarmupSteps > Steps) e.Add($"{nameof(WarmupSteps)} must be in [0, {nameof(Steps)}] (got {WarmupSteps}).");
        if (!(WeightDecay >= 0)) e.Add($"{nameof(WeightDecay)} must be ≥ 0 (got {WeightDecay}).");
        if (!(Beta1 >= 0 && Beta1 < 1)) e.Add($"{nameof(Beta1)} must be in [0, 1) (got {Beta1}).");
        if (!(Beta2 >= 0 && Beta2 < 1)) e.Add($"{nameof(Beta2)} must be in [0, 1) (got {Beta2}).");
        if (!(Eps > 0)) e.Add($"{nameof(Eps)} must be > 0 (got {Eps}).");
        if (!Enum.IsDefined(Optimizer)) e.Add($"{nameof(Optimizer)} must be AdamW or Sgd (got {Optimizer}).");
        if (!Enum.IsDefined(Schedule)) e.Add($"{nameof(Schedule)} must be WarmupCosine, Poly or PolyFromStart (got {Schedule}).");
        if (!(Momentum >= 0 && Momentum < 1)) e.Add($"{nameof(Momentum)} must be in [0, 1) (got {Momentum}).");
        if (!(PolyPower > 0) || double.IsInfinity(PolyPower)) e.Add($"{nameof(PolyPower)} must be a positive number (got {PolyPower}).");
        if (GradClipNorm is { } c && !(c > 0)) e.Add($"{nameof(GradClipNorm)} must be > 0 when set (got {c}).");
        if (CollectGarbageEvery < 0) e.Add($"{nameof(CollectGarbageEvery)} must be ≥ 0 (got {CollectGarbageEvery}).");
        if (CheckpointEvery < 1) e.Add($"{nameof(CheckpointEvery)} must be ≥ 1 (got {CheckpointEvery}).");
        if (KeepLastCheckpoints < 1) e.Add($"{nameof(KeepLastCheckpoints)} must be ≥ 1 (got {KeepLastCheckpoints}).");
        if (LogEvery < 1) e.Add($"{nameof(LogEvery)} must be ≥ 1 (got {LogEvery}).");
        if (Threads < 0) e.Add($"{nameof(Threads)} must be ≥ 0 (got {Threads}).");
        if (string.IsNullOrWhiteSpace(Device)) e.Add($"{nameof(Device)} must be cpu or cuda[:N].");
        return e;
    }

    /// <summary>Throws <see cref="WeakSegException"/> listing every invalid field.</summary>
    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid training options: " + string.Join(" ", errors));
    }

    /// <summary>The fields that change the numbers a run produces (every field not marked <see cref="ResultNeutralAttribute"/>) where
    /// <paramref name="now"/> differs from these options; a resumed run must match the checkpoint in all of them.</summary>
    internal IEnumerable<(string Field, string Checkpoint, string Now)> ResultAffectingDifferences(TrainerOptions now)
    {
        var info = IO.WeakSegJson.TypeInfo<TrainerOptions>();
        var before = JsonSerializer.SerializeToNode(this, info)!.AsObject();
        var after = JsonSerializer.SerializeToNode(now, info)!.AsObject();
        static string Text(JsonNode? v) => v switch
        {
            null => "none",
            JsonValue s when s.GetValueKind() == JsonValueKind.String => s.GetValue<string>(),
            JsonArray a => string.Join(",", a.Select(Text)),
            _ => v.ToJsonString(),
        };
        foreach (var field in ResultNeutral.Fields(info).Where(f => !f.Neutral))
            if (!JsonNode.DeepEquals(before[field.Key], after[field.Key]))
                yield return (field.Name, Text(before[field.Key]), Text(after[field.Key]));
    }

    /// <summary>The JSON keys of the fields that never change a run's numbers (<see cref="ResultNeutralAttribute"/>): checkpoint, log
    /// and garbage-collection cadence, device and threads.</summary>
    public static IReadOnlyList<string> ResultNeutralKeys => ResultNeutral.Keys(IO.WeakSegJson.TypeInfo<TrainerOptions>());

    public string ToJson() => JsonSerializer.Serialize(this, IO.WeakSegJson.TypeInfo<TrainerOptions>());

    /// <summary>Parses options JSON (snake_case keys); unknown keys are errors that name <paramref name="sourcePath"/>.</summary>
    public static TrainerOptions FromJson(string json, string sourcePath = "<options>")
    {
        try
        {
            return JsonSerializer.Deserialize(json, IO.WeakSegJson.TypeInfo<TrainerOptions>())
                   ?? throw WeakSegException.ForFile(sourcePath, "empty training options");
        }
        catch (JsonException e)
        {
            throw WeakSegException.ForFile(sourcePath, "bad training options JSON: " + e.Message);
        }
    }
}

/// <summary>Checkpoint metadata written as state.json.</summary>
public sealed record CheckpointState
{
    public int FormatVersion { get; init; } = 1;
    /// <summary>Optimizer steps completed; training resumes with step index <see cref="Step"/> (batch number Step of the stream).</summary>
    public long Step { get; init; }
    /// <summary>Learning rate used by the last completed step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Training wall time accumulated up to this checkpoint (seconds).</summary>
    public double ElapsedSeconds { get; init; }
    public DateTime WrittenUtc { get; init; }
    public TrainerOptions Options { get; init; } = new();
    /// <summary>Loss of the step that ended at this checkpoint (null in checkpoints written before it was recorded).</summary>
    public float? LastLoss { get; init; }
    /// <summary>Number of data-parallel ranks that trained the run (1 for one process; checkpoints written before it was recorded are
    /// single-process). A resume must use the same number: the batch split and the order of the gradient sums depend on it.</summary>
    public int WorldSize { get; init; } = 1;
    /// <summary>CRC-32 (hex) of model.bin, optimizer.bin and rng.bin as written, checked before a resume hands them to libtorch
    /// (null in checkpoints written before checksums were recorded).</summary>
    public Dictionary<string, string>? Checksums { get; init; }
}

