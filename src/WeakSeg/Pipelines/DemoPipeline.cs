using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.IO;
using WeakSeg.Pipelines.Stages;

namespace WeakSeg.Pipelines;

/// <summary>Runs the stages of a pipeline with progress and a log (the CLI shows bars; the default runs silently).</summary>
public interface IStageReporter
{
    T Run<T>(string title, Func<IProgress<ProgressUpdate>?, T> work);
    void Log(string line);
}

/// <summary>Runs stages without progress output; log lines go to an optional callback.</summary>
public sealed class SilentStageReporter(Action<string>? log = null) : IStageReporter
{
    public T Run<T>(string title, Func<IProgress<ProgressUpdate>?, T> work) => work(null);
    public void Log(string line) => log?.Invoke(line);
}

/// <summary>Settings of <see cref="DemoPipeline"/>.</summary>
public sealed record DemoOptions
{
    /// <summary>Output folder: stages/ (the ledger), data/, runs/METHOD/, cams/METHOD-MAP/, pseudo/, overlays/, report.json, metrics.json.</summary>
    public string OutDirectory { get; init; } = Path.Combine("runs", "demo");

    /// <summary>A dataset root in VOC layout whose split <see cref="DemoPipeline.Split"/> the demo runs on (image labels from labels.txt, else
    /// from the masks); null = generate the built-in benchmark (<see cref="Data"/>) into OUT/data. Without a mask for every image, the
    /// metrics that read masks are skipped (<see cref="GroundTruthMasks"/>).</summary>
    public string? DataRoot { get; init; }

    /// <summary>The built-in benchmark (generator defaults: 400 train + 100 val, 96×96, 10 classes).</summary>
    public SyntheticDatasetConfig Data { get; init; } = new();

    /// <summary>Method whose maps become the pseudo labels.</summary>
    public string Method { get; init; } = BuiltInMethods.DemoMethod;

    /// <summary>Training steps; null = the cpu preset's.</summary>
    public long? Steps { get; init; }

    /// <summary>Images per step; null = the cpu preset's.</summary>
    public int? BatchSize { get; init; }

    public long Seed { get; init; }
    public int Threads { get; init; }
    public int Workers { get; init; } = 2;

    /// <summary>Map inference for the demo (see <see cref="DemoPipeline.DefaultLocalization"/>).</summary>
    public LocalizationOptions Localization { get; init; } = DemoPipeline.DefaultLocalization;

    /// <summary>Overlay panels written for the first N train images.</summary>
    public int Overlays { get; init; } = 8;

    /// <summary>Also train the methods of <see cref="CompareMethods"/> (MCTformer-V1, MCTformer-V2, vit-cls, cam) and compare CAM mIoU with and without affinity refinement.</summary>
    public bool Compare { get; init; }

    /// <summary>Methods of the comparison.</summary>
    public IReadOnlyList<string> CompareMethods { get; init; } = BuiltInMethods.Compared;

    /// <summary>Background threshold of the pseudo labels; null = the method's preset value (<see cref="IMethodConfig.PseudoLabelThreshold"/>),
    /// or the sweep's best with <see cref="OracleThreshold"/>.</summary>
    public double? PseudoThreshold { get; init; }

    /// <summary>Take the pseudo-label threshold from the sweep on the train masks (pixel labels then shape the labels; metrics.json
    /// says so), as <see cref="WsssPipelineOptions.OracleThreshold"/>.</summary>
    public bool OracleThreshold { get; init; }
}

/// <summary>One row of the comparison: best-threshold CAM mIoU of a method's maps.</summary>
public sealed record ComparisonRow(string Method, LocalizationMapKind Map, double MeanIou, double Threshold);

/// <param name="CamMeanIou">The sweep's best CAM mIoU (a metric that reads the train masks), at <c>Sweep.BestThreshold</c>; null when skipped.</param>
/// <param name="Threshold">The pseudo labels' threshold, from <paramref name="ThresholdSource"/> ("preset: …", "given: …" or "oracle: …").</param>
/// <param name="PseudoMeanIou">mIoU of the pseudo labels against the train masks (a metric); null when skipped.</param>
/// <param name="Sweep">The threshold sweep of the demo's maps; null when skipped.</param>
/// <param name="SkippedMetrics">Metrics not computed, each "METRICS: why" (the dataset has images without masks); empty when all ran.</param>
/// <param name="ReportPath">report.json, with the fields of the pipeline's report (<see cref="WsssPipeline.ReportFile"/>).</param>
public sealed record DemoResult(double? CamMeanIou, double Threshold, string ThresholdSource, double? PseudoMeanIou, CamSweepResult? Sweep, double Seconds,
    IReadOnlyDictionary<string, double> StageSeconds, IReadOnlyList<ComparisonRow> Comparison, string MetricsPath, string PseudoDirectory,
    IReadOnlyList<string> SkippedMetrics, string ReportPath);

