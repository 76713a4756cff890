using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using WeakSeg.Data;
using WeakSeg.Methods;
using WeakSeg.Training;

namespace WeakSeg.Pipelines;

/// <summary>Training augmentation of a recipe; the crop side is the backbone's training input size.</summary>
public sealed record AugmentationSettings
{
    /// <summary>timm/DeiT classification crop (MCTformer trains through timm's create_transform).</summary>
    public CropMode Mode { get; init; } = CropMode.RandomResizedCrop;

    /// <summary>RandomResizedCrop area range (timm default 0.08–1.0).</summary>
    public double MinAreaScale { get; init; } = 0.08;
    public double MaxAreaScale { get; init; } = 1.0;

    /// <summary>Horizontal flip probability (timm 0.5).</summary>
    public double HorizontalFlipProbability { get; init; } = 0.5;

    /// <summary>Colour-jitter strength for brightness, contrast and saturation (DeiT --color-jitter 0.4).</summary>
    public double ColorJitter { get; init; } = 0.4;

    public TrainTransform ToTransform(int cropSize) => new()
    {
        CropSize = cropSize, Mode = Mode, MinAreaScale = MinAreaScale, MaxAreaScale = MaxAreaScale,
        HorizontalFlipProbability = HorizontalFlipProbability, Brightness = ColorJitter, Contrast = ColorJitter, Saturation = ColorJitter,
    };
}

/// <summary>
/// Everything that decides a training run's numbers besides the data: method name, method config record, trainer options and
/// augmentation. Starts from a preset (<see cref="Preset"/>), may be overlaid by a JSON file (<see cref="Overlay"/>), then by CLI flags.
/// JSON form: <c>{ "method": "...", "model": {...}, "trainer": {...}, "augmentation": {...} }</c> (snake_case keys, enums as strings).
/// </summary>
public sealed record TrainRecipe(string Method, IMethodConfig ModelConfig, TrainerOptions Trainer, AugmentationSettings Augmentation)
{
    public const string MethodKey = "method", ModelKey = "model", TrainerKey = "trainer", AugmentationKey = "augmentation";
    const string NumClassesKey = "num_classes";
    static readonly string[] RecipeKeys = [MethodKey, ModelKey, TrainerKey, AugmentationKey];

    public IWsssMethodFactory Factory => MethodRegistry.Get(Method);

    /// <summary>Training input side (= crop size).</summary>
    public int ImageSize => ModelConfig.ImageSize;

    /// <summary>
    /// The recipe of <paramref name="method"/> under <paramref name="preset"/>: its row of the preset table (<see cref="Presets"/>: the
    /// method's config record preset, the preset's trainer and augmentation). It has no class count (<see cref="HasClassCount"/>): the
    /// dataset gives it (<see cref="For(VocDataset)"/>). A method whose configuration brings its own schedule
    /// (<see cref="IMethodTrainerSchedule"/>, e.g. the single-stage methods' poly warm-up AdamW) starts from that schedule in either preset
    /// (<see cref="MethodSchedule"/>).
    /// </summary>
    public static TrainRecipe Preset(string method, MethodPreset preset) => Presets.Get(preset).Recipe(method);

    /// <summary>
    /// The trainer options a preset starts from: the method's own schedule laid over the generic <paramref name="generic"/> when its
    /// configuration has one (<see cref="IMethodTrainerSchedule"/>; checkpoint and logging cadence stay the generic ones), else
    /// <paramref name="generic"/> itself, unchanged.
    /// </summary>
    public static TrainerOptions MethodSchedule(IMethodConfig model, TrainerOptions generic) =>
        model is IMethodTrainerSchedule schedule ? schedule.ToTrainerOptions(generic) : generic;

    /// <summary>True when the method's configuration brings its own trainer schedule (<see cref="IMethodTrainerSchedule"/>).</summary>
    public bool HasMethodSchedule => ModelConfig is IMethodTrainerSchedule;

    /// <summary>
    /// Training steps of the cpu preset (measured to fit the demo's time budget on 2 cores).
    /// Measured on the built-in benchmark (400 train images, seed 0, batch 32, 2 threads, otherwise idle machine):
    /// MCTformer-V2 with the cpu backbone (patch 8, dim 128, depth 4) takes ≈ 0.3 s/step, so 500 steps ≈ 2.6 min; at 250 steps
    /// the class loss was still ≈ 0.34 (undertrained). At 500 steps, maps at scale 1 + flip, best threshold of 0–0.9:
    /// V2 class-to-patch 29.7 % CAM mIoU, V2 fused 11.1 %, V2 refined 16.1 %. Patch 12 (0.8× the CPU time per step) at
    /// 400 steps was worse (class-to-patch 28.1 %, fused 9.6 %, refined 19.5 %); patch 16 gives a 6×6 grid, too coarse.
    /// </summary>
    public const long CpuSteps = 500;

