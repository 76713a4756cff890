using System.Text;
using WeakSeg.Models.Vit;

namespace WeakSeg.Models.Weights;

/// <summary>
/// Initial ViT backbone weights (the affinity network's backbone): a WeakSeg run's <c>model-final.bin</c> (TorchSharp <c>Module.save</c> format, e.g.
/// a trained MCTformer; loaded with strict = false) or timm <c>.safetensors</c>. The ViT shape can be read from a TorchSharp file.
/// </summary>
public static class BackboneWeights
{
    /// <summary>Names and shapes of the tensors in a TorchSharp <c>Module.save</c> file (the data is skipped).</summary>
    public static IReadOnlyDictionary<string, long[]> ReadShapes(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "weights file not found");
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            long count = Leb128(reader);
            if (count < 0 || count > 1_000_000) throw new InvalidDataException($"implausible tensor count {count}");
            var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
            for (long i = 0; i < count; i++)
            {
                var name = Encoding.UTF8.GetString(reader.ReadBytes((int)Leb128(reader)));
                long type = Leb128(reader);
                long dims = Leb128(reader);
                if (dims < 0 || dims > 16) throw new InvalidDataException($"implausible rank {dims} of '{name}'");
                var shape = new long[dims];
                for (int d = 0; d < dims; d++) shape[d] = Leb128(reader);
                long bytes = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(type, name);
                reader.BaseStream.Seek(bytes, SeekOrigin.Current);
                if (reader.BaseStream.Position > reader.BaseStream.Length) throw new InvalidDataException($"file ends inside '{name}'");
                shapes[name] = shape;
            }
            return shapes;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw WeakSegException.ForFile(path, "not a TorchSharp weights file (" + e.Message + ")");
        }
    }

    static long Leb128(BinaryReader reader)
    {
        long result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            result |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("bad length encoding");
    }

    static long ElementSize(long type, string name) => type switch
    {
        0 or 1 or 11 => 1,          // uint8, int8, bool
        2 or 5 or 15 => 2,          // int16, float16, bfloat16
        3 or 6 => 4,                // int32, float32
        4 or 7 => 8,                // int64, float64
        _ => throw new InvalidDataException($"unsupported element type {type} of '{name}'"),
    };

    /// <summary>
    /// The ViT shape stored in a TorchSharp weights file with timm keys (optionally under <paramref name="prefix"/>): width, patch,
    /// depth, class tokens, MLP ratio, qkv bias and training image size. Heads cannot be read from shapes: <paramref name="numHeads"/>,
    /// or D/64 (DeiT-Ti/S/B: 3/6/12) when null.
    /// </summary>
    public static VitConfig InferBackbone(string path, int? numHeads = null, string prefix = "")
    {
        var shapes = ReadShapes(path);
        long[] Need(string key) => shapes.TryGetValue(prefix + key, out var s) ? s
            : throw WeakSegException.ForFile(path, $"has no '{prefix + key}' tensor; is it a ViT/MCTformer checkpoint?");
        var patch = Need("patch_embed.proj.weight");                  // [D, 3, p, p]
        var cls = Need("cls_token");                                   // [1, C, D]
        var pos = Need("pos_embed");                                   // [1, C + N, D]
        var fc1 = Need("blocks.0.mlp.fc1.weight");                     // [hidden, D]
        int d = (int)patch[0], p = (int)patch[2], c = (int)cls[1];
        int depth = 0;
        while (shapes.ContainsKey($"{prefix}blocks.{depth}.norm1.weight")) depth++;
        int grid = (int)Math.Round(Math.Sqrt(pos[1] - c));
        if (grid * grid != pos[1] - c) throw WeakSegException.ForFile(path, $"pos_embed has {pos[1] - c} patch rows, not a square grid");
        int heads = numHeads ?? Math.Max(1, d / 64);
        return new VitConfig
        {
            EmbedDim = d, PatchSize = p, InChannels = (int)patch[1], NumClassTokens = c, Depth = depth, NumHeads = heads,
            MlpRatio = (double)fc1[0] / d, QkvBias = shapes.ContainsKey(prefix + "blocks.0.attn.qkv.bias"), ImageSize = grid * p,
        };
    }

    /// <summary>
    /// Loads <paramref name="path"/> into <paramref name="backbone"/>: <c>.safetensors</c> through <see cref="TimmWeightImport"/>, any other file
    /// as TorchSharp format with strict = false (keys the backbone lacks are reported as unexpected; a shape mismatch is an error).
    /// </summary>
    public static WeightImportReport Load(VisionTransformer backbone, string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "weights file not found");
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            return TimmWeightImport.LoadFile(backbone, path);
        }
        var shapes = ReadShapes(path);
        var own = backbone.state_dict();
        foreach (var (key, tensor) in own)
            if (shapes.TryGetValue(key, out var shape) && !shape.SequenceEqual(tensor.shape))
                throw WeakSegException.ForFile(path, $"'{key}' has shape [{string.Join(", ", shape)}] but the backbone expects [{string.Join(", ", tensor.shape)}] " +
                                                     "(build the backbone with the source run's shape, e.g. its number of class tokens)");
        var loaded = new Dictionary<string, bool>();
        try { backbone.load(path, strict: false, loadedParameters: loaded); }
        catch (Exception e) when (e is not WeakSegException)
        {
            throw WeakSegException.ForFile(path, "weights do not fit the backbone (" + e.Message.Split('\n')[0].Trim() + ")");
        }
        var loadedKeys = own.Keys.Where(k => shapes.ContainsKey(k)).ToList();
        var missing = own.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        var unexpected = shapes.Keys.Where(k => !own.ContainsKey(k)).ToList();
        return new WeightImportReport(loadedKeys, missing, [], unexpected) { Source = path };
    }
}