/// <summary>
/// The end-to-end demo on the built-in benchmark (or a VOC-layout folder, <see cref="DemoOptions.DataRoot"/>), weakly supervised: a
/// recipe of the pipeline's stage engine (<see cref="StageRunner"/>, the same stages, ledger and report.json as <see cref="WsssPipeline"/>)
/// that stops after the pseudo labels and adds overlays: synth → train on image labels (cpu preset) → maps of the train split → pseudo
/// labels at the method's preset threshold (no mask opened so far) → then the metrics, which read the train masks: the threshold sweep
/// (CAM mIoU at its best threshold), the pseudo labels' mIoU, overlays beside the ground truth → report.json (the pipeline's fields),
/// metrics.json (the demo's per-class table and comparison). A split with images without masks skips those metrics and lists them
/// (<see cref="GroundTruthMasks"/>); its overlays have no ground-truth tile. Resumable as the pipeline: OUT/stages/NAME.json records each
/// stage with its settings; a finished stage is reused, an unfinished one continues (training from its checkpoints, maps and labels
/// already written), a stage recorded with other settings (another dataset, other steps) is refused naming its record.
/// </summary>
public static class DemoPipeline
{
    public const string MetricsFile = "metrics.json", CompareFile = "compare.json";

    /// <summary>The split the demo trains on, maps, labels and scores.</summary>
    public const string Split = "train";

    /// <summary>The demo's own stages besides the pipeline's: the pseudo labels' score (the pipeline scores them inside its pseudo stage;
    /// the demo scores them after the weak path) and the overlay panels.</summary>
    public const string PseudoEvalStagePrefix = "pseudo-eval-", OverlaysStageName = "overlays";

    /// <summary>
    /// Scales 1, 0.5, 1.5 with flips, the cpu preset's map of <see cref="BuiltInMethods.DemoMethod"/> (MCTformer+: the fused map
    /// √(class-to-patch ⊙ PatchCAM) on the frozen ImageNet ResNet-18 stem). The paper's final map is the affinity-refined one, but on the
    /// built-in benchmark the refinement lowers every map (README "From scratch vs the pretrained stem"): fused 62.1 % CAM mIoU, PatchCAM
    /// 62.0 %, class-to-patch 43.5 %, refined 10.3 % (seed 0, one thread). `weakseg cam --map` chooses any of them. A demo of another
    /// method (<see cref="DemoOptions.Method"/>) sets its map here too.
    /// </summary>
    public static LocalizationOptions DefaultLocalization => new() { MapKind = MethodRegistry.Get(BuiltInMethods.DemoMethod).Maps.CpuDefault };

    public static string DataDirectory(string outDir) => Path.Combine(outDir, "data");
    public static string PseudoDirectory(string outDir) => Path.Combine(outDir, "pseudo");
    public static string RunDirectory(string outDir, string method) => Path.Combine(outDir, "runs", method);
    public static string CamDirectory(string outDir, string method, LocalizationMapKind kind) =>
        Path.Combine(outDir, "cams", method + "-" + LocalizationMapKindNames.Name(kind));

    /// <summary>Metrics of the demo that read the train masks; metrics.json lists them under <c>metrics_reading_masks</c>.</summary>
    public static readonly IReadOnlyList<string> MaskMetrics = ["cam_miou", "cam_best_threshold", "miou_by_threshold", "per_class_iou", "pseudo_miou"];

