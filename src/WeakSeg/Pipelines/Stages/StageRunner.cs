using System.Diagnostics;
using System.Text.Json.Nodes;
using WeakSeg.Runtime;

namespace WeakSeg.Pipelines.Stages;

/// <summary>What a stage's outputs depend on. A stage that reads another stage's outputs nests that stage's settings, so a changed
/// upstream setting changes every stage below it. Serialised into the ledger record's <c>"settings"</c>.</summary>
public interface IStageSettings
{
    JsonObject ToJson();
}

/// <summary>What a stage produced, as recorded in its ledger record's <c>"results"</c> (and read back when the stage is reused).</summary>
public interface IStageResults<TSelf> where TSelf : IStageResults<TSelf>
{
    JsonObject ToJson();

    /// <summary>Reads a recorded <c>"results"</c> object (numbers JSON cannot hold are recorded as null).</summary>
    static abstract TSelf FromJson(JsonObject json);
}

/// <summary>What every stage of a run shares: progress and log, cancellation, the ranks and the runtime settings.</summary>
public sealed record StageContext
{
    public IStageReporter Reporter { get; init; } = new SilentStageReporter();
    public CancellationToken CancellationToken { get; init; }

    /// <summary>The ranks running the stages together; per-image stages split the images by rank (<see cref="Shard"/>).</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;
    public WorkShard Shard => WorkShard.ForGroup(Group);
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public int Workers { get; init; } = 2;
}

/// <summary>
/// One stage: a name (its ledger record is <c>stages/NAME.json</c>), typed settings and the work that produces typed results. The work
/// is written so that it continues from its partial outputs (training checkpoints, per-image files already written): the runner calls it
/// again for a stage it finds unfinished.
/// </summary>
public abstract record Stage<TSettings, TResults>(string Name, TSettings Settings)
    where TSettings : IStageSettings where TResults : IStageResults<TResults>
{
    /// <summary>Run on rank 0 only (evaluation files, reports); the other ranks wait and receive its results.</summary>
    public virtual bool RootOnly => false;

    public abstract TResults Run(StageContext context);
}

/// <summary>A stage whose work is a function (a recipe's own small step, e.g. a label-updating round).</summary>
public sealed record FunctionStage<TSettings, TResults>(string StageName, TSettings Settings, Func<StageContext, TResults> Work, bool OnRootOnly = false)
    : Stage<TSettings, TResults>(StageName, Settings) where TSettings : IStageSettings where TResults : IStageResults<TResults>
{
    public override bool RootOnly => OnRootOnly;
    public override TResults Run(StageContext context) => Work(context);
}

/// <summary>
/// The one stage engine of <c>pipeline</c> and <c>demo</c>: runs a stage unless the ledger (<see cref="StageLedger"/>) has it done.
/// Done with the same settings → its recorded results are returned and the work is not called; recorded but unfinished → the work
/// runs again and continues from its partial outputs, the time already spent is kept; recorded with other settings → an error naming
/// the record. Under MPI, rank 0 reads the ledger and tells the others; a stage runs on every rank (training, per-image stages) or,
/// when <see cref="Stage{TSettings, TResults}.RootOnly"/>, on rank 0 while the others wait for its results; rank 0 records it and
/// every rank leaves the stage together.
/// </summary>
public sealed class StageRunner(StageLedger ledger, StageContext context, Action<string>? stageCompleted = null)
{
    /// <summary>Key of a record's results holding the threads and device that computed them.</summary>
    public const string ComputedWithKey = "computed_with";

    readonly List<PipelineStage> _stages = new();
    readonly Dictionary<string, JsonNode?> _computedWith = new();

    public StageLedger Ledger { get; } = ledger;
    public StageContext Context { get; } = context;

    /// <summary>The stages met so far, in order (a stage met twice is listed twice).</summary>
    public IReadOnlyList<PipelineStage> Stages => _stages;

