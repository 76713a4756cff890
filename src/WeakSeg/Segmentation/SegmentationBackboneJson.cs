using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using WeakSeg.IO;
using WeakSeg.Models.Vit;

namespace WeakSeg.Segmentation;

/// <summary>
/// JSON of <see cref="SegmentationConfig.Backbone"/>: the <see cref="VitConfig"/> fields as everywhere (<see cref="WeakSegJson"/>), plus
/// its computed <c>"grid_size"</c> last. Segmentation config.json files and pipeline stage records have always held that key (they were
/// written with computed properties included), and a pipeline compares a stage's settings key by key, so it stays in the text; when
/// read, it is dropped (it follows from image_size and patch_size).
/// </summary>
public sealed class SegmentationBackboneJson : JsonConverter<VitConfig>
{
    static readonly string GridSizeKey = WeakSegJson.Key(nameof(VitConfig.GridSize));

    public override VitConfig Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (JsonNode.Parse(ref reader) is not JsonObject fields) throw new JsonException("backbone: expected an object");
        fields.Remove(GridSizeKey);
        return fields.Deserialize<VitConfig>(options) ?? throw new JsonException("backbone: empty");
    }

    public override void Write(Utf8JsonWriter writer, VitConfig value, JsonSerializerOptions options)
    {
        var fields = JsonSerializer.SerializeToNode(value, options)!.AsObject();
        fields[GridSizeKey] = value.GridSize;
        fields.WriteTo(writer, options);
    }
}