    /// <param name="stageCompleted">Called with a stage's short name (<see cref="StageKey"/>) after each stage that ran (not for reused ones).
    /// "pseudo" comes once the pseudo labels are written and before any metric reads a mask (tests use it to show that the weak path opens
    /// no mask).</param>
    public static DemoResult Run(DemoOptions options, IStageReporter? reporter = null, CancellationToken cancellationToken = default,
        Action<string>? stageCompleted = null)
    {
        reporter ??= new SilentStageReporter();
        var total = Stopwatch.StartNew();
        var outDir = Path.GetFullPath(options.OutDirectory);
        // A given dataset is opened (and the options that need its masks checked) before anything is written, so a bad --data is one
        // line naming the file and leaves nothing behind.
        var given = options.DataRoot is { } root ? OpenGiven(root, options) : null;
        Directory.CreateDirectory(outDir);
        using var folderLock = FolderLock.Acquire(outDir, "demo output folder");
        var runner = new StageRunner(new StageLedger(Path.Combine(outDir, "stages")), new StageContext
        {
            Reporter = reporter, CancellationToken = cancellationToken, Threads = options.Threads, Workers = options.Workers,
        }, stageCompleted is null ? null : name => stageCompleted(StageKey(name)));
        var (dataDir, dataSettings) = WsssPipeline.OpenData(given is null ? null : Path.TrimEndingDirectorySeparator(given.Root), outDir, options.Data, runner);
        if (given is not null) reporter.Log($"data: {dataDir}, split '{Split}' ({given.Samples.Count} images, {given.NumClasses} classes)");
        var imageLabels = VocDataset.Open(dataDir, Split);                                // the split the models train on: K of every recipe

        // ---- the weak path: image labels → model → maps → pseudo labels; no mask is opened ----
        var methods = options.Compare ? new[] { options.Method }.Concat(options.CompareMethods.Where(m => m != options.Method)).ToList() : [options.Method];
        var mapped = new List<(string Method, LocalizationMapKind Kind, MapsStage Maps)>();
        TrainRecipe? mainRecipe = null;
        foreach (var method in methods)
        {
            bool main = method == options.Method;
            var recipe = Recipe(options, method, imageLabels);
            mainRecipe ??= recipe;
            var runDir = RunDirectory(outDir, method);
            var train = new CamTrainStage(main ? CamTrainStage.DefaultName : CamTrainStage.DefaultName + "-" + method,
                WsssPipeline.CamTrainSettings(dataSettings, Split, options.Seed, recipe, null),
                new TrainRequest { DataRoot = dataDir, Split = Split, RunDirectory = runDir, Recipe = recipe, Preset = "cpu" });
            runner.Run(train);
            var maps = MethodRegistry.Get(method).Maps;
            if (main) maps.Require(options.Localization.MapKind, method);
            // --compare scores every map the method has; otherwise only the demo's map.
            foreach (var kind in options.Compare ? maps.Supported : [options.Localization.MapKind])
            {
                var localization = options.Localization with { MapKind = kind };
                var map = LocalizationMapKindNames.Name(kind);
                var stage = new MapsStage(main && kind == options.Localization.MapKind ? "maps-" + map : $"maps-{method}-{map}",
                    new MapsSettings(train.Settings, map, localization.Scales, localization.Flip), new CamRequest
                    {
                        RunDirectory = runDir, OutDirectory = CamDirectory(outDir, method, kind), Split = Split, DataRoot = dataDir, Localization = localization,
                    });
                runner.Run(stage);
                mapped.Add((method, kind, stage));
            }
        }
        var mainMaps = mapped.First(m => m.Method == options.Method && m.Kind == options.Localization.MapKind).Maps;
        var mainSweep = Sweep(mainMaps, "cam-eval-" + mainMaps.Settings.Map, Path.Combine(outDir, "eval-cam.json"));
        SweepResults? mainSwept = null;
        var (threshold, thresholdSource) = WsssPipeline.ChooseThreshold(options.PseudoThreshold, options.OracleThreshold,
            () => (mainSwept = runner.Run(mainSweep)).Threshold, mainRecipe!.ModelConfig);
        reporter.Log($"pseudo-label threshold {threshold.ToString("0.00", CultureInfo.InvariantCulture)} ({thresholdSource})");
        var pseudoDir = PseudoDirectory(outDir);
        var pseudoSettings = new PseudoSettings(mainMaps.Settings, threshold, thresholdSource.Split(':')[0], mainSwept is null ? null : mainSweep.Settings);
        runner.Run(new PseudoStage(pseudoSettings, mainMaps.Request.OutDirectory, pseudoDir, dataDir, Split, Score: false, EvaluationPath: ""));

        // ---- metrics, which read the train masks: only when every image has one ----
        var trainSet = VocDataset.Open(dataDir, Split);                                   // again: the masks are on disk from here on
        bool masks = GroundTruthMasks.Complete(trainSet);
        var runSection = WsssPipeline.RunSection(MethodPreset.Cpu, TrainRecipe.Preset(options.Method, MethodPreset.Cpu).For(trainSet), options.Seed, options.Threads, "cpu");
        WsssPipeline.AddTrainer(runSection, mainRecipe);
        var report = new PipelineReportState(options.Method, Path.Combine(outDir, WsssPipeline.ReportFile), runSection, runner)
        {
            Map = options.Localization.MapKind, Threshold = threshold, ThresholdSource = thresholdSource,
        };
        var comparison = new List<ComparisonRow>();
        CamSweepResult? mainDetails = null;
        double? pseudoMeanIou = null;
        if (masks)
        {
            foreach (var (method, kind, maps) in mapped)
            {
                bool main = method == options.Method && kind == options.Localization.MapKind;
                var stage = main ? mainSweep : Sweep(maps, $"cam-eval-{method}-{maps.Settings.Map}", Path.Combine(outDir, "cams", $"eval-cam-{method}-{maps.Settings.Map}.json"));
                var swept = main && mainSwept is not null ? mainSwept : runner.Run(stage);
                if (main) mainSwept = swept;
                comparison.Add(new ComparisonRow(method, kind, swept.MeanIou ?? double.NaN, swept.Threshold));
            }
            // the per-class table of metrics.json: the sweep's details, recomputed when its stage was reused
            mainDetails = mainSweep.Details ?? CamThresholdSweep.Evaluate(mainMaps.Request.OutDirectory, dataDir, Split, new CamSweepOptions { Thresholds = mainSweep.Settings.Thresholds });
            var scored = runner.Run(new LabelScoreStage(PseudoEvalStagePrefix + mainMaps.Settings.Map, new LabelScoreSettings(pseudoSettings, Split), pseudoDir, dataDir,
                Path.Combine(outDir, "eval-pseudo.json")));
            pseudoMeanIou = scored.MeanIou;
            report.CamMeanIou = mainSwept!.MeanIou ?? double.NaN;
            report.ArtifactRate = mainSwept.ArtifactRate;
            report.PseudoMeanIou = scored.MeanIou;
        }
        else
        {
            report.Skip(GroundTruthMasks.SkippedLine(string.Join(", ", MaskMetrics.SkipLast(1)) + " and " + MaskMetrics[^1], Split,
                " (the pseudo labels are written; the overlays have no ground-truth tile)"));
            foreach (var line in report.Skipped) reporter.Log("skipped " + line);
            foreach (var stale in new[] { "eval-cam.json", "eval-pseudo.json" }) File.Delete(Path.Combine(outDir, stale));   // of an earlier run
        }
        runner.Run(new OverlaysStage(new OverlaySettings(pseudoSettings, options.Overlays, masks), trainSet, mainMaps.Request.OutDirectory, pseudoDir,
            Path.Combine(outDir, "overlays")));
        var result = report.Finish();

        var seconds = total.Elapsed.TotalSeconds;
        var metricsPath = Path.Combine(outDir, MetricsFile);
        var stageSeconds = runner.Stages.GroupBy(s => StageKey(s.Name)).ToDictionary(g => g.Key, g => g.Sum(s => s.Seconds));
        WriteMetrics(metricsPath, options, dataDir, trainSet.Samples.Count, threshold, thresholdSource, mainDetails, pseudoMeanIou, report.Skipped, seconds,
            stageSeconds, comparison);
        if (options.Compare && masks) WriteComparison(Path.Combine(outDir, CompareFile), comparison);
        WeakSeg.Visualization.RunReport.Write(outDir);
        return new DemoResult(mainDetails?.BestMeanIou, threshold, thresholdSource, pseudoMeanIou, mainDetails, seconds, stageSeconds,
            options.Compare ? comparison : [], metricsPath, pseudoDir, report.Skipped.ToList(), result.ReportPath);

        SweepStage Sweep(MapsStage maps, string name, string evaluationPath) =>
            new(name, new SweepSettings(maps.Settings, new CamSweepOptions().Thresholds), maps.Request.OutDirectory, dataDir, Split, evaluationPath);
    }

