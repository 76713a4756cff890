using TorchSharp;
using System.Text.Json.Nodes;
using WeakSeg.Data;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.PseudoLabels;
using WeakSeg.Refinement;
using WeakSeg.Runtime;
using WeakSeg.Segmentation;

namespace WeakSeg.Pipelines.Stages;

/// <summary>Generates the built-in benchmark into <paramref name="DataRoot"/>; a half-written dataset (an unfinished stage) is regenerated.</summary>
public sealed record SynthStage(DataSettings Settings, string DataRoot) : Stage<DataSettings, DataResults>(StageName, Settings)
{
    public const string StageName = "data";
    public override bool RootOnly => true;

    public override DataResults Run(StageContext context)
    {
        if (Directory.Exists(DataRoot)) Directory.Delete(DataRoot, recursive: true);
        context.Reporter.Run("synth", p => SyntheticDataset.Generate(DataRoot, Settings.Synthetic!, p));
        return new DataResults(DataRoot);
    }
}

/// <summary>Trains (or resumes from its checkpoints) the CAM model of <paramref name="Request"/>.</summary>
public sealed record CamTrainStage(string StageName, CamTrainSettings Settings, TrainRequest Request) : Stage<CamTrainSettings, TrainingResults>(StageName, Settings)
{
    public const string DefaultName = "cam-train";

    public override TrainingResults Run(StageContext context)
    {
        bool resume = new Training.RunDirectory(Request.RunDirectory).HasCheckpoint;
        var outcome = context.Reporter.Run($"train {Request.Recipe.Method}", p => TrainPipeline.Run(Request with
        {
            Resume = resume, Workers = context.Workers, Group = context.Group,
        }, context.Reporter.Log, p, context.CancellationToken));
        if (!outcome.Result.Completed) throw new OperationCanceledException("CAM training was interrupted; run the same command again to resume");
        return TrainingResults.Of(outcome.Result);
    }
}

/// <summary>Maps of every image of a split (<see cref="CamPipeline"/>; maps already written are kept).</summary>
public sealed record MapsStage(string StageName, MapsSettings Settings, CamRequest Request) : Stage<MapsSettings, MapsResults>(StageName, Settings)
{
    public override MapsResults Run(StageContext context)
    {
        var summary = context.Reporter.Run($"maps {Settings.Map}", p => CamPipeline.Run(Request with
        {
            Device = context.Device, Threads = context.Threads, Shard = context.Shard,
        }, p, context.CancellationToken));
        return new MapsResults(summary.Images);
    }
}

/// <summary>The threshold sweep of a map folder on the split's masks (cam_miou), its artifact rate, the sweep's JSON and chart.</summary>
public sealed record SweepStage(string StageName, SweepSettings Settings, string MapsDirectory, string DataRoot, string Split, string EvaluationPath)
    : Stage<SweepSettings, SweepResults>(StageName, Settings)
{
    public override bool RootOnly => true;

    /// <summary>The whole sweep (per-class IoU at every threshold) when this stage ran in this process; null when it was reused.</summary>
    public CamSweepResult? Details { get; private set; }

    public override SweepResults Run(StageContext context)
    {
        var evaluation = CamEvaluation.Run(new CamEvaluationRequest
        {
            MapsDirectory = MapsDirectory, DataRoot = DataRoot, Split = Split, Sweep = new CamSweepOptions { Thresholds = Settings.Thresholds },
            EvaluationPath = EvaluationPath,
        }, context.Reporter);
        var sweep = evaluation.Sweep;
        Details = sweep;
        return new SweepResults(sweep.BestMeanIou, sweep.BestThreshold, EvaluationJson.MeanIouByThreshold(sweep), evaluation.Artifacts.Rate);
    }
}

/// <summary>Pseudo labels of a map folder at the settings' threshold, scored on the split's masks when <paramref name="Score"/>.</summary>
public sealed record PseudoStage(PseudoSettings Settings, string MapsDirectory, string PseudoDirectory, string DataRoot, string Split, bool Score,
    string EvaluationPath) : Stage<PseudoSettings, ScoreResults>("pseudo-" + Settings.Maps.Map, Settings)
{
    public override ScoreResults Run(StageContext context)
    {
        context.Reporter.Run("pseudo labels", p => PseudoLabelWriter.Run(MapsDirectory, PseudoDirectory,
            new PseudoLabelConfig { Threshold = (float)Settings.Threshold, Overwrite = true }, p, shard: context.Shard, cancellationToken: context.CancellationToken));
        return Score ? StageScoring.Score(context, "evaluate pseudo labels", PseudoDirectory, DataRoot, Split, EvaluationPath) : new ScoreResults(null);
    }
}