    /// <summary>Whether the recipe has its class count (from a dataset, or a run's config.json); a preset has none and builds no model.</summary>
    public bool HasClassCount => ModelConfig.NumClasses != 0;

    /// <summary>
    /// Where the model's class count came from, for the error of <see cref="For(VocDataset)"/>: the file or <c>--set</c> assignment
    /// that named <c>model.num_classes</c>, the run's config.json, or the dataset the recipe was bound to; null while it has none.
    /// Never written to JSON.
    /// </summary>
    public string? ClassCountSource { get; init; }

    /// <summary>The recipe bound to the dataset it trains on: the class count is the dataset's K (the one place a recipe gets it;
    /// the rule is <see cref="DatasetClassCount.Bind"/>, shared with the segmenter's configuration).</summary>
    /// <exception cref="WeakSegException">the recipe already holds another class count (a <c>--config</c> file's or an earlier
    /// dataset's): K comes only from the data; the line names the source of that count (<see cref="ClassCountSource"/>)</exception>
    public TrainRecipe For(VocDataset dataset) => For(dataset.NumClasses, DatasetClassCount.Describe(dataset));

    /// <summary>The recipe with an explicit class count: for a model run on random tensors (benchmarks, tests), never for training on data
    /// (<see cref="For(VocDataset)"/>).</summary>
    public TrainRecipe For(int numClasses) => For(numClasses, "the caller");

    TrainRecipe For(int numClasses, string source)
    {
        int k = DatasetClassCount.Bind(ModelConfig.NumClasses, ModelKey + ".num_classes", ClassCountSource, numClasses, source);
        return this with { ModelConfig = ModelConfig.WithNumClasses(k), ClassCountSource = HasClassCount ? ClassCountSource : source };
    }

    /// <summary>The recipe with another training input size (backbone and crop).</summary>
    public TrainRecipe WithImageSize(int imageSize) => this with { ModelConfig = ModelConfig.WithImageSize(imageSize) };

