using System.Text.Json.Nodes;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Runtime;
using WeakSeg.Pipelines.Stages;
using WeakSeg.Segmentation;

namespace WeakSeg.Pipelines;

/// <summary>What <see cref="LabelRounds.Run"/> works with: the pipeline's data, its first round and how it runs stages.</summary>
public sealed record LabelRoundsContext
{
    public required string OutDirectory { get; init; }
    public required string DataRoot { get; init; }
    public required VocDataset TrainSet { get; init; }
    public VocDataset? ValSet { get; init; }
    public required bool TrainMasks { get; init; }
    public required bool ValMasks { get; init; }
    public required TrainRecipe Recipe { get; init; }
    /// <summary>The first round's run (the pipeline's CAM training) and its stage settings.</summary>
    public required string FirstRunDirectory { get; init; }
    public required IStageSettings FirstTrainSettings { get; init; }
    /// <summary>The map scored by each round's cam_miou (the pipeline's map).</summary>
    public required LocalizationOptions Localization { get; init; }
    public required IReadOnlyList<double> Thresholds { get; init; }
    public required WsssPipelineOptions Options { get; init; }
    /// <summary>The pipeline's stage engine: the rounds' stages are recorded in its ledger.</summary>
    public required Stages.StageRunner Stages { get; init; }
    public required IStageReporter Reporter { get; init; }
    /// <summary>Called with the per-round list each time it grows (report.json's <c>rounds</c>).</summary>
    public Action<JsonArray>? RoundsChanged { get; init; }
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>The last round's run (the pipeline's maps and segmenter use it), the per-round list, and the last round's labels (the
/// method's own pseudo labels: <see cref="LabelsDirectory"/> made with <see cref="LabelsSettings"/>, scored <see cref="PseudoMeanIou"/>) and
/// the val mIoU of the method's own segmentation after the last round (<see cref="ValMeanIou"/>); these four are null when no round ran.</summary>
public sealed record LabelRoundsResult(string RunDirectory, IStageSettings TrainSettings, JsonArray Rounds, string? LabelsDirectory = null,
    RoundLabelsSettings? LabelsSettings = null, double? PseudoMeanIou = null, double? ValMeanIou = null);

/// <summary>
/// Label-updating rounds (<c>weakseg pipeline --rounds N</c>) of a method with that capability (<see cref="ILabelRoundsMethod"/>,
/// registered with <see cref="IWsssMethodFactory.HasLabelRounds"/>). Round 1 is the pipeline's CAM training (the method's initial
/// labels). After each round r, stages <c>round-R-eval</c> (cam_miou of the round's maps on the training split, val_miou of the method's
/// own segmentation when it has one) and <c>round-R-labels</c> (the method's new pixel labels and saliency targets of every training image,
/// from its predictions, the image labels and the run's saliency maps, never from masks; pseudo_miou scores them when masks exist);
/// round r + 1 (<c>round-R-train</c>, from round r's weights) trains on batches carrying those labels and saliency maps. Every stage is
/// recorded in the pipeline's ledger with settings that name its round and nest its upstream stage's, so a run resumes at the first
/// unfinished step. Folders: OUT/rounds/R/{run, maps-MAP, val-pred, labels, saliency}.
/// </summary>
public static class LabelRounds
{
    /// <summary>The checks of <c>--rounds</c> and <c>--saliency</c> before any stage runs: one line each.</summary>
    public static void Check(int rounds, SaliencySource? saliency, IWsssMethodFactory method)
    {
        if (rounds < 1) throw new WeakSegException($"--rounds must be at least 1 (got {rounds})");
        if (rounds > 1 && !method.HasLabelRounds)
            throw new WeakSegException($"method '{method.Name}' does not update its labels between rounds; --rounds {rounds} needs a method that does (use --rounds 1)");
        if (saliency is not null && !method.UsesSaliency)
            throw new WeakSegException($"method '{method.Name}' does not take saliency maps; leave out --saliency");
    }

