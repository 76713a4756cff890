using System.Text.Json.Nodes;
using WeakSeg.Training;

namespace WeakSeg.Pipelines;

/// <summary>
/// The resolved configuration of a CAM training run, written as RUN/config.json (<see cref="RunDirectory"/>) before training starts:
/// <code>{ "format_version": 1, "method", "model", "trainer", "augmentation",   (the recipe)
///   "preset", "image_size", "data": { "root", "split", "num_classes", "class_names": [...] }, "init": path|null }</code>
/// </summary>
public sealed record RunConfig(TrainRecipe Recipe, string Preset, string DataRoot, string Split, IReadOnlyList<string> ClassNames, string? InitWeights)
    : IRunConfig<RunConfig>
{
    public static int FormatVersion => 1;
    public static string RunKind => "a run directory written by `weakseg train`";

    /// <summary>Foreground classes K (ClassNames holds background + K names).</summary>
    public int NumClasses => ClassNames.Count - 1;

    /// <summary>The fields after <c>format_version</c>.</summary>
    public JsonObject ToJson()
    {
        var ordered = new JsonObject
        {
            ["preset"] = Preset,
            ["image_size"] = Recipe.ImageSize,
        };
        foreach (var (key, value) in Recipe.ToJson()) ordered[key] = value?.DeepClone();
        ordered["data"] = new JsonObject
        {
            ["root"] = DataRoot,
            ["split"] = Split,
            ["num_classes"] = NumClasses,
            ["class_names"] = new JsonArray(ClassNames.Select(n => (JsonNode?)JsonValue.Create(n)).ToArray()),
        };
        ordered["init"] = InitWeights;
        return ordered;
    }

    public static RunConfig FromJson(JsonObject json, int formatVersion, string path)
    {
        var data = json["data"] as JsonObject ?? throw WeakSegException.ForFile(path, "missing field 'data'");
        var recipe = new JsonObject();
        foreach (var key in new[] { TrainRecipe.MethodKey, TrainRecipe.ModelKey, TrainRecipe.TrainerKey, TrainRecipe.AugmentationKey })
            recipe[key] = json[key]?.DeepClone();
        var names = (data["class_names"] as JsonArray ?? throw WeakSegException.ForFile(path, "missing field 'data.class_names'"))
            .Select(n => n!.GetValue<string>()).ToList();
        return new RunConfig(
            TrainRecipe.FromJson(recipe, path),
            json["preset"]?.GetValue<string>() ?? "custom",
            data["root"]?.GetValue<string>() ?? throw WeakSegException.ForFile(path, "missing field 'data.root'"),
            data["split"]?.GetValue<string>() ?? throw WeakSegException.ForFile(path, "missing field 'data.split'"),
            names,
            json["init"]?.GetValue<string>());
    }

    /// <summary>Writes RUN/config.json atomically.</summary>
    public void Save(string runDirectory) => new RunDirectory(runDirectory).WriteConfig(this);

    /// <summary>Reads RUN/config.json; a missing or malformed file is an error naming it.</summary>
    public static RunConfig Load(string runDirectory) => new RunDirectory(runDirectory).ReadConfig<RunConfig>();
}
