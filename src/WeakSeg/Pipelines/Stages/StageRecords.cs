using System.Text.Json.Nodes;
using WeakSeg.Data.Synthetic;
using WeakSeg.Evaluation;
using WeakSeg.Segmentation;

namespace WeakSeg.Pipelines.Stages;

// The settings and results of the pipeline's stages. Each ToJson writes the keys the ledger has recorded since the first pipeline
// folders, so folders written before the stages became types are still reused (and still refused on a changed setting).

/// <summary>Where the images come from: the built-in benchmark's generator settings, or a dataset root.</summary>
public sealed record DataSettings(SyntheticDatasetConfig? Synthetic, string? Root) : IStageSettings
{
    public static DataSettings Generated(SyntheticDatasetConfig config) => new(config, null);
    public static DataSettings Given(string root) => new(null, root);

    /// <summary>The generator fields that decide the images (Threads does not: the output is identical on any thread count).</summary>
    public JsonObject ToJson() => Synthetic is { } c
        ? new JsonObject
        {
            ["synthetic"] = new JsonObject
            {
                ["train_images"] = c.TrainImages, ["val_images"] = c.ValImages, ["image_size"] = c.ImageSize, ["num_classes"] = c.NumClasses,
                ["seed"] = c.Seed, ["jpeg_quality"] = c.JpegQuality, ["supersampling"] = c.Supersampling,
                ["trap_background_probability"] = c.TrapBackgroundProbability,
                ["trap_background_elsewhere_probability"] = c.TrapBackgroundElsewhereProbability, ["border_radius"] = c.BorderRadius,
            },
        }
        : new JsonObject { ["root"] = Root };
}

/// <summary>CAM training: the data, split, seed, the recipe without its result-neutral fields, and given saliency maps.</summary>
public sealed record CamTrainSettings(DataSettings Data, string Split, long Seed, JsonObject Recipe, JsonNode? Saliency) : IStageSettings
{
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["data"] = Data.ToJson(), ["split"] = Split, ["seed"] = Seed, ["recipe"] = Recipe.DeepClone() };
        if (Saliency is not null) json["saliency"] = Saliency.DeepClone();
        return json;
    }
}

/// <summary>Maps of the training split: the run they come from (its training settings), the map kind, scales and flip.</summary>
public sealed record MapsSettings(IStageSettings CamTrain, string Map, IReadOnlyList<double> Scales, bool Flip) : IStageSettings
{
    public JsonObject ToJson() => new()
    {
        ["cam_train"] = CamTrain.ToJson(), ["map"] = Map, ["scales"] = Numbers(Scales), ["flip"] = Flip,
    };

    internal static JsonArray Numbers(IEnumerable<double> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
}

/// <summary>The threshold sweep of the maps on the training masks.</summary>
public sealed record SweepSettings(MapsSettings Maps, IReadOnlyList<double> Thresholds) : IStageSettings
{
    public JsonObject ToJson() => new() { ["maps"] = Maps.ToJson(), ["thresholds"] = MapsSettings.Numbers(Thresholds) };
}

/// <summary>Pseudo labels of the maps at a threshold; the sweep is nested when the threshold came from it (the oracle).</summary>
public sealed record PseudoSettings(MapsSettings Maps, double Threshold, string ThresholdKind, SweepSettings? CamEval) : IStageSettings
{
    public JsonObject ToJson() => new()
    {
        ["maps"] = Maps.ToJson(), ["threshold"] = Threshold, ["threshold_source"] = ThresholdKind, ["cam_eval"] = CamEval?.ToJson(),
    };
}

/// <summary>A single-stage method's own decoder on a split: the run, the split, the scales (null = the method's), flip and CRF.</summary>
public sealed record DecoderSettings(IStageSettings CamTrain, string Split, IReadOnlyList<double>? Scales, bool Flip, bool Crf) : IStageSettings
{
    public JsonObject ToJson() => new()
    {
        ["cam_train"] = CamTrain.ToJson(), ["split"] = Split, ["scales"] = Scales is { } given ? MapsSettings.Numbers(given) : "method",
        ["flip"] = Flip, ["crf"] = Crf,
    };
}

/// <summary>A segmenter's training: its labels (the pseudo labels' settings, or the data's for the ground-truth upper bound), split,
/// seed and configuration (with the dataset's class count, without its result-neutral fields).</summary>
public sealed record SegTrainSettings(IStageSettings? Pseudo, DataSettings? GroundTruth, string Split, long Seed, SegmentationConfig Config) : IStageSettings
{
    public JsonObject ToJson() => new()
    {
        ["labels"] = Pseudo switch
        {
            RoundLabelsSettings round => new JsonObject { ["round_labels"] = round.ToJson() },      // a label-rounds method's own labels
            { } pseudo => new JsonObject { ["pseudo"] = pseudo.ToJson() },
            null => new JsonObject { ["data"] = GroundTruth!.ToJson() },
        },
        ["split"] = Split, ["seed"] = Seed,
        ["config"] = JsonNode.Parse(Config.CanonicalForTraining().ToJson())!.AsObject(),
    };
}

/// <summary>A trained segmenter's predictions on a split (and their score), with or without the dense CRF.</summary>
public sealed record SegValSettings(SegTrainSettings Train, string Split, bool Crf) : IStageSettings
{
    public JsonObject ToJson() => new() { ["train"] = Train.ToJson(), ["split"] = Split, ["crf"] = Crf };
}

/// <summary>The generated dataset's root.</summary>
public sealed record DataResults(string Root) : IStageResults<DataResults>
{
    public JsonObject ToJson() => new() { ["root"] = Root };
    public static DataResults FromJson(JsonObject json) => new(json["root"]?.GetValue<string>() ?? "");
}

/// <summary>A training stage's record: a resume that found the training complete (stopped between its final checkpoint and
/// model-final.bin) ran no step, so it has no throughput; its loss is the one recorded for the final checkpoint.</summary>
public sealed record TrainingResults(long Steps, long StepsThisRun, double? LastLoss, double? ImagesPerSecond) : IStageResults<TrainingResults>
{
    public static TrainingResults Of(Training.TrainResult result) =>
        new(result.Step, result.StepsRun, result.LastLoss, result.StepsRun > 0 ? result.ImagesPerSecond : null);