    /// <summary>Folder of round <paramref name="round"/>'s outputs.</summary>
    public static string RoundDirectory(string outDir, int round) => Path.Combine(outDir, "rounds", round.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Evaluates and labels every round after the first one's training, and trains rounds 2..N in between. For a method without
    /// label-updating rounds (one round only), returns the first round unchanged and an empty list.</summary>
    public static LabelRoundsResult Run(LabelRoundsContext c, int rounds, SaliencySource? saliency)
    {
        var runDir = c.FirstRunDirectory;
        var trainSettings = c.FirstTrainSettings;
        var list = new JsonArray();
        if (!c.Recipe.Factory.HasLabelRounds) return new LabelRoundsResult(runDir, trainSettings, list);
        var baseSaliency = (saliency ?? SaliencySource.Estimated).Checked();
        RoundEvalResults? lastEval = null;
        RoundLabelsResults? lastLabels = null;
        for (int round = 1; round <= rounds; round++)
        {
            var dir = RoundDirectory(c.OutDirectory, round);
            if (round > 1)
            {
                var previousDir = RoundDirectory(c.OutDirectory, round - 1);
                var nextSettings = new RoundTrainSettings(round, new RoundLabelsSettings(round - 1, trainSettings, baseSaliency.Describe()));
                var previousRun = runDir;
                var nextRun = Path.Combine(dir, "run");
                int r = round;
                c.Stages.Run(new FunctionStage<RoundTrainSettings, TrainingResults>($"round-{round}-train", nextSettings,
                    _ => Train(c, r, previousRun, nextRun, previousDir)));
                (runDir, trainSettings) = (nextRun, nextSettings);
            }
            var evaluated = lastEval = Evaluate(c, round, runDir, trainSettings, dir);
            var labelled = lastLabels = MakeLabels(c, round, runDir, trainSettings, dir, baseSaliency);
            list.Add(new JsonObject
            {
                ["round"] = round, ["cam_miou"] = StageJson.Number(evaluated.CamMeanIou), ["pseudo_miou"] = StageJson.Number(labelled.MeanIou),
                ["val_miou"] = StageJson.Number(evaluated.ValMeanIou), ["changed_label_fraction"] = StageJson.Number(labelled.ChangedFraction),
            });
            c.RoundsChanged?.Invoke(list);
        }
        return new LabelRoundsResult(runDir, trainSettings, list, Path.Combine(RoundDirectory(c.OutDirectory, rounds), "labels"),
            new RoundLabelsSettings(rounds, trainSettings, baseSaliency.Describe()), lastLabels?.MeanIou, lastEval?.ValMeanIou);
    }

    /// <summary>Round <paramref name="round"/>'s training: the recipe from the previous round's weights, on its labels and saliency.</summary>
    static TrainingResults Train(LabelRoundsContext c, int round, string previousRun, string runDir, string previousDir)
    {
        var o = c.Options;
        bool resume = new Training.RunDirectory(runDir).HasCheckpoint;
        var outcome = c.Reporter.Run($"train {c.Recipe.Method} (round {round})", p => TrainPipeline.Run(new TrainRequest
        {
            DataRoot = c.DataRoot, Split = o.TrainSplit, RunDirectory = runDir, Recipe = c.Recipe, Preset = "pipeline", Resume = resume,
            Workers = o.Workers, Group = o.Group, InitModel = new Training.RunDirectory(previousRun).ResolveWeights(),
            LabelsDirectory = Path.Combine(previousDir, "labels"),
            Saliency = new SaliencySource(Path.Combine(previousDir, "saliency")),
        }, c.Reporter.Log, p, c.CancellationToken));
        if (!outcome.Result.Completed) throw new OperationCanceledException($"round {round} training was interrupted; run the pipeline again to resume");
        return TrainingResults.Of(outcome.Result);
    }

    /// <summary>cam_miou of the round's maps (when the training split has masks) and val_miou of the method's own segmentation.</summary>
    static RoundEvalResults Evaluate(LabelRoundsContext c, int round, string runDir, IStageSettings trainSettings, string dir)
    {
        var o = c.Options;
        var map = LocalizationMapKindNames.Name(c.Localization.MapKind);
        var settings = new RoundEvalSettings(round, trainSettings, map, c.Localization.Scales, c.Localization.Flip, c.Thresholds, c.ValSet?.Split);
        return c.Stages.Run(new FunctionStage<RoundEvalSettings, RoundEvalResults>($"round-{round}-eval", settings, context =>
        {
            double? camMeanIou = null, camThreshold = null, valMeanIou = null;
            if (c.TrainMasks)
            {
                var mapsDir = Path.Combine(dir, "maps-" + map);
                c.Reporter.Run($"maps {map} (round {round})", p => CamPipeline.Run(new CamRequest
                {
                    RunDirectory = runDir, OutDirectory = mapsDir, Split = o.TrainSplit, DataRoot = c.DataRoot, Localization = c.Localization,
                    Device = o.Device, Threads = o.Threads,
                }, p, c.CancellationToken));
                var sweep = c.Reporter.Run($"sweep thresholds (round {round})", p => CamThresholdSweep.Evaluate(mapsDir, c.DataRoot, o.TrainSplit,
                    new CamSweepOptions { Thresholds = c.Thresholds }, p));
                (camMeanIou, camThreshold) = (sweep.BestMeanIou, sweep.BestThreshold);
            }
            if (c.ValSet is { } valSet)
            {
                var device = TorchRuntime.Initialize(o.Device, o.Threads);
                using var trained = TrainPipeline.LoadTrained(runDir, out _);
                if (trained is ISegmentationDecoderMethod own)
                {
                    own.Model.to(device);
                    var predDir = Path.Combine(dir, "val-pred");
                    var inference = new SegmentationInferenceOptions { Scales = own.DecoderScales, Flip = false };
                    c.Reporter.Run($"predict {valSet.Split} (round {round}, the method's segmentation)", p =>
                        SegmentationInference.Run(new MethodDecoderPredictor(own, device), valSet.Samples, predDir, inference, p, c.CancellationToken));
                    if (c.ValMasks)
                        valMeanIou = c.Reporter.Run($"evaluate {valSet.Split} (round {round})", p =>
                            SegmentationEvaluator.EvaluateDirectory(predDir, c.DataRoot, valSet.Split, null, p)).Metrics.MeanIou;
                }
            }
            return new RoundEvalResults(camMeanIou, camThreshold, valMeanIou);
        }, OnRootOnly: true));
    }

    /// <summary>
    /// The labels after round <paramref name="round"/>: for every training image (already written ones are kept, so an interrupted stage
    /// continues), the method's <see cref="ILabelRoundsMethod.NextRoundLabels"/> from the image, its image labels and its saliency map →
    /// dir/saliency/NAME.png, then dir/labels/NAME.png. Reads no mask; pseudo_miou scores the labels when the split has masks.
    /// </summary>
    static RoundLabelsResults MakeLabels(LabelRoundsContext c, int round, string runDir, IStageSettings trainSettings, string dir, SaliencySource saliency)
    {
        var o = c.Options;
        return c.Stages.Run(new FunctionStage<RoundLabelsSettings, RoundLabelsResults>($"round-{round}-labels",
            new RoundLabelsSettings(round, trainSettings, saliency.Describe()), context =>
        {
            var labelsDir = Path.Combine(dir, "labels");
            var saliencyDir = Path.Combine(dir, "saliency");
            Directory.CreateDirectory(labelsDir);
            var device = TorchRuntime.Initialize(o.Device, o.Threads);
            using var trained = TrainPipeline.LoadTrained(runDir, out _);
            var method = trained as ILabelRoundsMethod
                ?? throw new WeakSegException($"method '{trained.Name}' is registered with label-updating rounds but its model does not make labels");
            method.Model.to(device);
            method.Model.eval();
            var transform = new EvalTransform();
            long changed = 0, total = 0;
            var samples = c.TrainSet.Samples;
            // the label file, written (atomically) after the image's saliency map, marks an image done
            c.Reporter.Run($"labels after round {round}", progress => new ImageDirectoryJob
            {
                Names = samples.Select(s => s.Name).ToList(), IsDone = name => File.Exists(Path.Combine(labelsDir, name + ".png")),
            }.Run(i =>
            {
                var sample = samples[i];
                var image = ImageCodec.Load(sample.ImagePath);
                var baseMap = saliency.Map(sample.Name, image);
                var (chw, h, w) = transform.Apply(image);
                var input = torch.tensor(chw, [1, 3, h, w], device: device);
                var multiHot = new float[c.TrainSet.NumClasses];
                foreach (var k in sample.Classes) multiHot[k - 1] = 1f;
                var (labels, updated) = method.NextRoundLabels(input, torch.tensor(multiHot, [1, multiHot.Length], device: device),
                    torch.tensor(baseMap, [1, h, w], device: device));
                SaliencyMaps.Write(SaliencyMaps.PathOf(saliencyDir, sample.Name), updated, image.Height, image.Width);
                LabelPng.Write(Path.Combine(labelsDir, sample.Name + ".png"), new LabelMap(image.Width, image.Height, labels));
            }, progress, c.CancellationToken));
            // how much the labels moved from the previous round's (round 1 trained on online labels: nothing to compare)
            if (round > 1)
                foreach (var sample in samples)
                {
                    var now = LabelPng.Read(Path.Combine(labelsDir, sample.Name + ".png")).Labels;
                    var before = LabelPng.Read(Path.Combine(RoundDirectory(c.OutDirectory, round - 1), "labels", sample.Name + ".png")).Labels;
                    for (int p = 0; p < now.Length; p++) if (now[p] != before[p]) changed++;
                    total += now.Length;
                }
            double? miou = c.TrainMasks ? c.Reporter.Run($"evaluate labels (round {round})", p =>
                SegmentationEvaluator.EvaluateDirectory(labelsDir, c.DataRoot, o.TrainSplit, null, p)).Metrics.MeanIou : null;
            return new RoundLabelsResults(samples.Count, total > 0 ? (double)changed / total : null, miou);
        }, OnRootOnly: true));
    }
}