    /// <summary>The demo's short name of a stage in metrics.json's <c>stage_seconds</c> and for <c>stageCompleted</c> (the compared methods'
    /// stages add up under the same name): synth, train, cam, pseudo, sweep, eval, overlays.</summary>
    public static string StageKey(string stage) =>
        stage == SynthStage.StageName ? "synth"
        : stage.StartsWith(CamTrainStage.DefaultName, StringComparison.Ordinal) ? "train"
        : stage.StartsWith("maps-", StringComparison.Ordinal) ? "cam"
        : stage.StartsWith("cam-eval-", StringComparison.Ordinal) ? "sweep"
        : stage.StartsWith(PseudoEvalStagePrefix, StringComparison.Ordinal) ? "eval"
        : stage.StartsWith("pseudo-", StringComparison.Ordinal) ? "pseudo"
        : stage;

    /// <summary>Opens the split of a given dataset and refuses the options that need its masks when some image has none.</summary>
    static VocDataset OpenGiven(string root, DemoOptions options)
    {
        var dataset = VocDataset.Open(root, Split);
        if (options.OracleThreshold && options.PseudoThreshold is null) GroundTruthMasks.Require(dataset, "--oracle-threshold");
        if (options.Compare) GroundTruthMasks.Require(dataset, "--compare (a table of CAM mIoU)");
        return dataset;
    }