    public JsonObject ToJson() => new()
    {
        ["steps"] = Steps, ["steps_this_run"] = StepsThisRun, ["last_loss"] = StageJson.Number(LastLoss),
        ["images_per_s"] = StageJson.Number(ImagesPerSecond),
    };

    public static TrainingResults FromJson(JsonObject json) => new(json["steps"]?.GetValue<long>() ?? 0, json["steps_this_run"]?.GetValue<long>() ?? 0,
        StageJson.Double(json["last_loss"]), StageJson.Double(json["images_per_s"]));
}

/// <summary>Images mapped.</summary>
public sealed record MapsResults(int Images) : IStageResults<MapsResults>
{
    public JsonObject ToJson() => new() { ["images"] = Images };
    public static MapsResults FromJson(JsonObject json) => new(json["images"]?.GetValue<int>() ?? 0);
}

/// <summary>The sweep's best mIoU and threshold, the mIoU per threshold and the maps' artifact rate.</summary>
public sealed record SweepResults(double? MeanIou, double Threshold, JsonObject MeanIouByThreshold, double? ArtifactRate) : IStageResults<SweepResults>
{
    public JsonObject ToJson() => new()
    {
        ["miou"] = StageJson.Number(MeanIou), ["threshold"] = Threshold, ["miou_by_threshold"] = MeanIouByThreshold.DeepClone(),
        ["artifact_rate"] = StageJson.Number(ArtifactRate),
    };

    public static SweepResults FromJson(JsonObject json) => new(StageJson.Double(json["miou"]), json["threshold"]?.GetValue<double>() ?? double.NaN,
        json["miou_by_threshold"]?.DeepClone() as JsonObject ?? new JsonObject(), StageJson.Double(json["artifact_rate"]));
}

/// <summary>The mIoU of a stage's label images on the split's masks; null when the split has no masks.</summary>
public sealed record ScoreResults(double? MeanIou) : IStageResults<ScoreResults>
{
    public JsonObject ToJson() => new() { ["miou"] = StageJson.Number(MeanIou) };
    public static ScoreResults FromJson(JsonObject json) => new(StageJson.Double(json["miou"]));
}

/// <summary>Numbers of stage records: JSON holds no NaN or infinity, so those are recorded as null.</summary>
public static class StageJson
{
    public static JsonNode? Number(double? value) => value is { } v ? EvaluationJson.NumberOrNull(v) : null;
    public static double? Double(JsonNode? node) => node?.GetValue<double>();
}

/// <summary>Round R's training (R ≥ 2): from round R − 1's weights, on the labels and saliency maps made after it.</summary>
public sealed record RoundTrainSettings(int Round, RoundLabelsSettings Labels) : IStageSettings
{
    public JsonObject ToJson() => new() { ["round"] = Round, ["labels"] = Labels.ToJson() };
}

/// <summary>The labels made after round R: the round's training (the pipeline's CAM training for round 1) and the base saliency.</summary>
public sealed record RoundLabelsSettings(int Round, IStageSettings Train, string Saliency) : IStageSettings
{
    public JsonObject ToJson() => new() { ["round"] = Round, ["train"] = Train.ToJson(), ["saliency"] = Saliency };
}

/// <summary>Round R's scores: its maps' sweep on the training masks and its own segmentation on the val split.</summary>
public sealed record RoundEvalSettings(int Round, IStageSettings Train, string Map, IReadOnlyList<double> Scales, bool Flip,
    IReadOnlyList<double> Thresholds, string? ValSplit) : IStageSettings
{
    public JsonObject ToJson() => new()
    {
        ["round"] = Round, ["train"] = Train.ToJson(), ["map"] = Map, ["scales"] = MapsSettings.Numbers(Scales), ["flip"] = Flip,
        ["thresholds"] = MapsSettings.Numbers(Thresholds), ["val_split"] = ValSplit,
    };
}

/// <summary>A round's cam_miou (and the sweep's best threshold) and val_miou; null when not scored.</summary>
public sealed record RoundEvalResults(double? CamMeanIou, double? CamThreshold, double? ValMeanIou) : IStageResults<RoundEvalResults>
{
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["cam_miou"] = StageJson.Number(CamMeanIou), ["val_miou"] = StageJson.Number(ValMeanIou) };
        if (CamThreshold is { } t) json["cam_threshold"] = t;
        return json;
    }

    public static RoundEvalResults FromJson(JsonObject json) =>
        new(StageJson.Double(json["cam_miou"]), StageJson.Double(json["cam_threshold"]), StageJson.Double(json["val_miou"]));
}

/// <summary>The labels made after a round: images, the fraction of pixels whose label changed since the previous round's, their mIoU.</summary>
public sealed record RoundLabelsResults(int Images, double? ChangedFraction, double? MeanIou) : IStageResults<RoundLabelsResults>
{
    public JsonObject ToJson() => new()
    {
        ["images"] = Images, ["changed_fraction"] = StageJson.Number(ChangedFraction), ["miou"] = StageJson.Number(MeanIou),
    };

    public static RoundLabelsResults FromJson(JsonObject json) =>
        new(json["images"]?.GetValue<int>() ?? 0, StageJson.Double(json["changed_fraction"]), StageJson.Double(json["miou"]));
}

