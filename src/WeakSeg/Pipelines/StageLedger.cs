using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;

namespace WeakSeg.Pipelines;

/// <summary>What the ledger knows about a stage.</summary>
public enum StageState
{
    /// <summary>Never started in this output directory.</summary>
    New,
    /// <summary>Started with the same settings but not finished (its partial outputs are reused: checkpoints, written maps).</summary>
    Unfinished,
    /// <summary>Finished with the same settings: its recorded results are reused and the stage is not run again.</summary>
    Done,
}

/// <summary>
/// Records the stages of a multi-stage job in <c>DIR/NAME.json</c>: <c>{ "stage", "status": "running"|"done", "settings": {...},
/// "seconds", "results": {...} }</c>. A stage's settings include everything its outputs depend on (the pipeline nests the settings of
/// the stages it reads from), so a stage recorded with other settings is an error naming the file instead of silently mixing outputs
/// of two configurations. Every write is atomic.
/// </summary>
public sealed class StageLedger(string directory)
{
    public string Directory { get; } = Path.GetFullPath(directory);

    public string PathOf(string stage) => Path.Combine(Directory, stage + ".json");

    /// <summary>State of <paramref name="stage"/> for <paramref name="settings"/>; the recorded results when it is done.</summary>
    /// <exception cref="WeakSegException">the stage was recorded with different settings, or its record is unreadable</exception>
    public (StageState State, JsonObject? Results, double Seconds) Check(string stage, JsonObject settings)
    {
        var path = PathOf(stage);
        if (!File.Exists(path)) return (StageState.New, null, 0);
        JsonObject record;
        try { record = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw WeakSegException.ForFile(path, "expected a JSON object"); }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "unreadable stage record: " + e.Message); }
        if (!JsonNode.DeepEquals(record["settings"], settings))
            throw WeakSegException.ForFile(path, $"stage '{stage}' of this output directory was run with different settings " +
                $"({string.Join(", ", DifferingKeys(record["settings"] as JsonObject, settings))}); use a new --out, or delete this record and the stage's outputs to redo it");
        var status = record["status"]?.GetValue<string>();
        if (status != "done") return (StageState.Unfinished, null, record["seconds"]?.GetValue<double>() ?? 0);
        return (StageState.Done, record["results"] as JsonObject ?? new JsonObject(), record["seconds"]?.GetValue<double>() ?? 0);
    }

    /// <summary>Marks <paramref name="stage"/> as running with <paramref name="settings"/>, keeping time already spent in it.</summary>
    public void Begin(string stage, JsonObject settings, double secondsSoFar) => Write(stage, "running", settings, secondsSoFar, null);

    /// <summary>Marks <paramref name="stage"/> as done with its results.</summary>
    public void Complete(string stage, JsonObject settings, double seconds, JsonObject results) => Write(stage, "done", settings, seconds, results);

    void Write(string stage, string status, JsonObject settings, double seconds, JsonObject? results)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var json = new JsonObject
        {
            ["stage"] = stage,
            ["status"] = status,
            ["seconds"] = Math.Round(seconds, 3),
            ["settings"] = settings.DeepClone(),
            ["results"] = results is null ? null : WithoutNonFinite(results.DeepClone()),
        };
        AtomicFile.WriteAllText(PathOf(stage), IO.WeakSegJson.Text(json) + "\n");
    }

    /// <summary>The node with every NaN or infinite number replaced by null: JSON cannot hold them, and a record that cannot be written
    /// would stop every later run of the pipeline at this stage.</summary>
    internal static JsonNode? WithoutNonFinite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var key in o.Select(kv => kv.Key).ToList()) o[key] = WithoutNonFinite(o[key]?.DeepClone());
                return o;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++) a[i] = WithoutNonFinite(a[i]?.DeepClone());
                return a;
            case JsonValue v when v.TryGetValue<double>(out var d) && !double.IsFinite(d):
            case JsonValue w when w.TryGetValue<float>(out var f) && !float.IsFinite(f):
                return null;
            default:
                return node;
        }
    }

    /// <summary>Top-level keys (dotted into nested objects) whose values differ.</summary>
    internal static IEnumerable<string> DifferingKeys(JsonObject? recorded, JsonObject now, string prefix = "")
    {
        recorded ??= new JsonObject();
        foreach (var key in recorded.Select(kv => kv.Key).Union(now.Select(kv => kv.Key)))
        {
            var a = recorded[key];
            var b = now[key];
            if (JsonNode.DeepEquals(a, b)) continue;
            if (a is JsonObject ao && b is JsonObject bo)
                foreach (var inner in DifferingKeys(ao, bo, prefix + key + ".")) yield return inner;
            else yield return prefix + key;
        }
    }
}
