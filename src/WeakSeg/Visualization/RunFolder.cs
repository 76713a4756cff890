using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;

namespace WeakSeg.Visualization;

/// <summary>One row of a report's metric table: the key in the run's record, a label, the recorded value (null = none) and why it is
/// missing.</summary>
public sealed record ReportMetric(string Key, string Label, double? Value, bool Percent, string Missing);

/// <summary>A stage of a run: its ledger status ("done", "unfinished" or <see cref="ReportHtml.NotRun"/>), seconds and whether the
/// last invocation reused it (null when no record says: a report.json not written yet, an unfinished stage, a demo).</summary>
public sealed record ReportStage(string Name, string Status, double? Seconds, bool? Reused);

/// <summary>A trained model of a run (its folder holds metrics.jsonl).</summary>
public sealed record ReportTraining(string Label, string RunDirectory);

/// <summary>A segmenter of a pipeline run: its val predictions (val-pred/) and their evaluation (eval-SPLIT.json).</summary>
public sealed record ReportSegmenter(string Key, string Label, string RunDirectory, string EvalPath)
{
    public string PredictionDirectory => Path.Combine(RunDirectory, "val-pred");
}

/// <summary>
/// What a run folder records, read from its files only (never recomputed): a pipeline folder (<c>report.json</c>, <c>stages/</c>,
/// <c>cam/</c>, <c>pseudo-MAP/</c>, <c>seg/</c>) or a demo folder (<c>metrics.json</c>, <c>runs/</c>, <c>cams/</c>, <c>pseudo/</c>,
/// <c>eval-cam.json</c>, <c>eval-pseudo.json</c>). A stage without its files is reported as not run.
/// </summary>
public sealed class RunFolder
{
    public const string PipelineRecord = "report.json", DemoRecord = "metrics.json";

    public required string Directory { get; init; }
    /// <summary>"pipeline" or "demo".</summary>
    public required string Kind { get; init; }
    /// <summary>report.json or metrics.json, as read (empty when the file does not exist yet).</summary>
    public required JsonObject Record { get; init; }
    public required string RecordPath { get; init; }
    public required string Method { get; init; }
    public string? Map { get; init; }
    public long Seed { get; init; }
    public string? DataRoot { get; init; }
    public string TrainSplit { get; init; } = "train";
    public string ValSplit { get; init; } = "val";
    public string? MapsDirectory { get; init; }
    public string? PseudoDirectory { get; init; }
    public string? CamEvalPath { get; init; }
    public string? PseudoEvalPath { get; init; }
    public IReadOnlyList<ReportTraining> Trainings { get; init; } = [];
    public IReadOnlyList<ReportSegmenter> Segmenters { get; init; } = [];
    public IReadOnlyList<ReportStage> Stages { get; init; } = [];
    public IReadOnlyList<ReportMetric> Metrics { get; init; } = [];
    public IReadOnlyList<(string Key, string Value)> Settings { get; init; } = [];

