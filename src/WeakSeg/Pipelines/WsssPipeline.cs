using TorchSharp;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.PseudoLabels;
using WeakSeg.Refinement;
using WeakSeg.Runtime;
using WeakSeg.Segmentation;

namespace WeakSeg.Pipelines;

/// <summary>Where <see cref="WsssPipeline"/> stops.</summary>
public enum PipelineEnd
{
    /// <summary>After the maps and their threshold sweep (cam_miou).</summary>
    Cam,
    /// <summary>After the pseudo labels and their evaluation (pseudo_miou).</summary>
    Pseudo,
    /// <summary>The whole pipeline: retraining, val mIoU, upper bound.</summary>
    Segmentation,
}

/// <summary>Settings of <see cref="WsssPipeline"/>.</summary>
public sealed record WsssPipelineOptions
{
    /// <summary>Output folder: stages/, cam/run, cam/maps-MAP, pseudo-MAP/, seg/MAP-DECODER/, seg/upper-bound/, report.json (and data/ for the
    /// built-in benchmark). Several maps and decoders can share one folder: the CAM model and the upper bound are trained once.</summary>
    public required string OutDirectory { get; init; }

    /// <summary>Dataset root in VOC layout; null = generate the built-in benchmark (<see cref="Synthetic"/>) into OUT/data.</summary>
    public string? DataRoot { get; init; }

    public SyntheticDatasetConfig Synthetic { get; init; } = new();

    /// <summary>Split whose image labels train the CAM model and whose pseudo labels train the segmenter (its masks score cam_miou and pseudo_miou).</summary>
    public string TrainSplit { get; init; } = "train";

    /// <summary>Split scored by val_miou and upper_bound_miou.</summary>
    public string ValSplit { get; init; } = "val";

    /// <summary>Recipe of the CAM stage (method, model, trainer, augmentation); its class count becomes the dataset's.</summary>
    public required TrainRecipe CamRecipe { get; init; }

    /// <summary>Map inference; null MapKind is resolved by the method's <see cref="MethodMaps.DefaultFor"/>.</summary>
    public LocalizationOptions Localization { get; init; } = new();

    /// <summary>Map kind; null = the method's default for <see cref="Preset"/> (<see cref="MethodMaps.DefaultFor"/>).</summary>
    public LocalizationMapKind? MapKind { get; init; }

    /// <summary>The preset the recipes come from; decides the default map (see <see cref="MethodMaps.DefaultFor"/>).</summary>
    public MethodPreset Preset { get; init; } = MethodPreset.Cpu;

    /// <summary>Background thresholds swept on the train split's masks (cam_miou = the best), when the split has masks.</summary>
    public IReadOnlyList<double> Thresholds { get; init; } = CamThresholdSweep.Range(0.0, 0.95, 0.05);

    /// <summary>Background threshold of the pseudo labels; null = the method's preset value (<see cref="IMethodConfig.PseudoLabelThreshold"/>),
    /// or the sweep's best with <see cref="OracleThreshold"/>.</summary>
    public double? PseudoThreshold { get; init; }

    /// <summary>Take the pseudo-label threshold from the sweep on the training split's ground-truth masks (what the official MCTformer
    /// and WeakTr scripts do). Pixel labels then shape the pseudo labels, so the run is no longer weakly supervised; report.json says
    /// so (threshold_source "oracle").</summary>
    public bool OracleThreshold { get; init; }

    /// <summary>Retraining configuration; the decoder loss is set per entry of <see cref="Decoders"/>.</summary>
    public SegmentationConfig Segmentation { get; init; } = SegmentationConfig.Cpu;

    /// <summary>Decoders retrained on the pseudo labels; the first one's val mIoU is the report's val_miou.</summary>
    public IReadOnlyList<SegmentationDecoderLoss> Decoders { get; init; } = [SegmentationDecoderLoss.GradientClipping];

    /// <summary>
    /// Retrain a segmenter on the pseudo labels (<see cref="Decoders"/>). null = only for methods without their own decoder: a
    /// single-stage method (<see cref="IWsssMethodFactory.HasSegmentationDecoder"/>) is scored by its own decoder (stage
    /// <c>decoder-VALSPLIT</c>), and retraining is then an option whose numbers go to val_miou_by_decoder.
    /// </summary>
    public bool? RetrainSegmenter { get; init; }