/// <summary>A single-stage method's own decoder predicting a split (<paramref name="Samples"/>), scored when the split has masks.</summary>
public sealed record DecoderPredictionStage(DecoderSettings Settings, string RunDirectory, IReadOnlyList<VocSample> Samples, string PredictionDirectory,
    string DataRoot, bool Score, string EvaluationPath) : Stage<DecoderSettings, ScoreResults>(WsssPipeline.DecoderStage(Settings.Split), Settings)
{
    public override ScoreResults Run(StageContext context)
    {
        var device = TorchRuntime.Initialize(context.Device, context.Threads);
        using var trained = TrainPipeline.LoadTrained(RunDirectory, out _);
        var method = trained as ISegmentationDecoderMethod
            ?? throw new WeakSegException($"method '{trained.Name}' is registered with a segmentation decoder but its model has none");
        method.Model.to(device);
        var inference = new SegmentationInferenceOptions
        {
            Scales = Settings.Scales ?? method.DecoderScales, Flip = Settings.Flip,
            Refine = Settings.Crf ? SegmentationRefiners.DenseCrf(method.DecoderCrf) : null,
        };
        context.Reporter.Run($"predict {Settings.Split} (the method's decoder)", p => SegmentationInference.Run(new MethodDecoderPredictor(method, device),
            Samples, PredictionDirectory, inference, p, context.CancellationToken, context.Shard));
        return Score ? StageScoring.Score(context, $"evaluate {Settings.Split} (the method's decoder)", PredictionDirectory, DataRoot, Settings.Split, EvaluationPath)
            : new ScoreResults(null);
    }
}

/// <summary>Trains (or resumes) a segmenter (<see cref="SegmentationRun.Train"/>) on pseudo labels or on the ground truth.</summary>
public sealed record SegTrainStage(string StageName, SegTrainSettings Settings, SegmentationTrainRequest Request)
    : Stage<SegTrainSettings, TrainingResults>(StageName, Settings)
{
    public override TrainingResults Run(StageContext context)
    {
        bool resume = new Training.RunDirectory(Request.RunDirectory).HasCheckpoint;
        var result = context.Reporter.Run($"train segmenter ({StageName[..^"-train".Length]})", p => SegmentationRun.Train(Request with
        {
            Device = context.Device, Threads = context.Threads, Resume = resume, LoaderWorkers = context.Workers, Group = context.Group,
        }, p, context.CancellationToken, log: context.Reporter.Log));
        if (!result.Completed) throw new OperationCanceledException($"segmenter training ({StageName}) was interrupted; run the same command again to resume");
        return TrainingResults.Of(result);
    }
}

/// <summary>A trained segmenter's predictions of a split (<paramref name="Samples"/>), with its inference scales and flip, scored when the
/// split has masks.</summary>
public sealed record SegValStage(string StageName, SegValSettings Settings, string RunDirectory, IReadOnlyList<VocSample> Samples, string DataRoot,
    bool Score) : Stage<SegValSettings, ScoreResults>(StageName, Settings)
{
    public string PredictionDirectory => Path.Combine(RunDirectory, "val-pred");

    public override ScoreResults Run(StageContext context)
    {
        var device = TorchRuntime.Initialize(context.Device, context.Threads);
        var config = Settings.Train.Config;
        var (model, _, _) = SegmentationRun.Load(RunDirectory, device);
        var what = StageName[..^"-val".Length];
        using (model)
        {
            var inference = new SegmentationInferenceOptions
            {
                Scales = config.InferenceScales, Flip = config.InferenceFlip,
                Refine = Settings.Crf ? SegmentationRefiners.DenseCrf(DenseCrfConfig.FromPreset("mctformer-seg")) : null,
            };
            context.Reporter.Run($"predict {Settings.Split} ({what})", p => SegmentationInference.Run(new SegmentationPredictor(model, device), Samples,
                PredictionDirectory, inference, p, context.CancellationToken, context.Shard));
        }
        return Score ? StageScoring.Score(context, $"evaluate {Settings.Split} ({what})", PredictionDirectory, DataRoot, Settings.Split,
            Path.Combine(RunDirectory, "eval-" + Settings.Split + ".json")) : new ScoreResults(null);
    }
}