    /// <summary>Reads a run folder.</summary>
    /// <exception cref="WeakSegException">the folder does not exist, holds no run (no report.json, metrics.json or stages/), or a record is
    /// not valid JSON</exception>
    public static RunFolder Open(string directory)
    {
        var dir = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(dir)) throw WeakSegException.ForFile(dir, "run folder not found");
        // a demo folder also holds the stage engine's stages/ and report.json; its metrics.json (which a pipeline never writes) marks it
        if (File.Exists(Path.Combine(dir, DemoRecord))) return OpenDemo(dir);
        if (File.Exists(Path.Combine(dir, PipelineRecord)) || System.IO.Directory.Exists(Path.Combine(dir, "stages"))) return OpenPipeline(dir);
        throw WeakSegException.ForFile(dir, $"not a run folder: no {PipelineRecord} or stages/ (pipeline) and no {DemoRecord} (demo)");
    }

    /// <summary>A JSON file's object, or null when the file does not exist.</summary>
    public static JsonObject? ReadOptional(string? path) => path is not null && File.Exists(path) ? JsonFiles.ReadObject(path) : null;

    /// <summary>A number field (null when absent, null or not a number).</summary>
    public static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<double>() : null;

    static string? Text(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    static string Show(JsonNode? node) => node switch
    {
        null => "null",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => node.ToJsonString(),
    };

    /// <summary>Why a metric of a run record is missing: "skipped: why" when the record's <c>skipped_metrics</c> names it, else "not run".</summary>
    static string WhyMissing(JsonObject record, string key)
    {
        var skipped = (record["skipped_metrics"] as JsonArray)?.Select(Text).OfType<string>() ?? [];
        return skipped.FirstOrDefault(s => s.Split(':')[0].Contains(key, StringComparison.Ordinal)) is { } reason
            ? "skipped: " + reason[(reason.IndexOf(':') + 1)..].Trim() : ReportHtml.NotRun;
    }

    static RunFolder OpenPipeline(string dir)
    {
        var recordPath = Path.Combine(dir, PipelineRecord);
        var record = ReadOptional(recordPath) ?? new JsonObject();
        var stagesDir = Path.Combine(dir, "stages");
        var ledger = new Dictionary<string, JsonObject>();
        if (System.IO.Directory.Exists(stagesDir))
            foreach (var file in System.IO.Directory.GetFiles(stagesDir, "*.json").Order(StringComparer.Ordinal))
                ledger[Path.GetFileNameWithoutExtension(file)] = JsonFiles.ReadObject(file);

        var camTrain = ledger.GetValueOrDefault("cam-train");
        var map = Text(record["map"]) ?? ledger.Keys.FirstOrDefault(k => k.StartsWith("maps-", StringComparison.Ordinal))?["maps-".Length..];
        var method = Text(record["method"]) ?? Text(camTrain?["settings"]?["recipe"]?["method"]) ?? "unknown method";
        var run = record["run"] as JsonObject;
        long seed = (long)(Number(run?["seed"]) ?? Number(camTrain?["settings"]?["seed"]) ?? 0);
        var dataRoot = Text(camTrain?["settings"]?["data"]?["root"]) ?? Text(ledger.GetValueOrDefault("data")?["results"]?["root"])
                       ?? (System.IO.Directory.Exists(Path.Combine(dir, "data")) ? Path.Combine(dir, "data") : null);
        var trainSplit = Text(camTrain?["settings"]?["split"]) ?? "train";

        // segmenters, in the order of their ledger records' decoders as report.json lists them, then any other
        var segTrainStages = ledger.Keys.Where(k => map is not null && k.StartsWith($"seg-{map}-", StringComparison.Ordinal) && k.EndsWith("-train", StringComparison.Ordinal)).ToList();
        var decoderOrder = (record["val_miou_by_decoder"] as JsonObject)?.Select(kv => kv.Key).ToList() ?? [];
        var decoders = segTrainStages.Select(k => k[$"seg-{map}-".Length..^"-train".Length])
            .OrderBy(d => decoderOrder.IndexOf(d) is var i && i >= 0 ? i : int.MaxValue).ThenBy(d => d, StringComparer.Ordinal).ToList();
        var valSplit = ledger.Where(kv => kv.Key.EndsWith("-val", StringComparison.Ordinal)).Select(kv => Text(kv.Value["settings"]?["split"])).FirstOrDefault(s => s is not null) ?? "val";
        var segmenters = decoders.Select(d => new ReportSegmenter($"val_miou_by_decoder.{d}", $"segmenter on pseudo labels, {d} decoder",
            Path.Combine(dir, "seg", $"{map}-{d}"), Path.Combine(dir, "seg", $"{map}-{d}", $"eval-{valSplit}.json"))).ToList();
        if (ledger.ContainsKey("upper-bound-train"))
            segmenters.Add(new ReportSegmenter("upper_bound_miou", "upper bound: segmenter on ground truth", Path.Combine(dir, "seg", "upper-bound"),
                Path.Combine(dir, "seg", "upper-bound", $"eval-{valSplit}.json")));

        var trainings = new List<ReportTraining> { new($"CAM model ({method})", Path.Combine(dir, "cam", "run")) };
        trainings.AddRange(segmenters.Select(s => new ReportTraining(s.Label, s.RunDirectory)));
        // a single-stage method's own decoder (no training of its own: it is the CAM model's) comes first, as val_miou is its
        if (ledger.ContainsKey("decoder-" + valSplit))
            segmenters.Insert(0, new ReportSegmenter("val_miou_by_decoder.method", "the method's own decoder", Path.Combine(dir, "decoder"),
                Path.Combine(dir, "decoder", $"eval-{valSplit}.json")));

        // the stages: those report.json lists (in run order), then the other ledger records, then the expected ones not recorded
        var names = new List<string>();
        if (record["stage_seconds"] is JsonObject stageSeconds) names.AddRange(stageSeconds.Select(kv => kv.Key));
        names.AddRange(ledger.Keys.Where(k => !names.Contains(k)).OrderBy(k => File.GetLastWriteTimeUtc(Path.Combine(stagesDir, k + ".json"))));
        var mapName = map ?? "MAP";
        var expected = new List<string> { "cam-train", $"maps-{mapName}", $"cam-eval-{mapName}", $"pseudo-{mapName}" };
        bool ownDecoder = names.Any(n => n.StartsWith("decoder-", StringComparison.Ordinal));
        if (!ownDecoder && !names.Any(n => n.StartsWith($"seg-{mapName}-", StringComparison.Ordinal))) expected.AddRange([$"seg-{mapName}-DECODER-train", $"seg-{mapName}-DECODER-val"]);
        expected.AddRange(["upper-bound-train", "upper-bound-val"]);
        names.AddRange(expected.Where(e => !names.Contains(e)));
        var reused = (record["reused_stages"] as JsonArray)?.Select(Text).ToHashSet();
        bool? ReusedByLastRun(string n) => reused is not null && record["stage_seconds"] is JsonObject last && last.ContainsKey(n) ? reused.Contains(n) : null;
        var stages = names.Select(n => ledger.TryGetValue(n, out var r)
            ? Text(r["status"]) == "done"
                ? new ReportStage(n, "done", Number(r["seconds"]), ReusedByLastRun(n))
                : new ReportStage(n, "unfinished", Number(r["seconds"]), null)
            : new ReportStage(n, ReportHtml.NotRun, null, null)).ToList();

        // the metrics, each from report.json; a null one is "skipped" (with report.json's reason) or "not run"
        string Why(string key) => WhyMissing(record, key);
        var threshold = Number(record["threshold"]);
        var thresholdSource = Text(record["threshold_source"])?.Split(':')[0];
        var metrics = new List<ReportMetric>
        {
            new("cam_miou", $"CAM maps ({mapName}), best threshold of the sweep, {trainSplit} split", Number(record["cam_miou"]), true, Why("cam_miou")),
            new("pseudo_miou", threshold is { } t ? $"pseudo labels, threshold {t.ToString("0.00", CultureInfo.InvariantCulture)} ({thresholdSource}), {trainSplit} split" : $"pseudo labels, {trainSplit} split",
                Number(record["pseudo_miou"]), true, Why("pseudo_miou")),
            new("val_miou", ownDecoder ? $"val mIoU: the method's own decoder, {valSplit} split"
                : $"val mIoU: segmenter on pseudo labels{(decoders.Count > 0 ? $" ({decoders[0]} decoder)" : "")}, {valSplit} split",
                Number(record["val_miou"]), true, Why("val_miou")),
        };
        if (decoders.Count > 1)
            metrics.AddRange(decoders.Select(d => new ReportMetric($"val_miou_by_decoder.{d}", $"val mIoU, {d} decoder", Number(record["val_miou_by_decoder"]?[d]), true, Why("val_miou"))));
        metrics.Add(new("upper_bound_miou", $"upper bound: segmenter on ground truth, {valSplit} split", Number(record["upper_bound_miou"]), true, Why("upper_bound_miou")));
        metrics.Add(new("weak_full_ratio", "weak / full (val mIoU / upper bound)", Number(record["weak_full_ratio"]), false,
            ReportHtml.NotRun + " (needs the val mIoU and the upper bound)"));

        var settings = new List<(string, string)> { ("method", method), ("map", mapName) };
        // the model as the CAM stage's record resolved it (class count of the dataset) rather than report.json's copy of the preset
        var resolvedModel = camTrain?["settings"]?["recipe"]?["model"];
        if (run is not null) settings.AddRange(run.Where(kv => !kv.Key.EndsWith("_this_invocation", StringComparison.Ordinal))
            .Select(kv => (kv.Key, Show(kv.Key == "model" && resolvedModel is not null ? resolvedModel : kv.Value))));
        if (threshold is not null) settings.Add(("pseudo-label threshold", $"{Show(record["threshold"])} ({Text(record["threshold_source"])})"));
        settings.Add(("data", dataRoot ?? "unknown (no data stage recorded)"));
        settings.Add(("splits", $"train {trainSplit}, val {valSplit}"));
        if (camTrain?["settings"]?["recipe"]?["trainer"] is JsonObject trainer)
            settings.Add(("CAM training", $"{Show(trainer["steps"])} steps, batch {Show(trainer["batch_size"])}, lr {Show(trainer["base_lr"])}"));
        if (decoders.Count > 0 && ledger[$"seg-{map}-{decoders[0]}-train"]["settings"]?["config"] is JsonObject seg)
            settings.Add(("segmenter training", $"{Show(seg["steps"])} steps, batch {Show(seg["batch_size"])}"));
        if (record.Count > 0) settings.Add(("complete", Show(record["complete"])));
        if (Number(record["seconds"]) is { } seconds) settings.Add(("seconds (all stages)", seconds.ToString("0.0", CultureInfo.InvariantCulture)));

        return new RunFolder
        {
            Directory = dir, Kind = "pipeline", Record = record, RecordPath = recordPath, Method = method, Map = map, Seed = seed,
            DataRoot = dataRoot, TrainSplit = trainSplit, ValSplit = valSplit,
            MapsDirectory = map is null ? null : Path.Combine(dir, "cam", "maps-" + map),
            PseudoDirectory = map is null ? null : Path.Combine(dir, "pseudo-" + map),
            CamEvalPath = map is null ? null : Path.Combine(dir, "cam", $"eval-cam-{map}.json"),
            PseudoEvalPath = map is null ? null : Path.Combine(dir, $"eval-pseudo-{map}.json"),
            Trainings = trainings, Segmenters = segmenters, Stages = stages, Metrics = metrics, Settings = settings,
        };
    }

    static RunFolder OpenDemo(string dir)
    {
        var recordPath = Path.Combine(dir, DemoRecord);
        var record = JsonFiles.ReadObject(recordPath);
        var method = Text(record["method"]) ?? "unknown method";
        var map = Text(record["map"]);
        var split = Text(record["split"]) ?? "train";
        var runsDir = Path.Combine(dir, "runs");
        var trainings = new List<ReportTraining>();
        if (System.IO.Directory.Exists(runsDir))
            trainings.AddRange(System.IO.Directory.GetDirectories(runsDir).Select(Path.GetFileName).OfType<string>()
                .OrderBy(m => m == method ? 0 : 1).ThenBy(m => m, StringComparer.Ordinal)
                .Select(m => new ReportTraining($"CAM model ({m})", Path.Combine(runsDir, m))));
        var threshold = Number(record["threshold"]);
        var builtIn = Path.Combine(dir, "data");
        var dataRoot = Text(record["data"]) ?? builtIn;                                  // absent in records written before --data
        const string DemoEnd = "not run (the demo stops at the pseudo labels; `weakseg pipeline` retrains)";
        var metrics = new List<ReportMetric>
        {
            new("cam_miou", $"CAM maps ({map}), best threshold of the sweep, {split} split", Number(record["cam_miou"]), true, WhyMissing(record, "cam_miou")),
            new("pseudo_miou", threshold is { } t ? $"pseudo labels, threshold {t.ToString("0.00", CultureInfo.InvariantCulture)}, {split} split" : "pseudo labels",
                Number(record["pseudo_miou"]), true, WhyMissing(record, "pseudo_miou")),
            new("val_miou", "val mIoU: segmenter on pseudo labels", null, true, DemoEnd),
            new("upper_bound_miou", "upper bound: segmenter on ground truth", null, true, DemoEnd),
        };
        var stageNames = new[] { "synth", "train", "cam", "sweep", "pseudo", "eval", "overlays" };
        var stageSeconds = record["stage_seconds"] as JsonObject;
        string Missing(string stage) => stage switch
        {
            "synth" when dataRoot != builtIn => "not needed: the dataset was given (--data)",
            "sweep" => WhyMissing(record, "cam_miou"),
            "eval" => WhyMissing(record, "pseudo_miou"),
            _ => ReportHtml.NotRun,
        };
        var stages = stageNames.Select(n => Number(stageSeconds?[n]) is { } s ? new ReportStage(n, "done", s, null) : new ReportStage(n, Missing(n), null, null)).ToList();
        var settings = new List<(string, string)>();
        foreach (var key in new[] { "method", "map", "scales", "flip", "split", "num_images", "threshold", "threshold_source" })
            if (record.ContainsKey(key)) settings.Add((key, Show(record[key])));
        settings.Add(("data", dataRoot));
        if (Number(record["seconds"]) is { } seconds) settings.Add(("seconds", seconds.ToString("0.0", CultureInfo.InvariantCulture)));
        return new RunFolder
        {
            Directory = dir, Kind = "demo", Record = record, RecordPath = recordPath, Method = method, Map = map,
            DataRoot = dataRoot, TrainSplit = split,
            MapsDirectory = map is null ? null : Path.Combine(dir, "cams", $"{method}-{map}"),
            PseudoDirectory = Path.Combine(dir, "pseudo"),
            CamEvalPath = Path.Combine(dir, "eval-cam.json"), PseudoEvalPath = Path.Combine(dir, "eval-pseudo.json"),
            Trainings = trainings, Stages = stages, Metrics = metrics, Settings = settings,
        };
    }
}
