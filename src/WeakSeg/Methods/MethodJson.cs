using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace WeakSeg.Methods;

/// <summary>
/// JSON of every method configuration record: snake_case keys, enums as their names, computed properties not written, unknown
/// fields rejected. Enum names are read ignoring case, '-' and '_' (<c>"MeanSum"</c>, <c>"mean-sum"</c> and <c>"mean_sum"</c> are
/// one value), so that <c>--set model.fusion=mean-sum</c> works. Any record works without registering it here.
/// </summary>
public static class MethodJson
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

    sealed class LenientEnumConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(LenientEnumConverter<>).MakeGenericType(typeToConvert))!;
    }

    sealed class LenientEnumConverter<T> : JsonConverter<T> where T : struct, Enum
    {
        static string Fold(string name) => name.Replace("-", "").Replace("_", "").ToLowerInvariant();

        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var number) && Enum.IsDefined(typeof(T), number))
                return (T)Enum.ToObject(typeof(T), number);
            if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected one of {string.Join(", ", Enum.GetNames<T>())}");
            var text = reader.GetString() ?? "";
            foreach (var name in Enum.GetNames<T>())
                if (Fold(name) == Fold(text)) return Enum.Parse<T>(name);
            throw new JsonException($"'{text}' is not one of {string.Join(", ", Enum.GetNames<T>())}");
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options)
        {
            if (Enum.IsDefined(value)) writer.WriteStringValue(value.ToString());
            else writer.WriteNumberValue(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