    /// <summary>Errors naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        errors.AddRange(Factory.Validate(ModelConfig).Select(e => "model." + e));
        errors.AddRange(Trainer.Validate().Select(e => "trainer." + e));
        errors.AddRange(Augmentation.ToTransform(ImageSize).Validate().Select(e => "augmentation." + e));
        return errors;
    }

    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException($"invalid {Method} recipe: " + string.Join("; ", errors));
    }

    public JsonObject ToJson() => new()
    {
        [MethodKey] = Method,
        [ModelKey] = Factory.ConfigToJson(ModelConfig),
        [TrainerKey] = TrainerJson(Trainer),
        [AugmentationKey] = JsonSerializer.SerializeToNode(Augmentation, IO.WeakSegJson.TypeInfo<AugmentationSettings>()),
    };

    /// <summary>Parses the four sections of a recipe object (all required). Errors name <paramref name="source"/> and the field.</summary>
    public static TrainRecipe FromJson(JsonObject json, string source)
    {
        foreach (var key in RecipeKeys)
            if (json[key] is null) throw WeakSegException.ForFile(source, $"missing field '{key}'");
        var method = json[MethodKey]!.GetValue<string>();
        var factory = MethodRegistry.Get(method);
        var model = factory.ConfigFromJson(json[ModelKey]!, source);
        TrainerOptions trainer;
        AugmentationSettings augmentation;
        try
        {
            trainer = json[TrainerKey]!.Deserialize(IO.WeakSegJson.TypeInfo<TrainerOptions>()) ?? throw WeakSegException.ForFile(source, "empty 'trainer'");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(source, "bad 'trainer' section: " + e.Message); }
        try
        {
            augmentation = json[AugmentationKey]!.Deserialize(IO.WeakSegJson.TypeInfo<AugmentationSettings>()) ?? throw WeakSegException.ForFile(source, "empty 'augmentation'");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(source, "bad 'augmentation' section: " + e.Message); }
        return new TrainRecipe(factory.Name, model, trainer, augmentation) { ClassCountSource = model.NumClasses != 0 ? source : null };
    }

    /// <summary>
    /// This recipe with the fields of the JSON file <paramref name="path"/> laid over it (objects merge field by field,
    /// other values replace). The file may hold any subset of method/model/trainer/augmentation; another top-level field,
    /// or a field the records do not have, is an error naming the file and the field.
    /// </summary>
    public TrainRecipe Overlay(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "config file not found");
        return Overlay(IO.JsonFiles.ReadObject(path), path);
    }

    public TrainRecipe Overlay(JsonObject overlay, string source)
    {
        foreach (var (key, _) in overlay)
            if (!RecipeKeys.Contains(key))
                throw WeakSegException.ForFile(source, $"unknown field '{key}' (known: {string.Join(", ", RecipeKeys)})");
        var basis = this;
        if (overlay[MethodKey] is { } m && !string.Equals(m.GetValue<string>(), Method, StringComparison.OrdinalIgnoreCase))
            throw WeakSegException.ForFile(source, $"method is '{m.GetValue<string>()}' but the run trains '{Method}' (drop the field or pass --method {m.GetValue<string>()})");
        var merged = basis.ToJson();
        Merge(merged, overlay);
        var result = FromJson(merged, source) with
        {
            ClassCountSource = (overlay[ModelKey] as JsonObject)?[NumClassesKey] is not null ? source : basis.ClassCountSource,   // who set the count
        };
        return overlay[ModelKey] is null ? result : FollowSchedule(basis, result, overlay[TrainerKey] as JsonObject, source);
    }

    /// <summary>
    /// After the model section changed (<paramref name="basis"/> → <paramref name="result"/>): for a method with its own schedule, every
    /// trainer field that still held the old model's schedule value takes the new model's (e.g. <c>model.steps</c> moves
    /// <c>trainer.steps</c>), while fields the user set (in <paramref name="trainerOverlay"/> or an earlier overlay) keep their values.
    /// An invalid model is left for <see cref="Validate"/> to report.
    /// </summary>
    static TrainRecipe FollowSchedule(TrainRecipe basis, TrainRecipe result, JsonObject? trainerOverlay, string source)
    {
        if (basis.ModelConfig is not IMethodTrainerSchedule before || result.ModelConfig is not IMethodTrainerSchedule after
            || basis.ModelConfig.ErrorsBesidesClassCount().Count > 0 || result.ModelConfig.ErrorsBesidesClassCount().Count > 0)
            return result;
        var current = TrainerJson(basis.Trainer);
        var oldSchedule = TrainerJson(before.ToTrainerOptions(basis.Trainer));
        var newSchedule = TrainerJson(after.ToTrainerOptions(basis.Trainer));
        var trainer = TrainerJson(result.Trainer);
        foreach (var (key, value) in newSchedule)
            if (trainerOverlay?.ContainsKey(key) != true && JsonNode.DeepEquals(current[key], oldSchedule[key]))
                trainer[key] = value?.DeepClone();
        try
        {
            return result with { Trainer = trainer.Deserialize(IO.WeakSegJson.TypeInfo<TrainerOptions>())! };
        }
        catch (JsonException e) { throw WeakSegException.ForFile(source, "bad 'trainer' section: " + e.Message); }
    }

    static JsonObject TrainerJson(TrainerOptions options) =>
        JsonSerializer.SerializeToNode(options, IO.WeakSegJson.TypeInfo<TrainerOptions>())!.AsObject();

    /// <summary>
    /// This recipe with one field set: <c>SECTION.FIELD[.FIELD…]=VALUE</c>, e.g. <c>model.fusion=mean-sum</c> or <c>trainer.steps=200</c>
    /// (the same overlay as a <c>--config</c> file with that one field). VALUE is read as JSON when it parses (numbers, true/false,
    /// null, quoted strings, objects), else as a string. Errors name <paramref name="assignment"/>.
    /// </summary>
    public TrainRecipe With(string assignment)
    {
        var source = "--set " + assignment;
        int eq = assignment.IndexOf('=');
        if (eq <= 0) throw new WeakSegException($"{source}: expected KEY=VALUE, e.g. model.fusion=aaf");
        var path = assignment[..eq].Trim().Split('.');
        if (path.Any(string.IsNullOrWhiteSpace) || path.Length < 2)
            throw new WeakSegException($"{source}: expected SECTION.FIELD=VALUE with SECTION one of {string.Join(", ", RecipeKeys.Where(k => k != MethodKey))}");
        var text = assignment[(eq + 1)..];
        JsonNode? value;
        try { value = JsonNode.Parse(text); }
        catch (JsonException) { value = JsonValue.Create(text); }
        var overlay = new JsonObject();
        var node = overlay;
        foreach (var key in path[..^1])
        {
            var child = new JsonObject();
            node[key] = child;
            node = child;
        }
        node[path[^1]] = value;
        return Overlay(overlay, source);
    }

    static void Merge(JsonObject target, JsonObject overlay)
    {
        foreach (var (key, value) in overlay)
        {
            if (value is JsonObject o && target[key] is JsonObject t) Merge(t, o);
            else target[key] = value?.DeepClone();
        }
    }
}