    /// <summary>Scales of a single-stage method's own decoder inference; null = the method's (<see cref="ISegmentationDecoderMethod.DecoderScales"/>).</summary>
    public IReadOnlyList<double>? DecoderScales { get; init; }

    /// <summary>Also train the same segmenter on the ground-truth masks (plain cross-entropy) for upper_bound_miou.</summary>
    public bool UpperBound { get; init; } = true;

    /// <summary>Dense CRF on the val probabilities: WeakTr's segmentation kernels for a retrained segmenter, the method's own
    /// (<see cref="ISegmentationDecoderMethod.DecoderCrf"/>) for a single-stage decoder.</summary>
    public bool Crf { get; init; }

    public PipelineEnd StopAfter { get; init; } = PipelineEnd.Segmentation;

    /// <summary>Training rounds (≥ 1); more than one needs a method with label-updating rounds (<see cref="LabelRounds"/>).</summary>
    public int Rounds { get; init; } = 1;

    /// <summary>Saliency maps for a method that takes them (<c>--saliency DIR</c>); null = the method estimates them.</summary>
    public Refinement.Saliency.SaliencySource? Saliency { get; init; }

    public long Seed { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public int Workers { get; init; } = 2;

    /// <summary>The ranks running the pipeline together (<see cref="ProcessGroup.World"/> under mpirun): training stages are
    /// data-parallel, per-image stages split the images by rank, rank 0 alone writes the ledger, reports and evaluation files.</summary>
    public ProcessGroup Group { get; init; } = ProcessGroup.Single;
}

/// <summary>One stage of a pipeline run: its time (over every invocation) and whether this invocation reused it.</summary>
public sealed record PipelineStage(string Name, double Seconds, bool Reused);

/// <summary>Result of <see cref="WsssPipeline.Run"/>; null metrics belong to stages not run (see <see cref="WsssPipelineOptions.StopAfter"/>).</summary>
public sealed record WsssPipelineReport(
    string Method, LocalizationMapKind Map, double CamMeanIou, double Threshold, double? PseudoMeanIou,
    double? ValMeanIou, IReadOnlyDictionary<string, double> ValMeanIouByDecoder, double? UpperBoundMeanIou,
    double Seconds, IReadOnlyList<PipelineStage> Stages, string ReportPath)
{
    /// <summary>val_miou / upper_bound_miou (the paper's δ).</summary>
    public double? WeakFullRatio => ValMeanIou is { } v && UpperBoundMeanIou is { } u && u > 0 ? v / u : null;
}

/// <summary>
/// The whole weakly-supervised pipeline of a method: (built-in data) → train the CAM model on image labels → maps of the train split →
/// threshold sweep (cam_miou) → pseudo labels (pseudo_miou) → retrain the segmenter on them for each decoder → val predictions (val_miou)
/// → the same segmenter on ground truth (upper_bound_miou) → OUT/report.json, and at the end OUT/report.html (<see cref="Visualization.RunReport"/>).
/// <para>Resumable: each stage is recorded in OUT/stages/NAME.json with the settings it depends on. A finished stage is never redone
/// (its recorded results are reused); an unfinished one continues from its partial outputs (training checkpoints, maps and predictions
/// already written); a stage recorded with other settings is an error naming its record. report.json is rewritten after every stage.</para>
/// </summary>
public static class WsssPipeline
{
    public const string ReportFile = "report.json";

    /// <summary>
    /// The pseudo-label threshold and where it came from: <paramref name="given"/> ("given"); else, with <paramref name="oracle"/>, the
    /// best of the sweep on the training masks (<paramref name="sweepBest"/>; "oracle"); else the method's preset value
    /// (<see cref="IMethodConfig.PseudoLabelThreshold"/>; "preset"), a constant of the method that reads no pixel label. The source is
    /// "KIND: why", KIND first.
    /// </summary>
    public static (double Threshold, string Source) ChooseThreshold(double? given, bool oracle, Func<double> sweepBest, IMethodConfig method) =>
        given is { } t ? (t, "given: --threshold")
        : oracle ? (sweepBest(), "oracle: the best of the sweep on the training split's ground-truth masks (pixel labels used)")
        : (method.PseudoLabelThreshold.Value, "preset: " + method.PseudoLabelThreshold.Source + "; no pixel label read");
    const string ComputedWithKey = "computed_with";
    const string SyntheticStage = "data";