/// <summary>Scores a folder of label images on a split's masks; rank 0 writes the evaluation file.</summary>
public static class StageScoring
{
    public static ScoreResults Score(StageContext context, string title, string labelDirectory, string dataRoot, string split, string evaluationPath)
    {
        var evaluation = context.Reporter.Run(title, p => SegmentationEvaluator.EvaluateDirectory(labelDirectory, dataRoot, split, null, p, context.Shard));
        if (context.Group.IsRoot) EvaluationJson.Write(evaluationPath, evaluation);
        return new ScoreResults(evaluation.Metrics.MeanIou);
    }
}

/// <summary>The score of a folder of label images (the demo's pseudo labels, scored after its weak path) on a split's masks.</summary>
public sealed record LabelScoreSettings(IStageSettings Labels, string Split) : IStageSettings
{
    public JsonObject ToJson() => new() { ["labels"] = Labels.ToJson(), ["split"] = Split };
}

/// <summary>Scores <paramref name="LabelDirectory"/> on the split's masks and writes the evaluation file.</summary>
public sealed record LabelScoreStage(string StageName, LabelScoreSettings Settings, string LabelDirectory, string DataRoot, string EvaluationPath)
    : Stage<LabelScoreSettings, ScoreResults>(StageName, Settings)
{
    public override ScoreResults Run(StageContext context) =>
        StageScoring.Score(context, $"evaluate {StageName} (reads masks)", LabelDirectory, DataRoot, Settings.Split, EvaluationPath);
}

/// <summary>Overlay panels of the first <paramref name="Count"/> images: their labels' settings, the count, and whether a ground-truth tile is drawn.</summary>
public sealed record OverlaySettings(IStageSettings Labels, int Count, bool GroundTruth) : IStageSettings
{
    public JsonObject ToJson() => new() { ["labels"] = Labels.ToJson(), ["count"] = Count, ["ground_truth"] = GroundTruth };
}

/// <summary>Overlay panels written.</summary>
public sealed record OverlayResults(int Panels) : IStageResults<OverlayResults>
{
    public JsonObject ToJson() => new() { ["panels"] = Panels };
    public static OverlayResults FromJson(JsonObject json) => new(json["panels"]?.GetValue<int>() ?? 0);
}

/// <summary>Panels image | per-class heat maps | pseudo label | ground truth (<see cref="Visualization.OverlayRenderer"/>) of the first images of
/// <paramref name="Dataset"/>, into <paramref name="OverlayDirectory"/>.</summary>
public sealed record OverlaysStage(OverlaySettings Settings, VocDataset Dataset, string MapsDirectory, string LabelDirectory, string OverlayDirectory)
    : Stage<OverlaySettings, OverlayResults>(DemoPipeline.OverlaysStageName, Settings)
{
    public override bool RootOnly => true;

    public override OverlayResults Run(StageContext context)
    {
        int count = Math.Min(Settings.Count, Dataset.Samples.Count);
        if (count <= 0) return new OverlayResults(0);
        Directory.CreateDirectory(OverlayDirectory);
        var names = Dataset.ClassNames.All;
        for (int i = 0; i < count; i++)
        {
            var sample = Dataset.Samples[i];
            var maps = CamMapFile.Read(MapsDirectory, sample.Name);
            var labelPath = PseudoLabelWriter.LabelPath(LabelDirectory, sample.Name);
            var label = File.Exists(labelPath) ? LabelPng.Read(labelPath) : null;
            var groundTruth = Settings.GroundTruth ? Dataset.LoadMask(i) : null;
            Visualization.OverlayRenderer.SavePanel(Path.Combine(OverlayDirectory, sample.Name + ".png"), Dataset.LoadImage(i), maps, names, label, groundTruth);
        }
        return new OverlayResults(count);
    }
}
