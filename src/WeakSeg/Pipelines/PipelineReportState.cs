using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.Pipelines.Stages;

namespace WeakSeg.Pipelines;

/// <summary>report.json of a run of the stage engine (<c>pipeline</c>, <c>demo</c>) as it grows; written atomically after every stage.</summary>
internal sealed class PipelineReportState(string method, string path, JsonObject run, StageRunner runner)
{
    /// <summary>False on MPI ranks other than 0: they keep the report in memory only.</summary>
    public bool WritesFiles { get; init; } = true;
    readonly Stopwatch _wall = Stopwatch.StartNew();
    public LocalizationMapKind Map { get; set; }
    public double CamMeanIou { get; set; } = double.NaN;

    /// <summary>The maps' artifact rate on the train masks (<see cref="MapArtifactRate"/>); null when not scored.</summary>
    public double? ArtifactRate { get; set; }
    public double Threshold { get; set; } = double.NaN;
    /// <summary>Where the pseudo-label threshold came from: "preset", "given" or "oracle" (with a reason after a colon).</summary>
    public string ThresholdSource { get; set; } = "";
    readonly List<string> _skipped = new();
    /// <summary>Metrics not computed, each with why.</summary>
    public IReadOnlyList<string> Skipped => _skipped;
    public void Skip(string what) => _skipped.Add(what);
    public double? PseudoMeanIou { get; set; }
    public double? ValMeanIou { get; set; }
    public Dictionary<string, double> ValByDecoder { get; } = new();
    public double? UpperBoundMeanIou { get; set; }
    /// <summary>Per label-updating round: cam_miou, pseudo_miou (its new labels), val_miou (the method's own segmentation); null with one round.</summary>
    public JsonArray? Rounds { get; set; }
    IReadOnlyList<PipelineStage> Stages => runner.Stages;
    IReadOnlyDictionary<string, JsonNode?> ComputedWith => runner.ComputedWith;

    /// <summary>The run section: threads and device are those that computed the results when every stage agrees; otherwise
    /// null, with the values per stage. This invocation's own values are kept apart.</summary>
    JsonObject RunSection()
    {
        var json = run.DeepClone().AsObject();
        json["threads_this_invocation"] = json["threads"]?.DeepClone();
        json["device_this_invocation"] = json["device"]?.DeepClone();
        foreach (var key in new[] { "threads", "device" })
        {
            var values = ComputedWith.Values.Select(c => c?[key]?.ToJsonString()).Distinct().ToList();
            if (values.Count == 1 && values[0] is not null) json[key] = ComputedWith.Values.First()![key]!.DeepClone();
            else if (values.Count > 1 || values.Any(v => v is null))
            {
                json[key] = null;
                var byStage = new JsonObject();
                foreach (var (stage, c) in ComputedWith) byStage[stage] = c?[key]?.DeepClone();
                json[key + "_by_stage"] = byStage;
            }
        }
        return json;
    }

    WsssPipelineReport Snapshot() => new(method, Map, CamMeanIou, Threshold, PseudoMeanIou, ValMeanIou, ValByDecoder, UpperBoundMeanIou,
        Stages.Sum(s => s.Seconds), Stages, path);

    public WsssPipelineReport Finish()
    {
        Write(complete: true);
        return Snapshot();
    }

    public void Write(bool complete = false)
    {
        if (!WritesFiles) return;
        var r = Snapshot();
        var stageJson = new JsonObject();
        foreach (var s in r.Stages) stageJson[s.Name] = Math.Round(s.Seconds, 3);
        var byDecoder = new JsonObject();
        foreach (var (k, miou) in r.ValMeanIouByDecoder) byDecoder[k] = Num(miou);
        var json = new JsonObject
        {
            ["format_version"] = 1,
            ["method"] = r.Method,
            ["run"] = RunSection(),
            ["map"] = LocalizationMapKindNames.Name(r.Map),
            ["cam_miou"] = Num(r.CamMeanIou),
            ["artifact_rate"] = ArtifactRate is { } artifactRate ? Num(artifactRate) : null,
            ["threshold"] = double.IsNaN(r.Threshold) ? null : r.Threshold,
            ["threshold_source"] = ThresholdSource.Length == 0 ? null : ThresholdSource,
            [GroundTruthMasks.SkippedMetricsKey] = new JsonArray(Skipped.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
            ["pseudo_miou"] = r.PseudoMeanIou is { } p ? Num(p) : null,
            ["val_miou"] = r.ValMeanIou is { } v ? Num(v) : null,
            ["val_miou_by_decoder"] = byDecoder,
            ["upper_bound_miou"] = r.UpperBoundMeanIou is { } u ? Num(u) : null,
            ["weak_full_ratio"] = r.WeakFullRatio,
            ["seconds"] = Math.Round(r.Seconds, 3),
            ["stage_seconds"] = stageJson,
            ["reused_stages"] = new JsonArray(r.Stages.Where(s => s.Reused).Select(s => (JsonNode?)JsonValue.Create(s.Name)).ToArray()),
            ["wall_seconds_this_invocation"] = Math.Round(_wall.Elapsed.TotalSeconds, 3),
            ["complete"] = complete,
        };
        if (Rounds is not null) json["rounds"] = Rounds.DeepClone();
        AtomicFile.WriteAllText(path, IO.WeakSegJson.Text(json) + "\n");
    }

    static JsonNode? Num(double v) => EvaluationJson.NumberOrNull(v);
}
