using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace WeakSeg.IO;

/// <summary>
/// The one JSON contract of WeakSeg's records: every configuration (method configs, trainer options, augmentation, segmentation and
/// affinity runs), checkpoint state and report record is written and read with <see cref="Options"/>, and every JSON tree
/// (stage records, reports, config.json) is written with it. snake_case keys, indented, enums as their names, computed
/// (get-only) properties not written, unknown fields rejected. Enum names are read ignoring case, '-' and '_' (<c>"MeanSum"</c>,
/// <c>"mean-sum"</c> and <c>"mean_sum"</c> are one value; a member's JsonStringEnumMemberName is its written name), so that
/// <c>--set model.fusion=mean-sum</c> works. Any record works without registering it here (no source-generated context to extend).
/// </summary>
public static class WeakSegJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        IgnoreReadOnlyProperties = true,
        Converters = { new LenientEnumConverterFactory() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    };

    /// <summary>The contract of <typeparamref name="T"/> under <see cref="Options"/>.</summary>
    public static JsonTypeInfo<T> TypeInfo<T>() => (JsonTypeInfo<T>)Options.GetTypeInfo(typeof(T));

    /// <summary>The JSON key of the C# property <paramref name="propertyName"/>.</summary>
    public static string Key(string propertyName) => Options.PropertyNamingPolicy!.ConvertName(propertyName);

    /// <summary><paramref name="value"/> as indented JSON text.</summary>
    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, TypeInfo<T>());

    /// <summary><paramref name="value"/> as a JSON tree.</summary>
    public static JsonObject ToObject<T>(T value) => JsonSerializer.SerializeToNode(value, TypeInfo<T>())!.AsObject();

    /// <summary>The JSON tree <paramref name="node"/> as indented text (a file's content before its final newline).</summary>
    public static string Text(JsonNode node) => node.ToJsonString(Options);

    sealed class LenientEnumConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(LenientEnumConverter<>).MakeGenericType(typeToConvert))!;
    }

    sealed class LenientEnumConverter<T> : JsonConverter<T> where T : struct, Enum
    {
        static string Fold(string name) => name.Replace("-", "").Replace("_", "").ToLowerInvariant();

        /// <summary>The JSON name of each member: its <see cref="JsonStringEnumMemberNameAttribute"/> where it has one, else its C# name.</summary>
        static readonly Dictionary<T, string> JsonNames = Enum.GetValues<T>().Distinct().ToDictionary(v => v, v =>
            typeof(T).GetField(v.ToString())?.GetCustomAttributes(typeof(JsonStringEnumMemberNameAttribute), false)
                .OfType<JsonStringEnumMemberNameAttribute>().FirstOrDefault()?.Name ?? v.ToString());

        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var number) && Enum.IsDefined(typeof(T), number))
                return (T)Enum.ToObject(typeof(T), number);
            if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected one of {string.Join(", ", Enum.GetNames<T>())}");
            var text = reader.GetString() ?? "";
            foreach (var (value, jsonName) in JsonNames)
                if (Fold(jsonName) == Fold(text) || Fold(value.ToString()) == Fold(text)) return value;
            throw new JsonException($"'{text}' is not one of {string.Join(", ", JsonNames.Values)}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
        {
            if (JsonNames.TryGetValue(value, out var jsonName)) writer.WriteStringValue(jsonName);
            else writer.WriteNumberValue(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
