using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;

namespace WeakSeg.Pipelines;

/// <summary>
/// The resolved configuration of a training run, written as RUN/config.json before training starts:
/// <code>{ "format_version": 1, "method", "model", "trainer", "augmentation",   (the recipe)
///   "preset", "image_size", "data": { "root", "split", "num_classes", "class_names": [...] }, "init": path|null }</code>
/// </summary>
public sealed record RunConfig(TrainRecipe Recipe, string Preset, string DataRoot, string Split, IReadOnlyList<string> ClassNames, string? InitWeights)
{
    public const string FileName = "config.json";
    public const int FormatVersion = 1;

    public static string PathIn(string runDirectory) => System.IO.Path.Combine(runDirectory, FileName);

    /// <summary>Foreground classes K (ClassNames holds background + K names).</summary>
    public int NumClasses => ClassNames.Count - 1;

    public JsonObject ToJson()
    {
        var json = Recipe.ToJson();
        var ordered = new JsonObject
        {
            ["format_version"] = FormatVersion,
            ["preset"] = Preset,
            ["image_size"] = Recipe.ImageSize,
        };
        foreach (var (key, value) in json) ordered[key] = value?.DeepClone();
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

    /// <summary>Writes RUN/config.json atomically.</summary>
    public void Save(string runDirectory)
    {
        Directory.CreateDirectory(runDirectory);
        var path = PathIn(runDirectory);
        AtomicFile.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Reads RUN/config.json; a missing or malformed file is an error naming it.</summary>
    public static RunConfig Load(string runDirectory)
    {
        var path = PathIn(runDirectory);
        if (!File.Exists(path))
            throw WeakSegException.ForFile(path, "run configuration not found (is this a directory written by `weakseg train`?)");
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw WeakSegException.ForFile(path, "expected a JSON object");
            int version = json["format_version"]?.GetValue<int>() ?? throw WeakSegException.ForFile(path, "missing field 'format_version'");
            if (version != FormatVersion) throw WeakSegException.ForFile(path, $"format_version {version} is not supported (expected {FormatVersion})");
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
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw WeakSegException.ForFile(path, "unreadable run configuration: " + e.Message);
        }
    }
}
