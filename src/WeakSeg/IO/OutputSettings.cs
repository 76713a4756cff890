using System.Text.Json;
using System.Text.Json.Nodes;

namespace WeakSeg.IO;

/// <summary>
/// The settings an output folder's files were computed with, recorded beside them in <c>DIR/weakseg-settings.json</c>. Commands that
/// resume by skipping existing outputs (cam, pseudo) claim their folder first: a folder recorded with other settings, or holding
/// outputs with no record, is refused with the differing keys, so outputs of another run, map or threshold are never reported as done.
/// </summary>
public static class OutputSettings
{
    public const string FileName = "weakseg-settings.json";

    public static string PathIn(string directory) => Path.Combine(Path.GetFullPath(directory), FileName);

    /// <summary>The recorded settings of <paramref name="directory"/> (null when it has no record). Errors name the record.</summary>
    public static JsonObject? Read(string directory)
    {
        var path = PathIn(directory);
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw WeakSegException.ForFile(path, "expected a JSON object"); }
        catch (JsonException e) { throw WeakSegException.ForFile(path, "unreadable settings record: " + e.Message); }
    }

    /// <summary>
    /// Makes <paramref name="directory"/> the folder of outputs computed with <paramref name="settings"/>: a new or empty folder gets the
    /// record; a folder with the same record is a resume. <paramref name="replace"/> (the command rewrites every output) takes over any
    /// folder. Otherwise other settings, or <paramref name="existingOutputs"/> > 0 without a record, is an error naming the folder.
    /// </summary>
    /// <param name="what">what the outputs are, for messages ("maps", "pseudo labels")</param>
    public static void Claim(string directory, string what, JsonObject settings, int existingOutputs, bool replace = false)
    {
        var recorded = Read(directory);
        var path = PathIn(directory);
        if (!replace && recorded is not null && !JsonNode.DeepEquals(recorded, settings))
            throw WeakSegException.ForFile(path, $"this folder holds {what} computed with other settings " +
                $"({string.Join(", ", DifferingKeys(recorded, settings))}); use a new --out, or delete the folder to recompute");
        if (!replace && recorded is null && existingOutputs > 0)
            throw WeakSegException.ForFile(Path.GetFullPath(directory), $"holds {existingOutputs} {what} with no record of the settings they were " +
                $"computed with ({FileName}); use a new --out, or delete them to recompute");
        if (recorded is null || replace) AtomicFile.WriteAllText(path, WeakSegJson.Text(settings) + "\n");
    }

    /// <summary>Keys (dotted into nested objects) whose values differ.</summary>
    static IEnumerable<string> DifferingKeys(JsonObject recorded, JsonObject now, string prefix = "")
    {
        foreach (var key in recorded.Select(kv => kv.Key).Union(now.Select(kv => kv.Key)))
        {
            var a = recorded[key];
            var b = now[key];
            if (JsonNode.DeepEquals(a, b)) continue;
            if (a is JsonObject ao && b is JsonObject bo)
                foreach (var inner in DifferingKeys(ao, bo, prefix + key + ".")) yield return inner;
            else yield return prefix + key;
        }
    }
}
