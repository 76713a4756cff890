using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;
using WeakSeg.Runtime;

namespace WeakSeg.Evaluation;

/// <summary>
/// The confusion matrix of one <c>eval --shard i/N</c> job, to be added up by <c>weakseg eval-merge</c>:
/// <code>
/// { "format": "weakseg-partial-eval", "version": 1, "shard": "1/4", "split": "val", "data": "/abs/root", "pred": "/abs/pred",
///   "pred_ignore": "count_as_missed" | "skip_pixel", "class_names": [...], "num_images": 362, "counts": [[...K+1 longs], ... K rows] }
/// </code>
/// Row g, column p counts pixels of ground truth g predicted p; column K counts predicted 255 under count_as_missed. Counts are
/// integers, so the merged matrix, and every metric from it, equals one unsharded evaluation exactly.
/// </summary>
public static class PartialEvaluationFile
{
    const string Format = "weakseg-partial-eval";

    public static void Write(string path, SegmentationEvaluation evaluation, WorkShard shard, string predDir, string dataRoot)
    {
        int k = evaluation.ClassNames.Count;
        var rows = new JsonArray();
        for (int g = 0; g < k; g++) rows.Add(new JsonArray(evaluation.Counts.Skip(g * (k + 1)).Take(k + 1).Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()));
        var json = new JsonObject
        {
            ["format"] = Format, ["version"] = 1, ["shard"] = shard.ToString(), ["split"] = evaluation.Split,
            ["data"] = Path.GetFullPath(dataRoot), ["pred"] = Path.GetFullPath(predDir),
            ["pred_ignore"] = PolicyName(evaluation.PredIgnore),
            ["class_names"] = new JsonArray(evaluation.ClassNames.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
            ["num_images"] = evaluation.NumImages, ["counts"] = rows,
        };
        AtomicFile.WriteAllText(path, IO.WeakSegJson.Text(json) + "\n");
    }

    /// <summary>
    /// Adds the partial matrices of every shard of one job. Refused, naming the file: a file that is not a partial evaluation, shards of
    /// different jobs (split, data, predictions, classes, ignore policy or N differ), a shard given twice, or a missing shard.
    /// </summary>
    public static SegmentationEvaluation Merge(IReadOnlyList<string> paths, MeanIouRule meanRule)
    {
        if (paths.Count == 0) throw new WeakSegException("eval-merge: give the partial files of every shard (written by `weakseg eval --shard i/N --partial FILE`)");
        JsonObject? first = null;
        string? firstPath = null;
        long[]? sum = null;
        long images = 0;
        var seen = new Dictionary<int, string>();
        int count = 0;
        foreach (var path in paths)
        {
            var json = Read(path);
            var shard = WorkShard.Parse(json["shard"]!.GetValue<string>());
            if (first is null) { first = json; firstPath = path; count = shard.Count; }
            foreach (var key in new[] { "split", "data", "pred", "pred_ignore", "class_names" })
                if (!JsonNode.DeepEquals(json[key], first[key]))
                    throw WeakSegException.ForFile(path, $"is a shard of another evaluation: its '{key}' is {json[key]?.ToJsonString()} but {firstPath} has {first[key]?.ToJsonString()}");
            if (shard.Count != count)
                throw WeakSegException.ForFile(path, $"is shard {shard} but {firstPath} is one of {count} shards");
            if (seen.TryGetValue(shard.Index, out var twice)) throw WeakSegException.ForFile(path, $"shard {shard} is also {twice}");
            seen[shard.Index] = path;
            var counts = json["counts"]!.AsArray().SelectMany(row => row!.AsArray().Select(v => v!.GetValue<long>())).ToArray();
            sum ??= new long[counts.Length];
            if (counts.Length != sum.Length) throw WeakSegException.ForFile(path, "its confusion matrix has another size");
            for (int i = 0; i < counts.Length; i++) sum[i] += counts[i];
            images += json["num_images"]!.GetValue<long>();
        }
        var missing = Enumerable.Range(0, count).Where(i => !seen.ContainsKey(i)).Select(i => new WorkShard(i, count).ToString()).ToList();
        if (missing.Count > 0)
            throw new WeakSegException($"eval-merge: shard{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} missing (give all {count} partial files)");
        var names = first!["class_names"]!.AsArray().Select(n => n!.GetValue<string>()).ToArray();
        var policy = first["pred_ignore"]!.GetValue<string>() == "skip_pixel" ? PredIgnorePolicy.SkipPixel : PredIgnorePolicy.CountAsMissed;
        var metrics = ConfusionMatrix.FromCounts(names.Length, policy, sum!).ComputeMetrics(meanRule);
        return new SegmentationEvaluation(metrics, names, (int)images, first["split"]!.GetValue<string>(), policy) { Counts = sum! };
    }

    static JsonObject Read(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "partial evaluation not found");
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
            if (json?["format"]?.GetValue<string>() != Format || json["counts"] is not JsonArray || json["shard"] is null || json["class_names"] is not JsonArray)
                throw WeakSegException.ForFile(path, $"not a partial evaluation (expected \"format\": \"{Format}\" from `weakseg eval --shard i/N --partial FILE`)");
            return json;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw WeakSegException.ForFile(path, "unreadable partial evaluation: " + e.Message);
        }
    }

    static string PolicyName(PredIgnorePolicy p) => p == PredIgnorePolicy.SkipPixel ? "skip_pixel" : "count_as_missed";
}
