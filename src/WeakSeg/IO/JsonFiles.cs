using System.Text.Json;
using System.Text.Json.Nodes;

namespace WeakSeg.IO;

/// <summary>Strict parsing of JSON files a user writes (configs): a key given twice in one object is an error naming the file and
/// the key, instead of one value silently winning or an unexpected exception later.</summary>
public static class JsonFiles
{
    static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>Parses <paramref name="text"/> read from <paramref name="source"/>; invalid JSON or a duplicate key is a
    /// <see cref="WeakSegException"/> naming <paramref name="source"/>.</summary>
    public static JsonNode? Parse(string text, string source)
    {
        try { return JsonNode.Parse(text, documentOptions: Strict); }
        catch (JsonException e) when (DuplicateKey(text) is { } key)
        {
            throw WeakSegException.ForFile(source, $"key '{key.Name}' is given twice in {key.Path} (JSON keys must be unique){Position(e)}");
        }
        catch (JsonException e) { throw WeakSegException.ForFile(source, "not valid JSON: " + FirstSentence(e.Message) + Position(e)); }
    }

    /// <summary>Reads and parses the JSON object in the file <paramref name="path"/> (errors name it).</summary>
    public static JsonObject ReadObject(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "file not found");
        return Parse(File.ReadAllText(path), path) as JsonObject ?? throw WeakSegException.ForFile(path, "expected a JSON object");
    }

    /// <summary>The first key that occurs twice in one object, with the JSON path of that object (null when there is none or the text
    /// is not valid JSON apart from duplicates).</summary>
    internal static (string Name, string Path)? DuplicateKey(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { AllowDuplicateProperties = true });
            return Find(doc.RootElement, "$");
        }
        catch (JsonException) { return null; }

        static (string, string)? Find(JsonElement e, string path)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in e.EnumerateObject())
                    if (!seen.Add(p.Name)) return (p.Name, path == "$" ? "the top-level object" : "'" + path + "'");
                foreach (var p in e.EnumerateObject())
                    if (Find(p.Value, path + "." + p.Name) is { } inner) return inner;
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    if (Find(item, $"{path}[{i++}]") is { } inner) return inner;
            }
            return null;
        }
    }

    /// <summary>" (line L, column C)", 1-based, when the parser knows it.</summary>
    static string Position(JsonException e) =>
        e.LineNumber is { } line ? $" (line {line + 1}{(e.BytePositionInLine is { } col ? $", column {col + 1}" : "")})" : "";

    /// <summary>The parser's message without its advice about reader options and its own 0-based position.</summary>
    static string FirstSentence(string message)
    {
        int cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        var text = cut >= 0 ? message[..cut] : message;
        int advice = text.IndexOf(" Change the reader options", StringComparison.Ordinal);
        return (advice >= 0 ? text[..advice] : text).Trim();
    }
}
