using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.PseudoLabels;
using WeakSeg.IO;

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
    /// <summary>Output folder: data/, runs/METHOD/, cams/METHOD-MAP/, pseudo/, overlays/, metrics.json.</summary>
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

    /// <summary>Also train vit-cls, cam and MCTformer-V1 and compare CAM mIoU with and without affinity refinement.</summary>
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
public sealed record DemoResult(double? CamMeanIou, double Threshold, string ThresholdSource, double? PseudoMeanIou, CamSweepResult? Sweep, double Seconds,
    IReadOnlyDictionary<string, double> StageSeconds, IReadOnlyList<ComparisonRow> Comparison, string MetricsPath, string PseudoDirectory,
    IReadOnlyList<string> SkippedMetrics);

/// <summary>
/// The end-to-end demo on the built-in benchmark (or a VOC-layout folder, <see cref="DemoOptions.DataRoot"/>), weakly supervised: synth →
/// train on image labels (cpu preset) → maps of the train split → pseudo labels at the method's preset threshold (no mask opened so far)
/// → then the metrics, which read the train masks: the threshold sweep (CAM mIoU at its best threshold), the pseudo labels' mIoU,
/// overlays beside the ground truth → metrics.json. A split with images without masks skips those metrics and lists them
/// (<see cref="GroundTruthMasks"/>, as <see cref="WsssPipeline"/> does); its overlays have no ground-truth tile.
/// Each stage is skipped when its outputs exist (data marker, model-final.bin, per-image maps), and training resumes from its
/// checkpoints.
/// </summary>
public static class DemoPipeline
{
    public const string MetricsFile = "metrics.json", CompareFile = "compare.json";

    /// <summary>The split the demo trains on, maps, labels and scores.</summary>
    public const string Split = "train";
    const string DataMarker = ".weakseg-synth-complete";

    /// <summary>
    /// Scales 1, 0.5, 1.5 with flips, class-to-patch maps. The paper's final MCTformer-V2 map is the affinity-refined fused map,
    /// but for the cpu preset trained from scratch on the built-in benchmark (no ImageNet weights) the plain class-to-patch
    /// attention is much better: measured on one trained demo run, class-to-patch 31.0 % CAM mIoU (threshold 0.30) versus
    /// refined 12.8 % (threshold 0.60, the edge of the sweep); fused 11.1 % at scale 1. `weakseg cam --map` chooses any of them.
    /// </summary>
    public static LocalizationOptions DefaultLocalization => new() { MapKind = LocalizationMapKind.ClassToPatch };

    public static string DataDirectory(string outDir) => Path.Combine(outDir, "data");
    public static string PseudoDirectory(string outDir) => Path.Combine(outDir, "pseudo");
    public static string RunDirectory(string outDir, string method) => Path.Combine(outDir, "runs", method);
    public static string CamDirectory(string outDir, string method, LocalizationMapKind kind) =>
        Path.Combine(outDir, "cams", method + "-" + LocalizationMapKindNames.Name(kind));

    /// <summary>Metrics of the demo that read the train masks; metrics.json lists them under <c>metrics_reading_masks</c>.</summary>
    public static readonly IReadOnlyList<string> MaskMetrics = ["cam_miou", "cam_best_threshold", "miou_by_threshold", "per_class_iou", "pseudo_miou"];