    public static string DecoderName(SegmentationDecoderLoss loss) => loss == SegmentationDecoderLoss.Naive ? "naive" : "gradclip";

    /// <summary>The key of a single-stage method's own decoder in val_miou_by_decoder.</summary>
    public const string MethodDecoderName = "method";

    /// <summary>The stage (and prefix of its folder OUT/decoder/) of a single-stage method's own decoder predictions on <paramref name="split"/>.</summary>
    public static string DecoderStage(string split) => "decoder-" + split;

    public static WsssPipelineReport Run(WsssPipelineOptions options, IStageReporter? reporter = null, CancellationToken cancellationToken = default,
        Action<string>? stageCompleted = null)
    {
        reporter ??= new SilentStageReporter();
        var outDir = Path.GetFullPath(options.OutDirectory);
        if (File.Exists(outDir)) throw WeakSegException.ForFile(outDir, "output path is a file, expected a directory");
        bool created = !Directory.Exists(outDir);
        WsssPipelineReport report;
        try { report = RunIn(outDir, options, reporter, cancellationToken, stageCompleted); }
        catch when (created && options.Group.IsRoot && Directory.Exists(outDir)
                    && !Directory.EnumerateFiles(outDir, "*", SearchOption.AllDirectories).Any(f => Path.GetFileName(f) != FolderLock.FileName))
        {
            Directory.Delete(outDir, recursive: true);                                     // a refused run leaves no empty folder behind
            throw;
        }
        if (options.Group.IsRoot) Visualization.RunReport.Write(outDir);
        return report;
    }

    static WsssPipelineReport RunIn(string outDir, WsssPipelineOptions options, IStageReporter reporter, CancellationToken cancellationToken,
        Action<string>? stageCompleted)
    {
        var group = options.Group;
        var shard = WorkShard.ForGroup(group);
        LabelRounds.Check(options.Rounds, options.Saliency, options.CamRecipe.Factory);
        FolderLock? folderLock = null;
        group.OnRoot(() => folderLock = FolderLock.Acquire(outDir, "pipeline output folder"));
        using var heldLock = folderLock;
        var ledger = new StageLedger(Path.Combine(outDir, "stages"));
        var stages = new List<PipelineStage>();
        var runSection = new JsonObject
        {
            // what the numbers depend on besides the stage settings: a CPU run is bitwise repeatable for a given seed and thread count
            ["preset"] = options.Preset.ToString().ToLowerInvariant(),
            ["model"] = options.CamRecipe.ToJson()[TrainRecipe.ModelKey]!.DeepClone(),
            ["seed"] = options.Seed, ["threads"] = options.Threads, ["device"] = options.Device,
        };
        var state = new ReportState(options.CamRecipe.Method, Path.Combine(outDir, ReportFile), runSection) { WritesFiles = group.IsRoot };
        WsssPipelineReport Finish()
        {
            var report = state.Finish();
            group.Barrier();                                                              // report.json exists for every rank
            return report;
        }

        // Runs a stage unless the ledger has it done; returns its results (recorded or fresh). Under MPI, rank 0 reads the ledger and
        // tells the others; a stage runs on every rank (training, per-image stages) or, with rootOnly, on rank 0 while the others wait
        // for its results; rank 0 records it; every rank leaves the stage together.
        JsonObject Stage(string name, JsonObject settings, Func<JsonObject> work, bool rootOnly = false)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (status, recorded, secondsSoFar) = group.IsDistributed ? CheckOnRoot(group, ledger, name, settings) : ledger.Check(name, settings);
            if (status == StageState.Done)
            {
                reporter.Log($"{name}: done before, reused ({ledger.PathOf(name)})");
                state.ComputedWith[name] = recorded![ComputedWithKey]?.DeepClone();               // null: recorded before provenance was
                stages.Add(new PipelineStage(name, secondsSoFar, true));
                state.Stages = stages;
                return recorded!;
            }
            if (status == StageState.Unfinished) reporter.Log($"{name}: continuing an unfinished stage");
            if (group.IsRoot) ledger.Begin(name, settings, secondsSoFar);
            var clock = Stopwatch.StartNew();
            var fresh = !rootOnly || group.IsRoot ? work() : null;
            var results = group.IsDistributed ? JsonNode.Parse(group.Broadcast(group.IsRoot ? fresh!.ToJsonString() : null)!)!.AsObject() : fresh!;
            // threads and device are not settings (a stage computed with other ones is reused), but they decide the last bits of its
            // numbers, so the record keeps what computed them and report.json reports that rather than this invocation's values
            results[ComputedWithKey] = new JsonObject { ["threads"] = options.Threads, ["device"] = options.Device };
            state.ComputedWith[name] = results[ComputedWithKey]!.DeepClone();
            double seconds = Math.Round(secondsSoFar + clock.Elapsed.TotalSeconds, 3);      // as recorded, so a reused stage reports the same
            if (group.IsRoot) ledger.Complete(name, settings, seconds, results);
            group.Barrier();
            stages.Add(new PipelineStage(name, seconds, false));
            state.Stages = stages;
            stageCompleted?.Invoke(name);
            return results;
        }

