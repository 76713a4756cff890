using TorchSharp;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Methods;
using WeakSeg.Pipelines.Stages;
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
        LabelRounds.Check(options.Rounds, options.Saliency, options.CamRecipe.Factory);
        FolderLock? folderLock = null;
        group.OnRoot(() => folderLock = FolderLock.Acquire(outDir, "pipeline output folder"));
        using var heldLock = folderLock;
        var runSection = RunSection(options.Preset, options.CamRecipe, options.Seed, options.Threads, options.Device);
        var runner = new StageRunner(new StageLedger(Path.Combine(outDir, "stages")), new StageContext
        {
            Reporter = reporter, CancellationToken = cancellationToken, Group = group, Device = options.Device, Threads = options.Threads,
            Workers = options.Workers,
        }, stageCompleted);
        var state = new PipelineReportState(options.CamRecipe.Method, Path.Combine(outDir, ReportFile), runSection, runner) { WritesFiles = group.IsRoot };
        WsssPipelineReport Finish()
        {
            var report = state.Finish();
            group.Barrier();                                                              // report.json exists for every rank
            return report;
        }

        // ---- data ----
        var (dataRoot, dataSettings) = OpenData(options.DataRoot, outDir, options.Synthetic, runner);
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
        var segmentation = options.Segmentation.For(trainSet);                          // refused here, before any stage, if it names another K
        AddTrainer(runSection, recipe);
        // Checked before any stage is recorded, so that fixing the option does not meet a half-begun stage with the old settings.
        var segmentationBatch = options.StopAfter == PipelineEnd.Segmentation ? segmentation.BatchSize : 0;
        foreach (var (what, batch) in new[] { ("CAM training (trainer.batch_size)", recipe.Trainer.BatchSize), ("segmenter (batch_size)", segmentationBatch) })
            if (batch > trainSet.Samples.Count)
                throw WeakSegException.ForFile(Path.Combine(dataRoot, "ImageSets", "Segmentation", options.TrainSplit + ".txt"),
                    $"{trainSet.Samples.Count} images, fewer than one batch of {batch} for the {what}; use a smaller batch (--config / --seg-config) or more images");
        var camRunDir = Path.Combine(outDir, "cam", "run");
        var camTrain = new CamTrainStage(CamTrainStage.DefaultName, CamTrainSettings(dataSettings, options.TrainSplit, options.Seed, recipe, options.Saliency),
            new TrainRequest
            {
                DataRoot = dataRoot, Split = options.TrainSplit, RunDirectory = camRunDir, Recipe = recipe, Preset = "pipeline", Saliency = options.Saliency,
            });
        runner.Run(camTrain);
        IStageSettings camTrainSettings = camTrain.Settings;

        var mapKind = options.MapKind ?? recipe.Factory.Maps.DefaultFor(options.Preset);
        recipe.Factory.Maps.Require(mapKind, recipe.Method);
        state.Map = mapKind;
        var localization = options.Localization with { MapKind = mapKind };
        localization.EnsureValid();

        // ---- label-updating rounds (--rounds N): the last round's run feeds the stages below. A method that makes its own labels
        // (AuxSegNet+'s fusion of CAM and saliency) runs its round stages with one round too: they give its pseudo labels and its
        // own segmentation's val mIoU ----
        LabelRoundsResult? roundsResult = null;
        if (options.Rounds > 1 || (recipe.Factory.HasLabelRounds && options.StopAfter != PipelineEnd.Cam))
        {
            runSection["rounds"] = options.Rounds;
            roundsResult = LabelRounds.Run(new LabelRoundsContext
            {
                OutDirectory = outDir, DataRoot = dataRoot, TrainSet = trainSet, ValSet = valSet, TrainMasks = trainMasks, ValMasks = valMasks,
                Recipe = recipe, FirstRunDirectory = camRunDir, FirstTrainSettings = camTrainSettings, Localization = localization,
                Thresholds = options.Thresholds, Options = options, Stages = runner, Reporter = reporter,
                RoundsChanged = list => { state.Rounds = list; state.Write(); }, CancellationToken = cancellationToken,
            }, options.Rounds, options.Saliency);
            (camRunDir, camTrainSettings) = (roundsResult.RunDirectory, roundsResult.TrainSettings);
        }
        bool methodLabels = roundsResult?.LabelsDirectory is not null;

        // ---- maps and their sweep ----
        var map = LocalizationMapKindNames.Name(mapKind);                 // map-dependent stages and folders carry the map's name, so maps can share a folder
        var mapsDir = Path.Combine(outDir, "cam", "maps-" + map);
        var maps = new MapsStage("maps-" + map, new MapsSettings(camTrainSettings, map, localization.Scales, localization.Flip), new CamRequest
        {
            RunDirectory = camRunDir, OutDirectory = mapsDir, Split = options.TrainSplit, DataRoot = dataRoot, Localization = localization,
        });
        runner.Run(maps);
        var sweep = new SweepStage("cam-eval-" + map, new SweepSettings(maps.Settings, options.Thresholds), mapsDir, dataRoot, options.TrainSplit,
            Path.Combine(outDir, "cam", $"eval-cam-{map}.json"));
        SweepResults? camEval = null;
        if (trainMasks)
        {
            camEval = runner.Run(sweep);
            state.CamMeanIou = camEval.MeanIou ?? double.NaN;
            state.ArtifactRate = camEval.ArtifactRate;
        }
        (state.Threshold, state.ThresholdSource) = ChooseThreshold(options.PseudoThreshold, options.OracleThreshold, () => camEval!.Threshold, recipe.ModelConfig);
        state.Write();
        if (options.StopAfter == PipelineEnd.Cam) return Finish();

        // ---- pseudo labels: the maps at the threshold, or a label-rounds method's own labels of its last round ----
        string pseudoDir;
        IStageSettings pseudoSettings;
        if (methodLabels)
        {
            (pseudoDir, pseudoSettings) = (roundsResult!.LabelsDirectory!, roundsResult.LabelsSettings!);
            state.PseudoMeanIou = roundsResult.PseudoMeanIou;
        }
        else
        {
            pseudoDir = Path.Combine(outDir, "pseudo-" + map);
            var thresholded = new PseudoSettings(maps.Settings, state.Threshold, state.ThresholdSource.Split(':')[0],
                options.OracleThreshold && options.PseudoThreshold is null ? sweep.Settings : null);
            pseudoSettings = thresholded;
            state.PseudoMeanIou = runner.Run(new PseudoStage(thresholded, mapsDir, pseudoDir, dataRoot, options.TrainSplit, trainMasks,
                Path.Combine(outDir, $"eval-pseudo-{map}.json"))).MeanIou;
        }
        state.Write();
        if (options.StopAfter == PipelineEnd.Pseudo) return Finish();

        // ---- a single-stage method's own decoder on the val split (a label-rounds method's: scored in its last round's eval) ----
        bool ownDecoder = recipe.Factory.HasSegmentationDecoder || roundsResult?.ValMeanIou is not null;
        if (roundsResult?.ValMeanIou is { } roundVal)
        {
            state.ValByDecoder[MethodDecoderName] = roundVal;
            state.ValMeanIou = roundVal;
            state.Write();
        }
        else if (ownDecoder)
        {
            var decoderDir = Path.Combine(outDir, "decoder");
            var decoded = runner.Run(new DecoderPredictionStage(new DecoderSettings(camTrainSettings, options.ValSplit, options.DecoderScales, Flip: true, options.Crf),
                camRunDir, valSet!.Samples, Path.Combine(decoderDir, "val-pred"), dataRoot, valMasks, Path.Combine(decoderDir, "eval-" + options.ValSplit + ".json")));
            if (decoded.MeanIou is { } scored)
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
            var miou = Segment($"seg-{map}-{name}", Path.Combine(outDir, "seg", $"{map}-{name}"), segmentation with { Loss = decoder }, pseudoDir,
                pseudoSettings, null);
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
                segmentation with { Loss = SegmentationDecoderLoss.Naive }, null, null, dataSettings);
            state.Write();
        }
        return Finish();

        // Trains (or resumes) a segmenter on labelsDir (null = ground truth), predicts the val split and scores it.
        double? Segment(string stage, string runDir, SegmentationConfig config, string? labelsDir, IStageSettings? pseudo, DataSettings? groundTruth)
        {
            var train = new SegTrainStage(stage + "-train",
                new SegTrainSettings(pseudo, groundTruth, options.TrainSplit, options.Seed, config),
                new SegmentationTrainRequest
                {
                    DataRoot = dataRoot, Split = options.TrainSplit, LabelsDirectory = labelsDir, RunDirectory = runDir, Config = config, Seed = options.Seed,
                });
            runner.Run(train);
            return runner.Run(new SegValStage(stage + "-val", new SegValSettings(train.Settings, options.ValSplit, options.Crf), runDir, valSet!.Samples,
                dataRoot, valMasks)).MeanIou;
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

    /// <summary>report.json's run section: what the numbers depend on besides the stage settings (a CPU run is bitwise repeatable for a
    /// given seed and thread count). <paramref name="recipe"/>'s model is the preset's, before the dataset's class count.</summary>
    internal static JsonObject RunSection(MethodPreset preset, TrainRecipe recipe, long seed, int threads, string device) => new()
    {
        ["preset"] = preset.ToString().ToLowerInvariant(),
        ["model"] = recipe.ToJson()[TrainRecipe.ModelKey]!.DeepClone(),
        ["seed"] = seed, ["threads"] = threads, ["device"] = device,
    };

    /// <summary>Adds the effective trainer options of the CAM training (the method's own schedule, or the generic recipe's, with the
    /// user's settings) to report.json's run section.</summary>
    internal static void AddTrainer(JsonObject runSection, TrainRecipe recipe)
    {
        runSection["trainer"] = ResultRelevant(recipe.ToJson())[TrainRecipe.TrainerKey]!.DeepClone();
        runSection["trainer_defaults"] = recipe.HasMethodSchedule ? "method schedule" : "generic recipe";
    }

    /// <summary>The data stage: the built-in benchmark generated into OUT/data (<paramref name="dataRoot"/> null), or a given dataset root.</summary>
    internal static (string Root, DataSettings Settings) OpenData(string? dataRoot, string outDir, SyntheticDatasetConfig synthetic, StageRunner runner)
    {
        if (dataRoot is null)
        {
            var generated = Path.Combine(outDir, "data");
            runner.Run(new SynthStage(DataSettings.Generated(synthetic), generated));
            return (generated, DataSettings.Generated(synthetic));
        }
        var root = Path.GetFullPath(dataRoot);
        if (!Directory.Exists(root)) throw WeakSegException.ForFile(root, "dataset directory not found");
        return (root, DataSettings.Given(root));
    }

    /// <summary>The CAM training stage's settings: the data, split, seed, the recipe without result-neutral fields, given saliency maps.</summary>
    internal static CamTrainSettings CamTrainSettings(DataSettings data, string split, long seed, TrainRecipe recipe, Refinement.Saliency.SaliencySource? saliency) =>
        new(data, split, seed, ResultRelevant(recipe.ToJson()), saliency?.Describe());
}