    /// <param name="stageCompleted">Called with a stage's name after each stage (several times for repeated ones). "pseudo" comes once
    /// the pseudo labels are written and before any metric reads a mask (tests use it to show that the weak path opens no mask).</param>
    public static DemoResult Run(DemoOptions options, IStageReporter? reporter = null, CancellationToken cancellationToken = default,
        Action<string>? stageCompleted = null)
    {
        reporter ??= new SilentStageReporter();
        var total = Stopwatch.StartNew();
        var stages = new Dictionary<string, double>();
        var outDir = Path.GetFullPath(options.OutDirectory);
        // A given dataset is opened (and the options that need its masks checked) before anything is written, so a bad --data is one
        // line naming the file and leaves nothing behind.
        var given = options.DataRoot is { } root ? OpenGiven(root, options) : null;
        Directory.CreateDirectory(outDir);
        var dataDir = given is not null ? Path.TrimEndingDirectorySeparator(given.Root) : DataDirectory(outDir);
        int numClasses = given?.NumClasses ?? options.Data.NumClasses;

        T Stage<T>(string name, Func<T> work)
        {
            var clock = Stopwatch.StartNew();
            var result = work();
            stages[name] = stages.GetValueOrDefault(name) + clock.Elapsed.TotalSeconds;
            stageCompleted?.Invoke(name);
            return result;
        }

        if (given is not null) reporter.Log($"data: {dataDir}, split '{Split}' ({given.Samples.Count} images, {numClasses} classes)");
        else Stage("synth", () =>
        {
            if (File.Exists(Path.Combine(dataDir, DataMarker))) { reporter.Log($"data: {dataDir} exists, skipped"); return 0; }
            reporter.Run("synth", p => SyntheticDataset.Generate(dataDir, options.Data, p));
            File.WriteAllText(Path.Combine(dataDir, DataMarker), "complete\n");
            return 0;
        });

        // ---- the weak path: image labels → model → maps → pseudo labels; no mask is opened ----
        var methods = options.Compare ? new[] { options.Method }.Concat(options.CompareMethods.Where(m => m != options.Method)).ToList() : [options.Method];
        var scored = new List<(string Method, LocalizationMapKind Kind, string CamDir)>();
        foreach (var method in methods)
        {
            var runDir = RunDirectory(outDir, method);
            Stage("train", () => Train(options, method, dataDir, runDir, reporter, cancellationToken));
            var maps = MethodRegistry.Get(method).Maps;
            if (method == options.Method) maps.Require(options.Localization.MapKind, method);
            // --compare scores every map the method has; otherwise only the demo's map.
            var kinds = options.Compare ? maps.Supported : [options.Localization.MapKind];
            foreach (var kind in kinds)
            {
                var camDir = CamDirectory(outDir, method, kind);
                Stage("cam", () => reporter.Run($"maps {method} {LocalizationMapKindNames.Name(kind)}", p => CamPipeline.Run(new CamRequest
                {
                    RunDirectory = runDir, OutDirectory = camDir, Split = Split, DataRoot = dataDir,
                    Localization = options.Localization with { MapKind = kind }, Threads = options.Threads,
                }, p, cancellationToken)));
                scored.Add((method, kind, camDir));
            }
        }
        var mainCams = CamDirectory(outDir, options.Method, options.Localization.MapKind);
        CamSweepResult Sweep(string method, LocalizationMapKind kind, string camDir) => Stage("sweep", () => reporter.Run(
            $"sweep {method} {LocalizationMapKindNames.Name(kind)} (reads masks)", p => CamThresholdSweep.Evaluate(camDir, dataDir, Split, new CamSweepOptions(), p)));
        CamSweepResult? mainSweep = null;
        var (threshold, thresholdSource) = WsssPipeline.ChooseThreshold(options.PseudoThreshold, options.OracleThreshold,
            () => (mainSweep = Sweep(options.Method, options.Localization.MapKind, mainCams)).BestThreshold,
            RunConfig.Load(RunDirectory(outDir, options.Method)).Recipe.ModelConfig);
        reporter.Log($"pseudo-label threshold {threshold.ToString("0.00", CultureInfo.InvariantCulture)} ({thresholdSource})");
        var pseudoDir = PseudoDirectory(outDir);
        Stage("pseudo", () => reporter.Run("pseudo labels", p => PseudoLabelWriter.Run(mainCams, pseudoDir,
            new PseudoLabelConfig { Threshold = (float)threshold, Overwrite = true }, p)));

        // ---- metrics, which read the train masks: only when every image has one ----
        var trainSet = VocDataset.Open(dataDir, Split);
        bool masks = GroundTruthMasks.Complete(trainSet);
        var skipped = new List<string>();
        var comparison = new List<ComparisonRow>();
        SegmentationEvaluation? evaluation = null;
        if (masks)
        {
            foreach (var (method, kind, camDir) in scored)
            {
                bool main = method == options.Method && kind == options.Localization.MapKind;
                var sweep = main && mainSweep is not null ? mainSweep : Sweep(method, kind, camDir);
                comparison.Add(new ComparisonRow(method, kind, sweep.BestMeanIou, sweep.BestThreshold));
                if (main) mainSweep = sweep;
            }
            EvaluationJson.Write(Path.Combine(outDir, "eval-cam.json"), mainSweep!, Split);
            evaluation = Stage("eval", () => reporter.Run("evaluate pseudo labels (reads masks)", p => SegmentationEvaluator.EvaluateDirectory(pseudoDir, dataDir, Split, null, p)));
            EvaluationJson.Write(Path.Combine(outDir, "eval-pseudo.json"), evaluation);
        }
        else
        {
            skipped.Add(GroundTruthMasks.SkippedLine(string.Join(", ", MaskMetrics.SkipLast(1)) + " and " + MaskMetrics[^1], Split,
                " (the pseudo labels are written; the overlays have no ground-truth tile)"));
            foreach (var line in skipped) reporter.Log("skipped " + line);
            foreach (var stale in new[] { "eval-cam.json", "eval-pseudo.json" }) File.Delete(Path.Combine(outDir, stale));   // of an earlier run
        }
        Stage("overlays", () => { WriteOverlays(outDir, trainSet, mainCams, pseudoDir, options.Overlays, masks); return 0; });

        var seconds = total.Elapsed.TotalSeconds;
        var metricsPath = Path.Combine(outDir, MetricsFile);
        WriteMetrics(metricsPath, options, dataDir, trainSet.Samples.Count, threshold, thresholdSource, mainSweep, evaluation, skipped, seconds, stages, comparison);
        if (options.Compare && masks) WriteComparison(Path.Combine(outDir, CompareFile), comparison);
        WeakSeg.Visualization.RunReport.Write(outDir);
        return new DemoResult(mainSweep?.BestMeanIou, threshold, thresholdSource, evaluation?.Metrics.MeanIou, mainSweep, seconds, stages,
            options.Compare ? comparison : [], metricsPath, pseudoDir, skipped);
    }