        // ---- data ----
        string dataRoot;
        JsonObject dataSettings;
        if (options.DataRoot is null)
        {
            dataRoot = Path.Combine(outDir, "data");
            dataSettings = new JsonObject { ["synthetic"] = SyntheticSettings(options.Synthetic) };
            Stage(SyntheticStage, dataSettings, () =>
            {
                if (Directory.Exists(dataRoot)) Directory.Delete(dataRoot, recursive: true);       // a half-written dataset is regenerated
                reporter.Run("synth", p => SyntheticDataset.Generate(dataRoot, options.Synthetic, p));
                return new JsonObject { ["root"] = dataRoot };
            }, rootOnly: true);
        }
        else
        {
            dataRoot = Path.GetFullPath(options.DataRoot);
            if (!Directory.Exists(dataRoot)) throw WeakSegException.ForFile(dataRoot, "dataset directory not found");
            dataSettings = new JsonObject { ["root"] = dataRoot };
        }
        var trainSet = VocDataset.Open(dataRoot, options.TrainSplit);
        var valSet = options.StopAfter == PipelineEnd.Segmentation ? VocDataset.Open(dataRoot, options.ValSplit) : null;   // fail now, not after an hour of training
        // Masks are read only to score (cam_miou, pseudo_miou, val_miou) and for the upper bound, never to make the pseudo labels
        // (unless --oracle-threshold): a dataset with image labels only runs, and the metrics that need masks are skipped.
        bool trainMasks = GroundTruthMasks.Complete(trainSet);
        bool valMasks = valSet is not null && GroundTruthMasks.Complete(valSet);
        if (options.OracleThreshold) GroundTruthMasks.Require(trainSet, "--oracle-threshold");
        if (!trainMasks) state.Skip(GroundTruthMasks.SkippedLine("cam_miou, pseudo_miou and upper_bound_miou", options.TrainSplit));
        if (valSet is not null && !valMasks) state.Skip(GroundTruthMasks.SkippedLine("val_miou", options.ValSplit, " (its predictions are written)"));
        foreach (var line in state.Skipped) reporter.Log("skipped " + line);

