using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;

namespace WeakSeg;

/// <summary>
/// Marks a configuration field that never changes what a run computes: checkpoint and log cadence, garbage-collection cadence,
/// threads and device (threads change only the order of floating-point sums: a run is bitwise repeatable for a given thread
/// count). This one declaration feeds every check that compares configurations: the trainer's resume check, the segmentation
/// run's resume check and the pipeline's stage ledger (<see cref="ResultNeutral"/>).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ResultNeutralAttribute : Attribute;

/// <summary>One field of a configuration record as JSON writes it.</summary>
/// <param name="Key">the JSON key</param>
/// <param name="Name">the record's property name</param>
/// <param name="Neutral">marked <see cref="ResultNeutralAttribute"/></param>
public sealed record ConfigField(string Key, string Name, bool Neutral);

/// <summary>Reads the <see cref="ResultNeutralAttribute"/> declarations of a configuration record through its JSON contract.</summary>
public static class ResultNeutral
{
    /// <summary>The fields of <paramref name="typeInfo"/>'s JSON contract, in the order they are written.</summary>
    public static IReadOnlyList<ConfigField> Fields(JsonTypeInfo typeInfo)
    {
        var policy = typeInfo.Options.PropertyNamingPolicy;
        var byKey = typeInfo.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .ToDictionary(p => policy?.ConvertName(p.Name) ?? p.Name, StringComparer.Ordinal);
        return typeInfo.Properties.Select(p => byKey.TryGetValue(p.Name, out var clr)
            ? new ConfigField(p.Name, clr.Name, clr.IsDefined(typeof(ResultNeutralAttribute)))
            : new ConfigField(p.Name, p.Name, false)).ToList();
    }

    /// <summary>The JSON keys of the result-neutral fields.</summary>
    public static IReadOnlyList<string> Keys(JsonTypeInfo typeInfo) => Fields(typeInfo).Where(f => f.Neutral).Select(f => f.Key).ToList();

    /// <summary>A copy of <paramref name="json"/> (a record written with <paramref name="typeInfo"/>) without its result-neutral fields.</summary>
    public static JsonObject Without(JsonObject json, JsonTypeInfo typeInfo)
    {
        var copy = json.DeepClone().AsObject();
        foreach (var key in Keys(typeInfo)) copy.Remove(key);
        return copy;
    }
}