    /// <summary>Opens the split of a given dataset and refuses the options that need its masks when some image has none.</summary>
    static VocDataset OpenGiven(string root, DemoOptions options)
    {
        var dataset = VocDataset.Open(root, Split);
        if (options.OracleThreshold && options.PseudoThreshold is null) GroundTruthMasks.Require(dataset, "--oracle-threshold");
        if (options.Compare) GroundTruthMasks.Require(dataset, "--compare (a table of CAM mIoU)");
        return dataset;
    }

    static int Train(DemoOptions options, string method, string dataDir, string runDir, IStageReporter reporter, CancellationToken token)
    {
        // A run trained on other data is not reused for this data (its maps would be of another dataset).
        var run = new Training.RunDirectory(runDir);
        if (run.HasConfig && Path.TrimEndingDirectorySeparator(run.ReadConfig<RunConfig>().DataRoot) is var trainedOn && trainedOn != dataDir)
            throw WeakSegException.ForFile(run.ConfigPath, $"this demo folder was trained on {trainedOn}, not {dataDir}; use a new --out, or delete the folder to retrain");
        if (run.IsFinished) { reporter.Log($"train {method}: {runDir} is finished, skipped"); return 0; }
        var recipe = TrainRecipe.Preset(method, MethodPreset.Cpu);                  // K comes from the data (TrainPipeline)
        var trainer = recipe.Trainer with { Seed = options.Seed, Threads = options.Threads };
        if (options.BatchSize is { } batch) trainer = trainer with { BatchSize = batch };
        if (options.Steps is { } steps) trainer = trainer with { Steps = steps, WarmupSteps = Math.Min(trainer.WarmupSteps, steps / 10) };
        bool resume = run.HasCheckpoint;
        var outcome = reporter.Run($"train {method}", p => TrainPipeline.Run(new TrainRequest
        {
            DataRoot = dataDir, Split = Split, RunDirectory = runDir, Recipe = recipe with { Trainer = trainer },
            Preset = "cpu", Resume = resume, Workers = options.Workers,
        }, reporter.Log, p, token));
        if (!outcome.Result.Completed) throw new OperationCanceledException("training was interrupted; run the demo again to resume");
        return 0;
    }

    static void WriteOverlays(string outDir, VocDataset dataset, string camDir, string pseudoDir, int count, bool masks)
    {
        if (count <= 0) return;
        var overlayDir = Path.Combine(outDir, "overlays");
        Directory.CreateDirectory(overlayDir);
        var names = dataset.ClassNames.All;
        for (int i = 0; i < Math.Min(count, dataset.Samples.Count); i++)
        {
            var sample = dataset.Samples[i];
            var maps = CamMapFile.Read(camDir, sample.Name);
            var pseudoPath = Path.Combine(pseudoDir, sample.Name + ".png");
            var pseudo = File.Exists(pseudoPath) ? LabelPng.Read(pseudoPath) : null;
            var gt = masks ? dataset.LoadMask(i) : null;
            SaveOverlayPanel(Path.Combine(overlayDir, sample.Name + ".png"), dataset.LoadImage(i), maps, names, pseudo, gt);
        }
    }

    /// <summary>Overlay panel: image | per-class heat maps | pseudo label | ground truth.</summary>
    static void SaveOverlayPanel(string path, RgbImage image, CamMaps maps, IReadOnlyList<string> classNames, LabelMap? pseudo, LabelMap? groundTruth) =>
        WeakSeg.Visualization.OverlayRenderer.SavePanel(path, image, maps, classNames, pseudo, groundTruth);

    static void WriteMetrics(string path, DemoOptions options, string dataDir, int numImages, double threshold, string thresholdSource, CamSweepResult? sweep,
        SegmentationEvaluation? pseudo, IReadOnlyList<string> skipped, double seconds, IReadOnlyDictionary<string, double> stages,
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
            ["pseudo_miou"] = pseudo is null ? null : Num(pseudo.Metrics.MeanIou),
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
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Seconds as text for logs.</summary>
    public static string FormatSeconds(double s) => s.ToString("F1", CultureInfo.InvariantCulture);
}