        // ---- CAM model ----
        var recipe = options.CamRecipe.For(trainSet);
        runSection["model"] = recipe.ToJson()[TrainRecipe.ModelKey]!.DeepClone();          // with the dataset's class count
        recipe = recipe with { Trainer = recipe.Trainer with { Seed = options.Seed, Device = options.Device, Threads = options.Threads } };
        recipe.EnsureValid();
        // the effective trainer options of the CAM training (the method's own schedule, or the generic recipe's, with the user's settings)
        runSection["trainer"] = ResultRelevant(recipe.ToJson())[TrainRecipe.TrainerKey]!.DeepClone();
        runSection["trainer_defaults"] = recipe.HasMethodSchedule ? "method schedule" : "generic recipe";
        // Checked before any stage is recorded, so that fixing the option does not meet a half-begun stage with the old settings.
        var segmentationBatch = options.StopAfter == PipelineEnd.Segmentation ? options.Segmentation.BatchSize : 0;
        foreach (var (what, batch) in new[] { ("CAM training (trainer.batch_size)", recipe.Trainer.BatchSize), ("segmenter (batch_size)", segmentationBatch) })
            if (batch > trainSet.Samples.Count)
                throw WeakSegException.ForFile(Path.Combine(dataRoot, "ImageSets", "Segmentation", options.TrainSplit + ".txt"),
                    $"{trainSet.Samples.Count} images, fewer than one batch of {batch} for the {what}; use a smaller batch (--config / --seg-config) or more images");
        var camRunDir = Path.Combine(outDir, "cam", "run");
        var camTrainSettings = new JsonObject
        {
            ["data"] = dataSettings.DeepClone(), ["split"] = options.TrainSplit, ["seed"] = options.Seed, ["recipe"] = ResultRelevant(recipe.ToJson()),
        };
        if (options.Saliency is { } givenSaliency) camTrainSettings["saliency"] = givenSaliency.Describe();
        Stage("cam-train", camTrainSettings, () =>
        {
            bool resume = new Training.RunDirectory(camRunDir).HasCheckpoint;
            var outcome = reporter.Run($"train {recipe.Method}", p => TrainPipeline.Run(new TrainRequest
            {
                DataRoot = dataRoot, Split = options.TrainSplit, RunDirectory = camRunDir, Recipe = recipe, Preset = "pipeline",
                Resume = resume, Workers = options.Workers, Group = group, Saliency = options.Saliency,
            }, reporter.Log, p, cancellationToken));
            if (!outcome.Result.Completed) throw new OperationCanceledException("CAM training was interrupted; run the pipeline again to resume");
            return TrainingResults(outcome.Result);
        });

        var mapKind = options.MapKind ?? recipe.Factory.Maps.DefaultFor(options.Preset);
        recipe.Factory.Maps.Require(mapKind, recipe.Method);
        state.Map = mapKind;
        var localization = options.Localization with { MapKind = mapKind };
        localization.EnsureValid();

        // ---- label-updating rounds (--rounds N): the last round's run feeds the stages below ----
        if (options.Rounds > 1)
        {
            runSection["rounds"] = options.Rounds;
            (camRunDir, camTrainSettings, _) = LabelRounds.Run(new LabelRoundsContext
            {
                OutDirectory = outDir, DataRoot = dataRoot, TrainSet = trainSet, ValSet = valSet, TrainMasks = trainMasks, ValMasks = valMasks,
                Recipe = recipe, FirstRunDirectory = camRunDir, FirstTrainSettings = camTrainSettings, Localization = localization,
                Thresholds = options.Thresholds, Options = options, Stage = (n, s, w, r) => Stage(n, s, w, r), Reporter = reporter,
                RoundsChanged = list => { state.Rounds = list; state.Write(); }, CancellationToken = cancellationToken,
            }, options.Rounds, options.Saliency);
        }