    /// <summary>The cpu preset's recipe of <paramref name="method"/> with the demo's seed, threads, steps and batch size.</summary>
    static TrainRecipe Recipe(DemoOptions options, string method, VocDataset trainSet)
    {
        var recipe = TrainRecipe.Preset(method, MethodPreset.Cpu).For(trainSet);
        var trainer = recipe.Trainer with { Seed = options.Seed, Threads = options.Threads };
        if (options.BatchSize is { } batch) trainer = trainer with { BatchSize = batch };
        if (options.Steps is { } steps) trainer = trainer.WithSteps(steps);
        return recipe with { Trainer = trainer };
    }

    static void WriteMetrics(string path, DemoOptions options, string dataDir, int numImages, double threshold, string thresholdSource, CamSweepResult? sweep,
        double? pseudoMeanIou, IReadOnlyList<string> skipped, double seconds, IReadOnlyDictionary<string, double> stages,
        IReadOnlyList<ComparisonRow> comparison)
    {
        JsonObject? perClass = null;
        if (sweep is not null)
        {
            perClass = new JsonObject();
            for (int c = 0; c < sweep.Best.NumClasses; c++) perClass[sweep.ClassNames[c]] = Num(sweep.Best.Iou[c]);
        }
        var stageJson = new JsonObject();
        foreach (var (k, v) in stages) stageJson[k] = Math.Round(v, 3);
        var json = new JsonObject
        {
            ["method"] = options.Method,
            ["map"] = LocalizationMapKindNames.Name(options.Localization.MapKind),
            ["scales"] = new JsonArray(options.Localization.Scales.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
            ["flip"] = options.Localization.Flip,
            ["data"] = dataDir,
            ["split"] = Split,
            ["num_images"] = sweep?.NumImages ?? numImages,
            ["threshold"] = threshold,
            ["threshold_source"] = thresholdSource,
            ["cam_miou"] = sweep is null ? null : Num(sweep.BestMeanIou),
            ["cam_best_threshold"] = sweep?.BestThreshold,
            ["pseudo_miou"] = pseudoMeanIou is { } p ? Num(p) : null,
            ["metrics_reading_masks"] = new JsonArray(MaskMetrics.Select(m => (JsonNode?)JsonValue.Create(m)).ToArray()),
            [GroundTruthMasks.SkippedMetricsKey] = new JsonArray(skipped.Select(m => (JsonNode?)JsonValue.Create(m)).ToArray()),
            ["seconds"] = Math.Round(seconds, 3),
            ["stage_seconds"] = stageJson,
            ["per_class_iou"] = perClass,
            ["miou_by_threshold"] = sweep is null ? null : EvaluationJson.MeanIouByThreshold(sweep),
        };
        if (comparison.Count > 0 && options.Compare) json["comparison"] = ComparisonJson(comparison);
        WriteJson(path, json);
    }

    static JsonArray ComparisonJson(IReadOnlyList<ComparisonRow> rows) => new(rows.Select(r => (JsonNode?)new JsonObject
    {
        ["method"] = r.Method, ["map"] = LocalizationMapKindNames.Name(r.Map), ["miou"] = Num(r.MeanIou), ["threshold"] = r.Threshold,
    }).ToArray());

    static void WriteComparison(string path, IReadOnlyList<ComparisonRow> rows) => WriteJson(path, new JsonObject { ["rows"] = ComparisonJson(rows) });

    static JsonNode? Num(double v) => EvaluationJson.NumberOrNull(v);

    static void WriteJson(string path, JsonObject json)
    {
        AtomicFile.WriteAllText(path, IO.WeakSegJson.Text(json) + "\n");
    }

    /// <summary>Seconds as text for logs.</summary>
    public static string FormatSeconds(double s) => s.ToString("F1", CultureInfo.InvariantCulture);
}