    /// <summary>Per stage, the threads and device that computed its results (null when its record predates this).</summary>
    public IReadOnlyDictionary<string, JsonNode?> ComputedWith => _computedWith;

    /// <summary>Runs (or reuses) <paramref name="stage"/> and returns its results.</summary>
    public TResults Run<TSettings, TResults>(Stage<TSettings, TResults> stage)
        where TSettings : IStageSettings where TResults : IStageResults<TResults>
    {
        TResults? fresh = default;
        bool ran = false;
        var json = Run(stage.Name, stage.Settings.ToJson(), () => { fresh = stage.Run(Context); ran = true; return fresh.ToJson(); }, stage.RootOnly);
        return ran ? fresh! : TResults.FromJson(json);
    }

    /// <summary>The untyped core of <see cref="Run{TSettings, TResults}"/>: settings and results as the JSON the ledger records.</summary>
    public JsonObject Run(string name, JsonObject settings, Func<JsonObject> work, bool rootOnly = false)
    {
        var group = Context.Group;
        Context.CancellationToken.ThrowIfCancellationRequested();
        var (status, recorded, secondsSoFar) = group.IsDistributed ? CheckOnRoot(name, settings) : Ledger.Check(name, settings);
        if (status == StageState.Done)
        {
            Context.Reporter.Log($"{name}: done before, reused ({Ledger.PathOf(name)})");
            _computedWith[name] = recorded![ComputedWithKey]?.DeepClone();               // null: recorded before provenance was
            _stages.Add(new PipelineStage(name, secondsSoFar, true));
            return recorded!;
        }
        if (status == StageState.Unfinished) Context.Reporter.Log($"{name}: continuing an unfinished stage");
        if (group.IsRoot) Ledger.Begin(name, settings, secondsSoFar);
        var clock = Stopwatch.StartNew();
        var fresh = !rootOnly || group.IsRoot ? work() : null;
        var results = group.IsDistributed ? JsonNode.Parse(group.Broadcast(group.IsRoot ? fresh!.ToJsonString() : null)!)!.AsObject() : fresh!;
        // threads and device are not settings (a stage computed with other ones is reused), but they decide the last bits of its
        // numbers, so the record keeps what computed them and report.json reports that rather than this invocation's values
        results[ComputedWithKey] = new JsonObject { ["threads"] = Context.Threads, ["device"] = Context.Device };
        _computedWith[name] = results[ComputedWithKey]!.DeepClone();
        double seconds = Math.Round(secondsSoFar + clock.Elapsed.TotalSeconds, 3);      // as recorded, so a reused stage reports the same
        if (group.IsRoot) Ledger.Complete(name, settings, seconds, results);
        group.Barrier();
        _stages.Add(new PipelineStage(name, seconds, false));
        stageCompleted?.Invoke(name);
        return results;
    }

    /// <summary>Rank 0's ledger state of a stage, on every rank (one reading, so all ranks take the same branch).</summary>
    (StageState, JsonObject?, double) CheckOnRoot(string name, JsonObject settings)
    {
        var group = Context.Group;
        string? encoded = null;
        WeakSegException? error = null;
        if (group.IsRoot)
        {
            try
            {
                var (status, recorded, seconds) = Ledger.Check(name, settings);
                encoded = new JsonObject { ["status"] = (int)status, ["seconds"] = seconds, ["results"] = recorded?.DeepClone() }.ToJsonString();
            }
            catch (WeakSegException e) { error = e; encoded = new JsonObject { ["error"] = e.Message }.ToJsonString(); }
        }
        var json = JsonNode.Parse(group.Broadcast(encoded)!)!;
        if (json["error"] is { } message) throw ProcessGroup.Agreed(error ?? new WeakSegException(message.GetValue<string>()));
        return ((StageState)json["status"]!.GetValue<int>(), json["results"] as JsonObject, json["seconds"]!.GetValue<double>());
    }
}