        // ---- maps and their sweep ----
        var map = LocalizationMapKindNames.Name(mapKind);                 // map-dependent stages and folders carry the map's name, so maps can share a folder
        var mapsDir = Path.Combine(outDir, "cam", "maps-" + map);
        var mapSettings = new JsonObject
        {
            ["cam_train"] = camTrainSettings.DeepClone(), ["map"] = map,
            ["scales"] = new JsonArray(localization.Scales.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()), ["flip"] = localization.Flip,
        };
        Stage("maps-" + map, mapSettings, () =>
        {
            var summary = reporter.Run($"maps {map}", p => CamPipeline.Run(new CamRequest
            {
                RunDirectory = camRunDir, OutDirectory = mapsDir, Split = options.TrainSplit, DataRoot = dataRoot, Localization = localization,
                Device = options.Device, Threads = options.Threads, Shard = shard,
            }, p, cancellationToken));
            return new JsonObject { ["images"] = summary.Images };
        });
        var sweepSettings = new JsonObject
        {
            ["maps"] = mapSettings.DeepClone(),
            ["thresholds"] = new JsonArray(options.Thresholds.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
        };
        JsonObject? camEval = null;
        if (trainMasks)
        {
            camEval = Stage("cam-eval-" + map, sweepSettings, () =>
            {
                var sweep = reporter.Run("sweep thresholds", p => CamThresholdSweep.Evaluate(mapsDir, dataRoot, options.TrainSplit,
                    new CamSweepOptions { Thresholds = options.Thresholds }, p));
                var artifacts = reporter.Run("artifact rate", _ => MapArtifactRate.Evaluate(mapsDir, dataRoot, options.TrainSplit));
                EvaluationJson.Write(Path.Combine(outDir, "cam", $"eval-cam-{map}.json"), sweep, options.TrainSplit, artifacts);
                Visualization.TrainingPlots.SaveThresholdSweep(sweep, Path.Combine(outDir, "cam", $"eval-cam-{map}.png"));
                return new JsonObject
                {
                    ["miou"] = Num(sweep.BestMeanIou), ["threshold"] = sweep.BestThreshold, ["miou_by_threshold"] = EvaluationJson.MeanIouByThreshold(sweep),
                    ["artifact_rate"] = Num(artifacts.Rate),
                };
            }, rootOnly: true);
            state.CamMeanIou = camEval["miou"]?.GetValue<double>() ?? double.NaN;
            state.ArtifactRate = camEval["artifact_rate"]?.GetValue<double>();
        }
        (state.Threshold, state.ThresholdSource) = ChooseThreshold(options.PseudoThreshold, options.OracleThreshold,
            () => camEval!["threshold"]!.GetValue<double>(), recipe.ModelConfig);
        state.Write();
        if (options.StopAfter == PipelineEnd.Cam) return Finish();

        // ---- pseudo labels ----
        var pseudoDir = Path.Combine(outDir, "pseudo-" + map);
        var pseudoSettings = new JsonObject
        {
            ["maps"] = mapSettings.DeepClone(), ["threshold"] = state.Threshold, ["threshold_source"] = state.ThresholdSource.Split(':')[0],
            ["cam_eval"] = options.OracleThreshold && options.PseudoThreshold is null ? sweepSettings.DeepClone() : null,
        };
        var pseudo = Stage("pseudo-" + map, pseudoSettings, () =>
        {
            reporter.Run("pseudo labels", p => PseudoLabelWriter.Run(mapsDir, pseudoDir,
                new PseudoLabelConfig { Threshold = (float)state.Threshold, Overwrite = true }, p, shard: shard));
            if (!trainMasks) return new JsonObject { ["miou"] = null };
            var evaluation = reporter.Run("evaluate pseudo labels", p => SegmentationEvaluator.EvaluateDirectory(pseudoDir, dataRoot, options.TrainSplit, null, p, shard));
            if (group.IsRoot) EvaluationJson.Write(Path.Combine(outDir, $"eval-pseudo-{map}.json"), evaluation);
            return new JsonObject { ["miou"] = Num(evaluation.Metrics.MeanIou) };
        });
        state.PseudoMeanIou = pseudo["miou"]?.GetValue<double>();
        state.Write();
        if (options.StopAfter == PipelineEnd.Pseudo) return Finish();

        // ---- a single-stage method's own decoder on the val split ----
        bool ownDecoder = recipe.Factory.HasSegmentationDecoder;
        if (ownDecoder)
        {
            var decoderDir = Path.Combine(outDir, "decoder");
            var decoderPredDir = Path.Combine(decoderDir, "val-pred");
            var decoderSettings = new JsonObject
            {
                ["cam_train"] = camTrainSettings.DeepClone(), ["split"] = options.ValSplit,
                ["scales"] = options.DecoderScales is { } given ? new JsonArray(given.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()) : "method",
                ["flip"] = true, ["crf"] = options.Crf,
            };
            var decoded = Stage(DecoderStage(options.ValSplit), decoderSettings, () =>
            {
                var device = TorchRuntime.Initialize(options.Device, options.Threads);
                using var trained = TrainPipeline.LoadTrained(camRunDir, out _);
                var method = trained as ISegmentationDecoderMethod
                    ?? throw new WeakSegException($"method '{trained.Name}' is registered with a segmentation decoder but its model has none");
                method.Model.to(device);
                var inference = new SegmentationInferenceOptions
                {
                    Scales = options.DecoderScales ?? method.DecoderScales, Flip = true,
                    Refine = options.Crf ? SegmentationRefiners.DenseCrf(method.DecoderCrf) : null,
                };
                reporter.Run($"predict {options.ValSplit} (the method's decoder)", p =>
                    SegmentationInference.Run(new MethodDecoderPredictor(method, device), valSet!.Samples, decoderPredDir, inference, p, cancellationToken, shard));
                if (!valMasks) return new JsonObject { ["miou"] = null };
                var evaluation = reporter.Run($"evaluate {options.ValSplit} (the method's decoder)", p =>
                    SegmentationEvaluator.EvaluateDirectory(decoderPredDir, dataRoot, options.ValSplit, null, p, shard));
                if (group.IsRoot) EvaluationJson.Write(Path.Combine(decoderDir, "eval-" + options.ValSplit + ".json"), evaluation);
                return new JsonObject { ["miou"] = Num(evaluation.Metrics.MeanIou) };
            });
            if (decoded["miou"]?.GetValue<double>() is { } scored)
            {
                state.ValByDecoder[MethodDecoderName] = scored;
                state.ValMeanIou = scored;
            }
            state.Write();
        }

        // ---- retraining on pseudo labels, one run per decoder; then the upper bound on ground truth ----
        foreach (var decoder in (options.RetrainSegmenter ?? !ownDecoder) ? options.Decoders.Distinct() : [])
        {
            var name = DecoderName(decoder);
            var miou = Segment($"seg-{map}-{name}", Path.Combine(outDir, "seg", $"{map}-{name}"), options.Segmentation with { Loss = decoder }, pseudoDir,
                new JsonObject { ["pseudo"] = pseudoSettings.DeepClone() });
            if (miou is { } scored)
            {
                state.ValByDecoder[name] = scored;
                state.ValMeanIou ??= scored;
            }
            state.Write();
        }
        if (options.UpperBound && trainMasks)
        {
            state.UpperBoundMeanIou = Segment("upper-bound", Path.Combine(outDir, "seg", "upper-bound"),
                options.Segmentation with { Loss = SegmentationDecoderLoss.Naive }, null, new JsonObject { ["data"] = dataSettings.DeepClone() });
            state.Write();
        }
        return Finish();

        // Trains (or resumes) a segmenter on labelsDir (null = ground truth), predicts the val split and scores it.
        double? Segment(string stage, string runDir, SegmentationConfig config, string? labelsDir, JsonObject upstream)
        {
            var trainSettings = new JsonObject
            {
                ["labels"] = upstream, ["split"] = options.TrainSplit, ["seed"] = options.Seed,
                ["config"] = JsonNode.Parse((config with { NumClasses = trainSet.NumClasses }).CanonicalForTraining().ToJson())!.AsObject(),
            };
            Stage(stage + "-train", trainSettings, () =>
            {
                bool resume = new Training.RunDirectory(runDir).HasCheckpoint;
                var result = reporter.Run($"train segmenter ({stage})", p => SegmentationRun.Train(new SegmentationTrainRequest
                {
                    DataRoot = dataRoot, Split = options.TrainSplit, LabelsDirectory = labelsDir, RunDirectory = runDir, Config = config,
                    Seed = options.Seed, Device = options.Device, Threads = options.Threads, Resume = resume, LoaderWorkers = options.Workers,
                    Group = group,
                }, p, cancellationToken, log: reporter.Log));
                if (!result.Completed) throw new OperationCanceledException($"segmenter training ({stage}) was interrupted; run the pipeline again to resume");
                return TrainingResults(result);
            });
            var predDir = Path.Combine(runDir, "val-pred");
            var valSettings = new JsonObject { ["train"] = trainSettings.DeepClone(), ["split"] = options.ValSplit, ["crf"] = options.Crf };
            var val = Stage(stage + "-val", valSettings, () =>
            {
                var device = TorchRuntime.Initialize(options.Device, options.Threads);
                var (model, _, _) = SegmentationRun.Load(runDir, device);
                using (model)
                {
                    var inference = new SegmentationInferenceOptions
                    {
                        Scales = config.InferenceScales, Flip = config.InferenceFlip,
                        Refine = options.Crf ? SegmentationRefiners.DenseCrf(DenseCrfConfig.FromPreset("mctformer-seg")) : null,
                    };
                    reporter.Run($"predict {options.ValSplit} ({stage})", p =>
                        SegmentationInference.Run(new SegmentationPredictor(model, device), valSet!.Samples, predDir, inference, p, cancellationToken, shard));
                }
                if (!valMasks) return new JsonObject { ["miou"] = null };
                var evaluation = reporter.Run($"evaluate {options.ValSplit} ({stage})", p => SegmentationEvaluator.EvaluateDirectory(predDir, dataRoot, options.ValSplit, null, p, shard));
                if (group.IsRoot) EvaluationJson.Write(Path.Combine(runDir, "eval-" + options.ValSplit + ".json"), evaluation);
                return new JsonObject { ["miou"] = Num(evaluation.Metrics.MeanIou) };
            });
            return val["miou"]?.GetValue<double>();
        }
    }

    /// <summary>Drops the fields that do not change what a stage computes (the trainer's <see cref="ResultNeutralAttribute"/> fields:
    /// logging and checkpoint cadence, threads and device).</summary>
    static JsonObject ResultRelevant(JsonObject json)
    {
        var copy = json.DeepClone().AsObject();
        if (copy[TrainRecipe.TrainerKey] is JsonObject trainer)
            foreach (var key in Training.TrainerOptions.ResultNeutralKeys) trainer.Remove(key);
        return copy;
    }

    /// <summary>The generator fields that decide the images (Threads does not: the output is identical on any thread count).</summary>
    static JsonObject SyntheticSettings(SyntheticDatasetConfig c) => new()
    {
        ["train_images"] = c.TrainImages, ["val_images"] = c.ValImages, ["image_size"] = c.ImageSize, ["num_classes"] = c.NumClasses,
        ["seed"] = c.Seed, ["jpeg_quality"] = c.JpegQuality, ["supersampling"] = c.Supersampling,
        ["trap_background_probability"] = c.TrapBackgroundProbability,
        ["trap_background_elsewhere_probability"] = c.TrapBackgroundElsewhereProbability, ["border_radius"] = c.BorderRadius,
    };


    static JsonNode? Num(double v) => EvaluationJson.NumberOrNull(v);

    /// <summary>A training stage's record: a resume that found the training complete (stopped between its final checkpoint and
    /// model-final.bin) ran no step, so it has no throughput; its loss is the one recorded for the final checkpoint.</summary>
    static JsonObject TrainingResults(Training.TrainResult result) => new()
    {
        ["steps"] = result.Step, ["steps_this_run"] = result.StepsRun, ["last_loss"] = Num(result.LastLoss),
        ["images_per_s"] = result.StepsRun > 0 ? Num(result.ImagesPerSecond) : null,
    };

    /// <summary>Rank 0's ledger state of a stage, on every rank (one reading, so all ranks take the same branch).</summary>
    static (StageState, JsonObject?, double) CheckOnRoot(ProcessGroup group, StageLedger ledger, string name, JsonObject settings)
    {
        string? encoded = null;
        WeakSegException? error = null;
        if (group.IsRoot)
        {
            try
            {
                var (status, recorded, seconds) = ledger.Check(name, settings);
                encoded = new JsonObject { ["status"] = (int)status, ["seconds"] = seconds, ["results"] = recorded?.DeepClone() }.ToJsonString();
            }
            catch (WeakSegException e) { error = e; encoded = new JsonObject { ["error"] = e.Message }.ToJsonString(); }
        }
        var json = JsonNode.Parse(group.Broadcast(encoded)!)!;
        if (json["error"] is { } message) throw ProcessGroup.Agreed(error ?? new WeakSegException(message.GetValue<string>()));
        return ((StageState)json["status"]!.GetValue<int>(), json["results"] as JsonObject, json["seconds"]!.GetValue<double>());
    }

    /// <summary>The report as it grows; written atomically after every stage.</summary>
    sealed class ReportState(string method, string path, JsonObject run)
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
        public IReadOnlyList<PipelineStage> Stages { get; set; } = [];
        /// <summary>Per stage, the threads and device that computed its results (null when its record predates this).</summary>
        public Dictionary<string, JsonNode?> ComputedWith { get; } = new();

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
            AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
    }
}
